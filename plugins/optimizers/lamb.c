/* lamb: the Lamb of the torch_optimizer package (0.3.0, lamb.py, after
 * "Large Batch Optimization for Deep Learning: Training BERT in 76
 * minutes", arXiv:1904.00962).  Per parameter tensor:
 *   m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²
 *   a = m / (√v + eps) + wd·p                 (no bias correction)
 *   r = clamp(‖p‖, 0, clamp_value) / ‖a‖      (1 if either norm is 0)
 *   p = p − lr·c·r·a,  c = √(1 − β2^t) / (1 − β1^t) if debias else 1
 * The clamp applies to the weight norm, not to the trust ratio as the
 * paper's φ does; this follows the published code. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>

/* Norms are summed in double over fixed chunks, the chunk partials added
 * in order: the same bits whatever the thread count. */
#define LAMB_CHUNK 4096

typedef struct lamb {
    optim o; /* first: the shared vtable entries take it as self */
    double beta1, beta2, eps, clamp;
    int debias, adam;
    double *partials; /* 2 per chunk of the largest parameter */
} lamb;

static const mspt_param lamb_params[] = {
    {"lr", MSPT_PARAM_FLOAT, "1e-3",
     "learning rate; the scheduler's base, set by the trainer every step"},
    {"weight_decay", MSPT_PARAM_FLOAT, "0",
     "weight decay added to the Adam step, a + wd·p, inside the trust ratio"},
    {"betas", MSPT_PARAM_FLOATS, "{0.9, 0.999}",
     "decay rates {beta1, beta2} of the gradient's first and second moments"},
    {"eps", MSPT_PARAM_FLOAT, "1e-6", "added to the denominator"},
    {"clamp_value", MSPT_PARAM_FLOAT, "10",
     "the weight norm is clamped to [0, clamp_value] in the trust ratio"},
    {"debias", MSPT_PARAM_BOOL, "false",
     "scale the step by √(1 − β2^t) / (1 − β1^t) (paper v3 does not)"},
    {"adam", MSPT_PARAM_BOOL, "false",
     "always use trust ratio 1, which makes this Adam (for comparison)"},
    {NULL, 0, NULL, NULL},
};

typedef struct lamb_scalars {
    float b1, omb1, b2, omb2, eps, wd;
} lamb_scalars;

/* The Adam step of element i, from the moments already updated. */
static inline float adam_dir(const float *p, const float *m, const float *v,
                             size_t i, const lamb_scalars *c)
{
    float a = m[i] / (sqrtf(v[i]) + c->eps);
    if (c->wd != 0.0f)
        a = a + c->wd * p[i];
    return a;
}

/* One parameter's passes: p g m v (n). */
typedef struct lamb_args {
    float *p, *m, *v;
    const float *g;
    size_t n;
    const lamb_scalars *c;
    double *partials; /* pass 1: 2 per chunk */
    float alpha;      /* pass 2 */
} lamb_args;

/* Pass 1, the chunks of block t: update the moments; partials of chunk ch
 * are its Σ p² and Σ a², in double. */
static void lamb_moments_block(void *arg, int t, int nt)
{
    const lamb_args *a = arg;
    const float *p = a->p, *g = a->g;
    float *m = a->m, *v = a->v;
    const lamb_scalars *c = a->c;
    size_t n = a->n, ch0, ch1;
    mspt_block((n + LAMB_CHUNK - 1) / LAMB_CHUNK, t, nt, &ch0, &ch1);
    for (size_t ch = ch0; ch < ch1; ch++) {
        size_t lo = ch * LAMB_CHUNK;
        size_t hi = lo + LAMB_CHUNK < n ? lo + LAMB_CHUNK : n;
        double w = 0, s = 0;
        for (size_t i = lo; i < hi; i++) {
            m[i] = m[i] * c->b1 + c->omb1 * g[i];
            v[i] = v[i] * c->b2 + c->omb2 * g[i] * g[i];
            float ad = adam_dir(p, m, v, i, c);
            w += (double)p[i] * p[i];
            s += (double)ad * ad;
        }
        a->partials[2 * ch] = w;
        a->partials[2 * ch + 1] = s;
    }
}

/* Pass 1 over one parameter: update the moments and return ‖p‖² and ‖a‖²
 * (chunk partials added in order). */
static void lamb_moments(lamb_args *a, double *wsq, double *asq)
{
    size_t nchunks = (a->n + LAMB_CHUNK - 1) / LAMB_CHUNK;
    mspt_parallel(a->n, lamb_moments_block, a);
    *wsq = *asq = 0;
    for (size_t ch = 0; ch < nchunks; ch++) {
        *wsq += a->partials[2 * ch];
        *asq += a->partials[2 * ch + 1];
    }
}

/* Pass 2, elements of block t: p = p + alpha·a, a recomputed exactly as in
 * pass 1. */
static void lamb_apply_block(void *arg, int t, int nt)
{
    const lamb_args *a = arg;
    float *p = a->p;
    float alpha = a->alpha;
    const float *m = a->m, *v = a->v;
    size_t i0, i1;
    mspt_block(a->n, t, nt, &i0, &i1);
    for (size_t i = i0; i < i1; i++)
        p[i] = p[i] + alpha * adam_dir(p, m, v, i, a->c);
}

static void lamb_step(void *self)
{
    lamb *l = self;
    optim *o = &l->o;
    o->steps++;
    double t = (double)o->steps;
    double corr = 1.0;
    if (l->debias)
        corr = sqrt(1.0 - pow(l->beta2, t)) / (1.0 - pow(l->beta1, t));
    for (size_t k = 0; k < o->nslots; k++) {
        optim_slot *sl = &o->slots[k];
        mspt_tensor *p = sl->p;
        if (!p->grad)
            continue;
        const mspt_param_group *grp = &o->groups[sl->group];
        lamb_scalars c = {
            (float)l->beta1, (float)(1.0 - l->beta1), (float)l->beta2,
            (float)(1.0 - l->beta2), (float)l->eps, grp->weight_decay,
        };
        lamb_args a = {p->data, sl->buf[0], sl->buf[1], p->grad, p->numel,
                       &c, l->partials, 0.0f};
        double wsq, asq;
        lamb_moments(&a, &wsq, &asq);
        /* torch holds both norms and their ratio as float32 scalars. */
        float wnorm = (float)sqrt(wsq), anorm = (float)sqrt(asq);
        if (wnorm > (float)l->clamp)
            wnorm = (float)l->clamp;
        float ratio = wnorm == 0.0f || anorm == 0.0f ? 1.0f : wnorm / anorm;
        if (l->adam)
            ratio = 1.0f;
        a.alpha = (float)(-((double)grp->lr * corr)) * ratio;
        mspt_parallel(a.n, lamb_apply_block, &a);
    }
}

static int lamb_create(const mspt_config *cfg, mspt_param_group *groups,
                       size_t ngroups, void **self, mspt_error *err)
{
    double betas[2], eps, clamp;
    if (optim_check_lr_wd(cfg, 1, err) || optim_read_betas(cfg, betas, err) ||
        optim_read_nonneg(cfg, "eps", &eps, err) ||
        optim_read_nonneg(cfg, "clamp_value", &clamp, err))
        return MSPT_ERR_CONFIG;
    lamb *l = calloc(1, sizeof *l);
    if (!l)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "lamb: out of memory");
    l->beta1 = betas[0];
    l->beta2 = betas[1];
    l->eps = eps;
    l->clamp = clamp;
    l->debias = mspt_config_bool(cfg, "debias");
    l->adam = mspt_config_bool(cfg, "adam");
    const char *names[] = {"exp_avg", "exp_avg_sq"};
    int rc = optim_init(&l->o, cfg, groups, ngroups, 2, names, err);
    if (rc) {
        free(l);
        return rc;
    }
    size_t most = 0;
    for (size_t k = 0; k < l->o.nslots; k++)
        if (l->o.slots[k].p->numel > most)
            most = l->o.slots[k].p->numel;
    l->partials = calloc(2 * ((most + LAMB_CHUNK - 1) / LAMB_CHUNK) + 2,
                         sizeof(double));
    if (!l->partials) {
        optim_free(&l->o);
        free(l);
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "lamb: out of memory");
    }
    *self = l;
    return 0;
}

static void lamb_destroy(void *self)
{
    lamb *l = self;
    if (!l)
        return;
    optim_free(&l->o);
    free(l->partials);
    free(l);
}

static const mspt_optimizer_vt lamb_vt = {
    lamb_create, lamb_step, optim_state, optim_get_steps, optim_set_steps,
    lamb_destroy,
};

const mspt_component optim_lamb = {
    MSPT_COMPONENT_INIT, MSPT_KIND_OPTIMIZER, "lamb",
    "layer-wise adaptive moments, Lamb (torch_optimizer.Lamb)", lamb_params,
    &lamb_vt,
};
