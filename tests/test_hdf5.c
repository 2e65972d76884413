/* datasets.hdf5 (plugins/datasets/hdf5.c): files written here with the HDF5
 * C API in the PyTorch pipeline's layout (top-level groups holding X of
 * shape (N, C, T), float32 or float64, chunked or not, labels y beside);
 * windows read back exactly and from two threads at once; the errors of
 * malformed files; and a short training run from such files. */
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include <hdf5.h>

#include "plugin_util.h"
#include "task/experiment.h"
#include "task/trainer.h"

enum { C = 4, T = 64 };

static char dir[64];
static const mspt_component *comp;
static const mspt_dataset_vt *vt;

/* The value of element (n, c, t) of group g: distinct everywhere. */
static double value(int g, int n, int c, int t)
{
    return g * 1000 + n * 10 + c + t / 64.0 + 0.125;
}

/* Group name/X of shape (n, C, T), float64 when dbl, chunked when chunk. */
static void write_group(hid_t f, const char *name, int g, int n, int dbl,
                        int chunk, int with_y)
{
    hid_t grp = H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[3] = {(hsize_t)n, C, T};
    hid_t space = H5Screate_simple(3, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunk) {
        hsize_t ch[3] = {2, C, T};
        H5Pset_chunk(dcpl, 3, ch);
    }
    hid_t type = dbl ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
    hid_t ds = H5Dcreate2(grp, "X", type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    double *x = malloc((size_t)n * C * T * sizeof *x);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < T; t++)
                x[((size_t)i * C + c) * T + t] = value(g, i, c, t);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    free(x);
    H5Dclose(ds);
    if (with_y) {
        hsize_t ny = (hsize_t)n;
        hid_t ys = H5Screate_simple(1, &ny, NULL);
        hid_t y = H5Dcreate2(grp, "y", H5T_STD_I64LE, ys, H5P_DEFAULT,
                             H5P_DEFAULT, H5P_DEFAULT);
        long long *lab = calloc((size_t)n, sizeof *lab);
        H5Dwrite(y, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, lab);
        free(lab);
        H5Dclose(y);
        H5Sclose(ys);
    }
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Gclose(grp);
}

static hid_t create(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
}

static void *make_err(const char *yaml, mspt_error *err)
{
    mspt_config cfg;
    mspt_node *tree = tp_config_err(comp, "data", yaml, &cfg, err);
    if (!tree)
        return NULL;
    void *self = NULL;
    int rc = vt->create(&cfg, &self, err);
    mspt_node_free(tree);
    return rc ? NULL : self;
}

typedef struct reader {
    void *d;
    size_t n;
    int dir, same;
    const float *ref;
} reader;

static void *read_all(void *arg)
{
    reader *r = arg;
    float x[C * T];
    mspt_error err = {0};
    r->same = 1;
    for (int rep = 0; rep < 10; rep++)
        for (size_t k = 0; k < r->n; k++) {
            size_t i = r->dir > 0 ? k : r->n - 1 - k;
            r->same &= vt->read(r->d, i, x, &err) == 0 &&
                       !memcmp(x, r->ref + i * C * T, sizeof x);
        }
    return NULL;
}

static void check_read(void)
{
    /* a.h5: rec_a (5, float32, with y), rec_b (3, float64, chunked);
     * b.h5: g0 (4, float32, chunked) and a top-level dataset (ignored) */
    hid_t f = create("a.h5");
    write_group(f, "rec_b", 1, 3, 1, 1, 0);
    write_group(f, "rec_a", 0, 5, 0, 0, 1);
    H5Fclose(f);
    f = create("b.h5");
    write_group(f, "g0", 2, 4, 0, 1, 1);
    hsize_t one = 1;
    hid_t s = H5Screate_simple(1, &one, NULL);
    H5Dclose(H5Dcreate2(f, "meta", H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT,
                        H5P_DEFAULT));
    H5Sclose(s);
    H5Fclose(f);

    char yaml[256];
    snprintf(yaml, sizeof yaml, "{path: '%s/*.h5'}", dir);
    mspt_error err = {0};
    void *d = make_err(yaml, &err);
    size_t n = 0;
    int c = 0, t = 0;
    if (d)
        vt->shape(d, &n, &c, &t);
    ok(d && n == 12 && c == C && t == T, "two files, three groups: 12 windows "
       "of (4, 64)%s%s", d ? "" : ": ", d ? "" : err.msg);
    if (!d)
        return;
    /* order: a.h5 rec_a (5), rec_b (3), then b.h5 g0 (4) */
    const int group[12] = {0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2};
    const int row[12] = {0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3};
    float *all = malloc(12 * C * T * sizeof *all);
    int exact = 1;
    for (size_t i = 0; i < 12; i++) {
        float *x = all + i * C * T;
        exact &= vt->read(d, i, x, &err) == 0;
        for (int k = 0; k < C * T; k++)
            exact &= x[k] == (float)value(group[i], row[i], k / T, k % T);
    }
    ok(exact, "windows in file then group name order, float64 converted, "
       "values exact");
    reader r[2] = {{d, 12, 1, 0, all}, {d, 12, -1, 0, all}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, read_all, &r[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ok(r[0].same && r[1].same, "two threads reading at once get the same bytes");
    float x[C * T];
    ok(vt->read(d, 12, x, &err) && strstr(err.msg, "out of range"),
       "window past the end refused");
    free(all);
    vt->destroy(d);
}

static void check_errors(void)
{
    hid_t f = create("bad_shape.h5");
    write_group(f, "g0", 0, 2, 0, 0, 0);
    hid_t grp = H5Gcreate2(f, "g1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[3] = {2, C + 1, T};
    hid_t space = H5Screate_simple(3, dims, NULL);
    H5Dclose(H5Dcreate2(grp, "X", H5T_IEEE_F32LE, space, H5P_DEFAULT,
                        H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(space);
    H5Gclose(grp);
    H5Fclose(f);
    f = create("no_x.h5");
    H5Gclose(H5Gcreate2(f, "g0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Fclose(f);
    f = create("ints.h5");
    grp = H5Gcreate2(f, "g0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    space = H5Screate_simple(3, dims, NULL);
    H5Dclose(H5Dcreate2(grp, "X", H5T_STD_I16LE, space, H5P_DEFAULT,
                        H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(space);
    H5Gclose(grp);
    H5Fclose(f);
    char path[128];
    snprintf(path, sizeof path, "%s/text.h5", dir);
    FILE *fp = fopen(path, "w");
    fputs("not hdf5\n", fp);
    fclose(fp);

    static const struct {
        const char *file, *want;
    } cases[] = {
        {"bad_shape.h5", "bad_shape.h5: g1/X is (2, 5, 64), but earlier windows are (4, 64)"},
        {"no_x.h5", "no_x.h5: group 'g0' has no dataset 'X'"},
        {"ints.h5", "ints.h5: g0/X must be float32 or float64"},
        {"text.h5", "text.h5: not an HDF5 file"},
        {"missing.h5", "data.path: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "{path: %s/%s}", dir, cases[i].file);
        mspt_error err = {0};
        void *d = make_err(yaml, &err);
        ok(!d && strstr(err.msg, cases[i].want), "%s: %s", cases[i].file,
           err.msg);
        if (d)
            vt->destroy(d);
    }
    mspt_error err = {0};
    ok(!make_err("{}", &err) && strstr(err.msg, "set path"), "no path: %s",
       err.msg);
}

/* A few steps of FEMBA on the HDF5 windows, through mspt_train. */
static void check_train(void)
{
    char lua[1024], path[128], run[128];
    snprintf(lua, sizeof lua,
             "return {\n"
             "  seed = 1, threads = 1,\n"
             "  model = { _target_ = 'femba', num_channels = %d, seq_length = %d,\n"
             "            patch_size = { 2, 8 }, embed_dim = 4, num_blocks = 1,\n"
             "            exp = 2, kernel_dec = { 3, 3 } },\n"
             "  criterion = { _target_ = 'mse' },\n"
             "  optimizer = { _target_ = 'adamw', lr = 1e-3 },\n"
             "  data = { _target_ = 'hdf5', paths = { '%s/a.h5', '%s/b.h5' } },\n"
             "  trainer = { batch_size = 4, max_steps = 4, progress_bar = 'off',\n"
             "              save_top_k = 0, num_workers = 2 },\n"
             "  masking = { patch_size = { 1, 8 } },\n"
             "  input_normalization = { normalize = true },\n"
             "}\n", C, T, dir, dir);
    snprintf(path, sizeof path, "%s/exp.lua", dir);
    FILE *fp = fopen(path, "w");
    fputs(lua, fp);
    fclose(fp);
    char plugins[4200];
    snprintf(plugins, sizeof plugins, "%s/plugins", getenv("MSPT_BUILDDIR"));
    setenv("MSPT_PLUGIN_PATH", plugins, 1);
    snprintf(run, sizeof run, "%s/run", dir);
    mspt_experiment x;
    mspt_error err = {0};
    int rc = mspt_experiment_load(&x, path, NULL, 0, &err);
    if (!rc) {
        mspt_set_threads(1);
        rc = mspt_train(&x, run, NULL, &err);
    }
    mspt_experiment_free(&x);
    char last[160];
    snprintf(last, sizeof last, "%s/checkpoints/last.safetensors", run);
    struct stat st;
    ok(rc == 0 && stat(last, &st) == 0, "trains from the HDF5 files (4 "
       "steps, 2 loader threads) and saves a checkpoint%s%s", rc ? ": " : "",
       rc ? err.msg : "");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/mspt-test-hdf5-XXXXXX");
    if (!mkdtemp(dir))
        tap_bail("mkdtemp");
    comp = tp_component("datasets", "hdf5", MSPT_KIND_DATASET, "hdf5");
    vt = comp->vtable;
    check_read();
    check_errors();
    check_train();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd))
        diag("could not remove %s", dir);
    return tap_done();
}
