/* Matrix products: c = op(a)·op(b), single (matmul) and batched (bmm).
 * op is a transpose when trans_* is set; transposes are strides handed to
 * the GEMM, never copies.  A batch of small GEMMs runs one GEMM per thread
 * (single-threaded GEMMs, deterministic); large ones split inside BLIS. */
#include <mspt/ops.h>

#include <stdio.h>

#include "engine/gemm.h"

typedef struct {
    mspt_tensor *a, *b, *c;
    int Bt, M, N, K, ta, tb;
} matmul_saved;

/* Batch item i:  c_i (M, N) = op(a_i)·op(b_i);  a_i (M, K) or (K, M),
 * b_i (K, N) or (N, K).  gt: GEMM threads (1 inside the batch loop). */
static void matmul_one(const matmul_saved *s, int i, int gt)
{
    int M = s->M, N = s->N, K = s->K, ta = s->ta, tb = s->tb;
    mspt_gemm(ta, tb, M, N, K, 1.0f, s->a->data + (size_t)i * M * K,
              ta ? M : K, s->b->data + (size_t)i * K * N, tb ? K : N, 0.0f,
              s->c->data + (size_t)i * M * N, N, gt);
}

/* Work measure for mspt_parallel over the batch: split it when there are
 * two items or more and each GEMM is too small to be split itself (BLIS
 * would run it on one thread); else 0, and the GEMMs split instead. */
static size_t batch_work(const matmul_saved *s)
{
    if (s->Bt == 1 || mspt_gemm_threads(s->M, s->N, s->K) > 1)
        return 0;
    return MSPT_PAR_MIN;
}

/* Items of block t; single-threaded GEMMs when blocks run in parallel,
 * engine-chosen threads when there is one block. */
static void matmul_block(void *arg, int t, int nt)
{
    const matmul_saved *s = arg;
    size_t i0, i1;
    mspt_block((size_t)s->Bt, t, nt, &i0, &i1);
    for (size_t i = i0; i < i1; i++)
        matmul_one(s, (int)i, nt > 1 ? 1 : 0);
}

/* Batch item i of gc (Bt, M, N) -> ga_i += gc_i·op(b_i)ᵀ, gb_i += op(a_i)ᵀ·gc_i
 * (each stored as its input is):
 *   a (M, K):  ga += gc·op(b)ᵀ          a (K, M):  ga += op(b)·gcᵀ
 *   b (K, N):  gb += op(a)ᵀ·gc          b (N, K):  gb += gcᵀ·op(a) */
static void matmul_backward_one(const matmul_saved *s, float *ga, float *gb,
                                int i, int gt)
{
    int M = s->M, N = s->N, K = s->K, ta = s->ta, tb = s->tb;
    int lda = ta ? M : K, ldb = tb ? K : N;
    size_t sa = (size_t)M * K, sb = (size_t)K * N;
    const float *ai = s->a->data + i * sa, *bi = s->b->data + i * sb;
    const float *gci = s->c->grad + (size_t)i * M * N;
    if (ga && !ta)
        mspt_gemm(0, !tb, M, K, N, 1.0f, gci, N, bi, ldb, 1.0f, ga + i * sa, K,
                  gt);
    else if (ga)
        mspt_gemm(tb, 1, K, M, N, 1.0f, bi, ldb, gci, N, 1.0f, ga + i * sa, M,
                  gt);
    if (gb && !tb)
        mspt_gemm(!ta, 0, K, N, M, 1.0f, ai, lda, gci, N, 1.0f, gb + i * sb, N,
                  gt);
    else if (gb)
        mspt_gemm(1, ta, N, K, M, 1.0f, gci, N, ai, lda, 1.0f, gb + i * sb, K,
                  gt);
}

typedef struct {
    const matmul_saved *s;
    float *ga, *gb;
} matmul_grad_args;

static void matmul_backward_block(void *arg, int t, int nt)
{
    const matmul_grad_args *a = arg;
    size_t i0, i1;
    mspt_block((size_t)a->s->Bt, t, nt, &i0, &i1);
    for (size_t i = i0; i < i1; i++)
        matmul_backward_one(a->s, a->ga, a->gb, (int)i, nt > 1 ? 1 : 0);
}

static void matmul_backward(mspt_ctx *ctx, void *p)
{
    matmul_saved *s = p;
    matmul_grad_args a = {s, mspt_grad(ctx, s->a), mspt_grad(ctx, s->b)};
    mspt_parallel(batch_work(s), matmul_backward_block, &a);
}

/* Shared by matmul (batch dims 0) and bmm (batch dims 1). */
static mspt_tensor *product(mspt_ctx *ctx, const char *op, mspt_tensor *a,
                            mspt_tensor *b, int ta, int tb, int batched)
{
    if (!a || !b)
        return NULL;
    char s1[64], s2[64];
    int nd = 2 + batched;
    if (a->ndim != nd || b->ndim != nd ||
        (batched && a->shape[0] != b->shape[0]))
        return mspt_fail(ctx, "%s: a %s and b %s must be %s", op,
                         mspt_shape_str(a, s1, sizeof s1),
                         mspt_shape_str(b, s2, sizeof s2),
                         batched ? "3-D with equal batch" : "2-D");
    const int *as = a->shape + batched, *bs = b->shape + batched;
    int M = ta ? as[1] : as[0], K = ta ? as[0] : as[1];
    int Kb = tb ? bs[1] : bs[0], N = tb ? bs[0] : bs[1];
    if (K != Kb)
        return mspt_fail(ctx, "%s: inner dims of a %s%s and b %s%s differ", op,
                         mspt_shape_str(a, s1, sizeof s1), ta ? "ᵀ" : "",
                         mspt_shape_str(b, s2, sizeof s2), tb ? "ᵀ" : "");
    int Bt = batched ? a->shape[0] : 1;
    int shape[3] = {Bt, M, N};
    int needs = mspt_needs_grad(ctx, a) || mspt_needs_grad(ctx, b);
    mspt_tensor *c = mspt_op_output(ctx, nd, shape + 1 - batched, needs);
    if (!c)
        return NULL;
    matmul_saved *s = mspt_ctx_alloc(ctx, sizeof *s);
    if (!s)
        return NULL;
    *s = (matmul_saved){a, b, c, Bt, M, N, K, !!ta, !!tb};
    mspt_parallel(batch_work(s), matmul_block, s);
    if (c->requires_grad)
        mspt_tape_push(ctx, matmul_backward, s);
    return c;
}

mspt_tensor *mspt_matmul(mspt_ctx *ctx, mspt_tensor *a, mspt_tensor *b,
                         int trans_a, int trans_b)
{
    return product(ctx, "matmul", a, b, trans_a, trans_b, 0);
}

mspt_tensor *mspt_bmm(mspt_ctx *ctx, mspt_tensor *a, mspt_tensor *b,
                      int trans_a, int trans_b)
{
    return product(ctx, "bmm", a, b, trans_a, trans_b, 1);
}
