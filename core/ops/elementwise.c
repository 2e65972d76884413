/* Elementwise arithmetic: add, sub, mul with trailing-suffix broadcast of b,
 * scale and add_scalar.
 *
 * Broadcast: b's shape, leading 1s dropped, must equal the last dims of a.
 * a is then seen as (rows, nb) and b as (nb), so b's gradient is a column
 * sum of (rows, nb), done in double over row blocks combined in a fixed
 * order (deterministic for a fixed thread count). */
#include <mspt/ops.h>

#include <stdio.h>
#include <string.h>

#define PAR_MIN 32768 /* below this many elements, fork/join costs more */

typedef enum { OP_ADD, OP_SUB, OP_MUL } binop;
static const char *binop_name[] = {"add", "sub", "mul"};

typedef struct {
    mspt_tensor *a, *b, *y;
    size_t rows, nb;
} binop_saved;

/* The first three match binop. */
typedef enum { BC_ADD, BC_SUB, BC_MUL, BC_ACC_MUL } bcast_kind;

/* x (rows, nb), b (nb) -> out (rows, nb):
 *   out = x + b, x − b, x·b, or out += x·b (BC_ACC_MUL).
 * The flat range is cut in one block per thread; each block walks row
 * segments so the inner loops stay contiguous (and vectorise) whatever the
 * ratio of rows to nb. */
static void bcast_kernel(bcast_kind kind, float *out, const float *x,
                         const float *b, size_t n, size_t nb)
{
    int nblk = n > PAR_MIN ? mspt_get_threads() : 1;
#pragma omp parallel for num_threads(nblk) schedule(static) if (nblk > 1)
    for (int k = 0; k < nblk; k++) {
        size_t i = n * (size_t)k / (size_t)nblk;
        size_t end = n * (size_t)(k + 1) / (size_t)nblk;
        while (i < end) {
            size_t j = i % nb;
            size_t len = nb - j < end - i ? nb - j : end - i;
            float *o = out + i;
            const float *xs = x + i, *bs = b + j;
            switch (kind) {
            case BC_ADD:
                for (size_t t = 0; t < len; t++)
                    o[t] = xs[t] + bs[t];
                break;
            case BC_SUB:
                for (size_t t = 0; t < len; t++)
                    o[t] = xs[t] - bs[t];
                break;
            case BC_MUL:
                for (size_t t = 0; t < len; t++)
                    o[t] = xs[t] * bs[t];
                break;
            case BC_ACC_MUL:
                for (size_t t = 0; t < len; t++)
                    o[t] += xs[t] * bs[t];
                break;
            }
            i += len;
        }
    }
}

/* gb (nb) += sign · Σ_r gy[r, j] · (a ? a[r, j] : 1);  gy, a (rows, nb). */
static void column_sum(mspt_ctx *ctx, float *gb, const float *gy,
                       const float *a, float sign, size_t rows, size_t nb)
{
    int nblk = rows * nb > PAR_MIN ? mspt_get_threads() : 1;
    if ((size_t)nblk > rows)
        nblk = (int)rows;
    double *part = mspt_ctx_alloc(ctx, (size_t)nblk * nb * sizeof(double));
    if (!part)
        return;
#pragma omp parallel for num_threads(nblk) schedule(static) if (nblk > 1)
    for (int k = 0; k < nblk; k++) {
        double *p = part + (size_t)k * nb;
        memset(p, 0, nb * sizeof(double));
        size_t r0 = rows * (size_t)k / (size_t)nblk;
        size_t r1 = rows * (size_t)(k + 1) / (size_t)nblk;
        for (size_t r = r0; r < r1; r++) {
            const float *g = gy + r * nb;
            if (a) {
                const float *ar = a + r * nb;
                for (size_t j = 0; j < nb; j++)
                    p[j] += (double)g[j] * ar[j];
            } else {
                for (size_t j = 0; j < nb; j++)
                    p[j] += g[j];
            }
        }
    }
    for (size_t j = 0; j < nb; j++) {
        double s = 0;
        for (int k = 0; k < nblk; k++)
            s += part[(size_t)k * nb + j];
        gb[j] += sign * (float)s;
    }
}

/* add/sub: ga (rows, nb) += gy;  gb (nb) += ±Σ_r gy. */
static void addsub_backward(mspt_ctx *ctx, binop_saved *s, float sign)
{
    if (!s->y->grad)
        return; /* output unused by the loss */
    const float *gy = s->y->grad;
    size_t n = s->y->numel;
    float *ga = mspt_grad(ctx, s->a);
    if (ga) {
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++)
            ga[i] += gy[i];
    }
    float *gb = mspt_grad(ctx, s->b);
    if (gb && s->rows == 1) {
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++)
            gb[i] += sign * gy[i];
    } else if (gb) {
        column_sum(ctx, gb, gy, NULL, sign, s->rows, s->nb);
    }
}

static void add_backward(mspt_ctx *ctx, void *saved)
{
    addsub_backward(ctx, saved, 1.0f);
}

static void sub_backward(mspt_ctx *ctx, void *saved)
{
    addsub_backward(ctx, saved, -1.0f);
}

/* mul: ga[r, j] += gy[r, j]·b[j];  gb[j] += Σ_r gy[r, j]·a[r, j]. */
static void mul_backward(mspt_ctx *ctx, void *saved)
{
    binop_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    const float *gy = s->y->grad, *a = s->a->data, *b = s->b->data;
    size_t rows = s->rows, nb = s->nb, n = s->y->numel;
    float *ga = mspt_grad(ctx, s->a);
    if (ga)
        bcast_kernel(BC_ACC_MUL, ga, gy, b, n, nb);
    float *gb = mspt_grad(ctx, s->b);
    if (gb && rows == 1) {
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++)
            gb[i] += gy[i] * a[i];
    } else if (gb) {
        column_sum(ctx, gb, gy, a, 1.0f, rows, nb);
    }
}

/* Is b (leading 1s dropped) a trailing suffix of a's shape? */
static int is_suffix(const mspt_tensor *a, const mspt_tensor *b)
{
    int lead = 0;
    while (lead < b->ndim && b->shape[lead] == 1)
        lead++;
    int nd = b->ndim - lead;
    if (nd > a->ndim)
        return 0;
    for (int i = 0; i < nd; i++)
        if (b->shape[lead + i] != a->shape[a->ndim - nd + i])
            return 0;
    return 1;
}

/* a (rows, nb), b (nb) -> y (rows, nb) with a's shape. */
static mspt_tensor *binary(mspt_ctx *ctx, mspt_tensor *a, mspt_tensor *b,
                           binop op)
{
    if (!a || !b)
        return NULL;
    if (!is_suffix(a, b)) {
        char sa[64], sb[64];
        return mspt_fail(ctx, "%s: b %s is not a trailing suffix of a %s",
                         binop_name[op], mspt_shape_str(b, sb, sizeof sb),
                         mspt_shape_str(a, sa, sizeof sa));
    }
    size_t nb = b->numel, rows = nb ? a->numel / nb : 0;
    int needs = mspt_needs_grad(ctx, a) || mspt_needs_grad(ctx, b);
    mspt_tensor *y = mspt_op_output(ctx, a->ndim, a->shape, needs);
    if (!y)
        return NULL;
    bcast_kernel((bcast_kind)op, y->data, a->data, b->data, a->numel, nb);
    if (y->requires_grad) {
        binop_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (binop_saved){a, b, y, rows, nb};
        mspt_backward_fn fn = op == OP_ADD   ? add_backward
                              : op == OP_SUB ? sub_backward
                                             : mul_backward;
        mspt_tape_push(ctx, fn, s);
    }
    return y;
}

mspt_tensor *mspt_add(mspt_ctx *ctx, mspt_tensor *a, mspt_tensor *b)
{
    return binary(ctx, a, b, OP_ADD);
}

mspt_tensor *mspt_sub(mspt_ctx *ctx, mspt_tensor *a, mspt_tensor *b)
{
    return binary(ctx, a, b, OP_SUB);
}

mspt_tensor *mspt_mul(mspt_ctx *ctx, mspt_tensor *a, mspt_tensor *b)
{
    return binary(ctx, a, b, OP_MUL);
}

/* ---- scalar ops: y = s·a and y = a + s --------------------------------- */

typedef struct {
    mspt_tensor *a, *y;
    float s;
} scalar_saved;

/* scale: ga (n) += s·gy (n) */
static void scale_backward(mspt_ctx *ctx, void *saved)
{
    scalar_saved *sv = saved;
    if (!sv->y->grad)
        return; /* output unused by the loss */
    float *ga = mspt_grad(ctx, sv->a);
    const float *gy = sv->y->grad;
    float s = sv->s;
    size_t n = sv->y->numel;
    if (!ga)
        return;
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        ga[i] += s * gy[i];
}

/* scale: y (n) = s·a (n);  add_scalar: y (n) = a (n) + s */
static mspt_tensor *scalar_op(mspt_ctx *ctx, mspt_tensor *a, float s,
                              int is_scale)
{
    if (!a)
        return NULL;
    mspt_tensor *y = mspt_op_output(ctx, a->ndim, a->shape,
                                    mspt_needs_grad(ctx, a));
    if (!y)
        return NULL;
    const float *ad = a->data;
    float *yd = y->data;
    size_t n = a->numel;
    if (is_scale) {
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++)
            yd[i] = s * ad[i];
    } else {
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++)
            yd[i] = ad[i] + s;
    }
    if (y->requires_grad) {
        scalar_saved *sv = mspt_ctx_alloc(ctx, sizeof *sv);
        if (!sv)
            return NULL;
        /* d(a + s)/da = 1: the same kernel with s = 1 */
        *sv = (scalar_saved){a, y, is_scale ? s : 1.0f};
        mspt_tape_push(ctx, scale_backward, sv);
    }
    return y;
}

mspt_tensor *mspt_scale(mspt_ctx *ctx, mspt_tensor *a, float s)
{
    return scalar_op(ctx, a, s, 1);
}

mspt_tensor *mspt_add_scalar(mspt_ctx *ctx, mspt_tensor *a, float s)
{
    return scalar_op(ctx, a, s, 0);
}
