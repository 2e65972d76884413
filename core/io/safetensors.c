/* safetensors reader (the writer is safetensors_write.c); the format is
 * described in safetensors.h.
 *
 * The JSON header is parsed with libyaml's event API (JSON is YAML flow
 * syntax) and every event is checked to be JSON-shaped: flow collections,
 * double-quoted strings, plain digits for numbers, no anchors, tags or
 * document markers.  Leniencies left to libyaml (trailing commas, comments,
 * YAML escapes such as \x41, raw tabs in strings) cannot change what a
 * valid file means. */
#include "io/safetensors.h"

#include "io/files.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this code reads it in place"
#endif

/* The safetensors crate refuses larger headers; so do we. */
#define ST_MAX_HEADER 100000000ull

/* ---- dtypes -------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} st_dtypes[] = {
    [MSPT_ST_BOOL] = {"BOOL", 1},       [MSPT_ST_U8] = {"U8", 1},
    [MSPT_ST_I8] = {"I8", 1},           [MSPT_ST_F8_E5M2] = {"F8_E5M2", 1},
    [MSPT_ST_F8_E4M3] = {"F8_E4M3", 1}, [MSPT_ST_I16] = {"I16", 2},
    [MSPT_ST_U16] = {"U16", 2},         [MSPT_ST_F16] = {"F16", 2},
    [MSPT_ST_BF16] = {"BF16", 2},       [MSPT_ST_I32] = {"I32", 4},
    [MSPT_ST_U32] = {"U32", 4},         [MSPT_ST_F32] = {"F32", 4},
    [MSPT_ST_F64] = {"F64", 8},         [MSPT_ST_I64] = {"I64", 8},
    [MSPT_ST_U64] = {"U64", 8},
};

const char *mspt_st_dtype_name(mspt_st_dtype dt)
{
    return (unsigned)dt < MSPT_ST_NDTYPES ? st_dtypes[dt].name : "?";
}

size_t mspt_st_dtype_size(mspt_st_dtype dt)
{
    return (unsigned)dt < MSPT_ST_NDTYPES ? st_dtypes[dt].size : 0;
}

/* "(1,80,385)" into buf. */
static const char *dims_str(int ndim, const int64_t *shape, char *buf,
                            size_t size)
{
    size_t k = (size_t)snprintf(buf, size, "(");
    for (int d = 0; d < ndim && k < size; d++)
        k += (size_t)snprintf(buf + k, size - k, "%s%lld", d ? "," : "",
                              (long long)shape[d]);
    if (k < size)
        snprintf(buf + k, size - k, ")");
    return buf;
}

/* ---- reader: state ------------------------------------------------------- */

typedef struct st_entry {
    char *name;
    mspt_st_dtype dtype;
    int ndim;
    int64_t *shape;
    size_t numel;
    uint64_t begin, end; /* data_offsets */
} st_entry;

typedef struct st_meta {
    char *key, *value;
} st_meta;

struct mspt_st_file {
    char *path;
    unsigned char *map;
    size_t size;
    const unsigned char *data; /* data section: map + 8 + header length */
    size_t data_len;
    st_entry *t; /* sorted by name once opened */
    size_t n, cap;
    st_meta *meta; /* sorted by key once opened */
    size_t nmeta, metacap;
};

/* ---- reader: JSON header through libyaml events -------------------------- */

typedef struct st_parse {
    yaml_parser_t yp;
    yaml_event_t ev; /* current event, valid while have */
    int have;
    mspt_st_file *f;
    mspt_error *err;
} st_parse;

static int pfail(st_parse *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* An error about the header: "path: message". */
static int pfail(st_parse *ps, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mspt_error_set(ps->err, MSPT_ERR_RUNTIME, "%s: %s", ps->f->path,
                          msg);
}

/* What the current event is, for "found ..." in messages. */
static const char *found(const yaml_event_t *e, char *buf, size_t size)
{
    switch (e->type) {
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *)e->data.scalar.value;
        if (e->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
            snprintf(buf, size, "\"%.40s\"", v);
        else if (e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
            snprintf(buf, size, "'%.40s' (not JSON)", v);
        else if (e->data.scalar.length == 0)
            snprintf(buf, size, "nothing");
        else
            snprintf(buf, size, "%.40s", v);
        return buf;
    }
    case YAML_SEQUENCE_START_EVENT: return "a list";
    case YAML_MAPPING_START_EVENT: return "an object";
    case YAML_SEQUENCE_END_EVENT: return "the end of a list";
    case YAML_MAPPING_END_EVENT: return "the end of an object";
    default: return "something else";
    }
}

/* Next event; refuses YAML that is not JSON (anchors, aliases, tags, block
 * style, explicit documents). */
static int advance(st_parse *ps)
{
    if (ps->have)
        yaml_event_delete(&ps->ev);
    ps->have = 0;
    if (!yaml_parser_parse(&ps->yp, &ps->ev)) {
        const yaml_parser_t *y = &ps->yp;
        size_t at = y->error == YAML_READER_ERROR ? y->problem_offset
                                                  : y->problem_mark.index;
        return pfail(ps, "header is not valid JSON: %s%s%s (at %s %zu)",
                     y->problem ? y->problem : "parse error",
                     y->context ? " " : "", y->context ? y->context : "",
                     y->error == YAML_READER_ERROR ? "byte" : "character", at);
    }
    ps->have = 1;
    const yaml_event_t *e = &ps->ev;
    int yaml_only = 0;
    switch (e->type) {
    case YAML_ALIAS_EVENT: yaml_only = 1; break;
    case YAML_SCALAR_EVENT:
        yaml_only = e->data.scalar.anchor || e->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        yaml_only = e->data.sequence_start.anchor ||
                    e->data.sequence_start.tag ||
                    e->data.sequence_start.style != YAML_FLOW_SEQUENCE_STYLE;
        break;
    case YAML_MAPPING_START_EVENT:
        yaml_only = e->data.mapping_start.anchor || e->data.mapping_start.tag ||
                    e->data.mapping_start.style != YAML_FLOW_MAPPING_STYLE;
        break;
    case YAML_DOCUMENT_START_EVENT:
        yaml_only = !e->data.document_start.implicit ||
                    e->data.document_start.version_directive ||
                    e->data.document_start.tag_directives.start !=
                        e->data.document_start.tag_directives.end;
        break;
    case YAML_DOCUMENT_END_EVENT:
        yaml_only = !e->data.document_end.implicit;
        break;
    default: break;
    }
    if (yaml_only)
        return pfail(ps, "header is not valid JSON: YAML-only syntax at "
                         "character %zu", e->start_mark.index);
    return 0;
}

/* A JSON string: double-quoted.  A raw line break inside one (newline, or
 * U+0085/U+2028/U+2029, which libyaml would fold into a space) is refused. */
static int check_string(st_parse *ps, const char *what)
{
    char buf[64];
    const yaml_event_t *e = &ps->ev;
    if (e->type != YAML_SCALAR_EVENT ||
        e->data.scalar.style != YAML_DOUBLE_QUOTED_SCALAR_STYLE)
        return pfail(ps, "%s must be a string, found %s", what,
                     found(e, buf, sizeof buf));
    if (e->start_mark.line != e->end_mark.line)
        return pfail(ps,
                     "%s \"%.40s\" holds a raw line break (newline, "
                     "U+0085, U+2028 or U+2029); escape it",
                     what, (const char *)e->data.scalar.value);
    if (memchr(e->data.scalar.value, 0, e->data.scalar.length))
        return pfail(ps, "%s \"%.40s\" contains a NUL character", what,
                     (const char *)e->data.scalar.value);
    return 0;
}

/* The current event as a new string (checked as above), or NULL. */
static char *take_string(st_parse *ps, const char *what)
{
    if (check_string(ps, what))
        return NULL;
    char *s = strdup((const char *)ps->ev.data.scalar.value);
    if (!s)
        pfail(ps, "out of memory");
    return s;
}

/* libyaml gives up on a mapping key longer than 1024 characters (its
 * "simple key" bound) with an unhelpful message; say it plainly first. */
static int check_key_length(st_parse *ps, const char *what)
{
    const yaml_event_t *e = &ps->ev;
    size_t chars = e->end_mark.index - e->start_mark.index; /* with quotes */
    if (e->type == YAML_SCALAR_EVENT && chars > MSPT_ST_MAX_KEY_CHARS + 2)
        return pfail(ps,
                     "%s \"%.60s...\" is %zu characters long in JSON; "
                     "mspt reads at most %d",
                     what, (const char *)e->data.scalar.value, chars - 2,
                     MSPT_ST_MAX_KEY_CHARS);
    return 0;
}

/* A JSON number that is an integer in [0, 2^63). */
static int scalar_uint(const yaml_event_t *e, int64_t *out)
{
    if (e->type != YAML_SCALAR_EVENT ||
        e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return -1;
    const char *s = (const char *)e->data.scalar.value;
    size_t len = e->data.scalar.length;
    if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - (s[i] - '0')) / 10)
            return -1;
        v = 10 * v + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* The current event opens a list of such integers; *out is malloc'ed. */
static int take_uint_list(st_parse *ps, const char *what, int64_t **out, int *n)
{
    char buf[64];
    int64_t *v = NULL;
    int cnt = 0, cap = 0;
    *out = NULL;
    *n = 0;
    if (ps->ev.type != YAML_SEQUENCE_START_EVENT)
        return pfail(ps, "%s must be a list of non-negative integers, found %s",
                     what, found(&ps->ev, buf, sizeof buf));
    for (;;) {
        if (advance(ps))
            goto fail;
        if (ps->ev.type == YAML_SEQUENCE_END_EVENT)
            break;
        if (cnt == cap) {
            cap = cap ? 2 * cap : 8;
            int64_t *nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv) {
                pfail(ps, "out of memory");
                goto fail;
            }
            v = nv;
        }
        if (scalar_uint(&ps->ev, &v[cnt])) {
            pfail(ps, "%s must be a list of non-negative integers, found %s",
                  what, found(&ps->ev, buf, sizeof buf));
            goto fail;
        }
        cnt++;
    }
    *out = v;
    *n = cnt;
    return 0;
fail:
    free(v);
    return MSPT_ERR_RUNTIME;
}

/* {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, current event
 * the opening of the object. */
static int parse_tensor(st_parse *ps, st_entry *t)
{
    static const char *const fields[3] = {"dtype", "shape", "data_offsets"};
    char what[300], buf[64];
    int seen[3] = {0, 0, 0};
    const char *nm = t->name;
    if (ps->ev.type != YAML_MAPPING_START_EVENT)
        return pfail(ps, "tensor '%.200s' must be an object, found %s", nm,
                     found(&ps->ev, buf, sizeof buf));
    for (;;) {
        if (advance(ps))
            return MSPT_ERR_RUNTIME;
        if (ps->ev.type == YAML_MAPPING_END_EVENT)
            break;
        snprintf(what, sizeof what, "tensor '%.200s': a field name", nm);
        if (check_key_length(ps, what) || check_string(ps, what))
            return MSPT_ERR_RUNTIME;
        const char *key = (const char *)ps->ev.data.scalar.value;
        int k = 0;
        while (k < 3 && strcmp(key, fields[k]) != 0)
            k++;
        if (k == 3)
            return pfail(ps, "tensor '%.200s': unknown field '%.60s'", nm, key);
        if (seen[k]++)
            return pfail(ps, "tensor '%.200s': duplicate field '%s'", nm,
                         fields[k]);
        if (advance(ps))
            return MSPT_ERR_RUNTIME;
        snprintf(what, sizeof what, "tensor '%.200s': %s", nm, fields[k]);
        if (k == 0) {
            if (check_string(ps, what))
                return MSPT_ERR_RUNTIME;
            const char *dt = (const char *)ps->ev.data.scalar.value;
            int d = 0;
            while (d < MSPT_ST_NDTYPES && strcmp(dt, st_dtypes[d].name) != 0)
                d++;
            if (d == MSPT_ST_NDTYPES)
                return pfail(ps, "tensor '%.200s': unknown dtype '%.40s'", nm,
                             dt);
            t->dtype = (mspt_st_dtype)d;
        } else if (k == 1) {
            if (take_uint_list(ps, what, &t->shape, &t->ndim))
                return MSPT_ERR_RUNTIME;
        } else {
            int64_t *o;
            int n;
            if (take_uint_list(ps, what, &o, &n))
                return MSPT_ERR_RUNTIME;
            if (n == 2) {
                t->begin = (uint64_t)o[0];
                t->end = (uint64_t)o[1];
            }
            free(o);
            if (n != 2)
                return pfail(ps, "%s must be [begin, end], found %d numbers",
                             what, n);
        }
    }
    for (int k = 0; k < 3; k++)
        if (!seen[k])
            return pfail(ps, "tensor '%.200s': missing field '%s'", nm,
                         fields[k]);
    return 0;
}

/* "__metadata__": {"key": "value", ...}, current event its opening. */
static int parse_metadata(st_parse *ps)
{
    mspt_st_file *f = ps->f;
    char what[300], buf[64];
    if (ps->ev.type != YAML_MAPPING_START_EVENT)
        return pfail(ps, "__metadata__ must be an object of strings, found %s",
                     found(&ps->ev, buf, sizeof buf));
    for (;;) {
        if (advance(ps))
            return MSPT_ERR_RUNTIME;
        if (ps->ev.type == YAML_MAPPING_END_EVENT)
            return 0;
        if (f->nmeta == f->metacap) {
            size_t cap = f->metacap ? 2 * f->metacap : 8;
            st_meta *m = realloc(f->meta, cap * sizeof *m);
            if (!m)
                return pfail(ps, "out of memory");
            f->meta = m;
            f->metacap = cap;
        }
        st_meta *m = &f->meta[f->nmeta];
        if (check_key_length(ps, "a __metadata__ key") ||
            !(m->key = take_string(ps, "a __metadata__ key")))
            return MSPT_ERR_RUNTIME;
        m->value = NULL;
        f->nmeta++;
        if (advance(ps))
            return MSPT_ERR_RUNTIME;
        snprintf(what, sizeof what, "__metadata__ '%.200s'", m->key);
        if (!(m->value = take_string(ps, what)))
            return MSPT_ERR_RUNTIME;
    }
}

/* The whole header: one JSON object of tensors and "__metadata__". */
static int parse_header(st_parse *ps)
{
    mspt_st_file *f = ps->f;
    char buf[64];
    int seen_meta = 0;
    /* stream start, document start, the object */
    if (advance(ps) || advance(ps) || advance(ps))
        return MSPT_ERR_RUNTIME;
    if (ps->ev.type != YAML_MAPPING_START_EVENT)
        return pfail(ps, "header must be a JSON object, found %s",
                     found(&ps->ev, buf, sizeof buf));
    for (;;) {
        if (advance(ps))
            return MSPT_ERR_RUNTIME;
        if (ps->ev.type == YAML_MAPPING_END_EVENT)
            break;
        if (check_key_length(ps, "tensor name"))
            return MSPT_ERR_RUNTIME;
        char *name = take_string(ps, "a tensor name");
        if (!name)
            return MSPT_ERR_RUNTIME;
        if (strcmp(name, "__metadata__") == 0) {
            free(name);
            if (seen_meta++)
                return pfail(ps, "duplicate '__metadata__'");
            if (advance(ps) || parse_metadata(ps))
                return MSPT_ERR_RUNTIME;
            continue;
        }
        if (f->n == f->cap) {
            size_t cap = f->cap ? 2 * f->cap : 16;
            st_entry *t = realloc(f->t, cap * sizeof *t);
            if (!t) {
                free(name);
                return pfail(ps, "out of memory");
            }
            f->t = t;
            f->cap = cap;
        }
        st_entry *t = &f->t[f->n++];
        memset(t, 0, sizeof *t);
        t->name = name;
        if (advance(ps) || parse_tensor(ps, t))
            return MSPT_ERR_RUNTIME;
    }
    if (advance(ps) || advance(ps)) /* document end, stream end */
        return MSPT_ERR_RUNTIME;
    if (ps->ev.type != YAML_STREAM_END_EVENT)
        return pfail(ps, "header holds more than one JSON value");
    return 0;
}

/* ---- reader: consistency of names, shapes and offsets -------------------- */

static int cmp_entry_name(const void *a, const void *b)
{
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

static int cmp_meta_key(const void *a, const void *b)
{
    return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key);
}

static int cmp_entry_offsets(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a;
    const st_entry *y = *(const st_entry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Like the safetensors crate: each tensor's bytes match shape × dtype, and
 * the tensors tile the data section exactly (no overlap, no hole). */
static int validate(mspt_st_file *f, mspt_error *err)
{
    const char *p = f->path;
    char dims[200];
    if (f->n)
        qsort(f->t, f->n, sizeof *f->t, cmp_entry_name);
    if (f->nmeta)
        qsort(f->meta, f->nmeta, sizeof *f->meta, cmp_meta_key);
    for (size_t i = 1; i < f->n; i++)
        if (strcmp(f->t[i - 1].name, f->t[i].name) == 0)
            return mspt_error_set(err, MSPT_ERR_RUNTIME,
                                  "%s: duplicate tensor name '%.200s'", p,
                                  f->t[i].name);
    for (size_t i = 1; i < f->nmeta; i++)
        if (strcmp(f->meta[i - 1].key, f->meta[i].key) == 0)
            return mspt_error_set(err, MSPT_ERR_RUNTIME,
                                  "%s: duplicate __metadata__ key '%.200s'", p,
                                  f->meta[i].key);
    for (size_t i = 0; i < f->n; i++) {
        st_entry *t = &f->t[i];
        size_t numel = 1, nbytes;
        int over = 0;
        for (int d = 0; d < t->ndim; d++)
            over |= __builtin_mul_overflow(numel, (size_t)t->shape[d], &numel);
        over |=
            __builtin_mul_overflow(numel, st_dtypes[t->dtype].size, &nbytes);
        dims_str(t->ndim, t->shape, dims, sizeof dims);
        if (over)
            return mspt_error_set(
                err, MSPT_ERR_RUNTIME,
                "%s: tensor '%.200s': shape %s × %s overflows", p, t->name,
                dims, st_dtypes[t->dtype].name);
        t->numel = numel;
        if (t->end < t->begin)
            return mspt_error_set(
                err, MSPT_ERR_RUNTIME,
                "%s: tensor '%.200s': data_offsets [%llu, %llu] end "
                "before they begin",
                p, t->name, (unsigned long long)t->begin,
                (unsigned long long)t->end);
        if (t->end - t->begin != nbytes)
            return mspt_error_set(
                err, MSPT_ERR_RUNTIME,
                "%s: tensor '%.200s': data_offsets [%llu, %llu] do "
                "not match shape %s × %s (%zu bytes)",
                p, t->name, (unsigned long long)t->begin,
                (unsigned long long)t->end, dims, st_dtypes[t->dtype].name,
                nbytes);
        if (t->end > f->data_len)
            return mspt_error_set(
                err, MSPT_ERR_RUNTIME,
                "%s: tensor '%.200s': data_offsets [%llu, %llu] run "
                "past the end of the data section (%zu bytes)",
                p, t->name, (unsigned long long)t->begin,
                (unsigned long long)t->end, f->data_len);
    }
    const st_entry **by = malloc((f->n ? f->n : 1) * sizeof *by);
    if (!by)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: out of memory", p);
    for (size_t i = 0; i < f->n; i++)
        by[i] = &f->t[i];
    if (f->n)
        qsort(by, f->n, sizeof *by, cmp_entry_offsets);
    uint64_t pos = 0;
    int rc = 0;
    for (size_t i = 0; i < f->n && !rc; i++) {
        const st_entry *t = by[i];
        if (t->begin < pos)
            rc =
                mspt_error_set(err, MSPT_ERR_RUNTIME,
                               "%s: tensor '%.200s': data_offsets [%llu, %llu] "
                               "overlap tensor '%.200s' [%llu, %llu]",
                               p, t->name, (unsigned long long)t->begin,
                               (unsigned long long)t->end, by[i - 1]->name,
                               (unsigned long long)by[i - 1]->begin,
                               (unsigned long long)by[i - 1]->end);
        else if (t->begin > pos)
            rc = mspt_error_set(
                err, MSPT_ERR_RUNTIME,
                "%s: data section bytes [%llu, %llu) before tensor "
                "'%.200s' belong to no tensor",
                p, (unsigned long long)pos, (unsigned long long)t->begin,
                t->name);
        pos = t->end;
    }
    free(by);
    if (!rc && pos != f->data_len)
        rc =
            mspt_error_set(err, MSPT_ERR_RUNTIME,
                           "%s: data section size mismatch: the file holds %zu "
                           "bytes of data, the tensors cover %llu",
                           p, f->data_len, (unsigned long long)pos);
    return rc;
}

/* ---- reader: opening and queries ----------------------------------------- */

mspt_st_file *mspt_st_open(const char *path, mspt_error *err)
{
    mspt_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: out of memory", path);
        return NULL;
    }
    int fd = mspt_open_regular(path, err); /* a FIFO would block */
    struct stat sb;
    if (fd < 0)
        goto fail;
    if (fstat(fd, &sb) != 0) {
        mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot stat: %s", path,
                       strerror(errno));
        close(fd);
        goto fail;
    }
    f->size = (size_t)sb.st_size;
    if (f->size < 8) {
        mspt_error_set(err, MSPT_ERR_RUNTIME,
                       "%s: truncated: %zu bytes, too short "
                       "for the 8-byte header length",
                       path, f->size);
        close(fd);
        goto fail;
    }
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot map: %s", path,
                       strerror(errno));
        goto fail;
    }
    uint64_t n;
    memcpy(&n, f->map, 8);
    if (n > f->size - 8) {
        mspt_error_set(err, MSPT_ERR_RUNTIME,
                       "%s: header length %llu runs past the "
                       "end of the file (%zu bytes)",
                       path, (unsigned long long)n, f->size);
        goto fail;
    }
    if (n > ST_MAX_HEADER) {
        mspt_error_set(err, MSPT_ERR_RUNTIME,
                       "%s: header length %llu exceeds the "
                       "limit of %llu bytes",
                       path, (unsigned long long)n, ST_MAX_HEADER);
        goto fail;
    }
    if (n < 2 || f->map[8] != '{') {
        mspt_error_set(err, MSPT_ERR_RUNTIME,
                       "%s: header does not start with '{'", path);
        goto fail;
    }
    f->data = f->map + 8 + n;
    f->data_len = f->size - 8 - (size_t)n;

    st_parse ps = {.f = f, .err = err};
    if (!yaml_parser_initialize(&ps.yp)) {
        mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: out of memory", path);
        goto fail;
    }
    /* UTF-8 fixed: no BOM sniffing into UTF-16 */
    yaml_parser_set_encoding(&ps.yp, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&ps.yp, f->map + 8, (size_t)n);
    int rc = parse_header(&ps);
    if (ps.have)
        yaml_event_delete(&ps.ev);
    yaml_parser_delete(&ps.yp);
    if (rc || validate(f, err))
        goto fail;
    return f;
fail:
    mspt_st_close(f);
    return NULL;
}

void mspt_st_close(mspt_st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->t[i].name);
        free(f->t[i].shape);
    }
    for (size_t i = 0; i < f->nmeta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    if (f->map)
        munmap(f->map, f->size);
    free(f->t);
    free(f->meta);
    free(f->path);
    free(f);
}

size_t mspt_st_count(const mspt_st_file *f)
{
    return f->n;
}
const char *mspt_st_name(const mspt_st_file *f, size_t i)
{
    return f->t[i].name;
}
mspt_st_dtype mspt_st_dtype_of(const mspt_st_file *f, size_t i)
{
    return f->t[i].dtype;
}
int mspt_st_ndim(const mspt_st_file *f, size_t i)
{
    return f->t[i].ndim;
}
const int64_t *mspt_st_shape(const mspt_st_file *f, size_t i)
{
    return f->t[i].shape;
}
size_t mspt_st_numel(const mspt_st_file *f, size_t i)
{
    return f->t[i].numel;
}

const void *mspt_st_data(const mspt_st_file *f, size_t i, size_t *nbytes)
{
    if (nbytes)
        *nbytes = (size_t)(f->t[i].end - f->t[i].begin);
    return f->data + f->t[i].begin;
}

long mspt_st_find(const mspt_st_file *f, const char *name)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->t[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

const char *mspt_st_metadata(const mspt_st_file *f, const char *key)
{
    st_meta k = {(char *)key, NULL};
    const st_meta *m =
        f->nmeta ? bsearch(&k, f->meta, f->nmeta, sizeof k, cmp_meta_key)
                 : NULL;
    return m ? m->value : NULL;
}

size_t mspt_st_metadata_count(const mspt_st_file *f)
{
    return f->nmeta;
}
const char *mspt_st_metadata_key(const mspt_st_file *f, size_t i)
{
    return f->meta[i].key;
}

/* ---- reader: conversion to float32 --------------------------------------- */

/* IEEE half (also the top byte of F8_E5M2) to float, exactly. */
static float half_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f,
             mant = h & 0x3ff, bits;
    float v;
    if (exp == 0) { /* zero or subnormal: mant · 2^-24 */
        v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == 31) /* inf or NaN */
        bits = sign | 0x7f800000u | (mant << 13);
    else
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    memcpy(&v, &bits, 4);
    return v;
}

/* F8_E4M3 (the "fn" variant: bias 7, no infinity, S.1111.111 is NaN). */
static float e4m3_to_f32(uint8_t b)
{
    int exp = (b >> 3) & 0xf, mant = b & 7;
    float v;
    if (exp == 15 && mant == 7)
        v = NAN;
    else if (exp == 0)
        v = (float)mant * 0x1p-9f;
    else
        v = ldexpf((float)(8 + mant), exp - 10);
    return (b & 0x80) ? -v : v;
}

#define CAST_LOOP(T)                                                           \
    for (size_t i = 0; i < n; i++) {                                           \
        T v;                                                                   \
        memcpy(&v, p + i * sizeof v, sizeof v);                                \
        out[i] = (float)v;                                                     \
    }                                                                          \
    break

/* n elements of dtype dt at p (any alignment) → out. */
static void to_f32(mspt_st_dtype dt, const unsigned char *p, float *out,
                   size_t n)
{
    switch (dt) {
    case MSPT_ST_F32: memcpy(out, p, n * sizeof(float)); break;
    case MSPT_ST_F64: CAST_LOOP(double);
    case MSPT_ST_I64: CAST_LOOP(int64_t);
    case MSPT_ST_U64: CAST_LOOP(uint64_t);
    case MSPT_ST_I32: CAST_LOOP(int32_t);
    case MSPT_ST_U32: CAST_LOOP(uint32_t);
    case MSPT_ST_I16: CAST_LOOP(int16_t);
    case MSPT_ST_U16: CAST_LOOP(uint16_t);
    case MSPT_ST_I8: CAST_LOOP(int8_t);
    case MSPT_ST_U8: CAST_LOOP(uint8_t);
    case MSPT_ST_BOOL:
        for (size_t i = 0; i < n; i++)
            out[i] = p[i] != 0;
        break;
    case MSPT_ST_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = half_to_f32(h);
        }
        break;
    case MSPT_ST_BF16: /* the top half of a float32 */
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&out[i], &bits, 4);
        }
        break;
    case MSPT_ST_F8_E5M2: /* the top byte of a half */
        for (size_t i = 0; i < n; i++)
            out[i] = half_to_f32((uint16_t)(p[i] << 8));
        break;
    case MSPT_ST_F8_E4M3:
        for (size_t i = 0; i < n; i++)
            out[i] = e4m3_to_f32(p[i]);
        break;
    case MSPT_ST_NDTYPES: break;
    }
}

int mspt_st_read_f32(const mspt_st_file *f, const char *name, float *out,
                     size_t numel, mspt_error *err)
{
    char dims[200];
    long i = mspt_st_find(f, name);
    if (i < 0)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: no tensor '%.200s'",
                              f->path, name);
    const st_entry *t = &f->t[i];
    if (t->numel != numel)
        return mspt_error_set(
            err, MSPT_ERR_RUNTIME,
            "%s: tensor '%.200s' has shape %s (%zu elements), "
            "expected %zu elements",
            f->path, name, dims_str(t->ndim, t->shape, dims, sizeof dims),
            t->numel, numel);
    if (numel)
        to_f32(t->dtype, f->data + t->begin, out, numel);
    return 0;
}

int mspt_st_read_range_f32(const mspt_st_file *f, size_t i, size_t first,
                           size_t n, float *out)
{
    if (i >= f->n || first > f->t[i].numel || n > f->t[i].numel - first)
        return MSPT_ERR_RUNTIME;
    size_t es = mspt_st_dtype_size(f->t[i].dtype);
    if (n)
        to_f32(f->t[i].dtype, f->data + f->t[i].begin + first * es, out, n);
    return 0;
}
