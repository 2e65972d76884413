/* The schedulers module: cosine, multistep, constant and linear.
 *
 * Contract with the trainer: lr(self, update, epoch, base_lr) is a pure
 * function of progress (update = optimizer updates done so far, epoch =
 * epochs finished), so resuming needs no scheduler state.  The trainer
 * calls it before every optimizer update, once per parameter group with
 * the group's base rate (the optimizer's `lr`, scaled for a differential
 * group), and writes the result into the group's `lr`.
 *
 * This reproduces timm's schedulers as the seed pipeline drives them: the
 * rate used for update u is the one timm sets by step_update(u) after the
 * u-th update (t_in_epochs false), or by step(e) at the end of epoch e
 * (t_in_epochs true) — i.e. timm's _get_lr(t) with t = u or e.  Everything
 * is computed in double, in timm's order of operations. */
#include "sched.h"


int sched_key_error(mspt_error *err, const mspt_config *cfg, const char *key,
                    const char *what, double got)
{
    return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.%s: %s, got %g",
                          mspt_config_path(cfg), key, what, got);
}

int sched_read_warmup(const mspt_config *cfg, const mspt_schedule_info *info,
                      sched_warmup *w, mspt_error *err)
{
    int in_epochs = mspt_config_bool(cfg, "t_in_epochs");
    double epochs = mspt_config_float(cfg, "warmup_epochs");
    w->lr_init = mspt_config_float(cfg, "warmup_lr_init");
    if (!(w->lr_init >= 0))
        return sched_key_error(err, cfg, "warmup_lr_init", "must be >= 0",
                               w->lr_init);
    if (!(epochs >= 0))
        return sched_key_error(err, cfg, "warmup_epochs",
                               "must be >= 0 (0 = no warmup)", epochs);
    if (mspt_config_has(cfg, "warmup_t")) {
        w->t = mspt_config_float(cfg, "warmup_t");
        if (!(w->t >= 0))
            return sched_key_error(err, cfg, "warmup_t",
                                   "must be >= 0 (0 = no warmup)", w->t);
        if (epochs != 0)
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "%s.warmup_t: give warmup_epochs or "
                                  "warmup_t, not both",
                                  mspt_config_path(cfg));
        return 0;
    }
    if (in_epochs || epochs == 0) {
        w->t = epochs;
        return 0;
    }
    if (info->steps_per_epoch <= 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s.warmup_epochs: the run's updates per epoch "
                              "are unknown; give warmup_t in updates",
                              mspt_config_path(cfg));
    w->t = epochs * (double)info->steps_per_epoch;
    return 0;
}

int sched_read_length(const mspt_config *cfg, const char *key,
                      const mspt_schedule_info *info, double *len,
                      mspt_error *err)
{
    if (mspt_config_has(cfg, key)) {
        long long v = mspt_config_int(cfg, key);
        if (v <= 0)
            return sched_key_error(err, cfg, key, "must be positive",
                                   (double)v);
        *len = (double)v;
        return 0;
    }
    int in_epochs = mspt_config_bool(cfg, "t_in_epochs");
    long long run = in_epochs ? info->max_epochs : info->max_steps;
    if (run <= 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s.%s: not set, and the run's length in %s is "
                              "unknown", mspt_config_path(cfg), key,
                              in_epochs ? "epochs" : "updates");
    *len = (double)run;
    return 0;
}

MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p)
{
    const mspt_component *all[] = {&sched_cosine, &sched_multistep,
                                   &sched_constant, &sched_linear};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (mspt_plugin_register(p, all[i]))
            return 1;
    return 0;
}
