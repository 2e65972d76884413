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

#define PAR_MIN 32768 /* below this many elements, fork/join costs more */

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

/* pred, target, mask (n) -> (Σ_selected f(d), count), in double: one
 * partial per block with eight lanes (independent add chains), blocks added
 * in order. */
static double loss_sum(mspt_ctx *ctx, const float *p, const float *t,
                       const uint8_t *mask, size_t n, loss_kind kind,
                       float beta, size_t *count)
{
    int nblk = n > PAR_MIN ? mspt_get_threads() : 1;
    double *part = mspt_ctx_alloc(ctx, (size_t)nblk * sizeof(double));
    size_t *cnt = mspt_ctx_alloc(ctx, (size_t)nblk * sizeof(size_t));
    if (!part || !cnt)
        return 0;
#pragma omp parallel for num_threads(nblk) schedule(static) if (nblk > 1)
    for (int k = 0; k < nblk; k++) {
        size_t i = n * (size_t)k / (size_t)nblk;
        size_t end = n * (size_t)(k + 1) / (size_t)nblk;
        double lane[8] = {0};
        size_t c = 0;
        for (; i + 8 <= end; i += 8)
            for (int l = 0; l < 8; l++) {
                int sel = !mask || mask[i + l];
                lane[l] += sel ? loss_f(kind, p[i + l] - t[i + l], beta) : 0.0f;
                c += (size_t)sel;
            }
        for (; i < end; i++) {
            int sel = !mask || mask[i];
            lane[0] += sel ? loss_f(kind, p[i] - t[i], beta) : 0.0f;
            c += (size_t)sel;
        }
        double s = 0;
        for (int l = 0; l < 8; l++)
            s += lane[l];
        part[k] = s;
        cnt[k] = c;
    }
    double s = 0;
    *count = 0;
    for (int k = 0; k < nblk; k++) {
        s += part[k];
        *count += cnt[k];
    }
    return s;
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
    const float *p = s->pred->data, *t = s->target->data;
    const uint8_t *mask = s->mask;
    float g = s->y->grad[0] / (float)s->count, beta = s->beta;
    loss_kind kind = s->kind;
    size_t n = s->pred->numel;
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i])
            continue;
        float gi = loss_df(kind, p[i] - t[i], beta) * g;
        if (gp)
            gp[i] += gi;
        if (gt)
            gt[i] -= gi;
    }
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
