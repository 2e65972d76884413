/* datasets.hdf5: the HDF5 files of BioFoundation's HDF5Loader
 * (datasets/hdf5_dataset.py, written by make_datasets/make_hdf5.py): top-level
 * groups, each holding a dataset X of shape (N, C, T), float16, float32 or
 * float64 (any other member, such as labels y, is ignored); several files
 * concatenated in name order, groups in name order.  Windows are read one at
 * a time as hyperslabs, converted to float32 by HDF5 in memory, never a whole
 * file and never rewriting it.  Every HDF5 call holds one lock (see
 * hdf5_util.h): reads from several loader threads are correct, serialised.
 * This module also provides datasets.emg_h5 (hdf5_emg.c). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include <mspt/mspt.h>

#include "io/files.h"

#include "edf_paths.h"
#include "hdf5_util.h"

extern const mspt_component h5_emg_component;

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
     "name of the (N, C, T) float dataset (float16, float32 or float64) in "
     "each top-level group"},
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

/* Add group `group` of file f: its dataset `x`.  A layout error names
 * the file, what was expected and what the group holds. */
static int add_group(h5_dataset *d, hid_t f, const char *file,
                     const char *group, const char *x, mspt_error *err)
{
    H5O_info_t info;
    if (H5Oget_info_by_name(f, group, &info, H5P_DEFAULT) < 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: cannot open '%s'",
                              file, group);
    if (info.type != H5O_TYPE_GROUP)
        return 0; /* a top-level dataset or type: not a recording */
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    hsize_t dims[3] = {0, 0, 0};
    hid_t ds = g < 0 ? -1 : h5_open_windows(g, x, dims);
    if (ds < 0) {
        char found[1024] = "nothing readable";
        if (g >= 0)
            h5_describe(g, found, sizeof found);
        H5Gclose(g);
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: group '%s': expected a "
                              "float dataset '%s' of shape (N, C, T); found %s",
                              file, group, x, found);
    }
    H5Gclose(g);
    if (d->nparts && (dims[1] != (hsize_t)d->channels ||
                      dims[2] != (hsize_t)d->samples)) {
        H5Dclose(ds);
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: %s/%s is (%llu, %llu, "
                              "%llu), but earlier windows are (%d, %d)", file,
                              group, x, (unsigned long long)dims[0],
                              (unsigned long long)dims[1],
                              (unsigned long long)dims[2], d->channels,
                              d->samples);
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
                    mspt_error *err)
{
    if (mspt_check_regular(file, err)) /* a FIFO would block HDF5 */
        return MSPT_ERR_CONFIG;
    if (H5Fis_hdf5(file) <= 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: not an HDF5 file",
                              file);
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: cannot open", file);
    d->files[d->nfiles++] = f;
    names l = {0};
    int rc = 0;
    size_t before = d->nparts;
    if (H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, NULL, collect, &l) < 0)
        rc = mspt_error_set(err, MSPT_ERR_CONFIG, "%s: cannot list its groups",
                            file);
    for (size_t i = 0; !rc && i < l.n; i++)
        rc = add_group(d, f, file, l.s[i], x, err);
    if (!rc && d->nparts == before) { /* no group at all */
        char found[1024];
        h5_describe(f, found, sizeof found);
        hsize_t dims[3];
        hid_t emg = h5_open_windows(f, "data", dims);
        if (emg >= 0)
            H5Dclose(emg);
        rc = mspt_error_set(err, MSPT_ERR_CONFIG, "%s: expected top-level groups "
                            "each holding a float dataset '%s' of shape (N, C, "
                            "T); found %s%s", file, x, found,
                            emg >= 0 ? " (BioFoundation's EMG layout: use "
                                       "datasets.emg_h5)" : "");
    }
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
        rc = add_file(d, files.path[k], x, err);
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
    h5_quiet q;
    h5_quiet_begin(&q);
    int rc = open_all(d, cfg, err);
    h5_quiet_end(&q);
    pthread_mutex_unlock(&h5_lock);
    if (!rc && !(d->first = calloc(d->nparts + 1, sizeof *d->first)))
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    for (size_t k = 0; !rc && k < d->nparts; k++)
        d->first[k + 1] = d->first[k] + d->parts[k].n;
    if (!rc)
        d->total = d->first[d->nparts];
    if (!rc && d->total == 0)
        rc = mspt_error_set(err, MSPT_ERR_CONFIG, "%s: no windows: no group "
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
    size_t lo = h5_part_of(d->first, d->nparts, i);
    const part *p = &d->parts[lo];
    if (h5_read_rows(p->dset, i - d->first[lo], d->channels, d->samples, out))
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "hdf5: cannot read "
                              "window %zu", i);
    return 0;
}

static const mspt_dataset_vt hdf5_vt = {h5_create, h5_shape, h5_read,
                                        h5_destroy, NULL /* no padding */};

static const mspt_component hdf5_component = {
    MSPT_COMPONENT_INIT, MSPT_KIND_DATASET, "hdf5",
    "windows from BioFoundation's HDF5Loader files (top-level groups holding "
    "X of shape (N, C, T), float16, float32 or float64)",
    hdf5_params, &hdf5_vt};

MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p)
{
    return mspt_plugin_register(p, &hdf5_component) ||
                   mspt_plugin_register(p, &h5_emg_component)
               ? 1
               : 0;
}
