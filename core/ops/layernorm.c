/* LayerNorm over the last dim, as torch.nn.functional.layer_norm:
 * y = (x − mean)·rstd·w + b,  rstd = 1/√(var + eps), biased variance.
 * Forward saves mean and rstd per row; backward is the fused closed form. */
#include <mspt/ops.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PAR_MIN 32768 /* below this many elements, fork/join costs more */

typedef struct {
    mspt_tensor *x, *w, *b, *y;
    const float *wd;    /* w's data, or ones when w is NULL */
    float *mean, *rstd; /* (R) */
    size_t R, D;
} layernorm_saved;

/* x (R, D), w (D), b (D) -> y (R, D), mean (R), rstd (R).
 * Row moments in double, two passes (exact enough for signals with a large
 * offset); the row loops are `omp simd` reductions, a fixed order. */
static void layernorm_forward(float *y, float *mean, float *rstd,
                              const float *x, const float *w, const float *b,
                              size_t R, size_t D, float eps)
{
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static) if (R * D > PAR_MIN)
    for (size_t r = 0; r < R; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
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
        float rs = (float)(1.0 / sqrt(v / (double)D + eps));
#pragma omp simd
        for (size_t j = 0; j < D; j++)
            yr[j] = (xr[j] - mf) * rs * w[j] + b[j];
        mean[r] = mf;
        rstd[r] = rs;
    }
}

/* gy (R, D), w (D) -> gx (R, D) +=, gw (D) +=, gb (D) += (each may be
 * NULL):
 *   x̂ = (x − mean)·rstd,  g = gy·w,
 *   gx = rstd·(g − mean_j(g) − x̂·mean_j(g·x̂)),
 *   gw = Σ_r gy·x̂,  gb = Σ_r gy.
 * Rows are cut in blocks; gw/gb are per-block partials in double (part,
 * nblk × 2D) added in block order. */
static void layernorm_backward_kernel(float *gx, float *gw, float *gb,
                                      double *part, int nblk, const float *gy,
                                      const float *x, const float *w,
                                      const float *mean, const float *rstd,
                                      size_t R, size_t D)
{
#pragma omp parallel for num_threads(nblk) schedule(static) if (nblk > 1)
    for (int k = 0; k < nblk; k++) {
        double *pw = part + (size_t)k * 2 * D, *pb = pw + D;
        memset(pw, 0, 2 * D * sizeof(double));
        size_t r0 = R * (size_t)k / (size_t)nblk;
        size_t r1 = R * (size_t)(k + 1) / (size_t)nblk;
        for (size_t r = r0; r < r1; r++) {
            const float *xr = x + r * D, *gr = gy + r * D;
            float m = mean[r], rs = rstd[r];
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
            if (gx) {
                float *gxr = gx + r * D;
#pragma omp simd
                for (size_t j = 0; j < D; j++) {
                    float xh = (xr[j] - m) * rs;
                    float g = gr[j] * w[j];
                    gxr[j] += rs * (g - g_mean - xh * gx_mean);
                }
            }
        }
    }
    for (size_t j = 0; j < D; j++) {
        double sw = 0, sb = 0;
        for (int k = 0; k < nblk; k++) {
            sw += part[(size_t)k * 2 * D + j];
            sb += part[(size_t)k * 2 * D + D + j];
        }
        if (gw)
            gw[j] += (float)sw;
        if (gb)
            gb[j] += (float)sb;
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
    int nblk = s->R * s->D > PAR_MIN ? mspt_get_threads() : 1;
    if ((size_t)nblk > s->R)
        nblk = s->R ? (int)s->R : 1;
    double *part = mspt_ctx_alloc(ctx, (size_t)nblk * 2 * s->D * sizeof(double));
    if (!part)
        return;
    layernorm_backward_kernel(gx, gw, gb, part, nblk, s->y->grad, s->x->data,
                              s->wd, s->mean, s->rstd, s->R, s->D);
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
    layernorm_forward(y->data, mean, rstd, x->data, wd, bd, R, (size_t)D, eps);
    if (y->requires_grad) {
        layernorm_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (layernorm_saved){x, w, b, y, wd, mean, rstd, R, (size_t)D};
        mspt_tape_push(ctx, layernorm_backward, s);
    }
    return y;
}
