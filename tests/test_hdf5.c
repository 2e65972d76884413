/* datasets.hdf5 (plugins/datasets/hdf5.c): files written here with the HDF5
 * C API in the PyTorch pipeline's layout (top-level groups holding X of
 * shape (N, C, T), float16, float32 or float64, chunked or not, labels y
 * beside); windows read back exactly and from two threads at once; every
 * float16 bit pattern against a decoder written here and against the same
 * data stored as float32; the errors of malformed files; and a short
 * training run from such files. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
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

/* float16 as numpy/h5py store it ('<f2'): IEEE binary16, little-endian.
 * HDF5 1.10 has no predefined half type; h5py builds it the same way. */
static hid_t half_type(void)
{
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(t, 15, 10, 5, 0, 10);
    H5Tset_size(t, 2);
    H5Tset_ebias(t, 15);
    return t;
}

/* binary16 -> float, from the definition (independent of HDF5) */
static float half_value(uint16_t h)
{
    int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0    ? ldexp(m, -24)                 /* subnormal, zero */
               : e == 31 ? (m ? NAN : INFINITY)
                         : ldexp(1024 + m, e - 25);
    return (float)(sign ? -v : v);
}

/* One group g0/X of 256 windows (C, T) = (4, 64) holding every float16 bit
 * pattern once, as float16 (half) or as its values in float32. */
static void write_all_halves(const char *name, int half)
{
    enum { N = 65536 / (C * T) };
    hid_t f = create(name);
    hid_t grp = H5Gcreate2(f, "g0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[3] = {N, C, T};
    hid_t space = H5Screate_simple(3, dims, NULL);
    hid_t ht = half_type();
    hid_t type = half ? ht : H5T_IEEE_F32LE;
    hid_t ds = H5Dcreate2(grp, "X", type, space, H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT);
    uint16_t *raw = malloc(65536 * sizeof *raw);
    float *val = malloc(65536 * sizeof *val);
    for (uint32_t k = 0; k < 65536; k++) {
        raw[k] = (uint16_t)(k * 40503u); /* odd: a permutation of 0..65535 */
        val[k] = half_value(raw[k]);
    }
    if (half)
        H5Dwrite(ds, ht, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw);
    else
        H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, val);
    free(raw);
    free(val);
    H5Tclose(ht);
    H5Dclose(ds);
    H5Sclose(space);
    H5Gclose(grp);
    H5Fclose(f);
}

static int same_float(float a, float b)
{
    return (isnan(a) && isnan(b)) || !memcmp(&a, &b, sizeof a);
}

static void check_float16(void)
{
    write_all_halves("f16.h5", 1);
    write_all_halves("f32.h5", 0);
    char yaml[256];
    mspt_error err = {0};
    snprintf(yaml, sizeof yaml, "{path: %s/f16.h5}", dir);
    void *h = make_err(yaml, &err);
    snprintf(yaml, sizeof yaml, "{path: %s/f32.h5}", dir);
    void *s = h ? make_err(yaml, &err) : NULL;
    size_t n = 0;
    int c = 0, t = 0;
    if (h)
        vt->shape(h, &n, &c, &t);
    ok(h && s && n == 256 && c == C && t == T, "float16 X opens: 256 windows "
       "of (4, 64)%s%s", h && s ? "" : ": ", h && s ? "" : err.msg);
    if (!h || !s) {
        if (h)
            vt->destroy(h);
        return;
    }
    float x[C * T], y[C * T];
    int defn = 1, vs32 = 1, subn = 0, special = 0;
    for (size_t i = 0; i < n; i++) {
        defn &= vt->read(h, i, x, &err) == 0;
        vs32 &= vt->read(s, i, y, &err) == 0;
        for (int k = 0; k < C * T; k++) {
            uint16_t raw = (uint16_t)((i * C * T + (size_t)k) * 40503u);
            defn &= same_float(x[k], half_value(raw));
            vs32 &= same_float(x[k], y[k]);
            subn += ((raw >> 10) & 31) == 0 && (raw & 1023) != 0 &&
                    x[k] != 0 && fabsf(x[k]) < 6.2e-5f;
            special += ((raw >> 10) & 31) == 31 && !isfinite(x[k]);
        }
    }
    ok(defn, "all 65536 float16 bit patterns read as their binary16 values "
       "(normal, subnormal, zero, inf, NaN)");
    ok(subn == 2046 && special == 2048, "2046 subnormals kept non-zero, 2048 "
       "inf/NaN kept non-finite (%d, %d)", subn, special);
    ok(vs32, "float16 file reads as the same data stored as float32");
    float nz = half_value(0x0001);
    ok(nz == 0x1p-24f && half_value(0x3c00) == 1.0f &&
           half_value(0x7bff) == 65504.0f && half_value(0x8400) == -0x1p-14f,
       "the test's own decoder: 2^-24, 1, 65504, -2^-14");
    vt->destroy(h);
    vt->destroy(s);
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
        {"no_x.h5", "no_x.h5: group 'g0': expected a float dataset 'X' of "
                    "shape (N, C, T); found nothing"},
        {"ints.h5", "ints.h5: group 'g0': expected a float dataset 'X' of "
                    "shape (N, C, T); found X int16 (2, 5, 64)"},
        {"text.h5", "text.h5: not an HDF5 file"},
        {"missing.h5", "data.path: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "{path: %s/%s}", dir, cases[i].file);
        mspt_error err = {0};
        void *d = make_err(yaml, &err);
        ok(!d && strstr(err.msg, cases[i].want) && err.status == MSPT_ERR_CONFIG,
           "%s: %s (status %d)", cases[i].file, err.msg, err.status);
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
    check_float16();
    check_errors();
    check_train();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd))
        diag("could not remove %s", dir);
    return tap_done();
}
