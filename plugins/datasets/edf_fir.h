/* FIR filter design exactly as MNE 1.3's create_filter with its defaults
 * (method 'fir', phase 'zero', fir_window 'hamming', fir_design 'firwin',
 * filter_length, l_trans_bandwidth and h_trans_bandwidth 'auto'), and
 * notch_filter's default notch widths (freq / 200, trans_bandwidth 1 Hz).
 * Pure arithmetic in double precision; the taps are applied by edf_filter. */
#ifndef MSPT_EDF_FIR_H
#define MSPT_EDF_FIR_H

#include <stddef.h>

typedef struct edf_fir {
    int n;     /* odd number of taps; 0 = no filter */
    double *h; /* n taps, symmetric */
} edf_fir;

/* Band-pass l_freq..h_freq at sfreq; l_freq 0 = low-pass only, h_freq 0 =
 * high-pass only, both 0 = no filter (n = 0).  0, or -1 with err filled
 * (a cut-off at or above Nyquist, l_freq >= h_freq). */
int edf_fir_bandpass(double sfreq, double l_freq, double h_freq, edf_fir *f,
                     char *err, size_t errlen);

/* Notch (band-stop) at freq Hz as MNE's notch_filter(freq). */
int edf_fir_notch(double sfreq, double freq, edf_fir *f, char *err,
                  size_t errlen);

/* scipy.signal.firwin(n, cutoff, window='hamming') low-pass, cutoff as a
 * fraction of Nyquist; n odd.  Exposed for tests. */
void edf_firwin_lowpass(int n, double cutoff, double *h);

void edf_fir_free(edf_fir *f);

#endif
