/* safetensors I/O: round trip, byte-exact parity with the safetensors
 * crate's layout (fixture from scripts/gen_fixtures_safetensors.py and the
 * crate's own test vectors), dtype conversion against torch, one error
 * message per kind of bad file, atomic save, and a mutation fuzz loop. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "tap.h"

static char tmpdir[512];

/* tmpdir/name (a few rotating buffers so two can be live at once). */
static const char *tpath(const char *name)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static const char *fixture_path(const char *name)
{
    static char buf[4096];
    const char *src = getenv("MSPT_SRCDIR");
    snprintf(buf, sizeof buf, "%s/tests/fixtures/%s", src ? src : ".", name);
    return buf;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(buf, 1, (size_t)n, fp);
    fclose(fp);
    return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(buf, 1, len, fp) != len || fclose(fp) != 0)
        tap_bail("cannot write a test file");
}

/* A hand-made file: 8-byte length, json padded to 8, data_len bytes. */
static void write_raw(const char *path, const char *json, size_t data_len)
{
    size_t n = strlen(json), padded = (n + 7) / 8 * 8;
    unsigned char *buf = calloc(1, 8 + padded + data_len + 1);
    uint64_t len = padded;
    memcpy(buf, &len, 8);
    memcpy(buf + 8, json, n);
    memset(buf + 8 + n, ' ', padded - n);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + padded + i] = (unsigned char)i;
    spit(path, buf, 8 + padded + data_len);
    free(buf);
}

/* Files in tmpdir (or a subdirectory) whose name has ".tmp.". */
static int count_temps(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

static int same_float(float a, float b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

/* Opening json + data_len bytes fails, naming the file and `culprit`. */
static void open_fails(const char *what, const char *json, size_t data_len,
                       const char *culprit)
{
    const char *path = tpath("bad.safetensors");
    write_raw(path, json, data_len);
    mspt_error err = {0};
    mspt_st_file *f = mspt_st_open(path, &err);
    ok(!f && err.status == MSPT_ERR_RUNTIME && strstr(err.msg, path) &&
           strstr(err.msg, culprit),
       "%s: %s", what, f ? "(opened)" : err.msg);
    mspt_st_close(f);
}

/* ---- the reference tensors (same as the generator script) ---------------- */

#define REF_ODD_NAME "caf\xc3\xa9 \"q\" \\ \n\t\x01"

static float ref_w[6], ref_b[3], ref_scalar = 2.5f, ref_odd[2] = {1, -1};
static int64_t ref_step = 123456789012;
static uint8_t ref_mask[10];

static mspt_st_writer *reference_writer(void)
{
    for (int i = 0; i < 6; i++)
        ref_w[i] = (float)(i - 3) * 0.125f;
    for (int i = 0; i < 3; i++)
        ref_b[i] = (float)i * 0.5f;
    for (int i = 0; i < 10; i++)
        ref_mask[i] = (uint8_t)(i % 2);
    mspt_st_writer *w = mspt_st_writer_new();
    /* added in an order unlike the file's, which must not matter */
    mspt_st_add_u8(w, "mask", 2, (int[]){2, 5}, ref_mask);
    mspt_st_add_f32(w, "scalar", 0, NULL, &ref_scalar);
    mspt_st_add_f32(w, "encoder.weight", 2, (int[]){2, 3}, ref_w);
    mspt_st_add_f32(w, "empty", 2, (int[]){0, 4}, NULL);
    mspt_st_add_i64(w, "step", 1, (int[]){1}, &ref_step);
    mspt_st_add_f32(w, "encoder.bias", 1, (int[]){3}, ref_b);
    mspt_st_add_f32(w, REF_ODD_NAME, 1, (int[]){2}, ref_odd);
    mspt_st_set_metadata(w, "note", "replaced below");
    mspt_st_set_metadata(w, "format", "mspt");
    mspt_st_set_metadata(w, "note", "line1\nline2 \"quoted\" caf\xc3\xa9");
    mspt_st_set_metadata(w, "epoch", "3");
    return w;
}

/* mspt's bytes equal the generator's (the crate's layout). */
static void test_byte_exact(void)
{
    mspt_st_writer *w = reference_writer();
    mspt_error err = {0};
    const char *path = tpath("ref.safetensors");
    int rc = mspt_st_save(w, path, &err);
    ok(rc == 0, "save reference file%s%s", rc ? ": " : "", err.msg);
    mspt_st_writer_free(w);
    size_t na = 0, nb = 0;
    unsigned char *a = slurp(path, &na);
    unsigned char *b = slurp(fixture_path("st_reference.safetensors"), &nb);
    if (!b)
        tap_bail("missing fixture st_reference.safetensors");
    size_t first = 0;
    while (a && first < na && first < nb && a[first] == b[first])
        first++;
    ok(a && na == nb && first == na,
       "mspt file equals the Python-written one byte for byte (%zu bytes)", nb);
    if (!(a && na == nb && first == na))
        diag("sizes %zu vs %zu, first difference at byte %zu", na, nb, first);
    uint64_t hlen;
    memcpy(&hlen, b, 8);
    ok(hlen % 8 == 0 && b[8 + hlen - 1] == ' ',
       "header padded with spaces to a multiple of 8 (%llu)",
       (unsigned long long)hlen);
    free(a);
    free(b);
    ok(count_temps(tmpdir) == 0, "no temporary file left after a save");
}

/* The crate's own test vectors (tensor.rs: test_empty, test_serialization). */
static void test_crate_vectors(void)
{
    static const unsigned char empty[] = {
        8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    static const char meta[] = "(\0\0\0\0\0\0\0"
                               "{\"__metadata__\":{\"framework\":\"pt\"}}     ";
    static const char attn[] =
        "@\0\0\0\0\0\0\0{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],"
        "\"data_offsets\":[0,24]}}";
    float data[6] = {0, 1, 2, 3, 4, 5};
    mspt_error err = {0};
    size_t n = 0;
    unsigned char *got;

    mspt_st_writer *w = mspt_st_writer_new();
    mspt_st_save(w, tpath("empty.safetensors"), &err);
    got = slurp(tpath("empty.safetensors"), &n);
    ok(got && n == sizeof empty && !memcmp(got, empty, n),
       "no tensors: the crate's 16 bytes");
    free(got);
    mspt_st_set_metadata(w, "framework", "pt");
    mspt_st_save(w, tpath("meta.safetensors"), &err);
    got = slurp(tpath("meta.safetensors"), &n);
    ok(got && n == sizeof meta - 1 && !memcmp(got, meta, n),
       "metadata only: the crate's 48 bytes");
    free(got);
    mspt_st_writer_free(w);

    w = mspt_st_writer_new();
    mspt_st_add_f32(w, "attn.0", 3, (int[]){1, 2, 3}, data);
    mspt_st_save(w, tpath("attn.safetensors"), &err);
    mspt_st_writer_free(w);
    got = slurp(tpath("attn.safetensors"), &n);
    ok(got && n == 8 + 64 + 24 && !memcmp(got, attn, sizeof attn - 1) &&
           !memcmp(got + 72, data, 24),
       "attn.0 (1,2,3): the crate's 96 bytes");
    free(got);
}

/* The fixture read back: names in order, dtypes, shapes, values, metadata. */
static void test_read_reference(void)
{
    static const char *names[] = {
        REF_ODD_NAME, "empty",  "encoder.bias", "encoder.weight",
        "mask",       "scalar", "step"};
    mspt_error err = {0};
    mspt_st_file *f =
        mspt_st_open(fixture_path("st_reference.safetensors"), &err);
    ok(f != NULL, "open the Python-written file%s%s", f ? "" : ": ", err.msg);
    if (!f)
        return;
    int names_ok = mspt_st_count(f) == 7;
    for (size_t i = 0; names_ok && i < 7; i++)
        names_ok = strcmp(mspt_st_name(f, i), names[i]) == 0;
    ok(names_ok, "7 tensors, indexed in name order (escaped name decoded)");

    long iw = mspt_st_find(f, "encoder.weight"), is = mspt_st_find(f, "step");
    long ie = mspt_st_find(f, "empty"), ic = mspt_st_find(f, "scalar");
    ok(iw >= 0 && mspt_st_dtype_of(f, (size_t)iw) == MSPT_ST_F32 &&
           mspt_st_ndim(f, (size_t)iw) == 2 &&
           mspt_st_shape(f, (size_t)iw)[0] == 2 &&
           mspt_st_shape(f, (size_t)iw)[1] == 3 &&
           mspt_st_numel(f, (size_t)iw) == 6,
       "encoder.weight: F32 (2,3)");
    ok(ie >= 0 && mspt_st_numel(f, (size_t)ie) == 0 && ic >= 0 &&
           mspt_st_ndim(f, (size_t)ic) == 0 &&
           mspt_st_numel(f, (size_t)ic) == 1,
       "zero-size (0,4) and scalar () shapes");
    size_t nbytes = 0;
    int64_t step = 0;
    if (is >= 0)
        memcpy(&step, mspt_st_data(f, (size_t)is, &nbytes), 8);
    ok(is >= 0 && mspt_st_dtype_of(f, (size_t)is) == MSPT_ST_I64 &&
           nbytes == 8 && step == ref_step,
       "step: raw I64 bytes");
    ok(mspt_st_find(f, "nope") == -1, "find of a missing name gives -1");

    float w[6], m[10], s, st, odd[2];
    int vals_ok = !mspt_st_read_f32(f, "encoder.weight", w, 6, &err) &&
                  !mspt_st_read_f32(f, "mask", m, 10, &err) &&
                  !mspt_st_read_f32(f, "scalar", &s, 1, &err) &&
                  !mspt_st_read_f32(f, "step", &st, 1, &err) &&
                  !mspt_st_read_f32(f, REF_ODD_NAME, odd, 2, &err) &&
                  !mspt_st_read_f32(f, "empty", NULL, 0, &err);
    for (int i = 0; vals_ok && i < 6; i++)
        vals_ok = w[i] == ref_w[i];
    for (int i = 0; vals_ok && i < 10; i++)
        vals_ok = m[i] == (float)(i % 2);
    ok(vals_ok && s == 2.5f && st == (float)ref_step && odd[0] == 1 &&
           odd[1] == -1,
       "values read as float32 (F32, U8, I64)");

    const char *note = mspt_st_metadata(f, "note");
    ok(mspt_st_metadata_count(f) == 3 &&
           !strcmp(mspt_st_metadata_key(f, 0), "epoch") &&
           !strcmp(mspt_st_metadata(f, "format"), "mspt") && note &&
           !strcmp(note, "line1\nline2 \"quoted\" caf\xc3\xa9") &&
           mspt_st_metadata(f, "missing") == NULL,
       "metadata: 3 keys in order, escapes decoded, missing key NULL");

    ok(mspt_st_read_f32(f, "nope", w, 6, &err) != 0 &&
           strstr(err.msg, "st_reference.safetensors") &&
           strstr(err.msg, "no tensor 'nope'"),
       "tensor not found: %s", err.msg);
    ok(mspt_st_read_f32(f, "encoder.weight", w, 5, &err) != 0 &&
           strstr(err.msg, "'encoder.weight' has shape (2,3) (6 elements), "
                           "expected 5"),
       "wrong element count: %s", err.msg);
    mspt_st_close(f);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) /* xorshift64*: deterministic */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* Several tensors of odd shapes and three dtypes survive save + open. */
static void test_round_trip(void)
{
    static const int shapes[5][5] = {
        {7}, {3, 5}, {2, 3, 5}, {1, 80, 11}, {2, 1, 3, 1, 5}};
    static const int ndims[5] = {1, 2, 3, 3, 5};
    float *data[5];
    char name[5][32];
    uint8_t mask[13];
    int64_t idx[3] = {-1, 0, INT64_MAX};
    mspt_st_writer *w = mspt_st_writer_new();
    for (int k = 0; k < 5; k++) {
        size_t n = 1;
        for (int d = 0; d < ndims[k]; d++)
            n *= (size_t)shapes[k][d];
        data[k] = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++)
            data[k][i] = (float)((double)(rnd() >> 11) / 0x1p53 * 2 - 1);
        snprintf(name[k], sizeof name[k], "blocks.%d.w", 4 - k);
        mspt_st_add_f32(w, name[k], ndims[k], shapes[k], data[k]);
    }
    for (int i = 0; i < 13; i++)
        mask[i] = (uint8_t)rnd();
    mspt_st_add_u8(w, "mask", 1, (int[]){13}, mask);
    mspt_st_add_i64(w, "idx", 1, (int[]){3}, idx);
    mspt_st_set_metadata(w, "step", "1200");
    mspt_st_set_metadata(w, "config",
                         "{\"lr\": 0.001}\t\x7f\xc2\x85\xe2\x80\xa8");
    mspt_error err = {0};
    const char *path = tpath("round.safetensors");
    int rc = mspt_st_save(w, path, &err);
    ok(rc == 0, "save 7 tensors + metadata%s%s", rc ? ": " : "", err.msg);
    mspt_st_writer_free(w);

    mspt_st_file *f = mspt_st_open(path, &err);
    ok(f && mspt_st_count(f) == 7, "reopen: 7 tensors%s%s", f ? "" : ": ",
       err.msg);
    if (!f)
        return;
    int same = 1, shapes_ok = 1;
    for (int k = 0; k < 5; k++) {
        long i = mspt_st_find(f, name[k]);
        size_t nb = 0;
        const void *raw = i >= 0 ? mspt_st_data(f, (size_t)i, &nb) : NULL;
        size_t n = nb / 4;
        float *back = malloc((n ? n : 1) * sizeof *back);
        same &= raw && !memcmp(raw, data[k], nb) &&
                !mspt_st_read_f32(f, name[k], back, n, &err) &&
                !memcmp(back, data[k], nb);
        shapes_ok &= i >= 0 && mspt_st_ndim(f, (size_t)i) == ndims[k];
        for (int d = 0; shapes_ok && d < ndims[k]; d++)
            shapes_ok = mspt_st_shape(f, (size_t)i)[d] == shapes[k][d];
        free(back);
        free(data[k]);
    }
    ok(same, "float32 data bit-exact (raw and read_f32)");
    ok(shapes_ok, "shapes (7) (3,5) (2,3,5) (1,80,11) (2,1,3,1,5) kept");
    long im = mspt_st_find(f, "mask"), ii = mspt_st_find(f, "idx");
    ok(im >= 0 && ii >= 0 && mspt_st_dtype_of(f, (size_t)im) == MSPT_ST_U8 &&
           !memcmp(mspt_st_data(f, (size_t)im, NULL), mask, 13) &&
           mspt_st_dtype_of(f, (size_t)ii) == MSPT_ST_I64 &&
           !memcmp(mspt_st_data(f, (size_t)ii, NULL), idx, 24),
       "U8 and I64 data kept");
    const char *cfg = mspt_st_metadata(f, "config");
    ok(cfg && !strcmp(cfg, "{\"lr\": 0.001}\t\x7f\xc2\x85\xe2\x80\xa8") &&
           !strcmp(mspt_st_metadata(f, "step"), "1200"),
       "metadata with tab, DEL, U+0085, U+2028 kept (written as \\u escapes)");
    mspt_st_close(f);
}

/* torch's float64/float16/bfloat16/int/bool tensors → float32, exactly. */
static void test_convert(void)
{
    static const struct {
        const char *name;
        mspt_st_dtype dt;
    } src[] = {{"f64", MSPT_ST_F64},      {"f16", MSPT_ST_F16},
               {"f16_2d", MSPT_ST_F16},   {"bf16", MSPT_ST_BF16},
               {"bf16_3d", MSPT_ST_BF16}, {"i64", MSPT_ST_I64},
               {"i32", MSPT_ST_I32},      {"i16", MSPT_ST_I16},
               {"i8", MSPT_ST_I8},        {"u8", MSPT_ST_U8},
               {"bool", MSPT_ST_BOOL}};
    mspt_error err = {0};
    mspt_st_file *f =
        mspt_st_open(fixture_path("st_convert.safetensors"), &err);
    ok(f && mspt_st_count(f) == 22 &&
           !strcmp(mspt_st_metadata(f, "format"), "pt"),
       "open the torch-written file: 22 tensors%s%s", f ? "" : ": ", err.msg);
    if (!f)
        return;
    for (size_t k = 0; k < sizeof src / sizeof *src; k++) {
        char ref[32];
        snprintf(ref, sizeof ref, "%s.f32", src[k].name);
        long i = mspt_st_find(f, src[k].name);
        size_t n = i >= 0 ? mspt_st_numel(f, (size_t)i) : 0;
        float got[16], want[16];
        int good = i >= 0 && n <= 16 &&
                   mspt_st_dtype_of(f, (size_t)i) == src[k].dt &&
                   !mspt_st_read_f32(f, src[k].name, got, n, &err) &&
                   !mspt_st_read_f32(f, ref, want, n, &err);
        size_t bad = 0;
        while (good && bad < n && same_float(got[bad], want[bad]))
            bad++;
        ok(good && bad == n, "%s (%s, %zu values) equals torch's float32",
           src[k].name, mspt_st_dtype_name(src[k].dt), n);
        if (good && bad < n)
            diag("element %zu: got %.9g want %.9g", bad, got[bad], want[bad]);
    }
    mspt_st_close(f);
}

/* Dtypes torch 1.13 cannot write: F8 variants and unsigned ints. */
static void test_convert_other(void)
{
    static const uint8_t e4m3[6] = {0x38, 0x7e, 0x01, 0xb8, 0x7f, 0x00};
    static const uint8_t e5m2[5] = {0x3c, 0x7b, 0x7c, 0x01, 0xfc};
    static const uint16_t u16[2] = {65535, 7};
    static const uint32_t u32[1] = {4000000000u};
    static const uint64_t u64[1] = {UINT64_MAX};
    const float want4[6] = {1, 448, 0x1p-9f, -1, NAN, 0};
    const float want5[5] = {1, 57344, INFINITY, 0x1p-16f, -INFINITY};
    mspt_st_writer *w = mspt_st_writer_new();
    mspt_st_add(w, "e4m3", MSPT_ST_F8_E4M3, 1, (int[]){6}, e4m3);
    mspt_st_add(w, "e5m2", MSPT_ST_F8_E5M2, 1, (int[]){5}, e5m2);
    mspt_st_add(w, "u16", MSPT_ST_U16, 1, (int[]){2}, u16);
    mspt_st_add(w, "u32", MSPT_ST_U32, 1, (int[]){1}, u32);
    mspt_st_add(w, "u64", MSPT_ST_U64, 1, (int[]){1}, u64);
    mspt_error err = {0};
    mspt_st_save(w, tpath("f8.safetensors"), &err);
    mspt_st_writer_free(w);
    mspt_st_file *f = mspt_st_open(tpath("f8.safetensors"), &err);
    float g4[6], g5[5], g16[2], g32, g64;
    int good = f && !mspt_st_read_f32(f, "e4m3", g4, 6, &err) &&
               !mspt_st_read_f32(f, "e5m2", g5, 5, &err) &&
               !mspt_st_read_f32(f, "u16", g16, 2, &err) &&
               !mspt_st_read_f32(f, "u32", &g32, 1, &err) &&
               !mspt_st_read_f32(f, "u64", &g64, 1, &err);
    int ok4 = good, ok5 = good;
    for (int i = 0; ok4 && i < 6; i++)
        ok4 = same_float(g4[i], want4[i]);
    for (int i = 0; ok5 && i < 5; i++)
        ok5 = same_float(g5[i], want5[i]);
    ok(ok4, "F8_E4M3: 1, 448, 2^-9, -1, NaN, 0");
    ok(ok5, "F8_E5M2: 1, 57344, inf, 2^-16, -inf");
    ok(good && g16[0] == 65535 && g16[1] == 7 && g32 == 4e9f && g64 == 0x1p64f,
       "U16, U32, U64 cast to float");
    mspt_st_close(f);
}

/* One bad file of each kind: opening fails naming the file and culprit. */
static void test_open_errors(void)
{
    mspt_error err = {0};
    const char *path = tpath("short.safetensors");
    spit(path, "\x10\0\0\0\0", 5);
    mspt_st_file *f = mspt_st_open(path, &err);
    ok(!f && strstr(err.msg, path) && strstr(err.msg, "truncated"),
       "truncated header length: %s", err.msg);

    path = tpath("long.safetensors");
    spit(path, "\xe8\x03\0\0\0\0\0\0{\"a\":{}}", 16);
    f = mspt_st_open(path, &err);
    ok(!f && strstr(err.msg, path) &&
           strstr(err.msg, "header length 1000 runs past the end"),
       "header length beyond the file: %s", err.msg);

    path = tpath("huge.safetensors"); /* sparse: costs no disk */
    FILE *fp = fopen(path, "wb");
    uint64_t big = 100000001;
    fwrite(&big, 8, 1, fp);
    fputc('{', fp);
    fclose(fp);
    if (truncate(path, (off_t)(8 + big)) != 0)
        tap_bail("truncate failed");
    f = mspt_st_open(path, &err);
    ok(!f && strstr(err.msg, path) && strstr(err.msg, "exceeds the limit"),
       "header over 100 MB refused: %s", err.msg);

    f = mspt_st_open(tpath("absent.safetensors"), &err);
    ok(!f && strstr(err.msg, "absent.safetensors: cannot open: No such file"),
       "missing file: %s", err.msg);

    /* a FIFO with no writer: opening it blocking would wait forever */
    const char *fifo = tpath("fifo.safetensors");
    if (mkfifo(fifo, 0600) != 0)
        tap_bail("mkfifo failed");
    alarm(20); /* the test dies rather than hangs */
    f = mspt_st_open(fifo, &err);
    alarm(0);
    ok(!f && err.status == MSPT_ERR_CONFIG &&
           strstr(err.msg, "fifo.safetensors: not a regular file (a FIFO)"),
       "a FIFO is refused at once: %s", err.msg);
    f = mspt_st_open(tmpdir, &err);
    ok(!f && strstr(err.msg, "not a regular file (a directory)"),
       "a directory is refused: %s", err.msg);
    f = mspt_st_open("/dev/null", &err);
    ok(!f && strstr(err.msg, "/dev/null: not a regular file (a character device)"),
       "a device is refused: %s", err.msg);

#define T(name, shape, offs)                                                   \
    "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape                         \
    ",\"data_offsets\":" offs "}"
    open_fails("malformed JSON", "{" T("a", "[1]", "[0,4]"), 4,
               "header is not valid JSON");
    open_fails("a control byte in the header", "{\x01}", 0,
               "header is not valid JSON");
    open_fails("invalid UTF-8 in the header", "{\"\xff\":{}}", 0,
               "header is not valid JSON");
    open_fails("header not an object", " {}", 0,
               "header does not start with '{'");
    open_fails("tensor not an object", "{\"a\":[1]}", 0,
               "tensor 'a' must be an object, found a list");
    open_fails("missing dtype",
               "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "tensor 'w': missing field 'dtype'");
    open_fails("missing data_offsets",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
               "tensor 'w': missing field 'data_offsets'");
    open_fails(
        "unknown dtype",
        "{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
        "tensor 'w': unknown dtype 'F33'");
    open_fails("dtype not a string",
               "{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "tensor 'w': dtype must be a string, found 32");
    open_fails("shape not a list", "{" T("w", "\"2\"", "[0,8]") "}", 8,
               "tensor 'w': shape must be a list of non-negative integers, "
               "found \"2\"");
    open_fails("shape holds a float", "{" T("w", "[1.5]", "[0,4]") "}", 4,
               "tensor 'w': shape must be a list of non-negative integers, "
               "found 1.5");
    open_fails("shape holds a string", "{" T("w", "[2,\"3\"]", "[0,24]") "}",
               24, "found \"3\"");
    open_fails("shape holds a negative", "{" T("w", "[-1]", "[0,4]") "}", 4,
               "tensor 'w': shape must be a list of non-negative integers, "
               "found -1");
    open_fails("shape holds null", "{" T("w", "[null]", "[0,4]") "}", 4,
               "found null");
    open_fails("shape too large",
               "{" T("w", "[99999999999999999999]", "[0,4]") "}", 4,
               "found 99999999999999999999");
    open_fails("shape overflows",
               "{" T("w", "[4294967296,4294967296,16]", "[0,4]") "}", 4,
               "tensor 'w': shape (4294967296,4294967296,16) × F32 overflows");
    open_fails("negative offset", "{" T("w", "[1]", "[-4,0]") "}", 4,
               "tensor 'w': data_offsets must be a list of non-negative "
               "integers, found -4");
    open_fails("three offsets", "{" T("w", "[1]", "[0,4,8]") "}", 4,
               "tensor 'w': data_offsets must be [begin, end], found 3");
    open_fails("offsets not matching shape",
               "{" T("model.pos_embed", "[1,80,385]", "[0,100]") "}", 100,
               "tensor 'model.pos_embed': data_offsets [0, 100] do not match "
               "shape (1,80,385) × F32");
    open_fails("reversed offsets", "{" T("w", "[0]", "[4,0]") "}", 4,
               "tensor 'w': data_offsets [4, 0] end before they begin");
    open_fails("overlapping offsets",
               "{" T("a", "[2]", "[0,8]") "," T("b", "[2]", "[4,12]") "}", 12,
               "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]");
    open_fails("offsets past the data", "{" T("a", "[2]", "[0,8]") "}", 4,
               "tensor 'a': data_offsets [0, 8] run past the end of the data "
               "section (4 bytes)");
    open_fails("hole between tensors",
               "{" T("a", "[1]", "[0,4]") "," T("b", "[1]", "[8,12]") "}", 12,
               "bytes [4, 8) before tensor 'b' belong to no tensor");
    open_fails("data section larger than the tensors",
               "{" T("a", "[1]", "[0,4]") "}", 12,
               "data section size mismatch: the file holds 12 bytes of data, "
               "the tensors cover 4");
    open_fails("duplicate tensor names",
               "{" T("a", "[1]", "[0,4]") "," T("a", "[1]", "[4,8]") "}", 8,
               "duplicate tensor name 'a'");
    open_fails("duplicate field",
               "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[0,4]}}",
               4, "tensor 'a': duplicate field 'dtype'");
    open_fails("unknown field",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"offsets\":[0,4]}}", 4,
               "tensor 'a': unknown field 'offsets'");
    open_fails("metadata value not a string",
               "{\"__metadata__\":{\"epoch\":3}}", 0,
               "__metadata__ 'epoch' must be a string, found 3");
    open_fails("metadata not an object", "{\"__metadata__\":[\"a\"]}", 0,
               "__metadata__ must be an object of strings, found a list");
    open_fails("duplicate metadata key",
               "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0,
               "duplicate __metadata__ key 'k'");
    open_fails("single-quoted name (YAML, not JSON)",
               "{'a':{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
               4, "a tensor name must be a string, found 'a' (not JSON)");
    open_fails("unquoted name (YAML, not JSON)",
               "{a: {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
               4, "a tensor name must be a string, found a");
    open_fails("YAML anchor",
               "{\"a\":&x {\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[0,4]}}",
               4, "YAML-only syntax");
    open_fails("YAML tag",
               "{\"a\":{\"dtype\":!!str F32,\"shape\":[1],"
               "\"data_offsets\":[0,4]}}",
               4, "YAML-only syntax");
    open_fails("raw U+0085 inside a name (libyaml would fold it)",
               "{\"a\xc2\x85"
               "b\":{}}",
               0, "raw line break");
    open_fails("NUL escape in a name", "{\"a\\u0000b\":{}}", 0,
               "contains a NUL character");
    /* libyaml does not decode surrogate pairs: a documented limit, but it
     * must fail cleanly */
    open_fails("surrogate-pair escape (not supported)",
               "{\"\\ud83d\\ude00\":{}}", 0, "header is not valid JSON");
#undef T
}

/* libyaml and JSON strings: escapes decoded; the key length limit. */
static void test_names(void)
{
    mspt_error err = {0};
    const char *path = tpath("esc.safetensors");
    write_raw(path,
              "{\"caf\\u00e9\\/\\t\":{\"dtype\":\"F32\",\"shape\":[],"
              "\"data_offsets\":[0,4]}}",
              4);
    mspt_st_file *f = mspt_st_open(path, &err);
    ok(f && mspt_st_find(f, "caf\xc3\xa9/\t") == 0,
       "\\u00e9, \\/ and \\t escapes in a name decoded");
    mspt_st_close(f);

    /* longest names: 1022 ASCII characters, and 1022 two-byte ones */
    char *ascii = malloc(1100), *wide = malloc(2 * 1022 + 1);
    memset(ascii, 'k', 1022);
    ascii[1022] = '\0';
    for (int i = 0; i < 1022; i++)
        memcpy(wide + 2 * i, "\xc3\xa9", 2);
    wide[2 * 1022] = '\0';
    float v[2] = {1, 2};
    mspt_st_writer *w = mspt_st_writer_new();
    mspt_st_add_f32(w, ascii, 0, NULL, &v[0]);
    mspt_st_add_f32(w, wide, 0, NULL, &v[1]);
    int rc = mspt_st_save(w, tpath("long.safetensors"), &err);
    mspt_st_writer_free(w);
    f = rc ? NULL : mspt_st_open(tpath("long.safetensors"), &err);
    ok(f && mspt_st_find(f, ascii) >= 0 && mspt_st_find(f, wide) >= 0,
       "1022-character names (ASCII and 2-byte UTF-8) written and read%s%s",
       f ? "" : ": ", err.msg);
    mspt_st_close(f);

    strcat(ascii, "k"); /* 1023 */
    w = mspt_st_writer_new();
    ok(mspt_st_add_f32(w, ascii, 0, NULL, v) != 0 &&
           mspt_st_save(w, tpath("toolong.safetensors"), &err) != 0 &&
           strstr(err.msg, "toolong.safetensors") &&
           strstr(err.msg, "is 1023 characters in JSON; mspt reads at most "
                           "1022") &&
           access(tpath("toolong.safetensors"), F_OK) != 0,
       "writer refuses a 1023-character name: %.120s", err.msg);
    mspt_st_writer_free(w);
    char *json = malloc(1200);
    snprintf(json, 1200,
             "{\"%s\":{\"dtype\":\"F32\",\"shape\":[],"
             "\"data_offsets\":[0,4]}}",
             ascii);
    open_fails("reader and a 1023-character name", json, 4,
               "is 1023 characters long in JSON; mspt reads at most 1022");
    free(json);

    /* a long metadata value is no key: no limit */
    char *big = malloc(100001);
    memset(big, 'v', 100000);
    big[100000] = '\0';
    w = mspt_st_writer_new();
    mspt_st_set_metadata(w, "config", big);
    mspt_st_save(w, tpath("bigmeta.safetensors"), &err);
    mspt_st_writer_free(w);
    f = mspt_st_open(tpath("bigmeta.safetensors"), &err);
    ok(f && !strcmp(mspt_st_metadata(f, "config"), big),
       "100000-character metadata value round trip");
    mspt_st_close(f);
    free(big);
    free(ascii);
    free(wide);
}

/* Bad tensors given to the writer: save fails naming file and culprit. */
static void test_writer_errors(void)
{
    static const struct {
        const char *what, *name;
        int ndim, dim;
        const char *culprit;
    } cases[] = {
        {"reserved name", "__metadata__", 1, 2, "'__metadata__' is reserved"},
        {"negative dimension", "neg", 1, -3, "tensor 'neg': dimension 0 is -3"},
        {"invalid UTF-8 name", "bad\xff", 1, 2, "is not valid UTF-8"},
    };
    float v[4] = {0};
    mspt_error err = {0};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        mspt_st_writer *w = mspt_st_writer_new();
        int add =
            mspt_st_add_f32(w, cases[k].name, cases[k].ndim, &cases[k].dim, v);
        int later = mspt_st_add_f32(w, "fine", 1, (int[]){2}, v);
        int rc = mspt_st_save(w, tpath("w.safetensors"), &err);
        ok(add != 0 && later != 0 && rc == MSPT_ERR_CONFIG &&
               strstr(err.msg, "w.safetensors") &&
               strstr(err.msg, cases[k].culprit) &&
               access(tpath("w.safetensors"), F_OK) != 0,
           "writer, %s: %s", cases[k].what, err.msg);
        mspt_st_writer_free(w);
    }
    mspt_st_writer *w = mspt_st_writer_new();
    mspt_st_add_f32(w, "x", 1, (int[]){2}, v);
    mspt_st_add_u8(w, "x", 1, (int[]){2}, (uint8_t *)v);
    int rc = mspt_st_save(w, tpath("w.safetensors"), &err);
    ok(rc != 0 && strstr(err.msg, "w.safetensors: duplicate tensor name 'x'") &&
           access(tpath("w.safetensors"), F_OK) != 0,
       "writer, duplicate name across dtypes: %s", err.msg);
    mspt_st_writer_free(w);
    w = mspt_st_writer_new();
    mspt_st_add_f32(w, "nodata", 1, (int[]){2}, NULL);
    rc = mspt_st_save(w, tpath("w.safetensors"), &err);
    ok(rc != 0 && strstr(err.msg, "tensor 'nodata': data is NULL"),
       "writer, NULL data: %s", err.msg);
    mspt_st_writer_free(w);
}

/* A small valid file at path holding "v" = value. */
static int save_value(const char *path, float value, size_t extra,
                      mspt_error *err)
{
    float *big = calloc(extra ? extra : 1, sizeof *big);
    mspt_st_writer *w = mspt_st_writer_new();
    mspt_st_add_f32(w, "v", 0, NULL, &value);
    if (extra)
        mspt_st_add_f32(w, "big", 1, (int[]){(int)extra}, big);
    int rc = mspt_st_save(w, path, err);
    mspt_st_writer_free(w);
    free(big);
    return rc;
}

/* The value "v" in the file at path, or NAN if it does not open. */
static float load_value(const char *path)
{
    mspt_error err;
    float v = NAN;
    mspt_st_file *f = mspt_st_open(path, &err);
    if (!f || mspt_st_read_f32(f, "v", &v, 1, &err))
        v = NAN;
    mspt_st_close(f);
    return v;
}

/* save_value(path, 6) as an unprivileged user: in a child running as
 * nobody when we are root (root may write anywhere). */
static int save_elsewhere(const char *path, mspt_error *err)
{
    if (geteuid() != 0)
        return save_value(path, 6, 0, err);
    int fds[2];
    if (pipe(fds) != 0)
        tap_bail("pipe failed");
    chmod(tmpdir, 0711); /* nobody may pass through, not list or write */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        mspt_error e = {0};
        int rc =
            setgid(65534) || setuid(65534) ? 99 : save_value(path, 6, 0, &e);
        ssize_t wr = write(fds[1], e.msg, strlen(e.msg) + 1);
        _exit(wr < 0 ? 98 : rc);
    }
    close(fds[1]);
    memset(err->msg, 0, sizeof err->msg);
    ssize_t got = read(fds[0], err->msg, sizeof err->msg - 1);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    chmod(tmpdir, 0700);
    return got > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_atomic(void)
{
    mspt_error err = {0};
    const char *path = tpath("ckpt.safetensors");
    ok(save_value(path, 1, 0, &err) == 0 && load_value(path) == 1,
       "first checkpoint saved");

    /* a mapping of the old file stays valid when a save replaces it */
    mspt_st_file *old = mspt_st_open(path, &err);
    ok(save_value(path, 2, 0, &err) == 0 && load_value(path) == 2,
       "save over an existing file replaces it");
    float v = 0;
    ok(old && !mspt_st_read_f32(old, "v", &v, 1, &err) && v == 1,
       "a file opened before the save still reads its old contents");
    mspt_st_close(old);

    const char *nodir = tpath("no-such-dir/ckpt.safetensors");
    int rc = save_value(nodir, 3, 0, &err);
    ok(rc == MSPT_ERR_RUNTIME && strstr(err.msg, nodir) &&
           strstr(err.msg, "cannot create temporary file") &&
           strstr(err.msg, "No such file or directory"),
       "save into a missing directory: %s", err.msg);

    /* read-only directory; as root, the save runs as nobody */
    char ro[600];
    snprintf(ro, sizeof ro, "%s/ro", tmpdir);
    mkdir(ro, 0755);
    const char *p = tpath("ro/ckpt.safetensors");
    save_value(p, 5, 0, &err);
    chmod(ro, geteuid() == 0 ? 0755 : 0555);
    rc = save_elsewhere(p, &err);
    chmod(ro, 0755);
    ok(rc != 0 && strstr(err.msg, p) && strstr(err.msg, "Permission denied") &&
           load_value(p) == 5 && count_temps(ro) == 0,
       "save into a read-only directory fails, old file intact: %s", err.msg);

    /* a write that fails midway: the file size limit stops it at 4 KiB */
    struct rlimit saved, lim;
    getrlimit(RLIMIT_FSIZE, &saved);
    lim = saved;
    lim.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    rc = save_value(path, 7, 100000, &err);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_DFL);
    ok(rc == MSPT_ERR_RUNTIME && strstr(err.msg, path) &&
           strstr(err.msg, "File too large"),
       "write failing midway reports it: %s", err.msg);
    ok(load_value(path) == 2, "... the previous checkpoint still loads");
    ok(count_temps(tmpdir) == 0, "... and no temporary file is left");

    /* rename failing: the target is a non-empty directory */
    char dir[600], inner[700];
    snprintf(dir, sizeof dir, "%s/isdir.safetensors", tmpdir);
    snprintf(inner, sizeof inner, "%s/keep", dir);
    mkdir(dir, 0755);
    spit(inner, "x", 1);
    rc = save_value(dir, 8, 0, &err);
    struct stat sb;
    ok(rc == MSPT_ERR_RUNTIME && strstr(err.msg, "cannot rename") &&
           stat(inner, &sb) == 0 && count_temps(tmpdir) == 0,
       "rename failing removes the temporary file: %s", err.msg);
}

/* Random single-byte changes and truncations of valid files: each opens
 * (and then reads) or fails with a message naming the file. */
static void test_fuzz(void)
{
    static const unsigned char special[] = {'{', '}', '[',  ']', '"',  ':',
                                            ',', '0', '9',  '-', '\\', ' ',
                                            'e', 0,   0x80, 0xff};
    size_t nbase[2];
    unsigned char *base[2] = {
        slurp(fixture_path("st_reference.safetensors"), &nbase[0]),
        slurp(fixture_path("st_convert.safetensors"), &nbase[1])};
    if (!base[0] || !base[1])
        tap_bail("missing safetensors fixtures");
    const char *path = tpath("fuzz.safetensors");
    size_t plen = strlen(path);
    int opened = 0, failed = 0, bad_msg = 0, bad_read = 0;
    rng_state = 12345;
    for (int it = 0; it < 2000; it++) {
        const unsigned char *b = base[it % 2];
        size_t n = nbase[it % 2], len = n;
        uint64_t hlen;
        memcpy(&hlen, b, 8);
        unsigned char *m = malloc(n);
        memcpy(m, b, n);
        uint64_t r = rnd();
        if (r % 8 == 0) {
            len = (size_t)(rnd() % n); /* truncation */
        } else {
            /* mostly the length field and header, where bytes matter */
            size_t pos =
                r % 8 == 1 ? (size_t)(rnd() % n) : (size_t)(rnd() % (8 + hlen));
            m[pos] = rnd() % 2 ? special[rnd() % sizeof special]
                               : (unsigned char)rnd();
        }
        spit(path, m, len);
        free(m);
        mspt_error err = {0};
        mspt_st_file *f = mspt_st_open(path, &err);
        if (!f) {
            failed++;
            if (strncmp(err.msg, path, plen) != 0 ||
                strncmp(err.msg + plen, ": ", 2) != 0 ||
                strlen(err.msg) < plen + 8) {
                if (!bad_msg++)
                    diag("bad message at iteration %d: '%s'", it, err.msg);
            }
            continue;
        }
        opened++;
        for (size_t i = 0; i < mspt_st_count(f); i++) {
            size_t k = mspt_st_numel(f, i);
            float *out = malloc((k ? k : 1) * sizeof *out);
            bad_read +=
                mspt_st_read_f32(f, mspt_st_name(f, i), out, k, &err) != 0;
            free(out);
        }
        mspt_st_close(f);
    }
    diag("fuzz: %d opened, %d refused", opened, failed);
    ok(bad_msg == 0, "fuzz: every refusal names the file (%d refused)", failed);
    ok(bad_read == 0, "fuzz: every tensor of every opened file reads");
    ok(opened > 50 && failed > 500,
       "fuzz reaches both outcomes (%d opened, %d refused)", opened, failed);
    free(base[0]);
    free(base[1]);
}

static int rm_entry(const char *p, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* Reading a tensor piecewise gives what reading it whole gives; a range
 * outside it is refused. */
static void test_read_range(void)
{
    const char *path = tpath("range.safetensors");
    float v[7] = {1, -2, 3.5f, 4, 5, 6, 7};
    double d[3] = {1e300, -0.25, 2};
    mspt_st_writer *w = mspt_st_writer_new();
    mspt_st_add_f32(w, "v", 1, (int[]){7}, v);
    mspt_st_add(w, "d", MSPT_ST_F64, 1, (int[]){3}, d);
    mspt_error err = {0};
    if (mspt_st_save(w, path, &err))
        tap_bail(err.msg);
    mspt_st_writer_free(w);
    mspt_st_file *f = mspt_st_open(path, &err);
    if (!f)
        tap_bail(err.msg);
    long iv = mspt_st_find(f, "v"), id = mspt_st_find(f, "d");
    float part[7] = {0}, dd[3];
    int rc = mspt_st_read_range_f32(f, (size_t)iv, 0, 3, part) ||
             mspt_st_read_range_f32(f, (size_t)iv, 3, 4, part + 3);
    ok(!rc && !memcmp(part, v, sizeof v), "a tensor read in two ranges");
    ok(mspt_st_read_range_f32(f, (size_t)id, 0, 3, dd) == 0 && isinf(dd[0]) &&
           dd[1] == -0.25f && dd[2] == 2.0f,
       "an F64 range converts (1e300 becomes inf, which loading refuses)");
    ok(mspt_st_read_range_f32(f, (size_t)iv, 5, 3, part) != 0 &&
           mspt_st_read_range_f32(f, (size_t)iv, 8, 0, part) != 0 &&
           mspt_st_read_range_f32(f, 2, 0, 1, part) != 0 &&
           mspt_st_read_range_f32(f, (size_t)iv, 7, 0, part) == 0,
       "ranges past the tensor, or of no tensor, are refused");
    mspt_st_close(f);
}

/* The fuzzer's corpus (fuzz/corpus/safetensors: seeds and what libFuzzer
 * kept for new coverage) replayed: each file opens and reads, or is refused
 * naming the file. */
static void test_corpus(void)
{
    const char *src = getenv("MSPT_SRCDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/fuzz/corpus/safetensors", src ? src : ".");
    DIR *d = opendir(dir);
    if (!d) {
        ok(0, "fuzz corpus %s: %s", dir, strerror(errno));
        return;
    }
    int files = 0, opened = 0, bad = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        mspt_error err = {0};
        mspt_st_file *f = mspt_st_open(path, &err);
        files++;
        if (!f) {
            bad += !strstr(err.msg, path);
            continue;
        }
        opened++;
        for (size_t i = 0; i < mspt_st_count(f); i++) {
            size_t n = mspt_st_numel(f, i);
            float *out = malloc((n ? n : 1) * sizeof *out);
            bad += !out || mspt_st_read_f32(f, mspt_st_name(f, i), out, n, &err) != 0;
            free(out);
        }
        mspt_st_close(f);
    }
    closedir(d);
    ok(files > 0 && bad == 0,
       "fuzz corpus: %d files, %d open and read, the rest refused naming the file",
       files, opened);
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/mspt-st-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir))
        tap_bail("cannot create a temporary directory");
    test_byte_exact();
    test_crate_vectors();
    test_read_reference();
    test_round_trip();
    test_convert();
    test_convert_other();
    test_open_errors();
    test_read_range();
    test_names();
    test_writer_errors();
    test_atomic();
    test_fuzz();
    test_corpus();
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
