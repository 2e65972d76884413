/* Resampling as MNE 1.3's Raw.resample(sfreq) with its defaults (npad
 * 'auto', window 'boxcar', pad 'reflect_limited'): pad to a power of two by
 * reflection about the end samples, FFT, keep (or zero-extend) the low
 * bins, inverse FFT at the new length, trim the padding. */
#ifndef MSPT_EDF_RESAMPLE_H
#define MSPT_EDF_RESAMPLE_H

/* The plan for n samples from rate `from` to rate `to`. */
typedef struct edf_resampler {
    int n, out_len;       /* samples in, samples out */
    int pad0, pad1;       /* reflection padding before / after */
    int old_len, new_len; /* FFT lengths: padded input, resampled padded */
    int trim0;            /* output samples dropped at the start */
} edf_resampler;

/* 0, or -1 when n or the output length is out of range. */
int edf_resample_plan(edf_resampler *r, int n, double from, double to);

/* out1 (out_len) = x1 (n) resampled, and out2 = x2 unless x2 is NULL.
 * Two signals share one complex inverse transform: its length is often
 * awkward (268435 = 5·37·1451 for 17 min at 250 → 256 Hz) and FFTW's
 * complex transform of such a length costs about what its real one does,
 * so pairing halves the cost per signal.  Thread-safe.  0, or -1 if out of
 * memory. */
int edf_resample(const edf_resampler *r, const float *x1, const float *x2,
                 float *out1, float *out2);

#endif
