/* encoders.transformer — a ViT-style masked autoencoder with rotary
 * position embeddings (DESIGN.md), built from core ops; parameter names are
 * the PyTorch state_dict keys, which are also BioFoundation's TinyMyo's
 * (models/TinyMyo.py): with the options of its help's "TinyMyo settings"
 * (rope = "none", norm_eps = 1e-5, ...) it computes what TinyMyo computes.
 *
 * Shapes (B batch, C channels, T samples, P patch, W = T/P, N = C·W tokens,
 * D embed_dim, H heads, hd = D/H, F = mlp_ratio·D):
 *   x (B,C,T) → (B,1,C,T) ─patch_embed.proj (1→D, kernel = stride = (1,P))→
 *   (B,D,C,W) → tokens (B,N,D), channel-major (token n = c·W + w)
 *   → tokens whose patch holds a masked sample become mask_token
 *   → depth × [ x += drop_path(attn(norm1(x))); x += drop_path(mlp(norm2(x))) ]
 *     attn: qkv (B,N,3D) → q,k,v (B,H,N,hd), rotary on q and k by token
 *     index (rope "token"; none with rope "none"), dropout(softmax(q kᵀ/√hd))
 *     v → (B,N,D) → proj → dropout; mlp: fc1 → GELU → dropout → fc2 →
 *     dropout (timm's Mlp)
 *   → norm → embeddings (B,N,D) → decoder_pred (D→P) → (B,C,W,P) = (B,C,T). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mspt/mspt.h>

#define TF_MAX_DEPTH 64

typedef struct block {
    mspt_tensor *n1w, *n1b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    mspt_tensor *n2w, *n2b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} block;

typedef struct tf {
    int C, T, P, W, N, D, H, depth, hidden;
    int rope;            /* rotary on q, k by token index */
    int dp_linear;       /* drop_path rate i/(depth − 1)·rate, else constant */
    float drop, attn_drop, drop_path, rope_base, eps;
    mspt_tensor *mask_token, *patch_w, *patch_b, *norm_w, *norm_b;
    mspt_tensor *head_w, *head_b;
    block blocks[TF_MAX_DEPTH];
} tf;

/* timm's ViT initialisation: Linear weights trunc_normal(std .02), zero
 * biases, LayerNorm (1, 0); TinyMyo's (initialize_weights): xavier-uniform
 * Linear weights, zero biases. */
static void init_linear(mspt_tensor *w, mspt_tensor *b, mspt_rng *rng,
                        int tinymyo)
{
    if (tinymyo)
        mspt_init_xavier_uniform(w, rng, 1.0f);
    else
        mspt_init_trunc_normal(w, rng, 0.0f, 0.02f, -2.0f, 2.0f);
    if (b)
        mspt_init_const(b, 0.0f);
}

/* Index of s in the NULL-terminated names, or -1. */
static int choice(const char *s, const char *const *names)
{
    for (int i = 0; s && names[i]; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

static int tf_create(const mspt_config *cfg, mspt_params *ps, mspt_rng *rng,
                     void **self, mspt_error *err)
{
    const char *path = mspt_config_path(cfg);
    tf *m = calloc(1, sizeof *m);
    if (!m)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    m->C = (int)mspt_config_int(cfg, "num_channels");
    m->T = (int)mspt_config_int(cfg, "seq_length");
    m->P = (int)mspt_config_int(cfg, "patch_size");
    m->D = (int)mspt_config_int(cfg, "embed_dim");
    m->depth = (int)mspt_config_int(cfg, "depth");
    m->H = (int)mspt_config_int(cfg, "num_heads");
    double ratio = mspt_config_float(cfg, "mlp_ratio");
    int qkv_bias = mspt_config_bool(cfg, "qkv_bias");
    m->drop = (float)mspt_config_float(cfg, "drop_rate");
    m->attn_drop = (float)mspt_config_float(cfg, "attn_drop_rate");
    m->drop_path = (float)mspt_config_float(cfg, "drop_path_rate");
    m->rope_base = (float)mspt_config_float(cfg, "rope_base");
    m->eps = (float)mspt_config_float(cfg, "norm_eps");
    const char *rope = mspt_config_string(cfg, "rope");
    const char *sched = mspt_config_string(cfg, "drop_path_schedule");
    const char *init = mspt_config_string(cfg, "init");
    int rope_i = choice(rope, (const char *const[]){"none", "token", NULL});
    int sched_i = choice(sched, (const char *const[]){"constant", "linear", NULL});
    int init_i = choice(init, (const char *const[]){"timm", "tinymyo", NULL});
    m->rope = rope_i == 1;
    m->dp_linear = sched_i == 1;
    char why[200] = "";
    if (rope_i < 0)
        snprintf(why, sizeof why, "rope: \"%s\" is not \"token\" or \"none\"",
                 rope ? rope : "");
    else if (sched_i < 0)
        snprintf(why, sizeof why, "drop_path_schedule: \"%s\" is not "
                 "\"linear\" or \"constant\"", sched ? sched : "");
    else if (init_i < 0)
        snprintf(why, sizeof why, "init: \"%s\" is not \"timm\" or \"tinymyo\"",
                 init ? init : "");
    else if (m->C < 1 || m->T < 1 || m->P < 1 || m->D < 1 || m->H < 1)
        snprintf(why, sizeof why, "num_channels, seq_length, patch_size, "
                 "embed_dim and num_heads must be >= 1");
    else if (m->T % m->P)
        snprintf(why, sizeof why, "seq_length %d is not a multiple of patch_size %d",
                 m->T, m->P);
    else if (m->D % m->H)
        snprintf(why, sizeof why, "embed_dim %d must split into num_heads %d "
                 "heads of equal width", m->D, m->H);
    else if (m->rope && (m->D / m->H) % 2)
        snprintf(why, sizeof why, "embed_dim %d must split into num_heads %d "
                 "heads of even width (rotary pairs; rope = \"none\" has "
                 "none)", m->D, m->H);
    else if (m->depth < 1 || m->depth > TF_MAX_DEPTH)
        snprintf(why, sizeof why, "depth must be 1..%d", TF_MAX_DEPTH);
    else if (!(ratio > 0))
        snprintf(why, sizeof why, "mlp_ratio must be > 0");
    else if (!(m->drop >= 0 && m->drop < 1) || !(m->drop_path >= 0 && m->drop_path < 1) ||
             !(m->attn_drop >= 0 && m->attn_drop < 1))
        snprintf(why, sizeof why, "drop_rate, attn_drop_rate and drop_path_rate "
                 "must be in [0, 1)");
    else if (!(m->rope_base > 0) || !(m->eps > 0))
        snprintf(why, sizeof why, "rope_base and norm_eps must be > 0");
    if (why[0]) {
        free(m);
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: %s", path, why);
    }
    m->W = m->T / m->P;
    m->N = m->C * m->W;
    m->hidden = (int)(m->D * ratio);
    int D = m->D, F = m->hidden;
    const int nd = MSPT_PARAM_NO_DECAY;

    m->mask_token = mspt_param_newf(ps, nd, 3, (int[]){1, 1, D}, "mask_token");
    m->patch_w = mspt_param_newf(ps, 0, 4, (int[]){D, 1, 1, m->P}, "patch_embedding.patch_embed.proj.weight");
    m->patch_b = mspt_param_newf(ps, nd, 1, (int[]){D}, "patch_embedding.patch_embed.proj.bias");
    int failed = !m->mask_token || !m->patch_w || !m->patch_b;
    for (int i = 0; i < m->depth && !failed; i++) {
        block *b = &m->blocks[i];
        b->n1w = mspt_param_newf(ps, nd, 1, (int[]){D}, "blocks.%d.norm1.weight", i);
        b->n1b = mspt_param_newf(ps, nd, 1, (int[]){D}, "blocks.%d.norm1.bias", i);
        b->qkv_w = mspt_param_newf(ps, 0, 2, (int[]){3 * D, D}, "blocks.%d.attn.qkv.weight", i);
        b->qkv_b = qkv_bias ? mspt_param_newf(ps, nd, 1, (int[]){3 * D}, "blocks.%d.attn.qkv.bias", i)
                            : NULL;
        b->proj_w = mspt_param_newf(ps, 0, 2, (int[]){D, D}, "blocks.%d.attn.proj.weight", i);
        b->proj_b = mspt_param_newf(ps, nd, 1, (int[]){D}, "blocks.%d.attn.proj.bias", i);
        b->n2w = mspt_param_newf(ps, nd, 1, (int[]){D}, "blocks.%d.norm2.weight", i);
        b->n2b = mspt_param_newf(ps, nd, 1, (int[]){D}, "blocks.%d.norm2.bias", i);
        b->fc1_w = mspt_param_newf(ps, 0, 2, (int[]){F, D}, "blocks.%d.mlp.fc1.weight", i);
        b->fc1_b = mspt_param_newf(ps, nd, 1, (int[]){F}, "blocks.%d.mlp.fc1.bias", i);
        b->fc2_w = mspt_param_newf(ps, 0, 2, (int[]){D, F}, "blocks.%d.mlp.fc2.weight", i);
        b->fc2_b = mspt_param_newf(ps, nd, 1, (int[]){D}, "blocks.%d.mlp.fc2.bias", i);
        failed = !b->n1w || !b->n1b || !b->qkv_w || (qkv_bias && !b->qkv_b) ||
                 !b->proj_w || !b->proj_b || !b->n2w || !b->n2b || !b->fc1_w ||
                 !b->fc1_b || !b->fc2_w || !b->fc2_b;
    }
    if (!failed) {
        m->norm_w = mspt_param_newf(ps, nd, 1, (int[]){D}, "norm.weight");
        m->norm_b = mspt_param_newf(ps, nd, 1, (int[]){D}, "norm.bias");
        m->head_w = mspt_param_newf(ps, MSPT_PARAM_HEAD, 2, (int[]){m->P, D},
                          "model_head.decoder_pred.weight");
        m->head_b = mspt_param_newf(ps, MSPT_PARAM_HEAD | nd, 1, (int[]){m->P},
                          "model_head.decoder_pred.bias");
        failed = !m->norm_w || !m->norm_b || !m->head_w || !m->head_b;
    }
    if (failed) {
        free(m);
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot allocate parameters",
                              path);
    }
    /* the patch conv as a Linear (D, P), xavier-uniform; the mask token
     * N(0, .02) (MAE) or, as TinyMyo, trunc_normal(.02) cut at ±.02, and the
     * conv bias left at Conv2d's default U(±1/√P) (TinyMyo's init touches
     * only Linear and LayerNorm modules) */
    int tm = init_i == 1;
    if (tm)
        mspt_init_trunc_normal(m->mask_token, rng, 0.0f, 0.02f, -0.02f, 0.02f);
    else
        mspt_init_normal(m->mask_token, rng, 0.0f, 0.02f);
    float bound = sqrtf(6.0f / (float)(D + m->P));
    mspt_init_uniform(m->patch_w, rng, -bound, bound);
    if (tm)
        mspt_init_fan_in_bias(m->patch_b, rng, m->P);
    else
        mspt_init_const(m->patch_b, 0.0f);
    for (int i = 0; i < m->depth; i++) {
        block *b = &m->blocks[i];
        mspt_init_const(b->n1w, 1.0f);
        mspt_init_const(b->n2w, 1.0f);
        init_linear(b->qkv_w, b->qkv_b, rng, tm);
        init_linear(b->proj_w, b->proj_b, rng, tm);
        init_linear(b->fc1_w, b->fc1_b, rng, tm);
        init_linear(b->fc2_w, b->fc2_b, rng, tm);
        if (tm) { /* TinyMyo's fix_init_weight: ÷ √(2·layer_id), from 1 */
            float s = 1.0f / sqrtf(2.0f * (float)(i + 1));
            for (size_t j = 0; j < b->proj_w->numel; j++)
                b->proj_w->data[j] *= s;
            for (size_t j = 0; j < b->fc2_w->numel; j++)
                b->fc2_w->data[j] *= s;
        }
    }
    mspt_init_const(m->norm_w, 1.0f);
    init_linear(m->head_w, m->head_b, rng, tm);
    *self = m;
    return 0;
}

static int tf_check_input(void *self, int channels, int samples, mspt_error *err)
{
    tf *m = self;
    if (channels != m->C || samples != m->T)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "windows are %d channels x %d samples but the "
                              "model is configured for num_channels=%d, "
                              "seq_length=%d", channels, samples, m->C, m->T);
    return 0;
}

/* x (B,N,D) -> (B,N,D): multi-head self-attention, rotary q and k by token
 * index when rope is on.  TinyMyo's rotary turns q and k of head h by h·θ
 * for every token (it rotates along the head dim), the same turn for both:
 * q·k is unchanged, so it equals no rotary at all (rope = "none"). */
static mspt_tensor *attention(const tf *m, const block *b, mspt_ctx *ctx,
                              mspt_tensor *x, int B)
{
    int hd = m->D / m->H;
    mspt_tensor *qkv = mspt_linear(ctx, x, b->qkv_w, b->qkv_b); /* (B,N,3D) */
    qkv = mspt_reshape(ctx, qkv, 5, (int[]){B, m->N, 3, m->H, hd});
    qkv = mspt_permute(ctx, qkv, (int[]){2, 0, 3, 1, 4}); /* (3,B,H,N,hd) */
    mspt_tensor *parts[3];
    if (mspt_split(ctx, qkv, 0, 3, (int[]){1, 1, 1}, parts))
        return NULL;
    int shape[4] = {B, m->H, m->N, hd};
    mspt_tensor *q = mspt_reshape(ctx, parts[0], 4, shape);
    mspt_tensor *k = mspt_reshape(ctx, parts[1], 4, shape);
    mspt_tensor *v = mspt_reshape(ctx, parts[2], 4, shape);
    if (m->rope) {
        q = mspt_rotary(ctx, q, m->rope_base);
        k = mspt_rotary(ctx, k, m->rope_base);
    }
    mspt_tensor *o = mspt_attention_dropout(ctx, q, k, v, 1.0f / sqrtf((float)hd),
                                            m->attn_drop);
    o = mspt_reshape(ctx, mspt_transpose(ctx, o, 1, 2), 3, (int[]){B, m->N, m->D});
    return mspt_dropout(ctx, mspt_linear(ctx, o, b->proj_w, b->proj_b), m->drop);
}

/* x (B,N,D) -> (B,N,D): timm's Mlp, fc1 → GELU → drop → fc2 → drop. */
static mspt_tensor *mlp(const tf *m, const block *b, mspt_ctx *ctx, mspt_tensor *x)
{
    mspt_tensor *h = mspt_gelu(ctx, mspt_linear(ctx, x, b->fc1_w, b->fc1_b));
    h = mspt_dropout(ctx, h, m->drop);
    return mspt_dropout(ctx, mspt_linear(ctx, h, b->fc2_w, b->fc2_b), m->drop);
}

static mspt_tensor *tf_forward(void *self, mspt_ctx *ctx, mspt_tensor *x,
                               const uint8_t *mask, mspt_tensor **embed)
{
    tf *m = self;
    if (!x)
        return NULL;
    if (x->ndim != 3 || x->shape[1] != m->C || x->shape[2] != m->T)
        return mspt_fail(ctx, "transformer: input (%d,%d,%d) is not (B,%d,%d)",
                         x->shape[0], x->ndim > 1 ? x->shape[1] : 0,
                         x->ndim > 2 ? x->shape[2] : 0, m->C, m->T);
    int B = x->shape[0];

    /* patch embedding, channel-major tokens (B, N, D) */
    mspt_tensor *img = mspt_reshape(ctx, x, 4, (int[]){B, 1, m->C, m->T});
    mspt_tensor *p = mspt_conv2d(ctx, img, m->patch_w, m->patch_b, 1, m->P, 0, 0);
    p = mspt_reshape(ctx, p, 3, (int[]){B, m->D, m->N});
    mspt_tensor *h = mspt_transpose(ctx, p, 1, 2);

    /* a token whose patch holds a masked sample becomes the mask token */
    if (mask) {
        uint8_t *rows = mspt_ctx_alloc(ctx, (size_t)B * m->N);
        if (!rows)
            return NULL;
        for (size_t r = 0; r < (size_t)B * m->N; r++) {
            const uint8_t *seg = mask + r * (size_t)m->P;
            uint8_t any = 0;
            for (int i = 0; i < m->P; i++)
                any |= seg[i];
            rows[r] = any;
        }
        mspt_tensor *tok = mspt_reshape(ctx, m->mask_token, 1, (int[]){m->D});
        h = mspt_replace_rows(ctx, h, rows, tok);
    }

    for (int i = 0; i < m->depth; i++) {
        const block *b = &m->blocks[i];
        /* stochastic depth: linear over depth, 0 in the first block (timm's
         * ViT), or the same in every block (TinyMyo) */
        float dp = m->dp_linear && m->depth > 1
                       ? m->drop_path * (float)i / (float)(m->depth - 1)
                       : m->drop_path;
        mspt_tensor *a = attention(m, b, ctx, mspt_layernorm(ctx, h, b->n1w, b->n1b, m->eps), B);
        h = mspt_add(ctx, h, mspt_drop_path(ctx, a, dp));
        mspt_tensor *f = mlp(m, b, ctx, mspt_layernorm(ctx, h, b->n2w, b->n2b, m->eps));
        h = mspt_add(ctx, h, mspt_drop_path(ctx, f, dp));
    }
    h = mspt_layernorm(ctx, h, m->norm_w, m->norm_b, m->eps);
    if (embed)
        *embed = h;
    mspt_tensor *out = mspt_linear(ctx, h, m->head_w, m->head_b); /* (B,N,P) */
    return mspt_reshape(ctx, out, 3, (int[]){B, m->C, m->T});
}

static void tf_destroy(void *self) { free(self); }

static const mspt_encoder_vt tf_vt = {tf_create, tf_check_input, tf_forward,
                                      tf_destroy};

static const mspt_param tf_params[] = {
    {"num_channels", MSPT_PARAM_INT, "22", "channels C of a window"},
    {"seq_length", MSPT_PARAM_INT, "1280", "samples T of a window"},
    {"patch_size", MSPT_PARAM_INT, "20", "samples per token P (per channel)"},
    {"embed_dim", MSPT_PARAM_INT, "192", "token width D"},
    {"depth", MSPT_PARAM_INT, "8", "transformer blocks"},
    {"num_heads", MSPT_PARAM_INT, "3",
     "attention heads (D/heads even with rope \"token\")"},
    {"mlp_ratio", MSPT_PARAM_FLOAT, "4", "MLP hidden width / D"},
    {"qkv_bias", MSPT_PARAM_BOOL, "true", "bias on the qkv projection"},
    {"drop_rate", MSPT_PARAM_FLOAT, "0",
     "dropout after attn.proj, after the MLP's GELU and after its fc2 "
     "(timm's Mlp; TinyMyo's proj_drop)"},
    {"attn_drop_rate", MSPT_PARAM_FLOAT, "0",
     "dropout on the attention probabilities, training only (torch's "
     "scaled_dot_product_attention dropout_p; TinyMyo's attn_drop)"},
    {"drop_path_rate", MSPT_PARAM_FLOAT, "0",
     "stochastic depth: of the last block (\"linear\") or of every block "
     "(\"constant\")"},
    {"drop_path_schedule", MSPT_PARAM_STRING, "linear",
     "\"linear\": block i gets i/(depth-1)·drop_path_rate (timm's ViT); "
     "\"constant\": every block gets drop_path_rate (TinyMyo)"},
    {"rope", MSPT_PARAM_STRING, "token",
     "\"token\": rotary q, k by token index; \"none\": no rotary, which is "
     "what TinyMyo computes (its rotary turns q and k of a head by the head "
     "index, the same for both, so q·k and attention are unchanged)"},
    {"rope_base", MSPT_PARAM_FLOAT, "10000", "rotary embedding base"},
    {"norm_eps", MSPT_PARAM_FLOAT, "1e-6",
     "LayerNorm epsilon (timm's ViT: 1e-6; TinyMyo's nn.LayerNorm: 1e-5)"},
    {"init", MSPT_PARAM_STRING, "timm",
     "\"timm\": trunc_normal(.02) Linear weights, N(0,.02) mask token; "
     "\"tinymyo\": TinyMyo.initialize_weights (xavier-uniform Linear weights, "
     "trunc_normal(.02, ±.02) mask token, attn.proj and mlp.fc2 weights of "
     "block l divided by sqrt(2·l)).  TinyMyo settings, the model of "
     "BioFoundation's TinyMyo_pretrain.yaml: num_channels 16, seq_length "
     "1000, patch_size 20, embed_dim 192, depth 8, num_heads 3, mlp_ratio 4, "
     "qkv_bias true, drop_rate 0.1, attn_drop_rate 0.1, drop_path_rate 0.1, "
     "drop_path_schedule \"constant\", rope \"none\", norm_eps 1e-5, "
     "init \"tinymyo\""},
    {NULL, 0, NULL, NULL}};

static const mspt_component tf_component = {
    MSPT_COMPONENT_INIT, MSPT_KIND_ENCODER, "transformer",
    "ViT-style masked autoencoder with rotary position embeddings (and "
    "TinyMyo: see init)",
    tf_params, &tf_vt};

MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p)
{
    return mspt_plugin_register(p, &tf_component);
}
