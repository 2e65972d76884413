/* Mask ops (uint8 masks, nonzero = selected): masked_select, masked_fill,
 * replace_rows.  When an op records itself it copies the mask into the
 * arena, so the caller may reuse its buffer before backward. */
#include <mspt/ops.h>

#include <stdio.h>
#include <string.h>

static uint8_t *keep_mask(mspt_ctx *ctx, const uint8_t *mask, size_t n)
{
    uint8_t *m = mspt_ctx_alloc(ctx, n);
    if (m)
        memcpy(m, mask, n);
    return m;
}

/* ---- masked_select --------------------------------------------------- */

typedef struct {
    mspt_tensor *x, *y;
    uint8_t *mask;
    size_t *first; /* (nblk + 1) output index of each block's first selection */
    int nblk;
} select_saved;

/* Block k covers elements [n·k/nblk, n·(k+1)/nblk). */
static size_t block_start(size_t n, int k, int nblk)
{
    return n * (size_t)k / (size_t)nblk;
}

/* The passes of masked_select over x, mask (n) in nblk blocks: the count
 * pass cuts one block per thread and sets nblk; the copy and gradient
 * passes reuse that cut, whatever threads they get. */
typedef struct {
    const float *src; /* copy: x (n);  gradient: gy (count) */
    float *dst;       /* copy: y (count);  gradient: gx (n) */
    const uint8_t *mask;
    size_t *first;
    size_t n;
    int nblk;
} select_args;

/* first[t + 1] = #selected in block t */
static void select_count_block(void *arg, int t, int nt)
{
    select_args *a = arg;
    size_t c = 0;
    if (t == 0)
        a->nblk = nt;
    size_t i0, i1;
    mspt_block(a->n, t, nt, &i0, &i1); /* = block_start(n, t, nt) */
    for (size_t i = i0; i < i1; i++)
        c += a->mask[i] != 0;
    a->first[t + 1] = c;
}

/* y[j] = x[i] for the j-th selected i, blocks [k0, k1) of nblk */
static void select_copy_block(void *arg, int t, int nt)
{
    const select_args *a = arg;
    const uint8_t *m = a->mask;
    size_t k0, k1, n = a->n;
    mspt_block((size_t)a->nblk, t, nt, &k0, &k1);
    for (size_t k = k0; k < k1; k++) {
        size_t j = a->first[k], i1 = block_start(n, (int)k + 1, a->nblk);
        for (size_t i = block_start(n, (int)k, a->nblk); i < i1; i++)
            if (m[i])
                a->dst[j++] = a->src[i];
    }
}

/* gx[i] += gy[j] for the j-th selected i, blocks [k0, k1) of nblk */
static void select_grad_block(void *arg, int t, int nt)
{
    const select_args *a = arg;
    const uint8_t *m = a->mask;
    size_t k0, k1, n = a->n;
    mspt_block((size_t)a->nblk, t, nt, &k0, &k1);
    for (size_t k = k0; k < k1; k++) {
        size_t j = a->first[k], i1 = block_start(n, (int)k + 1, a->nblk);
        for (size_t i = block_start(n, (int)k, a->nblk); i < i1; i++)
            if (m[i])
                a->dst[i] += a->src[j++];
    }
}

/* gx[i] += gy[j] for the j-th selected i;  gy (count) */
static void masked_select_backward(mspt_ctx *ctx, void *saved)
{
    select_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    float *gx = mspt_grad(ctx, s->x);
    if (!gx)
        return;
    select_args a = {s->y->grad, gx, s->mask, s->first, s->x->numel, s->nblk};
    mspt_parallel(a.n, select_grad_block, &a);
}

/* x (n), mask (n) -> y (count): two passes, count per block then copy from
 * each block's offset, so the blocks run in parallel. */
mspt_tensor *mspt_masked_select(mspt_ctx *ctx, mspt_tensor *x,
                                const uint8_t *mask)
{
    if (!x)
        return NULL;
    if (!mask)
        return mspt_fail(ctx, "masked_select: mask is NULL");
    size_t n = x->numel;
    select_args a = {.src = x->data, .mask = mask, .n = n, .nblk = 1};
    a.first = mspt_ctx_alloc(ctx, ((size_t)mspt_get_threads() + 1) *
                                      sizeof *a.first);
    if (!a.first)
        return NULL;
    mspt_parallel(n, select_count_block, &a);
    a.first[0] = 0;
    for (int k = 0; k < a.nblk; k++)
        a.first[k + 1] += a.first[k];
    size_t count = a.first[a.nblk];
    if (count > (size_t)0x7fffffff)
        return mspt_fail(ctx, "masked_select: %zu selected elements", count);
    mspt_tensor *y = mspt_op_output(ctx, 1, (int[]){(int)count},
                                    mspt_needs_grad(ctx, x));
    if (!y)
        return NULL;
    a.dst = y->data;
    mspt_parallel(n, select_copy_block, &a);
    if (y->requires_grad) {
        select_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        uint8_t *m = keep_mask(ctx, mask, n);
        if (!s || !m)
            return NULL;
        *s = (select_saved){x, y, m, a.first, a.nblk};
        mspt_tape_push(ctx, masked_select_backward, s);
    }
    return y;
}

/* ---- masked_fill --------------------------------------------------------- */

typedef struct {
    mspt_tensor *x, *y;
    uint8_t *mask;
} fill_saved;

/* Arguments of masked_fill's kernels. */
typedef struct {
    float *y;
    const float *x;
    const uint8_t *mask;
    float value;
    size_t n;
} fill_args;

/* y (n) = mask ? value : x, block t */
static void fill_block(void *arg, int t, int nt)
{
    const fill_args *a = arg;
    float *y = a->y;
    const float *x = a->x;
    const uint8_t *m = a->mask;
    float value = a->value;
    size_t i0, i1;
    mspt_block(a->n, t, nt, &i0, &i1);
    for (size_t i = i0; i < i1; i++)
        y[i] = m[i] ? value : x[i];
}

/* gx (n) += gy (n) where not selected, block t (x: gy, y: gx) */
static void fill_grad_block(void *arg, int t, int nt)
{
    const fill_args *a = arg;
    float *gx = a->y;
    const float *gy = a->x;
    const uint8_t *m = a->mask;
    size_t i0, i1;
    mspt_block(a->n, t, nt, &i0, &i1);
    for (size_t i = i0; i < i1; i++)
        gx[i] += m[i] ? 0.0f : gy[i];
}

/* gx (n) += gy (n) where not selected (filled elements are constants) */
static void masked_fill_backward(mspt_ctx *ctx, void *saved)
{
    fill_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    float *gx = mspt_grad(ctx, s->x);
    if (!gx)
        return;
    fill_args a = {gx, s->y->grad, s->mask, 0.0f, s->x->numel};
    mspt_parallel(a.n, fill_grad_block, &a);
}

/* x (n), mask (n) -> y (n) = mask ? value : x */
mspt_tensor *mspt_masked_fill(mspt_ctx *ctx, mspt_tensor *x,
                              const uint8_t *mask, float value)
{
    if (!x)
        return NULL;
    if (!mask)
        return mspt_fail(ctx, "masked_fill: mask is NULL");
    mspt_tensor *y = mspt_op_output(ctx, x->ndim, x->shape,
                                    mspt_needs_grad(ctx, x));
    if (!y)
        return NULL;
    fill_args a = {y->data, x->data, mask, value, x->numel};
    mspt_parallel(a.n, fill_block, &a);
    if (y->requires_grad) {
        fill_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        uint8_t *m = keep_mask(ctx, mask, a.n);
        if (!s || !m)
            return NULL;
        *s = (fill_saved){x, y, m};
        mspt_tape_push(ctx, masked_fill_backward, s);
    }
    return y;
}

/* ---- replace_rows -------------------------------------------------------- */

typedef struct {
    mspt_tensor *x, *v, *y;
    uint8_t *row_mask;
    size_t R, D;
} rows_saved;

/* Arguments of replace_rows' kernels. */
typedef struct {
    float *y, *gx;           /* forward output; backward gx or NULL */
    const float *x, *v, *gy;
    const uint8_t *m;        /* (R) */
    double *part;            /* backward: (threads, D) gv partials or NULL */
    size_t R, D;
    int nt;                  /* backward: blocks used, set by block 0 */
} rows_args;

/* y[r] = m[r] ? v : x[r] for the rows of block t */
static void rows_block(void *arg, int t, int nt)
{
    const rows_args *a = arg;
    size_t D = a->D, r0, r1;
    mspt_block(a->R, t, nt, &r0, &r1);
    for (size_t r = r0; r < r1; r++)
        memcpy(a->y + r * D, a->m[r] ? a->v : a->x + r * D, D * sizeof(float));
}

/* Rows of block t: gx[r] += gy[r] for kept rows, part[t] (D) = Σ gy[r]
 * over replaced rows, in double. */
static void rows_grad_block(void *arg, int t, int nt)
{
    rows_args *a = arg;
    size_t D = a->D, r0, r1;
    double *p = a->part ? a->part + (size_t)t * D : NULL;
    if (t == 0)
        a->nt = nt;
    if (p)
        memset(p, 0, D * sizeof(double));
    mspt_block(a->R, t, nt, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        const float *g = a->gy + r * D;
        if (a->m[r] && p) {
            for (size_t j = 0; j < D; j++)
                p[j] += g[j];
        } else if (!a->m[r] && a->gx) {
            float *gr = a->gx + r * D;
            for (size_t j = 0; j < D; j++)
                gr[j] += g[j];
        }
    }
}

/* gy (R, D) -> gx[r] += gy[r] for kept rows;  gv (D) += Σ_{replaced r} gy[r],
 * per-block partials in double added in block order. */
static void replace_rows_backward(mspt_ctx *ctx, void *saved)
{
    rows_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    float *gv = mspt_grad(ctx, s->v);
    size_t D = s->D;
    rows_args a = {.gx = mspt_grad(ctx, s->x), .gy = s->y->grad,
                   .m = s->row_mask, .R = s->R, .D = D, .nt = 1};
    if (gv) {
        a.part = mspt_ctx_alloc(ctx, (size_t)mspt_get_threads() * D *
                                         sizeof(double));
        if (!a.part)
            return;
    }
    mspt_parallel(s->R * D, rows_grad_block, &a);
    for (size_t j = 0; gv && j < D; j++) {
        double t = 0;
        for (int k = 0; k < a.nt; k++)
            t += a.part[(size_t)k * D + j];
        gv[j] += (float)t;
    }
}

/* x (R, D) (any leading dims), row_mask (R), v (D) (any leading 1s)
 * -> y (R, D): y[r] = row_mask[r] ? v : x[r] */
mspt_tensor *mspt_replace_rows(mspt_ctx *ctx, mspt_tensor *x,
                               const uint8_t *row_mask, mspt_tensor *v)
{
    if (!x || !v)
        return NULL;
    if (!row_mask)
        return mspt_fail(ctx, "replace_rows: row_mask is NULL");
    int D = x->shape[x->ndim - 1];
    if (v->shape[v->ndim - 1] != D || v->numel != (size_t)D) {
        char sx[64], sv[64];
        return mspt_fail(ctx, "replace_rows: v %s is not one row of x %s",
                         mspt_shape_str(v, sv, sizeof sv),
                         mspt_shape_str(x, sx, sizeof sx));
    }
    size_t R = D ? x->numel / (size_t)D : 0;
    int needs = mspt_needs_grad(ctx, x) || mspt_needs_grad(ctx, v);
    mspt_tensor *y = mspt_op_output(ctx, x->ndim, x->shape, needs);
    if (!y)
        return NULL;
    rows_args a = {.y = y->data, .x = x->data, .v = v->data, .m = row_mask,
                   .R = R, .D = (size_t)D};
    mspt_parallel(x->numel, rows_block, &a);
    if (y->requires_grad) {
        rows_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        uint8_t *m = keep_mask(ctx, row_mask, R);
        if (!s || !m)
            return NULL;
        *s = (rows_saved){x, v, y, m, R, (size_t)D};
        mspt_tape_push(ctx, replace_rows_backward, s);
    }
    return y;
}
