/* A steady-state training step makes no heap allocation.
 *
 * This program defines malloc, calloc, realloc, free, aligned_alloc,
 * posix_memalign and memalign itself; they count calls while `counting` is
 * set and forward to glibc's __libc_* entry points.  Symbol interposition
 * sends every allocation of the process here: libmspt's, BLIS's, libgomp's,
 * the optimizer plugin's.  (Only this test binary carries the hooks; other
 * tests are unaffected.)
 *
 * The step is a small FEMBA/Transformer-shaped model built from the ops in
 * the tree: patch conv2d, bidirectional Mamba-like block, attention block,
 * bmm/matmul, conv2d + conv_transpose2d decoder, masked MSE loss, plus a
 * wide branch (gelu and mean over a parameter of more than MSPT_PAR_MIN
 * elements, so elementwise ops and reductions take their multi-thread
 * path), backward (mspt_backward_with), one AdamW step through the
 * optimizers plugin's vtable, zero_grad, reset.  Three warm-up steps, then
 * rounds of five counted steps.
 *
 * Allocations whose caller is libgomp are counted apart, per op: libgomp
 * allocates a new thread team for every parallel region that runs on one
 * thread (or nested in another), so they show a loop that bypasses
 * mspt_parallel().  Both counts must be 0.  With BLIS's OpenMP flavour
 * (which opens a region in every GEMM call) the libgomp check is skipped:
 * configure picks the serial flavour when it is installed. */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <mspt/mspt.h>

#include "plugin_util.h"
#include "tap.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static int counting;
static long n_other, n_gomp, n_free;
static uintptr_t gomp_lo, gomp_hi;     /* libgomp's text, found at start */
static const char *label = "";         /* the op being run, for the report */
static const char *first_label;
static void *first_caller;

/* The sanitizer build's ASan runtime owns malloc: hooks here would take
 * the heap away from it, so that build has none and skips the test. */
#ifndef __SANITIZE_ADDRESS__
static void count(void *caller)
{
    if (!__atomic_load_n(&counting, __ATOMIC_RELAXED))
        return;
    uintptr_t c = (uintptr_t)caller;
    if (c >= gomp_lo && c < gomp_hi) {
        __atomic_add_fetch(&n_gomp, 1, __ATOMIC_RELAXED);
        return;
    }
    if (__atomic_add_fetch(&n_other, 1, __ATOMIC_RELAXED) == 1) {
        first_label = label;
        first_caller = caller;
    }
}

void *malloc(size_t n)
{
    count(__builtin_return_address(0));
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    count(__builtin_return_address(0));
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    count(__builtin_return_address(0));
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p && __atomic_load_n(&counting, __ATOMIC_RELAXED))
        __atomic_add_fetch(&n_free, 1, __ATOMIC_RELAXED);
    __libc_free(p);
}

void *aligned_alloc(size_t align, size_t n)
{
    count(__builtin_return_address(0));
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
    count(__builtin_return_address(0));
    return __libc_memalign(align, n);
}

int posix_memalign(void **p, size_t align, size_t n)
{
    count(__builtin_return_address(0));
    *p = __libc_memalign(align, n);
    return *p ? 0 : ENOMEM;
}
#endif

static int find_gomp(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (!strstr(info->dlpi_name, "libgomp"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            gomp_lo = info->dlpi_addr + ph->p_vaddr;
            gomp_hi = gomp_lo + ph->p_memsz;
        }
    }
    return 1;
}

/* ---- the model -------------------------------------------------------- */

enum { B = 4, C = 4, T = 64, E = 6, PH = 2, PW = 8, GH = C / PH, GW = T / PW,
       D = E * GH, L = GW, DI = 2 * D, NS = 4, R = 1, NH = 2, HD = D / NH,
       WIDE = 40960 /* > MSPT_PAR_MIN */ };

typedef struct {
    mspt_params *ps;
    mspt_tensor *pe_w, *pe_b, *pos, *tok, *ln_w, *ln_b;
    mspt_tensor *in_w, *cv_w, *cv_b, *xp_w, *dt_w, *dt_b, *A_log, *Dp, *out_w;
    mspt_tensor *qkv_w, *qkv_b, *pj_w, *pj_b, *f1_w, *f1_b, *f2_w, *f2_b;
    mspt_tensor *mm_w, *dc_w, *ct_w, *ct_b, *wide;
    /* AdamW over every parameter, from the optimizers plugin */
    const mspt_optimizer_vt *opt_vt;
    void *opt;
    mspt_tensor *all[64];
    mspt_param_group group;
} model;

static mspt_tensor *param(model *m, const char *name, int ndim, const int *shape)
{
    return mspt_param_new(m->ps, name, ndim, shape, 0);
}

static void model_init(model *m, mspt_rng *rng)
{
    m->ps = mspt_params_new();
    m->pe_w = param(m, "pe.w", 4, (int[]){E, 1, PH, PW});
    m->pe_b = param(m, "pe.b", 1, (int[]){E});
    m->pos = param(m, "pos", 3, (int[]){1, L, D});
    m->tok = param(m, "mask_token", 1, (int[]){D});
    m->ln_w = param(m, "ln.w", 1, (int[]){D});
    m->ln_b = param(m, "ln.b", 1, (int[]){D});
    m->in_w = param(m, "in_proj.w", 2, (int[]){2 * DI, D});
    m->cv_w = param(m, "conv1d.w", 3, (int[]){DI, 1, 4});
    m->cv_b = param(m, "conv1d.b", 1, (int[]){DI});
    m->xp_w = param(m, "x_proj.w", 2, (int[]){R + 2 * NS, DI});
    m->dt_w = param(m, "dt_proj.w", 2, (int[]){DI, R});
    m->dt_b = param(m, "dt_proj.b", 1, (int[]){DI});
    m->A_log = param(m, "A_log", 2, (int[]){DI, NS});
    m->Dp = param(m, "D", 1, (int[]){DI});
    m->out_w = param(m, "out_proj.w", 2, (int[]){D, DI});
    m->qkv_w = param(m, "qkv.w", 2, (int[]){3 * D, D});
    m->qkv_b = param(m, "qkv.b", 1, (int[]){3 * D});
    m->pj_w = param(m, "proj.w", 2, (int[]){D, D});
    m->pj_b = param(m, "proj.b", 1, (int[]){D});
    m->f1_w = param(m, "fc1.w", 2, (int[]){2 * D, D});
    m->f1_b = param(m, "fc1.b", 1, (int[]){2 * D});
    m->f2_w = param(m, "fc2.w", 2, (int[]){D, 2 * D});
    m->f2_b = param(m, "fc2.b", 1, (int[]){D});
    m->mm_w = param(m, "mm.w", 2, (int[]){D, D});
    m->dc_w = param(m, "dec_conv.w", 4, (int[]){1, 1, 3, 3});
    m->ct_w = param(m, "conv_t.w", 4, (int[]){E, 1, PH, PW});
    m->ct_b = param(m, "conv_t.b", 1, (int[]){1});
    m->wide = param(m, "wide", 2, (int[]){WIDE / 1024, 1024});
    for (size_t i = 0; i < mspt_params_count(m->ps); i++)
        mspt_init_uniform(mspt_params_at(m->ps, i), rng, -0.3f, 0.3f);

    const mspt_component *c = tp_component("optimizers", "optimizers",
                                           MSPT_KIND_OPTIMIZER, "adamw");
    m->opt_vt = c->vtable;
    m->group.count = mspt_params_count(m->ps);
    for (size_t i = 0; i < m->group.count; i++)
        m->all[i] = mspt_params_at(m->ps, i);
    m->group.params = m->all;
    m->group.lr = 1e-3f;
    m->group.weight_decay = 0.01f;
    mspt_config cfg;
    mspt_node *tree = tp_config(c, "optimizer", "{lr: 0.001}", &cfg);
    mspt_error err = {0};
    if (m->opt_vt->create(&cfg, &m->group, 1, &m->opt, &err))
        tap_bail(err.msg);
    mspt_node_free(tree);
}

/* libgomp allocations per op label (main thread, between label switches;
 * nested calls are charged to the label set last). */
static struct { const char *name; long n; } per_op[64];
static int n_per_op;
static long mark;

static void at(const char *name)
{
    long now = __atomic_load_n(&n_gomp, __ATOMIC_RELAXED);
    if (now != mark) {
        int i = 0;
        while (i < n_per_op && strcmp(per_op[i].name, label) != 0)
            i++;
        if (i == n_per_op && n_per_op < 64)
            per_op[n_per_op++].name = label;
        if (i < 64)
            per_op[i].n += now - mark;
        mark = now;
    }
    label = name;
}

#define OP(name, expr) (at(name), (expr))

/* h (B, L, D) -> (B, L, D): in_proj, causal conv, SiLU, x_proj, dt_proj,
 * softplus, selective scan gated by SiLU(z), out_proj. */
static mspt_tensor *mamba(mspt_ctx *ctx, model *m, mspt_tensor *h)
{
    mspt_tensor *uz[2], *dbc[3];
    mspt_tensor *xz = OP("linear in_proj", mspt_linear(ctx, h, m->in_w, NULL));
    OP("split", mspt_split(ctx, xz, 2, 2, (int[]){DI, DI}, uz));
    mspt_tensor *u = OP("dwconv1d", mspt_dwconv1d_causal(ctx, uz[0], m->cv_w, m->cv_b));
    u = OP("silu", mspt_silu(ctx, u));
    mspt_tensor *xd = OP("linear x_proj", mspt_linear(ctx, u, m->xp_w, NULL));
    OP("split", mspt_split(ctx, xd, 2, 3, (int[]){R, NS, NS}, dbc));
    mspt_tensor *dt = OP("linear dt_proj", mspt_linear(ctx, dbc[0], m->dt_w, m->dt_b));
    dt = OP("softplus", mspt_softplus(ctx, dt));
    mspt_tensor *A = OP("exp", mspt_scale(ctx, mspt_exp(ctx, m->A_log), -1.0f));
    mspt_tensor *y = OP("selective_scan", mspt_selective_scan(ctx, u, dt, A, dbc[1],
                                                           dbc[2], m->Dp, uz[1]));
    return OP("linear out_proj", mspt_linear(ctx, y, m->out_w, NULL));
}

/* h (B, L, D) -> h + proj(attention(rotary q, rotary k, v)). */
static mspt_tensor *attention_block(mspt_ctx *ctx, model *m, mspt_tensor *h)
{
    mspt_tensor *qkv = OP("linear qkv", mspt_linear(ctx, h, m->qkv_w, m->qkv_b));
    qkv = OP("reshape", mspt_reshape(ctx, qkv, 5, (int[]){B, L, 3, NH, HD}));
    qkv = OP("permute", mspt_permute(ctx, qkv, (int[]){2, 0, 3, 1, 4}));
    mspt_tensor *p[3];
    OP("split", mspt_split(ctx, qkv, 0, 3, (int[]){1, 1, 1}, p));
    for (int i = 0; i < 3; i++)
        p[i] = OP("reshape", mspt_reshape(ctx, p[i], 4, (int[]){B, NH, L, HD}));
    mspt_tensor *q = OP("rotary", mspt_rotary(ctx, p[0], 10000.0f));
    mspt_tensor *k = OP("rotary", mspt_rotary(ctx, p[1], 10000.0f));
    mspt_tensor *a = OP("attention", mspt_attention_dropout(ctx, q, k, p[2], 1.0f / sqrtf(HD), 0.1f));
    a = OP("permute", mspt_permute(ctx, a, (int[]){0, 2, 1, 3}));
    a = OP("reshape", mspt_reshape(ctx, a, 3, (int[]){B, L, D}));
    return OP("add", mspt_add(ctx, h, mspt_linear(ctx, a, m->pj_w, m->pj_b)));
}

/* One training step; returns the loss value or NAN on error. */
static float step(mspt_ctx *ctx, model *m, float *x, float *target,
                  const uint8_t *mask, const uint8_t *row_mask)
{
    mspt_tensor *in = mspt_tensor_wrap(ctx, x, 4, (int[]){B, 1, C, T});
    in = OP("masked_fill", mspt_masked_fill(ctx, in, mask, 0.0f));
    mspt_tensor *pe = OP("conv2d patch", mspt_conv2d(ctx, in, m->pe_w, m->pe_b, PH, PW, 0, 0));
    mspt_tensor *h = OP("reshape", mspt_reshape(ctx, pe, 3, (int[]){B, D, L}));
    h = OP("transpose", mspt_transpose(ctx, h, 1, 2));
    h = OP("replace_rows", mspt_replace_rows(ctx, h, row_mask, m->tok));
    h = OP("add pos", mspt_add(ctx, h, m->pos));
    /* bidirectional Mamba-like block */
    mspt_tensor *fwd = mamba(ctx, m, h);
    mspt_tensor *rev = OP("flip", mspt_flip(ctx, mamba(ctx, m, mspt_flip(ctx, h, 1)), 1));
    h = OP("add", mspt_add(ctx, h, mspt_add(ctx, fwd, rev)));
    h = OP("layernorm", mspt_layernorm(ctx, h, m->ln_w, m->ln_b, 1e-5f));
    /* transformer-like block */
    h = attention_block(ctx, m, h);
    mspt_tensor *f = OP("linear fc1", mspt_linear(ctx, h, m->f1_w, m->f1_b));
    f = OP("gelu", mspt_gelu(ctx, f));
    f = OP("dropout", mspt_dropout(ctx, f, 0.1f));
    h = OP("add", mspt_add(ctx, h, mspt_linear(ctx, f, m->f2_w, m->f2_b)));
    /* products: token mixing by bmm, a square matmul */
    mspt_tensor *g = OP("bmm", mspt_bmm(ctx, h, h, 0, 1)); /* (B, L, L) */
    g = OP("bmm", mspt_bmm(ctx, g, h, 0, 0));               /* (B, L, D) */
    h = OP("add", mspt_add(ctx, h, mspt_scale(ctx, g, 0.01f)));
    mspt_tensor *flat = OP("reshape", mspt_reshape(ctx, h, 2, (int[]){B * L, D}));
    flat = OP("matmul", mspt_matmul(ctx, flat, m->mm_w, 0, 1));
    /* decoder: (B, L, D) -> (B, E, GH, GW) -> conv_transpose2d -> (B, C, T) */
    mspt_tensor *dec = OP("reshape", mspt_reshape(ctx, flat, 4, (int[]){B, 1, L, D}));
    dec = OP("conv2d dec", mspt_conv2d(ctx, dec, m->dc_w, NULL, 1, 1, 1, 1));
    dec = OP("reshape", mspt_reshape(ctx, dec, 3, (int[]){B, L, D}));
    dec = OP("transpose", mspt_transpose(ctx, dec, 1, 2));
    dec = OP("reshape", mspt_reshape(ctx, dec, 4, (int[]){B, E, GH, GW}));
    dec = OP("conv_transpose2d", mspt_conv_transpose2d(ctx, dec, m->ct_w, m->ct_b, PH, PW, 0, 0));
    dec = OP("reshape", mspt_reshape(ctx, dec, 3, (int[]){B, C, T}));
    mspt_tensor *tg = mspt_tensor_wrap(ctx, target, 3, (int[]){B, C, T});
    mspt_tensor *loss = OP("mse_loss", mspt_mse_loss(ctx, dec, tg, mask));
    /* wide branch: loss += 1e-3 · mean(gelu(wide)) */
    mspt_tensor *w = OP("wide gelu", mspt_gelu(ctx, m->wide));
    w = OP("wide mean", mspt_mean(ctx, w));
    loss = OP("add", mspt_add(ctx, loss, mspt_scale(ctx, w, 1e-3f)));
    const float one = 1.0f;
    at("backward");
    if (!loss || mspt_backward_with(ctx, loss, &one) != 0)
        return NAN;
    float v = loss->data[0];
    at("optimizer step");
    m->opt_vt->step(m->opt);
    at("zero_grad");
    mspt_params_zero_grad(m->ps);
    at("reset");
    mspt_ctx_reset(ctx);
    at("");
    return v;
}

int main(void)
{
#ifdef __SANITIZE_ADDRESS__
    tap_skip_all("sanitizer build: ASan replaces malloc, so allocations cannot be counted");
#endif
    dl_iterate_phdr(find_gomp, NULL);
    ok(gomp_lo < gomp_hi, "libgomp's code located (%#lx..%#lx)",
       (unsigned long)gomp_lo, (unsigned long)gomp_hi);

    mspt_rng *rng = mspt_rng_new(11);
    model m;
    model_init(&m, rng);
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_ctx_set_rng(ctx, rng);
    static float x[B * C * T], target[B * C * T];
    static uint8_t mask[B * C * T], row_mask[B * L];
    for (int i = 0; i < B * C * T; i++) {
        x[i] = (float)sin(0.1 * i);
        target[i] = (float)cos(0.07 * i);
        mask[i] = (i / PW) % 3 == 0;
    }
    for (int i = 0; i < B * L; i++)
        row_mask[i] = i % 4 == 1;

    int good = 1;
    for (int i = 0; i < 3; i++)
        good &= isfinite(step(ctx, &m, x, target, mask, row_mask));
    if (!ok(good, "warm-up steps run (%d threads, BLIS kernel %s)",
            mspt_get_threads(), mspt_blas_kernel()))
        diag("%s", mspt_ctx_error(ctx) ? mspt_ctx_error(ctx) : "?");
    size_t reserved = mspt_ctx_arena_reserved(ctx);

    /* Measure rounds of 5 steps.  BLIS's packing-buffer pools grow the first
     * time two threads hold blocks at once, which on a loaded machine may
     * happen only after the warm-up; such one-time growth is reported, and
     * steady state is a round without any allocation.  A per-step allocation
     * shows in every round and fails. */
    for (int round = 0; round < 4; round++) {
        n_other = n_gomp = n_free = 0;
        n_per_op = 0;
        mark = 0;
        __atomic_store_n(&counting, 1, __ATOMIC_SEQ_CST);
        for (int i = 0; i < 5; i++)
            good &= isfinite(step(ctx, &m, x, target, mask, row_mask));
        __atomic_store_n(&counting, 0, __ATOMIC_SEQ_CST);
        if (n_other == 0)
            break;
        Dl_info info;
        diag("round %d: %ld allocations outside libgomp (one-time pool growth?), "
             "first during '%s' from %s", round + 1, n_other, first_label,
             dladdr(first_caller, &info) && info.dli_fname ? info.dli_fname : "?");
    }

    ok(good, "five more steps run");
    ok(mspt_ctx_arena_reserved(ctx) == reserved, "arena did not grow (%zu bytes)",
       reserved);
    /* A threaded BLIS (a user's choice of BLIS_LIBS) allocates by itself
     * in every GEMM call — its OpenMP flavour a libgomp team, its pthreads
     * flavour thread arrays — so the counts then say nothing about mspt's
     * own code: the claim is made for the serial flavour configure picks. */
    int threaded = strncmp(mspt_blas_threading(), "BLIS ", 5) == 0;
    if (threaded) {
        tap_count++;
        printf("ok %d # SKIP no heap allocation outside libgomp (%ld): %s "
               "allocates in each GEMM call\n", tap_count, n_other,
               mspt_blas_threading());
    } else if (!ok(n_other == 0, "no heap allocation outside libgomp in 5 "
                   "steady-state steps (%ld)", n_other)) {
        Dl_info info;
        if (dladdr(first_caller, &info) && info.dli_fname)
            diag("first one during '%s', called from %s (%s)", first_label,
                 info.dli_fname, info.dli_sname ? info.dli_sname : "?");
    }
    if (threaded) {
        tap_count++;
        printf("ok %d # SKIP no libgomp team allocation (%ld): %s "
               "allocates in each GEMM call\n", tap_count, n_gomp,
               mspt_blas_threading());
    } else {
        ok(n_gomp == 0, "no libgomp team allocation in 5 steps (%ld, %ld "
           "frees in all; %s)", n_gomp, n_free, mspt_blas_threading());
    }
    for (int i = 0; i < n_per_op; i++)
        diag("libgomp allocations per step during '%s': %.1f", per_op[i].name,
             per_op[i].n / 5.0);

    /* the hooks do see libmspt's own allocations */
    long before = n_other;
    __atomic_store_n(&counting, 1, __ATOMIC_SEQ_CST);
    mspt_ctx *extra = mspt_ctx_new();
    __atomic_store_n(&counting, 0, __ATOMIC_SEQ_CST);
    ok(n_other > before, "hooks count an allocation made inside libmspt");
    mspt_ctx_free(extra);

    m.opt_vt->destroy(m.opt);
    mspt_ctx_free(ctx);
    mspt_params_free(m.ps);
    mspt_rng_free(rng);
    return tap_done();
}
