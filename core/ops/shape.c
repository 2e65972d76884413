/* Shape ops: reshape (a view), and copies with backward: permute,
 * transpose, flip, slice, split, concat.  Dims may be negative (from the
 * end), as in PyTorch. */
#include <mspt/ops.h>

#include <stdio.h>
#include <string.h>

/* dim in [−ndim, ndim) -> [0, ndim), or −1 if out of range. */
static int norm_dim(int dim, int ndim)
{
    if (dim < 0)
        dim += ndim;
    return dim >= 0 && dim < ndim ? dim : -1;
}

/* Elements before / after dim: x seen as (outer, shape[dim], inner). */
static size_t outer_of(const mspt_tensor *x, int dim)
{
    return mspt_shape_numel(dim, x->shape);
}

static size_t inner_of(const mspt_tensor *x, int dim)
{
    return mspt_shape_numel(x->ndim - dim - 1, x->shape + dim + 1);
}

typedef struct {
    float *dst;
    const float *src;
    size_t dstride, sstride, nb, blen;
    int accumulate;
} copy_args;

/* dst block b (blen floats at b·dstride) = (or +=) src block b (at
 * b·sstride), for b < nb.  The flat range is cut in one piece per thread and
 * each piece walks block segments, so the work splits evenly whether there
 * are few long blocks or many short ones. */
static void copy_block(void *arg, int t, int nt)
{
    const copy_args *a = arg;
    size_t blen = a->blen, i, end;
    mspt_block(a->nb * blen, t, nt, &i, &end);
    while (i < end) {
        size_t b = i / blen, j = i % blen;
        size_t len = blen - j < end - i ? blen - j : end - i;
        float *d = a->dst + b * a->dstride + j;
        const float *s = a->src + b * a->sstride + j;
        if (a->accumulate)
            for (size_t k = 0; k < len; k++)
                d[k] += s[k];
        else
            memcpy(d, s, len * sizeof(float));
        i += len;
    }
}

static void copy_blocks(float *dst, size_t dstride, const float *src,
                        size_t sstride, size_t nb, size_t blen, int accumulate)
{
    copy_args a = {dst, src, dstride, sstride, nb, blen, accumulate};
    mspt_parallel(nb * blen, copy_block, &a);
}

/* ---- reshape: a view ------------------------------------------------------ */

/* x (any) -> view (shape), same data; its gradient is its root's buffer
 * (mspt_grad resolves `base`), so no tape entry is needed. */
mspt_tensor *mspt_reshape(mspt_ctx *ctx, mspt_tensor *x, int ndim,
                          const int *shape)
{
    if (!x)
        return NULL;
    char sx[64];
    if (ndim < 1 || ndim > MSPT_MAX_DIMS)
        return mspt_fail(ctx, "reshape: %d dims requested for x %s (1..%d "
                              "supported)", ndim,
                         mspt_shape_str(x, sx, sizeof sx), MSPT_MAX_DIMS);
    int s[MSPT_MAX_DIMS], infer = -1;
    size_t known = 1;
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1 && infer < 0) {
            infer = i;
        } else if (s[i] < 0) {
            return mspt_fail(ctx, "reshape: bad dim %d at %d for x %s (one "
                                  "dim may be -1)", s[i], i,
                             mspt_shape_str(x, sx, sizeof sx));
        } else {
            known *= (size_t)s[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || x->numel % known != 0)
            return mspt_fail(ctx, "reshape: cannot infer dim %d of x %s "
                                  "(%zu elements) from the others", infer,
                             mspt_shape_str(x, sx, sizeof sx), x->numel);
        s[infer] = (int)(x->numel / known);
        known *= (size_t)s[infer];
    }
    mspt_tensor view = {.ndim = ndim};
    memcpy(view.shape, s, (size_t)ndim * sizeof *s);
    if (known != x->numel) {
        char sv[64];
        return mspt_fail(ctx, "reshape: x %s (%zu elements) cannot be viewed "
                              "as %s (%zu elements)",
                         mspt_shape_str(x, sx, sizeof sx), x->numel,
                         mspt_shape_str(&view, sv, sizeof sv), known);
    }
    mspt_tensor *v = mspt_ctx_alloc(ctx, sizeof *v);
    if (!v)
        return NULL;
    *v = view;
    v->numel = known;
    v->data = x->data;
    v->requires_grad = mspt_needs_grad(ctx, x);
    v->base = x->base ? x->base : x;
    return v;
}

/* ---- permute / transpose ----------------------------------------------- */

typedef struct {
    mspt_tensor *x, *y;
    int perm[MSPT_MAX_DIMS];
} permute_saved;

typedef struct {
    float *dst;
    const float *src;
    int nd, accumulate;
    int ds[MSPT_MAX_DIMS];         /* dst's shape */
    size_t stride[MSPT_MAX_DIMS];  /* src step per dst index */
    size_t rows, cols;
} permute_args;

/* Rows [r0, r1) of block t of dst (rows, cols): decode the first row index
 * once, then step it like an odometer. */
static void permute_block(void *arg, int t, int nt)
{
    const permute_args *a = arg;
    int nd = a->nd;
    const int *ds = a->ds;
    const size_t *stride = a->stride;
    size_t cols = a->cols, cstride = stride[nd - 1], r0, r1;
    mspt_block(a->rows, t, nt, &r0, &r1);
    int idx[MSPT_MAX_DIMS] = {0};
    size_t rem = r0, off = 0;
    for (int d = nd - 2; d >= 0; d--) {
        idx[d] = (int)(rem % (size_t)ds[d]);
        rem /= (size_t)ds[d];
        off += (size_t)idx[d] * stride[d];
    }
    for (size_t r = r0; r < r1; r++) {
        float *o = a->dst + r * cols;
        const float *s = a->src + off;
        if (a->accumulate)
            for (size_t c = 0; c < cols; c++)
                o[c] += s[c * cstride];
        else
            for (size_t c = 0; c < cols; c++)
                o[c] = s[c * cstride];
        for (int d = nd - 2; d >= 0; d--) { /* next row */
            off += stride[d];
            if (++idx[d] < ds[d])
                break;
            off -= (size_t)ds[d] * stride[d];
            idx[d] = 0;
        }
    }
}

/* src (shape ss, nd dims) -> dst (shape ss[perm[0]], …, ss[perm[nd−1]]):
 * dst[i0, …, i_{nd−1}] = (or +=) src at Σ_k i_k · stride_src[perm[k]].
 * Rows of dst (all but its last dim) are split into one block per thread. */
static void permute_kernel(float *dst, const float *src, int nd,
                           const int *ss, const int *perm, int accumulate)
{
    permute_args a = {.dst = dst, .src = src, .nd = nd,
                      .accumulate = accumulate};
    size_t sstride[MSPT_MAX_DIMS];
    sstride[nd - 1] = 1;
    for (int k = nd - 2; k >= 0; k--)
        sstride[k] = sstride[k + 1] * (size_t)ss[k + 1];
    for (int k = 0; k < nd; k++) {
        a.ds[k] = ss[perm[k]];
        a.stride[k] = sstride[perm[k]];
    }
    a.cols = (size_t)a.ds[nd - 1];
    a.rows = mspt_shape_numel(nd - 1, a.ds);
    if (a.rows * a.cols == 0)
        return;
    mspt_parallel(a.rows * a.cols, permute_block, &a);
}

/* gx (x's shape) += gy permuted back by the inverse permutation */
static void permute_backward(mspt_ctx *ctx, void *saved)
{
    permute_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    float *gx = mspt_grad(ctx, s->x);
    if (!gx)
        return;
    int inv[MSPT_MAX_DIMS];
    for (int k = 0; k < s->x->ndim; k++)
        inv[s->perm[k]] = k;
    permute_kernel(gx, s->y->grad, s->y->ndim, s->y->shape, inv, 1);
}

mspt_tensor *mspt_permute(mspt_ctx *ctx, mspt_tensor *x, const int *perm)
{
    if (!x)
        return NULL;
    int nd = x->ndim, seen = 0, p[MSPT_MAX_DIMS], shape[MSPT_MAX_DIMS];
    for (int k = 0; k < nd; k++) {
        p[k] = norm_dim(perm[k], nd);
        if (p[k] < 0 || (seen & (1 << p[k]))) {
            char sx[64], sp[64];
            size_t off = 0;
            for (int i = 0; i < nd; i++)
                off += (size_t)snprintf(sp + off, sizeof sp - off,
                                        i ? ",%d" : "(%d", perm[i]);
            snprintf(sp + off, sizeof sp - off, ")");
            return mspt_fail(ctx, "permute: %s is not a permutation of the "
                                  "%d dims of x %s", sp, nd,
                             mspt_shape_str(x, sx, sizeof sx));
        }
        seen |= 1 << p[k];
        shape[k] = x->shape[p[k]];
    }
    mspt_tensor *y = mspt_op_output(ctx, nd, shape, mspt_needs_grad(ctx, x));
    if (!y)
        return NULL;
    permute_kernel(y->data, x->data, nd, x->shape, p, 0);
    if (y->requires_grad) {
        permute_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        s->x = x;
        s->y = y;
        memcpy(s->perm, p, sizeof p);
        mspt_tape_push(ctx, permute_backward, s);
    }
    return y;
}

mspt_tensor *mspt_transpose(mspt_ctx *ctx, mspt_tensor *x, int d0, int d1)
{
    if (!x)
        return NULL;
    int a = norm_dim(d0, x->ndim), b = norm_dim(d1, x->ndim);
    if (a < 0 || b < 0) {
        char sx[64];
        return mspt_fail(ctx, "transpose: dims %d, %d out of range for x %s",
                         d0, d1, mspt_shape_str(x, sx, sizeof sx));
    }
    int perm[MSPT_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++)
        perm[k] = k;
    perm[a] = b;
    perm[b] = a;
    return mspt_permute(ctx, x, perm);
}

/* ---- flip ---------------------------------------------------------------- */

typedef struct {
    mspt_tensor *x, *y;
    size_t outer, n, inner;
} flip_saved;

typedef struct {
    float *dst;
    const float *src;
    size_t outer, n, inner;
    int accumulate;
} flip_args;

/* src (outer, n, inner) -> dst[o, i, :] = (or +=) src[o, n − 1 − i, :],
 * rows (o, i) of block t */
static void flip_block(void *arg, int t, int nt)
{
    const flip_args *a = arg;
    size_t n = a->n, inner = a->inner, r0, r1;
    mspt_block(a->outer * n, t, nt, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        size_t o = r / n, i = r % n;
        float *d = a->dst + r * inner;
        const float *s = a->src + (o * n + (n - 1 - i)) * inner;
        if (a->accumulate)
            for (size_t j = 0; j < inner; j++)
                d[j] += s[j];
        else
            memcpy(d, s, inner * sizeof(float));
    }
}

static void flip_kernel(float *dst, const float *src, size_t outer, size_t n,
                        size_t inner, int accumulate)
{
    flip_args a = {dst, src, outer, n, inner, accumulate};
    mspt_parallel(outer * n * inner, flip_block, &a);
}

/* flip is its own inverse: gx += flip(gy) */
static void flip_backward(mspt_ctx *ctx, void *saved)
{
    flip_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    float *gx = mspt_grad(ctx, s->x);
    if (gx)
        flip_kernel(gx, s->y->grad, s->outer, s->n, s->inner, 1);
}

mspt_tensor *mspt_flip(mspt_ctx *ctx, mspt_tensor *x, int dim)
{
    if (!x)
        return NULL;
    int d = norm_dim(dim, x->ndim);
    if (d < 0) {
        char sx[64];
        return mspt_fail(ctx, "flip: dim %d out of range for x %s", dim,
                         mspt_shape_str(x, sx, sizeof sx));
    }
    mspt_tensor *y = mspt_op_output(ctx, x->ndim, x->shape,
                                    mspt_needs_grad(ctx, x));
    if (!y)
        return NULL;
    size_t outer = outer_of(x, d), n = (size_t)x->shape[d],
           inner = inner_of(x, d);
    flip_kernel(y->data, x->data, outer, n, inner, 0);
    if (y->requires_grad) {
        flip_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (flip_saved){x, y, outer, n, inner};
        mspt_tape_push(ctx, flip_backward, s);
    }
    return y;
}

/* ---- slice and split ----------------------------------------------------- */

typedef struct {
    mspt_tensor *x, *y;
    size_t outer, n, inner, start, len;
} slice_saved;

/* gx[o, start + i, :] += gy[o, i, :];  gy (outer, len, inner) */
static void slice_backward(mspt_ctx *ctx, void *saved)
{
    slice_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    float *gx = mspt_grad(ctx, s->x);
    if (gx)
        copy_blocks(gx + s->start * s->inner, s->n * s->inner, s->y->grad,
                    s->len * s->inner, s->outer, s->len * s->inner, 1);
}

/* x (outer, n, inner) -> y (outer, len, inner) = x[:, start:start+len, :] */
mspt_tensor *mspt_slice(mspt_ctx *ctx, mspt_tensor *x, int dim, int start,
                        int len)
{
    if (!x)
        return NULL;
    int d = norm_dim(dim, x->ndim);
    char sx[64];
    if (d < 0)
        return mspt_fail(ctx, "slice: dim %d out of range for x %s", dim,
                         mspt_shape_str(x, sx, sizeof sx));
    if (start < 0 || len < 0 || start > x->shape[d] - len)
        return mspt_fail(ctx, "slice: [%d, %d + %d) out of range for dim %d "
                              "of x %s", start, start, len, dim,
                         mspt_shape_str(x, sx, sizeof sx));
    int shape[MSPT_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[d] = len;
    mspt_tensor *y = mspt_op_output(ctx, x->ndim, shape,
                                    mspt_needs_grad(ctx, x));
    if (!y)
        return NULL;
    size_t outer = outer_of(x, d), n = (size_t)x->shape[d],
           inner = inner_of(x, d);
    copy_blocks(y->data, (size_t)len * inner, x->data + (size_t)start * inner,
                n * inner, outer, (size_t)len * inner, 0);
    if (y->requires_grad) {
        slice_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (slice_saved){x, y, outer, n, inner, (size_t)start, (size_t)len};
        mspt_tape_push(ctx, slice_backward, s);
    }
    return y;
}

/* n slices of consecutive ranges; each is its own op on the tape. */
int mspt_split(mspt_ctx *ctx, mspt_tensor *x, int dim, int n,
               const int *sizes, mspt_tensor **out)
{
    for (int i = 0; i < n; i++)
        out[i] = NULL;
    if (!x)
        return -1;
    int d = norm_dim(dim, x->ndim);
    char sx[64];
    if (d < 0) {
        mspt_fail(ctx, "split: dim %d out of range for x %s", dim,
                  mspt_shape_str(x, sx, sizeof sx));
        return -1;
    }
    long total = 0;
    int bad = n < 1;
    for (int i = 0; i < n; i++) {
        bad |= sizes[i] < 0;
        total += sizes[i];
    }
    if (bad || total != x->shape[d]) {
        mspt_fail(ctx, "split: %d sizes summing to %ld do not cover dim %d "
                       "of x %s", n, total, dim,
                  mspt_shape_str(x, sx, sizeof sx));
        return -1;
    }
    int start = 0;
    for (int i = 0; i < n; i++) {
        out[i] = mspt_slice(ctx, x, d, start, sizes[i]);
        if (!out[i])
            return -1;
        start += sizes[i];
    }
    return 0;
}

/* ---- concat -------------------------------------------------------------- */

typedef struct {
    mspt_tensor **xs, *y;
    int n;
    size_t outer, N, inner; /* y (outer, N, inner) */
} concat_saved;

/* gxs[i] (outer, n_i, inner) += gy[:, off_i:off_i+n_i, :] */
static void concat_backward(mspt_ctx *ctx, void *saved)
{
    concat_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    size_t off = 0;
    for (int i = 0; i < s->n; i++) {
        mspt_tensor *x = s->xs[i];
        size_t blen = x->numel / (s->outer ? s->outer : 1);
        float *gx = mspt_grad(ctx, x);
        if (gx)
            copy_blocks(gx, blen, s->y->grad + off, s->N * s->inner, s->outer,
                        blen, 1);
        off += blen;
    }
}

/* xs[i] (outer, n_i, inner) -> y (outer, Σ n_i, inner) */
mspt_tensor *mspt_concat(mspt_ctx *ctx, int n, mspt_tensor **xs, int dim)
{
    if (n < 1)
        return mspt_fail(ctx, "concat: needs at least one tensor (got %d)", n);
    for (int i = 0; i < n; i++)
        if (!xs[i])
            return NULL;
    mspt_tensor *x0 = xs[0];
    int d = norm_dim(dim, x0->ndim);
    char s0[64], si[64];
    if (d < 0)
        return mspt_fail(ctx, "concat: dim %d out of range for xs[0] %s", dim,
                         mspt_shape_str(x0, s0, sizeof s0));
    int shape[MSPT_MAX_DIMS], needs = 0;
    memcpy(shape, x0->shape, sizeof shape);
    shape[d] = 0;
    for (int i = 0; i < n; i++) {
        mspt_tensor *x = xs[i];
        int same = x->ndim == x0->ndim;
        for (int k = 0; same && k < x0->ndim; k++)
            same = k == d || x->shape[k] == x0->shape[k];
        if (!same)
            return mspt_fail(ctx, "concat: xs[%d] %s does not match xs[0] %s "
                                  "outside dim %d", i,
                             mspt_shape_str(x, si, sizeof si),
                             mspt_shape_str(x0, s0, sizeof s0), dim);
        shape[d] += x->shape[d];
        needs |= mspt_needs_grad(ctx, x);
    }
    mspt_tensor *y = mspt_op_output(ctx, x0->ndim, shape, needs);
    if (!y)
        return NULL;
    size_t outer = outer_of(x0, d), inner = inner_of(x0, d);
    size_t N = (size_t)shape[d], off = 0;
    for (int i = 0; i < n; i++) {
        size_t blen = (size_t)xs[i]->shape[d] * inner;
        copy_blocks(y->data + off, N * inner, xs[i]->data, blen, outer, blen,
                    0);
        off += blen;
    }
    if (y->requires_grad) {
        concat_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        mspt_tensor **keep = mspt_ctx_alloc(ctx, (size_t)n * sizeof *keep);
        if (!s || !keep)
            return NULL;
        memcpy(keep, xs, (size_t)n * sizeof *keep); /* caller's array may go */
        *s = (concat_saved){keep, y, n, outer, N, inner};
        mspt_tape_push(ctx, concat_backward, s);
    }
    return y;
}
