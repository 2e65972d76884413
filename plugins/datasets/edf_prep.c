/* One recording → windows (see edf_prep.h). */
#include "edf_prep.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edf_fft.h"
#include "edf_filter.h"
#include "edf_fir.h"
#include "edf_resample.h"

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

/* What depends on a signal's sample rate: filters designed once per file,
 * prepared (and the resampling planned) per segment length. */
typedef struct rate_plan {
    long samples; /* per record */
    double rate;
    edf_fir bp, notch;
    edf_filter fbp, fnotch;
    edf_resampler rs;
} rate_plan;

static void plan_free(rate_plan *p)
{
    edf_fir_free(&p->bp);
    edf_fir_free(&p->notch);
    edf_filter_free(&p->fbp);
    edf_filter_free(&p->fnotch);
}

static int plan_design(rate_plan *p, const edf_file *f, int s,
                       const edf_recipe *r, char *err, size_t errlen)
{
    char why[512];
    memset(p, 0, sizeof *p);
    p->samples = f->sig[s].samples;
    p->rate = edf_rate(f, s);
    if (edf_fir_bandpass(p->rate, r->l_freq, r->h_freq, &p->bp, why, sizeof why) ||
        (r->notch > 0 &&
         edf_fir_notch(p->rate, r->notch, &p->notch, why, sizeof why))) {
        plan_free(p);
        return fail(err, errlen, "%s: signal '%s' sampled at %g Hz: %s",
                    f->name, f->sig[s].label, p->rate, why);
    }
    return 0;
}

/* Prepare p's filters and resampling for a segment of `records` records. */
static int plan_segment(rate_plan *p, long long records, const edf_recipe *r,
                        const char *name, char *err, size_t errlen)
{
    long long n = records * p->samples;
    edf_filter_free(&p->fbp);
    edf_filter_free(&p->fnotch);
    if (n > (1 << 29))
        return fail(err, errlen, "%s: a contiguous run of %lld samples is too "
                    "long (at most %d)", name, n, 1 << 29);
    if ((p->bp.n && edf_filter_prepare(&p->fbp, &p->bp, (int)n)) ||
        (p->notch.n && edf_filter_prepare(&p->fnotch, &p->notch, (int)n)))
        return fail(err, errlen, "%s: out of memory", name);
    if (edf_resample_plan(&p->rs, (int)n, p->rate, r->sample_rate))
        return fail(err, errlen, "%s: cannot resample %lld samples from %g "
                    "to %g Hz", name, n, p->rate, r->sample_rate);
    return 0;
}

/* Complex scratch elements pair() needs for plan p: the pair signal and
 * its filtered copy, then the largest of the stages' own scratch. */
static size_t pair_work(const rate_plan *p)
{
    size_t w = edf_resample_work_size(&p->rs);
    if (p->bp.n && edf_filter_work_size(&p->fbp) > w)
        w = edf_filter_work_size(&p->fbp);
    if (p->notch.n && edf_filter_work_size(&p->fnotch) > w)
        w = edf_filter_work_size(&p->fnotch);
    return 2 * edf_fft_round((size_t)p->rs.n) + w;
}

/* ref rows a and b (len each) = picked signals sa and sb (sb < 0: none)
 * over segment g, preprocessed: read as the real and imaginary parts of
 * one complex signal, which every stage transforms at once (edf_filter,
 * edf_resample).  mem holds pair_work(p) elements. */
static void pair(const edf_file *f, int sa, int sb, const edf_segment *g,
                 const rate_plan *p, const edf_recipe *r, float *ref_a,
                 float *ref_b, int len, fftwf_complex *mem)
{
    const size_t n = (size_t)p->rs.n, stride = edf_fft_round(n);
    fftwf_complex *x = mem, *y = mem + stride, *work = mem + 2 * stride, *t;
    edf_read_strided(f, sa, g->first, g->count, f->sig[sa].to_uv * r->per_uv,
                     &x[0][0], 2);
    if (sb >= 0)
        edf_read_strided(f, sb, g->first, g->count,
                         f->sig[sb].to_uv * r->per_uv, &x[0][1], 2);
    else
        for (size_t i = 0; i < n; i++)
            x[i][1] = 0.0f;
    if (p->bp.n) {
        edf_filter_apply(&p->fbp, x, y, work);
        t = x, x = y, y = t;
    }
    if (p->notch.n) {
        edf_filter_apply(&p->fnotch, x, y, work);
        t = x, x = y, y = t;
    }
    edf_resample(&p->rs, x, ref_a, sb >= 0 ? ref_b : NULL, len, work);
}

/* Append the windows of ref (nch, len) through the montage to w. */
static int cut(const float *ref, int len, const edf_recipe *r, edf_windows *w)
{
    const edf_montage *m = &r->montage;
    size_t count = (size_t)((len - r->window) / r->stride + 1);
    size_t per = (size_t)m->n * (size_t)r->window;
    float *d = realloc(w->data, (w->n + count) * per * sizeof *d);
    if (!d)
        return -1;
    w->data = d;
#pragma omp parallel for num_threads(r->threads) schedule(static)
    for (size_t i = 0; i < count; i++) {
        const size_t t0 = i * (size_t)r->stride;
        float *o = d + (w->n + i) * per;
        for (int k = 0; k < m->n; k++, o += r->window) {
            const float *a = ref + (size_t)m->a[k] * len + t0;
            if (m->b[k] < 0) {
                memcpy(o, a, (size_t)r->window * sizeof *o);
            } else {
                const float *b = ref + (size_t)m->b[k] * len + t0;
#pragma omp simd
                for (int t = 0; t < r->window; t++)
                    o[t] = a[t] - b[t];
            }
        }
    }
    w->n += count;
    return 0;
}

/* Picked signals, their units, and one rate plan per distinct rate. */
static int setup(const edf_file *f, const edf_recipe *r, int *idx,
                 rate_plan *plans, int *which, int *nplans, char *err,
                 size_t errlen)
{
    if (edf_pick(f, r->channels, r->nch, idx, err, errlen))
        return -1;
    *nplans = 0;
    for (int c = 0; c < r->nch; c++) {
        const edf_signal *g = &f->sig[idx[c]];
        if (g->to_uv == 0)
            return fail(err, errlen, "%s: signal %d '%s': header field "
                        "'physical dimension' is '%s', not a voltage (uV, mV, "
                        "V or nV)", f->name, idx[c] + 1, g->label, g->unit);
        /* named here, not by a filter's Nyquist check on a rate of 0.01 Hz */
        if (edf_rate(f, idx[c]) < EDF_MIN_RATE)
            return fail(err, errlen, "%s: signal %d '%s': %ld samples per %g s "
                        "record is an absurd sample rate for EEG (%g Hz; at "
                        "least %g): a corrupt header", f->name, idx[c] + 1,
                        g->label, g->samples, f->duration, edf_rate(f, idx[c]),
                        EDF_MIN_RATE);
        int j = 0;
        while (j < *nplans && plans[j].samples != g->samples)
            j++;
        if (j == *nplans) {
            if (plan_design(&plans[j], f, idx[c], r, err, errlen))
                return -1;
            (*nplans)++;
        }
        which[c] = j;
    }
    return 0;
}

int edf_prep_buffer(const uint8_t *data, size_t size, const char *name,
                    const edf_recipe *r, edf_windows *w, char *err,
                    size_t errlen)
{
    memset(w, 0, sizeof *w);
    edf_file f;
    if (edf_parse(&f, data, size, name, err, errlen))
        return -1;
    w->seconds = (double)f.nrecords * f.duration;
    snprintf(w->warning, sizeof w->warning, "%s", f.warning);
    edf_segment *segs = NULL;
    size_t nseg = 0;
    int *idx = malloc((size_t)r->nch * sizeof *idx);
    int *which = malloc((size_t)r->nch * sizeof *which);
    int *pa = malloc((size_t)r->nch * sizeof *pa);
    int *pb = malloc((size_t)r->nch * sizeof *pb);
    rate_plan *plans = calloc((size_t)r->nch, sizeof *plans);
    float *ref = NULL;
    int nplans = 0, rc = -1;
    if (!idx || !which || !plans || !pa || !pb) {
        fail(err, errlen, "%s: out of memory", name);
        goto done;
    }
    if (setup(&f, r, idx, plans, which, &nplans, err, errlen) ||
        edf_segments(&f, &segs, &nseg, err, errlen))
        goto done;
    /* channels two by two among those of the same rate */
    int npairs = 0;
    for (int c = 0; c < r->nch; c++) {
        int mate = -1;
        for (int q = 0; q < npairs && mate < 0; q++)
            if (pb[q] < 0 && which[pa[q]] == which[c])
                mate = q;
        if (mate >= 0)
            pb[mate] = c;
        else
            pa[npairs] = c, pb[npairs++] = -1;
    }
    for (size_t k = 0; k < nseg; k++) {
        int len = 0x7fffffff;
        for (int j = 0; j < nplans; j++) {
            if (plan_segment(&plans[j], segs[k].count, r, name, err, errlen))
                goto done;
            if (plans[j].rs.out_len < len)
                len = plans[j].rs.out_len;
        }
        if (len < r->window)
            continue; /* too short for one window */
        free(ref);
        ref = malloc((size_t)r->nch * (size_t)len * sizeof *ref);
        if (!ref) {
            fail(err, errlen, "%s: out of memory", name);
            goto done;
        }
        size_t need = 0;
        for (int j = 0; j < nplans; j++)
            if (pair_work(&plans[j]) > need)
                need = pair_work(&plans[j]);
        int bad = 0;
        /* each thread's scratch allocated once for all its pairs; a pair's
         * result does not depend on the thread that computes it, so pairs
         * go to whichever thread is free */
#pragma omp parallel num_threads(r->threads) reduction(| : bad)
        {
            fftwf_complex *mem = fftwf_malloc(need * sizeof *mem);
            bad |= !mem;
#pragma omp for schedule(dynamic, 1)
            for (int q = 0; q < npairs; q++) {
                int a = pa[q], b = pb[q];
                if (mem)
                    pair(&f, idx[a], b >= 0 ? idx[b] : -1, &segs[k],
                         &plans[which[a]], r, ref + (size_t)a * len,
                         b >= 0 ? ref + (size_t)b * len : NULL, len, mem);
            }
            fftwf_free(mem);
        }
        if (bad || cut(ref, len, r, w)) {
            fail(err, errlen, "%s: out of memory", name);
            goto done;
        }
    }
    rc = 0;
done:
    for (int j = 0; j < nplans; j++)
        plan_free(&plans[j]);
    free(plans);
    free(which);
    free(pa);
    free(pb);
    free(idx);
    free(segs);
    free(ref);
    edf_free(&f);
    if (rc) {
        free(w->data);
        w->data = NULL;
        w->n = 0;
    }
    return rc;
}

int edf_prep_file(const char *path, const edf_recipe *r, edf_windows *w,
                  char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return fail(err, errlen, "%s: cannot open: %m", path);
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, errlen, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < 256) { /* nothing to map; the parser words the error */
        uint8_t head[256];
        ssize_t got = read(fd, head, sizeof head);
        close(fd);
        return edf_prep_buffer(head, got > 0 ? (size_t)got : 0, path, r, w,
                               err, errlen);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return fail(err, errlen, "%s: cannot map: %m", path);
    madvise(map, size, MADV_SEQUENTIAL);
    int rc = edf_prep_buffer(map, size, path, r, w, err, errlen);
    munmap(map, size);
    return rc;
}

void edf_recipe_describe(const edf_recipe *r, char *out, size_t n)
{
    size_t l = (size_t)snprintf(out, n, "channels=");
    for (int c = 0; c < r->nch && l < n; c++)
        l += (size_t)snprintf(out + l, n - l, "%s%s", c ? "," : "",
                              r->channels[c]);
    for (int k = 0; k < r->montage.n && l < n; k++)
        l += (size_t)snprintf(out + l, n - l, "%s%d-%d", k ? "," : " montage=",
                              r->montage.a[k], r->montage.b[k]);
    if (l < n)
        snprintf(out + l, n - l, " l_freq=%.17g h_freq=%.17g notch=%.17g "
                 "sample_rate=%.17g window=%d stride=%d per_uv=%.17g "
                 "recipe=mne1.3-fir-firwin-hamming-zero/fft-resample-boxcar "
                 "code=3", /* 2: exact on runs shorter than the filter;
                             * 3: no resampling at the recording's own rate */
                 r->l_freq, r->h_freq, r->notch, r->sample_rate, r->window,
                 r->stride, r->per_uv);
}
