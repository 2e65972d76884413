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
static const mspt_component *comp, *emg_comp;
static const mspt_dataset_vt *vt, *emg_vt;

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

/* ---- datasets.emg_h5 ------------------------------------------------- */

/* dir/sub/name: a top-level dataset `key` (n, c, t) of `type`, values
 * value(g, i, ch, t); a label y beside when with_y. */
static void write_emg(const char *sub, const char *name, const char *key,
                      int g, int n, int c, int t, hid_t type, int rank,
                      int with_y)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[3] = {(hsize_t)n, (hsize_t)c, (hsize_t)t};
    if (rank == 2)
        dims[1] = (hsize_t)(c * t);
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(f, key, type, space, H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT);
    double *x = malloc((size_t)n * c * t * sizeof *x);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int k = 0; k < t; k++)
                x[((size_t)i * c + ch) * t + k] = value(g, i, ch, k);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    free(x);
    H5Dclose(ds);
    H5Sclose(space);
    if (with_y) {
        hsize_t ny = (hsize_t)n;
        hid_t ys = H5Screate_simple(1, &ny, NULL);
        H5Dclose(H5Dcreate2(f, "y", H5T_IEEE_F32LE, ys, H5P_DEFAULT,
                            H5P_DEFAULT, H5P_DEFAULT));
        H5Sclose(ys);
    }
    H5Fclose(f);
}

static void *make_emg(const char *yaml, mspt_error *err)
{
    mspt_config cfg;
    mspt_node *tree = tp_config_err(emg_comp, "data", yaml, &cfg, err);
    if (!tree)
        return NULL;
    void *self = NULL;
    int rc = emg_vt->create(&cfg, &self, err);
    mspt_node_free(tree);
    return rc ? NULL : self;
}

static void check_emg(void)
{
    /* emg/: B.h5 (1 window of 4 channels), a.h5 (2 x 3 ch, with labels y),
     * a10.h5 (1 x 2 ch, float64), a9.h5 (1 x 4 ch), a text file and a
     * sub-directory holding an .h5 (not searched).  Python's sorted():
     * B.h5 < a.h5 < a10.h5 < a9.h5 (code points).  emg16/: float16. */
    hid_t half = half_type();
    write_emg("emg", "a9.h5", "data", 3, 1, 4, T, H5T_IEEE_F32LE, 3, 0);
    write_emg("emg", "a.h5", "data", 1, 2, 3, T, H5T_IEEE_F32LE, 3, 1);
    write_emg("emg", "B.h5", "data", 0, 1, 4, T, H5T_IEEE_F32LE, 3, 0);
    write_emg("emg", "a10.h5", "data", 2, 1, 2, T, H5T_IEEE_F64LE, 3, 0);
    write_emg("emg/sub", "z.h5", "data", 9, 5, 4, T, H5T_IEEE_F32LE, 3, 0);
    write_emg("emg16", "x.h5", "data", 0, 2, 4, T, half, 3, 0);
    H5Tclose(half);
    char path[256];
    snprintf(path, sizeof path, "%s/emg/notes.txt", dir);
    FILE *fp = fopen(path, "w");
    fputs("not data\n", fp);
    fclose(fp);

    char yaml[256];
    mspt_error err = {0};
    snprintf(yaml, sizeof yaml, "{data_dir: %s/emg, pad_up_to_max_chans: 5}",
             dir);
    void *d = make_emg(yaml, &err);
    size_t n = 0;
    int c = 0, t = 0;
    if (d)
        emg_vt->shape(d, &n, &c, &t);
    ok(d && n == 5 && c == 5 && t == T, "emg_h5: 4 files, 5 windows padded to "
       "(5, 64)%s%s", d ? "" : ": ", d ? "" : err.msg);
    if (d) {
        const int group[5] = {0, 1, 1, 2, 3}, row[5] = {0, 0, 1, 0, 0};
        const int chans[5] = {4, 3, 3, 2, 4};
        int exact = 1, live = 1;
        float x[5 * T];
        for (size_t i = 0; i < 5; i++) {
            memset(x, 0xff, sizeof x); /* NaN: padding must overwrite */
            exact &= emg_vt->read(d, i, x, &err) == 0;
            for (int k = 0; k < 5 * T; k++)
                exact &= x[k] == (k / T < chans[i]
                                      ? (float)value(group[i], row[i], k / T, k % T)
                                      : 0.0f);
            live &= emg_vt->live_channels &&
                    emg_vt->live_channels(d, i) == chans[i];
        }
        ok(exact, "files in sorted(os.listdir) order (B, a, a10, a9; not "
           "recursive, .h5 only), rows exact, channels past the file's zero");
        ok(live, "live_channels: each window's own channel count (4 3 3 2 4)");
        emg_vt->destroy(d);
    }
    snprintf(yaml, sizeof yaml, "{data_dir: %s/emg, pad_up_to_max_chans: 4, "
             "max_samples: 3}", dir);
    d = make_emg(yaml, &err);
    n = 0;
    if (d)
        emg_vt->shape(d, &n, &c, &t);
    float x[4 * T];
    ok(d && n == 3 && c == 4 && emg_vt->read(d, 2, x, &err) == 0 &&
           x[2 * T + 1] == (float)value(1, 1, 2, 1) && x[3 * T] == 0.0f,
       "max_samples = 3 keeps the first 3 windows (B0, a0, a1)%s%s",
       d ? "" : ": ", d ? "" : err.msg);
    if (d)
        emg_vt->destroy(d);
    snprintf(yaml, sizeof yaml, "{data_dir: %s/emg16}", dir);
    d = make_emg(yaml, &err);
    int good = d != NULL;
    for (size_t i = 0; d && i < 2; i++) {
        good &= emg_vt->read(d, i, x, &err) == 0;
        for (int k = 0; k < 4 * T; k++) /* < 16 in steps of 1/64: exact */
            good &= x[k] == (float)value(0, (int)i, k / T, k % T);
        good &= emg_vt->live_channels(d, i) == 4;
    }
    ok(good, "float16 data, no padding: values exact, 4 live "
       "channels%s%s", d ? "" : ": ", d ? "" : err.msg);
    if (d)
        emg_vt->destroy(d);
}

/* Layouts emg_h5 and hdf5 cannot read: one line naming the file and what
 * was expected, status 2 (a configuration/input error). */
static void check_emg_errors(void)
{
    write_emg("e_key", "x.h5", "X", 0, 2, 4, T, H5T_IEEE_F32LE, 3, 1);
    write_emg("e_rank", "x.h5", "data", 0, 2, 4, T, H5T_IEEE_F32LE, 2, 0);
    write_emg("e_int", "x.h5", "data", 0, 2, 4, T, H5T_STD_I16LE, 3, 0);
    write_emg("e_chans", "a.h5", "data", 0, 2, 4, T, H5T_IEEE_F32LE, 3, 0);
    write_emg("e_chans", "b.h5", "data", 0, 2, 3, T, H5T_IEEE_F32LE, 3, 0);
    write_emg("e_samples", "a.h5", "data", 0, 2, 4, T, H5T_IEEE_F32LE, 3, 0);
    write_emg("e_samples", "b.h5", "data", 0, 2, 4, T / 2, H5T_IEEE_F32LE, 3, 0);
    write_emg("e_wide", "a.h5", "data", 0, 2, 6, T, H5T_IEEE_F32LE, 3, 0);
    write_emg("e_nofile", "a.hdf5", "data", 0, 2, 4, T, H5T_IEEE_F32LE, 3, 0);
    char path[256];
    snprintf(path, sizeof path, "%s/e_empty", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/e_text", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/e_text/t.h5", dir);
    FILE *fp = fopen(path, "w");
    fputs("not hdf5\n", fp);
    fclose(fp);

    static const struct {
        const char *sub, *extra, *want;
    } cases[] = {
        {"e_key", "", "e_key/x.h5: expected a float dataset 'data' of shape "
                      "(N, C, T); found X (2, 4, 64), y (2)"},
        {"e_rank", "", "e_rank/x.h5: expected a float dataset 'data' of shape "
                       "(N, C, T); found data (2, 256)"},
        {"e_int", "", "e_int/x.h5: expected a float dataset 'data' of shape "
                      "(N, C, T); found data int16 (2, 4, 64)"},
        {"e_chans", "", "e_chans/b.h5: data has 3 channels, but earlier files "
                        "have 4; set pad_up_to_max_chans"},
        {"e_samples", ", pad_up_to_max_chans: 8",
         "e_samples/b.h5: data is (2, 4, 32), but earlier files have windows "
         "of 64 samples"},
        {"e_wide", ", pad_up_to_max_chans: 4",
         "e_wide/a.h5: data has 6 channels, more than pad_up_to_max_chans = 4"},
        {"e_empty", "", "e_empty: empty directory; expected .h5 files each "
                        "holding a float dataset 'data' of shape (N, C, T)"},
        {"e_nofile", "", "e_nofile: no .h5 files (1 other entries, such as "
                         "'a.hdf5'); expected .h5 files"},
        {"e_text", "", "e_text/t.h5: not an HDF5 file"},
        {"e_missing", "", "data.data_dir: "},
        {"e_key", ", pad_up_to_max_chans: 0", "data.pad_up_to_max_chans: must "
                                              "be >= 1"},
        {"e_key", ", max_samples: 0", "data.max_samples: must be >= 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "{data_dir: %s/%s%s}", dir, cases[i].sub,
                 cases[i].extra);
        mspt_error err = {0};
        void *d = make_emg(yaml, &err);
        ok(!d && strstr(err.msg, cases[i].want) && !strchr(err.msg, '\n') &&
               err.status == MSPT_ERR_CONFIG,
           "emg_h5 %s%s: %s (status %d)", cases[i].sub, cases[i].extra,
           err.msg, err.status);
        if (d)
            emg_vt->destroy(d);
    }
    /* each layout given to the other component says which to use */
    char yaml[256];
    mspt_error err = {0};
    snprintf(yaml, sizeof yaml, "{path: %s/e_chans/a.h5}", dir);
    void *d = make_err(yaml, &err);
    ok(!d && strstr(err.msg, "a.h5: expected top-level groups each holding a "
                             "float dataset 'X' of shape (N, C, T); found data "
                             "(2, 4, 64) (BioFoundation's EMG layout: use "
                             "datasets.emg_h5)") && err.status == MSPT_ERR_CONFIG,
       "hdf5 on an EMG file: %s", err.msg);
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
    emg_comp = tp_component("datasets", "hdf5", MSPT_KIND_DATASET, "emg_h5");
    emg_vt = emg_comp->vtable;
    check_read();
    check_float16();
    check_errors();
    check_emg();
    check_emg_errors();
    check_train();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd))
        diag("could not remove %s", dir);
    return tap_done();
}
