/* RobustQuartileNormalize of the reference pipeline: per sample and
 * channel, x ← (x − q_lower) / (q_upper − q_lower + 1e-8), where q_lower and
 * q_upper are the `lower` and `upper` quantiles of that channel's samples
 * (linear interpolation, as torch.quantile). */
#ifndef MSPT_NORMALIZE_H
#define MSPT_NORMALIZE_H

#include <stddef.h>

/* x (rows, T) in place; scratch holds T floats. */
void mspt_robust_normalize(float *x, size_t rows, int T, double lower,
                           double upper, float *scratch);
/* The q-quantile of v (n floats, sorted in place). */
double mspt_quantile_sorted(const float *v, int n, double q);

#endif
