/* Rotary position embedding, interleaved pairs (2i, 2i+1), by token index.
 *
 * Angle n·base^(−2i/hd) is computed in double once per (n, i) into an arena
 * table, so large n keeps full float accuracy; backward is the inverse
 * rotation (the transpose of the 2×2 rotation). */
#include <mspt/ops.h>

#include <math.h>
#include <string.h>

typedef struct {
    mspt_tensor *x, *y;
    const float *cs; /* (N, hd/2, 2): cos, sin */
} rotary_saved;

/* x (BH, N, hd), cs (N, hd/2, 2) -> y (BH, N, hd) +=; sign −1 rotates back:
 * y[2i]   += x[2i]·cos − sign·x[2i+1]·sin
 * y[2i+1] += sign·x[2i]·sin + x[2i+1]·cos */
static void rotary_apply(float *y, const float *x, const float *cs, int BH,
                         int N, int hd, float sign)
{
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static)
    for (int r = 0; r < BH * N; r++) {
        const float *c = cs + (size_t)(r % N) * hd; /* hd/2 (cos, sin) pairs */
        const float *xr = x + (size_t)r * hd;
        float *yr = y + (size_t)r * hd;
#pragma omp simd
        for (int i = 0; i < hd / 2; i++) {
            float co = c[2 * i], si = sign * c[2 * i + 1];
            float x0 = xr[2 * i], x1 = xr[2 * i + 1];
            yr[2 * i] += x0 * co - x1 * si;
            yr[2 * i + 1] += x0 * si + x1 * co;
        }
    }
}

static void rotary_backward_fn(mspt_ctx *ctx, void *p)
{
    rotary_saved *s = p;
    float *dx = mspt_grad(ctx, s->x), *dy = mspt_grad(ctx, s->y);
    if (!dx || !dy)
        return;
    int N = s->x->shape[2], hd = s->x->shape[3];
    int BH = s->x->shape[0] * s->x->shape[1];
    rotary_apply(dx, dy, s->cs, BH, N, hd, -1.0f);
}

mspt_tensor *mspt_rotary(mspt_ctx *ctx, mspt_tensor *x, float base)
{
    if (!x)
        return NULL;
    char s1[64];
    if (x->ndim != 4 || x->shape[3] % 2 != 0)
        return mspt_fail(ctx, "rotary: x %s must be (B,H,N,hd) with hd even",
                         mspt_shape_str(x, s1, sizeof s1));
    if (!(base > 0.0f))
        return mspt_fail(ctx, "rotary: base %g must be positive", base);
    int N = x->shape[2], hd = x->shape[3];
    mspt_tensor *y = mspt_op_output(ctx, 4, x->shape, mspt_needs_grad(ctx, x));
    float *cs = mspt_ctx_alloc(ctx, (size_t)N * hd * sizeof(float));
    if (!y || !cs)
        return NULL;
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static)
    for (int n = 0; n < N; n++)
        for (int i = 0; i < hd / 2; i++) {
            double angle = n * pow((double)base, -2.0 * i / hd);
            cs[(size_t)n * hd + 2 * i] = (float)cos(angle);
            cs[(size_t)n * hd + 2 * i + 1] = (float)sin(angle);
        }
    memset(y->data, 0, y->numel * sizeof(float));
    rotary_apply(y->data, x->data, cs, x->shape[0] * x->shape[1], N, hd, 1.0f);
    if (y->requires_grad) {
        rotary_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (rotary_saved){x, y, cs};
        mspt_tape_push(ctx, rotary_backward_fn, s);
    }
    return y;
}
