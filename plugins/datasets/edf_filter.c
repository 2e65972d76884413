/* Overlap-add FIR filtering, MNE's way (see edf_filter.h). */
#include "edf_filter.h"

#include <math.h>
#include <string.h>

#include "edf_fft.h"

/* Smallest 2^a 3^b 5^c >= target (scipy's next_fast_len). */
static int next_fast_len(int target)
{
    if (target <= 6)
        return target;
    for (int n = target;; n++) {
        int m = n;
        while (m % 2 == 0)
            m /= 2;
        while (m % 3 == 0)
            m /= 3;
        while (m % 5 == 0)
            m /= 5;
        if (m == 1)
            return n;
    }
}

int edf_filter_nfft(int n_x, int nh)
{
    int min_fft = 2 * nh - 1;
    if (n_x < min_fft)
        return next_fast_len(min_fft);
    /* powers of two from min_fft up to n_x, costed in multiplications plus
     * MNE's penalty on very long transforms */
    int lo = (int)ceil(log2((double)min_fft)), hi = (int)ceil(log2((double)n_x));
    int best = 0;
    double best_cost = INFINITY;
    for (int k = lo; k <= hi; k++) {
        double N = ldexp(1.0, k);
        double cost = ceil(n_x / (N - nh + 1)) * N * (log2(N) + 1) +
                      4e-5 * N * n_x;
        if (cost < best_cost) {
            best_cost = cost;
            best = (int)N;
        }
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
    f->nfft = edf_filter_nfft(n + 2 * f->n_edge, fir->n);
    f->fwd = edf_fft_r2c(f->nfft);
    f->inv = edf_fft_c2r(f->nfft);
    float *h = fftwf_malloc(sizeof(float) * (size_t)f->nfft);
    f->H = fftwf_malloc(sizeof(fftwf_complex) * (size_t)(f->nfft / 2 + 1));
    if (!f->fwd || !f->inv || !h || !f->H) {
        fftwf_free(h);
        edf_filter_free(f);
        return -1;
    }
    memset(h, 0, sizeof(float) * (size_t)f->nfft);
    for (int i = 0; i < fir->n; i++) {
        h[i] = (float)fir->h[i];
        f->dc += fir->h[i];
    }
    fftwf_execute_dft_r2c(f->fwd, h, f->H);
    fftwf_free(h);
    return 0;
}

/* x (n) → filtered in place.  The mean is taken out first and put back
 * times the DC gain: the result is the same (filtering is linear, and the
 * padding maps a constant to itself), but single-precision FFTs then only
 * see the signal's variations, not a DC offset that may dwarf them. */
int edf_filter_apply(const edf_filter *f, float *x)
{
    const int n = f->n, ne = f->n_edge, nh = f->nh, nfft = f->nfft;
    const int n_x = n + 2 * ne, n_seg = nfft - nh + 1;
    const int shift = (nh - 1) / 2 + ne;
    float *ext = fftwf_malloc(sizeof(float) * (size_t)n_x);
    float *seg = fftwf_malloc(sizeof(float) * (size_t)nfft);
    fftwf_complex *X = fftwf_malloc(sizeof(fftwf_complex) * (size_t)(nfft / 2 + 1));
    if (!ext || !seg || !X) {
        fftwf_free(ext), fftwf_free(seg), fftwf_free(X);
        return -1;
    }
    double mean = 0;
    for (int i = 0; i < n; i++)
        mean += x[i];
    mean /= n;
    /* ext = [2 x0 - x[ne..1], x, 2 x[n-1] - x[n-2..n-1-ne]] (ne <= n - 1) */
    for (int i = 0; i < n; i++)
        ext[ne + i] = (float)(x[i] - mean);
    for (int i = 0; i < ne; i++) {
        ext[i] = 2 * ext[ne] - ext[2 * ne - i];
        ext[ne + n + i] = 2 * ext[ne + n - 1] - ext[ne + n - 2 - i];
    }
    memset(x, 0, sizeof(float) * (size_t)n);
    for (int start = 0; start < n_x; start += n_seg) {
        /* this block's output lands at [start - shift, start - shift + nfft) */
        if (start - shift >= n)
            break;
        if (start - shift + nfft <= 0)
            continue;
        int len = n_x - start < n_seg ? n_x - start : n_seg;
        memcpy(seg, ext + start, sizeof(float) * (size_t)len);
        memset(seg + len, 0, sizeof(float) * (size_t)(nfft - len));
        fftwf_execute_dft_r2c(f->fwd, seg, X);
        for (int k = 0; k <= nfft / 2; k++) {
            float re = X[k][0] * f->H[k][0] - X[k][1] * f->H[k][1];
            float im = X[k][0] * f->H[k][1] + X[k][1] * f->H[k][0];
            X[k][0] = re;
            X[k][1] = im;
        }
        fftwf_execute_dft_c2r(f->inv, X, seg);
        int lo = start - shift > 0 ? start - shift : 0;
        int hi = start - shift + nfft < n ? start - shift + nfft : n;
        for (int j = lo; j < hi; j++)
            x[j] += seg[j - (start - shift)];
    }
    const float scale = 1.0f / (float)nfft;
    for (int j = 0; j < n; j++)
        x[j] = (float)(x[j] * scale + mean * f->dc);
    fftwf_free(ext), fftwf_free(seg), fftwf_free(X);
    return 0;
}

void edf_filter_free(edf_filter *f)
{
    fftwf_free(f->H);
    f->H = NULL;
}
