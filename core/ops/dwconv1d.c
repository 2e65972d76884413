/* Depthwise causal conv1d over time, channels last (Mamba's conv1d).
 *
 * PyTorch: F.conv1d(x.transpose(1,2), w, b, padding=K-1, groups=D)[..., :L]
 * transposed back.  Channels-last keeps the inner loop over d contiguous, so
 * the weight is used transposed, wt (K, D). */
#include <mspt/ops.h>

#include <string.h>

typedef struct {
    mspt_tensor *x, *w, *b, *y;
    float *wt; /* (K, D) */
} dwconv_saved;

typedef struct {
    float *y, *dx;     /* forward output; backward dx or NULL */
    float *pw, *pb;    /* backward: (threads, K, D), (threads, D) or NULL */
    const float *x, *wt, *bias, *dy;
    int B, L, D, K;
    int nt;            /* backward: blocks used, set by block 0 */
} dwconv_args;

/* Work measure: split whenever there are two rows, as the op always did. */
static size_t rows_work(int rows)
{
    return rows > 1 ? MSPT_PAR_MIN : 0;
}

/* x (B, L, D), wt (K, D), bias (D) or NULL -> y (B, L, D), rows of block t
 * y[b,t,d] = bias[d] + Σ_k wt[k,d] · x[b, t−(K−1)+k, d]  (x = 0 before t=0) */
static void dwconv_forward_block(void *arg, int t, int nt)
{
    const dwconv_args *a = arg;
    int L = a->L, D = a->D, K = a->K;
    size_t r0, r1;
    mspt_block((size_t)a->B * L, t, nt, &r0, &r1);
    for (int r = (int)r0; r < (int)r1; r++) {
        int tt = r % L;
        float *yr = a->y + (size_t)r * D;
        if (a->bias)
            memcpy(yr, a->bias, (size_t)D * sizeof *yr);
        else
            memset(yr, 0, (size_t)D * sizeof *yr);
        for (int k = 0; k < K; k++) {
            int s = tt - (K - 1) + k;
            if (s < 0)
                continue;
            const float *xs = a->x + (size_t)(r - tt + s) * D;
            const float *wk = a->wt + (size_t)k * D;
#pragma omp simd
            for (int d = 0; d < D; d++)
                yr[d] += wk[d] * xs[d];
        }
    }
}

/* dy (B, L, D) -> dx (B, L, D) +=, and block t's partial sums pw[t] (K, D),
 * pb[t] (D) of the weight and bias gradients, zeroed here (any of dx, pw,
 * pb may be NULL), over the rows of block t:
 * dx[b,s,d] += Σ_k wt[k,d] · dy[b, s+(K−1)−k, d]  (terms with index < L)
 * pw[k,d]    = Σ_{b,t} dy[b,t,d] · x[b, t−(K−1)+k, d];  pb[d] = Σ dy[b,t,d] */
static void dwconv_backward_block(void *arg, int t, int nt)
{
    dwconv_args *a = arg;
    int L = a->L, D = a->D, K = a->K;
    const float *dy = a->dy;
    float *tw = a->pw ? a->pw + (size_t)t * K * D : NULL;
    float *tb = a->pb ? a->pb + (size_t)t * D : NULL;
    size_t r0, r1;
    if (t == 0)
        a->nt = nt;
    if (tw)
        memset(tw, 0, (size_t)K * D * sizeof *tw);
    if (tb)
        memset(tb, 0, (size_t)D * sizeof *tb);
    mspt_block((size_t)a->B * L, t, nt, &r0, &r1);
    for (int r = (int)r0; r < (int)r1; r++) {
        int s = r % L;
        const float *dyr = dy + (size_t)r * D;
        float *dxr = a->dx ? a->dx + (size_t)r * D : NULL;
        if (tb)
#pragma omp simd
            for (int d = 0; d < D; d++)
                tb[d] += dyr[d];
        for (int k = 0; k < K; k++) {
            /* dx: the output K−1−k steps later used x here with tap k */
            int to = s + (K - 1) - k;
            if (dxr && to < L) {
                const float *dyt = dy + (size_t)(r - s + to) * D;
                const float *wk = a->wt + (size_t)k * D;
#pragma omp simd
                for (int d = 0; d < D; d++)
                    dxr[d] += wk[d] * dyt[d];
            }
            /* dw: this output used x from K−1−k steps earlier with tap k */
            int xs = s - (K - 1) + k;
            if (tw && xs >= 0) {
                const float *xr = a->x + (size_t)(r - s + xs) * D;
                float *twk = tw + (size_t)k * D;
#pragma omp simd
                for (int d = 0; d < D; d++)
                    twk[d] += dyr[d] * xr[d];
            }
        }
    }
}

static void dwconv_backward_fn(mspt_ctx *ctx, void *p)
{
    dwconv_saved *s = p;
    int B = s->x->shape[0], L = s->x->shape[1], D = s->x->shape[2];
    int K = s->w->shape[2], nth = mspt_get_threads();
    float *dw = mspt_grad(ctx, s->w);
    float *db = s->b ? mspt_grad(ctx, s->b) : NULL;
    dwconv_args a = {.dx = mspt_grad(ctx, s->x), .x = s->x->data,
                     .wt = s->wt, .dy = mspt_grad(ctx, s->y), .B = B, .L = L,
                     .D = D, .K = K, .nt = 1};
    a.pw = dw ? mspt_ctx_alloc(ctx, (size_t)nth * K * D * sizeof(float)) : NULL;
    a.pb = db ? mspt_ctx_alloc(ctx, (size_t)nth * D * sizeof(float)) : NULL;
    if (!a.dy || (dw && !a.pw) || (db && !a.pb))
        return;
    mspt_parallel(rows_work(B * L), dwconv_backward_block, &a);
    /* partials summed in block order: deterministic */
    for (int th = 0; th < a.nt; th++)
        for (int d = 0; d < D; d++) {
            for (int k = 0; dw && k < K; k++)
                dw[(size_t)d * K + k] += a.pw[((size_t)th * K + k) * D + d];
            if (db)
                db[d] += a.pb[(size_t)th * D + d];
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
    dwconv_args a = {.y = y->data, .x = x->data, .wt = wt,
                     .bias = b ? b->data : NULL, .B = B, .L = L, .D = D, .K = K};
    mspt_parallel(rows_work(B * L), dwconv_forward_block, &a);
    if (y->requires_grad) {
        dwconv_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (dwconv_saved){x, w, b, y, wt};
        mspt_tape_push(ctx, dwconv_backward_fn, s);
    }
    return y;
}
