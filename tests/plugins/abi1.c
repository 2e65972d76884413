/* A test module as a plugin built against mspt's ABI 1 would be: its
 * components say abi_version 1 and its dataset vtable has the four members
 * of ABI 1 (no live_channels).  The host must still load it and use it. */
#include <stdlib.h>

#include <mspt/mspt.h>

/* mspt_dataset_vt as ABI 1 declared it */
typedef struct dataset_vt_abi1 {
    int (*create)(const mspt_config *cfg, void **self, mspt_error *err);
    void (*shape)(void *self, size_t *windows, int *channels, int *samples);
    int (*read)(void *self, size_t i, float *out, mspt_error *err);
    void (*destroy)(void *self);
} dataset_vt_abi1;

typedef struct old_data {
    int windows, channels, samples;
} old_data;

static int data_create(const mspt_config *cfg, void **self, mspt_error *err)
{
    old_data *d = calloc(1, sizeof *d);
    if (!d)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    d->windows = (int)mspt_config_int(cfg, "windows");
    d->channels = (int)mspt_config_int(cfg, "channels");
    d->samples = (int)mspt_config_int(cfg, "samples");
    *self = d;
    return 0;
}

static void data_shape(void *self, size_t *w, int *c, int *s)
{
    old_data *d = self;
    *w = (size_t)d->windows;
    *c = d->channels;
    *s = d->samples;
}

static int data_read(void *self, size_t i, float *out, mspt_error *err)
{
    (void)err;
    old_data *d = self;
    for (int k = 0; k < d->channels * d->samples; k++)
        out[k] = (float)(i + 1) + 0.001f * (float)k;
    return 0;
}

static const dataset_vt_abi1 data_vt = {data_create, data_shape, data_read,
                                        free};
static const mspt_param data_params[] = {
    {"windows", MSPT_PARAM_INT, "16", "number of windows"},
    {"channels", MSPT_PARAM_INT, "4", "channels per window"},
    {"samples", MSPT_PARAM_INT, "32", "samples per window"},
    {NULL, 0, NULL, NULL}};

/* a loss of ABI 1: its vtable is the same in ABI 2 */
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

static const mspt_component components[] = {
    {1, MSPT_KIND_DATASET, "old_ramp", "ABI-1 ramp windows", data_params,
     &data_vt},
    {1, MSPT_KIND_LOSS, "old_l1", "ABI-1 mean absolute error", no_params,
     &loss_vt},
};

MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p)
{
    for (size_t i = 0; i < sizeof components / sizeof components[0]; i++)
        if (mspt_plugin_register(p, &components[i]))
            return 1;
    return 0;
}
