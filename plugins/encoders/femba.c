/* encoders.femba — FEMBA: a bidirectional Mamba encoder with a convolutional
 * reconstruction head (DESIGN.md).  Built from core ops only; parameter
 * names are the PyTorch state_dict keys, so weights move both ways.
 *
 * Shapes (B batch, C channels, T samples, patch (ph, pw), stride (sh, sw),
 * E embed_dim, GH = (C − ph)/sh + 1, GW = (T − pw)/sw + 1, d = E·GH,
 * D_in = exp·d, N = d_state, R = dt_rank):
 *   x (B,C,T) → (B,1,C,T) ─patch_embed.proj→ (B,E,GH,GW) → (B,d,GW)
 *   → tokens (B,GW,d) + pos_embed (1,GW,d)
 *   → num_blocks × [ y = mamba_fwd(x) + flip(mamba_rev(flip(x)));
 *                    x = LayerNorm(x + y) ]              = embeddings
 *   → decoder: (B,1,GW,d) ─dec_conv→ (B,1,GW,d) → (B,d,GW) → (B,E,GH,GW)
 *     ─conv_transpose→ (B,1,C,T) → reconstruction (B,C,T). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mspt/mspt.h>

typedef struct mamba {
    mspt_tensor *in_proj_w;  /* (2·D_in, d) */
    mspt_tensor *conv_w;     /* (D_in, 1, d_conv) */
    mspt_tensor *conv_b;     /* (D_in) */
    mspt_tensor *x_proj_w;   /* (R + 2N, D_in) */
    mspt_tensor *dt_proj_w;  /* (D_in, R) */
    mspt_tensor *dt_proj_b;  /* (D_in) */
    mspt_tensor *A_log;      /* (D_in, N) */
    mspt_tensor *D;          /* (D_in) */
    mspt_tensor *out_proj_w; /* (d, D_in) */
} mamba;

#define FEMBA_MAX_BLOCKS 64

typedef struct femba {
    int C, T, ph, pw, sh, sw, E, GH, GW, d, d_inner, N, R, K, blocks;
    int kh, kw; /* decoder kernel */
    mspt_tensor *patch_w, *patch_b, *pos_embed;
    mamba fwd[FEMBA_MAX_BLOCKS], rev[FEMBA_MAX_BLOCKS];
    mspt_tensor *norm_w[FEMBA_MAX_BLOCKS], *norm_b[FEMBA_MAX_BLOCKS];
    mspt_tensor *dec_w, *up_w, *up_b;
} femba;

/* ---- parameters --------------------------------------------------------- */

/* nn.Linear / nn.Conv default: kaiming_uniform(a=√5) weight, fan-in bias. */
static void init_default(mspt_tensor *w, mspt_tensor *b, mspt_rng *rng)
{
    mspt_init_kaiming_uniform(w, rng, sqrtf(5.0f));
    if (b)
        mspt_init_fan_in_bias(b, rng, mspt_tensor_fan_in(w));
}

static int make_mamba(femba *f, mamba *m, mspt_params *ps, mspt_rng *rng,
                      const char *prefix, double dt_min, double dt_max,
                      double dt_floor)
{
    int D = f->d_inner, d = f->d, N = f->N, R = f->R;
    m->in_proj_w = mspt_param_newf(ps, 0, 2, (int[]){2 * D, d}, "%s.in_proj.weight", prefix);
    m->conv_w = mspt_param_newf(ps, 0, 3, (int[]){D, 1, f->K}, "%s.conv1d.weight", prefix);
    m->conv_b = mspt_param_newf(ps, MSPT_PARAM_NO_DECAY, 1, (int[]){D}, "%s.conv1d.bias", prefix);
    m->x_proj_w = mspt_param_newf(ps, 0, 2, (int[]){R + 2 * N, D}, "%s.x_proj.weight", prefix);
    m->dt_proj_w = mspt_param_newf(ps, 0, 2, (int[]){D, R}, "%s.dt_proj.weight", prefix);
    m->dt_proj_b = mspt_param_newf(ps, MSPT_PARAM_NO_DECAY, 1, (int[]){D}, "%s.dt_proj.bias", prefix);
    m->A_log = mspt_param_newf(ps, MSPT_PARAM_NO_DECAY, 2, (int[]){D, N}, "%s.A_log", prefix);
    m->D = mspt_param_newf(ps, MSPT_PARAM_NO_DECAY, 1, (int[]){D}, "%s.D", prefix);
    m->out_proj_w = mspt_param_newf(ps, 0, 2, (int[]){d, D}, "%s.out_proj.weight", prefix);
    if (!m->in_proj_w || !m->conv_w || !m->conv_b || !m->x_proj_w ||
        !m->dt_proj_w || !m->dt_proj_b || !m->A_log || !m->D || !m->out_proj_w)
        return 1;
    /* Mamba's initialisation (mamba_simple.py), in its order. */
    init_default(m->in_proj_w, NULL, rng);
    init_default(m->conv_w, m->conv_b, rng);
    init_default(m->x_proj_w, NULL, rng);
    float std = 1.0f / sqrtf((float)R); /* dt_init "random", dt_scale 1 */
    mspt_init_uniform(m->dt_proj_w, rng, -std, std);
    for (int i = 0; i < D; i++) {
        /* dt log-uniform in [dt_min, dt_max], floored; bias = softplus⁻¹(dt) */
        double u = mspt_rng_uniform(rng);
        double dt = exp(u * (log(dt_max) - log(dt_min)) + log(dt_min));
        if (dt < dt_floor)
            dt = dt_floor;
        m->dt_proj_b->data[i] = (float)(dt + log(-expm1(-dt)));
    }
    for (int i = 0; i < D; i++)
        for (int n = 0; n < N; n++)
            m->A_log->data[i * N + n] = logf((float)(n + 1));
    mspt_init_const(m->D, 1.0f);
    init_default(m->out_proj_w, NULL, rng);
    return 0;
}

static int femba_create(const mspt_config *cfg, mspt_params *ps, mspt_rng *rng,
                        void **self, mspt_error *err)
{
    const char *path = mspt_config_path(cfg);
    femba *f = calloc(1, sizeof *f);
    if (!f)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    f->C = (int)mspt_config_int(cfg, "num_channels");
    f->T = (int)mspt_config_int(cfg, "seq_length");
    f->E = (int)mspt_config_int(cfg, "embed_dim");
    f->blocks = (int)mspt_config_int(cfg, "num_blocks");
    int expand = (int)mspt_config_int(cfg, "exp");
    f->N = (int)mspt_config_int(cfg, "d_state");
    f->K = (int)mspt_config_int(cfg, "d_conv");
    int bad = 0;
    char why[200] = "";
    if (mspt_config_len(cfg, "patch_size") != 2 ||
        mspt_config_len(cfg, "kernel_dec") != 2 ||
        (mspt_config_has(cfg, "stride") && mspt_config_len(cfg, "stride") != 2)) {
        free(f);
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s: patch_size, stride and kernel_dec take two "
                              "values {H, W}", path);
    }
    f->ph = (int)mspt_config_int_at(cfg, "patch_size", 0);
    f->pw = (int)mspt_config_int_at(cfg, "patch_size", 1);
    f->sh = mspt_config_has(cfg, "stride") ? (int)mspt_config_int_at(cfg, "stride", 0) : f->ph;
    f->sw = mspt_config_has(cfg, "stride") ? (int)mspt_config_int_at(cfg, "stride", 1) : f->pw;
    f->kh = (int)mspt_config_int_at(cfg, "kernel_dec", 0);
    f->kw = (int)mspt_config_int_at(cfg, "kernel_dec", 1);
    if (f->C < 1 || f->T < 1 || f->E < 1 || expand < 1 || f->N < 1 || f->K < 1)
        bad = snprintf(why, sizeof why, "num_channels, seq_length, embed_dim, "
                       "exp, d_state and d_conv must be >= 1");
    else if (f->blocks < 1 || f->blocks > FEMBA_MAX_BLOCKS)
        bad = snprintf(why, sizeof why, "num_blocks must be 1..%d", FEMBA_MAX_BLOCKS);
    else if (f->ph < 1 || f->pw < 1 || f->sh < 1 || f->sw < 1 || f->ph > f->C ||
             f->pw > f->T)
        bad = snprintf(why, sizeof why, "patch_size {%d, %d} and stride {%d, %d} "
                       "must be >= 1 and fit in %d x %d", f->ph, f->pw, f->sh,
                       f->sw, f->C, f->T);
    else if ((f->C - f->ph) % f->sh || (f->T - f->pw) % f->sw)
        bad = snprintf(why, sizeof why, "patches {%d, %d} at stride {%d, %d} do "
                       "not tile %d x %d exactly (the decoder could not rebuild it)",
                       f->ph, f->pw, f->sh, f->sw, f->C, f->T);
    else if (f->kh < 1 || f->kw < 1 || f->kh % 2 == 0 || f->kw % 2 == 0)
        bad = snprintf(why, sizeof why, "kernel_dec {%d, %d} must be odd and >= 1",
                       f->kh, f->kw);
    if (bad) {
        free(f);
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: %s", path, why);
    }
    f->GH = (f->C - f->ph) / f->sh + 1;
    f->GW = (f->T - f->pw) / f->sw + 1;
    f->d = f->E * f->GH;
    f->d_inner = expand * f->d;
    f->R = mspt_config_has(cfg, "dt_rank") ? (int)mspt_config_int(cfg, "dt_rank")
                                           : (f->d + 15) / 16;
    if (f->R < 1) {
        free(f);
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.dt_rank: must be >= 1", path);
    }
    double dt_min = mspt_config_float(cfg, "dt_min");
    double dt_max = mspt_config_float(cfg, "dt_max");
    double dt_floor = mspt_config_float(cfg, "dt_init_floor");
    if (!(dt_min > 0 && dt_max >= dt_min)) {
        free(f);
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s: need 0 < dt_min <= dt_max (got %g, %g)", path,
                              dt_min, dt_max);
    }

    /* Parameters, created in the PyTorch module's registration order. */
    f->patch_w = mspt_param_newf(ps, 0, 4, (int[]){f->E, 1, f->ph, f->pw}, "patch_embed.proj.weight");
    f->patch_b = mspt_param_newf(ps, MSPT_PARAM_NO_DECAY, 1, (int[]){f->E}, "patch_embed.proj.bias");
    f->pos_embed = mspt_param_newf(ps, MSPT_PARAM_NO_DECAY, 3, (int[]){1, f->GW, f->d}, "pos_embed");
    int failed = !f->patch_w || !f->patch_b || !f->pos_embed;
    if (!failed)
        init_default(f->patch_w, f->patch_b, rng); /* pos_embed stays zero */
    for (int i = 0; i < f->blocks && !failed; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "mamba_blocks.%d.mamba_fwd", i);
        failed |= make_mamba(f, &f->fwd[i], ps, rng, prefix, dt_min, dt_max, dt_floor);
        snprintf(prefix, sizeof prefix, "mamba_blocks.%d.mamba_rev", i);
        failed |= make_mamba(f, &f->rev[i], ps, rng, prefix, dt_min, dt_max, dt_floor);
    }
    for (int i = 0; i < f->blocks && !failed; i++) {
        f->norm_w[i] = mspt_param_newf(ps, MSPT_PARAM_NO_DECAY, 1, (int[]){f->d}, "norm_layers.%d.weight", i);
        f->norm_b[i] = mspt_param_newf(ps, MSPT_PARAM_NO_DECAY, 1, (int[]){f->d}, "norm_layers.%d.bias", i);
        failed |= !f->norm_w[i] || !f->norm_b[i];
        if (!failed)
            mspt_init_const(f->norm_w[i], 1.0f);
    }
    if (!failed) {
        f->dec_w = mspt_param_newf(ps, MSPT_PARAM_HEAD, 4, (int[]){1, 1, f->kh, f->kw},
                         "decoder.dec_conv.weight");
        f->up_w = mspt_param_newf(ps, MSPT_PARAM_HEAD, 4, (int[]){f->E, 1, f->ph, f->pw},
                        "decoder.conv_transpose.weight");
        f->up_b = mspt_param_newf(ps, MSPT_PARAM_HEAD | MSPT_PARAM_NO_DECAY, 1, (int[]){1},
                        "decoder.conv_transpose.bias");
        failed |= !f->dec_w || !f->up_w || !f->up_b;
    }
    if (failed) {
        free(f);
        return mspt_error_set(err, MSPT_ERR_RUNTIME,
                              "%s: cannot allocate parameters", path);
    }
    init_default(f->dec_w, NULL, rng);
    init_default(f->up_w, f->up_b, rng);
    *self = f;
    return 0;
}

static int femba_check_input(void *self, int channels, int samples,
                             mspt_error *err)
{
    femba *f = self;
    if (channels != f->C || samples != f->T)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "windows are %d channels x %d samples but the "
                              "model is configured for num_channels=%d, "
                              "seq_length=%d", channels, samples, f->C, f->T);
    return 0;
}

/* ---- forward -------------------------------------------------------------- */

/* One Mamba layer on tokens x (B, L, d) -> (B, L, d). */
static mspt_tensor *mamba_forward(const femba *f, const mamba *m, mspt_ctx *ctx,
                                  mspt_tensor *x)
{
    int D = f->d_inner;
    /* in_proj (2D, d) applied as its two halves: x and z come out whole,
     * (B,L,D) each, with no (B,L,2D) product to split — that would keep two
     * more (B,L,D) copies and their gradients per direction (a third of
     * FEMBA-Tiny's activation memory).  The halves are (D, d) copies of
     * the weight, their gradients added back into in_proj's. */
    mspt_tensor *uz[2] = {
        mspt_linear(ctx, x, mspt_slice(ctx, m->in_proj_w, 0, 0, D), NULL),
        mspt_linear(ctx, x, mspt_slice(ctx, m->in_proj_w, 0, D, D), NULL)};
    mspt_tensor *u = mspt_silu(ctx, mspt_dwconv1d_causal(ctx, uz[0], m->conv_w,
                                                         m->conv_b));
    mspt_tensor *xdbl = mspt_linear(ctx, u, m->x_proj_w, NULL); /* (B,L,R+2N) */
    mspt_tensor *parts[3];
    if (mspt_split(ctx, xdbl, 2, 3, (int[]){f->R, f->N, f->N}, parts))
        return NULL;
    mspt_tensor *dt = mspt_softplus(ctx, mspt_linear(ctx, parts[0], m->dt_proj_w,
                                                     m->dt_proj_b)); /* (B,L,D) */
    mspt_tensor *A = mspt_scale(ctx, mspt_exp(ctx, m->A_log), -1.0f);
    mspt_tensor *y = mspt_selective_scan(ctx, u, dt, A, parts[1], parts[2], m->D,
                                         uz[1]);
    return mspt_linear(ctx, y, m->out_proj_w, NULL);
}

static mspt_tensor *femba_forward(void *self, mspt_ctx *ctx, mspt_tensor *x,
                                  const uint8_t *mask, mspt_tensor **embed)
{
    (void)mask; /* masked entries arrive zeroed; FEMBA needs nothing more */
    femba *f = self;
    if (!x)
        return NULL;
    if (x->ndim != 3 || x->shape[1] != f->C || x->shape[2] != f->T)
        return mspt_fail(ctx, "femba: input (%d,%d,%d) is not (B,%d,%d)",
                         x->shape[0], x->ndim > 1 ? x->shape[1] : 0,
                         x->ndim > 2 ? x->shape[2] : 0, f->C, f->T);
    int B = x->shape[0];

    /* patch embedding -> tokens (B, GW, d), row e·GH + gh of d */
    mspt_tensor *img = mspt_reshape(ctx, x, 4, (int[]){B, 1, f->C, f->T});
    mspt_tensor *p = mspt_conv2d(ctx, img, f->patch_w, f->patch_b, f->sh, f->sw, 0, 0);
    p = mspt_reshape(ctx, p, 3, (int[]){B, f->d, f->GW});
    mspt_tensor *h = mspt_add(ctx, mspt_transpose(ctx, p, 1, 2), f->pos_embed);

    for (int i = 0; i < f->blocks; i++) {
        mspt_tensor *yf = mamba_forward(f, &f->fwd[i], ctx, h);
        mspt_tensor *yr = mamba_forward(f, &f->rev[i], ctx, mspt_flip(ctx, h, 1));
        mspt_tensor *y = mspt_add(ctx, yf, mspt_flip(ctx, yr, 1));
        h = mspt_layernorm(ctx, mspt_add(ctx, h, y), f->norm_w[i], f->norm_b[i], 1e-5f);
    }
    if (embed)
        *embed = h;

    /* decoder: 2-D conv over the (GW, d) plane, then un-patch */
    int ph = (f->kh - 1) / 2, pw = (f->kw - 1) / 2;
    mspt_tensor *plane = mspt_reshape(ctx, h, 4, (int[]){B, 1, f->GW, f->d});
    plane = mspt_conv2d(ctx, plane, f->dec_w, NULL, 1, 1, ph, pw);
    mspt_tensor *t = mspt_transpose(ctx, mspt_reshape(ctx, plane, 3,
                                                      (int[]){B, f->GW, f->d}),
                                    1, 2); /* (B, d, GW) */
    t = mspt_reshape(ctx, t, 4, (int[]){B, f->E, f->GH, f->GW});
    mspt_tensor *out = mspt_conv_transpose2d(ctx, t, f->up_w, f->up_b, f->sh,
                                             f->sw, 0, 0);
    return mspt_reshape(ctx, out, 3, (int[]){B, f->C, f->T});
}

static void femba_destroy(void *self) { free(self); }

static const mspt_encoder_vt femba_vt = {femba_create, femba_check_input,
                                         femba_forward, femba_destroy};

static const mspt_param femba_params[] = {
    {"num_channels", MSPT_PARAM_INT, "22", "channels C of a window"},
    {"seq_length", MSPT_PARAM_INT, "1280", "samples T of a window"},
    {"patch_size", MSPT_PARAM_INTS, "{2, 16}", "patch {H, W} of the embedding conv"},
    {"stride", MSPT_PARAM_INTS, "nil", "patch stride {H, W} (default: patch_size)"},
    {"embed_dim", MSPT_PARAM_INT, "79", "embedding channels E (token width E·C/H)"},
    {"num_blocks", MSPT_PARAM_INT, "4", "bidirectional Mamba blocks"},
    {"exp", MSPT_PARAM_INT, "4", "Mamba expansion factor (D_in = exp·d)"},
    {"d_state", MSPT_PARAM_INT, "16", "Mamba state size N"},
    {"d_conv", MSPT_PARAM_INT, "4", "Mamba causal conv width"},
    {"dt_rank", MSPT_PARAM_INT, "nil", "rank of dt_proj (default ceil(d/16))"},
    {"dt_min", MSPT_PARAM_FLOAT, "0.001", "smallest initial dt"},
    {"dt_max", MSPT_PARAM_FLOAT, "0.1", "largest initial dt"},
    {"dt_init_floor", MSPT_PARAM_FLOAT, "1e-4", "floor of the initial dt"},
    {"kernel_dec", MSPT_PARAM_INTS, "{31, 31}", "decoder conv kernel {H, W} (odd)"},
    {NULL, 0, NULL, NULL}};

static const mspt_component femba_component = {
    MSPT_COMPONENT_INIT, MSPT_KIND_ENCODER, "femba",
    "FEMBA: bidirectional Mamba encoder with a convolutional decoder",
    femba_params, &femba_vt};

MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p)
{
    return mspt_plugin_register(p, &femba_component);
}
