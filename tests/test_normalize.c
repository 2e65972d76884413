/* Input normalisation: the four modes against BioFoundation's own classes
 * (fixtures by scripts/gen_fixtures_task.py), and how an experiment chooses
 * one: input_normalization.mode, BioFoundation's key names, the checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mspt/mspt.h>

#include "config/node.h"
#include "fixture.h"
#include "tap.h"
#include "task/experiment.h"
#include "task/normalize.h"

/* Largest |got - want| over n, relative to max(|want|, 1). */
static double max_err(const float *got, const float *want, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / fmax(fabs(want[i]), 1.0);
        e = d > e || isnan(d) ? d : e;
    }
    return e;
}

static void test_modes(void)
{
    fixture *f = fixture_load("task.txt");
    const fixture_tensor *xe = fixture_get(f, "xe");
    size_t n = xe->numel, rows = n / 128;
    int T = 128;
    float *y = malloc(n * sizeof(float));
    struct {
        const char *name;
        mspt_norm norm;
        double tol;
        const char *what;
    } cases[] = {
        {"affine", {MSPT_NORM_AFFINE, -20, 20}, 0,
         "affine -20, 20 equals RobustQuartileNormalize(-20, 20) bit for bit"},
        {"affine_odd", {MSPT_NORM_AFFINE, -3.3, 71.9}, 0,
         "affine -3.3, 71.9 equals RobustQuartileNormalize(-3.3, 71.9) bit for bit"},
        {"zscore", {MSPT_NORM_ZSCORE, 0, 0}, 2e-6,
         "zscore matches LUNA's ChannelWiseNormalize (unbiased std)"},
        {"minmax", {MSPT_NORM_MINMAX, 0, 0}, 0,
         "minmax equals TinyMyo's MinMaxNormalization bit for bit"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memcpy(y, xe->data, n * sizeof(float));
        mspt_norm_apply(&cases[k].norm, y, rows, T, NULL);
        double e = max_err(y, fixture_get(f, cases[k].name)->data, n);
        ok(e <= cases[k].tol, "%s (max err %.2g)", cases[k].what, e);
    }
    /* minmax spans [-1, 1] on every channel but the constant one */
    memcpy(y, xe->data, n * sizeof(float));
    mspt_minmax_normalize(y, rows, T);
    int spans = 1;
    for (size_t r = 0; r < rows; r++) {
        float lo = 2, hi = -2;
        for (int t = 0; t < T; t++) {
            lo = fminf(lo, y[r * T + t]);
            hi = fmaxf(hi, y[r * T + t]);
        }
        int constant = r == 1 * 4 + 2;
        spans &= constant ? lo == -1 && hi == -1 : lo == -1 && hi > 0.9999f && hi <= 1;
    }
    ok(spans, "minmax: every channel spans [-1, 1], a constant one is -1");
    /* zscore of the constant channel is 0, not NaN */
    memcpy(y, xe->data, n * sizeof(float));
    mspt_zscore_normalize(y, rows, T);
    int zero = 1;
    for (int t = 0; t < T; t++)
        zero &= y[(1 * 4 + 2) * T + t] == 0.0f;
    ok(zero, "zscore: a constant channel becomes 0");
    /* quantile mode is the robust scaling */
    const fixture_tensor *x = fixture_get(f, "x");
    float *q = malloc(x->numel * sizeof(float)), sc[64];
    memcpy(q, x->data, x->numel * sizeof(float));
    mspt_norm qn = {MSPT_NORM_QUANTILE, 0.025, 0.975};
    mspt_norm_apply(&qn, q, x->numel / 37, 37, sc);
    double e = fixture_max_rel_err(q, fixture_get(f, "normalized")->data, x->numel, 1e-3);
    ok(e <= 1e-5, "quantile mode matches torch.quantile scaling (max rel err %.2g)", e);
    /* off leaves the data alone */
    memcpy(y, xe->data, n * sizeof(float));
    mspt_norm off = {MSPT_NORM_OFF, 0, 0};
    mspt_norm_apply(&off, y, rows, T, NULL);
    ok(memcmp(y, xe->data, n * sizeof(float)) == 0, "normalize = false changes nothing");
    free(q);
    free(y);
    fixture_free(f);
}

/* ---- configuration ------------------------------------------------------ */

static char dir[64];

/* Load an experiment whose input_normalization section is `section`, with
 * overrides; fills *n or err. */
static int load(const char *section, const char *const *ov, size_t nov,
                mspt_norm *n, mspt_error *err)
{
    char path[128];
    snprintf(path, sizeof path, "%s/exp.lua", dir);
    FILE *fp = fopen(path, "w");
    fprintf(fp,
            "return {\n"
            "  model = { _target_ = 'transformer', num_channels = 2, seq_length = 16,\n"
            "            patch_size = 8, embed_dim = 8, depth = 1, num_heads = 2 },\n"
            "  criterion = { _target_ = 'smooth_l1' },\n"
            "  optimizer = { _target_ = 'adamw', lr = 1e-3 },\n"
            "  data = { _target_ = 'synthetic', windows = 8, channels = 2, samples = 16 },\n"
            "  input_normalization = %s,\n"
            "}\n",
            section);
    fclose(fp);
    mspt_experiment x;
    memset(err, 0, sizeof *err);
    int rc = mspt_experiment_load(&x, path, ov, nov, err);
    if (!rc)
        rc = mspt_norm_read(x.root, n, err);
    mspt_experiment_free(&x);
    return rc;
}

static void test_config(void)
{
    mspt_norm n;
    mspt_error err;
    int rc = load("{ normalize = true }", NULL, 0, &n, &err);
    ok(rc == 0 && n.mode == MSPT_NORM_AFFINE && n.lower == -20 && n.upper == 20,
       "the default mode is the seed's affine map with FEMBA's -20, 20");
    rc = load("{ normalize = false, mode = 'zscore' }", NULL, 0, &n, &err);
    ok(rc == 0 && n.mode == MSPT_NORM_OFF, "normalize = false: no normalisation");
    rc = load("{ normalize = true, quartile_normalization_lower_val = -50,\n"
              "    quartile_normalization_upper_val = 50 }", NULL, 0, &n, &err);
    ok(rc == 0 && n.mode == MSPT_NORM_AFFINE && n.lower == -50 && n.upper == 50,
       "BioFoundation's quartile_normalization_{lower,upper}_val are lower, upper");
    const char *ov[] = {"input_normalization.quartile_normalization_upper_val=80"};
    rc = load("{ normalize = true, lower = -10 }", ov, 1, &n, &err);
    ok(rc == 0 && n.lower == -10 && n.upper == 80,
       "and as overrides: the later word sets upper");
    rc = load("{ normalize = true, lower = -10, quartile_normalization_lower_val = -5 }",
              NULL, 0, &n, &err);
    ok(rc == MSPT_ERR_CONFIG && strstr(err.msg, "quartile_normalization_lower_val") &&
           strstr(err.msg, "same key"),
       "both names of one key are refused (%s)", err.msg);
    rc = load("{ normalize = true, mode = 'quantile', quantile_lower = 0.1,\n"
              "    quantile_upper = 0.9 }", NULL, 0, &n, &err);
    ok(rc == 0 && n.mode == MSPT_NORM_QUANTILE && n.lower == 0.1 && n.upper == 0.9,
       "quantile mode takes quantile_lower, quantile_upper");
    rc = load("{ normalize = true, lower = 0.025, upper = 0.975 }", NULL, 0, &n, &err);
    ok(rc == MSPT_ERR_CONFIG && strstr(err.msg, "mode = \"quantile\""),
       "lower/upper in [0, 1] without a mode (their old meaning) are refused (%s)",
       err.msg);
    rc = load("{ normalize = true, mode = 'affine', lower = 0, upper = 1 }", NULL, 0,
              &n, &err);
    ok(rc == 0 && n.mode == MSPT_NORM_AFFINE && n.upper == 1,
       "with mode = 'affine' they are values");
    const char *bad[][2] = {
        {"{ normalize = true, mode = 'robust' }", "input_normalization.mode: 'robust'"},
        {"{ normalize = true, lower = 20, upper = -20 }", "affine needs finite lower < upper"},
        {"{ normalize = true, lower = -1e308, upper = 1e308 }",
         "affine needs finite lower < upper"},
        {"{ normalize = true, mode = 'quantile', quantile_upper = 1.5 }",
         "quantile needs 0 <= quantile_lower < quantile_upper <= 1"},
        {"{ normalize = true, mode = 3 }", "input_normalization.mode"},
        {"{ normalize = true, quartile_normalization_lower_val = 'x' }",
         "input_normalization.lower"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        rc = load(bad[k][0], NULL, 0, &n, &err);
        ok(rc == MSPT_ERR_CONFIG && strstr(err.msg, bad[k][1]), "%s: %s", bad[k][0],
           err.msg);
    }
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/mspt-test-normalize-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    char plugins[4200];
    snprintf(plugins, sizeof plugins, "%s/plugins", getenv("MSPT_BUILDDIR"));
    setenv("MSPT_PLUGIN_PATH", plugins, 1);
    test_modes();
    test_config();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {
    }
    return tap_done();
}
