/* conv2d and conv_transpose2d, as torch.nn.functional's (groups 1,
 * dilation 1), both by patches + GEMM.
 *
 * A patch matrix colT (P, C·kh·kw) holds, for each of P grid positions
 * (gh, gw), the C·kh·kw image values under the kernel there: image[c,
 * gh·sh − ph + i, gw·sw − pw + j] (0 outside).  Rows are built in chunks of
 * positions into per-thread arena scratch, so memory stays small whatever
 * the kernel.  conv2d gathers colT from x over the output grid (im2col);
 * conv_transpose2d computes colT from x and scatter-adds it into y over the
 * input grid (col2im) — each is the other's backward.
 * One channel in and out at stride 1 is a plain correlation instead
 * (conv_single.c).
 *
 * Threads: batch items are cut in one block per thread, each running
 * single-threaded GEMMs; weight and bias gradients are per-thread partials
 * added in block order (deterministic for a fixed thread count).  With one
 * batch item the GEMMs get all threads instead. */
#include <mspt/ops.h>

#include <stdio.h>
#include <string.h>

#include "engine/gemm.h"
#include "ops/conv_single.h"

#define CHUNK_FLOATS 32768 /* target size of one colT chunk (128 KiB) */

typedef struct {
    int C, IH, IW;            /* image (C, IH, IW) */
    int GH, GW;               /* grid of kernel positions, P = GH·GW */
    int kh, kw, sh, sw, ph, pw;
} geom;

static int geom_ckk(const geom *g) { return g->C * g->kh * g->kw; }

/* Positions per chunk: whole grid if small, else ~CHUNK_FLOATS of colT but
 * at least 64 rows so the GEMMs stay efficient. */
static int geom_chunk(const geom *g)
{
    int P = g->GH * g->GW, ckk = geom_ckk(g);
    int pc = ckk > 0 ? CHUNK_FLOATS / ckk : P;
    pc = pc < 64 ? 64 : (pc + 15) / 16 * 16;
    return pc < P ? pc : P;
}

/* img (C, IH, IW) -> colT (pc, C·kh·kw), rows for positions p0..p0+pc. */
static void im2col(const geom *g, const float *img, float *colT, int p0,
                   int pc)
{
    int ckk = geom_ckk(g);
    for (int q = 0; q < pc; q++) {
        int gh = (p0 + q) / g->GW, gw = (p0 + q) % g->GW;
        int iw0 = gw * g->sw - g->pw;
        int j0 = iw0 < 0 ? -iw0 : 0;
        int j1 = g->IW - iw0 < g->kw ? g->IW - iw0 : g->kw;
        for (int c = 0; c < g->C; c++)
            for (int i = 0; i < g->kh; i++) {
                float *dst = colT + (size_t)q * ckk + (c * g->kh + i) * g->kw;
                int ih = gh * g->sh - g->ph + i;
                if (ih < 0 || ih >= g->IH || j0 >= j1) {
                    memset(dst, 0, (size_t)g->kw * sizeof(float));
                    continue;
                }
                const float *src =
                    img + ((size_t)c * g->IH + ih) * g->IW + iw0;
                for (int j = 0; j < j0; j++)
                    dst[j] = 0;
                memcpy(dst + j0, src + j0, (size_t)(j1 - j0) * sizeof(float));
                for (int j = j1; j < g->kw; j++)
                    dst[j] = 0;
            }
    }
}

/* img (C, IH, IW) += colT (pc, C·kh·kw) at positions p0..p0+pc (the
 * adjoint of im2col; entries outside the image are dropped). */
static void col2im(const geom *g, const float *colT, float *img, int p0,
                   int pc)
{
    int ckk = geom_ckk(g);
    for (int q = 0; q < pc; q++) {
        int gh = (p0 + q) / g->GW, gw = (p0 + q) % g->GW;
        int iw0 = gw * g->sw - g->pw;
        int j0 = iw0 < 0 ? -iw0 : 0;
        int j1 = g->IW - iw0 < g->kw ? g->IW - iw0 : g->kw;
        for (int c = 0; c < g->C; c++)
            for (int i = 0; i < g->kh; i++) {
                int ih = gh * g->sh - g->ph + i;
                if (ih < 0 || ih >= g->IH)
                    continue;
                const float *src =
                    colT + (size_t)q * ckk + (c * g->kh + i) * g->kw;
                float *dst = img + ((size_t)c * g->IH + ih) * g->IW + iw0;
                for (int j = j0; j < j1; j++)
                    dst[j] += src[j];
            }
    }
}

/* conv2d's colT is x itself when patches tile each row exactly: one input
 * channel, kernel (1, kw) = stride, no padding (the Transformer's patch
 * embedding).  Then colT (P, kw) = x_b viewed with row stride kw. */
static int colT_is_image(const geom *g)
{
    return g->C == 1 && g->kh == 1 && g->sh == 1 && g->ph == 0 &&
           g->pw == 0 && g->sw == g->kw && g->IW == g->GW * g->kw;
}

/* y (rows, n) = b[r] per row r (or 0 without bias). */
static void fill_rows(float *y, const float *b, int rows, size_t n)
{
    for (int r = 0; r < rows; r++)
        for (size_t k = 0; k < n; k++)
            y[(size_t)r * n + k] = b ? b[r] : 0.0f;
}

/* acc (rows) += Σ_k g[r, k] over a (rows, n) plane, in double. */
static void add_row_sums(double *acc, const float *g, int rows, size_t n)
{
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (size_t k = 0; k < n; k++)
            s += g[(size_t)r * n + k];
        acc[r] += s;
    }
}

/* Everything one block of batch items needs (conv2d and its transpose). */
typedef struct {
    const geom *g;
    int B, nc;        /* batch; channels on the GEMM side (Cout or Cin) */
    int ckk, P, pc;
    int direct;       /* conv2d: colT is x itself (see colT_is_image) */
    int single;       /* conv2d: one channel in and out, stride 1 */
    size_t xs, ys;    /* floats per batch item of x and y */
    const float *x, *w, *b, *gy;
    float *y, *gx, *gw, *gb;
    float *scratch;   /* per block: 2·pc·ckk floats */
    float *gwp;       /* per-block weight-gradient partials, or NULL */
    double *gbp;      /* per-block bias-gradient partials, or NULL */
    int nt;           /* blocks used, set by block 0 */
} conv_job;

/* Work measure for mspt_parallel over the batch: split it (one block per
 * thread, single-threaded GEMMs) when there are two items or more; with one
 * item the GEMMs get all threads instead. */
static size_t batch_work(const conv_job *j)
{
    return j->B > 1 ? MSPT_PAR_MIN : 0;
}

/* Runs fn(j, t, nt) for the blocks of the batch. */
static void run_blocks(void (*fn)(void *, int, int), conv_job *j)
{
    j->nt = 1;
    mspt_parallel(batch_work(j), fn, j);
}

/* Weight and bias gradients: per-block partials (sized for every thread)
 * added in block order.  Without batch split, gw is accumulated in place. */
static void grad_partials(mspt_ctx *ctx, conv_job *j, size_t wn, int nb)
{
    int nth = mspt_get_threads();
    if (j->gw && batch_work(j) && nth > 1)
        j->gwp = mspt_ctx_alloc(ctx, (size_t)nth * wn * sizeof(float));
    if (j->gb)
        j->gbp = mspt_ctx_alloc(ctx, (size_t)nth * nb * sizeof(double));
}

static void grad_combine(const conv_job *j, size_t wn, int nb)
{
    for (int t = 0; j->gwp && t < j->nt; t++)
        for (size_t k = 0; k < wn; k++)
            j->gw[k] += j->gwp[(size_t)t * wn + k];
    for (int t = 0; j->gbp && t < j->nt; t++)
        for (int c = 0; c < nb; c++)
            j->gb[c] += (float)j->gbp[(size_t)t * nb + c];
}

static float *block_scratch(mspt_ctx *ctx, const conv_job *j)
{
    return mspt_ctx_alloc(ctx, ((size_t)mspt_get_threads() * 2 * j->pc *
                                    j->ckk + 1) * sizeof(float));
}

/* ---- conv2d ----------------------------------------------------------- */

typedef struct {
    mspt_tensor *x, *w, *b, *y;
    geom g; /* conv2d: image x_b, grid = output; transpose: the reverse */
} conv_saved;

/* Block t of the batch: x_b (Cin, H, W), w (Cout, Cin·kh·kw), b (Cout)
 * -> y_b (Cout, P) = w · colT(x_b)ᵀ + b,  P = OH·OW. */
static void conv2d_forward_block(void *arg, int t, int nt)
{
    const conv_job *j = arg;
    int ckk = j->ckk, P = j->P, gt = nt > 1 ? 1 : 0;
    float *colT = j->direct ? NULL : j->scratch + (size_t)t * 2 * j->pc * ckk;
    for (int n = j->B * t / nt; n < j->B * (t + 1) / nt; n++) {
        const float *xb = j->x + n * j->xs;
        float *yb = j->y + n * j->ys;
        fill_rows(yb, j->b, j->nc, (size_t)P);
        for (int p0 = 0; p0 < P; p0 += j->pc) {
            int m = P - p0 < j->pc ? P - p0 : j->pc;
            const float *src = colT;
            if (j->direct)
                src = xb + (size_t)p0 * ckk;
            else
                im2col(j->g, xb, colT, p0, m);
            mspt_gemm(0, 1, j->nc, m, ckk, 1.0f, j->w, ckk, src, ckk, 1.0f,
                      yb + p0, P, gt);
        }
    }
}

/* Block t: gy_b (Cout, P) -> gx_b += col2im(gy_bᵀ · w),
 * gw (Cout, Cin·kh·kw) += gy_b · colT(x_b),  gb (Cout) += Σ_p gy_b. */
static void conv2d_backward_block(void *arg, int t, int nt)
{
    conv_job *j = arg;
    if (t == 0)
        j->nt = nt;
    int ckk = j->ckk, P = j->P, Cout = j->nc, gt = nt > 1 ? 1 : 0;
    size_t wn = (size_t)Cout * ckk;
    float *colT = j->scratch + (size_t)t * 2 * j->pc * ckk;
    float *dcolT = colT + (size_t)j->pc * ckk;
    float *gw = j->gwp ? j->gwp + (size_t)t * wn : j->gw;
    double *gb = j->gbp ? j->gbp + (size_t)t * Cout : NULL;
    if (j->gwp)
        memset(gw, 0, wn * sizeof(float));
    if (gb)
        memset(gb, 0, (size_t)Cout * sizeof(double));
    for (int n = j->B * t / nt; n < j->B * (t + 1) / nt; n++) {
        const float *xb = j->x + n * j->xs, *gyb = j->gy + n * j->ys;
        float *gxb = j->gx ? j->gx + n * j->xs : NULL;
        if (gb)
            add_row_sums(gb, gyb, Cout, (size_t)P);
        for (int p0 = 0; p0 < P && (gw || gxb); p0 += j->pc) {
            int m = P - p0 < j->pc ? P - p0 : j->pc;
            if (gw) {
                const float *src = colT;
                if (j->direct)
                    src = xb + (size_t)p0 * ckk;
                else
                    im2col(j->g, xb, colT, p0, m);
                mspt_gemm(0, 0, Cout, ckk, m, 1.0f, gyb + p0, P, src, ckk,
                          1.0f, gw, ckk, gt);
            }
            if (gxb && j->direct) { /* patches tile x: add in place */
                mspt_gemm(1, 0, m, ckk, Cout, 1.0f, gyb + p0, P, j->w, ckk,
                          1.0f, gxb + (size_t)p0 * ckk, ckk, gt);
            } else if (gxb) {
                mspt_gemm(1, 0, m, ckk, Cout, 1.0f, gyb + p0, P, j->w, ckk,
                          0.0f, dcolT, ckk, gt);
                col2im(j->g, dcolT, gxb, p0, m);
            }
        }
    }
}

/* ---- conv2d, one channel in and out ------------------------------------ */

/* With Cin = Cout = 1 and stride 1 (FEMBA's 31×31 dec_conv), im2col + GEMM
 * degenerates to matrix-vector products over a kh·kw times larger copy of
 * x; the register-blocked correlation of conv_single.c runs instead, one
 * batch item at a time, with per-block scratch. */
static int single_channel(const geom *g, int Cout)
{
    return g->C == 1 && Cout == 1 && g->sh == 1 && g->sw == 1;
}

static conv_single_geom single_geom(const geom *g)
{
    return (conv_single_geom){g->IH, g->IW, g->GH, g->GW,
                              g->kh, g->kw, g->ph, g->pw};
}

static float *single_scratch(mspt_ctx *ctx, const conv_job *j)
{
    conv_single_geom sg = single_geom(j->g);
    return mspt_ctx_alloc(ctx, (size_t)mspt_get_threads() *
                                   conv_single_scratch(&sg) * sizeof(float));
}

/* Block t: x_b (H, W), w (kh, kw), b (1) -> y_b (OH, OW). */
static void single_forward_block(void *arg, int t, int nt)
{
    const conv_job *j = arg;
    conv_single_geom sg = single_geom(j->g);
    float *scratch = j->scratch + (size_t)t * conv_single_scratch(&sg);
    for (int n = j->B * t / nt; n < j->B * (t + 1) / nt; n++)
        conv_single_forward(&sg, j->x + n * j->xs, j->w, j->b ? j->b[0] : 0.0f,
                            j->y + n * j->ys, scratch);
}

/* Block t: gy_b (OH, OW) -> gx_b (H, W) += corr(gy_b, flipped w),
 * gw (kh, kw) += Σ gy_b · x_b shifted,  gb += Σ gy_b. */
static void single_backward_block(void *arg, int t, int nt)
{
    conv_job *j = arg;
    if (t == 0)
        j->nt = nt;
    conv_single_geom sg = single_geom(j->g);
    size_t wn = (size_t)sg.kh * sg.kw;
    float *scratch = j->scratch + (size_t)t * conv_single_scratch(&sg);
    float *gw = j->gwp ? j->gwp + (size_t)t * wn : j->gw;
    double *gb = j->gbp ? j->gbp + t : NULL;
    if (j->gwp)
        memset(gw, 0, wn * sizeof(float));
    if (gb)
        *gb = 0;
    for (int n = j->B * t / nt; n < j->B * (t + 1) / nt; n++) {
        const float *xb = j->x + n * j->xs, *gyb = j->gy + n * j->ys;
        if (gb)
            add_row_sums(gb, gyb, 1, (size_t)j->P);
        if (j->gx)
            conv_single_backward_x(&sg, gyb, j->w, j->gx + n * j->xs, scratch);
        if (gw)
            conv_single_backward_w(&sg, gyb, xb, gw, scratch);
    }
}

/* The job for conv2d: x (B, Cin, H, W) -> y (B, Cout, OH, OW). */
static conv_job conv2d_job(const conv_saved *s)
{
    const geom *g = &s->g;
    conv_job j = {.g = g, .B = s->x->shape[0], .nc = s->w->shape[0],
                  .ckk = geom_ckk(g), .P = g->GH * g->GW, .pc = geom_chunk(g),
                  .direct = colT_is_image(g),
                  .single = single_channel(g, s->w->shape[0])};
    j.xs = (size_t)g->C * g->IH * g->IW;
    j.ys = (size_t)j.nc * j.P;
    j.x = s->x->data;
    j.w = s->w->data;
    j.b = s->b ? s->b->data : NULL;
    j.y = s->y->data;
    return j;
}

static void conv2d_backward(mspt_ctx *ctx, void *p)
{
    conv_saved *s = p;
    conv_job j = conv2d_job(s);
    j.gy = s->y->grad;
    j.gx = mspt_grad(ctx, s->x);
    j.gw = mspt_grad(ctx, s->w);
    j.gb = mspt_grad(ctx, s->b);
    size_t wn = (size_t)j.nc * j.ckk;
    j.scratch = j.single ? single_scratch(ctx, &j) : block_scratch(ctx, &j);
    grad_partials(ctx, &j, wn, j.nc);
    if (mspt_ctx_error(ctx))
        return;
    run_blocks(j.single ? single_backward_block : conv2d_backward_block, &j);
    grad_combine(&j, wn, j.nc);
}

/* ---- conv_transpose2d ----------------------------------------------- */

/* Block t: x_b (Cin, P) over the input grid, w (Cin, Cout·kh·kw), b (Cout)
 * -> y_b (Cout, OH, OW) = b + col2im(x_bᵀ · w). */
static void convt_forward_block(void *arg, int t, int nt)
{
    const conv_job *j = arg;
    int ckk = j->ckk, P = j->P, gt = nt > 1 ? 1 : 0;
    float *colT = j->scratch + (size_t)t * 2 * j->pc * ckk;
    for (int n = j->B * t / nt; n < j->B * (t + 1) / nt; n++) {
        float *yb = j->y + n * j->ys;
        fill_rows(yb, j->b, j->g->C, (size_t)j->g->IH * j->g->IW);
        for (int p0 = 0; p0 < P; p0 += j->pc) {
            int m = P - p0 < j->pc ? P - p0 : j->pc;
            mspt_gemm(1, 0, m, ckk, j->nc, 1.0f, j->x + n * j->xs + p0, P,
                      j->w, ckk, 0.0f, colT, ckk, gt);
            col2im(j->g, colT, yb, p0, m);
        }
    }
}

/* Block t: gy_b (Cout, OH, OW), dcolT = im2col(gy_b) (P, Cout·kh·kw) ->
 * gx_b (Cin, P) += w · dcolTᵀ,  gw (Cin, Cout·kh·kw) += x_b · dcolT,
 * gb (Cout) += Σ gy_b. */
static void convt_backward_block(void *arg, int t, int nt)
{
    conv_job *j = arg;
    if (t == 0)
        j->nt = nt;
    int ckk = j->ckk, P = j->P, Cin = j->nc, C = j->g->C, gt = nt > 1 ? 1 : 0;
    size_t wn = (size_t)Cin * ckk, plane = (size_t)j->g->IH * j->g->IW;
    float *dcolT = j->scratch + (size_t)t * 2 * j->pc * ckk;
    float *gw = j->gwp ? j->gwp + (size_t)t * wn : j->gw;
    double *gb = j->gbp ? j->gbp + (size_t)t * C : NULL;
    if (j->gwp)
        memset(gw, 0, wn * sizeof(float));
    if (gb)
        memset(gb, 0, (size_t)C * sizeof(double));
    for (int n = j->B * t / nt; n < j->B * (t + 1) / nt; n++) {
        const float *gyb = j->gy + n * j->ys, *xb = j->x + n * j->xs;
        if (gb)
            add_row_sums(gb, gyb, C, plane);
        for (int p0 = 0; p0 < P && (gw || j->gx); p0 += j->pc) {
            int m = P - p0 < j->pc ? P - p0 : j->pc;
            im2col(j->g, gyb, dcolT, p0, m);
            if (j->gx)
                mspt_gemm(0, 1, Cin, m, ckk, 1.0f, j->w, ckk, dcolT, ckk, 1.0f,
                          j->gx + n * j->xs + p0, P, gt);
            if (gw)
                mspt_gemm(0, 0, Cin, ckk, m, 1.0f, xb + p0, P, dcolT, ckk,
                          1.0f, gw, ckk, gt);
        }
    }
}

/* The job for conv_transpose2d: x (B, Cin, H, W) -> y (B, Cout, OH, OW);
 * the patch grid is x's (H, W), the image is y_b. */
static conv_job convt_job(const conv_saved *s)
{
    const geom *g = &s->g;
    conv_job j = {.g = g, .B = s->x->shape[0], .nc = s->x->shape[1],
                  .ckk = geom_ckk(g), .P = g->GH * g->GW, .pc = geom_chunk(g)};
    j.xs = (size_t)j.nc * j.P;
    j.ys = (size_t)g->C * g->IH * g->IW;
    j.x = s->x->data;
    j.w = s->w->data;
    j.b = s->b ? s->b->data : NULL;
    j.y = s->y->data;
    return j;
}

static void convt_backward(mspt_ctx *ctx, void *p)
{
    conv_saved *s = p;
    conv_job j = convt_job(s);
    j.gy = s->y->grad;
    j.gx = mspt_grad(ctx, s->x);
    j.gw = mspt_grad(ctx, s->w);
    j.gb = mspt_grad(ctx, s->b);
    size_t wn = (size_t)j.nc * j.ckk;
    j.scratch = block_scratch(ctx, &j);
    grad_partials(ctx, &j, wn, j.g->C);
    if (mspt_ctx_error(ctx))
        return;
    run_blocks(convt_backward_block, &j);
    grad_combine(&j, wn, j.g->C);
}

/* ---- entry points ------------------------------------------------------ */

/* Shared argument checks; fills *g except the image/grid roles. */
static int check_args(mspt_ctx *ctx, const char *op, mspt_tensor *x,
                      mspt_tensor *w, mspt_tensor *b, int wc, int sh, int sw,
                      int ph, int pw)
{
    char s1[64], s2[64];
    if (x->ndim != 4 || w->ndim != 4) {
        mspt_fail(ctx, "%s: x %s and weight %s must be 4-D", op,
                  mspt_shape_str(x, s1, sizeof s1),
                  mspt_shape_str(w, s2, sizeof s2));
        return -1;
    }
    if (x->shape[1] != w->shape[wc]) {
        mspt_fail(ctx, "%s: x %s channels do not match weight %s", op,
                  mspt_shape_str(x, s1, sizeof s1),
                  mspt_shape_str(w, s2, sizeof s2));
        return -1;
    }
    if (sh < 1 || sw < 1 || ph < 0 || pw < 0) {
        mspt_fail(ctx, "%s: stride (%d,%d) must be >= 1 and padding (%d,%d) "
                  ">= 0", op, sh, sw, ph, pw);
        return -1;
    }
    int cout = w->shape[1 - wc];
    if (b && (b->ndim != 1 || b->shape[0] != cout)) {
        mspt_fail(ctx, "%s: bias %s does not match weight %s", op,
                  mspt_shape_str(b, s1, sizeof s1),
                  mspt_shape_str(w, s2, sizeof s2));
        return -1;
    }
    return 0;
}

static int bad_output(mspt_ctx *ctx, const char *op, mspt_tensor *x,
                      mspt_tensor *w, int oh, int ow)
{
    char s1[64], s2[64];
    mspt_fail(ctx, "%s: x %s with weight %s gives an empty output (%d,%d)",
              op, mspt_shape_str(x, s1, sizeof s1),
              mspt_shape_str(w, s2, sizeof s2), oh, ow);
    return 1;
}

mspt_tensor *mspt_conv2d(mspt_ctx *ctx, mspt_tensor *x, mspt_tensor *w,
                         mspt_tensor *b, int sh, int sw, int ph, int pw)
{
    if (!x || !w)
        return NULL;
    if (check_args(ctx, "conv2d", x, w, b, 1, sh, sw, ph, pw))
        return NULL;
    int B = x->shape[0], Cout = w->shape[0], kh = w->shape[2], kw = w->shape[3];
    int H = x->shape[2], W = x->shape[3];
    int oh = H + 2 * ph - kh < 0 ? 0 : (H + 2 * ph - kh) / sh + 1;
    int ow = W + 2 * pw - kw < 0 ? 0 : (W + 2 * pw - kw) / sw + 1;
    if (oh < 1 || ow < 1) {
        bad_output(ctx, "conv2d", x, w, oh, ow);
        return NULL;
    }
    geom g = {x->shape[1], H, W, oh, ow, kh, kw, sh, sw, ph, pw};
    int shape[4] = {B, Cout, oh, ow};
    int needs = mspt_needs_grad(ctx, x) || mspt_needs_grad(ctx, w) ||
                mspt_needs_grad(ctx, b);
    mspt_tensor *y = mspt_op_output(ctx, 4, shape, needs);
    if (!y)
        return NULL;
    conv_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
    if (!s)
        return NULL;
    *s = (conv_saved){x, w, b, y, g};
    conv_job j = conv2d_job(s);
    if (j.single)
        j.scratch = single_scratch(ctx, &j);
    else if (!j.direct)
        j.scratch = block_scratch(ctx, &j);
    if ((j.single || !j.direct) && !j.scratch)
        return NULL;
    run_blocks(j.single ? single_forward_block : conv2d_forward_block, &j);
    if (y->requires_grad)
        mspt_tape_push(ctx, conv2d_backward, s);
    return y;
}

mspt_tensor *mspt_conv_transpose2d(mspt_ctx *ctx, mspt_tensor *x,
                                   mspt_tensor *w, mspt_tensor *b, int sh,
                                   int sw, int ph, int pw)
{
    if (!x || !w)
        return NULL;
    if (check_args(ctx, "conv_transpose2d", x, w, b, 0, sh, sw, ph, pw))
        return NULL;
    int B = x->shape[0], Cout = w->shape[1];
    int kh = w->shape[2], kw = w->shape[3], H = x->shape[2], W = x->shape[3];
    int oh = (H - 1) * sh - 2 * ph + kh, ow = (W - 1) * sw - 2 * pw + kw;
    if (oh < 1 || ow < 1) {
        bad_output(ctx, "conv_transpose2d", x, w, oh, ow);
        return NULL;
    }
    geom g = {Cout, oh, ow, H, W, kh, kw, sh, sw, ph, pw};
    int shape[4] = {B, Cout, oh, ow};
    int needs = mspt_needs_grad(ctx, x) || mspt_needs_grad(ctx, w) ||
                mspt_needs_grad(ctx, b);
    mspt_tensor *y = mspt_op_output(ctx, 4, shape, needs);
    if (!y)
        return NULL;
    conv_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
    if (!s)
        return NULL;
    *s = (conv_saved){x, w, b, y, g};
    conv_job j = convt_job(s);
    if (!(j.scratch = block_scratch(ctx, &j)))
        return NULL;
    run_blocks(convt_forward_block, &j);
    if (y->requires_grad)
        mspt_tape_push(ctx, convt_backward, s);
    return y;
}
