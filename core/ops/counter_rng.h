/* Private helper of the ops that drop elements (attention dropout): a
 * counter-based stream, so that any element's draw can be recomputed alone
 * (forward in parallel blocks, backward regenerating the forward's mask, the
 * result independent of the thread count).  Element i of the stream started
 * at seed is half (i & 1) of the SplitMix64 output for counter i/2, the same
 * stream core/ops/dropout.c draws. */
#ifndef MSPT_COUNTER_RNG_H
#define MSPT_COUNTER_RNG_H

#include <stdint.h>

/* SplitMix64 output for counter k of the stream started at seed. */
static inline uint64_t crng_splitmix_at(uint64_t seed, uint64_t k)
{
    uint64_t z = seed + (k + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Element idx's 32-bit uniform: half (idx & 1) of the hash of idx/2. */
static inline uint32_t crng_uniform32(uint64_t seed, uint64_t idx)
{
    return (uint32_t)(crng_splitmix_at(seed, idx >> 1) >> (32 * (idx & 1)));
}

/* out[c] = in[c]·scale where element idx0 + c is kept (its 32-bit uniform is
 * below thresh = (1 − p)·2³²), 0 where dropped, for c in [0, n); out may be
 * in.  One hash per element (a pair's two share it): branch-free, so the
 * loop vectorises. */
static inline void crng_keep(float *out, const float *in, int n, uint64_t seed,
                             uint64_t idx0, uint64_t thresh, float scale)
{
#pragma omp simd
    for (int c = 0; c < n; c++) {
        /* both sides < 2³³: a signed compare, which AVX2 has */
        int64_t u = crng_uniform32(seed, idx0 + (uint64_t)c);
        out[c] = in[c] * scale * (float)(u < (int64_t)thresh);
    }
}

#endif
