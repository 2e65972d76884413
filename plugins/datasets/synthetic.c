/* datasets.synthetic: deterministic EEG-like windows, so that mspt trains
 * on a fresh machine with no data (the quickstart's default).  This file is
 * the component: its schema, checking the config, and the dataset vtable;
 * the signal itself is synthetic_signal.c. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <mspt/mspt.h>

#include "data/loader.h"

#include "synthetic_signal.h"

typedef struct synthetic {
    size_t windows;
    synth_model m;
} synthetic;

static const mspt_param synthetic_params[] = {
    {"windows", MSPT_PARAM_INT, "512", "number of windows"},
    {"channels", MSPT_PARAM_INT, "22",
     "channels per window (first = frontal, last = occipital)"},
    {"samples", MSPT_PARAM_INT, "1280", "samples per window"},
    {"sample_rate", MSPT_PARAM_FLOAT, "256.0", "sampling rate in Hz"},
    {"seed", MSPT_PARAM_INT, "0",
     "window i is a pure function of (seed, i); use another seed for a "
     "validation set"},
    {"background_amplitude", MSPT_PARAM_FLOAT, "20.0",
     "standard deviation of the 1/f background in uV"},
    {"alpha_amplitude", MSPT_PARAM_FLOAT, "30.0",
     "peak of the 8-12 Hz alpha bursts in uV on the last channel"},
    {"line_noise_amplitude", MSPT_PARAM_FLOAT, "5.0",
     "amplitude of the mains interference in uV"},
    {"line_frequency", MSPT_PARAM_FLOAT, "60.0",
     "mains frequency in Hz (50 in Europe)"},
    {"spike_rate", MSPT_PARAM_FLOAT, "0.1",
     "spikes (20-70 ms transients) per second"},
    {"spike_amplitude", MSPT_PARAM_FLOAT, "80.0", "spike peak in uV"},
    {"blink_rate", MSPT_PARAM_FLOAT, "0.2",
     "eye blinks (200-400 ms, frontal channels) per second, at most 1"},
    {"blink_amplitude", MSPT_PARAM_FLOAT, "100.0",
     "blink peak in uV on the first channel"},
    {NULL, 0, NULL, NULL}};

/* An integer parameter in [lo, hi]. */
static int get_int(const mspt_config *cfg, const char *key, long long lo,
                   long long hi, long long *out, mspt_error *err)
{
    long long v = mspt_config_int(cfg, key);
    if (v < lo)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.%s: must be >= %lld, "
                              "got %lld", mspt_config_path(cfg), key, lo, v);
    if (v > hi)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.%s: must be <= %lld, "
                              "got %lld", mspt_config_path(cfg), key, hi, v);
    *out = v;
    return 0;
}

/* A finite float parameter, > 0 (positive) or >= 0. */
static int get_float(const mspt_config *cfg, const char *key, int positive,
                     double *out, mspt_error *err)
{
    double v = mspt_config_float(cfg, key);
    if (!isfinite(v) || v < 0 || (positive && v == 0))
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.%s: must be %s and "
                              "finite, got %g", mspt_config_path(cfg), key,
                              positive ? "> 0" : ">= 0", v);
    *out = v;
    return 0;
}

/* Bytes this process can still allocate and touch: the kernel's
 * MemAvailable (sysconf's free pages without /proc), within what is left of
 * an address-space limit (ulimit -v).  *what: which bound it is. */
static unsigned long long memory_available(const char **what)
{
    unsigned long long avail = 0, page = (unsigned long long)sysconf(_SC_PAGESIZE);
    *what = "MemAvailable";
    FILE *fp = fopen("/proc/meminfo", "r");
    char line[256];
    while (fp && fgets(line, sizeof line, fp))
        if (sscanf(line, "MemAvailable: %llu kB", &avail) == 1) {
            avail *= 1024;
            break;
        }
    if (fp)
        fclose(fp);
    if (!avail) {
        long pages = sysconf(_SC_AVPHYS_PAGES);
        avail = pages > 0 ? (unsigned long long)pages * page : ULLONG_MAX;
        *what = "free memory";
    }
    struct rlimit lim;
    unsigned long long used = 0;
    if (getrlimit(RLIMIT_AS, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY &&
        (fp = fopen("/proc/self/statm", "r"))) {
        if (fscanf(fp, "%llu", &used) != 1)
            used = 0;
        fclose(fp);
        used *= page;
        unsigned long long room = lim.rlim_cur > used ? lim.rlim_cur - used : 0;
        if (room < avail) {
            avail = room;
            *what = "address-space limit, ulimit -v";
        }
    }
    return avail;
}

/* The windows are computed on demand, but the loader keeps an index of
 * them: more windows than memory can index would be killed by the kernel
 * without a word, so they are refused here, with the figures. */
static int check_memory(const mspt_config *cfg, long long windows,
                        mspt_error *err)
{
    const char *what;
    unsigned long long need = (unsigned long long)windows * MSPT_LOADER_BYTES_PER_WINDOW;
    unsigned long long avail = memory_available(&what);
    if (need <= avail)
        return 0;
    return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.windows: %lld windows need "
                          "%llu bytes of memory (%d per window for the loader's "
                          "index) but %llu are available (%s); lower %s.windows",
                          mspt_config_path(cfg), windows, need,
                          MSPT_LOADER_BYTES_PER_WINDOW, avail, what,
                          mspt_config_path(cfg));
}

static int read_config(const mspt_config *cfg, synthetic *d, mspt_error *err)
{
    synth_model *m = &d->m;
    long long windows, channels, samples;
    /* the loader indexes at most 2^32 windows (uint32) */
    if (get_int(cfg, "windows", 1, UINT32_MAX, &windows, err) ||
        get_int(cfg, "channels", 1, INT_MAX, &channels, err) ||
        get_int(cfg, "samples", 1, INT_MAX, &samples, err) ||
        get_float(cfg, "sample_rate", 1, &m->sample_rate, err) ||
        get_float(cfg, "background_amplitude", 0, &m->background, err) ||
        get_float(cfg, "alpha_amplitude", 0, &m->alpha, err) ||
        get_float(cfg, "line_noise_amplitude", 0, &m->line, err) ||
        get_float(cfg, "line_frequency", 1, &m->line_freq, err) ||
        get_float(cfg, "spike_rate", 0, &m->spike_rate, err) ||
        get_float(cfg, "spike_amplitude", 0, &m->spike_amp, err) ||
        get_float(cfg, "blink_rate", 0, &m->blink_rate, err) ||
        get_float(cfg, "blink_amplitude", 0, &m->blink_amp, err))
        return MSPT_ERR_CONFIG;
    const char *path = mspt_config_path(cfg);
    if (channels * samples > INT_MAX)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: channels x samples "
                              "= %lld is more than a window can hold (%d)",
                              path, channels * samples, INT_MAX);
    double nyquist = 0.5 * m->sample_rate;
    if (m->line_freq >= nyquist)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.line_frequency: %g Hz "
                              "must be below the Nyquist frequency %g Hz "
                              "(sample_rate %g)", path, m->line_freq, nyquist,
                              m->sample_rate);
    if (m->blink_rate > 1)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.blink_rate: must be "
                              "<= 1 (blinks come at most once a second), got "
                              "%g", path, m->blink_rate);
    /* bursts reach 11.8 Hz; above Nyquist they would alias to nonsense */
    if (m->alpha > 0 && nyquist < 12.0)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.alpha_amplitude: "
                              "alpha (8-12 Hz) needs sample_rate >= 24 Hz, got "
                              "%g; set alpha_amplitude = 0", path,
                              m->sample_rate);
    if (check_memory(cfg, windows, err))
        return MSPT_ERR_CONFIG;
    d->windows = (size_t)windows;
    m->channels = (int)channels;
    m->samples = (int)samples;
    m->seed = (uint64_t)mspt_config_int(cfg, "seed");
    synth_model_prepare(m);
    return 0;
}

static int synthetic_create(const mspt_config *cfg, void **self,
                            mspt_error *err)
{
    synthetic *d = calloc(1, sizeof *d);
    if (!d)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "synthetic: out of memory");
    int rc = read_config(cfg, d, err);
    if (rc) {
        free(d);
        return rc;
    }
    *self = d;
    return 0;
}

static void synthetic_shape(void *self, size_t *windows, int *channels,
                            int *samples)
{
    const synthetic *d = self;
    *windows = d->windows;
    *channels = d->m.channels;
    *samples = d->m.samples;
}

/* out (channels, samples) = window i; reads only the immutable model */
static int synthetic_read(void *self, size_t i, float *out, mspt_error *err)
{
    const synthetic *d = self;
    if (i >= d->windows)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "synthetic: window %zu "
                              "out of range (%zu windows)", i, d->windows);
    synth_window(&d->m, (uint64_t)i, out);
    return 0;
}

static void synthetic_destroy(void *self)
{
    free(self);
}

static const mspt_dataset_vt synthetic_vt = {
    synthetic_create, synthetic_shape, synthetic_read, synthetic_destroy,
    NULL /* live_channels: every channel carries signal */};

static const mspt_component synthetic_component = {
    MSPT_COMPONENT_INIT, MSPT_KIND_DATASET, "synthetic",
    "deterministic EEG-like windows (1/f background, alpha, spikes, blinks, "
    "line noise); no data needed",
    synthetic_params, &synthetic_vt};

MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p)
{
    return mspt_plugin_register(p, &synthetic_component) ? 1 : 0;
}
