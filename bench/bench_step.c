/* bench_step — one full training step of an encoder, as core/task/trainer.c
 * runs it: robust normalisation, patch mask, masked input, forward, masked
 * smooth-L1, backward, gradient clipping (1.0), AdamW step, zero grad.
 * bench/bench_step.py times the same step in PyTorch; bench/run_step_bench.sh
 * runs both and prints the ratios.
 *
 *   ./bench/bench_step femba|transformer [--steps N] [--threads N]
 *
 * Models (22 × 1280 windows): femba = FEMBA-Tiny (E 35, 2 blocks, exp 4,
 * patch (2,16), B 16); transformer = patch 40, dim 192, depth 8, 3 heads,
 * B 8.  Masking as the trainer's defaults: patches {1, 64}, ratio 0.5.
 * Prints the median of N timed steps after 2 warm-up steps and the
 * process's peak RSS (VmHWM): one model per process, so that figure is the
 * model's alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <mspt/mspt.h>

#include "config/schema.h"
#include "config/yaml_io.h"
#include "plugin/registry.h"
#include "task/grads.h"
#include "task/masking.h"
#include "task/normalize.h"

typedef struct spec {
    const char *name, *yaml;
    int B;
} spec;

static const spec specs[] = {
    {"femba", "{num_channels: 22, seq_length: 1280, embed_dim: 35, num_blocks: 2, "
              "exp: 4}", 16},
    {"transformer", "{num_channels: 22, seq_length: 1280, patch_size: 40, "
                    "embed_dim: 192, depth: 8, num_heads: 3}", 8},
};

#define C 22
#define T 1280

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_step: %s: %s\n", what, msg);
    exit(1);
}

/* A component of the build tree's plugins, configured from YAML. */
static const mspt_component *component(mspt_registry *reg, mspt_kind kind,
                                       const char *name, const char *path,
                                       const char *yaml, mspt_config *cfg)
{
    mspt_error err = {0};
    const mspt_component *c = mspt_registry_find(reg, kind, name, &err);
    if (!c)
        die(name, err.msg);
    mspt_node *tree = mspt_yaml_parse(yaml, path, &err); /* kept: cfg points in */
    const mspt_param *schemas[] = {c->params, NULL};
    if (!tree || mspt_schema_validate(tree, path, schemas, NULL, &err))
        die(name, err.msg);
    mspt_config_init(cfg, path, tree);
    return c;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static long vm_hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

static long minor_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v (n), sorted in place (ms[0] of the totals is then the min). */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv)
{
    const spec *s = NULL;
    int steps = 7, threads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else
            for (size_t k = 0; k < sizeof specs / sizeof *specs; k++)
                if (!strcmp(argv[i], specs[k].name))
                    s = &specs[k];
    }
    if (!s || steps < 1 || threads < 1)
        die("usage", "bench_step femba|transformer [--steps N] [--threads N]");
    mspt_set_threads(threads);
    int B = s->B;

    mspt_registry *reg = mspt_registry_new();
    mspt_error err = {0};
    if (mspt_registry_load_dir(reg, MSPT_BUILDDIR "/plugins", 0, &err))
        die("plugins", err.msg);
    mspt_config mcfg, ocfg;
    const mspt_component *mc = component(reg, MSPT_KIND_ENCODER, s->name, "model",
                                         s->yaml, &mcfg);
    const mspt_component *oc = component(reg, MSPT_KIND_OPTIMIZER, "adamw", "optimizer",
                                         "{lr: 1e-4, weight_decay: 0.05}", &ocfg);
    const mspt_encoder_vt *enc = mc->vtable;
    const mspt_optimizer_vt *ovt = oc->vtable;

    mspt_params *ps = mspt_params_new();
    mspt_rng *rng = mspt_rng_new(42);
    void *model, *opt;
    if (enc->create(&mcfg, ps, rng, &model, &err))
        die(s->name, err.msg);
    size_t np = mspt_params_count(ps);
    mspt_param_group g = {malloc(np * sizeof(mspt_tensor *)), np, 1e-4f, 0.05f};
    for (size_t i = 0; i < np; i++)
        g.params[i] = mspt_params_at(ps, i);
    if (ovt->create(&ocfg, &g, 1, &opt, &err))
        die("adamw", err.msg);

    /* µV-scale windows; the step copies them, as the trainer does */
    size_t n = (size_t)B * C * T;
    float *raw = malloc(n * sizeof *raw), *target = malloc(n * sizeof *target);
    float *input = malloc(n * sizeof *input), *scratch = malloc(T * sizeof *scratch);
    uint8_t *mask = malloc(n);
    for (size_t i = 0; i < n; i++)
        raw[i] = (float)(20.0 * mspt_rng_normal(rng));
    mspt_masker masker;
    if (mspt_masker_init(&masker, 1, 64, 0.5, 0, C, T, &err))
        die("masker", err.msg);
    mspt_ctx *ctx = mspt_ctx_new();
    int shape[3] = {B, C, T};

    /* per step: total, then the phases (prepare, forward + loss, backward,
     * clip + AdamW) and minor page faults */
    double *ms = malloc((size_t)steps * 6 * sizeof *ms), loss_v = 0;
    size_t used_fwd = 0, used_bwd = 0; /* arena bytes after each phase */
    for (int it = -2; it < steps; it++) {
        double t0 = now();
        long f0 = minor_faults();
        memcpy(target, raw, n * sizeof *raw);
        mspt_robust_normalize(target, (size_t)B * C, T, 0.025, 0.975, scratch);
        mspt_masker_fill(&masker, B, rng, mask);
        mspt_mask_apply(target, mask, n, input);
        mspt_ctx_reset(ctx);
        mspt_tensor *x = mspt_tensor_wrap(ctx, input, 3, shape);
        mspt_tensor *y = mspt_tensor_wrap(ctx, target, 3, shape);
        double t1 = now();
        mspt_tensor *recon = enc->forward(model, ctx, x, mask, NULL);
        mspt_tensor *loss = mspt_smooth_l1_loss(ctx, recon, y, mask, 1.0f);
        double t2 = now();
        used_fwd = mspt_ctx_arena_used(ctx);
        if (!loss || mspt_backward(ctx, loss))
            die(s->name, mspt_ctx_error(ctx));
        double t3 = now();
        used_bwd = mspt_ctx_arena_used(ctx);
        mspt_clip_grad_norm(ps, 1.0);
        ovt->step(opt);
        mspt_params_zero_grad(ps);
        loss_v = loss->data[0];
        double t4 = now();
        if (it >= 0) {
            double row[6] = {t4 - t0, t1 - t0, t2 - t1, t3 - t2, t4 - t3, 0};
            for (int k = 0; k < 5; k++)
                ms[k * steps + it] = 1e3 * row[k];
            ms[5 * steps + it] = (double)(minor_faults() - f0);
        }
    }
    double med[6], best = ms[0];
    for (int it = 1; it < steps; it++)
        best = ms[it] < best ? ms[it] : best;
    for (int k = 0; k < 6; k++)
        med[k] = median(ms + k * steps, steps);
    printf("mspt %s B=%d threads=%d params=%zu steps=%d median_ms=%.1f min_ms=%.1f "
           "peak_rss_mb=%.0f arena_mb=%.0f loss=%.4f\n", s->name, B, threads,
           mspt_params_numel(ps), steps, med[0], best, vm_hwm_kb() / 1024.0,
           mspt_ctx_arena_reserved(ctx) / 1048576.0, loss_v);
    printf("# medians: prepare %.1f ms, forward+loss %.1f ms, backward %.1f ms, "
           "clip+adamw %.1f ms; %.0f minor page faults per step; arena in use "
           "%.0f MB after forward, %.0f MB after backward\n", med[1], med[2],
           med[3], med[4], med[5], used_fwd / 1048576.0, used_bwd / 1048576.0);

    ovt->destroy(opt);
    enc->destroy(model);
    mspt_ctx_free(ctx);
    mspt_masker_free(&masker);
    mspt_params_free(ps);
    mspt_rng_free(rng);
    mspt_registry_free(reg);
    free(g.params);
    free(raw);
    free(target);
    free(input);
    free(scratch);
    free(mask);
    free(ms);
    return 0;
}
