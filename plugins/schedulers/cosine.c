/* cosine: timm's CosineLRScheduler (timm/scheduler/cosine_lr.py, _get_lr):
 * linear warmup, then cosine cycles ("SGDR", arXiv:1608.03983) whose
 * length grows by cycle_mul and peak by cycle_decay, up to cycle_limit
 * cycles, with k-decay (arXiv:2004.05909).  timm's noise options are not
 * supported. */
#include "sched.h"

#include <math.h>
#include <stdlib.h>

typedef struct cosine {
    sched_warmup w;
    double t_initial, lr_min, cycle_mul, cycle_decay, k_decay;
    long long cycle_limit;
    int warmup_prefix, t_in_epochs;
} cosine;

static const mspt_param cosine_params[] = {
    {"t_initial", MSPT_PARAM_INT, SCHED_UNSET,
     "length of the first cycle in updates (epochs if t_in_epochs); unset: "
     "the whole run"},
    {"lr_min", MSPT_PARAM_FLOAT, "0",
     "floor of the cosine (timm's default 0; the seed pipeline used 1e-6)"},
    SCHED_WARMUP_PARAMS,
    {"warmup_prefix", MSPT_PARAM_BOOL, "false",
     "start the cosine after the warmup instead of counting the warmup in "
     "the first cycle"},
    {"cycle_mul", MSPT_PARAM_FLOAT, "1", "each cycle is this much longer"},
    {"cycle_decay", MSPT_PARAM_FLOAT, "1",
     "each cycle's peak is this fraction of the previous one"},
    {"cycle_limit", MSPT_PARAM_INT, "1",
     "number of cycles; after them the rate stays at lr_min"},
    {"k_decay", MSPT_PARAM_FLOAT, "1",
     "k-decay exponent: cos(π·t^k / T^k)"},
    {NULL, 0, NULL, NULL},
};

static const double pi = 3.141592653589793;

/* timm's _get_lr for one base rate, operation for operation. */
static double cosine_lr(void *self, long long update, long long epoch,
                        double base)
{
    const cosine *c = self;
    double t = sched_time(c->t_in_epochs, update, epoch);
    if (t < c->w.t)
        return sched_warmup_lr(&c->w, t, base);
    if (c->warmup_prefix)
        t = t - c->w.t;
    double i, t_i, t_curr;
    if (c->cycle_mul != 1) {
        double x = 1 - t / c->t_initial * (1 - c->cycle_mul);
        if (!(x > 0)) /* shrinking cycles (cycle_mul < 1) all done */
            return c->lr_min;
        i = floor(log(x) / log(c->cycle_mul));
        t_i = pow(c->cycle_mul, i) * c->t_initial;
        t_curr = t - (1 - pow(c->cycle_mul, i)) / (1 - c->cycle_mul) *
                         c->t_initial;
    } else {
        i = floor(t / c->t_initial);
        t_i = c->t_initial;
        t_curr = t - (c->t_initial * i);
    }
    if (!(i < (double)c->cycle_limit))
        return c->lr_min;
    double lr_max = base * pow(c->cycle_decay, i);
    double k = c->k_decay;
    return c->lr_min + 0.5 * (lr_max - c->lr_min) *
                           (1 + cos(pi * pow(t_curr, k) / pow(t_i, k)));
}

static int cosine_create(const mspt_config *cfg,
                         const mspt_schedule_info *info, void **self,
                         mspt_error *err)
{
    cosine c = {0};
    c.t_in_epochs = mspt_config_bool(cfg, "t_in_epochs");
    c.warmup_prefix = mspt_config_bool(cfg, "warmup_prefix");
    c.lr_min = mspt_config_float(cfg, "lr_min");
    c.cycle_mul = mspt_config_float(cfg, "cycle_mul");
    c.cycle_decay = mspt_config_float(cfg, "cycle_decay");
    c.cycle_limit = mspt_config_int(cfg, "cycle_limit");
    c.k_decay = mspt_config_float(cfg, "k_decay");
    if (sched_read_warmup(cfg, info, &c.w, err) ||
        sched_read_length(cfg, "t_initial", info, &c.t_initial, err))
        return MSPT_ERR_CONFIG;
    if (!(c.lr_min >= 0))
        return sched_key_error(err, cfg, "lr_min", "must be >= 0", c.lr_min);
    if (!(c.cycle_mul > 0))
        return sched_key_error(err, cfg, "cycle_mul", "must be > 0",
                               c.cycle_mul);
    if (!(c.cycle_decay >= 0))
        return sched_key_error(err, cfg, "cycle_decay", "must be >= 0",
                               c.cycle_decay);
    if (c.cycle_limit < 1)
        return sched_key_error(err, cfg, "cycle_limit", "must be >= 1",
                               (double)c.cycle_limit);
    if (!(c.k_decay > 0))
        return sched_key_error(err, cfg, "k_decay", "must be > 0", c.k_decay);
    cosine *s = malloc(sizeof *s);
    if (!s)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "cosine: out of memory");
    *s = c;
    *self = s;
    return 0;
}

static void cosine_destroy(void *self) { free(self); }

static const mspt_scheduler_vt cosine_vt = {cosine_create, cosine_lr,
                                            cosine_destroy};

const mspt_component sched_cosine = {
    MSPT_COMPONENT_INIT, MSPT_KIND_SCHEDULER, "cosine",
    "warmup, then cosine annealing with restarts (timm CosineLRScheduler)",
    cosine_params, &cosine_vt,
};
