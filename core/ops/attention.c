/* Scaled-dot-product attention, non-causal, memory linear in N
 * (FlashAttention-2 scheme on CPU).
 *
 * Forward: for each (b·h, block of ≤ ATT_BR queries), walk the keys in blocks
 * of ≤ ATT_BC with an online softmax (running row max m and sum l, rescaling
 * the output block when m grows); keep only O and lse = m + log l.
 * Backward: recompute each score block from q, k and lse, P = exp(S − lse),
 * then with D_i = Σ_c dO[i,c]·O[i,c]:
 *   dV += Pᵀ dO;  dP = dO Vᵀ;  dS = P ∘ (dP − D);  dQ += s·dS K;  dK += s·dSᵀ Q.
 * The backward is parallel over b·h (one thread owns all of one head's
 * dQ, dK, dV, so no atomics and no scheduling-dependent sums).
 *
 * Dropout on the probabilities (torch's scaled_dot_product_attention
 * dropout_p, training mode only): Pd = P ∘ M/(1 − p), O = Pd V, with
 * M ~ Bernoulli(1 − p) per (b·h, i, j) from a counter-based stream
 * (counter_rng.h) whose seed is the only thing saved: the forward zeroes
 * dropped exp(S − m) before the V product (the row sums l keep them, as
 * softmax precedes dropout), the backward regenerates M per block.  Then
 *   dV += Pdᵀ dO;  dPd = dO Vᵀ;  dS = Pd ∘ dPd − P ∘ D
 * since P ∘ dP = P ∘ M/(1 − p) ∘ dPd = Pd ∘ dPd, and D_i = Σ_j P_ij dP_ij
 * = Σ_j Pd_ij dPd_ij = dO_i · O_i still. */
/* Let GCC fuse a·b + c into FMA in the AVX2/AVX-512 clones of the softmax
 * (-std=c11 turns contraction off); rounding is fixed at compile time. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif
#include <mspt/ops.h>

#include <math.h>
#include <string.h>

#include "counter_rng.h"
#include "engine/gemm.h"
#include "fused_simd.h"

#define ATT_BR 256 /* at most this many query rows per block */
#define ATT_BC 256 /* at most this many keys per block */

/* Block length for n rows in blocks of at most max: equal blocks (704 →
 * 235, 235, 234) balance the threads and avoid 1-row slivers, which are
 * slow GEMMs (and BLIS's haswell kernels read past a 1-row A). */
static int block_len(int n, int max)
{
    int nblk = (n + max - 1) / max;
    return nblk ? (n + nblk - 1) / nblk : 1;
}

/* Dropout of the probabilities: on when p > 0 in training mode. */
typedef struct {
    int on;
    uint64_t seed, thresh; /* keep when the uniform < thresh = (1 − p)·2³² */
    float inv_keep;        /* 1/(1 − p) */
} attn_drop;

typedef struct {
    mspt_tensor *q, *k, *v, *o;
    float *lse; /* (B, H, N) */
    float scale;
    attn_drop drop;
} attn_saved;

/* S (m, ATT_BC) holds scores of nc keys; turns them into exp(S − m_new) in
 * place and updates the running max mrow and sum lrow (m); the output block
 * O (m, hd) is rescaled by exp(m_old − m_new) to match. */
static MSPT_SIMD_CLONES void online_softmax(float *S, int m, int nc,
                                            float *mrow, float *lrow,
                                            float *O, int hd)
{
    for (int r = 0; r < m; r++) {
        float *row = S + (size_t)r * ATT_BC;
        float mx = mrow[r];
#pragma omp simd reduction(max : mx)
        for (int c = 0; c < nc; c++)
            mx = row[c] > mx ? row[c] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int c = 0; c < nc; c++) {
            row[c] = simd_expf(row[c] - mx);
            sum += row[c];
        }
        float alpha = expf(mrow[r] - mx); /* 0 on the first block (−inf) */
        lrow[r] = lrow[r] * alpha + sum;
        mrow[r] = mx;
        float *orow = O + (size_t)r * hd;
#pragma omp simd
        for (int c = 0; c < hd; c++)
            orow[c] *= alpha;
    }
}

/* Rows of a score block, m × nc at S (row stride ATT_BC): out = in·scale
 * where kept, 0 where dropped; row r, key c is element idx0 + r·N + c of the
 * stream (idx0 = (b·h·N + i0)·N + j0). */
static MSPT_SIMD_CLONES void drop_block(float *out, const float *in, int m,
                                        int nc, int N, const attn_drop *d,
                                        uint64_t idx0, float scale)
{
    for (int r = 0; r < m; r++)
        crng_keep(out + (size_t)r * ATT_BC, in + (size_t)r * ATT_BC, nc,
                  d->seed, idx0 + (uint64_t)r * (uint64_t)N, d->thresh, scale);
}

/* One block of m queries against all N keys of a head:
 * Q (m, hd), K, V (N, hd) -> O (m, hd), lse (m).  Scratch S (ATT_BR, ATT_BC),
 * mrow, lrow (ATT_BR).  row0 = b·h·N + i0 places the block in the dropout
 * stream. */
static void attn_fwd_block(const float *Q, const float *K, const float *V,
                           float *O, float *lse, int m, int N, int hd,
                           float scale, float *S, float *mrow, float *lrow,
                           const attn_drop *drop, uint64_t row0)
{
    for (int r = 0; r < m; r++) {
        mrow[r] = -INFINITY;
        lrow[r] = 0.0f;
    }
    memset(O, 0, (size_t)m * hd * sizeof *O);
    int bc = block_len(N, ATT_BC);
    for (int j0 = 0; j0 < N; j0 += bc) {
        int nc = N - j0 < bc ? N - j0 : bc;
        mspt_gemm(0, 1, m, nc, hd, scale, Q, hd, K + (size_t)j0 * hd, hd,
                  0.0f, S, ATT_BC, 1);
        online_softmax(S, m, nc, mrow, lrow, O, hd);
        if (drop->on)
            drop_block(S, S, m, nc, N, drop, row0 * (uint64_t)N + (uint64_t)j0, 1.0f);
        mspt_gemm(0, 0, m, hd, nc, 1.0f, S, ATT_BC, V + (size_t)j0 * hd, hd,
                  1.0f, O, hd, 1);
    }
    for (int r = 0; r < m; r++) {
        float inv = 1.0f / lrow[r];
        if (drop->on)
            inv *= drop->inv_keep;
#pragma omp simd
        for (int c = 0; c < hd; c++)
            O[(size_t)r * hd + c] *= inv;
        lse[r] = mrow[r] + logf(lrow[r]);
    }
}

/* S (m, ATT_BC): scores -> P = exp(S − lse_row);
 * dP (m, ATT_BC): dO Vᵀ -> dS = P ∘ (dP − Drow). */
static MSPT_SIMD_CLONES void probs(float *S, int m, int nc, const float *lse)
{
    for (int r = 0; r < m; r++) {
        float *row = S + (size_t)r * ATT_BC;
        const float l = lse[r];
#pragma omp simd
        for (int c = 0; c < nc; c++)
            row[c] = simd_expf(row[c] - l);
    }
}

static MSPT_SIMD_CLONES void dscores(float *dP, const float *P, int m,
                                     int nc, const float *Drow)
{
    for (int r = 0; r < m; r++) {
        float *dp = dP + (size_t)r * ATT_BC;
        const float *p = P + (size_t)r * ATT_BC;
#pragma omp simd
        for (int c = 0; c < nc; c++)
            dp[c] = p[c] * (dp[c] - Drow[r]);
    }
}

/* With dropout, dPd (m, ATT_BC) -> dS = Pd ∘ dPd − P ∘ Drow. */
static MSPT_SIMD_CLONES void dscores_drop(float *dP, const float *P,
                                          const float *Pd, int m, int nc,
                                          const float *Drow)
{
    for (int r = 0; r < m; r++) {
        float *dp = dP + (size_t)r * ATT_BC;
        const float *p = P + (size_t)r * ATT_BC, *pd = Pd + (size_t)r * ATT_BC;
        const float d = Drow[r];
#pragma omp simd
        for (int c = 0; c < nc; c++)
            dp[c] = pd[c] * dp[c] - p[c] * d;
    }
}

/* Backward of one head: Q, K, V, O, dO (N, hd), lse (N) -> dQ, dK, dV
 * (N, hd) += (each may be NULL).  Scratch S, dP (ATT_BR, ATT_BC), Drow (N),
 * and with dropout Pd (ATT_BR, ATT_BC); bh places the head in the stream. */
static void attn_bwd_head(const float *Q, const float *K, const float *V,
                          const float *O, const float *dO, const float *lse,
                          float *dQ, float *dK, float *dV, int N, int hd,
                          float scale, float *S, float *dP, float *Drow,
                          float *Pd, const attn_drop *drop, uint64_t bh)
{
    for (int i = 0; i < N; i++) {
        float d = 0.0f;
#pragma omp simd reduction(+ : d)
        for (int c = 0; c < hd; c++)
            d += dO[(size_t)i * hd + c] * O[(size_t)i * hd + c];
        Drow[i] = d;
    }
    int bc = block_len(N, ATT_BC), br = block_len(N, ATT_BR);
    for (int j0 = 0; j0 < N; j0 += bc) {
        int nc = N - j0 < bc ? N - j0 : bc;
        const float *Kj = K + (size_t)j0 * hd, *Vj = V + (size_t)j0 * hd;
        for (int i0 = 0; i0 < N; i0 += br) {
            int m = N - i0 < br ? N - i0 : br;
            const float *Qi = Q + (size_t)i0 * hd, *dOi = dO + (size_t)i0 * hd;
            mspt_gemm(0, 1, m, nc, hd, scale, Qi, hd, Kj, hd, 0.0f, S, ATT_BC, 1);
            probs(S, m, nc, lse + i0);
            const float *Pv = S; /* the probabilities V saw */
            if (drop->on) {
                drop_block(Pd, S, m, nc, N, drop,
                           (bh * (uint64_t)N + (uint64_t)i0) * (uint64_t)N + (uint64_t)j0,
                           drop->inv_keep);
                Pv = Pd;
            }
            if (dV)
                mspt_gemm(1, 0, nc, hd, m, 1.0f, Pv, ATT_BC, dOi, hd, 1.0f,
                          dV + (size_t)j0 * hd, hd, 1);
            if (!dQ && !dK)
                continue;
            mspt_gemm(0, 1, m, nc, hd, 1.0f, dOi, hd, Vj, hd, 0.0f, dP, ATT_BC, 1);
            if (drop->on)
                dscores_drop(dP, S, Pd, m, nc, Drow + i0);
            else
                dscores(dP, S, m, nc, Drow + i0);
            if (dQ)
                mspt_gemm(0, 0, m, hd, nc, scale, dP, ATT_BC, Kj, hd, 1.0f,
                          dQ + (size_t)i0 * hd, hd, 1);
            if (dK)
                mspt_gemm(1, 0, nc, hd, m, scale, dP, ATT_BC, Qi, hd, 1.0f,
                          dK + (size_t)j0 * hd, hd, 1);
        }
    }
}

/* What the forward and backward blocks share. */
typedef struct {
    const attn_saved *s;
    float *scr;         /* per block: `per` floats */
    size_t per;
    int BH, N, hd, br, nqb;
    float *dO, *dq, *dk, *dv; /* backward */
} attn_args;

/* Work measure: split whenever there are two jobs (each at least a block of
 * queries against all keys), as the op always did. */
static size_t jobs_work(int jobs)
{
    return jobs > 1 ? MSPT_PAR_MIN : 0;
}

/* Forward jobs (b·h, query block) of block t. */
static void attn_fwd_jobs(void *arg, int t, int nt)
{
    const attn_args *a = arg;
    const attn_saved *s = a->s;
    int N = a->N, hd = a->hd, br = a->br, nqb = a->nqb;
    size_t head = (size_t)N * hd, j0, j1;
    float *S = a->scr + (size_t)t * a->per;
    mspt_block((size_t)a->BH * nqb, t, nt, &j0, &j1);
    for (size_t job = j0; job < j1; job++) {
        int bh = (int)job / nqb, i0 = (int)job % nqb * br;
        int m = N - i0 < br ? N - i0 : br;
        size_t o0 = (size_t)bh * head, oi = o0 + (size_t)i0 * hd;
        attn_fwd_block(s->q->data + oi, s->k->data + o0, s->v->data + o0,
                       s->o->data + oi, s->lse + (size_t)bh * N + i0, m, N,
                       hd, s->scale, S, S + ATT_BR * ATT_BC,
                       S + ATT_BR * ATT_BC + ATT_BR, &s->drop,
                       (uint64_t)bh * (uint64_t)N + (uint64_t)i0);
    }
}

/* Backward of the heads of block t. */
static void attn_bwd_heads(void *arg, int t, int nt)
{
    const attn_args *a = arg;
    const attn_saved *s = a->s;
    int N = a->N, hd = a->hd;
    size_t head = (size_t)N * hd, h0, h1;
    float *S = a->scr + (size_t)t * a->per;
    mspt_block((size_t)a->BH, t, nt, &h0, &h1);
    for (size_t bh = h0; bh < h1; bh++) {
        size_t o = bh * head;
        attn_bwd_head(s->q->data + o, s->k->data + o, s->v->data + o,
                      s->o->data + o, a->dO + o, s->lse + bh * N,
                      a->dq ? a->dq + o : NULL, a->dk ? a->dk + o : NULL,
                      a->dv ? a->dv + o : NULL, N, hd, s->scale, S,
                      S + ATT_BR * ATT_BC,
                      S + (s->drop.on ? 3 : 2) * ATT_BR * ATT_BC,
                      S + 2 * ATT_BR * ATT_BC, &s->drop, bh);
    }
}

static void attn_backward_fn(mspt_ctx *ctx, void *p)
{
    attn_saved *s = p;
    attn_args a = {.s = s, .BH = s->q->shape[0] * s->q->shape[1],
                   .N = s->q->shape[2], .hd = s->q->shape[3]};
    a.dO = mspt_grad(ctx, s->o);
    a.dq = mspt_grad(ctx, s->q);
    a.dk = mspt_grad(ctx, s->k);
    a.dv = mspt_grad(ctx, s->v);
    /* S, dP, Pd (with dropout), Drow */
    a.per = (s->drop.on ? 3 : 2) * ATT_BR * ATT_BC + (size_t)a.N;
    a.scr = mspt_ctx_alloc(ctx, (size_t)mspt_get_threads() * a.per *
                                    sizeof(float));
    if (!a.dO || !a.scr)
        return;
    mspt_parallel(jobs_work(a.BH), attn_bwd_heads, &a);
}

mspt_tensor *mspt_attention_dropout(mspt_ctx *ctx, mspt_tensor *q,
                                    mspt_tensor *k, mspt_tensor *v,
                                    float scale, float p)
{
    if (!q || !k || !v)
        return NULL;
    char s1[64], s2[64];
    if (q->ndim != 4)
        return mspt_fail(ctx, "attention: q %s must be (B,H,N,hd)",
                         mspt_shape_str(q, s1, sizeof s1));
    if (!mspt_tensor_same_shape(q, k))
        return mspt_fail(ctx, "attention: q %s does not match k %s",
                         mspt_shape_str(q, s1, sizeof s1),
                         mspt_shape_str(k, s2, sizeof s2));
    if (!mspt_tensor_same_shape(q, v))
        return mspt_fail(ctx, "attention: q %s does not match v %s",
                         mspt_shape_str(q, s1, sizeof s1),
                         mspt_shape_str(v, s2, sizeof s2));
    if (!(p >= 0.0f && p < 1.0f))
        return mspt_fail(ctx, "attention: dropout p = %g is outside [0, 1)",
                         (double)p);
    attn_drop drop = {0};
    if (p > 0.0f && mspt_ctx_training(ctx)) {
        mspt_rng *rng = mspt_ctx_rng(ctx);
        if (!rng)
            return mspt_fail(ctx, "attention: dropout p = %g in training mode "
                                  "needs a random generator on the context "
                                  "(mspt_ctx_set_rng)", (double)p);
        drop.on = 1;
        drop.seed = mspt_rng_u64(rng);
        drop.thresh = (uint64_t)ldexp(1.0 - (double)p, 32);
        drop.inv_keep = (float)(1.0 / (1.0 - (double)p));
    }
    int BH = q->shape[0] * q->shape[1], N = q->shape[2], hd = q->shape[3];
    int needs = mspt_needs_grad(ctx, q) || mspt_needs_grad(ctx, k) ||
                mspt_needs_grad(ctx, v);
    mspt_tensor *o = mspt_op_output(ctx, 4, q->shape, needs);
    size_t per = ATT_BR * ATT_BC + 2 * ATT_BR; /* per block: S, mrow, lrow */
    float *scr = mspt_ctx_alloc(ctx, (size_t)mspt_get_threads() * per *
                                         sizeof(float));
    float *lse = mspt_ctx_alloc(ctx, ((size_t)BH * N + 1) * sizeof(float));
    if (!o || !scr || !lse)
        return NULL;
    attn_saved sv = {q, k, v, o, lse, scale, drop};
    attn_args a = {.s = &sv, .scr = scr, .per = per, .BH = BH, .N = N,
                   .hd = hd, .br = block_len(N, ATT_BR)};
    a.nqb = (N + a.br - 1) / a.br;
    mspt_parallel(jobs_work(BH * a.nqb), attn_fwd_jobs, &a);
    if (o->requires_grad) {
        attn_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = sv;
        mspt_tape_push(ctx, attn_backward_fn, s);
    }
    return o;
}

mspt_tensor *mspt_attention(mspt_ctx *ctx, mspt_tensor *q, mspt_tensor *k,
                            mspt_tensor *v, float scale)
{
    return mspt_attention_dropout(ctx, q, k, v, scale, 0.0f);
}
