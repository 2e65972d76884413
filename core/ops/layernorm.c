/* LayerNorm over the last dim, as torch.nn.functional.layer_norm:
 * y = (x − mean)·rstd·w + b,  rstd = 1/√(var + eps), biased variance.
 * Forward saves mean and rstd per row; backward is the fused closed form. */
#include <mspt/ops.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    mspt_tensor *x, *w, *b, *y;
    const float *wd;    /* w's data, or ones when w is NULL */
    float *mean, *rstd; /* (R) */
    size_t R, D;
} layernorm_saved;

/* Arguments of the forward and backward kernels. */
typedef struct {
    float *y, *mean, *rstd;  /* forward outputs */
    float *gx;               /* backward: gx (R, D) or NULL */
    double *part;            /* backward: (threads, 2D) gw, gb partials */
    const float *x, *w, *b, *gy;
    size_t R, D;
    float eps;
    int nt;                  /* backward: blocks used, set by block 0 */
} ln_args;

/* x (R, D), w (D), b (D) -> y (R, D), mean (R), rstd (R), rows of block t.
 * Row moments in double, two passes (exact enough for signals with a large
 * offset); the row loops are `omp simd` reductions, a fixed order. */
static void layernorm_forward_block(void *arg, int t, int nt)
{
    const ln_args *a = arg;
    const float *w = a->w, *b = a->b;
    size_t D = a->D, r0, r1;
    mspt_block(a->R, t, nt, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        const float *xr = a->x + r * D;
        float *yr = a->y + r * D;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t j = 0; j < D; j++)
            s += xr[j];
        double m = s / (double)D;
        double v = 0;
#pragma omp simd reduction(+ : v)
        for (size_t j = 0; j < D; j++) {
            double d = xr[j] - m;
            v += d * d;
        }
        float mf = (float)m;
        float rs = (float)(1.0 / sqrt(v / (double)D + a->eps));
#pragma omp simd
        for (size_t j = 0; j < D; j++)
            yr[j] = (xr[j] - mf) * rs * w[j] + b[j];
        a->mean[r] = mf;
        a->rstd[r] = rs;
    }
}

/* gy (R, D), w (D) -> gx (R, D) +=, and for block t's rows the partials
 * part[t] = (Σ_r gy·x̂ (D), Σ_r gy (D)) in double:
 *   x̂ = (x − mean)·rstd,  g = gy·w,
 *   gx = rstd·(g − mean_j(g) − x̂·mean_j(g·x̂)),
 *   gw = Σ_r gy·x̂,  gb = Σ_r gy  (partials added in block order). */
static void layernorm_backward_block(void *arg, int t, int nt)
{
    ln_args *a = arg;
    const float *w = a->w;
    size_t D = a->D, r0, r1;
    double *pw = a->part + (size_t)t * 2 * D, *pb = pw + D;
    if (t == 0)
        a->nt = nt;
    memset(pw, 0, 2 * D * sizeof(double));
    mspt_block(a->R, t, nt, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        const float *xr = a->x + r * D, *gr = a->gy + r * D;
        float m = a->mean[r], rs = a->rstd[r];
        float g_mean = 0, gx_mean = 0;
#pragma omp simd reduction(+ : g_mean, gx_mean)
        for (size_t j = 0; j < D; j++) {
            float xh = (xr[j] - m) * rs;
            float g = gr[j] * w[j];
            g_mean += g;
            gx_mean += g * xh;
            pw[j] += (double)gr[j] * xh;
            pb[j] += gr[j];
        }
        g_mean /= (float)D;
        gx_mean /= (float)D;
        if (a->gx) {
            float *gxr = a->gx + r * D;
#pragma omp simd
            for (size_t j = 0; j < D; j++) {
                float xh = (xr[j] - m) * rs;
                float g = gr[j] * w[j];
                gxr[j] += rs * (g - g_mean - xh * gx_mean);
            }
        }
    }
}

static void layernorm_backward(mspt_ctx *ctx, void *saved)
{
    layernorm_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    float *gx = mspt_grad(ctx, s->x);
    float *gw = mspt_grad(ctx, s->w);
    float *gb = mspt_grad(ctx, s->b);
    size_t D = s->D;
    ln_args a = {.gx = gx, .mean = s->mean, .rstd = s->rstd, .x = s->x->data,
                 .w = s->wd, .gy = s->y->grad, .R = s->R, .D = D, .nt = 1};
    a.part = mspt_ctx_alloc(ctx, (size_t)mspt_get_threads() * 2 * D *
                                     sizeof(double));
    if (!a.part)
        return;
    mspt_parallel(s->R * D, layernorm_backward_block, &a);
    for (size_t j = 0; j < D; j++) {
        double sw = 0, sb = 0;
        for (int k = 0; k < a.nt; k++) {
            sw += a.part[(size_t)k * 2 * D + j];
            sb += a.part[(size_t)k * 2 * D + D + j];
        }
        if (gw)
            gw[j] += (float)sw;
        if (gb)
            gb[j] += (float)sb;
    }
}

static int is_vector_of(const mspt_tensor *t, int D)
{
    return t->ndim == 1 && t->shape[0] == D;
}

mspt_tensor *mspt_layernorm(mspt_ctx *ctx, mspt_tensor *x, mspt_tensor *w,
                            mspt_tensor *b, float eps)
{
    if (!x)
        return NULL;
    int D = x->shape[x->ndim - 1];
    char sx[64], sp[64];
    if (w && !is_vector_of(w, D))
        return mspt_fail(ctx, "layernorm: weight %s does not match x %s "
                              "(last dim %d)", mspt_shape_str(w, sp, sizeof sp),
                         mspt_shape_str(x, sx, sizeof sx), D);
    if (b && !is_vector_of(b, D))
        return mspt_fail(ctx, "layernorm: bias %s does not match x %s "
                              "(last dim %d)", mspt_shape_str(b, sp, sizeof sp),
                         mspt_shape_str(x, sx, sizeof sx), D);
    if (!(eps >= 0.0f))
        return mspt_fail(ctx, "layernorm: eps = %g must be >= 0", (double)eps);
    size_t R = D ? x->numel / (size_t)D : 0;
    int needs = mspt_needs_grad(ctx, x) || mspt_needs_grad(ctx, w) ||
                mspt_needs_grad(ctx, b);
    mspt_tensor *y = mspt_op_output(ctx, x->ndim, x->shape, needs);
    float *mean = mspt_ctx_alloc(ctx, R * sizeof(float));
    float *rstd = mspt_ctx_alloc(ctx, R * sizeof(float));
    /* a missing w or b is ones / zeros, so the row loops have no branch */
    float *wd = w ? w->data : mspt_ctx_alloc(ctx, (size_t)D * sizeof(float));
    float *bd = b ? b->data : mspt_ctx_alloc(ctx, (size_t)D * sizeof(float));
    if (!y || !mean || !rstd || !wd || !bd)
        return NULL;
    for (int j = 0; j < D; j++) {
        if (!w)
            wd[j] = 1.0f;
        if (!b)
            bd[j] = 0.0f;
    }
    ln_args a = {.y = y->data, .mean = mean, .rstd = rstd, .x = x->data,
                 .w = wd, .b = bd, .R = R, .D = (size_t)D, .eps = eps};
    mspt_parallel(R * (size_t)D, layernorm_forward_block, &a);
    if (y->requires_grad) {
        layernorm_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (layernorm_saved){x, w, b, y, wd, mean, rstd, R, (size_t)D};
        mspt_tape_push(ctx, layernorm_backward, s);
    }
    return y;
}
