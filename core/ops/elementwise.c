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

typedef enum { OP_ADD, OP_SUB, OP_MUL } binop;
static const char *binop_name[] = {"add", "sub", "mul"};

typedef struct {
    mspt_tensor *a, *b, *y;
    size_t rows, nb;
} binop_saved;

/* The first three match binop. */
typedef enum { BC_ADD, BC_SUB, BC_MUL, BC_ACC_MUL } bcast_kind;

typedef struct {
    bcast_kind kind;
    float *out;
    const float *x, *b;
    size_t n, nb;
} bcast_args;

/* x (rows, nb), b (nb) -> out (rows, nb):
 *   out = x + b, x − b, x·b, or out += x·b (BC_ACC_MUL).
 * The flat range is cut in one block per thread; each block walks row
 * segments so the inner loops stay contiguous (and vectorise) whatever the
 * ratio of rows to nb. */
static void bcast_block(void *arg, int t, int nt)
{
    const bcast_args *a = arg;
    size_t nb = a->nb, i, end;
    mspt_block(a->n, t, nt, &i, &end);
    while (i < end) {
        size_t j = i % nb;
        size_t len = nb - j < end - i ? nb - j : end - i;
        float *o = a->out + i;
        const float *xs = a->x + i, *bs = a->b + j;
        switch (a->kind) {
        case BC_ADD:
            for (size_t k = 0; k < len; k++)
                o[k] = xs[k] + bs[k];
            break;
        case BC_SUB:
            for (size_t k = 0; k < len; k++)
                o[k] = xs[k] - bs[k];
            break;
        case BC_MUL:
            for (size_t k = 0; k < len; k++)
                o[k] = xs[k] * bs[k];
            break;
        case BC_ACC_MUL:
            for (size_t k = 0; k < len; k++)
                o[k] += xs[k] * bs[k];
            break;
        }
        i += len;
    }
}

static void bcast_kernel(bcast_kind kind, float *out, const float *x,
                         const float *b, size_t n, size_t nb)
{
    bcast_args a = {kind, out, x, b, n, nb};
    mspt_parallel(n, bcast_block, &a);
}

typedef struct {
    double *part;      /* (threads, nb): one partial per block */
    const float *gy, *a;
    size_t rows, nb;
    int nt;            /* blocks used, set by block 0 */
} colsum_args;

/* Block t of rows: part[t] (nb) = Σ_r gy[r, j] · (a ? a[r, j] : 1). */
static void colsum_block(void *arg, int t, int nt)
{
    colsum_args *c = arg;
    size_t nb = c->nb, r0, r1;
    double *p = c->part + (size_t)t * nb;
    if (t == 0)
        c->nt = nt;
    memset(p, 0, nb * sizeof(double));
    mspt_block(c->rows, t, nt, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        const float *g = c->gy + r * nb;
        if (c->a) {
            const float *ar = c->a + r * nb;
            for (size_t j = 0; j < nb; j++)
                p[j] += (double)g[j] * ar[j];
        } else {
            for (size_t j = 0; j < nb; j++)
                p[j] += g[j];
        }
    }
}

/* gb (nb) += sign · Σ_r gy[r, j] · (a ? a[r, j] : 1);  gy, a (rows, nb). */
static void column_sum(mspt_ctx *ctx, float *gb, const float *gy,
                       const float *a, float sign, size_t rows, size_t nb)
{
    colsum_args c = {mspt_ctx_alloc(ctx, (size_t)mspt_get_threads() * nb *
                                             sizeof(double)),
                     gy, a, rows, nb, 1};
    if (!c.part)
        return;
    mspt_parallel(rows * nb, colsum_block, &c);
    for (size_t j = 0; j < nb; j++) {
        double s = 0;
        for (int k = 0; k < c.nt; k++)
            s += c.part[(size_t)k * nb + j];
        gb[j] += sign * (float)s;
    }
}

/* Plain loops over n elements: y (n) op= x (n), x2 (n), s. */
typedef struct {
    float *y;
    const float *x, *x2;
    float s;
    size_t n;
} ew_args;

/* y += s·x */
static void axpy_block(void *arg, int t, int nt)
{
    const ew_args *a = arg;
    float *y = a->y;
    float s = a->s;
    const float *x = a->x;
    size_t i0, i1;
    mspt_block(a->n, t, nt, &i0, &i1);
    for (size_t i = i0; i < i1; i++)
        y[i] += s * x[i];
}

/* y += x·x2 */
static void mul_acc_block(void *arg, int t, int nt)
{
    const ew_args *a = arg;
    float *y = a->y;
    const float *x = a->x, *x2 = a->x2;
    size_t i0, i1;
    mspt_block(a->n, t, nt, &i0, &i1);
    for (size_t i = i0; i < i1; i++)
        y[i] += x[i] * x2[i];
}

/* y = s·x */
static void scale_block(void *arg, int t, int nt)
{
    const ew_args *a = arg;
    float *y = a->y;
    float s = a->s;
    const float *x = a->x;
    size_t i0, i1;
    mspt_block(a->n, t, nt, &i0, &i1);
    for (size_t i = i0; i < i1; i++)
        y[i] = s * x[i];
}

/* y = x + s */
static void shift_block(void *arg, int t, int nt)
{
    const ew_args *a = arg;
    float *y = a->y;
    float s = a->s;
    const float *x = a->x;
    size_t i0, i1;
    mspt_block(a->n, t, nt, &i0, &i1);
    for (size_t i = i0; i < i1; i++)
        y[i] = x[i] + s;
}

/* y (n) += s·x (n) */
static void axpy(float *y, float s, const float *x, size_t n)
{
    ew_args a = {.y = y, .x = x, .s = s, .n = n};
    mspt_parallel(n, axpy_block, &a);
}

/* add/sub: ga (rows, nb) += gy;  gb (nb) += ±Σ_r gy. */
static void addsub_backward(mspt_ctx *ctx, binop_saved *s, float sign)
{
    if (!s->y->grad)
        return; /* output unused by the loss */
    const float *gy = s->y->grad;
    size_t n = s->y->numel;
    float *ga = mspt_grad(ctx, s->a);
    if (ga)
        axpy(ga, 1.0f, gy, n); /* 1·g is exact: ga += gy */
    float *gb = mspt_grad(ctx, s->b);
    if (gb && s->rows == 1) {
        axpy(gb, sign, gy, n);
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
        ew_args e = {.y = gb, .x = gy, .x2 = a, .n = n};
        mspt_parallel(n, mul_acc_block, &e);
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
    if (ga)
        axpy(ga, sv->s, sv->y->grad, sv->y->numel);
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
    ew_args e = {.y = y->data, .x = a->data, .s = s, .n = a->numel};
    mspt_parallel(e.n, is_scale ? scale_block : shift_block, &e);
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
