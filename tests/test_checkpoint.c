/* Loading a checkpoint checks what it holds: every field of its metadata
 * (ranges, the all-zero random state, a finite score, a batch inside this
 * run's epoch) and every weight and optimizer value (finite), each refused
 * with one message naming the file and the field or tensor.  The files are
 * a real run's last.safetensors with one thing changed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mspt/mspt.h>

#include "io/safetensors.h"
#include "tap.h"
#include "task/experiment.h"
#include "task/trainer.h"

static char dir[64];
static mspt_error last_err;

static const char *exp_lua =
    "return {\n"
    "  seed = 3, threads = 1,\n"
    "  model = { _target_ = 'femba', num_channels = 4, seq_length = 64,\n"
    "            patch_size = { 2, 8 }, embed_dim = 4, num_blocks = 1, exp = 2,\n"
    "            kernel_dec = { 3, 3 } },\n"
    "  criterion = { _target_ = 'smooth_l1' },\n"
    "  optimizer = { _target_ = 'adamw', lr = 1e-3 },\n"
    "  data = { _target_ = 'synthetic', windows = 40, channels = 4, samples = 64 },\n"
    "  trainer = { batch_size = 4, max_steps = 3, progress_bar = 'off',\n"
    "              num_workers = 0 },\n"
    "  masking = { patch_size = { 1, 8 } },\n"
    "  logger = { 'csv' },\n"
    "}\n";

/* Train run (with overrides ov), resuming from `resume` (NULL: fresh). */
static int train(const char *run, const char *const *ov, size_t n,
                 const char *resume)
{
    char path[128], run_dir[128];
    mspt_error err = {0};
    snprintf(path, sizeof path, "%s/exp.lua", dir);
    snprintf(run_dir, sizeof run_dir, "%s/%s", dir, run);
    mspt_experiment x;
    int rc = mspt_experiment_load(&x, path, ov, n, &err);
    if (!rc)
        rc = mspt_train(&x, run_dir, resume, &err);
    last_err = err;
    mspt_experiment_free(&x);
    return rc;
}

/* Copy src to dst with metadata key set to value (NULL: unchanged), and
 * element 0 of tensor `poison` (NULL: none) set to bad. */
static void craft(const char *src, const char *dst, const char *key,
                  const char *value, const char *poison, float bad)
{
    mspt_error err = {0};
    mspt_st_file *f = mspt_st_open(src, &err);
    if (!f)
        tap_bail(err.msg);
    mspt_st_writer *w = mspt_st_writer_new();
    float *copies[512];
    size_t nc = 0;
    for (size_t i = 0; i < mspt_st_count(f) && nc < 512; i++) {
        const char *name = mspt_st_name(f, i);
        int nd = mspt_st_ndim(f, i), shape[8];
        for (int d = 0; d < nd; d++)
            shape[d] = (int)mspt_st_shape(f, i)[d];
        size_t n = mspt_st_numel(f, i);
        float *v = copies[nc++] = malloc((n ? n : 1) * sizeof *v);
        mspt_st_read_f32(f, name, v, n, &err);
        if (poison && !strcmp(name, poison))
            v[0] = bad;
        mspt_st_add_f32(w, name, nd, shape, v);
    }
    for (size_t i = 0; i < mspt_st_metadata_count(f); i++) {
        const char *k = mspt_st_metadata_key(f, i);
        mspt_st_set_metadata(w, k, key && !strcmp(k, key) ? value
                                                         : mspt_st_metadata(f, k));
    }
    if (key && !mspt_st_metadata(f, key))
        mspt_st_set_metadata(w, key, value);
    if (mspt_st_save(w, dst, &err))
        tap_bail(err.msg);
    mspt_st_writer_free(w);
    mspt_st_close(f);
    for (size_t i = 0; i < nc; i++)
        free(copies[i]);
}

static char good[256];

/* Resume from a copy of the good checkpoint with key = value: refused with
 * a configuration error whose message holds want (and the file's name). */
static void refused(const char *key, const char *value, const char *want)
{
    char path[256];
    snprintf(path, sizeof path, "%s/crafted.safetensors", dir);
    craft(good, path, key, value, NULL, 0);
    int rc = train("resumed", NULL, 0, path);
    ok(rc == MSPT_ERR_CONFIG && strstr(last_err.msg, want) &&
           strstr(last_err.msg, "crafted.safetensors"),
       "%s = %s refused (%s)", key, value, last_err.msg);
}

static void poisoned(const char *tensor, float bad, int pretrained)
{
    char path[256], ov[300];
    snprintf(path, sizeof path, "%s/poison.safetensors", dir);
    craft(good, path, NULL, NULL, tensor, bad);
    snprintf(ov, sizeof ov, "pretrained_checkpoint_path=%s", path);
    const char *ovs[] = {ov};
    int rc = pretrained ? train("pre", ovs, 1, NULL) : train("resumed", NULL, 0, path);
    char want[200];
    snprintf(want, sizeof want, "poison.safetensors: tensor '%s' holds a "
             "non-finite value", tensor);
    ok(rc == MSPT_ERR_CONFIG && strstr(last_err.msg, want),
       "%s: %g in '%s' refused (%s)", pretrained ? "pretrained" : "resume",
       (double)bad, tensor, last_err.msg);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/mspt-test-ckpt-XXXXXX");
    if (!mkdtemp(dir))
        tap_bail("mkdtemp");
    char plugins[4200], path[256];
    snprintf(plugins, sizeof plugins, "%s/plugins", getenv("MSPT_BUILDDIR"));
    setenv("MSPT_PLUGIN_PATH", plugins, 1);
    snprintf(path, sizeof path, "%s/exp.lua", dir);
    FILE *fp = fopen(path, "w");
    if (!fp)
        tap_bail("cannot write exp.lua");
    fputs(exp_lua, fp);
    fclose(fp);

    ok(train("base", NULL, 0, NULL) == 0, "a 3-step run writes last.safetensors (%s)",
       last_err.msg);
    snprintf(good, sizeof good, "%s/base/checkpoints/last.safetensors", dir);
    char copy[256];
    snprintf(copy, sizeof copy, "%s/copy.safetensors", dir);
    craft(good, copy, NULL, NULL, NULL, 0);
    const char *more[] = {"trainer.max_steps=4"};
    ok(train("resumed", more, 1, copy) == 0, "an unchanged copy resumes (%s)",
       last_err.msg);

    refused("epoch", "-5", "metadata 'epoch' is -5, outside 0..");
    refused("batch", "-1", "metadata 'batch' is -1, outside 0..");
    refused("batch", "10", "metadata 'batch' is 10 (40 windows into epoch 1), but "
            "an epoch of this run has 8 batches of 4 windows");
    refused("batch", "9007199254740992", "metadata 'batch' is 9007199254740992");
    refused("global_batch", "0", "metadata 'global_batch' is 0, outside 1..");
    refused("global_step", "-1", "metadata 'global_step' is -1, outside 0..");
    refused("global_step", "99999999999999999999", "metadata 'global_step' malformed");
    refused("optimizer_steps", "-3", "metadata 'optimizer_steps' is -3, outside 0..");
    refused("epoch", "9223372036854775807", "metadata 'epoch' is 9223372036854775807");
    const char *zero = "0000000000000000000000000000000000000000000000000000000000000000";
    refused("mask_rng", zero, "metadata 'mask_rng' is the all-zero random state");
    refused("dropout_rng", zero, "metadata 'dropout_rng' is the all-zero random state");
    refused("score", "nan", "metadata 'score' is 'nan', not a finite number");
    refused("score", "1e999", "metadata 'score' is '1e999', not a finite number");
    refused("score", "0.5x", "metadata 'score' is '0.5x'");

    poisoned("model.patch_embed.proj.weight", NAN, 0);
    poisoned("model.patch_embed.proj.weight", INFINITY, 1);
    poisoned("optimizer.patch_embed.proj.weight.exp_avg_sq", -INFINITY, 0);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        diag("could not remove %s", dir);
    return tap_done();
}
