/* A process-wide cache of FFTW plans, and the DFT of any length (see
 * edf_fft.h). */
#include "edf_fft.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct plan_entry {
    int n, sign;
    fftwf_plan plan;
    struct plan_entry *next;
} plan_entry;

static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;
static plan_entry *plans;

fftwf_plan edf_fft_c2c(int n, int sign)
{
    pthread_mutex_lock(&plan_lock);
    plan_entry *e = plans;
    while (e && (e->n != n || e->sign != sign))
        e = e->next;
    if (!e) {
        /* the buffers only serve the planner (FFTW_ESTIMATE reads nothing) */
        fftwf_complex *a = fftwf_malloc(sizeof(fftwf_complex) * (size_t)n);
        fftwf_complex *b = fftwf_malloc(sizeof(fftwf_complex) * (size_t)n);
        e = malloc(sizeof *e);
        if (a && b && e) {
            e->n = n;
            e->sign = sign;
            e->plan = fftwf_plan_dft_1d(n, a, b, sign, FFTW_ESTIMATE);
            e->next = plans;
            plans = e;
        } else {
            free(e);
            e = NULL;
        }
        fftwf_free(a);
        fftwf_free(b);
    }
    pthread_mutex_unlock(&plan_lock);
    return e ? e->plan : NULL;
}

/* The backward DFT of any length (edf_dft in edf_fft.h).
 *
 * n = p q, p the largest prime factor; with j = q j1 + j2 and
 * k = k1 + p k2 (j1, k1 < p; j2, k2 < q), w = e^{2 pi i / n}:
 *     y[k1 + p k2] = sum_j2 w_q^{j2 k2} w^{j2 k1} sum_j1 w_p^{j1 k1} x[q j1 + j2]
 * 1. the columns j2 of x seen as a p x q matrix: DFTs of length p;
 * 2. element (k1, j2) times the twiddle w^{j2 k1};
 * 3. the rows k1: DFTs of length q, written to y[k1 + p k2].
 * A DFT of length m whose primes are all <= 13 goes to FFTW; otherwise
 * Bluestein: j k = (j^2 + k^2 - (k - j)^2) / 2, so with c[j] = e^{i pi j^2/m}
 *     X[k] = c[k] sum_j (x[j] c[j]) conj(c[k - j]),
 * a convolution done by FFTs of a length s >= 2m - 1.  The chirps c of
 * step 1's outputs and step 3's inputs are folded into the twiddles of
 * step 2, the others into the copies in and out of the scratch rows. */
enum { GROUP = 8 }; /* columns (rows) transformed together: 8 complex
                     * floats = one 64-byte cache line of x */

/* DFTs of length m on rows of scratch buffers, `stride` elements apart. */
typedef struct sub {
    int m, s;             /* s: Bluestein FFT length; 0 = FFTW directly */
    int stride;           /* a multiple of 8: rows keep the 64-byte alignment */
    double *chirp;        /* 2m: c[j] = e^{i pi j^2 / m} (Bluestein) */
    fftwf_complex *c;     /* m: the same in single precision */
    fftwf_complex *kern;  /* s: FFT of conj(c[|d|]) over d in (-m, m), / s */
    fftwf_plan direct;    /* m, backward, out of place (s = 0) */
    fftwf_plan fwd, bwd;  /* s, out of place (s > 0) */
} sub;

struct edf_dft {
    int n, p, q;
    fftwf_plan whole;     /* n smooth: FFTW, out of place */
    sub sp, sq;           /* otherwise: columns (p), rows (q; unused if q = 1) */
    fftwf_complex *tw;    /* cp[k1] w^{j2 k1} cq[j2] (q > 1), in the order
                           * step 2 reads them: columns by GROUP, then k1 */
    struct edf_dft *next; /* in the process-wide list */
};

static int largest_prime(int n)
{
    int p = 1;
    for (int f = 2; (long)f * f <= n; f++)
        while (n % f == 0)
            n /= f, p = f;
    return n > 1 ? n : p;
}

/* Smallest 2^a or 3 * 2^a >= n. */
static int bluestein_len(int n)
{
    int s = 4;
    while (s < n)
        s *= 2;
    return s / 4 * 3 >= n ? s / 4 * 3 : s;
}

static void sub_free(sub *b)
{
    free(b->chirp);
    fftwf_free(b->c);
    fftwf_free(b->kern);
}

static int sub_init(sub *b, int m)
{
    memset(b, 0, sizeof *b);
    b->m = m;
    if (largest_prime(m) <= 13) {
        b->stride = (m + 7) / 8 * 8;
        b->direct = edf_fft_c2c(m, FFTW_BACKWARD);
        return b->direct ? 0 : -1;
    }
    b->s = b->stride = bluestein_len(2 * m - 1);
    b->chirp = malloc(2 * sizeof(double) * (size_t)m);
    b->c = fftwf_malloc(sizeof(fftwf_complex) * (size_t)m);
    b->kern = fftwf_malloc(sizeof(fftwf_complex) * (size_t)b->s);
    fftwf_complex *t = fftwf_malloc(sizeof(fftwf_complex) * (size_t)b->s);
    b->fwd = edf_fft_c2c(b->s, FFTW_FORWARD);
    b->bwd = edf_fft_c2c(b->s, FFTW_BACKWARD);
    if (!b->chirp || !b->c || !b->kern || !t || !b->fwd || !b->bwd) {
        fftwf_free(t);
        return -1;
    }
    memset(t, 0, sizeof(fftwf_complex) * (size_t)b->s);
    for (int j = 0; j < m; j++) {
        /* j^2 mod 2m exactly: the angle stays small and exact */
        double a = M_PI * (double)((long long)j * j % (2LL * m)) / m;
        b->chirp[2 * j] = cos(a);
        b->chirp[2 * j + 1] = sin(a);
        b->c[j][0] = (float)cos(a);
        b->c[j][1] = (float)sin(a);
        t[j][0] = (float)(cos(a) / b->s);
        t[j][1] = (float)(-sin(a) / b->s);
        if (j) {
            t[b->s - j][0] = t[j][0];
            t[b->s - j][1] = t[j][1];
        }
    }
    fftwf_execute_dft(b->fwd, t, b->kern);
    fftwf_free(t);
    return 0;
}

/* out[i] = a[i] b[i], i < n (out may be a). */
static void cmul(fftwf_complex *out, const fftwf_complex *a,
                 const fftwf_complex *b, int n)
{
#pragma omp simd
    for (int i = 0; i < n; i++) {
        float re = a[i][0] * b[i][0] - a[i][1] * b[i][1];
        float im = a[i][0] * b[i][1] + a[i][1] * b[i][0];
        out[i][0] = re;
        out[i][1] = im;
    }
}

/* Rows 0 .. cnt of in (m elements, times c[j] if Bluestein; overwritten)
 * → their DFTs (to be multiplied by c[k] if Bluestein), in the rows of the
 * buffer returned: out for FFTW, in for Bluestein. */
static fftwf_complex *sub_core(const sub *b, fftwf_complex *in,
                               fftwf_complex *out, int cnt)
{
    for (int g = 0; g < cnt; g++) {
        fftwf_complex *r = in + (size_t)g * (size_t)b->stride;
        fftwf_complex *o = out + (size_t)g * (size_t)b->stride;
        if (!b->s) {
            fftwf_execute_dft(b->direct, r, o);
            continue;
        }
        memset(r + b->m, 0, sizeof(fftwf_complex) * (size_t)(b->s - b->m));
        fftwf_execute_dft(b->fwd, r, o);
        cmul(o, o, b->kern, b->s);
        fftwf_execute_dft(b->bwd, o, r);
    }
    return b->s ? in : out;
}

/* tw[(j2 / GROUP) p GROUP + k1 GROUP + j2 % GROUP] = cp[k1] w^{j2 k1} cq[j2]
 * (the chirps 1 for FFTW sides), in double, w^m as a coarse step times a
 * fine step (two short tables of sines and cosines instead of n).  0, or
 * -1 if out of memory. */
static int twiddles(edf_dft *d)
{
    const int n = d->n, p = d->p, q = d->q;
    const int t = (int)ceil(sqrt((double)n)), nhi = n / t + 1;
    double *hi = malloc(2 * sizeof(double) * (size_t)(nhi + t)), *lo = hi + 2 * nhi;
    if (!hi)
        return -1;
    for (int a = 0; a < nhi; a++) {
        hi[2 * a] = cos(2 * M_PI * ((double)a * t) / n);
        hi[2 * a + 1] = sin(2 * M_PI * ((double)a * t) / n);
    }
    for (int b = 0; b < t; b++) {
        lo[2 * b] = cos(2 * M_PI * b / n);
        lo[2 * b + 1] = sin(2 * M_PI * b / n);
    }
    for (int k1 = 0; k1 < p; k1++) {
        int m = 0; /* j2 k1 mod n */
        for (int j2 = 0; j2 < q; j2++, m = (m + k1) % n) {
            const double *u = hi + 2 * (m / t), *v = lo + 2 * (m % t), *c;
            double re = u[0] * v[0] - u[1] * v[1], im = u[0] * v[1] + u[1] * v[0], r;
            if ((c = d->sp.chirp ? d->sp.chirp + 2 * k1 : NULL))
                r = re * c[0] - im * c[1], im = re * c[1] + im * c[0], re = r;
            if ((c = d->sq.chirp ? d->sq.chirp + 2 * j2 : NULL))
                r = re * c[0] - im * c[1], im = re * c[1] + im * c[0], re = r;
            size_t i = ((size_t)(j2 / GROUP) * p + k1) * GROUP + j2 % GROUP;
            d->tw[i][0] = (float)re;
            d->tw[i][1] = (float)im;
        }
    }
    free(hi);
    return 0;
}

static void dft_free(edf_dft *d)
{
    sub_free(&d->sp);
    sub_free(&d->sq);
    fftwf_free(d->tw);
    free(d);
}

static edf_dft *dft_new(int n)
{
    edf_dft *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    const int p = largest_prime(n), q = n / p;
    const size_t ntw = (size_t)p * (size_t)((q + GROUP - 1) / GROUP * GROUP);
    d->n = n;
    d->p = p;
    d->q = q;
    if (p <= 13) {
        d->whole = edf_fft_c2c(n, FFTW_BACKWARD);
        if (d->whole)
            return d;
    } else if (!sub_init(&d->sp, p) &&
               (q == 1 || (!sub_init(&d->sq, q) &&
                           (d->tw = fftwf_malloc(sizeof(fftwf_complex) * ntw)) &&
                           !twiddles(d))))
        return d;
    dft_free(d);
    return NULL;
}

const edf_dft *edf_dft_get(int n)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static edf_dft *list;
    pthread_mutex_lock(&lock);
    edf_dft *d = list;
    while (d && d->n != n)
        d = d->next;
    if (!d && (d = dft_new(n))) {
        d->next = list;
        list = d;
    }
    pthread_mutex_unlock(&lock);
    return d;
}

size_t edf_dft_work_size(const edf_dft *d)
{
    if (d->whole)
        return 0;
    int w = d->sp.stride > d->sq.stride ? d->sp.stride : d->sq.stride;
    return 2 * (size_t)GROUP * (size_t)w; /* rows in, rows out */
}

void edf_dft_backward(const edf_dft *d, fftwf_complex *x, fftwf_complex *y,
                      fftwf_complex *work)
{
    const int n = d->n, p = d->p, q = d->q;
    if (d->whole) {
        fftwf_execute_dft(d->whole, x, y);
        return;
    }
    fftwf_complex *in = work, *out = work + edf_dft_work_size(d) / 2, *r;
    if (q == 1) { /* n prime: Bluestein alone */
        cmul(in, x, d->sp.c, n);
        r = sub_core(&d->sp, in, out, 1);
        cmul(y, r, d->sp.c, n);
        return;
    }
    const int sp = d->sp.stride, sq = d->sq.stride;
    const fftwf_complex *cp = d->sp.c, *cq = d->sq.c; /* cp: p > 13 is prime */
    /* 1, 2: columns j2 .. j2 + cnt of x (p x q): transformed, times the
     * twiddles, written back in place */
    for (int j2 = 0; j2 < q; j2 += GROUP) {
        int cnt = q - j2 < GROUP ? q - j2 : GROUP;
        for (int j1 = 0; j1 < p; j1++)
            for (int g = 0; g < cnt; g++) {
                const float *v = x[(size_t)j1 * q + j2 + g];
                float *o = in[g * sp + j1];
                o[0] = v[0] * cp[j1][0] - v[1] * cp[j1][1];
                o[1] = v[0] * cp[j1][1] + v[1] * cp[j1][0];
            }
        r = sub_core(&d->sp, in, out, cnt);
        const fftwf_complex *tw = d->tw + (size_t)j2 * p;
        for (int k1 = 0; k1 < p; k1++)
            for (int g = 0; g < cnt; g++) {
                const float *v = r[g * sp + k1], *w = tw[k1 * GROUP + g];
                float *o = x[(size_t)k1 * q + j2 + g];
                o[0] = v[0] * w[0] - v[1] * w[1];
                o[1] = v[0] * w[1] + v[1] * w[0];
            }
    }
    /* 3: rows k1 .. k1 + cnt, each to y[k1 + p k2] */
    for (int k1 = 0; k1 < p; k1 += GROUP) {
        int cnt = p - k1 < GROUP ? p - k1 : GROUP;
        for (int g = 0; g < cnt; g++)
            memcpy(in + g * sq, x + (size_t)(k1 + g) * q,
                   sizeof(fftwf_complex) * (size_t)q);
        r = sub_core(&d->sq, in, out, cnt);
        for (int k2 = 0; k2 < q; k2++) {
            fftwf_complex *o = y + (size_t)k2 * p + k1;
            if (cq)
                for (int g = 0; g < cnt; g++) {
                    const float *v = r[g * sq + k2];
                    o[g][0] = v[0] * cq[k2][0] - v[1] * cq[k2][1];
                    o[g][1] = v[0] * cq[k2][1] + v[1] * cq[k2][0];
                }
            else
                for (int g = 0; g < cnt; g++)
                    memcpy(o[g], r[g * sq + k2], sizeof *o);
        }
    }
}
