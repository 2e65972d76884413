/* Mamba selective scan, channels last (the op that dominates FEMBA).
 *
 * Work unit: one batch row b and a tile of SCAN_V channels, whose states
 * h (N, SCAN_V) stay in L1 while t runs; lanes are channels, so every inner
 * loop is SCAN_V wide with no horizontal sums in the forward.  (B, L, D, N)
 * is never stored: the forward keeps h at the start of every SCAN_CHUNK-th
 * step (memory B·D·N·L/SCAN_CHUNK), the backward rebuilds h and exp(dt·A)
 * of one chunk from its checkpoint, then runs the reverse-time recurrence
 * through it.  Each forward step is thus computed twice, never more. */
/* Let GCC fuse a·b + c into FMA in the AVX2/AVX-512 clones (-std=c11 turns
 * contraction off): the exp polynomial and the recurrences run ~1.4× faster.
 * Rounding is fixed at compile time, so runs stay bit-identical. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#endif
#include <mspt/ops.h>

#include <string.h>

#include "fused_simd.h"

#define SCAN_V 16     /* channels per tile: one AVX-512 register */
#define SCAN_CHUNK 16 /* steps per checkpoint */

typedef struct {
    mspt_tensor *u, *dt, *A, *Bm, *Cm, *Dskip, *z, *y;
    float *ckpt; /* (B, ntile, nchunk − 1, N, SCAN_V): h entering chunk c ≥ 1 */
} scan_saved;

/* One (b, tile): pointers already at [b, 0, d0] (rows of stride D) and at
 * Bm, Cm [b, 0, 0] (rows of stride N). */
typedef struct {
    const float *u, *dt, *z, *Bm, *Cm;
    const float *at;  /* (N, SCAN_V): A[d0 + v, n], zero padded */
    const float *dsk; /* (SCAN_V): Dskip[d0 + v] or 0 */
    int L, N, D, nv;  /* nv ≤ SCAN_V channels are real, the rest padding */
} scan_tile;

static inline void load_row(float *dst, const float *src, int nv)
{
    if (nv == SCAN_V) {
        memcpy(dst, src, SCAN_V * sizeof *dst);
        return;
    }
    for (int v = 0; v < SCAN_V; v++)
        dst[v] = v < nv ? src[v] : 0.0f;
}

static inline void add_row(float *dst, const float *src, int nv)
{
    if (nv == SCAN_V) {
#pragma omp simd
        for (int v = 0; v < SCAN_V; v++)
            dst[v] += src[v];
        return;
    }
    for (int v = 0; v < nv; v++)
        dst[v] += src[v];
}

/* Forward of one (b, tile):
 * u, dt, z (L, D), Bm, Cm (L, N), at (N, V) -> y (L, D);
 * h (N, V) scratch; ckpt (nchunk − 1, N, V) or NULL.
 * h[n,v] = exp(dt[v]·at[n,v])·h[n,v] + dt[v]·u[v]·Bm[n]
 * y[v]   = (Dskip[v]·u[v] + Σ_n Cm[n]·h[n,v]) · silu(z[v]) */
static MSPT_SIMD_CLONES void scan_fwd_tile(const scan_tile *a, float *y,
                                           float *h, float *ckpt)
{
    const int L = a->L, N = a->N, D = a->D, nv = a->nv;
    const size_t NV = (size_t)N * SCAN_V;
    float dtv[SCAN_V], uv[SCAN_V], du[SCAN_V], yv[SCAN_V], zv[SCAN_V];
    memset(h, 0, NV * sizeof *h);
    for (int t = 0; t < L; t++) {
        load_row(dtv, a->dt + (size_t)t * D, nv);
        load_row(uv, a->u + (size_t)t * D, nv);
#pragma omp simd
        for (int v = 0; v < SCAN_V; v++) {
            du[v] = dtv[v] * uv[v];
            yv[v] = a->dsk[v] * uv[v];
        }
        const float *bt = a->Bm + (size_t)t * N, *ct = a->Cm + (size_t)t * N;
        for (int n = 0; n < N; n++) {
            float *hn = h + (size_t)n * SCAN_V;
            const float *an = a->at + (size_t)n * SCAN_V;
            const float bn = bt[n], cn = ct[n];
#pragma omp simd
            for (int v = 0; v < SCAN_V; v++) {
                float hv = simd_expf(dtv[v] * an[v]) * hn[v] + du[v] * bn;
                hn[v] = hv;
                yv[v] += cn * hv;
            }
        }
        if (a->z) {
            load_row(zv, a->z + (size_t)t * D, nv);
#pragma omp simd
            for (int v = 0; v < SCAN_V; v++)
                yv[v] *= zv[v] / (1.0f + simd_expf(-zv[v]));
        }
        memcpy(y + (size_t)t * D, yv, (size_t)nv * sizeof *y);
        if (ckpt && (t + 1) % SCAN_CHUNK == 0 && t + 1 < L)
            memcpy(ckpt + ((t + 1) / SCAN_CHUNK - 1) * NV, h, NV * sizeof *h);
    }
}

/* Backward of one (b, tile), gy (L, D) given.  Accumulates (+=) into
 * gu, gdt, gz (L, D) (each may be NULL), the tile's gA (N, V) and gD (V),
 * and the per-lane partials gB, gC (L, N, V) of the sums over channels
 * (summed over lanes later: a horizontal sum per (t, n) here would cost
 * as much as the rest of the step).
 * Scratch: hs (SCAN_CHUNK + 1, N, V), das (SCAN_CHUNK, N, V), g (N, V).
 * With g = ∂loss/∂h_t (through y_t and h_{t+1}), gs = ∂loss/∂(pre-gate y_t):
 *   g      = g_next·exp(dt_{t+1}·A) + gs·Cm_t        (carried in g)
 *   w      = g·exp(dt·A)·h_{t−1}
 *   gdt   += Σ_n w·A + g·Bm·u;  gA += w·dt;  gu += Σ_n g·dt·Bm + gs·Dskip
 *   gB[n,v] += g·dt·u;          gC[n,v] += gs·h_t */
static MSPT_SIMD_CLONES void
scan_bwd_tile(const scan_tile *a, const float *ckpt, const float *gy,
              float *gu, float *gdt, float *gz, float *gA, float *gD,
              float *gB, float *gC, float *hs, float *das, float *g)
{
    const int L = a->L, N = a->N, D = a->D, nv = a->nv;
    const size_t NV = (size_t)N * SCAN_V;
    float dtv[SCAN_V], uv[SCAN_V], du[SCAN_V], gyv[SCAN_V], zv[SCAN_V];
    float gs[SCAN_V], guv[SCAN_V], gdtv[SCAN_V], sv[SCAN_V];
    memset(g, 0, NV * sizeof *g);
    int nchunk = (L + SCAN_CHUNK - 1) / SCAN_CHUNK;
    for (int c = nchunk - 1; c >= 0; c--) {
        int t0 = c * SCAN_CHUNK, t1 = t0 + SCAN_CHUNK < L ? t0 + SCAN_CHUNK : L;
        if (c == 0)
            memset(hs, 0, NV * sizeof *hs);
        else
            memcpy(hs, ckpt + (size_t)(c - 1) * NV, NV * sizeof *hs);
        /* rebuild the chunk: hs[j + 1] = h_{t0 + j}, das[j] = exp(dt·A) */
        for (int t = t0; t < t1; t++) {
            load_row(dtv, a->dt + (size_t)t * D, nv);
            load_row(uv, a->u + (size_t)t * D, nv);
            const float *hp = hs + (size_t)(t - t0) * NV;
            float *hn = hs + (size_t)(t - t0 + 1) * NV;
            float *da = das + (size_t)(t - t0) * NV;
            const float *bt = a->Bm + (size_t)t * N;
            for (int n = 0; n < N; n++) {
                const float *an = a->at + (size_t)n * SCAN_V;
                const float bn = bt[n];
                size_t o = (size_t)n * SCAN_V;
#pragma omp simd
                for (int v = 0; v < SCAN_V; v++) {
                    float e = simd_expf(dtv[v] * an[v]);
                    da[o + v] = e;
                    hn[o + v] = e * hp[o + v] + dtv[v] * uv[v] * bn;
                }
            }
        }
        for (int t = t1 - 1; t >= t0; t--) {
            load_row(dtv, a->dt + (size_t)t * D, nv);
            load_row(uv, a->u + (size_t)t * D, nv);
            load_row(gyv, gy + (size_t)t * D, nv);
            const float *hc = hs + (size_t)(t - t0 + 1) * NV;
            const float *hp = hs + (size_t)(t - t0) * NV;
            const float *da = das + (size_t)(t - t0) * NV;
            const float *bt = a->Bm + (size_t)t * N, *ct = a->Cm + (size_t)t * N;
#pragma omp simd
            for (int v = 0; v < SCAN_V; v++)
                du[v] = dtv[v] * uv[v];
            if (a->z) {
                /* the pre-gate output s, summed in the forward's order */
#pragma omp simd
                for (int v = 0; v < SCAN_V; v++)
                    sv[v] = a->dsk[v] * uv[v];
                for (int n = 0; n < N; n++)
#pragma omp simd
                    for (int v = 0; v < SCAN_V; v++)
                        sv[v] += ct[n] * hc[(size_t)n * SCAN_V + v];
                load_row(zv, a->z + (size_t)t * D, nv);
                float gzv[SCAN_V];
#pragma omp simd
                for (int v = 0; v < SCAN_V; v++) {
                    float sig = 1.0f / (1.0f + simd_expf(-zv[v]));
                    gs[v] = gyv[v] * zv[v] * sig;
                    gzv[v] = gyv[v] * sv[v] * sig * (1.0f + zv[v] * (1.0f - sig));
                }
                if (gz)
                    add_row(gz + (size_t)t * D, gzv, nv);
            } else {
                memcpy(gs, gyv, sizeof gs);
            }
#pragma omp simd
            for (int v = 0; v < SCAN_V; v++) {
                gD[v] += gs[v] * uv[v];
                guv[v] = gs[v] * a->dsk[v];
                gdtv[v] = 0.0f;
            }
            for (int n = 0; n < N; n++) {
                const float bn = bt[n], cn = ct[n];
                const float *an = a->at + (size_t)n * SCAN_V;
                size_t o = (size_t)n * SCAN_V;
                float *pb = gB + (size_t)t * NV + o, *pc = gC + (size_t)t * NV + o;
#pragma omp simd
                for (int v = 0; v < SCAN_V; v++) {
                    float gn = g[o + v] + gs[v] * cn, gb = gn * bn;
                    float w = gn * da[o + v] * hp[o + v];
                    gdtv[v] += w * an[v] + gb * uv[v];
                    gA[o + v] += w * dtv[v];
                    guv[v] += gb * dtv[v];
                    pb[v] += gn * du[v];
                    pc[v] += gs[v] * hc[o + v];
                    g[o + v] = gn * da[o + v];
                }
            }
            if (gu)
                add_row(gu + (size_t)t * D, guv, nv);
            if (gdt)
                add_row(gdt + (size_t)t * D, gdtv, nv);
        }
    }
}

/* The tile's A transposed to (N, V) and Dskip, zero padded past nv. */
static void tile_params(float *at, float *dsk, const float *A,
                        const float *Dskip, int d0, int nv, int N)
{
    for (int n = 0; n < N; n++)
        for (int v = 0; v < SCAN_V; v++)
            at[(size_t)n * SCAN_V + v] = v < nv ? A[(size_t)(d0 + v) * N + n] : 0.0f;
    for (int v = 0; v < SCAN_V; v++)
        dsk[v] = v < nv && Dskip ? Dskip[d0 + v] : 0.0f;
}

static scan_tile tile_args(const scan_saved *s, int b, int d0, const float *at,
                           const float *dsk)
{
    int L = s->u->shape[1], D = s->u->shape[2], N = s->A->shape[1];
    size_t row = (size_t)b * L * D + d0;
    scan_tile a = {
        s->u->data + row, s->dt->data + row, s->z ? s->z->data + row : NULL,
        s->Bm->data + (size_t)b * L * N, s->Cm->data + (size_t)b * L * N,
        at, dsk, L, N, D, D - d0 < SCAN_V ? D - d0 : SCAN_V,
    };
    return a;
}

/* Work measure of the tile loops: split whenever there are two jobs (each
 * is a whole scan over L), as the op always did. */
static size_t jobs_work(int jobs)
{
    return jobs > 1 ? MSPT_PAR_MIN : 0;
}

/* What the forward and backward blocks share. */
typedef struct {
    const scan_saved *s;
    float *scr;          /* per block: `per` floats */
    size_t per;
    int B, L, D, N, ntile, nchunk;
    float *gy, *gu, *gdt, *gz, *gA, *gDs, *gBm, *gCm; /* backward */
    int nt;              /* backward: blocks used, set by block 0 */
} scan_args;

/* Forward jobs (b, tile) of block t, h (N, V) and the tile's parameters in
 * the block's scratch. */
static void scan_fwd_block(void *arg, int t, int nt)
{
    const scan_args *a = arg;
    const scan_saved *s = a->s;
    int L = a->L, D = a->D, N = a->N, ntile = a->ntile;
    size_t NV = (size_t)N * SCAN_V, j0, j1;
    float *h = a->scr + (size_t)t * a->per;
    float *at = h + NV, *dsk = at + NV;
    mspt_block((size_t)a->B * ntile, t, nt, &j0, &j1);
    for (size_t job = j0; job < j1; job++) {
        int b = (int)job / ntile, tile = (int)job % ntile, d0 = tile * SCAN_V;
        tile_params(at, dsk, s->A->data, s->Dskip ? s->Dskip->data : NULL, d0,
                    D - d0 < SCAN_V ? D - d0 : SCAN_V, N);
        scan_tile tl = tile_args(s, b, d0, at, dsk);
        scan_fwd_tile(&tl, s->y->data + (size_t)b * L * D + d0, h,
                      s->ckpt ? s->ckpt + job * (a->nchunk - 1) * NV : NULL);
    }
}

/* Backward of block t's tiles, for every b.  Its scratch: hs, das, g, at,
 * gA, dsk, gD; the per-lane sums over its tiles for one b, lB and lC
 * (L, N, V); their lane sums pB, pC (B, L, N), zeroed by the caller. */
static void scan_bwd_block(void *arg, int t, int nt)
{
    scan_args *a = arg;
    const scan_saved *s = a->s;
    int B = a->B, L = a->L, D = a->D, N = a->N, nchunk = a->nchunk;
    size_t NV = (size_t)N * SCAN_V, LNV = (size_t)L * NV, LN = (size_t)L * N;
    size_t BLN = (size_t)B * LN, k0, k1;
    float *hs = a->scr + (size_t)t * a->per;
    float *das = hs + (SCAN_CHUNK + 1) * NV, *g = das + SCAN_CHUNK * NV;
    float *at = g + NV, *tgA = at + NV, *dsk = tgA + NV, *tgD = dsk + SCAN_V;
    float *lB = tgD + SCAN_V, *lC = lB + LNV, *pB = lC + LNV, *pC = pB + BLN;
    float *gA = a->gA, *gDs = a->gDs;
    if (t == 0)
        a->nt = nt;
    /* a block has the same tiles for every b, so gA and gDskip of a channel
     * sum over b in one thread, in order */
    mspt_block((size_t)a->ntile, t, nt, &k0, &k1);
    for (int b = 0; b < B; b++) {
        memset(lB, 0, 2 * LNV * sizeof *lB);
        for (int tile = (int)k0; tile < (int)k1; tile++) {
            int d0 = tile * SCAN_V, nv = D - d0 < SCAN_V ? D - d0 : SCAN_V;
            tile_params(at, dsk, s->A->data, s->Dskip ? s->Dskip->data : NULL,
                        d0, nv, N);
            memset(tgA, 0, NV * sizeof *tgA);
            memset(tgD, 0, SCAN_V * sizeof *tgD);
            scan_tile tl = tile_args(s, b, d0, at, dsk);
            size_t row = (size_t)b * L * D + d0;
            const float *ck = s->ckpt ? s->ckpt + ((size_t)b * a->ntile + tile) *
                                                      (nchunk - 1) * NV
                                      : NULL;
            scan_bwd_tile(&tl, ck, a->gy + row, a->gu ? a->gu + row : NULL,
                          a->gdt ? a->gdt + row : NULL,
                          a->gz ? a->gz + row : NULL, tgA, tgD, lB, lC, hs,
                          das, g);
            for (int v = 0; v < nv; v++) {
                for (int n = 0; gA && n < N; n++)
                    gA[(size_t)(d0 + v) * N + n] += tgA[(size_t)n * SCAN_V + v];
                if (gDs)
                    gDs[d0 + v] += tgD[v];
            }
        }
        for (size_t i = 0; i < LN; i++)
            for (int v = 0; v < SCAN_V; v++) {
                pB[(size_t)b * LN + i] += lB[i * SCAN_V + v];
                pC[(size_t)b * LN + i] += lC[i * SCAN_V + v];
            }
    }
}

/* gBm, gCm (B, L, N) += Σ over blocks, in block order, of their pB, pC;
 * elements of block t. */
static void scan_combine_block(void *arg, int t, int nt)
{
    const scan_args *a = arg;
    size_t BLN = (size_t)a->B * a->L * a->N, i0, i1;
    mspt_block(BLN, t, nt, &i0, &i1);
    for (size_t i = i0; i < i1; i++) {
        float sb = 0.0f, sc = 0.0f;
        for (int th = 0; th < a->nt; th++) {
            const float *pB = a->scr + (size_t)th * a->per + a->per - 2 * BLN;
            sb += pB[i];
            sc += pB[BLN + i];
        }
        if (a->gBm)
            a->gBm[i] += sb;
        if (a->gCm)
            a->gCm[i] += sc;
    }
}

static void scan_backward_fn(mspt_ctx *ctx, void *p)
{
    scan_saved *s = p;
    scan_args a = {.s = s, .B = s->u->shape[0], .L = s->u->shape[1],
                   .D = s->u->shape[2], .N = s->A->shape[1], .nt = 1};
    a.ntile = (a.D + SCAN_V - 1) / SCAN_V;
    a.nchunk = (a.L + SCAN_CHUNK - 1) / SCAN_CHUNK;
    size_t NV = (size_t)a.N * SCAN_V, LNV = (size_t)a.L * NV;
    size_t BLN = (size_t)a.B * a.L * a.N;
    a.gy = mspt_grad(ctx, s->y);
    a.gu = mspt_grad(ctx, s->u);
    a.gdt = mspt_grad(ctx, s->dt);
    a.gz = s->z ? mspt_grad(ctx, s->z) : NULL;
    a.gA = mspt_grad(ctx, s->A);
    a.gDs = s->Dskip ? mspt_grad(ctx, s->Dskip) : NULL;
    a.gBm = mspt_grad(ctx, s->Bm);
    a.gCm = mspt_grad(ctx, s->Cm);
    /* per block: see scan_bwd_block */
    int nth = mspt_get_threads();
    a.per = (2 * SCAN_CHUNK + 4) * NV + 2 * SCAN_V + 2 * LNV + 2 * BLN;
    a.scr = mspt_ctx_alloc(ctx, (size_t)nth * a.per * sizeof(float));
    if (!a.gy || !a.scr)
        return;
    memset(a.scr, 0, (size_t)nth * a.per * sizeof(float));
    mspt_parallel(jobs_work(a.ntile), scan_bwd_block, &a);
    /* combine the per-block sums over channels in block order */
    if (a.gBm || a.gCm)
        mspt_parallel(BLN * (size_t)a.nt, scan_combine_block, &a);
}

static int same_shape_as(const mspt_tensor *t, int d0, int d1, int d2)
{
    return t->ndim == 3 && t->shape[0] == d0 && t->shape[1] == d1 &&
           t->shape[2] == d2;
}

mspt_tensor *mspt_selective_scan(mspt_ctx *ctx, mspt_tensor *u,
                                 mspt_tensor *dt, mspt_tensor *A,
                                 mspt_tensor *Bm, mspt_tensor *Cm,
                                 mspt_tensor *Dskip, mspt_tensor *z)
{
    if (!u || !dt || !A || !Bm || !Cm)
        return NULL;
    char s1[64], s2[64];
    if (u->ndim != 3)
        return mspt_fail(ctx, "selective_scan: u %s must be (B,L,D)",
                         mspt_shape_str(u, s1, sizeof s1));
    int B = u->shape[0], L = u->shape[1], D = u->shape[2];
#define SCAN_CHECK(cond, t, what)                                               \
    if (!(cond))                                                                \
        return mspt_fail(ctx, "selective_scan: u %s does not match " what " %s", \
                         mspt_shape_str(u, s1, sizeof s1),                      \
                         mspt_shape_str(t, s2, sizeof s2))
    SCAN_CHECK(same_shape_as(dt, B, L, D), dt, "dt");
    SCAN_CHECK(A->ndim == 2 && A->shape[0] == D, A, "A (D,N)");
    int N = A->shape[1];
    SCAN_CHECK(same_shape_as(Bm, B, L, N), Bm, "Bm (B,L,N)");
    SCAN_CHECK(same_shape_as(Cm, B, L, N), Cm, "Cm (B,L,N)");
    SCAN_CHECK(!Dskip || (Dskip->ndim == 1 && Dskip->shape[0] == D), Dskip,
               "Dskip (D)");
    SCAN_CHECK(!z || same_shape_as(z, B, L, D), z, "z");
#undef SCAN_CHECK

    int needs = mspt_needs_grad(ctx, u) || mspt_needs_grad(ctx, dt) ||
                mspt_needs_grad(ctx, A) || mspt_needs_grad(ctx, Bm) ||
                mspt_needs_grad(ctx, Cm) || mspt_needs_grad(ctx, Dskip) ||
                mspt_needs_grad(ctx, z);
    mspt_tensor *y = mspt_op_output(ctx, 3, u->shape, needs);
    int ntile = (D + SCAN_V - 1) / SCAN_V;
    int nchunk = (L + SCAN_CHUNK - 1) / SCAN_CHUNK;
    size_t NV = (size_t)N * SCAN_V;
    size_t nckpt = (size_t)B * ntile * (nchunk > 1 ? nchunk - 1 : 0) * NV;
    size_t per = 2 * NV + SCAN_V; /* per block: h, at, dsk */
    float *scr = mspt_ctx_alloc(ctx, (size_t)mspt_get_threads() * per *
                                         sizeof(float));
    float *ckpt = needs && nckpt ? mspt_ctx_alloc(ctx, nckpt * sizeof(float)) : NULL;
    if (!y || !scr || (needs && nckpt && !ckpt))
        return NULL;
    scan_saved sv = {u, dt, A, Bm, Cm, Dskip, z, y, ckpt};
    scan_args a = {.s = &sv, .scr = scr, .per = per, .B = B, .L = L, .D = D,
                   .N = N, .ntile = ntile, .nchunk = nchunk};
    mspt_parallel(jobs_work(B * ntile), scan_fwd_block, &a);

    if (y->requires_grad) {
        scan_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
        if (!s)
            return NULL;
        *s = sv;
        mspt_tape_push(ctx, scan_backward_fn, s);
    }
    return y;
}
