/* Overlap-save FIR filtering of signal pairs (see edf_filter.h). */
#include "edf_filter.h"

#include <math.h>
#include <string.h>

#include "edf_fft.h"

int edf_filter_nfft(int n, int nh)
{
    int best = 0;
    double best_cost = INFINITY;
    for (int mult = 1; mult <= 5; mult += 4)
        for (long N = mult * 4L; N < (1L << 30); N *= 2) {
            if (N < 2L * nh)
                continue;
            double blocks = ceil((double)n / (double)(N - nh + 1));
            double cost = blocks * (double)N * log2((double)N);
            if (cost < best_cost)
                best_cost = cost, best = (int)N;
            if (blocks == 1)
                break; /* longer only costs more */
        }
    return best;
}

int edf_filter_prepare(edf_filter *f, const edf_fir *fir, int n)
{
    memset(f, 0, sizeof *f);
    f->nh = fir->n;
    f->n = n;
    f->n_edge = (fir->n < n ? fir->n : n) - 1;
    if (f->n_edge < 0)
        f->n_edge = 0;
    f->nfft = edf_filter_nfft(n, fir->n);
    f->fwd = edf_fft_c2c(f->nfft, FFTW_FORWARD);
    f->inv = edf_fft_c2c(f->nfft, FFTW_BACKWARD);
    fftwf_complex *h = fftwf_malloc(sizeof(fftwf_complex) * (size_t)f->nfft);
    f->H = fftwf_malloc(sizeof(fftwf_complex) * (size_t)f->nfft);
    if (!f->fwd || !f->inv || !h || !f->H) {
        fftwf_free(h);
        edf_filter_free(f);
        return -1;
    }
    memset(h, 0, sizeof(fftwf_complex) * (size_t)f->nfft);
    for (int i = 0; i < fir->n; i++) {
        h[i][0] = (float)(fir->h[i] / f->nfft);
        f->dc += fir->h[i];
    }
    fftwf_execute_dft(f->fwd, h, f->H);
    fftwf_free(h);
    return 0;
}

size_t edf_filter_work_size(const edf_filter *f)
{
    return 2 * edf_fft_round((size_t)f->nfft); /* a block, its spectrum */
}

/* seg[u] = ext[e0 + u] - mean, u < len: ext is x extended by ne samples of
 * reflection about each end sample, zero beyond (ne <= n - 1). */
static void extend(fftwf_complex *seg, const fftwf_complex *x, int n, int ne,
                   const float *mean, long e0, int len)
{
    /* ext index e: zeros, left reflection, x[e - ne], right reflection,
     * zeros; each loop runs over the part of [e0, e0 + len) it covers */
    const long end = e0 + len, mid = end < (long)ne + n ? end : (long)ne + n;
    const float m0 = mean[0], m1 = mean[1];
    const float l0 = 2 * x[0][0] - m0, l1 = 2 * x[0][1] - m1;
    const float r0 = 2 * x[n - 1][0] - m0, r1 = 2 * x[n - 1][1] - m1;
    long e = e0;
    for (; e < end && e < 0; e++)
        seg[e - e0][0] = seg[e - e0][1] = 0.0f;
    for (; e < end && e < ne; e++) { /* 2 x[0] - x[ne - e] */
        seg[e - e0][0] = l0 - x[ne - e][0];
        seg[e - e0][1] = l1 - x[ne - e][1];
    }
    if (e < mid) {
        fftwf_complex *o = seg + (e - e0);
        const fftwf_complex *xi = x + (e - ne);
        const long count = mid - e;
#pragma omp simd
        for (long u = 0; u < count; u++) {
            o[u][0] = xi[u][0] - m0;
            o[u][1] = xi[u][1] - m1;
        }
        e = mid;
    }
    for (; e < end && e < 2L * ne + n; e++) { /* 2 x[n-1] - x[2 (n-1) - (e - ne)] */
        long k = 2L * (n - 1) + ne - e;
        seg[e - e0][0] = r0 - x[k][0];
        seg[e - e0][1] = r1 - x[k][1];
    }
    for (; e < end; e++)
        seg[e - e0][0] = seg[e - e0][1] = 0.0f;
}

/* The mean is taken out first and put back times the DC gain: the result
 * is the same (filtering is linear, and the reflection maps a constant to
 * itself), but single-precision FFTs then only see the signal's
 * variations, not a DC offset that may dwarf them.  Not when the signal is
 * shorter than the filter: the taps then reach past the reflection into
 * zeros, which a constant does not map to itself through. */
void edf_filter_apply(const edf_filter *f, const fftwf_complex *x,
                      fftwf_complex *y, fftwf_complex *work)
{
    const int n = f->n, ne = f->n_edge, nh = f->nh, nfft = f->nfft;
    const int block = nfft - nh + 1;
    /* y[j] = sum_i h[i] ext[j + shift - i]: the taps' delay and the edge */
    const long shift = (nh - 1) / 2 + ne;
    fftwf_complex *seg = work, *X = work + edf_fft_round((size_t)nfft);
    double s0 = 0, s1 = 0;
    if (ne == nh - 1) {
#pragma omp simd reduction(+ : s0, s1)
        for (int i = 0; i < n; i++)
            s0 += x[i][0], s1 += x[i][1];
    }
    const float mean[2] = {(float)(s0 / n), (float)(s1 / n)};
    const float dc[2] = {(float)(mean[0] * f->dc), (float)(mean[1] * f->dc)};
    for (int o = 0; o < n; o += block) {
        /* outputs o .. o + block from ext[o + shift - nh + 1 ...]: the
         * first nh - 1 of the circular convolution are wrapped, not used */
        extend(seg, x, n, ne, mean, o + shift - nh + 1, nfft);
        fftwf_execute_dft(f->fwd, seg, X);
#pragma omp simd
        for (int k = 0; k < nfft; k++) {
            float re = X[k][0] * f->H[k][0] - X[k][1] * f->H[k][1];
            float im = X[k][0] * f->H[k][1] + X[k][1] * f->H[k][0];
            X[k][0] = re;
            X[k][1] = im;
        }
        fftwf_execute_dft(f->inv, X, seg);
        int len = n - o < block ? n - o : block;
#pragma omp simd
        for (int v = 0; v < len; v++) {
            y[o + v][0] = seg[nh - 1 + v][0] + dc[0];
            y[o + v][1] = seg[nh - 1 + v][1] + dc[1];
        }
    }
}

void edf_filter_free(edf_filter *f)
{
    fftwf_free(f->H);
    f->H = NULL;
}
