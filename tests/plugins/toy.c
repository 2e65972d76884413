/* A test module registering one small but working component of every kind,
 * so that the core's configuration, registry and command-line paths can be
 * tested without the real plugins. */
#include <stdlib.h>
#include <string.h>

#include <mspt/mspt.h>

#ifndef TOY_ABI
#define TOY_ABI MSPT_ABI_VERSION /* the bad-ABI module overrides this */
#endif

/* ---- encoder: reconstruction = x · gain + bias (per sample position) ---- */

typedef struct toy_encoder {
    int channels, samples;
    mspt_tensor *gain, *bias; /* (samples), broadcast over batch and channels */
} toy_encoder;

static int enc_create(const mspt_config *cfg, mspt_params *ps, mspt_rng *rng,
                      void **self, mspt_error *err)
{
    toy_encoder *e = calloc(1, sizeof *e);
    e->channels = (int)mspt_config_int(cfg, "channels");
    e->samples = (int)mspt_config_int(cfg, "samples");
    if (e->channels < 1) {
        free(e);
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.channels: must be >= 1",
                              mspt_config_path(cfg));
    }
    int shape[1] = {e->samples};
    const char *bias = "bias";
#ifdef TOY_BUGGY /* plugin bugs the host must name when the model is built */
    const char *bug = mspt_config_string(cfg, "label");
    if (bug && !strcmp(bug, "dup"))
        bias = "gain"; /* a parameter name used twice */
    if (bug && !strcmp(bug, "undeclared"))
        e->samples = (int)mspt_config_int(cfg, "samplez"); /* not in the schema */
#endif
    e->gain = mspt_param_new(ps, "gain", 1, shape, 0);
    e->bias = mspt_param_new(ps, bias, 1, shape, MSPT_PARAM_HEAD);
    mspt_init_uniform(e->gain, rng, 0.5f, 1.5f);
    *self = e;
    return 0;
}

static int enc_check(void *self, int channels, int samples, mspt_error *err)
{
    toy_encoder *e = self;
    if (channels != e->channels || samples != e->samples)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "data windows are %d x %d but the toy encoder "
                              "takes %d x %d", channels, samples, e->channels,
                              e->samples);
    return 0;
}

static mspt_tensor *enc_forward(void *self, mspt_ctx *ctx, mspt_tensor *x,
                                const uint8_t *mask, mspt_tensor **embed)
{
    toy_encoder *e = self;
    (void)mask;
    if (embed)
        *embed = x;
    return mspt_add(ctx, mspt_mul(ctx, x, e->gain), e->bias);
}

static void enc_destroy(void *self) { free(self); }

static const mspt_encoder_vt enc_vt = {enc_create, enc_check, enc_forward,
                                       enc_destroy};
static const mspt_param enc_params[] = {
    {"channels", MSPT_PARAM_INT, "4", "number of channels"},
    {"samples", MSPT_PARAM_INT, "32", "samples per window"},
    {"embed_dim", MSPT_PARAM_INT, "8", "unused width, for config tests"},
    {"patch_size", MSPT_PARAM_INTS, "{2, 16}", "unused, for list tests"},
    {"filter.low", MSPT_PARAM_FLOAT, "0.1", "nested table test"},
    {"filter.high", MSPT_PARAM_FLOAT, "75", "nested table test"},
    {"label", MSPT_PARAM_STRING, "nil", "optional string without default"},
    {NULL, 0, NULL, NULL}};

/* ---- loss: mean absolute error via the core op ------------------------- */

static int loss_create(const mspt_config *cfg, void **self, mspt_error *err)
{
    (void)cfg;
    (void)err;
    *self = NULL;
    return 0;
}
static mspt_tensor *loss_forward(void *self, mspt_ctx *ctx, mspt_tensor *pred,
                                 mspt_tensor *target, const uint8_t *mask)
{
    (void)self;
    return mspt_l1_loss(ctx, pred, target, mask);
}
static void loss_destroy(void *self) { (void)self; }
static const mspt_loss_vt loss_vt = {loss_create, loss_forward, loss_destroy};
static const mspt_param no_params[] = {{NULL, 0, NULL, NULL}};

/* ---- optimizer: plain SGD ---------------------------------------------- */

typedef struct toy_sgd {
    mspt_param_group *groups;
    size_t ngroups;
    long long steps;
} toy_sgd;

static int opt_create(const mspt_config *cfg, mspt_param_group *groups,
                      size_t ngroups, void **self, mspt_error *err)
{
    if (mspt_config_float(cfg, "lr") < 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.lr: must be >= 0",
                              mspt_config_path(cfg));
    toy_sgd *o = calloc(1, sizeof *o);
    o->groups = groups;
    o->ngroups = ngroups;
    *self = o;
    return 0;
}
static void opt_step(void *self)
{
    toy_sgd *o = self;
    for (size_t g = 0; g < o->ngroups; g++)
        for (size_t i = 0; i < o->groups[g].count; i++) {
            mspt_tensor *p = o->groups[g].params[i];
            for (size_t j = 0; j < p->numel; j++)
                p->data[j] -= o->groups[g].lr * p->grad[j];
        }
    o->steps++;
}
static size_t opt_state(void *self, mspt_state_buffer *out, size_t cap)
{
    (void)self;
    (void)out;
    (void)cap;
    return 0;
}
static long long opt_get_steps(void *self) { return ((toy_sgd *)self)->steps; }
static void opt_set_steps(void *self, long long s) { ((toy_sgd *)self)->steps = s; }
static void opt_destroy(void *self) { free(self); }
static const mspt_optimizer_vt opt_vt = {opt_create, opt_step, opt_state,
                                         opt_get_steps, opt_set_steps,
                                         opt_destroy};
static const mspt_param opt_params[] = {
    {"lr", MSPT_PARAM_FLOAT, "1e-3", "learning rate"},
    {"weight_decay", MSPT_PARAM_FLOAT, "0", "weight decay"},
    {NULL, 0, NULL, NULL}};

/* ---- scheduler: halves the lr every `every` updates -------------------- */

static int sched_create(const mspt_config *cfg, const mspt_schedule_info *info,
                        void **self, mspt_error *err)
{
    (void)info;
    long long every = mspt_config_int(cfg, "every");
    if (every < 1)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.every: must be >= 1",
                              mspt_config_path(cfg));
    long long *s = malloc(sizeof *s);
    *s = every;
    *self = s;
    return 0;
}
static double sched_lr(void *self, long long update, long long epoch,
                       double base_lr)
{
    (void)epoch;
    long long every = *(long long *)self;
    double lr = base_lr;
    for (long long k = update / every; k > 0; k--)
        lr *= 0.5;
    return lr;
}
static const mspt_scheduler_vt sched_vt = {sched_create, sched_lr, free};
static const mspt_param sched_params[] = {
    {"every", MSPT_PARAM_INT, "10", "updates between halvings"},
    {NULL, 0, NULL, NULL}};

/* ---- dataset: windows of a ramp ---------------------------------------- */

typedef struct toy_data {
    int windows, channels, samples;
} toy_data;

static int data_create(const mspt_config *cfg, void **self, mspt_error *err)
{
    toy_data *d = calloc(1, sizeof *d);
    d->windows = (int)mspt_config_int(cfg, "windows");
    d->channels = (int)mspt_config_int(cfg, "channels");
    d->samples = (int)mspt_config_int(cfg, "samples");
    if (d->windows < 1 || d->channels < 1 || d->samples < 1) {
        free(d);
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s: windows, channels and samples must be >= 1",
                              mspt_config_path(cfg));
    }
    *self = d;
    return 0;
}
static void data_shape(void *self, size_t *w, int *c, int *s)
{
    toy_data *d = self;
    *w = (size_t)d->windows;
    *c = d->channels;
    *s = d->samples;
}
static int data_read(void *self, size_t i, float *out, mspt_error *err)
{
    (void)err;
    toy_data *d = self;
    for (int k = 0; k < d->channels * d->samples; k++)
        out[k] = (float)(i + 1) * 0.01f * (float)(k % d->samples);
    return 0;
}
static const mspt_dataset_vt data_vt = {data_create, data_shape, data_read,
                                        free, NULL};
static const mspt_param data_params[] = {
    {"windows", MSPT_PARAM_INT, "16", "number of windows"},
    {"channels", MSPT_PARAM_INT, "4", "channels per window"},
    {"samples", MSPT_PARAM_INT, "32", "samples per window"},
    {"path", MSPT_PARAM_STRING, "nil", "unused, for override tests"},
    {NULL, 0, NULL, NULL}};

static const mspt_component components[] = {
    {TOY_ABI, MSPT_KIND_ENCODER, "toy", "toy encoder (per-channel gain)",
     enc_params, &enc_vt},
    {TOY_ABI, MSPT_KIND_LOSS, "toy_l1", "toy mean absolute error", no_params,
     &loss_vt},
    {TOY_ABI, MSPT_KIND_OPTIMIZER, "toy_sgd", "toy plain SGD", opt_params,
     &opt_vt},
    {TOY_ABI, MSPT_KIND_SCHEDULER, "toy_halving", "toy halving schedule",
     sched_params, &sched_vt},
    {TOY_ABI, MSPT_KIND_DATASET, "toy_ramp", "toy ramp windows", data_params,
     &data_vt},
};

MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p)
{
    for (size_t i = 0; i < sizeof components / sizeof components[0]; i++)
        if (mspt_plugin_register(p, &components[i]))
            return 1;
#ifdef TOY_REGISTER_TWICE
    if (mspt_plugin_register(p, &components[0]))
        return 1;
#endif
    return 0;
}
