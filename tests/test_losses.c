/* The loss plugin components (plugins/losses): l1, mse, smooth_l1 against
 * PyTorch's F.*_loss(pred[mask], target[mask]) and F.*_loss(pred, target),
 * values and gradients w.r.t. pred and target; beta handling; errors. */
#include <string.h>

#include "fixture.h"
#include "plugin_util.h"

typedef struct loss_case {
    const char *fixture; /* prefix in losses.txt */
    const char *name;    /* component */
    const char *yaml;    /* its criterion table */
} loss_case;

static const loss_case cases[] = {
    {"l1", "l1", "{}"},
    {"mse", "mse", "{}"},
    {"sl1_b0", "smooth_l1", "{beta: 0}"},
    {"sl1_b0p5", "smooth_l1", "{beta: 0.5}"},
    {"sl1_b1", "smooth_l1", "{beta: 1}"},
    {"sl1_b1", "smooth_l1", "{}"}, /* the default is beta 1 */
    {"sl1_b2", "smooth_l1", "{beta: 2.0}"},
};

static const mspt_component *component(const char *name)
{
    return tp_component("losses", "losses", MSPT_KIND_LOSS, name);
}

/* Builds the loss from its table; NULL (and a failed test point) on error. */
static void *build(const mspt_component *c, const char *yaml,
                   mspt_error *err)
{
    mspt_config cfg;
    mspt_node *tree = tp_config_err(c, "criterion", yaml, &cfg, err);
    if (!tree)
        return NULL;
    void *self = NULL;
    const mspt_loss_vt *vt = c->vtable;
    int rc = vt->create(&cfg, &self, err);
    mspt_node_free(tree);
    return rc ? NULL : self;
}

/* One case on all elements or on the mask, against the fixture. */
static void check_case(const fixture *f, const loss_case *lc, int masked)
{
    const fixture_tensor *fp = fixture_get(f, "pred");
    const fixture_tensor *ft = fixture_get(f, "target");
    const fixture_tensor *fm = fixture_get(f, "mask");
    char key[96];
    snprintf(key, sizeof key, "%s_%s", lc->fixture, masked ? "mask" : "all");
    const fixture_tensor *want = fixture_get(f, key);
    snprintf(key, sizeof key, "%s_%s_gp", lc->fixture, masked ? "mask" : "all");
    const fixture_tensor *want_gp = fixture_get(f, key);
    const char *sel = masked ? "masked" : "all elements";

    const mspt_component *c = component(lc->name);
    const mspt_loss_vt *vt = c->vtable;
    mspt_error err = {0};
    void *self = build(c, lc->yaml, &err);
    if (!ok(self != NULL, "%s %s: created", lc->name, lc->yaml)) {
        diag("%s", err.msg);
        return;
    }
    mspt_params *ps = mspt_params_new();
    mspt_tensor *pred = mspt_param_new(ps, "pred", fp->ndim, fp->shape, 0);
    mspt_tensor *target = mspt_param_new(ps, "target", ft->ndim, ft->shape, 0);
    memcpy(pred->data, fp->data, fp->numel * sizeof(float));
    memcpy(target->data, ft->data, ft->numel * sizeof(float));
    pred->requires_grad = target->requires_grad = 1;
    uint8_t *mask = malloc(fm->numel);
    for (size_t i = 0; i < fm->numel; i++)
        mask[i] = fm->data[i] != 0.0f;

    mspt_ctx *ctx = mspt_ctx_new();
    mspt_tensor *y = vt->forward(self, ctx, pred, target, masked ? mask : NULL);
    if (ok(y && y->numel == 1, "%s %s %s: forward gives a scalar", lc->name,
           lc->yaml, sel)) {
        is_close(y->data[0], want->data[0], 1e-5, "%s %s %s: value = torch",
                 lc->name, lc->yaml, sel);
        ok(mspt_backward(ctx, y) == 0, "%s %s %s: backward runs", lc->name,
           lc->yaml, sel);
        double e = fixture_max_rel_err(pred->grad, want_gp->data,
                                       want_gp->numel, 1e-3);
        ok(e <= 1e-5, "%s %s %s: d/dpred = torch (rel err %.2g)", lc->name,
           lc->yaml, sel, e);
        /* d/dtarget = -d/dpred for every elementwise loss of pred - target */
        float *neg = malloc(want_gp->numel * sizeof(float));
        for (size_t i = 0; i < want_gp->numel; i++)
            neg[i] = -want_gp->data[i];
        e = fixture_max_rel_err(target->grad, neg, want_gp->numel, 1e-3);
        ok(e <= 1e-5, "%s %s %s: d/dtarget = -d/dpred (rel err %.2g)",
           lc->name, lc->yaml, sel, e);
        free(neg);
    } else if (mspt_ctx_error(ctx)) {
        diag("%s", mspt_ctx_error(ctx));
    }
    mspt_ctx_free(ctx);
    free(mask);
    mspt_params_free(ps);
    vt->destroy(self);
}

static void check_components(void)
{
    const char *names[] = {"l1", "mse", "smooth_l1"};
    for (int i = 0; i < 3; i++) {
        const mspt_component *c = component(names[i]);
        ok(c->kind == MSPT_KIND_LOSS && c->summary && *c->summary &&
               c->abi_version == MSPT_ABI_VERSION,
           "%s: a loss with a summary and this ABI", names[i]);
    }
    const mspt_param *p = component("smooth_l1")->params;
    ok(p[0].name && !strcmp(p[0].name, "beta") && p[0].type == MSPT_PARAM_FLOAT &&
           p[0].def && !strcmp(p[0].def, "1.0") && p[0].help && !p[1].name,
       "smooth_l1: one float param beta, default 1.0, with help");
    ok(!component("l1")->params[0].name && !component("mse")->params[0].name,
       "l1, mse: no parameters");
}

static void check_errors(void)
{
    mspt_error err = {0};
    void *self = build(component("smooth_l1"), "{beta: -0.5}", &err);
    ok(!self && err.status == MSPT_ERR_CONFIG &&
           strstr(err.msg, "criterion.beta: must be >= 0"),
       "smooth_l1: negative beta refused with its key path");
    diag("%s", err.msg);

    memset(&err, 0, sizeof err);
    self = build(component("l1"), "{beta: 1.0}", &err);
    ok(!self && strstr(err.msg, "criterion.beta"),
       "l1: takes no beta (the schema refuses the key)");

    /* op errors come back through the plugin as NULL + a message */
    self = build(component("mse"), "{}", &err);
    const mspt_loss_vt *vt = component("mse")->vtable;
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_tensor *a = mspt_tensor_zeros(ctx, 2, (int[]){2, 3});
    mspt_tensor *b = mspt_tensor_zeros(ctx, 2, (int[]){3, 2});
    mspt_tensor *y = vt->forward(self, ctx, a, b, NULL);
    const char *msg = mspt_ctx_error(ctx);
    ok(!y && msg && strstr(msg, "mse_loss") && strstr(msg, "(2,3)") &&
           strstr(msg, "(3,2)"),
       "mse: shape mismatch gives NULL naming the op and both shapes");
    ok(vt->forward(self, ctx, NULL, b, NULL) == NULL, "mse: NULL input -> NULL");
    mspt_ctx_free(ctx);
    vt->destroy(self);
}

/* No-grad mode records nothing; an empty mask gives 0, not NaN. */
static void check_modes(const fixture *f)
{
    const fixture_tensor *fp = fixture_get(f, "pred");
    const fixture_tensor *ft = fixture_get(f, "target");
    const mspt_component *c = component("smooth_l1");
    const mspt_loss_vt *vt = c->vtable;
    mspt_error err = {0};
    void *self = build(c, "{beta: 0.5}", &err);
    mspt_params *ps = mspt_params_new();
    mspt_tensor *pred = mspt_param_new(ps, "pred", fp->ndim, fp->shape, 0);
    memcpy(pred->data, fp->data, fp->numel * sizeof(float));
    pred->requires_grad = 1;
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_tensor *target = mspt_tensor_wrap(ctx, ft->data, ft->ndim, ft->shape);

    mspt_ctx_set_grad(ctx, 0);
    mspt_tensor *y = vt->forward(self, ctx, pred, target, NULL);
    ok(y && mspt_tape_length(ctx) == 0 && !y->requires_grad,
       "smooth_l1: no-grad mode records nothing");
    is_close(y ? y->data[0] : NAN, fixture_get(f, "sl1_b0p5_all")->data[0],
             1e-5, "smooth_l1: no-grad value unchanged");

    mspt_ctx_set_grad(ctx, 1);
    uint8_t *none = calloc(fp->numel, 1);
    y = vt->forward(self, ctx, pred, target, none);
    int zero = y && y->data[0] == 0.0f && mspt_backward(ctx, y) == 0;
    for (size_t i = 0; zero && i < pred->numel; i++)
        zero = pred->grad[i] == 0.0f;
    ok(zero, "smooth_l1: empty mask gives 0 and zero gradients");
    free(none);
    mspt_ctx_free(ctx);
    mspt_params_free(ps);
    vt->destroy(self);
}

int main(void)
{
    fixture *f = fixture_load("losses.txt");
    check_components();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_case(f, &cases[i], 0);
        check_case(f, &cases[i], 1);
    }
    check_errors();
    check_modes(f);
    fixture_free(f);
    return tap_done();
}
