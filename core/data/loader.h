/* The loader: windows from one or more datasets, split per dataset into
 * train and validation by a seeded permutation, served in batches that
 * background threads prepare while the step computes.
 *
 * Order: each epoch's training order is a permutation drawn from (seed,
 * epoch), so a resumed run sees the same batches.  A window holding NaN or
 * Inf is skipped (the batch is one shorter) and counted.
 *
 * Each window of a batch comes with its live channel count (the dataset's
 * live_channels, clamped to 1..C; C without it): the leading channels that
 * carry signal, the rest being zero padding the trainer keeps out of the
 * loss.  Kept in preallocated per-slot arrays: no allocation per batch. */
#ifndef MSPT_LOADER_H
#define MSPT_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include <mspt/plugin.h>

/* Memory the loader holds per window at most while it builds its index
 * (the two splits, the epoch order, one dataset's permutation). */
#define MSPT_LOADER_BYTES_PER_WINDOW 32

typedef struct mspt_source {
    const mspt_dataset_vt *vt;
    void *self;
    const char *path; /* "data.0", for messages */
} mspt_source;

enum { MSPT_SPLIT_TRAIN = 0, MSPT_SPLIT_VAL = 1 };

typedef struct mspt_loader mspt_loader;

/* All sources must share (channels, samples); train_fraction in (0, 1]
 * (1: no validation windows).  workers: prefetch threads (0: read in the
 * caller's thread). */
mspt_loader *mspt_loader_new(const mspt_source *src, size_t nsrc,
                             double train_fraction, uint64_t seed, int workers,
                             int max_batch, mspt_error *err);
void mspt_loader_free(mspt_loader *l);
void mspt_loader_shape(const mspt_loader *l, int *channels, int *samples);
size_t mspt_loader_windows(const mspt_loader *l, int split);
/* Data parallelism: each batch of a pass becomes a global batch of
 * size × batch_size windows (windows [k·G, (k+1)·G) of the pass's order
 * for batch k, G = size × batch_size), of which this rank reads its
 * contiguous part: [⌊rank·m/size⌋, ⌊(rank+1)·m/size⌋) of the batch's m
 * windows, batch_size each but in a short last batch.  Batch counts and
 * positions (mspt_loader_batches, first_batch) are then of global batches.
 * Call before the first pass. */
void mspt_loader_set_shard(mspt_loader *l, int rank, int size);
/* Batches an epoch of this split will have. */
size_t mspt_loader_batches(const mspt_loader *l, int split, int batch_size,
                           int drop_last);

/* Start a pass over a split: shuffled by (seed, epoch) when shuffle is set;
 * at most max_batches batches (0: all), starting at batch first_batch (a
 * run resumed mid-epoch). */
void mspt_loader_begin(mspt_loader *l, int split, long long epoch,
                       int batch_size, int shuffle, int drop_last,
                       size_t max_batches, size_t first_batch);
/* Next batch: *x points to B·C·T floats valid until the next call.
 * Returns B (> 0), 0 at the end of the pass, -1 on a read error. */
int mspt_loader_next(mspt_loader *l, const float **x, mspt_error *err);
/* The same, but a batch left empty is returned too, as 1 with *count = 0,
 * so that every rank of a sharded pass takes part in every batch (a rank's
 * part of a short last batch may be empty, or all its windows skipped).
 * Returns 1 (*count windows at *x), 0 at the end of the pass, -1 on a read
 * error. */
int mspt_loader_take(mspt_loader *l, const float **x, int *count,
                     mspt_error *err);

/* Live channels of each window of the batch last returned by take/next
 * (count entries), valid as long as its windows. */
const int *mspt_loader_live(const mspt_loader *l);

/* Read window k of a split (in its unshuffled order) into out, directly. */
int mspt_loader_read(const mspt_loader *l, int split, size_t k, float *out,
                     mspt_error *err);

/* Live channels of window k of a split (as mspt_loader_read's). */
int mspt_loader_live_channels(const mspt_loader *l, int split, size_t k);

size_t mspt_loader_skipped(const mspt_loader *l);   /* non-finite windows */
double mspt_loader_wait_seconds(const mspt_loader *l); /* caller waited */

#endif
