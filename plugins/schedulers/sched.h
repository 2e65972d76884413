/* What the schedulers of this module share: the time unit, the linear
 * warmup and the run's length.  Private to the module. */
#ifndef SCHED_H
#define SCHED_H

#include <mspt/mspt.h>

/* Optional parameter without a default (the core's MSPT_NO_DEFAULT). */
#define SCHED_UNSET "nil"

/* Schema entries of the warmup, shared by cosine, constant and linear. */
#define SCHED_WARMUP_PARAMS                                                   \
    {"warmup_epochs", MSPT_PARAM_FLOAT, "0",                                  \
     "linear warmup length in epochs (warmup_epochs × steps_per_epoch "       \
     "updates unless t_in_epochs)"},                                          \
    {"warmup_t", MSPT_PARAM_FLOAT, SCHED_UNSET,                               \
     "warmup length in the schedule's unit (updates, or epochs if "           \
     "t_in_epochs), instead of warmup_epochs"},                               \
    {"warmup_lr_init", MSPT_PARAM_FLOAT, "0",                                 \
     "learning rate at the start of the warmup (timm's default 0)"},          \
    {"t_in_epochs", MSPT_PARAM_BOOL, "false",                                 \
     "count time in finished epochs (timm's step(epoch); timm's default) "   \
     "instead of optimizer updates (step_update, the seed pipeline's)"}

/* Linear warmup from lr_init to the base rate over t (0 = none). */
typedef struct sched_warmup {
    double t;
    double lr_init;
} sched_warmup;

/* Reads the SCHED_WARMUP_PARAMS (warmup_t wins over warmup_epochs; giving
 * both is an error); 0 or a config error naming the key. */
int sched_read_warmup(const mspt_config *cfg, const mspt_schedule_info *info,
                      sched_warmup *w, mspt_error *err);

/* timm's warmup: lr_init + t·(base − lr_init)/t_warmup. */
static inline double sched_warmup_lr(const sched_warmup *w, double t,
                                     double base)
{
    return w->lr_init + t * ((base - w->lr_init) / w->t);
}

/* The length given by integer `key`, or when it is unset the whole run
 * (max_epochs if t_in_epochs, else max_steps); must be positive. */
int sched_read_length(const mspt_config *cfg, const char *key,
                      const mspt_schedule_info *info, double *len,
                      mspt_error *err);

/* Config value errors: "<path>.<key>: <what>, got <v>". */
int sched_key_error(mspt_error *err, const mspt_config *cfg, const char *key,
                    const char *what, double got);

/* Time in the schedule's unit. */
static inline double sched_time(int t_in_epochs, long long update,
                                long long epoch)
{
    return t_in_epochs ? (double)epoch : (double)update;
}

/* The components. */
extern const mspt_component sched_cosine, sched_multistep, sched_constant,
    sched_linear;

#endif
