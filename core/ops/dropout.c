/* Inverted dropout: y = x·m/(1 − p), m ~ Bernoulli(1 − p) per element.
 *
 * The mask is never stored.  Each call takes one 64-bit seed from the
 * context's rng; element i's draw is the SplitMix64 output for counter i/2
 * (one 64-bit hash gives two 32-bit uniforms).  That is the same stream a
 * sequential SplitMix64 would produce, but any element can be recomputed
 * alone: forward parallelises over blocks, backward regenerates the same
 * mask, and the result depends only on the seed, not on the thread count. */
#include <mspt/ops.h>

#include <math.h>

typedef struct {
    mspt_tensor *x, *y;
    uint64_t seed, thresh;
    float scale;
} dropout_saved;

/* SplitMix64 output for counter k of the stream started at seed. */
static inline uint64_t splitmix_at(uint64_t seed, uint64_t k)
{
    uint64_t z = seed + (k + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct {
    float *out;
    const float *in;
    size_t n;
    uint64_t seed, thresh;
    float scale;
    int accumulate;
} dropout_args;

/* out (n) = in (n)·scale where kept, 0 elsewhere (accumulate: out +=), for
 * the pairs of block t.  Element i is kept when its 32-bit uniform is below
 * thresh = (1 − p)·2³². */
static void dropout_block(void *arg, int t, int nt)
{
    const dropout_args *a = arg;
    float *out = a->out, scale = a->scale;
    const float *in = a->in;
    uint64_t seed = a->seed, thresh = a->thresh;
    size_t n = a->n, k0, k1;
    mspt_block((n + 1) / 2, t, nt, &k0, &k1);
    for (size_t k = k0; k < k1; k++) {
        uint64_t h = splitmix_at(seed, k);
        for (size_t i = 2 * k, half = 0; half < 2 && i < n; i++, half++) {
            uint64_t u = half ? h >> 32 : h & 0xffffffffULL;
            float v = u < thresh ? in[i] * scale : 0.0f;
            if (a->accumulate)
                out[i] += v;
            else
                out[i] = v;
        }
    }
}

static void dropout_kernel(float *out, const float *in, size_t n,
                           uint64_t seed, uint64_t thresh, float scale,
                           int accumulate)
{
    dropout_args a = {out, in, n, seed, thresh, scale, accumulate};
    mspt_parallel(n, dropout_block, &a);
}

/* gx (n) += gy (n)·m/(1 − p), the same mask as forward */
static void dropout_backward(mspt_ctx *ctx, void *saved)
{
    dropout_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    float *gx = mspt_grad(ctx, s->x);
    if (gx)
        dropout_kernel(gx, s->y->grad, s->x->numel, s->seed, s->thresh,
                       s->scale, 1);
}

/* x (n) -> y (n) */
mspt_tensor *mspt_dropout(mspt_ctx *ctx, mspt_tensor *x, float p)
{
    if (!x)
        return NULL;
    if (!(p >= 0.0f && p <= 1.0f))
        return mspt_fail(ctx, "dropout: p = %g is outside [0, 1]", (double)p);
    if (!mspt_ctx_training(ctx) || p == 0.0f)
        return x; /* identity: no copy, no tape entry */
    mspt_rng *rng = mspt_ctx_rng(ctx);
    if (!rng)
        return mspt_fail(ctx, "dropout: p = %g in training mode needs a "
                              "random generator on the context "
                              "(mspt_ctx_set_rng)", (double)p);
    mspt_tensor *y = mspt_op_output(ctx, x->ndim, x->shape,
                                    mspt_needs_grad(ctx, x));
    if (!y)
        return NULL;
    uint64_t seed = mspt_rng_u64(rng);
    uint64_t thresh = (uint64_t)ldexp(1.0 - (double)p, 32);
    float scale = p < 1.0f ? (float)(1.0 / (1.0 - (double)p)) : 0.0f;
    dropout_kernel(y->data, x->data, x->numel, seed, thresh, scale, 0);
    if (y->requires_grad) {
        dropout_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (dropout_saved){x, y, seed, thresh, scale};
        mspt_tape_push(ctx, dropout_backward, s);
    }
    return y;
}
