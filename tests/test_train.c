/* The trainer through its library entry point: gradient accumulation is
 * equivalent to a larger batch, differential learning rates reach only the
 * head, pretrained weights load (mspt or plain PyTorch names), and a
 * checkpoint of another shape is refused with both shapes named. */
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

static const char *exp_lua =
    "return {\n"
    "  seed = 3, threads = 1,\n"
    "  model = { _target_ = 'femba', num_channels = 4, seq_length = 64,\n"
    "            patch_size = { 2, 8 }, embed_dim = 4, num_blocks = 1, exp = 2,\n"
    "            kernel_dec = { 3, 3 } },\n"
    "  criterion = { _target_ = 'mse' },\n"
    "  optimizer = { _target_ = 'sgd', lr = 0.05, momentum = 0 },\n"
    "  data = { _target_ = 'synthetic', windows = 40, channels = 4, samples = 64 },\n"
    "  trainer = { batch_size = 8, max_steps = 1, progress_bar = 'off',\n"
    "              shuffle = false, save_top_k = 0, num_workers = 0 },\n"
    "  masking = { patch_size = { 1, 8 } },\n"
    "  input_normalization = { normalize = true },\n"
    "}\n";

/* Train with overrides into run_dir; returns the status. */
static int train(const char *run, const char *const *ov, size_t n, mspt_error *err)
{
    char path[128], run_dir[128];
    snprintf(path, sizeof path, "%s/exp.lua", dir);
    snprintf(run_dir, sizeof run_dir, "%s/%s", dir, run);
    mspt_experiment x;
    int rc = mspt_experiment_load(&x, path, ov, n, err);
    if (!rc) {
        mspt_set_threads(1);
        rc = mspt_train(&x, run_dir, NULL, err);
    }
    mspt_experiment_free(&x);
    return rc;
}

static mspt_st_file *open_last(const char *run)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s/checkpoints/last.safetensors", dir, run);
    return mspt_st_open(path, NULL);
}

/* Max relative difference of tensor `name` between two files; or of all
 * "model." tensors whose name contains `filter` when name is NULL. */
static double diff(mspt_st_file *a, mspt_st_file *b, const char *filter,
                   int *found)
{
    double worst = 0;
    *found = 0;
    for (size_t i = 0; i < mspt_st_count(a); i++) {
        const char *name = mspt_st_name(a, i);
        if (strncmp(name, "model.", 6) || (filter && !strstr(name, filter)))
            continue;
        size_t n = mspt_st_numel(a, i);
        float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
        if (mspt_st_read_f32(a, name, x, n, NULL) == 0 &&
            mspt_st_read_f32(b, name, y, n, NULL) == 0) {
            (*found)++;
            for (size_t k = 0; k < n; k++) {
                double s = fabs(x[k]) > 1e-3 ? fabs(x[k]) : 1e-3;
                double e = fabs((double)x[k] - y[k]) / s;
                if (e > worst)
                    worst = e;
            }
        }
        free(x);
        free(y);
    }
    return worst;
}

/* The lr of each of the first 3 epochs of run's metrics.csv (every step
 * logged); 1 if all three were found and each epoch kept one rate. */
static int epoch_lrs(const char *run, double lr[3])
{
    char path[160], line[512];
    snprintf(path, sizeof path, "%s/%s/metrics.csv", dir, run);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int seen[3] = {0, 0, 0}, same = 1, lr_col = -1, epoch_col = -1;
    while (fgets(line, sizeof line, f)) {
        char *cols[16];
        int n = 0;
        for (char *p = line, *tok; n < 16 && (tok = strsep(&p, ",\n"));)
            cols[n++] = tok;
        if (lr_col < 0) { /* header */
            for (int i = 0; i < n; i++) {
                lr_col = !strcmp(cols[i], "lr") ? i : lr_col;
                epoch_col = !strcmp(cols[i], "epoch") ? i : epoch_col;
            }
            continue;
        }
        if (lr_col >= n || epoch_col >= n || !*cols[lr_col])
            continue;
        int e = atoi(cols[epoch_col]);
        double v = atof(cols[lr_col]);
        if (e < 0 || e > 2)
            continue;
        same &= !seen[e] || lr[e] == v;
        lr[e] = v;
        seen[e] = 1;
    }
    fclose(f);
    return seen[0] && seen[1] && seen[2] && same;
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/mspt-test-train-XXXXXX");
    if (!mkdtemp(dir))
        tap_bail("mkdtemp");
    char path[128];
    snprintf(path, sizeof path, "%s/exp.lua", dir);
    FILE *fp = fopen(path, "w");
    fputs(exp_lua, fp);
    fclose(fp);
    /* the build tree's plugins */
    char plugins[4200];
    snprintf(plugins, sizeof plugins, "%s/plugins", getenv("MSPT_BUILDDIR"));
    setenv("MSPT_PLUGIN_PATH", plugins, 1);
    mspt_error err = {0};
    int found;

    /* 0: initial weights (lr 0), 1: one update of batch 8,
     * 2: accumulate 2 batches of 4 into one update */
    const char *zero[] = {"optimizer.lr=0"};
    ok(train("init", zero, 1, &err) == 0, "train with lr 0 (initial weights)");
    if (err.msg[0])
        diag("%s", err.msg);
    ok(train("b8", NULL, 0, &err) == 0, "one update from a batch of 8");
    const char *acc[] = {"trainer.batch_size=4", "trainer.accumulate_grad_batches=2"};
    ok(train("acc", acc, 2, &err) == 0, "one update from 2 accumulated batches of 4");
    mspt_st_file *init = open_last("init"), *b8 = open_last("b8"), *a2 = open_last("acc");
    ok(init && b8 && a2, "checkpoints written");
    if (!init || !b8 || !a2)
        tap_bail("no checkpoints");
    double moved = diff(init, b8, NULL, &found);
    ok(found == 26 && moved > 1e-4, "the update moved the weights (%.3g, %d tensors)",
       moved, found);
    double e = diff(b8, a2, NULL, &found);
    ok(e < 1e-4, "accumulating 2 x 4 equals one batch of 8 (max rel diff %.2g)", e);

    /* differential lr: head_lr = 0 freezes the decoder only */
    const char *dlr[] = {"optimizer.differential_lr=true", "optimizer.head_lr=0"};
    ok(train("dlr", dlr, 2, &err) == 0, "differential_lr run");
    mspt_st_file *d = open_last("dlr");
    double head = diff(init, d, "decoder.", &found);
    int nhead = found;
    double body = diff(init, d, "mamba_blocks.", &found);
    ok(nhead == 3 && head == 0.0, "head (decoder.*) unchanged with head_lr = 0");
    ok(body > 1e-4, "body still trained (%.3g)", body);
    double same_body = diff(b8, d, "mamba_blocks.", &found);
    ok(same_body < 1e-6, "body updated as without differential lr (%.2g)", same_body);
    mspt_st_close(d);

    /* pretrained weights: a file of plain state_dict names, as PyTorch's
     * safetensors.torch.save_file(model.state_dict()) writes */
    mspt_st_writer *w = mspt_st_writer_new();
    float *bufs[64];
    int nb = 0;
    for (size_t i = 0; i < mspt_st_count(b8); i++) {
        const char *name = mspt_st_name(b8, i);
        if (strncmp(name, "model.", 6))
            continue;
        size_t n = mspt_st_numel(b8, i);
        int shape[8], nd = mspt_st_ndim(b8, i);
        for (int k = 0; k < nd; k++)
            shape[k] = (int)mspt_st_shape(b8, i)[k];
        bufs[nb] = malloc(n * sizeof(float));
        mspt_st_read_f32(b8, name, bufs[nb], n, NULL);
        mspt_st_add_f32(w, name + 6, nd, shape, bufs[nb]);
        nb++;
    }
    char pre[160];
    snprintf(pre, sizeof pre, "%s/plain.safetensors", dir);
    ok(mspt_st_save(w, pre, &err) == 0, "write a plain-named weights file");
    mspt_st_writer_free(w);
    for (int i = 0; i < nb; i++)
        free(bufs[i]);
    char ov[256];
    snprintf(ov, sizeof ov, "pretrained_checkpoint_path=%s", pre);
    const char *preov[] = {ov, "optimizer.lr=0"};
    ok(train("pre", preov, 2, &err) == 0, "run from pretrained weights");
    mspt_st_file *p = open_last("pre");
    double e2 = p ? diff(b8, p, NULL, &found) : 1;
    ok(p && e2 == 0.0 && found == 26, "pretrained weights loaded exactly (plain names)");
    if (p)
        mspt_st_close(p);

    /* pretrained_strict: tensors the model lacks, parameters the file lacks */
    const char *held_out = "decoder.dec_conv.weight";
    char both[160], extra_only[160], short_file[160];
    snprintf(both, sizeof both, "%s/both.safetensors", dir);
    snprintf(extra_only, sizeof extra_only, "%s/extra.safetensors", dir);
    snprintf(short_file, sizeof short_file, "%s/short.safetensors", dir);
    for (int variant = 0; variant < 3; variant++) {
        /* 0: every parameter and 7 extras; 1: one parameter short and 7
         * extras; 2: one parameter short */
        mspt_st_writer *v = mspt_st_writer_new();
        float *vb[64];
        int nv = 0;
        for (size_t i = 0; i < mspt_st_count(b8); i++) {
            const char *name = mspt_st_name(b8, i);
            if (strncmp(name, "model.", 6) || (variant && !strcmp(name + 6, held_out)))
                continue;
            size_t n = mspt_st_numel(b8, i);
            int shape[8], nd = mspt_st_ndim(b8, i);
            for (int k = 0; k < nd; k++)
                shape[k] = (int)mspt_st_shape(b8, i)[k];
            vb[nv] = malloc(n * sizeof(float));
            mspt_st_read_f32(b8, name, vb[nv], n, NULL);
            mspt_st_add_f32(v, name + 6, nd, shape, vb[nv]);
            nv++;
        }
        float one[3] = {1, 2, 3};
        int shape1[1] = {3};
        for (int k = 0; k < 7 && variant < 2; k++) {
            char name[64];
            snprintf(name, sizeof name, "classifier.extra_%d", k);
            mspt_st_add_f32(v, name, 1, shape1, one);
        }
        mspt_st_save(v, variant == 0 ? extra_only : variant == 1 ? both : short_file, &err);
        mspt_st_writer_free(v);
        for (int i = 0; i < nv; i++)
            free(vb[i]);
    }
    snprintf(ov, sizeof ov, "pretrained_checkpoint_path=%s", extra_only);
    const char *strict_extra[] = {ov};
    ok(train("strict_extra", strict_extra, 1, &err) == MSPT_ERR_CONFIG &&
           strstr(err.msg, "7 tensors the model does not have: 'classifier.extra_0', "
                           "'classifier.extra_1', 'classifier.extra_2', "
                           "'classifier.extra_3', 'classifier.extra_4' and 2 more") &&
           strstr(err.msg, "pretrained_strict = false"),
       "tensors the model lacks are named (first 5 and a count) and stop the run (%s)",
       err.msg);
    snprintf(ov, sizeof ov, "pretrained_checkpoint_path=%s", short_file);
    ok(train("strict_short", strict_extra, 1, &err) == MSPT_ERR_CONFIG &&
           strstr(err.msg, "no weights for 1 of the model's 26 parameters: "
                           "'decoder.dec_conv.weight'"),
       "a parameter the file lacks is named (%s)", err.msg);
    snprintf(ov, sizeof ov, "pretrained_checkpoint_path=%s", both);
    const char *lenient[] = {ov, "pretrained_strict=false", "optimizer.lr=0"};
    ok(train("lenient", lenient, 3, &err) == 0, "pretrained_strict = false loads the rest");
    mspt_st_file *l = open_last("lenient");
    double from_file = l ? diff(b8, l, "mamba_blocks.", &found) : 1;
    ok(l && from_file == 0.0 && found > 0, "what matched loaded exactly (%d tensors)", found);
    double kept = l ? diff(init, l, "dec_conv", &found) : 1;
    double moved_dec = diff(init, b8, "dec_conv", &found);
    ok(l && kept == 0.0 && moved_dec > 0, "the missing parameter kept its initial value");
    if (l)
        mspt_st_close(l);

    /* the wrong model for a checkpoint */
    snprintf(ov, sizeof ov, "pretrained_checkpoint_path=%s/b8/checkpoints/last.safetensors", dir);
    const char *bad[] = {ov, "model.embed_dim=6"};
    ok(train("bad", bad, 2, &err) == MSPT_ERR_CONFIG &&
           strstr(err.msg, "pretrained_checkpoint_path") &&
           strstr(err.msg, "'model.patch_embed.proj.weight' has shape (4,1,2,8) but "
                           "the model's is (6,1,2,8)"),
       "a checkpoint of another shape is refused naming both (%s)", err.msg);
    const char *missing[] = {"pretrained_checkpoint_path=/nonexistent.safetensors"};
    ok(train("missing", missing, 1, &err) == MSPT_ERR_RUNTIME &&
           strstr(err.msg, "/nonexistent.safetensors"),
       "a missing weights file is named (%s)", err.msg);

    /* scheduler.epoch_lag: epoch e trains at the rate of epoch e - lag */
    double lr_lag[3], lr_now[3];
    const char *lag_ov[] = {
        "+scheduler={_target_: multistep, milestones: [1, 2], gamma: 0.5, "
        "t_in_epochs: true, epoch_lag: 1}",
        "trainer.max_epochs=3", "trainer.max_steps=-1", "trainer.log_every_n_steps=1"};
    err.msg[0] = '\0';
    ok(train("lag", lag_ov, 4, &err) == 0 && epoch_lrs("lag", lr_lag),
       "a run with scheduler.epoch_lag = 1 (%s)", err.msg);
    lag_ov[0] = "+scheduler={_target_: multistep, milestones: [1, 2], gamma: 0.5, "
                "t_in_epochs: true}";
    ok(train("nolag", lag_ov, 4, &err) == 0 && epoch_lrs("nolag", lr_now),
       "and without (%s)", err.msg);
#define NEAR(a, b) (fabs((a) - (b)) <= 1e-6 * (b))
    ok(NEAR(lr_now[0], 0.05) && NEAR(lr_now[1], 0.025) && NEAR(lr_now[2], 0.0125),
       "without a lag epochs 0, 1, 2 train at 0.05, 0.025, 0.0125 (%g, %g, %g)",
       lr_now[0], lr_now[1], lr_now[2]);
    ok(NEAR(lr_lag[0], 0.05) && NEAR(lr_lag[1], 0.05) && NEAR(lr_lag[2], 0.025),
       "with epoch_lag = 1 at 0.05, 0.05, 0.025, Lightning's epoch stepping (%g, %g, %g)",
       lr_lag[0], lr_lag[1], lr_lag[2]);
    const char *bad_lag[] = {"+scheduler={_target_: multistep, milestones: [1], "
                             "epoch_lag: -1}"};
    ok(train("badlag", bad_lag, 1, &err) == MSPT_ERR_CONFIG &&
           strstr(err.msg, "scheduler.epoch_lag"),
       "a negative epoch_lag is refused (%s)", err.msg);

    mspt_st_close(init);
    mspt_st_close(b8);
    mspt_st_close(a2);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        diag("could not remove %s", dir);
    return tap_done();
}
