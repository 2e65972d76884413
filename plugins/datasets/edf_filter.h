/* Zero-phase FIR filtering as MNE 1.3's _overlap_add_filter with its
 * defaults: the signal is extended at both ends by reflection about the end
 * samples ('reflect_limited', len(h) - 1 samples), convolved by overlap-add
 * FFTs, and the filter's delay compensated. */
#ifndef MSPT_EDF_FILTER_H
#define MSPT_EDF_FILTER_H

#include <fftw3.h>

#include "edf_fir.h"

/* A FIR prepared for signals of length n: its spectrum at MNE's FFT size. */
typedef struct edf_filter {
    int nh, n;    /* taps, signal length */
    int n_edge;   /* samples of padding at each end */
    int nfft;
    double dc;    /* sum of the taps (gain at 0 Hz) */
    fftwf_complex *H; /* nfft / 2 + 1 bins of the taps */
    fftwf_plan fwd, inv;
} edf_filter;

/* 0, or -1 when out of memory. */
int edf_filter_prepare(edf_filter *f, const edf_fir *fir, int n);

/* x (n) = filtered x; thread-safe for a prepared filter.  0, or -1 when out
 * of memory. */
int edf_filter_apply(const edf_filter *f, float *x);

void edf_filter_free(edf_filter *f);

/* MNE's FFT length for n_x padded samples and nh taps (exposed for tests). */
int edf_filter_nfft(int n_x, int nh);

#endif
