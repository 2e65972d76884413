/* drop_path (stochastic depth): gradient check against a double reference
 * that replays the same per-sample draws, eval-mode identity, statistics. */
#include <math.h>

#include <mspt/mspt.h>

#include "gradcheck.h"

#define B 5
#define REST 12
static const float P = 0.4f;

static mspt_tensor *fwd(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    (void)ud;
    static mspt_rng *rng;
    if (!rng)
        rng = mspt_rng_new(99);
    mspt_rng_seed(rng, 99);
    mspt_ctx_set_rng(ctx, rng);
    return mspt_drop_path(ctx, in[0], P);
}

static void ref(double *const *in, double *out, void *ud)
{
    (void)ud;
    mspt_rng *rng = mspt_rng_new(99);
    for (int b = 0; b < B; b++) {
        double f = mspt_rng_uniform(rng) < 1.0 - P ? 1.0 / (1.0 - P) : 0.0;
        for (int i = 0; i < REST; i++)
            out[b * REST + i] = in[0][b * REST + i] * f;
    }
    mspt_rng_free(rng);
}

int main(void)
{
    gc_case c = gc_case_new("drop_path", 1);
    gc_input(&c, 0, 3, (int[]){B, 3, 4}, 1);
    gc_run(&c, fwd, ref, NULL);

    mspt_ctx *ctx = mspt_ctx_new();
    mspt_rng *rng = mspt_rng_new(1);
    mspt_ctx_set_rng(ctx, rng);
    mspt_ctx_set_training(ctx, 0);
    ok(mspt_drop_path(ctx, c.in[0], 0.5f) == c.in[0], "eval mode: identity");
    mspt_ctx_set_training(ctx, 1);
    ok(mspt_drop_path(ctx, c.in[0], 0.0f) == c.in[0], "p = 0: identity");
    ok(mspt_drop_path(ctx, c.in[0], 1.0f) == NULL && mspt_ctx_error(ctx),
       "p = 1 refused with a message");
    mspt_ctx_reset(ctx);
    /* 20000 samples of one value: kept fraction near 1 - p, scaled 1/(1-p) */
    int n = 20000;
    float *ones = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++)
        ones[i] = 1.0f;
    mspt_tensor *x = mspt_tensor_wrap(ctx, ones, 2, (int[]){n, 1});
    mspt_tensor *y = mspt_drop_path(ctx, x, 0.25f);
    int kept = 0, scaled = 1;
    for (int i = 0; i < n; i++) {
        kept += y->data[i] != 0;
        scaled &= y->data[i] == 0 || fabsf(y->data[i] - 1.0f / 0.75f) < 1e-6f;
    }
    ok(fabs(kept / (double)n - 0.75) < 0.015 && scaled,
       "keeps %.3f of samples (want 0.75), scaled by 1/(1-p)", kept / (double)n);
    free(ones);
    mspt_rng_free(rng);
    mspt_ctx_free(ctx);
    gc_case_free(&c);
    return tap_done();
}
