/* adam and adamw: torch.optim.Adam / AdamW (torch 1.13, single-tensor
 * path), with amsgrad.  They differ only in the weight decay: Adam adds
 * the L2 penalty to the gradient, AdamW decays the weights first. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>

typedef struct adam {
    optim o; /* first: the shared vtable entries take it as self */
    double beta1, beta2, eps;
    int amsgrad, decoupled;
} adam;

#define ADAM_LR                                                                \
    {"lr", MSPT_PARAM_FLOAT, "1e-3",                                           \
     "learning rate; the scheduler's base, set by the trainer every step"}

#define ADAM_REST                                                              \
    {"betas", MSPT_PARAM_FLOATS, "{0.9, 0.999}",                               \
     "decay rates {beta1, beta2} of the gradient's first and second moments"}, \
    {"eps", MSPT_PARAM_FLOAT, "1e-8", "added to the denominator"},             \
    {"amsgrad", MSPT_PARAM_BOOL, "false",                                      \
     "divide by the running maximum of the second moment (AMSGrad)"},          \
    {NULL, 0, NULL, NULL}

static const mspt_param adam_params[] = {
    ADAM_LR,
    {"weight_decay", MSPT_PARAM_FLOAT, "0.01",
     "L2 penalty added to the gradient, g + wd·p (torch's default is 0, the "
     "seed pipeline's 0.01)"},
    ADAM_REST,
};

static const mspt_param adamw_params[] = {
    ADAM_LR,
    {"weight_decay", MSPT_PARAM_FLOAT, "0.01",
     "decoupled weight decay, p ← p·(1 − lr·wd) before the Adam update"},
    ADAM_REST,
};

/* Per-tensor scalars of one step, computed in double as torch does. */
typedef struct adam_scalars {
    float decay;     /* adamw: 1 − lr·wd */
    float wd;        /* adam: L2 coefficient */
    float b1, omb1;  /* β1, 1 − β1 */
    float b2, omb2;  /* β2, 1 − β2 */
    float bc2_sqrt;  /* √(1 − β2^t) */
    float eps;
    float neg_step;  /* −lr / (1 − β1^t) */
} adam_scalars;

/* One parameter, p g m v (n), vmax (n) or NULL without amsgrad. */
typedef struct adam_args {
    float *p, *m, *v, *vmax;
    const float *g;
    size_t n;
    const adam_scalars *c;
    int decoupled;
} adam_args;

/* Elements of block t.  Float operations in torch's order:
 *   adamw: p = p·(1 − lr·wd)        adam: g = g + wd·p   (if wd ≠ 0)
 *   m = m·β1 + (1 − β1)·g
 *   v = v·β2 + ((1 − β2)·g)·g
 *   vmax = max(vmax, v)                                  (amsgrad)
 *   p = p + (−step·m) / (√v̂ / √bc2 + eps),  v̂ = vmax or v             */
static void adam_block(void *arg, int t, int nt)
{
    const adam_args *a = arg;
    float *p = a->p, *m = a->m, *v = a->v, *vmax = a->vmax;
    const float *g = a->g;
    const adam_scalars *c = a->c;
    int decoupled = a->decoupled;
    size_t i0, i1;
    mspt_block(a->n, t, nt, &i0, &i1);
    for (size_t i = i0; i < i1; i++) {
        float gi = g[i];
        if (decoupled)
            p[i] = p[i] * c->decay;
        else if (c->wd != 0.0f)
            gi = gi + c->wd * p[i];
        m[i] = m[i] * c->b1 + c->omb1 * gi;
        v[i] = v[i] * c->b2 + c->omb2 * gi * gi;
        float vh = v[i];
        if (vmax) {
            vmax[i] = fmaxf(vmax[i], v[i]);
            vh = vmax[i];
        }
        float denom = sqrtf(vh) / c->bc2_sqrt + c->eps;
        p[i] = p[i] + c->neg_step * m[i] / denom;
    }
}

static void adam_step(void *self)
{
    adam *a = self;
    optim *o = &a->o;
    o->steps++;
    double t = (double)o->steps;
    double bc1 = 1.0 - pow(a->beta1, t);
    double bc2 = 1.0 - pow(a->beta2, t);
    for (size_t k = 0; k < o->nslots; k++) {
        optim_slot *sl = &o->slots[k];
        if (!sl->p->grad)
            continue;
        const mspt_param_group *grp = &o->groups[sl->group];
        double lr = grp->lr, wd = grp->weight_decay;
        adam_scalars c = {
            .decay = (float)(1.0 - lr * wd),
            .wd = (float)wd,
            .b1 = (float)a->beta1,
            .omb1 = (float)(1.0 - a->beta1),
            .b2 = (float)a->beta2,
            .omb2 = (float)(1.0 - a->beta2),
            .bc2_sqrt = (float)sqrt(bc2),
            .eps = (float)a->eps,
            .neg_step = (float)(-(lr / bc1)),
        };
        adam_args args = {sl->p->data, sl->buf[0], sl->buf[1],
                          a->amsgrad ? sl->buf[2] : NULL, sl->p->grad,
                          sl->p->numel, &c, a->decoupled};
        mspt_parallel(args.n, adam_block, &args);
    }
}

static int adam_create_any(const mspt_config *cfg, mspt_param_group *groups,
                           size_t ngroups, void **self, mspt_error *err,
                           int decoupled)
{
    double betas[2], eps;
    if (optim_check_lr_wd(cfg, 0, err) || optim_read_betas(cfg, betas, err) ||
        optim_read_nonneg(cfg, "eps", &eps, err))
        return MSPT_ERR_CONFIG;
    adam *a = calloc(1, sizeof *a);
    if (!a)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "adam: out of memory");
    a->beta1 = betas[0];
    a->beta2 = betas[1];
    a->eps = eps;
    a->amsgrad = mspt_config_bool(cfg, "amsgrad");
    a->decoupled = decoupled;
    const char *names[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    int rc = optim_init(&a->o, cfg, groups, ngroups, a->amsgrad ? 3 : 2,
                        names, err);
    if (rc) {
        free(a);
        return rc;
    }
    *self = a;
    return 0;
}

static int adam_create(const mspt_config *cfg, mspt_param_group *groups,
                       size_t ngroups, void **self, mspt_error *err)
{
    return adam_create_any(cfg, groups, ngroups, self, err, 0);
}

static int adamw_create(const mspt_config *cfg, mspt_param_group *groups,
                        size_t ngroups, void **self, mspt_error *err)
{
    return adam_create_any(cfg, groups, ngroups, self, err, 1);
}

static void adam_destroy(void *self)
{
    if (!self)
        return;
    optim_free(self);
    free(self);
}

static const mspt_optimizer_vt adam_vt = {
    adam_create, adam_step, optim_state, optim_get_steps, optim_set_steps,
    adam_destroy,
};

static const mspt_optimizer_vt adamw_vt = {
    adamw_create, adam_step, optim_state, optim_get_steps, optim_set_steps,
    adam_destroy,
};

const mspt_component optim_adam = {
    MSPT_COMPONENT_INIT, MSPT_KIND_OPTIMIZER, "adam",
    "Adam with L2 weight decay (torch.optim.Adam)", adam_params, &adam_vt,
};

const mspt_component optim_adamw = {
    MSPT_COMPONENT_INIT, MSPT_KIND_OPTIMIZER, "adamw",
    "Adam with decoupled weight decay (torch.optim.AdamW)", adamw_params,
    &adamw_vt,
};
