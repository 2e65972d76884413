/* Named persistent parameters with their gradient buffers. */
#include <mspt/tensor.h>

#include "engine/params.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mspt_params {
    mspt_tensor **items;
    size_t n, cap;
    char refused[320]; /* the first parameter refused, and why */
};

const char *mspt_params_refused(const mspt_params *ps)
{
    return ps->refused[0] ? ps->refused : NULL;
}

/* Say why a parameter was not made; the builder reports the first. */
static mspt_tensor *refuse(mspt_params *ps, const char *name, const char *why)
{
    if (!ps->refused[0])
        snprintf(ps->refused, sizeof ps->refused, "parameter '%.200s': %s",
                 name ? name : "(null)", why);
    return NULL;
}

mspt_params *mspt_params_new(void) { return calloc(1, sizeof(mspt_params)); }

static void param_free(mspt_tensor *t)
{
    free(t->data);
    free(t->grad);
    free((char *)t->name);
    free(t);
}

void mspt_params_free(mspt_params *ps)
{
    if (!ps)
        return;
    for (size_t i = 0; i < ps->n; i++)
        param_free(ps->items[i]);
    free(ps->items);
    free(ps);
}

mspt_tensor *mspt_params_find(const mspt_params *ps, const char *name)
{
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i]->name, name) == 0)
            return ps->items[i];
    return NULL;
}

static float *zeroed_floats(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p)
        memset(p, 0, bytes);
    return p;
}

mspt_tensor *mspt_param_new(mspt_params *ps, const char *name, int ndim,
                            const int *shape, int flags)
{
    if (!name || !*name)
        return refuse(ps, name, "a parameter needs a name");
    if (ndim < 1 || ndim > MSPT_MAX_DIMS)
        return refuse(ps, name, "ndim must be 1 to " MSPT_STR(MSPT_MAX_DIMS));
    if (mspt_params_find(ps, name))
        return refuse(ps, name, "the name is used twice");
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 32;
        mspt_tensor **items = realloc(ps->items, cap * sizeof *items);
        if (!items)
            return refuse(ps, name, "out of memory");
        ps->items = items;
        ps->cap = cap;
    }
    mspt_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return refuse(ps, name, "out of memory");
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->numel = mspt_shape_numel(ndim, shape);
    t->requires_grad = 1;
    t->flags = flags;
    t->name = strdup(name);
    t->data = zeroed_floats(t->numel);
    t->grad = zeroed_floats(t->numel);
    if (!t->name || !t->data || !t->grad) {
        param_free(t);
        return refuse(ps, name, "out of memory");
    }
    ps->items[ps->n++] = t;
    return t;
}

mspt_tensor *mspt_param_newf(mspt_params *ps, int flags, int ndim,
                             const int *shape, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof name)
        return refuse(ps, name, "the name is longer than 255 characters");
    return mspt_param_new(ps, name, ndim, shape, flags);
}

size_t mspt_params_count(const mspt_params *ps) { return ps->n; }

size_t mspt_params_numel(const mspt_params *ps)
{
    size_t n = 0;
    for (size_t i = 0; i < ps->n; i++)
        n += ps->items[i]->numel;
    return n;
}

mspt_tensor *mspt_params_at(const mspt_params *ps, size_t i)
{
    return i < ps->n ? ps->items[i] : NULL;
}

void mspt_params_zero_grad(mspt_params *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        memset(ps->items[i]->grad, 0, ps->items[i]->numel * sizeof(float));
}
