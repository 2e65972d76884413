/* The pretrain task's pieces: patch masking (counts, geometry, remainders,
 * per sample and per batch), robust normalisation and gradient clipping
 * against PyTorch, and the loader (split, order, determinism, prefetch,
 * non-finite windows). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <mspt/mspt.h>

#include "data/loader.h"
#include "fixture.h"
#include "task/grads.h"
#include "task/masking.h"
#include "task/normalize.h"
#include "tap.h"

static void test_masking(void)
{
    mspt_error err = {0};
    mspt_masker m;
    mspt_rng *rng = mspt_rng_new(1);
    /* 22 x 1280 by 2 x 16: 11 x 80 = 880 patches, half masked */
    ok(mspt_masker_init(&m, 2, 16, 0.5, 0, 22, 1280, &err) == 0, "masker init");
    ok(mspt_masker_count(&m) == 440, "floor(880 * 0.5) = 440 patches masked");
    int B = 3;
    uint8_t *mask = malloc((size_t)B * 22 * 1280);
    mspt_masker_fill(&m, B, rng, mask);
    int counts_ok = 1, blocks_ok = 1;
    for (int b = 0; b < B; b++) {
        const uint8_t *mb = mask + (size_t)b * 22 * 1280;
        size_t ones = 0;
        for (int i = 0; i < 22 * 1280; i++)
            ones += mb[i];
        counts_ok &= ones == 440u * 32;
        /* every patch is all-masked or all-visible */
        for (int gh = 0; gh < 11; gh++)
            for (int gw = 0; gw < 80; gw++) {
                uint8_t v = mb[(gh * 2) * 1280 + gw * 16];
                for (int r = 0; r < 2; r++)
                    for (int c = 0; c < 16; c++)
                        blocks_ok &= mb[(gh * 2 + r) * 1280 + gw * 16 + c] == v;
            }
    }
    ok(counts_ok, "each window has exactly 440 x 32 masked entries");
    ok(blocks_ok, "masks are unions of whole 2 x 16 patches");
    ok(memcmp(mask, mask + 22 * 1280, 22 * 1280) != 0,
       "one mask per sample by default (samples differ)");
    mspt_masker_free(&m);

    /* per batch: one mask shared */
    mspt_masker_init(&m, 2, 16, 0.3, 1, 22, 1280, &err);
    mspt_masker_fill(&m, B, rng, mask);
    ok(memcmp(mask, mask + 22 * 1280, 22 * 1280) == 0 &&
           memcmp(mask, mask + 2 * 22 * 1280, 22 * 1280) == 0,
       "per_batch: the whole batch shares one mask");
    ok(mspt_masker_count(&m) == 264, "floor(880 * 0.3) = 264 (no float slip)");
    mspt_masker_free(&m);

    /* remainders: 5 x 70 by 2 x 16 -> 2 x 4 patches; row 4 and cols 64.. never */
    mspt_masker_init(&m, 2, 16, 1.0, 0, 5, 70, &err);
    uint8_t small[5 * 70];
    mspt_masker_fill(&m, 1, rng, small);
    int rem_ok = 1;
    size_t ones = 0;
    for (int c = 0; c < 5; c++)
        for (int t = 0; t < 70; t++) {
            ones += small[c * 70 + t];
            if (c == 4 || t >= 64)
                rem_ok &= small[c * 70 + t] == 0;
        }
    ok(rem_ok && ones == 8 * 32, "leftover rows and columns are never masked");
    mspt_masker_free(&m);

    ok(mspt_masker_init(&m, 0, 16, 0.5, 0, 22, 1280, &err) == MSPT_ERR_CONFIG &&
           strstr(err.msg, "masking.patch_size"), "patch 0 refused (%s)", err.msg);
    ok(mspt_masker_init(&m, 2, 2000, 0.5, 0, 22, 1280, &err) == MSPT_ERR_CONFIG &&
           strstr(err.msg, "does not fit"), "patch larger than the window refused");
    ok(mspt_masker_init(&m, 2, 16, 1.5, 0, 22, 1280, &err) == MSPT_ERR_CONFIG &&
           strstr(err.msg, "masking.masking_ratio"), "ratio outside [0, 1] refused");

    float x[4] = {1, 2, 3, 4}, out[4];
    uint8_t mk[4] = {0, 1, 1, 0};
    mspt_mask_apply(x, mk, 4, out);
    ok(out[0] == 1 && out[1] == 0 && out[2] == 0 && out[3] == 4,
       "masked entries are zeroed");
    free(mask);
    mspt_rng_free(rng);
}

static int cmp_float_test(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_normalize_and_clip(void)
{
    fixture *f = fixture_load("task.txt");
    const fixture_tensor *x = fixture_get(f, "x"), *want = fixture_get(f, "normalized");
    float *y = malloc(x->numel * sizeof(float));
    memcpy(y, x->data, x->numel * sizeof(float));
    float scratch[64];
    mspt_robust_normalize(y, 15, 37, 0.025, 0.975, scratch);
    double e = fixture_max_rel_err(y, want->data, x->numel, 1e-3);
    ok(e <= 1e-5, "robust normalisation matches torch.quantile (max rel err %.2g)", e);
    free(y);

    /* the selection gives exactly the sorted quantiles: random rows, rows
     * of few distinct values (ties), a constant row, odd and even lengths */
    mspt_rng *rng = mspt_rng_new(3);
    int same = 1;
    for (int trial = 0; trial < 60; trial++) {
        int T = 1 + trial * 37 % 301, kind = trial % 3;
        float row[301], sorted[301], sc[301];
        for (int t = 0; t < T; t++)
            row[t] = kind == 0 ? (float)mspt_rng_normal(rng)
                     : kind == 1 ? (float)(int)(4 * mspt_rng_uniform(rng))
                                 : 2.5f;
        memcpy(sorted, row, (size_t)T * sizeof(float));
        qsort(sorted, (size_t)T, sizeof(float), cmp_float_test);
        float lo = (float)mspt_quantile_sorted(sorted, T, 0.025);
        float hi = (float)mspt_quantile_sorted(sorted, T, 0.975);
        float denom = (hi - lo) + 1e-8f, want[301];
        for (int t = 0; t < T; t++)
            want[t] = (row[t] - lo) / denom;
        mspt_robust_normalize(row, 1, T, 0.025, 0.975, sc);
        same &= memcmp(row, want, (size_t)T * sizeof(float)) == 0;
    }
    ok(same, "quantiles by selection equal the sorted ones bit for bit (60 rows, "
             "ties and constants)");
    mspt_rng_free(rng);

    mspt_params *ps = mspt_params_new();
    const fixture_tensor *g1 = fixture_get(f, "g1"), *g2 = fixture_get(f, "g2");
    mspt_tensor *p1 = mspt_param_new(ps, "p1", 2, (int[]){4, 7}, 0);
    mspt_tensor *p2 = mspt_param_new(ps, "p2", 1, (int[]){9}, 0);
    memcpy(p1->grad, g1->data, 28 * sizeof(float));
    memcpy(p2->grad, g2->data, 9 * sizeof(float));
    double norm = mspt_clip_grad_norm(ps, 2.0);
    is_close(norm, fixture_get(f, "total_norm")->data[0], 1e-6,
             "clip_grad_norm_ returns the total norm");
    double e1 = fixture_max_rel_err(p1->grad, fixture_get(f, "clipped1")->data, 28, 1e-3);
    double e2 = fixture_max_rel_err(p2->grad, fixture_get(f, "clipped2")->data, 9, 1e-3);
    ok(e1 <= 1e-6 && e2 <= 1e-6, "clipped gradients match PyTorch (%.2g, %.2g)", e1, e2);
    memcpy(p2->grad, g2->data, 9 * sizeof(float));
    memset(p1->grad, 0, 28 * sizeof(float));
    float keep = p2->grad[3];
    mspt_clip_grad_norm(ps, 1e6);
    ok(p2->grad[3] == keep, "gradients under the limit are left alone");
    mspt_params_free(ps);
    fixture_free(f);
}

/* ---- a dataset of numbered windows, some non-finite ------------------ */

typedef struct counted {
    size_t n;
    int C, T;
    size_t bad_every; /* 0: none */
} counted;

static void counted_shape(void *self, size_t *w, int *c, int *s)
{
    counted *d = self;
    *w = d->n;
    *c = d->C;
    *s = d->T;
}
static int counted_read(void *self, size_t i, float *out, mspt_error *err)
{
    counted *d = self;
    if (i >= d->n)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "window %zu past the end", i);
    for (int k = 0; k < d->C * d->T; k++)
        out[k] = (float)i;
    if (d->bad_every && i % d->bad_every == 0)
        out[d->C * d->T - 1] = NAN;
    return 0;
}
static const mspt_dataset_vt counted_vt = {NULL, counted_shape, counted_read, NULL,
                                          NULL};

/* Windows (by value) of one pass; returns the count. */
static size_t pass(mspt_loader *l, int split, long long epoch, int B, int shuffle,
                   int drop_last, float *seen, size_t cap)
{
    mspt_loader_begin(l, split, epoch, B, shuffle, drop_last, 0, 0);
    const float *x;
    int n;
    size_t k = 0;
    mspt_error err;
    while ((n = mspt_loader_next(l, &x, &err)) > 0)
        for (int b = 0; b < n && k < cap; b++)
            seen[k++] = x[(size_t)b * 2 * 3];
    return k;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_loader(void)
{
    counted d1 = {50, 2, 3, 0}, d2 = {30, 2, 3, 0};
    mspt_source src[2] = {{&counted_vt, &d1, "data.0"}, {&counted_vt, &d2, "data.1"}};
    mspt_error err = {0};
    mspt_loader *l = mspt_loader_new(src, 2, 0.8, 5, 2, 8, &err);
    ok(l != NULL, "loader over two datasets");
    ok(mspt_loader_windows(l, MSPT_SPLIT_TRAIN) == 40 + 24 &&
           mspt_loader_windows(l, MSPT_SPLIT_VAL) == 10 + 6,
       "per-dataset split: 80%% of each dataset trains");
    ok(mspt_loader_batches(l, MSPT_SPLIT_TRAIN, 8, 1) == 8 &&
           mspt_loader_batches(l, MSPT_SPLIT_VAL, 7, 0) == 3,
       "batch counts with and without drop_last");

    float a[100], b[100], c[100], v[100];
    size_t na = pass(l, MSPT_SPLIT_TRAIN, 0, 8, 1, 1, a, 100);
    size_t nb = pass(l, MSPT_SPLIT_TRAIN, 0, 8, 1, 1, b, 100);
    size_t nc = pass(l, MSPT_SPLIT_TRAIN, 1, 8, 1, 1, c, 100);
    ok(na == 64 && nb == 64 && memcmp(a, b, sizeof(float) * 64) == 0,
       "the same epoch gives the same order");
    ok(nc == 64 && memcmp(a, c, sizeof(float) * 64) != 0, "another epoch reshuffles");
    size_t nv = pass(l, MSPT_SPLIT_VAL, 0, 7, 0, 0, v, 100);
    qsort(a, 64, sizeof(float), cmp_float);
    qsort(c, 64, sizeof(float), cmp_float);
    int disjoint = memcmp(a, c, sizeof(float) * 64) == 0 && nv == 16;
    for (size_t i = 0; i < nv && disjoint; i++)
        for (size_t j = 0; j < 64; j++)
            if (v[i] == a[j] && v[i] >= 30) /* values < 30 exist in both datasets */
                disjoint = 0;
    ok(disjoint, "each epoch covers the same training windows; validation is apart");

    /* prefetch threads give exactly the order of the synchronous loader */
    mspt_loader *sync = mspt_loader_new(src, 2, 0.8, 5, 0, 8, &err);
    float s[100];
    size_t ns = pass(sync, MSPT_SPLIT_TRAIN, 3, 8, 1, 1, s, 100);
    na = pass(l, MSPT_SPLIT_TRAIN, 3, 8, 1, 1, a, 100);
    ok(ns == na && memcmp(a, s, sizeof(float) * ns) == 0,
       "2 prefetch threads serve the same batches as none");
    /* an abandoned pass does not leak into the next */
    mspt_loader_begin(l, MSPT_SPLIT_TRAIN, 3, 8, 1, 1, 0, 0);
    const float *x;
    mspt_loader_next(l, &x, &err);
    na = pass(l, MSPT_SPLIT_TRAIN, 3, 8, 1, 1, a, 100);
    ok(na == ns && memcmp(a, s, sizeof(float) * ns) == 0,
       "a pass left early does not disturb the next");
    /* resume at a batch */
    mspt_loader_begin(l, MSPT_SPLIT_TRAIN, 3, 8, 1, 1, 0, 5);
    int n = mspt_loader_next(l, &x, &err);
    ok(n == 8 && x[0] == s[40], "a pass can start at batch k (resume)");
    mspt_loader_free(sync);
    mspt_loader_free(l);

    counted bad = {20, 2, 3, 5}; /* windows 0, 5, 10, 15 hold a NaN */
    mspt_source bsrc[1] = {{&counted_vt, &bad, "data.0"}};
    l = mspt_loader_new(bsrc, 1, 1.0, 1, 1, 4, &err);
    size_t nbad = pass(l, MSPT_SPLIT_TRAIN, 0, 4, 1, 0, a, 100);
    int clean = 1;
    for (size_t i = 0; i < nbad; i++)
        clean &= ((int)a[i]) % 5 != 0;
    ok(nbad == 16 && clean && mspt_loader_skipped(l) == 4,
       "non-finite windows are skipped and counted");
    mspt_loader_free(l);

    counted other = {10, 3, 3, 0};
    mspt_source mixed[2] = {{&counted_vt, &d1, "data.0"}, {&counted_vt, &other, "data.1"}};
    ok(mspt_loader_new(mixed, 2, 0.8, 1, 0, 4, &err) == NULL &&
           strstr(err.msg, "data.1: windows are 3 x 3 but data.0's are 2 x 3"),
       "datasets of different shapes refused (%s)", err.msg);
    ok(mspt_loader_new(src, 2, 0.0, 1, 0, 4, &err) == NULL &&
           strstr(err.msg, "trainer.train_val_split"), "split 0 refused");
}

int main(void)
{
    test_masking();
    test_normalize_and_clip();
    test_loader();
    return tap_done();
}
