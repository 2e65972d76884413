/* A test module for padded channels (tests/test_padding.c):
 *   datasets.pad_ramp  windows whose channels past 1 + i mod C are zero
 *                      padding, reported by live_channels (or, with
 *                      report_live = false, not reported: every channel
 *                      counts, as before ABI 2);
 *   losses.probe_l1    mean absolute error that records every call (mask,
 *                      prediction, target, value) for the test to read
 *                      through probe_calls(). */
#include <stdlib.h>
#include <string.h>

#include <mspt/mspt.h>

#include "probe.h"

/* ---- dataset -------------------------------------------------------------- */

typedef struct pad_data {
    int windows, channels, samples, report;
} pad_data;

static int pad_live(void *self, size_t i)
{
    pad_data *d = self;
    return d->report ? 1 + (int)(i % (size_t)d->channels) : d->channels;
}

static int data_create(const mspt_config *cfg, void **self, mspt_error *err)
{
    pad_data *d = calloc(1, sizeof *d);
    if (!d)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    d->windows = (int)mspt_config_int(cfg, "windows");
    d->channels = (int)mspt_config_int(cfg, "channels");
    d->samples = (int)mspt_config_int(cfg, "samples");
    d->report = mspt_config_bool(cfg, "report_live");
    *self = d;
    return 0;
}

static void data_shape(void *self, size_t *w, int *c, int *s)
{
    pad_data *d = self;
    *w = (size_t)d->windows;
    *c = d->channels;
    *s = d->samples;
}

/* x[0][0] = i + 1 names the window; live rows non-zero, the rest zero */
static int data_read(void *self, size_t i, float *out, mspt_error *err)
{
    (void)err;
    pad_data *d = self;
    int live = 1 + (int)(i % (size_t)d->channels);
    for (int c = 0; c < d->channels; c++)
        for (int t = 0; t < d->samples; t++)
            out[c * d->samples + t] =
                c >= live ? 0.0f
                : t == 0 && c == 0 ? (float)(i + 1)
                : (float)((c * 7 + t * 3 + (int)i) % 11 - 5) + 0.25f;
    return 0;
}

static const mspt_dataset_vt data_vt = {data_create, data_shape, data_read,
                                        free, pad_live};
static const mspt_param data_params[] = {
    {"windows", MSPT_PARAM_INT, "16", "number of windows"},
    {"channels", MSPT_PARAM_INT, "4", "channels per window"},
    {"samples", MSPT_PARAM_INT, "32", "samples per window"},
    {"report_live", MSPT_PARAM_BOOL, "true",
     "report the padding through live_channels"},
    {NULL, 0, NULL, NULL}};

/* ---- loss that records its calls ------------------------------------------ */

static probe_call *calls;
static size_t ncalls, capcalls;

/* The calls recorded since the last reset (for the test). */
MSPT_PLUGIN_EXPORT const probe_call *probe_calls(size_t *n, int reset);

const probe_call *probe_calls(size_t *n, int reset)
{
    if (reset) {
        for (size_t i = 0; i < ncalls; i++) {
            free(calls[i].mask);
            free(calls[i].pred);
            free(calls[i].target);
        }
        ncalls = 0;
    }
    *n = ncalls;
    return calls;
}

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
    mspt_tensor *y = mspt_l1_loss(ctx, pred, target, mask);
    if (!y)
        return NULL;
    if (ncalls == capcalls) {
        capcalls = capcalls ? 2 * capcalls : 64;
        calls = realloc(calls, capcalls * sizeof *calls);
    }
    probe_call *c = &calls[ncalls++];
    size_t n = pred->numel;
    *c = (probe_call){n, y->data[0], mask != NULL, malloc(n), NULL, NULL};
    c->pred = malloc(n * sizeof(float));
    c->target = malloc(n * sizeof(float));
    if (mask)
        memcpy(c->mask, mask, n);
    memcpy(c->pred, pred->data, n * sizeof(float));
    memcpy(c->target, target->data, n * sizeof(float));
    return y;
}

static void loss_destroy(void *self) { (void)self; }
static const mspt_loss_vt loss_vt = {loss_create, loss_forward, loss_destroy};
static const mspt_param no_params[] = {{NULL, 0, NULL, NULL}};

static const mspt_component components[] = {
    {MSPT_COMPONENT_INIT, MSPT_KIND_DATASET, "pad_ramp",
     "windows with zero-padded channels", data_params, &data_vt},
    {MSPT_COMPONENT_INIT, MSPT_KIND_LOSS, "probe_l1",
     "mean absolute error that records its calls", no_params, &loss_vt},
};

MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p)
{
    for (size_t i = 0; i < sizeof components / sizeof components[0]; i++)
        if (mspt_plugin_register(p, &components[i]))
            return 1;
    return 0;
}
