/* Channel picking by label and the derivations (montage) computed from
 * the picked channels. */
#ifndef MSPT_EDF_MONTAGE_H
#define MSPT_EDF_MONTAGE_H

#include <stddef.h>

#include "edf_reader.h"

/* The 21 referential channels of the TUH recipe and its 22-derivation TCP
 * bipolar montage (DESIGN.md). */
extern const char *const edf_tuh_channels[21];
extern const char *const edf_tcp_pairs[22];

/* key = label in upper case without an "EEG " prefix or a "-REF" / "-LE"
 * suffix, so that "EEG FP1-LE", "EEG Fp1-REF" and "FP1" all read "FP1". */
void edf_channel_key(const char *label, char *key, size_t n);

/* idx[i] = the data signal of f for channels[i]: a label equal to it
 * (ignoring case), else one with the same key.  0, or -1 with err listing
 * every missing channel. */
int edf_pick(const edf_file *f, const char *const *channels, int n, int *idx,
             char *err, size_t errlen);

/* Output channel k = picked channel a[k] - picked channel b[k], or picked
 * channel a[k] alone when b[k] < 0. */
typedef struct edf_montage {
    int n;
    int *a, *b;
} edf_montage;

/* Derivations "A-B" (A and B name entries of channels, by key).  0, or -1
 * with err naming the pair that does not resolve. */
int edf_montage_pairs(edf_montage *m, const char *const *pairs, int npairs,
                      const char *const *channels, int nch, char *err,
                      size_t errlen);
/* The referential channels themselves. */
int edf_montage_none(edf_montage *m, int nch);
void edf_montage_free(edf_montage *m);

#endif
