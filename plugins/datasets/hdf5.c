/* datasets.hdf5: the HDF5 files of the PyTorch pipeline: top-level groups,
 * each holding a dataset X of shape (N, C, T), float32 or float64 (any
 * other member, such as labels y, is ignored); several files concatenated
 * in name order, groups in name order.  Windows are read one at a time as
 * hyperslabs (HDF5 converts float64 to float32), never a whole file.
 * Debian's libhdf5 is not built thread-safe, so every HDF5 call holds one
 * lock: reads from several loader threads are correct, serialised. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include <mspt/mspt.h>

#include "edf_paths.h"

static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;

/* One group's X. */
typedef struct part {
    hid_t file, dset;
    size_t n;
} part;

typedef struct h5_dataset {
    part *parts;
    size_t nparts, cap;
    size_t *first; /* window index of each part's first window */
    size_t total;
    int channels, samples;
    hid_t *files;
    size_t nfiles;
} h5_dataset;

static const mspt_param hdf5_params[] = {
    {"path", MSPT_PARAM_STRING, "nil",
     "an HDF5 file, a directory (searched recursively for .h5 and .hdf5) or "
     "a glob pattern"},
    {"paths", MSPT_PARAM_STRINGS, "nil", "several of what path takes"},
    {"dataset", MSPT_PARAM_STRING, "X",
     "name of the (N, C, T) float dataset in each top-level group"},
    {NULL, 0, NULL, NULL}};

static const char *const h5_extensions[] = {".h5", ".hdf5", NULL};

static void h5_destroy(void *self)
{
    h5_dataset *d = self;
    if (!d)
        return;
    pthread_mutex_lock(&h5_lock);
    for (size_t k = 0; k < d->nparts; k++)
        H5Dclose(d->parts[k].dset);
    for (size_t k = 0; k < d->nfiles; k++)
        H5Fclose(d->files[k]);
    pthread_mutex_unlock(&h5_lock);
    free(d->parts);
    free(d->files);
    free(d->first);
    free(d);
}

/* Names of the root's links, in name order. */
typedef struct names {
    char **s;
    size_t n;
} names;

static herr_t collect(hid_t g, const char *name, const H5L_info_t *info,
                      void *arg)
{
    (void)g;
    (void)info;
    names *l = arg;
    char **t = realloc(l->s, (l->n + 1) * sizeof *t);
    if (!t || !(t[l->n] = strdup(name)))
        return -1;
    l->s = t;
    l->n++;
    return 0;
}

/* Add group `group` of file f (path for messages): its dataset `x`. */
static int add_group(h5_dataset *d, hid_t f, const char *file,
                     const char *group, const char *x, const char *path,
                     mspt_error *err)
{
    hid_t obj = H5Oopen(f, group, H5P_DEFAULT);
    if (obj < 0)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s: cannot open "
                              "'%s'", path, file, group);
    int is_group = H5Iget_type(obj) == H5I_GROUP;
    htri_t has = is_group ? H5Lexists(obj, x, H5P_DEFAULT) : 0;
    hid_t ds = has > 0 ? H5Dopen2(obj, x, H5P_DEFAULT) : -1;
    H5Oclose(obj);
    if (!is_group)
        return 0; /* a top-level dataset or type: not a recording */
    if (ds < 0)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s: group '%s' has "
                              "no dataset '%s'", path, file, group, x);
    hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
    hsize_t dims[3] = {0, 0, 0};
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank == 3)
        H5Sget_simple_extent_dims(space, dims, NULL);
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    H5Sclose(space);
    H5Tclose(type);
    const char *why = NULL;
    char shape[96];
    if (rank != 3)
        why = "must have 3 dimensions (N, C, T)";
    else if (cls != H5T_FLOAT || (size != 4 && size != 8))
        why = "must be float32 or float64";
    else if (dims[1] < 1 || dims[2] < 1 || dims[1] * dims[2] > INT_MAX)
        why = "has an impossible window shape";
    else if (d->nparts && (dims[1] != (hsize_t)d->channels ||
                           dims[2] != (hsize_t)d->samples)) {
        snprintf(shape, sizeof shape, "is (%llu, %llu, %llu), but earlier "
                 "windows are (%d, %d)", (unsigned long long)dims[0],
                 (unsigned long long)dims[1], (unsigned long long)dims[2],
                 d->channels, d->samples);
        why = shape;
    }
    if (why) {
        H5Dclose(ds);
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s: %s/%s %s", path,
                              file, group, x, why);
    }
    if (d->nparts == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 16;
        part *p = realloc(d->parts, cap * sizeof *p);
        if (!p) {
            H5Dclose(ds);
            return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
        }
        d->parts = p;
        d->cap = cap;
    }
    d->parts[d->nparts++] = (part){f, ds, (size_t)dims[0]};
    d->channels = (int)dims[1];
    d->samples = (int)dims[2];
    return 0;
}

static int add_file(h5_dataset *d, const char *file, const char *x,
                    const char *path, mspt_error *err)
{
    if (H5Fis_hdf5(file) <= 0)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s: not an HDF5 "
                              "file", path, file);
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s: cannot open",
                              path, file);
    d->files[d->nfiles++] = f;
    names l = {0};
    int rc = 0;
    if (H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, NULL, collect, &l) < 0)
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s: cannot list its "
                            "groups", path, file);
    for (size_t i = 0; !rc && i < l.n; i++)
        rc = add_group(d, f, file, l.s[i], x, path, err);
    for (size_t i = 0; i < l.n; i++)
        free(l.s[i]);
    free(l.s);
    return rc;
}

static int open_all(h5_dataset *d, const mspt_config *cfg, mspt_error *err)
{
    const char *path = mspt_config_path(cfg);
    const char *one = mspt_config_string(cfg, "path");
    const char *x = mspt_config_string(cfg, "dataset");
    size_t n = mspt_config_len(cfg, "paths");
    char why[1024];
    edf_paths files = {0};
    int rc = 0;
    if (!one && !n)
        rc = mspt_error_set(err, MSPT_ERR_CONFIG, "%s: set path (a file, a "
                            "directory or a glob pattern) or paths", path);
    if (!rc && one && edf_paths_add(&files, one, h5_extensions, why, sizeof why))
        rc = mspt_error_set(err, MSPT_ERR_CONFIG, "%s.path: %s", path, why);
    for (size_t k = 0; !rc && k < n; k++)
        if (edf_paths_add(&files, mspt_config_string_at(cfg, "paths", k),
                          h5_extensions, why, sizeof why))
            rc = mspt_error_set(err, MSPT_ERR_CONFIG, "%s.paths[%zu]: %s",
                                path, k + 1, why);
    if (!rc && !(d->files = calloc(files.n, sizeof *d->files)))
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    for (size_t k = 0; !rc && k < files.n; k++)
        rc = add_file(d, files.path[k], x, path, err);
    edf_paths_free(&files);
    return rc;
}

static int h5_create(const mspt_config *cfg, void **self, mspt_error *err)
{
    h5_dataset *d = calloc(1, sizeof *d);
    if (!d)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    /* failures are reported here, with the file and group; keep HDF5's own
     * error stack off stderr meanwhile */
    pthread_mutex_lock(&h5_lock);
    H5E_auto2_t fn;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &fn, &data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rc = open_all(d, cfg, err);
    H5Eset_auto2(H5E_DEFAULT, fn, data);
    pthread_mutex_unlock(&h5_lock);
    if (!rc && !(d->first = calloc(d->nparts + 1, sizeof *d->first)))
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    for (size_t k = 0; !rc && k < d->nparts; k++)
        d->first[k + 1] = d->first[k] + d->parts[k].n;
    if (!rc)
        d->total = d->first[d->nparts];
    if (!rc && d->total == 0)
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: no windows: no group "
                            "holds a non-empty '%s'", mspt_config_path(cfg),
                            mspt_config_string(cfg, "dataset"));
    if (rc) {
        h5_destroy(d);
        return rc;
    }
    *self = d;
    return 0;
}

static void h5_shape(void *self, size_t *windows, int *channels, int *samples)
{
    const h5_dataset *d = self;
    *windows = d->total;
    *channels = d->channels;
    *samples = d->samples;
}

/* out (C, T) = X[j] of the part holding window i: one hyperslab */
static int h5_read(void *self, size_t i, float *out, mspt_error *err)
{
    const h5_dataset *d = self;
    if (i >= d->total)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "hdf5: window %zu out of "
                              "range (%zu windows)", i, d->total);
    size_t lo = 0, hi = d->nparts;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (d->first[mid] <= i)
            lo = mid;
        else
            hi = mid;
    }
    const part *p = &d->parts[lo];
    hsize_t start[3] = {i - d->first[lo], 0, 0};
    hsize_t count[3] = {1, (hsize_t)d->channels, (hsize_t)d->samples};
    hsize_t flat = (hsize_t)d->channels * (hsize_t)d->samples;
    pthread_mutex_lock(&h5_lock);
    hid_t fs = H5Dget_space(p->dset), ms = H5Screate_simple(1, &flat, NULL);
    herr_t rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    if (rc >= 0)
        rc = H5Dread(p->dset, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, out);
    H5Sclose(ms);
    H5Sclose(fs);
    pthread_mutex_unlock(&h5_lock);
    if (rc < 0)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "hdf5: cannot read "
                              "window %zu", i);
    return 0;
}

static const mspt_dataset_vt hdf5_vt = {h5_create, h5_shape, h5_read,
                                        h5_destroy};

static const mspt_component hdf5_component = {
    MSPT_COMPONENT_INIT, MSPT_KIND_DATASET, "hdf5",
    "windows from the PyTorch pipeline's HDF5 files (groups holding X of "
    "shape (N, C, T), float32 or float64)",
    hdf5_params, &hdf5_vt};

MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p)
{
    return mspt_plugin_register(p, &hdf5_component) ? 1 : 0;
}
