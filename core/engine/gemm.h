/* Private GEMM entry point of the engine (implemented in blas.c on BLIS's
 * typed API with explicit strides, so transposed operands need no copies).
 *
 * Row-major: C (M, N) = alpha · op(A) · op(B) + beta · C, where op(A) is
 * (M, K) — A stored (M, K) with row stride lda, or (K, M) when trans_a —
 * and op(B) is (K, N) — B stored (K, N) with row stride ldb, or (N, K) when
 * trans_b.  threads: 1 inside an OpenMP region (small per-batch GEMMs);
 * 0 lets the engine decide (split only when the GEMM is large enough to
 * gain from it). */
#ifndef MSPT_GEMM_H
#define MSPT_GEMM_H

#include <stddef.h>

void mspt_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc, int threads);
/* Threads mspt_gemm(..., threads = 0) would use for an (M, N, K) GEMM:
 * 1 when it is too small to gain from a split (ops use this to decide
 * whether to parallelise over a batch instead). */
int mspt_gemm_threads(int M, int N, int K);

/* Scratch of the calling thread for a GEMM's own use, grown once and
 * reused; a buffer per user, so one never overwrites another's. */
enum gemm_scratch { GEMM_SCRATCH_KCUT, GEMM_SCRATCH_THIN, GEMM_SCRATCH_SLOTS };
float *mspt_gemm_scratch(int slot, size_t floats);

/* The thin-GEMM kernels (thin_gemm.c): computes the product and returns 1
 * when one side is short enough for them and the CPU has AVX-512, else
 * returns 0 and leaves C alone.  Same arguments as mspt_gemm. */
int mspt_thin_gemm(int trans_a, int trans_b, int M, int N, int K,
                   float alpha, const float *A, int lda, const float *B,
                   int ldb, float beta, float *C, int ldc, int threads);
/* y (R, O) = x (R, I) · wᵀ + b (b per output, or NULL), w stored (O, I):
 * the bias starts the accumulators, so y is written once.  Returns 0,
 * touching nothing, when the kernels are off or the shape is not theirs
 * (I or O at most 64). */
int mspt_thin_linear_forward(int R, int I, int O, const float *x,
                             const float *w, const float *b, float *y);
/* gw (O, I) += gyᵀ · x and, if gb, gb (O) += Σ_r gy[r, :], in one pass
 * over gy (R, O) and x (R, I), for a short O (≤ 64, ≤ I).  Returns 0, touching
 * nothing, otherwise. */
int mspt_thin_weight_grad(int R, int I, int O, const float *gy,
                          const float *x, float *gw, float *gb);
/* A linear layer's backward with a short input (I ≤ 32) and a long output
 * (O ≥ 256), in one pass over gy (R, O):
 *     gx (R, I) += gy · w   (w stored (O, I); gx may be NULL),
 *     gw (O, I) += gyᵀ · x  (x (R, I) with rows ldx apart),
 *     gb (O) += Σ_r gy[r, :] (gb may be NULL).
 * Returns 0, touching nothing, when the kernels are off or the shape is
 * not theirs.  The weight gradients sum the threads' shares of rows in
 * thread order: the same bits for the same thread count. */
int mspt_thin_linear_backward(int R, int I, int O, const float *gy,
                              const float *w, const float *x, int ldx,
                              float *gx, float *gw, float *gb);
/* Turn the thin kernels on (if the CPU has them) or off; returns whether
 * they were on.  For benchmarks and tests that compare against BLIS. */
int mspt_thin_gemm_enable(int on);
/* What the thin kernels are doing, for `mspt --version`. */
const char *mspt_thin_gemm_state(void);

#endif
