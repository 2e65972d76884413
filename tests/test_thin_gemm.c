/* The thin-GEMM kernels (core/engine/thin_gemm.c) against a double-precision
 * reference: every shape the linear layers of DESIGN.md's models hand them
 * (dt_proj 25 → 1540 with its bias column, a 192 → 40 head, x_proj's 57
 * outputs) and small ones that exercise every edge — rows left over below
 * a tile, columns past a vector, one column, K of 1 — with alpha, beta and
 * padded leading dimensions.  Each product is also run with the kernels
 * off (BLIS alone) against the same reference; and with them on, the
 * result must be bit-identical on 1 and on 2 threads (threads take whole
 * tiles, never a share of K).  On a CPU without AVX-512 the kernel points
 * are skips and BLIS is still checked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mspt/mspt.h>

#include "engine/gemm.h"
#include "tap.h"

typedef struct {
    const char *what;
    int ta, tb, M, N, K;
    float alpha, beta;
    int pad; /* extra floats at the end of every row of A, B and C */
    int thin; /* 1: the kernels must take it; 0: they must leave it to BLIS */
} gemm_case;

static float *filled(size_t n, unsigned *seed)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = (float)(*seed >> 9) / 4194304.0f - 1.0f; /* 23 random bits */
    }
    return p;
}

/* C = alpha·op(A)·op(B) + beta·C0 in double; scale[i] = Σ|terms| of C[i]
 * (the size of the rounding a float sum may make). */
static void reference(const gemm_case *g, const float *A, int lda,
                      const float *B, int ldb, const float *C0, int ldc,
                      double *ref, double *scale)
{
    for (int i = 0; i < g->M; i++)
        for (int j = 0; j < g->N; j++) {
            double s = 0, a = 0;
            for (int k = 0; k < g->K; k++) {
                double x = g->ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double y = g->tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += x * y;
                a += fabs(x * y);
            }
            double bc = g->beta != 0.0f ? g->beta * C0[(size_t)i * ldc + j] : 0.0;
            ref[(size_t)i * g->N + j] = g->alpha * s + bc;
            scale[(size_t)i * g->N + j] = fabs(g->alpha) * a + fabs(bc) + 1e-30;
        }
}

/* Worst |C − ref| / scale over C; the padding past N must be untouched. */
static double worst(const gemm_case *g, const float *C, const float *C0,
                    int ldc, const double *ref, const double *scale,
                    int *pad_ok)
{
    double w = 0;
    *pad_ok = 1;
    for (int i = 0; i < g->M; i++) {
        for (int j = 0; j < g->N; j++) {
            double d = fabs(C[(size_t)i * ldc + j] - ref[(size_t)i * g->N + j]) /
                       scale[(size_t)i * g->N + j];
            w = isnan(d) || d > w ? (isnan(d) ? INFINITY : d) : w;
        }
        for (int j = g->N; j < ldc; j++)
            *pad_ok &= memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j],
                              sizeof(float)) == 0;
    }
    return w;
}

static void run(const gemm_case *g, int have_thin)
{
    unsigned seed = 12345u + (unsigned)(g->M * 31 + g->N * 7 + g->K);
    int ar = g->ta ? g->K : g->M, ac = g->ta ? g->M : g->K;
    int br = g->tb ? g->N : g->K, bc = g->tb ? g->K : g->N;
    int lda = ac + g->pad, ldb = bc + g->pad, ldc = g->N + g->pad;
    float *A = filled((size_t)ar * lda, &seed), *B = filled((size_t)br * ldb, &seed);
    float *C0 = filled((size_t)g->M * ldc, &seed);
    float *C = malloc((size_t)g->M * ldc * sizeof(float));
    float *C1 = malloc((size_t)g->M * ldc * sizeof(float));
    double *ref = malloc((size_t)g->M * g->N * sizeof(double));
    double *scale = malloc((size_t)g->M * g->N * sizeof(double));
    if (g->beta == 0.0f) /* beta = 0 must not read C: poison it */
        for (size_t i = 0; i < (size_t)g->M * ldc; i++)
            if (i % ldc < (size_t)g->N)
                C0[i] = NAN;
    reference(g, A, lda, B, ldb, C0, ldc, ref, scale);
    const double tol = 2e-6; /* a few float roundings of Σ|terms| */
    int pad_ok;

    /* BLIS alone */
    mspt_thin_gemm_enable(0);
    memcpy(C, C0, (size_t)g->M * ldc * sizeof(float));
    mspt_gemm(g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, lda, B, ldb,
              g->beta, C, ldc, 0);
    double e = worst(g, C, C0, ldc, ref, scale, &pad_ok);
    ok(e <= tol && pad_ok, "%s: BLIS alone, error %.2g of the terms' size",
       g->what, e);

    if (!have_thin) {
        printf("ok %d # SKIP %s: thin kernels (no AVX-512 on this CPU)\n",
               ++tap_count, g->what);
        printf("ok %d # SKIP %s: same bits on 1 and 2 threads\n",
               ++tap_count, g->what);
        goto done;
    }
    mspt_thin_gemm_enable(1);
    memcpy(C, C0, (size_t)g->M * ldc * sizeof(float));
    int took = mspt_thin_gemm(g->ta, g->tb, g->M, g->N, g->K, g->alpha, A,
                              lda, B, ldb, g->beta, C, ldc, 0);
    if (g->thin) {
        e = worst(g, C, C0, ldc, ref, scale, &pad_ok);
        ok(took && e <= tol && pad_ok,
           "%s: thin kernel, error %.2g of the terms' size%s", g->what, e,
           took ? "" : " (not taken)");
        /* same product on one thread: the same bits */
        int nt = mspt_get_threads();
        mspt_set_threads(1);
        memcpy(C1, C0, (size_t)g->M * ldc * sizeof(float));
        mspt_thin_gemm(g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, lda, B,
                       ldb, g->beta, C1, ldc, 0);
        mspt_set_threads(2);
        memcpy(C, C0, (size_t)g->M * ldc * sizeof(float));
        mspt_thin_gemm(g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, lda, B,
                       ldb, g->beta, C, ldc, 0);
        mspt_set_threads(nt);
        ok(memcmp(C, C1, (size_t)g->M * ldc * sizeof(float)) == 0,
           "%s: same bits on 1 and 2 threads", g->what);
    } else {
        ok(!took && memcmp(C, C0, (size_t)g->M * ldc * sizeof(float)) == 0,
           "%s: left to BLIS, C untouched", g->what);
    }
done:
    free(A);
    free(B);
    free(C0);
    free(C);
    free(C1);
    free(ref);
    free(scale);
}

/* mspt_thin_linear_backward: gx += gy·w, gw += gyᵀ·x and gb += Σ_r gy
 * in one pass, against double sums; every gradient starts non-zero (they
 * accumulate), x's rows are ldx apart, gx and gb may be absent. */
static void run_fused(const char *what, int R, int I, int O, int ldx,
                      int with_gx, int with_gb, int have_thin)
{
    unsigned seed = 777u + (unsigned)(R + I + O);
    float *gy = filled((size_t)R * O, &seed), *w = filled((size_t)O * I, &seed);
    float *x = filled((size_t)R * ldx, &seed);
    float *g0 = filled((size_t)R * I + (size_t)O * I + O, &seed);
    float *g = malloc(((size_t)R * I + (size_t)O * I + O) * sizeof(float));
    memcpy(g, g0, ((size_t)R * I + (size_t)O * I + O) * sizeof(float));
    float *gx = g, *gw = g + (size_t)R * I, *gb = gw + (size_t)O * I;
    const float *gx0 = g0, *gw0 = g0 + (size_t)R * I, *gb0 = gw0 + (size_t)O * I;
    if (!have_thin) {
        printf("ok %d # SKIP %s: no AVX-512 on this CPU\n", ++tap_count, what);
        goto done;
    }
    mspt_thin_gemm_enable(1);
    int took = mspt_thin_linear_backward(R, I, O, gy, w, x, ldx,
                                         with_gx ? gx : NULL, gw,
                                         with_gb ? gb : NULL);
    double ex = 0, ew = 0, eb = 0;
    for (int r = 0; took && r < R; r++)
        for (int i = 0; i < I; i++) {
            double sum = gx0[(size_t)r * I + i], mag = fabs(sum);
            for (int o = 0; with_gx && o < O; o++) {
                double t = (double)gy[(size_t)r * O + o] * w[(size_t)o * I + i];
                sum += t;
                mag += fabs(t);
            }
            ex = fmax(ex, fabs(gx[(size_t)r * I + i] - sum) / mag);
        }
    for (int o = 0; took && o < O; o++) {
        for (int i = 0; i <= I; i++) {
            double sum = i < I ? gw0[(size_t)o * I + i] : gb0[o], mag = fabs(sum);
            for (int r = 0; r < R && (i < I || with_gb); r++) {
                double t = (i < I ? x[(size_t)r * ldx + i] : 1.0) * gy[(size_t)r * O + o];
                sum += t;
                mag += fabs(t);
            }
            double got = i < I ? gw[(size_t)o * I + i] : gb[o];
            if (i < I)
                ew = fmax(ew, fabs(got - sum) / mag);
            else
                eb = fmax(eb, fabs(got - sum) / mag);
        }
    }
    ok(took && ex <= 2e-6 && ew <= 2e-6 && eb <= 2e-6,
       "%s: one pass over gy: gx %.2g, gw %.2g, gb %.2g of the terms' "
       "size%s", what, ex, ew, eb, took ? "" : " (not taken)");
done:
    free(gy);
    free(w);
    free(x);
    free(g0);
    free(g);
}

/* mspt_linear, whatever path it takes, against double sums: y, gx, gw
 * and gb (with a bias) — dt_proj's shape and a head's among them. */
static void run_linear(int R, int I, int O, int bias)
{
    unsigned seed = 4242u;
    mspt_params *ps = mspt_params_new();
    mspt_tensor *x = mspt_param_new(ps, "x", 2, (int[]){R, I}, 0);
    mspt_tensor *w = mspt_param_new(ps, "w", 2, (int[]){O, I}, 0);
    mspt_tensor *b = mspt_param_new(ps, "b", 1, (int[]){O}, 0);
    if (!bias)
        memset(b->data, 0, (size_t)O * sizeof(float));
    float *gy = filled((size_t)R * O, &seed);
    float *v = filled((size_t)R * I + (size_t)O * I + O, &seed);
    memcpy(x->data, v, (size_t)R * I * sizeof(float));
    memcpy(w->data, v + (size_t)R * I, (size_t)O * I * sizeof(float));
    if (bias)
        memcpy(b->data, v + (size_t)R * I + (size_t)O * I, (size_t)O * sizeof(float));
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_tensor *y = mspt_linear(ctx, x, w, bias ? b : NULL);
    mspt_backward_with(ctx, y, gy);
    double ey = 0, ex = 0, ew = 0, eb = 0;
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++) {
            double sum = b->data[o], mag = fabs(sum);
            for (int i = 0; i < I; i++) {
                double t = (double)x->data[(size_t)r * I + i] * w->data[(size_t)o * I + i];
                sum += t;
                mag += fabs(t);
            }
            ey = fmax(ey, fabs(y->data[(size_t)r * O + o] - sum) / mag);
        }
    for (int r = 0; r < R; r++)
        for (int i = 0; i < I; i++) {
            double sum = 0, mag = 1e-30;
            for (int o = 0; o < O; o++) {
                double t = (double)gy[(size_t)r * O + o] * w->data[(size_t)o * I + i];
                sum += t;
                mag += fabs(t);
            }
            ex = fmax(ex, fabs(x->grad[(size_t)r * I + i] - sum) / mag);
        }
    for (int o = 0; o < O; o++) {
        double sb = 0, mb = 1e-30;
        for (int r = 0; r < R; r++) {
            sb += gy[(size_t)r * O + o];
            mb += fabs(gy[(size_t)r * O + o]);
        }
        if (bias)
            eb = fmax(eb, fabs(b->grad[o] - sb) / mb);
        for (int i = 0; i < I; i++) {
            double sum = 0, mag = 1e-30;
            for (int r = 0; r < R; r++) {
                double t = (double)gy[(size_t)r * O + o] * x->data[(size_t)r * I + i];
                sum += t;
                mag += fabs(t);
            }
            ew = fmax(ew, fabs(w->grad[(size_t)o * I + i] - sum) / mag);
        }
    }
    ok(!mspt_ctx_error(ctx) && ey <= 2e-6 && ex <= 2e-6 && ew <= 2e-6 &&
           eb <= 2e-6,
       "linear %d x %d -> %d%s: y %.2g, gx %.2g, gw %.2g, gb %.2g of the "
       "terms' size", R, I, O, bias ? " + b" : "", ey, ex, ew, eb);
    mspt_ctx_free(ctx);
    mspt_params_free(ps);
    free(gy);
    free(v);
}

int main(void)
{
    static const gemm_case cases[] = {
        /* the layers of DESIGN.md's models (see bench/bench_engine.c) */
        {"dt_proj forward [x|1]·[w|b]ᵀ", 0, 1, 1280, 1540, 26, 1, 0, 0, 1},
        {"dt_proj dx = gy·w", 0, 0, 1280, 25, 1540, 1, 1, 0, 1},
        {"dt_proj [dw|db] = gyᵀ·[x|1]", 1, 0, 1540, 26, 1280, 1, 0, 0, 1},
        {"head forward x·wᵀ + y", 0, 1, 5632, 40, 192, 1, 1, 0, 1},
        {"head dx = gy·w", 0, 0, 5632, 192, 40, 1, 1, 0, 1},
        {"head dw = gyᵀ·x", 1, 0, 40, 192, 5632, 1, 1, 0, 1},
        {"x_proj forward x·wᵀ", 0, 1, 1280, 57, 1540, 1, 0, 0, 1},
        {"x_proj dx = gy·w", 0, 0, 1280, 1540, 57, 1, 1, 0, 1},
        {"x_proj dw = gyᵀ·x", 1, 0, 57, 1540, 1280, 1, 1, 0, 1},
        {"65 outputs' dw (BLIS)", 1, 0, 65, 1540, 1280, 1, 1, 0, 0},
        {"65 inner, 65 wide (BLIS)", 0, 0, 300, 65, 65, 1, 0, 0, 0},
        {"square 256³ (BLIS)", 0, 0, 256, 256, 256, 1, 0, 0, 0},
        /* edges: row tails below 8 and 12, column tails, padded rows */
        {"rows: 8-row tiles + 5 left, 3 panels + 7", 0, 0, 77, 103, 9, 0.5f, -2, 3, 1},
        {"rows: 12-row tiles + 1 left, 17 columns", 0, 1, 73, 17, 30, 1, 0.25f, 1, 1},
        {"rows: 9 panels, 3 rows left", 0, 0, 75, 400, 20, 1, 0.5f, 2, 1},
        {"rows: panels of Bᵀ, 5 rows left", 0, 1, 101, 420, 33, 0.5f, 1, 1, 1},
        {"rows: 6-row tiles of 64 columns + 5 rows left, 50 columns", 0, 1, 71, 50, 100, 1, 1, 3, 1},
        {"rows: one column, K = 1", 0, 0, 70, 1, 1, -1, 0, 2, 1},
        {"rows: N ≤ 48, long K", 0, 1, 65, 48, 700, 1, 1, 0, 1},
        {"sums: w = N, s tails 4+2+1", 1, 0, 15, 130, 300, 2, 0.5f, 5, 1},
        {"sums: w = M (transposed out), s = 1", 1, 0, 200, 1, 2100, 1, 1, 0, 1},
        {"sums: K over two chunks, 48-wide strip tail", 1, 0, 33, 49, 1500, 1, 0, 1, 1},
    };
    mspt_thin_gemm_enable(1);
    int have_thin = mspt_thin_gemm_enable(1); /* on if the CPU has them */
    mspt_set_threads(2);
    diag("thin kernels %s", have_thin ? "available" : "not available");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run(&cases[i], have_thin);
    run_fused("dt_proj backward (1280, 25 -> 1540)", 1280, 25, 1540, 25, 1, 1,
              have_thin);
    run_fused("dt_proj backward from [x | 1]", 1280, 25, 1540, 26, 1, 1,
              have_thin);
    run_fused("odd sizes: rows 7·96 + 53, 3 inputs, 300 outputs", 725, 3, 300,
              3, 1, 1, have_thin);
    run_fused("32 inputs, 1 row block, no gx", 256, 32, 257, 32, 0, 1,
              have_thin);
    run_fused("8 inputs (ones on an 8-tile), no gb", 300, 8, 400, 8, 1, 0,
              have_thin);
    run_fused("24 inputs, gb on an 8-tile", 300, 24, 400, 24, 1, 1, have_thin);
    run_linear(1280, 25, 1540, 1); /* FEMBA-Tiny's dt_proj */
    run_linear(5632, 192, 40, 1);  /* the Transformer's head */
    run_linear(301, 7, 260, 1);
    run_linear(300, 64, 33, 1);
    run_linear(300, 64, 33, 0);
    run_linear(500, 20, 600, 0);
    run_linear(8000, 1, 300, 1); /* one input: packing has rows for one thread */
    run_linear(1200, 64, 33, 1); /* 2 threads' strips of 32: gb on a narrow one */
    run_linear(2000, 40, 20, 1); /* w narrower than a strip */
    run_linear(600, 200, 57, 1); /* gb beside gw over 57 outputs: 7 tiles + 1 */
    mspt_thin_gemm_enable(0); /* the same with BLIS alone */
    run_linear(1280, 25, 1540, 1);
    run_linear(5632, 192, 40, 1);
    mspt_thin_gemm_enable(1);
    return tap_done();
}
