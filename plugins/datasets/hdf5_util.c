/* Shared HDF5 helpers, see hdf5_util.h. */
#include "hdf5_util.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;

void h5_quiet_begin(h5_quiet *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void h5_quiet_end(const h5_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->fn, q->data); }

static int is_float(hid_t type)
{
    size_t size = H5Tget_size(type);
    return H5Tget_class(type) == H5T_FLOAT &&
           (size == 2 || size == 4 || size == 8);
}

hid_t h5_open_windows(hid_t loc, const char *name, hsize_t dims[3])
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return -1;
    H5O_info_t info;
    if (H5Oget_info_by_name(loc, name, &info, H5P_DEFAULT) < 0 ||
        info.type != H5O_TYPE_DATASET)
        return -1;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0)
        return -1;
    hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank == 3)
        H5Sget_simple_extent_dims(space, dims, NULL);
    int good = rank == 3 && is_float(type) && dims[1] >= 1 && dims[2] >= 1 &&
               dims[1] * dims[2] <= INT_MAX;
    H5Sclose(space);
    H5Tclose(type);
    if (!good) {
        H5Dclose(ds);
        return -1;
    }
    return ds;
}

/* "int16", "float16", "string", ...: a dataset's element type, briefly. */
static const char *type_name(hid_t type, char *buf, size_t n)
{
    size_t bits = 8 * H5Tget_size(type);
    switch (H5Tget_class(type)) {
    case H5T_FLOAT:
        snprintf(buf, n, "float%zu", bits);
        return buf;
    case H5T_INTEGER:
        snprintf(buf, n, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "",
                 bits);
        return buf;
    case H5T_STRING:
        return "string";
    case H5T_COMPOUND:
        return "compound";
    default:
        return "non-numeric";
    }
}

typedef struct describe_state {
    char *out;
    size_t n, len;
    int count;
} describe_state;

enum { DESCRIBE_MAX = 8 }; /* members named before "..." */

static herr_t describe_one(hid_t loc, const char *name, const H5L_info_t *l,
                           void *arg)
{
    (void)l;
    describe_state *s = arg;
    if (s->count++ >= DESCRIBE_MAX)
        return 0;
    char item[256], dims_s[160] = "", tbuf[32];
    H5O_info_t info;
    if (H5Oget_info_by_name(loc, name, &info, H5P_DEFAULT) < 0)
        snprintf(item, sizeof item, "%s (unreadable)", name);
    else if (info.type == H5O_TYPE_GROUP)
        snprintf(item, sizeof item, "%s/", name);
    else if (info.type != H5O_TYPE_DATASET)
        snprintf(item, sizeof item, "%s (not a dataset)", name);
    else {
        hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
        hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
        hsize_t dims[H5S_MAX_RANK];
        int rank = H5Sget_simple_extent_ndims(space);
        if (rank > 0 && H5Sget_simple_extent_dims(space, dims, NULL) >= 0) {
            size_t l2 = (size_t)snprintf(dims_s, sizeof dims_s, " (");
            for (int k = 0; k < rank && l2 < sizeof dims_s; k++)
                l2 += (size_t)snprintf(dims_s + l2, sizeof dims_s - l2, "%s%llu",
                                       k ? ", " : "", (unsigned long long)dims[k]);
            if (l2 < sizeof dims_s)
                snprintf(dims_s + l2, sizeof dims_s - l2, ")");
        } else if (rank == 0) {
            snprintf(dims_s, sizeof dims_s, " (scalar)");
        }
        const char *t = is_float(type) ? NULL : type_name(type, tbuf, sizeof tbuf);
        snprintf(item, sizeof item, "%s%s%s%s", name, t ? " " : "", t ? t : "",
                 dims_s);
        H5Tclose(type);
        H5Sclose(space);
        H5Dclose(ds);
    }
    if (s->len < s->n)
        s->len += (size_t)snprintf(s->out + s->len, s->n - s->len, "%s%s",
                                   s->count > 1 ? ", " : "", item);
    return 0;
}

void h5_describe(hid_t loc, char *out, size_t n)
{
    describe_state s = {out, n, 0, 0};
    out[0] = '\0';
    H5Literate(loc, H5_INDEX_NAME, H5_ITER_INC, NULL, describe_one, &s);
    if (s.count == 0)
        snprintf(out, n, "nothing");
    else if (s.count > DESCRIBE_MAX && s.len < n)
        snprintf(out + s.len, n - s.len, ", ... (%d members)", s.count);
}

int h5_read_rows(hid_t ds, size_t row, int rows, int T, float *out)
{
    hsize_t start[3] = {row, 0, 0};
    hsize_t count[3] = {1, (hsize_t)rows, (hsize_t)T};
    hsize_t flat = (hsize_t)rows * (hsize_t)T;
    pthread_mutex_lock(&h5_lock);
    hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(1, &flat, NULL);
    herr_t rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    if (rc >= 0)
        rc = H5Dread(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, out);
    H5Sclose(ms);
    H5Sclose(fs);
    pthread_mutex_unlock(&h5_lock);
    return rc < 0 ? -1 : 0;
}

size_t h5_part_of(const size_t *first, size_t n, size_t i)
{
    size_t lo = 0, hi = n; /* first[lo] <= i < first[hi] */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (first[mid] <= i)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}
