/* safetensors writer (the reader is safetensors.c): tensors and metadata
 * are collected, then saved as one file written atomically — the JSON
 * header padded with spaces to a multiple of 8 bytes, then the data in the
 * safetensors crate's order (dtype descending, then name). */
#include "io/safetensors.h"

#include "io/files.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct st_wmeta {
    char *key, *value;
} st_wmeta;

static int cmp_wmeta_key(const void *a, const void *b)
{
    return strcmp(((const st_wmeta *)a)->key, ((const st_wmeta *)b)->key);
}

/* ---- writer -------------------------------------------------------------- */

typedef struct st_wtensor {
    char *name;
    mspt_st_dtype dtype;
    int ndim;
    int64_t *shape;
    const void *data;
    size_t nbytes;
} st_wtensor;

struct mspt_st_writer {
    st_wtensor *t;
    size_t n, cap;
    st_wmeta *meta;
    size_t nmeta, metacap;
    mspt_status status; /* first bad add or set, reported by save */
    char error[768];
};

mspt_st_writer *mspt_st_writer_new(void)
{
    return calloc(1, sizeof(mspt_st_writer));
}

void mspt_st_writer_free(mspt_st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].shape);
    }
    for (size_t i = 0; i < w->nmeta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->t);
    free(w->meta);
    free(w);
}

static int wfail(mspt_st_writer *w, mspt_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Keep the first error for mspt_st_save to report. */
static int wfail(mspt_st_writer *w, mspt_status status, const char *fmt, ...)
{
    if (!w->status) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->error, sizeof w->error, fmt, ap);
        va_end(ap);
        w->status = status;
    }
    return status;
}

/* Next code point of valid UTF-8 at *s (advanced), or -1 if invalid. */
static long utf8_next(const unsigned char **s)
{
    const unsigned char *p = *s;
    long cp, min;
    int len;
    if (p[0] < 0x80) {
        *s = p + 1;
        return p[0];
    }
    if ((p[0] & 0xe0) == 0xc0)
        len = 2, cp = p[0] & 0x1f, min = 0x80;
    else if ((p[0] & 0xf0) == 0xe0)
        len = 3, cp = p[0] & 0x0f, min = 0x800;
    else if ((p[0] & 0xf8) == 0xf0)
        len = 4, cp = p[0] & 0x07, min = 0x10000;
    else
        return -1;
    for (int k = 1; k < len; k++) { /* stops at the NUL, never past it */
        if ((p[k] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *s = p + len;
    return cp;
}

/* Characters libyaml refuses raw or folds into a space inside a quoted
 * string; the crate writes them raw, we write \u escapes (still the same
 * JSON string). */
static int needs_u_escape(long cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0xfffe || cp == 0xffff;
}

/* Write s as a JSON string as serde_json does (\" \\ \b \f \n \r \t, other
 * controls \u00xx); returns the characters written without the quotes, or
 * -1 if s is not valid UTF-8.  fp may be NULL to only count. */
static long json_string(FILE *fp, const char *s)
{
    static const char short_esc[] = {
        ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r',
        ['\t'] = 't', ['"'] = '"',  ['\\'] = '\\'};
    const unsigned char *p = (const unsigned char *)s;
    long chars = 0;
    if (fp)
        fputc('"', fp);
    while (*p) {
        const unsigned char *start = p;
        long cp = utf8_next(&p);
        if (cp < 0)
            return -1;
        if (cp < (long)sizeof short_esc && short_esc[cp]) {
            if (fp)
                fprintf(fp, "\\%c", short_esc[cp]);
            chars += 2;
        } else if (needs_u_escape(cp)) {
            if (fp)
                fprintf(fp, "\\u%04lx", cp);
            chars += 6;
        } else {
            if (fp)
                fwrite(start, 1, (size_t)(p - start), fp);
            chars += 1;
        }
    }
    if (fp)
        fputc('"', fp);
    return chars;
}

/* A name or metadata key: UTF-8, short enough for our reader. */
static int check_wkey(mspt_st_writer *w, const char *what, const char *s)
{
    long chars = json_string(NULL, s);
    if (chars < 0)
        return wfail(w, MSPT_ERR_CONFIG, "%s '%.200s' is not valid UTF-8", what,
                     s);
    if (chars > MSPT_ST_MAX_KEY_CHARS)
        return wfail(w, MSPT_ERR_CONFIG,
                     "%s '%.60s...' is %ld characters "
                     "in JSON; mspt reads at most %d",
                     what, s, chars, MSPT_ST_MAX_KEY_CHARS);
    return 0;
}

int mspt_st_add(mspt_st_writer *w, const char *name, mspt_st_dtype dtype,
                int ndim, const int *shape, const void *data)
{
    if (w->status)
        return w->status;
    if (!name)
        return wfail(w, MSPT_ERR_CONFIG, "tensor name is NULL");
    if (strcmp(name, "__metadata__") == 0)
        return wfail(w, MSPT_ERR_CONFIG,
                     "'__metadata__' is reserved, not a "
                     "tensor name");
    if ((unsigned)dtype >= MSPT_ST_NDTYPES)
        return wfail(w, MSPT_ERR_CONFIG,
                     "tensor '%.200s': dtype %d is not a "
                     "safetensors dtype",
                     name, (int)dtype);
    if (ndim < 0 || (ndim > 0 && !shape))
        return wfail(w, MSPT_ERR_CONFIG,
                     "tensor '%.200s': no shape for %d "
                     "dims",
                     name, ndim);
    if (check_wkey(w, "tensor name", name))
        return w->status;
    size_t numel = 1, nbytes;
    int over = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return wfail(w, MSPT_ERR_CONFIG,
                         "tensor '%.200s': dimension %d "
                         "is %d",
                         name, d, shape[d]);
        over |= __builtin_mul_overflow(numel, (size_t)shape[d], &numel);
    }
    over |= __builtin_mul_overflow(numel, mspt_st_dtype_size(dtype), &nbytes);
    if (over)
        return wfail(w, MSPT_ERR_CONFIG, "tensor '%.200s': size overflows",
                     name);
    if (nbytes && !data)
        return wfail(w, MSPT_ERR_CONFIG, "tensor '%.200s': data is NULL", name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        st_wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t)
            return wfail(w, MSPT_ERR_RUNTIME, "out of memory");
        w->t = t;
        w->cap = cap;
    }
    st_wtensor *t = &w->t[w->n];
    t->name = strdup(name);
    t->shape = malloc((ndim ? (size_t)ndim : 1) * sizeof *t->shape);
    if (!t->name || !t->shape) {
        free(t->name);
        free(t->shape);
        return wfail(w, MSPT_ERR_RUNTIME, "out of memory");
    }
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    t->dtype = dtype;
    t->ndim = ndim;
    t->data = data;
    t->nbytes = nbytes;
    w->n++;
    return 0;
}

int mspt_st_add_f32(mspt_st_writer *w, const char *name, int ndim,
                    const int *shape, const float *data)
{
    return mspt_st_add(w, name, MSPT_ST_F32, ndim, shape, data);
}

int mspt_st_add_u8(mspt_st_writer *w, const char *name, int ndim,
                   const int *shape, const uint8_t *data)
{
    return mspt_st_add(w, name, MSPT_ST_U8, ndim, shape, data);
}

int mspt_st_add_i64(mspt_st_writer *w, const char *name, int ndim,
                    const int *shape, const int64_t *data)
{
    return mspt_st_add(w, name, MSPT_ST_I64, ndim, shape, data);
}

int mspt_st_set_metadata(mspt_st_writer *w, const char *key, const char *value)
{
    if (w->status)
        return w->status;
    if (!key || !value)
        return wfail(w, MSPT_ERR_CONFIG, "__metadata__ key or value is NULL");
    if (check_wkey(w, "__metadata__ key", key))
        return w->status;
    if (json_string(NULL, value) < 0)
        return wfail(w, MSPT_ERR_CONFIG,
                     "__metadata__ '%.200s': value is "
                     "not valid UTF-8",
                     key);
    char *v = strdup(value);
    if (!v)
        return wfail(w, MSPT_ERR_RUNTIME, "out of memory");
    for (size_t i = 0; i < w->nmeta; i++)
        if (strcmp(w->meta[i].key, key) == 0) {
            free(w->meta[i].value);
            w->meta[i].value = v;
            return 0;
        }
    if (w->nmeta == w->metacap) {
        size_t cap = w->metacap ? 2 * w->metacap : 8;
        st_wmeta *m = realloc(w->meta, cap * sizeof *m);
        if (!m) {
            free(v);
            return wfail(w, MSPT_ERR_RUNTIME, "out of memory");
        }
        w->meta = m;
        w->metacap = cap;
    }
    if (!(w->meta[w->nmeta].key = strdup(key))) {
        free(v);
        return wfail(w, MSPT_ERR_RUNTIME, "out of memory");
    }
    w->meta[w->nmeta++].value = v;
    return 0;
}

static int cmp_wname(const void *a, const void *b)
{
    return strcmp((*(const st_wtensor *const *)a)->name,
                  (*(const st_wtensor *const *)b)->name);
}

/* The crate's file order: dtype descending, then name. */
static int cmp_wfile_order(const void *a, const void *b)
{
    const st_wtensor *x = *(const st_wtensor *const *)a;
    const st_wtensor *y = *(const st_wtensor *const *)b;
    if (x->dtype != y->dtype)
        return x->dtype > y->dtype ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The JSON header, padded with spaces to a multiple of 8 bytes; tensors in
 * `order`. Returns a malloc'ed buffer or NULL. */
static char *build_header(mspt_st_writer *w, st_wtensor **order, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *fp = open_memstream(&buf, &size);
    if (!fp)
        return NULL;
    fputc('{', fp);
    if (w->nmeta) {
        fputs("\"__metadata__\":{", fp);
        for (size_t i = 0; i < w->nmeta; i++) {
            if (i)
                fputc(',', fp);
            json_string(fp, w->meta[i].key);
            fputc(':', fp);
            json_string(fp, w->meta[i].value);
        }
        fputc('}', fp);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const st_wtensor *t = order[i];
        if (i || w->nmeta)
            fputc(',', fp);
        json_string(fp, t->name);
        fprintf(fp, ":{\"dtype\":\"%s\",\"shape\":[", mspt_st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            fprintf(fp, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        fprintf(fp, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                (unsigned long long)(off + t->nbytes));
        off += t->nbytes;
    }
    fputc('}', fp);
    long pos = ftell(fp);
    while (pos >= 0 && pos % 8) {
        fputc(' ', fp);
        pos++;
    }
    int bad = ferror(fp) || pos < 0;
    if (fclose(fp) != 0 || bad) {
        free(buf);
        return NULL;
    }
    *len = size;
    return buf;
}

typedef struct st_out {
    const char *header;
    size_t hlen;
    st_wtensor **order;
    size_t n;
} st_out;

/* Header and data into fp; on failure errno says why. */
static int write_all(FILE *fp, void *ud, mspt_error *err)
{
    (void)err;
    const st_out *o = ud;
    const char *header = o->header;
    size_t hlen = o->hlen, n = o->n;
    st_wtensor **order = o->order;
    unsigned char len8[8];
    uint64_t h = hlen;
    memcpy(len8, &h, 8);
    if (fwrite(len8, 1, 8, fp) != 8 || fwrite(header, 1, hlen, fp) != hlen)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (order[i]->nbytes &&
            fwrite(order[i]->data, 1, order[i]->nbytes, fp) != order[i]->nbytes)
            return -1;
    return 0;
}

int mspt_st_save(mspt_st_writer *w, const char *path, mspt_error *err)
{
    if (w->status)
        return mspt_error_set(err, w->status, "%s: %s", path, w->error);
    st_wtensor **order = malloc((w->n ? w->n : 1) * sizeof *order);
    char *header = NULL;
    size_t hlen = 0;
    int rc = 0;
    if (!order)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: out of memory", path);
    for (size_t i = 0; i < w->n; i++)
        order[i] = &w->t[i];
    if (w->n)
        qsort(order, w->n, sizeof *order, cmp_wname);
    for (size_t i = 1; i < w->n; i++)
        if (strcmp(order[i - 1]->name, order[i]->name) == 0) {
            rc = mspt_error_set(err, MSPT_ERR_CONFIG,
                                "%s: duplicate tensor name '%.200s'", path,
                                order[i]->name);
            goto done;
        }
    if (w->n)
        qsort(order, w->n, sizeof *order, cmp_wfile_order);
    if (w->nmeta)
        qsort(w->meta, w->nmeta, sizeof *w->meta, cmp_wmeta_key);
    if (!(header = build_header(w, order, &hlen))) {
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: out of memory", path);
        goto done;
    }
    st_out out = {header, hlen, order, w->n};
    rc = mspt_atomic_write(path, write_all, &out, err);
done:
    free(order);
    free(header);
    return rc;
}
