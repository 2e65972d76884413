/* What a run leaves for researchers: the TensorBoard event file's scalars
 * match metrics.csv (tags and steps), its images decode as PNGs of the
 * configured size, the per-epoch reconstruction plots and curves.png exist,
 * and the logger switch turns either output off. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mspt/mspt.h>

#include "png_decode.h"
#include "tap.h"
#include "task/experiment.h"
#include "task/trainer.h"
#include "tfevents_reader.h"

static char dir[64];

static const char *exp_lua =
    "return {\n"
    "  seed = 5,\n"
    "  model = { _target_ = 'transformer', num_channels = 3, seq_length = 48,\n"
    "            patch_size = 8, embed_dim = 16, depth = 1, num_heads = 2 },\n"
    "  criterion = { _target_ = 'smooth_l1' },\n"
    "  optimizer = { _target_ = 'adamw', lr = 1e-3 },\n"
    "  scheduler = { _target_ = 'cosine' },\n"
    "  data = { _target_ = 'synthetic', windows = 40, channels = 3, samples = 48 },\n"
    "  trainer = { batch_size = 4, max_epochs = 3, log_every_n_steps = 3,\n"
    "              progress_bar = 'off' },\n"
    "  masking = { patch_size = { 1, 8 } },\n"
    "  plots = { samples = { 0, 5 }, width = 400, height = 200 },\n"
    "}\n";

static mspt_error last_err; /* of the last train() */

static int train_file(const char *file, const char *run, const char *const *ov,
                      size_t n, const char *resume)
{
    char path[128], run_dir[128];
    mspt_error err = {0};
    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(run_dir, sizeof run_dir, "%s/%s", dir, run);
    mspt_experiment x;
    int rc = mspt_experiment_load(&x, path, ov, n, &err);
    if (!rc)
        rc = mspt_train(&x, run_dir, resume, &err);
    if (rc)
        diag("%s", err.msg);
    last_err = err;
    mspt_experiment_free(&x);
    return rc;
}

static int train_from(const char *run, const char *const *ov, size_t n,
                      const char *resume)
{
    return train_file("exp.lua", run, ov, n, resume);
}

static int train(const char *run, const char *const *ov, size_t n)
{
    return train_from(run, ov, n, NULL);
}

/* Empty directories under dir/run (itself included); -1 if it is absent. */
static int empty_dirs(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int entries = 0, empty = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        entries++;
        char sub[1024];
        struct stat st;
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            empty += empty_dirs(sub);
    }
    closedir(d);
    return empty + (entries == 0);
}

static int run_empty_dirs(const char *run)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, run);
    return empty_dirs(p);
}

/* The records of run's event files, oldest file first (their names sort
 * by creation time); returns the count of files. */
static int event_files(const char *run, char files[][512], int max)
{
    char tbdir[256];
    snprintf(tbdir, sizeof tbdir, "%s/%s/tb", dir, run);
    struct dirent **list;
    int n = scandir(tbdir, &list, NULL, alphasort), k = 0;
    for (int i = 0; i < n; i++) {
        if (strstr(list[i]->d_name, "events.out.tfevents.") && k < max)
            snprintf(files[k++], 512, "%s/%s", tbdir, list[i]->d_name);
        free(list[i]);
    }
    if (n >= 0)
        free(list);
    return k;
}

static int exists(const char *run, const char *rel)
{
    char p[256];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s/%s", dir, run, rel);
    return stat(p, &st) == 0;
}

/* metrics.csv cell (row with this step, column by name); NAN if empty. */
typedef struct row {
    long long step;
    double v[4]; /* train_loss, train_loss_epoch, val_loss, lr */
} row;

static int read_csv(const char *run, row *rows, int max)
{
    char p[256], line[512];
    snprintf(p, sizeof p, "%s/%s/metrics.csv", dir, run);
    FILE *fp = fopen(p, "r");
    if (!fp)
        return -1;
    int n = 0;
    if (!fgets(line, sizeof line, fp) ||
        strcmp(line, "step,epoch,train_loss,train_loss_epoch,val_loss,lr,samples_per_sec\n")) {
        fclose(fp);
        return -1;
    }
    while (n < max && fgets(line, sizeof line, fp)) {
        char *cell[8];
        int k = 0;
        char *s = line;
        for (cell[k++] = s; *s && k < 8; s++)
            if (*s == ',') {
                *s = '\0';
                cell[k++] = s + 1;
            }
        rows[n].step = atoll(cell[0]);
        for (int c = 0; c < 4; c++)
            rows[n].v[c] = *cell[2 + c] && *cell[2 + c] != '\n' ? atof(cell[2 + c]) : NAN;
        n++;
    }
    fclose(fp);
    return n;
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/mspt-test-outputs-XXXXXX");
    if (!mkdtemp(dir))
        tap_bail("mkdtemp");
    char path[128];
    snprintf(path, sizeof path, "%s/exp.lua", dir);
    FILE *fp = fopen(path, "w");
    fputs(exp_lua, fp);
    fclose(fp);
    char plugins[4200];
    snprintf(plugins, sizeof plugins, "%s/plugins", getenv("MSPT_BUILDDIR"));
    setenv("MSPT_PLUGIN_PATH", plugins, 1);

    ok(train("run", NULL, 0) == 0, "a 3-epoch run with both loggers");
    row rows[256];
    int nrows = read_csv("run", rows, 256);
    ok(nrows > 0, "metrics.csv has a header and %d rows", nrows);

    /* the event file */
    char evpath[2][512];
    int nfiles = event_files("run", evpath, 2);
    ok(nfiles == 1, "one event file in run_dir/tb");
    size_t len = 0;
    uint8_t *buf = nfiles ? slurp(evpath[0], &len) : NULL;
    static event ev[4096];
    const char *why = "no file";
    int nev = buf ? read_records(buf, len, ev, 4096, &why) : -1;
    ok(nev > 1 && !strcmp(ev[0].file_version, "brain.Event:2"),
       "event file: every record's length and data CRC valid, file_version first (%s)",
       nev < 0 ? why : "ok");
    ok(nev > 1 && ev[1].session_status == 1 && ev[1].step == 0 &&
           !ev[1].has_simple && !ev[1].has_image,
       "then a SessionLog START at step 0");

    /* every scalar event is a metrics.csv cell, and every cell an event */
    static const char *tags[4] = {"train_loss", "train_loss_epoch", "val_loss", "lr"};
    int scalars = 0, matched = 0, images = 0, good_images = 0;
    for (int i = 1; i < nev; i++) {
        if (ev[i].has_simple) {
            scalars++;
            for (int r = 0; r < nrows; r++)
                for (int c = 0; c < 4; c++)
                    if (rows[r].step == ev[i].step && !strcmp(tags[c], ev[i].tag) &&
                        !isnan(rows[r].v[c]) &&
                        fabs(rows[r].v[c] - ev[i].simple) <= 1e-6 * fabs(rows[r].v[c]) + 1e-9) {
                        matched++;
                        r = nrows;
                        break;
                    }
        } else if (ev[i].has_image) {
            images++;
            int w = 0, h = 0;
            unsigned char *px = png_decode(ev[i].png, ev[i].png_len, &w, &h);
            good_images += px && w == 400 && h == 200 && ev[i].width == 400 &&
                           ev[i].height == 200;
            free(px);
        }
    }
    int cells = 0;
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < 4; c++)
            cells += !isnan(rows[r].v[c]);
    ok(scalars > 0 && matched == scalars && cells == scalars,
       "scalar tags and steps match metrics.csv (%d events, %d matched, %d cells)",
       scalars, matched, cells);
    ok(images == 6 && good_images == 6,
       "6 images (2 samples x 3 epochs), each a 400 x 200 PNG (%d of %d)", good_images,
       images);
    ok(exists("run", "plots/epoch_001_sample_0.png") &&
           exists("run", "plots/epoch_003_sample_5.png") &&
           !exists("run", "plots/epoch_004_sample_0.png"),
       "per-epoch reconstruction plots on disk");
    ok(exists("run", "plots/curves.png"), "curves.png at the end of the run");
    free(buf);

    const char *csv_only[] = {"logger=[csv]"};
    ok(train("csv", csv_only, 1) == 0 && exists("csv", "metrics.csv") &&
           !exists("csv", "tb"), "logger = {\"csv\"}: no event file");
    const char *tb_only[] = {"logger=[tensorboard]"};
    ok(train("tb", tb_only, 1) == 0 && !exists("tb", "metrics.csv") && exists("tb", "tb"),
       "logger = {\"tensorboard\"}: no metrics.csv");
    const char *far[] = {"plots.samples=[0, 9]"}; /* 8 validation windows */
    ok(train("far", far, 1) == MSPT_ERR_CONFIG &&
           strstr(last_err.msg, "plots.samples[2]: window 9, but the validation "
                                "split has 8 windows"),
       "a plot sample past the validation split is refused before training");
    const char *nochan[] = {"plots.channels=[3]"};
    ok(train("nochan", nochan, 1) == MSPT_ERR_CONFIG &&
           strstr(last_err.msg, "plots.channels[1]: channel 3, but windows have 3 channels"),
       "a plot channel the windows lack is refused");
    /* resuming: the new event file restarts the session just past the
     * checkpoint, so TensorBoard drops what the first run logged later */
    const char *one[] = {"trainer.max_epochs=1", "trainer.log_every_n_steps=1"};
    const char *three[] = {"trainer.max_epochs=3", "trainer.log_every_n_steps=1"};
    row r1[64];
    int n1 = train("res", one, 2) == 0 ? read_csv("res", r1, 64) : -1;
    int rc3 = n1 > 0 ? train_from("res", three, 2, "last") : -1;
    char files[4][512];
    int nf = event_files("res", files, 4), nrec = -1;
    static event rev[1024];
    if (rc3 == 0 && nf == 2) {
        size_t rlen = 0;
        uint8_t *rbuf = slurp(files[1], &rlen);
        nrec = rbuf ? read_records(rbuf, rlen, rev, 1024, &why) : -1;
        free(rbuf);
    }
    long long saved = n1 > 0 ? r1[n1 - 1].step : -1;
    ok(nf == 2 && nrec > 2 && rev[1].session_status == 1 &&
           rev[1].step == saved + 1 && rev[2].step > saved,
       "resumed run: a second event file, START at step %lld (checkpoint at %lld), "
       "then later steps", nrec > 1 ? rev[1].step : -1, saved);

    const char *bad[] = {"logger=[wandb]"};
    mspt_error err = {0};
    snprintf(path, sizeof path, "%s/exp.lua", dir);
    mspt_experiment x;
    int rc = mspt_experiment_load(&x, path, bad, 1, &err);
    if (!rc)
        rc = mspt_train(&x, "/tmp/never", NULL, &err);
    mspt_experiment_free(&x);
    ok(rc == MSPT_ERR_CONFIG && strstr(err.msg, "logger[1]: unknown logger 'wandb'"),
       "an unknown logger is refused (%s)", err.msg);

    /* without validation: no val_loss anywhere, checkpoints by val_loss
     * refused, and disabled outputs leave no empty directories */
    const char *noval[] = {"trainer.train_val_split=1.0", "trainer.save_top_k=0",
                           "trainer.save_last=false", "plots.samples=[]",
                           "trainer.log_every_n_steps=1"};
    ok(train("noval", noval, 5) == 0, "a run without validation (train_val_split = 1)");
    nrows = read_csv("noval", rows, 256);
    int vals = 0, epochs = 0;
    for (int r = 0; r < nrows; r++) {
        vals += !isnan(rows[r].v[2]);
        epochs += !isnan(rows[r].v[1]);
    }
    ok(nrows > 0 && epochs == 3 && vals == 0,
       "metrics.csv: train_loss_epoch of 3 epochs, no val_loss value (%d)", vals);
    nfiles = event_files("noval", evpath, 2);
    buf = nfiles == 1 ? slurp(evpath[0], &len) : NULL;
    nev = buf ? read_records(buf, len, ev, 4096, &why) : -1;
    int tb_vals = 0, tb_scalars = 0;
    for (int i = 1; i < nev; i++) {
        tb_scalars += ev[i].has_simple;
        tb_vals += ev[i].has_simple && !strcmp(ev[i].tag, "val_loss");
    }
    free(buf);
    ok(tb_scalars > 0 && tb_vals == 0, "TensorBoard: no val_loss either (%d of %d scalars)",
       tb_vals, tb_scalars);
    ok(!exists("noval", "checkpoints") && run_empty_dirs("noval") == 0,
       "no checkpoints directory when none is kept, no empty directory (%d)",
       run_empty_dirs("noval"));
    const char *quiet[] = {"trainer.train_val_split=1.0", "trainer.save_top_k=0",
                           "trainer.save_last=false", "plots.samples=[]", "logger=[]"};
    ok(train("quiet", quiet, 5) == 0 && exists("quiet", "hparams.yaml") &&
           run_empty_dirs("quiet") == 0 && !exists("quiet", "plots"),
       "no loggers, plots nor checkpoints: hparams.yaml alone (%d empty)",
       run_empty_dirs("quiet"));
    const char *monitor[] = {"trainer.train_val_split=1.0"};
    ok(train("monitor", monitor, 1) == MSPT_ERR_CONFIG &&
           strstr(last_err.msg, "trainer.monitor: val_loss, but there is no validation"),
       "checkpoints ranked by val_loss without validation: a configuration error (%s)",
       last_err.msg);
    ok(!exists("monitor", "") && !exists("far", "") && !exists("nochan", ""),
       "configuration errors leave no run directory nor hparams.yaml");

    /* the default plots.samples {0, 1, 2} is cut to a smaller split */
    snprintf(path, sizeof path, "%s/small.lua", dir);
    fp = fopen(path, "w");
    fputs("local e = dofile(require('mspt').script_dir .. '/exp.lua')\n"
          "e.plots.samples = nil\n"
          "e.trainer.train_val_split = 0.95\n"
          "return e\n", fp);
    fclose(fp);
    ok(train_file("small.lua", "small", NULL, 0, NULL) == 0 &&
           exists("small", "plots/epoch_001_sample_1.png") &&
           !exists("small", "plots/epoch_001_sample_2.png"),
       "default plot samples past a 2-window validation split are dropped (%s)",
       last_err.msg);
    char hp[256], line[256];
    snprintf(hp, sizeof hp, "%s/small/hparams.yaml", dir);
    int recorded = 0;
    fp = fopen(hp, "r");
    while (fp && fgets(line, sizeof line, fp))
        recorded += !strcmp(line, "  samples: [0, 1]\n");
    if (fp)
        fclose(fp);
    ok(recorded == 1, "hparams.yaml records the samples plotted");
    const char *explicit3[] = {"plots.samples=[0, 1, 2]"};
    ok(train_file("small.lua", "small3", explicit3, 1, NULL) == MSPT_ERR_CONFIG &&
           strstr(last_err.msg, "plots.samples[3]: window 2, but the validation split "
                                "has 2 windows"),
       "explicit samples past the split stay an error (%s)", last_err.msg);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        diag("could not remove %s", dir);
    return tap_done();
}
