/* Shape, reduction and mask ops: reshape (view), permute, transpose, flip,
 * slice, split, concat, sum, mean, mean_dim, masked_select, masked_fill,
 * replace_rows.  Finite-difference gradient checks, PyTorch parity
 * (tests/fixtures/shape.txt), the parallel paths on large tensors, errors,
 * no-grad. */
#include <math.h>
#include <string.h>

#include <mspt/mspt.h>

#include "fixture.h"
#include "gradcheck.h"
#include "tap.h"

/* Index helpers for the double references: row-major strides. */
static void strides_of(int nd, const int *shape, size_t *st)
{
    st[nd - 1] = 1;
    for (int k = nd - 2; k >= 0; k--)
        st[k] = st[k + 1] * (size_t)shape[k + 1];
}

/* ---- gradient checks ---------------------------------------------------- */

/* reshape: gelu(reshape(reshape(x))) — the gradient must reach x through
 * two views and no tape entry of their own. */
typedef struct { size_t n; } n_ud;

static mspt_tensor *reshape_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    (void)ud;
    mspt_tensor *v = mspt_reshape(ctx, in[0], 2, (int[]){5, -1});
    mspt_tensor *w = mspt_reshape(ctx, v, 3, (int[]){7, 3, 5});
    return mspt_gelu(ctx, w);
}

static void reshape_d(double *const *in, double *out, void *ud)
{
    n_ud *u = ud;
    for (size_t i = 0; i < u->n; i++)
        out[i] = 0.5 * in[0][i] * (1.0 + erf(in[0][i] / sqrt(2.0)));
}

typedef struct {
    int nd, shape[MSPT_MAX_DIMS], perm[MSPT_MAX_DIMS];
} perm_ud;

static mspt_tensor *permute_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    return mspt_permute(ctx, in[0], ((perm_ud *)ud)->perm);
}

static void permute_d(double *const *in, double *out, void *ud)
{
    perm_ud *u = ud;
    size_t st[MSPT_MAX_DIMS], n = mspt_shape_numel(u->nd, u->shape);
    int os[MSPT_MAX_DIMS];
    strides_of(u->nd, u->shape, st);
    for (int k = 0; k < u->nd; k++)
        os[k] = u->shape[u->perm[k]];
    for (size_t i = 0; i < n; i++) { /* decode output index i */
        size_t rem = i, src = 0;
        for (int k = u->nd - 1; k >= 0; k--) {
            src += (rem % (size_t)os[k]) * st[u->perm[k]];
            rem /= (size_t)os[k];
        }
        out[i] = in[0][src];
    }
}

static void check_permute(const char *name, int nd, const int *shape,
                          const int *perm)
{
    gc_case c = gc_case_new(name, 1);
    gc_input(&c, 0, nd, shape, 1);
    perm_ud u = {.nd = nd};
    memcpy(u.shape, shape, (size_t)nd * sizeof(int));
    memcpy(u.perm, perm, (size_t)nd * sizeof(int));
    gc_run(&c, permute_f, permute_d, &u);
    gc_case_free(&c);
}

static mspt_tensor *transpose_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    (void)ud;
    return mspt_transpose(ctx, in[0], 1, -1);
}

/* x seen as (outer, n, inner) along one dim */
typedef struct {
    size_t outer, n, inner;
    int dim, start, len;
} dim_ud;

static dim_ud dim_of(int nd, const int *shape, int dim)
{
    dim_ud u = {1, (size_t)shape[dim], 1, dim, 0, 0};
    for (int k = 0; k < dim; k++)
        u.outer *= (size_t)shape[k];
    for (int k = dim + 1; k < nd; k++)
        u.inner *= (size_t)shape[k];
    return u;
}

static mspt_tensor *flip_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    return mspt_flip(ctx, in[0], ((dim_ud *)ud)->dim);
}

static void flip_d(double *const *in, double *out, void *ud)
{
    dim_ud *u = ud;
    for (size_t o = 0; o < u->outer; o++)
        for (size_t i = 0; i < u->n; i++)
            for (size_t j = 0; j < u->inner; j++)
                out[(o * u->n + i) * u->inner + j] =
                    in[0][(o * u->n + (u->n - 1 - i)) * u->inner + j];
}

static mspt_tensor *slice_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    dim_ud *u = ud;
    return mspt_slice(ctx, in[0], u->dim, u->start, u->len);
}

static void slice_d(double *const *in, double *out, void *ud)
{
    dim_ud *u = ud;
    size_t L = (size_t)u->len;
    for (size_t o = 0; o < u->outer; o++)
        for (size_t i = 0; i < L; i++)
            for (size_t j = 0; j < u->inner; j++)
                out[(o * L + i) * u->inner + j] =
                    in[0][(o * u->n + u->start + i) * u->inner + j];
}

/* split (3,7,5) along dim 1 into (2,4,1), re-joined as [p2, p0, p1] */
static mspt_tensor *split_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    (void)ud;
    mspt_tensor *p[3];
    if (mspt_split(ctx, in[0], 1, 3, (int[]){2, 4, 1}, p) != 0)
        return NULL;
    return mspt_concat(ctx, 3, (mspt_tensor *[]){p[2], p[0], p[1]}, 1);
}

static void split_d(double *const *in, double *out, void *ud)
{
    (void)ud;
    const int src_row[7] = {6, 0, 1, 2, 3, 4, 5};
    for (int o = 0; o < 3; o++)
        for (int i = 0; i < 7; i++)
            for (int j = 0; j < 5; j++)
                out[(o * 7 + i) * 5 + j] = in[0][(o * 7 + src_row[i]) * 5 + j];
}

/* concat of three (2,·,3,·) tensors along dim */
typedef struct {
    int dim, shapes[3][4];
} cat_ud;

static mspt_tensor *concat_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    return mspt_concat(ctx, 3, in, ((cat_ud *)ud)->dim);
}

static void concat_d(double *const *in, double *out, void *ud)
{
    cat_ud *u = ud;
    dim_ud d[3];
    size_t N = 0;
    for (int i = 0; i < 3; i++) {
        d[i] = dim_of(4, u->shapes[i], u->dim);
        N += d[i].n;
    }
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        for (size_t o = 0; o < d[i].outer; o++)
            for (size_t k = 0; k < d[i].n * d[i].inner; k++)
                out[o * N * d[i].inner + off + k] =
                    in[i][o * d[i].n * d[i].inner + k];
        off += d[i].n * d[i].inner;
    }
}

static void check_concat(const char *name, int dim)
{
    cat_ud u = {dim, {{2, 3, 3, 4}, {2, 3, 3, 4}, {2, 3, 3, 4}}};
    u.shapes[1][dim] = 1;
    u.shapes[2][dim] = 5;
    gc_case c = gc_case_new(name, 3);
    for (int i = 0; i < 3; i++)
        gc_input(&c, i, 4, u.shapes[i], 1);
    gc_run(&c, concat_f, concat_d, &u);
    gc_case_free(&c);
}

static mspt_tensor *sum_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    (void)ud;
    return mspt_sum(ctx, in[0]);
}

static mspt_tensor *mean_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    (void)ud;
    return mspt_mean(ctx, in[0]);
}

static void sum_d(double *const *in, double *out, void *ud)
{
    n_ud *u = ud;
    out[0] = 0;
    for (size_t i = 0; i < u->n; i++)
        out[0] += in[0][i];
}

static void mean_d(double *const *in, double *out, void *ud)
{
    sum_d(in, out, ud);
    out[0] /= (double)((n_ud *)ud)->n;
}

static mspt_tensor *mean_dim_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    return mspt_mean_dim(ctx, in[0], ((dim_ud *)ud)->dim);
}

static void mean_dim_d(double *const *in, double *out, void *ud)
{
    dim_ud *u = ud;
    for (size_t o = 0; o < u->outer; o++)
        for (size_t j = 0; j < u->inner; j++) {
            double s = 0;
            for (size_t i = 0; i < u->n; i++)
                s += in[0][(o * u->n + i) * u->inner + j];
            out[o * u->inner + j] = s / (double)u->n;
        }
}

typedef struct {
    size_t n, D;
    const uint8_t *mask;
    float value;
} mask_ud;

static mspt_tensor *select_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    return mspt_masked_select(ctx, in[0], ((mask_ud *)ud)->mask);
}

static void select_d(double *const *in, double *out, void *ud)
{
    mask_ud *u = ud;
    size_t j = 0;
    for (size_t i = 0; i < u->n; i++)
        if (u->mask[i])
            out[j++] = in[0][i];
}

static mspt_tensor *fill_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    mask_ud *u = ud;
    return mspt_masked_fill(ctx, in[0], u->mask, u->value);
}

static void fill_d(double *const *in, double *out, void *ud)
{
    mask_ud *u = ud;
    for (size_t i = 0; i < u->n; i++)
        out[i] = u->mask[i] ? u->value : in[0][i];
}

static mspt_tensor *rows_f(mspt_ctx *ctx, mspt_tensor **in, void *ud)
{
    return mspt_replace_rows(ctx, in[0], ((mask_ud *)ud)->mask, in[1]);
}

static void rows_d(double *const *in, double *out, void *ud)
{
    mask_ud *u = ud;
    for (size_t r = 0; r < u->n / u->D; r++)
        for (size_t j = 0; j < u->D; j++)
            out[r * u->D + j] = u->mask[r] ? in[1][j] : in[0][r * u->D + j];
}

static void gradchecks(void)
{
    gc_case c = gc_case_new("reshape view (two levels) into gelu", 1);
    gc_input(&c, 0, 3, (int[]){3, 7, 5}, 1);
    n_ud nu = {105};
    gc_run(&c, reshape_f, reshape_d, &nu);
    gc_case_free(&c);

    check_permute("permute (3,2,5,3) by (2,0,3,1)", 4, (int[]){3, 2, 5, 3},
                  (int[]){2, 0, 3, 1});
    check_permute("permute (3,5,7) by (1,2,0)", 3, (int[]){3, 5, 7},
                  (int[]){1, 2, 0});
    check_permute("permute (2,3,1,5,3) by (4,2,0,3,1)", 5,
                  (int[]){2, 3, 1, 5, 3}, (int[]){4, 2, 0, 3, 1});

    c = gc_case_new("transpose (3,5,7) dims 1,-1", 1);
    gc_input(&c, 0, 3, (int[]){3, 5, 7}, 1);
    perm_ud tu = {3, {3, 5, 7}, {0, 2, 1}};
    gc_run(&c, transpose_f, permute_d, &tu);
    gc_case_free(&c);

    int s3[3] = {3, 5, 7};
    for (int dim = 0; dim < 3; dim++) {
        char name[64];
        snprintf(name, sizeof name, "flip (3,5,7) dim %d", dim);
        c = gc_case_new(name, 1);
        gc_input(&c, 0, 3, s3, 1);
        dim_ud u = dim_of(3, s3, dim);
        gc_run(&c, flip_f, flip_d, &u);
        gc_case_free(&c);
    }

    int sl[3][3] = {{0, 1, 2}, {1, 2, 3}, {2, 4, 3}}; /* dim, start, len */
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "slice (3,5,7) dim %d [%d, +%d)", sl[k][0],
                 sl[k][1], sl[k][2]);
        c = gc_case_new(name, 1);
        gc_input(&c, 0, 3, s3, 1);
        dim_ud u = dim_of(3, s3, sl[k][0]);
        u.start = sl[k][1];
        u.len = sl[k][2];
        gc_run(&c, slice_f, slice_d, &u);
        gc_case_free(&c);
    }

    c = gc_case_new("split (3,7,5) dim 1 into 2,4,1", 1);
    gc_input(&c, 0, 3, (int[]){3, 7, 5}, 1);
    gc_run(&c, split_f, split_d, NULL);
    gc_case_free(&c);

    check_concat("concat dim 0", 0);
    check_concat("concat dim 1", 1);
    check_concat("concat dim 3", 3);

    c = gc_case_new("sum", 1);
    gc_input(&c, 0, 3, s3, 1);
    c.fwd_tol = 1e-4;
    gc_run(&c, sum_f, sum_d, &(n_ud){105});
    c.name = "mean";
    gc_run(&c, mean_f, mean_d, &(n_ud){105});
    gc_case_free(&c);
    for (int dim = -1; dim < 3; dim++) {
        char name[64];
        snprintf(name, sizeof name, "mean_dim (3,5,7) dim %d", dim);
        c = gc_case_new(name, 1);
        gc_input(&c, 0, 3, s3, 1);
        dim_ud u = dim_of(3, s3, dim < 0 ? dim + 3 : dim);
        u.dim = dim;
        gc_run(&c, mean_dim_f, mean_dim_d, &u);
        gc_case_free(&c);
    }

    uint8_t mask[105], rows[15];
    for (int i = 0; i < 105; i++)
        mask[i] = (i * 7) % 5 < 2;
    for (int i = 0; i < 15; i++)
        rows[i] = i % 3 == 1 || i == 14;
    mask_ud mu = {105, 7, mask, 0.5f};
    c = gc_case_new("masked_select", 1);
    gc_input(&c, 0, 3, s3, 1);
    gc_run(&c, select_f, select_d, &mu);
    c.name = "masked_fill";
    gc_run(&c, fill_f, fill_d, &mu);
    gc_case_free(&c);
    c = gc_case_new("replace_rows", 2);
    gc_input(&c, 0, 3, s3, 1);
    gc_input(&c, 1, 3, (int[]){1, 1, 7}, 1);
    mu.mask = rows;
    gc_run(&c, rows_f, rows_d, &mu);
    gc_case_free(&c);
}

/* ---- PyTorch parity -------------------------------------------------------- */

static mspt_tensor *fx_param(mspt_params *ps, const fixture *f,
                             const char *name)
{
    const fixture_tensor *ft = fixture_get(f, name);
    mspt_tensor *t = mspt_param_new(ps, name, ft->ndim, ft->shape, 0);
    memcpy(t->data, ft->data, ft->numel * sizeof(float));
    return t;
}

static int fx_match(const char *what, const mspt_tensor *t, const float *got,
                    const fixture *f, const char *name, double tol)
{
    const fixture_tensor *want = fixture_get(f, name);
    int same = got && want->ndim == t->ndim;
    for (int k = 0; same && k < t->ndim; k++)
        same = want->shape[k] == t->shape[k];
    if (!same)
        return ok(0, "%s: %s shape differs from the fixture", what, name);
    double e = fixture_max_rel_err(got, want->data, t->numel, 1e-3);
    int pass = ok(e <= tol, "%s matches PyTorch (%s)", what, name);
    if (!pass)
        diag("max rel err %.3g > %.3g", e, tol);
    return pass;
}

static uint8_t fx_mask[512];

typedef mspt_tensor *(*fx_op)(mspt_ctx *ctx, mspt_tensor **in);

static void parity(const fixture *f, const char *tag, int nin, fx_op op,
                   double tol)
{
    mspt_params *ps = mspt_params_new();
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_tensor *in[4];
    char name[64];
    for (int i = 0; i < nin; i++) {
        snprintf(name, sizeof name, "x_%s_%d", tag, i);
        in[i] = fx_param(ps, f, name);
    }
    mspt_tensor *y = op(ctx, in);
    if (!ok(y != NULL, "%s runs on the fixture", tag)) {
        diag("%s", mspt_ctx_error(ctx));
    } else {
        snprintf(name, sizeof name, "y_%s", tag);
        fx_match(tag, y, y->data, f, name, tol);
        snprintf(name, sizeof name, "r_%s", tag);
        mspt_backward_with(ctx, y, fixture_get(f, name)->data);
        for (int i = 0; i < nin; i++) {
            snprintf(name, sizeof name, "g_%s_%d", tag, i);
            fx_match(tag, in[i], in[i]->grad, f, name, tol);
        }
    }
    mspt_ctx_free(ctx);
    mspt_params_free(ps);
}

static mspt_tensor *op_permute(mspt_ctx *c, mspt_tensor **in) { return mspt_permute(c, in[0], (int[]){2, 0, 3, 1}); }
static mspt_tensor *op_transpose(mspt_ctx *c, mspt_tensor **in) { return mspt_transpose(c, in[0], 0, 2); }
static mspt_tensor *op_flip(mspt_ctx *c, mspt_tensor **in) { return mspt_flip(c, in[0], 1); }
static mspt_tensor *op_narrow(mspt_ctx *c, mspt_tensor **in) { return mspt_slice(c, in[0], 1, 2, 3); }
static mspt_tensor *op_split(mspt_ctx *c, mspt_tensor **in)
{
    mspt_tensor *p[3];
    if (mspt_split(c, in[0], 1, 3, (int[]){2, 4, 1}, p))
        return NULL;
    return mspt_concat(c, 3, (mspt_tensor *[]){p[2], p[1], p[0]}, 1);
}
static mspt_tensor *op_cat(mspt_ctx *c, mspt_tensor **in) { return mspt_concat(c, 3, in, 1); }
static mspt_tensor *op_sum(mspt_ctx *c, mspt_tensor **in) { return mspt_sum(c, in[0]); }
static mspt_tensor *op_mean(mspt_ctx *c, mspt_tensor **in) { return mspt_mean(c, in[0]); }
static mspt_tensor *op_mean_dim1(mspt_ctx *c, mspt_tensor **in) { return mspt_mean_dim(c, in[0], 1); }
static mspt_tensor *op_mean_dimlast(mspt_ctx *c, mspt_tensor **in) { return mspt_mean_dim(c, in[0], -1); }
static mspt_tensor *op_select(mspt_ctx *c, mspt_tensor **in) { return mspt_masked_select(c, in[0], fx_mask); }
static mspt_tensor *op_fill(mspt_ctx *c, mspt_tensor **in) { return mspt_masked_fill(c, in[0], fx_mask, 0.5f); }
static mspt_tensor *op_rows(mspt_ctx *c, mspt_tensor **in) { return mspt_replace_rows(c, in[0], fx_mask, in[1]); }

static void load_mask(const fixture *f, const char *name)
{
    const fixture_tensor *m = fixture_get(f, name);
    if (m->numel > sizeof fx_mask)
        tap_bail("fixture mask too large");
    for (size_t i = 0; i < m->numel; i++)
        fx_mask[i] = m->data[i] != 0.0f;
}

static void parities(void)
{
    fixture *f = fixture_load("shape.txt");
    parity(f, "permute", 1, op_permute, 0);
    parity(f, "transpose", 1, op_transpose, 0);
    parity(f, "flip", 1, op_flip, 0);
    parity(f, "narrow", 1, op_narrow, 0);
    parity(f, "split", 1, op_split, 0);
    parity(f, "cat", 3, op_cat, 0);
    parity(f, "sum", 1, op_sum, 1e-4);
    parity(f, "mean", 1, op_mean, 1e-4);
    parity(f, "mean_dim1", 1, op_mean_dim1, 1e-4);
    parity(f, "mean_dimlast", 1, op_mean_dimlast, 1e-4);
    load_mask(f, "mask");
    parity(f, "masked_select", 1, op_select, 0);
    parity(f, "masked_fill", 1, op_fill, 0);
    load_mask(f, "row_mask");
    parity(f, "replace_rows", 2, op_rows, 1e-5);
    fixture_free(f);
}

static int says(mspt_ctx *ctx, const char *a, const char *b, const char *c)
{
    const char *e = mspt_ctx_error(ctx);
    int r = e && strstr(e, a) && (!b || strstr(e, b)) && (!c || strstr(e, c));
    if (!r)
        diag("error: %s", e ? e : "(none)");
    mspt_ctx_reset(ctx);
    return r;
}

/* ---- reshape is a view --------------------------------------------------- */

static void view_tests(void)
{
    mspt_params *ps = mspt_params_new();
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_tensor *x = mspt_param_new(ps, "x", 3, (int[]){2, 3, 4}, 0);
    for (size_t i = 0; i < x->numel; i++)
        x->data[i] = (float)i;

    mspt_tensor *v = mspt_reshape(ctx, x, 2, (int[]){-1, 6});
    ok(v && v->ndim == 2 && v->shape[0] == 4 && v->shape[1] == 6 &&
           v->numel == 24,
       "reshape (2,3,4) to (-1,6) gives (4,6)");
    ok(v && v->data == x->data && v->base == x, "the view shares x's data, base x");
    ok(v && v->requires_grad && mspt_tape_length(ctx) == 0,
       "the view requires grad and records nothing");
    mspt_tensor *w = mspt_reshape(ctx, v, 1, (int[]){24});
    ok(w && w->base == x && w->data == x->data,
       "a view of a view points at the root");
    float r[24];
    for (int i = 0; i < 24; i++)
        r[i] = (float)(i % 5);
    mspt_tensor *y = mspt_scale(ctx, w, 3.0f);
    mspt_backward_with(ctx, y, r);
    int good = 1;
    for (int i = 0; i < 24; i++)
        good &= x->grad[i] == 3.0f * r[i];
    ok(good, "gradients through the view land in the base's buffer");

    /* activations too: the view's grad is its base's arena grad */
    mspt_ctx_reset(ctx);
    mspt_params_zero_grad(ps);
    mspt_tensor *a = mspt_scale(ctx, x, 2.0f);
    mspt_tensor *av = mspt_reshape(ctx, a, 2, (int[]){6, 4});
    mspt_tensor *b = mspt_scale(ctx, av, 5.0f);
    mspt_backward_with(ctx, b, r);
    ok(a->grad && mspt_grad(ctx, av) == a->grad && x->grad[7] == 10.0f * r[7],
       "an activation's view shares its grad buffer; the chain reaches x");

    /* no-grad and constants */
    float buf[6] = {1, 2, 3, 4, 5, 6};
    mspt_tensor *c = mspt_tensor_wrap(ctx, buf, 1, (int[]){6});
    mspt_tensor *cv = mspt_reshape(ctx, c, 2, (int[]){2, 3});
    ok(cv && !cv->requires_grad && mspt_grad(ctx, cv) == NULL,
       "a view of a constant needs no gradient");
    mspt_ctx_set_grad(ctx, 0);
    v = mspt_reshape(ctx, x, 2, (int[]){4, 6});
    ok(v && !v->requires_grad, "no-grad mode: the view needs no gradient");
    mspt_ctx_set_grad(ctx, 1);

    /* errors */
    mspt_ctx_reset(ctx);
    ok(mspt_reshape(ctx, x, 2, (int[]){5, 5}) == NULL, "reshape (2,3,4) to (5,5) refused");
    const char *e = mspt_ctx_error(ctx);
    ok(e && strstr(e, "reshape") && strstr(e, "(2,3,4)") && strstr(e, "(5,5)"),
       "message: %s", e ? e : "(none)");
    mspt_ctx_reset(ctx);
    ok(mspt_reshape(ctx, x, 2, (int[]){-1, -1}) == NULL &&
           says(ctx, "reshape", "(2,3,4)", NULL),
       "two -1 dims refused");
    ok(mspt_reshape(ctx, x, 2, (int[]){-1, 5}) == NULL &&
           says(ctx, "reshape", "(2,3,4)", NULL),
       "a -1 that cannot divide refused");
    ok(mspt_reshape(ctx, x, 6, (int[]){1, 1, 2, 3, 4, 1}) == NULL &&
           says(ctx, "reshape", NULL, NULL),
       "6 dims refused");

    mspt_ctx_free(ctx);
    mspt_params_free(ps);
}

/* ---- parallel paths on large tensors -------------------------------------- */

static void large_tests(int threads)
{
    mspt_set_threads(threads);
    mspt_rng *rng = mspt_rng_new(21);
    mspt_params *ps = mspt_params_new();
    mspt_ctx *ctx = mspt_ctx_new();
    int B = 3, C = 97, T = 131; /* 38,121 elements: over the threshold */
    mspt_tensor *x = mspt_param_new(ps, "x", 3, (int[]){B, C, T}, 0);
    mspt_init_uniform(x, rng, -1.0f, 1.0f);
    size_t n = x->numel;
    float *r = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        r[i] = (float)mspt_rng_uniform(rng) - 0.5f;

    /* permute (B,C,T) -> (T,B,C): y[t,b,c] = x[b,c,t]; dx = r back */
    mspt_tensor *y = mspt_permute(ctx, x, (int[]){2, 0, 1});
    mspt_backward_with(ctx, y, r);
    int good = 1;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < T; t++) {
                size_t xi = ((size_t)b * C + c) * T + t;
                size_t yi = ((size_t)t * B + b) * C + c;
                good &= y->data[yi] == x->data[xi] && x->grad[xi] == r[yi];
            }
    ok(good, "permute (%d,%d,%d) by (2,0,1), %d threads: y and dx exact", B,
       C, T, threads);

    /* flip along time, slice a window, concat it back with the rest */
    mspt_ctx_reset(ctx);
    mspt_params_zero_grad(ps);
    y = mspt_flip(ctx, x, 2);
    good = 1;
    for (size_t row = 0; row < (size_t)B * C; row++)
        for (int t = 0; t < T; t++)
            good &= y->data[row * T + t] == x->data[row * T + (T - 1 - t)];
    ok(good, "flip dim 2, %d threads: exact", threads);
    mspt_tensor *p0 = mspt_slice(ctx, x, 2, 0, 50);
    mspt_tensor *p1 = mspt_slice(ctx, x, 2, 50, T - 50);
    mspt_tensor *z = mspt_concat(ctx, 2, (mspt_tensor *[]){p1, p0}, 2);
    mspt_backward_with(ctx, z, r);
    good = 1;
    for (size_t row = 0; row < (size_t)B * C; row++)
        for (int t = 0; t < T; t++) {
            int src = t < T - 50 ? t + 50 : t - (T - 50);
            good &= z->data[row * T + t] == x->data[row * T + src] &&
                    x->grad[row * T + src] == r[row * T + t];
        }
    ok(good, "slice + concat rotate time by 50, %d threads: y and dx exact",
       threads);

    /* sum against a serial double sum, bitwise stable run to run */
    mspt_ctx_reset(ctx);
    double want = 0;
    for (size_t i = 0; i < n; i++)
        want += x->data[i];
    mspt_tensor *s1 = mspt_sum(ctx, x), *s2 = mspt_sum(ctx, x);
    ok(fabs(s1->data[0] - want) <= 1e-6 * fmax(1, fabs(want)) &&
           s1->data[0] == s2->data[0],
       "sum of %zu, %d threads: %.7g (want %.7g), stable", n, threads,
       s1->data[0], want);

    /* mean over channels (B,C,T) -> (B,T) */
    mspt_tensor *m = mspt_mean_dim(ctx, x, 1);
    double err = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            double s = 0;
            for (int c = 0; c < C; c++)
                s += x->data[((size_t)b * C + c) * T + t];
            err = fmax(err, fabs(m->data[(size_t)b * T + t] - s / C));
        }
    ok(m->ndim == 2 && m->shape[0] == B && m->shape[1] == T && err < 1e-6,
       "mean_dim 1 of (%d,%d,%d), %d threads: (%d,%d), err %.2g", B, C, T,
       threads, B, T, err);

    /* masked_select over many blocks, and its scatter back */
    mspt_ctx_reset(ctx);
    mspt_params_zero_grad(ps);
    uint8_t *mask = malloc(n), *keep = malloc(n);
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        keep[i] = mspt_rng_uniform(rng) < 0.25;
        count += keep[i];
    }
    memcpy(mask, keep, n);
    y = mspt_masked_select(ctx, x, mask);
    memset(mask, 0, n); /* the op must have kept its own copy */
    ok(y && y->numel == count, "masked_select keeps %zu of %zu", count, n);
    mspt_backward_with(ctx, y, r);
    good = 1;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (keep[i]) {
            good &= y->data[j] == x->data[i] && x->grad[i] == r[j];
            j++;
        } else {
            good &= x->grad[i] == 0.0f;
        }
    }
    ok(good, "masked_select, %d threads: order kept, backward scatters (mask "
             "reused by the caller)", threads);

    /* replace_rows: tokens (B·C, T) with a learned row v */
    mspt_ctx_reset(ctx);
    mspt_params_zero_grad(ps);
    mspt_tensor *v = mspt_param_new(ps, "v", 1, (int[]){T}, 0);
    mspt_init_uniform(v, rng, -1.0f, 1.0f);
    uint8_t rows[3 * 97];
    for (int i = 0; i < B * C; i++)
        rows[i] = i % 3 == 0;
    y = mspt_replace_rows(ctx, x, rows, v);
    mspt_backward_with(ctx, y, r);
    good = 1;
    err = 0;
    for (int t = 0; t < T; t++) {
        double s = 0;
        for (int i = 0; i < B * C; i++) {
            size_t at = (size_t)i * T + t;
            good &= y->data[at] == (rows[i] ? v->data[t] : x->data[at]);
            good &= x->grad[at] == (rows[i] ? 0.0f : r[at]);
            if (rows[i])
                s += r[at];
        }
        err = fmax(err, fabs(v->grad[t] - s));
    }
    ok(good && err < 1e-6,
       "replace_rows (%d rows), %d threads: y, dx exact, dv sums replaced "
       "rows (err %.2g)", B * C, threads, err);

    free(mask);
    free(keep);
    free(r);
    mspt_ctx_free(ctx);
    mspt_params_free(ps);
    mspt_rng_free(rng);
}

/* ---- errors and no-grad ------------------------------------------------- */

static void error_tests(void)
{
    mspt_params *ps = mspt_params_new();
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_tensor *x = mspt_param_new(ps, "x", 3, (int[]){2, 3, 4}, 0);
    mspt_tensor *o = mspt_param_new(ps, "o", 3, (int[]){2, 5, 3}, 0);
    mspt_tensor *v = mspt_param_new(ps, "v", 1, (int[]){3}, 0);
    uint8_t mask[24] = {0};
    mspt_tensor *out[3];

    ok(mspt_permute(ctx, x, (int[]){0, 0, 1}) == NULL &&
           says(ctx, "permute", "(0,0,1)", "(2,3,4)"),
       "permute by (0,0,1) refused, naming both");
    ok(mspt_permute(ctx, x, (int[]){0, 1, 3}) == NULL && says(ctx, "permute", NULL, NULL),
       "permute with an out-of-range dim refused");
    ok(mspt_transpose(ctx, x, 0, 3) == NULL && says(ctx, "transpose", "(2,3,4)", NULL),
       "transpose dim 3 of 3 refused");
    ok(mspt_flip(ctx, x, -4) == NULL && says(ctx, "flip", "(2,3,4)", NULL),
       "flip dim -4 refused");
    ok(mspt_slice(ctx, x, 1, 2, 2) == NULL && says(ctx, "slice", "(2,3,4)", NULL),
       "slice [2, 4) of a dim of 3 refused");
    ok(mspt_slice(ctx, x, 1, -1, 1) == NULL && says(ctx, "slice", NULL, NULL),
       "slice with a negative start refused");
    ok(mspt_split(ctx, x, 2, 2, (int[]){1, 2}, out) != 0 && out[0] == NULL &&
           says(ctx, "split", "(2,3,4)", NULL),
       "split sizes not covering the dim refused");
    ok(mspt_concat(ctx, 2, (mspt_tensor *[]){x, o}, 1) == NULL &&
           says(ctx, "concat", "(2,5,3)", "(2,3,4)"),
       "concat of (2,3,4) and (2,5,3) along 1 refused, naming both");
    ok(mspt_mean_dim(ctx, x, 3) == NULL && says(ctx, "mean_dim", "(2,3,4)", NULL),
       "mean_dim 3 of 3 dims refused");
    ok(mspt_replace_rows(ctx, x, mask, v) == NULL &&
           says(ctx, "replace_rows", "(3)", "(2,3,4)"),
       "replace_rows with v (3) for rows of 4 refused");
    ok(mspt_masked_fill(ctx, x, NULL, 0) == NULL && says(ctx, "masked_fill", NULL, NULL),
       "masked_fill without a mask refused");

    ok(mspt_permute(ctx, NULL, (int[]){0}) == NULL && mspt_flip(ctx, NULL, 0) == NULL &&
           mspt_slice(ctx, NULL, 0, 0, 1) == NULL &&
           mspt_concat(ctx, 2, (mspt_tensor *[]){x, NULL}, 0) == NULL &&
           mspt_split(ctx, NULL, 0, 1, (int[]){1}, out) != 0 &&
           mspt_sum(ctx, NULL) == NULL && mspt_mean_dim(ctx, NULL, 0) == NULL &&
           mspt_masked_select(ctx, NULL, mask) == NULL &&
           mspt_replace_rows(ctx, x, mask, NULL) == NULL &&
           mspt_reshape(ctx, NULL, 1, (int[]){1}) == NULL &&
           mspt_ctx_error(ctx) == NULL,
       "NULL inputs give NULL and record nothing");

    /* an empty selection: shape (0), backward leaves zeros */
    mspt_tensor *e = mspt_masked_select(ctx, x, mask);
    ok(e && e->ndim == 1 && e->shape[0] == 0, "masked_select of nothing is (0)");

    mspt_ctx_reset(ctx);
    mspt_ctx_set_grad(ctx, 0);
    mspt_tensor *s1 = mspt_slice(ctx, x, 2, 1, 2);
    mspt_tensor *outs[] = {
        mspt_permute(ctx, x, (int[]){2, 1, 0}), mspt_transpose(ctx, x, 0, 1),
        mspt_flip(ctx, x, 1), s1,
        mspt_concat(ctx, 2, (mspt_tensor *[]){x, x}, 0),
        mspt_sum(ctx, x), mspt_mean(ctx, x), mspt_mean_dim(ctx, x, 0),
        mspt_masked_select(ctx, x, mask), mspt_masked_fill(ctx, x, mask, 1),
        mspt_replace_rows(ctx, o, (uint8_t[10]){1}, v)};
    int none = 1;
    for (size_t i = 0; i < sizeof outs / sizeof *outs; i++)
        none &= outs[i] && !outs[i]->requires_grad;
    ok(none && mspt_tape_length(ctx) == 0, "no-grad mode records nothing");
    mspt_ctx_set_grad(ctx, 1);

    mspt_ctx_free(ctx);
    mspt_params_free(ps);
}

int main(void)
{
    mspt_set_threads(2);
    gradchecks();
    parities();
    view_tests();
    large_tests(2);
    large_tests(3);
    mspt_set_threads(2);
    error_tests();
    return tap_done();
}
