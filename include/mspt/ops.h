/* mspt — differentiable ops.
 *
 * Every op takes the context first, returns a new arena tensor (or NULL after
 * recording an error in the context, see tensor.h), and records its backward
 * on the tape when grad mode is on and an input requires a gradient.
 * Shapes below use PyTorch's conventions and names. */
#ifndef MSPT_OPS_H
#define MSPT_OPS_H

#include <mspt/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- GEMM-based ------------------------------------------------------- */

/* y (..., out) = x (..., in) · wᵀ + b;  w (out, in), b (out) or NULL. */
mspt_tensor *mspt_linear(mspt_ctx *ctx, mspt_tensor *x, mspt_tensor *w,
                         mspt_tensor *b);
/* c (M, N) = op(a) · op(b), op = transpose when trans_* is set:
 * a (M, K) or (K, M), b (K, N) or (N, K). */
mspt_tensor *mspt_matmul(mspt_ctx *ctx, mspt_tensor *a, mspt_tensor *b,
                         int trans_a, int trans_b);
/* Batched: a (Bt, M, K), b (Bt, K, N) (or transposed) -> (Bt, M, N). */
mspt_tensor *mspt_bmm(mspt_ctx *ctx, mspt_tensor *a, mspt_tensor *b,
                      int trans_a, int trans_b);
/* x (B, Cin, H, W), w (Cout, Cin, kh, kw), b (Cout) or NULL
 * -> (B, Cout, (H + 2ph − kh)/sh + 1, (W + 2pw − kw)/sw + 1). */
mspt_tensor *mspt_conv2d(mspt_ctx *ctx, mspt_tensor *x, mspt_tensor *w,
                         mspt_tensor *b, int sh, int sw, int ph, int pw);
/* x (B, Cin, H, W), w (Cin, Cout, kh, kw), b (Cout) or NULL
 * -> (B, Cout, (H − 1)·sh − 2ph + kh, (W − 1)·sw − 2pw + kw). */
mspt_tensor *mspt_conv_transpose2d(mspt_ctx *ctx, mspt_tensor *x,
                                   mspt_tensor *w, mspt_tensor *b, int sh,
                                   int sw, int ph, int pw);

/* ---- elementwise and broadcast --------------------------------------- */

/* a ⊕ b where b has a's shape or a trailing suffix of it (bias, positional
 * embedding: b (L, D) or (1, L, D) against a (B, L, D)). Leading 1s of b are
 * ignored. */
mspt_tensor *mspt_add(mspt_ctx *ctx, mspt_tensor *a, mspt_tensor *b);
mspt_tensor *mspt_sub(mspt_ctx *ctx, mspt_tensor *a, mspt_tensor *b);
mspt_tensor *mspt_mul(mspt_ctx *ctx, mspt_tensor *a, mspt_tensor *b);
/* s·a */
mspt_tensor *mspt_scale(mspt_ctx *ctx, mspt_tensor *a, float s);
/* a + s */
mspt_tensor *mspt_add_scalar(mspt_ctx *ctx, mspt_tensor *a, float s);
mspt_tensor *mspt_gelu(mspt_ctx *ctx, mspt_tensor *x);     /* erf form */
mspt_tensor *mspt_silu(mspt_ctx *ctx, mspt_tensor *x);
mspt_tensor *mspt_softplus(mspt_ctx *ctx, mspt_tensor *x); /* beta 1, thr 20 */
mspt_tensor *mspt_exp(mspt_ctx *ctx, mspt_tensor *x);
/* Inverted dropout with probability p, drawn from the context's rng;
 * identity when the context is not in training mode or p == 0. */
mspt_tensor *mspt_dropout(mspt_ctx *ctx, mspt_tensor *x, float p);
/* Stochastic depth: each sample b of x (B, ...) kept with probability 1 − p
 * (then scaled by 1/(1 − p)) or zeroed; identity when not training. */
mspt_tensor *mspt_drop_path(mspt_ctx *ctx, mspt_tensor *x, float p);
/* LayerNorm over the last dim D: w (D), b (D) (either may be NULL). */
mspt_tensor *mspt_layernorm(mspt_ctx *ctx, mspt_tensor *x, mspt_tensor *w,
                            mspt_tensor *b, float eps);

/* ---- shape ------------------------------------------------------------ */

/* View with a new shape of equal numel; one dim may be -1. */
mspt_tensor *mspt_reshape(mspt_ctx *ctx, mspt_tensor *x, int ndim,
                          const int *shape);
/* out.shape[i] = x.shape[perm[i]] (copy). */
mspt_tensor *mspt_permute(mspt_ctx *ctx, mspt_tensor *x, const int *perm);
mspt_tensor *mspt_transpose(mspt_ctx *ctx, mspt_tensor *x, int d0, int d1);
/* Reverse the order along dim. */
mspt_tensor *mspt_flip(mspt_ctx *ctx, mspt_tensor *x, int dim);
/* x[..., start:start+len, ...] along dim (copy). */
mspt_tensor *mspt_slice(mspt_ctx *ctx, mspt_tensor *x, int dim, int start,
                        int len);
/* Split along dim into n pieces of the given sizes; fills out[0..n). */
int mspt_split(mspt_ctx *ctx, mspt_tensor *x, int dim, int n,
               const int *sizes, mspt_tensor **out);
/* Concatenate n tensors along dim. */
mspt_tensor *mspt_concat(mspt_ctx *ctx, int n, mspt_tensor **xs, int dim);

/* ---- reductions --------------------------------------------------------- */

mspt_tensor *mspt_sum(mspt_ctx *ctx, mspt_tensor *x);  /* -> shape (1) */
mspt_tensor *mspt_mean(mspt_ctx *ctx, mspt_tensor *x); /* -> shape (1) */
/* Mean over one dim, which is removed. */
mspt_tensor *mspt_mean_dim(mspt_ctx *ctx, mspt_tensor *x, int dim);

/* ---- masks (uint8, one byte per element of x; nonzero = selected) ------ */

/* 1-D tensor of the selected elements, in row-major order. */
mspt_tensor *mspt_masked_select(mspt_ctx *ctx, mspt_tensor *x,
                                const uint8_t *mask);
/* x with selected elements set to value. */
mspt_tensor *mspt_masked_fill(mspt_ctx *ctx, mspt_tensor *x,
                              const uint8_t *mask, float value);
/* x (..., D) with each row r whose row_mask[r] is set replaced by v (D):
 * a transformer's learned mask token. */
mspt_tensor *mspt_replace_rows(mspt_ctx *ctx, mspt_tensor *x,
                               const uint8_t *row_mask, mspt_tensor *v);

/* ---- fused ------------------------------------------------------------ */

/* Depthwise causal conv over time, channels last:
 * x (B, L, D), w (D, 1, K) (PyTorch Conv1d groups=D weight), b (D) or NULL;
 * y[b,t,d] = b[d] + Σ_k w[d,0,k] · x[b, t − (K−1) + k, d] (zero before 0),
 * i.e. Conv1d(padding K−1) keeping the first L outputs. */
mspt_tensor *mspt_dwconv1d_causal(mspt_ctx *ctx, mspt_tensor *x,
                                  mspt_tensor *w, mspt_tensor *b);
/* Non-causal scaled-dot-product attention, q k v (B, H, N, hd) ->
 * (B, H, N, hd), softmax(q kᵀ · scale) v.  Memory linear in N: backward
 * recomputes scores from q, k and the saved log-sum-exp. */
mspt_tensor *mspt_attention(mspt_ctx *ctx, mspt_tensor *q, mspt_tensor *k,
                            mspt_tensor *v, float scale);
/* mspt_attention with dropout p in [0, 1) on the attention probabilities
 * (torch's scaled_dot_product_attention dropout_p): softmax(q kᵀ · scale)
 * ∘ M/(1 − p) · v, M ~ Bernoulli(1 − p) per (b, h, i, j), drawn in training
 * mode only from a seed taken from the context's rng; the mask is
 * regenerated in backward, never stored.  p == 0 or eval mode: exactly
 * mspt_attention, no draw. */
mspt_tensor *mspt_attention_dropout(mspt_ctx *ctx, mspt_tensor *q,
                                    mspt_tensor *k, mspt_tensor *v,
                                    float scale, float p);
/* Rotary embedding on x (B, H, N, hd), hd even, by token index n:
 * pairs (2i, 2i+1) rotated by angle n · base^(−2i/hd). */
mspt_tensor *mspt_rotary(mspt_ctx *ctx, mspt_tensor *x, float base);
/* Mamba selective scan, channels last, all per batch b and time t:
 *   u, dt, z (B, L, D); A (D, N); Bm, Cm (B, L, N); Dskip (D) or NULL;
 *   h_t[d,n] = exp(dt_t[d]·A[d,n])·h_{t−1}[d,n] + dt_t[d]·Bm_t[n]·u_t[d]
 *   y_t[d]   = (Σ_n Cm_t[n]·h_t[d,n] + Dskip[d]·u_t[d]) · silu(z_t[d])
 * (z may be NULL: no gating).  Never materialises (B, L, D, N). */
mspt_tensor *mspt_selective_scan(mspt_ctx *ctx, mspt_tensor *u,
                                 mspt_tensor *dt, mspt_tensor *A,
                                 mspt_tensor *Bm, mspt_tensor *Cm,
                                 mspt_tensor *Dskip, mspt_tensor *z);

/* ---- losses (PyTorch mean reduction over selected elements) ---------- */

/* mask NULL: every element; otherwise mean over elements whose mask is set.
 * An empty selection gives 0 (and zero gradients), not NaN. -> shape (1) */
mspt_tensor *mspt_l1_loss(mspt_ctx *ctx, mspt_tensor *pred,
                          mspt_tensor *target, const uint8_t *mask);
mspt_tensor *mspt_mse_loss(mspt_ctx *ctx, mspt_tensor *pred,
                           mspt_tensor *target, const uint8_t *mask);
mspt_tensor *mspt_smooth_l1_loss(mspt_ctx *ctx, mspt_tensor *pred,
                                 mspt_tensor *target, const uint8_t *mask,
                                 float beta);

#ifdef __cplusplus
}
#endif
#endif
