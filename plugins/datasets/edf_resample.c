/* MNE's FFT resampling (mne/filter.py resample, mne/cuda.py _fft_resample
 * and _smart_pad), single precision, two signals per transform. */
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
    if (from == to) { /* no resampling at the target rate */
        r->identity = 1;
        r->out_len = r->old_len = r->new_len = n;
        return 0;
    }
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
    r->fwd = edf_fft_c2c(r->old_len, FFTW_FORWARD);
    r->inv = edf_dft_get(r->new_len);
    return r->fwd && r->inv ? 0 : -1;
}

size_t edf_resample_work_size(const edf_resampler *r)
{
    if (r->identity)
        return 0;
    size_t w = edf_fft_round((size_t)(r->old_len > r->new_len ? r->old_len
                                                               : r->new_len));
    return 2 * w + edf_dft_work_size(r->inv);
}

/* buf (L) = x (n) padded MNE's way, minus mean: reflections about the end
 * samples while the signal lasts (2 x0 - x[k], k < n), zeros beyond. */
static void pad(const edf_resampler *r, const fftwf_complex *x,
                const float *mean, fftwf_complex *buf)
{
    const int n = r->n;
    for (int k = r->pad0; k >= 1; k--, buf++) {
        buf[0][0] = (k < n ? 2 * x[0][0] - x[k][0] : 0.0f) - mean[0];
        buf[0][1] = (k < n ? 2 * x[0][1] - x[k][1] : 0.0f) - mean[1];
    }
#pragma omp simd
    for (int i = 0; i < n; i++) {
        buf[i][0] = x[i][0] - mean[0];
        buf[i][1] = x[i][1] - mean[1];
    }
    buf += n;
    for (int k = 1; k <= r->pad1; k++, buf++) {
        buf[0][0] = (k < n ? 2 * x[n - 1][0] - x[n - 1 - k][0] : 0.0f) - mean[0];
        buf[0][1] = (k < n ? 2 * x[n - 1][1] - x[n - 1 - k][1] : 0.0f) - mean[1];
    }
}

/* A[k], A[M - k] for a bin k MNE edits: from C = X1 + i X2 (L bins), the
 * bins of the two signals X1[k] = (C[k] + conj C[-k]) / 2 and X2[k] =
 * (C[k] - conj C[-k]) / 2i, times `scale`; irfft's view of them (no
 * imaginary part at 0 and at M / 2); then A = Z1 + i Z2 at k and at -k. */
static void special_bin(const fftwf_complex *C, int L, int M, int k,
                        float scale, fftwf_complex *A)
{
    const float *u = C[k], *v = C[(L - k) % L];
    float a = 0.5f * (u[0] + v[0]) * scale, b = 0.5f * (u[1] - v[1]) * scale;
    float c = 0.5f * (u[1] + v[1]) * scale, d = 0.5f * (v[0] - u[0]) * scale;
    if (k == 0 || 2 * k == M)
        b = d = 0.0f;
    A[k][0] = a - d;
    A[k][1] = b + c;
    if (k > 0 && 2 * k != M) {
        A[M - k][0] = a + d;
        A[M - k][1] = c - b;
    }
}

void edf_resample(const edf_resampler *r, const fftwf_complex *x, float *out1,
                  float *out2, int count, fftwf_complex *work)
{
    if (r->identity) {
        for (int i = 0; i < count; i++)
            out1[i] = x[i][0];
        if (out2)
            for (int i = 0; i < count; i++)
                out2[i] = x[i][1];
        return;
    }
    const int n = r->n, L = r->old_len, M = r->new_len;
    const size_t w = edf_fft_round((size_t)(L > M ? L : M));
    fftwf_complex *buf = work, *C = work + w, *dw = work + 2 * w;
    /* the mean is taken out and put back (see edf_filter.c): a constant
     * resamples to itself, if the padding reflects it (npad 'auto' pads
     * less than n on each side) rather than adding zeros */
    double s0 = 0, s1 = 0;
    if (r->pad0 < n && r->pad1 < n) {
#pragma omp simd reduction(+ : s0, s1)
        for (int i = 0; i < n; i++)
            s0 += x[i][0], s1 += x[i][1];
    }
    const float mean[2] = {(float)(s0 / n), (float)(s1 / n)};
    pad(r, x, mean, buf);
    fftwf_execute_dft(r->fwd, buf, C);
    /* A (M bins, in buf) = C cut or zero-extended: bins 0 < k < use / 2 as
     * they are, MNE's edit of the bin at use / 2 (doubled when shortening,
     * halved when lengthening), k = 0 as irfft sees it */
    fftwf_complex *A = buf;
    const int use = M < L ? M : L, h = (use + 1) / 2;
    memcpy(A + 1, C + 1, sizeof(fftwf_complex) * (size_t)(h - 1));
    memset(A + h, 0, sizeof(fftwf_complex) * (size_t)(M - 2 * h + 1));
    memcpy(A + M - h + 1, C + L - h + 1, sizeof(fftwf_complex) * (size_t)(h - 1));
    special_bin(C, L, M, 0, 1.0f, A);
    if (use % 2 == 0)
        special_bin(C, L, M, use / 2, M < L ? 2.0f : 0.5f, A);
    edf_dft_backward(r->inv, A, C, dw);
    /* boxcar window times new/old, irfft's 1/new: 1/old overall */
    const float scale = (float)(1.0 / L);
    const fftwf_complex *y = C + r->trim0;
#pragma omp simd
    for (int i = 0; i < count; i++)
        out1[i] = y[i][0] * scale + mean[0];
    if (out2) {
#pragma omp simd
        for (int i = 0; i < count; i++)
            out2[i] = y[i][1] * scale + mean[1];
    }
}
