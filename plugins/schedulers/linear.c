/* constant and linear: a linear warmup (as timm's), then either the base
 * rate, or a linear decay to lr_min at the end of the run as transformers'
 * get_linear_schedule_with_warmup (which is lr_min = 0, warmup from 0):
 *   lr = lr_min + (base − lr_min)·max(0, (T − t) / max(1, T − warmup)). */
#include "sched.h"

#include <stdlib.h>

typedef struct linear {
    sched_warmup w;
    double t_total, lr_min; /* linear only */
    int t_in_epochs;
} linear;

static const mspt_param constant_params[] = {
    SCHED_WARMUP_PARAMS,
    {NULL, 0, NULL, NULL},
};

static const mspt_param linear_params[] = {
    {"t_total", MSPT_PARAM_INT, SCHED_UNSET,
     "updates (epochs if t_in_epochs) until the rate reaches lr_min; unset: "
     "the whole run"},
    {"lr_min", MSPT_PARAM_FLOAT, "0", "rate at the end of the decay"},
    SCHED_WARMUP_PARAMS,
    {NULL, 0, NULL, NULL},
};

static double constant_lr(void *self, long long update, long long epoch,
                          double base)
{
    const linear *l = self;
    double t = sched_time(l->t_in_epochs, update, epoch);
    return t < l->w.t ? sched_warmup_lr(&l->w, t, base) : base;
}

static double linear_lr(void *self, long long update, long long epoch,
                        double base)
{
    const linear *l = self;
    double t = sched_time(l->t_in_epochs, update, epoch);
    if (t < l->w.t)
        return sched_warmup_lr(&l->w, t, base);
    double span = l->t_total - l->w.t;
    double frac = (l->t_total - t) / (span > 1 ? span : 1);
    if (frac < 0)
        frac = 0;
    return l->lr_min + (base - l->lr_min) * frac;
}

static int read_common(const mspt_config *cfg, const mspt_schedule_info *info,
                       linear *l, mspt_error *err)
{
    l->t_in_epochs = mspt_config_bool(cfg, "t_in_epochs");
    return sched_read_warmup(cfg, info, &l->w, err);
}

static int keep(linear *l, void **self, mspt_error *err)
{
    linear *s = malloc(sizeof *s);
    if (!s)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "scheduler: out of memory");
    *s = *l;
    *self = s;
    return 0;
}

static int constant_create(const mspt_config *cfg,
                           const mspt_schedule_info *info, void **self,
                           mspt_error *err)
{
    linear l = {0};
    if (read_common(cfg, info, &l, err))
        return MSPT_ERR_CONFIG;
    return keep(&l, self, err);
}

static int linear_create(const mspt_config *cfg,
                         const mspt_schedule_info *info, void **self,
                         mspt_error *err)
{
    linear l = {0};
    if (read_common(cfg, info, &l, err) ||
        sched_read_length(cfg, "t_total", info, &l.t_total, err))
        return MSPT_ERR_CONFIG;
    l.lr_min = mspt_config_float(cfg, "lr_min");
    if (!(l.lr_min >= 0))
        return sched_key_error(err, cfg, "lr_min", "must be >= 0", l.lr_min);
    if (l.w.t > l.t_total)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s: the warmup (%g) is longer than the "
                              "schedule (t_total %g)", mspt_config_path(cfg),
                              l.w.t, l.t_total);
    return keep(&l, self, err);
}

static void linear_destroy(void *self) { free(self); }

static const mspt_scheduler_vt constant_vt = {constant_create, constant_lr,
                                              linear_destroy};
static const mspt_scheduler_vt linear_vt = {linear_create, linear_lr,
                                            linear_destroy};

const mspt_component sched_constant = {
    MSPT_COMPONENT_INIT, MSPT_KIND_SCHEDULER, "constant",
    "the base rate, after an optional linear warmup", constant_params,
    &constant_vt,
};

const mspt_component sched_linear = {
    MSPT_COMPONENT_INIT, MSPT_KIND_SCHEDULER, "linear",
    "linear warmup, then linear decay to lr_min at the end of the run",
    linear_params, &linear_vt,
};
