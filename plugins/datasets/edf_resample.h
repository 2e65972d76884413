/* Resampling as MNE 1.3's Raw.resample(sfreq) with its defaults (npad
 * 'auto', window 'boxcar', pad 'reflect_limited'): pad to a power of two by
 * reflection about the end samples, FFT, keep (or zero-extend) the low
 * bins, inverse FFT at the new length, trim the padding.
 *
 * At the same rate nothing is done: like BioFoundation's
 * make_datasets/process_raw_eeg.py, which calls resample() only when the
 * rate differs (MNE's resample at ratio 1 is not the identity: it halves
 * the Nyquist bin and rounds through two FFTs). */
#ifndef MSPT_EDF_RESAMPLE_H
#define MSPT_EDF_RESAMPLE_H

#include <stddef.h>

#include <fftw3.h>

#include "edf_fft.h"

/* The plan for n samples from rate `from` to rate `to`. */
typedef struct edf_resampler {
    int n, out_len;       /* samples in, samples out */
    int identity;         /* same rate: a copy */
    int pad0, pad1;       /* reflection padding before / after */
    int old_len, new_len; /* FFT lengths: padded input, resampled padded */
    int trim0;            /* output samples dropped at the start */
    fftwf_plan fwd;       /* old_len, forward */
    const edf_dft *inv;   /* new_len, backward: often awkward (268435 =
                           * 5 * 37 * 1451 for 17 min at 250 -> 256 Hz) */
} edf_resampler;

/* 0, or -1 when n or the output length is out of range or out of memory. */
int edf_resample_plan(edf_resampler *r, int n, double from, double to);

/* Complex scratch elements edf_resample needs. */
size_t edf_resample_work_size(const edf_resampler *r);

/* out1, out2 (the first count <= out_len samples) = the real and
 * imaginary parts of x (n), two signals, resampled: a pair shares each
 * transform (the spectrum of x1 + i x2 is X1 + i X2, and MNE's bin edits
 * are done on X1 and X2).  out2 may be NULL.  x and work from
 * fftwf_malloc.  Thread-safe. */
void edf_resample(const edf_resampler *r, const fftwf_complex *x, float *out1,
                  float *out2, int count, fftwf_complex *work);

#endif
