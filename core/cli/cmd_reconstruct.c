/* mspt reconstruct EXPERIMENT --weights W (--input X | --windows N)
 *                  [--mask M] [--grad] --out OUT [overrides...]
 *
 * One pass of the pretrain task on a batch, written to safetensors, to
 * inspect a pretrained model or check it against another implementation:
 *   window x (B,C,T) → the experiment's normalisation → mask (given, or
 *   drawn as `mspt run` draws it) → masked entries zeroed → encoder →
 *   reconstruction, embeddings → the experiment's loss on the masked
 *   entries → with --grad, backward: every parameter's gradient.
 * The model is built from the experiment with its seed, then takes the
 * weights ("model.<name>" or plain state_dict names).  --windows N takes
 * the first N training windows in the order epoch 1 of `mspt run` serves
 * them, and the masks the run draws for them; the same experiment trained
 * for a few steps therefore sees exactly this data. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mspt/mspt.h>

#include "cli/cli.h"
#include "config/override.h"
#include "data/loader.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "task/experiment.h"
#include "task/masking.h"
#include "task/normalize.h"

#define MAX_OVERRIDES 256

typedef struct opts {
    const char *file, *weights, *input, *mask, *out;
    long long windows;
    int grad;
    const char *ov[MAX_OVERRIDES];
    size_t nov;
} opts;

/* The batch: target (B,C,T) after normalisation, mask, masked input. */
typedef struct batch {
    int B, C, T;
    float *target, *input;
    uint8_t *mask;
} batch;

static const char help[] =
    "Usage: mspt reconstruct EXPERIMENT --weights W.safetensors\n"
    "           (--input X.safetensors | --windows N) [--mask M.safetensors]\n"
    "           [--grad] --out OUT.safetensors [KEY=VALUE...]\n"
    "\n"
    "Runs the experiment's model on a batch and writes \"reconstruction\",\n"
    "\"embeddings\", \"input\" (the window after normalisation, before\n"
    "masking) and \"mask\" (uint8, 1 = masked), the loss as metadata, and\n"
    "with --grad \"grad.<param>\", the gradient of that loss.\n"
    "  --input X   tensor \"x\" (B, C, T) of X\n"
    "  --windows N the first N training windows, as `mspt run` serves them\n"
    "  --mask M    tensor \"mask\" (B, C, T) of M, 0/1 of any dtype; without\n"
    "              it the mask is drawn as `mspt run` draws it\n";

static int parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->windows = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--weights") ? &o->weights
                            : !strcmp(a, "--input") ? &o->input
                            : !strcmp(a, "--mask")  ? &o->mask
                            : !strcmp(a, "--out")   ? &o->out
                                                    : NULL;
        if (slot || !strcmp(a, "--windows")) {
            if (i + 1 >= argc)
                return mspt_cli_usage("reconstruct: %s needs a value", a);
            if (slot) {
                *slot = argv[++i];
                continue;
            }
            char *end;
            o->windows = strtoll(argv[++i], &end, 10);
            if (*end || o->windows < 1 || o->windows > 1 << 24)
                return mspt_cli_usage("reconstruct: --windows '%s' is not a "
                                      "count of windows (1 to %d)", argv[i], 1 << 24);
        } else if (!strcmp(a, "--grad")) {
            o->grad = 1;
        } else if (a[0] == '-' && a[1] == '-') {
            return mspt_cli_usage("reconstruct: unknown option '%s'", a);
        } else if (!o->file) {
            o->file = a;
        } else if (!mspt_override_is(a)) {
            return mspt_cli_usage("reconstruct: '%s' is not an override "
                                  "(key=value, +key=value or ~key)", a);
        } else if (o->nov == MAX_OVERRIDES) { /* refused, never dropped */
            return mspt_cli_usage("reconstruct: more than %d overrides", MAX_OVERRIDES);
        } else {
            o->ov[o->nov++] = a;
        }
    }
    if (!o->file)
        return mspt_cli_usage("reconstruct: missing experiment file");
    if (!o->weights || !o->out)
        return mspt_cli_usage("reconstruct: --weights and --out are required");
    if (!o->input == (o->windows < 0))
        return mspt_cli_usage("reconstruct: give exactly one of --input and --windows");
    return 0;
}

/* A file named by an option must exist: a usage error otherwise. */
static int need_file(const char *opt, const char *path, mspt_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s %s: %s", opt, path,
                              strerror(errno));
    if (!S_ISREG(st.st_mode)) /* opening a FIFO would wait for a writer */
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s %s: not a regular file",
                              opt, path);
    return 0;
}

static const mspt_node *key(const mspt_experiment *x, const char *path)
{
    return mspt_node_at(x->root, path);
}

/* "(2,4,64)" of a safetensors entry. */
static const char *st_shape(mspt_st_file *f, long k, char *buf, size_t size)
{
    size_t off = (size_t)snprintf(buf, size, "(");
    for (int d = 0; d < mspt_st_ndim(f, (size_t)k) && off < size; d++)
        off += (size_t)snprintf(buf + off, size - off, d ? ",%lld" : "%lld",
                                (long long)mspt_st_shape(f, (size_t)k)[d]);
    if (off < size)
        snprintf(buf + off, size - off, ")");
    return buf;
}

static int alloc_batch(batch *b, int B, int C, int T, mspt_error *err)
{
    size_t n = (size_t)B * C * T;
    b->B = B;
    b->C = C;
    b->T = T;
    b->target = malloc(n * sizeof(float));
    b->input = malloc(n * sizeof(float));
    b->mask = malloc(n);
    if (!b->target || !b->input || !b->mask)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory for %zu values", n);
    return 0;
}

/* Tensor "x" (B, C, T) of --input. */
static int read_input(const char *path, batch *b, mspt_error *err)
{
    int rc = need_file("--input", path, err);
    mspt_st_file *f = rc ? NULL : mspt_st_open(path, err);
    if (!f)
        return rc ? rc : (int)mspt_error_prefix(err, "--input");
    long k = mspt_st_find(f, "x");
    char s[96];
    if (k < 0 || mspt_st_ndim(f, (size_t)k) != 3) {
        rc = mspt_error_set(err, MSPT_ERR_CONFIG, "--input %s: %s", path,
                            k < 0 ? "no tensor \"x\""
                                  : "tensor \"x\" is not (B, C, T)");
        if (k >= 0)
            snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg),
                     ": %s", st_shape(f, k, s, sizeof s));
    } else {
        const int64_t *sh = mspt_st_shape(f, (size_t)k);
        if (sh[0] < 1 || sh[1] < 1 || sh[2] < 1 || sh[0] * sh[1] * sh[2] > 1LL << 31)
            rc = mspt_error_set(err, MSPT_ERR_CONFIG, "--input %s: tensor \"x\" "
                                "%s is empty or too large", path, st_shape(f, k, s, sizeof s));
        else if (!(rc = alloc_batch(b, (int)sh[0], (int)sh[1], (int)sh[2], err)))
            rc = mspt_st_read_f32(f, "x", b->target, (size_t)b->B * b->C * b->T, err);
    }
    mspt_st_close(f);
    return rc;
}

/* The first n training windows, in the order `mspt run` serves them. */
static int read_windows(mspt_experiment *x, long long n, batch *b, mspt_error *err)
{
    void *ds[MSPT_MAX_DATASETS] = {0};
    mspt_source src[MSPT_MAX_DATASETS];
    int rc = 0;
    size_t made = 0;
    for (; made < x->ndata && !rc; made++) {
        const mspt_dataset_vt *vt = x->data[made].c->vtable;
        rc = mspt_slot_built(&x->data[made], NULL,
                             vt->create(&x->data[made].cfg, &ds[made], err), err);
        src[made] = (mspt_source){vt, ds[made], x->data[made].path};
    }
    long long seed = key(x, "seed")->i;
    mspt_loader *l = rc ? NULL
                        : mspt_loader_new(src, x->ndata,
                                          mspt_node_number(key(x, "trainer.train_val_split")),
                                          (uint64_t)seed, 0, (int)n, err);
    if (l) {
        int C, T;
        mspt_loader_shape(l, &C, &T);
        size_t have = mspt_loader_windows(l, MSPT_SPLIT_TRAIN);
        if ((size_t)n > have)
            rc = mspt_error_set(err, MSPT_ERR_CONFIG, "--windows %lld: the "
                                "experiment has %zu training windows", n, have);
        if (!rc)
            rc = alloc_batch(b, (int)n, C, T, err);
        if (!rc) {
            mspt_loader_begin(l, MSPT_SPLIT_TRAIN, 0, (int)n,
                              key(x, "trainer.shuffle")->b, 0, 1, 0);
            const float *w;
            int got = mspt_loader_next(l, &w, err);
            if (got < 0)
                rc = err->status;
            else if (got < n) /* the loader skipped non-finite windows */
                rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "--windows %lld: "
                                    "only %d finite windows among them", n, got);
            else
                memcpy(b->target, w, (size_t)n * C * T * sizeof(float));
        }
    } else if (!rc) {
        rc = err->status;
    }
    mspt_loader_free(l);
    for (size_t i = 0; i < made; i++)
        if (ds[i])
            ((const mspt_dataset_vt *)x->data[i].c->vtable)->destroy(ds[i]);
    return rc;
}

/* Tensor "mask" of --mask: (B, C, T), every value 0 or 1. */
static int read_mask(const char *path, batch *b, mspt_error *err)
{
    int rc = need_file("--mask", path, err);
    mspt_st_file *f = rc ? NULL : mspt_st_open(path, err);
    if (!f)
        return rc ? rc : (int)mspt_error_prefix(err, "--mask");
    long k = mspt_st_find(f, "mask");
    int same = k >= 0 && mspt_st_ndim(f, (size_t)k) == 3 &&
               mspt_st_shape(f, (size_t)k)[0] == b->B &&
               mspt_st_shape(f, (size_t)k)[1] == b->C &&
               mspt_st_shape(f, (size_t)k)[2] == b->T;
    size_t n = (size_t)b->B * b->C * b->T;
    char s[96];
    if (k < 0)
        rc = mspt_error_set(err, MSPT_ERR_CONFIG, "--mask %s: no tensor \"mask\"", path);
    else if (!same)
        rc = mspt_error_set(err, MSPT_ERR_CONFIG, "--mask %s: \"mask\" %s does "
                            "not match the input (%d,%d,%d)", path,
                            st_shape(f, k, s, sizeof s), b->B, b->C, b->T);
    else if (!(rc = mspt_st_read_f32(f, "mask", b->input, n, err)))
        for (size_t i = 0; i < n && !rc; i++) {
            if (b->input[i] != 0.0f && b->input[i] != 1.0f)
                rc = mspt_error_set(err, MSPT_ERR_CONFIG, "--mask %s: value %g "
                                    "at %zu is not 0 or 1", path, b->input[i], i);
            b->mask[i] = b->input[i] != 0.0f;
        }
    mspt_st_close(f);
    return rc;
}

/* Normalise, mask (given or drawn), zero the masked entries. */
static int prepare(mspt_experiment *x, const opts *o, batch *b, mspt_error *err)
{
    int rc = 0;
    mspt_norm norm;
    if ((rc = mspt_norm_read(x->root, &norm, err)))
        return rc;
    if (norm.mode != MSPT_NORM_OFF) {
        float *scratch = malloc((size_t)b->T * sizeof *scratch);
        if (!scratch)
            return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
        mspt_norm_apply(&norm, b->target, (size_t)b->B * b->C, b->T, scratch);
        free(scratch);
    }
    if (o->mask) {
        rc = read_mask(o->mask, b, err);
    } else { /* as the trainer: the run's mask stream, per window */
        const mspt_node *patch = key(x, "masking.patch_size");
        if (patch->n != 2)
            return mspt_error_set(err, MSPT_ERR_CONFIG, "masking.patch_size: "
                                  "expected {H, W}, got %zu values", patch->n);
        mspt_masker m;
        rc = mspt_masker_init(&m, (int)patch->items[0]->i, (int)patch->items[1]->i,
                              mspt_node_number(key(x, "masking.masking_ratio")),
                              key(x, "masking.per_batch")->b, b->C, b->T, err);
        if (!rc) {
            mspt_rng *rng = mspt_rng_new((uint64_t)key(x, "seed")->i ^ 0x6d61736bULL);
            mspt_masker_fill(&m, b->B, rng, b->mask);
            mspt_rng_free(rng);
        }
        mspt_masker_free(&m);
    }
    if (!rc)
        mspt_mask_apply(b->target, b->mask, (size_t)b->B * b->C * b->T, b->input);
    return rc;
}

/* The experiment's loss, as the trainer computes it. */
static mspt_tensor *task_loss(mspt_experiment *x, const mspt_loss_vt *lvt,
                              void *loss, mspt_ctx *ctx, mspt_tensor *recon,
                              mspt_tensor *target, const batch *b)
{
    mspt_tensor *l = lvt->forward(loss, ctx, recon, target, b->mask);
    double coeff = mspt_node_number(key(x, "masking.unmasked_loss_coeff"));
    if (coeff > 0) {
        size_t n = recon->numel;
        uint8_t *vis = mspt_ctx_alloc(ctx, n);
        if (!vis)
            return NULL;
        for (size_t i = 0; i < n; i++)
            vis[i] = !b->mask[i];
        mspt_tensor *v = lvt->forward(loss, ctx, recon, target, vis);
        l = mspt_add(ctx, l, mspt_scale(ctx, v, (float)coeff));
    }
    return l;
}

static int save(const opts *o, const batch *b, mspt_tensor *recon,
                mspt_tensor *emb, double loss, mspt_params *ps, mspt_error *err)
{
    mspt_st_writer *w = mspt_st_writer_new();
    int shape[3] = {b->B, b->C, b->T};
    char name[256], buf[64];
    mspt_st_add_f32(w, "reconstruction", recon->ndim, recon->shape, recon->data);
    if (emb)
        mspt_st_add_f32(w, "embeddings", emb->ndim, emb->shape, emb->data);
    mspt_st_add_f32(w, "input", 3, shape, b->target);
    mspt_st_add_u8(w, "mask", 3, shape, b->mask);
    for (size_t i = 0; o->grad && i < mspt_params_count(ps); i++) {
        mspt_tensor *p = mspt_params_at(ps, i);
        snprintf(name, sizeof name, "grad.%s", p->name);
        mspt_st_add_f32(w, name, p->ndim, p->shape, p->grad);
    }
    snprintf(buf, sizeof buf, "%.9g", loss);
    mspt_st_set_metadata(w, "loss", buf);
    mspt_st_set_metadata(w, "experiment", o->file);
    mspt_st_set_metadata(w, "weights", o->weights);
    mspt_st_set_metadata(w, "input", o->input ? o->input : "windows");
    mspt_st_set_metadata(w, "mask", o->mask ? o->mask : "drawn");
    int rc = mspt_st_save(w, o->out, err);
    mspt_st_writer_free(w);
    return rc ? mspt_error_prefix(err, "--out") : 0;
}

/* The experiment's model with the given weights, and its loss. */
typedef struct model {
    const mspt_encoder_vt *enc;
    const mspt_loss_vt *lvt;
    mspt_params *ps;
    void *self, *loss;
} model;

static int model_open(mspt_experiment *x, const opts *o, const batch *b,
                      model *m, mspt_error *err)
{
    m->enc = x->model.c->vtable;
    m->lvt = x->criterion.c->vtable;
    m->ps = mspt_params_new();
    mspt_rng *rng = mspt_rng_new((uint64_t)key(x, "seed")->i);
    int rc = m->enc->create(&x->model.cfg, m->ps, rng, &m->self, err);
    mspt_rng_free(rng);
    rc = mspt_slot_built(&x->model, m->ps, rc, err);
    if (!rc && (rc = m->enc->check_input(m->self, b->C, b->T, err)))
        mspt_error_prefix(err, "%s", o->input ? "--input" : "data");
    if (!rc && (rc = mspt_checkpoint_load_weights(o->weights, m->ps,
                                                     MSPT_WEIGHTS_EXTRA_OK, NULL, 0, err)))
        mspt_error_prefix(err, "--weights");
    if (!rc)
        rc = mspt_slot_built(&x->criterion, NULL,
                             m->lvt->create(&x->criterion.cfg, &m->loss, err), err);
    return rc;
}

static void model_close(model *m)
{
    if (m->loss)
        m->lvt->destroy(m->loss);
    if (m->self)
        m->enc->destroy(m->self);
    mspt_params_free(m->ps);
}

/* Forward (and backward with --grad), then save. */
static int run(mspt_experiment *x, const opts *o, const batch *b, model *m,
               mspt_error *err)
{
    mspt_ctx *ctx = mspt_ctx_new();
    mspt_ctx_set_training(ctx, 0);
    mspt_ctx_set_grad(ctx, o->grad);
    int shape[3] = {b->B, b->C, b->T};
    mspt_tensor *in = mspt_tensor_wrap(ctx, b->input, 3, shape);
    mspt_tensor *target = mspt_tensor_wrap(ctx, b->target, 3, shape);
    mspt_tensor *emb = NULL, *l = NULL;
    mspt_tensor *recon = m->enc->forward(m->self, ctx, in, b->mask, &emb);
    char s1[64], s2[64];
    if (recon && !mspt_tensor_same_shape(recon, target))
        mspt_fail(ctx, "the encoder returned %s for input %s",
                  mspt_shape_str(recon, s1, sizeof s1),
                  mspt_shape_str(target, s2, sizeof s2));
    else if (recon)
        l = task_loss(x, m->lvt, m->loss, ctx, recon, target, b);
    if (l && o->grad)
        mspt_backward(ctx, l);
    int rc;
    if (mspt_ctx_error(ctx) || !l)
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "%s", mspt_ctx_error(ctx)
                                ? mspt_ctx_error(ctx) : "the model returned nothing");
    else
        rc = save(o, b, recon, emb, l->data[0], m->ps, err);
    if (!rc)
        printf("%s: %d windows of %d x %d, loss %.6f\n", o->out, b->B, b->C,
               b->T, l->data[0]);
    mspt_ctx_free(ctx);
    return rc;
}

int mspt_cmd_reconstruct(int argc, char **argv)
{
    if (mspt_cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    mspt_error err = {0};
    mspt_experiment x;
    batch b = {0};
    rc = need_file("--weights", o.weights, &err);
    if (!rc)
        rc = mspt_experiment_load(&x, o.file, o.ov, o.nov, &err);
    else
        memset(&x, 0, sizeof x);
    long long threads = rc ? 0 : key(&x, "threads")->i;
    if (threads > 0)
        mspt_set_threads((int)threads);
    if (!rc)
        rc = o.input ? read_input(o.input, &b, &err) : read_windows(&x, o.windows, &b, &err);
    model m = {0};
    if (!rc)
        rc = model_open(&x, &o, &b, &m, &err);
    if (!rc)
        rc = prepare(&x, &o, &b, &err);
    if (!rc)
        rc = run(&x, &o, &b, &m, &err);
    if (m.ps)
        model_close(&m);
    free(b.target);
    free(b.input);
    free(b.mask);
    mspt_experiment_free(&x);
    return rc ? mspt_cli_fail(&err) : 0;
}
