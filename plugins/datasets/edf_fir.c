/* MNE 1.3's FIR design (mne/filter.py: _triage_filter_params,
 * create_filter, _firwin_design; scipy's firwin and hamming window),
 * transcribed step by step so that the taps agree to rounding. */
#include "edf_fir.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define PI 3.14159265358979323846
#define HAMMING_LENGTH_FACTOR 3.3 /* MNE's _length_factors['hamming'] */

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

/* numpy.sinc */
static double sinc(double x)
{
    double y = PI * (x == 0 ? 1e-20 : x);
    return sin(y) / y;
}

void edf_firwin_lowpass(int n, double cutoff, double *h)
{
    double alpha = 0.5 * (n - 1), sum = 0;
    /* scipy's symmetric hamming: 0.54 + 0.46 cos(fac), fac = linspace(-pi, pi) */
    double step = n > 1 ? 2 * PI / (n - 1) : 0;
    for (int i = 0; i < n; i++) {
        double m = i - alpha;
        double fac = i == n - 1 && n > 1 ? PI : -PI + i * step;
        double w = n > 1 ? 0.54 + 0.46 * cos(fac) : 1.0;
        h[i] = cutoff * sinc(cutoff * m) * w;
        sum += h[i];
    }
    for (int i = 0; i < n; i++) /* unit gain at DC (firwin's scale=True) */
        h[i] /= sum;
}

/* Python's int(round(x)): halves to even, as nearbyint in the default mode. */
static long pyround(double x)
{
    return (long)nearbyint(x);
}

/* MNE's _firwin_design: N taps meeting the piecewise-constant gain given at
 * frequencies freq[0] = 0 < ... < freq[k-1] = 1 (fractions of Nyquist),
 * each gain 0 or 1, as a sum of windowed-sinc low-passes centred in each
 * transition, each as long as its own transition needs. */
static int firwin_design(int N, const double *freq, const double *gain, int k,
                         double sfreq, double *h, char *err, size_t errlen)
{
    for (int i = 0; i < N; i++)
        h[i] = 0;
    double prev_freq = freq[k - 1], prev_gain = gain[k - 1];
    if (gain[k - 1] == 1)
        h[N / 2] = 1;
    double *lp = malloc((size_t)N * sizeof *lp);
    if (!lp)
        return fail(err, errlen, "filter design: out of memory");
    for (int j = k - 2; j >= 0; j--) {
        if (gain[j] != prev_gain) {
            double transition = (prev_freq - freq[j]) / 2.;
            long n = pyround(HAMMING_LENGTH_FACTOR / transition);
            n += 1 - n % 2;
            if (n > N) {
                free(lp);
                return fail(err, errlen, "filter design: %d taps are too "
                            "short for a %.2f Hz transition band, which needs "
                            "%ld", N, transition * sfreq / 2., n);
            }
            edf_firwin_lowpass((int)n, (prev_freq + freq[j]) / 2., lp);
            int off = (N - (int)n) / 2;
            for (int i = 0; i < n; i++)
                h[off + i] += gain[j] == 0 ? -lp[i] : lp[i];
        }
        prev_gain = gain[j];
        prev_freq = freq[j];
    }
    free(lp);
    return 0;
}

/* MNE's filter_length='auto': 3.3 / (narrowest transition) seconds, in
 * samples rounded up, made odd. */
static int auto_length(double sfreq, double min_trans)
{
    double seconds = HAMMING_LENGTH_FACTOR * 1.0 / min_trans;
    long n = (long)ceil(seconds * 1 * sfreq);
    if (n < 1)
        n = 1;
    n += (n - 1) % 2;
    return (int)n;
}

/* Design from band edges in Hz (freq[0] = 0, freq[k-1] = Nyquist). */
static int design(double sfreq, const double *freq_hz, const double *gain,
                  int k, int N, edf_fir *f, char *err, size_t errlen)
{
    double freq[8];
    for (int i = 0; i < k; i++)
        freq[i] = freq_hz[i] / (sfreq / 2.);
    f->h = malloc((size_t)N * sizeof *f->h);
    if (!f->h)
        return fail(err, errlen, "filter design: out of memory");
    f->n = N;
    if (firwin_design(N, freq, gain, k, sfreq, f->h, err, errlen)) {
        edf_fir_free(f);
        return -1;
    }
    return 0;
}

int edf_fir_bandpass(double sfreq, double l_freq, double h_freq, edf_fir *f,
                     char *err, size_t errlen)
{
    f->n = 0;
    f->h = NULL;
    double nyq = sfreq / 2.;
    if (h_freq > 0 && h_freq >= nyq)
        return fail(err, errlen, "h_freq %g Hz must be below the Nyquist "
                    "frequency %g Hz of a %g Hz signal", h_freq, nyq, sfreq);
    if (l_freq > 0 && h_freq > 0 && l_freq >= h_freq)
        return fail(err, errlen, "l_freq %g Hz must be below h_freq %g Hz",
                    l_freq, h_freq);
    if (l_freq > 0 && l_freq >= nyq)
        return fail(err, errlen, "l_freq %g Hz must be below the Nyquist "
                    "frequency %g Hz of a %g Hz signal", l_freq, nyq, sfreq);
    if (l_freq <= 0 && h_freq <= 0)
        return 0;
    double l_trans = INFINITY, h_trans = INFINITY, l_stop = 0, h_stop = 0;
    if (l_freq > 0) {
        l_trans = fmin(fmax(0.25 * l_freq, 2.), l_freq);
        l_stop = l_freq - l_trans;
    }
    if (h_freq > 0) {
        h_trans = fmin(fmax(0.25 * h_freq, 2.), nyq - h_freq);
        h_stop = h_freq + h_trans;
    }
    double freq[6], gain[6];
    int k = 0;
    if (l_freq > 0 && h_freq > 0) { /* band-pass */
        if (l_stop != 0)
            freq[k] = 0, gain[k++] = 0;
        freq[k] = l_stop, gain[k++] = 0;
        freq[k] = l_freq, gain[k++] = 1;
        freq[k] = h_freq, gain[k++] = 1;
        freq[k] = h_stop, gain[k++] = 0;
        if (h_stop != nyq)
            freq[k] = nyq, gain[k++] = 0;
    } else if (l_freq > 0) { /* high-pass */
        if (l_stop != 0)
            freq[k] = 0, gain[k++] = 0;
        freq[k] = l_stop, gain[k++] = 0;
        freq[k] = l_freq, gain[k++] = 1;
        freq[k] = nyq, gain[k++] = 1;
    } else { /* low-pass */
        freq[k] = 0, gain[k++] = 1;
        freq[k] = h_freq, gain[k++] = 1;
        freq[k] = h_stop, gain[k++] = 0;
        if (h_stop != nyq)
            freq[k] = nyq, gain[k++] = 0;
    }
    return design(sfreq, freq, gain, k, auto_length(sfreq, fmin(l_trans, h_trans)),
                  f, err, errlen);
}

int edf_fir_notch(double sfreq, double freq0, edf_fir *f, char *err,
                  size_t errlen)
{
    f->n = 0;
    f->h = NULL;
    double nyq = sfreq / 2.;
    /* notch_filter: widths freq/200, trans_bandwidth 1 → a band-stop from
     * filter_data(highs, lows) with both transitions tb_2 */
    double nw = freq0 / 200.0, tb_2 = 1.0 / 2.0;
    double low = freq0 - nw / 2.0 - tb_2, high = freq0 + nw / 2.0 + tb_2;
    /* _triage_filter_params(l_freq=low, h_freq=high, reverse=True) */
    double l_stop = low - tb_2, h_stop = high + tb_2, l_pass = low,
           h_pass = high;
    l_stop += tb_2;
    l_pass += tb_2;
    h_stop -= tb_2;
    h_pass -= tb_2;
    if (h_pass >= nyq || high >= nyq)
        return fail(err, errlen, "notch %g Hz: the band up to %g Hz must lie "
                    "below the Nyquist frequency %g Hz of a %g Hz signal",
                    freq0, high, nyq, sfreq);
    if (l_stop <= 0)
        return fail(err, errlen, "notch %g Hz is too low (its band starts "
                    "at %g Hz)", freq0, l_stop);
    /* outputs swapped: f_s1, f_s2, f_p1, f_p2 = l_pass, h_pass, l_stop, h_stop */
    double freq[6] = {0, l_stop, l_pass, h_pass, h_stop, nyq};
    double gain[6] = {1, 1, 0, 0, 1, 1};
    return design(sfreq, freq, gain, 6, auto_length(sfreq, tb_2), f, err,
                  errlen);
}

void edf_fir_free(edf_fir *f)
{
    free(f->h);
    f->h = NULL;
    f->n = 0;
}
