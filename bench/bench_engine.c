/* bench_engine — GEMM-shaped ops at the sizes of DESIGN.md's models.
 *
 * Prints BLIS's sgemm rate in this run (square 1024³ and 2048³, 1 and all
 * threads), then linear forward+backward at every Linear of FEMBA-Tiny and
 * the Transformer (GFLOP/s and % of the sgemm peak measured in the same
 * round, with the thin-GEMM kernels and with BLIS alone), then the
 * patch-embedding conv2d and decoder convolutions.  Every figure is a
 * median of RUNS timed runs or rounds after a warm-up.
 * Run by hand:  ./bench/bench_engine [LAYER...]   (see bench/README.md);
 * naming layers (dt_proj, head, ...) runs only their linear rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mspt/mspt.h>

#include "engine/gemm.h"

#define RUNS 7
#define REPS 4 /* runs of a layer per round: the first warms, 3 timed */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static float *filled(size_t n, mspt_rng *rng)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(mspt_rng_uniform(rng) - 0.5);
    return p;
}

/* GFLOP/s of an (M, N, K) sgemm on `threads` threads (median). */
static double gemm_rate(int M, int N, int K, int threads, mspt_rng *rng)
{
    float *a = filled((size_t)M * K, rng), *b = filled((size_t)K * N, rng);
    float *c = filled((size_t)M * N, rng);
    double flop = 2.0 * M * N * (double)K;
    int reps = flop < 1e9 ? (int)(2e9 / flop) + 1 : 2;
    double t[RUNS];
    mspt_gemm(0, 0, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N, threads);
    for (int r = 0; r < RUNS; r++) {
        double t0 = now();
        for (int i = 0; i < reps; i++)
            mspt_gemm(0, 0, M, N, K, 1.0f, a, K, b, N, 0.0f, c, N, threads);
        t[r] = (now() - t0) / reps;
    }
    free(a);
    free(b);
    free(c);
    return flop / median(t, RUNS) / 1e9;
}

static double sgemm_rate(int n, int threads, mspt_rng *rng)
{
    return gemm_rate(n, n, n, threads, rng);
}

/* When does cutting a GEMM over the threads pay?  (The constants of
 * mspt_gemm_threads in core/engine/blas.c come from this table.) */
static void bench_split(int nt, mspt_rng *rng)
{
    static const int shape[][3] = {
        {64, 64, 64},    {96, 96, 96},     {128, 128, 128}, {160, 160, 160},
        {192, 192, 192}, {256, 256, 256},  {512, 512, 512}, {64, 64, 1024},
        {64, 64, 4096},  {128, 128, 1024}, {32, 1024, 256}, {1024, 32, 256},
    };
    printf("\nsplit or not: GFLOP/s on 1 thread vs cut over %d, and the "
           "engine's choice:\n", nt);
    for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++) {
        int M = shape[i][0], N = shape[i][1], K = shape[i][2];
        double r1 = gemm_rate(M, N, K, 1, rng), rn = gemm_rate(M, N, K, nt, rng);
        printf("  %4d x %4d x %4d   %6.1f   %6.1f   %4.2fx   engine: %d\n", M,
               N, K, r1, rn, rn / r1, mspt_gemm_threads(M, N, K));
    }
}

/* ---- linear ------------------------------------------------------------- */

typedef struct {
    const char *model, *name;
    int rows, in, out, bias;
} linear_case;

/* One forward + backward of y = linear(x, w, b): seconds of each. */
static void linear_once(mspt_ctx *ctx, mspt_tensor *x, mspt_tensor *w,
                        mspt_tensor *b, const float *gy, double *tf,
                        double *tb)
{
    mspt_ctx_reset(ctx);
    double t0 = now();
    mspt_tensor *y = mspt_linear(ctx, x, w, b);
    double t1 = now();
    /* the output gradient put in place untimed: in a model it arrives from
     * the next op; seeding it (zero, then add) is not the layer's */
    float *g = mspt_grad(ctx, y);
    if (g)
        memcpy(g, gy, y->numel * sizeof(float));
    double t1b = now();
    mspt_backward_with(ctx, y, NULL);
    double t2 = now();
    *tf = t1 - t0;
    *tb = t2 - t1b;
}

/* BLIS's sgemm rate on all threads now: the better of 1024³ and 2048³. */
static double peak_now(int nt, float *a, float *b, float *c)
{
    double best = 0;
    for (int n = 1024; n <= 2048; n *= 2) {
        double t0 = now();
        mspt_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n, nt);
        double r = 2.0 * n * n * (double)n / (now() - t0) / 1e9;
        best = r > best ? r : best;
    }
    return best;
}

/* The machine's speed drifts from second to second (a virtual machine on a
 * shared host), so a percentage of a peak measured a minute earlier says
 * little.  Each round measures the sgemm peak, then runs the layer REPS
 * times with the thin kernels (core/engine/thin_gemm.c) and REPS times
 * with BLIS alone, the two in turn first; the first run of each only warms
 * the caches the one before emptied.  A round's figure is its median run
 * against its peak; the table shows medians over rounds. */
static void bench_linear(const linear_case *lc, int nt, float *pa, float *pb,
                         float *pc, mspt_rng *rng)
{
    mspt_params *ps = mspt_params_new();
    mspt_tensor *x = mspt_param_new(ps, "x", 2, (int[]){lc->rows, lc->in}, 0);
    mspt_tensor *w = mspt_param_new(ps, "w", 2, (int[]){lc->out, lc->in}, 0);
    mspt_tensor *b = lc->bias ? mspt_param_new(ps, "b", 1, (int[]){lc->out}, 0)
                              : NULL;
    for (size_t i = 0; i < mspt_params_count(ps); i++)
        mspt_init_uniform(mspt_params_at(ps, i), rng, -0.5f, 0.5f);
    float *gy = filled((size_t)lc->rows * lc->out, rng);
    mspt_ctx *ctx = mspt_ctx_new();
    double flop = 6.0 * lc->rows * (double)lc->in * lc->out; /* y, dx, dw */
    double tf[RUNS], tb[RUNS], pct[RUNS], pct_blis[RUNS], rate_blis[RUNS],
        tblis[REPS];
    int thin = mspt_thin_gemm_enable(1);
    for (int r = -1; r < RUNS; r++) { /* one warm-up round */
        double peak = peak_now(nt, pa, pb, pc), f[REPS], bw[REPS], fb[REPS];
        /* REPS runs each way, the first of each warming the caches; which
         * way goes first after the peak's GEMMs alternates by round (the
         * runs right after them are a few % slower) */
        for (int way = 0; way < 2; way++) {
            int use_thin = (way + r) % 2 == 0;
            mspt_thin_gemm_enable(use_thin && thin);
            for (int i = 0; i < REPS; i++) {
                double f0, b0;
                if (use_thin) {
                    linear_once(ctx, x, w, b, gy, &f[i], &bw[i]);
                    fb[i] = f[i] + bw[i];
                } else {
                    linear_once(ctx, x, w, b, gy, &f0, &b0);
                    tblis[i] = f0 + b0;
                }
            }
        }
        if (r < 0)
            continue;
        tf[r] = median(f + 1, REPS - 1);
        tb[r] = median(bw + 1, REPS - 1);
        double t = median(fb + 1, REPS - 1), t0 = median(tblis + 1, REPS - 1);
        pct[r] = 100.0 * flop / t / 1e9 / peak;
        rate_blis[r] = flop / t0 / 1e9;
        pct_blis[r] = 100.0 * rate_blis[r] / peak;
    }
    mspt_thin_gemm_enable(thin);
    if (mspt_ctx_error(ctx))
        printf("  error: %s\n", mspt_ctx_error(ctx));
    double f = median(tf, RUNS), bw = median(tb, RUNS);
    printf("  %-11s %-8s %4d x %4d -> %4d %s  fwd %6.3f bwd %6.3f ms  "
           "%5.1f GFLOP/s %5.1f%%   BLIS alone %5.1f %5.1f%%\n",
           lc->model, lc->name, lc->rows, lc->in, lc->out, lc->bias ? "+b" : "  ",
           1e3 * f, 1e3 * bw, flop / (f + bw) / 1e9, median(pct, RUNS),
           median(rate_blis, RUNS), median(pct_blis, RUNS));
    mspt_ctx_free(ctx);
    mspt_params_free(ps);
    free(gy);
}

/* ---- convolutions --------------------------------------------------------- */

typedef struct {
    const char *name;
    int transpose;
    int x[4], w[4], bias, sh, sw, ph, pw;
} conv_case;

static void bench_conv(const conv_case *cc, mspt_rng *rng)
{
    mspt_params *ps = mspt_params_new();
    mspt_tensor *x = mspt_param_new(ps, "x", 4, cc->x, 0);
    mspt_tensor *w = mspt_param_new(ps, "w", 4, cc->w, 0);
    int cout = cc->w[cc->transpose ? 1 : 0];
    mspt_tensor *b = cc->bias ? mspt_param_new(ps, "b", 1, (int[]){cout}, 0)
                              : NULL;
    for (size_t i = 0; i < mspt_params_count(ps); i++)
        mspt_init_uniform(mspt_params_at(ps, i), rng, -0.5f, 0.5f);
    mspt_ctx *ctx = mspt_ctx_new();
    double tf[RUNS], tb[RUNS];
    float *gy = NULL;
    size_t ny = 0;
    for (int r = -2; r < RUNS; r++) {
        mspt_ctx_reset(ctx);
        double t0 = now();
        mspt_tensor *y = cc->transpose
            ? mspt_conv_transpose2d(ctx, x, w, b, cc->sh, cc->sw, cc->ph, cc->pw)
            : mspt_conv2d(ctx, x, w, b, cc->sh, cc->sw, cc->ph, cc->pw);
        double t1 = now();
        if (!y)
            break;
        if (!gy) {
            ny = y->numel;
            gy = filled(ny, rng);
        }
        mspt_backward_with(ctx, y, gy);
        double t2 = now();
        if (r >= 0) {
            tf[r] = t1 - t0;
            tb[r] = t2 - t1;
        }
    }
    if (mspt_ctx_error(ctx)) {
        printf("  %-34s error: %s\n", cc->name, mspt_ctx_error(ctx));
    } else {
        /* multiply-adds: every (input position, kernel tap, channel pair) */
        double macs = cc->transpose
            ? (double)cc->x[0] * cc->x[1] * cc->x[2] * cc->x[3] * cc->w[1] *
                  cc->w[2] * cc->w[3]
            : (double)ny * cc->w[1] * cc->w[2] * cc->w[3];
        double f = median(tf, RUNS), bw = median(tb, RUNS);
        printf("  %-34s fwd %7.3f ms  bwd %7.3f ms  %6.1f GFLOP/s\n", cc->name,
               1e3 * f, 1e3 * bw, 6.0 * macs / (f + bw) / 1e9);
    }
    mspt_ctx_free(ctx);
    mspt_params_free(ps);
    free(gy);
}

/* FEMBA-Tiny: E=35, C=22, T=1280, patch (2,16) -> GH=11, GW=80,
 * d = E·GH = 385, D_in = 4d = 1540, R = 25, N = 16, B = 16 -> 1280 rows.
 * Transformer: D = 192, patch 40 -> 22·32 = 704 tokens, B = 8. */
static const linear_case lin[] = {
    {"FEMBA-Tiny", "in_proj", 1280, 385, 3080, 0},
    {"FEMBA-Tiny", "out_proj", 1280, 1540, 385, 0},
    {"FEMBA-Tiny", "x_proj", 1280, 1540, 57, 0},
    {"FEMBA-Tiny", "dt_proj", 1280, 25, 1540, 1},
    {"Transformer", "qkv", 5632, 192, 576, 1},
    {"Transformer", "proj", 5632, 192, 192, 1},
    {"Transformer", "fc1", 5632, 192, 768, 1},
    {"Transformer", "fc2", 5632, 768, 192, 1},
    {"Transformer", "head", 5632, 192, 40, 1},
};

/* Is linear layer `name` asked for?  No names: all of them. */
static int wanted(const char *name, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return argc <= 1;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) { /* every name must be a layer */
        size_t k = 0;
        while (k < sizeof lin / sizeof lin[0] && strcmp(argv[i], lin[k].name))
            k++;
        if (k == sizeof lin / sizeof lin[0]) {
            fprintf(stderr, "bench_engine: no linear layer '%s' (in_proj, "
                            "out_proj, x_proj, dt_proj, qkv, proj, fc1, fc2, "
                            "head)\n", argv[i]);
            return 2;
        }
    }
    mspt_rng *rng = mspt_rng_new(1);
    int nt = mspt_get_threads();
    printf("mspt bench_engine: BLIS kernel %s, %d threads, median of %d runs\n",
           mspt_blas_kernel(), nt, RUNS);

    /* With BLIS's serial flavour the all-thread figure is mspt_gemm's own
     * cut of the square GEMM into one single-threaded BLIS call per thread
     * — BLIS's kernels on every core, which is what BLIS's own threading
     * would give at these sizes (it gave 228 GFLOP/s at 2048³ here).  The
     * best all-thread figure is the peak the percentages divide by; nt ×
     * the 1-thread figure is printed too, but one core alone runs at a
     * higher clock than two together, so it is no honest peak. */
    printf("\nBLIS sgemm (square, GFLOP/s; %s):\n", mspt_blas_threading());
    double peak1 = 0, peak = 0;
    for (int n = 1024; n <= 2048; n *= 2) {
        double r1 = sgemm_rate(n, 1, rng), rn = sgemm_rate(n, nt, rng);
        printf("  %4d^3   1 thread %6.1f   %d threads %6.1f\n", n, r1, nt, rn);
        peak1 = r1 > peak1 ? r1 : peak1;
        peak = rn > peak ? rn : peak;
    }
    printf("  peak: %.1f GFLOP/s on %d threads (1 thread: %.1f; x %d = %.1f)\n",
           peak, nt, peak1, nt, nt * peak1);

    if (nt > 1 && argc <= 1)
        bench_split(nt, rng);

    printf("\nlinear forward+backward (dx, dw, db), %d threads; %% of the sgemm "
           "peak measured in the same round (median of %d rounds); thin "
           "kernels %s\n", nt, RUNS,
           mspt_thin_gemm_enable(1) ? "on" : "not available (BLIS alone)");
    float *pa = filled(2048 * 2048, rng), *pb = filled(2048 * 2048, rng),
          *pc = filled(2048 * 2048, rng);
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++)
        if (wanted(lin[i].name, argc, argv))
            bench_linear(&lin[i], nt, pa, pb, pc, rng);
    free(pa);
    free(pb);
    free(pc);

    static const conv_case conv[] = {
        {"FEMBA patch conv2d (2,16)", 0, {16, 1, 22, 1280}, {35, 1, 2, 16}, 1, 2, 16, 0, 0},
        {"Transformer patch conv2d (1,40)", 0, {8, 1, 22, 1280}, {192, 1, 1, 40}, 1, 1, 40, 0, 0},
        {"FEMBA decoder conv_transpose2d", 1, {16, 35, 11, 80}, {35, 1, 2, 16}, 1, 2, 16, 0, 0},
        {"FEMBA dec_conv conv2d 31x31 p15", 0, {16, 1, 80, 385}, {1, 1, 31, 31}, 0, 1, 1, 15, 15},
    };
    if (argc <= 1)
        printf("\nconvolutions forward+backward (dx, dw, db), %d threads:\n",
               nt);
    for (size_t i = 0; argc <= 1 && i < sizeof conv / sizeof conv[0]; i++)
        bench_conv(&conv[i], rng);
    mspt_rng_free(rng);
    return 0;
}
