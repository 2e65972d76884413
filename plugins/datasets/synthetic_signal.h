/* The signal model of datasets.synthetic: EEG-like windows computed from
 * (seed, window index) alone, so any window can be made on its own, in any
 * order, from any thread.  See synthetic_signal.c for what a window holds. */
#ifndef SYNTHETIC_SIGNAL_H
#define SYNTHETIC_SIGNAL_H

#include <stdint.h>

#define SYNTH_PINK_POLES 6

typedef struct synth_model {
    uint64_t seed;
    int channels, samples;
    double sample_rate;                  /* Hz */
    double background;                   /* µV, std of the 1/f background */
    double alpha;                        /* µV, burst peak, occipital */
    double line, line_freq;              /* µV amplitude, Hz */
    double spike_rate, spike_amp;        /* per second, µV */
    double blink_rate, blink_amp;        /* per second, µV */
    /* derived by synth_model_prepare */
    double pink_a[SYNTH_PINK_POLES];     /* AR(1) pole of each component */
    double pink_b[SYNTH_PINK_POLES];     /* its innovation gain */
} synth_model;

/* Fill the derived fields once the user-facing ones are set. */
void synth_model_prepare(synth_model *m);

/* Window `index` (channels, samples) in µV into out; reads m only. */
void synth_window(const synth_model *m, uint64_t index, float *out);

#endif
