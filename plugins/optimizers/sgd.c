/* sgd: torch.optim.SGD (torch 1.13, single-tensor path) with momentum,
 * dampening, Nesterov and L2 weight decay. */
#include "optim.h"

#include <stdlib.h>

typedef struct sgd {
    optim o; /* first: the shared vtable entries take it as self */
    float momentum, dampening;
    int nesterov;
} sgd;

static const mspt_param sgd_params[] = {
    {"lr", MSPT_PARAM_FLOAT, "1e-3",
     "learning rate; the scheduler's base, set by the trainer every step"},
    {"weight_decay", MSPT_PARAM_FLOAT, "0",
     "L2 penalty added to the gradient, g + wd·p"},
    {"momentum", MSPT_PARAM_FLOAT, "0.9",
     "momentum factor, 0 for plain SGD (torch's default is 0, the seed "
     "pipeline's 0.9)"},
    {"dampening", MSPT_PARAM_FLOAT, "0", "dampening of the momentum"},
    {"nesterov", MSPT_PARAM_BOOL, "false",
     "Nesterov momentum (needs momentum > 0 and dampening 0)"},
    {NULL, 0, NULL, NULL},
};

/* One parameter, p g buf (n); buf NULL without momentum.  Float operations
 * in torch's order:
 *   d = g + wd·p                              (if wd ≠ 0)
 *   buf = d (first step)  or  buf·μ + (1 − dampening)·d
 *   d = d + μ·buf (Nesterov)  or  buf
 *   p = p − lr·d                                                          */
static void sgd_update(float *p, const float *g, float *buf, size_t n,
                       float lr, float wd, float mu, float damp1, int first,
                       int nesterov)
{
    float neg_lr = -lr;
#pragma omp parallel for num_threads(mspt_get_threads()) schedule(static) \
    if (n >= OPTIM_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float d = g[i];
        if (wd != 0.0f)
            d = d + wd * p[i];
        if (buf) {
            buf[i] = first ? d : buf[i] * mu + damp1 * d;
            d = nesterov ? d + mu * buf[i] : buf[i];
        }
        p[i] = p[i] + neg_lr * d;
    }
}

static void sgd_step(void *self)
{
    sgd *s = self;
    optim *o = &s->o;
    int first = o->steps == 0;
    float damp1 = (float)(1.0 - (double)s->dampening);
    for (size_t k = 0; k < o->nslots; k++) {
        optim_slot *sl = &o->slots[k];
        if (!sl->p->grad)
            continue;
        const mspt_param_group *grp = &o->groups[sl->group];
        sgd_update(sl->p->data, sl->p->grad, sl->buf[0], sl->p->numel,
                   grp->lr, grp->weight_decay, s->momentum, damp1, first,
                   s->nesterov);
    }
    o->steps++;
}

static int sgd_create(const mspt_config *cfg, mspt_param_group *groups,
                      size_t ngroups, void **self, mspt_error *err)
{
    double mu, damp;
    if (optim_check_lr_wd(cfg, 0, err) ||
        optim_read_nonneg(cfg, "momentum", &mu, err) ||
        optim_read_nonneg(cfg, "dampening", &damp, err))
        return MSPT_ERR_CONFIG;
    int nesterov = mspt_config_bool(cfg, "nesterov");
    if (nesterov && (mu <= 0 || damp != 0))
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s.nesterov: Nesterov momentum requires "
                              "momentum > 0 and dampening 0 (got %g, %g)",
                              mspt_config_path(cfg), mu, damp);
    sgd *s = calloc(1, sizeof *s);
    if (!s)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "sgd: out of memory");
    const char *names[] = {"momentum_buffer"};
    int rc = optim_init(&s->o, cfg, groups, ngroups, mu != 0 ? 1 : 0, names,
                        err);
    if (rc) {
        free(s);
        return rc;
    }
    s->momentum = (float)mu;
    s->dampening = (float)damp;
    s->nesterov = nesterov;
    *self = s;
    return 0;
}

static void sgd_destroy(void *self)
{
    if (!self)
        return;
    optim_free(self);
    free(self);
}

static const mspt_optimizer_vt sgd_vt = {
    sgd_create, sgd_step, optim_state, optim_get_steps, optim_set_steps,
    sgd_destroy,
};

const mspt_component optim_sgd = {
    MSPT_COMPONENT_INIT, MSPT_KIND_OPTIMIZER, "sgd",
    "stochastic gradient descent with momentum (torch.optim.SGD)",
    sgd_params, &sgd_vt,
};
