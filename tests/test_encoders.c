/* The encoder plugins (femba, transformer) against the PyTorch reference
 * (scripts/reference_models.py, fixtures by scripts/gen_fixtures_encoders.py):
 * on the reference's weights and inputs, the reconstruction, the embeddings,
 * the masked smooth-L1 loss and the gradient of every parameter agree to
 * 1e-4 relative; the full-size models have exactly the reference's
 * parameter names and shapes (FEMBA-Tiny: 7,797,177 parameters); no-grad
 * mode records nothing; a wrongly shaped input is refused.
 *
 * Also a helper for tests/test_reconstruct.sh:
 *   test_encoders --compare GOT.safetensors WANT.safetensors
 * compares reconstruction, embeddings, the loss and (when GOT has
 * gradients) every grad.* of WANT with GOT (1e-4 relative), and GOT's input
 * with WANT's x (exactly); exits 0 when all agree. */
#include <math.h>
#include <string.h>

#include "io/safetensors.h"
#include "plugin_util.h"

#define TOL 1e-4

/* Max over elements of |got − want| / max(|want|, floor·max|want|). */
static double rel_err_floor(const float *got, const float *want, size_t n,
                            double rel_floor)
{
    double top = 0, worst = 0;
    for (size_t i = 0; i < n; i++)
        top = fmax(top, fabs(want[i]));
    double floor = top > 0 ? rel_floor * top : 1e-12;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) / fmax(fabs(want[i]), floor);
        if (!(e <= worst))
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

/* Outputs: floor 1e-3 of the tensor's max. */
static double rel_err(const float *got, const float *want, size_t n)
{
    return rel_err_floor(got, want, n, 1e-3);
}

/* Gradients: floor 1e-2.  A gradient element is a sum over tokens whose
 * terms are as large as the tensor's largest element; float32 resolves it
 * to a few ulps of that, ~1e-7·max.  With a floor of 1e-3·max, 1e-4 would
 * demand less than one ulp there: PyTorch's own float32 backward misses it
 * against float64 (1.2e-4 on x_proj.weight).  1e-2 still asks an absolute
 * 1e-6·max of the small elements and 1e-4 relative of the rest. */
static double grad_err(const float *got, const float *want, size_t n)
{
    return rel_err_floor(got, want, n, 1e-2);
}

/* Tensor `name` of f as float32 (malloc'ed), or NULL. */
static float *read_all(mspt_st_file *f, const char *name, size_t *numel)
{
    long k = mspt_st_find(f, name);
    if (k < 0)
        return NULL;
    *numel = mspt_st_numel(f, (size_t)k);
    float *v = malloc((*numel ? *numel : 1) * sizeof *v);
    if (mspt_st_read_f32(f, name, v, *numel, NULL)) {
        free(v);
        return NULL;
    }
    return v;
}

static int same_shape(mspt_st_file *f, long k, const mspt_tensor *t)
{
    if (mspt_st_ndim(f, (size_t)k) != t->ndim)
        return 0;
    for (int d = 0; d < t->ndim; d++)
        if (mspt_st_shape(f, (size_t)k)[d] != t->shape[d])
            return 0;
    return 1;
}

static mspt_st_file *open_fixture(const char *file)
{
    const char *src = getenv("MSPT_SRCDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", src ? src : ".", file);
    mspt_error err = {0};
    mspt_st_file *f = mspt_st_open(path, &err);
    if (!f)
        tap_bail(err.msg);
    return f;
}

/* Compare tensor `name` of want with got (a buffer of n floats). */
static void check_tensor(const char *what, mspt_st_file *want, const char *name,
                         const float *got, size_t n)
{
    size_t m = 0;
    float *w = read_all(want, name, &m);
    if (!w || m != n) {
        ok(0, "%s: %s present with %zu elements", what, name, n);
        free(w);
        return;
    }
    double e = rel_err(got, w, n);
    ok(e < TOL, "%s: %s matches PyTorch (max rel err %.2g)", what, name, e);
    free(w);
}

typedef struct built {
    const mspt_component *c;
    const mspt_encoder_vt *vt;
    mspt_node *tree;
    mspt_params *ps;
    void *self;
} built;

static built build(const char *kind, const char *yaml)
{
    built b = {0};
    b.c = tp_component("encoders", kind, MSPT_KIND_ENCODER, kind);
    b.vt = b.c->vtable;
    mspt_config cfg;
    b.tree = tp_config(b.c, "model", yaml, &cfg);
    b.ps = mspt_params_new();
    mspt_rng *rng = mspt_rng_new(1);
    mspt_error err = {0};
    if (b.vt->create(&cfg, b.ps, rng, &b.self, &err))
        tap_bail(err.msg);
    mspt_rng_free(rng);
    return b;
}

static void unbuild(built *b)
{
    b->vt->destroy(b->self);
    mspt_params_free(b->ps);
    mspt_node_free(b->tree);
}

/* One small configuration: weights in, forward + loss + backward, compare. */
static void parity(const char *kind, const char *name)
{
    char file[128];
    snprintf(file, sizeof file, "encoder_%s.safetensors", name);
    mspt_st_file *f = open_fixture(file);
    const char *yaml = mspt_st_metadata(f, "config");
    if (!yaml)
        tap_bail("fixture without config metadata");
    built b = build(kind, yaml);

    /* the reference's weights, by name: none missing, none extra */
    size_t nparams = mspt_params_count(b.ps), in_file = 0;
    int all = 1;
    char key[256];
    for (size_t i = 0; i < mspt_st_count(f); i++)
        in_file += !strncmp(mspt_st_name(f, i), "model.", 6);
    for (size_t i = 0; i < nparams; i++) {
        mspt_tensor *p = mspt_params_at(b.ps, i);
        snprintf(key, sizeof key, "model.%s", p->name);
        long k = mspt_st_find(f, key);
        if (k < 0 || !same_shape(f, k, p) ||
            mspt_st_read_f32(f, key, p->data, p->numel, NULL)) {
            diag("%s: %s missing or of another shape", name, key);
            all = 0;
        }
    }
    ok(all && in_file == nparams, "%s: the %zu parameters are the reference's "
       "state_dict (%zu tensors in the file)", name, nparams, in_file);

    size_t n = 0, nm = 0;
    float *x = read_all(f, "x", &n), *mf = read_all(f, "mask", &nm);
    long kx = mspt_st_find(f, "x");
    if (!x || !mf || n != nm || kx < 0)
        tap_bail("fixture: x or mask missing");
    int shape[3];
    for (int d = 0; d < 3; d++)
        shape[d] = (int)mspt_st_shape(f, (size_t)kx)[d];
    uint8_t *mask = malloc(n);
    float *input = malloc(n * sizeof *input);
    for (size_t i = 0; i < n; i++) {
        mask[i] = mf[i] != 0.0f;
        input[i] = mask[i] ? 0.0f : x[i];
    }

    mspt_ctx *ctx = mspt_ctx_new();
    mspt_tensor *xin = mspt_tensor_wrap(ctx, input, 3, shape);
    mspt_tensor *target = mspt_tensor_wrap(ctx, x, 3, shape);
    mspt_tensor *emb = NULL;
    mspt_tensor *recon = b.vt->forward(b.self, ctx, xin, mask, &emb);
    mspt_tensor *loss = mspt_smooth_l1_loss(ctx, recon, target, mask, 1.0f);
    if (!loss || !emb || mspt_backward(ctx, loss)) {
        diag("%s", mspt_ctx_error(ctx) ? mspt_ctx_error(ctx) : "no embeddings");
        tap_bail("forward or backward failed");
    }
    check_tensor(name, f, "reconstruction", recon->data, recon->numel);
    check_tensor(name, f, "embeddings", emb->data, emb->numel);
    double want_loss = atof(mspt_st_metadata(f, "loss"));
    ok(fabs(loss->data[0] - want_loss) <= TOL * fabs(want_loss),
       "%s: masked smooth-L1 loss %.7f (PyTorch %.7f)", name, loss->data[0], want_loss);

    double worst = 0, worst3 = 0;
    const char *worst_name = "";
    for (size_t i = 0; i < nparams; i++) {
        mspt_tensor *p = mspt_params_at(b.ps, i);
        snprintf(key, sizeof key, "grad.%s", p->name);
        size_t m = 0;
        float *g = read_all(f, key, &m);
        double e = g && m == p->numel ? grad_err(p->grad, g, m) : INFINITY;
        if (!(e < TOL))
            diag("%s: %s max rel err %.3g", name, key, e);
        if (g && m == p->numel)
            worst3 = fmax(worst3, rel_err(p->grad, g, m));
        if (!(e <= worst)) {
            worst = e;
            worst_name = p->name;
        }
        free(g);
    }
    ok(worst < TOL, "%s: all %zu parameter gradients match (worst %.2g, %s)",
       name, nparams, worst, worst_name);
    diag("%s: worst gradient error with a floor of 1e-3·max: %.2g", name, worst3);

    /* no-grad mode: same numbers, nothing on the tape */
    float *first = malloc(recon->numel * sizeof *first);
    memcpy(first, recon->data, recon->numel * sizeof *first);
    size_t rn = recon->numel;
    mspt_ctx_reset(ctx);
    mspt_ctx_set_grad(ctx, 0);
    xin = mspt_tensor_wrap(ctx, input, 3, shape);
    recon = b.vt->forward(b.self, ctx, xin, mask, NULL);
    ok(recon && recon->numel == rn && !memcmp(recon->data, first, rn * sizeof *first) &&
           mspt_tape_length(ctx) == 0 && !recon->requires_grad,
       "%s: no-grad forward gives the same reconstruction and records nothing", name);

    /* a window of the wrong length is refused with both shapes */
    mspt_ctx_reset(ctx);
    int bad[3] = {shape[0], shape[1], shape[2] - 1};
    xin = mspt_tensor_wrap(ctx, input, 3, bad);
    recon = b.vt->forward(b.self, ctx, xin, NULL, NULL);
    const char *msg = mspt_ctx_error(ctx);
    char want[64];
    snprintf(want, sizeof want, "(%d,%d,%d) is not (B,%d,%d)", bad[0], bad[1],
             bad[2], shape[1], shape[2]);
    ok(!recon && msg && !strncmp(msg, kind, strlen(kind)) && strstr(msg, want),
       "%s: a (%d,%d,%d) input is refused (%s)", name, bad[0], bad[1], bad[2],
       msg ? msg : "no error");

    free(first);
    free(x);
    free(mf);
    free(mask);
    free(input);
    mspt_ctx_free(ctx);
    unbuild(&b);
    mspt_st_close(f);
}

/* A full-size model's parameters equal the reference's state_dict. */
static void full_size(mspt_st_file *f, const char *kind, const char *model,
                      const char *yaml)
{
    built b = build(kind, yaml);
    char key[256];
    size_t in_file = 0, prefix = strlen(model) + 1, matched = 0;
    for (size_t i = 0; i < mspt_st_count(f); i++)
        in_file += !strncmp(mspt_st_name(f, i), model, prefix - 1) &&
                   mspt_st_name(f, i)[prefix - 1] == '/';
    for (size_t i = 0; i < mspt_params_count(b.ps); i++) {
        mspt_tensor *p = mspt_params_at(b.ps, i);
        snprintf(key, sizeof key, "%s/%s", model, p->name);
        size_t nd = 0;
        float *dims = read_all(f, key, &nd);
        int same = dims && (int)nd == p->ndim;
        for (int d = 0; same && d < p->ndim; d++)
            same = dims[d] == (float)p->shape[d];
        if (!same)
            diag("%s: %s missing or of another shape", model, p->name);
        matched += same;
        free(dims);
    }
    ok(matched == mspt_params_count(b.ps) && in_file == matched,
       "%s: parameter names and shapes are the PyTorch state_dict's (%zu of %zu)",
       model, matched, in_file);
    snprintf(key, sizeof key, "%s.numel", model);
    const char *want = mspt_st_metadata(f, key);
    size_t numel = mspt_params_numel(b.ps);
    ok(want && numel == strtoull(want, NULL, 10), "%s: %zu parameters (PyTorch %s)",
       model, numel, want ? want : "?");
    if (!strcmp(model, "femba_tiny"))
        ok(numel == 7797177, "FEMBA-Tiny has 7,797,177 parameters");
    unbuild(&b);
}

/* --compare GOT WANT: the helper of tests/test_reconstruct.sh. */
static int compare(const char *got_path, const char *want_path)
{
    mspt_error err = {0};
    mspt_st_file *got = mspt_st_open(got_path, &err), *want = NULL;
    if (got)
        want = mspt_st_open(want_path, &err);
    if (!got || !want) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    int bad = 0, count = 0, grads = 0;
    for (size_t i = 0; i < mspt_st_count(got); i++)
        grads += !strncmp(mspt_st_name(got, i), "grad.", 5);
    for (size_t i = 0; i < mspt_st_count(want); i++) {
        const char *name = mspt_st_name(want, i);
        if (strcmp(name, "reconstruction") && strcmp(name, "embeddings") &&
            (strncmp(name, "grad.", 5) || !grads))
            continue;
        size_t n = 0, m = 0;
        float *w = read_all(want, name, &n), *g = read_all(got, name, &m);
        double e = !g || n != m ? INFINITY
                   : strncmp(name, "grad.", 5) ? rel_err(g, w, n) : grad_err(g, w, n);
        printf("%s max rel err %.3g\n", name, e);
        bad += !(e < TOL);
        count++;
        free(w);
        free(g);
    }
    size_t n = 0, m = 0; /* the window written back is the one given */
    float *x = read_all(want, "x", &n), *in = read_all(got, "input", &m);
    int same_input = x && in && n == m && !memcmp(x, in, n * sizeof *x);
    printf("input %s x\n", same_input ? "equals" : "differs from");
    bad += !same_input;
    free(x);
    free(in);
    for (size_t i = 0; i < mspt_st_count(got); i++) /* no grad too many */
        if (!strncmp(mspt_st_name(got, i), "grad.", 5) &&
            mspt_st_find(want, mspt_st_name(got, i)) < 0) {
            printf("%s is not in %s\n", mspt_st_name(got, i), want_path);
            bad++;
        }
    const char *lg = mspt_st_metadata(got, "loss"), *lw = mspt_st_metadata(want, "loss");
    double el = lg && lw ? fabs(atof(lg) - atof(lw)) / fabs(atof(lw)) : INFINITY;
    printf("loss %s (want %s) rel err %.3g\n", lg ? lg : "?", lw ? lw : "?", el);
    bad += !(el < TOL);
    printf("%d tensors compared, %d differ\n", count, bad);
    mspt_st_close(got);
    mspt_st_close(want);
    return bad || count == 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--compare"))
        return compare(argv[2], argv[3]);
    mspt_set_threads(2); /* the summation order, hence the figures, fixed */
    parity("femba", "femba");
    parity("femba", "femba_stride");
    parity("transformer", "transformer");
    mspt_st_file *f = open_fixture("encoder_shapes.safetensors");
    full_size(f, "femba", "femba_tiny",
              "{num_channels: 22, seq_length: 1280, embed_dim: 35, num_blocks: 2, exp: 4}");
    full_size(f, "transformer", "transformer", "{}");
    mspt_st_close(f);
    return tap_done();
}
