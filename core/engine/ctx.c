/* The per-step context: arena, tape, grad mode, sticky op error. */
#include <mspt/tensor.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

typedef struct tape_entry {
    mspt_backward_fn fn;
    void *saved;
} tape_entry;

struct mspt_ctx {
    mspt_arena arena;
    tape_entry *tape;
    size_t tape_len, tape_cap;
    int grad_enabled;
    int training;
    int has_error;
    char error[512];
    mspt_rng *rng;
};

/* Denormal floats (below 1.2e-38) run up to 100× slower on x86; they arise
 * in decaying recurrences (the selective scan's states) and tiny gradients.
 * Flush them to zero in every thread that computes: the caller's and the
 * OpenMP pool's (libgomp keeps its threads, so once per thread suffices). */
static void flush_denormals(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned int csr = __builtin_ia32_stmxcsr();
    __builtin_ia32_ldmxcsr(csr | 0x8040); /* FTZ | DAZ */
#endif
}

void mspt_engine_thread_init(void)
{
    flush_denormals();
#pragma omp parallel num_threads(mspt_get_threads())
    flush_denormals();
}

mspt_ctx *mspt_ctx_new(void)
{
    mspt_engine_thread_init();
    mspt_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    mspt_arena_init(&ctx->arena);
    ctx->grad_enabled = 1;
    ctx->training = 1;
    return ctx;
}

void mspt_ctx_free(mspt_ctx *ctx)
{
    if (!ctx)
        return;
    mspt_arena_release(&ctx->arena);
    free(ctx->tape);
    free(ctx);
}

void mspt_ctx_reset(mspt_ctx *ctx)
{
    mspt_arena_reset(&ctx->arena);
    ctx->tape_len = 0;
    ctx->has_error = 0;
    ctx->error[0] = '\0';
}

void mspt_ctx_set_grad(mspt_ctx *ctx, int enabled) { ctx->grad_enabled = !!enabled; }
int mspt_ctx_grad_enabled(const mspt_ctx *ctx) { return ctx->grad_enabled; }
void mspt_ctx_set_training(mspt_ctx *ctx, int training) { ctx->training = !!training; }
int mspt_ctx_training(const mspt_ctx *ctx) { return ctx->training; }
void mspt_ctx_set_rng(mspt_ctx *ctx, mspt_rng *rng) { ctx->rng = rng; }
mspt_rng *mspt_ctx_rng(mspt_ctx *ctx) { return ctx->rng; }
size_t mspt_ctx_arena_used(const mspt_ctx *ctx) { return ctx->arena.used; }
size_t mspt_ctx_arena_reserved(const mspt_ctx *ctx) { return ctx->arena.reserved; }
size_t mspt_tape_length(const mspt_ctx *ctx) { return ctx->tape_len; }

const char *mspt_ctx_error(const mspt_ctx *ctx)
{
    return ctx->has_error ? ctx->error : NULL;
}

mspt_tensor *mspt_fail(mspt_ctx *ctx, const char *fmt, ...)
{
    if (ctx->has_error) /* keep the first cause */
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    va_end(ap);
    ctx->has_error = 1;
    return NULL;
}

void *mspt_ctx_alloc(mspt_ctx *ctx, size_t bytes)
{
    void *p = mspt_arena_alloc(&ctx->arena, bytes);
    if (!p)
        mspt_fail(ctx, "out of memory allocating %zu bytes of activations",
                  bytes);
    return p;
}

/* ---- tensors ---------------------------------------------------------- */

size_t mspt_shape_numel(int ndim, const int *shape)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    return n;
}

int mspt_tensor_same_shape(const mspt_tensor *a, const mspt_tensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

const char *mspt_shape_str(const mspt_tensor *t, char *buf, size_t size)
{
    size_t off = 0;
    off += (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < t->ndim && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, i ? ",%d" : "%d",
                                t->shape[i]);
    if (off < size)
        snprintf(buf + off, size - off, ")");
    return buf;
}

static mspt_tensor *header_new(mspt_ctx *ctx, int ndim, const int *shape)
{
    if (ndim < 1 || ndim > MSPT_MAX_DIMS)
        return mspt_fail(ctx, "tensor with %d dims (1..%d supported)", ndim,
                         MSPT_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return mspt_fail(ctx, "negative tensor dim %d", shape[i]);
    mspt_tensor *t = mspt_ctx_alloc(ctx, sizeof *t);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->numel = mspt_shape_numel(ndim, shape);
    return t;
}

mspt_tensor *mspt_tensor_new(mspt_ctx *ctx, int ndim, const int *shape)
{
    mspt_tensor *t = header_new(ctx, ndim, shape);
    if (!t)
        return NULL;
    t->data = mspt_ctx_alloc(ctx, t->numel * sizeof(float));
    return t->data ? t : NULL;
}

mspt_tensor *mspt_tensor_zeros(mspt_ctx *ctx, int ndim, const int *shape)
{
    mspt_tensor *t = mspt_tensor_new(ctx, ndim, shape);
    if (t)
        memset(t->data, 0, t->numel * sizeof(float));
    return t;
}

mspt_tensor *mspt_tensor_wrap(mspt_ctx *ctx, float *data, int ndim,
                              const int *shape)
{
    mspt_tensor *t = header_new(ctx, ndim, shape);
    if (t)
        t->data = data;
    return t;
}

/* ---- autograd --------------------------------------------------------- */

int mspt_needs_grad(const mspt_ctx *ctx, const mspt_tensor *t)
{
    return ctx->grad_enabled && t && t->requires_grad;
}

mspt_tensor *mspt_op_output(mspt_ctx *ctx, int ndim, const int *shape,
                            int needs)
{
    mspt_tensor *t = mspt_tensor_new(ctx, ndim, shape);
    if (t)
        t->requires_grad = needs && ctx->grad_enabled;
    return t;
}

void mspt_tape_push(mspt_ctx *ctx, mspt_backward_fn fn, void *saved)
{
    if (ctx->tape_len == ctx->tape_cap) {
        size_t cap = ctx->tape_cap ? 2 * ctx->tape_cap : 256;
        tape_entry *t = realloc(ctx->tape, cap * sizeof *t);
        if (!t) {
            mspt_fail(ctx, "out of memory growing the autograd tape");
            return;
        }
        ctx->tape = t;
        ctx->tape_cap = cap;
    }
    ctx->tape[ctx->tape_len].fn = fn;
    ctx->tape[ctx->tape_len].saved = saved;
    ctx->tape_len++;
}

typedef struct {
    float *p;
    size_t n;
} zero_job;

static void zero_block(void *arg, int t, int nt)
{
    const zero_job *z = arg;
    size_t i0, i1;
    mspt_block(z->n, t, nt, &i0, &i1);
    memset(z->p + i0, 0, (i1 - i0) * sizeof(float));
}

float *mspt_grad(mspt_ctx *ctx, mspt_tensor *t)
{
    if (!t || !t->requires_grad)
        return NULL;
    if (t->grad)
        return t->grad;
    if (t->base) {
        t->grad = mspt_grad(ctx, t->base);
        return t->grad;
    }
    t->grad = mspt_ctx_alloc(ctx, t->numel * sizeof(float));
    if (t->grad) /* a few hundred MB per step in a model: on every thread */
        mspt_parallel(t->numel, zero_block, &(zero_job){t->grad, t->numel});
    return t->grad;
}

int mspt_backward(mspt_ctx *ctx, mspt_tensor *loss)
{
    if (loss && loss->numel != 1) {
        mspt_fail(ctx, "backward needs a scalar loss");
        return -1;
    }
    const float one = 1.0f;
    return mspt_backward_with(ctx, loss, &one);
}

int mspt_backward_with(mspt_ctx *ctx, mspt_tensor *out, const float *grad_out)
{
    if (ctx->has_error || !out)
        return -1;
    if (!out->requires_grad) {
        mspt_fail(ctx, "backward: the output does not depend on any parameter");
        return -1;
    }
    float *g = mspt_grad(ctx, out);
    if (!g)
        return -1;
    for (size_t i = 0; grad_out && i < out->numel; i++)
        g[i] += grad_out[i];
    for (size_t i = ctx->tape_len; i-- > 0;)
        ctx->tape[i].fn(ctx, ctx->tape[i].saved);
    ctx->tape_len = 0; /* consumed, as PyTorch without retain_graph */
    return ctx->has_error ? -1 : 0;
}
