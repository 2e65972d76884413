/* datasets.edf's signal processing against double-precision references
 * written here from the definitions: the DFT of any length (edf_fft.c:
 * FFTW, four-step, Bluestein), the paired overlap-save FIR filter against
 * a direct convolution of MNE's reflect-extended signal, the paired FFT
 * resampling against MNE's algorithm evaluated by direct sums; and the
 * whole recipe giving the same bytes on 1, 2 and 3 threads. */
#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../plugins/datasets/edf_fft.h"
#include "../plugins/datasets/edf_filter.h"
#include "../plugins/datasets/edf_fir.h"
#include "../plugins/datasets/edf_montage.h"
#include "../plugins/datasets/edf_prep.h"
#include "../plugins/datasets/edf_resample.h"
#include "tap.h"

static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static double uniform(void) /* in [-0.5, 0.5) */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) / 9007199254740992.0 - 0.5;
}

/* ---- edf_dft ------------------------------------------------------------ */

/* The backward DFT of x (n complex floats) at the outputs k in ks (nk of
 * them), in double; tab[m] = e^{2 pi i m / n} with exact angles. */
static void dft_ref(const fftwf_complex *x, int n, const int *ks, int nk,
                    double *out)
{
    double *tab = malloc(2 * sizeof(double) * (size_t)n);
    for (int m = 0; m < n; m++) {
        tab[2 * m] = cos(2 * M_PI * m / n);
        tab[2 * m + 1] = sin(2 * M_PI * m / n);
    }
    for (int i = 0; i < nk; i++) {
        double re = 0, im = 0;
        int m = 0; /* j k mod n */
        for (int j = 0; j < n; j++, m = m + ks[i] >= n ? m + ks[i] - n : m + ks[i]) {
            re += x[j][0] * tab[2 * m] - x[j][1] * tab[2 * m + 1];
            im += x[j][0] * tab[2 * m + 1] + x[j][1] * tab[2 * m];
        }
        out[2 * i] = re;
        out[2 * i + 1] = im;
    }
    free(tab);
}

/* Relative RMS error of edf_dft of length n over at most 256 outputs. */
static double dft_err(int n)
{
    const edf_dft *d = edf_dft_get(n);
    if (!d)
        return INFINITY;
    fftwf_complex *x = fftwf_malloc(sizeof *x * (size_t)n);
    fftwf_complex *x0 = fftwf_malloc(sizeof *x * (size_t)n);
    fftwf_complex *y = fftwf_malloc(sizeof *y * (size_t)n);
    fftwf_complex *w = fftwf_malloc(sizeof *w * (edf_dft_work_size(d) + 1));
    for (int j = 0; j < n; j++)
        x0[j][0] = (float)uniform(), x0[j][1] = (float)uniform();
    memcpy(x, x0, sizeof *x * (size_t)n);
    edf_dft_backward(d, x, y, w);
    int nk = n < 256 ? n : 256, ks[256];
    for (int i = 0; i < nk; i++) /* all outputs, or a spread with both ends */
        ks[i] = n <= 256 ? i : (int)((long long)i * (n - 1) / (nk - 1));
    double *want = malloc(2 * sizeof(double) * (size_t)nk), e = 0, s = 0;
    dft_ref(x0, n, ks, nk, want);
    for (int i = 0; i < nk; i++) {
        double dr = y[ks[i]][0] - want[2 * i], di = y[ks[i]][1] - want[2 * i + 1];
        e += dr * dr + di * di;
        s += want[2 * i] * want[2 * i] + want[2 * i + 1] * want[2 * i + 1];
    }
    free(want);
    fftwf_free(x), fftwf_free(x0), fftwf_free(y), fftwf_free(w);
    return sqrt(e / s);
}

static void check_dft(void)
{
    static const struct {
        int n;
        const char *why;
    } cases[] = {
        {1, "1"},
        {2, "2"},
        {4096, "2^12: FFTW alone"},
        {1000, "2^3 5^3: FFTW alone"},
        {17, "prime 17: Bluestein alone"},
        {1451, "prime 1451: Bluestein alone"},
        {2097, "3^2 233: Bluestein columns, FFTW rows"},
        {7585, "5 37 41: Bluestein columns and rows"},
        {969, "3 17 19: Bluestein columns and rows"},
        {268435, "5 37 1451, MNE's length for 17 min at 250 -> 256 Hz"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double e = dft_err(cases[i].n);
        ok(e < 2e-6, "DFT of length %d (%s) vs double: rel RMS %.2g",
           cases[i].n, cases[i].why, e);
    }
    ok(edf_dft_get(268435) == edf_dft_get(268435),
       "edf_dft_get keeps one transform per length");
}

/* ---- edf_filter ----------------------------------------------------------- */

/* MNE's filtering of x (n) by h (nh) in double: x extended by
 * min(nh, n) - 1 samples of reflection about each end sample, convolved,
 * the delay compensated. */
static void filter_ref(const double *h, int nh, const double *x, int n,
                       double *y)
{
    int ne = (nh < n ? nh : n) - 1, nx = n + 2 * ne;
    double *ext = malloc(sizeof(double) * (size_t)nx);
    for (int i = 0; i < n; i++)
        ext[ne + i] = x[i];
    for (int k = 1; k <= ne; k++) {
        ext[ne - k] = 2 * x[0] - x[k];
        ext[ne + n - 1 + k] = 2 * x[n - 1] - x[n - 1 - k];
    }
    int shift = (nh - 1) / 2 + ne;
    for (int j = 0; j < n; j++) {
        double s = 0;
        for (int i = 0; i < nh; i++) {
            int e = j + shift - i;
            if (e >= 0 && e < nx)
                s += h[i] * ext[e];
        }
        y[j] = s;
    }
    free(ext);
}

/* Worst relative RMS error of both signals of a pair filtered by fir
 * (length n, a DC offset of `dc` on the first signal). */
static double filter_err(const edf_fir *fir, int n, double dc, int *nfft)
{
    edf_filter f;
    if (edf_filter_prepare(&f, fir, n))
        return INFINITY;
    *nfft = f.nfft;
    fftwf_complex *x = fftwf_malloc(sizeof *x * (size_t)n);
    fftwf_complex *y = fftwf_malloc(sizeof *y * (size_t)n);
    fftwf_complex *w = fftwf_malloc(sizeof *w * edf_filter_work_size(&f));
    double *a = malloc(sizeof(double) * (size_t)n * 4), *b = a + n;
    double *ya = b + n, *yb = ya + n;
    for (int i = 0; i < n; i++) { /* a: offset, slow wave, noise; b: noise */
        x[i][0] = (float)(dc + 30 * sin(0.01 * i) + 10 * uniform());
        x[i][1] = (float)(20 * uniform());
        a[i] = x[i][0], b[i] = x[i][1];
    }
    edf_filter_apply(&f, x, y, w);
    filter_ref(fir->h, fir->n, a, n, ya);
    filter_ref(fir->h, fir->n, b, n, yb);
    double worst = 0;
    for (int c = 0; c < 2; c++) {
        const double *want = c ? yb : ya;
        double e = 0, s = 0;
        for (int i = 0; i < n; i++) {
            e += (y[i][c] - want[i]) * (y[i][c] - want[i]);
            s += want[i] * want[i];
        }
        worst = fmax(worst, sqrt(e / s));
    }
    free(a);
    fftwf_free(x), fftwf_free(y), fftwf_free(w);
    edf_filter_free(&f);
    return worst;
}

static void check_filter(void)
{
    char err[256];
    edf_fir bp, notch;
    if (edf_fir_bandpass(250, 1, 40, &bp, err, sizeof err) ||
        edf_fir_notch(250, 60, &notch, err, sizeof err)) {
        ok(0, "FIR design: %s", err);
        return;
    }
    int nfft;
    double e = filter_err(&bp, 20000, 500, &nfft);
    ok(e < 1e-5, "band-pass 1-40 Hz (%d taps), 20000 samples with a 500 uV "
       "offset, paired, %d blocks of %d: rel RMS vs direct convolution %.2g",
       bp.n, (20000 + nfft - bp.n) / (nfft - bp.n + 1), nfft, e);
    e = filter_err(&notch, 1500, 0, &nfft);
    ok(e < 1e-5, "notch 60 Hz (%d taps), 1500 samples: rel RMS %.2g", notch.n,
       e);
    e = filter_err(&bp, 300, 20, &nfft);
    ok(e < 1e-5, "signal shorter than the filter (300 samples, %d taps; "
       "reflection limited to 299): rel RMS %.2g", bp.n, e);
    ok(edf_filter_nfft(255000, 8251) == 40960 &&
       edf_filter_nfft(255000, 1651) == 10240,
       "FFT lengths for 17 min at 250 Hz: 40960 for 8251 taps, 10240 for "
       "1651 (got %d, %d)", edf_filter_nfft(255000, 8251),
       edf_filter_nfft(255000, 1651));
    ok(edf_filter_nfft(300, 8251) == 20480,
       "one block when the signal is short: %d", edf_filter_nfft(300, 8251));
    edf_fir_free(&bp);
    edf_fir_free(&notch);
}

/* ---- edf_resample ----------------------------------------------------------- */

/* MNE's resample of x (n) from `from` to `to` Hz in double (mne/filter.py
 * resample with npad 'auto', boxcar window; mne/cuda.py _fft_resample):
 * reflect-limited padding, rfft by direct sums, the bin at use / 2 times 2
 * (shortening) or 1/2 (lengthening), irfft at the new length by direct
 * sums (numpy's: bins past M / 2 dropped, imaginary parts at 0 and M / 2
 * ignored), times new / old, trimmed. */
static void resample_ref(const edf_resampler *r, const double *x, double *y)
{
    const int n = r->n, L = r->old_len, M = r->new_len, nb = L / 2 + 1;
    double *pad = malloc(sizeof(double) * (size_t)L), *X = malloc(2 * sizeof(double) * (size_t)nb);
    for (int k = 0; k < r->pad0; k++) {
        int j = r->pad0 - k; /* distance from x[0] */
        pad[k] = j < n ? 2 * x[0] - x[j] : 0;
    }
    for (int i = 0; i < n; i++)
        pad[r->pad0 + i] = x[i];
    for (int k = 1; k <= r->pad1; k++)
        pad[r->pad0 + n - 1 + k] = k < n ? 2 * x[n - 1] - x[n - 1 - k] : 0;
    for (int k = 0; k < nb; k++) {
        double re = 0, im = 0;
        for (int j = 0; j < L; j++) {
            double a = -2 * M_PI * (double)((long long)j * k % L) / L;
            re += pad[j] * cos(a), im += pad[j] * sin(a);
        }
        X[2 * k] = re, X[2 * k + 1] = im;
    }
    int use = M < L ? M : L;
    if (use % 2 == 0) {
        X[use] *= M < L ? 2 : 0.5; /* bin use / 2 */
        X[use + 1] *= M < L ? 2 : 0.5;
    }
    for (int i = 0; i < r->out_len; i++) {
        long long j = r->trim0 + i;
        double s = X[0];
        for (int k = 1; k <= M / 2 && k < nb; k++) {
            double a = 2 * M_PI * (double)(j * k % M) / M;
            double c = X[2 * k] * cos(a) - X[2 * k + 1] * sin(a);
            s += 2 * k == M ? X[2 * k] * cos(a) : 2 * c;
        }
        y[i] = s / L; /* irfft's 1 / M times new / old */
    }
    free(pad);
    free(X);
}

static void check_resample(void)
{
    static const struct {
        int n;
        double from, to;
        const char *why;
    } cases[] = {
        {1000, 250, 256, "lengthening, M = 2097 = 3^2 233 (four-step)"},
        {777, 500, 200, "shortening, M = 410 even (its Nyquist bin doubled)"},
        {1500, 512, 256, "halving, M = 1024 (FFTW alone)"},
        {3, 250, 256, "3 samples"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        edf_resampler r;
        int n = cases[c].n;
        if (edf_resample_plan(&r, n, cases[c].from, cases[c].to)) {
            ok(0, "resample plan %s", cases[c].why);
            continue;
        }
        fftwf_complex *x = fftwf_malloc(sizeof *x * (size_t)n);
        fftwf_complex *w = fftwf_malloc(sizeof *w * edf_resample_work_size(&r));
        double *a = malloc(sizeof(double) * (size_t)(2 * n + 2 * r.out_len));
        double *b = a + n, *ya = b + n, *yb = ya + r.out_len;
        float *o1 = malloc(sizeof(float) * (size_t)r.out_len * 3);
        float *o2 = o1 + r.out_len, *o3 = o2 + r.out_len;
        for (int i = 0; i < n; i++) {
            a[i] = 80 + 40 * sin(0.05 * i) + 5 * uniform();
            b[i] = -30 + 10 * uniform();
            x[i][0] = (float)a[i], x[i][1] = (float)b[i];
        }
        edf_resample(&r, x, o1, o2, r.out_len, w);
        for (int i = 0; i < n; i++) /* a alone: no second signal */
            x[i][1] = 0.0f;
        edf_resample(&r, x, o3, NULL, r.out_len, w);
        resample_ref(&r, a, ya);
        resample_ref(&r, b, yb);
        double worst = 0;
        for (int s = 0; s < 3; s++) {
            const double *want = s == 1 ? yb : ya;
            const float *got = s == 0 ? o1 : s == 1 ? o2 : o3;
            double e = 0, t = 0;
            for (int i = 0; i < r.out_len; i++) {
                e += (got[i] - want[i]) * (got[i] - want[i]);
                t += want[i] * want[i];
            }
            worst = fmax(worst, sqrt(e / t));
        }
        ok(worst < 1e-5, "resample %d samples %g -> %g Hz (%s; L %d, M %d, %d "
           "out), a pair and one alone vs double: rel RMS %.2g", n,
           cases[c].from, cases[c].to, cases[c].why, r.old_len, r.new_len,
           r.out_len, worst);
        free(a);
        free(o1);
        fftwf_free(x), fftwf_free(w);
    }
}

/* ---- threads ------------------------------------------------------------- */

static void check_threads(void)
{
    char path[4200], err[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/edf_synth.edf",
             getenv("MSPT_SRCDIR") ? getenv("MSPT_SRCDIR") : ".");
    const char *ch[] = {"FP1", "FP2", "C3", "O1", "X1"};
    edf_windows w[3];
    int rc = 0;
    for (int t = 0; t < 3; t++) {
        edf_recipe r = {ch, 5, {0}, 1, 40, 50, 256, 512, 256, 1.0, t + 1};
        edf_montage_none(&r.montage, 5);
        rc |= edf_prep_file(path, &r, &w[t], err, sizeof err);
        edf_montage_free(&r.montage);
    }
    ok(!rc && w[0].n > 2 && w[1].n == w[0].n && w[2].n == w[0].n &&
       !memcmp(w[0].data, w[1].data, w[0].n * 5 * 512 * sizeof(float)) &&
       !memcmp(w[0].data, w[2].data, w[0].n * 5 * 512 * sizeof(float)),
       "5 channels (2 pairs and one alone) on 1, 2, 3 threads: the same bytes "
       "(%zu windows) %s", w[0].n, rc ? err : "");
    edf_windows again;
    edf_recipe r = {ch, 5, {0}, 1, 40, 50, 256, 512, 256, 1.0, 2};
    edf_montage_none(&r.montage, 5);
    rc |= edf_prep_file(path, &r, &again, err, sizeof err);
    edf_montage_free(&r.montage);
    ok(!rc && again.n == w[1].n &&
       !memcmp(again.data, w[1].data, again.n * 5 * 512 * sizeof(float)),
       "2 threads, run again: the same bytes");
    free(again.data);
    for (int t = 0; t < 3; t++)
        free(w[t].data);
}

int main(void)
{
    check_dft();
    check_filter();
    check_resample();
    check_threads();
    return tap_done();
}
