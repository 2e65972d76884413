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

/* One parameter, p g buf (n); buf NULL without momentum. */
typedef struct sgd_args {
    float *p, *buf;
    const float *g;
    size_t n;
    float neg_lr, wd, mu, damp1;
    int first, nesterov;
} sgd_args;

/* Elements of block t.  Float operations in torch's order:
 *   d = g + wd·p                              (if wd ≠ 0)
 *   buf = d (first step)  or  buf·μ + (1 − dampening)·d
 *   d = d + μ·buf (Nesterov)  or  buf
 *   p = p − lr·d                                                          */
static void sgd_block(void *arg, int t, int nt)
{
    const sgd_args *a = arg;
    float *p = a->p, *buf = a->buf;
    const float *g = a->g;
    float neg_lr = a->neg_lr, wd = a->wd, mu = a->mu, damp1 = a->damp1;
    int first = a->first, nesterov = a->nesterov;
    size_t i0, i1;
    mspt_block(a->n, t, nt, &i0, &i1);
    for (size_t i = i0; i < i1; i++) {
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
        sgd_args a = {sl->p->data, sl->buf[0], sl->p->grad, sl->p->numel,
                      -grp->lr, grp->weight_decay, s->momentum, damp1, first,
                      s->nesterov};
        mspt_parallel(a.n, sgd_block, &a);
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
