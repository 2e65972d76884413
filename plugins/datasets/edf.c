/* datasets.edf: windows of clinical recordings (EDF, EDF+, BDF),
 * preprocessed in C as MNE 1.3 would (the TUH recipe of DESIGN.md by
 * default) and cached on disk as memory-mapped shards, one per recording
 * and recipe.  This file is the component: schema, config, the cache
 * policy and the dataset vtable; the work is in edf_*.c. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <mspt/mspt.h>

#include "edf_cache.h"
#include "edf_fft.h"
#include "edf_montage.h"
#include "edf_paths.h"
#include "edf_prep.h"

/* One recording's windows: a mapped shard, or memory when not cached. */
typedef struct source {
    edf_shard shard;
    float *mem;
    size_t n;
} source;

typedef struct edf_dataset {
    source *src;
    size_t nsrc;
    size_t *first; /* window index of each source's first window */
    size_t total;
    int channels, samples;
} edf_dataset;

static const mspt_param edf_params[] = {
    {"path", MSPT_PARAM_STRING, "nil",
     "an EDF/EDF+/BDF file, a directory (searched recursively for .edf and "
     ".bdf) or a glob pattern"},
    {"paths", MSPT_PARAM_STRINGS, "nil", "several of what path takes"},
    {"channels", MSPT_PARAM_STRINGS,
     "{FP1, FP2, F3, F4, C3, C4, P3, P4, O1, O2, F7, F8, T3, T4, T5, T6, A1, "
     "A2, FZ, CZ, PZ}",
     "labels to pick, in this order; case, an 'EEG ' prefix and a '-REF' or "
     "'-LE' suffix are ignored"},
    {"montage", MSPT_PARAM_STRING, "tcp",
     "'tcp' (TUH's 22 bipolar derivations), 'none' (the picked channels as "
     "they are: with l_freq = h_freq = notch = 0 at the file's rate, MNE's "
     "raw read in `units`) or 'pairs' (the derivations in pairs)"},
    {"pairs", MSPT_PARAM_STRINGS, "{}",
     "derivations 'A-B' of picked channels, for montage = 'pairs'"},
    {"l_freq", MSPT_PARAM_FLOAT, "0.1", "high-pass edge in Hz (0: none)"},
    {"h_freq", MSPT_PARAM_FLOAT, "75.0", "low-pass edge in Hz (0: none)"},
    {"notch", MSPT_PARAM_FLOAT, "60.0",
     "notch frequency in Hz (0: none; 50 for European mains)"},
    {"sample_rate", MSPT_PARAM_FLOAT, "256.0",
     "output sample rate in Hz; a signal already at this rate is not "
     "resampled (as BioFoundation's process_raw_eeg.py)"},
    {"window", MSPT_PARAM_INT, "1280", "samples per window"},
    {"stride", MSPT_PARAM_INT, "0",
     "samples between window starts (0: the window, no overlap)"},
    {"units", MSPT_PARAM_STRING, "uV", "output units: uV, mV or V"},
    {"cache", MSPT_PARAM_BOOL, "true",
     "keep preprocessed windows on disk (memory-mapped), rebuilt when the "
     "recording or the recipe changes"},
    {"cache_dir", MSPT_PARAM_STRING, "nil",
     "where the cache lives; default $XDG_CACHE_HOME/mspt/edf "
     "(~/.cache/mspt/edf)"},
    {NULL, 0, NULL, NULL}};

/* ---- configuration ---------------------------------------------------- */

static int bad(mspt_error *err, const mspt_config *cfg, const char *key,
               const char *what, double v)
{
    return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.%s: %s, got %g",
                          mspt_config_path(cfg), key, what, v);
}

static int read_numbers(const mspt_config *cfg, edf_recipe *r, mspt_error *err)
{
    r->l_freq = mspt_config_float(cfg, "l_freq");
    r->h_freq = mspt_config_float(cfg, "h_freq");
    r->notch = mspt_config_float(cfg, "notch");
    r->sample_rate = mspt_config_float(cfg, "sample_rate");
    long long window = mspt_config_int(cfg, "window");
    long long stride = mspt_config_int(cfg, "stride");
    if (!isfinite(r->l_freq) || r->l_freq < 0)
        return bad(err, cfg, "l_freq", "must be >= 0 Hz", r->l_freq);
    if (!isfinite(r->h_freq) || r->h_freq < 0)
        return bad(err, cfg, "h_freq", "must be >= 0 Hz", r->h_freq);
    if (r->l_freq > 0 && r->h_freq > 0 && r->l_freq >= r->h_freq)
        return bad(err, cfg, "l_freq", "must be below h_freq", r->l_freq);
    if (!isfinite(r->notch) || r->notch < 0)
        return bad(err, cfg, "notch", "must be >= 0 Hz", r->notch);
    if (!isfinite(r->sample_rate) || r->sample_rate <= 0 ||
        r->sample_rate > 100000)
        return bad(err, cfg, "sample_rate", "must be in (0, 100000] Hz",
                   r->sample_rate);
    if (window < 1 || window > (1 << 24))
        return bad(err, cfg, "window", "must be 1..16777216 samples",
                   (double)window);
    if (stride < 0 || stride > (1 << 24))
        return bad(err, cfg, "stride", "must be 0..16777216 samples",
                   (double)stride);
    r->window = (int)window;
    r->stride = stride ? (int)stride : (int)window;
    const char *units = mspt_config_string(cfg, "units");
    r->per_uv = !strcmp(units, "uV") ? 1.0 : !strcmp(units, "mV") ? 1e-3
              : !strcmp(units, "V") ? 1e-6 : 0.0;
    if (r->per_uv == 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.units: expected 'uV', "
                              "'mV' or 'V', got '%s'", mspt_config_path(cfg),
                              units);
    return 0;
}

/* channels (kept as pointers into cfg) and the montage over them. */
static int read_channels(const mspt_config *cfg, edf_recipe *r,
                         const char **names, mspt_error *err)
{
    const char *path = mspt_config_path(cfg);
    r->nch = (int)mspt_config_len(cfg, "channels");
    if (r->nch == 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.channels: empty", path);
    for (int c = 0; c < r->nch; c++) {
        names[c] = mspt_config_string_at(cfg, "channels", (size_t)c);
        char kc[64], kd[64];
        edf_channel_key(names[c], kc, sizeof kc);
        for (int d = 0; d < c; d++) {
            edf_channel_key(names[d], kd, sizeof kd);
            if (!strcmp(kc, kd))
                return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.channels: '%s' "
                                      "and '%s' name the same channel", path,
                                      names[d], names[c]);
        }
    }
    r->channels = names;
    const char *montage = mspt_config_string(cfg, "montage");
    size_t npairs = mspt_config_len(cfg, "pairs");
    char why[512];
    if (strcmp(montage, "pairs") && npairs)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.pairs: given, but "
                              "montage is '%s'; set montage = 'pairs' to use "
                              "them", path, montage);
    if (!strcmp(montage, "none"))
        return edf_montage_none(&r->montage, r->nch)
                   ? mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory") : 0;
    if (!strcmp(montage, "tcp")) {
        if (edf_montage_pairs(&r->montage, edf_tcp_pairs, 22, names, r->nch,
                              why, sizeof why))
            return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.montage: tcp: %s "
                                  "(channels must include the 21 of TUH)",
                                  path, why);
        return 0;
    }
    if (strcmp(montage, "pairs"))
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.montage: expected "
                              "'tcp', 'none' or 'pairs', got '%s'", path,
                              montage);
    if (!npairs)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.pairs: montage 'pairs' "
                              "needs at least one 'A-B' pair", path);
    const char **pairs = malloc(npairs * sizeof *pairs);
    if (!pairs)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    for (size_t k = 0; k < npairs; k++)
        pairs[k] = mspt_config_string_at(cfg, "pairs", k);
    int rc = edf_montage_pairs(&r->montage, pairs, (int)npairs, names, r->nch,
                               why, sizeof why);
    free(pairs);
    if (rc)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.pairs: %s", path, why);
    return 0;
}

static int read_paths(const mspt_config *cfg, edf_paths *p, mspt_error *err)
{
    const char *path = mspt_config_path(cfg);
    char why[1024];
    const char *one = mspt_config_string(cfg, "path");
    size_t n = mspt_config_len(cfg, "paths");
    if (!one && !n)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: set path (a file, a "
                              "directory or a glob pattern) or paths", path);
    if (one && edf_paths_add(p, one, edf_extensions, why, sizeof why))
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.path: %s", path, why);
    for (size_t k = 0; k < n; k++)
        if (edf_paths_add(p, mspt_config_string_at(cfg, "paths", k),
                          edf_extensions, why, sizeof why))
            return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.paths[%zu]: %s",
                                  path, k + 1, why);
    return 0;
}

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return -1;
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0755) && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(p, 0755) && errno != EEXIST ? -1 : 0;
}

static int cache_dir(const mspt_config *cfg, char *out, size_t n,
                     mspt_error *err)
{
    const char *dir = mspt_config_string(cfg, "cache_dir");
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (dir)
        snprintf(out, n, "%s", dir);
    else if (xdg && xdg[0] == '/')
        snprintf(out, n, "%s/mspt/edf", xdg);
    else if (home && home[0])
        snprintf(out, n, "%s/.cache/mspt/edf", home);
    else
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.cache_dir: not set, "
                              "and neither XDG_CACHE_HOME nor HOME is",
                              mspt_config_path(cfg));
    if (make_dirs(out))
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s.cache_dir: cannot "
                              "create %s: %m", mspt_config_path(cfg), out);
    return 0;
}

/* ---- building the sources --------------------------------------------- */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Key of a recording under a recipe: its real path, size and modification
 * time, and every parameter of the recipe. */
static int source_key(const char *file, const char *recipe, char *key,
                      size_t n)
{
    struct stat st;
    if (stat(file, &st))
        return -1;
    snprintf(key, n, "mspt datasets.edf shard\nsource=%s\nsize=%lld\n"
             "mtime=%lld.%09ld\n%s\n", file, (long long)st.st_size,
             (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, recipe);
    return 0;
}

/* Preprocess file k of n into s (mapped from a new shard when caching). */
static int build(source *s, const char *file, size_t k, size_t n,
                 const edf_recipe *r, const char *shard, const char *key,
                 const char *path, mspt_error *err)
{
    char why[EDF_ERR_LEN];
    edf_windows w;
    double t0 = now();
    if (edf_prep_file(file, r, &w, why, sizeof why))
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s", path, why);
    fprintf(stderr, "%s: preprocessed [%zu/%zu] %s: %.0f s of EEG, %zu "
            "windows, %.2f s\n", path, k + 1, n, file, w.seconds, w.n,
            now() - t0);
    if (shard) {
        if (edf_shard_write(shard, key, w.data, w.n, r->montage.n, r->window,
                            why, sizeof why) == 0 &&
            edf_shard_open(&s->shard, shard, key, why, sizeof why) == 0) {
            free(w.data);
            s->n = s->shard.n;
            return 0;
        }
        fprintf(stderr, "%s: warning: %s; keeping these windows in memory\n",
                path, why);
    }
    s->mem = w.data;
    s->n = w.n;
    return 0;
}

static int open_sources(edf_dataset *d, const edf_paths *files,
                        const edf_recipe *r, const char *dir,
                        const char *path, mspt_error *err)
{
    char recipe[8192], key[PATH_MAX + 9000], shard[PATH_MAX + 64], why[512];
    edf_recipe_describe(r, recipe, sizeof recipe);
    for (size_t k = 0; k < files->n; k++) {
        const char *file = files->path[k];
        source *s = &d->src[k];
        if (!dir) {
            if (build(s, file, k, files->n, r, NULL, NULL, path, err))
                return -1;
            continue;
        }
        if (source_key(file, recipe, key, sizeof key))
            return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s: %m", path,
                                  file);
        const char *base = strrchr(file, '/');
        snprintf(shard, sizeof shard, "%s/%.64s-%016llx.win", dir,
                 base ? base + 1 : file,
                 (unsigned long long)edf_hash(key, strlen(key), 0));
        int rc = edf_shard_open(&s->shard, shard, key, why, sizeof why);
        if (rc == 0) {
            s->n = s->shard.n;
            continue;
        }
        if (rc < 0)
            fprintf(stderr, "%s: cache %s: %s; rebuilding\n", path, shard, why);
        if (build(s, file, k, files->n, r, shard, key, path, err))
            return -1;
    }
    return 0;
}

static void edf_destroy(void *self)
{
    edf_dataset *d = self;
    if (!d)
        return;
    for (size_t k = 0; k < d->nsrc; k++) {
        edf_shard_close(&d->src[k].shard);
        free(d->src[k].mem);
    }
    free(d->src);
    free(d->first);
    free(d);
}

static int edf_create(const mspt_config *cfg, void **self, mspt_error *err)
{
    const char *path = mspt_config_path(cfg);
    edf_recipe r;
    memset(&r, 0, sizeof r);
    size_t nch = mspt_config_len(cfg, "channels");
    const char **names = calloc(nch ? nch : 1, sizeof *names);
    edf_paths files = {0};
    edf_dataset *d = calloc(1, sizeof *d);
    char dir[PATH_MAX] = "";
    int rc = MSPT_ERR_RUNTIME;
    if (!names || !d) {
        mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: out of memory", path);
        goto done;
    }
    if ((rc = read_numbers(cfg, &r, err)) || (rc = read_channels(cfg, &r, names, err)) ||
        (rc = read_paths(cfg, &files, err)) ||
        (mspt_config_bool(cfg, "cache") &&
         (rc = cache_dir(cfg, dir, sizeof dir, err))))
        goto done;
    r.threads = mspt_get_threads();
    d->nsrc = files.n;
    d->src = calloc(files.n, sizeof *d->src);
    d->first = calloc(files.n + 1, sizeof *d->first);
    rc = MSPT_ERR_RUNTIME;
    if (!d->src || !d->first) {
        mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: out of memory", path);
        goto done;
    }
    if (open_sources(d, &files, &r, dir[0] ? dir : NULL, path, err))
        goto done;
    for (size_t k = 0; k < d->nsrc; k++)
        d->first[k + 1] = d->first[k] + d->src[k].n;
    d->total = d->first[d->nsrc];
    d->channels = r.montage.n;
    d->samples = r.window;
    if (d->total == 0) {
        mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: no windows: each of the %zu "
                       "recordings is shorter than one window (%d samples at "
                       "%g Hz)", path, files.n, r.window, r.sample_rate);
        goto done;
    }
    rc = 0;
    *self = d;
    d = NULL;
done:
    edf_destroy(d);
    edf_montage_free(&r.montage);
    edf_paths_free(&files);
    free(names);
    return rc;
}

static void edf_shape(void *self, size_t *windows, int *channels, int *samples)
{
    const edf_dataset *d = self;
    *windows = d->total;
    *channels = d->channels;
    *samples = d->samples;
}

/* out (channels, samples) = window i: a copy from a mapping, thread-safe */
static int edf_read_window(void *self, size_t i, float *out, mspt_error *err)
{
    const edf_dataset *d = self;
    if (i >= d->total)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "edf: window %zu out of "
                              "range (%zu windows)", i, d->total);
    size_t lo = 0, hi = d->nsrc; /* the source with first[k] <= i < first[k+1] */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (d->first[mid] <= i)
            lo = mid;
        else
            hi = mid;
    }
    const source *s = &d->src[lo];
    size_t per = (size_t)d->channels * (size_t)d->samples;
    const float *w = (s->mem ? s->mem : s->shard.windows) + (i - d->first[lo]) * per;
    memcpy(out, w, per * sizeof *out);
    return 0;
}

static const mspt_dataset_vt edf_vt = {edf_create, edf_shape, edf_read_window,
                                       edf_destroy, NULL /* no padding */};

static const mspt_component edf_component = {
    MSPT_COMPONENT_INIT, MSPT_KIND_DATASET, "edf",
    "EDF/EDF+/BDF recordings, preprocessed as MNE would (default: the TUH "
    "recipe, 22 TCP derivations, 256 Hz) and cached as mapped shards",
    edf_params, &edf_vt};

MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p)
{
    return mspt_plugin_register(p, &edf_component) ? 1 : 0;
}
