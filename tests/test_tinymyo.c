/* encoders.transformer computes BioFoundation's TinyMyo (models/TinyMyo.py,
 * fixture by scripts/gen_fixtures_tinymyo.py, which imports the reference
 * itself): with the fixture's options (rope "none", norm_eps 1e-5, the
 * constant drop_path schedule, ...) and TinyMyo's weights loaded by name, in
 * eval mode, the reconstruction, the latent tokens, TinyMyo's pretraining
 * loss (masked + 0.1 · unmasked smooth-L1) and the gradient of every
 * parameter agree to 1e-4 relative.
 *
 * The norm: max over elements of |got − want| / max(|want|, floor), floor
 * = 1e-3 · max|want| of the tensor for outputs and 1e-2 · max|want| for
 * gradients (see tests/test_encoders.c: a gradient element is a sum of
 * terms as large as the tensor's largest, resolved by float32 to ~1e-7 of
 * it); the worst gradient error with the 1e-3 floor is reported too.
 *
 * Also: mspt feeds x with masked samples zeroed while TinyMyo receives them
 * intact; both replace a masked patch's token after the patch embedding, so
 * the zeroed and the intact input give the same bits.  rope "token" gives
 * another answer, and so does timm's norm_eps 1e-6 (the test can fail);
 * training mode turns the dropouts on; drop_path_schedule "constant" gives
 * every block the rate, "linear" none to the first; a bad option value is
 * named; init "tinymyo" follows TinyMyo.initialize_weights. */
#include <math.h>
#include <string.h>

#include "io/safetensors.h"
#include "plugin_util.h"

#define TOL 1e-4

static double rel_err_floor(const float *got, const float *want, size_t n,
                            double rel_floor)
{
    double top = 0, worst = 0;
    for (size_t i = 0; i < n; i++)
        top = fmax(top, fabs(want[i]));
    double floor = top > 0 ? rel_floor * top : 1e-12;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) / fmax(fabs(want[i]), floor);
        if (!(e <= worst))
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

static float *read_all(mspt_st_file *f, const char *name, size_t *numel)
{
    long k = mspt_st_find(f, name);
    if (k < 0)
        return NULL;
    *numel = mspt_st_numel(f, (size_t)k);
    float *v = malloc((*numel ? *numel : 1) * sizeof *v);
    if (mspt_st_read_f32(f, name, v, *numel, NULL)) {
        free(v);
        return NULL;
    }
    return v;
}

static int same_shape(mspt_st_file *f, long k, const mspt_tensor *t)
{
    if (mspt_st_ndim(f, (size_t)k) != t->ndim)
        return 0;
    for (int d = 0; d < t->ndim; d++)
        if (mspt_st_shape(f, (size_t)k)[d] != t->shape[d])
            return 0;
    return 1;
}

typedef struct built {
    const mspt_encoder_vt *vt;
    mspt_node *tree;
    mspt_params *ps;
    void *self;
} built;

/* The transformer from a YAML flow mapping; NULL self and err set when the
 * plugin refuses it. */
static built build(const char *yaml, mspt_error *err)
{
    built b = {0};
    const mspt_component *c =
        tp_component("encoders", "transformer", MSPT_KIND_ENCODER, "transformer");
    b.vt = c->vtable;
    mspt_config cfg;
    b.tree = tp_config(c, "model", yaml, &cfg);
    b.ps = mspt_params_new();
    mspt_rng *rng = mspt_rng_new(1);
    if (b.vt->create(&cfg, b.ps, rng, &b.self, err))
        b.self = NULL;
    mspt_rng_free(rng);
    return b;
}

static void unbuild(built *b)
{
    if (b->self)
        b->vt->destroy(b->self);
    mspt_params_free(b->ps);
    mspt_node_free(b->tree);
}

/* Loads every parameter of b by name from f ("model.<name>"); returns the
 * number loaded with the right shape. */
static size_t load_weights(built *b, mspt_st_file *f)
{
    size_t loaded = 0;
    char key[256];
    for (size_t i = 0; i < mspt_params_count(b->ps); i++) {
        mspt_tensor *p = mspt_params_at(b->ps, i);
        snprintf(key, sizeof key, "model.%s", p->name);
        long k = mspt_st_find(f, key);
        if (k >= 0 && same_shape(f, k, p) &&
            !mspt_st_read_f32(f, key, p->data, p->numel, NULL))
            loaded++;
        else
            diag("%s missing or of another shape", key);
    }
    return loaded;
}

/* The window as the fixture holds it. */
typedef struct window {
    int shape[3];
    size_t n;
    float *x, *zeroed;
    uint8_t *mask, *unmasked;
} window;

static window read_window(mspt_st_file *f)
{
    window w = {0};
    size_t nm = 0;
    float *mf = read_all(f, "mask", &nm);
    w.x = read_all(f, "x", &w.n);
    long kx = mspt_st_find(f, "x");
    if (!w.x || !mf || nm != w.n || kx < 0 || mspt_st_ndim(f, (size_t)kx) != 3)
        tap_bail("tinymyo.safetensors: x (B,C,T) or mask missing");
    for (int d = 0; d < 3; d++)
        w.shape[d] = (int)mspt_st_shape(f, (size_t)kx)[d];
    w.zeroed = malloc(w.n * sizeof *w.zeroed);
    w.mask = malloc(w.n);
    w.unmasked = malloc(w.n);
    for (size_t i = 0; i < w.n; i++) {
        w.mask[i] = mf[i] != 0.0f;
        w.unmasked[i] = !w.mask[i];
        w.zeroed[i] = w.mask[i] ? 0.0f : w.x[i];
    }
    free(mf);
    return w;
}

/* TinyMyo's pretraining loss (tasks/pretrain_task_EMG.py with
 * PretrainCriterion("smooth_l1")): masked + 0.1 · unmasked smooth-L1. */
static mspt_tensor *tinymyo_loss(mspt_ctx *ctx, mspt_tensor *recon,
                                 mspt_tensor *target, const window *w,
                                 mspt_tensor **masked, mspt_tensor **unmasked)
{
    *masked = mspt_smooth_l1_loss(ctx, recon, target, w->mask, 1.0f);
    *unmasked = mspt_smooth_l1_loss(ctx, recon, target, w->unmasked, 1.0f);
    return mspt_add(ctx, *masked, mspt_scale(ctx, *unmasked, 0.1f));
}

static void expect(mspt_st_file *f, const char *name, const float *got, size_t n)
{
    size_t m = 0;
    float *want = read_all(f, name, &m);
    double e = want && m == n ? rel_err_floor(got, want, n, 1e-3) : INFINITY;
    ok(e < TOL, "tinymyo: %s matches TinyMyo (max rel err %.2g)", name, e);
    free(want);
}

static void expect_scalar(mspt_st_file *f, const char *key, float got)
{
    const char *s = mspt_st_metadata(f, key);
    double want = s ? atof(s) : NAN;
    ok(fabs(got - want) <= TOL * fabs(want), "tinymyo: %s %.7f (TinyMyo %.7f)",
       key, got, want);
}

/* Forward (eval mode, grad on) of b on input; the reconstruction or NULL. */
static mspt_tensor *run(built *b, mspt_ctx *ctx, const window *w,
                        float *input, mspt_tensor **emb)
{
    mspt_tensor *xin = mspt_tensor_wrap(ctx, input, 3, w->shape);
    return b->vt->forward(b->self, ctx, xin, w->mask, emb);
}

static void parity(mspt_st_file *f, const char *yaml, const window *w)
{
    mspt_error err = {0};
    built b = build(yaml, &err);
    if (!b.self)
        tap_bail(err.msg);
    size_t nparams = mspt_params_count(b.ps), in_file = 0;
    for (size_t i = 0; i < mspt_st_count(f); i++)
        in_file += !strncmp(mspt_st_name(f, i), "model.", 6);
    size_t loaded = load_weights(&b, f);
    ok(loaded == nparams && in_file == nparams, "tinymyo: the %zu parameters "
       "are TinyMyo's state_dict (%zu tensors in the file)", nparams, in_file);

    mspt_ctx *ctx = mspt_ctx_new();
    mspt_ctx_set_training(ctx, 0); /* model.eval(): no dropout, no drop_path */
    mspt_tensor *emb = NULL, *lm = NULL, *lu = NULL;
    mspt_tensor *recon = run(&b, ctx, w, w->zeroed, &emb);
    mspt_tensor *target = mspt_tensor_wrap(ctx, w->x, 3, w->shape);
    mspt_tensor *loss = recon ? tinymyo_loss(ctx, recon, target, w, &lm, &lu) : NULL;
    if (!loss || !emb || mspt_backward(ctx, loss)) {
        diag("%s", mspt_ctx_error(ctx) ? mspt_ctx_error(ctx) : "no embeddings");
        tap_bail("forward or backward failed");
    }
    expect(f, "reconstruction", recon->data, recon->numel);
    expect(f, "embeddings", emb->data, emb->numel);
    expect_scalar(f, "loss", loss->data[0]);
    expect_scalar(f, "masked_loss", lm->data[0]);
    expect_scalar(f, "unmasked_loss", lu->data[0]);

    double worst = 0, worst3 = 0;
    const char *worst_name = "";
    char key[256];
    for (size_t i = 0; i < nparams; i++) {
        mspt_tensor *p = mspt_params_at(b.ps, i);
        snprintf(key, sizeof key, "grad.%s", p->name);
        size_t m = 0;
        float *g = read_all(f, key, &m);
        double e = g && m == p->numel ? rel_err_floor(p->grad, g, m, 1e-2) : INFINITY;
        if (!(e < TOL))
            diag("%s max rel err %.3g", key, e);
        if (g && m == p->numel)
            worst3 = fmax(worst3, rel_err_floor(p->grad, g, m, 1e-3));
        if (!(e <= worst)) {
            worst = e;
            worst_name = p->name;
        }
        free(g);
    }
    ok(worst < TOL, "tinymyo: all %zu parameter gradients match TinyMyo's "
       "(worst %.2g, %s)", nparams, worst, worst_name);
    diag("tinymyo: worst gradient error with a floor of 1e-3·max: %.2g", worst3);

    /* TinyMyo gets the masked samples intact: the same bits either way */
    float *first = malloc(recon->numel * sizeof *first);
    size_t rn = recon->numel;
    memcpy(first, recon->data, rn * sizeof *first);
    mspt_ctx_reset(ctx);
    recon = run(&b, ctx, w, w->x, NULL);
    ok(recon && recon->numel == rn && !memcmp(recon->data, first, rn * sizeof *first),
       "tinymyo: masked samples zeroed (mspt) or intact (TinyMyo) give the same "
       "reconstruction: the mask token replaces the embedded patch");

    /* training mode: the 0.1 dropouts and drop_path act */
    mspt_ctx_reset(ctx);
    mspt_rng *rng = mspt_rng_new(3);
    mspt_ctx_set_rng(ctx, rng);
    mspt_ctx_set_training(ctx, 1);
    recon = run(&b, ctx, w, w->zeroed, NULL);
    double moved = recon ? rel_err_floor(recon->data, first, rn, 1e-3) : 0;
    ok(recon && moved > 1e-3 && isfinite(moved), "tinymyo: training mode "
       "changes the reconstruction (dropouts on; max rel change %.2g)", moved);
    mspt_rng_free(rng);
    free(first);
    mspt_ctx_free(ctx);
    unbuild(&b);
}

/* yaml with the option `key: from` made `key: to` (the fixture's config). */
static char *with_option(const char *yaml, const char *from, const char *to)
{
    const char *at = strstr(yaml, from);
    if (!at)
        tap_bail("fixture config without the expected option");
    size_t n = strlen(yaml) - strlen(from) + strlen(to) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s%s", (int)(at - yaml), yaml, to, at + strlen(from));
    return s;
}

/* The same weights with option `from` made `to`: another answer. */
static void option_differs(mspt_st_file *f, const char *yaml, const window *w,
                           const char *from, const char *to)
{
    char *tok = with_option(yaml, from, to);
    mspt_error err = {0};
    built b = build(tok, &err);
    if (!b.self)
        tap_bail(err.msg);
    load_weights(&b, f);
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_ctx_set_training(ctx, 0);
    mspt_tensor *recon = run(&b, ctx, w, w->zeroed, NULL);
    size_t m = 0;
    float *want = read_all(f, "reconstruction", &m);
    double e = recon && want && m == recon->numel
                   ? rel_err_floor(recon->data, want, m, 1e-3) : 0;
    ok(e > 1e-3, "tinymyo: %s instead of %s gives another reconstruction (max "
       "rel err %.2g against TinyMyo): the parity test can fail", to, from, e);
    free(want);
    mspt_ctx_free(ctx);
    unbuild(&b);
    free(tok);
}

static void bad_values(void)
{
    const char *cases[][2] = {
        {"{rope: head}", "rope: \"head\""},
        {"{drop_path_schedule: cosine}", "drop_path_schedule: \"cosine\""},
        {"{init: xavier}", "init: \"xavier\""},
        {"{attn_drop_rate: 1}", "attn_drop_rate"},
        {"{embed_dim: 24, num_heads: 8}", "even width"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mspt_error err = {0};
        built b = build(cases[i][0], &err);
        ok(!b.self && err.status == MSPT_ERR_CONFIG && strstr(err.msg, "model") &&
               strstr(err.msg, cases[i][1]),
           "transformer %s is refused, naming it (%s)", cases[i][0], err.msg);
        unbuild(&b);
    }
    mspt_error err = {0};
    built b = build("{embed_dim: 24, num_heads: 8, rope: none}", &err);
    ok(b.self != NULL, "rope \"none\" takes an odd head width (24/8 = 3)");
    unbuild(&b);
}

/* Stochastic depth per block, seen through the rng: mspt_drop_path draws
 * one uniform per sample when its rate is > 0.  Depth 2, B = 3: "linear"
 * gives block 0 rate 0, so 2 drop_paths draw (6 uniforms); "constant"
 * gives both blocks the rate, 4 draw (12 uniforms). */
static void drop_path_schedule(const char *sched, int draws)
{
    char yaml[256];
    snprintf(yaml, sizeof yaml, "{num_channels: 2, seq_length: 16, patch_size: 4, "
             "embed_dim: 8, depth: 2, num_heads: 2, drop_path_rate: 0.5, "
             "drop_path_schedule: %s}", sched);
    mspt_error err = {0};
    built b = build(yaml, &err);
    if (!b.self)
        tap_bail(err.msg);
    float x[3 * 2 * 16];
    for (int i = 0; i < 3 * 2 * 16; i++)
        x[i] = (float)sin(0.3 * i);
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_rng *rng = mspt_rng_new(9), *want = mspt_rng_new(9);
    mspt_ctx_set_rng(ctx, rng);
    mspt_tensor *xin = mspt_tensor_wrap(ctx, x, 3, (int[]){3, 2, 16});
    mspt_tensor *y = b.vt->forward(b.self, ctx, xin, NULL, NULL);
    for (int i = 0; i < draws; i++)
        mspt_rng_uniform(want);
    uint64_t s1[MSPT_RNG_STATE_WORDS], s2[MSPT_RNG_STATE_WORDS];
    mspt_rng_get_state(rng, s1);
    mspt_rng_get_state(want, s2);
    ok(y && !memcmp(s1, s2, sizeof s1), "drop_path_schedule %s: %d drop_path "
       "draws in a depth-2 forward of 3 samples", sched, draws);
    mspt_rng_free(want);
    mspt_rng_free(rng);
    mspt_ctx_free(ctx);
    unbuild(&b);
}

/* init "tinymyo" at TinyMyo_pretrain.yaml's size: xavier-uniform Linear
 * weights (bound √(6/(fan_in + fan_out))), attn.proj and mlp.fc2 of block l
 * (from 1) divided by √(2l), zero Linear biases, LayerNorm (1, 0), mask
 * token within ±.02, patch bias within ±1/√P. */
static float max_abs(const mspt_tensor *t)
{
    float m = 0;
    for (size_t i = 0; i < t->numel; i++)
        m = fmaxf(m, fabsf(t->data[i]));
    return m;
}

static void tinymyo_init(void)
{
    mspt_error err = {0};
    built b = build("{num_channels: 16, seq_length: 1000, patch_size: 20, "
                    "embed_dim: 192, depth: 8, num_heads: 3, init: tinymyo}", &err);
    if (!b.self)
        tap_bail(err.msg);
    int weights_ok = 1, zeros_ok = 1, norms_ok = 1;
    for (size_t i = 0; i < mspt_params_count(b.ps); i++) {
        mspt_tensor *p = mspt_params_at(b.ps, i);
        const char *nm = p->name;
        size_t len = strlen(nm);
        int is_w = len > 7 && !strcmp(nm + len - 7, ".weight");
        if (strstr(nm, "norm")) {
            float want = is_w ? 1.0f : 0.0f;
            for (size_t j = 0; j < p->numel; j++)
                norms_ok &= p->data[j] == want;
        } else if (p->ndim == 2) { /* Linear weight (out, in) */
            double bound = sqrt(6.0 / (p->shape[0] + p->shape[1]));
            int layer = 0;
            if (strstr(nm, "attn.proj") || strstr(nm, "mlp.fc2"))
                layer = atoi(nm + strlen("blocks.")) + 1;
            if (layer)
                bound /= sqrt(2.0 * layer);
            float m = max_abs(p);
            if (!(m <= bound * 1.0001 && m > bound * 0.98)) {
                diag("%s: max |w| %.4g, want just under %.4g", nm, m, bound);
                weights_ok = 0;
            }
        } else if (!is_w && strcmp(nm, "mask_token") &&
                   !strstr(nm, "patch_embed")) { /* Linear bias */
            zeros_ok &= max_abs(p) == 0.0f;
        }
    }
    ok(weights_ok, "init tinymyo: xavier-uniform Linear weights, attn.proj and "
       "mlp.fc2 of block l divided by sqrt(2l)");
    ok(zeros_ok && norms_ok, "init tinymyo: zero Linear biases, LayerNorm (1, 0)");
    mspt_tensor *tok = NULL, *pb = NULL;
    for (size_t i = 0; i < mspt_params_count(b.ps); i++) {
        mspt_tensor *p = mspt_params_at(b.ps, i);
        if (!strcmp(p->name, "mask_token"))
            tok = p;
        if (!strcmp(p->name, "patch_embedding.patch_embed.proj.bias"))
            pb = p;
    }
    ok(tok && max_abs(tok) <= 0.02f && max_abs(tok) > 0.015f && pb &&
           max_abs(pb) <= 1.0f / sqrtf(20.0f) && max_abs(pb) > 0.15f,
       "init tinymyo: mask token trunc_normal cut at ±.02, patch bias "
       "U(±1/sqrt(20))");
    unbuild(&b);
}

int main(void)
{
    mspt_set_threads(2); /* the summation order, hence the figures, fixed */
    const char *src = getenv("MSPT_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/tinymyo.safetensors",
             src ? src : ".");
    mspt_error err = {0};
    mspt_st_file *f = mspt_st_open(path, &err);
    if (!f)
        tap_bail(err.msg);
    const char *yaml = mspt_st_metadata(f, "config");
    if (!yaml)
        tap_bail("tinymyo.safetensors without config metadata");
    window w = read_window(f);
    parity(f, yaml, &w);
    option_differs(f, yaml, &w, "rope: none", "rope: token");
    /* the mask token (trunc_normal .02) has a variance of ~4e-4: eps shows */
    option_differs(f, yaml, &w, "norm_eps: 1e-5", "norm_eps: 1e-6");
    bad_values();
    drop_path_schedule("linear", 2 * 3);
    drop_path_schedule("constant", 4 * 3);
    tinymyo_init();
    free(w.x);
    free(w.zeroed);
    free(w.mask);
    free(w.unmasked);
    mspt_st_close(f);
    return tap_done();
}
