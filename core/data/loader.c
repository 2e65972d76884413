/* Batching and prefetching, see loader.h.
 *
 * Workers and the caller share a ring of slots.  Batch k of the current pass
 * is prepared in slot k mod S by whichever worker claims it; the caller
 * takes batches in order and releases a slot when it asks for the next one.
 * A pass is identified by a generation number so that workers abandon
 * batches of a pass the caller has left. */
#include "data/loader.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY };

typedef struct slot {
    int state;
    size_t batch;      /* which batch of the pass it holds */
    unsigned gen;
    int count;         /* windows in it (after skipping) */
    int failed;
    mspt_error err;
    float *x;
    int *live;         /* live channels of each window (max_batch) */
} slot;

typedef struct window_ref {
    uint32_t src;
    uint32_t index;
} window_ref;
_Static_assert(4 * sizeof(window_ref) == MSPT_LOADER_BYTES_PER_WINDOW,
               "loader.h states the index's bytes per window");

struct mspt_loader {
    mspt_source *src;
    size_t nsrc;
    int C, T, max_batch;
    int rank, nshards;   /* this rank's part of every batch, of nshards */
    uint64_t seed;
    window_ref *split[2];
    size_t nsplit[2];
    window_ref *order;   /* the current pass's order */
    size_t norder;

    /* current pass */
    int batch_size;
    size_t nbatches, next_claim, next_take;
    unsigned gen;
    int holding;         /* the caller holds slot next_take−1 */
    const int *live;     /* of the batch handed out last */
    size_t skipped;
    double waited;

    slot *slots;
    int nslots, nworkers;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Fisher–Yates driven by a counter-based stream: the same (seed, tag)
 * always gives the same permutation. */
static void shuffle(window_ref *v, size_t n, uint64_t seed, uint64_t tag)
{
    uint64_t state = mix64(seed ^ mix64(tag));
    for (size_t i = n; i > 1; i--) {
        state = mix64(state);
        size_t j = (size_t)(state % i);
        window_ref t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* Leading channels of window i of src that carry signal, in 1..C. */
static int live_of(const mspt_source *src, size_t i, int C)
{
    if (!src->vt->live_channels)
        return C;
    int n = src->vt->live_channels(src->self, i);
    return n < 1 ? 1 : n > C ? C : n;
}

/* Read (this rank's part of) batch `b` of the pass into s; 0 or -1
 * (s->err set). */
static int fill(mspt_loader *l, slot *s, size_t b)
{
    size_t global = (size_t)l->batch_size * (size_t)l->nshards;
    size_t start = b * global, m = global;
    if (start + m > l->norder)
        m = l->norder - start;
    size_t first = start + m * (size_t)l->rank / (size_t)l->nshards;
    size_t last = start + m * (size_t)(l->rank + 1) / (size_t)l->nshards;
    size_t win = (size_t)l->C * l->T;
    int count = 0;
    for (size_t i = first; i < last; i++) {
        window_ref w = l->order[i];
        float *dst = s->x + (size_t)count * win;
        const mspt_source *src = &l->src[w.src];
        if (src->vt->read(src->self, w.index, dst, &s->err)) {
            mspt_error_prefix(&s->err, "%s window %u", src->path, w.index);
            return -1;
        }
        int finite = 1;
        for (size_t k = 0; k < win && finite; k++)
            finite = isfinite(dst[k]);
        if (finite)
            s->live[count++] = live_of(src, w.index, l->C);
        else
            __atomic_add_fetch(&l->skipped, 1, __ATOMIC_RELAXED);
    }
    s->count = count;
    return 0;
}

static void *worker(void *arg)
{
    mspt_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop &&
               !(l->next_claim < l->nbatches &&
                 l->slots[l->next_claim % l->nslots].state == SLOT_FREE &&
                 l->next_claim < l->next_take + (size_t)l->nslots - (size_t)l->holding))
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->stop)
            break;
        size_t b = l->next_claim++;
        slot *s = &l->slots[b % l->nslots];
        s->state = SLOT_FILLING;
        s->batch = b;
        s->gen = l->gen;
        pthread_mutex_unlock(&l->mu);
        int rc = fill(l, s, b);
        pthread_mutex_lock(&l->mu);
        s->failed = rc != 0;
        s->state = SLOT_READY;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

mspt_loader *mspt_loader_new(const mspt_source *src, size_t nsrc,
                             double train_fraction, uint64_t seed, int workers,
                             int max_batch, mspt_error *err)
{
    if (!(train_fraction > 0.0 && train_fraction <= 1.0)) {
        mspt_error_set(err, MSPT_ERR_CONFIG,
                       "trainer.train_val_split: %g is not in (0, 1]",
                       train_fraction);
        return NULL;
    }
    mspt_loader *l = calloc(1, sizeof *l);
    if (!l || !(l->src = malloc(nsrc * sizeof *src))) {
        free(l);
        mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
        return NULL;
    }
    memcpy(l->src, src, nsrc * sizeof *src);
    l->nsrc = nsrc;
    l->seed = seed;
    l->max_batch = max_batch;
    l->nshards = 1;
    size_t total = 0;
    for (size_t i = 0; i < nsrc; i++) {
        size_t n;
        int C, T;
        src[i].vt->shape(src[i].self, &n, &C, &T);
        if (i == 0) {
            l->C = C;
            l->T = T;
        } else if (C != l->C || T != l->T) {
            mspt_error_set(err, MSPT_ERR_CONFIG,
                           "%s: windows are %d x %d but %s's are %d x %d",
                           src[i].path, C, T, src[0].path, l->C, l->T);
            mspt_loader_free(l);
            return NULL;
        }
        if (n > UINT32_MAX) {
            mspt_error_set(err, MSPT_ERR_CONFIG, "%s: too many windows (%zu)",
                           src[i].path, n);
            mspt_loader_free(l);
            return NULL;
        }
        total += n;
    }
    for (int s = 0; s < 2; s++)
        l->split[s] = malloc((total ? total : 1) * sizeof(window_ref));
    l->order = malloc((total ? total : 1) * sizeof(window_ref));
    if (!l->split[0] || !l->split[1] || !l->order) {
        mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory for the index of "
                       "%zu windows (%zu bytes)", total,
                       total * MSPT_LOADER_BYTES_PER_WINDOW);
        mspt_loader_free(l);
        return NULL;
    }
    /* Per-dataset split, as the reference: a seeded permutation of each
     * dataset, its first ⌊n·fraction⌋ windows for training. */
    for (size_t i = 0; i < nsrc; i++) {
        size_t n;
        int C, T;
        src[i].vt->shape(src[i].self, &n, &C, &T);
        window_ref *all = malloc((n ? n : 1) * sizeof *all);
        if (!all) {
            mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: out of memory for the "
                           "index of %zu windows", src[i].path, n);
            mspt_loader_free(l);
            return NULL;
        }
        for (size_t k = 0; k < n; k++)
            all[k] = (window_ref){(uint32_t)i, (uint32_t)k};
        shuffle(all, n, seed, 0x5117ULL + i);
        size_t ntrain = (size_t)((double)n * train_fraction);
        if (train_fraction < 1.0 && ntrain == n && n > 1)
            ntrain = n - 1;
        memcpy(l->split[0] + l->nsplit[0], all, ntrain * sizeof *all);
        l->nsplit[0] += ntrain;
        memcpy(l->split[1] + l->nsplit[1], all + ntrain, (n - ntrain) * sizeof *all);
        l->nsplit[1] += n - ntrain;
        free(all);
    }
    if (l->nsplit[0] == 0) {
        mspt_error_set(err, MSPT_ERR_CONFIG, "data: no training windows");
        mspt_loader_free(l);
        return NULL;
    }

    l->nworkers = workers > 0 ? workers : 0;
    l->nslots = l->nworkers + 2;
    l->slots = calloc((size_t)l->nslots, sizeof *l->slots);
    size_t bytes = (size_t)max_batch * l->C * l->T * sizeof(float);
    for (int s = 0; s < l->nslots; s++) {
        l->slots[s].x = malloc(bytes ? bytes : 1);
        l->slots[s].live = malloc((size_t)(max_batch > 0 ? max_batch : 1) * sizeof(int));
        if (!l->slots[s].x || !l->slots[s].live) {
            mspt_error_set(err, MSPT_ERR_RUNTIME,
                           "out of memory for batch buffers (%zu bytes)", bytes);
            mspt_loader_free(l);
            return NULL;
        }
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->threads = calloc((size_t)(l->nworkers ? l->nworkers : 1), sizeof *l->threads);
    for (int w = 0; w < l->nworkers; w++)
        pthread_create(&l->threads[w], NULL, worker, l);
    return l;
}

void mspt_loader_free(mspt_loader *l)
{
    if (!l)
        return;
    if (l->threads) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        for (int w = 0; w < l->nworkers; w++)
            pthread_join(l->threads[w], NULL);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        free(l->threads);
    }
    for (int s = 0; l->slots && s < l->nslots; s++) {
        free(l->slots[s].x);
        free(l->slots[s].live);
    }
    free(l->slots);
    free(l->split[0]);
    free(l->split[1]);
    free(l->order);
    free(l->src);
    free(l);
}

void mspt_loader_shape(const mspt_loader *l, int *channels, int *samples)
{
    *channels = l->C;
    *samples = l->T;
}

size_t mspt_loader_windows(const mspt_loader *l, int split)
{
    return l->nsplit[split];
}

void mspt_loader_set_shard(mspt_loader *l, int rank, int size)
{
    l->rank = rank;
    l->nshards = size;
}

size_t mspt_loader_batches(const mspt_loader *l, int split, int batch_size,
                           int drop_last)
{
    size_t n = l->nsplit[split], global = (size_t)batch_size * (size_t)l->nshards;
    return drop_last ? n / global : (n + global - 1) / global;
}

void mspt_loader_begin(mspt_loader *l, int split, long long epoch,
                       int batch_size, int shuffle_it, int drop_last,
                       size_t max_batches, size_t first_batch)
{
    if (batch_size > l->max_batch)
        batch_size = l->max_batch;
    pthread_mutex_lock(&l->mu);
    /* Wait for workers still filling a slot of the previous pass. */
    for (;;) {
        int busy = 0;
        for (int s = 0; s < l->nslots; s++)
            busy |= l->slots[s].state == SLOT_FILLING;
        if (!busy)
            break;
        pthread_cond_wait(&l->cv, &l->mu);
    }
    for (int s = 0; s < l->nslots; s++)
        l->slots[s].state = SLOT_FREE;
    l->norder = l->nsplit[split];
    memcpy(l->order, l->split[split], l->norder * sizeof *l->order);
    if (shuffle_it)
        shuffle(l->order, l->norder, l->seed, 0x1000ULL + (uint64_t)epoch);
    l->batch_size = batch_size;
    l->nbatches = mspt_loader_batches(l, split, batch_size, drop_last);
    if (max_batches && l->nbatches > max_batches)
        l->nbatches = max_batches;
    l->next_claim = l->next_take = first_batch;
    l->holding = 0;
    l->gen++;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int mspt_loader_take(mspt_loader *l, const float **x, int *count, mspt_error *err)
{
    pthread_mutex_lock(&l->mu);
    if (l->holding) { /* release the batch handed out last time */
        l->slots[(l->next_take - 1) % l->nslots].state = SLOT_FREE;
        l->holding = 0;
        pthread_cond_broadcast(&l->cv);
    }
    if (l->next_take >= l->nbatches) {
        pthread_mutex_unlock(&l->mu);
        *count = 0;
        return 0;
    }
    size_t b = l->next_take;
    slot *s = &l->slots[b % l->nslots];
    if (l->nworkers == 0) { /* read here */
        s->state = SLOT_FILLING;
        pthread_mutex_unlock(&l->mu);
        double t0 = now();
        s->failed = fill(l, s, b) != 0;
        l->waited += now() - t0;
        pthread_mutex_lock(&l->mu);
        s->state = SLOT_READY;
        s->batch = b;
        s->gen = l->gen;
        l->next_claim = b + 1;
    } else {
        double t0 = now();
        while (!(s->state == SLOT_READY && s->batch == b && s->gen == l->gen))
            pthread_cond_wait(&l->cv, &l->mu);
        l->waited += now() - t0;
    }
    l->next_take = b + 1;
    l->holding = 1;
    pthread_mutex_unlock(&l->mu);
    *count = 0;
    if (s->failed) {
        if (err)
            *err = s->err;
        return -1;
    }
    *x = s->x;
    *count = s->count;
    l->live = s->live;
    return 1;
}

const int *mspt_loader_live(const mspt_loader *l) { return l->live; }

int mspt_loader_next(mspt_loader *l, const float **x, mspt_error *err)
{
    int count, got;
    while ((got = mspt_loader_take(l, x, &count, err)) == 1 && count == 0)
        ; /* every window of this batch was skipped */
    return got == 1 ? count : got;
}

int mspt_loader_read(const mspt_loader *l, int split, size_t k, float *out,
                     mspt_error *err)
{
    if (k >= l->nsplit[split])
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "window %zu: the %s split has %zu windows", k,
                              split == MSPT_SPLIT_VAL ? "validation" : "training",
                              l->nsplit[split]);
    window_ref w = l->split[split][k];
    const mspt_source *src = &l->src[w.src];
    int rc = src->vt->read(src->self, w.index, out, err);
    if (rc)
        mspt_error_prefix(err, "%s window %u", src->path, w.index);
    return rc;
}

int mspt_loader_live_channels(const mspt_loader *l, int split, size_t k)
{
    if (k >= l->nsplit[split])
        return l->C;
    window_ref w = l->split[split][k];
    return live_of(&l->src[w.src], w.index, l->C);
}

size_t mspt_loader_skipped(const mspt_loader *l) { return l->skipped; }
double mspt_loader_wait_seconds(const mspt_loader *l) { return l->waited; }
