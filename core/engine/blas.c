/* GEMM on BLIS's typed API, the thread count, and BLIS kernel selection.
 *
 * Row-major C (M, N) = alpha · op(A) · op(B) + beta · C is handed to
 * bli_sgemm_ex with explicit (row, column) strides: a transposed operand is
 * the same memory read with its strides swapped, so nothing is copied.
 * Threads come from a per-call rntm_t, never from BLIS's global state.
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
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "gemm.h"

/* ---- threads ---------------------------------------------------------- */

/* A GEMM is split over threads only when M·N·K ≥ 2^23 (≈ 203³) and
 * M·N ≥ 2^14.  Measured with skx kernels on this machine class (2 cores,
 * BLIS 0.9.0), 2 threads vs 1: 64³ 0.8×, 128³ 0.94×, 160³ 1.16×, 192³
 * 1.14–1.19×, 256³ 1.5×, 512³ 1.75×; 64×64×1024 1.0× (BLIS does not split
 * K).  Small splits also stall badly when the other core is busy (the lead
 * saw 128³ run ~35× slower on 2 threads). */
#define GEMM_SPLIT_MNK (1.0 * (1 << 23))
#define GEMM_SPLIT_MN (1.0 * (1 << 14))

static int g_threads;

static int default_threads(void)
{
#ifdef _OPENMP
    return omp_get_num_procs(); /* respects the CPU affinity mask */
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
#endif
}

void mspt_set_threads(int n) { g_threads = n > 0 ? n : default_threads(); }

int mspt_get_threads(void)
{
    if (g_threads <= 0)
        g_threads = default_threads();
    return g_threads;
}

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

/* ---- GEMM ------------------------------------------------------------- */

int mspt_gemm_threads(int M, int N, int K)
{
    double mn = (double)M * N;
#ifdef _OPENMP
    if (omp_in_parallel())
        return 1;
#endif
    return mn * K >= GEMM_SPLIT_MNK && mn >= GEMM_SPLIT_MN ? mspt_get_threads()
                                                           : 1;
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
    inc_t rsa = trans_a ? 1 : lda, csa = trans_a ? lda : 1;
    inc_t rsb = trans_b ? 1 : ldb, csb = trans_b ? ldb : 1;
    if (threads <= 0)
        threads = mspt_gemm_threads(M, N, K);
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(threads, &rntm);
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &alpha,
                 (float *)A, rsa, csa, (float *)B, rsb, csb, &beta, C, ldc, 1,
                 NULL, &rntm);
}
