/* Micro-benchmark of the fused ops at the reference models' sizes:
 * FEMBA-Tiny's selective scan (B=16, L=80, D=1540, N=16) and depthwise conv
 * (K=4), the Transformer's attention (B=8, H=3, N=704, hd=64) and rotary.
 * Prints forward / backward milliseconds per thread count: minimum wall
 * time over reps (on a shared machine the least disturbed), the median, and
 * the minimum process CPU time.
 *
 *   bench/bench_fused [reps [op]]     op: scan, attention, rotary, dwconv
 * (threads 1, then 2) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mspt/mspt.h>

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* wall and process CPU time: on a shared machine the CPU time of a
 * 1-thread run is the steadier figure (with 2 threads it also counts
 * OpenMP's spin-waiting) */
typedef struct { double wall, cpu; } stamp;

static stamp now(void)
{
    stamp s = {clock_ms(CLOCK_MONOTONIC), clock_ms(CLOCK_PROCESS_CPUTIME_ID)};
    return s;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static mspt_tensor *param(mspt_params *ps, mspt_rng *rng, const char *name,
                          int ndim, const int *shape, float lo, float hi)
{
    mspt_tensor *t = mspt_param_new(ps, name, ndim, shape, 0);
    mspt_init_uniform(t, rng, lo, hi);
    return t;
}

typedef struct {
    mspt_tensor *in[7];
    int which; /* 0 scan, 1 attention, 2 rotary, 3 dwconv */
} bench_case;

static mspt_tensor *run(mspt_ctx *ctx, bench_case *c)
{
    mspt_tensor **in = c->in;
    switch (c->which) {
    case 0:
        return mspt_selective_scan(ctx, in[0], in[1], in[2], in[3], in[4],
                                   in[5], in[6]);
    case 1:
        return mspt_attention(ctx, in[0], in[1], in[2], 0.125f);
    case 2:
        return mspt_rotary(ctx, in[0], 10000.0f);
    default:
        return mspt_dwconv1d_causal(ctx, in[0], in[1], in[2]);
    }
}

/* ms of: forward without grad, forward with grad (saving for backward),
 * backward; each as wall and CPU time */
static void time_case(const char *name, bench_case *c, int reps)
{
    mspt_ctx *ctx = mspt_ctx_new();
    double *t = malloc(6 * (size_t)reps * sizeof(double));
    float *gy = NULL;
    for (int r = -2; r < reps; r++) { /* two warm-up rounds */
        mspt_ctx_reset(ctx);
        mspt_ctx_set_grad(ctx, 0);
        stamp t0 = now();
        mspt_tensor *y = run(ctx, c);
        stamp t1 = now();
        mspt_ctx_reset(ctx);
        mspt_ctx_set_grad(ctx, 1);
        stamp t2 = now();
        y = run(ctx, c);
        stamp t3 = now();
        if (!y) {
            fprintf(stderr, "%s: %s\n", name, mspt_ctx_error(ctx));
            exit(1);
        }
        if (!gy) {
            gy = malloc(y->numel * sizeof(float));
            for (size_t i = 0; i < y->numel; i++)
                gy[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
        }
        mspt_backward_with(ctx, y, gy);
        stamp t4 = now();
        if (r >= 0) {
            t[r] = t1.wall - t0.wall;
            t[reps + r] = t1.cpu - t0.cpu;
            t[2 * reps + r] = t3.wall - t2.wall;
            t[3 * reps + r] = t3.cpu - t2.cpu;
            t[4 * reps + r] = t4.wall - t3.wall;
            t[5 * reps + r] = t4.cpu - t3.cpu;
        }
    }
    for (int k = 0; k < 6; k++)
        qsort(t + k * reps, reps, sizeof(double), cmp);
    double *m = t; /* minimum of each series */
    printf("%-40s thr %d  fwd %7.2f (med %7.2f, cpu %7.2f)  fwd+save %7.2f  "
           "bwd %7.2f (med %7.2f, cpu %7.2f) ms\n", name, mspt_get_threads(),
           m[0], t[reps / 2], m[reps], m[2 * reps], m[4 * reps],
           t[4 * reps + reps / 2], m[5 * reps]);
    free(gy);
    free(t);
    mspt_ctx_free(ctx);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 10;
    const char *only = argc > 2 ? argv[2] : "";
    mspt_params *ps = mspt_params_new();
    mspt_rng *rng = mspt_rng_new(1);
    int B = 16, L = 80, D = 1540, N = 16;
    bench_case scan = {{
        param(ps, rng, "u", 3, (int[]){B, L, D}, -1, 1),
        param(ps, rng, "dt", 3, (int[]){B, L, D}, 0.001f, 0.1f),
        param(ps, rng, "A", 2, (int[]){D, N}, -16, -1),
        param(ps, rng, "Bm", 3, (int[]){B, L, N}, -1, 1),
        param(ps, rng, "Cm", 3, (int[]){B, L, N}, -1, 1),
        param(ps, rng, "D", 1, (int[]){D}, 0.5f, 1.5f),
        param(ps, rng, "z", 3, (int[]){B, L, D}, -1, 1),
    }, 0};
    int as[4] = {8, 3, 704, 64};
    bench_case att = {{param(ps, rng, "q", 4, as, -1, 1),
                       param(ps, rng, "k", 4, as, -1, 1),
                       param(ps, rng, "v", 4, as, -1, 1)}, 1};
    bench_case rot = {{att.in[0]}, 2};
    bench_case dw = {{scan.in[0], param(ps, rng, "w", 3, (int[]){D, 1, 4}, -0.5f, 0.5f),
                      scan.in[5]}, 3};
    printf("# BLIS kernel: %s\n", mspt_blas_kernel());
    for (int th = 1; th <= 2; th++) {
        mspt_set_threads(th);
        if (strstr("scan", only))
            time_case("selective_scan (16,80,1540) N=16 Dskip z", &scan, reps);
        if (strstr("attention", only))
            time_case("attention (8,3,704,64)", &att, reps);
        if (strstr("rotary", only))
            time_case("rotary (8,3,704,64)", &rot, reps);
        if (strstr("dwconv", only))
            time_case("dwconv1d_causal (16,80,1540) K=4", &dw, reps);
    }
    mspt_rng_free(rng);
    mspt_params_free(ps);
    return 0;
}
