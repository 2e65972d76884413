/* Masked losses: l1, mse, smooth_l1 (mean over the selected elements).
 * Finite-difference gradient checks for pred and target, PyTorch parity
 * (tests/fixtures/loss.txt: F.*_loss(x[mask], y[mask])), the subgradient at
 * d = 0, β = 0, empty selections, large inputs, errors, no-grad. */
#include <math.h>
#include <string.h>

#include <mspt/mspt.h>

#include "fixture.h"
#include "gradcheck.h"
#include "tap.h"

typedef enum { L1, MSE, SMOOTH } kind;
static const char *kind_name[] = {"l1_loss", "mse_loss", "smooth_l1_loss"};

static mspt_tensor *run_loss(mspt_ctx *ctx, kind k, mspt_tensor *p,
                             mspt_tensor *t, const uint8_t *mask, float beta)
{
    switch (k) {
    case L1:
        return mspt_l1_loss(ctx, p, t, mask);
    case MSE:
        return mspt_mse_loss(ctx, p, t, mask);
    default:
        return mspt_smooth_l1_loss(ctx, p, t, mask, beta);
    }
}

static double ref_f(kind k, double d, double beta)
{
    double ad = fabs(d);
    if (k == L1 || (k == SMOOTH && beta == 0))
        return ad;
    if (k == MSE)
        return d * d;
    return ad < beta ? 0.5 * d * d / beta : ad - 0.5 * beta;
}

/* ---- gradient checks ---------------------------------------------------- */

typedef struct {
    kind k;
    float beta;
    size_t n;
    const uint8_t *mask;
} loss_ud;

static mspt_tensor *loss_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    loss_ud *u = ud;
    return run_loss(ctx, u->k, in[0], in[1], u->mask, u->beta);
}

static void loss_d(double *const *in, double *out, void *ud)
{
    loss_ud *u = ud;
    double s = 0;
    size_t c = 0;
    for (size_t i = 0; i < u->n; i++)
        if (!u->mask || u->mask[i]) {
            s += ref_f(u->k, in[0][i] - in[1][i], u->beta);
            c++;
        }
    out[0] = c ? s / (double)c : 0.0;
}

static void check_loss(kind k, float beta, const uint8_t *mask)
{
    char name[96];
    snprintf(name, sizeof name, "%s%s%s", kind_name[k],
             k == SMOOTH ? (beta == 1.0f ? " beta 1" : beta == 0.0f ? " beta 0" : " beta 0.5") : "",
             mask ? " masked" : " all");
    gc_case c = gc_case_new(name, 2);
    int shape[3] = {3, 5, 7};
    mspt_tensor *p = gc_input(&c, 0, 3, shape, 1);
    mspt_tensor *t = gc_input(&c, 1, 3, shape, 1);
    /* keep d away from the kinks (0 and ±β) by more than the FD step */
    for (size_t i = 0; i < p->numel; i++) {
        float d = p->data[i] - t->data[i];
        if (fabsf(d) < 0.02f || fabsf(fabsf(d) - beta) < 0.02f)
            p->data[i] += 0.05f;
    }
    c.fwd_tol = 1e-5;
    loss_ud u = {k, beta, p->numel, mask};
    gc_run(&c, loss_f, loss_d, &u);
    gc_case_free(&c);
}

static void gradchecks(void)
{
    uint8_t mask[105];
    for (int i = 0; i < 105; i++)
        mask[i] = (i * 11) % 7 < 3;
    for (int m = 0; m < 2; m++) {
        const uint8_t *mk = m ? mask : NULL;
        check_loss(L1, 0, mk);
        check_loss(MSE, 0, mk);
        check_loss(SMOOTH, 1.0f, mk);
        check_loss(SMOOTH, 0.5f, mk);
        check_loss(SMOOTH, 0.0f, mk);
    }
}

/* ---- PyTorch parity -------------------------------------------------------- */

static void parities(void)
{
    fixture *f = fixture_load("loss.txt");
    const fixture_tensor *fp = fixture_get(f, "pred");
    const fixture_tensor *ft = fixture_get(f, "target");
    const fixture_tensor *fm = fixture_get(f, "mask");
    size_t n = fp->numel;
    uint8_t *mask = malloc(n);
    for (size_t i = 0; i < n; i++)
        mask[i] = fm->data[i] != 0.0f;
    struct { const char *tag; kind k; float beta; } cases[] = {
        {"l1", L1, 0}, {"mse", MSE, 0}, {"smooth_l1", SMOOTH, 1.0f},
        {"smooth_l1_b05", SMOOTH, 0.5f},
        /* β = 0 is l1 (PyTorch's own smooth_l1 backward gives −1 at d = 0
         * when β = 0; we keep l1's sign(0) = 0, see the report) */
        {"l1", SMOOTH, 0.0f}};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        for (int m = 0; m < 2; m++) {
            mspt_params *ps = mspt_params_new();
            mspt_ctx *ctx = mspt_ctx_new();
            mspt_tensor *p = mspt_param_new(ps, "p", fp->ndim, fp->shape, 0);
            mspt_tensor *t = mspt_param_new(ps, "t", ft->ndim, ft->shape, 0);
            memcpy(p->data, fp->data, n * sizeof(float));
            memcpy(t->data, ft->data, n * sizeof(float));
            mspt_tensor *y = run_loss(ctx, cases[ci].k, p, t, m ? mask : NULL,
                                      cases[ci].beta);
            char what[96], name[96];
            snprintf(what, sizeof what, "%s", kind_name[cases[ci].k]);
            if (cases[ci].k == SMOOTH)
                snprintf(what + strlen(what), sizeof what - strlen(what),
                         " beta %g", (double)cases[ci].beta);
            snprintf(what + strlen(what), sizeof what - strlen(what), " %s",
                     m ? "masked" : "all");
            const char *sel = m ? "masked" : "all";
            ok(y && mspt_backward(ctx, y) == 0, "%s: runs", what);
            snprintf(name, sizeof name, "y_%s_%s", cases[ci].tag, sel);
            double ey = y ? fixture_max_rel_err(y->data, fixture_get(f, name)->data, 1, 1e-3) : 1;
            snprintf(name, sizeof name, "gp_%s_%s", cases[ci].tag, sel);
            double ep = fixture_max_rel_err(p->grad, fixture_get(f, name)->data, n, 1e-3);
            snprintf(name, sizeof name, "gt_%s_%s", cases[ci].tag, sel);
            double et = fixture_max_rel_err(t->grad, fixture_get(f, name)->data, n, 1e-3);
            ok(ey <= 1e-4, "%s: loss matches PyTorch (err %.2g)", what, ey);
            ok(ep <= 1e-5 && et <= 1e-5,
               "%s: d/dpred and d/dtarget match PyTorch (err %.2g, %.2g)",
               what, ep, et);
            mspt_ctx_free(ctx);
            mspt_params_free(ps);
        }
    }
    free(mask);
    fixture_free(f);
}

/* ---- edge cases ----------------------------------------------------------- */

static void edge_tests(void)
{
    mspt_params *ps = mspt_params_new();
    mspt_ctx *ctx = mspt_ctx_new();
    int shape[2] = {4, 6};
    mspt_tensor *p = mspt_param_new(ps, "p", 2, shape, 0);
    mspt_tensor *t = mspt_param_new(ps, "t", 2, shape, 0);
    mspt_rng *rng = mspt_rng_new(4);
    mspt_init_uniform(p, rng, -2, 2);
    mspt_init_uniform(t, rng, -2, 2);
    for (int i = 0; i < 6; i++)
        t->data[i] = p->data[i]; /* d = 0 exactly */
    uint8_t none[24] = {0};

    /* l1 subgradient at 0 is 0 for both inputs; β = 0 smooth_l1 too */
    for (int k = 0; k < 2; k++) {
        mspt_params_zero_grad(ps);
        mspt_ctx_reset(ctx);
        mspt_tensor *y = k ? mspt_smooth_l1_loss(ctx, p, t, NULL, 0.0f)
                           : mspt_l1_loss(ctx, p, t, NULL);
        mspt_backward(ctx, y);
        int zero = 1, unit = 1;
        for (int i = 0; i < 24; i++) {
            if (i < 6)
                zero &= p->grad[i] == 0.0f && t->grad[i] == 0.0f;
            else
                unit &= fabsf(fabsf(p->grad[i]) - 1.0f / 24) < 1e-7f &&
                        t->grad[i] == -p->grad[i];
        }
        ok(zero && unit, "%s: gradient 0 where d = 0, ±1/n elsewhere",
           k ? "smooth_l1 beta 0" : "l1");
    }

    /* empty selection: 0, and zero gradients, not NaN */
    kind ks[3] = {L1, MSE, SMOOTH};
    for (int k = 0; k < 3; k++) {
        mspt_params_zero_grad(ps);
        mspt_ctx_reset(ctx);
        mspt_tensor *y = run_loss(ctx, ks[k], p, t, none, 1.0f);
        int rc = y ? mspt_backward(ctx, y) : -1;
        int zero = 1;
        for (int i = 0; i < 24; i++)
            zero &= p->grad[i] == 0.0f && t->grad[i] == 0.0f;
        ok(y && y->data[0] == 0.0f && rc == 0 && zero,
           "%s over an empty selection: 0 with zero gradients", kind_name[k]);
    }

    /* a constant target gets no gradient */
    mspt_params_zero_grad(ps);
    mspt_ctx_reset(ctx);
    t->requires_grad = 0;
    mspt_tensor *y = mspt_mse_loss(ctx, p, t, NULL);
    mspt_backward(ctx, y);
    float want = 2.0f * (p->data[10] - t->data[10]) / 24.0f;
    ok(fabsf(p->grad[10] - want) < 1e-6f && t->grad[10] == 0.0f,
       "mse: a target that needs no grad gets none");
    t->requires_grad = 1;

    /* the caller may reuse its mask before backward */
    mspt_params_zero_grad(ps);
    mspt_ctx_reset(ctx);
    uint8_t m[24];
    for (int i = 0; i < 24; i++)
        m[i] = i % 2;
    y = mspt_l1_loss(ctx, p, t, m);
    memset(m, 1, sizeof m);
    mspt_backward(ctx, y);
    int evens = 1;
    for (int i = 0; i < 24; i += 2)
        evens &= p->grad[i] == 0.0f;
    ok(evens && p->grad[7] != 0.0f, "backward uses the mask as it was at forward");

    /* errors and no-grad */
    mspt_ctx_reset(ctx);
    mspt_tensor *q = mspt_param_new(ps, "q", 2, (int[]){6, 4}, 0);
    ok(mspt_l1_loss(ctx, p, q, NULL) == NULL, "l1_loss (4,6) vs (6,4) refused");
    const char *e = mspt_ctx_error(ctx);
    ok(e && strstr(e, "l1_loss") && strstr(e, "(4,6)") && strstr(e, "(6,4)"),
       "message: %s", e ? e : "(none)");
    mspt_ctx_reset(ctx);
    ok(mspt_smooth_l1_loss(ctx, p, t, NULL, -1.0f) == NULL &&
           strstr(mspt_ctx_error(ctx), "smooth_l1_loss"),
       "negative beta refused");
    mspt_ctx_reset(ctx);
    ok(mspt_mse_loss(ctx, NULL, t, NULL) == NULL && mspt_ctx_error(ctx) == NULL,
       "NULL input gives NULL and records nothing");
    mspt_ctx_set_grad(ctx, 0);
    y = mspt_smooth_l1_loss(ctx, p, t, m, 1.0f);
    mspt_tensor *y2 = mspt_l1_loss(ctx, p, t, NULL);
    ok(y && y2 && !y->requires_grad && mspt_tape_length(ctx) == 0,
       "no-grad mode records nothing");
    mspt_ctx_set_grad(ctx, 1);

    mspt_rng_free(rng);
    mspt_ctx_free(ctx);
    mspt_params_free(ps);
}

/* ---- large: the parallel path against a serial double sum ---------------- */

static void large_tests(void)
{
    mspt_params *ps = mspt_params_new();
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_rng *rng = mspt_rng_new(9);
    int shape[3] = {8, 22, 1280}; /* a batch of EEG windows */
    mspt_tensor *p = mspt_param_new(ps, "p", 3, shape, 0);
    mspt_tensor *t = mspt_param_new(ps, "t", 3, shape, 0);
    mspt_init_normal(p, rng, 0, 1);
    mspt_init_normal(t, rng, 0, 1);
    size_t n = p->numel;
    uint8_t *mask = malloc(n);
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        mask[i] = ((i / 16) % 10) < 6; /* patches of 16 samples */
        count += mask[i];
    }
    kind ks[3] = {L1, MSE, SMOOTH};
    for (int k = 0; k < 3; k++) {
        double want = 0;
        for (size_t i = 0; i < n; i++)
            if (mask[i])
                want += ref_f(ks[k], (double)(p->data[i] - t->data[i]), 1.0);
        want /= (double)count;
        float got[3];
        for (int th = 1; th <= 3; th++) {
            mspt_set_threads(th);
            mspt_ctx_reset(ctx);
            mspt_params_zero_grad(ps);
            mspt_tensor *y = run_loss(ctx, ks[k], p, t, mask, 1.0f);
            mspt_backward(ctx, y);
            got[th - 1] = y->data[0];
        }
        mspt_ctx_reset(ctx);
        mspt_tensor *again = run_loss(ctx, ks[k], p, t, mask, 1.0f);
        ok(fabs(got[0] - want) <= 1e-6 * want && fabs(got[1] - want) <= 1e-6 * want &&
               fabs(got[2] - want) <= 1e-6 * want && again->data[0] == got[2],
           "%s over %zu of %zu: 1, 2, 3 threads within 1e-6 of double "
           "(%.8g %.8g %.8g vs %.8g), stable", kind_name[k], count, n,
           got[0], got[1], got[2], want);
    }
    mspt_set_threads(2);
    free(mask);
    mspt_rng_free(rng);
    mspt_ctx_free(ctx);
    mspt_params_free(ps);
}

int main(void)
{
    mspt_set_threads(2);
    gradchecks();
    parities();
    edge_tests();
    large_tests();
    return tap_done();
}
