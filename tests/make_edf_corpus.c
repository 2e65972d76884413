/* make_edf_corpus DIR N NBAD [MIN_S MAX_S SEED]: a corpus of N EDF
 * recordings in a directory tree (DIR/sNN/rec_KKKK.edf), TUH-like (the 21
 * electrodes as "EEG XX-REF", an EKG, 1 s records), of lengths drawn from
 * MIN_S..MAX_S seconds (default 20..60) at rates drawn from 200, 250, 256,
 * 400 and 512 Hz.  NBAD of them (spread over the corpus) are broken, each
 * in one of the ways below, cycling; some good ones carry what MNE repairs
 * (a record count of -1, a trailing partial record).  Lists the broken
 * files on stdout, one a line: "PATH KIND".  Deterministic for a seed.
 * Used by tests/test_prepare.sh and bench/bench_prep_corpus.sh. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const EEG[21] = {"FP1", "FP2", "F3", "F4", "C3", "C4",
                                    "P3",  "P4",  "O1", "O2", "F7", "F8",
                                    "T3",  "T4",  "T5", "T6", "A1", "A2",
                                    "FZ",  "CZ",  "PZ"};
enum { NSIG = 22 }; /* the 21 and an EKG */

/* the ways a file is broken (what the reader must name) */
static const char *const KINDS[] = {
    "empty",          /* 0 bytes */
    "truncated",      /* cut inside the header */
    "not-edf",        /* version field "PK" */
    "zero-signals",   /* number of signals 0 */
    "missing-T3",     /* T3 relabelled: the montage needs it */
    "absurd-duration",/* record duration 1e300 */
    "not-voltage",    /* C3 in degC */
    "digital-range",  /* digital minimum = maximum */
    "slow-rate",      /* 1 sample per 2 s record on every signal */
    "header-bytes",   /* wrong 'number of bytes in header record' */
    "no-record",      /* fewer bytes than one record */
    "edfd-no-annot",  /* EDF+D without an annotation signal */
};
enum { NKINDS = sizeof KINDS / sizeof KINDS[0] };

static uint64_t state;
static uint32_t rnd(void)
{
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(state >> 33);
}

static void put(uint8_t *p, int w, const char *s)
{
    size_t n = strlen(s);
    memset(p, ' ', (size_t)w);
    memcpy(p, s, n < (size_t)w ? n : (size_t)w);
}

static void putf(uint8_t *p, int w, double v)
{
    char s[32];
    snprintf(s, sizeof s, "%g", v);
    put(p, w, s);
}

static const int SIG_W[10] = {16, 80, 8, 8, 8, 8, 8, 80, 8, 32};
static size_t sig_off(int k, int s)
{
    size_t off = 256;
    for (int j = 0; j < k; j++)
        off += (size_t)NSIG * SIG_W[j];
    return off + (size_t)s * SIG_W[k];
}

/* One recording; kind < 0 is a good one (repair 1: count -1, 2: partial). */
static int write_rec(const char *path, int seconds, int rate, int kind,
                     int repair)
{
    size_t hb = 256 * (NSIG + 1), rec = (size_t)NSIG * rate * 2;
    size_t size = hb + rec * (size_t)seconds;
    uint8_t *b = calloc(1, size + 1000); /* room for the stray bytes */
    if (!b)
        return -1;
    put(b, 8, "0");
    put(b + 8, 80, "X X X X");
    put(b + 88, 80, "Startdate 01-JAN-2000 X corpus X");
    put(b + 168, 8, "01.01.00");
    put(b + 176, 8, "00.00.00");
    putf(b + 184, 8, (double)hb);
    put(b + 192, 44, kind == 11 ? "EDF+D" : "");
    putf(b + 236, 8, repair == 1 ? -1 : seconds);
    put(b + 244, 8, kind == 5 ? "1e300" : kind == 8 ? "2" : "1");
    putf(b + 252, 4, NSIG);
    for (int s = 0; s < NSIG; s++) {
        char label[32];
        if (s < 21)
            snprintf(label, sizeof label, "EEG %s-REF",
                     kind == 4 && s == 12 ? "XX" : EEG[s]);
        else
            snprintf(label, sizeof label, "EKG1-REF");
        put(b + sig_off(0, s), 16, label);
        put(b + sig_off(1, s), 80, "AgAgCl");
        put(b + sig_off(2, s), 8, kind == 6 && s == 4 ? "degC" : "uV");
        putf(b + sig_off(3, s), 8, -3276.8);
        putf(b + sig_off(4, s), 8, 3276.7);
        putf(b + sig_off(5, s), 8, kind == 7 && s == 0 ? 32767 : -32768);
        putf(b + sig_off(6, s), 8, 32767);
        put(b + sig_off(7, s), 80, "HP:0.1Hz LP:100Hz");
        putf(b + sig_off(8, s), 8, kind == 8 ? 1 : rate);
        put(b + sig_off(9, s), 32, "");
    }
    /* samples: 10 Hz alpha, a slow wave and noise, in units of 0.1 uV */
    int16_t *x = (int16_t *)(b + hb);
    double w1 = 2 * 3.14159265358979 * 10.0 / rate,
           w2 = 2 * 3.14159265358979 * 0.7 / rate;
    for (int r = 0; r < seconds; r++)
        for (int s = 0; s < NSIG; s++)
            for (int k = 0; k < rate; k++) {
                long t = (long)r * rate + k;
                double v = 300 * __builtin_sin(w1 * t + s) +
                           500 * __builtin_sin(w2 * t + 0.3 * s) +
                           (double)(rnd() % 400) - 200;
                *x++ = (int16_t)v;
            }
    if (kind == 3)
        put(b + 252, 4, "0");
    if (kind == 2)
        put(b, 8, "PK");
    if (kind == 9)
        putf(b + 184, 8, 4096);
    if (repair == 2)
        size += 1000; /* stray bytes: less than one record */
    if (kind == 0)
        size = 0;
    if (kind == 1)
        size = 700;
    if (kind == 10)
        size = hb + rec / 2;
    FILE *f = fopen(path, "wb");
    int rc = !f || fwrite(b, 1, size, f) != size;
    if (f && fclose(f))
        rc = 1;
    free(b);
    return rc ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: make_edf_corpus DIR N NBAD [MIN_S MAX_S SEED]\n");
        return 2;
    }
    const char *dir = argv[1];
    int n = atoi(argv[2]), nbad = atoi(argv[3]);
    int lo = argc > 4 ? atoi(argv[4]) : 20, hi = argc > 5 ? atoi(argv[5]) : 60;
    state = argc > 6 ? strtoull(argv[6], NULL, 10) : 1;
    static const int RATES[] = {200, 250, 256, 400, 512};
    if (n < 1 || nbad < 0 || nbad > n || lo < 1 || hi < lo) {
        fprintf(stderr, "make_edf_corpus: bad arguments\n");
        return 2;
    }
    if (mkdir(dir, 0755) && errno != EEXIST) {
        perror(dir);
        return 1;
    }
    for (int k = 0; k < n; k++) {
        char sub[4096], path[4200];
        snprintf(sub, sizeof sub, "%s/s%02d", dir, k % 7);
        if (mkdir(sub, 0755) && errno != EEXIST) {
            perror(sub);
            return 1;
        }
        snprintf(path, sizeof path, "%s/rec_%04d.edf", sub, k);
        /* broken: every (n / nbad)-th file */
        int bad = nbad && k % (n / nbad) == n / nbad - 1 && k / (n / nbad) < nbad;
        int kind = bad ? (k / (n / nbad)) % NKINDS : -1;
        int seconds = lo + (int)(rnd() % (unsigned)(hi - lo + 1));
        int rate = RATES[rnd() % 5];
        int repair = bad ? 0 : k % 11 == 3 ? 1 : k % 13 == 5 ? 2 : 0;
        if (write_rec(path, seconds, rate, kind, repair)) {
            fprintf(stderr, "make_edf_corpus: cannot write %s\n", path);
            return 1;
        }
        if (bad)
            printf("%s %s\n", path, KINDS[kind]);
    }
    return 0;
}
