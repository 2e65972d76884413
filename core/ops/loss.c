/* Masked regression losses with PyTorch's mean reduction over the selected
 * elements: F.l1_loss / mse_loss / smooth_l1_loss(x[mask], y[mask]).
 *
 *   d = pred − target,  loss = (1/n) Σ_selected f(d),  n = #selected
 *   l1:        f = |d|                         f' = sign(d), sign(0) = 0
 *   mse:       f = d²                          f' = 2d
 *   smooth_l1: f = ½d²/β if |d| < β, else |d| − ½β
 *                                              f' = d/β, else sign(d)
 * β = 0 makes smooth_l1 exactly l1 (including f'(0) = 0).  An empty
 * selection gives 0 and zero gradients.  pred and target each get
 * ±f'(d)/n·g when they require a gradient. */
#include <mspt/ops.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef enum { LOSS_L1, LOSS_MSE, LOSS_SMOOTH_L1 } loss_kind;
static const char *loss_name[] = {"l1_loss", "mse_loss", "smooth_l1_loss"};

typedef struct {
    mspt_tensor *pred, *target, *y;
    uint8_t *mask; /* NULL: every element */
    loss_kind kind;
    float beta;
    size_t count;
} loss_saved;

static inline float sign0(float d)
{
    return (float)((d > 0.0f) - (d < 0.0f));
}

static inline float loss_f(loss_kind kind, float d, float beta)
{
    float ad = fabsf(d);
    switch (kind) {
    case LOSS_L1:
        return ad;
    case LOSS_MSE:
        return d * d;
    default:
        return ad < beta ? 0.5f * d * d / beta : ad - 0.5f * beta;
    }
}

static inline float loss_df(loss_kind kind, float d, float beta)
{
    switch (kind) {
    case LOSS_L1:
        return sign0(d);
    case LOSS_MSE:
        return 2.0f * d;
    default:
        return fabsf(d) < beta ? d / beta : sign0(d);
    }
}

/* Arguments of the loss kernels. */
typedef struct {
    const float *p, *t;
    const uint8_t *mask;    /* NULL: every element */
    float *gp, *gt;         /* backward: gradients or NULL */
    float g, beta;          /* backward: gy/n */
    loss_kind kind;
    size_t n;
    double *part;           /* forward: (threads) partial sums */
    size_t *cnt;            /* forward: (threads) partial counts */
    int nt;                 /* forward: blocks used, set by block 0 */
} loss_args;

/* Block t of pred, target, mask (n) -> part[t] = Σ_selected f(d) in double
 * with eight lanes (independent add chains), cnt[t] = #selected. */
static void loss_sum_block(void *arg, int t, int nt)
{
    loss_args *a = arg;
    const float *p = a->p, *tg = a->t;
    const uint8_t *mask = a->mask;
    loss_kind kind = a->kind;
    float beta = a->beta;
    size_t i, end;
    if (t == 0)
        a->nt = nt;
    mspt_block(a->n, t, nt, &i, &end);
    double lane[8] = {0};
    size_t c = 0;
    for (; i + 8 <= end; i += 8)
        for (int l = 0; l < 8; l++) {
            int sel = !mask || mask[i + l];
            lane[l] += sel ? loss_f(kind, p[i + l] - tg[i + l], beta) : 0.0f;
            c += (size_t)sel;
        }
    for (; i < end; i++) {
        int sel = !mask || mask[i];
        lane[0] += sel ? loss_f(kind, p[i] - tg[i], beta) : 0.0f;
        c += (size_t)sel;
    }
    double s = 0;
    for (int l = 0; l < 8; l++)
        s += lane[l];
    a->part[t] = s;
    a->cnt[t] = c;
}

/* pred, target, mask (n) -> (Σ_selected f(d), count), blocks added in
 * order. */
static double loss_sum(mspt_ctx *ctx, const float *p, const float *t,
                       const uint8_t *mask, size_t n, loss_kind kind,
                       float beta, size_t *count)
{
    int nth = mspt_get_threads();
    loss_args a = {.p = p, .t = t, .mask = mask, .beta = beta, .kind = kind,
                   .n = n, .nt = 1};
    a.part = mspt_ctx_alloc(ctx, (size_t)nth * sizeof(double));
    a.cnt = mspt_ctx_alloc(ctx, (size_t)nth * sizeof(size_t));
    if (!a.part || !a.cnt)
        return 0;
    mspt_parallel(n, loss_sum_block, &a);
    double s = 0;
    *count = 0;
    for (int k = 0; k < a.nt; k++) {
        s += a.part[k];
        *count += a.cnt[k];
    }
    return s;
}

/* gp (n) += f'(d)·g,  gt (n) −= f'(d)·g, on selected elements of block t */
static void loss_grad_block(void *arg, int t, int nt)
{
    const loss_args *a = arg;
    const float *p = a->p, *tg = a->t;
    const uint8_t *mask = a->mask;
    float *gp = a->gp, *gt = a->gt;
    float g = a->g, beta = a->beta;
    loss_kind kind = a->kind;
    size_t i0, i1;
    mspt_block(a->n, t, nt, &i0, &i1);
    for (size_t i = i0; i < i1; i++) {
        if (mask && !mask[i])
            continue;
        float gi = loss_df(kind, p[i] - tg[i], beta) * g;
        if (gp)
            gp[i] += gi;
        if (gt)
            gt[i] -= gi;
    }
}

/* g = gy/n;  gp (n) += f'(d)·g,  gt (n) −= f'(d)·g, on selected elements */
static void loss_backward(mspt_ctx *ctx, void *saved)
{
    loss_saved *s = saved;
    if (!s->y->grad)
        return; /* output unused by the loss */
    float *gp = mspt_grad(ctx, s->pred);
    float *gt = mspt_grad(ctx, s->target);
    if (s->count == 0 || (!gp && !gt))
        return;
    loss_args a = {.p = s->pred->data, .t = s->target->data, .mask = s->mask,
                   .gp = gp, .gt = gt, .g = s->y->grad[0] / (float)s->count,
                   .beta = s->beta, .kind = s->kind, .n = s->pred->numel};
    mspt_parallel(a.n, loss_grad_block, &a);
}

/* pred, target (any, same shape), mask (numel) or NULL -> loss (1) */
static mspt_tensor *masked_loss(mspt_ctx *ctx, mspt_tensor *pred,
                                mspt_tensor *target, const uint8_t *mask,
                                loss_kind kind, float beta)
{
    if (!pred || !target)
        return NULL;
    if (!mspt_tensor_same_shape(pred, target)) {
        char sp[64], st[64];
        return mspt_fail(ctx, "%s: pred %s and target %s differ in shape",
                         loss_name[kind], mspt_shape_str(pred, sp, sizeof sp),
                         mspt_shape_str(target, st, sizeof st));
    }
    if (!(beta >= 0.0f))
        return mspt_fail(ctx, "%s: beta = %g must be >= 0", loss_name[kind],
                         (double)beta);
    int needs = mspt_needs_grad(ctx, pred) || mspt_needs_grad(ctx, target);
    mspt_tensor *y = mspt_op_output(ctx, 1, (int[]){1}, needs);
    if (!y)
        return NULL;
    size_t n = pred->numel, count = 0;
    double sum = loss_sum(ctx, pred->data, target->data, mask, n, kind, beta,
                          &count);
    y->data[0] = count ? (float)(sum / (double)count) : 0.0f;
    if (y->requires_grad) {
        loss_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        uint8_t *m = mask ? mspt_ctx_alloc(ctx, n) : NULL;
        if (!s || (mask && !m))
            return NULL;
        if (m) /* the caller may reuse its mask before backward */
            memcpy(m, mask, n);
        *s = (loss_saved){pred, target, y, m, kind, beta, count};
        mspt_tape_push(ctx, loss_backward, s);
    }
    return y;
}

mspt_tensor *mspt_l1_loss(mspt_ctx *ctx, mspt_tensor *pred,
                          mspt_tensor *target, const uint8_t *mask)
{
    return masked_loss(ctx, pred, target, mask, LOSS_L1, 0.0f);
}

mspt_tensor *mspt_mse_loss(mspt_ctx *ctx, mspt_tensor *pred,
                           mspt_tensor *target, const uint8_t *mask)
{
    return masked_loss(ctx, pred, target, mask, LOSS_MSE, 0.0f);
}

mspt_tensor *mspt_smooth_l1_loss(mspt_ctx *ctx, mspt_tensor *pred,
                                 mspt_tensor *target, const uint8_t *mask,
                                 float beta)
{
    return masked_loss(ctx, pred, target, mask, LOSS_SMOOTH_L1, beta);
}
