/* Fused ops: depthwise causal conv1d, attention, rotary, selective scan.
 * Finite-difference gradient checks against double references, PyTorch
 * parity (tests/fixtures/fused_*.txt), attention against a naive double
 * implementation past its block size, memory bounds (no N×N, no (B,L,D,N)),
 * determinism, errors and no-grad mode.  Attention dropout: gradient checks
 * with a fixed seed (the double reference rebuilds the mask from the
 * documented stream), the fraction dropped, p = 0 and eval mode
 * bit-identical to plain attention, a mask independent of the thread
 * count. */
#include <math.h>
#include <string.h>

#include <mspt/mspt.h>

#include "fixture.h"
#include "gradcheck.h"
#include "ops/counter_rng.h"
#include "tap.h"

/* ---- depthwise causal conv1d ------------------------------------------ */

typedef struct { int B, L, D, K, bias; } dw_ud;

static mspt_tensor *dw_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    dw_ud *u = ud;
    return mspt_dwconv1d_causal(ctx, in[0], in[1], u->bias ? in[2] : NULL);
}

static void dw_d(double *const *in, double *out, void *ud)
{
    dw_ud *u = ud;
    for (int b = 0; b < u->B; b++)
        for (int t = 0; t < u->L; t++)
            for (int d = 0; d < u->D; d++) {
                double s = u->bias ? in[2][d] : 0.0;
                for (int k = 0; k < u->K; k++) {
                    int ts = t - (u->K - 1) + k;
                    if (ts >= 0)
                        s += in[1][d * u->K + k] *
                             in[0][((size_t)b * u->L + ts) * u->D + d];
                }
                out[((size_t)b * u->L + t) * u->D + d] = s;
            }
}

static void check_dwconv(const char *name, int B, int L, int D, int K, int bias)
{
    gc_case c = gc_case_new(name, bias ? 3 : 2);
    gc_input(&c, 0, 3, (int[]){B, L, D}, 1);
    gc_input(&c, 1, 3, (int[]){D, 1, K}, 1);
    if (bias)
        gc_input(&c, 2, 1, (int[]){D}, 1);
    dw_ud u = {B, L, D, K, bias};
    gc_run(&c, dw_f, dw_d, &u);
    gc_case_free(&c);
}

/* ---- attention ---------------------------------------------------------- */

typedef struct { int BH, N, hd; float scale; } att_ud;

static mspt_tensor *att_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    return mspt_attention(ctx, in[0], in[1], in[2], ((att_ud *)ud)->scale);
}

/* Naive attention of one head in double: O = softmax(s·Q Kᵀ) V, and, when
 * dO is given, dQ, dK, dV by the textbook softmax backward.  P (N, N). */
static void att_naive_head(const double *Q, const double *K, const double *V,
                           double *O, const double *dO, double *dQ, double *dK,
                           double *dV, double *P, int N, int hd, double s)
{
    for (int i = 0; i < N; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < N; j++) {
            double a = 0;
            for (int c = 0; c < hd; c++)
                a += Q[i * hd + c] * K[j * hd + c];
            P[(size_t)i * N + j] = a * s;
            mx = fmax(mx, a * s);
        }
        for (int j = 0; j < N; j++)
            sum += P[(size_t)i * N + j] = exp(P[(size_t)i * N + j] - mx);
        for (int j = 0; j < N; j++)
            P[(size_t)i * N + j] /= sum;
        for (int c = 0; c < hd; c++) {
            double o = 0;
            for (int j = 0; j < N; j++)
                o += P[(size_t)i * N + j] * V[j * hd + c];
            O[i * hd + c] = o;
        }
    }
    if (!dO)
        return;
    memset(dQ, 0, sizeof(double) * N * hd);
    memset(dK, 0, sizeof(double) * N * hd);
    memset(dV, 0, sizeof(double) * N * hd);
    for (int i = 0; i < N; i++) {
        /* dP_ij = dO_i·V_j;  dS_ij = P_ij (dP_ij − Σ_k P_ik dP_ik) */
        double *dP = malloc(sizeof(double) * N), dot = 0;
        for (int j = 0; j < N; j++) {
            double a = 0;
            for (int c = 0; c < hd; c++)
                a += dO[i * hd + c] * V[j * hd + c];
            dP[j] = a;
            dot += P[(size_t)i * N + j] * a;
        }
        for (int j = 0; j < N; j++) {
            double p = P[(size_t)i * N + j], ds = p * (dP[j] - dot);
            for (int c = 0; c < hd; c++) {
                dV[j * hd + c] += p * dO[i * hd + c];
                dQ[i * hd + c] += s * ds * K[j * hd + c];
                dK[j * hd + c] += s * ds * Q[i * hd + c];
            }
        }
        free(dP);
    }
}

static void att_d(double *const *in, double *out, void *ud)
{
    att_ud *u = ud;
    size_t head = (size_t)u->N * u->hd;
    double *P = malloc(sizeof(double) * u->N * u->N);
    for (int bh = 0; bh < u->BH; bh++)
        att_naive_head(in[0] + bh * head, in[1] + bh * head, in[2] + bh * head,
                       out + bh * head, NULL, NULL, NULL, NULL, P, u->N, u->hd,
                       u->scale);
    free(P);
}

static void check_attention_grad(const char *name, int B, int H, int N, int hd)
{
    gc_case c = gc_case_new(name, 3);
    for (int i = 0; i < 3; i++)
        gc_input(&c, i, 4, (int[]){B, H, N, hd}, 1);
    att_ud u = {B * H, N, hd, 1.0f / sqrtf((float)hd)};
    gc_run(&c, att_f, att_d, &u);
    gc_case_free(&c);
}

static double max_rel_err_d(const float *got, const double *want, size_t n,
                            double floor)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / fmax(fabs(want[i]), floor);
        if (e > worst || isnan(e))
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

/* Every element of O, dQ, dK, dV against the naive double version, at sizes
 * that are, are not, and exceed the 64-row blocks. */
static void check_attention_naive(int B, int H, int N, int hd)
{
    mspt_params *ps = mspt_params_new();
    mspt_rng *rng = mspt_rng_new(7);
    mspt_ctx *ctx = mspt_ctx_new();
    int shape[4] = {B, H, N, hd};
    mspt_tensor *t[3];
    const char *nm[3] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++) {
        t[i] = mspt_param_new(ps, nm[i], 4, shape, 0);
        mspt_init_uniform(t[i], rng, -2.0f, 2.0f);
    }
    size_t n = t[0]->numel, head = (size_t)N * hd;
    float scale = 1.0f / sqrtf((float)hd);
    mspt_tensor *o = mspt_attention(ctx, t[0], t[1], t[2], scale);
    float *go = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        go[i] = (float)(2 * mspt_rng_uniform(rng) - 1);
    int rc = o ? mspt_backward_with(ctx, o, go) : -1;

    double *d[5], *ref[4], *P = malloc(sizeof(double) * N * N);
    for (int i = 0; i < 5; i++)
        d[i] = malloc(n * sizeof(double));
    for (int i = 0; i < 4; i++)
        ref[i] = malloc(n * sizeof(double));
    for (size_t j = 0; j < n; j++) {
        for (int i = 0; i < 3; i++)
            d[i][j] = t[i]->data[j];
        d[3][j] = go[j];
    }
    for (int bh = 0; bh < B * H; bh++) {
        size_t off = bh * head;
        att_naive_head(d[0] + off, d[1] + off, d[2] + off, ref[0] + off,
                       d[3] + off, ref[1] + off, ref[2] + off, ref[3] + off, P,
                       N, hd, scale);
    }
    if (ok(rc == 0, "attention N=%d: forward and backward run", N)) {
        const float *got[4] = {o->data, t[0]->grad, t[1]->grad, t[2]->grad};
        const char *what[4] = {"output", "dq", "dk", "dv"};
        /* every element is a sum of N terms of size ~1 that cancel (O mixes
         * v of both signs; rows of dS sum to 0): float32 leaves ~1e-7
         * absolute error, so small elements are judged against a floor of
         * 1e-2, i.e. to 1e-6 absolute */
        for (int i = 0; i < 4; i++) {
            double e = max_rel_err_d(got[i], ref[i], n, 1e-2);
            if (!ok(e <= 1e-4, "attention N=%d (B=%d H=%d hd=%d): %s matches "
                    "naive double attention", N, B, H, hd, what[i]))
                diag("max rel err %.3g", e);
        }
    } else {
        diag("%s", mspt_ctx_error(ctx) ? mspt_ctx_error(ctx) : "?");
    }
    for (int i = 0; i < 5; i++)
        free(d[i]);
    for (int i = 0; i < 4; i++)
        free(ref[i]);
    free(P);
    free(go);
    mspt_ctx_free(ctx);
    mspt_rng_free(rng);
    mspt_params_free(ps);
}

static mspt_tensor *rand_param(mspt_params *ps, mspt_rng *rng, const char *name,
                               int ndim, const int *shape);

/* ---- attention dropout ---------------------------------------------------- */

#define DROP_SEED 424242

typedef struct {
    int BH, N, hd;
    float scale, p;
    mspt_rng *rng;  /* reseeded to DROP_SEED before each call */
    uint64_t seed;  /* the stream seed the op draws from it */
} attd_ud;

/* Kept: the op's documented stream, element (b·h, i, j) = (bh·N + i)·N + j. */
static int attd_kept(uint64_t seed, float p, size_t idx)
{
    uint64_t h = crng_splitmix_at(seed, idx >> 1);
    uint64_t u = idx & 1 ? h >> 32 : h & 0xffffffffULL;
    return u < (uint64_t)ldexp(1.0 - (double)p, 32);
}

static mspt_tensor *attd_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    attd_ud *u = ud;
    mspt_rng_seed(u->rng, DROP_SEED);
    mspt_ctx_set_rng(ctx, u->rng);
    mspt_ctx_set_training(ctx, 1);
    return mspt_attention_dropout(ctx, in[0], in[1], in[2], u->scale, u->p);
}

/* O = (softmax(s·Q Kᵀ) ∘ M/(1 − p)) V in double, M from the stream. */
static void attd_d(double *const *in, double *out, void *ud)
{
    attd_ud *u = ud;
    int N = u->N, hd = u->hd;
    size_t head = (size_t)N * hd;
    double *P = malloc(sizeof(double) * N * N);
    for (int bh = 0; bh < u->BH; bh++) {
        const double *Q = in[0] + bh * head, *K = in[1] + bh * head;
        const double *V = in[2] + bh * head;
        /* P from the naive attention's forward (its O is overwritten) */
        att_naive_head(Q, K, V, out + bh * head, NULL, NULL, NULL, NULL, P, N,
                       hd, u->scale);
        for (int i = 0; i < N; i++)
            for (int c = 0; c < hd; c++) {
                double o = 0;
                for (int j = 0; j < N; j++)
                    if (attd_kept(u->seed, u->p, ((size_t)bh * N + i) * N + j))
                        o += P[(size_t)i * N + j] * V[j * hd + c];
                out[bh * head + i * hd + c] = o / (1.0 - u->p);
            }
    }
    free(P);
}

static void check_attention_dropout_grad(const char *name, int B, int H, int N,
                                         int hd, float p)
{
    gc_case c = gc_case_new(name, 3);
    for (int i = 0; i < 3; i++)
        gc_input(&c, i, 4, (int[]){B, H, N, hd}, 1);
    attd_ud u = {B * H, N, hd, 1.0f / sqrtf((float)hd), p,
                 mspt_rng_new(DROP_SEED), 0};
    u.seed = mspt_rng_u64(u.rng);
    gc_run(&c, attd_f, attd_d, &u);
    mspt_rng_free(u.rng);
    gc_case_free(&c);
}

/* With hd = N and V the identity of each head, O is the dropped, rescaled
 * probability matrix itself: count its zeros (softmax of finite scores has
 * none) against p, its kept entries against P/(1 − p), and the mask against
 * the documented stream; then the same at another thread count. */
static void check_attention_dropout_mask(int B, int H, int N, float p)
{
    mspt_params *ps = mspt_params_new();
    mspt_rng *rng = mspt_rng_new(21), *drng = mspt_rng_new(DROP_SEED);
    int shape[4] = {B, H, N, N};
    mspt_tensor *q = rand_param(ps, rng, "q", 4, shape);
    mspt_tensor *k = rand_param(ps, rng, "k", 4, shape);
    mspt_tensor *v = mspt_param_new(ps, "v", 4, shape, 0);
    size_t n = q->numel, head = (size_t)N * N;
    for (size_t i = 0; i < n; i++)
        v->data[i] = (i % head) / N == (i % head) % N ? 1.0f : 0.0f;
    float scale = 1.0f / sqrtf((float)N);
    uint64_t seed = mspt_rng_u64(drng);
    float *first = malloc(n * sizeof *first);
    int threads = mspt_get_threads();
    for (int rep = 0; rep < 2; rep++) {
        if (rep)
            mspt_set_threads(threads > 1 ? 1 : 2);
        mspt_ctx *ctx = mspt_ctx_new();
        mspt_rng_seed(drng, DROP_SEED);
        mspt_ctx_set_rng(ctx, drng);
        mspt_tensor *o = mspt_attention_dropout(ctx, q, k, v, scale, p);
        mspt_tensor *plain = mspt_attention(ctx, q, k, v, scale);
        if (!o || !plain) {
            ok(0, "attention dropout p=%g: runs", (double)p);
            diag("%s", mspt_ctx_error(ctx) ? mspt_ctx_error(ctx) : "?");
            mspt_ctx_free(ctx);
            break;
        }
        if (rep == 0) {
            size_t zeros = 0, stream_agrees = 0;
            double worst = 0;
            for (size_t i = 0; i < n; i++) {
                int kept = o->data[i] != 0.0f;
                zeros += !kept;
                stream_agrees += kept == attd_kept(seed, p, i);
                if (kept)
                    worst = fmax(worst, fabs(o->data[i] * (1.0 - p) - plain->data[i]) /
                                            plain->data[i]);
            }
            double frac = (double)zeros / (double)n;
            double sigma = sqrt(p * (1.0 - p) / (double)n);
            ok(fabs(frac - p) <= 5 * sigma, "attention dropout p=%g: %.4f of "
               "%zu probabilities dropped (5σ = %.4f)", (double)p, frac, n, 5 * sigma);
            ok(stream_agrees == n, "attention dropout p=%g: the dropped entries "
               "are the documented stream's (%zu of %zu)", (double)p,
               stream_agrees, n);
            ok(worst < 1e-5, "attention dropout p=%g: kept probabilities are "
               "P/(1 − p) (max rel err %.2g)", (double)p, worst);
            memcpy(first, o->data, n * sizeof *first);
        } else {
            ok(!memcmp(first, o->data, n * sizeof *first), "attention dropout "
               "p=%g: the same output at %d and %d threads", (double)p, threads,
               mspt_get_threads());
        }
        mspt_ctx_free(ctx);
    }
    mspt_set_threads(threads);
    free(first);
    mspt_rng_free(drng);
    mspt_rng_free(rng);
    mspt_params_free(ps);
}

static float att_p = 0.0f;
static int att_train = 1;
static mspt_rng *att_rng;
static mspt_tensor *det_att_drop(mspt_ctx *ctx, mspt_tensor **in)
{
    mspt_ctx_set_rng(ctx, att_rng);
    mspt_ctx_set_training(ctx, att_train);
    return att_p < 0 ? mspt_attention(ctx, in[0], in[1], in[2], 0.25f)
                     : mspt_attention_dropout(ctx, in[0], in[1], in[2], 0.25f, att_p);
}

/* Output and all gradients of one run of det_att_drop (att_p < 0: plain). */
static void att_run(mspt_params *ps, mspt_tensor **in, float *out, float *grads)
{
    mspt_params_zero_grad(ps);
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_tensor *y = det_att_drop(ctx, in);
    float *gy = malloc(in[0]->numel * sizeof *gy);
    for (size_t i = 0; i < in[0]->numel; i++)
        gy[i] = (float)sin(0.37 * (double)i);
    if (!y || mspt_backward_with(ctx, y, gy))
        memset(out, 0xff, in[0]->numel * sizeof *out); /* NaNs: compare fails */
    else
        memcpy(out, y->data, y->numel * sizeof *out);
    for (int i = 0; i < 3; i++)
        memcpy(grads + i * in[0]->numel, in[i]->grad, in[0]->numel * sizeof *grads);
    free(gy);
    mspt_ctx_free(ctx);
}

/* p = 0 in training mode, and p > 0 in eval mode, are plain attention to
 * the bit, take nothing from the rng; p > 0 in training mode differs, and
 * two runs from the same seed are bit-identical. */
static void check_attention_dropout_identity(void)
{
    mspt_params *ps = mspt_params_new();
    mspt_rng *rng = mspt_rng_new(17);
    att_rng = mspt_rng_new(99);
    int as[4] = {2, 3, 300, 16};
    mspt_tensor *in[3];
    for (int i = 0; i < 3; i++)
        in[i] = rand_param(ps, rng, (const char *[]){"q", "k", "v"}[i], 4, as);
    size_t n = in[0]->numel;
    float *out[2], *gr[2];
    for (int r = 0; r < 2; r++) {
        out[r] = malloc(n * sizeof(float));
        gr[r] = malloc(3 * n * sizeof(float));
    }
    uint64_t before[MSPT_RNG_STATE_WORDS], after[MSPT_RNG_STATE_WORDS];
    att_p = -1;
    att_run(ps, in, out[0], gr[0]);
    att_p = 0.0f;
    mspt_rng_get_state(att_rng, before);
    att_run(ps, in, out[1], gr[1]);
    mspt_rng_get_state(att_rng, after);
    ok(!memcmp(out[0], out[1], n * sizeof(float)) &&
           !memcmp(gr[0], gr[1], 3 * n * sizeof(float)) &&
           !memcmp(before, after, sizeof before),
       "attention dropout p=0 (training): output and gradients bit-identical "
       "to mspt_attention, rng untouched");
    att_p = 0.3f;
    att_train = 0;
    att_run(ps, in, out[1], gr[1]);
    mspt_rng_get_state(att_rng, after);
    ok(!memcmp(out[0], out[1], n * sizeof(float)) &&
           !memcmp(gr[0], gr[1], 3 * n * sizeof(float)) &&
           !memcmp(before, after, sizeof before),
       "attention dropout p=0.3 in eval mode: bit-identical to mspt_attention, "
       "rng untouched");
    att_train = 1;
    att_run(ps, in, out[1], gr[1]);
    mspt_rng_get_state(att_rng, after);
    ok(memcmp(out[0], out[1], n * sizeof(float)) != 0 &&
           memcmp(before, after, sizeof before) != 0,
       "attention dropout p=0.3 in training mode changes the output and draws "
       "from the rng");
    mspt_rng_seed(att_rng, 5);
    att_run(ps, in, out[0], gr[0]);
    mspt_rng_seed(att_rng, 5);
    att_run(ps, in, out[1], gr[1]);
    ok(!memcmp(out[0], out[1], n * sizeof(float)) &&
           !memcmp(gr[0], gr[1], 3 * n * sizeof(float)),
       "attention dropout p=0.3: output and gradients bit-identical from the "
       "same seed (%d threads)", mspt_get_threads());
    att_p = 0.0f;
    for (int r = 0; r < 2; r++) {
        free(out[r]);
        free(gr[r]);
    }
    mspt_rng_free(att_rng);
    mspt_rng_free(rng);
    mspt_params_free(ps);
}

/* ---- rotary ------------------------------------------------------------- */

typedef struct { int BH, N, hd; float base; } rot_ud;

static mspt_tensor *rot_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    return mspt_rotary(ctx, in[0], ((rot_ud *)ud)->base);
}

static void rot_d(double *const *in, double *out, void *ud)
{
    rot_ud *u = ud;
    for (int bh = 0; bh < u->BH; bh++)
        for (int n = 0; n < u->N; n++)
            for (int i = 0; i < u->hd / 2; i++) {
                double a = n * pow(u->base, -2.0 * i / u->hd);
                size_t o = ((size_t)bh * u->N + n) * u->hd + 2 * i;
                double x0 = in[0][o], x1 = in[0][o + 1];
                out[o] = x0 * cos(a) - x1 * sin(a);
                out[o + 1] = x0 * sin(a) + x1 * cos(a);
            }
}

static void check_rotary(const char *name, int B, int H, int N, int hd)
{
    gc_case c = gc_case_new(name, 1);
    gc_input(&c, 0, 4, (int[]){B, H, N, hd}, 1);
    rot_ud u = {B * H, N, hd, 10000.0f};
    gc_run(&c, rot_f, rot_d, &u);
    gc_case_free(&c);
}

/* ---- selective scan ----------------------------------------------------- */

typedef struct { int B, L, D, N, dskip, z; } scan_ud;

static mspt_tensor *scan_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    scan_ud *u = ud;
    return mspt_selective_scan(ctx, in[0], in[1], in[2], in[3], in[4],
                               u->dskip ? in[5] : NULL,
                               u->z ? in[5 + u->dskip] : NULL);
}

/* Double reference: h per (b, d) over time, exactly the formula of ops.h. */
static void scan_d(double *const *in, double *out, void *ud)
{
    scan_ud *u = ud;
    const double *x = in[0], *dt = in[1], *A = in[2], *Bm = in[3], *Cm = in[4];
    const double *Ds = u->dskip ? in[5] : NULL, *z = u->z ? in[5 + u->dskip] : NULL;
    double *h = malloc(sizeof(double) * u->N);
    for (int b = 0; b < u->B; b++)
        for (int d = 0; d < u->D; d++) {
            for (int n = 0; n < u->N; n++)
                h[n] = 0;
            for (int t = 0; t < u->L; t++) {
                size_t i = ((size_t)b * u->L + t) * u->D + d;
                const double *bt = Bm + ((size_t)b * u->L + t) * u->N;
                const double *ct = Cm + ((size_t)b * u->L + t) * u->N;
                double y = Ds ? Ds[d] * x[i] : 0;
                for (int n = 0; n < u->N; n++) {
                    h[n] = exp(dt[i] * A[d * u->N + n]) * h[n] + dt[i] * bt[n] * x[i];
                    y += ct[n] * h[n];
                }
                out[i] = z ? y * z[i] / (1 + exp(-z[i])) : y;
            }
        }
    free(h);
}

/* Inputs in Mamba's ranges: dt > 0 (softplus output), A < 0. */
static void scan_realistic(mspt_tensor *dt, mspt_tensor *A)
{
    for (size_t i = 0; i < dt->numel; i++)
        dt->data[i] = 0.3f + 0.25f * dt->data[i];  /* [0.05, 0.55] */
    for (size_t i = 0; i < A->numel; i++)
        A->data[i] = -1.25f - 0.75f * A->data[i];  /* [−2, −0.5] */
}

static void check_scan_grad(const char *name, int B, int L, int D, int N,
                            int dskip, int z)
{
    gc_case c = gc_case_new(name, 5 + dskip + z);
    gc_input(&c, 0, 3, (int[]){B, L, D}, 1);
    gc_input(&c, 1, 3, (int[]){B, L, D}, 1);
    gc_input(&c, 2, 2, (int[]){D, N}, 1);
    gc_input(&c, 3, 3, (int[]){B, L, N}, 1);
    gc_input(&c, 4, 3, (int[]){B, L, N}, 1);
    if (dskip)
        gc_input(&c, 5, 1, (int[]){D}, 1);
    if (z)
        gc_input(&c, 5 + dskip, 3, (int[]){B, L, D}, 1);
    scan_realistic(c.in[1], c.in[2]);
    c.max_checks = 128; /* every element of A, Dskip; most of the rest */
    scan_ud u = {B, L, D, N, dskip, z};
    gc_run(&c, scan_f, scan_d, &u);
    gc_case_free(&c);
}

/* ---- PyTorch parity ----------------------------------------------------- */

static mspt_tensor *fx_param(mspt_params *ps, const fixture *f, const char *name)
{
    const fixture_tensor *ft = fixture_get(f, name);
    mspt_tensor *t = mspt_param_new(ps, name, ft->ndim, ft->shape, 0);
    memcpy(t->data, ft->data, ft->numel * sizeof(float));
    return t;
}

static void expect_close(const char *file, const char *what, const float *got,
                         const fixture *f, const char *name, double tol,
                         double floor)
{
    const fixture_tensor *want = fixture_get(f, name);
    double e = fixture_max_rel_err(got, want->data, want->numel, floor);
    if (!ok(e <= tol, "%s: %s matches PyTorch", file, what))
        diag("max rel err %.3g (tol %.3g)", e, tol);
}

/* Runs op(inputs), backward with gy, checks y and "g<name>" per input. */
static void parity(const char *file, int nin, const char *const *names,
                   mspt_tensor *(*run)(mspt_ctx *, mspt_tensor **, float),
                   const char *scalar, double tol, double floor)
{
    fixture *f = fixture_load(file);
    mspt_params *ps = mspt_params_new();
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_tensor *in[8];
    for (int i = 0; i < nin; i++)
        in[i] = fx_param(ps, f, names[i]);
    float s = scalar ? fixture_get(f, scalar)->data[0] : 0.0f;
    mspt_tensor *y = run(ctx, in, s);
    int rc = y ? mspt_backward_with(ctx, y, fixture_get(f, "gy")->data) : -1;
    if (ok(rc == 0, "%s: forward and backward run", file)) {
        expect_close(file, "output", y->data, f, "y", tol, floor);
        for (int i = 0; i < nin; i++) {
            char g[64];
            snprintf(g, sizeof g, "g%s", names[i]);
            expect_close(file, g, in[i]->grad, f, g, tol, floor);
        }
    } else {
        diag("%s", mspt_ctx_error(ctx) ? mspt_ctx_error(ctx) : "?");
    }
    mspt_ctx_free(ctx);
    mspt_params_free(ps);
    fixture_free(f);
}

static mspt_tensor *run_dw(mspt_ctx *c, mspt_tensor **in, float s)
{
    (void)s;
    return mspt_dwconv1d_causal(c, in[0], in[1], in[2]);
}
static mspt_tensor *run_att(mspt_ctx *c, mspt_tensor **in, float s)
{
    return mspt_attention(c, in[0], in[1], in[2], s);
}
static mspt_tensor *run_rot(mspt_ctx *c, mspt_tensor **in, float s)
{
    return mspt_rotary(c, in[0], s);
}
static mspt_tensor *run_scan(mspt_ctx *c, mspt_tensor **in, float s)
{
    (void)s;
    return mspt_selective_scan(c, in[0], in[1], in[2], in[3], in[4], in[5], in[6]);
}

/* ---- memory, determinism, errors, no-grad -------------------------------- */

static mspt_tensor *rand_param(mspt_params *ps, mspt_rng *rng, const char *name,
                               int ndim, const int *shape)
{
    mspt_tensor *t = mspt_param_new(ps, name, ndim, shape, 0);
    mspt_init_uniform(t, rng, -1.0f, 1.0f);
    return t;
}

static void check_memory(void)
{
    mspt_params *ps = mspt_params_new();
    mspt_rng *rng = mspt_rng_new(3);
    mspt_ctx *ctx = mspt_ctx_new();
    /* attention at the Transformer's size for one sample */
    int as[4] = {1, 3, 704, 64};
    mspt_tensor *q = rand_param(ps, rng, "q", 4, as), *k = rand_param(ps, rng, "k", 4, as);
    mspt_tensor *v = rand_param(ps, rng, "v", 4, as);
    size_t before = mspt_ctx_arena_used(ctx);
    mspt_tensor *o = mspt_attention(ctx, q, k, v, 0.125f);
    size_t used = mspt_ctx_arena_used(ctx) - before;
    size_t nn = (size_t)704 * 704 * sizeof(float); /* one head's scores */
    ok(o && used < nn, "attention saves no N×N scores (%zu bytes for the "
       "forward, one head's N×N is %zu)", used, nn);
    mspt_ctx_reset(ctx);

    /* scan: FEMBA's L = 80 with N = 16 states */
    int B = 2, L = 80, D = 40, N = 16;
    mspt_tensor *u = rand_param(ps, rng, "u", 3, (int[]){B, L, D});
    mspt_tensor *dt = rand_param(ps, rng, "dt", 3, (int[]){B, L, D});
    mspt_tensor *A = rand_param(ps, rng, "A", 2, (int[]){D, N});
    mspt_tensor *Bm = rand_param(ps, rng, "Bm", 3, (int[]){B, L, N});
    mspt_tensor *Cm = rand_param(ps, rng, "Cm", 3, (int[]){B, L, N});
    scan_realistic(dt, A);
    before = mspt_ctx_arena_used(ctx);
    mspt_tensor *y = mspt_selective_scan(ctx, u, dt, A, Bm, Cm, NULL, NULL);
    used = mspt_ctx_arena_used(ctx) - before;
    size_t full = (size_t)B * L * D * N * sizeof(float);
    ok(y && used < full / 4, "selective scan saves far less than (B,L,D,N) "
       "(%zu bytes, (B,L,D,N) is %zu)", used, full);
    mspt_ctx_free(ctx);
    mspt_rng_free(rng);
    mspt_params_free(ps);
}

/* Output and all input gradients of one op, run twice with the same thread
 * count: bit-identical.  run(ctx, in) builds the op. */
static int twice_identical(mspt_params *ps,
                           mspt_tensor *(*run)(mspt_ctx *, mspt_tensor **),
                           mspt_tensor **in)
{
    size_t total = 0;
    for (size_t i = 0; i < mspt_params_count(ps); i++)
        total += mspt_params_at(ps, i)->numel;
    float *out[2] = {NULL, NULL}, *grads[2] = {NULL, NULL};
    size_t nout = 0;
    int ran = 1;
    for (int rep = 0; rep < 2 && ran; rep++) {
        mspt_params_zero_grad(ps);
        mspt_ctx *ctx = mspt_ctx_new();
        mspt_tensor *y = run(ctx, in);
        float *gy = y ? malloc(y->numel * sizeof(float)) : NULL;
        for (size_t i = 0; y && i < y->numel; i++)
            gy[i] = (float)sin(0.37 * (double)i);
        int rc = y ? mspt_backward_with(ctx, y, gy) : -1;
        nout = y ? y->numel : 0;
        out[rep] = malloc((nout + 1) * sizeof(float));
        grads[rep] = malloc((total + 1) * sizeof(float));
        if (y)
            memcpy(out[rep], y->data, nout * sizeof(float));
        size_t off = 0;
        for (size_t i = 0; i < mspt_params_count(ps); i++) {
            mspt_tensor *p = mspt_params_at(ps, i);
            memcpy(grads[rep] + off, p->grad, p->numel * sizeof(float));
            off += p->numel;
        }
        free(gy);
        mspt_ctx_free(ctx);
        ran = rc == 0;
    }
    int same = ran && memcmp(out[0], out[1], nout * sizeof(float)) == 0 &&
               memcmp(grads[0], grads[1], total * sizeof(float)) == 0;
    for (int rep = 0; rep < 2; rep++) {
        free(out[rep]);
        free(grads[rep]);
    }
    return same;
}

static mspt_tensor *det_scan(mspt_ctx *ctx, mspt_tensor **in)
{
    return mspt_selective_scan(ctx, in[0], in[1], in[2], in[3], in[4], in[5], in[6]);
}

static mspt_tensor *det_att(mspt_ctx *ctx, mspt_tensor **in)
{
    return mspt_attention(ctx, in[0], in[1], in[2], 0.25f);
}

static mspt_tensor *det_dw(mspt_ctx *ctx, mspt_tensor **in)
{
    return mspt_dwconv1d_causal(ctx, in[0], in[1], in[2]);
}

static void check_determinism(void)
{
    mspt_rng *rng = mspt_rng_new(11);
    int B = 3, L = 41, D = 37, N = 5;
    mspt_params *ps = mspt_params_new();
    mspt_tensor *in[7];
    in[0] = rand_param(ps, rng, "u", 3, (int[]){B, L, D});
    in[1] = rand_param(ps, rng, "dt", 3, (int[]){B, L, D});
    in[2] = rand_param(ps, rng, "A", 2, (int[]){D, N});
    in[3] = rand_param(ps, rng, "Bm", 3, (int[]){B, L, N});
    in[4] = rand_param(ps, rng, "Cm", 3, (int[]){B, L, N});
    in[5] = rand_param(ps, rng, "Dskip", 1, (int[]){D});
    in[6] = rand_param(ps, rng, "z", 3, (int[]){B, L, D});
    scan_realistic(in[1], in[2]);
    ok(twice_identical(ps, det_scan, in), "selective_scan: output and all "
       "gradients bit-identical across runs (%d threads)", mspt_get_threads());
    mspt_params_free(ps);

    ps = mspt_params_new();
    int as[4] = {2, 3, 300, 16};
    for (int i = 0; i < 3; i++)
        in[i] = rand_param(ps, rng, (const char *[]){"q", "k", "v"}[i], 4, as);
    ok(twice_identical(ps, det_att, in), "attention: output and all "
       "gradients bit-identical across runs (%d threads)", mspt_get_threads());
    mspt_params_free(ps);

    ps = mspt_params_new();
    in[0] = rand_param(ps, rng, "x", 3, (int[]){5, 33, 70});
    in[1] = rand_param(ps, rng, "w", 3, (int[]){70, 1, 4});
    in[2] = rand_param(ps, rng, "b", 1, (int[]){70});
    ok(twice_identical(ps, det_dw, in), "dwconv1d_causal: output and all "
       "gradients bit-identical across runs (%d threads)", mspt_get_threads());
    mspt_params_free(ps);
    mspt_rng_free(rng);
}

static int has(mspt_ctx *ctx, const char *s)
{
    const char *e = mspt_ctx_error(ctx);
    return e && strstr(e, s) != NULL;
}

static void check_errors_and_nograd(void)
{
    mspt_params *ps = mspt_params_new();
    mspt_rng *rng = mspt_rng_new(5);
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_tensor *x = rand_param(ps, rng, "x", 3, (int[]){2, 7, 5});
    mspt_tensor *w = rand_param(ps, rng, "w", 3, (int[]){5, 1, 4});
    mspt_tensor *w6 = rand_param(ps, rng, "w6", 3, (int[]){6, 1, 4});
    mspt_tensor *b5 = rand_param(ps, rng, "b5", 1, (int[]){5});
    mspt_tensor *b4 = rand_param(ps, rng, "b4", 1, (int[]){4});
    mspt_tensor *q = rand_param(ps, rng, "q", 4, (int[]){2, 2, 13, 8});
    mspt_tensor *k9 = rand_param(ps, rng, "k9", 4, (int[]){2, 2, 9, 8});
    mspt_tensor *odd = rand_param(ps, rng, "odd", 4, (int[]){2, 2, 13, 7});
    mspt_tensor *A = rand_param(ps, rng, "A", 2, (int[]){5, 3});
    mspt_tensor *A4 = rand_param(ps, rng, "A4", 2, (int[]){4, 3});
    mspt_tensor *Bm = rand_param(ps, rng, "Bm", 3, (int[]){2, 7, 3});
    mspt_tensor *Bm4 = rand_param(ps, rng, "Bm4", 3, (int[]){2, 7, 4});
    mspt_tensor *z6 = rand_param(ps, rng, "z6", 3, (int[]){2, 6, 5});

    ok(mspt_dwconv1d_causal(ctx, x, w6, b5) == NULL && has(ctx, "dwconv1d_causal") &&
           has(ctx, "(2,7,5)") && has(ctx, "(6,1,4)"),
       "dwconv1d_causal: weight channels mismatch names op and shapes");
    mspt_ctx_reset(ctx);
    ok(mspt_dwconv1d_causal(ctx, x, w, b4) == NULL && has(ctx, "dwconv1d_causal") &&
           has(ctx, "(4)"), "dwconv1d_causal: bias mismatch is an error");
    mspt_ctx_reset(ctx);
    ok(mspt_attention(ctx, q, k9, q, 1.0f) == NULL && has(ctx, "attention") &&
           has(ctx, "(2,2,13,8)") && has(ctx, "(2,2,9,8)"),
       "attention: k shape mismatch names op and shapes");
    mspt_ctx_reset(ctx);
    ok(mspt_attention(ctx, x, x, x, 1.0f) == NULL && has(ctx, "attention"),
       "attention: 3-dim q is an error");
    mspt_ctx_reset(ctx);
    ok(mspt_attention_dropout(ctx, q, q, q, 1.0f, 1.0f) == NULL &&
           has(ctx, "attention") && has(ctx, "p = 1"),
       "attention: dropout p = 1 is an error naming p");
    mspt_ctx_reset(ctx);
    ok(mspt_attention_dropout(ctx, q, q, q, 1.0f, -0.1f) == NULL &&
           has(ctx, "p = -0.1"), "attention: dropout p < 0 is an error");
    mspt_ctx_reset(ctx);
    ok(mspt_attention_dropout(ctx, q, q, q, 1.0f, 0.1f) == NULL &&
           has(ctx, "mspt_ctx_set_rng"),
       "attention: dropout in training mode without an rng is an error");
    mspt_ctx_reset(ctx);
    ok(mspt_rotary(ctx, odd, 10000.0f) == NULL && has(ctx, "rotary") &&
           has(ctx, "(2,2,13,7)"), "rotary: odd head dim is an error");
    mspt_ctx_reset(ctx);
    ok(mspt_rotary(ctx, q, 0.0f) == NULL && has(ctx, "rotary") &&
           has(ctx, "base"), "rotary: base 0 is an error");
    mspt_ctx_reset(ctx);
    ok(mspt_selective_scan(ctx, x, x, A4, Bm, Bm, NULL, NULL) == NULL &&
           has(ctx, "selective_scan") && has(ctx, "(4,3)"),
       "selective_scan: A rows must be D");
    mspt_ctx_reset(ctx);
    ok(mspt_selective_scan(ctx, x, x, A, Bm4, Bm, NULL, NULL) == NULL &&
           has(ctx, "selective_scan") && has(ctx, "(2,7,4)"),
       "selective_scan: Bm states must match A");
    mspt_ctx_reset(ctx);
    ok(mspt_selective_scan(ctx, x, x, A, Bm, Bm, NULL, z6) == NULL &&
           has(ctx, "selective_scan") && has(ctx, "(2,6,5)"),
       "selective_scan: z must match u");
    mspt_ctx_reset(ctx);
    ok(mspt_selective_scan(ctx, x, x, A, Bm, Bm, w, NULL) == NULL &&
           has(ctx, "selective_scan") && has(ctx, "(5,1,4)"),
       "selective_scan: Dskip must be (D)");
    mspt_ctx_reset(ctx);
    ok(mspt_dwconv1d_causal(ctx, NULL, w, NULL) == NULL &&
           mspt_attention(ctx, q, NULL, q, 1.0f) == NULL &&
           mspt_rotary(ctx, NULL, 10000.0f) == NULL &&
           mspt_selective_scan(ctx, x, x, A, NULL, Bm, NULL, NULL) == NULL &&
           mspt_ctx_error(ctx) == NULL,
       "NULL inputs give NULL without a new error");

    mspt_ctx_set_grad(ctx, 0);
    mspt_tensor *y1 = mspt_dwconv1d_causal(ctx, x, w, b5);
    mspt_tensor *y2 = mspt_attention(ctx, q, q, q, 0.3f);
    mspt_tensor *y3 = mspt_rotary(ctx, q, 10000.0f);
    mspt_tensor *y4 = mspt_selective_scan(ctx, x, x, A, Bm, Bm, b5, x);
    ok(y1 && y2 && y3 && y4 && !y1->requires_grad && !y2->requires_grad &&
           !y3->requires_grad && !y4->requires_grad && mspt_tape_length(ctx) == 0,
       "no-grad mode: all four ops run and record nothing");
    mspt_ctx_set_grad(ctx, 1);
    mspt_ctx_reset(ctx);
    y4 = mspt_selective_scan(ctx, x, x, A, Bm, Bm, b5, x);
    ok(y4 && y4->requires_grad && mspt_tape_length(ctx) == 1,
       "grad mode: the scan records one tape entry");
    mspt_ctx_free(ctx);
    mspt_rng_free(rng);
    mspt_params_free(ps);
}

int main(void)
{
    /* gradient checks: every input of every op, odd shapes, batch > 1 */
    check_dwconv("dwconv1d_causal (2,7,5) K=4 bias", 2, 7, 5, 4, 1);
    check_dwconv("dwconv1d_causal (3,9,67) K=3 no bias", 3, 9, 67, 3, 0);
    check_dwconv("dwconv1d_causal (2,3,5) K=5 > L", 2, 3, 5, 5, 1);
    check_attention_grad("attention (2,2,13,8)", 2, 2, 13, 8);
    check_attention_grad("attention (1,1,300,8) past one block", 1, 1, 300, 8);
    check_attention_dropout_grad("attention dropout p=0.3 (2,2,13,8)", 2, 2, 13, 8, 0.3f);
    check_attention_dropout_grad("attention dropout p=0.1 (1,1,300,8) past one "
                                 "block", 1, 1, 300, 8, 0.1f);
    check_attention_dropout_grad("attention dropout p=0.7 (1,3,7,4)", 1, 3, 7, 4, 0.7f);
    check_rotary("rotary (2,3,11,6)", 2, 3, 11, 6);
    check_rotary("rotary (1,1,704,8) large angles", 1, 1, 704, 8);
    check_scan_grad("selective_scan (2,37,21,5) Dskip z", 2, 37, 21, 5, 1, 1);
    check_scan_grad("selective_scan (3,17,3,4) plain", 3, 17, 3, 4, 0, 0);
    check_scan_grad("selective_scan (2,16,17,3) z only", 2, 16, 17, 3, 0, 1);

    /* attention, every element, against naive double (blocks are 256) */
    check_attention_naive(2, 3, 150, 16);
    check_attention_naive(1, 2, 256, 8);
    check_attention_naive(1, 1, 257, 12);
    check_attention_naive(2, 2, 600, 16);
    check_attention_naive(2, 1, 1, 4);

    /* PyTorch parity: outputs and every input gradient */
    parity("fused_dwconv.txt", 3, (const char *[]){"x", "w", "b"}, run_dw,
           NULL, 1e-4, 1e-3);
    parity("fused_attention.txt", 3, (const char *[]){"q", "k", "v"}, run_att,
           "scale", 1e-4, 1e-3);
    /* x0·cos − x1·sin of O(1) terms cancels to ~1e-7 absolute in float32:
     * elementwise 1e-5 relative, judged against a floor of 1e-2 */
    parity("fused_rotary.txt", 1, (const char *[]){"x"}, run_rot, "base",
           1e-5, 1e-2);
    const char *scan_names[] = {"u", "dt", "A", "Bm", "Cm", "Dskip", "z"};
    parity("fused_scan.txt", 7, scan_names, run_scan, NULL, 1e-4, 1e-3);
    parity("fused_scan_long.txt", 7, scan_names, run_scan, NULL, 1e-4, 1e-3);

    /* attention dropout: fraction, stream, thread count, identities */
    check_attention_dropout_mask(2, 4, 64, 0.1f);
    check_attention_dropout_mask(1, 2, 300, 0.5f);
    check_attention_dropout_identity();

    check_memory();
    check_determinism();
    check_errors_and_nograd();
    return tap_done();
}
