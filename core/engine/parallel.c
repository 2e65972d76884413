/* The engine's threads: how many, and how work is spread over them.
 *
 * Every parallel loop of the engine goes through mspt_parallel(), which
 * opens an OpenMP region only when the loop will really run on two or more
 * threads.  libgomp keeps the last multi-thread team of the outermost level
 * for reuse, but allocates (malloc) a new team for every region that runs
 * on one thread — an `if (small)` clause or num_threads(1) — and for every
 * nested one; a training step must make no heap allocation. */
#include <mspt/tensor.h>

#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

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

/* Never more than OpenMP's thread limit (OMP_THREAD_LIMIT): a region
 * asked for more would get fewer, and with one thread libgomp allocates. */
static int limited(int n)
{
#ifdef _OPENMP
    int lim = omp_get_thread_limit();
    if (lim > 0 && n > lim)
        return lim;
#endif
    return n;
}

/* The bound of the threads setting: 4 per online CPU (affinity aside, so
 * that a pinned run may still oversubscribe a little).  Beyond it a team
 * only thrashes (4096 threads on 2 cores made no progress) and libgomp
 * crashes on its own allocations (100000). */
int mspt_max_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 1 << 20 ? 4 * (int)n : 4;
}

void mspt_set_threads(int n)
{
    int max = mspt_max_threads();
    g_threads = limited(n > max ? max : n > 0 ? n : default_threads());
}

int mspt_get_threads(void)
{
    if (g_threads <= 0)
        g_threads = limited(default_threads());
    return g_threads;
}

void mspt_parallel(size_t work, void (*fn)(void *arg, int t, int nt),
                   void *arg)
{
    int nt = work >= MSPT_PAR_MIN ? mspt_get_threads() : 1;
#ifdef _OPENMP
    if (omp_get_level() > 0) /* inside a region: a nested one would allocate */
        nt = 1;
#endif
    if (nt <= 1) {
        fn(arg, 0, 1);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        int t = omp_get_thread_num(), got = omp_get_num_threads();
#else
        int t = 0, got = 1;
#endif
        /* libgomp may give fewer threads than asked (OMP_THREAD_LIMIT,
         * OMP_DYNAMIC): each thread then takes its share of the nt blocks,
         * so the cut — and so the result — stays that of nt. */
        for (int b = t; b < nt; b += got)
            fn(arg, b, nt);
    }
}
