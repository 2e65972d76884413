/* Depthwise causal conv1d over time, channels last (Mamba's conv1d).
 *
 * PyTorch: F.conv1d(x.transpose(1,2), w, b, padding=K-1, groups=D)[..., :L]
 * transposed back.  Channels-last keeps the inner loop over d contiguous, so
 * the weight is used transposed, wt (K, D). */
#include <mspt/ops.h>

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#else
static int omp_get_thread_num(void) { return 0; }
#endif

typedef struct {
    mspt_tensor *x, *w, *b, *y;
    float *wt; /* (K, D) */
} dwconv_saved;

/* x (B, L, D), wt (K, D), bias (D) or NULL -> y (B, L, D)
 * y[b,t,d] = bias[d] + Σ_k wt[k,d] · x[b, t−(K−1)+k, d]  (x = 0 before t=0) */
static void dwconv_forward(float *y, const float *x, const float *wt,
                           const float *bias, int B, int L, int D, int K)
{
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static)
    for (int r = 0; r < B * L; r++) {
        int t = r % L;
        float *yr = y + (size_t)r * D;
        if (bias)
            memcpy(yr, bias, (size_t)D * sizeof *yr);
        else
            memset(yr, 0, (size_t)D * sizeof *yr);
        for (int k = 0; k < K; k++) {
            int s = t - (K - 1) + k;
            if (s < 0)
                continue;
            const float *xs = x + (size_t)(r - t + s) * D;
            const float *wk = wt + (size_t)k * D;
#pragma omp simd
            for (int d = 0; d < D; d++)
                yr[d] += wk[d] * xs[d];
        }
    }
}

/* dy (B, L, D) -> dx (B, L, D) +=, and per-thread partial sums
 * pw (nth, K, D), pb (nth, D) of the weight and bias gradients, zeroed here
 * (any of dx, pw, pb may be NULL):
 * dx[b,s,d] += Σ_k wt[k,d] · dy[b, s+(K−1)−k, d]  (terms with index < L)
 * pw[k,d]    = Σ_{b,t} dy[b,t,d] · x[b, t−(K−1)+k, d];  pb[d] = Σ dy[b,t,d]
 * Rows go to threads by a static schedule, so each partial is a fixed sum. */
static void dwconv_backward(float *dx, float *pw, float *pb, const float *dy,
                            const float *x, const float *wt, int B, int L,
                            int D, int K, int nth)
{
    if (pw)
        memset(pw, 0, (size_t)nth * K * D * sizeof *pw);
    if (pb)
        memset(pb, 0, (size_t)nth * D * sizeof *pb);
#pragma omp parallel num_threads(nth)
    {
        float *tw = pw ? pw + (size_t)omp_get_thread_num() * K * D : NULL;
        float *tb = pb ? pb + (size_t)omp_get_thread_num() * D : NULL;
#pragma omp for schedule(static)
        for (int r = 0; r < B * L; r++) {
            int s = r % L;
            const float *dyr = dy + (size_t)r * D;
            float *dxr = dx ? dx + (size_t)r * D : NULL;
            if (tb)
#pragma omp simd
                for (int d = 0; d < D; d++)
                    tb[d] += dyr[d];
            for (int k = 0; k < K; k++) {
                /* dx: the output K−1−k steps later used x here with tap k */
                int t = s + (K - 1) - k;
                if (dxr && t < L) {
                    const float *dyt = dy + (size_t)(r - s + t) * D;
                    const float *wk = wt + (size_t)k * D;
#pragma omp simd
                    for (int d = 0; d < D; d++)
                        dxr[d] += wk[d] * dyt[d];
                }
                /* dw: this output used x from K−1−k steps earlier with tap k */
                int xs = s - (K - 1) + k;
                if (tw && xs >= 0) {
                    const float *xr = x + (size_t)(r - s + xs) * D;
                    float *twk = tw + (size_t)k * D;
#pragma omp simd
                    for (int d = 0; d < D; d++)
                        twk[d] += dyr[d] * xr[d];
                }
            }
        }
    }
}

static void dwconv_backward_fn(mspt_ctx *ctx, void *p)
{
    dwconv_saved *s = p;
    int B = s->x->shape[0], L = s->x->shape[1], D = s->x->shape[2];
    int K = s->w->shape[2], nth = mspt_get_threads();
    float *dx = mspt_grad(ctx, s->x);
    float *dw = mspt_grad(ctx, s->w);
    float *db = s->b ? mspt_grad(ctx, s->b) : NULL;
    float *dy = mspt_grad(ctx, s->y);
    float *pw = dw ? mspt_ctx_alloc(ctx, (size_t)nth * K * D * sizeof(float)) : NULL;
    float *pb = db ? mspt_ctx_alloc(ctx, (size_t)nth * D * sizeof(float)) : NULL;
    if (!dy || (dw && !pw) || (db && !pb))
        return;
    dwconv_backward(dx, pw, pb, dy, s->x->data, s->wt, B, L, D, K, nth);
    /* partials summed in thread order: deterministic */
    for (int th = 0; th < nth; th++)
        for (int d = 0; d < D; d++) {
            for (int k = 0; dw && k < K; k++)
                dw[(size_t)d * K + k] += pw[((size_t)th * K + k) * D + d];
            if (db)
                db[d] += pb[(size_t)th * D + d];
        }
}

mspt_tensor *mspt_dwconv1d_causal(mspt_ctx *ctx, mspt_tensor *x,
                                  mspt_tensor *w, mspt_tensor *b)
{
    if (!x || !w)
        return NULL;
    char s1[64], s2[64];
    if (x->ndim != 3 || w->ndim != 3 || w->shape[0] != x->shape[2] ||
        w->shape[1] != 1 || w->shape[2] < 1)
        return mspt_fail(ctx, "dwconv1d_causal: x %s (B,L,D) does not match "
                         "weight %s (D,1,K)", mspt_shape_str(x, s1, sizeof s1),
                         mspt_shape_str(w, s2, sizeof s2));
    if (b && (b->ndim != 1 || b->shape[0] != x->shape[2]))
        return mspt_fail(ctx, "dwconv1d_causal: x %s (B,L,D) does not match "
                         "bias %s (D)", mspt_shape_str(x, s1, sizeof s1),
                         mspt_shape_str(b, s2, sizeof s2));
    int B = x->shape[0], L = x->shape[1], D = x->shape[2], K = w->shape[2];
    int needs = mspt_needs_grad(ctx, x) || mspt_needs_grad(ctx, w) ||
                mspt_needs_grad(ctx, b);
    mspt_tensor *y = mspt_op_output(ctx, 3, x->shape, needs);
    float *wt = mspt_ctx_alloc(ctx, (size_t)K * D * sizeof(float));
    if (!y || !wt)
        return NULL;
    for (int d = 0; d < D; d++)
        for (int k = 0; k < K; k++)
            wt[(size_t)k * D + d] = w->data[(size_t)d * K + k];
    dwconv_forward(y->data, x->data, wt, b ? b->data : NULL, B, L, D, K);
    if (y->requires_grad) {
        dwconv_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (dwconv_saved){x, w, b, y, wt};
        mspt_tape_push(ctx, dwconv_backward_fn, s);
    }
    return y;
}
