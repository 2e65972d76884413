/* encoders.transformer — a ViT-style masked autoencoder with rotary
 * position embeddings (DESIGN.md), built from core ops; parameter names are
 * the PyTorch state_dict keys.
 *
 * Shapes (B batch, C channels, T samples, P patch, W = T/P, N = C·W tokens,
 * D embed_dim, H heads, hd = D/H, F = mlp_ratio·D):
 *   x (B,C,T) → (B,1,C,T) ─patch_embed.proj (1→D, kernel = stride = (1,P))→
 *   (B,D,C,W) → tokens (B,N,D), channel-major (token n = c·W + w)
 *   → tokens whose patch holds a masked sample become mask_token
 *   → depth × [ x += drop_path(attn(norm1(x))); x += drop_path(mlp(norm2(x))) ]
 *     attn: qkv (B,N,3D) → q,k,v (B,H,N,hd), rotary on q and k by token
 *     index, softmax(q kᵀ/√hd) v → (B,N,D) → proj; mlp: fc1 → GELU → fc2
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
    float drop, attn_drop, drop_path, rope_base, eps;
    mspt_tensor *mask_token, *patch_w, *patch_b, *norm_w, *norm_b;
    mspt_tensor *head_w, *head_b;
    block blocks[TF_MAX_DEPTH];
} tf;

/* timm's ViT initialisation: Linear weights trunc_normal(std .02), zero
 * biases, LayerNorm (1, 0). */
static void init_linear(mspt_tensor *w, mspt_tensor *b, mspt_rng *rng)
{
    mspt_init_trunc_normal(w, rng, 0.0f, 0.02f, -2.0f, 2.0f);
    if (b)
        mspt_init_const(b, 0.0f);
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
    char why[200] = "";
    if (m->C < 1 || m->T < 1 || m->P < 1 || m->D < 1 || m->H < 1)
        snprintf(why, sizeof why, "num_channels, seq_length, patch_size, "
                 "embed_dim and num_heads must be >= 1");
    else if (m->T % m->P)
        snprintf(why, sizeof why, "seq_length %d is not a multiple of patch_size %d",
                 m->T, m->P);
    else if (m->D % m->H || (m->D / m->H) % 2)
        snprintf(why, sizeof why, "embed_dim %d must split into num_heads %d "
                 "heads of even width (rotary pairs)", m->D, m->H);
    else if (m->depth < 1 || m->depth > TF_MAX_DEPTH)
        snprintf(why, sizeof why, "depth must be 1..%d", TF_MAX_DEPTH);
    else if (!(ratio > 0))
        snprintf(why, sizeof why, "mlp_ratio must be > 0");
    else if (!(m->drop >= 0 && m->drop < 1) || !(m->drop_path >= 0 && m->drop_path < 1))
        snprintf(why, sizeof why, "drop_rate and drop_path_rate must be in [0, 1)");
    else if (m->attn_drop != 0)
        snprintf(why, sizeof why, "attn_drop_rate must be 0: the fused attention "
                 "keeps no attention matrix to drop from");
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
    /* MAE: mask token N(0, .02); the patch conv as a Linear, xavier-uniform */
    mspt_init_normal(m->mask_token, rng, 0.0f, 0.02f);
    float bound = sqrtf(6.0f / (float)(D + m->P));
    mspt_init_uniform(m->patch_w, rng, -bound, bound);
    mspt_init_const(m->patch_b, 0.0f);
    for (int i = 0; i < m->depth; i++) {
        block *b = &m->blocks[i];
        mspt_init_const(b->n1w, 1.0f);
        mspt_init_const(b->n2w, 1.0f);
        init_linear(b->qkv_w, b->qkv_b, rng);
        init_linear(b->proj_w, b->proj_b, rng);
        init_linear(b->fc1_w, b->fc1_b, rng);
        init_linear(b->fc2_w, b->fc2_b, rng);
    }
    mspt_init_const(m->norm_w, 1.0f);
    init_linear(m->head_w, m->head_b, rng);
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

/* x (B,N,D) -> (B,N,D): multi-head self-attention with rotary q and k. */
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
    mspt_tensor *q = mspt_rotary(ctx, mspt_reshape(ctx, parts[0], 4, shape), m->rope_base);
    mspt_tensor *k = mspt_rotary(ctx, mspt_reshape(ctx, parts[1], 4, shape), m->rope_base);
    mspt_tensor *v = mspt_reshape(ctx, parts[2], 4, shape);
    mspt_tensor *o = mspt_attention(ctx, q, k, v, 1.0f / sqrtf((float)hd));
    o = mspt_reshape(ctx, mspt_transpose(ctx, o, 1, 2), 3, (int[]){B, m->N, m->D});
    return mspt_dropout(ctx, mspt_linear(ctx, o, b->proj_w, b->proj_b), m->drop);
}

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
        /* stochastic depth grows linearly with depth, as timm's ViT */
        float dp = m->depth > 1 ? m->drop_path * (float)i / (float)(m->depth - 1) : m->drop_path;
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
    {"num_heads", MSPT_PARAM_INT, "3", "attention heads (D/heads even)"},
    {"mlp_ratio", MSPT_PARAM_FLOAT, "4", "MLP hidden width / D"},
    {"qkv_bias", MSPT_PARAM_BOOL, "true", "bias on the qkv projection"},
    {"drop_rate", MSPT_PARAM_FLOAT, "0", "dropout after projections and in the MLP"},
    {"attn_drop_rate", MSPT_PARAM_FLOAT, "0", "attention dropout (must be 0)"},
    {"drop_path_rate", MSPT_PARAM_FLOAT, "0", "stochastic depth of the last block"},
    {"rope_base", MSPT_PARAM_FLOAT, "10000", "rotary embedding base"},
    {"norm_eps", MSPT_PARAM_FLOAT, "1e-6", "LayerNorm epsilon (timm's ViT: 1e-6)"},
    {NULL, 0, NULL, NULL}};

static const mspt_component tf_component = {
    MSPT_COMPONENT_INIT, MSPT_KIND_ENCODER, "transformer",
    "ViT-style masked autoencoder with rotary position embeddings",
    tf_params, &tf_vt};

MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p)
{
    return mspt_plugin_register(p, &tf_component);
}
