/* datasets.emg_h5: the layout of BioFoundation's EMGPretrainDataset
 * (datasets/emg_pretrain_dataset.py): a directory of .h5 files, taken in
 * the order of Python's sorted(os.listdir(data_dir)) of the names ending in
 * ".h5" (not recursive), each holding a top-level float dataset `data` of
 * shape (N, C, T).  Same parameter names as that class: data_dir,
 * pad_up_to_max_chans (channels padded with zeros up to that count, so that
 * files may differ in C) and max_samples (the first windows of that order).
 *
 * A separate component rather than options of datasets.hdf5: the two
 * BioFoundation classes are separate, with different layouts (groups of X
 * against one top-level `data`), file discovery (recursive .h5/.hdf5 against
 * one directory's .h5) and parameters; a BioFoundation user finds here the
 * class and keys their YAML already names.
 *
 * Padded channels: live_channels tells the trainer how many leading
 * channels of a window carry signal, and the trainer never puts the zero
 * rows into the loss (BioFoundation does; see mspt(1), DATASETS). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include <mspt/mspt.h>

#include "io/files.h"

#include "hdf5_util.h"

typedef struct emg_file {
    hid_t file, dset;
    size_t n;     /* windows */
    int channels; /* before padding */
} emg_file;

typedef struct emg_dataset {
    emg_file *files;
    size_t nfiles;
    size_t *first; /* window index of each file's first window */
    size_t total;
    int channels, samples; /* after padding */
} emg_dataset;

static const mspt_param emg_params[] = {
    {"data_dir", MSPT_PARAM_STRING, NULL,
     "directory of .h5 files (not searched recursively), taken in name "
     "order as sorted(os.listdir(data_dir)).  The keys are "
     "EMGPretrainDataset's; its other class, HDF5Loader (groups holding X), "
     "is datasets.hdf5: two layouts, two components, as in BioFoundation"},
    {"dataset", MSPT_PARAM_STRING, "data",
     "name of the top-level (N, C, T) float dataset (float16, float32 or "
     "float64) in each file"},
    {"pad_up_to_max_chans", MSPT_PARAM_INT, "nil",
     "pad every window's channels with zeros up to this count (files may "
     "then differ in C); unlike BioFoundation, the padded rows are never "
     "scored in the loss (zeros teach nothing and dilute it)"},
    {"max_samples", MSPT_PARAM_INT, "nil",
     "keep only the first this many windows, in file then row order"},
    {NULL, 0, NULL, NULL}};

static void emg_destroy(void *self)
{
    emg_dataset *d = self;
    if (!d)
        return;
    pthread_mutex_lock(&h5_lock);
    for (size_t k = 0; k < d->nfiles; k++) {
        if (d->files[k].dset >= 0)
            H5Dclose(d->files[k].dset);
        if (d->files[k].file >= 0)
            H5Fclose(d->files[k].file);
    }
    pthread_mutex_unlock(&h5_lock);
    free(d->files);
    free(d->first);
    free(d);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b); /* code points */
}

static int ends_with_h5(const char *s)
{
    size_t n = strlen(s);
    return n >= 3 && !strcmp(s + n - 3, ".h5");
}

#define LAYOUT "a float dataset '%s' of shape (N, C, T)"

/* The .h5 names of dir, sorted, as dir/name. */
static int list_dir(const char *dir, const char *key, char ***out, size_t *n,
                    const char *path, mspt_error *err)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.data_dir: %s: %s", path,
                              dir, strerror(errno));
    char **v = NULL, other[256] = "";
    size_t cap = 0, entries = 0;
    int rc = 0;
    struct dirent *e;
    *n = 0;
    while (!rc && (e = readdir(dp))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        entries++;
        if (!ends_with_h5(e->d_name)) {
            if (!other[0])
                snprintf(other, sizeof other, "%s", e->d_name);
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **t = realloc(v, cap * sizeof *t);
            if (!t) {
                rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
                break;
            }
            v = t;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(v[*n] = malloc(len))) {
            rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
            break;
        }
        snprintf(v[*n], len, "%s/%s", dir, e->d_name);
        (*n)++;
    }
    closedir(dp);
    if (!rc && *n == 0)
        rc = entries == 0
                 ? mspt_error_set(err, MSPT_ERR_CONFIG, "%s: empty directory; "
                                  "expected .h5 files each holding " LAYOUT,
                                  dir, key)
                 : mspt_error_set(err, MSPT_ERR_CONFIG, "%s: no .h5 files (%zu "
                                  "other entries, such as '%s'); expected .h5 "
                                  "files each holding " LAYOUT, dir, entries,
                                  other, key);
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            free(v[i]);
        free(v);
        *n = 0;
        return rc;
    }
    qsort(v, *n, sizeof *v, by_name);
    *out = v;
    return 0;
}

/* Open file f of the list, check its layout against the first file's. */
static int open_file(emg_dataset *d, emg_file *f, const char *name,
                     const char *key, long long pad, mspt_error *err)
{
    if (mspt_check_regular(name, err)) /* a FIFO would block HDF5 */
        return MSPT_ERR_CONFIG;
    if (H5Fis_hdf5(name) <= 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: not an HDF5 file",
                              name);
    if ((f->file = H5Fopen(name, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: cannot open", name);
    hsize_t dims[3] = {0, 0, 0};
    if ((f->dset = h5_open_windows(f->file, key, dims)) < 0) {
        char found[1024];
        h5_describe(f->file, found, sizeof found);
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: expected " LAYOUT
                              "; found %s", name, key, found);
    }
    f->n = (size_t)dims[0];
    f->channels = (int)dims[1];
    const emg_file *first = &d->files[0];
    if (f != first && (int)dims[2] != d->samples)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: %s is (%llu, %llu, "
                              "%llu), but earlier files have windows of %d "
                              "samples", name, key, (unsigned long long)dims[0],
                              (unsigned long long)dims[1],
                              (unsigned long long)dims[2], d->samples);
    d->samples = (int)dims[2];
    if (pad && f->channels > pad)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: %s has %d channels, "
                              "more than pad_up_to_max_chans = %lld", name, key,
                              f->channels, pad);
    if (!pad && f != first && f->channels != first->channels)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: %s has %d channels, "
                              "but earlier files have %d; set "
                              "pad_up_to_max_chans to pad them with zeros",
                              name, key, f->channels, first->channels);
    d->channels = pad ? (int)pad : f->channels;
    return 0;
}

static int open_all(emg_dataset *d, const mspt_config *cfg, mspt_error *err)
{
    const char *path = mspt_config_path(cfg);
    const char *dir = mspt_config_string(cfg, "data_dir");
    const char *key = mspt_config_string(cfg, "dataset");
    long long pad = 0, max = -1;
    if (mspt_config_has(cfg, "pad_up_to_max_chans") &&
        (pad = mspt_config_int(cfg, "pad_up_to_max_chans")) < 1)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.pad_up_to_max_chans: "
                              "must be >= 1, got %lld", path, pad);
    if (mspt_config_has(cfg, "max_samples") &&
        (max = mspt_config_int(cfg, "max_samples")) < 1)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s.max_samples: must be "
                              ">= 1, got %lld", path, max);
    char **names = NULL;
    size_t n = 0;
    int rc = list_dir(dir, key, &names, &n, path, err);
    if (!rc && !(d->files = malloc(n * sizeof *d->files)))
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    for (size_t k = 0; !rc && k < n; k++) {
        d->files[k] = (emg_file){-1, -1, 0, 0};
        d->nfiles = k + 1;
        rc = open_file(d, &d->files[k], names[k], key, pad, err);
    }
    for (size_t k = 0; k < n; k++)
        free(names[k]);
    free(names);
    if (rc)
        return rc;
    if (!(d->first = calloc(d->nfiles + 1, sizeof *d->first)))
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    for (size_t k = 0; k < d->nfiles; k++)
        d->first[k + 1] = d->first[k] + d->files[k].n;
    d->total = d->first[d->nfiles];
    if (max > 0 && (size_t)max < d->total)
        d->total = (size_t)max; /* EMGPretrainDataset's index_map[:max_samples] */
    if (d->total == 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: no windows: every .h5 "
                              "file's '%s' is empty", dir, key);
    return 0;
}

static int emg_create(const mspt_config *cfg, void **self, mspt_error *err)
{
    emg_dataset *d = calloc(1, sizeof *d);
    if (!d)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    pthread_mutex_lock(&h5_lock);
    h5_quiet q;
    h5_quiet_begin(&q);
    int rc = open_all(d, cfg, err);
    h5_quiet_end(&q);
    pthread_mutex_unlock(&h5_lock);
    if (rc) {
        emg_destroy(d);
        return rc;
    }
    *self = d;
    return 0;
}

static void emg_shape(void *self, size_t *windows, int *channels, int *samples)
{
    const emg_dataset *d = self;
    *windows = d->total;
    *channels = d->channels;
    *samples = d->samples;
}

/* out (C, T): the file's rows, then zero rows up to the padded count */
static int emg_read(void *self, size_t i, float *out, mspt_error *err)
{
    const emg_dataset *d = self;
    if (i >= d->total)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "emg_h5: window %zu out of "
                              "range (%zu windows)", i, d->total);
    size_t k = h5_part_of(d->first, d->nfiles, i);
    const emg_file *f = &d->files[k];
    if (h5_read_rows(f->dset, i - d->first[k], f->channels, d->samples, out))
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "emg_h5: cannot read "
                              "window %zu", i);
    memset(out + (size_t)f->channels * d->samples, 0,
           (size_t)(d->channels - f->channels) * d->samples * sizeof *out);
    return 0;
}

static int emg_live(void *self, size_t i)
{
    const emg_dataset *d = self;
    if (i >= d->total)
        return d->channels;
    return d->files[h5_part_of(d->first, d->nfiles, i)].channels;
}

static const mspt_dataset_vt emg_vt = {emg_create, emg_shape, emg_read,
                                       emg_destroy, emg_live};

const mspt_component h5_emg_component = {
    MSPT_COMPONENT_INIT, MSPT_KIND_DATASET, "emg_h5",
    "windows from BioFoundation's EMGPretrainDataset layout (a directory of "
    ".h5 files holding data of shape (N, C, T)), channels zero-padded on "
    "request",
    emg_params, &emg_vt};
