/* The one-channel correlation kernels (core/ops/conv_single.c) against a
 * double-precision reference, at geometries that exercise every edge: tile
 * remainders in rows and columns, kernels wider than the image, no and
 * asymmetric padding, padding beyond the kernel (cropping), and FEMBA's
 * dec_conv itself (31×31, padding 15, over 80 × 385).  Outputs and
 * gradients are checked to 1e-5 of the largest reference magnitude.  The
 * scratch is surrounded by guard values that must survive. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <mspt/mspt.h>

#include "ops/conv_single.h"
#include "tap.h"

#define GUARD 1024

static double ref_x(const float *x, int IH, int IW, int r, int c)
{
    return r < 0 || r >= IH || c < 0 || c >= IW ? 0.0 : x[r * IW + c];
}

static double max_abs_diff(const float *a, const double *b, size_t n,
                           double *scale)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs(a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
    }
    *scale = s;
    return d;
}

static void check(int IH, int IW, int kh, int kw, int ph, int pw,
                  mspt_rng *rng)
{
    conv_single_geom g = {IH, IW, IH + 2 * ph - kh + 1, IW + 2 * pw - kw + 1,
                          kh, kw, ph, pw};
    int OH = g.OH, OW = g.OW;
    size_t nx = (size_t)IH * IW, ny = (size_t)OH * OW, nw = (size_t)kh * kw;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *gy = malloc(ny * 4);
    float *y = malloc(ny * 4), *gx = malloc(nx * 4), *gw = malloc(nw * 4);
    size_t ns = conv_single_scratch(&g);
    float *scr = malloc((ns + 2 * GUARD) * 4);
    double *ry = malloc(ny * 8), *rgx = calloc(nx, 8), *rgw = calloc(nw, 8);
    for (size_t i = 0; i < nx; i++) x[i] = (float)(mspt_rng_uniform(rng) - 0.5);
    for (size_t i = 0; i < nw; i++) w[i] = (float)(mspt_rng_uniform(rng) - 0.5);
    for (size_t i = 0; i < ny; i++) gy[i] = (float)(mspt_rng_uniform(rng) - 0.5);
    for (size_t i = 0; i < nx; i++) gx[i] = 0.25f; /* accumulated into */
    for (size_t i = 0; i < nw; i++) gw[i] = -0.5f;
    for (size_t i = 0; i < ns + 2 * GUARD; i++) scr[i] = 1234.5f;
    const float b = 0.375f;

    /* reference: y = b + Σ w·x;  gx[ih,iw] += Σ gy·w;  gw[i,j] += Σ gy·x */
    for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
            double s = b, go = gy[oh * OW + ow];
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++) {
                    int r = oh + i - ph, c = ow + j - pw;
                    double xv = ref_x(x, IH, IW, r, c);
                    s += w[i * kw + j] * xv;
                    rgw[i * kw + j] += go * xv;
                    if (r >= 0 && r < IH && c >= 0 && c < IW)
                        rgx[r * IW + c] += go * w[i * kw + j];
                }
            ry[oh * OW + ow] = s;
        }
    for (size_t i = 0; i < nx; i++) rgx[i] += 0.25;
    for (size_t i = 0; i < nw; i++) rgw[i] += -0.5;

    float *s0 = scr + GUARD;
    conv_single_forward(&g, x, w, b, y, s0);
    conv_single_backward_x(&g, gy, w, gx, s0);
    conv_single_backward_w(&g, gy, x, gw, s0);
    int guards = 1;
    for (size_t i = 0; i < GUARD; i++)
        guards &= scr[i] == 1234.5f && scr[GUARD + ns + i] == 1234.5f;

    double sy, sx, sw;
    double ey = max_abs_diff(y, ry, ny, &sy), ex = max_abs_diff(gx, rgx, nx, &sx);
    double ew = max_abs_diff(gw, rgw, nw, &sw);
    ok(ey <= 1e-5 * sy, "x (%d,%d) w (%d,%d) pad (%d,%d) -> (%d,%d): forward "
       "(max err %.2g of %.3g)", IH, IW, kh, kw, ph, pw, OH, OW, ey, sy);
    ok(ex <= 1e-5 * sx, "  input gradient accumulates (max err %.2g of %.3g)",
       ex, sx);
    ok(ew <= 1e-5 * sw, "  weight gradient accumulates (max err %.2g of %.3g)",
       ew, sw);
    ok(guards, "  scratch stays within conv_single_scratch() = %zu floats", ns);
    free(x); free(w); free(gy); free(y); free(gx); free(gw); free(scr);
    free(ry); free(rgx); free(rgw);
}

int main(void)
{
    mspt_rng *rng = mspt_rng_new(11);
    check(5, 7, 3, 3, 1, 1, rng);       /* smaller than one tile */
    check(9, 40, 5, 2, 2, 0, rng);      /* row and column remainders */
    check(3, 3, 31, 31, 15, 15, rng);   /* kernel much larger than x */
    check(17, 50, 4, 6, 0, 5, rng);     /* even kernel, asymmetric pad */
    check(12, 33, 3, 5, 4, 3, rng);     /* padding beyond the kernel */
    check(8, 64, 1, 1, 0, 0, rng);      /* 1×1: a scaled copy */
    check(80, 385, 31, 31, 15, 15, rng); /* FEMBA's dec_conv */
    mspt_rng_free(rng);
    return tap_done();
}
