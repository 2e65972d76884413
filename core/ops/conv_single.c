/* One-channel 2-D correlation, stride 1, register-blocked (see
 * conv_single.h).
 *
 * With one channel in and out, im2col + GEMM degenerates into
 * matrix-vector products, and a tap-by-tap loop (y_row += w[i, j] ·
 * x_row shifted) loads and stores y once per multiply-add.  Here a tile
 * of R output rows × TW columns stays in vector registers while every tap
 * passes over it: each input vector loaded serves R rows.  The input is
 * first copied into a zero-padded scratch image, so no tap needs a bounds
 * test, and the kernel is padded with R − 1 zero rows above and below, so
 * every output row of a tile runs the same loop (the ~(R−1)/kh extra
 * multiply-adds of zeros cost less than the branches).  The weight
 * gradient is blocked the same way over I × J taps, each input row vector
 * serving I taps.  Vectors are GCC's generic vectors of 16 floats; the
 * kernels are cloned for AVX-512 and AVX2 (fused_simd.h). */
#include "ops/conv_single.h"

#include <string.h>

#include "ops/fused_simd.h"

typedef float v16 __attribute__((vector_size(64)));

#define R 4              /* output rows per forward tile */
#define TW 32            /* output columns per forward tile (2 vectors) */
#define WI 4             /* weight-gradient taps per block: rows ... */
#define WJ 4             /* ... and columns */

/* v = p[0..16), an unaligned vector load (a macro: a function returning
 * a 64-byte vector has a different ABI in the baseline and AVX-512 clones) */
#define LOAD16(v, p) memcpy(&(v), (p), sizeof(v16))

static inline int round_up(int n, int m) { return (n + m - 1) / m * m; }

/* dst (DH, DW) = src (SH, SW) placed at (top, left) in zeros; top and left
 * may be negative (src cropped). */
static void pad_copy(float *dst, int DH, int DW, const float *src, int SH,
                     int SW, int top, int left)
{
    memset(dst, 0, (size_t)DH * DW * sizeof(float));
    int c0 = left < 0 ? -left : 0;
    int c1 = SW < DW - left ? SW : DW - left;
    for (int r = 0; r < SH && c0 < c1; r++) {
        int d = r + top;
        if (d < 0 || d >= DH)
            continue;
        memcpy(dst + (size_t)d * DW + left + c0, src + (size_t)r * SW + c0,
               (size_t)(c1 - c0) * sizeof(float));
    }
}

/* ---- correlation: forward and input gradient ---------------------------- */

/* Geometry of one correlation: src (SH, SW) placed at (top, left) in the
 * padded image, kernel (kh, kw), out (OH, OW). */
typedef struct {
    int SH, SW, top, left, kh, kw, OH, OW;
} corr_geom;

/* Padded image (HP, WP): room for every tile, with whole tiles. */
static int corr_hp(const corr_geom *c) { return round_up(c->OH, R) + c->kh - 1; }
static int corr_wp(const corr_geom *c) { return round_up(c->OW, TW) + c->kw - 1; }

static size_t corr_scratch(const corr_geom *c)
{
    return (size_t)corr_hp(c) * corr_wp(c) + (size_t)(c->kh + 2 * R - 2) * c->kw;
}

/* One tile: out (R, TW) = Σ_{ih < kh+R−1, j < kw} wpad[ih − r + R − 1, j] ·
 * xp[ih, c + j], xp at the tile's first input row and column (row stride
 * ws), wpad (kh + 2R − 2, kw) = the kernel between R − 1 zero rows. */
static MSPT_SIMD_CLONES void corr_tile(const float *xp, int ws,
                                       const float *wpad, int kh, int kw,
                                       float out[R][TW])
{
    v16 acc[R][2];
    memset(acc, 0, sizeof acc);
    for (int ih = 0; ih < kh + R - 1; ih++) {
        const float *row = xp + (size_t)ih * ws;
        const float *wr = wpad + (size_t)(ih + R - 1) * kw; /* row r = 0 */
        for (int j = 0; j < kw; j++) {
            v16 x0, x1;
            LOAD16(x0, row + j);
            LOAD16(x1, row + j + 16);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                float wv = wr[j - r * kw];
                acc[r][0] += wv * x0;
                acc[r][1] += wv * x1;
            }
        }
    }
    memcpy(out, acc, sizeof acc);
}

/* out (OH, OW) = (accumulate ? out : bias) + corr(src, k) over the padded
 * image; `flip` reads k rotated by 180° (the input gradient). */
static void correlate(const corr_geom *c, const float *src, const float *k,
                      int flip, float *out, int accumulate, float bias,
                      float *scratch)
{
    int HP = corr_hp(c), WP = corr_wp(c), kh = c->kh, kw = c->kw;
    float *xp = scratch, *wpad = scratch + (size_t)HP * WP;
    pad_copy(xp, HP, WP, src, c->SH, c->SW, c->top, c->left);
    memset(wpad, 0, (size_t)(kh + 2 * R - 2) * kw * sizeof(float));
    for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++)
            wpad[(size_t)(i + R - 1) * kw + j] =
                flip ? k[(kh - 1 - i) * kw + (kw - 1 - j)] : k[i * kw + j];
    float tile[R][TW];
    for (int oh0 = 0; oh0 < c->OH; oh0 += R)
        for (int c0 = 0; c0 < c->OW; c0 += TW) {
            corr_tile(xp + (size_t)oh0 * WP + c0, WP, wpad, kh, kw, tile);
            int nr = c->OH - oh0 < R ? c->OH - oh0 : R;
            int nc = c->OW - c0 < TW ? c->OW - c0 : TW;
            for (int r = 0; r < nr; r++) {
                float *o = out + (size_t)(oh0 + r) * c->OW + c0;
                for (int q = 0; q < nc; q++)
                    o[q] = (accumulate ? o[q] : bias) + tile[r][q];
            }
        }
}

/* y = b + corr(x, w): x placed at (ph, pw). */
static corr_geom forward_geom(const conv_single_geom *g)
{
    return (corr_geom){g->IH, g->IW, g->ph, g->pw, g->kh, g->kw, g->OH, g->OW};
}

/* gx = corr(gy, flipped w): gy placed at (kh − 1 − ph, kw − 1 − pw). */
static corr_geom input_grad_geom(const conv_single_geom *g)
{
    return (corr_geom){g->OH, g->OW, g->kh - 1 - g->ph, g->kw - 1 - g->pw,
                       g->kh, g->kw, g->IH, g->IW};
}

void conv_single_forward(const conv_single_geom *g, const float *x,
                         const float *w, float b, float *y, float *scratch)
{
    corr_geom c = forward_geom(g);
    correlate(&c, x, w, 0, y, 0, b, scratch);
}

void conv_single_backward_x(const conv_single_geom *g, const float *gy,
                            const float *w, float *gx, float *scratch)
{
    corr_geom c = input_grad_geom(g);
    correlate(&c, gy, w, 1, gx, 1, 0.0f, scratch);
}

/* ---- weight gradient ------------------------------------------------------ */

/* Layout: x padded to (HW, WW) at (ph, pw); gy padded to (OH + 2·WI − 2,
 * OWV) with WI − 1 zero rows on top and zero columns up to OWV, a multiple
 * of 16; taps computed in whole WI × WJ blocks (the extra ones dropped). */
static int wg_owv(const conv_single_geom *g) { return round_up(g->OW, 16); }
static int wg_hw(const conv_single_geom *g) { return g->OH + round_up(g->kh, WI) - 1; }
static int wg_ww(const conv_single_geom *g) { return wg_owv(g) + round_up(g->kw, WJ) - 1; }
static int wg_gh(const conv_single_geom *g) { return g->OH + 2 * WI - 2; }

static size_t wgrad_scratch(const conv_single_geom *g)
{
    return (size_t)wg_hw(g) * wg_ww(g) + (size_t)wg_gh(g) * wg_owv(g);
}

/* One block of taps (i0 + ii, j0 + jj):
 *   out[ii][jj] = Σ_{q, c} gyp[q − ii + WI − 1, c] · xp[q, c + jj]
 * for q < nrows = OH + WI − 1, c < nvec·16; xp at row i0, column j0 (row
 * stride ws), gyp with row stride gs. */
static MSPT_SIMD_CLONES void wgrad_block(const float *xp, int ws,
                                         const float *gyp, int gs, int nrows,
                                         int nvec, double out[WI][WJ])
{
    v16 acc[WI][WJ];
    memset(acc, 0, sizeof acc);
    for (int q = 0; q < nrows; q++) {
        const float *xr = xp + (size_t)q * ws;
        for (int c = 0; c < nvec * 16; c += 16) {
            v16 xv[WJ];
            for (int jj = 0; jj < WJ; jj++)
                LOAD16(xv[jj], xr + c + jj);
#pragma GCC unroll 4
            for (int ii = 0; ii < WI; ii++) {
                v16 gv;
                LOAD16(gv, gyp + (size_t)(q - ii + WI - 1) * gs + c);
                for (int jj = 0; jj < WJ; jj++)
                    acc[ii][jj] += gv * xv[jj];
            }
        }
    }
    for (int ii = 0; ii < WI; ii++)
        for (int jj = 0; jj < WJ; jj++) {
            double s = 0; /* lanes added in a fixed order */
            for (int l = 0; l < 16; l++)
                s += acc[ii][jj][l];
            out[ii][jj] = s;
        }
}

void conv_single_backward_w(const conv_single_geom *g, const float *gy,
                            const float *x, float *gw, float *scratch)
{
    int HW = wg_hw(g), WW = wg_ww(g), GH = wg_gh(g), OWV = wg_owv(g);
    float *xp = scratch, *gyp = scratch + (size_t)HW * WW;
    pad_copy(xp, HW, WW, x, g->IH, g->IW, g->ph, g->pw);
    pad_copy(gyp, GH, OWV, gy, g->OH, g->OW, WI - 1, 0);
    double blk[WI][WJ];
    for (int i0 = 0; i0 < g->kh; i0 += WI)
        for (int j0 = 0; j0 < g->kw; j0 += WJ) {
            wgrad_block(xp + (size_t)i0 * WW + j0, WW, gyp, OWV,
                        g->OH + WI - 1, OWV / 16, blk);
            for (int ii = 0; ii < WI && i0 + ii < g->kh; ii++)
                for (int jj = 0; jj < WJ && j0 + jj < g->kw; jj++)
                    gw[(i0 + ii) * g->kw + j0 + jj] += (float)blk[ii][jj];
        }
}

size_t conv_single_scratch(const conv_single_geom *g)
{
    corr_geom f = forward_geom(g), b = input_grad_geom(g);
    size_t n = corr_scratch(&f), m = corr_scratch(&b), w = wgrad_scratch(g);
    n = m > n ? m : n;
    return w > n ? w : n;
}
