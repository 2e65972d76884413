/* datasets.synthetic (plugins/datasets): determinism, independence of read
 * order and threads, spectrum and spatial structure of the signal measured
 * here with a small DFT, each part's shape in isolation, config errors. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "plugin_util.h"

#define PI 3.141592653589793

static const mspt_component *comp;
static const mspt_dataset_vt *vt;

/* The dataset for a table; NULL with err filled on a config error. */
static void *make_err(const char *path, const char *yaml, mspt_error *err)
{
    mspt_config cfg;
    mspt_node *tree = tp_config_err(comp, path, yaml, &cfg, err);
    if (!tree)
        return NULL;
    void *self = NULL;
    int rc = vt->create(&cfg, &self, err);
    mspt_node_free(tree);
    return rc ? NULL : self;
}

static void *make(const char *yaml)
{
    mspt_error err = {0};
    void *self = make_err("data", yaml, &err);
    if (!self)
        tap_bail(err.msg);
    return self;
}

/* Window i of d in a new buffer (channels·samples floats). */
static float *window(void *d, size_t i)
{
    size_t n;
    int C, T;
    vt->shape(d, &n, &C, &T);
    float *x = malloc((size_t)C * T * sizeof *x);
    mspt_error err = {0};
    if (vt->read(d, i, x, &err))
        tap_bail(err.msg);
    return x;
}

/* P[k], k = 0 … kmax: |DFT|² of the Hann-windowed, mean-removed x (T);
 * bin k is k·fs/T Hz. */
static void spectrum(const float *x, int T, double *P, int kmax)
{
    double mean = 0;
    for (int t = 0; t < T; t++)
        mean += x[t];
    mean /= T;
    for (int k = 0; k <= kmax; k++) {
        double re = 0, im = 0;
        for (int t = 0; t < T; t++) {
            double h = 0.5 - 0.5 * cos(2 * PI * t / T);
            double v = h * (x[t] - mean), a = 2 * PI * (double)k * t / T;
            re += v * cos(a);
            im -= v * sin(a);
        }
        P[k] = re * re + im * im;
    }
}

/* Mean of P over the bins of [lo, hi] Hz (power per bin). */
static double band(const double *P, double df, double lo, double hi)
{
    double s = 0;
    int n = 0;
    for (int k = (int)ceil(lo / df); k * df <= hi; k++, n++)
        s += P[k];
    return s / n;
}

static double pearson(const float *a, const float *b, int n)
{
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= n;
    mb /= n;
    for (int i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return sab / sqrt(saa * sbb);
}

/* ---- determinism and read order ------------------------------------- */

static void check_determinism(void)
{
    void *a = make("{}"), *b = make("{}"), *c = make("{seed: 1}");
    size_t n;
    int C, T;
    vt->shape(a, &n, &C, &T);
    ok(n == 512 && C == 22 && T == 1280, "defaults: shape (512, 22, 1280)");
    size_t bytes = (size_t)C * T * sizeof(float);
    float *a3 = window(a, 3), *b3 = window(b, 3), *c3 = window(c, 3);
    float *a4 = window(a, 4);
    ok(!memcmp(a3, b3, bytes), "same seed: identical bytes");
    ok(memcmp(a3, c3, bytes) != 0, "another seed: another window");
    ok(memcmp(a3, a4, bytes) != 0, "windows 3 and 4 differ");
    free(a3), free(b3), free(c3), free(a4);

    /* window 7 alone, after others, and twice */
    void *d = make("{}");
    float *ref = window(a, 7);
    int same = 1;
    size_t order[] = {0, 1, 2, 3, 4, 5, 6, 511, 100, 7, 2, 7};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        float *x = window(d, order[k]);
        if (order[k] == 7)
            same &= !memcmp(x, ref, bytes);
        free(x);
    }
    ok(same, "window 7 read after others (and again) equals window 7 alone");
    free(ref);
    vt->destroy(a), vt->destroy(b), vt->destroy(c), vt->destroy(d);
}

typedef struct reader {
    void *d;
    float **ref;
    int first, step, nwin, same;
} reader;

static void *read_all(void *arg)
{
    reader *r = arg;
    size_t bytes = 22 * 1280 * sizeof(float);
    float *x = malloc(bytes);
    mspt_error err = {0};
    r->same = 1;
    for (int rep = 0; rep < 3; rep++)
        for (int k = 0, i = r->first; k < r->nwin; k++, i += r->step) {
            r->same &= vt->read(r->d, (size_t)i, x, &err) == 0;
            r->same &= !memcmp(x, r->ref[i], bytes);
        }
    free(x);
    return NULL;
}

/* Two threads read the same windows at once, in opposite orders. */
static void check_threads(void)
{
    enum { NWIN = 12 };
    void *d = make("{}");
    float *ref[NWIN];
    for (int i = 0; i < NWIN; i++)
        ref[i] = window(d, (size_t)i);
    reader r[2] = {{d, ref, 0, 1, NWIN, 0}, {d, ref, NWIN - 1, -1, NWIN, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, read_all, &r[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ok(r[0].same && r[1].same,
       "two threads reading at once get the single-thread bytes");
    for (int i = 0; i < NWIN; i++)
        free(ref[i]);
    vt->destroy(d);
}

/* ---- the signal ------------------------------------------------------ */

static void check_amplitude(void)
{
    void *d = make("{}");
    int finite = 1, plausible = 1;
    double lo = 1e30, hi = 0;
    for (size_t i = 0; i < 16; i++) {
        float *x = window(d, i * 31);
        for (int c = 0; c < 22; c++) {
            double s = 0, ss = 0;
            for (int t = 0; t < 1280; t++) {
                double v = x[c * 1280 + t];
                finite &= isfinite(v);
                s += v;
                ss += v * v;
            }
            double sd = sqrt(ss / 1280 - (s / 1280) * (s / 1280));
            plausible &= sd >= 5 && sd <= 200;
            lo = fmin(lo, sd);
            hi = fmax(hi, sd);
        }
        free(x);
    }
    ok(finite, "every value finite");
    ok(plausible, "channel std between 5 and 200 uV (%.1f .. %.1f)", lo, hi);
    vt->destroy(d);
}

/* Average spectra of channels [c0, c1) over nwin windows of d into P. */
static void mean_spectrum(void *d, int c0, int c1, int nwin, double *P,
                          int kmax)
{
    size_t n;
    int C, T;
    vt->shape(d, &n, &C, &T);
    double *Q = malloc((size_t)(kmax + 1) * sizeof *Q);
    memset(P, 0, (size_t)(kmax + 1) * sizeof *P);
    for (int i = 0; i < nwin; i++) {
        float *x = window(d, (size_t)i);
        for (int c = c0; c < c1; c++) {
            spectrum(x + (size_t)c * T, T, Q, kmax);
            for (int k = 0; k <= kmax; k++)
                P[k] += Q[k] / (nwin * (c1 - c0));
        }
        free(x);
    }
    free(Q);
}

static void check_spectrum(void)
{
    enum { KMAX = 350 }; /* 70 Hz at 0.2 Hz per bin */
    const double df = 256.0 / 1280;
    double P[KMAX + 1];
    void *d = make("{}");

    /* occipital: alpha stands out; without alpha the two bands are alike
     * (1/f puts equal power in 8-12 and 20-30 Hz: equal frequency ratio) */
    mean_spectrum(d, 20, 22, 8, P, KMAX);
    double alpha = band(P, df, 8, 12) * (12 - 8),
           beta = band(P, df, 20, 30) * (30 - 20);
    ok(alpha > 2 * beta, "occipital: power 8-12 Hz > 2x power 20-30 Hz "
       "(ratio %.2f)", alpha / beta);
    void *na = make("{alpha_amplitude: 0}");
    double Pn[KMAX + 1];
    mean_spectrum(na, 20, 22, 8, Pn, KMAX);
    double r0 = band(Pn, df, 8, 12) * 4 / (band(Pn, df, 20, 30) * 10);
    ok(r0 > 0.6 && r0 < 1.6, "without alpha: 8-12 vs 20-30 Hz ratio near 1 "
       "(%.2f)", r0);

    /* line noise: the 60 Hz bin (and the Hann window's neighbours) against
     * the median bin of 50-70 Hz */
    int kl = (int)lround(60 / df);
    double side[KMAX + 1];
    int ns = 0;
    for (int k = (int)(50 / df); k <= (int)(70 / df); k++)
        if (abs(k - kl) > 10)
            side[ns++] = P[k];
    for (int i = 1; i < ns; i++) /* insertion sort: ns is small */
        for (int j = i; j > 0 && side[j - 1] > side[j]; j--) {
            double tmp = side[j];
            side[j] = side[j - 1];
            side[j - 1] = tmp;
        }
    double med = side[ns / 2];
    ok(P[kl] > 20 * med, "60 Hz bin stands out: %.0fx the 50-70 Hz median",
       P[kl] / med);

    /* 1/f on central channels, no alpha: slope of log P on log f over
     * 1-40 Hz, and density 1-4 Hz against 30-45 Hz */
    mean_spectrum(na, 8, 14, 8, Pn, KMAX);
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (int k = (int)(1 / df); k <= (int)(40 / df); k++, m++) {
        double lx = log(k * df), ly = log(Pn[k]);
        sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly;
    }
    double slope = (m * sxy - sx * sy) / (m * sxx - sx * sx);
    ok(slope > -1.5 && slope < -0.6, "background is 1/f: log-log slope %.2f "
       "over 1-40 Hz", slope);
    double low = band(Pn, df, 1, 4), high = band(Pn, df, 30, 45);
    ok(low > 5 * high, "power density 1-4 Hz = %.1fx that of 30-45 Hz",
       low / high);
    vt->destroy(d);
    vt->destroy(na);
}

static void check_correlation(void)
{
    void *d = make("{}");
    double near = 0, far = 0;
    int n = 0;
    for (size_t i = 0; i < 8; i++) {
        float *x = window(d, i);
        for (int c = 3; c < 10; c++, n++) {
            near += pearson(x + c * 1280, x + (c + 1) * 1280, 1280);
            far += pearson(x + c * 1280, x + (c + 10) * 1280, 1280);
        }
        free(x);
    }
    near /= n;
    far /= n;
    ok(near > 0.4, "neighbouring channels correlate (r = %.2f)", near);
    ok(near > far + 0.3 && fabs(far) < 0.2,
       "distant channels (10 apart) much less (r = %.2f)", far);
    vt->destroy(d);
}

/* ---- each part on its own --------------------------------------------- */

static const char *const amplitudes[] = {
    "background_amplitude", "alpha_amplitude", "line_noise_amplitude",
    "spike_amplitude", "blink_amplitude", NULL};
static const double defaults[] = {20, 30, 5, 80, 100}; /* the schema's */

/* A table switching off every part but `keep` (set to `amp`), plus extra. */
static void *only(const char *keep, double amp, const char *extra)
{
    char yaml[512];
    int n = snprintf(yaml, sizeof yaml, "{%s: %g", keep, amp);
    for (int i = 0; amplitudes[i]; i++)
        if (strcmp(amplitudes[i], keep))
            n += snprintf(yaml + n, sizeof yaml - n, ", %s: 0", amplitudes[i]);
    snprintf(yaml + n, sizeof yaml - n, "%s%s}", *extra ? ", " : "", extra);
    return make(yaml);
}

/* Runs of nonzero samples of x (T) that touch neither end: start and
 * length into run[2k], run[2k+1]; returns how many. */
static int runs(const float *x, int T, int *run, int cap)
{
    int n = 0;
    for (int t = 0; t < T;) {
        if (x[t] == 0.0f) {
            t++;
            continue;
        }
        int s = t;
        while (t < T && x[t] != 0.0f)
            t++;
        if (s > 0 && t < T && n < cap) {
            run[2 * n] = s;
            run[2 * n + 1] = t - s;
            n++;
        }
    }
    return n;
}

static void check_blinks(void)
{
    void *d = only("blink_amplitude", 100, "blink_rate: 0.3");
    int run[512], n = 0, in = 0, tall = 0;
    double front = 0, back = 0;
    for (size_t i = 0; i < 40; i++) {
        float *x = window(d, i);
        int m = runs(x, 1280, run, 256);
        for (int k = 0; k < m; k++) {
            int len = run[2 * k + 1];
            double peak = 0;
            for (int t = run[2 * k]; t < run[2 * k] + len; t++)
                peak = fmax(peak, x[t]);
            in += len >= 0.2 * 256 - 2 && len <= 0.4 * 256 + 1;
            tall += peak >= 69 && peak <= 100.01;
        }
        n += m;
        for (int t = 0; t < 1280; t++) {
            front += x[t] * x[t];
            back += x[21 * 1280 + t] * x[21 * 1280 + t];
        }
        free(x);
    }
    ok(n >= 20 && in == n, "blinks last 200-400 ms (%d of %d)", in, n);
    ok(n >= 20 && tall == n, "blinks peak at 70-100 uV on channel 0 "
       "(%d of %d)", tall, n);
    ok(front > 100 * back, "blinks are frontal: channel 0 energy %.0fx the "
       "last channel's", front / fmax(back, 1e-30));
    vt->destroy(d);
}

static void check_spikes(void)
{
    void *d = only("spike_amplitude", 80, "spike_rate: 0.5");
    int run[2048], n = 0, in = 0;
    double peak = 0;
    int neg = 0, pos = 0;
    for (size_t i = 0; i < 20; i++) {
        float *x = window(d, i);
        for (int c = 0; c < 22; c++) {
            int m = runs(x + c * 1280, 1280, run, 1024);
            for (int k = 0; k < m; k++)
                in += run[2 * k + 1] >= 0.020 * 256 - 2 &&
                      run[2 * k + 1] <= 0.070 * 256 + 1;
            n += m;
            for (int t = 0; t < 1280; t++) {
                peak = fmax(peak, fabs(x[c * 1280 + t]));
                neg += x[c * 1280 + t] < -40;
                pos += x[c * 1280 + t] > 40;
            }
        }
        free(x);
    }
    ok(n >= 20 && in >= n - 2, "spikes last 20-70 ms (%d of %d)", in, n);
    ok(peak >= 45 && peak <= 85, "spike peak %.0f uV", peak);
    ok(neg > pos, "spikes mostly negative (%d vs %d samples past 40 uV)", neg,
       pos);
    vt->destroy(d);
}

static void check_line_and_alpha(void)
{
    /* a pure sinusoid: 50 Hz at 200 Hz sampling is bin 250 of 1000 */
    enum { KMAX = 500 };
    static double P[KMAX + 1];
    void *d = only("line_noise_amplitude", 5,
                   "line_frequency: 50, sample_rate: 200, samples: 1000");
    float *x = window(d, 0);
    spectrum(x, 1000, P, KMAX);
    double all = 0;
    for (int k = 0; k <= KMAX; k++)
        all += P[k];
    ok((P[249] + P[250] + P[251]) / all > 0.999,
       "line noise is one line at 50 Hz (%.5f of the power)",
       (P[249] + P[250] + P[251]) / all);
    free(x);
    vt->destroy(d);

    /* alpha alone lives in 8-12 Hz, is strongest on the last channel */
    d = only("alpha_amplitude", 30, "");
    const double df = 0.2;
    double Q[KMAX + 1];
    mean_spectrum(d, 21, 22, 8, Q, 100);
    double in = 0, tot = 0;
    for (int k = 1; k <= 100; k++) {
        tot += Q[k];
        in += k * df >= 7.5 && k * df <= 12.5 ? Q[k] : 0;
    }
    ok(in > 0.95 * tot, "alpha bursts hold %.3f of their power in 7.5-12.5 Hz",
       in / tot);
    double e_last = 0, e_first = 0;
    for (size_t i = 0; i < 8; i++) {
        float *w = window(d, i);
        for (int t = 0; t < 1280; t++) {
            e_first += w[t] * w[t];
            e_last += w[21 * 1280 + t] * w[21 * 1280 + t];
        }
        free(w);
    }
    ok(e_last > 50 * e_first, "alpha is occipital: last channel %.0fx the "
       "first's energy", e_last / fmax(e_first, 1e-30));
    vt->destroy(d);
}

/* The window is the sum of its parts, each unchanged by the others. */
static void check_parts_add_up(void)
{
    void *d = make("{}");
    float *all = window(d, 5);
    double *sum = calloc(22 * 1280, sizeof *sum);
    for (int p = 0; p < 5; p++) {
        void *dp = only(amplitudes[p], defaults[p], "");
        float *x = window(dp, 5);
        for (int j = 0; j < 22 * 1280; j++)
            sum[j] += x[j];
        free(x);
        vt->destroy(dp);
    }
    double worst = 0;
    for (int j = 0; j < 22 * 1280; j++)
        worst = fmax(worst, fabs(all[j] - sum[j]));
    ok(worst < 1e-3, "window = sum of parts made alone (max diff %.2g uV)",
       worst);
    free(all);
    free(sum);
    vt->destroy(d);
}

/* ---- errors, schema, cost --------------------------------------------- */

static void expect_error(const char *path, const char *yaml, const char *want)
{
    mspt_error err = {0};
    void *d = make_err(path, yaml, &err);
    ok(!d && err.status == MSPT_ERR_CONFIG && strstr(err.msg, want),
       "%s %s refused: %s", path, yaml, want);
    if (d)
        vt->destroy(d);
    else if (!strstr(err.msg, want))
        diag("got: %s", err.msg);
}

static void check_errors(void)
{
    expect_error("data", "{channels: 0}", "data.channels: must be >= 1");
    expect_error("data", "{samples: 0}", "data.samples: must be >= 1");
    expect_error("data", "{windows: 0}", "data.windows: must be >= 1");
    expect_error("data", "{sample_rate: 0}", "data.sample_rate: must be > 0");
    expect_error("data", "{sample_rate: -256}", "data.sample_rate: must be > 0");
    expect_error("data", "{line_frequency: 128}",
                 "data.line_frequency: 128 Hz must be below the Nyquist "
                 "frequency 128 Hz");
    expect_error("data", "{sample_rate: 100}", "data.line_frequency");
    expect_error("data", "{sample_rate: 20, line_frequency: 5}",
                 "data.alpha_amplitude: alpha (8-12 Hz) needs sample_rate");
    expect_error("data.1", "{blink_rate: -1}", "data.1.blink_rate: must be >= 0");
    expect_error("data", "{blink_rate: 1.5}", "data.blink_rate: must be <= 1");
    expect_error("data", "{spike_amplitude: -3}",
                 "data.spike_amplitude: must be >= 0");
    expect_error("data", "{channels: 70000, samples: 70000}",
                 "data: channels x samples");

    void *d = make("{sample_rate: 20, line_frequency: 5, alpha_amplitude: 0}");
    ok(d != NULL, "low sample rate fine without alpha");
    if (d)
        vt->destroy(d);

    d = make("{windows: 4, channels: 3, samples: 50}");
    float x[150];
    mspt_error err = {0};
    ok(vt->read(d, 4, x, &err) != 0 && strstr(err.msg, "window 4 out of range"),
       "read past the end refused (%s)", err.msg);
    ok(vt->read(d, 3, x, &err) == 0, "last window reads");
    vt->destroy(d);

    d = make("{channels: 1, samples: 1}");
    float one = NAN;
    int rc = vt->read(d, 0, &one, &err);
    ok(rc == 0 && isfinite(one) && one != 0, "a 1x1 window works (%g)", one);
    vt->destroy(d);
}

static void check_schema(void)
{
    int all = 1, n = 0;
    for (const mspt_param *p = comp->params; p->name; p++, n++)
        all &= p->def && strcmp(p->def, MSPT_NO_DEFAULT) && p->help && *p->help;
    ok(all && n == 13, "13 parameters, each with a default and help");
}

static void report_cost(void)
{
    void *d = make("{}");
    float *x = malloc(22 * 1280 * sizeof *x);
    mspt_error err = {0};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (size_t i = 0; i < 32; i++)
        vt->read(d, i, x, &err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    diag("read: %.2f ms per default window (22 x 1280)",
         ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) * 1e-6) / 32);
    free(x);
    vt->destroy(d);
}

int main(void)
{
    comp = tp_component("datasets", "synthetic", MSPT_KIND_DATASET, "synthetic");
    vt = comp->vtable;
    check_schema();
    check_determinism();
    check_threads();
    check_amplitude();
    check_spectrum();
    check_correlation();
    check_blinks();
    check_spikes();
    check_line_and_alpha();
    check_parts_add_up();
    check_errors();
    report_cost();
    return tap_done();
}
