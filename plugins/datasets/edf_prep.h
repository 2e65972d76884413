/* The preprocessing of one recording, in MNE's order: pick channels →
 * band-pass → notch → resample → units → montage → windows.  Each
 * contiguous run of records (EDF+D) is processed on its own and windows
 * never straddle a gap. */
#ifndef MSPT_EDF_PREP_H
#define MSPT_EDF_PREP_H

#include <stddef.h>
#include <stdint.h>

#include "edf_montage.h"

typedef struct edf_recipe {
    const char *const *channels; /* labels to pick */
    int nch;
    edf_montage montage;         /* over the picked channels */
    double l_freq, h_freq;       /* band-pass; 0 = that side off */
    double notch;                /* Hz; 0 = off */
    double sample_rate;          /* output rate */
    int window, stride;          /* samples */
    double per_uv;               /* output units per microvolt */
    int threads;                 /* pairs of channels processed at once */
} edf_recipe;

typedef struct edf_windows {
    float *data;     /* n windows of (montage.n, window) floats, malloc'd */
    size_t n;
    double seconds;  /* of recording read */
    char warning[1024]; /* repairs of the header (edf_file.warning), or "" */
} edf_windows;

/* Windows of the recording in data[0..size) (name for messages). */
int edf_prep_buffer(const uint8_t *data, size_t size, const char *name,
                    const edf_recipe *r, edf_windows *w, char *err,
                    size_t errlen);
/* The same for a file (mapped, not read). */
int edf_prep_file(const char *path, const edf_recipe *r, edf_windows *w,
                  char *err, size_t errlen);

/* A text naming every parameter of the recipe, for cache keys. */
void edf_recipe_describe(const edf_recipe *r, char *out, size_t n);

#endif
