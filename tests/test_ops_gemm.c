/* GEMM-based ops: mspt_gemm itself, linear, matmul, bmm, conv2d,
 * conv_transpose2d — gradient checks against double references, PyTorch
 * parity on fixtures (scripts/gen_fixtures_gemm.py), error paths, no-grad
 * mode, determinism, threads and the BLIS kernel choice. */
#include <string.h>

#include <mspt/mspt.h>

#include "engine/gemm.h"
#include "fixture.h"
#include "gradcheck.h"

/* ---- double references -------------------------------------------------- */

/* c (M, N) = op(a)·op(b); a (M,K) or (K,M), b (K,N) or (N,K). */
static void ref_mm(const double *a, const double *b, double *c, int M, int N,
                   int K, int ta, int tb)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (ta ? a[k * M + i] : a[i * K + k]) *
                     (tb ? b[j * K + k] : b[k * N + j]);
            c[i * N + j] = s;
        }
}

typedef struct {
    int shape[4]; /* x shape (4-D conv) */
    int wshape[4];
    int sh, sw, ph, pw;
    int R, I, O;          /* linear */
    int Bt, M, N, K, ta, tb; /* matmul / bmm */
    int bias;
} spec;

static int conv_out(int n, int k, int s, int p) { return (n + 2 * p - k) / s + 1; }
static int convt_out(int n, int k, int s, int p) { return (n - 1) * s - 2 * p + k; }

/* y (B, Cout, OH, OW) = Σ w[co, c, i, j]·x[b, c, oh·sh − ph + i, ow·sw − pw + j] + b */
static void ref_conv2d(double *const *in, double *y, void *ud)
{
    const spec *s = ud;
    const int *x = s->shape, *w = s->wshape;
    int B = x[0], C = x[1], H = x[2], W = x[3], Co = w[0], kh = w[2], kw = w[3];
    int OH = conv_out(H, kh, s->sh, s->ph), OW = conv_out(W, kw, s->sw, s->pw);
    for (int n = 0; n < B; n++)
        for (int co = 0; co < Co; co++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double acc = s->bias ? in[2][co] : 0;
                    for (int c = 0; c < C; c++)
                        for (int i = 0; i < kh; i++)
                            for (int j = 0; j < kw; j++) {
                                int ih = oh * s->sh - s->ph + i;
                                int iw = ow * s->sw - s->pw + j;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                    continue;
                                acc += in[1][((co * C + c) * kh + i) * kw + j] *
                                       in[0][((n * C + c) * H + ih) * W + iw];
                            }
                    y[((n * Co + co) * OH + oh) * OW + ow] = acc;
                }
}

/* y[b, co, h·sh − ph + i, w·sw − pw + j] += x[b, c, h, w]·w[c, co, i, j] + b */
static void ref_convt(double *const *in, double *y, void *ud)
{
    const spec *s = ud;
    const int *x = s->shape, *w = s->wshape;
    int B = x[0], C = x[1], H = x[2], W = x[3], Co = w[1], kh = w[2], kw = w[3];
    int OH = convt_out(H, kh, s->sh, s->ph), OW = convt_out(W, kw, s->sw, s->pw);
    for (int n = 0; n < B; n++)
        for (int co = 0; co < Co; co++)
            for (int k = 0; k < OH * OW; k++)
                y[(n * Co + co) * OH * OW + k] = s->bias ? in[2][co] : 0;
    for (int n = 0; n < B; n++)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < H; h++)
                for (int ww = 0; ww < W; ww++)
                    for (int co = 0; co < Co; co++)
                        for (int i = 0; i < kh; i++)
                            for (int j = 0; j < kw; j++) {
                                int oh = h * s->sh - s->ph + i;
                                int ow = ww * s->sw - s->pw + j;
                                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW)
                                    continue;
                                y[((n * Co + co) * OH + oh) * OW + ow] +=
                                    in[0][((n * C + c) * H + h) * W + ww] *
                                    in[1][((c * Co + co) * kh + i) * kw + j];
                            }
}

static void ref_linear(double *const *in, double *y, void *ud)
{
    const spec *s = ud;
    ref_mm(in[0], in[1], y, s->R, s->O, s->I, 0, 1);
    for (int r = 0; r < s->R && s->bias; r++)
        for (int o = 0; o < s->O; o++)
            y[r * s->O + o] += in[2][o];
}

static void ref_bmm(double *const *in, double *y, void *ud)
{
    const spec *s = ud;
    for (int i = 0; i < s->Bt; i++)
        ref_mm(in[0] + (size_t)i * s->M * s->K, in[1] + (size_t)i * s->K * s->N,
               y + (size_t)i * s->M * s->N, s->M, s->N, s->K, s->ta, s->tb);
}

/* ---- float ops under test ------------------------------------------------ */

static mspt_tensor *f_conv2d(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    const spec *s = ud;
    return mspt_conv2d(ctx, in[0], in[1], s->bias ? in[2] : NULL, s->sh, s->sw,
                       s->ph, s->pw);
}

static mspt_tensor *f_convt(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    const spec *s = ud;
    return mspt_conv_transpose2d(ctx, in[0], in[1], s->bias ? in[2] : NULL,
                                 s->sh, s->sw, s->ph, s->pw);
}

static mspt_tensor *f_linear(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    const spec *s = ud;
    return mspt_linear(ctx, in[0], in[1], s->bias ? in[2] : NULL);
}

static mspt_tensor *f_matmul(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    const spec *s = ud;
    return mspt_matmul(ctx, in[0], in[1], s->ta, s->tb);
}

static mspt_tensor *f_bmm(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    const spec *s = ud;
    return mspt_bmm(ctx, in[0], in[1], s->ta, s->tb);
}

/* ---- gradient checks ------------------------------------------------------ */

static void gc_conv(const char *name, int transpose, spec s, int x_grad)
{
    gc_case c = gc_case_new(name, s.bias ? 3 : 2);
    gc_input(&c, 0, 4, s.shape, x_grad);
    gc_input(&c, 1, 4, s.wshape, 1);
    if (s.bias)
        gc_input(&c, 2, 1, (int[]){s.wshape[transpose ? 1 : 0]}, 1);
    gc_run(&c, transpose ? f_convt : f_conv2d, transpose ? ref_convt : ref_conv2d,
           &s);
    gc_case_free(&c);
}

static void gradchecks(void)
{
    /* linear: 3-D x (leading dims flattened), bias and no bias */
    spec l = {.R = 2 * 3, .I = 7, .O = 5, .bias = 1};
    gc_case c = gc_case_new("linear (2,3,7)x(5,7)+b", 3);
    gc_input(&c, 0, 3, (int[]){2, 3, 7}, 1);
    gc_input(&c, 1, 2, (int[]){5, 7}, 1);
    gc_input(&c, 2, 1, (int[]){5}, 1);
    gc_run(&c, f_linear, ref_linear, &l);
    gc_case_free(&c);
    l = (spec){.R = 9, .I = 13, .O = 3, .bias = 0};
    c = gc_case_new("linear (9,13)x(3,13) no bias", 2);
    gc_input(&c, 0, 2, (int[]){9, 13}, 1);
    gc_input(&c, 1, 2, (int[]){3, 13}, 1);
    gc_run(&c, f_linear, ref_linear, &l);
    gc_case_free(&c);
    l = (spec){.R = 301, .I = 3, .O = 117, .bias = 1};
    c = gc_case_new("linear (301,3)x(117,3)+b, bias sums over threads", 3);
    gc_input(&c, 0, 2, (int[]){301, 3}, 1);
    gc_input(&c, 1, 2, (int[]){117, 3}, 1);
    gc_input(&c, 2, 1, (int[]){117}, 1);
    gc_run(&c, f_linear, ref_linear, &l);
    gc_case_free(&c);
    /* the bias paths of linear.c: rows filled first (2(in+1) > out); in
     * the GEMM as [x | 1]·[w | b]ᵀ, with [gw | gb] from one GEMM too
     * (in + 1 ≤ 32) or not */
    static const int bias_paths[][3] = {{5, 70, 80}, {400, 50, 90},
                                        {67, 20, 90}, {13, 40, 100}};
    static const char *bias_names[] = {
        "linear (5,70)x(80,70)+b, bias rows first",
        "linear (400,50)x(90,50)+b, bias rows first, column sums on threads",
        "linear (67,20)x(90,20)+b, bias in both GEMMs",
        "linear (13,40)x(100,40)+b, bias in the forward GEMM"};
    for (int k = 0; k < 4; k++) {
        const int *d = bias_paths[k];
        l = (spec){.R = d[0], .I = d[1], .O = d[2], .bias = 1};
        c = gc_case_new(bias_names[k], 3);
        gc_input(&c, 0, 2, (int[]){d[0], d[1]}, 1);
        gc_input(&c, 1, 2, (int[]){d[2], d[1]}, 1);
        gc_input(&c, 2, 1, (int[]){d[2]}, 1);
        gc_run(&c, f_linear, ref_linear, &l);
        gc_case_free(&c);
    }
    l = (spec){.R = 11, .I = 5, .O = 6, .bias = 1};
    c = gc_case_new("linear, x constant", 3);
    gc_input(&c, 0, 2, (int[]){11, 5}, 0);
    gc_input(&c, 1, 2, (int[]){6, 5}, 1);
    gc_input(&c, 2, 1, (int[]){6}, 1);
    gc_run(&c, f_linear, ref_linear, &l);
    gc_case_free(&c);

    /* matmul and bmm, every transpose combination */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            char name[64];
            spec m = {.Bt = 1, .M = 5, .N = 3, .K = 7, .ta = ta, .tb = tb};
            snprintf(name, sizeof name, "matmul ta=%d tb=%d", ta, tb);
            c = gc_case_new(name, 2);
            gc_input(&c, 0, 2, ta ? (int[]){7, 5} : (int[]){5, 7}, 1);
            gc_input(&c, 1, 2, tb ? (int[]){3, 7} : (int[]){7, 3}, 1);
            gc_run(&c, f_matmul, ref_bmm, &m);
            gc_case_free(&c);
            m = (spec){.Bt = 3, .M = 4, .N = 5, .K = 6, .ta = ta, .tb = tb};
            snprintf(name, sizeof name, "bmm ta=%d tb=%d", ta, tb);
            c = gc_case_new(name, 2);
            gc_input(&c, 0, 3, ta ? (int[]){3, 6, 4} : (int[]){3, 4, 6}, 1);
            gc_input(&c, 1, 3, tb ? (int[]){3, 5, 6} : (int[]){3, 6, 5}, 1);
            gc_run(&c, f_bmm, ref_bmm, &m);
            gc_case_free(&c);
        }
    /* a·aᵀ: both gradients land in one buffer */
    spec m = {.Bt = 1, .M = 5, .N = 5, .K = 3, .ta = 0, .tb = 1};
    c = gc_case_new("matmul a x a^T", 2);
    gc_input(&c, 0, 2, (int[]){5, 3}, 1);
    gc_input(&c, 1, 2, (int[]){5, 3}, 0);
    gc_run(&c, f_matmul, ref_bmm, &m);
    gc_case_free(&c);

    /* conv2d: general stride/padding, kernel == stride (both patch paths),
     * no bias, one batch item, a grid larger than one scratch chunk */
    gc_conv("conv2d s(2,1) p(1,2)", 0,
            (spec){{3, 3, 9, 11}, {4, 3, 3, 2}, 2, 1, 1, 2, .bias = 1}, 1);
    gc_conv("conv2d kernel=stride (2,16)", 0,
            (spec){{3, 1, 4, 48}, {5, 1, 2, 16}, 2, 16, 0, 0, .bias = 1}, 1);
    gc_conv("conv2d kernel=stride (1,8) in place", 0,
            (spec){{3, 1, 3, 40}, {3, 1, 1, 8}, 1, 8, 0, 0, .bias = 1}, 1);
    gc_conv("conv2d kernel=stride 2 channels", 0,
            (spec){{2, 2, 4, 9}, {3, 2, 2, 3}, 2, 3, 0, 0, .bias = 1}, 1);
    gc_conv("conv2d no bias p(1,1)", 0,
            (spec){{3, 2, 7, 7}, {3, 2, 3, 3}, 1, 1, 1, 1, .bias = 0}, 1);
    gc_conv("conv2d B=1 stride>kernel", 0,
            (spec){{1, 2, 9, 10}, {3, 2, 2, 2}, 3, 3, 0, 1, .bias = 1}, 1);
    gc_conv("conv2d chunked grid (31x30, k5 p2)", 0,
            (spec){{2, 2, 31, 30}, {2, 2, 5, 5}, 1, 1, 2, 2, .bias = 1}, 1);
    gc_conv("conv2d 1->1 channel direct k(5,7) p(2,3)", 0,
            (spec){{3, 1, 9, 13}, {1, 1, 5, 7}, 1, 1, 2, 3, .bias = 1}, 1);
    gc_conv("conv2d 1->1 channel direct, padding wider than kernel", 0,
            (spec){{2, 1, 4, 5}, {1, 1, 3, 2}, 1, 1, 1, 3, .bias = 0}, 1);
    gc_conv("conv2d 1->1 channel, stride 2 (patch path)", 0,
            (spec){{2, 1, 9, 13}, {1, 1, 3, 3}, 2, 2, 1, 1, .bias = 1}, 1);
    gc_conv("conv2d x constant", 0,
            (spec){{2, 3, 5, 6}, {2, 3, 3, 3}, 1, 2, 1, 0, .bias = 1}, 0);

    /* conv_transpose2d: FEMBA decoder shape, general, stride 1, chunked */
    gc_conv("conv_transpose2d kernel=stride (2,16)", 1,
            (spec){{3, 5, 3, 4}, {5, 1, 2, 16}, 2, 16, 0, 0, .bias = 1}, 1);
    gc_conv("conv_transpose2d s(2,3) p(1,1)", 1,
            (spec){{2, 3, 4, 5}, {3, 2, 3, 4}, 2, 3, 1, 1, .bias = 1}, 1);
    gc_conv("conv_transpose2d no bias s1", 1,
            (spec){{3, 2, 5, 5}, {2, 3, 3, 3}, 1, 1, 0, 0, .bias = 0}, 1);
    gc_conv("conv_transpose2d B=1 stride>kernel", 1,
            (spec){{1, 2, 3, 4}, {2, 2, 2, 2}, 3, 3, 0, 0, .bias = 1}, 1);
    gc_conv("conv_transpose2d chunked grid", 1,
            (spec){{2, 3, 40, 30}, {3, 4, 3, 3}, 1, 1, 1, 0, .bias = 1}, 1);
}

/* ---- PyTorch parity --------------------------------------------------------- */

/* Persistent copy of a fixture tensor (grad only when requested). */
static mspt_tensor *from_fixture(mspt_params *ps, const fixture *f,
                                 const char *tag, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "%s.%s", tag, name);
    const fixture_tensor *ft = fixture_get(f, key);
    mspt_tensor *t = mspt_param_new(ps, key, ft->ndim, ft->shape, 0);
    memcpy(t->data, ft->data, ft->numel * sizeof(float));
    return t;
}

static void expect(const fixture *f, const char *tag, const char *name,
                   const float *got, size_t n, const char *what)
{
    char key[64];
    snprintf(key, sizeof key, "%s.%s", tag, name);
    const fixture_tensor *ft = fixture_get(f, key);
    double e = ft->numel == n ? fixture_max_rel_err(got, ft->data, n, 1e-3) : 1e30;
    if (!ok(e <= 1e-4, "%s %s: %s matches PyTorch", what, tag, name))
        diag("max rel err %.3g (numel %zu vs %zu)", e, n, ft->numel);
}

typedef enum { K_LINEAR, K_MATMUL, K_BMM, K_CONV, K_CONVT } kind;

/* Runs one fixture case: forward, backward with k.gy, compare y and grads. */
static void parity_case(const fixture *f, kind k, const char *tag, int ta,
                        int tb, int sh, int sw, int ph, int pw, int has_b)
{
    static const char *names[] = {"linear", "matmul", "bmm", "conv2d",
                                  "conv_transpose2d"};
    mspt_params *ps = mspt_params_new();
    mspt_ctx *ctx = mspt_ctx_new();
    int two = k == K_MATMUL || k == K_BMM;
    mspt_tensor *a = from_fixture(ps, f, tag, two ? "a" : "x");
    mspt_tensor *b = from_fixture(ps, f, tag, two ? "b" : "w");
    mspt_tensor *bias = has_b ? from_fixture(ps, f, tag, "b") : NULL;
    mspt_params_zero_grad(ps);
    mspt_tensor *y = NULL;
    switch (k) {
    case K_LINEAR: y = mspt_linear(ctx, a, b, bias); break;
    case K_MATMUL: y = mspt_matmul(ctx, a, b, ta, tb); break;
    case K_BMM: y = mspt_bmm(ctx, a, b, ta, tb); break;
    case K_CONV: y = mspt_conv2d(ctx, a, b, bias, sh, sw, ph, pw); break;
    case K_CONVT: y = mspt_conv_transpose2d(ctx, a, b, bias, sh, sw, ph, pw); break;
    }
    char key[64];
    snprintf(key, sizeof key, "%s.gy", tag);
    const fixture_tensor *gy = fixture_get(f, key);
    if (!ok(y && y->numel == gy->numel &&
                mspt_backward_with(ctx, y, gy->data) == 0,
            "%s %s: forward and backward run", names[k], tag)) {
        diag("%s", mspt_ctx_error(ctx) ? mspt_ctx_error(ctx) : "shape");
        goto done;
    }
    expect(f, tag, "y", y->data, y->numel, names[k]);
    expect(f, tag, two ? "ga" : "gx", a->grad, a->numel, names[k]);
    expect(f, tag, two ? "gb" : "gw", b->grad, b->numel, names[k]);
    if (bias)
        expect(f, tag, "gb", bias->grad, bias->numel, names[k]);
    /* a second step without zero_grad must add the same gradients again */
    mspt_ctx_reset(ctx);
    mspt_tensor *ins[3] = {a, b, bias};
    float *before[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3 && ins[i]; i++) {
        before[i] = malloc(ins[i]->numel * sizeof(float));
        memcpy(before[i], ins[i]->grad, ins[i]->numel * sizeof(float));
    }
    switch (k) {
    case K_LINEAR: y = mspt_linear(ctx, a, b, bias); break;
    case K_MATMUL: y = mspt_matmul(ctx, a, b, ta, tb); break;
    case K_BMM: y = mspt_bmm(ctx, a, b, ta, tb); break;
    case K_CONV: y = mspt_conv2d(ctx, a, b, bias, sh, sw, ph, pw); break;
    case K_CONVT: y = mspt_conv_transpose2d(ctx, a, b, bias, sh, sw, ph, pw); break;
    }
    int acc_ok = y && mspt_backward_with(ctx, y, gy->data) == 0;
    for (int i = 0; i < 3 && ins[i]; i++) {
        for (size_t j = 0; acc_ok && j < ins[i]->numel; j++)
            acc_ok &= fabsf(ins[i]->grad[j] - 2 * before[i][j]) <=
                      1e-5f * (1 + fabsf(before[i][j]));
        free(before[i]);
    }
    ok(acc_ok, "%s %s: a second backward accumulates into the gradients",
       names[k], tag);
done:
    mspt_ctx_free(ctx);
    mspt_params_free(ps);
}

static void parity(void)
{
    fixture *f = fixture_load("gemm_linear.txt");
    parity_case(f, K_LINEAR, "bias", 0, 0, 0, 0, 0, 0, 1);
    parity_case(f, K_LINEAR, "nobias", 0, 0, 0, 0, 0, 0, 0);
    fixture_free(f);

    f = fixture_load("gemm_matmul.txt");
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            char tag[16];
            snprintf(tag, sizeof tag, "mm%d%d", ta, tb);
            parity_case(f, K_MATMUL, tag, ta, tb, 0, 0, 0, 0, 0);
            snprintf(tag, sizeof tag, "bmm%d%d", ta, tb);
            parity_case(f, K_BMM, tag, ta, tb, 0, 0, 0, 0, 0);
        }
    fixture_free(f);

    /* the same table as CONV / CONVT in scripts/gen_fixtures_gemm.py */
    f = fixture_load("gemm_conv2d.txt");
    parity_case(f, K_CONV, "general", 0, 0, 2, 1, 1, 2, 1);
    parity_case(f, K_CONV, "patch", 0, 0, 2, 16, 0, 0, 1);
    parity_case(f, K_CONV, "rowpatch", 0, 0, 1, 40, 0, 0, 1);
    parity_case(f, K_CONV, "nobias", 0, 0, 1, 1, 1, 1, 0);
    parity_case(f, K_CONV, "single", 0, 0, 1, 1, 2, 3, 1);
    fixture_free(f);
    f = fixture_load("gemm_convt.txt");
    parity_case(f, K_CONVT, "decoder", 0, 0, 2, 16, 0, 0, 1);
    parity_case(f, K_CONVT, "general", 0, 0, 2, 3, 1, 1, 1);
    parity_case(f, K_CONVT, "nobias", 0, 0, 1, 1, 0, 0, 0);
    fixture_free(f);
}

/* ---- mspt_gemm directly ----------------------------------------------------- */

/* Sub-matrices with padded leading dims, alpha/beta, all transposes, and
 * sizes large enough to be cut over threads: by rows (300×290), by
 * columns (40×333, whose column cut does not fall on a multiple of 16) and
 * along K (37×45 over 2003, partial products added after the join). */
static void gemm_direct(void)
{
    int sizes[][3] = {{1, 1, 1},       {1, 9, 4},        {7, 1, 5},
                      {13, 11, 17},    {300, 290, 310},  {40, 333, 500},
                      {37, 45, 2003}};
    mspt_rng *rng = mspt_rng_new(7);
    for (int z = 0; z < 7; z++) {
        int M = sizes[z][0], N = sizes[z][1], K = sizes[z][2];
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
                size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb;
                float *A = malloc(na * 4), *B = malloc(nb * 4);
                float *C = malloc((size_t)M * ldc * 4);
                for (size_t i = 0; i < na; i++) A[i] = (float)(mspt_rng_uniform(rng) - 0.5);
                for (size_t i = 0; i < nb; i++) B[i] = (float)(mspt_rng_uniform(rng) - 0.5);
                for (size_t i = 0; i < (size_t)M * ldc; i++) C[i] = 1.0f;
                mspt_gemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 2.0f, C, ldc, 0);
                double worst = 0;
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double s = 0;
                        for (int k = 0; k < K; k++)
                            s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) *
                                 (tb ? B[j * ldb + k] : B[k * ldb + j]);
                        double e = fabs(C[i * ldc + j] - (0.5 * s + 2.0));
                        worst = e > worst ? e : worst;
                    }
                int pad_ok = 1; /* columns beyond N untouched */
                for (int i = 0; i < M; i++)
                    for (int j = N; j < ldc; j++)
                        pad_ok &= C[i * ldc + j] == 1.0f;
                ok(worst < 1e-4 * (1 + sqrt(K)) && pad_ok,
                   "gemm %dx%dx%d ta=%d tb=%d strided, alpha/beta (err %.2g)", M,
                   N, K, ta, tb, worst);
                free(A); free(B); free(C);
            }
    }
    float C[6] = {1, 2, 3, 4, 5, 6}, dummy = 0;
    mspt_gemm(0, 0, 2, 3, 0, 1.0f, &dummy, 1, &dummy, 3, 0.5f, C, 3, 0);
    ok(C[0] == 0.5f && C[5] == 3.0f, "gemm K=0 scales C by beta");
    mspt_rng_free(rng);
}

/* ---- error paths, no-grad, determinism, threads, kernel ------------------- */

static int fails_with(mspt_ctx *ctx, mspt_tensor *r, const char *op)
{
    const char *e = mspt_ctx_error(ctx);
    int good = r == NULL && e && strncmp(e, op, strlen(op)) == 0 &&
               e[strlen(op)] == ':';
    if (!good)
        diag("error: %s", e ? e : "(none)");
    mspt_ctx_reset(ctx);
    return good;
}

static void errors_and_modes(void)
{
    mspt_ctx *ctx = mspt_ctx_new();
    int s3[1] = {3}, s4[1] = {4};
    mspt_tensor *x = mspt_tensor_zeros(ctx, 2, (int[]){2, 5});
    mspt_tensor *w = mspt_tensor_zeros(ctx, 2, (int[]){3, 4});
    mspt_tensor *r = mspt_linear(ctx, x, w, NULL);
    const char *e = mspt_ctx_error(ctx);
    ok(r == NULL && e && strstr(e, "linear:") && strstr(e, "(2,5)") &&
           strstr(e, "(3,4)"),
       "linear shape mismatch names op and both shapes: %s", e ? e : "");
    mspt_ctx_reset(ctx);
    x = mspt_tensor_zeros(ctx, 2, (int[]){2, 4});
    w = mspt_tensor_zeros(ctx, 2, (int[]){3, 4});
    mspt_tensor *b3 = mspt_tensor_zeros(ctx, 1, s3);
    mspt_tensor *b4 = mspt_tensor_zeros(ctx, 1, s4);
    ok(fails_with(ctx, mspt_linear(ctx, x, w, b4), "linear"), "linear: wrong bias size");
    x = mspt_tensor_zeros(ctx, 2, (int[]){2, 4});
    b3 = mspt_tensor_zeros(ctx, 1, s3);
    b4 = mspt_tensor_zeros(ctx, 1, s4);
    ok(fails_with(ctx, mspt_linear(ctx, x, b4, NULL), "linear"), "linear: 1-D weight");
    ok(mspt_linear(ctx, NULL, b3, NULL) == NULL && !mspt_ctx_error(ctx),
       "linear: NULL input gives NULL without a new error");

    mspt_tensor *a = mspt_tensor_zeros(ctx, 2, (int[]){3, 4});
    mspt_tensor *bb = mspt_tensor_zeros(ctx, 2, (int[]){3, 4});
    ok(fails_with(ctx, mspt_matmul(ctx, a, bb, 0, 0), "matmul"), "matmul: inner dims differ");
    a = mspt_tensor_zeros(ctx, 2, (int[]){3, 4});
    bb = mspt_tensor_zeros(ctx, 2, (int[]){3, 4});
    ok(mspt_matmul(ctx, a, bb, 1, 0) != NULL, "matmul: aᵀ·b accepted for (3,4),(3,4)");
    mspt_tensor *a3 = mspt_tensor_zeros(ctx, 3, (int[]){2, 3, 4});
    mspt_tensor *b3d = mspt_tensor_zeros(ctx, 3, (int[]){3, 4, 5});
    ok(fails_with(ctx, mspt_bmm(ctx, a3, b3d, 0, 0), "bmm"), "bmm: batch sizes differ");
    a3 = mspt_tensor_zeros(ctx, 3, (int[]){2, 3, 4});
    bb = mspt_tensor_zeros(ctx, 2, (int[]){4, 4});
    ok(fails_with(ctx, mspt_bmm(ctx, a3, bb, 0, 0), "bmm"), "bmm: 2-D operand");

    mspt_tensor *cx = mspt_tensor_zeros(ctx, 4, (int[]){2, 3, 8, 8});
    mspt_tensor *cw = mspt_tensor_zeros(ctx, 4, (int[]){4, 2, 3, 3});
    ok(fails_with(ctx, mspt_conv2d(ctx, cx, cw, NULL, 1, 1, 0, 0), "conv2d"),
       "conv2d: channel mismatch");
    cx = mspt_tensor_zeros(ctx, 4, (int[]){2, 3, 2, 8});
    cw = mspt_tensor_zeros(ctx, 4, (int[]){4, 3, 3, 3});
    ok(fails_with(ctx, mspt_conv2d(ctx, cx, cw, NULL, 1, 1, 0, 0), "conv2d"),
       "conv2d: kernel taller than the padded input");
    cx = mspt_tensor_zeros(ctx, 4, (int[]){2, 3, 8, 8});
    cw = mspt_tensor_zeros(ctx, 4, (int[]){4, 3, 3, 3});
    ok(fails_with(ctx, mspt_conv2d(ctx, cx, cw, NULL, 0, 1, 0, 0), "conv2d"),
       "conv2d: zero stride");
    cx = mspt_tensor_zeros(ctx, 4, (int[]){2, 3, 8, 8});
    cw = mspt_tensor_zeros(ctx, 4, (int[]){4, 3, 3, 3});
    b3 = mspt_tensor_zeros(ctx, 1, s3);
    ok(fails_with(ctx, mspt_conv2d(ctx, cx, cw, b3, 1, 1, 0, 0), "conv2d"),
       "conv2d: bias size");
    cx = mspt_tensor_zeros(ctx, 3, (int[]){3, 8, 8});
    cw = mspt_tensor_zeros(ctx, 4, (int[]){4, 3, 3, 3});
    ok(fails_with(ctx, mspt_conv2d(ctx, cx, cw, NULL, 1, 1, 0, 0), "conv2d"),
       "conv2d: 3-D input");
    cx = mspt_tensor_zeros(ctx, 4, (int[]){2, 3, 8, 8});
    cw = mspt_tensor_zeros(ctx, 4, (int[]){4, 3, 3, 3});
    ok(fails_with(ctx, mspt_conv_transpose2d(ctx, cx, cw, NULL, 1, 1, 0, 0),
                  "conv_transpose2d"),
       "conv_transpose2d: weight (Cin, ...) must match x channels");
    cx = mspt_tensor_zeros(ctx, 4, (int[]){2, 3, 1, 1});
    cw = mspt_tensor_zeros(ctx, 4, (int[]){3, 2, 2, 2});
    ok(fails_with(ctx, mspt_conv_transpose2d(ctx, cx, cw, NULL, 1, 1, 1, 1),
                  "conv_transpose2d"),
       "conv_transpose2d: padding eats the whole output");

    /* no-grad mode: nothing recorded, outputs need no grad */
    mspt_params *ps = mspt_params_new();
    mspt_tensor *pw = mspt_param_new(ps, "w", 2, (int[]){3, 4}, 0);
    mspt_tensor *pc = mspt_param_new(ps, "c", 4, (int[]){2, 3, 2, 2}, 0);
    mspt_tensor *pt = mspt_param_new(ps, "t", 4, (int[]){3, 2, 2, 2}, 0);
    mspt_ctx_set_grad(ctx, 0);
    x = mspt_tensor_zeros(ctx, 2, (int[]){5, 4});
    mspt_tensor *y1 = mspt_linear(ctx, x, pw, NULL);
    mspt_tensor *y2 = mspt_matmul(ctx, x, pw, 0, 1);
    mspt_tensor *y3 = mspt_conv2d(ctx, mspt_tensor_zeros(ctx, 4, (int[]){1, 3, 4, 4}),
                                  pc, NULL, 1, 1, 0, 0);
    mspt_tensor *y4 = mspt_conv_transpose2d(
        ctx, mspt_tensor_zeros(ctx, 4, (int[]){1, 3, 4, 4}), pt, NULL, 2, 2, 0, 0);
    ok(y1 && y2 && y3 && y4 && !y1->requires_grad && !y2->requires_grad &&
           !y3->requires_grad && !y4->requires_grad && mspt_tape_length(ctx) == 0,
       "no-grad mode: linear, matmul, conv2d, conv_transpose2d record nothing");
    mspt_ctx_set_grad(ctx, 1);
    mspt_ctx_reset(ctx);
    x = mspt_tensor_zeros(ctx, 2, (int[]){5, 4});
    y1 = mspt_linear(ctx, x, pw, NULL);
    ok(y1 && y1->requires_grad && mspt_tape_length(ctx) == 1,
       "grad mode: linear on a parameter records one tape entry");
    mspt_params_free(ps);
    mspt_ctx_free(ctx);
}

/* Two identical conv2d/conv_transpose2d/linear backward passes on all
 * threads give bit-identical gradients. */
static void determinism(void)
{
    mspt_params *ps = mspt_params_new();
    mspt_rng *rng = mspt_rng_new(3);
    mspt_tensor *x = mspt_param_new(ps, "x", 4, (int[]){8, 1, 6, 160}, 0);
    mspt_tensor *w = mspt_param_new(ps, "w", 4, (int[]){7, 1, 2, 16}, 0);
    mspt_tensor *b = mspt_param_new(ps, "b", 1, (int[]){7}, 0);
    mspt_tensor *wt = mspt_param_new(ps, "wt", 4, (int[]){7, 1, 2, 16}, 0);
    mspt_tensor *lw = mspt_param_new(ps, "lw", 2, (int[]){21, 21}, 0);
    for (size_t i = 0; i < mspt_params_count(ps); i++)
        mspt_init_uniform(mspt_params_at(ps, i), rng, -1, 1);
    size_t total = mspt_params_numel(ps);
    float *first = malloc(total * sizeof(float));
    int same = 1;
    mspt_ctx *ctx = mspt_ctx_new();
    for (int run = 0; run < 2; run++) {
        mspt_params_zero_grad(ps);
        mspt_tensor *y = mspt_conv2d(ctx, x, w, b, 2, 16, 0, 0); /* (8,7,3,10) */
        mspt_tensor *u = mspt_linear(ctx, mspt_reshape(ctx, y, 2, (int[]){80, 21}), lw, NULL);
        mspt_tensor *z = mspt_conv_transpose2d(
            ctx, mspt_reshape(ctx, u, 4, (int[]){8, 7, 3, 10}), wt, NULL, 2, 16, 0, 0);
        float *g = z ? malloc(z->numel * sizeof(float)) : NULL;
        for (size_t i = 0; g && i < z->numel; i++)
            g[i] = (float)sin((double)i);
        if (!z || mspt_backward_with(ctx, z, g) != 0) {
            diag("%s", mspt_ctx_error(ctx) ? mspt_ctx_error(ctx) : "?");
            same = 0;
        }
        free(g);
        size_t off = 0;
        for (size_t i = 0; i < mspt_params_count(ps); i++) {
            mspt_tensor *p = mspt_params_at(ps, i);
            if (run == 0)
                memcpy(first + off, p->grad, p->numel * sizeof(float));
            else
                same &= memcmp(first + off, p->grad, p->numel * sizeof(float)) == 0;
            off += p->numel;
        }
        mspt_ctx_reset(ctx);
    }
    ok(same, "conv2d -> linear -> conv_transpose2d gradients bit-identical run to run (%d threads)",
       mspt_get_threads());
    free(first);
    mspt_ctx_free(ctx);
    mspt_rng_free(rng);
    mspt_params_free(ps);
}

static void threads_and_kernel(void)
{
    int n0 = mspt_get_threads();
    ok(n0 >= 1, "default threads = %d", n0);
    mspt_set_threads(1);
    ok(mspt_get_threads() == 1, "set_threads(1)");
    mspt_set_threads(0);
    ok(mspt_get_threads() == n0, "set_threads(0) restores the default");
    ok(mspt_gemm_threads(64, 64, 64) == 1, "a 64³ GEMM is not split");
    ok(mspt_gemm_threads(40, 40, 100) == 1,
       "a 40×40×100 GEMM is not split");
    ok(mspt_gemm_threads(40, 40, 1 << 20) == n0,
       "a 40×40 output over a long K is cut along K");
    ok(mspt_gemm_threads(256, 256, 4096) == n0,
       "a 256×256×4096 GEMM is cut over every thread");
    ok(mspt_gemm_threads(1024, 1024, 1024) == n0, "a 1024³ GEMM uses every thread");
    const char *k = mspt_blas_kernel();
    ok(k && *k, "BLIS kernel reported: %s", k ? k : "(null)");
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!getenv("MSPT_BLIS_ARCH") && !getenv("BLIS_ARCH_TYPE") &&
        __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        ok(strcmp(k, "skx") == 0, "AVX-512 CPU gets BLIS's skx kernels (got %s)", k);
#endif
}

int main(void)
{
    threads_and_kernel();
    gemm_direct();
    gradchecks();
    mspt_set_threads(1); /* the same checks with single-threaded blocks */
    gc_conv("conv2d 1 thread", 0,
            (spec){{3, 3, 9, 11}, {4, 3, 3, 2}, 2, 1, 1, 2, .bias = 1}, 1);
    gc_conv("conv2d 1->1 channel 1 thread", 0,
            (spec){{3, 1, 9, 13}, {1, 1, 5, 7}, 1, 1, 2, 3, .bias = 1}, 1);
    gc_conv("conv_transpose2d 1 thread", 1,
            (spec){{3, 3, 4, 5}, {3, 2, 3, 4}, 2, 3, 1, 1, .bias = 1}, 1);
    mspt_set_threads(0);
    parity();
    errors_and_modes();
    determinism();
    return tap_done();
}
