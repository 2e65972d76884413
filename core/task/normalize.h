/* Input normalisation of each window's channels, before masking: the four
 * normalisations of BioFoundation's pretraining tasks.
 *
 *   affine   (x − lower) / (upper − lower + 1e-8), lower and upper fixed
 *            values: the seed's RobustQuartileNormalize (util/train_utils.py),
 *            which computes no quantiles despite its name (FEMBA: −20, 20)
 *   quantile per channel, lower and upper are its `quantile_lower` and
 *            `quantile_upper` quantiles (linear interpolation, as
 *            torch.quantile): robust scaling (mspt before 0.2)
 *   zscore   per channel, (x − mean) / (std + 1e-8), std unbiased as
 *            torch.std (LUNA's ChannelWiseNormalize)
 *   minmax   per channel, 2·((x − min) / (max − min + 1e-8) − 0.5), in
 *            [−1, 1] (TinyMyo's MinMaxNormalization)
 *
 * Each row of T samples is one channel of one window.  Arithmetic is float32
 * in PyTorch's order (statistics in double, rounded once), for parity. */
#ifndef MSPT_NORMALIZE_H
#define MSPT_NORMALIZE_H

#include <stddef.h>

#include <mspt/error.h>

typedef enum mspt_norm_mode {
    MSPT_NORM_OFF,
    MSPT_NORM_AFFINE,
    MSPT_NORM_QUANTILE,
    MSPT_NORM_ZSCORE,
    MSPT_NORM_MINMAX
} mspt_norm_mode;

typedef struct mspt_norm {
    mspt_norm_mode mode;
    double lower, upper; /* affine: values; quantile: quantiles in [0, 1] */
} mspt_norm;

/* x (rows, T) in place; scratch holds T floats (quantile mode only). */
void mspt_norm_apply(const mspt_norm *n, float *x, size_t rows, int T,
                     float *scratch);

void mspt_affine_normalize(float *x, size_t rows, int T, double lower,
                           double upper);
void mspt_robust_normalize(float *x, size_t rows, int T, double lower,
                           double upper, float *scratch);
void mspt_zscore_normalize(float *x, size_t rows, int T);
void mspt_minmax_normalize(float *x, size_t rows, int T);

/* The q-quantile of v (n floats, sorted in place). */
double mspt_quantile_sorted(const float *v, int n, double q);

/* ---- configuration (normalize_config.c) ---------------------------------- */

struct mspt_node;

/* BioFoundation's key names input_normalization.quartile_normalization_
 * {lower,upper}_val become lower and upper.  as_written: the tree as the
 * experiment wrote it (before defaults and overrides), where giving both
 * names is an error, and where lower and upper in [0, 1] without a mode
 * are refused: they meant quantiles before mspt 0.2, and an hparams.yaml of
 * then must not silently become an affine map.  Otherwise (after the
 * overrides) an alias replaces the key, as the later word. */
int mspt_norm_aliases(struct mspt_node *root, int as_written, mspt_error *err);

/* The mode and bounds from a resolved input_normalization section, checked. */
int mspt_norm_read(const struct mspt_node *root, mspt_norm *n, mspt_error *err);

#endif
