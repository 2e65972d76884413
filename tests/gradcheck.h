/* Gradient checks for ops: float32 analytic backward against central finite
 * differences of a double-precision reference forward written in the test.
 *
 * Usage (see tests/test_ops_*.c):
 *   gc_case c = gc_case_new("linear", 3);           3 inputs
 *   gc_input(&c, 0, 2, (int[]){4, 5}, 1);           shape, requires grad
 *   ...
 *   gc_run(&c, float_fwd, double_ref, userdata);    emits TAP points
 *
 * float_fwd builds the op from c.in[] (persistent tensors) in a context;
 * double_ref computes the same op in double from plain arrays.  gc_run
 * checks the forward values (rtol fwd_tol) and then, with a fixed random
 * cotangent r, every input gradient of Σ r·out against finite differences
 * (rtol grad_tol, relative to max(|g|, floor)). */
#ifndef MSPT_GRADCHECK_H
#define MSPT_GRADCHECK_H

#include <mspt/mspt.h>
#include <string.h>

#include "tap.h"

#define GC_MAX_IN 8

typedef mspt_tensor *(*gc_float_fn)(mspt_ctx *ctx, mspt_tensor **in,
                                    void *ud);
/* in[i] points to numel(i) doubles; out has the op's output numel. */
typedef void (*gc_double_fn)(double *const *in, double *out, void *ud);

typedef struct gc_case {
    const char *name;
    int nin;
    mspt_params *ps;
    mspt_tensor *in[GC_MAX_IN];
    int needs_grad[GC_MAX_IN];
    mspt_rng *rng;
    double fwd_tol, grad_tol, floor;
    double h;             /* finite-difference step */
    size_t max_checks;    /* elements checked per input (0 = all) */
} gc_case;

static inline gc_case gc_case_new(const char *name, int nin)
{
    gc_case c;
    memset(&c, 0, sizeof c);
    c.name = name;
    c.nin = nin;
    c.ps = mspt_params_new();
    c.rng = mspt_rng_new(1234);
    c.fwd_tol = 1e-5;
    c.grad_tol = 1e-3;
    c.floor = 1e-2;
    c.h = 1e-4;
    c.max_checks = 64;
    return c;
}

/* Input i, filled uniform in [-1, 1]; needs_grad 0 makes it a constant. */
static inline mspt_tensor *gc_input(gc_case *c, int i, int ndim,
                                    const int *shape, int needs_grad)
{
    char name[16];
    snprintf(name, sizeof name, "in%d", i);
    mspt_tensor *t = mspt_param_new(c->ps, name, ndim, shape, 0);
    mspt_init_uniform(t, c->rng, -1.0f, 1.0f);
    t->requires_grad = needs_grad;
    c->in[i] = t;
    c->needs_grad[i] = needs_grad;
    return t;
}

static inline void gc_case_free(gc_case *c)
{
    mspt_params_free(c->ps);
    mspt_rng_free(c->rng);
}

static inline double gc_dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Runs the checks, emitting TAP points; returns 1 if all passed. */
static inline int gc_run(gc_case *c, gc_float_fn ffn, gc_double_fn dfn,
                         void *ud)
{
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_params_zero_grad(c->ps);
    mspt_tensor *out = ffn(ctx, c->in, ud);
    if (!ok(out != NULL, "%s: forward runs", c->name)) {
        diag("%s", mspt_ctx_error(ctx) ? mspt_ctx_error(ctx) : "NULL output");
        mspt_ctx_free(ctx);
        return 0;
    }
    size_t nout = out->numel;
    double *din[GC_MAX_IN];
    for (int i = 0; i < c->nin; i++) {
        din[i] = malloc(c->in[i]->numel * sizeof(double));
        for (size_t j = 0; j < c->in[i]->numel; j++)
            din[i][j] = c->in[i]->data[j];
    }
    double *dout = malloc(nout * sizeof(double));
    double *r = malloc(nout * sizeof(double));
    float *rf = malloc(nout * sizeof(float));
    for (size_t j = 0; j < nout; j++) {
        rf[j] = (float)(2.0 * mspt_rng_uniform(c->rng) - 1.0);
        r[j] = rf[j];
    }

    /* forward against the double reference */
    dfn(din, dout, ud);
    double worst = 0;
    size_t worst_at = 0;
    for (size_t j = 0; j < nout; j++) {
        double scale = fabs(dout[j]) > 1.0 ? fabs(dout[j]) : 1.0;
        double e = fabs(out->data[j] - dout[j]) / scale;
        if (e > worst || isnan(e)) {
            worst = isnan(e) ? INFINITY : e;
            worst_at = j;
        }
    }
    int all = ok(worst <= c->fwd_tol, "%s: forward matches double reference",
                 c->name);
    if (!all)
        diag("worst rel err %.3g at %zu (got %.9g want %.9g)", worst,
             worst_at, out->data[worst_at], dout[worst_at]);

    /* analytic gradients */
    int any_grad = 0;
    for (int i = 0; i < c->nin; i++)
        any_grad |= c->needs_grad[i];
    if (any_grad) {
        int rc = mspt_backward_with(ctx, out, rf);
        all &= ok(rc == 0, "%s: backward runs", c->name);
        if (rc)
            diag("%s", mspt_ctx_error(ctx));
    }
    for (int i = 0; i < c->nin && any_grad; i++) {
        if (!c->needs_grad[i])
            continue;
        mspt_tensor *t = c->in[i];
        size_t n = t->numel;
        size_t step = (c->max_checks && n > c->max_checks) ? n / c->max_checks : 1;
        double werr = 0;
        size_t wj = 0;
        double wa = 0, wn = 0;
        for (size_t j = 0; j < n; j += step) {
            double keep = din[i][j];
            din[i][j] = keep + c->h;
            dfn(din, dout, ud);
            double fp = gc_dot(dout, r, nout);
            din[i][j] = keep - c->h;
            dfn(din, dout, ud);
            double fm = gc_dot(dout, r, nout);
            din[i][j] = keep;
            double num = (fp - fm) / (2 * c->h);
            double ana = t->grad[j];
            double scale = fabs(num) > c->floor ? fabs(num) : c->floor;
            double e = fabs(ana - num) / scale;
            if (e > werr || isnan(e)) {
                werr = isnan(e) ? INFINITY : e;
                wj = j;
                wa = ana;
                wn = num;
            }
        }
        int pass = ok(werr <= c->grad_tol,
                      "%s: d/d(input %d) matches finite differences", c->name,
                      i);
        if (!pass)
            diag("worst rel err %.3g at %zu: analytic %.9g numeric %.9g", werr,
                 wj, wa, wn);
        all &= pass;
    }
    for (int i = 0; i < c->nin; i++)
        free(din[i]);
    free(dout);
    free(r);
    free(rf);
    mspt_ctx_free(ctx);
    return all;
}

#endif
