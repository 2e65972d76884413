/* Checkpoints on safetensors, see checkpoint.h. */
#include "io/checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

#define MAX_STATE_BUFFERS 4096
/* Bound on epochs, steps and batches read from a file: far beyond any run,
 * and low enough that counting on from it never overflows. */
#define MAX_COUNT (1LL << 53)

static void meta_ll(mspt_st_writer *w, const char *key, long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    mspt_st_set_metadata(w, key, buf);
}

static void meta_rng(mspt_st_writer *w, const char *key, const uint64_t *s)
{
    char buf[80];
    snprintf(buf, sizeof buf, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64
             "%016" PRIx64, s[0], s[1], s[2], s[3]);
    mspt_st_set_metadata(w, key, buf);
}

int mspt_checkpoint_save(const char *path, const mspt_params *params,
                         const mspt_optimizer_vt *ovt, void *opt,
                         const mspt_train_state *st, mspt_error *err)
{
    mspt_st_writer *w = mspt_st_writer_new();
    char name[256];
    for (size_t i = 0; i < mspt_params_count(params); i++) {
        mspt_tensor *p = mspt_params_at(params, i);
        snprintf(name, sizeof name, "model.%s", p->name);
        mspt_st_add_f32(w, name, p->ndim, p->shape, p->data);
    }
    mspt_state_buffer *bufs = NULL;
    if (opt) {
        size_t n = ovt->state(opt, NULL, 0);
        bufs = calloc(n ? n : 1, sizeof *bufs);
        n = ovt->state(opt, bufs, n);
        for (size_t i = 0; i < n; i++) {
            snprintf(name, sizeof name, "optimizer.%s", bufs[i].name);
            int shape[1] = {(int)bufs[i].numel};
            mspt_st_add_f32(w, name, 1, shape, bufs[i].data);
        }
        meta_ll(w, "optimizer_steps", ovt->get_steps(opt));
    }
    mspt_st_set_metadata(w, "format", MSPT_CKPT_FORMAT);
    meta_ll(w, "epoch", st->epoch);
    meta_ll(w, "batch", st->batch);
    meta_ll(w, "global_step", st->step);
    if (st->global_batch > 0)
        meta_ll(w, "global_batch", st->global_batch);
    meta_rng(w, "mask_rng", st->mask_rng);
    meta_rng(w, "dropout_rng", st->drop_rng);
    if (st->has_score) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.17g", st->score);
        mspt_st_set_metadata(w, "score", buf);
        mspt_st_set_metadata(w, "monitor", st->monitor);
    }
    int rc = mspt_st_save(w, path, err);
    mspt_st_writer_free(w);
    free(bufs);
    return rc;
}

/* The file's tensor for parameter p ("model.<name>", else "<name>"), with
 * its name in name; -1 if neither. */
static long find_param(mspt_st_file *f, const mspt_tensor *p, char *name,
                       size_t cap)
{
    snprintf(name, cap, "model.%s", p->name);
    long k = mspt_st_find(f, name);
    if (k < 0) {
        snprintf(name, cap, "%s", p->name);
        k = mspt_st_find(f, name);
    }
    return k;
}

static int check_shape(mspt_st_file *f, long k, const char *path,
                       const char *name, const mspt_tensor *p, mspt_error *err)
{
    int nd = mspt_st_ndim(f, (size_t)k);
    const int64_t *shape = mspt_st_shape(f, (size_t)k);
    int same = nd == p->ndim;
    for (int d = 0; same && d < nd; d++)
        same = shape[d] == p->shape[d];
    if (same)
        return 0;
    char want[64], got[64] = "(";
    mspt_shape_str(p, want, sizeof want);
    size_t off = 1;
    for (int d = 0; d < nd && off < sizeof got; d++)
        off += (size_t)snprintf(got + off, sizeof got - off, d ? ",%lld" : "%lld",
                                (long long)shape[d]);
    if (off < sizeof got)
        snprintf(got + off, sizeof got - off, ")");
    return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: '%s' has shape %s but the model's is %s",
                          path, name, got, want);
}

/* "a, b, c and 4 more" of up to the first 5 names into out. */
typedef struct name_list {
    char text[400];
    size_t count;
} name_list;

static void list_add(name_list *l, const char *name)
{
    size_t len = strlen(l->text);
    if (l->count < 5 && len < sizeof l->text - 1)
        snprintf(l->text + len, sizeof l->text - len, "%s'%s'", l->count ? ", " : "", name);
    l->count++;
}

static const char *list_str(name_list *l)
{
    size_t len = strlen(l->text);
    if (l->count > 5 && len < sizeof l->text - 1)
        snprintf(l->text + len, sizeof l->text - len, " and %zu more", l->count - 5);
    return l->text;
}

/* Every value of tensor `name` finite (as float32, which is what loads). */
static int check_finite(mspt_st_file *f, const char *path, const char *name,
                        mspt_error *err)
{
    long k = mspt_st_find(f, name);
    size_t n = mspt_st_numel(f, (size_t)k);
    float buf[1024];
    for (size_t off = 0; off < n; off += 1024) {
        size_t m = n - off < 1024 ? n - off : 1024;
        if (mspt_st_read_range_f32(f, (size_t)k, off, m, buf))
            return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot read '%s'",
                                  path, name);
        for (size_t j = 0; j < m; j++)
            if (!isfinite(buf[j]))
                return mspt_error_set(err, MSPT_ERR_CONFIG,
                                      "%s: tensor '%s' holds a non-finite value "
                                      "(%g at element %zu)", path, name,
                                      (double)buf[j], off + j);
    }
    return 0;
}

static int load_params(mspt_st_file *f, const char *path, mspt_params *params,
                       mspt_weights_match match, char *note, size_t cap,
                       mspt_error *err)
{
    size_t nt = mspt_st_count(f), np = mspt_params_count(params);
    unsigned char *used = calloc(nt ? nt : 1, 1);
    if (!used)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: out of memory", path);
    name_list missing = {{0}, 0}, extra = {{0}, 0};
    char name[256];
    int rc = 0;
    /* shapes first, so that a refused file changes no parameter */
    for (size_t i = 0; i < np && !rc; i++) {
        mspt_tensor *p = mspt_params_at(params, i);
        long k = find_param(f, p, name, sizeof name);
        if (k < 0)
            list_add(&missing, p->name);
        else if (!(rc = check_shape(f, k, path, name, p, err)))
            used[k] = 1;
    }
    const char *format = mspt_st_metadata(f, "format");
    int ours = format && !strcmp(format, MSPT_CKPT_FORMAT);
    for (size_t k = 0; k < nt && !rc; k++)
        if (!used[k] && !(ours && !strncmp(mspt_st_name(f, k), "optimizer.", 10)))
            list_add(&extra, mspt_st_name(f, k));
    if (!rc && missing.count && match != MSPT_WEIGHTS_LENIENT)
        rc = mspt_error_set(err, MSPT_ERR_CONFIG,
                            "%s: no weights for %zu of the model's %zu parameters: %s%s",
                            path, missing.count, np, list_str(&missing),
                            match == MSPT_WEIGHTS_STRICT
                                ? " (pretrained_strict = false keeps them as initialised)"
                                : "");
    if (!rc && extra.count && match == MSPT_WEIGHTS_STRICT)
        rc = mspt_error_set(err, MSPT_ERR_CONFIG,
                            "%s: %zu tensors the model does not have: %s "
                            "(pretrained_strict = false loads the rest and ignores them)",
                            path, extra.count, list_str(&extra));
    /* values next: a non-finite weight would only show as a non-finite
     * loss at the first step; refused here, naming the tensor */
    for (size_t i = 0; i < np && !rc; i++) {
        mspt_tensor *p = mspt_params_at(params, i);
        if (find_param(f, p, name, sizeof name) >= 0)
            rc = check_finite(f, path, name, err);
    }
    for (size_t i = 0; i < np && !rc; i++) {
        mspt_tensor *p = mspt_params_at(params, i);
        if (find_param(f, p, name, sizeof name) >= 0 &&
            mspt_st_read_f32(f, name, p->data, p->numel, err))
            rc = err ? err->status : MSPT_ERR_RUNTIME;
    }
    if (note && cap) {
        note[0] = '\0';
        if (!rc && match == MSPT_WEIGHTS_LENIENT && extra.count)
            snprintf(note, cap, "ignored %zu tensors the model does not have: %s",
                     extra.count, list_str(&extra));
        if (!rc && match == MSPT_WEIGHTS_LENIENT && missing.count) {
            size_t len = strlen(note);
            snprintf(note + len, cap - len, "%s%zu parameters kept as initialised: %s",
                     len ? "; " : "", missing.count, list_str(&missing));
        }
    }
    free(used);
    return rc;
}

int mspt_checkpoint_load_weights(const char *path, mspt_params *params,
                                 mspt_weights_match match, char *note,
                                 size_t cap, mspt_error *err)
{
    mspt_st_file *f = mspt_st_open(path, err);
    if (!f)
        return err ? err->status : MSPT_ERR_RUNTIME;
    int rc = load_params(f, path, params, match, note, cap, err);
    mspt_st_close(f);
    return rc;
}

/* Integer metadata in [lo, MAX_COUNT]: a crafted or damaged file must not
 * set the trainer counting from a negative or overflowing position. */
static int meta_get_ll(mspt_st_file *f, const char *path, const char *key,
                       long long lo, long long *out, mspt_error *err)
{
    const char *v = mspt_st_metadata(f, key);
    char *end;
    errno = 0;
    if (!v || !*v || (*out = strtoll(v, &end, 10), *end) || errno == ERANGE)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s: not an mspt checkpoint (metadata '%s' %s)",
                              path, key, v ? "malformed" : "missing");
    if (*out < lo || *out > MAX_COUNT)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s: metadata '%s' is %lld, outside %lld..%lld",
                              path, key, *out, lo, MAX_COUNT);
    return 0;
}

static int meta_get_rng(mspt_st_file *f, const char *path, const char *key,
                        uint64_t *s, mspt_error *err)
{
    const char *v = mspt_st_metadata(f, key);
    if (!v || strlen(v) != 64)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s: metadata '%s' missing or malformed", path, key);
    for (int i = 0; i < 4; i++) {
        char word[17];
        memcpy(word, v + 16 * i, 16);
        word[16] = '\0';
        char *end;
        s[i] = strtoull(word, &end, 16);
        if (*end)
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "%s: metadata '%s' malformed", path, key);
    }
    /* xoshiro256 never leaves the all-zero state: it would draw only 0 */
    if (!(s[0] | s[1] | s[2] | s[3]))
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s: metadata '%s' is the all-zero random state, "
                              "which no generator reaches", path, key);
    return 0;
}

int mspt_checkpoint_load(const char *path, mspt_params *params,
                         const mspt_optimizer_vt *ovt, void *opt,
                         mspt_train_state *st, mspt_error *err)
{
    mspt_st_file *f = mspt_st_open(path, err);
    if (!f)
        return err ? err->status : MSPT_ERR_RUNTIME;
    int rc = 0;
    const char *format = mspt_st_metadata(f, "format");
    if (!format || strcmp(format, MSPT_CKPT_FORMAT) != 0)
        rc = mspt_error_set(err, MSPT_ERR_CONFIG,
                            "%s: not an mspt checkpoint (format '%s', want '%s')",
                            path, format ? format : "none", MSPT_CKPT_FORMAT);
    memset(st, 0, sizeof *st);
    if (!rc)
        rc = meta_get_ll(f, path, "epoch", 0, &st->epoch, err);
    if (!rc)
        rc = meta_get_ll(f, path, "batch", 0, &st->batch, err);
    if (!rc)
        rc = meta_get_ll(f, path, "global_step", 0, &st->step, err);
    if (!rc && mspt_st_metadata(f, "global_batch"))
        rc = meta_get_ll(f, path, "global_batch", 1, &st->global_batch, err);
    if (!rc)
        rc = meta_get_rng(f, path, "mask_rng", st->mask_rng, err);
    if (!rc)
        rc = meta_get_rng(f, path, "dropout_rng", st->drop_rng, err);
    if (!rc)
        rc = load_params(f, path, params, MSPT_WEIGHTS_STRICT, NULL, 0, err);
    if (!rc && opt) {
        rc = meta_get_ll(f, path, "optimizer_steps", 0, &st->opt_steps, err);
        size_t n = rc ? 0 : ovt->state(opt, NULL, 0);
        mspt_state_buffer *bufs = calloc(n ? n : 1, sizeof *bufs);
        n = rc ? 0 : ovt->state(opt, bufs, n);
        for (size_t i = 0; i < n && !rc; i++) {
            char name[256];
            snprintf(name, sizeof name, "optimizer.%s", bufs[i].name);
            if (mspt_st_find(f, name) < 0)
                rc = mspt_error_set(err, MSPT_ERR_CONFIG,
                                    "%s: no optimizer state '%s' (was the "
                                    "checkpoint written with another optimizer?)",
                                    path, name);
            else if (!(rc = check_finite(f, path, name, err)))
                rc = mspt_st_read_f32(f, name, bufs[i].data, bufs[i].numel, err);
        }
        free(bufs);
        if (!rc)
            ovt->set_steps(opt, st->opt_steps);
    }
    const char *score = mspt_st_metadata(f, "score");
    if (!rc && score) {
        char *end;
        st->has_score = 1;
        st->score = strtod(score, &end);
        if (!*score || *end || !isfinite(st->score))
            rc = mspt_error_set(err, MSPT_ERR_CONFIG,
                                "%s: metadata 'score' is '%.40s', not a finite "
                                "number", path, score);
        const char *mon = mspt_st_metadata(f, "monitor");
        snprintf(st->monitor, sizeof st->monitor, "%s", mon ? mon : "");
    }
    mspt_st_close(f);
    return rc;
}

int mspt_checkpoint_score(const char *path, double *score)
{
    mspt_st_file *f = mspt_st_open(path, NULL);
    if (!f)
        return -1;
    const char *s = mspt_st_metadata(f, "score");
    char *end = NULL;
    if (s)
        *score = strtod(s, &end);
    int rc = s && *s && !*end && isfinite(*score) ? 0 : -1;
    mspt_st_close(f);
    return rc;
}
