/* Reader for the text fixtures written by scripts/gen_fixtures_*.py
 * (numbers from PyTorch, committed small so CI needs no PyTorch).
 *
 * Format, one tensor after another:
 *     tensor NAME NDIM D0 D1 ...
 *     v v v ... (numel values, whitespace separated, %.9g)
 *
 *   fixture *f = fixture_load("linear.txt");  looks in $MSPT_SRCDIR/tests/fixtures
 *   const fixture_tensor *t = fixture_get(f, "x");
 */
#ifndef MSPT_FIXTURE_H
#define MSPT_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

typedef struct fixture_tensor {
    char name[64];
    int ndim;
    int shape[8];
    size_t numel;
    float *data;
} fixture_tensor;

typedef struct fixture {
    fixture_tensor *t;
    int n;
} fixture;

/* Loads tests/fixtures/<file>; bails out of the TAP run if it is missing
 * or malformed (a fixture is part of the source tree). */
static inline fixture *fixture_load(const char *file)
{
    const char *src = getenv("MSPT_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", src ? src : ".", file);
    FILE *fp = fopen(path, "r");
    if (!fp) {
        char msg[4200];
        snprintf(msg, sizeof msg, "cannot open fixture %s", path);
        tap_bail(msg);
    }
    fixture *f = calloc(1, sizeof *f);
    char word[16];
    while (fscanf(fp, "%15s", word) == 1) {
        if (strcmp(word, "tensor") != 0)
            tap_bail("fixture: expected 'tensor'");
        f->t = realloc(f->t, (size_t)(f->n + 1) * sizeof *f->t);
        fixture_tensor *t = &f->t[f->n++];
        memset(t, 0, sizeof *t);
        if (fscanf(fp, "%63s %d", t->name, &t->ndim) != 2 || t->ndim < 0 ||
            t->ndim > 8)
            tap_bail("fixture: bad tensor header");
        t->numel = 1;
        for (int i = 0; i < t->ndim; i++) {
            if (fscanf(fp, "%d", &t->shape[i]) != 1)
                tap_bail("fixture: bad shape");
            t->numel *= (size_t)t->shape[i];
        }
        t->data = malloc((t->numel ? t->numel : 1) * sizeof(float));
        for (size_t i = 0; i < t->numel; i++)
            if (fscanf(fp, "%f", &t->data[i]) != 1)
                tap_bail("fixture: short data");
    }
    fclose(fp);
    return f;
}

static inline const fixture_tensor *fixture_get(const fixture *f,
                                                const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0)
            return &f->t[i];
    char msg[128];
    snprintf(msg, sizeof msg, "fixture has no tensor '%s'", name);
    tap_bail(msg);
}

static inline void fixture_free(fixture *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->t[i].data);
    free(f->t);
    free(f);
}

/* Max over elements of |got − want| / max(|want|, floor). */
static inline double fixture_max_rel_err(const float *got, const float *want,
                                         size_t n, double floor)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double w = want[i] < 0 ? -want[i] : want[i];
        double d = (double)got[i] - want[i];
        d = d < 0 ? -d : d;
        double e = d / (w > floor ? w : floor);
        if (e > worst || e != e)
            worst = e != e ? 1e30 : e;
    }
    return worst;
}

#endif
