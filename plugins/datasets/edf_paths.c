/* Expanding a dataset's path specifications (see edf_paths.h). */
#include "edf_paths.h"

#include <dirent.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Append a copy of s. */
static int push(edf_paths *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **t = realloc(l->path, cap * sizeof *t);
        if (!t)
            return -1;
        l->path = t;
        l->cap = cap;
    }
    if (!(l->path[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

const char *const edf_extensions[] = {".edf", ".bdf", NULL};

static int has_ext(const char *name, const char *const *exts)
{
    size_t n = strlen(name);
    for (size_t i = 0; exts[i]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && !strcasecmp(name + n - e, exts[i]))
            return 1;
    }
    return 0;
}

/* Every file with one of exts under dir, recursively. */
static int walk(const char *dir, const char *const *exts, edf_paths *out,
                char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return fail(err, errlen, "%s: cannot read directory: %m", dir);
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue;
        struct stat st;
        if (stat(path, &st))
            continue;
        if (S_ISDIR(st.st_mode))
            rc = walk(path, exts, out, err, errlen);
        else if (S_ISREG(st.st_mode) && has_ext(e->d_name, exts) && push(out, path))
            rc = fail(err, errlen, "out of memory");
    }
    closedir(d);
    return rc;
}

/* Add one file (or a directory's recordings) to p, as real paths. */
static int add_one(edf_paths *p, const char *path, const char *const *exts,
                   char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st))
        return fail(err, errlen, "%s: %m", path);
    edf_paths found = {0};
    int rc = 0;
    if (S_ISDIR(st.st_mode)) {
        rc = walk(path, exts, &found, err, errlen);
        if (!rc && found.n == 0)
            rc = fail(err, errlen, "%s: no %s%s%s files in this directory",
                      path, exts[0], exts[1] ? " or " : "", exts[1] ? exts[1] : "");
        qsort(found.path, found.n, sizeof *found.path, by_name);
    } else if (push(&found, path)) {
        rc = fail(err, errlen, "out of memory");
    }
    for (size_t i = 0; !rc && i < found.n; i++) {
        char real[PATH_MAX];
        if (!realpath(found.path[i], real)) {
            rc = fail(err, errlen, "%s: %m", found.path[i]);
            break;
        }
        size_t k = 0;
        while (k < p->n && strcmp(p->path[k], real))
            k++;
        if (k == p->n && push(p, real))
            rc = fail(err, errlen, "out of memory");
    }
    edf_paths_free(&found);
    return rc;
}

int edf_paths_add(edf_paths *p, const char *spec, const char *const *exts,
                  char *err, size_t errlen)
{
    if (!strpbrk(spec, "*?["))
        return add_one(p, spec, exts, err, errlen);
    glob_t g;
    int r = glob(spec, GLOB_ERR, NULL, &g);
    if (r == GLOB_NOMATCH || r == GLOB_ABORTED) /* or its directory is missing */
        return fail(err, errlen, "%s: no file matches this pattern", spec);
    if (r)
        return fail(err, errlen, "%s: cannot expand this pattern", spec);
    int rc = 0;
    for (size_t i = 0; !rc && i < g.gl_pathc; i++) /* glob sorts by name */
        rc = add_one(p, g.gl_pathv[i], exts, err, errlen);
    globfree(&g);
    return rc;
}

void edf_paths_free(edf_paths *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->path[i]);
    free(p->path);
    p->path = NULL;
    p->n = p->cap = 0;
}
