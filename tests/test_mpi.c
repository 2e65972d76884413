/* Data-parallel training under mpirun (built only with MPI): 2 ranks with
 * batches of 4 end 20 updates with the weights and logs of 1 rank with
 * batches of 8; a run resumes with another number of ranks, at an epoch's
 * end or mid-epoch; only rank 0 speaks; and a failure on one rank, or on
 * all, stops every rank with one message naming the rank.
 *
 * mpirun runs as `MSPT_MPIRUN` when set, else with the options a container
 * running as root needs (see MPIRUN below). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mspt/mspt.h>

#include "io/safetensors.h"
#include "tap.h"

/* --allow-run-as-root: CI runs as root; --oversubscribe: fewer cores than
 * ranks is fine; shared memory without CMA single copy (ptrace is often
 * barred in containers). */
#define MPIRUN "mpirun --allow-run-as-root --oversubscribe --mca btl self,vader " \
               "--mca btl_vader_single_copy_mechanism none -x MSPT_PLUGIN_PATH"

static char dir[64], mspt[4200];
static const char *mpirun;

/* 22 × 64 windows, FEMBA with 3.9 M parameters (two allreduce buckets);
 * 80 training windows: 10 updates an epoch in batches of 8.  The first
 * epoch is the warm-up, so stopping after it leaves its schedule alone. */
static const char *big_lua =
    "return {\n"
    "  name = 'mpi', seed = 7, threads = 1,\n"
    "  model = { _target_ = 'femba', num_channels = 22, seq_length = 64,\n"
    "            patch_size = { 2, 8 }, embed_dim = 35, num_blocks = 1, exp = 4,\n"
    "            kernel_dec = { 3, 3 } },\n"
    "  criterion = { _target_ = 'smooth_l1' },\n"
    "  optimizer = { _target_ = 'adamw', lr = 1e-3 },\n"
    "  scheduler = { _target_ = 'cosine', warmup_epochs = 1, t_initial = 20 },\n"
    "  data = { _target_ = 'synthetic', windows = 100, channels = 22, samples = 64 },\n"
    "  trainer = { batch_size = 8, max_epochs = 2, progress_bar = 'off',\n"
    "              gradient_clip_val = 1.0, log_every_n_steps = 5 },\n"
    "  masking = { patch_size = { 1, 8 }, masking_ratio = 0.5 },\n"
    "  input_normalization = { normalize = true },\n"
    "}\n";

/* A small model for the failures. */
static const char *small_lua =
    "local e = dofile(require('mspt').script_dir .. '/big.lua')\n"
    "e.model.num_channels, e.model.embed_dim, e.model.exp = 4, 4, 2\n"
    "e.data.channels = 4\n"
    "e.trainer.batch_size = 4\n"
    "return e\n";

static void write_file(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    if (!fp || fputs(text, fp) < 0 || fclose(fp) != 0)
        tap_bail("cannot write the experiment");
}

/* Run a shell command line (mspt, mpirun) with stdout and stderr into
 * dir/NAME.out and dir/NAME.err; returns the exit status (124: timed out,
 * a hang). */
static int sh(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int sh(const char *name, const char *fmt, ...)
{
    char cmd[8192], line[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "cd '%s' && timeout 300 %s >%s.out 2>%s.err", dir,
             cmd, name, name);
    int st = system(line);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The contents of dir/NAME.EXT (static buffer). */
static const char *slurp(const char *name, const char *ext)
{
    static char buf[1 << 16];
    char path[160];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    FILE *fp = fopen(path, "r");
    size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
    if (fp)
        fclose(fp);
    buf[n] = '\0';
    return buf;
}

static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    for (const char *p = text; *p;) {
        n += strncmp(p, prefix, strlen(prefix)) == 0;
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : p + strlen(p);
    }
    return n;
}

/* One "mspt:" line on stderr (besides mpirun's own notes), holding want. */
static int one_error(const char *name, const char *want)
{
    const char *err = slurp(name, "err");
    int ok1 = count_lines(err, "mspt:") == 1 && strstr(err, want);
    if (!ok1)
        diag("stderr of %s: %s", name, err);
    return ok1;
}

static mspt_st_file *open_last(const char *run)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s/checkpoints/last.safetensors", dir, run);
    return mspt_st_open(path, NULL);
}

/* Largest relative difference of the weights of two runs' last
 * checkpoints: per tensor max|a − b| / max|a| (*elem: per element, against
 * max(|a|, 1e-3)).  1 when a file or tensor is missing. */
static double weights_diff(const char *run_a, const char *run_b, double *elem)
{
    mspt_st_file *a = open_last(run_a), *b = open_last(run_b);
    double worst = a && b ? 0 : 1;
    *elem = worst;
    for (size_t i = 0; a && b && i < mspt_st_count(a); i++) {
        const char *name = mspt_st_name(a, i);
        if (strncmp(name, "model.", 6))
            continue;
        size_t n = mspt_st_numel(a, i);
        float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
        if (mspt_st_read_f32(a, name, x, n, NULL) || mspt_st_read_f32(b, name, y, n, NULL)) {
            worst = *elem = 1;
        } else {
            double dmax = 0, amax = 0;
            for (size_t k = 0; k < n; k++) {
                double d = fabs((double)x[k] - y[k]);
                double e = d / (fabs(x[k]) > 1e-3 ? fabs(x[k]) : 1e-3);
                dmax = d > dmax ? d : dmax;
                amax = fabs(x[k]) > amax ? fabs(x[k]) : amax;
                *elem = e > *elem ? e : *elem;
            }
            double r = amax > 0 ? dmax / amax : dmax;
            worst = r > worst ? r : worst;
        }
        free(x);
        free(y);
    }
    if (a)
        mspt_st_close(a);
    if (b)
        mspt_st_close(b);
    return worst;
}

/* Largest relative difference between two metrics.csv (their step and
 * epoch columns and empty cells must match; samples/s is a timing and
 * skipped); 1 when they differ in shape. */
static double metrics_diff(const char *run_a, const char *run_b, int *rows)
{
    char pa[160], pb[160], la[512], lb[512];
    snprintf(pa, sizeof pa, "%s/%s/metrics.csv", dir, run_a);
    snprintf(pb, sizeof pb, "%s/%s/metrics.csv", dir, run_b);
    FILE *fa = fopen(pa, "r"), *fb = fopen(pb, "r");
    double worst = fa && fb ? 0 : 1;
    *rows = 0;
    while (fa && fb && worst < 1) {
        char *ra = fgets(la, sizeof la, fa), *rb = fgets(lb, sizeof lb, fb);
        if (!ra || !rb) {
            worst = ra || rb ? 1 : worst;
            break;
        }
        (*rows)++;
        char *sa = la, *sb = lb;
        for (int col = 0; col < 6; col++) {
            size_t na = strcspn(sa, ",\n"), nb = strcspn(sb, ",\n");
            if (*rows == 1 || col < 2 || na == 0 || nb == 0) {
                if (na != nb || strncmp(sa, sb, na))
                    worst = 1; /* header, step, epoch, empty cells: as text */
            } else {
                double x = strtod(sa, NULL), y = strtod(sb, NULL);
                double e = fabs(x - y) / (fabs(x) > 1e-12 ? fabs(x) : 1e-12);
                worst = e > worst ? e : worst;
            }
            sa += na + (sa[na] == ',');
            sb += nb + (sb[nb] == ',');
        }
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return worst;
}

static void same_weights(const char *a, const char *b, const char *what)
{
    double elem, e = weights_diff(a, b, &elem);
    ok(e < 1e-5, "%s: weights equal to %.2g relative (per element %.2g)", what, e,
       elem);
}

static void same_metrics(const char *a, const char *b, const char *what)
{
    int rows;
    double e = metrics_diff(a, b, &rows);
    ok(e < 1e-5 && rows > 4, "%s: metrics.csv equal (%d rows, %.2g relative)", what,
       rows, e);
}

int main(void)
{
    const char *env = getenv("MSPT_MPIRUN");
    mpirun = env && *env ? env : MPIRUN;
    if (system("command -v mpirun >/dev/null 2>&1") != 0 && !(env && *env))
        tap_skip_all("no mpirun on PATH");
    snprintf(dir, sizeof dir, "/tmp/mspt-test-mpi-XXXXXX");
    if (!mkdtemp(dir))
        tap_bail("mkdtemp");
    const char *build = getenv("MSPT_BUILDDIR");
    snprintf(mspt, sizeof mspt, "%s/mspt", build ? build : ".");
    char plugins[4300];
    snprintf(plugins, sizeof plugins, "%s/plugins", build ? build : ".");
    setenv("MSPT_PLUGIN_PATH", plugins, 1);
    /* Sanitizer build: ASan and UBSan stay on, leak checks go off.  Open
     * MPI 4.1 dlcloses its components in MPI_Finalize, so their leaks end
     * with unnamed stacks that no suppression can match. */
    const char *asan = getenv("ASAN_OPTIONS");
    if (getenv("MSPT_SANITIZERS") && asan) {
        char opts[4200];
        snprintf(opts, sizeof opts, "%s:detect_leaks=0", asan);
        setenv("ASAN_OPTIONS", opts, 1);
        diag("sanitizer build: no leak check in this test (Open MPI unloads its components)");
    }
    write_file("big.lua", big_lua);
    write_file("small.lua", small_lua);

    ok(sh("version", "%s --version", mspt) == 0 &&
           strstr(slurp("version", "out"), "+mpi"),
       "mspt --version says +mpi");

    /* 1 rank × 8 against 2 ranks × 4, 20 updates */
    int rc = sh("one", "%s run big.lua run_dir=one", mspt);
    ok(rc == 0, "1 rank, batches of 8");
    if (rc)
        diag("%s", slurp("one", "err"));
    rc = sh("two", "%s -np 2 %s run big.lua run_dir=two trainer.batch_size=4", mpirun,
            mspt);
    ok(rc == 0, "2 ranks, batches of 4 each");
    if (rc)
        diag("%s", slurp("two", "err"));
    const char *out = slurp("two", "out");
    int buckets = 0;
    const char *b = strstr(out, "gradient allreduce");
    if (b && (b = strstr(b, "(")))
        buckets = atoi(b + 1);
    ok(strstr(out, "2 ranks, gradient allreduce") && buckets >= 2,
       "the summary names 2 ranks and %d allreduce buckets", buckets);
    ok(count_lines(out, "run_dir:") == 1 && count_lines(out, "model:") == 1 &&
           count_lines(out, "epoch 2:") == 1,
       "only rank 0 prints");
    same_weights("one", "two", "2 x 4 against 1 x 8 after 20 updates");
    same_metrics("one", "two", "2 x 4 against 1 x 8");

    /* a short last batch of 1 window (rank 0's part empty); accumulation */
    rc = sh("s1", "%s run small.lua run_dir=s1 trainer.batch_size=8 data.windows=92 "
            "trainer.drop_last=false", mspt);
    rc |= sh("s2", "%s -np 2 %s run small.lua run_dir=s2 data.windows=92 "
             "trainer.drop_last=false", mpirun, mspt);
    ok(rc == 0, "1 x 8 and 2 x 4 over 73 windows, the last batch of 1");
    same_weights("s1", "s2", "a last batch held by one rank");
    same_metrics("s1", "s2", "a last batch held by one rank");
    rc = sh("a1", "%s run small.lua run_dir=a1 trainer.batch_size=8", mspt);
    rc |= sh("a2", "%s -np 2 %s run small.lua run_dir=a2 trainer.batch_size=2 "
             "trainer.accumulate_grad_batches=2", mpirun, mspt);
    ok(rc == 0, "1 x 8, and 2 ranks accumulating 2 batches of 2");
    same_weights("a1", "a2", "2 x 2 x 2 accumulated against 1 x 8");

    /* resume with another number of ranks */
    rc = sh("h2", "%s -np 2 %s run big.lua run_dir=h2 trainer.batch_size=4 "
            "trainer.max_epochs=1", mpirun, mspt);
    rc |= sh("h2r", "%s run big.lua run_dir=h2 --resume", mspt);
    ok(rc == 0, "2 ranks for an epoch, then 1 rank to the end");
    same_weights("one", "h2", "resumed 2 -> 1 ranks");
    same_metrics("one", "h2", "resumed 2 -> 1 ranks");
    rc = sh("h1", "%s run big.lua run_dir=h1 trainer.max_epochs=1", mspt);
    rc |= sh("h1r", "%s -np 2 %s run big.lua run_dir=h1 trainer.batch_size=4 --resume",
             mpirun, mspt);
    ok(rc == 0, "1 rank for an epoch, then 2 ranks to the end");
    same_weights("one", "h1", "resumed 1 -> 2 ranks");

    /* mid-epoch: 7 updates = 56 windows into epoch 1 */
    rc = sh("m2", "%s -np 2 %s run big.lua run_dir=m2 trainer.batch_size=4 "
            "trainer.max_steps=7", mpirun, mspt);
    ok(rc == 0, "2 ranks stopped mid-epoch by max_steps");
    rc = sh("m16", "%s run big.lua run_dir=m2 --resume trainer.batch_size=16", mspt);
    ok(rc == 2 && one_error("m16", "stopped 56 windows into epoch 1, not a whole "
                                   "number of batches of 16 windows"),
       "resuming there with batches of 16 is refused, naming the position");
    rc = sh("m2r", "%s run big.lua run_dir=m2 --resume", mspt);
    ok(rc == 0, "resumed mid-epoch with 1 rank");
    same_weights("one", "m2", "resumed mid-epoch 2 -> 1 ranks");

    /* failures: every rank stops, one message names the rank */
    rc = sh("nan", "%s -np 2 %s run small.lua run_dir=nan optimizer.lr=1e30", mpirun,
            mspt);
    ok(rc == 1 && one_error("nan", "mspt: rank 0: step ") &&
           one_error("nan", "the loss is not finite"),
       "a failure on all ranks is reported once, by rank 0");
    /* rank 1 alone reads other data (a node with a bad copy): its losses
     * overflow; rank 0 learns of it at the gradient sum */
    rc = sh("bad1", "%s -np 1 %s run small.lua run_dir=bad1 : -np 1 %s run small.lua "
            "run_dir=bad1 input_normalization.normalize=false "
            "data.background_amplitude=1e37", mpirun, mspt, mspt);
    ok(rc == 1 && one_error("bad1", "mspt: rank 1: step 0 (epoch 1, batch 1): the "
                                    "loss is not finite"),
       "a runtime failure on rank 1 alone stops both, naming rank 1");
    rc = sh("data1", "%s -np 1 %s run small.lua run_dir=data1 : -np 1 %s run small.lua "
            "run_dir=data1 data.windows=90", mpirun, mspt, mspt);
    ok(rc == 2 && one_error("data1", "mspt: rank 1: data: 72 training and 18 "
                                     "validation windows here, 80 and 20 on rank 0"),
       "ranks seeing different data are refused");
    rc = sh("cfg1", "%s -np 1 %s run small.lua run_dir=cfg1 : -np 1 %s run small.lua "
            "run_dir=cfg1 trainer.batch_size=0", mpirun, mspt, mspt);
    ok(rc == 2 && one_error("cfg1", "mspt: rank 1: trainer.batch_size: must be >= 1"),
       "a configuration error on rank 1 alone stops both");
    /* rank 0 alone writes checkpoints: a directory in the way of one */
    char blocked[160];
    snprintf(blocked, sizeof blocked, "%s/save/checkpoints/epoch=001-step=10.safetensors",
             dir);
    int made = sh("mk", "mkdir -p '%s'", blocked) == 0;
    rc = sh("save", "%s -np 2 %s run small.lua run_dir=save", mpirun, mspt);
    ok(made && rc == 1 && one_error("save", "mspt: rank 0: ") &&
           one_error("save", "epoch=001-step=10.safetensors"),
       "a failure to save on rank 0 stops both");

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (tap_failures == 0 && system(cmd) != 0)
        diag("could not remove %s", dir);
    return tap_done();
}
