/* GEMM on BLIS's typed API, the thread count, and BLIS kernel selection.
 *
 * Row-major C (M, N) = alpha · op(A) · op(B) + beta · C is handed to
 * bli_sgemm_ex with explicit (row, column) strides: a transposed operand is
 * the same memory read with its strides swapped, so nothing is copied.
 * Threads: see the GEMM section below.
 *
 * Kernel selection.  Debian's BLIS 0.9.0 carries the skx (AVX-512) kernels
 * but its CPU check only takes them on models it knows to have two FMA
 * units; newer Xeons (family 6 model 207) get "haswell" (~70 GFLOP/s per
 * core on sgemm 2048³ here) and AVX-512 EPYCs "generic", while skx runs at
 * ~130 (~230 on 2 cores).  BLIS 0.9.0 reads BLIS_ARCH_TYPE once, with
 * strtol — so only a number works ("skx" and "haswell" both read as 0) —
 * and only when its kernel structure (gks) exists: bli_arch_query_id()
 * called before bli_init() aborts with "Accessed uninitialized context in
 * gks".  So, at load time, before anything else touches BLIS, we put the
 * chosen id in BLIS_ARCH_TYPE, run bli_init() (which fixes the choice for
 * the process), and restore the environment.
 *
 * Choice, first match: MSPT_BLIS_ARCH=<name> (or "blis": BLIS's own pick),
 * then a user-set BLIS_ARCH_TYPE (number or name), then skx when the CPU
 * has AVX-512 F/DQ/BW/VL, else BLIS's own pick.  A request the CPU cannot
 * run (knl's AVX-512ER/PF would be an illegal instruction) or this build
 * lacks is refused with one line on stderr instead of a crash. */
#include <mspt/tensor.h>

#include <blis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "gemm.h"

/* ---- kernel selection --------------------------------------------------- */

#if defined(__x86_64__) || defined(__i386__)
#define HAS(f) __builtin_cpu_supports(f)
#else
#define HAS(f) 0
#endif

/* Can this CPU run BLIS sub-configuration `id`? (1 for non-x86 ids: BLIS
 * only compiles those in for their own family.) */
static int cpu_can_run(int id)
{
    switch (id) {
    case BLIS_ARCH_SKX:
        return HAS("avx512f") && HAS("avx512dq") && HAS("avx512bw") &&
               HAS("avx512vl");
    case BLIS_ARCH_KNL:
        return HAS("avx512f") && HAS("avx512er") && HAS("avx512pf");
    case BLIS_ARCH_KNC:
        return 0;
    case BLIS_ARCH_HASWELL: case BLIS_ARCH_ZEN: case BLIS_ARCH_ZEN2:
    case BLIS_ARCH_ZEN3: case BLIS_ARCH_EXCAVATOR:
        return HAS("avx2") && HAS("fma");
    case BLIS_ARCH_STEAMROLLER: case BLIS_ARCH_PILEDRIVER:
        return HAS("avx") && HAS("fma");
    case BLIS_ARCH_BULLDOZER:
        return HAS("avx") && HAS("fma4");
    case BLIS_ARCH_SANDYBRIDGE:
        return HAS("avx");
    case BLIS_ARCH_PENRYN:
        return HAS("ssse3");
    default:
        return 1;
    }
}

/* Is sub-configuration `id` compiled into this BLIS?  blis.h is generated
 * with the library, so its BLIS_CONFIG_* macros list what is inside. */
static int blis_has(int id)
{
    switch (id) {
#ifdef BLIS_CONFIG_SKX
    case BLIS_ARCH_SKX: return 1;
#endif
#ifdef BLIS_CONFIG_KNL
    case BLIS_ARCH_KNL: return 1;
#endif
#ifdef BLIS_CONFIG_HASWELL
    case BLIS_ARCH_HASWELL: return 1;
#endif
#ifdef BLIS_CONFIG_SANDYBRIDGE
    case BLIS_ARCH_SANDYBRIDGE: return 1;
#endif
#ifdef BLIS_CONFIG_PENRYN
    case BLIS_ARCH_PENRYN: return 1;
#endif
#ifdef BLIS_CONFIG_ZEN3
    case BLIS_ARCH_ZEN3: return 1;
#endif
#ifdef BLIS_CONFIG_ZEN2
    case BLIS_ARCH_ZEN2: return 1;
#endif
#ifdef BLIS_CONFIG_ZEN
    case BLIS_ARCH_ZEN: return 1;
#endif
#ifdef BLIS_CONFIG_EXCAVATOR
    case BLIS_ARCH_EXCAVATOR: return 1;
#endif
#ifdef BLIS_CONFIG_STEAMROLLER
    case BLIS_ARCH_STEAMROLLER: return 1;
#endif
#ifdef BLIS_CONFIG_PILEDRIVER
    case BLIS_ARCH_PILEDRIVER: return 1;
#endif
#ifdef BLIS_CONFIG_BULLDOZER
    case BLIS_ARCH_BULLDOZER: return 1;
#endif
#ifdef BLIS_CONFIG_GENERIC
    case BLIS_ARCH_GENERIC: return 1;
#endif
    default: return 0;
    }
}

/* Sub-configuration id of a name ("skx") or number ("0"); -1 if neither. */
static int arch_id(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end != s && *end == '\0')
        return v >= 0 && v < BLIS_NUM_ARCHS ? (int)v : -1;
    for (int i = 0; i < BLIS_NUM_ARCHS; i++)
        if (strcmp(s, bli_arch_string((arch_t)i)) == 0) /* table lookup only */
            return i;
    return -1;
}

/* The id to request from `var`=s, or -1 (with a warning) if unusable. */
static int usable(const char *var, const char *s)
{
    int id = arch_id(s);
    const char *why = id < 0 ? "is not a BLIS sub-configuration"
                      : !blis_has(id) ? "is not compiled into this BLIS"
                      : !cpu_can_run(id) ? "needs instructions this CPU lacks"
                                         : NULL;
    if (!why)
        return id;
    fprintf(stderr, "mspt: ignoring %s=%s: it %s\n", var, s, why);
    return -1;
}

static int choose_arch(void)
{
    const char *m = getenv("MSPT_BLIS_ARCH");
    if (m && *m && strcmp(m, "auto") != 0) {
        if (strcmp(m, "blis") == 0)
            return -1;
        int id = usable("MSPT_BLIS_ARCH", m);
        if (id >= 0)
            return id;
    }
    const char *b = getenv("BLIS_ARCH_TYPE");
    if (b && *b) {
        int id = usable("BLIS_ARCH_TYPE", b);
        if (id >= 0)
            return id;
    }
    if (blis_has(BLIS_ARCH_SKX) && cpu_can_run(BLIS_ARCH_SKX))
        return BLIS_ARCH_SKX;
    return -1;
}

__attribute__((constructor)) static void mspt_blis_select(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init(); /* constructors may run before libgcc's */
#endif
    const char *old = getenv("BLIS_ARCH_TYPE");
    char *saved = old ? strdup(old) : NULL;
    int id = choose_arch();
    if (id >= 0) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", id);
        setenv("BLIS_ARCH_TYPE", buf, 1);
    } else {
        unsetenv("BLIS_ARCH_TYPE"); /* a refused value must not reach BLIS */
    }
    bli_init(); /* BLIS reads BLIS_ARCH_TYPE here, once per process */
    if (saved)
        setenv("BLIS_ARCH_TYPE", saved, 1);
    else
        unsetenv("BLIS_ARCH_TYPE");
    free(saved);
}

const char *mspt_blas_kernel(void)
{
    bli_init(); /* querying before init is what makes BLIS abort */
    return bli_arch_string(bli_arch_query_id());
}

const char *mspt_blas_threading(void)
{
    return bli_info_get_enable_openmp()     ? "BLIS OpenMP"
           : bli_info_get_enable_pthreads() ? "BLIS pthreads"
                                            : "serial BLIS, cut by mspt";
}

/* ---- GEMM ------------------------------------------------------------- */

/* Threads.  mspt links BLIS's serial flavour when it can (configure.ac)
 * and spreads a large GEMM over its threads itself: C is cut into one block
 * of rows (or of columns) per thread and each thread runs a single-threaded
 * bli_sgemm on its block.  No team is opened for a GEMM that runs on one
 * thread — BLIS's OpenMP flavour opens one for every call, and libgomp
 * allocates each (a training step must make no heap allocation) — and the
 * threads share nothing, so no BLIS barriers stall a thread behind a
 * descheduled partner.  What the cut costs: each thread packs the whole of
 * the uncut operand (K·N when rows are cut), against (M/nt)·N·K
 * multiply-adds of its own, so the longer side of C is cut.  With a
 * threaded BLIS (a user's build) the threads are handed to BLIS instead.
 *
 * A small C over a long K — a weight gradient summed over many rows,
 * 192×192 or 40×192 over 5632 — is cut along K instead: each block sums
 * its share of K, block 0 into C, the others into scratch of the calling
 * thread, added to C in block order after the join (measured: 1.07× for
 * 192×192×5632, 1.6× for 40×192×5632 against cutting C).
 *
 * A GEMM is split only when M·N·K ≥ 2^21 and the cut side has at least
 * 2·BLOCK_ALIGN per thread.  Measured with skx kernels on 2 cores
 * (bench_engine's "split or not" table), cut vs 1 thread: 64³ 0.93×, 96³
 * 0.85×, 128³ 1.24×, 192³ 1.42×, 256³ 1.73×, 512³ 2.1×; 64×64×1024 1.28×,
 * 64×64×4096 1.53× (BLIS's own threading gave 1.0× there: it does not cut
 * K, and its threads meet at barriers). */
#define GEMM_SPLIT_MNK (1.0 * (1 << 21))
#define BLOCK_ALIGN 16 /* cuts fall on a multiple of this (micro-tiles) */
#define K_CUT_MAX_MN 36864 /* C of at most 192·192 floats ... */
#define K_CUT_RATIO 4      /* ... and K at least 4× its longer side */

static int cut_k(int M, int N, int K, int nt)
{
    int longer = M > N ? M : N;
    return (double)M * N <= K_CUT_MAX_MN && K >= K_CUT_RATIO * longer &&
           K >= 2 * BLOCK_ALIGN * nt;
}

static int blis_threaded(void)
{
    static int v = -1;
    if (v < 0)
        v = bli_info_get_enable_threading() ? 1 : 0;
    return v;
}

int mspt_gemm_threads(int M, int N, int K)
{
    double mn = (double)M * N;
    int nt = mspt_get_threads();
#ifdef _OPENMP
    if (omp_get_level() > 0)
        return 1;
#endif
    int longer = M > N ? M : N;
    if (nt <= 1 || mn * K < GEMM_SPLIT_MNK)
        return 1;
    return longer >= 2 * BLOCK_ALIGN * nt || cut_k(M, N, K, nt) ? nt : 1;
}

/* Scratch of the calling thread, one buffer per user (enum gemm_scratch):
 * grown once to the largest need, then reused (a training step makes no
 * heap allocation); one set per calling thread, so callers on several
 * threads do not share them. */
float *mspt_gemm_scratch(int slot, size_t floats)
{
    static _Thread_local float *buf[GEMM_SCRATCH_SLOTS];
    static _Thread_local size_t cap[GEMM_SCRATCH_SLOTS];
    if (floats > cap[slot]) {
        float *p = realloc(buf[slot], floats * sizeof(float));
        if (!p)
            return NULL;
        buf[slot] = p;
        cap[slot] = floats;
    }
    return buf[slot];
}

/* One BLIS call: C (M, N) with strides (rsc, 1) from op(A) (M, K) with
 * strides (rsa, csa) and op(B) (K, N) with (rsb, csb). */
static void sgemm(int M, int N, int K, float alpha, const float *A, inc_t rsa,
                  inc_t csa, const float *B, inc_t rsb, inc_t csb, float beta,
                  float *C, inc_t rsc, int threads)
{
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(threads, &rntm);
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &alpha,
                 (float *)A, rsa, csa, (float *)B, rsb, csb, &beta, C, rsc, 1,
                 NULL, &rntm);
}

typedef enum { CUT_ROWS, CUT_COLS, CUT_K } gemm_cut;

typedef struct {
    int M, N, K;
    gemm_cut cut;
    float alpha, beta;
    const float *A, *B;
    float *C;
    inc_t rsa, csa, rsb, csb, ldc;
    float *part; /* CUT_K: (nt − 1) partial (M, N) products */
} gemm_job;

/* Block t of nt: rows [i0, i1) of C (and of op(A)), columns [i0, i1) of C
 * (and of op(B)), or the share [i0, i1) of K; cuts rounded to
 * BLOCK_ALIGN. */
static void gemm_block(void *arg, int t, int nt)
{
    const gemm_job *g = arg;
    int len = g->cut == CUT_ROWS ? g->M : g->cut == CUT_COLS ? g->N : g->K;
    int per = (len + nt - 1) / nt;
    per = (per + BLOCK_ALIGN - 1) / BLOCK_ALIGN * BLOCK_ALIGN;
    int i0 = t * per, i1 = i0 + per < len ? i0 + per : len;
    if (g->cut == CUT_K) { /* block 0 into C; the others into their part */
        float *c = t ? g->part + (size_t)(t - 1) * g->M * g->N : g->C;
        if (i1 <= i0) { /* an empty share still owes its part zeros */
            if (t)
                memset(c, 0, (size_t)g->M * g->N * sizeof(float));
            return;
        }
        sgemm(g->M, g->N, i1 - i0, g->alpha, g->A + (size_t)i0 * g->csa,
              g->rsa, g->csa, g->B + (size_t)i0 * g->rsb, g->rsb, g->csb,
              t ? 0.0f : g->beta, c, t ? g->N : g->ldc, 1);
        return;
    }
    if (i1 <= i0)
        return;
    if (g->cut == CUT_ROWS)
        sgemm(i1 - i0, g->N, g->K, g->alpha, g->A + (size_t)i0 * g->rsa,
              g->rsa, g->csa, g->B, g->rsb, g->csb, g->beta,
              g->C + (size_t)i0 * g->ldc, g->ldc, 1);
    else
        sgemm(g->M, i1 - i0, g->K, g->alpha, g->A, g->rsa, g->csa,
              g->B + (size_t)i0 * g->csb, g->rsb, g->csb, g->beta, g->C + i0,
              g->ldc, 1);
}

void mspt_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc, int threads)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) { /* op(A)·op(B) is 0; BLIS would also refuse the strides */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f
                                                      : beta * C[(size_t)i * ldc + j];
        return;
    }
    /* op(A) is (M, K): stored (M, K) → strides (lda, 1); stored (K, M) and
     * transposed → the same matrix seen with strides (1, lda). */
    if (mspt_thin_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb,
                       beta, C, ldc, threads))
        return;
    inc_t rsa = trans_a ? 1 : lda, csa = trans_a ? lda : 1;
    inc_t rsb = trans_b ? 1 : ldb, csb = trans_b ? ldb : 1;
    if (threads <= 0)
        threads = mspt_gemm_threads(M, N, K);
    if (threads <= 1 || blis_threaded()) {
        sgemm(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc, threads);
        return;
    }
    int nt = mspt_get_threads();
    gemm_job g = {M, N, K, M >= N ? CUT_ROWS : CUT_COLS, alpha, beta, A, B, C,
                  rsa, csa, rsb, csb, ldc, NULL};
    /* without memory for the partial products, C is cut as usual */
    if (cut_k(M, N, K, nt) && (g.part = mspt_gemm_scratch(GEMM_SCRATCH_KCUT,
                                                       (size_t)(nt - 1) * M * N)))
        g.cut = CUT_K;
    /* work ≥ MSPT_PAR_MIN: the split is decided here, not by the size */
    mspt_parallel(MSPT_PAR_MIN, gemm_block, &g);
    for (int t = 1; g.part && t < nt; t++) { /* in block order */
        const float *p = g.part + (size_t)(t - 1) * M * N;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] += p[(size_t)i * N + j];
    }
}
