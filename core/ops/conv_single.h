/* 2-D correlation of one channel with one kernel, stride 1 (conv2d with
 * Cin = Cout = 1: FEMBA's 31×31 dec_conv), register-blocked.  Private to
 * core/ops; conv2d.c calls these per batch item, inside its thread blocks.
 *
 * Shapes: x (IH, IW), w (kh, kw), y (OH, OW), padding (ph, pw):
 *   y[oh, ow] = b + Σ_{i,j} w[i, j] · x[oh + i − ph, ow + j − pw]
 * with x read as 0 outside.  `scratch` holds conv_single_scratch() floats. */
#ifndef MSPT_CONV_SINGLE_H
#define MSPT_CONV_SINGLE_H

#include <stddef.h>

typedef struct {
    int IH, IW, OH, OW, kh, kw, ph, pw;
} conv_single_geom;

/* Floats of scratch any of the three calls needs for geometry g. */
size_t conv_single_scratch(const conv_single_geom *g);

/* y (OH, OW) = b + corr(x, w). */
void conv_single_forward(const conv_single_geom *g, const float *x,
                         const float *w, float b, float *y, float *scratch);

/* gy (OH, OW) -> gx (IH, IW) += Σ w[i, j] · gy[ih − i + ph, iw − j + pw]:
 * the correlation of gy with the flipped kernel. */
void conv_single_backward_x(const conv_single_geom *g, const float *gy,
                            const float *w, float *gx, float *scratch);

/* gy (OH, OW), x (IH, IW) -> gw (kh, kw) +=
 *   Σ_{oh,ow} gy[oh, ow] · x[oh + i − ph, ow + j − pw]. */
void conv_single_backward_w(const conv_single_geom *g, const float *gy,
                            const float *x, float *gw, float *scratch);

#endif
