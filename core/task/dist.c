/* Data parallelism over MPI, see dist.h. */
#include "config.h"

#include "task/dist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_rank = 0, g_size = 1;
static int g_agreed;     /* an agreed error has been set */
static char g_prefix[32];

int mspt_dist_rank(void) { return g_rank; }
int mspt_dist_size(void) { return g_size; }

const char *mspt_dist_error_prefix(void)
{
    if (g_size == 1)
        return "";
    if (g_agreed)
        return g_rank == 0 ? "" : NULL;
    return g_prefix;
}

/* Processes the launcher says the job has (0: not launched as a job). */
static int launched_size(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0)
            return atoi(v);
    }
    /* PMIx (srun --mpi=pmix, mpirun) exports the rank, not the size */
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? 1 : 0;
}

#ifdef HAVE_MPI
#include <mpi.h>

static int g_mpi;        /* we called MPI_Init */
static int *g_pairs;     /* 2·size ints for mspt_dist_gather */

int mspt_dist_init(int *argc, char ***argv, mspt_error *err)
{
    int want = launched_size();
    if (want == 0)
        return 0;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "MPI_Init failed");
    g_mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    snprintf(g_prefix, sizeof g_prefix, "rank %d: ", g_rank);
    if (want > 1 && g_size != want) /* e.g. srun without a PMI plugin */
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "the launcher started %d processes but MPI sees "
                              "%d: under SLURM use srun --mpi=pmix (srun "
                              "--mpi=list), or the mpirun of the MPI mspt was "
                              "built with", want, g_size);
    g_pairs = malloc(2 * (size_t)g_size * sizeof *g_pairs);
    if (!g_pairs)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    return 0;
}

void mspt_dist_finalize(int rc)
{
    if (g_mpi && rc && g_size > 1 && !g_agreed)
        MPI_Abort(MPI_COMM_WORLD, rc);
    if (g_mpi)
        MPI_Finalize();
    g_mpi = 0;
    free(g_pairs);
    g_pairs = NULL;
}

int mspt_dist_agree(int rc, mspt_error *err)
{
    if (g_size == 1)
        return rc;
    int mine = rc ? g_rank : g_size, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == g_size)
        return 0;
    mspt_error e = {0};
    if (g_rank == first) {
        e = *err;
        e.status = rc;
    }
    MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, first, MPI_COMM_WORLD);
    mspt_error_set(err, e.status, "rank %d: %s", first, e.msg);
    g_agreed = 1;
    return e.status;
}

int mspt_dist_gather(int rc, int value, int *all, mspt_error *err)
{
    if (g_size == 1) {
        all[0] = value;
        return rc;
    }
    int mine[2] = {rc, value}, failed = 0;
    MPI_Allgather(mine, 2, MPI_INT, g_pairs, 2, MPI_INT, MPI_COMM_WORLD);
    for (int r = 0; r < g_size; r++) {
        failed |= g_pairs[2 * r] != 0;
        all[r] = g_pairs[2 * r + 1];
    }
    return failed ? mspt_dist_agree(rc, err) : 0;
}

int mspt_dist_sum(int rc, double *v, int n, mspt_error *err)
{
    if (g_size == 1)
        return rc;
    double buf[9]; /* v, then the failure flag */
    memcpy(buf, v, (size_t)n * sizeof *v);
    buf[n] = rc != 0;
    MPI_Allreduce(MPI_IN_PLACE, buf, n + 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (buf[n] != 0)
        return mspt_dist_agree(rc, err);
    memcpy(v, buf, (size_t)n * sizeof *v);
    return 0;
}

void mspt_dist_bcast(void *buf, size_t bytes)
{
    const size_t chunk = (size_t)1 << 30; /* MPI counts are ints */
    for (size_t off = 0; g_size > 1 && off < bytes; off += chunk) {
        size_t n = bytes - off < chunk ? bytes - off : chunk;
        MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
}

void mspt_dist_abort(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mspt: %s", g_size > 1 ? g_prefix : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (g_mpi)
        MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

/* ---- gradients ----------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

struct mspt_dist_grads {
    mspt_tensor **p;     /* packing order: last registered first */
    int nb;              /* buckets */
    size_t *first;       /* bucket b packs p[first[b] .. first[b+1]) */
    size_t *off;         /*   into buf[off[b] .. off[b+1]) */
    float *buf;          /* off[nb] floats, then the failure flag */
    double seconds, waited;
    long long calls;
};

mspt_dist_grads *mspt_dist_grads_new(const mspt_params *ps, size_t bucket_bytes)
{
    size_t np = mspt_params_count(ps), cap = np + 1;
    mspt_dist_grads *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->p = malloc(cap * sizeof *g->p);
    g->first = malloc((cap + 1) * sizeof *g->first);
    g->off = malloc((cap + 1) * sizeof *g->off);
    g->buf = malloc((mspt_params_numel(ps) + 1) * sizeof *g->buf);
    if (!g->p || !g->first || !g->off || !g->buf) {
        mspt_dist_grads_free(g);
        return NULL;
    }
    size_t floats = 0, in_bucket = 0;
    g->first[0] = g->off[0] = 0;
    for (size_t i = 0; i < np; i++) {
        g->p[i] = mspt_params_at(ps, np - 1 - i);
        floats += g->p[i]->numel;
        in_bucket += g->p[i]->numel * sizeof(float);
        if (in_bucket >= bucket_bytes || i == np - 1) {
            g->nb++;
            g->first[g->nb] = i + 1;
            g->off[g->nb] = floats;
            in_bucket = 0;
        }
    }
    if (g->nb == 0) { /* no parameters: one empty bucket for the flag */
        g->nb = 1;
        g->first[1] = g->off[1] = 0;
    }
    return g;
}

void mspt_dist_grads_free(mspt_dist_grads *g)
{
    if (!g)
        return;
    free(g->p);
    free(g->first);
    free(g->off);
    free(g->buf);
    free(g);
}

int mspt_dist_grads_sum(mspt_dist_grads *g, int rc, mspt_error *err)
{
    if (g_size == 1)
        return rc;
    double t0 = now();
    MPI_Barrier(MPI_COMM_WORLD); /* timed apart: imbalance, not transfer */
    double t1 = now();
    for (int b = 0; b < g->nb; b++) {
        float *dst = g->buf + g->off[b];
        for (size_t i = g->first[b]; i < g->first[b + 1]; i++) {
            memcpy(dst, g->p[i]->grad, g->p[i]->numel * sizeof(float));
            dst += g->p[i]->numel;
        }
        int n = (int)(g->off[b + 1] - g->off[b]);
        if (b == g->nb - 1)
            g->buf[g->off[b + 1]] = rc != 0, n++;
        MPI_Allreduce(MPI_IN_PLACE, g->buf + g->off[b], n, MPI_FLOAT, MPI_SUM,
                      MPI_COMM_WORLD);
        const float *src = g->buf + g->off[b];
        for (size_t i = g->first[b]; i < g->first[b + 1]; i++) {
            memcpy(g->p[i]->grad, src, g->p[i]->numel * sizeof(float));
            src += g->p[i]->numel;
        }
    }
    g->waited += t1 - t0;
    g->seconds += now() - t1;
    g->calls++;
    return g->buf[g->off[g->nb]] != 0 ? mspt_dist_agree(rc, err) : 0;
}

#else /* built without MPI: one rank */

int mspt_dist_init(int *argc, char ***argv, mspt_error *err)
{
    (void)argc;
    (void)argv;
    int want = launched_size();
    if (want > 1) /* N copies would each train alone, into the same files */
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "started as %d processes (mpirun or srun), but "
                              "this mspt was built without MPI (mspt --version "
                              "says -mpi); reconfigure with --with-mpi", want);
    return 0;
}

void mspt_dist_finalize(int rc) { (void)rc; }
int mspt_dist_agree(int rc, mspt_error *err)
{
    (void)err;
    return rc;
}
int mspt_dist_gather(int rc, int value, int *all, mspt_error *err)
{
    (void)err;
    all[0] = value;
    return rc;
}
int mspt_dist_sum(int rc, double *v, int n, mspt_error *err)
{
    (void)v, (void)n, (void)err;
    return rc;
}
void mspt_dist_bcast(void *buf, size_t bytes) { (void)buf, (void)bytes; }

void mspt_dist_abort(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mspt: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

struct mspt_dist_grads {
    int nb;
    double seconds, waited;
    long long calls;
};
mspt_dist_grads *mspt_dist_grads_new(const mspt_params *ps, size_t bucket_bytes)
{
    (void)ps, (void)bucket_bytes;
    return calloc(1, sizeof(mspt_dist_grads));
}
void mspt_dist_grads_free(mspt_dist_grads *g) { free(g); }
int mspt_dist_grads_sum(mspt_dist_grads *g, int rc, mspt_error *err)
{
    (void)g, (void)err;
    return rc;
}
#endif

int mspt_dist_grads_buckets(const mspt_dist_grads *g) { return g->nb; }

double mspt_dist_grads_seconds(const mspt_dist_grads *g, double *waited,
                               long long *calls)
{
    *waited = g->waited;
    *calls = g->calls;
    return g->seconds;
}
