/* Classification metrics with torchmetrics' definitions, see clf_metrics.h. */
#include "task/clf_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t confusion_len(const mspt_clf_metrics *m)
{
    return m->mode == MSPT_CLF_MULTILABEL ? (size_t)m->K * 4 : (size_t)m->K * m->K;
}

int mspt_clf_init(mspt_clf_metrics *m, int K, mspt_clf_mode mode, mspt_error *err)
{
    memset(m, 0, sizeof *m);
    if (mode != MSPT_CLF_BINARY && mode != MSPT_CLF_MULTICLASS &&
        mode != MSPT_CLF_MULTILABEL)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "clf_metrics: unknown mode %d",
                              (int)mode);
    if (mode == MSPT_CLF_BINARY && K != 2)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "clf_metrics: binary classification has 2 classes, not %d", K);
    int lo = mode == MSPT_CLF_MULTILABEL ? 1 : 2;
    if (K < lo || K > MSPT_CLF_MAX_CLASSES)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "clf_metrics: number of classes %d is outside %d..%d", K,
                              lo, MSPT_CLF_MAX_CLASSES);
    m->mode = mode;
    m->K = K;
    m->cols = mode == MSPT_CLF_BINARY ? 1 : K;
    m->tcols = mode == MSPT_CLF_MULTILABEL ? K : 1;
    m->confusion = calloc(confusion_len(m), sizeof *m->confusion);
    if (!m->confusion)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "clf_metrics: out of memory");
    return MSPT_OK;
}

void mspt_clf_reset(mspt_clf_metrics *m)
{
    memset(m->confusion, 0, confusion_len(m) * sizeof *m->confusion);
    m->n = 0;
}

void mspt_clf_free(mspt_clf_metrics *m)
{
    free(m->confusion);
    free(m->scores);
    free(m->targets);
    free(m->pairs);
    memset(m, 0, sizeof *m);
}

/* Room for `more` samples; doubles the capacity so growth is rare. */
static int reserve(mspt_clf_metrics *m, size_t more, mspt_error *err)
{
    if (m->n + more <= m->cap)
        return MSPT_OK;
    size_t cap = m->cap ? m->cap : 256;
    while (cap < m->n + more)
        cap *= 2;
    float *s = realloc(m->scores, cap * (size_t)m->cols * sizeof *s);
    if (s)
        m->scores = s;
    int *t = realloc(m->targets, cap * (size_t)m->tcols * sizeof *t);
    if (t)
        m->targets = t;
    mspt_clf_pair *p = realloc(m->pairs, cap * sizeof *p);
    if (p)
        m->pairs = p;
    if (!s || !t || !p)
        return mspt_error_set(err, MSPT_ERR_RUNTIME,
                              "clf_metrics: out of memory for %zu samples", cap);
    m->cap = cap;
    return MSPT_OK;
}

static float sigmoidf_(float x)
{
    return (float)(1.0 / (1.0 + exp(-(double)x)));
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

int mspt_clf_add(mspt_clf_metrics *m, const float *scores, int ncol,
                 const int *labels, size_t B, mspt_clf_input in, mspt_error *err)
{
    int want = m->mode == MSPT_CLF_BINARY ? (ncol == 1 ? 1 : 2) : m->K;
    if (ncol != want)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "clf_metrics: %d score columns for %d %s", ncol, m->K,
                              m->mode == MSPT_CLF_MULTILABEL ? "labels" : "classes");
    if (in != MSPT_CLF_LOGITS && in != MSPT_CLF_PROBS)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "clf_metrics: unknown input kind %d",
                              (int)in);
    /* Validate the whole batch first: a failed add leaves no trace. */
    int hi = m->mode == MSPT_CLF_MULTILABEL ? 1 : m->K - 1;
    for (size_t i = 0; i < B; i++) {
        for (int j = 0; j < m->tcols; j++) {
            int y = labels[i * m->tcols + j];
            if (y < 0 || y > hi)
                return mspt_error_set(err, MSPT_ERR_CONFIG,
                                      "clf_metrics: label %d of sample %zu is outside 0..%d",
                                      y, i, hi);
        }
        for (int j = 0; j < ncol; j++)
            if (!isfinite(scores[i * ncol + j]))
                return mspt_error_set(err, MSPT_ERR_RUNTIME,
                                      "clf_metrics: score %d of sample %zu is not finite",
                                      j, i);
    }
    int rc = reserve(m, B, err);
    if (rc)
        return rc;
    int K = m->K;
    for (size_t i = 0; i < B; i++) {
        const float *x = scores + i * ncol;
        float *s = m->scores + m->n * m->cols;
        int *t = m->targets + m->n * m->tcols;
        memcpy(t, labels + i * m->tcols, (size_t)m->tcols * sizeof *t);
        if (m->mode == MSPT_CLF_BINARY) {
            float v = ncol == 2 ? x[1] : x[0];
            s[0] = in == MSPT_CLF_LOGITS ? sigmoidf_(v) : v;
            int pred = ncol == 2 ? argmax(x, 2) : s[0] > 0.5f;
            m->confusion[t[0] * 2 + pred]++;
        } else if (m->mode == MSPT_CLF_MULTICLASS) {
            int pred = argmax(x, K);
            if (in == MSPT_CLF_LOGITS) {
                double mx = x[pred], z = 0;
                for (int j = 0; j < K; j++)
                    z += exp((double)x[j] - mx);
                for (int j = 0; j < K; j++)
                    s[j] = (float)(exp((double)x[j] - mx) / z);
            } else {
                memcpy(s, x, (size_t)K * sizeof *s);
            }
            m->confusion[(size_t)t[0] * K + pred]++;
        } else {
            for (int j = 0; j < K; j++) {
                s[j] = in == MSPT_CLF_LOGITS ? sigmoidf_(x[j]) : x[j];
                int pred = s[j] > 0.5f;
                /* (tn, fp, fn, tp) = index 2·y + pred */
                m->confusion[(size_t)j * 4 + 2 * t[j] + pred]++;
            }
        }
        m->n++;
    }
    return MSPT_OK;
}

int mspt_clf_merge(mspt_clf_metrics *dst, const mspt_clf_metrics *src,
                   mspt_error *err)
{
    if (dst->K != src->K || dst->mode != src->mode)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "clf_metrics: cannot merge %d classes (mode %d) into %d "
                              "(mode %d)", src->K, (int)src->mode, dst->K,
                              (int)dst->mode);
    int rc = reserve(dst, src->n, err);
    if (rc)
        return rc;
    memcpy(dst->scores + dst->n * dst->cols, src->scores,
           src->n * (size_t)src->cols * sizeof *src->scores);
    memcpy(dst->targets + dst->n * dst->tcols, src->targets,
           src->n * (size_t)src->tcols * sizeof *src->targets);
    for (size_t i = 0; i < confusion_len(dst); i++)
        dst->confusion[i] += src->confusion[i];
    dst->n += src->n;
    return MSPT_OK;
}

/* ---- ranking metrics ------------------------------------------------------ */

static int by_score_desc(const void *a, const void *b)
{
    float x = ((const mspt_clf_pair *)a)->s, y = ((const mspt_clf_pair *)b)->s;
    return (x < y) - (x > y);
}

/* Fill m->pairs with (score of column c, is positive) sorted by descending
 * score; returns the number of positives. */
static size_t sorted_pairs(mspt_clf_metrics *m, int c, size_t *neg)
{
    size_t pos = 0;
    for (size_t i = 0; i < m->n; i++) {
        int y;
        if (m->mode == MSPT_CLF_BINARY)
            y = m->targets[i] == 1;
        else if (m->mode == MSPT_CLF_MULTICLASS)
            y = m->targets[i] == c;
        else
            y = m->targets[i * m->K + c] == 1;
        m->pairs[i] = (mspt_clf_pair){m->scores[i * m->cols + c], y};
        pos += (size_t)y;
    }
    if (m->n)
        qsort(m->pairs, m->n, sizeof *m->pairs, by_score_desc);
    *neg = m->n - pos;
    return pos;
}

/* Cumulative (fp, tp) after each group of equal scores, as sklearn's and
 * torchmetrics' _binary_clf_curve: calls back once per distinct score. */
typedef void (*step_fn)(void *ctx, double fp, double tp);

static void walk(const mspt_clf_metrics *m, step_fn fn, void *ctx)
{
    double fp = 0, tp = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (m->pairs[i].y)
            tp++;
        else
            fp++;
        if (i + 1 == m->n || m->pairs[i + 1].s != m->pairs[i].s)
            fn(ctx, fp, tp);
    }
}

typedef struct area_ctx {
    double P, N, fp0, tp0, sum;
} area_ctx;

static void roc_step(void *v, double fp, double tp)
{
    area_ctx *a = v;
    a->sum += (fp - a->fp0) * (tp + a->tp0); /* trapezoid, in counts */
    a->fp0 = fp;
    a->tp0 = tp;
}

static void ap_step(void *v, double fp, double tp)
{
    area_ctx *a = v;
    a->sum += (tp - a->tp0) * (tp / (tp + fp)); /* ΔR · P, R in counts */
    a->tp0 = tp;
}

double mspt_clf_auroc(mspt_clf_metrics *m, int c)
{
    size_t N, P = sorted_pairs(m, c, &N);
    if (P == 0 || N == 0)
        return 0; /* torchmetrics: the missing rate is all zeros */
    area_ctx a = {(double)P, (double)N, 0, 0, 0};
    walk(m, roc_step, &a);
    return a.sum / (2.0 * (double)P * (double)N);
}

double mspt_clf_aupr(mspt_clf_metrics *m, int c)
{
    size_t N, P = sorted_pairs(m, c, &N);
    if (P == 0)
        return 0; /* recall set to one: no step */
    area_ctx a = {(double)P, (double)N, 0, 0, 0};
    walk(m, ap_step, &a);
    return a.sum / (double)P;
}

typedef struct roc_ctx {
    double P, N, *fpr, *tpr;
    size_t k;
} roc_ctx;

static void roc_point(void *v, double fp, double tp)
{
    roc_ctx *r = v;
    r->fpr[r->k] = r->N > 0 ? fp / r->N : 0;
    r->tpr[r->k] = r->P > 0 ? tp / r->P : 0;
    r->k++;
}

size_t mspt_clf_roc(mspt_clf_metrics *m, int c, double *fpr, double *tpr)
{
    size_t N, P = sorted_pairs(m, c, &N);
    roc_ctx r = {(double)P, (double)N, fpr, tpr, 1};
    fpr[0] = tpr[0] = 0;
    walk(m, roc_point, &r);
    return r.k;
}

/* ---- everything ------------------------------------------------------------- */

static double safe_div(double a, double b)
{
    return b != 0 ? a / b : 0;
}

static void label_metrics(const mspt_clf_metrics *m, mspt_clf_result *r)
{
    int K = m->K;
    const long long *C = m->confusion;
    double n = (double)m->n;
    if (m->mode == MSPT_CLF_MULTILABEL) {
        double acc = 0, p = 0, rec = 0, f = 0;
        for (int c = 0; c < K; c++) {
            double tn = C[c * 4], fp = C[c * 4 + 1], fn = C[c * 4 + 2], tp = C[c * 4 + 3];
            acc += (tp + tn) / n;
            p += safe_div(tp, tp + fp);
            rec += safe_div(tp, tp + fn);
            f += safe_div(2 * tp, 2 * tp + fp + fn);
        }
        r->accuracy = acc / K;
        r->precision = p / K;
        r->recall = r->balanced_accuracy = rec / K;
        r->f1 = f / K;
        r->kappa = NAN;
        return;
    }
    double correct = 0, p = 0, rec = 0, f = 0, counted = 0;
    double chance = 0; /* Σ_c row_c · col_c / n: expected agreement in counts */
    for (int c = 0; c < K; c++) {
        double row = 0, col = 0;
        for (int j = 0; j < K; j++) {
            row += (double)C[(size_t)c * K + j];
            col += (double)C[(size_t)j * K + c];
        }
        double tp = (double)C[(size_t)c * K + c], fp = col - tp, fn = row - tp;
        correct += tp;
        if (tp + fp + fn > 0) { /* torchmetrics drops untouched classes */
            p += safe_div(tp, tp + fp);
            rec += safe_div(tp, tp + fn);
            f += safe_div(2 * tp, 2 * tp + fp + fn);
            counted++;
        }
        chance += row * col / n;
    }
    r->accuracy = correct / n;
    r->recall = r->balanced_accuracy = safe_div(rec, counted);
    if (m->mode == MSPT_CLF_BINARY) {
        double tp = (double)C[3], fp = (double)C[1], fn = (double)C[2];
        r->precision = safe_div(tp, tp + fp);
        r->f1 = safe_div(2 * tp, 2 * tp + fp + fn);
    } else {
        r->precision = safe_div(p, counted);
        r->f1 = safe_div(f, counted);
    }
    /* 1 − observed/expected disagreement (off-diagonal counts); 0/0 when
     * one class fills both the labels and the predictions. */
    double expect_off = n - chance;
    r->kappa = expect_off != 0 ? 1.0 - (n - correct) / expect_off : NAN;
}

void mspt_clf_compute(mspt_clf_metrics *m, mspt_clf_result *r)
{
    r->n = (long long)m->n;
    if (m->n == 0) {
        r->accuracy = r->balanced_accuracy = r->precision = r->recall = r->f1 =
            r->kappa = r->auroc = r->aupr = NAN;
        return;
    }
    label_metrics(m, r);
    double auc = 0, ap = 0;
    for (int c = 0; c < m->cols; c++) {
        auc += mspt_clf_auroc(m, c);
        ap += mspt_clf_aupr(m, c);
    }
    r->auroc = auc / m->cols;
    r->aupr = ap / m->cols;
}
