/* Linear layer, as torch.nn.functional.linear: y = x·wᵀ + b.
 * Leading dims of x are flattened to rows R; every product is one GEMM on
 * the stored tensors (transposes are strides, see core/engine/gemm.h). */
#include <mspt/ops.h>

#include <stdio.h>
#include <string.h>

#include "engine/gemm.h"

#define PAR_MIN 32768 /* below this many elements, fork/join costs more */

typedef struct {
    mspt_tensor *x, *w, *b, *y;
    int R, I, O;
} linear_saved;

/* R ones in the arena: the bias enters as the GEMM 1 (R, 1) · bᵀ (1, O). */
static float *ones(mspt_ctx *ctx, int R)
{
    float *v = mspt_ctx_alloc(ctx, (size_t)R * sizeof(float));
    for (int r = 0; v && r < R; r++)
        v[r] = 1.0f;
    return v;
}

/* x (R, I), w (O, I), b (O) or NULL -> y (R, O) = x·wᵀ + b.
 * The bias is the rank-1 product 1 (R, 1) · bᵀ (1, O), written first; the
 * main GEMM then adds to it (beta = 1).  BLIS spreads both over threads. */
static void linear_forward(mspt_ctx *ctx, float *y, const float *x,
                           const float *w, const float *b, int R, int I, int O)
{
    float *one = b ? ones(ctx, R) : NULL;
    if (b && !one)
        return;
    if (b)
        mspt_gemm(0, 0, R, O, 1, 1.0f, one, 1, b, O, 0.0f, y, O,
                  mspt_gemm_threads(R, O, I));
    mspt_gemm(0, 1, R, O, I, 1.0f, x, I, w, I, b ? 1.0f : 0.0f, y, O, 0);
}

/* gb[j0:j1] += Σ_r gy[r, j0:j1];  gy (R, O), acc (O) scratch.  Rows are
 * added in order, vectorised across columns only, so every column's sum is
 * the same whatever the thread count.  (2–3× faster than gyᵀ·1 as a GEMM.) */
static void column_sums(float *gb, float *acc, const float *gy, int R, int O,
                        int j0, int j1)
{
    float *a = acc + j0;
    int n = j1 - j0;
    memset(a, 0, (size_t)n * sizeof(float));
    for (int r = 0; r < R; r++) {
        const float *g = gy + (size_t)r * O + j0;
#pragma omp simd
        for (int j = 0; j < n; j++)
            a[j] += g[j];
    }
    for (int j = 0; j < n; j++)
        gb[j0 + j] += a[j];
}

/* gb (O) += Σ_r gy[r, :], columns cut in one slab per thread.  A region is
 * opened only with 2+ threads: libgomp allocates a team for each one-thread
 * region. */
static void bias_backward(mspt_ctx *ctx, float *gb, const float *gy, int R,
                          int O)
{
    float *acc = mspt_ctx_alloc(ctx, (size_t)O * sizeof(float));
    if (!acc)
        return;
    int nt = (size_t)R * O >= PAR_MIN ? mspt_get_threads() : 1;
    nt = nt < O ? nt : 1;
    if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int t = 0; t < nt; t++)
            column_sums(gb, acc, gy, R, O, (int)((long)O * t / nt),
                        (int)((long)O * (t + 1) / nt));
    } else {
        column_sums(gb, acc, gy, R, O, 0, O);
    }
}

/* gy (R, O) ->  gx (R, I) += gy·w;  gw (O, I) += gyᵀ·x;  gb (O) += Σ_r gy. */
static void linear_backward(mspt_ctx *ctx, void *p)
{
    linear_saved *s = p;
    const float *gy = s->y->grad;
    float *gx = mspt_grad(ctx, s->x);
    float *gw = mspt_grad(ctx, s->w);
    float *gb = mspt_grad(ctx, s->b);
    if (gx)
        mspt_gemm(0, 0, s->R, s->I, s->O, 1.0f, gy, s->O, s->w->data, s->I,
                  1.0f, gx, s->I, 0);
    if (gw)
        mspt_gemm(1, 0, s->O, s->I, s->R, 1.0f, gy, s->O, s->x->data, s->I,
                  1.0f, gw, s->I, 0);
    if (gb)
        bias_backward(ctx, gb, gy, s->R, s->O);
}

mspt_tensor *mspt_linear(mspt_ctx *ctx, mspt_tensor *x, mspt_tensor *w,
                         mspt_tensor *b)
{
    if (!x || !w)
        return NULL;
    char s1[64], s2[64];
    if (w->ndim != 2)
        return mspt_fail(ctx, "linear: weight %s must be (out, in)",
                         mspt_shape_str(w, s1, sizeof s1));
    int O = w->shape[0], I = w->shape[1];
    if (x->shape[x->ndim - 1] != I)
        return mspt_fail(ctx,
                         "linear: x %s last dim does not match weight %s",
                         mspt_shape_str(x, s1, sizeof s1),
                         mspt_shape_str(w, s2, sizeof s2));
    if (b && (b->ndim != 1 || b->shape[0] != O))
        return mspt_fail(ctx, "linear: bias %s does not match weight %s",
                         mspt_shape_str(b, s1, sizeof s1),
                         mspt_shape_str(w, s2, sizeof s2));
    int shape[MSPT_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = O;
    int needs = mspt_needs_grad(ctx, x) || mspt_needs_grad(ctx, w) ||
                mspt_needs_grad(ctx, b);
    mspt_tensor *y = mspt_op_output(ctx, x->ndim, shape, needs);
    if (!y)
        return NULL;
    int R = (int)mspt_shape_numel(x->ndim - 1, x->shape);
    linear_forward(ctx, y->data, x->data, w->data, b ? b->data : NULL, R, I,
                   O);
    if (y->requires_grad) {
        linear_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (linear_saved){x, w, b, y, R, I, O};
        mspt_tape_push(ctx, linear_backward, s);
    }
    return y;
}
