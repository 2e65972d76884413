/* Replace a file atomically: write a temporary file beside it, fsync,
 * rename over the target, fsync the directory.  On any failure the target
 * is untouched and the temporary file removed. */
#ifndef MSPT_ATOMIC_H
#define MSPT_ATOMIC_H

#include <stdio.h>

#include <mspt/error.h>

typedef int (*mspt_write_fn)(FILE *fp, void *ud, mspt_error *err);

int mspt_atomic_write(const char *path, mspt_write_fn fn, void *ud,
                      mspt_error *err);

#endif
