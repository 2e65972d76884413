/* Zero-phase FIR filtering as MNE 1.3's _overlap_add_filter with its
 * defaults: the signal is extended at both ends by reflection about the end
 * samples ('reflect_limited', len(h) - 1 samples), convolved with the taps,
 * and the filter's delay compensated.  The convolution is done by FFTs of a
 * length of our choosing (overlap-save; the result is the same convolution
 * as MNE's overlap-add), two signals at once as the real and imaginary
 * parts of one complex signal: the taps are real, so the two never mix. */
#ifndef MSPT_EDF_FILTER_H
#define MSPT_EDF_FILTER_H

#include <stddef.h>

#include <fftw3.h>

#include "edf_fir.h"

/* A FIR prepared for signals of length n: its spectrum at the FFT size. */
typedef struct edf_filter {
    int nh, n;        /* taps, signal length */
    int n_edge;       /* samples of reflection at each end */
    int nfft;         /* FFT length; nfft - nh + 1 outputs per FFT */
    double dc;        /* sum of the taps (gain at 0 Hz) */
    fftwf_complex *H; /* nfft bins of the taps, divided by nfft */
    fftwf_plan fwd, inv;
} edf_filter;

/* 0, or -1 when out of memory. */
int edf_filter_prepare(edf_filter *f, const edf_fir *fir, int n);

/* Complex scratch elements edf_filter_apply needs. */
size_t edf_filter_work_size(const edf_filter *f);

/* y (n) = x (n) filtered, x's real and imaginary parts two signals; y may
 * not alias x.  Buffers from fftwf_malloc.  Thread-safe. */
void edf_filter_apply(const edf_filter *f, const fftwf_complex *x,
                      fftwf_complex *y, fftwf_complex *work);

void edf_filter_free(edf_filter *f);

/* The FFT length used for n samples and nh taps (exposed for tests): of
 * the lengths 2^a and 5 * 2^a from 2 nh up (lengths whose FFTW_ESTIMATE
 * plans run about as fast as measured ones), the one with the least
 * N log N work for the blocks that cover the n outputs. */
int edf_filter_nfft(int n, int nh);

#endif
