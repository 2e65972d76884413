/* Linear layer, as torch.nn.functional.linear: y = x·wᵀ + b.
 * Leading dims of x are flattened to rows R; every product is one GEMM on
 * the stored tensors (transposes are strides, see core/engine/gemm.h).
 * With a side of at most 64 (Mamba's dt_proj and x_proj, a head), the
 * thin-GEMM kernels take the layer first: the bias starts the forward's
 * accumulators, and dt_proj-shaped backwards read gy once for gx, gw and
 * gb (core/engine/thin_gemm.c); the code below is the BLIS path. */
#include <mspt/ops.h>

#include <stdio.h>
#include <string.h>

#include "engine/gemm.h"

#define PAR_MIN 32768 /* below this many elements, fork/join costs more */

typedef struct {
    mspt_tensor *x, *w, *b, *y;
    float *xa; /* (R, I + 1) = [x | 1] when the bias rode in the GEMM */
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

/* The bias rides in the GEMM as one more inner column when copying x is
 * cheaper than a pass over y: I + 1 ≤ O / 2 (Mamba's dt_proj 25 → 1540,
 * a Transformer's qkv and fc1).  Otherwise y is filled with the bias first
 * and the GEMM adds to it — two more passes over y, read and written. */
static int bias_in_gemm(int I, int O) { return 2 * (I + 1) <= O; }

/* With the bias in the GEMM and I + 1 ≤ this, the weight-gradient GEMM
 * also takes the extra column: gyᵀ·[x | 1] = [gw | gb] in one product
 * (one more column of a thin GEMM is free; of a wide one, it is not). */
#define BIAS_GRAD_IN_GEMM 32

typedef struct {
    const float *x, *w, *b;
    float *xa, *wa;
    int R, I, O;
} augment_job;

/* Block t of the rows of xa (R, I+1) = [x | 1] and of wa (O, I+1) = [w | b]. */
static void augment_block(void *arg, int t, int nt)
{
    const augment_job *a = arg;
    size_t i0, i1, row = (size_t)a->I * sizeof(float);
    mspt_block((size_t)a->R, t, nt, &i0, &i1);
    for (size_t r = i0; r < i1; r++) {
        memcpy(a->xa + r * (a->I + 1), a->x + r * a->I, row);
        a->xa[r * (a->I + 1) + a->I] = 1.0f;
    }
    mspt_block((size_t)a->O, t, nt, &i0, &i1);
    for (size_t o = i0; o < i1; o++) {
        memcpy(a->wa + o * (a->I + 1), a->w + o * a->I, row);
        a->wa[o * (a->I + 1) + a->I] = a->b[o];
    }
}

/* x (R, I), w (O, I), b (O) or NULL -> y (R, O) = x·wᵀ + b.  Returns xa
 * when the bias rode in the GEMM (y = [x | 1] · [w | b]ᵀ, written once),
 * else NULL (bias rows written first, the GEMM adds with beta = 1). */
static float *linear_forward(mspt_ctx *ctx, float *y, const float *x,
                             const float *w, const float *b, int R, int I,
                             int O)
{
    if (mspt_thin_linear_forward(R, I, O, x, w, b, y))
        return NULL; /* a short side: the bias starts the accumulators */
    if (b && bias_in_gemm(I, O)) {
        augment_job a = {x, w, b,
                         mspt_ctx_alloc(ctx, (size_t)R * (I + 1) * sizeof(float)),
                         mspt_ctx_alloc(ctx, (size_t)O * (I + 1) * sizeof(float)),
                         R, I, O};
        if (!a.xa || !a.wa)
            return NULL;
        mspt_parallel((size_t)(R + O) * (I + 1), augment_block, &a);
        mspt_gemm(0, 1, R, O, I + 1, 1.0f, a.xa, I + 1, a.wa, I + 1, 0.0f, y,
                  O, 0);
        return a.xa;
    }
    float *one = b ? ones(ctx, R) : NULL;
    if (b && !one)
        return NULL;
    if (b)
        mspt_gemm(0, 0, R, O, 1, 1.0f, one, 1, b, O, 0.0f, y, O,
                  mspt_gemm_threads(R, O, I));
    mspt_gemm(0, 1, R, O, I, 1.0f, x, I, w, I, b ? 1.0f : 0.0f, y, O, 0);
    return NULL;
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

/* gw (O, I) += gaT[:I, :]ᵀ,  gb (O) += gaT[I, :];  gaT (I + 1, O). */
static void split_bias_grad(float *gw, float *gb, const float *gaT, int O,
                            int I)
{
    for (int i = 0; i < I; i++) {
        const float *g = gaT + (size_t)i * O;
        for (int o = 0; o < O; o++)
            gw[(size_t)o * I + i] += g[o];
    }
    for (int o = 0; o < O; o++)
        gb[o] += gaT[(size_t)I * O + o];
}

/* gy (R, O) ->  gx (R, I) += gy·w;  gw (O, I) += gyᵀ·x;  gb (O) += Σ_r gy. */
static void linear_backward(mspt_ctx *ctx, void *p)
{
    linear_saved *s = p;
    const float *gy = s->y->grad;
    float *gx = mspt_grad(ctx, s->x);
    float *gw = mspt_grad(ctx, s->w);
    float *gb = mspt_grad(ctx, s->b);
    int R = s->R, I = s->I, O = s->O;
    /* a short input and a long output: gx, gw and gb in one pass over gy */
    if (mspt_thin_linear_backward(R, I, O, gy, s->w->data,
                                  s->xa ? s->xa : s->x->data,
                                  s->xa ? I + 1 : I, gx, gw, gb))
        return;
    if (gw && gb && s->xa && I + 1 <= BIAS_GRAD_IN_GEMM) {
        /* [gw | gb]ᵀ (I+1, O) = [x | 1]ᵀ · gy, through arena scratch */
        float *gaT = mspt_ctx_alloc(ctx, (size_t)O * (I + 1) * sizeof(float));
        if (!gaT)
            return;
        if (gx)
            mspt_gemm(0, 0, R, I, O, 1.0f, gy, O, s->w->data, I, 1.0f, gx, I,
                      0);
        mspt_gemm(1, 0, I + 1, O, R, 1.0f, s->xa, I + 1, gy, O, 0.0f, gaT, O,
                  0);
        split_bias_grad(gw, gb, gaT, O, I);
        return;
    }
    if (gx)
        mspt_gemm(0, 0, R, I, O, 1.0f, gy, O, s->w->data, I, 1.0f, gx, I, 0);
    if (gw && mspt_thin_weight_grad(R, I, O, gy, s->x->data, gw, gb))
        return; /* gb too */
    if (gw)
        mspt_gemm(1, 0, O, I, R, 1.0f, gy, O, s->x->data, I, 1.0f, gw, I, 0);
    if (gb)
        bias_backward(ctx, gb, gy, R, O);
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
    float *xa = linear_forward(ctx, y->data, x->data, w->data,
                               b ? b->data : NULL, R, I, O);
    if (mspt_ctx_error(ctx))
        return NULL;
    if (y->requires_grad) {
        linear_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (linear_saved){x, w, b, y, xa, R, I, O};
        mspt_tape_push(ctx, linear_backward, s);
    }
    return y;
}
