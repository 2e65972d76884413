/* Mask ops (uint8 masks, nonzero = selected): masked_select, masked_fill,
 * replace_rows.  When an op records itself it copies the mask into the
 * arena, so the caller may reuse its buffer before backward. */
#include <mspt/ops.h>

#include <stdio.h>
#include <string.h>

#define PAR_MIN 32768 /* below this many elements, fork/join costs more */

static int par_blocks(size_t n)
{
    return n > PAR_MIN ? mspt_get_threads() : 1;
}

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
    size_t *first; /* (nblk) output index of each block's first selection */
    int nblk;
} select_saved;

/* Block k covers elements [n·k/nblk, n·(k+1)/nblk). */
static size_t block_start(size_t n, int k, int nblk)
{
    return n * (size_t)k / (size_t)nblk;
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
    const float *gy = s->y->grad;
    const uint8_t *m = s->mask;
    size_t n = s->x->numel;
    int nblk = s->nblk;
#pragma omp parallel for num_threads(nblk) schedule(static) if (nblk > 1)
    for (int k = 0; k < nblk; k++) {
        size_t j = s->first[k];
        for (size_t i = block_start(n, k, nblk); i < block_start(n, k + 1, nblk); i++)
            if (m[i])
                gx[i] += gy[j++];
    }
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
    int nblk = par_blocks(n);
    size_t *first = mspt_ctx_alloc(ctx, (size_t)(nblk + 1) * sizeof *first);
    if (!first)
        return NULL;
#pragma omp parallel for num_threads(nblk) schedule(static) if (nblk > 1)
    for (int k = 0; k < nblk; k++) {
        size_t c = 0;
        for (size_t i = block_start(n, k, nblk); i < block_start(n, k + 1, nblk); i++)
            c += mask[i] != 0;
        first[k + 1] = c;
    }
    first[0] = 0;
    for (int k = 0; k < nblk; k++)
        first[k + 1] += first[k];
    size_t count = first[nblk];
    if (count > (size_t)0x7fffffff)
        return mspt_fail(ctx, "masked_select: %zu selected elements", count);
    mspt_tensor *y = mspt_op_output(ctx, 1, (int[]){(int)count},
                                    mspt_needs_grad(ctx, x));
    if (!y)
        return NULL;
    const float *xd = x->data;
    float *yd = y->data;
#pragma omp parallel for num_threads(nblk) schedule(static) if (nblk > 1)
    for (int k = 0; k < nblk; k++) {
        size_t j = first[k];
        for (size_t i = block_start(n, k, nblk); i < block_start(n, k + 1, nblk); i++)
            if (mask[i])
                yd[j++] = xd[i];
    }
    if (y->requires_grad) {
        select_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        uint8_t *m = keep_mask(ctx, mask, n);
        if (!s || !m)
            return NULL;
        *s = (select_saved){x, y, m, first, nblk};
        mspt_tape_push(ctx, masked_select_backward, s);
    }
    return y;
}

/* ---- masked_fill --------------------------------------------------------- */

typedef struct {
    mspt_tensor *x, *y;
    uint8_t *mask;
} fill_saved;

/* gx (n) += gy (n) where not selected (filled elements are constants) */
static void masked_fill_backward(mspt_ctx *ctx, void *saved)
{
    fill_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    float *gx = mspt_grad(ctx, s->x);
    if (!gx)
        return;
    const float *gy = s->y->grad;
    const uint8_t *m = s->mask;
    size_t n = s->x->numel;
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        gx[i] += m[i] ? 0.0f : gy[i];
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
    const float *xd = x->data;
    float *yd = y->data;
    size_t n = x->numel;
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        yd[i] = mask[i] ? value : xd[i];
    if (y->requires_grad) {
        fill_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        uint8_t *m = keep_mask(ctx, mask, n);
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

/* gy (R, D) -> gx[r] += gy[r] for kept rows;  gv (D) += Σ_{replaced r} gy[r],
 * per-block partials in double added in block order. */
static void replace_rows_backward(mspt_ctx *ctx, void *saved)
{
    rows_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    float *gx = mspt_grad(ctx, s->x);
    float *gv = mspt_grad(ctx, s->v);
    const float *gy = s->y->grad;
    const uint8_t *m = s->row_mask;
    size_t R = s->R, D = s->D;
    int nblk = par_blocks(R * D);
    if ((size_t)nblk > R)
        nblk = R ? (int)R : 1;
    double *part = gv ? mspt_ctx_alloc(ctx, (size_t)nblk * D * sizeof(double))
                      : NULL;
    if (gv && !part)
        return;
#pragma omp parallel for num_threads(nblk) schedule(static) if (nblk > 1)
    for (int k = 0; k < nblk; k++) {
        double *p = part ? part + (size_t)k * D : NULL;
        if (p)
            memset(p, 0, D * sizeof(double));
        for (size_t r = block_start(R, k, nblk); r < block_start(R, k + 1, nblk); r++) {
            const float *g = gy + r * D;
            if (m[r] && p) {
                for (size_t j = 0; j < D; j++)
                    p[j] += g[j];
            } else if (!m[r] && gx) {
                float *gr = gx + r * D;
                for (size_t j = 0; j < D; j++)
                    gr[j] += g[j];
            }
        }
    }
    for (size_t j = 0; gv && j < D; j++) {
        double t = 0;
        for (int k = 0; k < nblk; k++)
            t += part[(size_t)k * D + j];
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
    const float *xd = x->data, *vd = v->data;
    float *yd = y->data;
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static) if (x->numel > PAR_MIN)
    for (size_t r = 0; r < R; r++)
        memcpy(yd + r * D, row_mask[r] ? vd : xd + r * D, (size_t)D * sizeof(float));
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
