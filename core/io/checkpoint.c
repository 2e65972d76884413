/* Checkpoints on safetensors, see checkpoint.h. */
#include "io/checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

#define MAX_STATE_BUFFERS 4096

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

static int load_params(mspt_st_file *f, const char *path, mspt_params *params,
                       mspt_error *err)
{
    char name[256];
    for (size_t i = 0; i < mspt_params_count(params); i++) {
        mspt_tensor *p = mspt_params_at(params, i);
        snprintf(name, sizeof name, "model.%s", p->name);
        long k = mspt_st_find(f, name);
        if (k < 0) {
            k = mspt_st_find(f, p->name);
            snprintf(name, sizeof name, "%s", p->name);
        }
        if (k < 0)
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "%s: no weights for parameter '%s'", path,
                                  p->name);
        int nd = mspt_st_ndim(f, (size_t)k);
        const int64_t *shape = mspt_st_shape(f, (size_t)k);
        int same = nd == p->ndim;
        for (int d = 0; same && d < nd; d++)
            same = shape[d] == p->shape[d];
        if (!same) {
            char want[64], got[64] = "(";
            mspt_shape_str(p, want, sizeof want);
            size_t off = 1;
            for (int d = 0; d < nd && off < sizeof got; d++)
                off += (size_t)snprintf(got + off, sizeof got - off, d ? ",%lld" : "%lld",
                                        (long long)shape[d]);
            if (off < sizeof got)
                snprintf(got + off, sizeof got - off, ")");
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "%s: '%s' has shape %s but the model's is %s",
                                  path, name, got, want);
        }
        if (mspt_st_read_f32(f, name, p->data, p->numel, err))
            return err ? err->status : MSPT_ERR_RUNTIME;
    }
    return 0;
}

int mspt_checkpoint_load_weights(const char *path, mspt_params *params,
                                 mspt_error *err)
{
    mspt_st_file *f = mspt_st_open(path, err);
    if (!f)
        return err ? err->status : MSPT_ERR_RUNTIME;
    int rc = load_params(f, path, params, err);
    mspt_st_close(f);
    return rc;
}

static int meta_get_ll(mspt_st_file *f, const char *path, const char *key,
                       long long *out, mspt_error *err)
{
    const char *v = mspt_st_metadata(f, key);
    char *end;
    if (!v || !*v || (*out = strtoll(v, &end, 10), *end))
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s: not an mspt checkpoint (metadata '%s' %s)",
                              path, key, v ? "malformed" : "missing");
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
        rc = meta_get_ll(f, path, "epoch", &st->epoch, err);
    if (!rc)
        rc = meta_get_ll(f, path, "batch", &st->batch, err);
    if (!rc)
        rc = meta_get_ll(f, path, "global_step", &st->step, err);
    if (!rc && mspt_st_metadata(f, "global_batch"))
        rc = meta_get_ll(f, path, "global_batch", &st->global_batch, err);
    if (!rc)
        rc = meta_get_rng(f, path, "mask_rng", st->mask_rng, err);
    if (!rc)
        rc = meta_get_rng(f, path, "dropout_rng", st->drop_rng, err);
    if (!rc)
        rc = load_params(f, path, params, err);
    if (!rc && opt) {
        rc = meta_get_ll(f, path, "optimizer_steps", &st->opt_steps, err);
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
            else
                rc = mspt_st_read_f32(f, name, bufs[i].data, bufs[i].numel, err);
        }
        free(bufs);
        if (!rc)
            ovt->set_steps(opt, st->opt_steps);
    }
    const char *score = mspt_st_metadata(f, "score");
    if (!rc && score) {
        st->has_score = 1;
        st->score = strtod(score, NULL);
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
    int rc = s ? 0 : -1;
    if (s)
        *score = strtod(s, NULL);
    mspt_st_close(f);
    return rc;
}
