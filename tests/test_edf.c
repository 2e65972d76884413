/* datasets.edf (plugins/datasets/edf*.c): the reader on hand-made EDF, EDF+
 * and BDF files (scaling, rates, annotation signals, EDF+D gaps) and the
 * message of each broken header; the FIR design and the whole recipe
 * against MNE 1.3 (fixtures from scripts/gen_fixtures_edf.py, and the TUH
 * recording of ../shared/data when present); the component's config
 * errors, cache (reuse, damage, staleness) and concurrent reads; and a
 * bounded fuzz run of the parser on mutated headers. */
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../plugins/datasets/edf_fir.h"
#include "../plugins/datasets/edf_montage.h"
#include "../plugins/datasets/edf_prep.h"
#include "../plugins/datasets/edf_reader.h"
#include "fixture.h"
#include "plugin_util.h"

#define TUH_FILE "../shared/data/tuh/00009578_s002_t001.edf"

static char tmp[64];
static const mspt_component *comp;
static const mspt_dataset_vt *vt;

/* ---- hand-made recordings ------------------------------------------- */

typedef struct tsig {
    const char *label, *unit;
    double pmin, pmax;
    long dmin, dmax;
    int n; /* samples per record */
} tsig;

/* Digital sample t of signal s: a deterministic ramp-and-wiggle. */
static long digital(int s, long t, long dmin, long dmax)
{
    long span = dmax - dmin;
    return dmin + (t * 37 + s * 1001 + (t * t) % 97) % span;
}

static void put(uint8_t *p, int w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void put(uint8_t *p, int w, const char *fmt, ...)
{
    char s[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, sizeof s, fmt, ap);
    va_end(ap);
    memset(p, ' ', (size_t)w);
    memcpy(p, s, strlen(s) < (size_t)w ? strlen(s) : (size_t)w);
}

static const int SIG_W[10] = {16, 80, 8, 8, 8, 8, 8, 80, 8, 32};

/* Offset of per-signal field k (0 label … 8 samples) of signal s. */
static size_t sig_off(int ns, int k, int s)
{
    size_t off = 256;
    for (int j = 0; j < k; j++)
        off += (size_t)ns * SIG_W[j];
    return off + (size_t)s * SIG_W[k];
}

/* An EDF (or BDF) file in memory.  Signals labelled "EDF Annotations"
 * get time-keeping TALs at onsets[r] (r·dur when onsets is NULL). */
static uint8_t *make_file(size_t *size, int bdf, const char *reserved,
                          const tsig *sig, int ns, int nrec, double dur,
                          const double *onsets)
{
    int bps = bdf ? 3 : 2;
    size_t rec = 0;
    for (int s = 0; s < ns; s++)
        rec += (size_t)sig[s].n * bps;
    size_t hb = 256 * (size_t)(ns + 1);
    *size = hb + rec * (size_t)nrec;
    uint8_t *b = calloc(1, *size);
    if (bdf) {
        b[0] = 0xFF;
        memcpy(b + 1, "BIOSEMI", 7);
    } else {
        put(b, 8, "0");
    }
    put(b + 8, 80, "X X X X");
    put(b + 88, 80, "Startdate 01-JAN-2000 X test X");
    put(b + 168, 8, "01.01.00");
    put(b + 176, 8, "00.00.00");
    put(b + 184, 8, "%zu", hb);
    put(b + 192, 44, "%s", reserved);
    put(b + 236, 8, "%d", nrec);
    put(b + 244, 8, "%g", dur);
    put(b + 252, 4, "%d", ns);
    for (int s = 0; s < ns; s++) {
        put(b + sig_off(ns, 0, s), 16, "%s", sig[s].label);
        put(b + sig_off(ns, 1, s), 80, "AgAgCl");
        put(b + sig_off(ns, 2, s), 8, "%s", sig[s].unit);
        put(b + sig_off(ns, 3, s), 8, "%g", sig[s].pmin);
        put(b + sig_off(ns, 4, s), 8, "%g", sig[s].pmax);
        put(b + sig_off(ns, 5, s), 8, "%ld", sig[s].dmin);
        put(b + sig_off(ns, 6, s), 8, "%ld", sig[s].dmax);
        put(b + sig_off(ns, 7, s), 80, "HP:0.1Hz");
        put(b + sig_off(ns, 8, s), 8, "%d", sig[s].n);
        put(b + sig_off(ns, 9, s), 32, " ");
    }
    uint8_t *p = b + hb;
    for (int r = 0; r < nrec; r++)
        for (int s = 0; s < ns; s++) {
            if (!strcmp(sig[s].label, "EDF Annotations")) {
                char tal[64];
                int n = snprintf(tal, sizeof tal, "%+g\x14\x14", onsets ? onsets[r] : r * dur);
                memcpy(p, tal, (size_t)n + 1);
                p += (size_t)sig[s].n * bps;
                continue;
            }
            for (int k = 0; k < sig[s].n; k++, p += bps) {
                long v = digital(s, (long)r * sig[s].n + k, sig[s].dmin, sig[s].dmax);
                p[0] = (uint8_t)(v & 0xFF);
                p[1] = (uint8_t)((v >> 8) & 0xFF);
                if (bdf)
                    p[2] = (uint8_t)((v >> 16) & 0xFF);
            }
        }
    return b;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n)
        tap_bail("cannot write a test file");
    fclose(f);
}

static const tsig three[] = {
    {"EEG A-REF", "uV", -3200, 3200, -32768, 32767, 50},
    {"EEG B-LE", "mV", -3.2, 3.2, -2048, 2047, 25},
    {"EDF Annotations", "", -1, 1, -32768, 32767, 16}};

/* ---- the reader ------------------------------------------------------- */

static void check_reader(void)
{
    size_t size;
    uint8_t *b = make_file(&size, 0, "EDF+C", three, 3, 4, 0.5, NULL);
    edf_file f;
    char err[EDF_ERR_LEN];
    int rc = edf_parse(&f, b, size, "t.edf", err, sizeof err);
    ok(rc == 0, "EDF+C with an annotation signal parses%s%s", rc ? ": " : "",
       rc ? err : "");
    if (rc)
        return;
    ok(f.plus && !f.discontinuous && !f.bdf && f.annotations == 2 &&
       f.sig[2].annotation && !f.sig[0].annotation,
       "EDF+C recognised; the annotation signal is flagged, not data");
    ok(edf_rate(&f, 0) == 100 && edf_rate(&f, 1) == 50,
       "per-signal rates: 50 and 25 samples per 0.5 s record = 100, 50 Hz");
    ok(f.sig[0].to_uv == 1 && f.sig[1].to_uv == 1000, "uV and mV to microvolts");
    /* physical = (d - dmin)·(pmax - pmin)/(dmax - dmin) + pmin */
    float x[100];
    edf_read(&f, 1, 1, 2, 1.0, x);
    double worst = 0;
    for (int k = 0; k < 50; k++) {
        long d = digital(1, 25 + k, -2048, 2047);
        double want = (d + 2048) * 6.4 / 4095 - 3.2;
        worst = fmax(worst, fabs(x[k] - want));
    }
    ok(worst < 1e-6, "digital to physical via header min/max, records 2-3 "
       "of signal 2 (max err %.2g mV)", worst);
    edf_segment *seg;
    size_t nseg;
    ok(edf_segments(&f, &seg, &nseg, err, sizeof err) == 0 && nseg == 1 &&
       seg[0].count == 4, "EDF+C: one contiguous run of 4 records");
    free(seg);
    edf_free(&f);
    free(b);

    /* BDF: 24-bit samples, negative values included */
    const tsig bs[] = {{"Fp1", "uV", -262144, 262143, -8388608, 8388607, 40}};
    b = make_file(&size, 1, "24BIT", bs, 1, 3, 1, NULL);
    rc = edf_parse(&f, b, size, "t.bdf", err, sizeof err);
    ok(rc == 0 && f.bdf && f.record_bytes == 120, "BDF: 3 bytes a sample");
    if (!rc) {
        float y[120];
        edf_read(&f, 0, 0, 3, 1.0, y);
        double cal = (262143.0 + 262144.0) / (8388607.0 + 8388608.0), e = 0;
        int neg = 0;
        for (int t = 0; t < 120; t++) {
            long d = digital(0, t, -8388608, 8388607);
            neg += d < 0;
            e = fmax(e, fabs(y[t] - ((d + 8388608) * cal - 262144)));
        }
        ok(neg > 0 && e < 0.05, "BDF: 24-bit two's complement decoded (%d "
           "negative samples, max err %.2g uV)", neg, e);
        edf_free(&f);
    }
    free(b);

    /* EDF+D: records at 0, 0.5, 3, 3.5, 4 s → runs of 2 and 3 records */
    const double on[] = {0, 0.5, 3, 3.5, 4};
    b = make_file(&size, 0, "EDF+D", three, 3, 5, 0.5, on);
    rc = edf_parse(&f, b, size, "d.edf", err, sizeof err);
    if (!rc) {
        rc = edf_segments(&f, &seg, &nseg, err, sizeof err);
        ok(!rc && nseg == 2 && seg[0].first == 0 && seg[0].count == 2 &&
           seg[1].first == 2 && seg[1].count == 3 && seg[1].onset == 3,
           "EDF+D: a gap splits the records into runs of 2 and 3");
        if (!rc)
            free(seg);
        edf_free(&f);
    } else {
        ok(0, "EDF+D parses: %s", err);
    }
    free(b);
}

/* ---- the message of each broken header -------------------------------- */

typedef struct broken {
    const char *what;
    int field;         /* per-signal field index, or -1 for a fixed one */
    int sig;           /* which signal */
    size_t off, width; /* fixed field */
    const char *value;
    long cut;          /* bytes removed from the end (-1: keep 100 only) */
    const char *want1, *want2;
} broken;

static void check_errors(void)
{
    const broken cases[] = {
        {"truncated before the header ends", -1, 0, 0, 0, NULL, -1,
         "truncated file", "256-byte"},
        {"non-numeric number of signals", -1, 0, 252, 4, "3x", 0,
         "'number of signals'", "not an integer: '3x'"},
        {"header size", -1, 0, 184, 8, "1000", 0,
         "'number of bytes in header record'", "256 x (1 + 3) = 1024"},
        {"non-numeric duration", -1, 0, 244, 8, "half", 0,
         "'duration of a data record'", "not a number: 'half'"},
        {"zero duration", -1, 0, 244, 8, "0", 0,
         "'duration of a data record'", "must be > 0"},
        {"absurd record duration", -1, 0, 244, 8, "1e300", 0,
         "'duration of a data record'", "1e+300 s is an absurd record duration"},
        {"less than one record", -1, 0, 0, 0, NULL, 600, "truncated file",
         "no complete data record"},
        {"zero signals", -1, 0, 252, 4, "0", 0, "no signals",
         "'number of signals' is 0"},
        {"not EDF", -1, 0, 0, 8, "PK", 0, "'version'", "not an EDF or BDF"},
        {"non-numeric physical minimum", 3, 1, 0, 0, "-3,2", 0,
         "signal 2 'EEG B-LE'", "'physical minimum': not a number: '-3,2'"},
        {"non-numeric digital maximum", 6, 0, 0, 0, "lots", 0,
         "signal 1 'EEG A-REF'", "'digital maximum': not an integer"},
        {"zero sample rate", 8, 1, 0, 0, "0", 0, "signal 2 'EEG B-LE'",
         "'number of samples in each data record': 0 (a sample rate of 0 Hz)"},
        {"absurd sample rate", 8, 0, 0, 0, "9000000", 0, "signal 1 'EEG A-REF'",
         "absurd sample rate (1.8e+07 Hz"},
        {"digital minimum out of range", 5, 0, 0, 0, "40000", 0, "signal 1",
         "outside the 16-bit range"},
        {"EDF+D without annotations", 0, 2, 0, 0, "EEG C-REF", 0, "EDF+D",
         "no signal is labelled 'EDF Annotations'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const broken *c = &cases[i];
        size_t size;
        uint8_t *b = make_file(&size, 0, c->field == 0 ? "EDF+D" : "EDF+C",
                               three, 3, 4, 0.5, NULL);
        if (c->value && c->field < 0)
            put(b + c->off, (int)c->width, "%s", c->value);
        else if (c->value)
            put(b + sig_off(3, c->field, c->sig), SIG_W[c->field], "%s", c->value);
        if (c->cut < 0)
            size = 100;
        else
            size -= (size_t)c->cut;
        edf_file f;
        char err[EDF_ERR_LEN] = "";
        int rc = edf_parse(&f, b, size, "bad.edf", err, sizeof err);
        ok(rc == -1 && !strncmp(err, "bad.edf: ", 9) && strstr(err, c->want1) &&
           strstr(err, c->want2), "%s: error names the file and field", c->what);
        if (rc == 0)
            edf_free(&f);
        else if (!strstr(err, c->want1) || !strstr(err, c->want2))
            diag("message: %s", err);
        free(b);
    }

    /* EDF+D records out of order */
    const double on[] = {0, 2, 1.5, 3};
    size_t size;
    uint8_t *b = make_file(&size, 0, "EDF+D", three, 3, 4, 0.5, on);
    edf_file f;
    char err[EDF_ERR_LEN] = "";
    edf_segment *seg = NULL;
    size_t nseg;
    int rc = edf_parse(&f, b, size, "d.edf", err, sizeof err);
    rc = rc ? rc : edf_segments(&f, &seg, &nseg, err, sizeof err);
    ok(rc == -1 && strstr(err, "d.edf: record 3 starts at 1.5") &&
       strstr(err, "before the end of record 2"),
       "EDF+D: a record overlapping the previous one is named");
    if (!rc)
        free(seg);
    edf_free(&f);
    free(b);

    /* missing channels: every one listed */
    b = make_file(&size, 0, "EDF+C", three, 3, 4, 0.5, NULL);
    edf_parse(&f, b, size, "m.edf", err, sizeof err);
    const char *want[] = {"A", "b", "EEG C-REF", "Cz"};
    int idx[4];
    rc = edf_pick(&f, want, 4, idx, err, sizeof err);
    ok(rc == -1 && strstr(err, "m.edf: missing channels EEG C-REF, Cz") &&
       strstr(err, "'EEG A-REF', 'EEG B-LE'") && !strstr(err, "Annotations"),
       "missing channels listed with the file's labels");
    const char *have[] = {"eeg b-ref", "A"};
    ok(edf_pick(&f, have, 2, idx, err, sizeof err) == 0 && idx[0] == 1 &&
       idx[1] == 0, "labels match ignoring case, 'EEG ' and -REF/-LE");
    edf_free(&f);
    free(b);
}

/* ---- filter design and the recipe against MNE ------------------------- */

/* A float32 .npy (numpy.save); *shape gets up to 2 dims. */
static float *load_npy(const char *name, int *d0, int *d1)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s",
             getenv("MSPT_SRCDIR") ? getenv("MSPT_SRCDIR") : ".", name);
    FILE *f = fopen(path, "rb");
    uint8_t head[10];
    if (!f || fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY", 6))
        tap_bail("cannot read a .npy fixture");
    size_t hl = head[8] | head[9] << 8;
    char *dict = calloc(1, hl + 1);
    if (fread(dict, 1, hl, f) != hl || !strstr(dict, "'<f4'") ||
        sscanf(strstr(dict, "'shape': (") + 10, "%d, %d", d0, d1) != 2)
        tap_bail("unexpected .npy header");
    size_t n = (size_t)*d0 * (size_t)*d1;
    float *x = malloc(n * sizeof *x);
    if (fread(x, sizeof *x, n, f) != n)
        tap_bail("short .npy fixture");
    free(dict);
    fclose(f);
    return x;
}

static double max_abs_diff(const double *a, const float *b, int n)
{
    double w = 0;
    for (int i = 0; i < n; i++)
        w = fmax(w, fabs(a[i] - b[i]));
    return w;
}

static void check_fir(void)
{
    fixture *fx = fixture_load("edf_fir.txt");
    char err[256];
    edf_fir f;
    const fixture_tensor *t = fixture_get(fx, "notch60_fs250");
    edf_fir_notch(250, 60, &f, err, sizeof err);
    ok(f.n == (int)t->numel && max_abs_diff(f.h, t->data, f.n) < 1e-7,
       "notch 60 Hz at 250 Hz: %d taps as MNE (max diff %.2g)", f.n,
       f.n == (int)t->numel ? max_abs_diff(f.h, t->data, f.n) : 1.0);
    edf_fir_free(&f);
    t = fixture_get(fx, "bp1_40_fs500");
    edf_fir_bandpass(500, 1, 40, &f, err, sizeof err);
    ok(f.n == (int)t->numel && max_abs_diff(f.h, t->data, f.n) < 1e-7,
       "band-pass 1-40 Hz at 500 Hz: %d taps as MNE", f.n);
    edf_fir_free(&f);
    edf_fir_bandpass(250, 0.1, 75, &f, err, sizeof err);
    t = fixture_get(fx, "bp01_75_fs250_every8");
    double w = 0;
    for (size_t i = 0; i < t->numel && (int)(8 * i) < f.n; i++)
        w = fmax(w, fabs(f.h[8 * i] - t->data[i]));
    ok(f.n == (int)fixture_get(fx, "bp01_75_fs250_len")->data[0] && w < 1e-7,
       "band-pass 0.1-75 Hz at 250 Hz: %d taps as MNE (every 8th, max diff "
       "%.2g)", f.n, w);
    edf_fir_free(&f);
    ok(edf_fir_bandpass(250, 0.1, 125, &f, err, sizeof err) == -1 &&
       strstr(err, "Nyquist"), "h_freq at Nyquist refused: %s", err);
    fixture_free(fx);
}

/* Per-channel relative RMS error of got against want (C rows of n). */
static double rel_rms(const float *got, const float *want, int n, int stride_got,
                      int stride_want)
{
    double e = 0, s = 0;
    for (int t = 0; t < n; t++) {
        double d = got[t * stride_got] - want[t * stride_want];
        e += d * d;
        s += (double)want[t * stride_want] * want[t * stride_want];
    }
    return sqrt(e / s);
}

static void check_synth_parity(void)
{
    char path[4200], err[EDF_ERR_LEN];
    snprintf(path, sizeof path, "%s/tests/fixtures/edf_synth.edf",
             getenv("MSPT_SRCDIR") ? getenv("MSPT_SRCDIR") : ".");
    const char *ch[] = {"FP1", "FP2", "C3", "O1"};
    edf_recipe r = {ch, 4, {0}, 1, 40, 50, 256, 1024, 1024, 1.0, 2};
    edf_montage_none(&r.montage, 4);
    edf_windows w;
    int C, T;
    float *want = load_npy("edf_synth_mne.npy", &C, &T);
    int rc = edf_prep_file(path, &r, &w, err, sizeof err);
    ok(rc == 0 && w.n == 3, "synthetic EDF+ at 500 Hz: 3 windows of 1024");
    if (rc == 0 && w.n == 3) {
        double worst = 0;
        for (int c = 0; c < 4; c++) /* window k, channel c = want[c][1024k..] */
            for (int k = 0; k < 3; k++)
                worst = fmax(worst, rel_rms(w.data + (k * 4 + c) * 1024,
                                            want + c * T + k * 1024, 1024, 1, 1));
        ok(worst <= 1e-3, "FP1 FP2 C3(mV) O1, filter(1, 40), notch(50), 500 "
           "-> 256 Hz: rel RMS vs MNE <= 1e-3 per channel and window (worst "
           "%.2g)", worst);
    }
    free(w.data);
    free(want);
    edf_montage_free(&r.montage);

    /* low-pass only, no notch, 500 -> 200 Hz, one window of everything */
    const char *o1[] = {"EEG O1-REF"};
    edf_recipe lp = {o1, 1, {0}, 0, 30, 0, 200, 2400, 2400, 1.0, 1};
    edf_montage_none(&lp.montage, 1);
    want = load_npy("edf_synth_lp.npy", &C, &T);
    rc = edf_prep_file(path, &lp, &w, err, sizeof err);
    ok(rc == 0 && w.n == 1 && rel_rms(w.data, want, 2400, 1, 1) <= 1e-3,
       "O1 (an -LE file asked as -REF), filter(None, 30), 500 -> 200 Hz: rel "
       "RMS vs MNE %.2g", rc == 0 && w.n == 1 ? rel_rms(w.data, want, 2400, 1, 1) : 1.0);
    free(w.data);
    free(want);
    edf_montage_free(&lp.montage);
}

/* What MNE 1.3 accepts, with a warning each (checked with mne 1.3.0's
 * read_raw_edf on the same kinds of file):
 *   record count -1, or 7 over a file holding 4: "Number of records from
 *     the header does not match the file size ... Inferring from the file
 *     size", 4 records read;
 *   50 stray bytes after 4 records: 4 records read (the partial one is
 *     dropped; MNE says nothing, we warn);
 *   zero signals: MNE warns "incorrect for record length" then fails with
 *     an IndexError; we name it "no signals" (check_errors), and so an
 *     EDF+ of annotations only, whose record duration is 0 too. */
static void check_repairs(void)
{
    const struct {
        const char *what, *count;
        long extra; /* bytes added (> 0) or cut (< 0) at the end */
        long long want;
        const char *warn;
    } cases[] = {
        {"record count -1", "-1", 0, 4, "is -1 (the writer never closed the file)"},
        {"record count 7, size for 4", "7", 0, 4, "file size holds 4 records"},
        {"record count 3, size for 4", "3", 0, 4, "counting from the size"},
        {"trailing partial record", NULL, 50, 4, "trailing partial record (50 of"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t size;
        uint8_t *b = make_file(&size, 0, "EDF+C", three, 3, 4, 0.5, NULL);
        uint8_t *c = calloc(1, size + 64);
        memcpy(c, b, size);
        if (cases[i].count)
            put(c + 236, 8, "%s", cases[i].count);
        size = (size_t)((long)size + cases[i].extra);
        edf_file f;
        char err[EDF_ERR_LEN] = "";
        int rc = edf_parse(&f, c, size, "odd.edf", err, sizeof err);
        ok(rc == 0 && f.nrecords == cases[i].want &&
           !strncmp(f.warning, "odd.edf: ", 9) && strstr(f.warning, cases[i].warn) &&
           !strchr(f.warning, '\n'),
           "%s: read as MNE does (%lld records), one warning: %s", cases[i].what,
           rc ? -1 : f.nrecords, rc ? err : f.warning);
        if (!rc)
            edf_free(&f);
        free(b);
        free(c);
    }
    /* the last record cut short (a count that is wrong and a partial
     * record; MNE warns of the count): two lines */
    size_t size;
    uint8_t *b = make_file(&size, 0, "", three, 2, 4, 0.5, NULL);
    put(b + 236, 8, "-1");
    edf_file f;
    char err[EDF_ERR_LEN] = "";
    int rc = edf_parse(&f, b, size - 3, "two.edf", err, sizeof err);
    const char *nl = rc ? NULL : strchr(f.warning, '\n');
    ok(rc == 0 && f.nrecords == 3 && nl && strstr(f.warning, "is -1") &&
       strstr(nl, "two.edf: a trailing partial record"),
       "count -1 and a partial record: two warning lines");
    if (!rc)
        edf_free(&f);
    free(b);
    /* EDF+ of annotations only, record duration 0: "no signals" */
    b = make_file(&size, 0, "EDF+C", three + 2, 1, 2, 0.5, NULL);
    put(b + 244, 8, "0");
    rc = edf_parse(&f, b, size, "ann.edf", err, sizeof err);
    ok(rc == -1 && strstr(err, "ann.edf: no signals: the 1 signal holds only "
       "annotations"), "annotations only: no signals, not a duration: %s", err);
    free(b);
    /* a picked signal at 0.5 Hz: named as absurd, not a filter's Nyquist */
    const tsig slow[] = {{"EEG A-REF", "uV", -3200, 3200, -32768, 32767, 1},
                         {"EEG B-REF", "uV", -3200, 3200, -32768, 32767, 1}};
    b = make_file(&size, 0, "", slow, 2, 600, 2, NULL);
    const char *ch[] = {"A", "B"};
    edf_recipe r = {.channels = ch, .nch = 2, .l_freq = 0.1, .h_freq = 40,
                    .sample_rate = 256, .window = 64, .stride = 64,
                    .per_uv = 1, .threads = 1};
    edf_montage_none(&r.montage, 2);
    edf_windows w;
    rc = edf_prep_buffer(b, size, "slow.edf", &r, &w, err, sizeof err);
    ok(rc == -1 && strstr(err, "slow.edf: signal 1 'EEG A-REF'") &&
       strstr(err, "absurd sample rate for EEG (0.5 Hz; at least 1)") &&
       !strstr(err, "Nyquist"), "0.5 Hz: an absurd rate, named: %s", err);
    if (!rc)
        free(w.data);
    edf_montage_free(&r.montage);
    free(b);
}

/* ---- the component ----------------------------------------------------- */

/* stderr goes to a file while a dataset is built; returns what was said. */
static void *make_quiet(const char *yaml, mspt_error *err, char *said,
                        size_t n)
{
    char log[128];
    snprintf(log, sizeof log, "%s/stderr.txt", tmp);
    fflush(stderr);
    int saved = dup(2);
    FILE *f = freopen(log, "w", stderr);
    (void)f;
    mspt_config cfg;
    void *self = NULL;
    mspt_node *tree = tp_config_err(comp, "data", yaml, &cfg, err);
    if (tree && vt->create(&cfg, &self, err))
        self = NULL;
    mspt_node_free(tree);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *r = fopen(log, "r");
    size_t got = r ? fread(said, 1, n - 1, r) : 0;
    said[got] = '\0';
    if (r)
        fclose(r);
    return self;
}

static void check_config_errors(void)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"{}", "data: set path"},
        {"{path: /nonexistent/x.edf}", "data.path: /nonexistent/x.edf"},
        {"{path: '/nonexistent/*.edf'}", "no file matches"},
        {"{path: x.edf, montage: bipolar}", "data.montage: expected 'tcp', 'none' or 'pairs'"},
        {"{path: x.edf, pairs: [FP1-F7]}", "set montage = 'pairs'"},
        {"{path: x.edf, montage: pairs, pairs: [FP1-XX]}", "data.pairs: pair 'FP1-XX'"},
        {"{path: x.edf, channels: [FP1, F7]}", "data.montage: tcp: pair 'F7-T3'"},
        {"{path: x.edf, channels: [FP1, EEG Fp1-LE], montage: none}", "name the same channel"},
        {"{path: x.edf, units: nV}", "data.units: expected 'uV'"},
        {"{path: x.edf, l_freq: 80}", "data.l_freq: must be below h_freq"},
        {"{path: x.edf, window: 0}", "data.window: must be 1..16777216"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mspt_error err = {0};
        char said[4096];
        void *d = make_quiet(cases[i].yaml, &err, said, sizeof said);
        ok(!d && strstr(err.msg, cases[i].want), "config %s: '%s'",
           cases[i].yaml, err.msg);
        if (d)
            vt->destroy(d);
    }
}

static float *all_windows(void *d, size_t *n)
{
    int C, T;
    vt->shape(d, n, &C, &T);
    float *x = malloc(*n * (size_t)C * T * sizeof *x);
    mspt_error err = {0};
    for (size_t i = 0; i < *n; i++)
        if (vt->read(d, i, x + i * (size_t)C * T, &err))
            tap_bail(err.msg);
    return x;
}

/* The only shard in the cache directory (path into out). */
static int find_shard(char *out, size_t n)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s/cache/*.win 2>/dev/null", tmp);
    FILE *p = popen(cmd, "r");
    int count = 0;
    char line[4096];
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(out, n, "%s", line);
        count++;
    }
    pclose(p);
    return count;
}

static void flip_byte(const char *path, long from_end)
{
    FILE *f = fopen(path, "r+b");
    fseek(f, -from_end, SEEK_END);
    int c = fgetc(f);
    fseek(f, -from_end, SEEK_END);
    fputc(c ^ 0x40, f);
    fclose(f);
}

static void check_cache(void)
{
    /* a recording of its own, so that touching it is allowed */
    char src[4200], file[128], yaml[512], said[8192], shard[4096];
    snprintf(src, sizeof src, "%s/tests/fixtures/edf_synth.edf",
             getenv("MSPT_SRCDIR") ? getenv("MSPT_SRCDIR") : ".");
    snprintf(file, sizeof file, "%s/rec.edf", tmp);
    FILE *in = fopen(src, "rb");
    static uint8_t buf[1 << 17];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    write_bytes(file, buf, n);
    snprintf(yaml, sizeof yaml, "{path: %s, channels: [FP1, FP2, C3, O1], "
             "montage: pairs, pairs: [FP1-C3, FP2-O1], l_freq: 1, h_freq: 40, "
             "notch: 50, window: 512, stride: 256, cache_dir: %s/cache}", file, tmp);
    mspt_error err = {0};
    void *d = make_quiet(yaml, &err, said, sizeof said);
    ok(d && strstr(said, "1 recordings: 1 used (0 from the cache, 1 preprocessed), "
                    "0 skipped") && find_shard(shard, sizeof shard) == 1,
       "first use preprocesses (summary on stderr) and writes one shard");
    if (!d) {
        diag("%s", err.msg);
        return;
    }
    size_t nw, nw2;
    int C, T;
    vt->shape(d, &nw, &C, &T);
    ok(nw == 11 && C == 2 && T == 512, "pairs montage, window 512, stride "
       "256: (11, 2, 512) from 3072 samples");
    float *ref = all_windows(d, &nw);
    vt->destroy(d);

    d = make_quiet(yaml, &err, said, sizeof said);
    float *again = d ? all_windows(d, &nw2) : NULL;
    ok(d && strstr(said, "(1 from the cache, 0 preprocessed)") &&
       !strstr(said, "rebuilding") && nw2 == nw &&
       !memcmp(ref, again, nw * 2 * 512 * sizeof(float)),
       "second use maps the shard, same windows");
    vt->destroy(d);
    free(again);

    /* damage: a flipped bit in the windows, then a truncated shard */
    flip_byte(shard, 1000);
    d = make_quiet(yaml, &err, said, sizeof said);
    again = d ? all_windows(d, &nw2) : NULL;
    ok(d && strstr(said, "window checksum mismatch (damaged); rebuilding") &&
       strstr(said, "preprocessed") && !memcmp(ref, again, nw * 2 * 512 * sizeof(float)),
       "a damaged shard is detected and rebuilt, never used");
    vt->destroy(d);
    free(again);
    if (truncate(shard, 5000))
        tap_bail("truncate");
    d = make_quiet(yaml, &err, said, sizeof said);
    ok(d && strstr(said, "(truncated); rebuilding"), "a truncated shard is rebuilt");
    vt->destroy(d);
    flip_byte(shard, (long)nw * 2 * 512 * 4 + 4096 - 20); /* in the header */
    d = make_quiet(yaml, &err, said, sizeof said);
    ok(d && strstr(said, "header checksum mismatch"), "a damaged header is "
       "detected: %.60s", said);
    vt->destroy(d);

    /* stale: the recording changes (new mtime): a new shard */
    struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
    utimensat(AT_FDCWD, file, ts, 0);
    d = make_quiet(yaml, &err, said, sizeof said);
    ok(d && strstr(said, "preprocessed") && find_shard(shard, sizeof shard) == 2,
       "a modified recording gets a new shard");
    vt->destroy(d);
    /* and another recipe another one */
    char yaml2[600];
    snprintf(yaml2, sizeof yaml2, "{path: %s, channels: [FP1, FP2, C3, O1], "
             "montage: pairs, pairs: [FP1-C3, FP2-O1], l_freq: 1, h_freq: 40, "
             "notch: 0, window: 512, stride: 256, cache_dir: %s/cache}", file, tmp);
    d = make_quiet(yaml2, &err, said, sizeof said);
    ok(d && strstr(said, "preprocessed") && find_shard(shard, sizeof shard) == 3,
       "another recipe (notch 0) gets its own shard");
    vt->destroy(d);

    /* cache = false: the same windows, nothing written */
    snprintf(yaml2, sizeof yaml2, "{path: %s, channels: [FP1, FP2, C3, O1], "
             "montage: pairs, pairs: [FP1-C3, FP2-O1], l_freq: 1, h_freq: 40, "
             "notch: 50, window: 512, stride: 256, cache: false, cache_dir: "
             "%s/none}", file, tmp);
    d = make_quiet(yaml2, &err, said, sizeof said);
    again = d ? all_windows(d, &nw2) : NULL;
    struct stat st;
    char none[128];
    snprintf(none, sizeof none, "%s/none", tmp);
    ok(d && nw2 == nw && !memcmp(ref, again, nw * 2 * 512 * sizeof(float)) &&
       stat(none, &st) != 0, "cache = false: same windows, in memory");
    if (!d)
        diag("%s", err.msg);
    vt->destroy(d);
    free(again);
    free(ref);
}

typedef struct reader {
    void *d;
    const float *ref;
    size_t n, per;
    int dir, same;
} reader;

static void *read_all(void *arg)
{
    reader *r = arg;
    float *x = malloc(r->per * sizeof *x);
    mspt_error err = {0};
    r->same = 1;
    for (int rep = 0; rep < 20; rep++)
        for (size_t k = 0; k < r->n; k++) {
            size_t i = r->dir > 0 ? k : r->n - 1 - k;
            r->same &= vt->read(r->d, i, x, &err) == 0 &&
                       !memcmp(x, r->ref + i * r->per, r->per * sizeof *x);
        }
    free(x);
    return NULL;
}

static void check_component_files(void)
{
    /* several files by glob and directory, an EDF+D gap, a BDF twin */
    char dir[128], path[256], yaml[512], said[8192];
    snprintf(dir, sizeof dir, "%s/recs/sub", tmp);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd))
        tap_bail("mkdir");
    const tsig sig[] = {{"EEG A-REF", "uV", -3200, 3200, -32768, 32767, 64},
                        {"EEG B-REF", "uV", -3200, 3200, -32768, 32767, 64},
                        {"EDF Annotations", "", -1, 1, -32768, 32767, 16}};
    const double on[] = {0, 1, 2, 10, 11, 12, 13};
    size_t size;
    uint8_t *b = make_file(&size, 0, "EDF+D", sig, 3, 7, 1, on);
    snprintf(path, sizeof path, "%s/a.edf", dir);
    write_bytes(path, b, size);
    free(b);
    b = make_file(&size, 1, "BDF+C", (tsig[]){{"EEG A-REF", "uV", -3200, 3200, -32768, 32767, 64},
                                            {"EEG B-REF", "uV", -3200, 3200, -32768, 32767, 64}},
                  2, 3, 1, NULL);
    snprintf(path, sizeof path, "%s/b.BDF", dir);
    write_bytes(path, b, size);
    free(b);
    /* no filters, same rate; windows of 2 records every record: runs of
     * 3 and 4 records give 2 + 3 windows (6 if they straddled the gap) */
    snprintf(yaml, sizeof yaml, "{path: %s/recs, channels: [A, B], montage: "
             "none, l_freq: 0, h_freq: 0, notch: 0, sample_rate: 64, window: "
             "128, stride: 64, cache: false}", tmp);
    mspt_error err = {0};
    void *d = make_quiet(yaml, &err, said, sizeof said);
    size_t n = 0;
    int C = 0, T = 0;
    if (d)
        vt->shape(d, &n, &C, &T);
    ok(d && n == 2 + 3 + 2 && C == 2 && T == 128, "directory: a.edf (EDF+D, "
       "runs of 3 and 4 records) and b.BDF: %zu windows of (2, 128), none "
       "across the gap", n);
    if (!d) {
        diag("%s", err.msg);
        return;
    }
    /* resampling at the same rate is MNE's FFT round trip: within rounding
     * of the raw samples (the top bin halved, ~0 for this signal) */
    float *x = all_windows(d, &n);
    double scale = 6400.0 / 65535, worst = 0;
    for (int t = 0; t < 128; t++) {
        long dig = digital(0, 3 * 64 + t, -32768, 32767); /* run 2 from record 4 */
        worst = fmax(worst, fabs(x[2 * 256 + t] - ((dig + 32768) * scale - 3200)));
    }
    ok(worst < 60, "window 3 starts after the gap (record 4), max dev %.3g uV", worst);

    /* two threads reading at once */
    reader r[2] = {{d, x, n, 256, 1, 0}, {d, x, n, 256, -1, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, read_all, &r[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ok(r[0].same && r[1].same, "two threads reading at once get the same bytes");
    mspt_error e2 = {0};
    float one[256];
    ok(vt->read(d, n, one, &e2) && strstr(e2.msg, "out of range"),
       "window past the end refused");
    vt->destroy(d);
    free(x);

    /* a glob, and an error naming the file */
    snprintf(path, sizeof path, "%s/recs/sub/c.edf", tmp);
    b = make_file(&size, 0, "", sig, 2, 3, 1, NULL);
    put(b + sig_off(2, 2, 1), 8, "degC");
    write_bytes(path, b, size);
    free(b);
    snprintf(yaml, sizeof yaml, "{path: '%s/recs/sub/c.*', channels: [A, B], "
             "montage: none, l_freq: 0, h_freq: 0, notch: 0, sample_rate: 64, "
             "window: 64, cache: false}", tmp);
    d = make_quiet(yaml, &err, said, sizeof said);
    ok(!d && strstr(err.msg, "c.edf: signal 2 'EEG B-REF'") &&
       strstr(err.msg, "'physical dimension' is 'degC', not a voltage"),
       "glob; a non-voltage unit is named: %s", err.msg);
    snprintf(yaml, sizeof yaml, "{path: '%s/recs/sub/c.*', channels: [A, "
             "T3], montage: none, cache: false}", tmp);
    d = make_quiet(yaml, &err, said, sizeof said);
    ok(!d && strstr(err.msg, "missing channel T3"), "missing channel through "
       "the component: %s", err.msg);
    snprintf(yaml, sizeof yaml, "{path: '%s/recs/sub/c.*', channels: [A, "
             "B], montage: none, h_freq: 40, cache: false}", tmp);
    d = make_quiet(yaml, &err, said, sizeof said);
    ok(!d && strstr(err.msg, "sampled at 64 Hz: h_freq 40 Hz must be below "
       "the Nyquist"), "h_freq above a file's Nyquist: %s", err.msg);
}

/* TUH: the recipe of DESIGN.md through the component, against MNE. */
static void check_tuh(void)
{
    char path[4200], yaml[4400], said[8192];
    snprintf(path, sizeof path, "%s/%s",
             getenv("MSPT_SRCDIR") ? getenv("MSPT_SRCDIR") : ".", TUH_FILE);
    if (access(path, R_OK)) {
        ok(1, "TUH parity # SKIP %s absent", TUH_FILE);
        return;
    }
    snprintf(yaml, sizeof yaml, "{path: %s, cache_dir: %s/tuh}", path, tmp);
    mspt_error err = {0};
    void *d = make_quiet(yaml, &err, said, sizeof said);
    size_t n = 0;
    int C = 0, T = 0;
    if (d)
        vt->shape(d, &n, &C, &T);
    ok(d && n == 3 && C == 22 && T == 1280, "TUH file, default recipe: 3 "
       "windows of (22, 1280)");
    if (!d || n != 3) {
        diag("%s", err.msg);
        return;
    }
    float *x = all_windows(d, &n);
    int R, S;
    float *want = load_npy("edf_tuh_mne.npy", &R, &S); /* (22, 1920): t = 0, 2, … */
    double worst = 0, sum = 0;
    char line[512] = "";
    for (int c = 0; c < 22; c++) {
        double e2 = 0, s2 = 0;
        for (int j = 0; j < S; j++) {
            int t = 2 * j, k = t / 1280;
            double g = x[(size_t)(k * 22 + c) * 1280 + t % 1280], w = want[c * S + j];
            e2 += (g - w) * (g - w);
            s2 += w * w;
        }
        double e = sqrt(e2 / s2);
        worst = fmax(worst, e);
        sum += e;
        size_t l = strlen(line);
        snprintf(line + l, sizeof line - l, " %.1e", e);
    }
    diag("per-channel rel RMS vs MNE 1.3 (TCP order):%s", line);
    ok(worst <= 1e-3, "TUH recipe matches MNE 1.3: rel RMS <= 1e-3 on each of "
       "22 derivations over 3 windows (worst %.2g, mean %.2g)", worst, sum / 22);
    free(want);
    free(x);
    vt->destroy(d);
}

/* ---- at the recording's own rate: no resampling ------------------------ */

/* Worst per-channel rel RMS of the first window of d (C, T) against want
 * (C rows of S samples, every step-th of the window), and the worst
 * per-sample error relative to the channel's RMS. */
static double window_vs(void *d, const char *fixture, int step, double *sample,
                        int *shape_ok)
{
    int R, S, C, T;
    size_t n;
    float *want = load_npy(fixture, &R, &S);
    vt->shape(d, &n, &C, &T);
    float *x = malloc((size_t)C * T * sizeof *x);
    mspt_error err = {0};
    *shape_ok = R == C && S * step <= T && n >= 1 && vt->read(d, 0, x, &err) == 0;
    double worst = 0;
    *sample = 0;
    for (int c = 0; *shape_ok && c < C; c++) {
        double e2 = 0, s2 = 0, m = 0;
        for (int j = 0; j < S; j++) {
            double g = x[(size_t)c * T + (size_t)j * step], w = want[c * S + j];
            e2 += (g - w) * (g - w);
            s2 += w * w;
            m = fmax(m, fabs(g - w));
        }
        worst = fmax(worst, sqrt(e2 / s2));
        *sample = fmax(*sample, m / sqrt(s2 / S));
    }
    free(x);
    free(want);
    return worst;
}

/* One recording at its own rate, through the component, against MNE. */
static void native_point(const char *what, const char *yaml, const char *fixture,
                         int step, double bound)
{
    mspt_error err = {0};
    char said[4096];
    void *d = make_quiet(yaml, &err, said, sizeof said);
    double sample = 0;
    int shape_ok = 0;
    double e = d ? window_vs(d, fixture, step, &sample, &shape_ok) : 1.0;
    ok(d && shape_ok && e <= bound, "%s: rel RMS vs MNE %.2g (<= %.0e), worst "
       "sample %.2g of the channel RMS%s%s", what, e, bound, sample,
       d ? "" : ": ", d ? "" : err.msg);
    if (d)
        vt->destroy(d);
}

static void check_native_rate(void)
{
    char yaml[4400];
    const char *synth = "tests/fixtures/edf_synth.edf";
    /* montage none, no filters, 500 Hz asked of a 500 Hz file: MNE's raw
     * read (get_data() in V; mspt's default units are uV) */
    snprintf(yaml, sizeof yaml, "{path: %s, channels: [FP1, FP2, C3, O1], "
             "montage: none, l_freq: 0, h_freq: 0, notch: 0, sample_rate: 500, "
             "window: 2048, cache: false}", synth);
    native_point("synthetic EDF+, montage none, no filters, 500 Hz at 500 Hz "
                 "= MNE's raw read (uV)", yaml, "edf_synth_raw.npy", 1, 1e-7);
    snprintf(yaml, sizeof yaml, "{path: %s, channels: [FP1, FP2, C3, O1], "
             "montage: none, l_freq: 1, h_freq: 40, notch: 50, sample_rate: 500, "
             "window: 4096, cache: false}", synth);
    native_point("synthetic EDF+, filter(1, 40), notch(50), kept at 500 Hz",
                 yaml, "edf_synth_native.npy", 2, 1e-5);

    char path[4200];
    snprintf(path, sizeof path, "%s", TUH_FILE);
    if (access(path, R_OK)) {
        ok(1, "TUH at 250 Hz # SKIP %s absent", TUH_FILE);
        ok(1, "TUH raw read # SKIP %s absent", TUH_FILE);
        return;
    }
    snprintf(yaml, sizeof yaml, "{path: %s, sample_rate: 250, window: 3840, "
             "cache: false}", path);
    native_point("TUH recipe (TCP, filter, notch) at 250 Hz on a 250 Hz file, "
                 "not resampled", yaml, "edf_tuh_native.npy", 2, 1e-5);
    snprintf(yaml, sizeof yaml, "{path: %s, montage: none, l_freq: 0, h_freq: "
             "0, notch: 0, sample_rate: 250, window: 1280, cache: false}", path);
    native_point("TUH, montage none, no filters, 250 Hz = MNE's raw read of "
                 "the 21 channels (uV)", yaml, "edf_tuh_raw.npy", 2, 1e-7);
}

/* ---- bounded fuzzing: mutated headers through the whole reader ---------- */

static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

/* What fuzz/fuzz_edf.c does with one input; returns 1 if accepted. */
static int exercise(const uint8_t *b, size_t n, int *named)
{
    edf_file f;
    char err[EDF_ERR_LEN] = "";
    if (edf_parse(&f, b, n, "fz.edf", err, sizeof err)) {
        *named = !strncmp(err, "fz.edf: ", 8);
        return 0;
    }
    *named = 1;
    long most = 0;
    for (int s = 0; s < f.nsignals; s++)
        most = f.sig[s].samples > most ? f.sig[s].samples : most;
    float *x = malloc((size_t)most * sizeof *x);
    for (long long r = 0; r < f.nrecords; r++)
        for (int s = 0; s < f.nsignals; s++)
            if (!f.sig[s].annotation)
                edf_read(&f, s, r, 1, 1.0, x);
    free(x);
    edf_segment *seg;
    size_t nseg;
    if (edf_segments(&f, &seg, &nseg, err, sizeof err) == 0)
        free(seg);
    edf_free(&f);
    return 1;
}

static void check_fuzz(void)
{
    enum { ROUNDS = 20000 };
    const double on[] = {0, 0.5, 3, 3.5};
    size_t sizes[3];
    uint8_t *seeds[3] = {make_file(&sizes[0], 0, "EDF+C", three, 3, 4, 0.5, NULL),
                         make_file(&sizes[1], 0, "EDF+D", three, 3, 4, 0.5, on),
                         make_file(&sizes[2], 1, "24BIT", three, 2, 2, 1, NULL)};
    int accepted = 0, unnamed = 0;
    uint8_t *b = malloc(1 << 16);
    for (int i = 0; i < ROUNDS; i++) {
        int k = (int)(rnd() % 3);
        size_t n = sizes[k], hb = 256 * (size_t)(k == 2 ? 3 : 4);
        memcpy(b, seeds[k], n);
        int edits = 1 + (int)(rnd() % 4);
        for (int e = 0; e < edits; e++) {
            uint32_t what = rnd() % 8;
            size_t at = rnd() % (what < 6 ? hb : n ? n : 1);
            if (what < 3) /* a random byte */
                b[at] = (uint8_t)rnd();
            else if (what < 5) /* a digit, sign, dot or space in a field */
                b[at] = (uint8_t)"0123456789-+. eE"[rnd() % 16];
            else if (what == 5) /* an extreme number in a field */
                memcpy(b + (at & ~7u), rnd() % 2 ? "99999999" : "-9999999", 8);
            else if (what == 6) /* truncation */
                n = at;
            else /* a byte in the data (TALs) */
                b[at] = (uint8_t)rnd();
        }
        int named;
        accepted += exercise(b, n, &named);
        unnamed += !named;
    }
    ok(unnamed == 0, "fuzz: %d mutated headers (EDF+C, EDF+D, BDF) through "
       "parse, decode and segments; %d accepted, every rejection names the "
       "file", ROUNDS, accepted);
    ok(accepted > 100 && accepted < ROUNDS - 100, "fuzz mutations hit both "
       "outcomes (%d accepted)", accepted);
    free(b);
    for (int i = 0; i < 3; i++)
        free(seeds[i]);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/mspt-test-edf-XXXXXX");
    if (!mkdtemp(tmp))
        tap_bail("mkdtemp");
    if (chdir(getenv("MSPT_SRCDIR") ? getenv("MSPT_SRCDIR") : "."))
        tap_bail("chdir");
    comp = tp_component("datasets", "edf", MSPT_KIND_DATASET, "edf");
    vt = comp->vtable;
    mspt_set_threads(2);

    check_reader();
    check_errors();
    check_repairs();
    check_fir();
    check_synth_parity();
    check_config_errors();
    check_cache();
    check_component_files();
    check_tuh();
    check_native_rate();
    check_fuzz();

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd))
        diag("could not remove %s", tmp);
    return tap_done();
}
