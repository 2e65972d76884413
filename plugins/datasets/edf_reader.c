/* EDF / EDF+ / BDF header parsing and sample decoding (see edf_reader.h).
 * Field layout: EDF specification (Kemp et al. 1992), EDF+ (Kemp and
 * Olivan 2003), BDF (BioSemi: 0xFF "BIOSEMI", 24-bit samples). */
#include "edf_reader.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* out = the w bytes at p, trimmed, NUL read as space, other non-printable
 * bytes shown as '?' (messages quote fields verbatim). */
static void field(const uint8_t *p, int w, char *out)
{
    int n = 0;
    for (int i = 0; i < w; i++) {
        uint8_t c = p[i];
        out[n++] = c == 0 ? ' ' : (c < 32 || c > 126) ? '?' : (char)c;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    int s = 0;
    while (out[s] == ' ')
        s++;
    memmove(out, out + s, (size_t)(n - s + 1));
}

/* A decimal integer, optionally signed, nothing else. */
static int parse_int(const char *s, long long *v)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 || digits > 17 || p[digits] != '\0')
        return -1;
    *v = strtoll(s, NULL, 10);
    return 0;
}

/* A decimal number: [+-]digits[.digits][e[+-]digits], finite. */
static int parse_real(const char *s, double *v)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    size_t a = strspn(p, "0123456789");
    p += a;
    size_t b = 0;
    if (*p == '.') {
        b = strspn(p + 1, "0123456789");
        p += 1 + b;
    }
    if (a + b == 0)
        return -1;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        size_t e = strspn(p, "0123456789");
        if (e == 0)
            return -1;
        p += e;
    }
    if (*p != '\0')
        return -1;
    *v = strtod(s, NULL);
    return isfinite(*v) ? 0 : -1;
}

/* Fixed header fields: name, offset, width. */
typedef struct hfield {
    const char *name;
    int off, w;
} hfield;

static const hfield F_VERSION = {"version", 0, 8},
                    F_HBYTES = {"number of bytes in header record", 184, 8},
                    F_RESERVED = {"reserved", 192, 44},
                    F_NRECORDS = {"number of data records", 236, 8},
                    F_DURATION = {"duration of a data record", 244, 8},
                    F_NSIGNALS = {"number of signals", 252, 4};

static int fixed_int(const edf_file *f, hfield h, long long *v, char *err,
                     size_t errlen)
{
    char s[96];
    field(f->data + h.off, h.w, s);
    if (parse_int(s, v))
        return fail(err, errlen, "%s: header field '%s' (bytes %d-%d): not an "
                    "integer: '%s'", f->name, h.name, h.off, h.off + h.w - 1,
                    s);
    return 0;
}

/* Per-signal fields follow the fixed header, each a block of nsignals
 * entries: (name, width); the offset of field k is the sum before it. */
static const struct {
    const char *name;
    int w;
} SIG_FIELDS[] = {{"label", 16},
                  {"transducer type", 80},
                  {"physical dimension", 8},
                  {"physical minimum", 8},
                  {"physical maximum", 8},
                  {"digital minimum", 8},
                  {"digital maximum", 8},
                  {"prefiltering", 80},
                  {"number of samples in each data record", 8},
                  {"reserved", 32}};
enum { S_LABEL, S_TRANSDUCER, S_DIM, S_PMIN, S_PMAX, S_DMIN, S_DMAX, S_PREFILTER,
       S_NSAMPLES };

static void sig_field(const edf_file *f, int k, int s, char *out)
{
    size_t off = 256;
    for (int j = 0; j < k; j++)
        off += (size_t)f->nsignals * (size_t)SIG_FIELDS[j].w;
    off += (size_t)s * (size_t)SIG_FIELDS[k].w;
    field(f->data + off, SIG_FIELDS[k].w, out);
}

static int sig_real(const edf_file *f, int k, int s, double *v, char *err,
                    size_t errlen)
{
    char t[96];
    sig_field(f, k, s, t);
    if (parse_real(t, v))
        return fail(err, errlen, "%s: signal %d '%s': header field '%s': not "
                    "a number: '%s'", f->name, s + 1, f->sig[s].label,
                    SIG_FIELDS[k].name, t);
    return 0;
}

static int sig_int(const edf_file *f, int k, int s, long long *v, char *err,
                   size_t errlen)
{
    char t[96];
    sig_field(f, k, s, t);
    if (parse_int(t, v))
        return fail(err, errlen, "%s: signal %d '%s': header field '%s': not "
                    "an integer: '%s'", f->name, s + 1, f->sig[s].label,
                    SIG_FIELDS[k].name, t);
    return 0;
}

/* The fixed 256-byte header: format, sizes, record count and duration. */
static int parse_fixed(edf_file *f, char *err, size_t errlen)
{
    if (f->size < 256)
        return fail(err, errlen, "%s: truncated file: %zu bytes, shorter than "
                    "the 256-byte fixed header", f->name, f->size);
    char s[96];
    if (f->data[0] == 0xFF && !memcmp(f->data + 1, "BIOSEMI", 7)) {
        f->bdf = 1;
    } else {
        field(f->data, F_VERSION.w, s);
        if (strcmp(s, "0") != 0)
            return fail(err, errlen, "%s: header field 'version' (bytes 0-7): "
                        "expected '0' (EDF) or 0xFF 'BIOSEMI' (BDF), got '%s': "
                        "not an EDF or BDF file", f->name, s);
    }
    long long ns, hbytes, nrec;
    if (fixed_int(f, F_NSIGNALS, &ns, err, errlen))
        return -1;
    if (ns == 0)
        return fail(err, errlen, "%s: no signals: header field 'number of "
                    "signals' is 0", f->name);
    if (ns < 0 || ns > EDF_MAX_SIGNALS)
        return fail(err, errlen, "%s: header field 'number of signals': %lld "
                    "is out of range 1..%d", f->name, ns, EDF_MAX_SIGNALS);
    f->nsignals = (int)ns;
    if (fixed_int(f, F_HBYTES, &hbytes, err, errlen))
        return -1;
    long long want = 256 * (ns + 1);
    if (hbytes != want)
        return fail(err, errlen, "%s: header field '%s': %lld, but %lld "
                    "signals need 256 x (1 + %lld) = %lld", f->name,
                    F_HBYTES.name, hbytes, ns, ns, want);
    f->header_bytes = (size_t)want;
    if (f->size < f->header_bytes)
        return fail(err, errlen, "%s: truncated file: %zu bytes, shorter than "
                    "its header (%zu bytes for %d signals)", f->name, f->size,
                    f->header_bytes, f->nsignals);
    field(f->data + F_RESERVED.off, F_RESERVED.w, s);
    f->plus = !strncmp(s, "EDF+", 4) || !strncmp(s, "BDF+", 4);
    f->discontinuous = f->plus && s[4] == 'D';
    /* a wrong count is repaired from the file size once the record size
     * is known (edf_parse), as MNE does; -1 is a writer that never closed */
    if (fixed_int(f, F_NRECORDS, &nrec, err, errlen))
        return -1;
    f->nrecords = nrec;
    field(f->data + F_DURATION.off, F_DURATION.w, s);
    if (parse_real(s, &f->duration))
        return fail(err, errlen, "%s: header field '%s' (bytes 244-251): not "
                    "a number: '%s'", f->name, F_DURATION.name, s);
    return 0;
}

/* After the labels are known: a file of annotations only has no signals
 * (its record duration is often 0 too: that is not the problem to name);
 * then the record duration must be sane. */
static int check_duration(edf_file *f, char *err, size_t errlen)
{
    int data = 0;
    for (int s = 0; s < f->nsignals; s++)
        data += !f->sig[s].annotation;
    if (!data)
        return fail(err, errlen, "%s: no signals: the %d signal%s only "
                    "annotations", f->name, f->nsignals,
                    f->nsignals == 1 ? " holds" : "s hold");
    if (!(f->duration > 0))
        return fail(err, errlen, "%s: header field '%s': %g s, must be > 0",
                    f->name, F_DURATION.name, f->duration);
    if (f->duration > EDF_MAX_DURATION)
        return fail(err, errlen, "%s: header field '%s': %g s is an absurd "
                    "record duration (at most %g s): a corrupt header",
                    f->name, F_DURATION.name, f->duration, EDF_MAX_DURATION);
    return 0;
}

/* The record count from the file size, as MNE 1.3 does (read_raw_edf:
 * "Number of records from the header does not match the file size ...
 * Inferring from the file size"): a count of -1 or one that disagrees is
 * replaced, a trailing partial record dropped; each noted in f->warning. */
static int count_records(edf_file *f, char *err, size_t errlen)
{
    size_t have = f->size - f->header_bytes, bytes = f->record_bytes;
    size_t full = have / bytes, extra = have % bytes;
    size_t len = 0;
    if (full == 0)
        return fail(err, errlen, "%s: truncated file: no complete data record "
                    "(%zu bytes of data, a record takes %zu)", f->name, have,
                    bytes);
    if (f->nrecords != (long long)full) {
        len += (size_t)snprintf(f->warning + len, sizeof f->warning - len,
            "%s: header field 'number of data records' is %lld%s, but the "
            "file size holds %zu records of %zu bytes: counting from the "
            "size (as MNE)", f->name, f->nrecords, f->nrecords == -1 ?
            " (the writer never closed the file)" : "", full, bytes);
        f->nrecords = (long long)full;
    }
    if (extra && len < sizeof f->warning)
        snprintf(f->warning + len, sizeof f->warning - len, "%s%s: a trailing "
                 "partial record (%zu of %zu bytes) is dropped (as MNE)",
                 len ? "\n" : "", f->name, extra, bytes);
    return 0;
}

/* Factor from signal s's physical dimension to microvolts (0 if not a
 * voltage); read raw, since a latin-1 or UTF-8 micro sign may appear. */
static double unit_to_uv(const edf_file *f, int s)
{
    size_t off = 256;
    for (int j = 0; j < S_DIM; j++)
        off += (size_t)f->nsignals * (size_t)SIG_FIELDS[j].w;
    const uint8_t *p = f->data + off + (size_t)s * 8;
    char u[9];
    int n = 0;
    for (int i = 0; i < 8; i++)
        if (p[i] != ' ' && p[i] != 0)
            u[n++] = (char)p[i];
    u[n] = '\0';
    /* micro: ASCII u, latin-1 and UTF-8 micro sign, UTF-8 Greek mu, and
     * the Shift-JIS mu MNE also accepts */
    if (!strcasecmp(u, "uV") || !strcmp(u, "\xb5V") || !strcmp(u, "\xc2\xb5V") ||
        !strcmp(u, "\xce\xbcV") || !strcmp(u, "\x83\xcaV"))
        return 1.0;
    if (!strcmp(u, "mV"))
        return 1e3;
    if (!strcasecmp(u, "V"))
        return 1e6;
    if (!strcasecmp(u, "nV"))
        return 1e-3;
    return 0.0;
}

/* One signal's fields; accumulates the record size in *bytes. */
static int parse_signal(edf_file *f, int s, size_t *bytes, char *err,
                        size_t errlen)
{
    edf_signal *g = &f->sig[s];
    sig_field(f, S_LABEL, s, g->label); /* 16 + 1 bytes */
    sig_field(f, S_DIM, s, g->unit);    /* 8 + 1 */
    g->to_uv = unit_to_uv(f, s);
    g->annotation = f->plus && (!strcmp(g->label, "EDF Annotations") ||
                                !strcmp(g->label, "BDF Annotations"));
    long long n;
    if (sig_int(f, S_NSAMPLES, s, &n, err, errlen))
        return -1;
    const char *nsf = SIG_FIELDS[S_NSAMPLES].name;
    if (n <= 0)
        return fail(err, errlen, "%s: signal %d '%s': header field '%s': %lld "
                    "(a sample rate of %s0 Hz)", f->name, s + 1, g->label, nsf,
                    n, n < 0 ? "less than " : "");
    double rate = (double)n / f->duration;
    if (!g->annotation && (n > (1LL << 31) || rate > EDF_MAX_RATE))
        return fail(err, errlen, "%s: signal %d '%s': header field '%s': %lld "
                    "samples per %g s record is an absurd sample rate (%g Hz; "
                    "at most %g)", f->name, s + 1, g->label, nsf, n,
                    f->duration, rate, EDF_MAX_RATE);
    if (n > (1LL << 31))
        return fail(err, errlen, "%s: signal %d '%s': header field '%s': %lld "
                    "is absurd", f->name, s + 1, g->label, nsf, n);
    g->samples = (long)n;
    g->byte_offset = *bytes;
    *bytes += (size_t)n * (f->bdf ? 3 : 2);
    if (g->annotation)
        return 0; /* scaling fields are not used */
    long long dmin, dmax;
    if (sig_real(f, S_PMIN, s, &g->phys_min, err, errlen) ||
        sig_real(f, S_PMAX, s, &g->phys_max, err, errlen) ||
        sig_int(f, S_DMIN, s, &dmin, err, errlen) ||
        sig_int(f, S_DMAX, s, &dmax, err, errlen))
        return -1;
    long lo = f->bdf ? -8388608 : -32768, hi = f->bdf ? 8388607 : 32767;
    if (dmin < lo || dmin > hi || dmax < lo || dmax > hi)
        return fail(err, errlen, "%s: signal %d '%s': header fields 'digital "
                    "minimum'/'digital maximum': %lld..%lld outside the %s "
                    "range %ld..%ld", f->name, s + 1, g->label, dmin, dmax,
                    f->bdf ? "24-bit" : "16-bit", lo, hi);
    if (dmin >= dmax)
        return fail(err, errlen, "%s: signal %d '%s': header field 'digital "
                    "maximum' (%lld) must exceed 'digital minimum' (%lld)",
                    f->name, s + 1, g->label, dmax, dmin);
    if (g->phys_min == g->phys_max)
        return fail(err, errlen, "%s: signal %d '%s': header field 'physical "
                    "maximum' equals 'physical minimum' (%g)", f->name, s + 1,
                    g->label, g->phys_min);
    g->dig_min = (long)dmin;
    g->dig_max = (long)dmax;
    g->cal = (g->phys_max - g->phys_min) / (double)(dmax - dmin);
    g->offset = g->phys_min - (double)dmin * g->cal;
    return 0;
}

int edf_parse(edf_file *f, const uint8_t *data, size_t size, const char *name,
              char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->data = data;
    f->size = size;
    f->name = name;
    f->annotations = -1;
    if (parse_fixed(f, err, errlen))
        return -1;
    f->sig = calloc((size_t)f->nsignals, sizeof *f->sig);
    if (!f->sig)
        return fail(err, errlen, "%s: out of memory", name);
    for (int s = 0; s < f->nsignals; s++) {
        sig_field(f, S_LABEL, s, f->sig[s].label);
        f->sig[s].annotation = f->plus &&
                               (!strcmp(f->sig[s].label, "EDF Annotations") ||
                                !strcmp(f->sig[s].label, "BDF Annotations"));
    }
    if (check_duration(f, err, errlen)) {
        edf_free(f);
        return -1;
    }
    size_t bytes = 0;
    for (int s = 0; s < f->nsignals; s++) {
        if (parse_signal(f, s, &bytes, err, errlen)) {
            edf_free(f);
            return -1;
        }
        if (f->sig[s].annotation && f->annotations < 0)
            f->annotations = s;
    }
    f->record_bytes = bytes;
    if (count_records(f, err, errlen)) {
        edf_free(f);
        return -1;
    }
    if (f->discontinuous && f->annotations < 0) {
        fail(err, errlen, "%s: header field 'reserved' says EDF+D "
             "(discontinuous) but no signal is labelled 'EDF Annotations', so "
             "the record times are unknown", name);
        edf_free(f);
        return -1;
    }
    return 0;
}

void edf_free(edf_file *f)
{
    free(f->sig);
    f->sig = NULL;
}

double edf_rate(const edf_file *f, int s)
{
    return (double)f->sig[s].samples / f->duration;
}

void edf_read_strided(const edf_file *f, int s, long long first,
                      long long count, double scale, float *out,
                      size_t stride)
{
    const edf_signal *g = &f->sig[s];
    const double cal = g->cal * scale, off = g->offset * scale;
    for (long long r = 0; r < count; r++) {
        const uint8_t *p = f->data + f->header_bytes +
                           (size_t)(first + r) * f->record_bytes +
                           g->byte_offset;
        float *o = out + (size_t)r * (size_t)g->samples * stride;
        if (f->bdf) {
            for (long k = 0; k < g->samples; k++, p += 3) {
                int32_t v = (int32_t)(p[0] | p[1] << 8 | (uint32_t)p[2] << 16);
                if (v & 0x800000)
                    v -= 0x1000000;
                o[(size_t)k * stride] = (float)(v * cal + off);
            }
        } else {
#pragma omp simd
            for (long k = 0; k < g->samples; k++) {
                int16_t v = (int16_t)(uint16_t)(p[2 * k] | p[2 * k + 1] << 8);
                o[(size_t)k * stride] = (float)(v * cal + off);
            }
        }
    }
}

void edf_read(const edf_file *f, int s, long long first, long long count,
              double scale, float *out)
{
    edf_read_strided(f, s, first, count, scale, out, 1);
}

/* Onset of record r: the first TAL of its annotation signal, "+12.5\x14\x14". */
static int record_onset(const edf_file *f, long long r, double *onset,
                        char *err, size_t errlen)
{
    const edf_signal *g = &f->sig[f->annotations];
    size_t n = (size_t)g->samples * (f->bdf ? 3 : 2);
    const uint8_t *p = f->data + f->header_bytes + (size_t)r * f->record_bytes +
                       g->byte_offset;
    char s[64];
    size_t k = 0;
    while (k < n && k < sizeof s - 1 && p[k] != 0x14 && p[k] != 0x15 &&
           p[k] != 0) {
        s[k] = (p[k] < 32 || p[k] > 126) ? '?' : (char)p[k];
        k++;
    }
    s[k] = '\0';
    if ((s[0] != '+' && s[0] != '-') || k == n || p[k] == 0 ||
        parse_real(s, onset))
        return fail(err, errlen, "%s: record %lld: the time-keeping "
                    "annotation ('EDF Annotations' signal) should start with "
                    "'+seconds', got '%s'", f->name, r + 1, s);
    return 0;
}

int edf_segments(const edf_file *f, edf_segment **out, size_t *n, char *err,
                 size_t errlen)
{
    *out = NULL;
    *n = 0;
    edf_segment *seg = malloc(sizeof *seg);
    if (!seg)
        return fail(err, errlen, "%s: out of memory", f->name);
    seg[0] = (edf_segment){0, f->nrecords, 0.0};
    size_t count = 1;
    if (f->discontinuous) {
        double prev = 0;
        if (record_onset(f, 0, &prev, err, errlen)) {
            free(seg);
            return -1;
        }
        seg[0].onset = prev;
        seg[0].count = 1;
        /* tolerance well below one sample at the highest rate */
        double tol = 0.1 / EDF_MAX_RATE;
        for (long long r = 1; r < f->nrecords; r++) {
            double t;
            if (record_onset(f, r, &t, err, errlen)) {
                free(seg);
                return -1;
            }
            double end = prev + f->duration;
            if (t < end - tol) {
                free(seg);
                return fail(err, errlen, "%s: record %lld starts at %.6f s, "
                            "before the end of record %lld (%.6f s)", f->name,
                            r + 1, t, r, end);
            }
            if (t > end + tol) {
                edf_segment *g = realloc(seg, (count + 1) * sizeof *seg);
                if (!g) {
                    free(seg);
                    return fail(err, errlen, "%s: out of memory", f->name);
                }
                seg = g;
                seg[count++] = (edf_segment){r, 1, t};
            } else {
                seg[count - 1].count++;
            }
            prev = t;
        }
    }
    *out = seg;
    *n = count;
    return 0;
}
