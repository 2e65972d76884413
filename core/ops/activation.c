/* Pointwise activations: gelu (erf form), silu, softplus (beta 1,
 * threshold 20), exp.  All shapes are x (n) -> y (n), any dims.
 *
 * gelu, silu and softplus run on tensors of millions of elements in every
 * step, where a libm call per element (erff ~10 ns) costs more than the
 * GEMMs around it.  So they use the small branch-free float helpers below,
 * which the compiler vectorises (`omp simd`): the selects are on integer
 * bit patterns, because GCC will not if-convert a float compare under its
 * default -ftrapping-math.  erf is the Abramowitz–Stegun 7.1.26 formula
 * with the constants of PyTorch's vectorised CPU kernel (|error| < 1.5e-7),
 * so gelu follows PyTorch's CPU results; exp is Cephes' expf polynomial
 * (relative error ~1e-7).  mspt_exp itself keeps libm's expf (full range). */
#include <mspt/ops.h>

#include <math.h>
#include <string.h>

#include "ops/fused_simd.h" /* the kernels also built for AVX2 and AVX-512 */

/* Kernels below run on a range of n elements (one thread's block). */
typedef void (*unary_kernel)(float *y, const float *x, size_t n);
/* gx (n) += dy/dx · gy (n), or = with acc 0; x is the op's input, y its
 * output.  gx may be gy itself (acc 0: the gradient computed in place). */
typedef void (*unary_grad_kernel)(float *gx, const float *x, const float *y,
                                  const float *gy, size_t n, int acc);

typedef struct {
    mspt_tensor *x, *y;
    unary_grad_kernel grad;
} unary_saved;

/* ---- vectorisable float helpers ---------------------------------------- */

static inline uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* e^(−|a|): e^(−m) = 2^(−k)·e^r with k = round(m/ln2), r = k·ln2 − m in
 * [−ln2/2, ln2/2] (ln2 split in two for an exact product), e^r by Cephes'
 * polynomial.  |a| > 87 (and NaN) gives 0, below the normal range. */
static inline float exp_negabs(float a)
{
    const uint32_t lim = 0x42ae0000u; /* 87.0f */
    uint32_t ua = bits_of(a) & 0x7fffffffu;
    int tiny = ua > lim;
    float m = float_of(tiny ? lim : ua);
    float k = (m * 1.44269504f + 12582912.0f) - 12582912.0f; /* rounds */
    float r = k * 0.693359375f - m;
    r = r + k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t scale = tiny ? 0u : (uint32_t)(127 - (int32_t)k) << 23;
    return p * float_of(scale);
}

/* erf(z) = sign(z)·(1 − t·P(t)·e^(−z²)), t = 1/(1 + 0.3275911|z|) */
static inline float erf_as(float z)
{
    float a = fabsf(z);
    float t = 1.0f / (0.3275911f * a + 1.0f);
    float r = 1.061405429f;
    r = r * t - 1.453152027f;
    r = r * t + 1.421413741f;
    r = r * t - 0.284496736f;
    r = r * t + 0.254829592f;
    return copysignf(1.0f - r * t * exp_negabs(a * a), z);
}

/* σ(x) = 1/(1 + e^(−x)) from e = e^(−|x|): 1/(1 + e) for x ≥ 0, e/(1 + e)
 * for x < 0, so nothing overflows. */
static inline float sigmoid(float x)
{
    float e = exp_negabs(x);
    float num = float_of(bits_of(x) >> 31 ? bits_of(e) : bits_of(1.0f));
    return num / (1.0f + e);
}

/* log(1 + e) for e in [0, 1] as 2·atanh(s), s = e/(2 + e) in [0, 1/3]:
 * the odd series to s¹⁵ is exact to float precision, and small e keeps
 * full relative accuracy (no 1 + e rounding). */
static inline float log1p_unit(float e)
{
    float s = e / (2.0f + e), s2 = s * s;
    float p = 1.0f / 15;
    p = p * s2 + 1.0f / 13;
    p = p * s2 + 1.0f / 11;
    p = p * s2 + 1.0f / 9;
    p = p * s2 + 1.0f / 7;
    p = p * s2 + 1.0f / 5;
    p = p * s2 + 1.0f / 3;
    p = p * s2 + 1.0f;
    return 2.0f * s * p;
}

/* ---- gelu: y = x·Φ(x) = ½x(1 + erf(x/√2)) ---------------------------- */

static MSPT_SIMD_CLONES MSPT_NO_CONTRACT void
gelu_forward(float *restrict y, const float *restrict x, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        y[i] = 0.5f * x[i] * (1.0f + erf_as(x[i] * (float)M_SQRT1_2));
}

/* dy/dx = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π) */
static inline float gelu_d(float x)
{
    const float inv_sqrt_2pi = (float)(0.5 * M_2_SQRTPI * M_SQRT1_2);
    float cdf = 0.5f * (1.0f + erf_as(x * (float)M_SQRT1_2));
    float pdf = exp_negabs(0.5f * x * x) * inv_sqrt_2pi;
    return cdf + x * pdf;
}

static MSPT_SIMD_CLONES MSPT_NO_CONTRACT void
gelu_backward(float *gx, const float *x, const float *y, const float *gy,
              size_t n, int acc)
{
    (void)y;
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        gx[i] = (acc ? gx[i] : 0.0f) + gy[i] * gelu_d(x[i]);
}

/* ---- silu: y = x·σ(x) ------------------------------------------------- */

static MSPT_SIMD_CLONES MSPT_NO_CONTRACT void
silu_forward(float *restrict y, const float *restrict x, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * sigmoid(x[i]);
}

/* dy/dx = σ(x)·(1 + x·(1 − σ(x))) */
static inline float silu_d(float x)
{
    float s = sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}

static MSPT_SIMD_CLONES MSPT_NO_CONTRACT void
silu_backward(float *gx, const float *x, const float *y, const float *gy,
              size_t n, int acc)
{
    (void)y;
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        gx[i] = (acc ? gx[i] : 0.0f) + gy[i] * silu_d(x[i]);
}

/* ---- softplus: y = log(1 + eˣ), or x where x > 20 ---------------------- */

/* Written as max(x, 0) + log(1 + e^(−|x|)), which cannot overflow.  For
 * x > 20 the second term (< 2.1e-9) is below half an ulp of x, so the sum
 * is exactly x: PyTorch's linear branch needs no branch here. */
static MSPT_SIMD_CLONES MSPT_NO_CONTRACT void
softplus_forward(float *restrict y, const float *restrict x, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float pos = float_of(bits_of(x[i]) >> 31 ? 0u : bits_of(x[i]));
        y[i] = pos + log1p_unit(exp_negabs(x[i]));
    }
}

/* dy/dx = σ(x), which is exactly 1.0f for x > 20 (the linear branch) */
static MSPT_SIMD_CLONES MSPT_NO_CONTRACT void
softplus_backward(float *gx, const float *x, const float *y, const float *gy,
                  size_t n, int acc)
{
    (void)y;
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        gx[i] = (acc ? gx[i] : 0.0f) + gy[i] * sigmoid(x[i]);
}

/* ---- exp: y = eˣ -------------------------------------------------------- */

static void exp_forward(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = expf(x[i]);
}

/* dy/dx = y */
static void exp_backward(float *gx, const float *x, const float *y,
                         const float *gy, size_t n, int acc)
{
    (void)x;
    for (size_t i = 0; i < n; i++)
        gx[i] = (acc ? gx[i] : 0.0f) + gy[i] * y[i];
}

/* ---- shared op wrapper -------------------------------------------------- */

/* One call of a kernel over y, x, gy, gx (n), cut in blocks per thread. */
typedef struct {
    float *y, *gx;
    const float *x, *gy;
    size_t n;
    int acc;
    unary_kernel fwd;
    unary_grad_kernel grad;
} unary_args;

static void unary_fwd_block(void *arg, int t, int nt)
{
    unary_args *a = arg;
    size_t i0, i1;
    mspt_block(a->n, t, nt, &i0, &i1);
    a->fwd(a->y + i0, a->x + i0, i1 - i0);
}

static void unary_grad_block(void *arg, int t, int nt)
{
    unary_args *a = arg;
    size_t i0, i1;
    mspt_block(a->n, t, nt, &i0, &i1);
    a->grad(a->gx + i0, a->x + i0, a->y + i0, a->gy + i0, i1 - i0, a->acc);
}

static void unary_backward(mspt_ctx *ctx, void *saved)
{
    unary_saved *s = saved;
    mspt_tensor *x = s->x, *y = s->y;
    if (!y->grad)
        return; /* output unused by the loss */
    /* y's gradient is dead once this op is done (every consumer of y came
     * later on the tape and has run): when x has no gradient buffer yet,
     * x takes y's and the gradient is computed in place — one buffer of a
     * chain like dwconv → silu or linear → gelu instead of two.  Not for
     * views (their gradient is their base's) nor for what has a buffer
     * (parameters, tensors with several consumers). */
    int in_place = !x->grad && !x->base && !y->base && x->requires_grad;
    float *gx = in_place ? (x->grad = y->grad) : mspt_grad(ctx, x);
    if (!gx)
        return;
    unary_args a = {.y = y->data, .gx = gx, .x = x->data, .gy = y->grad,
                    .n = x->numel, .acc = !in_place, .grad = s->grad};
    mspt_parallel(a.n, unary_grad_block, &a);
}

static mspt_tensor *unary(mspt_ctx *ctx, mspt_tensor *x, unary_kernel fwd,
                          unary_grad_kernel grad)
{
    if (!x)
        return NULL;
    mspt_tensor *y = mspt_op_output(ctx, x->ndim, x->shape,
                                    mspt_needs_grad(ctx, x));
    if (!y)
        return NULL;
    unary_args a = {.y = y->data, .x = x->data, .n = x->numel, .fwd = fwd};
    mspt_parallel(a.n, unary_fwd_block, &a);
    if (y->requires_grad) {
        unary_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = (unary_saved){x, y, grad};
        mspt_tape_push(ctx, unary_backward, s);
    }
    return y;
}

mspt_tensor *mspt_gelu(mspt_ctx *ctx, mspt_tensor *x)
{
    return unary(ctx, x, gelu_forward, gelu_backward);
}

mspt_tensor *mspt_silu(mspt_ctx *ctx, mspt_tensor *x)
{
    return unary(ctx, x, silu_forward, silu_backward);
}

mspt_tensor *mspt_softplus(mspt_ctx *ctx, mspt_tensor *x)
{
    return unary(ctx, x, softplus_forward, softplus_backward);
}

mspt_tensor *mspt_exp(mspt_ctx *ctx, mspt_tensor *x)
{
    return unary(ctx, x, exp_forward, exp_backward);
}
