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

/* out[c] = in[c]·scale where element idx0 + c is kept (its 32-bit uniform is
 * below thresh = (1 − p)·2³²), 0 where dropped, for c in [0, n); out may be
 * in. */
static inline void crng_keep(float *out, const float *in, int n, uint64_t seed,
                             uint64_t idx0, uint64_t thresh, float scale)
{
    uint64_t h = crng_splitmix_at(seed, idx0 >> 1);
    for (int c = 0; c < n; c++) {
        uint64_t idx = idx0 + (uint64_t)c;
        if (c && !(idx & 1))
            h = crng_splitmix_at(seed, idx >> 1);
        uint64_t u = idx & 1 ? h >> 32 : h & 0xffffffffULL;
        out[c] = u < thresh ? in[c] * scale : 0.0f;
    }
}

#endif
