/* Small data files in BioFoundation's layouts, for tests/test_examples.sh:
 *
 *   DIR/TUEG/TUEG_22_channels_{0,1}.h5   make_tueg_bipolar.py: a group per
 *       recording session holding X (n, 22, 1280) float16, in uV
 *   DIR/emg2pose/h5/{part0,part1}.h5     EMGPretrainDataset: a top-level
 *       data (n, 16, 1000) float32
 *   DIR/ninapro/DB6/h5/s1.h5             (n, 14, 1000): padded to 16
 *   DIR/ninapro/DB7/h5/s1.h5             (n, 12, 1000): padded to 16
 *
 * Signals: a few sinusoids and noise per channel, seeded, so every run
 * writes the same files.  Usage: make_biofoundation_data DIR */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint64_t state = 0x9e3779b97f4a7c15ULL;

static double uniform(void) /* splitmix64 */
{
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

/* n windows (C, T): per channel two sinusoids and uniform noise. */
static float *signals(int n, int C, int T, double amplitude, double rate)
{
    float *x = malloc((size_t)n * C * T * sizeof *x);
    if (!x)
        exit(1);
    for (int w = 0; w < n; w++)
        for (int c = 0; c < C; c++) {
            double f1 = 2 + 20 * uniform(), f2 = 30 + 60 * uniform();
            double p1 = 6.283 * uniform(), p2 = 6.283 * uniform();
            float *row = x + ((size_t)w * C + c) * T;
            for (int t = 0; t < T; t++) {
                double s = t / rate;
                row[t] = (float)(amplitude * (sin(6.283185 * f1 * s + p1) +
                                              0.4 * sin(6.283185 * f2 * s + p2) +
                                              0.3 * (2 * uniform() - 1)));
            }
        }
    return x;
}

/* float16 as h5py stores numpy's '<f2' */
static hid_t half_type(void)
{
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(t, 15, 10, 5, 0, 10);
    H5Tset_size(t, 2);
    H5Tset_ebias(t, 15);
    return t;
}

/* Dataset `name` (n, C, T) under loc, stored as `type`, from floats. */
static int write_x(hid_t loc, const char *name, hid_t type, const float *x, int n,
                   int C, int T)
{
    hsize_t dims[3] = {(hsize_t)n, (hsize_t)C, (hsize_t)T};
    hid_t space = H5Screate_simple(3, dims, NULL);
    hid_t ds = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = ds < 0 ? -1 : H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(space);
    return rc < 0;
}

static int tueg_file(const char *path, int sessions, int n)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return 1;
    hid_t half = half_type();
    int rc = 0;
    for (int s = 0; s < sessions && !rc; s++) {
        char name[64];
        snprintf(name, sizeof name, "aaaaaaab_s00%d_t000", s + 1);
        hid_t g = H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        float *x = signals(n, 22, 1280, 25.0, 256.0);
        rc = g < 0 || write_x(g, "X", half, x, n, 22, 1280);
        free(x);
        if (g >= 0)
            H5Gclose(g);
    }
    H5Tclose(half);
    H5Fclose(f);
    return rc;
}

static int emg_file(const char *path, int n, int C)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return 1;
    float *x = signals(n, C, 1000, 0.2, 2000.0);
    int rc = write_x(f, "data", H5T_IEEE_F32LE, x, n, C, 1000);
    free(x);
    H5Fclose(f);
    return rc;
}

static int mkdirs(const char *root, const char *rel, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", root, rel);
    for (char *p = out + strlen(root) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(out, 0777) && errno != EEXIST)
                return 1;
            *p = '/';
        }
    return mkdir(out, 0777) && errno != EEXIST;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_biofoundation_data DIR\n");
        return 2;
    }
    const char *root = argv[1];
    mkdir(root, 0777);
    char dir[4096], path[4200];
    int rc = mkdirs(root, "TUEG", dir, sizeof dir);
    for (int k = 0; k < 2 && !rc; k++) {
        snprintf(path, sizeof path, "%s/TUEG_22_channels_%d.h5", dir, k);
        rc = tueg_file(path, 2, 6);
    }
    rc = rc || mkdirs(root, "emg2pose/h5", dir, sizeof dir);
    for (int k = 0; k < 2 && !rc; k++) {
        snprintf(path, sizeof path, "%s/part%d.h5", dir, k);
        rc = emg_file(path, 8, 16);
    }
    const char *db[] = {"ninapro/DB6/h5", "ninapro/DB7/h5"};
    for (int k = 0; k < 2 && !rc; k++) {
        rc = mkdirs(root, db[k], dir, sizeof dir);
        snprintf(path, sizeof path, "%s/s1.h5", dir);
        rc = rc || emg_file(path, 10, k ? 12 : 14);
    }
    if (rc)
        fprintf(stderr, "make_biofoundation_data: cannot write under %s\n", root);
    return rc;
}
