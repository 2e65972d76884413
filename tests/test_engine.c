/* Engine core: arena reuse, lazy grads, views, tape order, params, RNG,
 * initializer bounds. */
#include <math.h>
#include <string.h>

#include <mspt/mspt.h>

#include "tap.h"

static float seen_order[4];
static int seen_count;

typedef struct { mspt_tensor *x, *y; float tag; } rec;

static void record_backward(mspt_ctx *ctx, void *saved)
{
    rec *r = saved;
    if (seen_count < 4) /* only the first test looks at the order */
        seen_order[seen_count] = r->tag;
    seen_count++;
    float *gx = mspt_grad(ctx, r->x);
    for (size_t i = 0; i < r->y->numel; i++)
        gx[i] += 2.0f * r->y->grad[i]; /* y = 2x */
}

static mspt_tensor *twice(mspt_ctx *ctx, mspt_tensor *x, float tag)
{
    mspt_tensor *y = mspt_op_output(ctx, x->ndim, x->shape,
                                    mspt_needs_grad(ctx, x));
    for (size_t i = 0; i < x->numel; i++)
        y->data[i] = 2.0f * x->data[i];
    if (y->requires_grad) {
        rec *r = mspt_ctx_alloc(ctx, sizeof *r);
        r->x = x;
        r->y = y;
        r->tag = tag;
        mspt_tape_push(ctx, record_backward, r);
    }
    return y;
}

int main(void)
{
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_params *ps = mspt_params_new();
    int shape[2] = {3, 4};
    mspt_tensor *w = mspt_param_new(ps, "layer.weight", 2, shape, 0);
    ok(w && w->numel == 12 && w->requires_grad, "param created with shape");
    ok(mspt_param_new(ps, "layer.weight", 2, shape, 0) == NULL,
       "duplicate param name refused");
    ok(mspt_params_find(ps, "layer.weight") == w, "param found by name");
    for (int i = 0; i < 12; i++)
        w->data[i] = (float)i;

    /* tape runs in reverse and chains gradients: z = 2·(2·w) */
    seen_count = 0;
    mspt_tensor *y = twice(ctx, w, 1);
    mspt_tensor *z = twice(ctx, y, 2);
    ok(mspt_tape_length(ctx) == 2, "two ops recorded");
    float ones[12];
    for (int i = 0; i < 12; i++)
        ones[i] = 1.0f;
    ok(mspt_backward_with(ctx, z, ones) == 0, "backward runs");
    ok(seen_count == 2 && seen_order[0] == 2 && seen_order[1] == 1,
       "backward visits ops in reverse order");
    int good = 1;
    for (int i = 0; i < 12; i++)
        good &= w->grad[i] == 4.0f;
    ok(good, "dz/dw = 4 everywhere");

    /* grads accumulate until zeroed */
    mspt_ctx_reset(ctx);
    z = twice(ctx, twice(ctx, w, 1), 2);
    mspt_backward_with(ctx, z, ones);
    ok(w->grad[5] == 8.0f, "gradients accumulate across backward calls");
    mspt_params_zero_grad(ps);
    ok(w->grad[5] == 0.0f, "zero_grad clears them");

    /* an output gradient put in place through mspt_grad, then grad_out NULL */
    mspt_ctx_reset(ctx);
    z = twice(ctx, twice(ctx, w, 1), 2);
    float *gz = mspt_grad(ctx, z);
    for (int i = 0; gz && i < 12; i++)
        gz[i] = (float)i;
    ok(gz && mspt_backward_with(ctx, z, NULL) == 0 && w->grad[0] == 0.0f &&
           w->grad[5] == 20.0f && w->grad[11] == 44.0f,
       "backward_with(NULL) runs from the gradient already in place");
    mspt_params_zero_grad(ps);

    /* no-grad mode records nothing */
    mspt_ctx_reset(ctx);
    mspt_ctx_set_grad(ctx, 0);
    z = twice(ctx, w, 1);
    ok(mspt_tape_length(ctx) == 0 && !z->requires_grad,
       "no-grad mode records nothing");
    ok(mspt_backward_with(ctx, z, ones) != 0 && mspt_ctx_error(ctx),
       "backward on a graph-less output is an error, not a crash");
    mspt_ctx_set_grad(ctx, 1);

    /* arena: after reset, the same step reuses the same memory */
    mspt_ctx_reset(ctx);
    int big[1] = {1 << 20};
    for (int i = 0; i < 4; i++)
        mspt_tensor_new(ctx, 1, big); /* 16 MiB over several chunks */
    size_t used1 = mspt_ctx_arena_used(ctx);
    mspt_ctx_reset(ctx);
    size_t reserved = mspt_ctx_arena_reserved(ctx);
    for (int i = 0; i < 4; i++)
        mspt_tensor_new(ctx, 1, big);
    ok(mspt_ctx_arena_used(ctx) == used1 &&
           mspt_ctx_arena_reserved(ctx) == reserved,
       "arena reuses one coalesced chunk after reset");

    /* errors are sticky and keep the first cause */
    mspt_ctx_reset(ctx);
    mspt_fail(ctx, "first %d", 1);
    mspt_fail(ctx, "second");
    ok(mspt_ctx_error(ctx) && strcmp(mspt_ctx_error(ctx), "first 1") == 0,
       "first error kept");
    int bad[6] = {1, 1, 1, 1, 1, 1};
    mspt_ctx_reset(ctx);
    ok(mspt_tensor_new(ctx, 6, bad) == NULL && mspt_ctx_error(ctx),
       "6-dim tensor refused with a message");
    mspt_ctx_reset(ctx);
    ok(mspt_ctx_error(ctx) == NULL, "reset clears the error");

    /* RNG: reproducible, state round-trips */
    mspt_rng *a = mspt_rng_new(42), *b = mspt_rng_new(42);
    int same = 1;
    for (int i = 0; i < 100; i++)
        same &= mspt_rng_u64(a) == mspt_rng_u64(b);
    ok(same, "same seed, same stream");
    uint64_t st[MSPT_RNG_STATE_WORDS];
    mspt_rng_get_state(a, st);
    uint64_t next = mspt_rng_u64(a);
    mspt_rng_set_state(b, st);
    ok(mspt_rng_u64(b) == next, "state save/restore continues the stream");
    double mean = 0, var = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double v = mspt_rng_normal(a);
        mean += v;
        var += v * v;
    }
    mean /= n;
    var = var / n - mean * mean;
    ok(fabs(mean) < 0.01 && fabs(var - 1) < 0.02, "normal has mean 0, var 1 (%.4f, %.4f)", mean, var);

    /* kaiming_uniform(a=√5) on (out=8, in=50) is U(±1/√50) */
    int ws[2] = {8, 50};
    mspt_tensor *lw = mspt_param_new(ps, "fc.weight", 2, ws, 0);
    mspt_init_kaiming_uniform(lw, a, sqrtf(5.0f));
    float mx = 0;
    for (size_t i = 0; i < lw->numel; i++)
        mx = fmaxf(mx, fabsf(lw->data[i]));
    ok(mx <= 1.0f / sqrtf(50.0f) && mx > 0.9f / sqrtf(50.0f),
       "kaiming_uniform(a=sqrt5) bound is 1/sqrt(fan_in)");
    int cs[4] = {6, 2, 3, 3};
    mspt_tensor *cw = mspt_param_new(ps, "conv.weight", 4, cs, 0);
    ok(mspt_tensor_fan_in(cw) == 18 && mspt_tensor_fan_out(cw) == 54,
       "conv fan_in/fan_out as PyTorch");
    mspt_init_trunc_normal(lw, a, 0.0f, 1.0f, -0.5f, 0.5f);
    mx = 0;
    for (size_t i = 0; i < lw->numel; i++)
        mx = fmaxf(mx, fabsf(lw->data[i]));
    ok(mx <= 0.5f, "trunc_normal stays in bounds");
    ok(mspt_params_count(ps) == 3 && mspt_params_numel(ps) == 12 + 400 + 108,
       "params count and numel");

    mspt_rng_free(a);
    mspt_rng_free(b);
    mspt_params_free(ps);
    mspt_ctx_free(ctx);
    return tap_done();
}
