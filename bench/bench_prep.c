/* bench_prep — datasets.edf's preprocessing against MNE 1.3 on the same
 * recording in the same run, and the loader against a training run.
 *
 *   ./bench/bench_prep [repeats]     (run from the build directory)
 *
 * The recording is the TUH file of ../shared/data with its 17 one-second
 * records repeated `repeats` times (default 60: 17 minutes of EEG, 250 Hz,
 * 30 signals).  Prints the load average (other jobs skew every figure),
 * then, each the median of several runs:
 *   1. C preprocessing (the TUH recipe, no cache) in seconds of EEG per
 *      second, on 1 thread and on all threads, after a first run that
 *      makes the process's FFT plans (its time printed too);
 *   2. MNE (bench/bench_prep.py, Debian's python3) on the same file, the
 *      ratio, and the two outputs' per-derivation relative RMS difference;
 *   3. the dataset built cold (preprocess + write the cache) and warm (map
 *      and verify the cache), and the loader's throughput in windows/s
 *      with 2 workers;
 *   4. a short FEMBA training run on these windows through mspt_train:
 *      its step rate, and the share of its time spent waiting for data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mspt/mspt.h>

#include "../plugins/datasets/edf_montage.h"
#include "../plugins/datasets/edf_prep.h"
#include "config/node.h"
#include "config/schema.h"
#include "config/yaml_io.h"
#include "data/loader.h"
#include "plugin/registry.h"
#include "task/experiment.h"
#include "task/trainer.h"

#ifndef BENCH_SRCDIR
#define BENCH_SRCDIR "."
#endif

static char work[64];

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return v[n / 2];
}

/* The 1, 5 and 15 minute load averages, e.g. "0.52 1.23 1.44", or "?". */
static const char *loadavg(void)
{
    static char buf[64];
    double l1, l5, l15;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf %lf %lf", &l1, &l5, &l15) == 3)
        snprintf(buf, sizeof buf, "%.2f %.2f %.2f", l1, l5, l15);
    else
        snprintf(buf, sizeof buf, "?");
    if (f)
        fclose(f);
    return buf;
}

static void die(const char *msg)
{
    fprintf(stderr, "bench_prep: %s\n", msg);
    exit(1);
}

/* The TUH recording with its records repeated `repeats` times. */
static double make_long(const char *src, const char *dst, int repeats)
{
    FILE *f = fopen(src, "rb");
    if (!f)
        die("the TUH recording (../shared/data/tuh/...) is absent");
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t header = 7936, body = n - header;
    int records = 17;
    char field[16];
    snprintf(field, sizeof field, "%-8d", records * repeats % 100000000);
    memcpy(buf + 236, field, 8);
    FILE *o = fopen(dst, "wb");
    fwrite(buf, 1, header, o);
    for (int r = 0; r < repeats; r++)
        fwrite(buf + header, 1, body, o);
    fclose(o);
    return records * repeats;
}

static edf_recipe tuh_recipe(int threads)
{
    edf_recipe r = {edf_tuh_channels, 21, {0}, 0.1, 75, 60, 256, 1280, 1280,
                    1.0, threads};
    char err[512];
    if (edf_montage_pairs(&r.montage, edf_tcp_pairs, 22, edf_tuh_channels, 21,
                          err, sizeof err))
        die(err);
    return r;
}

/* Median seconds of preprocessing path with `threads`; windows into *w. */
static double time_prep(const char *path, int threads, int runs, edf_windows *w)
{
    edf_recipe r = tuh_recipe(threads);
    double t[16];
    if (runs > 16)
        runs = 16;
    char err[1024];
    for (int i = 0; i < runs; i++) {
        if (i)
            free(w->data);
        double t0 = now();
        if (edf_prep_file(path, &r, w, err, sizeof err))
            die(err);
        t[i] = now() - t0;
    }
    edf_montage_free(&r.montage);
    return median(t, runs);
}

/* A float32 .npy of n floats (numpy.save), or NULL. */
static float *load_npy(const char *path, size_t n)
{
    FILE *f = fopen(path, "rb");
    unsigned char head[10];
    if (!f || fread(head, 1, 10, f) != 10) {
        if (f)
            fclose(f);
        return NULL;
    }
    fseek(f, 10 + (head[8] | head[9] << 8), SEEK_SET);
    float *x = malloc(n * sizeof *x);
    if (fread(x, sizeof *x, n, f) != n) {
        free(x);
        x = NULL;
    }
    fclose(f);
    return x;
}

static const mspt_dataset_vt *edf_vt(const mspt_component **comp)
{
    static mspt_registry *reg;
    char path[4200];
    mspt_error err = {0};
    snprintf(path, sizeof path, "%s/plugins/datasets/.libs/edf.so", MSPT_BUILDDIR);
    reg = mspt_registry_new();
    if (mspt_registry_load_file(reg, path, 0, &err))
        die(err.msg);
    *comp = mspt_registry_find(reg, MSPT_KIND_DATASET, "edf", &err);
    if (!*comp)
        die(err.msg);
    return (*comp)->vtable;
}

static void *make_dataset(const mspt_component *c, const char *yaml)
{
    mspt_error err = {0};
    mspt_node *tree = mspt_yaml_parse(yaml, "data", &err);
    const mspt_param *schemas[] = {c->params, NULL};
    if (!tree || mspt_schema_validate(tree, "data", schemas, NULL, &err))
        die(err.msg);
    mspt_config cfg;
    mspt_config_init(&cfg, "data", tree);
    void *self = NULL;
    if (((const mspt_dataset_vt *)c->vtable)->create(&cfg, &self, &err))
        die(err.msg);
    mspt_node_free(tree);
    return self;
}

/* Train briefly; returns the share of time waited for data (from the
 * trainer's closing line) and the seconds per update. */
static double train(const char *edf, double *per_step, int steps)
{
    char lua[2048], path[128], run[128], log[128];
    snprintf(lua, sizeof lua,
             "return {\n"
             "  seed = 1,\n"
             "  model = { _target_ = 'femba', num_channels = 22, seq_length = 1280,\n"
             "            patch_size = { 2, 16 }, embed_dim = 16, num_blocks = 1, exp = 2 },\n"
             "  criterion = { _target_ = 'smooth_l1', beta = 1.0 },\n"
             "  optimizer = { _target_ = 'adamw', lr = 1e-3 },\n"
             "  data = { _target_ = 'edf', path = '%s', cache_dir = '%s/cache' },\n"
             "  trainer = { batch_size = 8, max_steps = %d, progress_bar = 'off',\n"
             "              save_top_k = 0, num_workers = 2, limit_val_batches = 1 },\n"
             "}\n", edf, work, steps);
    snprintf(path, sizeof path, "%s/exp.lua", work);
    FILE *f = fopen(path, "w");
    fputs(lua, f);
    fclose(f);
    snprintf(run, sizeof run, "%s/run", work);
    snprintf(log, sizeof log, "%s/train.log", work);
    char plugins[4200];
    snprintf(plugins, sizeof plugins, "%s/plugins", MSPT_BUILDDIR);
    setenv("MSPT_PLUGIN_PATH", plugins, 1);
    fflush(stdout);
    int saved = dup(1);
    if (!freopen(log, "w", stdout))
        die("cannot redirect stdout");
    mspt_experiment x;
    mspt_error err = {0};
    int rc = mspt_experiment_load(&x, path, NULL, 0, &err);
    if (!rc)
        rc = mspt_train(&x, run, NULL, &err);
    mspt_experiment_free(&x);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    if (rc)
        die(err.msg);
    f = fopen(log, "r");
    char line[512];
    double waited = -1, secs = 0;
    long long updates = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "done: %lld updates in %lf s; waited for data %lf%%",
                   &updates, &secs, &waited) == 3)
            break;
    fclose(f);
    *per_step = updates ? secs / updates : 0;
    return waited;
}

int main(int argc, char **argv)
{
    int repeats = argc > 1 ? atoi(argv[1]) : 60;
    if (repeats < 1)
        die("usage: bench_prep [repeats]");
    snprintf(work, sizeof work, "/tmp/mspt-bench-prep-XXXXXX");
    if (!mkdtemp(work))
        die("mkdtemp");
    char tuh[4200], edf[128], cmd[8600], npy[128];
    snprintf(tuh, sizeof tuh, "%s/../shared/data/tuh/00009578_s002_t001.edf",
             BENCH_SRCDIR);
    snprintf(edf, sizeof edf, "%s/long.edf", work);
    double eeg = make_long(tuh, edf, repeats);
    int threads = mspt_get_threads();
    printf("recording: TUH 00009578_s002_t001 x %d = %.0f s of EEG (250 Hz, "
           "21 of 30 signals picked)\n", repeats, eeg);

    printf("load average before: %s (%d cores; figures are skewed when other "
           "jobs run)\n", loadavg(), (int)sysconf(_SC_NPROCESSORS_ONLN));

    edf_windows w1, wn;
    /* the first run makes the FFT plans (FFTW_ESTIMATE) and the awkward
     * inverse's tables, as the first file of a dataset does */
    double first = time_prep(edf, 1, 1, &w1);
    free(w1.data);
    double t1 = time_prep(edf, 1, 7, &w1);
    double tn = time_prep(edf, threads, 7, &wn);
    printf("C preprocessing (TUH recipe): first run (plans made) %.3f s; then "
           "%.3f s on 1 thread = %.0f s of EEG/s; %.3f s on %d threads = %.0f s "
           "of EEG/s\n", first, t1, eeg / t1, tn, threads, eeg / tn);

    snprintf(npy, sizeof npy, "%s/mne.npy", work);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/bench/bench_prep.py %s "
             "--repeats 3 --out %s", BENCH_SRCDIR, edf, npy);
    FILE *p = popen(cmd, "r");
    char line[256];
    double mne_s = 0, mne_tp = 0;
    while (p && fgets(line, sizeof line, p)) {
        sscanf(line, "mne_seconds %lf", &mne_s);
        sscanf(line, "mne_throughput %lf", &mne_tp);
    }
    if (p)
        pclose(p);
    if (mne_s > 0) {
        printf("MNE 1.3 (same recipe, same file; one core): %.3f s = %.0f s of "
               "EEG/s;  C is %.1fx faster on 1 thread (%.1fx counting its first "
               "run), %.1fx on %d\n", mne_s, mne_tp, mne_s / t1, mne_s / first,
               mne_s / tn, threads);
        /* MNE given the same cores: its own n_jobs (joblib workers) */
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/bench/bench_prep.py %s "
                 "--repeats 3 --n-jobs %d", BENCH_SRCDIR, edf, threads);
        double mne_j = 0;
        if (threads > 1 && (p = popen(cmd, "r"))) {
            while (fgets(line, sizeof line, p))
                sscanf(line, "mne_seconds %lf", &mne_j);
            pclose(p);
        }
        if (mne_j > 0)
            printf("MNE with n_jobs=%d: %.3f s;  C on %d threads is %.1fx "
                   "faster\n", threads, mne_j, threads, mne_j / tn);
        printf("load average after the timings: %s\n", loadavg());
        float *ref = load_npy(npy, wn.n * 22 * 1280);
        if (ref) {
            double worst = 0;
            for (int c = 0; c < 22; c++) {
                double e = 0, s = 0;
                for (size_t k = 0; k < wn.n; k++)
                    for (int t = 0; t < 1280; t++) {
                        size_t i = (k * 22 + (size_t)c) * 1280 + (size_t)t;
                        e += (wn.data[i] - ref[i]) * (double)(wn.data[i] - ref[i]);
                        s += (double)ref[i] * ref[i];
                    }
                worst = fmax(worst, sqrt(e / s));
            }
            printf("  parity on this file: %zu windows, worst per-derivation "
                   "relative RMS difference %.2g\n", wn.n, worst);
            free(ref);
        }
    } else {
        printf("MNE: not measured (needs /usr/bin/python3 with python3-mne)\n");
    }
    free(w1.data);
    free(wn.data);

    const mspt_component *comp;
    const mspt_dataset_vt *vt = edf_vt(&comp);
    char yaml[512];
    snprintf(yaml, sizeof yaml, "{path: %s, cache_dir: %s/cache}", edf, work);
    fflush(stdout);
    double t0 = now();
    void *d = make_dataset(comp, yaml); /* prints its progress on stderr */
    double cold = now() - t0;
    vt->destroy(d);
    t0 = now();
    d = make_dataset(comp, yaml);
    double warm = now() - t0;
    size_t nw;
    int C, T;
    vt->shape(d, &nw, &C, &T);
    printf("dataset: %zu windows; cold (preprocess + write cache) %.3f s, "
           "warm (map + verify checksum) %.4f s\n", nw, cold, warm);

    mspt_source src = {vt, d, "data"};
    mspt_error err = {0};
    mspt_loader *l = mspt_loader_new(&src, 1, 1.0, 1, 2, 16, &err);
    if (!l)
        die(err.msg);
    double rates[5];
    for (int rep = 0; rep < 5; rep++) {
        mspt_loader_begin(l, MSPT_SPLIT_TRAIN, rep, 16, 1, 0, 0, 0);
        const float *x;
        int B;
        size_t got = 0;
        t0 = now();
        while ((B = mspt_loader_next(l, &x, &err)) > 0)
            got += (size_t)B;
        rates[rep] = got / (now() - t0);
    }
    double rate = median(rates, 5);
    printf("loader (2 workers, batch 16, shuffled): %.0f windows/s = %.0f MB/s\n",
           rate, rate * C * T * 4 / 1e6);
    mspt_loader_free(l);
    vt->destroy(d);

    double per_step;
    double waited = train(edf, &per_step, 30);
    printf("training (FEMBA 22x1280, embed 16, batch 8, %d threads): %.3f s per "
           "update = %.0f windows/s consumed; the loader delivers %.0fx that; "
           "waited for data %.1f%% of the time (target <= 5%%)\n", threads,
           per_step, per_step > 0 ? 8 / per_step : 0,
           per_step > 0 ? rate / (8 / per_step) : 0, waited);

    snprintf(cmd, sizeof cmd, "rm -rf %s", work);
    if (system(cmd))
        fprintf(stderr, "bench_prep: could not remove %s\n", work);
    return 0;
}
