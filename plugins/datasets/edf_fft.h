/* FFTs for the preprocessing: FFTW single-precision plans, made once per
 * size and kept for the life of the process, and the DFT of any length
 * built from them (edf_dft).  FFTW's planner is not thread-safe,
 * executing a plan is: plans are made under a lock, then run from any
 * thread with fftwf_execute_dft on buffers from fftwf_malloc (or rows of
 * such a buffer 64 bytes apart, the alignment they were planned with).
 * All plans are FFTW_ESTIMATE: no timing runs, so planning takes
 * microseconds and gives the same plan, hence the same bytes, every run.
 * (FFTW_MEASURE ran the TUH recipe 10% faster, but planned for 7 s, and
 * its plans depend on timings.) */
#ifndef MSPT_EDF_FFT_H
#define MSPT_EDF_FFT_H

#include <stddef.h>

#include <fftw3.h>

/* Complex transform of length n, sign FFTW_FORWARD (e^{-2 pi i k m / n})
 * or FFTW_BACKWARD (e^{+...}), unnormalised, out of place (faster than in
 * place here, and FFTW's in-place plans may allocate on each run).  NULL
 * if out of memory. */
fftwf_plan edf_fft_c2c(int n, int sign);

/* n rounded up to a multiple of 8 complex elements (64 bytes): scratch
 * buffers carved out of one fftwf_malloc block at such offsets keep the
 * alignment the plans were made with, which new-array execute requires. */
static inline size_t edf_fft_round(size_t n)
{
    return (n + 7) / 8 * 8;
}

/* Backward complex DFT of any length n, in single precision:
 *     y[k] = sum_j x[j] e^{+2 pi i j k / n},  k = 0 .. n-1 (unnormalised).
 * FFTW is fast when n's prime factors are small and several times slower
 * when one is large: MNE's resampling of 17 min of EEG from 250 to 256 Hz
 * needs n = 268435 = 5 * 37 * 1451.  Such an n is split as n = p * q, p its
 * largest prime factor (one Cooley-Tukey step); a factor whose own primes
 * are not all small is transformed as a Bluestein chirp-z convolution
 * through FFTW transforms of length 2^a or 3 * 2^a: 5.4 ms for 268435
 * here, against 10.8 ms for FFTW_ESTIMATE's own plan and 6.5 ms for
 * FFTW_MEASURE's (after 2 s of planning); its tables take a few
 * milliseconds, once per process. */
typedef struct edf_dft edf_dft;

/* The transform of length n (n >= 1), made once per process and shared
 * (read-only) by all threads; NULL if out of memory. */
const edf_dft *edf_dft_get(int n);

/* Complex scratch elements edf_dft_backward needs (per thread). */
size_t edf_dft_work_size(const edf_dft *d);

/* y (n) = backward DFT of x (n); x is overwritten, work holds
 * edf_dft_work_size(d) elements.  Buffers from fftwf_malloc; y may not
 * alias x.  Thread-safe. */
void edf_dft_backward(const edf_dft *d, fftwf_complex *x, fftwf_complex *y,
                      fftwf_complex *work);

#endif
