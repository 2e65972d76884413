/* FFTW single-precision plans for the preprocessing, made once per size and
 * kept for the life of the process.  FFTW's planner is not thread-safe,
 * executing a plan is: plans are made under a lock, then run from any
 * thread with fftwf_execute_dft_r2c / _c2r on buffers from fftwf_malloc. */
#ifndef MSPT_EDF_FFT_H
#define MSPT_EDF_FFT_H

#include <fftw3.h>

/* Real-to-complex of length n (n/2 + 1 outputs), and its inverse
 * (unnormalised: a round trip multiplies by n).  NULL if out of memory. */
fftwf_plan edf_fft_r2c(int n);
fftwf_plan edf_fft_c2r(int n);
/* Complex, backward (e^{+2 pi i k m / n}), unnormalised, out of place
 * (twice as fast as in place for lengths with large prime factors). */
fftwf_plan edf_fft_c2c_backward(int n);

/* FFTW wisdom (the measured plans) kept in a file, e.g. in the cache
 * directory: load before planning, save after; save writes only when a
 * plan was measured since (atomically, through a renamed temporary). */
void edf_fft_wisdom_load(const char *path);
void edf_fft_wisdom_save(const char *path);

#endif
