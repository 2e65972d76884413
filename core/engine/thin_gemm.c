/* Thin GEMMs: products with a short side, on AVX-512 register tiles.
 *
 * BLIS's skx kernel computes C in 32×12 tiles over a packed A and B.  When
 * a side of the product is short — Mamba's dt_proj has an inner dimension
 * of 25 and its gradients are 25 wide, x_proj has 57 outputs, a
 * classification head 40 — those tiles are partly empty, and the packing
 * of the long operand is paid for few multiply-adds per element.  These
 * kernels read the long operand where it lies and keep the short side in
 * registers:
 *
 *   rows    C (M, N) = alpha · A (M, K) · op(B) (K, N) [+ bias] + beta · C
 *           op(B) is packed once, scaled by alpha, into panels of 16·nv
 *           columns (K, 16·nv), nv = 2, 3 or 4 vectors; a tile is 12, 8
 *           or 6 rows of C × one panel: 24 zmm accumulators, started from
 *           the bias when there is one; per k, 12/8/6 broadcasts of A and
 *           nv loads of the panel.  For a short K (dt_proj's forward,
 *           K = 25) or a short N (its dx, N = 25; the head's forward, 40;
 *           x_proj's forward, 57).
 *
 *   sums    D (S, W) = alpha · Σ_k Q[k, s] · P[k, w] + beta · D
 *           a sum over a long K of outer products of two row-major
 *           operands: a weight gradient gyᵀ·x, with the shorter side as s.
 *           A tile is 8 values of s × 48 of w: P read in place (3 loads
 *           per k, rows prefetched ahead: they are a row stride apart,
 *           which the hardware prefetchers do not follow), Q broadcast.
 *           K is walked in chunks so a strip of P stays in L2 for the
 *           other tiles of s that read it.  When w is C's row index (the
 *           longer side is M), D is scratch and each thread transposes
 *           its strips into C.  Two riders: the column sums of Q (a
 *           head's gb beside its gw) and a row of ones (P's column sums:
 *           dt_proj's gb beside its gw).
 *
 *   linear backward in one pass, for a short input and a long output
 *           (dt_proj): each block of 96 rows of gy is read from memory by
 *           gx's rows tiles and summed into the thread's [gw | gb] by
 *           sums tiles while it is still in L2.
 *
 * Measured against BLIS alone (bench_engine, 2 threads, linear forward +
 * backward): dt_proj 1.7×, the head 1.45×, x_proj 1.2×.
 *
 * Every element of a product is the same sequence of operations whatever
 * the thread count: threads take whole tiles, never a share of K — except
 * the one-pass linear backward, whose weight gradients add the threads'
 * parts in thread order (the same bits for the same thread count).
 *
 * Built for AVX-512F with a target attribute and used only when the CPU
 * has it (the entry points return 0 otherwise, and BLIS takes the
 * product); MSPT_THIN_GEMM=0 in the environment turns the kernels off. */
#include <mspt/tensor.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

/* -DMSPT_NO_THIN_GEMM builds without the kernels (BLIS takes every product). */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(MSPT_NO_THIN_GEMM)
#define THIN_AVX512 1
#include <immintrin.h>
#define TARGET __attribute__((target("avx512f")))
#else
#define THIN_AVX512 0
#endif

#define TR 8  /* values of s in a sums tile */
#define TW 48 /* values of w in a sums tile: 3 vectors of 16 floats */
#define SUMS_KC 1024 /* K chunk of the sums kernel */
#define SUMS_AHEAD 12 /* rows of P prefetched ahead */

static int cpu_has_avx512f(void)
{
#if THIN_AVX512
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

static int g_enabled = -1; /* not decided yet */

/* MSPT_THIN_GEMM: unset, empty or 1 — on where the CPU can; 0 — off.
 * Anything else is ignored with one line on stderr, as MSPT_BLIS_ARCH. */
static int enabled(void)
{
    if (g_enabled < 0) {
        const char *e = getenv("MSPT_THIN_GEMM");
        int off = e && strcmp(e, "0") == 0;
        if (e && *e && !off && strcmp(e, "1") != 0)
            fprintf(stderr, "mspt: ignoring MSPT_THIN_GEMM=%s: it is 0 or 1\n",
                    e);
        g_enabled = cpu_has_avx512f() && !off;
    }
    return g_enabled;
}

const char *mspt_thin_gemm_state(void)
{
    return !THIN_AVX512         ? "not built in"
           : enabled()          ? "AVX-512 kernels for sides up to 64"
           : !cpu_has_avx512f() ? "off (no AVX-512)"
                                : "off (MSPT_THIN_GEMM=0)";
}

int mspt_thin_gemm_enable(int on)
{
    int was = enabled();
    g_enabled = on && cpu_has_avx512f();
    return was;
}

#if THIN_AVX512

/* Scratch of the calling thread (the packed B, a transposed D, the
 * threads' partial weight gradients), see mspt_gemm_scratch. */
static float *scratch(size_t floats)
{
    return mspt_gemm_scratch(GEMM_SCRATCH_THIN, floats);
}

static inline TARGET __mmask16 tail_mask(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF
           : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* ---- rows: C = A · Bp + beta · C ---------------------------------------- */

typedef struct {
    int M, N, K;
    int nv; /* vectors per panel: 2, 3 or 4 (tiles of 12, 8 or 6 rows) */
    const float *A;
    size_t lda;
    const float *B; /* op(B) as given, packed into Bp */
    size_t ldb;
    int trans_b;
    float alpha;
    float *Bp; /* panels of (K, 16·nv), alpha folded in */
    float beta;
    float *C;
    size_t ldc;
    const float *bias; /* or NULL: C += bias[n] on every row, unscaled */
    float *biasp;      /* the bias by panels, zero past N */
} rows_job;

/* Store acc (one row, nv vectors) into C's row c (n ≤ 16·nv columns). */
static inline __attribute__((always_inline)) TARGET void
store_row(float *c, const __m512 *acc, int nv, int n, float beta)
{
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
        __mmask16 m = tail_mask(n - 16 * v);
        if (!m)
            break;
        __m512 r = acc[v];
        if (m == 0xFFFF) { /* whole vectors unmasked: fewer uops */
            if (beta != 0.0f)
                r = _mm512_fmadd_ps(_mm512_set1_ps(beta),
                                    _mm512_loadu_ps(c + 16 * v), r);
            _mm512_storeu_ps(c + 16 * v, r);
            continue;
        }
        if (beta != 0.0f)
            r = _mm512_fmadd_ps(_mm512_set1_ps(beta),
                                _mm512_maskz_loadu_ps(m, c + 16 * v), r);
        _mm512_mask_storeu_ps(c + 16 * v, m, r);
    }
}

/* R rows of C from row a of A × panel bp (NV vectors wide, n valid
 * columns).  R and NV are constants at every call, so the R·NV
 * accumulators live in registers. */
static inline __attribute__((always_inline)) TARGET void
rows_tile(const rows_job *j, const float *a, const float *bp,
          const float *bias, float *c, int n, const int R, const int NV)
{
    __m512 acc[12][4], b0[4];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
        b0[v] = bias ? _mm512_loadu_ps(bias + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int r = 0; r < R; r++)
#pragma GCC unroll 12
        for (int v = 0; v < NV; v++)
            acc[r][v] = b0[v];
    for (int k = 0; k < j->K; k++) {
        const float *b = bp + (size_t)k * 16 * NV;
        __m512 bv[4];
#pragma GCC unroll 12
        for (int v = 0; v < NV; v++)
            bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_set1_ps(a[(size_t)r * j->lda + k]);
#pragma GCC unroll 12
            for (int v = 0; v < NV; v++)
                acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; r++)
        store_row(c + (size_t)r * j->ldc, acc[r], NV, n, j->beta);
}

#define ROWS_TILE(R, NV)                                                     \
    static TARGET void rows_tile_##R##x##NV(const rows_job *j,               \
                                            const float *a, const float *bp, \
                                            const float *bias, float *c,     \
                                            int n)                           \
    {                                                                        \
        rows_tile(j, a, bp, bias, c, n, R, NV);                              \
    }
ROWS_TILE(12, 2)
ROWS_TILE(8, 3)
ROWS_TILE(6, 4)
ROWS_TILE(1, 2)
ROWS_TILE(1, 3)
ROWS_TILE(1, 4)

typedef void (*rows_tile_fn)(const rows_job *, const float *, const float *,
                             const float *, float *, int);

/* Rows of a tile for nv vectors per panel (24 accumulators), and its
 * kernels for a whole tile and for one row. */
static int tile_rows(int nv) { return nv == 2 ? 12 : nv == 3 ? 8 : 6; }
static const rows_tile_fn tile_full[5] = {[2] = rows_tile_12x2,
                                          [3] = rows_tile_8x3,
                                          [4] = rows_tile_6x4};
static const rows_tile_fn tile_row[5] = {[2] = rows_tile_1x2,
                                         [3] = rows_tile_1x3,
                                         [4] = rows_tile_1x4};

/* Rows k0 .. k1 of panel p of Bp: op(B)[k, p·pw ..] · alpha, zero past
 * N. */
static void pack_panel(const rows_job *j, int p, int k0, int k1)
{
    int pw = 16 * j->nv, n = j->N - p * pw < pw ? j->N - p * pw : pw;
    float *d = j->Bp + (size_t)p * j->K * pw;
    const float *B = j->B;
    float alpha = j->alpha;
    if (!j->trans_b) { /* rows of B: a row of the panel each */
        for (int k = k0; k < k1; k++) {
            const float *b = B + (size_t)k * j->ldb + (size_t)p * pw;
            float *dk = d + (size_t)k * pw;
            for (int c = 0; c < n; c++)
                dk[c] = alpha * b[c];
            for (int c = n; c < pw; c++)
                dk[c] = 0.0f;
        }
        return;
    }
    for (int c = 0; c < pw; c++) { /* B stored (N, K): a column each */
        const float *b = B + (size_t)(p * pw + c) * j->ldb;
        if (c < n)
            for (int k = k0; k < k1; k++)
                d[(size_t)k * pw + c] = alpha * b[k];
        else
            for (int k = k0; k < k1; k++)
                d[(size_t)k * pw + c] = 0.0f;
    }
}

/* Block t of nt of the packing: rows k0 .. k1 of every panel; block 0
 * also lays out the bias by panels, zero past N. */
static void pack_block(void *arg, int t, int nt)
{
    const rows_job *j = arg;
    int pw = 16 * j->nv, panels = (j->N + pw - 1) / pw;
    size_t k0, k1;
    mspt_block((size_t)j->K, t, nt, &k0, &k1);
    for (int p = 0; p < panels; p++)
        pack_panel(j, p, (int)k0, (int)k1);
    for (int c = 0; t == 0 && j->biasp && c < panels * pw; c++)
        j->biasp[c] = c < j->N ? j->bias[c] : 0.0f;
}

/* Rows r0 .. r0+rn of C against panel p. */
static void rows_panel(const rows_job *j, int r0, int rn, int p)
{
    int tr = tile_rows(j->nv), pw = 16 * j->nv;
    const float *bp = j->Bp + (size_t)p * j->K * pw;
    int n = j->N - p * pw < pw ? j->N - p * pw : pw;
    float *c = j->C + (size_t)r0 * j->ldc + (size_t)p * pw;
    const float *a = j->A + (size_t)r0 * j->lda;
    const float *bias = j->biasp ? j->biasp + (size_t)p * pw : NULL;
    if (rn == tr)
        tile_full[j->nv](j, a, bp, bias, c, n);
    else /* the rows left below a whole tile, one at a time */
        for (int r = 0; r < rn; r++)
            tile_row[j->nv](j, a + (size_t)r * j->lda, bp, bias,
                            c + (size_t)r * j->ldc, n);
}

/* Block t of nt: a run of row tiles of C, every panel (packed before:
 * threads that packed their own panels and computed them for all rows
 * wrote C in strips, and ran slower). */
static void rows_block(void *arg, int t, int nt)
{
    const rows_job *j = arg;
    int tr = tile_rows(j->nv), pw = 16 * j->nv;
    int panels = (j->N + pw - 1) / pw, groups = (j->M + tr - 1) / tr;
    size_t g0, g1;
    mspt_block((size_t)groups, t, nt, &g0, &g1);
    for (size_t g = g0; g < g1; g++)
        for (int p = 0; p < panels; p++)
            rows_panel(j, (int)g * tr,
                       j->M - (int)g * tr < tr ? j->M - (int)g * tr : tr, p);
}

/* C = alpha · A · op(B) + bias (per column, or NULL) + beta · C. */
static int rows_gemm(int trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb,
                     const float *bias, float beta, float *C, int ldc,
                     size_t work)
{
    int nv = N <= 32 ? 2 : N <= 48 || N > 64 ? 3 : 4, pw = 16 * nv;
    int panels = (N + pw - 1) / pw;
    float *Bp = scratch((size_t)panels * (K + 1) * pw);
    if (!Bp)
        return 0;
    rows_job j = {M, N, K, nv, A, (size_t)lda, B, (size_t)ldb, trans_b,
                  alpha, Bp, beta, C, (size_t)ldc, bias,
                  bias ? Bp + (size_t)panels * K * pw : NULL};
    /* packing is a copy of op(B): on all threads when the product is */
    mspt_parallel(work && (size_t)K * N >= 8192 ? MSPT_PAR_MIN : 0,
                  pack_block, &j);
    mspt_parallel(work, rows_block, &j);
    return 1;
}

/* ---- sums: D = alpha · Qᵀ · P + beta · D -------------------------------- */

typedef struct {
    int S, W, K;
    const float *Q, *P;
    size_t ldq, ldp;
    float alpha, beta;
    float *D;
    size_t ldd;
    float *Ct; /* or NULL: D is scratch, and C = Dᵀ goes here */
    size_t ldct;
    float alpha_t, beta_t;
    float *qsum; /* or NULL: qsum[s] += Σ_k Q[k, s], with w's first strip
                  * (with no row of ones) */
    int ones;    /* D has a row S more: Σ_k P[k, w] (Q with a column of 1) */
} sums_job;

/* acc[s][v] += Σ_{k0 ≤ k < k1} q[k, s] · p[k, 16v ..]: the k loop of a
 * tile.  A full strip (FULL) loads P without masks: a masked load is one
 * more uop on the ports the FMAs use. */
static inline __attribute__((always_inline)) TARGET void
sums_run(const sums_job *j, __m512 acc[TR][3], const float *q, const float *p,
         int k0, int k1, __mmask16 m0, __mmask16 m1, __mmask16 m2,
         const int NS, const int FULL, __m512 *qs, __m512 *ao)
{
    __mmask16 mq = (__mmask16)((1u << NS) - 1);
    for (int k = k0; k < k1; k++) {
        const float *pk = p + (size_t)k * j->ldp, *qk = q + (size_t)k * j->ldq;
        if (k + SUMS_AHEAD < j->K) {
            const char *f = (const char *)(pk + SUMS_AHEAD * j->ldp);
            _mm_prefetch(f, _MM_HINT_T0);
            _mm_prefetch(f + 64, _MM_HINT_T0);
            _mm_prefetch(f + 128, _MM_HINT_T0);
        }
        __m512 p0 = FULL ? _mm512_loadu_ps(pk) : _mm512_maskz_loadu_ps(m0, pk),
               p1 = FULL ? _mm512_loadu_ps(pk + 16)
                         : _mm512_maskz_loadu_ps(m1, pk + 16),
               p2 = FULL ? _mm512_loadu_ps(pk + 32)
                         : _mm512_maskz_loadu_ps(m2, pk + 32);
#pragma GCC unroll 8
        for (int s = 0; s < NS; s++) {
            __m512 x = _mm512_set1_ps(qk[s]);
            acc[s][0] = _mm512_fmadd_ps(x, p0, acc[s][0]);
            acc[s][1] = _mm512_fmadd_ps(x, p1, acc[s][1]);
            acc[s][2] = _mm512_fmadd_ps(x, p2, acc[s][2]);
        }
        if (qs) /* Q's row, for its column sums */
            *qs = _mm512_add_ps(*qs, _mm512_maskz_loadu_ps(mq, qk));
        if (ao) { /* the row of ones: P's column sums */
            ao[0] = _mm512_add_ps(ao[0], p0);
            ao[1] = _mm512_add_ps(ao[1], p1);
            ao[2] = _mm512_add_ps(ao[2], p2);
        }
    }
}

/* Store alpha · a (nw valid columns) into row d of D: the first chunk
 * (first = 1) applies beta to D, the later ones add. */
static inline __attribute__((always_inline)) TARGET void
sums_store(const sums_job *j, float *d, const __m512 a[3], int nw, int first)
{
    __m512 al = _mm512_set1_ps(j->alpha);
#pragma GCC unroll 3
    for (int v = 0; v < 3; v++) {
        __mmask16 m = tail_mask(nw - 16 * v);
        if (!m)
            break;
        __m512 r = _mm512_mul_ps(al, a[v]);
        if (!first)
            r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m, d + 16 * v));
        else if (j->beta != 0.0f)
            r = _mm512_fmadd_ps(_mm512_set1_ps(j->beta),
                                _mm512_maskz_loadu_ps(m, d + 16 * v), r);
        _mm512_mask_storeu_ps(d + 16 * v, m, r);
    }
}

/* Tile (s0 .. s0+NS, w0 .. w0+nw) over k in [k0, k1), and with ONES the
 * row of ones (D's row S) too.  NS and ONES are constants at every call,
 * so the accumulators live in registers (8·3 + 3 + 3 loads + 1 = 31). */
static inline __attribute__((always_inline)) TARGET void
sums_tile(const sums_job *j, int s0, const int NS, const int ONES, int w0,
          int nw, int k0, int k1, int first)
{
    __m512 acc[TR][3], ao[3];
#pragma GCC unroll 8
    for (int s = 0; s < NS; s++)
        acc[s][0] = acc[s][1] = acc[s][2] = _mm512_setzero_ps();
    ao[0] = ao[1] = ao[2] = _mm512_setzero_ps();
    const float *q = j->Q + s0, *p = j->P + w0;
    __m512 qs = _mm512_setzero_ps();
    int qsum = !ONES && j->qsum && w0 == 0; /* on the first strip only */
    __mmask16 m0 = tail_mask(nw), m1 = tail_mask(nw - 16),
              m2 = tail_mask(nw - 32);
    if (nw == TW && qsum)
        sums_run(j, acc, q, p, k0, k1, 0, 0, 0, NS, 1, &qs, NULL);
    else if (nw == TW)
        sums_run(j, acc, q, p, k0, k1, 0, 0, 0, NS, 1, NULL,
                 ONES ? ao : NULL);
    else if (qsum)
        sums_run(j, acc, q, p, k0, k1, m0, m1, m2, NS, 0, &qs, NULL);
    else
        sums_run(j, acc, q, p, k0, k1, m0, m1, m2, NS, 0, NULL,
                 ONES ? ao : NULL);
    if (qsum) {
        __mmask16 mq = (__mmask16)((1u << NS) - 1);
        float *g = j->qsum + s0;
        _mm512_mask_storeu_ps(g, mq,
                              _mm512_add_ps(qs, _mm512_maskz_loadu_ps(mq, g)));
    }
#pragma GCC unroll 8
    for (int s = 0; s < NS; s++)
        sums_store(j, j->D + (size_t)(s0 + s) * j->ldd + w0, acc[s], nw,
                   first);
    if (ONES)
        sums_store(j, j->D + (size_t)j->S * j->ldd + w0, ao, nw, first);
}

#define SUMS_TILE(NS, ONES)                                                  \
    static TARGET void sums_tile_##NS##_##ONES(const sums_job *j, int s0,    \
                                               int w0, int nw, int k0,       \
                                               int k1, int first)            \
    {                                                                        \
        sums_tile(j, s0, NS, ONES, w0, nw, k0, k1, first);                   \
    }
SUMS_TILE(8, 0)
SUMS_TILE(4, 0)
SUMS_TILE(2, 0)
SUMS_TILE(1, 0)
SUMS_TILE(8, 1)
SUMS_TILE(4, 1)
SUMS_TILE(2, 1)
SUMS_TILE(1, 1)

typedef void (*sums_tile_fn)(const sums_job *, int, int, int, int, int, int);

/* Values 0 .. S of s (any count) against one strip of w; the row of ones
 * rides on the last tile. */
static void sums_strip(const sums_job *j, int w0, int nw, int k0, int k1,
                       int first)
{
    static const sums_tile_fn tile[2][9] = {
        [0] = {[8] = sums_tile_8_0, [4] = sums_tile_4_0, [2] = sums_tile_2_0,
               [1] = sums_tile_1_0},
        [1] = {[8] = sums_tile_8_1, [4] = sums_tile_4_1, [2] = sums_tile_2_1,
               [1] = sums_tile_1_1},
    };
    for (int s0 = 0; s0 < j->S;) {
        int left = j->S - s0;
        int ns = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        tile[j->ones && s0 + ns == j->S][ns](j, s0, w0, nw, k0, k1, first);
        s0 += ns;
    }
}

/* Block t of nt: a run of columns of w in TW-wide strips, every s, all of
 * K. */
static void sums_block(void *arg, int t, int nt)
{
    const sums_job *j = arg;
    /* the thread's columns, cut on whole vectors (not whole strips: 1540
     * columns are 33 strips, 17 against 16 is 12 % more for one thread) */
    size_t v0, v1;
    mspt_block(((size_t)j->W + 15) / 16, t, nt, &v0, &v1);
    int end = (int)v1 * 16 < j->W ? (int)v1 * 16 : j->W;
    for (int w0 = (int)v0 * 16; w0 < end; w0 += TW) {
        int nw = end - w0 < TW ? end - w0 : TW;
        for (int k0 = 0; k0 < j->K; k0 += SUMS_KC)
            sums_strip(j, w0, nw, k0, k0 + SUMS_KC < j->K ? k0 + SUMS_KC : j->K,
                       k0 == 0);
        if (!j->Ct)
            continue;
        /* Ct[w, s] = alpha · D[s, w] + beta · Ct[w, s] for this strip */
        for (int w = w0; w < w0 + nw; w++)
            for (int s = 0; s < j->S; s++) {
                float *c = j->Ct + (size_t)w * j->ldct + s;
                float d = j->alpha_t * j->D[(size_t)s * j->ldd + w];
                *c = j->beta_t == 0.0f ? d : d + j->beta_t * *c;
            }
    }
}

/* C (M, N) = alpha · Aᵀ · B + beta · C, A stored (K, M), B stored (K, N).
 * The longer of M and N is the vectorised w; with w = M the kernel sums
 * Cᵀ into scratch and each thread transposes its strips into C. */
static int sums_gemm(int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C,
                     int ldc, float *qsum, size_t work)
{
    if (qsum && N < M)
        return 0; /* the column sums of A ride on w = N's first strip */
    if (N >= M) {
        sums_job j = {M, N, K, A, B, (size_t)lda, (size_t)ldb, alpha, beta,
                      C, (size_t)ldc, NULL, 0, 0.0f, 0.0f, qsum, 0};
        mspt_parallel(work, sums_block, &j);
        return 1;
    }
    float *D = scratch((size_t)N * M);
    if (!D)
        return 0;
    sums_job j = {N, M, K, B, A, (size_t)ldb, (size_t)lda, 1.0f, 0.0f, D,
                  (size_t)M, C, (size_t)ldc, alpha, beta, NULL, 0};
    mspt_parallel(work, sums_block, &j);
    return 1;
}

/* ---- a linear layer's backward in one pass over gy ---------------------- */

#define FUSED_ROWS 96 /* rows of gy per block: 96·O floats stay in L2 */

typedef struct {
    rows_job dx;    /* gx += gy · w (dx.M = 0: no gx) */
    sums_job dw;    /* D_t = [x | 1]ᵀ · gy over thread t's rows */
    int R;
    float *part;    /* D_t of every thread, nt × (S + ones, O) */
    float *gw, *gb;
    int used;       /* the nt the blocks were cut for */
} fused_job;

/* Block t of nt: a run of rows of gy, in blocks of FUSED_ROWS.  Each block
 * is read from memory once, by gx's tiles, and summed into the thread's D
 * from L2. */
static void fused_block(void *arg, int t, int nt)
{
    fused_job *f = arg;
    if (t == 0)
        f->used = nt;
    sums_job dw = f->dw;
    size_t rows = (size_t)dw.S + dw.ones;
    dw.D = f->part + (size_t)t * rows * dw.W;
    /* the thread's rows, cut on whole 12-row tiles, in blocks of
     * FUSED_ROWS */
    size_t g0, g1;
    mspt_block(((size_t)f->R + 11) / 12, t, nt, &g0, &g1);
    int start = (int)g0 * 12, end = (int)g1 * 12 < f->R ? (int)g1 * 12 : f->R;
    if (start >= end) { /* no rows: its D still owes zeros */
        memset(dw.D, 0, rows * dw.W * sizeof(float));
        return;
    }
    for (int r0 = start; r0 < end; r0 += FUSED_ROWS) {
        int r1 = r0 + FUSED_ROWS < end ? r0 + FUSED_ROWS : end;
        for (int r = r0; f->dx.M && r < r1; r += 12)
            rows_panel(&f->dx, r, r1 - r < 12 ? r1 - r : 12, 0);
        for (int w0 = 0; w0 < dw.W; w0 += TW)
            sums_strip(&dw, w0, dw.W - w0 < TW ? dw.W - w0 : TW, r0, r1,
                       r0 == start);
    }
}

/* Block t of nt: outputs o of gw (O, I) += Σ_t D_t[:I, o] and gb (O) +=
 * Σ_t D_t[I, o], the threads' D added in thread order. */
static void fused_finish(void *arg, int t, int nt)
{
    const fused_job *f = arg;
    int I = f->dw.S, O = f->dw.W;
    size_t o0, o1, stride = ((size_t)I + f->dw.ones) * O;
    mspt_block((size_t)O, t, nt, &o0, &o1);
    for (size_t o = o0; o < o1; o++) {
        for (int i = 0; i <= I; i++) {
            if (i == I && !f->gb)
                break;
            const float *d = f->part + (size_t)i * O + o;
            float sum = d[0];
            for (int u = 1; u < f->used; u++)
                sum += d[(size_t)u * stride];
            if (i < I)
                f->gw[o * I + i] += sum;
            else
                f->gb[o] += sum;
        }
    }
}

int mspt_thin_linear_backward(int R, int I, int O, const float *gy,
                              const float *w, const float *x, int ldx,
                              float *gx, float *gw, float *gb)
{
    if (!enabled() || !gw || I > 32 || O < 256 || R < 256)
        return 0;
    int nt = mspt_get_threads(), ones = gb != NULL;
    /* w as one panel (O, 32), then the D of every thread */
    float *buf = scratch((size_t)O * 32 + (size_t)nt * (I + ones) * O);
    if (!buf)
        return 0;
    fused_job f = {
        {gx ? R : 0, I, O, 2, gy, (size_t)O, w, (size_t)I, 0, 1.0f, buf, 1.0f,
         gx, (size_t)I, NULL, NULL},
        {I, O, R, x, gy, (size_t)ldx, (size_t)O, 1.0f, 0.0f, NULL, (size_t)O,
         NULL, 0, 0.0f, 0.0f, NULL, ones},
        R, buf + (size_t)O * 32, gw, gb, 1,
    };
    if (gx)
        mspt_parallel(MSPT_PAR_MIN, pack_block, &f.dx);
    mspt_parallel(MSPT_PAR_MIN, fused_block, &f);
    mspt_parallel(MSPT_PAR_MIN, fused_finish, &f);
    return 1;
}

/* The shapes the kernels take: sums, a short side (of C) over a long K;
 * rows, a short K or a short N, over rows enough for tiles. */
#define THIN_SIDE 64
static int sums_fit(int M, int N, int K)
{
    return (M < N ? M : N) <= THIN_SIDE && K >= 256;
}
static int rows_fit(int M, int N, int K)
{
    return (K <= THIN_SIDE || N <= THIN_SIDE) && M >= 64;
}

/* Work for mspt_parallel: split over the threads only from 2^21
 * multiply-adds (mspt_gemm's rule). */
static size_t work_of(double mnk)
{
    return mnk >= 2097152.0 ? MSPT_PAR_MIN : 0;
}

#endif /* THIN_AVX512 */

int mspt_thin_linear_forward(int R, int I, int O, const float *x,
                             const float *w, const float *b, float *y)
{
#if THIN_AVX512
    if (enabled() && rows_fit(R, O, I))
        return rows_gemm(1, R, O, I, 1.0f, x, I, w, I, b, 0.0f, y, O,
                         work_of((double)R * I * O));
#else
    (void)R; (void)I; (void)O; (void)x; (void)w; (void)b; (void)y;
#endif
    return 0;
}

int mspt_thin_weight_grad(int R, int I, int O, const float *gy,
                          const float *x, float *gw, float *gb)
{
#if THIN_AVX512
    /* gw (O, I) += gyᵀ · x as sums with s = O (gy's columns, whose sums
     * are gb) and w = I */
    if (enabled() && I >= O && sums_fit(O, I, R))
        return sums_gemm(O, I, R, 1.0f, gy, O, x, I, 1.0f, gw, I, gb,
                         work_of((double)R * I * O));
#else
    (void)R; (void)I; (void)O; (void)gy; (void)x; (void)gw; (void)gb;
#endif
    return 0;
}

#if !THIN_AVX512
int mspt_thin_linear_backward(int R, int I, int O, const float *gy,
                              const float *w, const float *x, int ldx,
                              float *gx, float *gw, float *gb)
{
    (void)R; (void)I; (void)O; (void)gy; (void)w; (void)x; (void)ldx;
    (void)gx; (void)gw; (void)gb;
    return 0;
}
#endif

/* ---- dispatch ---------------------------------------------------------- */

int mspt_thin_gemm(int trans_a, int trans_b, int M, int N, int K,
                   float alpha, const float *A, int lda, const float *B,
                   int ldb, float beta, float *C, int ldc, int threads)
{
    if (!enabled())
        return 0;
#if THIN_AVX512
    /* split over the engine's threads unless told one, or too small */
    size_t work = threads != 1 ? work_of((double)M * N * K) : 0;
    /* weight gradient: a short side, summed over a long K */
    if (trans_a && !trans_b && sums_fit(M, N, K))
        return sums_gemm(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL,
                         work);
    /* rows of C from rows of A: a short K, or a short N */
    if (!trans_a && rows_fit(M, N, K))
        return rows_gemm(trans_b, M, N, K, alpha, A, lda, B, ldb, NULL, beta,
                         C, ldc, work);
#else
    (void)trans_a; (void)trans_b; (void)M; (void)N; (void)K; (void)alpha;
    (void)A; (void)lda; (void)B; (void)ldb; (void)beta; (void)C; (void)ldc;
    (void)threads;
#endif
    return 0;
}
