/* Rotary position embedding, interleaved pairs (2i, 2i+1), by token index.
 *
 * Angle n·base^(−2i/hd) is computed in double once per (n, i) into an arena
 * table, so large n keeps full float accuracy; backward is the inverse
 * rotation (the transpose of the 2×2 rotation). */
#include <mspt/ops.h>

#include <math.h>
#include <string.h>

typedef struct {
    mspt_tensor *x, *y;
    float *cs; /* (N, hd/2, 2): cos, sin */
} rotary_saved;

typedef struct {
    float *y;
    const float *x;
    float *cs;  /* (N, hd/2, 2): cos, sin */
    int BH, N, hd;
    float sign, base;
} rotary_args;

/* x (BH, N, hd), cs (N, hd/2, 2) -> y (BH, N, hd) +=, rows of block t;
 * sign −1 rotates back:
 * y[2i]   += x[2i]·cos − sign·x[2i+1]·sin
 * y[2i+1] += sign·x[2i]·sin + x[2i+1]·cos */
static void rotary_block(void *arg, int t, int nt)
{
    const rotary_args *a = arg;
    int N = a->N, hd = a->hd;
    float sign = a->sign;
    size_t r0, r1;
    mspt_block((size_t)a->BH * N, t, nt, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        const float *c = a->cs + (r % (size_t)N) * hd; /* hd/2 (cos, sin) pairs */
        const float *xr = a->x + r * hd;
        float *yr = a->y + r * hd;
#pragma omp simd
        for (int i = 0; i < hd / 2; i++) {
            float co = c[2 * i], si = sign * c[2 * i + 1];
            float x0 = xr[2 * i], x1 = xr[2 * i + 1];
            yr[2 * i] += x0 * co - x1 * si;
            yr[2 * i + 1] += x0 * si + x1 * co;
        }
    }
}

/* cs (N, hd/2, 2): angle n·base^(−2i/hd) in double, tokens of block t */
static void rotary_table_block(void *arg, int t, int nt)
{
    const rotary_args *a = arg;
    int hd = a->hd;
    size_t n0, n1;
    mspt_block((size_t)a->N, t, nt, &n0, &n1);
    for (size_t n = n0; n < n1; n++)
        for (int i = 0; i < hd / 2; i++) {
            double angle = (double)n * pow((double)a->base, -2.0 * i / hd);
            a->cs[n * hd + 2 * i] = (float)cos(angle);
            a->cs[n * hd + 2 * i + 1] = (float)sin(angle);
        }
}

/* Work measure of both loops: split whenever there are two rows, as the
 * op always did (no size threshold was ever measured for it). */
static size_t rows_work(size_t rows)
{
    return rows > 1 ? MSPT_PAR_MIN : 0;
}

static void rotary_backward_fn(mspt_ctx *ctx, void *p)
{
    rotary_saved *s = p;
    float *dx = mspt_grad(ctx, s->x), *dy = mspt_grad(ctx, s->y);
    if (!dx || !dy)
        return;
    rotary_args a = {dx, dy, s->cs, s->x->shape[0] * s->x->shape[1],
                     s->x->shape[2], s->x->shape[3], -1.0f, 0.0f};
    mspt_parallel(rows_work((size_t)a.BH * a.N), rotary_block, &a);
}

mspt_tensor *mspt_rotary(mspt_ctx *ctx, mspt_tensor *x, float base)
{
    if (!x)
        return NULL;
    char s1[64];
    if (x->ndim != 4 || x->shape[3] % 2 != 0)
        return mspt_fail(ctx, "rotary: x %s must be (B,H,N,hd) with hd even",
                         mspt_shape_str(x, s1, sizeof s1));
    if (!(base > 0.0f))
        return mspt_fail(ctx, "rotary: base %g must be positive", base);
    int N = x->shape[2], hd = x->shape[3];
    mspt_tensor *y = mspt_op_output(ctx, 4, x->shape, mspt_needs_grad(ctx, x));
    float *cs = mspt_ctx_alloc(ctx, (size_t)N * hd * sizeof(float));
    if (!y || !cs)
        return NULL;
    rotary_args a = {y->data, x->data, cs, x->shape[0] * x->shape[1], N, hd,
                     1.0f, base};
    mspt_parallel(rows_work((size_t)N), rotary_table_block, &a);
    memset(y->data, 0, y->numel * sizeof(float));
    mspt_parallel(rows_work((size_t)a.BH * N), rotary_block, &a);
    if (y->requires_grad) {
        rotary_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (rotary_saved){x, y, cs};
        mspt_tape_push(ctx, rotary_backward_fn, s);
    }
    return y;
}
