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
#include <unistd.h>

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
    double seconds; /* of recording read */
    int state;      /* 0 not done, 1 from the cache, 2 preprocessed, -1 skipped */
    char *why;      /* why it was skipped (malloc'd) */
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
    {"on_error", MSPT_PARAM_STRING, "nil",
     "a recording that cannot be read or preprocessed: 'skip' it (named on "
     "stderr and in run_dir/data_errors.log) or 'stop'; default 'stop' when "
     "path and paths name files only, 'skip' for a directory or glob"},
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

/* Progress over the recordings, shared by the workers (under a lock):
 * a bar redrawn in place on a terminal, a line every 10 s otherwise;
 * silent for the first second (opening a warm cache). */
typedef struct progress {
    const char *path;
    size_t total, done, built, cached, skipped;
    double seconds, t0, last;
    int tty, drawn;
} progress;

static void eta_text(double s, char *out, size_t n)
{
    if (!(s >= 0) || s > 1e7)
        snprintf(out, n, "?");
    else if (s >= 3600)
        snprintf(out, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else
        snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

static void progress_show(progress *p, int final)
{
    double t = now(), el = t - p->t0;
    if (!final && (el < 1.0 || t - p->last < (p->tty ? 0.2 : 10.0)))
        return;
    if (final && !p->drawn)
        return;
    p->last = t;
    p->drawn = 1;
    double rate = el > 0 ? p->done / el : 0;
    char eta[32], bar[25];
    eta_text(rate > 0 ? (p->total - p->done) / rate : -1, eta, sizeof eta);
    int fill = p->total ? (int)(24.0 * p->done / p->total) : 24;
    for (int i = 0; i < 24; i++)
        bar[i] = i < fill ? '=' : ' ';
    bar[24] = '\0';
    fprintf(stderr, "%s%s: [%s] %zu/%zu files, %.1f h of EEG, %.1f files/s "
            "(%.2f h/s), ETA %s%s", p->tty ? "\r\033[K" : "", p->path, bar,
            p->done, p->total, p->seconds / 3600, rate,
            el > 0 ? p->seconds / 3600 / el : 0.0, final ? "0m00s" : eta,
            p->tty && !final ? "" : "\n");
    fflush(stderr);
}

/* The build context of a dataset: what every worker reads. */
typedef struct build_ctx {
    const edf_paths *files;
    const edf_recipe *r;   /* each file on one thread (files > 1) */
    const char *dir;       /* the cache, or NULL */
    const char *recipe;    /* edf_recipe_describe */
    const char *path;      /* the dataset's config path, for messages */
    FILE *cache_log;       /* dir/data_errors.log, opened at the first skip */
} build_ctx;

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

/* Preprocess file k into s: mapped from its shard when cached and intact,
 * else built (and written to a new shard when caching).  Sets s->state
 * (-1 with s->why when the recording cannot be used). */
static void do_source(const build_ctx *b, size_t k, source *s)
{
    const char *file = b->files->path[k];
    char why[EDF_ERR_LEN], key[PATH_MAX + 9000], shard[PATH_MAX + 64];
    const char *path = b->path;
    s->state = -1;
    if (b->dir) {
        if (source_key(file, b->recipe, key, sizeof key)) {
            snprintf(why, sizeof why, "%s: %s", file, strerror(errno));
            s->why = strdup(why);
            return;
        }
        const char *base = strrchr(file, '/');
        snprintf(shard, sizeof shard, "%s/%.64s-%016llx.win", b->dir,
                 base ? base + 1 : file,
                 (unsigned long long)edf_hash(key, strlen(key), 0));
        int rc = edf_shard_open(&s->shard, shard, key, why, sizeof why);
        if (rc == 0) {
            s->n = s->shard.n;
            s->seconds = s->shard.seconds > 0
                             ? s->shard.seconds
                             : (double)s->n * b->r->stride / b->r->sample_rate;
            s->state = 1;
            return;
        }
        if (rc < 0)
            fprintf(stderr, "%s: cache %s: %s; rebuilding\n", path, shard, why);
    }
    edf_windows w;
    if (edf_prep_file(file, b->r, &w, why, sizeof why)) {
        s->why = strdup(why);
        return;
    }
    for (char *l = w.warning, *e; *l; l = *e ? e + 1 : e) {
        e = strchr(l, '\n');
        e = e ? (*e = '\0', e) : l + strlen(l);
        mspt_data_warning("%s: warning: %s", path, l);
    }
    s->seconds = w.seconds;
    s->state = 2;
    if (b->dir) {
        if (edf_shard_write(shard, key, w.data, w.n, b->r->montage.n,
                            b->r->window, w.seconds, why, sizeof why) == 0 &&
            edf_shard_open(&s->shard, shard, key, why, sizeof why) == 0) {
            free(w.data);
            s->n = s->shard.n;
            return;
        }
        fprintf(stderr, "%s: warning: %s; keeping these windows in memory\n",
                path, why);
    }
    s->mem = w.data;
    s->n = w.n;
}

/* Under the lock: count source s, name it when skipped. */
static void note_done(build_ctx *b, progress *p, const source *s,
                      int stop)
{
    p->done++;
    if (s->state > 0)
        p->seconds += s->seconds;
    p->built += s->state == 2;
    p->cached += s->state == 1;
    if (s->state < 0) {
        p->skipped++;
        if (stop)
            return; /* the error says it */
        mspt_data_warning("%s: skipped %s", b->path, s->why);
        if (b->dir && !b->cache_log) {
            char log[PATH_MAX + 32];
            snprintf(log, sizeof log, "%s/data_errors.log", b->dir);
            b->cache_log = fopen(log, "a");
        }
        if (b->cache_log) {
            fprintf(b->cache_log, "%s: skipped %s\n", b->path, s->why);
            fflush(b->cache_log);
        }
    }
    progress_show(p, 0);
}

/* Every source, spread over the threads one recording per worker (the
 * FFTs inside single-threaded); on_error stop: the first failure in file
 * order is the error, and workers start no new file once one failed. */
static int open_sources(edf_dataset *d, const edf_paths *files,
                        const edf_recipe *r, const char *dir, int stop,
                        const char *path, progress *p, mspt_error *err)
{
    char recipe[8192];
    edf_recipe_describe(r, recipe, sizeof recipe);
    edf_recipe one = *r;
    int workers = files->n > 1 ? r->threads : 1;
    if (workers > 1)
        one.threads = 1;
    build_ctx b = {files, &one, dir, recipe, path, NULL};
    int failed = 0;
    if (dir)
        edf_shard_clean(dir);
#pragma omp parallel for schedule(dynamic, 1) num_threads(workers)
    for (size_t k = 0; k < files->n; k++) {
        int give_up;
#pragma omp atomic read
        give_up = failed;
        if (give_up)
            continue;
        do_source(&b, k, &d->src[k]);
#pragma omp critical(edf_progress)
        {
            note_done(&b, p, &d->src[k], stop);
            if (stop && d->src[k].state < 0) {
#pragma omp atomic write
                failed = 1;
            }
        }
    }
    progress_show(p, 1);
    if (b.cache_log)
        fclose(b.cache_log);
    if (failed)
        for (size_t k = 0; k < files->n; k++)
            if (d->src[k].state < 0)
                return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s", path,
                                      d->src[k].why);
    return 0;
}

/* on_error, or its default: stop when every path names a file. */
static int read_on_error(const mspt_config *cfg, int *stop, mspt_error *err)
{
    const char *v = mspt_config_string(cfg, "on_error");
    if (v) {
        if (strcmp(v, "skip") && strcmp(v, "stop"))
            return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.on_error: expected "
                                  "'skip' or 'stop', got '%s'",
                                  mspt_config_path(cfg), v);
        *stop = !strcmp(v, "stop");
        return 0;
    }
    struct stat st;
    const char *one = mspt_config_string(cfg, "path");
    *stop = !one || (!stat(one, &st) && S_ISREG(st.st_mode));
    size_t n = mspt_config_len(cfg, "paths");
    for (size_t k = 0; k < n && *stop; k++)
        *stop = !stat(mspt_config_string_at(cfg, "paths", k), &st) &&
                S_ISREG(st.st_mode);
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
        free(d->src[k].why);
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
    int stop = 0;
    if ((rc = read_numbers(cfg, &r, err)) || (rc = read_channels(cfg, &r, names, err)) ||
        (rc = read_on_error(cfg, &stop, err)) ||
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
    progress p = {path, files.n, 0, 0, 0, 0, 0, now(), 0, isatty(2), 0};
    if (open_sources(d, &files, &r, dir[0] ? dir : NULL, stop, path, &p, err))
        goto done;
    const char *first_why = NULL;
    for (size_t k = 0; k < d->nsrc; k++) {
        d->first[k + 1] = d->first[k] + d->src[k].n;
        if (!first_why && d->src[k].state < 0)
            first_why = d->src[k].why;
    }
    d->total = d->first[d->nsrc];
    d->channels = r.montage.n;
    d->samples = r.window;
    /* the summary: what was used, what skipped, how much EEG */
    fprintf(stderr, "%s: %zu recordings: %zu used (%zu from the cache, %zu "
            "preprocessed), %zu skipped%s; %.3f h of EEG kept, %zu windows, "
            "%.1f s\n", path, files.n, p.cached + p.built, p.cached, p.built,
            p.skipped, p.skipped ? " (named above and in data_errors.log)" : "",
            p.seconds / 3600, d->total, now() - p.t0);
    if (d->total == 0) {
        if (p.skipped == files.n)
            mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: no windows: all %zu "
                           "recordings were skipped; the first: %s", path,
                           files.n, first_why ? first_why : "?");
        else
            mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: no windows: %zu of the "
                           "%zu recordings were skipped and each of the others "
                           "is shorter than one window (%d samples at %g Hz)",
                           path, p.skipped, files.n, r.window, r.sample_rate);
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
