/* Zero-padded channels (mspt_dataset_vt.live_channels, ABI 2) and
 * components built for ABI 1.
 *
 * Padding: the same data is trained on twice with lr 0 (the model stays at
 * its initial weights), once with the padding reported (run A) and once not
 * (run B, every channel counts, as before ABI 2).  A loss that records its
 * calls (tests/plugins/probe.c) shows that in run A no padded row is ever
 * masked, in training, validation and plots, nor in the unmasked-loss term;
 * that the live rows' masks are run B's (the random stream is unchanged);
 * and that run A's losses equal those computed here from run B's
 * predictions over the live rows only.
 *
 * ABI 1: a module whose dataset vtable has ABI 1's four members loads,
 * reads and trains. */
#include <dlfcn.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "plugin_util.h"
#include "plugins/probe.h"
#include "task/experiment.h"
#include "task/trainer.h"

enum { C = 4, T = 32, WINDOWS = 16 };

static char dir[64];

static int train_lua(const char *name, const char *lua, mspt_error *err)
{
    char path[160], run[160];
    snprintf(path, sizeof path, "%s/%s.lua", dir, name);
    snprintf(run, sizeof run, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    fputs(lua, fp);
    fclose(fp);
    mspt_experiment x;
    int rc = mspt_experiment_load(&x, path, NULL, 0, err);
    if (!rc) {
        mspt_set_threads(1);
        rc = mspt_train(&x, run, NULL, err);
    }
    mspt_experiment_free(&x);
    return rc;
}

static void module_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/tests/plugins/%s/.libs/%s.so", getenv("MSPT_BUILDDIR"),
             name, name);
}

/* ---- ABI 1 ------------------------------------------------------------- */

static void check_abi1(void)
{
    char so[4200], toy[4200];
    module_path(so, sizeof so, "abi1");
    module_path(toy, sizeof toy, "toy");
    mspt_registry *reg = mspt_registry_new();
    mspt_error err = {0};
    int rc = mspt_registry_load_file(reg, so, 0, &err);
    ok(rc == 0, "a module built for ABI 1 loads%s%s", rc ? ": " : "", err.msg);
    const mspt_component *c = rc ? NULL : mspt_registry_find(reg, MSPT_KIND_DATASET,
                                                             "old_ramp", &err);
    const mspt_component *l = rc ? NULL : mspt_registry_find(reg, MSPT_KIND_LOSS,
                                                             "old_l1", &err);
    const mspt_dataset_vt *vt = c ? c->vtable : NULL;
    ok(c && l && c->abi_version == 1 && vt && vt->live_channels == NULL &&
           vt->read && vt->destroy,
       "its dataset gets a full vtable, live_channels NULL; its loss is found");
    if (vt) {
        mspt_config cfg;
        mspt_node *tree = tp_config(c, "data", "{windows: 5}", &cfg);
        void *self = NULL;
        size_t n = 0;
        int ch = 0, s = 0;
        float x[C * T];
        int good = vt->create(&cfg, &self, &err) == 0;
        if (good) {
            vt->shape(self, &n, &ch, &s);
            good = n == 5 && ch == C && s == T && vt->read(self, 4, x, &err) == 0 &&
                   x[0] == 5.0f && x[3] == 5.003f;
            vt->destroy(self);
        }
        mspt_node_free(tree);
        ok(good, "its dataset creates, reports its shape and reads windows");
    } else {
        ok(0, "its dataset creates, reports its shape and reads windows");
    }
    mspt_registry_free(reg);

    char lua[2048];
    snprintf(lua, sizeof lua,
             "return {\n"
             "  seed = 1, threads = 1, plugin_path = { '%s', '%s' },\n"
             "  model = { _target_ = 'toy', channels = %d, samples = %d },\n"
             "  criterion = { _target_ = 'old_l1' },\n"
             "  optimizer = { _target_ = 'toy_sgd', lr = 1e-3 },\n"
             "  data = { _target_ = 'old_ramp', windows = 12 },\n"
             "  trainer = { batch_size = 4, max_steps = 3, progress_bar = 'off',\n"
             "              save_top_k = 0, num_workers = 1 },\n"
             "  masking = { patch_size = { 1, 8 } },\n"
             "  plots = { samples = {} },\n"
             "}\n", so, toy, C, T);
    rc = train_lua("abi1", lua, &err);
    ok(rc == 0, "a run on the ABI-1 dataset and loss trains%s%s",
       rc ? ": " : "", rc ? err.msg : "");
}

/* ---- padding ------------------------------------------------------------- */

typedef struct run {
    probe_call *calls;
    size_t n;
} run;

/* Copy the probe's records (they live in the module) and forget them. */
static run take_calls(probe_calls_fn probe)
{
    size_t n;
    const probe_call *src = probe(&n, 0);
    run r = {calloc(n ? n : 1, sizeof *r.calls), n};
    for (size_t i = 0; i < n; i++) {
        probe_call *c = &r.calls[i];
        *c = src[i];
        c->mask = malloc(c->n);
        c->pred = malloc(c->n * sizeof(float));
        c->target = malloc(c->n * sizeof(float));
        memcpy(c->mask, src[i].mask, c->n);
        memcpy(c->pred, src[i].pred, c->n * sizeof(float));
        memcpy(c->target, src[i].target, c->n * sizeof(float));
    }
    probe(&n, 1);
    return r;
}

static void free_run(run *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->calls[i].mask);
        free(r->calls[i].pred);
        free(r->calls[i].target);
    }
    free(r->calls);
}

/* Live channels of the window in row b of a call: the dataset writes
 * i + 1 at (0, 0) and pads channels past 1 + i mod C. */
static int live_of_row(const probe_call *c, size_t b)
{
    int i = (int)lroundf(c->target[b * C * T]) - 1;
    return 1 + i % C;
}

static void check_padding(void)
{
    char probe_so[4200], toy[4200];
    module_path(probe_so, sizeof probe_so, "probe");
    module_path(toy, sizeof toy, "toy");
    const char *fmt =
        "return {\n"
        "  seed = 7, threads = 1, plugin_path = { '%s', '%s' },\n"
        "  model = { _target_ = 'toy', channels = %d, samples = %d },\n"
        "  criterion = { _target_ = 'probe_l1' },\n"
        "  optimizer = { _target_ = 'toy_sgd', lr = 0 },\n"
        "  data = { _target_ = 'pad_ramp', windows = %d, report_live = %s },\n"
        "  trainer = { batch_size = 4, max_steps = 6, train_val_split = 0.75,\n"
        "              progress_bar = 'off', save_top_k = 0, num_workers = 2 },\n"
        "  masking = { patch_size = { 1, 4 }, masking_ratio = 0.5,\n"
        "              unmasked_loss_coeff = 0.5 },\n"
        "  input_normalization = { normalize = false },\n"
        "  plots = { samples = { 0, 1, 2 }, channels = { 0 } },\n"
        "}\n";
    char lua[2048];
    mspt_error err = {0};
    snprintf(lua, sizeof lua, fmt, probe_so, toy, C, T, WINDOWS, "true");
    int rc = train_lua("pad_a", lua, &err);
    ok(rc == 0, "run A (padding reported) trains%s%s", rc ? ": " : "",
       rc ? err.msg : "");
    /* the trainer's registry dlopened the module: this finds the same copy */
    void *h = dlopen(probe_so, RTLD_NOW | RTLD_NOLOAD);
    probe_calls_fn probe = NULL;
    if (h)
        *(void **)&probe = dlsym(h, "probe_calls");
    if (rc || !probe) {
        ok(0, "the probe module is reachable");
        return;
    }
    run a = take_calls(probe);
    snprintf(lua, sizeof lua, fmt, probe_so, toy, C, T, WINDOWS, "false");
    rc = train_lua("pad_b", lua, &err);
    ok(rc == 0, "run B (padding not reported) trains%s%s", rc ? ": " : "",
       rc ? err.msg : "");
    run b = take_calls(probe);
    /* 6 steps, 2 epochs of 3 batches: 2 validations of 1 batch and 2 x 3
     * plotted windows; each forward calls the loss twice */
    ok(a.n == b.n && a.n == 2 * (6 + 2 + 6),
       "both runs call the loss as often, twice per forward (%zu, %zu calls)",
       a.n, b.n);
    size_t n = a.n < b.n ? a.n : b.n;
    int same_data = 1, pad_clear = 1, live_same = 1, masked_pad_b = 0;
    long padded_rows = 0, plot_calls = 0;
    double worst = 0;
    for (size_t k = 0; k < n; k++) {
        const probe_call *ca = &a.calls[k], *cb = &b.calls[k];
        if (ca->n != cb->n || !ca->has_mask || !cb->has_mask) {
            same_data = 0;
            continue;
        }
        same_data &= !memcmp(ca->pred, cb->pred, ca->n * sizeof(float)) &&
                     !memcmp(ca->target, cb->target, ca->n * sizeof(float));
        size_t B = ca->n / (C * T);
        plot_calls += B == 1;
        double sum = 0;
        long count = 0;
        for (size_t w = 0; w < B; w++) {
            int live = live_of_row(ca, w);
            for (int c = 0; c < C; c++)
                for (int t = 0; t < T; t++) {
                    size_t e = (w * C + (size_t)c) * T + (size_t)t;
                    if (c >= live) {
                        pad_clear &= ca->mask[e] == 0;
                        masked_pad_b |= cb->mask[e];
                        padded_rows += t == 0;
                        continue;
                    }
                    live_same &= ca->mask[e] == cb->mask[e];
                    if (cb->mask[e]) { /* by hand, from run B */
                        sum += fabs((double)cb->pred[e] - cb->target[e]);
                        count++;
                    }
                }
        }
        double want = count ? sum / count : 0.0;
        double e = fabs(ca->value - want) / (fabs(want) > 1e-3 ? fabs(want) : 1e-3);
        if (e > worst)
            worst = e;
    }
    ok(same_data, "same predictions and targets in both runs (lr 0)");
    ok(pad_clear && padded_rows > 0, "run A never masks a padded row into the "
       "loss, masked or unmasked term, training, validation and plots (%ld "
       "padded rows, %ld plot calls)", padded_rows, plot_calls);
    ok(masked_pad_b, "run B did mask padded rows (the check above can fail)");
    ok(live_same, "the live rows' masks are run B's: the mask stream is "
       "unchanged");
    ok(worst <= 1e-6, "every loss of run A equals the mean absolute error over "
       "run B's selection without the padded rows (worst rel. %.2g)", worst);
    free_run(&a);
    free_run(&b);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/mspt-test-padding-XXXXXX");
    if (!mkdtemp(dir))
        tap_bail("mkdtemp");
    char plugins[4200];
    snprintf(plugins, sizeof plugins, "%s/plugins", getenv("MSPT_BUILDDIR"));
    setenv("MSPT_PLUGIN_PATH", plugins, 1);
    check_abi1();
    check_padding();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd))
        diag("could not remove %s", dir);
    return tap_done();
}
