/* EEG-like windows, each a pure function of (seed, window index).
 *
 * A window (C, T) in µV is the sum of five parts:
 *   background  1/f noise.  A pink process is the sum of SYNTH_PINK_POLES
 *               AR(1) processes of equal variance whose corner frequencies
 *               are a factor 3 apart (0.25 … 61 Hz): equal variances make
 *               the summed spectrum ∝ 1/f between the corners.  Channel c
 *               mixes the shared sources c … c+2R through a Gaussian kernel
 *               (SHARED_FRACTION of its variance) with a private process,
 *               so neighbouring channels correlate, distant ones do not.
 *               Gains vary per window (brain state) and per channel.
 *   alpha       8–12 Hz bursts under a Hann envelope, 0.5–2.5 s long,
 *               strongest on the last (occipital) channels.
 *   spikes      sharp transients 20–70 ms wide on a random channel and its
 *               neighbours, mostly surface-negative.
 *   blinks      slow positive bumps 200–400 ms long, at most one per
 *               second, strongest on the first (frontal) channels.
 *   line noise  a sinusoid at line_freq on every channel, gain per channel.
 * Each part draws from its own random stream, seeded by hashing (seed,
 * index, part) with splitmix64: nothing is shared between windows, and
 * changing one part's amplitude or rate leaves the other parts unchanged.
 * Every process starts in its stationary state, so a window has no
 * start-up transient. */
#include "synthetic_signal.h"

#include <math.h>
#include <string.h>

#define PI 3.141592653589793
#define TWO_PI (2.0 * PI)
#define MIX_RADIUS 3         /* a shared source reaches ±3 channels */
#define MIX_WIDTH 1.2        /* std of the mixing kernel, in channels */
#define SHARED_FRACTION 0.75 /* of a channel's background variance */
#define ALPHA_RATE 0.6       /* alpha bursts per second */

enum { PART_BACKGROUND = 1, PART_ALPHA, PART_SPIKES, PART_BLINKS, PART_LINE };

static const double pink_corner_hz[SYNTH_PINK_POLES] = {
    0.25, 0.75, 2.25, 6.75, 20.25, 60.75};

/* ---- random streams ------------------------------------------------- */

typedef struct stream {
    uint64_t s;
} stream;

/* splitmix64: a Weyl counter through a strong 64-bit mix */
static uint64_t next_u64(stream *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The stream of one part of one window; the mix is a bijection, so
 * distinct (seed, index, part) give distinct starting states. */
static stream stream_for(uint64_t seed, uint64_t index, uint64_t part)
{
    stream r = {seed};
    r.s = next_u64(&r) ^ index;
    r.s = next_u64(&r) ^ part;
    return r;
}

/* [0, 1) */
static double uniform(stream *r)
{
    return (double)(next_u64(r) >> 11) * 0x1.0p-53;
}

static double uniform_in(stream *r, double lo, double hi)
{
    return lo + (hi - lo) * uniform(r);
}

/* About N(0, 1) from one draw: four 16-bit uniforms summed (Irwin–Hall),
 * centred and scaled.  The background needs millions of innovations per
 * epoch and its AR filters average them into Gaussians anyway. */
static double normal_fast(stream *r)
{
    uint64_t x = next_u64(r);
    double s = (double)(x & 0xffff) + (double)((x >> 16) & 0xffff) +
               (double)((x >> 32) & 0xffff) + (double)(x >> 48);
    return (s / 65536.0 - 2.0 + 2.0 / 65536.0) * 1.7320508075688772;
}

/* Poisson(lambda): Knuth's product of uniforms; a rounded normal for large
 * means, which only extreme event rates reach. */
static long poisson(stream *r, double lambda)
{
    if (!(lambda > 0))
        return 0;
    if (lambda > 30) {
        double n = floor(lambda + sqrt(lambda) * normal_fast(r) + 0.5);
        return n < 0 ? 0 : n > 1e8 ? 100000000L : (long)n;
    }
    double limit = exp(-lambda), p = uniform(r);
    long k = 0;
    while (p > limit) {
        p *= uniform(r);
        k++;
    }
    return k;
}

/* ---- background ------------------------------------------------------ */

void synth_model_prepare(synth_model *m)
{
    /* x ← a·x + b·n keeps var(x) = b²/(1−a²) = 1/POLES: a pink process
     * has unit variance */
    for (int k = 0; k < SYNTH_PINK_POLES; k++) {
        double a = exp(-TWO_PI * pink_corner_hz[k] / m->sample_rate);
        m->pink_a[k] = a;
        m->pink_b[k] = sqrt((1.0 - a * a) / SYNTH_PINK_POLES);
    }
}

typedef struct pink {
    double x[SYNTH_PINK_POLES];
} pink;

static void pink_init(pink *p, stream *r)
{
    for (int k = 0; k < SYNTH_PINK_POLES; k++)
        p->x[k] = sqrt(1.0 / SYNTH_PINK_POLES) * normal_fast(r);
}

static double pink_step(const synth_model *m, pink *p, stream *r)
{
    double v = 0;
    for (int k = 0; k < SYNTH_PINK_POLES; k++) {
        p->x[k] = m->pink_a[k] * p->x[k] + m->pink_b[k] * normal_fast(r);
        v += p->x[k];
    }
    return v;
}

/* out (C, T) += background.  Channel c takes sources s = c … c+2R with
 * weight w[s − c], so channels c and c+d share 2R+1−d sources. */
static void add_background(const synth_model *m, stream *r, float *out)
{
    int C = m->channels, T = m->samples, K = 2 * MIX_RADIUS + 1;
    double w[2 * MIX_RADIUS + 1], norm = 0;
    for (int j = 0; j < K; j++) {
        double d = (j - MIX_RADIUS) / MIX_WIDTH;
        w[j] = exp(-0.5 * d * d);
        norm += w[j] * w[j];
    }
    for (int j = 0; j < K; j++)
        w[j] *= sqrt(SHARED_FRACTION / norm);
    double own = sqrt(1.0 - SHARED_FRACTION);

    for (int s = 0; s < C + K - 1; s++) {
        int c0 = s - (K - 1) > 0 ? s - (K - 1) : 0;
        int c1 = s < C - 1 ? s : C - 1;
        pink p;
        pink_init(&p, r);
        for (int t = 0; t < T; t++) {
            double v = pink_step(m, &p, r);
            for (int c = c0; c <= c1; c++)
                out[(size_t)c * T + t] += (float)(w[s - c] * v);
        }
    }
    for (int c = 0; c < C; c++) {
        pink p;
        pink_init(&p, r);
        for (int t = 0; t < T; t++)
            out[(size_t)c * T + t] += (float)(own * pink_step(m, &p, r));
    }
    double state = m->background * exp(0.2 * normal_fast(r));
    for (int c = 0; c < C; c++) {
        float g = (float)(state * uniform_in(r, 0.8, 1.2));
        for (int t = 0; t < T; t++)
            out[(size_t)c * T + t] *= g;
    }
}

/* ---- transients and rhythms ------------------------------------------ */

/* out (C, T) += alpha bursts; channel weight e^(−(C−1−c)/scale) */
static void add_alpha(const synth_model *m, stream *r, float *out)
{
    int C = m->channels, T = m->samples;
    double fs = m->sample_rate;
    double peak = uniform_in(r, 8.5, 11.5); /* this window's alpha peak */
    double q = exp(-1.0 / fmax(1.0, C / 6.0));
    long n = poisson(r, ALPHA_RATE * T / fs);
    for (long b = 0; b < n; b++) {
        double len = uniform_in(r, 0.5, 2.5) * fs; /* samples */
        double start = uniform_in(r, 0, T) - 0.5 * len;
        double f = (peak + uniform_in(r, -0.3, 0.3)) / fs; /* cycles/sample */
        double phase = uniform_in(r, 0, TWO_PI);
        double amp = m->alpha * uniform_in(r, 0.6, 1.0);
        int lo = start > 0 ? (int)ceil(start) : 0;
        int hi = start + len < T ? (int)floor(start + len) : T - 1;
        for (int t = lo; t <= hi; t++) {
            double e = sin(PI * (t - start) / len);
            double v = amp * e * e * sin(TWO_PI * f * t + phase);
            double g = 1.0;
            for (int c = C - 1; c >= 0; c--, g *= q)
                out[(size_t)c * T + t] += (float)(g * v);
        }
    }
}

/* out (C, T) += spikes: a Gaussian of std width/6 on channel cm, weight
 * e^(−(c−cm)²/2) on its neighbours up to two channels away */
static void add_spikes(const synth_model *m, stream *r, float *out)
{
    int C = m->channels, T = m->samples;
    double fs = m->sample_rate;
    long n = poisson(r, m->spike_rate * T / fs);
    for (long k = 0; k < n; k++) {
        double t0 = uniform_in(r, 0, T);
        double sd = uniform_in(r, 0.020, 0.070) * fs / 6.0; /* samples */
        int cm = (int)(uniform(r) * C);
        double amp = m->spike_amp * uniform_in(r, 0.6, 1.0) *
                     (uniform(r) < 0.8 ? -1.0 : 1.0);
        int lo = t0 - 3 * sd > 0 ? (int)ceil(t0 - 3 * sd) : 0;
        int hi = t0 + 3 * sd < T ? (int)floor(t0 + 3 * sd) : T - 1;
        for (int c = cm - 2; c <= cm + 2; c++) {
            if (c < 0 || c >= C)
                continue;
            double g = amp * exp(-0.5 * (c - cm) * (c - cm));
            for (int t = lo; t <= hi; t++) {
                double u = (t - t0) / sd;
                out[(size_t)c * T + t] += (float)(g * exp(-0.5 * u * u));
            }
        }
    }
}

/* out (C, T) += blinks: a sin² bump, channel weight e^(−c/scale).  Time is
 * cut into 1 s slots (at a random offset) holding a blink with probability
 * blink_rate·1 s, centred in the slot's middle 60 %: blinks never overlap,
 * as real ones, which come seconds apart. */
static void add_blinks(const synth_model *m, stream *r, float *out)
{
    int C = m->channels, T = m->samples;
    double fs = m->sample_rate;
    double q = exp(-1.0 / fmax(1.0, C / 8.0));
    for (double slot = -uniform(r) * fs; slot < T; slot += fs) {
        if (uniform(r) >= m->blink_rate)
            continue;
        double len = uniform_in(r, 0.2, 0.4) * fs; /* samples */
        double start = slot + uniform_in(r, 0.2, 0.8) * fs - 0.5 * len;
        double amp = m->blink_amp * uniform_in(r, 0.7, 1.0);
        int lo = start > 0 ? (int)ceil(start) : 0;
        int hi = start + len < T ? (int)floor(start + len) : T - 1;
        for (int t = lo; t <= hi; t++) {
            double e = sin(PI * (t - start) / len);
            double g = amp * e * e;
            for (int c = 0; c < C; c++, g *= q)
                out[(size_t)c * T + t] += (float)g;
        }
    }
}

/* out (C, T) += line noise, one phase, a gain per channel */
static void add_line(const synth_model *m, stream *r, float *out)
{
    int C = m->channels, T = m->samples;
    double f = m->line_freq / m->sample_rate, phase = uniform_in(r, 0, TWO_PI);
    for (int c = 0; c < C; c++) {
        double amp = m->line * uniform_in(r, 0.5, 1.5);
        for (int t = 0; t < T; t++)
            out[(size_t)c * T + t] += (float)(amp * sin(TWO_PI * f * t + phase));
    }
}

void synth_window(const synth_model *m, uint64_t index, float *out)
{
    memset(out, 0, (size_t)m->channels * m->samples * sizeof *out);
    stream r;
    /* a part at zero amplitude is skipped; the streams are independent */
    if (m->background > 0) {
        r = stream_for(m->seed, index, PART_BACKGROUND);
        add_background(m, &r, out);
    }
    if (m->alpha > 0) {
        r = stream_for(m->seed, index, PART_ALPHA);
        add_alpha(m, &r, out);
    }
    if (m->spike_amp > 0) {
        r = stream_for(m->seed, index, PART_SPIKES);
        add_spikes(m, &r, out);
    }
    if (m->blink_amp > 0) {
        r = stream_for(m->seed, index, PART_BLINKS);
        add_blinks(m, &r, out);
    }
    if (m->line > 0) {
        r = stream_for(m->seed, index, PART_LINE);
        add_line(m, &r, out);
    }
}
