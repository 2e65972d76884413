/* multistep: the seed pipeline's MultiStepLRWarmup — a linear warmup from
 * warmup_init_lr over warmup_iter updates, then torch's MultiStepLR:
 * base·gamma^(number of milestones ≤ t).
 *
 * The seed's class chains MultiStepLR after the warmup, so there the rate
 * stays at the last warmup value, never reaching base; this follows the
 * documented intent (the closed form, which equals MultiStepLR exactly
 * without warmup, the seed's configuration). */
#include "sched.h"

#include <math.h>
#include <stdlib.h>

typedef struct multistep {
    long long *milestones;
    size_t n;
    double gamma, warmup_init_lr;
    long long warmup_iter;
    int t_in_epochs;
} multistep;

static const mspt_param multistep_params[] = {
    {"milestones", MSPT_PARAM_INTS, NULL,
     "updates (epochs if t_in_epochs) at which the rate is multiplied by "
     "gamma; a repeated milestone applies gamma twice"},
    {"gamma", MSPT_PARAM_FLOAT, "0.1", "decay factor at each milestone"},
    {"warmup_iter", MSPT_PARAM_INT, "0",
     "linear warmup length in updates (epochs if t_in_epochs); 0 = none"},
    {"warmup_init_lr", MSPT_PARAM_FLOAT, "0",
     "learning rate at the start of the warmup"},
    {"t_in_epochs", MSPT_PARAM_BOOL, "false",
     "count time in finished epochs instead of optimizer updates"},
    {NULL, 0, NULL, NULL},
};

static double multistep_lr(void *self, long long update, long long epoch,
                           double base)
{
    const multistep *m = self;
    long long t = m->t_in_epochs ? epoch : update;
    if (t < m->warmup_iter)
        return m->warmup_init_lr + (base - m->warmup_init_lr) /
                                       (double)m->warmup_iter * (double)t;
    int passed = 0;
    for (size_t i = 0; i < m->n; i++)
        passed += m->milestones[i] <= t;
    return base * pow(m->gamma, passed);
}

static int multistep_create(const mspt_config *cfg,
                            const mspt_schedule_info *info, void **self,
                            mspt_error *err)
{
    (void)info;
    multistep m = {0};
    m.n = mspt_config_len(cfg, "milestones");
    m.gamma = mspt_config_float(cfg, "gamma");
    m.warmup_iter = mspt_config_int(cfg, "warmup_iter");
    m.warmup_init_lr = mspt_config_float(cfg, "warmup_init_lr");
    m.t_in_epochs = mspt_config_bool(cfg, "t_in_epochs");
    if (m.n == 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s.milestones: needs at least one milestone",
                              mspt_config_path(cfg));
    for (size_t i = 0; i < m.n; i++)
        if (mspt_config_int_at(cfg, "milestones", i) < 0)
            return mspt_error_set(
                err, MSPT_ERR_CONFIG, "%s.milestones[%zu]: must be >= 0, got "
                "%lld", mspt_config_path(cfg), i + 1,
                mspt_config_int_at(cfg, "milestones", i));
    if (!(m.gamma > 0))
        return sched_key_error(err, cfg, "gamma", "must be > 0", m.gamma);
    if (m.warmup_iter < 0)
        return sched_key_error(err, cfg, "warmup_iter",
                               "must be >= 0 (0 = no warmup)",
                               (double)m.warmup_iter);
    if (!(m.warmup_init_lr >= 0))
        return sched_key_error(err, cfg, "warmup_init_lr", "must be >= 0",
                               m.warmup_init_lr);
    multistep *s = malloc(sizeof *s);
    long long *ms = malloc(m.n * sizeof *ms);
    if (!s || !ms) {
        free(s);
        free(ms);
        return mspt_error_set(err, MSPT_ERR_RUNTIME,
                              "multistep: out of memory");
    }
    for (size_t i = 0; i < m.n; i++)
        ms[i] = mspt_config_int_at(cfg, "milestones", i);
    *s = m;
    s->milestones = ms;
    *self = s;
    return 0;
}

static void multistep_destroy(void *self)
{
    multistep *m = self;
    if (!m)
        return;
    free(m->milestones);
    free(m);
}

static const mspt_scheduler_vt multistep_vt = {
    multistep_create, multistep_lr, multistep_destroy};

const mspt_component sched_multistep = {
    MSPT_COMPONENT_INIT, MSPT_KIND_SCHEDULER, "multistep",
    "step decay by gamma at milestones, with linear warmup (MultiStepLR)",
    multistep_params, &multistep_vt,
};
