/* Private helpers of the fused ops (scan, attention): an exp that GCC can
 * vectorise, and per-CPU clones of the hot kernels.
 *
 * The library is built for baseline x86-64 (SSE2); the scan and the softmax
 * are bound by exp, which then runs 4 lanes wide.  target_clones compiles a
 * kernel also for AVX2 and AVX-512 and picks one at load time (ifunc), so
 * one binary runs everywhere and uses 16 lanes where the CPU has them. */
#ifndef MSPT_FUSED_SIMD_H
#define MSPT_FUSED_SIMD_H

#include <string.h>

/* -DMSPT_SIMD_CLONES= at configure time builds the baseline only (to test
 * it on a machine that would pick a clone). */
#ifndef MSPT_SIMD_CLONES
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__linux__)
#define MSPT_SIMD_CLONES \
    __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MSPT_SIMD_CLONES
#endif
#endif

/* No a·b + c fused into an FMA in this function (the build contracts,
 * see Makefile.am): for elementwise kernels, whose result for an element
 * must not depend on whether the vector loop or its scalar remainder
 * computes it — that is, on where the thread blocks fall. */
#if defined(__GNUC__) && !defined(__clang__)
#define MSPT_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define MSPT_NO_CONTRACT
#endif

/* m ? a : b for m = 0 or −1, on the bits.  A float ternary is a branch
 * under -ftrapping-math (GCC's default) and stops the loop vectorising. */
static inline float simd_select(int m, float a, float b)
{
    int ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    int r = (ia & m) | (ib & ~m);
    float f;
    memcpy(&f, &r, sizeof f);
    return f;
}

/* exp(x) in float, relative error < 1e-7 (Cephes expf polynomial on
 * x − n·ln2, |x − n·ln2| ≤ ln2/2, times 2^n built in the exponent bits).
 * Returns exactly 0 below −87.7 (2^−127 has zero bits), saturates at e^88
 * above 88, and keeps NaN.  No libm call, no branch: vectorises. */
static inline float simd_expf(float x)
{
    x = simd_select(-(x < -88.0f), -88.0f, x);
    x = simd_select(-(x > 88.0f), 88.0f, x);
    /* n = round(x / ln2) by the 1.5·2^23 trick (round to nearest even) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;  /* ln2 split in two for exactness */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    unsigned bits = (unsigned)((int)n + 127) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

#endif
