/* Reductions: sum and mean to shape (1), mean over one dim.
 * Sums are in double: one partial per block of elements, blocks added in
 * a fixed order, so the result is the same on every run for a given thread
 * count. */
#include <mspt/ops.h>

#include <stdio.h>

/* Σ x[i0..i1) in double, eight independent lanes so the adds pipeline
 * (a single chain is bound by add latency, not memory). */
static double sum_range(const float *x, size_t i0, size_t i1)
{
    double lane[8] = {0};
    size_t i = i0;
    for (; i + 8 <= i1; i += 8)
        for (int l = 0; l < 8; l++)
            lane[l] += x[i + l];
    double s = 0;
    for (; i < i1; i++)
        s += x[i];
    for (int l = 0; l < 8; l++)
        s += lane[l];
    return s;
}

/* Arguments of the reduction kernels. */
typedef struct {
    float *y;          /* mean_dim forward: y;  backward: gx */
    const float *x;    /* mean_dim forward: x;  backward: gy */
    double *part;      /* sum: (threads) partial sums */
    float g;           /* total's backward: the constant added to gx */
    size_t n, outer, inner;
    int nt;            /* sum: blocks used, set by block 0 */
} reduce_args;

static void sum_block(void *arg, int t, int nt)
{
    reduce_args *a = arg;
    size_t i0, i1;
    if (t == 0)
        a->nt = nt;
    mspt_block(a->n, t, nt, &i0, &i1);
    a->part[t] = sum_range(a->x, i0, i1);
}

/* Σ x (n) in double. */
static double sum_kernel(mspt_ctx *ctx, const float *x, size_t n)
{
    reduce_args a = {.x = x, .n = n, .nt = 1};
    a.part = mspt_ctx_alloc(ctx, (size_t)mspt_get_threads() * sizeof(double));
    if (!a.part)
        return 0;
    mspt_parallel(n, sum_block, &a);
    double s = 0;
    for (int k = 0; k < a.nt; k++)
        s += a.part[k];
    return s;
}

/* gx (n) += g, block t */
static void fill_grad_block(void *arg, int t, int nt)
{
    const reduce_args *a = arg;
    float *gx = a->y;
    float g = a->g;
    size_t i0, i1;
    mspt_block(a->n, t, nt, &i0, &i1);
    for (size_t i = i0; i < i1; i++)
        gx[i] += g;
}

typedef struct {
    mspt_tensor *x, *y;
    float scale; /* 1 for sum, 1/n for mean */
} total_saved;

/* gx (n) += scale · gy (1) */
static void total_backward(mspt_ctx *ctx, void *saved)
{
    total_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    float *gx = mspt_grad(ctx, s->x);
    if (!gx)
        return;
    reduce_args a = {.y = gx, .g = s->scale * s->y->grad[0], .n = s->x->numel};
    mspt_parallel(a.n, fill_grad_block, &a);
}

/* x (any) -> y (1) = Σ x (mean: Σ x / n; NaN for an empty x, as PyTorch) */
static mspt_tensor *total(mspt_ctx *ctx, mspt_tensor *x, int mean)
{
    if (!x)
        return NULL;
    mspt_tensor *y = mspt_op_output(ctx, 1, (int[]){1},
                                    mspt_needs_grad(ctx, x));
    if (!y)
        return NULL;
    double s = sum_kernel(ctx, x->data, x->numel);
    y->data[0] = (float)(mean ? s / (double)x->numel : s);
    if (y->requires_grad) {
        total_saved *sv = mspt_ctx_alloc(ctx, sizeof *sv);
        if (!sv)
            return NULL;
        *sv = (total_saved){x, y, mean ? 1.0f / (float)x->numel : 1.0f};
        mspt_tape_push(ctx, total_backward, sv);
    }
    return y;
}

mspt_tensor *mspt_sum(mspt_ctx *ctx, mspt_tensor *x)
{
    return total(ctx, x, 0);
}

mspt_tensor *mspt_mean(mspt_ctx *ctx, mspt_tensor *x)
{
    return total(ctx, x, 1);
}

/* ---- mean over one dim ------------------------------------------------- */

typedef struct {
    mspt_tensor *x, *y;
    size_t outer, n, inner;
} mean_dim_saved;

/* x (outer, n, inner) -> y (outer, inner) = mean over n, in double; the
 * outputs r of block t */
static void mean_dim_block(void *arg, int t, int nt)
{
    const reduce_args *a = arg;
    size_t n = a->n, inner = a->inner, r0, r1;
    mspt_block(a->outer * inner, t, nt, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        size_t o = r / inner, i = r % inner;
        const float *xs = a->x + o * n * inner + i;
        double s = 0;
        for (size_t k = 0; k < n; k++)
            s += xs[k * inner];
        a->y[r] = (float)(s / (double)n);
    }
}

/* gx[o, k, i] += gy[o, i] / n, rows (o, k) of block t */
static void mean_dim_grad_block(void *arg, int t, int nt)
{
    const reduce_args *a = arg;
    size_t n = a->n, inner = a->inner, r0, r1;
    float inv = 1.0f / (float)n;
    mspt_block(a->outer * n, t, nt, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        const float *g = a->x + (r / n) * inner;
        float *gr = a->y + r * inner;
        for (size_t i = 0; i < inner; i++)
            gr[i] += g[i] * inv;
    }
}

static void mean_dim_backward(mspt_ctx *ctx, void *saved)
{
    mean_dim_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    float *gx = mspt_grad(ctx, s->x);
    if (!gx)
        return;
    reduce_args a = {.y = gx, .x = s->y->grad, .n = s->n, .outer = s->outer,
                     .inner = s->inner};
    mspt_parallel(s->outer * s->n * s->inner, mean_dim_grad_block, &a);
}

mspt_tensor *mspt_mean_dim(mspt_ctx *ctx, mspt_tensor *x, int dim)
{
    if (!x)
        return NULL;
    int d = dim < 0 ? dim + x->ndim : dim;
    if (d < 0 || d >= x->ndim) {
        char sx[64];
        return mspt_fail(ctx, "mean_dim: dim %d out of range for x %s", dim,
                         mspt_shape_str(x, sx, sizeof sx));
    }
    /* the dim is removed; a 1-D x gives shape (1) */
    int shape[MSPT_MAX_DIMS], nd = 0;
    for (int k = 0; k < x->ndim; k++)
        if (k != d)
            shape[nd++] = x->shape[k];
    if (nd == 0)
        shape[nd++] = 1;
    mspt_tensor *y = mspt_op_output(ctx, nd, shape, mspt_needs_grad(ctx, x));
    if (!y)
        return NULL;
    size_t outer = mspt_shape_numel(d, x->shape), n = (size_t)x->shape[d];
    size_t inner = mspt_shape_numel(x->ndim - d - 1, x->shape + d + 1);
    reduce_args a = {.y = y->data, .x = x->data, .n = n, .outer = outer,
                     .inner = inner};
    mspt_parallel(outer * n * inner, mean_dim_block, &a);
    if (y->requires_grad) {
        mean_dim_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (mean_dim_saved){x, y, outer, n, inner};
        mspt_tape_push(ctx, mean_dim_backward, s);
    }
    return y;
}
