/* What datasets.hdf5 and datasets.emg_h5 share: one lock around every HDF5
 * call (Debian's libhdf5 is not built thread-safe), HDF5's error stack kept
 * off stderr while a layout is checked, the check of an (N, C, T) float
 * dataset, a one-line description of what a group holds (for messages),
 * and the read of one window as a hyperslab.
 *
 * Float types: any HDF5 float class of 2, 4 or 8 bytes, so float16 (as
 * numpy/h5py write it: BioFoundation's TUEG files), float32 and float64.
 * HDF5 converts them to float32 in memory (its soft conversion handles
 * float16 subnormals, infinities and NaN); the file is never rewritten. */
#ifndef MSPT_HDF5_UTIL_H
#define MSPT_HDF5_UTIL_H

#include <pthread.h>
#include <stddef.h>

#include <hdf5.h>

extern pthread_mutex_t h5_lock;

/* HDF5's automatic error printing, switched off and back on. */
typedef struct h5_quiet {
    H5E_auto2_t fn;
    void *data;
} h5_quiet;
void h5_quiet_begin(h5_quiet *q);
void h5_quiet_end(const h5_quiet *q);

/* loc/name as windows: a float dataset of rank 3 with C, T >= 1 and
 * C·T <= INT_MAX.  The open dataset (dims set), or -1 when it is missing
 * or has another layout. */
hid_t h5_open_windows(hid_t loc, const char *name, hsize_t dims[3]);

/* What loc holds, for "found ...": "X (100, 22, 1280), y int64 (100),
 * meta/" (float datasets with their shape, others with their type too,
 * groups with a slash); "nothing" when empty. */
void h5_describe(hid_t loc, char *out, size_t n);

/* out (rows, T) = ds[row, 0:rows, 0:T] as float32.  Takes the lock.
 * 0, or -1 when HDF5 fails. */
int h5_read_rows(hid_t ds, size_t row, int rows, int T, float *out);

/* Which of n parts laid end to end holds window i: first[k] is part k's
 * first window and first[n] their total, i < first[n].  Empty parts are
 * passed over (first[k] <= i < first[k + 1] holds for the answer). */
size_t h5_part_of(const size_t *first, size_t n, size_t i);

#endif
