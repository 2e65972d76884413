/* File-system helpers shared by everything that writes run outputs. */
#ifndef MSPT_FILES_H
#define MSPT_FILES_H

#include <stdio.h>

#include <mspt/error.h>

/* Writes the content into fp; returns 0, or nonzero after filling err (or
 * leaving it empty with errno telling the cause of a failed write). */
typedef int (*mspt_write_fn)(FILE *fp, void *ud, mspt_error *err);

/* Replace path atomically: write path.tmp.<pid> beside it, flush and fsync,
 * rename it over path, fsync the directory.  On any failure the temporary
 * file is removed and an existing file at path is left as it was. */
int mspt_atomic_write(const char *path, mspt_write_fn fn, void *ud,
                      mspt_error *err);

/* Open a user-given input path read-only, refusing anything that is not a
 * regular file (a FIFO, device, socket or directory) without blocking on
 * it: the open is non-blocking, fstat decides, then the descriptor is made
 * blocking again.  Returns the descriptor, or -1 after filling err with
 * "path: cannot open: ..." (MSPT_ERR_RUNTIME) or "path: not a regular
 * file (a FIFO)" (MSPT_ERR_CONFIG). */
int mspt_open_regular(const char *path, mspt_error *err);
/* The same check by path alone (stat), for inputs a library opens itself
 * (HDF5): 0, or nonzero after filling err. */
int mspt_check_regular(const char *path, mspt_error *err);

/* Hold dir for this process: an exclusive flock on dir/.mspt.lock (made if
 * absent, holding the holder's pid), kept until the descriptor returned in
 * *fd is closed or the process ends (a killed run leaves no lock behind).
 * Another holder: MSPT_ERR_CONFIG naming dir and its pid. */
int mspt_lock_dir(const char *dir, int *fd, mspt_error *err);

/* Remove the temporary files mspt_atomic_write leaves when killed mid-write
 * ("NAME.tmp.<pid>") directly in dir; only for a directory this process
 * holds (mspt_lock_dir), where no writer can be alive.  Returns how many
 * were removed (-1 if dir cannot be read, 0 if absent) and adds their
 * bytes to *bytes. */
long mspt_remove_temporaries(const char *dir, long long *bytes);

/* mkdir -p */
int mspt_make_dirs(const char *path, mspt_error *err);

#endif
