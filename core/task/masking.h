/* Patch masking of (channels × time) windows.
 *
 * A window is tiled by non-overlapping H×W patches starting at (0, 0):
 * GH = ⌊C/H⌋ patch rows, GW = ⌊T/W⌋ patch columns.  ⌊GH·GW·ratio⌋ patches,
 * chosen uniformly without replacement, are masked; rows and columns left
 * over when C or T is not a multiple of H or W are never masked.  One mask
 * per sample, or with per_batch one mask shared by the whole batch (the
 * reference code's behaviour). */
#ifndef MSPT_MASKING_H
#define MSPT_MASKING_H

#include <stddef.h>
#include <stdint.h>

#include <mspt/error.h>
#include <mspt/tensor.h>

typedef struct mspt_masker {
    int ph, pw;       /* patch H, W */
    double ratio;
    int per_batch;
    int C, T, GH, GW;
    int *order;       /* GH·GW scratch for the shuffle */
} mspt_masker;

int mspt_masker_init(mspt_masker *m, int ph, int pw, double ratio,
                     int per_batch, int C, int T, mspt_error *err);
void mspt_masker_free(mspt_masker *m);
/* Patches masked per window. */
int mspt_masker_count(const mspt_masker *m);
/* mask (B, C, T) bytes, 1 = masked. */
void mspt_masker_fill(mspt_masker *m, int B, mspt_rng *rng, uint8_t *mask);
/* x (n floats) with masked entries set to zero, into out. */
void mspt_mask_apply(const float *x, const uint8_t *mask, size_t n, float *out);

#endif
