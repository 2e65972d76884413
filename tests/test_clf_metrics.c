/* Classification metrics against scikit-learn (tests/fixtures/clf_metrics.txt
 * from scripts/gen_fixtures_clf_metrics.py, torchmetrics' rules where the two
 * differ): every metric of every case to 1e-6, per-class AUROC and AP; the
 * same numbers whether the samples come in one batch, in the fixture's
 * batches, or from two accumulators merged; reset; no reallocation once the
 * storage is large enough; bad input refused with a message and no trace;
 * the ROC points integrate to the AUROC; and the confusion-matrix and ROC
 * plots, decoded from PNG. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fixture.h"
#include "png_decode.h"
#include "tap.h"
#include "task/clf_plots.h"
#include "task/clf_metrics.h"

static const char *CASES[] = {"bin_logits", "bin_prob1", "bin_nopos", "mc4",
                              "mc4_probs",  "mc4_absent", "mc3_one",  "ml3"};
static const char *NAMES[8] = {"accuracy", "balanced_accuracy", "precision", "recall",
                               "f1",       "kappa",             "auroc",     "aupr"};

typedef struct clf_case {
    const char *name;
    mspt_clf_mode mode;
    int K, ncol, tcols;
    mspt_clf_input in;
    size_t n;
    float *x;
    int *y;
    const fixture_tensor *batches, *want, *auc_cols, *ap_cols;
} clf_case;

static const fixture_tensor *get(const fixture *f, const char *c, const char *what)
{
    char name[64];
    snprintf(name, sizeof name, "%s_%s", c, what);
    return fixture_get(f, name);
}

static clf_case load_case(const fixture *f, const char *c)
{
    clf_case k = {.name = c};
    const fixture_tensor *meta = get(f, c, "meta"), *x = get(f, c, "x"),
                         *y = get(f, c, "y");
    k.mode = (mspt_clf_mode)meta->data[0];
    k.K = (int)meta->data[1];
    k.ncol = (int)meta->data[2];
    k.in = (mspt_clf_input)meta->data[3];
    k.n = (size_t)x->shape[0];
    k.tcols = y->ndim == 2 ? y->shape[1] : 1;
    k.x = x->data;
    k.y = malloc(y->numel * sizeof *k.y);
    for (size_t i = 0; i < y->numel; i++)
        k.y[i] = (int)y->data[i];
    k.batches = get(f, c, "batches");
    k.want = get(f, c, "want");
    k.auc_cols = get(f, c, "auroc_cols");
    k.ap_cols = get(f, c, "aupr_cols");
    return k;
}

static double field(const mspt_clf_result *r, int i)
{
    const double v[8] = {r->accuracy, r->balanced_accuracy, r->precision, r->recall,
                         r->f1,       r->kappa,             r->auroc,     r->aupr};
    return v[i];
}

static int add_range(mspt_clf_metrics *m, const clf_case *k, size_t from, size_t B)
{
    mspt_error err = {0};
    int rc = mspt_clf_add(m, k->x + from * k->ncol, k->ncol, k->y + from * k->tcols, B,
                          k->in, &err);
    if (rc)
        diag("%s: %s", k->name, err.msg);
    return rc;
}

static int same_result(const mspt_clf_result *a, const mspt_clf_result *b)
{
    for (int i = 0; i < 8; i++) {
        double x = field(a, i), y = field(b, i);
        if (!(x == y || (isnan(x) && isnan(y))) && fabs(x - y) > 1e-12)
            return 0;
    }
    return a->n == b->n;
}

static void test_case(const clf_case *k)
{
    mspt_error err = {0};
    mspt_clf_metrics one, many, half, rest;
    if (mspt_clf_init(&one, k->K, k->mode, &err) || mspt_clf_init(&many, k->K, k->mode, &err) ||
        mspt_clf_init(&half, k->K, k->mode, &err) || mspt_clf_init(&rest, k->K, k->mode, &err))
        tap_bail(err.msg);
    ok(!add_range(&one, k, 0, k->n), "%s: one batch of %zu added", k->name, k->n);
    mspt_clf_result r1, rb, rm;
    mspt_clf_compute(&one, &r1);
    for (int i = 0; i < 8; i++) {
        double want = k->want->data[i], got = field(&r1, i);
        if (isnan(want))
            ok(isnan(got), "%s: %s is NaN (got %g)", k->name, NAMES[i], got);
        else
            is_close(got, want, 1e-6, "%s: %s = %.6f", k->name, NAMES[i], want);
    }
    for (int c = 0; c < (int)k->auc_cols->numel; c++) {
        is_close(mspt_clf_auroc(&one, c), k->auc_cols->data[c], 1e-6,
                 "%s: AUROC of column %d", k->name, c);
        is_close(mspt_clf_aupr(&one, c), k->ap_cols->data[c], 1e-6,
                 "%s: AP of column %d", k->name, c);
    }

    /* the fixture's batches, one by one */
    size_t at = 0;
    int fine = 1;
    for (size_t b = 0; b < k->batches->numel; b++) {
        size_t B = (size_t)k->batches->data[b];
        fine &= !add_range(&many, k, at, B);
        at += B;
    }
    mspt_clf_compute(&many, &rb);
    ok(fine && at == k->n && same_result(&r1, &rb), "%s: %zu batches give the one-pass metrics",
       k->name, k->batches->numel);

    /* two halves merged (per-rank accumulators gathered) */
    size_t h = k->n / 3;
    fine = !add_range(&half, k, 0, h) && !add_range(&rest, k, h, k->n - h);
    fine &= !mspt_clf_merge(&half, &rest, &err);
    mspt_clf_compute(&half, &rm);
    ok(fine && same_result(&r1, &rm), "%s: merged accumulators give the one-pass metrics",
       k->name);

    /* reset, then the same data again: same numbers, no reallocation */
    float *s0 = many.scores;
    size_t cap0 = many.cap;
    mspt_clf_reset(&many);
    mspt_clf_compute(&many, &rb);
    ok(rb.n == 0 && isnan(rb.accuracy) && isnan(rb.auroc), "%s: empty after reset: NaN",
       k->name);
    at = 0;
    for (size_t b = 0; b < k->batches->numel; b++) {
        size_t B = (size_t)k->batches->data[b];
        add_range(&many, k, at, B);
        at += B;
    }
    mspt_clf_compute(&many, &rb);
    ok(same_result(&r1, &rb) && many.scores == s0 && many.cap == cap0,
       "%s: after reset the same batches give the same metrics without reallocating",
       k->name);

    /* ROC points: from (0,0) to (1,1) (when both classes exist) and their
     * trapezoids are the AUROC */
    double *fpr = malloc((k->n + 1) * sizeof *fpr), *tpr = malloc((k->n + 1) * sizeof *tpr);
    int roc_ok = 1;
    for (int c = 0; c < one.cols; c++) {
        size_t np = mspt_clf_roc(&one, c, fpr, tpr);
        double area = 0;
        for (size_t i = 1; i < np; i++)
            area += (fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]) / 2;
        double auc = mspt_clf_auroc(&one, c);
        int both = fpr[np - 1] == 1 && tpr[np - 1] == 1;
        roc_ok &= np >= 2 && fpr[0] == 0 && tpr[0] == 0 && fabs(area - auc) < 1e-12;
        roc_ok &= both || auc == 0;
        for (size_t i = 1; i < np; i++)
            roc_ok &= fpr[i] >= fpr[i - 1] && tpr[i] >= tpr[i - 1];
    }
    ok(roc_ok, "%s: ROC points are monotone from (0,0) and integrate to the AUROC", k->name);
    free(fpr);
    free(tpr);
    mspt_clf_free(&one);
    mspt_clf_free(&many);
    mspt_clf_free(&half);
    mspt_clf_free(&rest);
}

static void test_errors(void)
{
    mspt_error err = {0};
    mspt_clf_metrics m;
    ok(mspt_clf_init(&m, 3, MSPT_CLF_BINARY, &err) == MSPT_ERR_CONFIG &&
           strstr(err.msg, "binary classification has 2 classes, not 3"),
       "binary with 3 classes refused: %s", err.msg);
    ok(mspt_clf_init(&m, 1, MSPT_CLF_MULTICLASS, &err) == MSPT_ERR_CONFIG &&
           strstr(err.msg, "number of classes 1"),
       "multiclass with 1 class refused: %s", err.msg);
    if (mspt_clf_init(&m, 3, MSPT_CLF_MULTICLASS, &err))
        tap_bail(err.msg);
    float x[6] = {1, 2, 3, 3, 2, 1};
    int y[2] = {2, 0}, bad[2] = {0, 3};
    ok(!mspt_clf_add(&m, x, 3, y, 2, MSPT_CLF_LOGITS, &err), "a good batch");
    mspt_clf_result before, after;
    mspt_clf_compute(&m, &before);
    ok(mspt_clf_add(&m, x, 3, bad, 2, MSPT_CLF_LOGITS, &err) == MSPT_ERR_CONFIG &&
           strstr(err.msg, "label 3 of sample 1 is outside 0..2"),
       "label out of range refused: %s", err.msg);
    x[4] = NAN;
    ok(mspt_clf_add(&m, x, 3, y, 2, MSPT_CLF_LOGITS, &err) == MSPT_ERR_RUNTIME &&
           strstr(err.msg, "score 1 of sample 1 is not finite"),
       "NaN score refused: %s", err.msg);
    ok(mspt_clf_add(&m, x, 2, y, 2, MSPT_CLF_LOGITS, &err) == MSPT_ERR_CONFIG &&
           strstr(err.msg, "2 score columns for 3 classes"),
       "wrong number of columns refused: %s", err.msg);
    mspt_clf_compute(&m, &after);
    ok(after.n == 2 && same_result(&before, &after), "refused batches left no trace");
    mspt_clf_metrics o;
    mspt_clf_init(&o, 4, MSPT_CLF_MULTICLASS, &err);
    ok(mspt_clf_merge(&m, &o, &err) == MSPT_ERR_CONFIG && strstr(err.msg, "cannot merge"),
       "merging 4 classes into 3 refused: %s", err.msg);
    mspt_clf_free(&o);
    mspt_clf_free(&m);
}

/* A classifier that is right on every sample: kappa 1, AUROC 1 (separable
 * scores), AP 1 - definitions, not fixtures. */
static void test_perfect(void)
{
    mspt_error err = {0};
    mspt_clf_metrics m;
    mspt_clf_init(&m, 4, MSPT_CLF_MULTICLASS, &err);
    float x[40 * 4];
    int y[40];
    for (int i = 0; i < 40; i++) {
        y[i] = i % 4;
        for (int j = 0; j < 4; j++)
            x[i * 4 + j] = j == y[i] ? 2.0f + 0.01f * i : -0.01f * i;
    }
    mspt_clf_add(&m, x, 4, y, 40, MSPT_CLF_LOGITS, &err);
    mspt_clf_result r;
    mspt_clf_compute(&m, &r);
    ok(r.accuracy == 1 && r.balanced_accuracy == 1 && r.precision == 1 && r.f1 == 1 &&
           fabs(r.kappa - 1) < 1e-12 && r.auroc == 1 && r.aupr == 1,
       "perfect classifier: every metric is 1");
    mspt_clf_free(&m);
}

/* ---- plots ------------------------------------------------------------------ */

static const unsigned char *pixel(const unsigned char *px, int w, int x, int y)
{
    return px + ((size_t)y * w + x) * 4;
}

static unsigned rgb_at(const unsigned char *px, int w, int x, int y)
{
    const unsigned char *p = pixel(px, w, x, y);
    return (unsigned)p[0] << 16 | (unsigned)p[1] << 8 | p[2];
}

/* Pixels in [x0, x1) × [y0, y1) that are not white. */
static int inked(const unsigned char *px, int w, int x0, int y0, int x1, int y1)
{
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            n += rgb_at(px, w, x, y) != 0xffffff;
    return n;
}

/* n samples per class, each predicted as pred(i), with separable scores. */
static void fill(mspt_clf_metrics *m, int K, int n, const int *pred_of_class)
{
    mspt_error err = {0};
    for (int c = 0; c < K; c++)
        for (int i = 0; i < n; i++) {
            float x[8];
            int p = pred_of_class ? pred_of_class[c * n + i] : c;
            for (int j = 0; j < K; j++)
                x[j] = j == p ? 3.0f + 0.01f * i : -0.01f * i;
            if (mspt_clf_add(m, x, K, &c, 1, MSPT_CLF_LOGITS, &err))
                tap_bail(err.msg);
        }
}

static void test_plots(void)
{
    mspt_error err = {0};
    mspt_clf_metrics m;
    unsigned char *png = NULL;
    size_t len = 0;
    int W = 640, H = 560, w = 0, h = 0;
    mspt_clf_init(&m, 4, MSPT_CLF_MULTICLASS, &err);
    fill(&m, 4, 10, NULL);
#ifndef HAVE_CAIRO
    ok(mspt_plot_confusion(&m, NULL, NULL, W, H, &png, &len, &err) &&
           strstr(err.msg, "plots need cairo"),
       "without cairo the confusion plot says so: %s", err.msg);
    mspt_clf_free(&m);
    return;
#endif
    const char *names[4] = {"rest", "eyem", "musc", "elpp"};
    int rc = mspt_plot_confusion(&m, names, "confusion", W, H, &png, &len, &err);
    unsigned char *px = rc ? NULL : png_decode(png, len, &w, &h);
    ok(px && w == W && h == H, "confusion matrix: a %dx%d PNG (%zu bytes)", w, h, len);
    if (px) {
        mspt_plot_box b = mspt_plot_confusion_area(W, H, 4);
        int s = (b.x1 - b.x0) / 4, dark = 1, white = 1, text = 1;
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                unsigned v = rgb_at(px, w, b.x0 + j * s + 3, b.y0 + i * s + 3);
                if (i == j)
                    dark &= v == MSPT_PLOT_CM_DARK;
                else
                    white &= v == 0xffffff && rgb_at(px, w, b.x0 + (j + 1) * s - 3,
                                                     b.y0 + (i + 1) * s - 3) == 0xffffff;
                /* the count is written in every cell's centre */
                int cx = b.x0 + j * s + s / 2, cy = b.y0 + i * s + s / 2, diff = 0;
                for (int y = cy - 5; y <= cy + 5; y++)
                    for (int x = cx - 8; x <= cx + 8; x++)
                        diff += rgb_at(px, w, x, y) != (i == j ? MSPT_PLOT_CM_DARK : 0xffffffu);
                text &= diff > 3;
            }
        ok(dark, "perfect classifier: the diagonal cells are the darkest shade");
        ok(white, "perfect classifier: every other cell is white");
        ok(text, "every cell shows its count");
        int rows = 1, cols = 1;
        for (int k = 0; k < 4; k++) {
            rows &= inked(px, w, b.x0 - 60, b.y0 + k * s + 2, b.x0 - 4, b.y0 + (k + 1) * s - 2) > 5;
            cols &= inked(px, w, b.x0 + k * s + 2, b.y1 + 4, b.x0 + (k + 1) * s - 2, b.y1 + 24) > 5;
        }
        ok(rows && cols, "class names beside the rows and under the columns");
    }
    free(px);
    free(png);

    /* half of class 1 predicted as class 2: row-normalised shading */
    mspt_clf_reset(&m);
    int pred[4 * 10];
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < 10; i++)
            pred[c * 10 + i] = c == 1 && i >= 5 ? 2 : c;
    fill(&m, 4, 10, pred);
    rc = mspt_plot_confusion(&m, NULL, NULL, W, H, &png, &len, &err);
    px = rc ? NULL : png_decode(png, len, &w, &h);
    if (px) {
        mspt_plot_box b = mspt_plot_confusion_area(W, H, 4);
        int s = (b.x1 - b.x0) / 4, good = 1;
        unsigned a = rgb_at(px, w, b.x0 + 1 * s + 3, b.y0 + 1 * s + 3),
                 c2 = rgb_at(px, w, b.x0 + 2 * s + 3, b.y0 + 1 * s + 3);
        for (int sh = 16; sh >= 0; sh -= 8) {
            int want = (int)lround(255 + (((MSPT_PLOT_CM_DARK >> sh) & 255) - 255) * 0.5);
            good &= abs((int)((a >> sh) & 255) - want) <= 1 && ((a >> sh) & 255) == ((c2 >> sh) & 255);
        }
        ok(good, "a row split in half shades both cells halfway (%06x, %06x)", a, c2);
    } else {
        ok(0, "confusion matrix with errors rendered: %s", err.msg);
    }
    free(px);
    free(png);

    /* ROC of the perfect classifier: up the left edge, along the top */
    mspt_clf_reset(&m);
    fill(&m, 4, 10, NULL);
    rc = mspt_plot_roc(&m, names, NULL, W, H, &png, &len, &err);
    px = rc ? NULL : png_decode(png, len, &w, &h);
    ok(px && w == W && h == H, "ROC: a %dx%d PNG", w, h);
    if (px) {
        mspt_plot_box b = mspt_plot_roc_area(W, H);
        double bw = b.x1 - b.x0, bh = b.y1 - b.y0;
#define RX(f) ((int)(b.x0 + ((f) + 0.02) / 1.04 * bw))
#define RY(t) ((int)(b.y1 - ((t) + 0.02) / 1.04 * bh))
        /* the last class's curve (tab10 red) is drawn on top */
        int red = 0;
        for (int y = RY(0.5) - 2; y <= RY(0.5) + 2; y++)
            for (int x = RX(0) - 2; x <= RX(0) + 2; x++) {
                const unsigned char *p = pixel(px, w, x, y);
                red += p[0] > 150 && p[1] < 120 && p[2] < 120;
            }
        ok(red > 0, "ROC: the curve runs up the left edge (fpr 0, tpr 0.5)");
        red = 0;
        for (int y = RY(1) - 2; y <= RY(1) + 2; y++)
            for (int x = RX(0.5) - 2; x <= RX(0.5) + 2; x++) {
                const unsigned char *p = pixel(px, w, x, y);
                red += p[0] > 150 && p[1] < 120 && p[2] < 120;
            }
        ok(red > 0, "ROC: and along the top (fpr 0.5, tpr 1)");
        ok(inked(px, w, RX(0.6) - 3, RY(0.3) - 3, RX(0.6) + 4, RY(0.3) + 4) == 0,
           "ROC: nothing below the diagonal at (0.6, 0.3)");
        int grey = 0;
        for (int k = 1; k <= 9; k++) {
            double f = k / 10.0;
            grey += inked(px, w, RX(f) - 2, RY(f) - 2, RX(f) + 3, RY(f) + 3) > 0;
        }
        ok(grey >= 6, "ROC: the chance diagonal is drawn (%d of 9 points)", grey);
        /* legend in the lower right: text and the four curve colours */
        ok(inked(px, w, b.x1 - 150, b.y1 - 80, b.x1 - 10, b.y1 - 10) > 100,
           "ROC: a legend in the lower right corner");
#undef RX
#undef RY
    }
    free(px);
    free(png);

    /* binary: one curve, for class 1 */
    mspt_clf_metrics bin;
    mspt_clf_init(&bin, 2, MSPT_CLF_BINARY, &err);
    fill(&bin, 2, 10, NULL);
    rc = mspt_plot_roc(&bin, NULL, "binary", W, H, &png, &len, &err);
    px = rc ? NULL : png_decode(png, len, &w, &h);
    if (px) {
        mspt_plot_box b = mspt_plot_roc_area(W, H);
        int x = (int)(b.x0 + 0.02 / 1.04 * (b.x1 - b.x0)), y = (b.y0 + b.y1) / 2, blue = 0;
        for (int yy = y - 2; yy <= y + 2; yy++)
            for (int xx = x - 2; xx <= x + 2; xx++) {
                const unsigned char *p = pixel(px, w, xx, yy);
                blue += p[2] > 150 && p[0] < 120;
            }
        ok(w == W && h == H && blue > 0, "binary ROC: one curve (tab10 blue) up the left edge");
    } else {
        ok(0, "binary ROC rendered: %s", err.msg);
    }
    free(px);
    free(png);
    ok(!mspt_plot_confusion(&bin, NULL, NULL, W, H, &png, &len, &err) && len > 0,
       "binary confusion matrix rendered (%zu bytes)", len);
    free(png);
    mspt_clf_free(&bin);

    mspt_clf_metrics ml;
    mspt_clf_init(&ml, 3, MSPT_CLF_MULTILABEL, &err);
    ok(mspt_plot_confusion(&ml, NULL, NULL, W, H, &png, &len, &err) == MSPT_ERR_CONFIG &&
           strstr(err.msg, "not multilabel") && !png,
       "confusion matrix of multilabel refused: %s", err.msg);
    ok(mspt_plot_roc(&ml, NULL, NULL, W, H, &png, &len, &err) && strstr(err.msg, "no samples"),
       "ROC without samples refused: %s", err.msg);
    ok(mspt_plot_roc(&m, NULL, NULL, 60, 60, &png, &len, &err) == MSPT_ERR_CONFIG,
       "too small a ROC plot refused: %s", err.msg);
    mspt_clf_free(&ml);
    mspt_clf_free(&m);
}

int main(void)
{
    fixture *f = fixture_load("clf_metrics.txt");
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        clf_case k = load_case(f, CASES[i]);
        test_case(&k);
        free(k.y);
    }
    test_errors();
    test_perfect();
    test_plots();
    fixture_free(f);
    return tap_done();
}
