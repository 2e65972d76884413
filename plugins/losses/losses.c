/* The pretrain task's reconstruction losses: l1, mse and smooth_l1.
 *
 * Each is PyTorch's F.*_loss(pred[mask], target[mask]) with mean reduction,
 * i.e. the mean over the masked elements (mask NULL: all of them).  The
 * arithmetic and its backward are core's masked loss ops; this module only
 * names them and reads smooth_l1's beta.  No `reduction` parameter: the task
 * always takes the mean, and a schema should offer only what works. */
#include <math.h>
#include <stdlib.h>

#include <mspt/mspt.h>

typedef enum { KIND_L1, KIND_MSE, KIND_SMOOTH_L1 } loss_kind;

typedef struct loss {
    loss_kind kind;
    float beta; /* smooth_l1 only */
} loss;

static int loss_new(loss_kind kind, float beta, void **self, mspt_error *err)
{
    loss *l = malloc(sizeof *l);
    if (!l)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "losses: out of memory");
    l->kind = kind;
    l->beta = beta;
    *self = l;
    return 0;
}

static int l1_create(const mspt_config *cfg, void **self, mspt_error *err)
{
    (void)cfg;
    return loss_new(KIND_L1, 0.0f, self, err);
}

static int mse_create(const mspt_config *cfg, void **self, mspt_error *err)
{
    (void)cfg;
    return loss_new(KIND_MSE, 0.0f, self, err);
}

static int smooth_l1_create(const mspt_config *cfg, void **self,
                            mspt_error *err)
{
    double beta = mspt_config_float(cfg, "beta");
    /* !(beta >= 0) also refuses NaN */
    if (!(beta >= 0.0) || isinf(beta))
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s.beta: must be >= 0 and finite, got %g",
                              mspt_config_path(cfg), beta);
    return loss_new(KIND_SMOOTH_L1, (float)beta, self, err);
}

/* pred, target (any shape, equal), mask (numel bytes) or NULL -> (1) */
static mspt_tensor *loss_forward(void *self, mspt_ctx *ctx, mspt_tensor *pred,
                                 mspt_tensor *target, const uint8_t *mask)
{
    const loss *l = self;
    switch (l->kind) {
    case KIND_L1:
        return mspt_l1_loss(ctx, pred, target, mask);
    case KIND_MSE:
        return mspt_mse_loss(ctx, pred, target, mask);
    default:
        return mspt_smooth_l1_loss(ctx, pred, target, mask, l->beta);
    }
}

static void loss_destroy(void *self)
{
    free(self);
}

static const mspt_param no_params[] = {{NULL, 0, NULL, NULL}};

static const mspt_param smooth_l1_params[] = {
    {"beta", MSPT_PARAM_FLOAT, "1.0",
     "|pred - target| where the loss turns from quadratic to linear "
     "(0: plain l1)"},
    {NULL, 0, NULL, NULL}};

static const mspt_loss_vt l1_vt = {l1_create, loss_forward, loss_destroy};
static const mspt_loss_vt mse_vt = {mse_create, loss_forward, loss_destroy};
static const mspt_loss_vt smooth_l1_vt = {smooth_l1_create, loss_forward,
                                          loss_destroy};

static const mspt_component components[] = {
    {MSPT_COMPONENT_INIT, MSPT_KIND_LOSS, "l1",
     "mean absolute error over the masked elements (torch L1Loss)", no_params,
     &l1_vt},
    {MSPT_COMPONENT_INIT, MSPT_KIND_LOSS, "mse",
     "mean squared error over the masked elements (torch MSELoss)", no_params,
     &mse_vt},
    {MSPT_COMPONENT_INIT, MSPT_KIND_LOSS, "smooth_l1",
     "Huber-like loss over the masked elements (torch SmoothL1Loss)",
     smooth_l1_params, &smooth_l1_vt},
};

MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p)
{
    for (size_t i = 0; i < sizeof components / sizeof components[0]; i++)
        if (mspt_plugin_register(p, &components[i]))
            return 1;
    return 0;
}
