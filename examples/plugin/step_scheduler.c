/* An mspt plugin built outside the mspt tree: timm's StepLRScheduler.
 *
 * Build against the installed headers:
 *     cc -shared -fPIC -o step.so step_scheduler.c $(pkg-config --cflags --libs mspt)
 * and load it by path from an experiment:
 *     scheduler = { _target_ = "/path/to/step.so", decay_t = 30, decay_rate = 0.1 }
 * or put step.so in a directory listed in MSPT_PLUGIN_PATH and write
 *     scheduler = { _target_ = "step", ... }
 *
 * lr(t) = warmup_lr_init + t·(base − warmup_lr_init)/warmup_t   for t < warmup_t
 *         base · decay_rate^⌊t / decay_t⌋                         afterwards
 * where t counts optimizer updates, or finished epochs with t_in_epochs. */
#include <math.h>
#include <stdlib.h>

#include <mspt/mspt.h>

typedef struct step_sched {
    double decay_t, decay_rate, warmup_t, warmup_lr_init;
    int t_in_epochs;
} step_sched;

static int step_create(const mspt_config *cfg, const mspt_schedule_info *info,
                       void **self, mspt_error *err)
{
    (void)info;
    step_sched *s = malloc(sizeof *s);
    if (!s)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    s->decay_t = (double)mspt_config_int(cfg, "decay_t");
    s->decay_rate = mspt_config_float(cfg, "decay_rate");
    s->warmup_t = (double)mspt_config_int(cfg, "warmup_t");
    s->warmup_lr_init = mspt_config_float(cfg, "warmup_lr_init");
    s->t_in_epochs = mspt_config_bool(cfg, "t_in_epochs");
    if (s->decay_t < 1 || s->warmup_t < 0) {
        free(s);
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s: decay_t must be >= 1 and warmup_t >= 0",
                              mspt_config_path(cfg));
    }
    *self = s;
    return 0;
}

static double step_lr(void *self, long long update, long long epoch,
                      double base_lr)
{
    const step_sched *s = self;
    double t = (double)(s->t_in_epochs ? epoch : update);
    if (t < s->warmup_t)
        return s->warmup_lr_init + t * (base_lr - s->warmup_lr_init) / s->warmup_t;
    return base_lr * pow(s->decay_rate, floor(t / s->decay_t));
}

static void step_destroy(void *self) { free(self); }

static const mspt_scheduler_vt step_vt = {step_create, step_lr, step_destroy};

static const mspt_param step_params[] = {
    {"decay_t", MSPT_PARAM_INT, "30", "updates (or epochs) between decays"},
    {"decay_rate", MSPT_PARAM_FLOAT, "0.1", "factor applied at each decay"},
    {"warmup_t", MSPT_PARAM_INT, "0", "length of the linear warmup"},
    {"warmup_lr_init", MSPT_PARAM_FLOAT, "0", "learning rate at the start of warmup"},
    {"t_in_epochs", MSPT_PARAM_BOOL, "false", "count epochs instead of updates"},
    {NULL, 0, NULL, NULL}};

static const mspt_component step_component = {
    MSPT_COMPONENT_INIT, MSPT_KIND_SCHEDULER, "step",
    "step decay with linear warmup (timm StepLRScheduler)", step_params,
    &step_vt};

MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p)
{
    return mspt_plugin_register(p, &step_component);
}
