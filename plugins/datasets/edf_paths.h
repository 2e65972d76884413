/* The files a dataset names: a file, a directory (searched recursively
 * for given extensions, any case) or a glob pattern. */
#ifndef MSPT_EDF_PATHS_H
#define MSPT_EDF_PATHS_H

#include <stddef.h>

typedef struct edf_paths {
    char **path; /* absolute, symlinks resolved */
    size_t n, cap;
} edf_paths;

/* Recordings: .edf and .bdf. */
extern const char *const edf_extensions[];

/* Append the files named by spec, in name order, skipping any already in
 * the list; a directory contributes the files ending in one of exts
 * (NULL-terminated, e.g. ".edf").  0, or -1 with err (nothing matched, an
 * unreadable directory). */
int edf_paths_add(edf_paths *p, const char *spec, const char *const *exts,
                  char *err, size_t errlen);
void edf_paths_free(edf_paths *p);

#endif
