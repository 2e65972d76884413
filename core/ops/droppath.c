/* Stochastic depth (timm's drop_path): y[b] = x[b]·k_b/(1 − p) with one
 * Bernoulli(1 − p) draw k_b per sample b, from the context's rng; the
 * identity outside training mode or when p is 0. */
#include <mspt/ops.h>

typedef struct {
    mspt_tensor *x, *y;
    float *factor; /* (B): k_b/(1 − p) */
} droppath_saved;

/* gx (B, rest) += gy (B, rest)·factor[b] */
static void droppath_backward(mspt_ctx *ctx, void *saved)
{
    droppath_saved *s = saved;
    if (!s->y->grad)
        return;
    float *gx = mspt_grad(ctx, s->x);
    if (!gx)
        return;
    int B = s->x->shape[0];
    size_t rest = s->x->numel / (size_t)B;
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < rest; i++)
            gx[(size_t)b * rest + i] += s->y->grad[(size_t)b * rest + i] * s->factor[b];
}

/* x (B, ...) -> y (B, ...) */
mspt_tensor *mspt_drop_path(mspt_ctx *ctx, mspt_tensor *x, float p)
{
    if (!x)
        return NULL;
    if (!(p >= 0.0f && p < 1.0f))
        return mspt_fail(ctx, "drop_path: p = %g is outside [0, 1)", (double)p);
    if (!mspt_ctx_training(ctx) || p == 0.0f)
        return x;
    mspt_rng *rng = mspt_ctx_rng(ctx);
    if (!rng)
        return mspt_fail(ctx, "drop_path: p = %g in training mode needs a random "
                              "generator on the context (mspt_ctx_set_rng)",
                         (double)p);
    int B = x->shape[0];
    size_t rest = x->numel / (size_t)(B ? B : 1);
    float *factor = mspt_ctx_alloc(ctx, (size_t)(B ? B : 1) * sizeof(float));
    mspt_tensor *y = mspt_op_output(ctx, x->ndim, x->shape, mspt_needs_grad(ctx, x));
    if (!factor || !y)
        return NULL;
    for (int b = 0; b < B; b++)
        factor[b] = mspt_rng_uniform(rng) < 1.0 - p ? 1.0f / (1.0f - p) : 0.0f;
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < rest; i++)
            y->data[(size_t)b * rest + i] = x->data[(size_t)b * rest + i] * factor[b];
    if (y->requires_grad) {
        droppath_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        s->x = x;
        s->y = y;
        s->factor = factor;
        mspt_tape_push(ctx, droppath_backward, s);
    }
    return y;
}
