/* xoshiro256** seeded by splitmix64: small, fast, and its whole state fits
 * in four words that a checkpoint can store. */
#include <mspt/tensor.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mspt_rng {
    uint64_t s[MSPT_RNG_STATE_WORDS];
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

mspt_rng *mspt_rng_new(uint64_t seed)
{
    mspt_rng *r = malloc(sizeof *r);
    if (r)
        mspt_rng_seed(r, seed);
    return r;
}

void mspt_rng_free(mspt_rng *rng) { free(rng); }

void mspt_rng_seed(mspt_rng *rng, uint64_t seed)
{
    for (int i = 0; i < MSPT_RNG_STATE_WORDS; i++)
        rng->s[i] = splitmix64(&seed);
}

uint64_t mspt_rng_u64(mspt_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double mspt_rng_uniform(mspt_rng *rng)
{
    return (double)(mspt_rng_u64(rng) >> 11) * 0x1.0p-53;
}

double mspt_rng_normal(mspt_rng *rng)
{
    /* Box-Muller; the second value is dropped so the state stays the only
     * thing to save. */
    double u1 = 1.0 - mspt_rng_uniform(rng); /* (0, 1] */
    double u2 = mspt_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void mspt_rng_get_state(const mspt_rng *rng, uint64_t s[MSPT_RNG_STATE_WORDS])
{
    memcpy(s, rng->s, sizeof rng->s);
}

void mspt_rng_set_state(mspt_rng *rng, const uint64_t s[MSPT_RNG_STATE_WORDS])
{
    memcpy(rng->s, s, sizeof rng->s);
}
