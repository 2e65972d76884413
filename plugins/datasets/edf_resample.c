/* MNE's FFT resampling (mne/filter.py resample, mne/cuda.py _fft_resample
 * and _smart_pad), single precision through FFTW. */
#include "edf_resample.h"

#include <math.h>
#include <string.h>

#include "edf_fft.h"

/* Python's int(round(x)), halves to even. */
static long pyround(double x)
{
    return (long)nearbyint(x);
}

int edf_resample_plan(edf_resampler *r, int n, double from, double to)
{
    memset(r, 0, sizeof *r);
    if (n < 1 || n > (1 << 29))
        return -1;
    double ratio = to / from;
    if (!(ratio > 0) || ratio * n > (1 << 29))
        return -1; /* the output would not fit an int */
    r->n = n;
    long final_len = pyround(ratio * n);
    r->out_len = final_len > 1 ? (int)final_len : 1;
    /* npad 'auto': pad to the next power of two past n + min_add */
    int min_add = (n / 8 < 100 ? n / 8 : 100) * 2;
    long npad = (1L << (int)ceil(log2((double)(n + min_add)))) - n;
    r->pad0 = (int)(npad / 2);
    r->pad1 = (int)(npad / 2 + npad % 2);
    r->old_len = n + r->pad0 + r->pad1;
    if (ratio * r->old_len > (1 << 30))
        return -1;
    long new_len = pyround(ratio * r->old_len);
    r->new_len = new_len > 1 ? (int)new_len : 1;
    r->trim0 = (int)pyround(ratio * r->pad0);
    if (r->trim0 + r->out_len > r->new_len)
        return -1;
    return 0;
}

/* MNE's reflect_limited padding of one side: reflections about the end
 * sample while the signal lasts (k < n), zeros beyond. */
static float reflect(const float *x, int n, int end, int k)
{
    if (k >= n)
        return 0.0f;
    return end ? 2 * x[n - 1] - x[n - 1 - k] : 2 * x[0] - x[k];
}

/* X (L/2 + 1 bins) = spectrum of x padded MNE's way, mean removed (put
 * back after the inverse, see edf_filter.c: a constant resamples to
 * itself and single-precision FFTs then see only the variations); then
 * MNE's treatment of the bin at half the shorter length: doubled when
 * shortening, halved when lengthening.  Returns the mean. */
static double spectrum(const edf_resampler *r, const float *x, float *buf,
                       fftwf_complex *X, fftwf_plan fwd)
{
    const int n = r->n, L = r->old_len, M = r->new_len;
    double mean = 0;
    for (int i = 0; i < n; i++)
        mean += x[i];
    mean /= n;
    float *p = buf;
    for (int k = r->pad0; k >= 1; k--) /* left: zeros, then 2 x0 - x[k] */
        *p++ = (float)(reflect(x, n, 0, k) - mean);
    for (int i = 0; i < n; i++)
        *p++ = (float)(x[i] - mean);
    for (int k = 1; k <= r->pad1; k++)
        *p++ = (float)(reflect(x, n, 1, k) - mean);
    fftwf_execute_dft_r2c(fwd, buf, X);
    int shorter = M < L, use = shorter ? M : L;
    if (use % 2 == 0) {
        X[use / 2][0] *= shorter ? 2.0f : 0.5f;
        X[use / 2][1] *= shorter ? 2.0f : 0.5f;
    }
    return mean;
}

/* Bin k (0 <= k <= M/2) of the spectrum irfft(X, M) would use: X cut or
 * zero-extended, imaginary parts at DC and at M/2 (M even) ignored. */
static void bin(const fftwf_complex *X, int L, int M, int k, float *re,
                float *im)
{
    if (!X || k > L / 2) {
        *re = *im = 0.0f;
        return;
    }
    *re = X[k][0];
    *im = k == 0 || 2 * k == M ? 0.0f : X[k][1];
}

int edf_resample(const edf_resampler *r, const float *x1, const float *x2,
                 float *out1, float *out2)
{
    const int L = r->old_len, M = r->new_len;
    fftwf_plan fwd = edf_fft_r2c(L), inv = edf_fft_c2c_backward(M);
    float *buf = fftwf_malloc(sizeof(float) * (size_t)L);
    fftwf_complex *X1 = fftwf_malloc(sizeof(fftwf_complex) * (size_t)(L / 2 + 1));
    fftwf_complex *X2 = fftwf_malloc(sizeof(fftwf_complex) * (size_t)(L / 2 + 1));
    fftwf_complex *A = fftwf_malloc(sizeof(fftwf_complex) * (size_t)M);
    fftwf_complex *Y = fftwf_malloc(sizeof(fftwf_complex) * (size_t)M);
    int rc = -1;
    if (!fwd || !inv || !buf || !X1 || !X2 || !A || !Y)
        goto done;
    double m1 = spectrum(r, x1, buf, X1, fwd);
    double m2 = x2 ? spectrum(r, x2, buf, X2, fwd) : 0.0;
    /* A = Z1 + i Z2 over all M bins, Z[M - k] = conj Z[k] (Hermitian):
     * the inverse is then y1 + i y2 with y1, y2 real */
    for (int k = 0; k <= M / 2; k++) {
        float a, b, c, d; /* Z1 = a + ib, Z2 = c + id */
        bin(X1, L, M, k, &a, &b);
        bin(x2 ? X2 : NULL, L, M, k, &c, &d);
        A[k][0] = a - d;
        A[k][1] = b + c;
        if (k > 0 && 2 * k != M) {
            A[M - k][0] = a + d;
            A[M - k][1] = c - b;
        }
    }
    fftwf_execute_dft(inv, A, Y);
    /* boxcar window times new/old, irfft's 1/new: 1/old overall */
    const double scale = 1.0 / L;
    for (int i = 0; i < r->out_len; i++) {
        out1[i] = (float)(Y[r->trim0 + i][0] * scale + m1);
        if (x2)
            out2[i] = (float)(Y[r->trim0 + i][1] * scale + m2);
    }
    rc = 0;
done:
    fftwf_free(buf), fftwf_free(X1), fftwf_free(X2), fftwf_free(A);
    fftwf_free(Y);
    return rc;
}
