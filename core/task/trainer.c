/* Training loop, see trainer.h. */
#include "task/trainer.h"

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mspt/mspt.h>

#include "data/loader.h"
#include "io/checkpoint.h"
#include "io/files.h"
#include "task/dist.h"
#include "task/masking.h"
#include "task/metrics.h"
#include "task/normalize.h"
#include "task/grads.h"
#include "io/png.h"
#include "io/tfevents.h"
#include "task/curves.h"
#include "task/plots.h"

#define MAX_GROUPS 4
#define MAX_TOPK 64
#define BUCKET_BYTES (8u << 20) /* gradient allreduce buckets */

/* Settings read once from the resolved configuration. */
typedef struct settings {
    long long seed, max_epochs, max_steps, batch_size, accumulate;
    long long val_every, limit_train, limit_val, log_every, workers, top_k;
    double split, clip, unmasked_coeff, q_lower, q_upper, ratio;
    int shuffle, drop_last, save_last, mode_max, normalize, per_batch;
    int mask_h, mask_w, bar;
    int csv, tensorboard;
    const mspt_node *plot_samples, *plot_channels;
    int plot_w, plot_h;
    const char *monitor;
} settings;

typedef struct topk_entry {
    double score;
    char path[4200];
} topk_entry;

typedef struct trainer {
    mspt_experiment *x;
    settings s;
    char run_dir[4096], ckpt_dir[4200];
    int C, T;

    mspt_params *params;
    const mspt_encoder_vt *enc;
    void *model;
    const mspt_loss_vt *lvt;
    void *loss;
    const mspt_optimizer_vt *ovt;
    void *opt;
    const mspt_scheduler_vt *svt;
    void *sched;
    mspt_param_group groups[MAX_GROUPS];
    double base_lr[MAX_GROUPS];
    size_t ngroups;
    void *datasets[MSPT_MAX_DATASETS];
    mspt_loader *loader;
    mspt_masker masker;
    mspt_rng *mask_rng, *drop_rng, *val_rng;
    mspt_ctx *ctx;
    mspt_metrics metrics;
    mspt_tb_writer *tb;

    /* data parallelism: rank of nranks; with one rank all is as before */
    int rank, nranks;
    int *counts;             /* windows of each rank in the current batch */
    mspt_dist_grads *sync;   /* NULL with one rank */

    float *target, *input, *scratch;
    mspt_tensor *last_recon; /* of the last forward (plots) */
    uint8_t *masks;          /* masks of the whole global batch */
    uint8_t *mask, *unmask;  /* this rank's (mask points into masks) */

    long long epoch, step, batch_in_epoch;
    topk_entry topk[MAX_TOPK];
    int ntopk;
} trainer;

/* ---- configuration ----------------------------------------------------- */

static const mspt_node *key(const trainer *t, const char *path)
{
    return mspt_node_at(t->x->root, path);
}
static long long cfg_int(const trainer *t, const char *p) { return key(t, p)->i; }
static double cfg_float(const trainer *t, const char *p) { return mspt_node_number(key(t, p)); }
static int cfg_bool(const trainer *t, const char *p) { return key(t, p)->b; }
static const char *cfg_str(const trainer *t, const char *p) { return key(t, p)->s; }

static int read_settings(trainer *t, mspt_error *err)
{
    settings *s = &t->s;
    s->seed = cfg_int(t, "seed");
    s->max_epochs = cfg_int(t, "trainer.max_epochs");
    s->max_steps = cfg_int(t, "trainer.max_steps");
    s->batch_size = cfg_int(t, "trainer.batch_size");
    s->accumulate = cfg_int(t, "trainer.accumulate_grad_batches");
    s->val_every = cfg_int(t, "trainer.val_check_interval");
    s->limit_train = cfg_int(t, "trainer.limit_train_batches");
    s->limit_val = cfg_int(t, "trainer.limit_val_batches");
    s->log_every = cfg_int(t, "trainer.log_every_n_steps");
    s->workers = cfg_int(t, "trainer.num_workers");
    s->top_k = cfg_int(t, "trainer.save_top_k");
    s->split = cfg_float(t, "trainer.train_val_split");
    s->clip = cfg_float(t, "trainer.gradient_clip_val");
    s->shuffle = cfg_bool(t, "trainer.shuffle");
    s->drop_last = cfg_bool(t, "trainer.drop_last");
    s->save_last = cfg_bool(t, "trainer.save_last");
    s->monitor = cfg_str(t, "trainer.monitor");
    const char *mode = cfg_str(t, "trainer.mode");
    const char *bar = cfg_str(t, "trainer.progress_bar");
    s->ratio = cfg_float(t, "masking.masking_ratio");
    s->per_batch = cfg_bool(t, "masking.per_batch");
    s->unmasked_coeff = cfg_float(t, "masking.unmasked_loss_coeff");
    s->normalize = cfg_bool(t, "input_normalization.normalize");
    s->q_lower = cfg_float(t, "input_normalization.lower");
    s->q_upper = cfg_float(t, "input_normalization.upper");
    const mspt_node *patch = key(t, "masking.patch_size");
    const mspt_node *loggers = key(t, "logger");
    s->plot_samples = key(t, "plots.samples");
    s->plot_channels = key(t, "plots.channels");
    s->plot_w = (int)cfg_int(t, "plots.width");
    s->plot_h = (int)cfg_int(t, "plots.height");

#define BAD(...) return mspt_error_set(err, MSPT_ERR_CONFIG, __VA_ARGS__)
    if (s->max_epochs < 1 && s->max_steps < 1)
        BAD("trainer.max_epochs: must be >= 1 (or set trainer.max_steps)");
    if (s->max_steps == 0 || s->max_steps < -1)
        BAD("trainer.max_steps: must be -1 (no limit) or >= 1, got %lld", s->max_steps);
    if (s->max_epochs < 1)
        s->max_epochs = 1LL << 40; /* bounded by max_steps */
    if (s->batch_size < 1 || s->batch_size > 1 << 20)
        BAD("trainer.batch_size: must be >= 1, got %lld", s->batch_size);
    if (s->accumulate < 1)
        BAD("trainer.accumulate_grad_batches: must be >= 1, got %lld", s->accumulate);
    if (s->val_every < 0 || s->limit_train < 0 || s->limit_val < 0)
        BAD("trainer: val_check_interval and limit_*_batches must be >= 0");
    if (s->log_every < 1)
        BAD("trainer.log_every_n_steps: must be >= 1, got %lld", s->log_every);
    if (s->workers < 0 || s->workers > 64)
        BAD("trainer.num_workers: must be 0..64, got %lld", s->workers);
    if (s->top_k < 0 || s->top_k > MAX_TOPK)
        BAD("trainer.save_top_k: must be 0..%d, got %lld", MAX_TOPK, s->top_k);
    if (!(s->clip >= 0))
        BAD("trainer.gradient_clip_val: must be >= 0, got %g", s->clip);
    if (strcmp(s->monitor, "val_loss") && strcmp(s->monitor, "train_loss_epoch"))
        BAD("trainer.monitor: '%s' is not a metric (val_loss, train_loss_epoch)",
            s->monitor);
    if (strcmp(mode, "min") && strcmp(mode, "max"))
        BAD("trainer.mode: '%s' must be \"min\" or \"max\"", mode);
    s->mode_max = !strcmp(mode, "max");
    if (!strcmp(bar, "auto"))
        s->bar = isatty(STDOUT_FILENO);
    else if (!strcmp(bar, "on") || !strcmp(bar, "off"))
        s->bar = !strcmp(bar, "on");
    else
        BAD("trainer.progress_bar: '%s' must be \"auto\", \"on\" or \"off\"", bar);
    if (patch->n != 2)
        BAD("masking.patch_size: expected {H, W}, got %zu values", patch->n);
    s->mask_h = (int)patch->items[0]->i;
    s->mask_w = (int)patch->items[1]->i;
    if (!(s->unmasked_coeff >= 0))
        BAD("masking.unmasked_loss_coeff: must be >= 0, got %g", s->unmasked_coeff);
    if (!(s->q_lower >= 0 && s->q_lower < s->q_upper && s->q_upper <= 1))
        BAD("input_normalization: need 0 <= lower < upper <= 1, got %g, %g",
            s->q_lower, s->q_upper);
    for (size_t i = 0; i < loggers->n; i++) {
        const char *lg = loggers->items[i]->s;
        if (!strcmp(lg, "csv"))
            s->csv = 1;
        else if (!strcmp(lg, "tensorboard"))
            s->tensorboard = 1;
        else
            BAD("logger[%zu]: unknown logger '%s' (tensorboard, csv)", i + 1, lg);
    }
    if (t->rank > 0) /* only rank 0 writes logs (and plots, checkpoints) */
        s->csv = s->tensorboard = s->bar = 0;
    if (s->plot_w < 200 || s->plot_h < 120 || s->plot_w > 8000 || s->plot_h > 8000)
        BAD("plots: width x height %d x %d is outside 200..8000 x 120..8000",
            s->plot_w, s->plot_h);
    for (size_t i = 0; i < s->plot_samples->n; i++)
        if (s->plot_samples->items[i]->i < 0)
            BAD("plots.samples[%zu]: %lld is negative", i + 1,
                s->plot_samples->items[i]->i);
#undef BAD
    return 0;
}

/* ---- building ---------------------------------------------------------- */

/* Parameter groups: body/head (differential lr) × decay/no-decay. */
static int build_groups(trainer *t, mspt_error *err)
{
    const mspt_config *oc = &t->x->optimizer.cfg;
    double lr = mspt_config_float(oc, "lr");
    double wd = mspt_config_float(oc, "weight_decay");
    int differential = mspt_config_bool(oc, "differential_lr");
    int split_decay = mspt_config_bool(oc, "no_decay_bias_norm");
    double head_lr = mspt_config_has(oc, "head_lr")
                         ? mspt_config_float(oc, "head_lr")
                         : lr * mspt_config_float(oc, "head_lr_scale");
    if (!(lr >= 0) || !(head_lr >= 0))
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "optimizer.lr: must be >= 0, got %g", lr);
    size_t n = mspt_params_count(t->params);
    for (int head = 0; head <= differential; head++)
        for (int nodecay = 0; nodecay <= split_decay; nodecay++) {
            mspt_param_group *g = &t->groups[t->ngroups];
            g->params = malloc((n ? n : 1) * sizeof *g->params);
            g->count = 0;
            for (size_t i = 0; i < n; i++) {
                mspt_tensor *p = mspt_params_at(t->params, i);
                int is_head = differential && (p->flags & MSPT_PARAM_HEAD);
                int is_nd = split_decay && (p->flags & MSPT_PARAM_NO_DECAY);
                if (is_head == head && is_nd == nodecay)
                    g->params[g->count++] = p;
            }
            g->weight_decay = nodecay ? 0.0f : (float)wd;
            t->base_lr[t->ngroups] = head ? head_lr : lr;
            g->lr = (float)t->base_lr[t->ngroups];
            t->ngroups++;
        }
    return 0;
}

static double lua_schedule(trainer *t, long long update, long long epoch,
                           double base, mspt_error *err, int *failed)
{
    lua_State *L = t->x->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->x->scheduler_fn->ref);
    lua_pushinteger(L, update);
    lua_pushinteger(L, epoch);
    lua_pushnumber(L, base);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
        mspt_error_set(err, MSPT_ERR_CONFIG, "scheduler (%s): %s",
                       t->x->scheduler_fn->s, lua_tostring(L, -1));
        lua_pop(L, 1);
        *failed = 1;
        return 0;
    }
    int isnum;
    double lr = lua_tonumberx(L, -1, &isnum);
    lua_pop(L, 1);
    if (!isnum || !(lr >= 0)) {
        mspt_error_set(err, MSPT_ERR_CONFIG,
                       "scheduler (%s) returned %s for step %lld; expected a "
                       "learning rate >= 0", t->x->scheduler_fn->s,
                       isnum ? "a negative number" : "a non-number", update);
        *failed = 1;
    }
    return lr;
}

/* Set every group's lr for the update about to happen. */
static int set_lrs(trainer *t, mspt_error *err)
{
    for (size_t g = 0; g < t->ngroups; g++) {
        double lr = t->base_lr[g];
        int failed = 0;
        if (t->sched)
            lr = t->svt->lr(t->sched, t->step, t->epoch, lr);
        else if (t->x->scheduler_fn)
            lr = lua_schedule(t, t->step, t->epoch, lr, err, &failed);
        if (failed)
            return MSPT_ERR_CONFIG;
        t->groups[g].lr = (float)lr;
    }
    return 0;
}

/* plots.samples and plots.channels must name windows and channels that
 * exist (checked once the data is known, before training). */
static int check_plots(const trainer *t, mspt_error *err)
{
    const settings *s = &t->s;
    size_t nval = mspt_loader_windows(t->loader, MSPT_SPLIT_VAL);
    if (nval == 0) /* no validation split: nothing is plotted */
        return 0;
    for (size_t i = 0; i < s->plot_samples->n; i++)
        if ((size_t)s->plot_samples->items[i]->i >= nval)
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "plots.samples[%zu]: window %lld, but the "
                                  "validation split has %zu windows", i + 1,
                                  s->plot_samples->items[i]->i, nval);
    for (size_t i = 0; i < s->plot_channels->n; i++) {
        long long ch = s->plot_channels->items[i]->i;
        if (ch < 0 || ch >= t->C)
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "plots.channels[%zu]: channel %lld, but "
                                  "windows have %d channels", i + 1, ch, t->C);
    }
    return 0;
}

static int setup(trainer *t, mspt_error *err)
{
    mspt_experiment *x = t->x;
    settings *s = &t->s;
    int rc;
    t->mask_rng = mspt_rng_new((uint64_t)s->seed ^ 0x6d61736bULL);  /* "mask" */
    t->drop_rng = mspt_rng_new((uint64_t)s->seed ^ 0x64726f70ULL);  /* "drop" */
    t->val_rng = mspt_rng_new(0);
    mspt_rng *init_rng = mspt_rng_new((uint64_t)s->seed);
    t->params = mspt_params_new();
    t->ctx = mspt_ctx_new();
    mspt_ctx_set_rng(t->ctx, t->drop_rng);

    /* data */
    mspt_source src[MSPT_MAX_DATASETS];
    for (size_t i = 0; i < x->ndata; i++) {
        const mspt_dataset_vt *dvt = x->data[i].c->vtable;
        if ((rc = dvt->create(&x->data[i].cfg, &t->datasets[i], err))) {
            mspt_rng_free(init_rng);
            return rc;
        }
        src[i] = (mspt_source){dvt, t->datasets[i], x->data[i].path};
    }
    t->loader = mspt_loader_new(src, x->ndata, s->split, (uint64_t)s->seed,
                                (int)s->workers, (int)s->batch_size, err);
    if (!t->loader) {
        mspt_rng_free(init_rng);
        return err->status;
    }
    mspt_loader_set_shard(t->loader, t->rank, t->nranks);
    mspt_loader_shape(t->loader, &t->C, &t->T);
    if ((rc = check_plots(t, err))) {
        mspt_rng_free(init_rng);
        return rc;
    }

    /* model: built from the run's seed, then checked against the data */
    t->enc = x->model.c->vtable;
    rc = t->enc->create(&x->model.cfg, t->params, init_rng, &t->model, err);
    mspt_rng_free(init_rng);
    if (rc)
        return rc;
    if ((rc = t->enc->check_input(t->model, t->C, t->T, err)))
        return mspt_error_prefix(err, "data");
    t->lvt = x->criterion.c->vtable;
    if ((rc = t->lvt->create(&x->criterion.cfg, &t->loss, err)))
        return rc;
    if ((rc = build_groups(t, err)))
        return rc;
    t->ovt = x->optimizer.c->vtable;
    if ((rc = t->ovt->create(&x->optimizer.cfg, t->groups, t->ngroups, &t->opt, err)))
        return rc;

    size_t batches = mspt_loader_batches(t->loader, MSPT_SPLIT_TRAIN,
                                         (int)s->batch_size, s->drop_last);
    if (s->limit_train && batches > (size_t)s->limit_train)
        batches = (size_t)s->limit_train;
    if (batches == 0)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "data: %zu training windows make no batch of %lld "
                              "(lower trainer.batch_size or set drop_last = false)",
                              mspt_loader_windows(t->loader, MSPT_SPLIT_TRAIN),
                              s->batch_size * t->nranks);
    mspt_schedule_info info;
    info.steps_per_epoch = ((long long)batches + s->accumulate - 1) / s->accumulate;
    info.max_epochs = s->max_epochs < (1LL << 40) ? s->max_epochs : 0;
    info.max_steps = s->max_steps > 0 ? s->max_steps
                                      : info.steps_per_epoch * s->max_epochs;
    if (x->scheduler.c) {
        t->svt = x->scheduler.c->vtable;
        if ((rc = t->svt->create(&x->scheduler.cfg, &info, &t->sched, err)))
            return rc;
    }

    if ((rc = mspt_masker_init(&t->masker, s->mask_h, s->mask_w, s->ratio,
                               s->per_batch, t->C, t->T, err)))
        return rc;
    size_t n = (size_t)s->batch_size * t->C * t->T;
    t->target = malloc(n * sizeof(float));
    t->input = malloc(n * sizeof(float));
    t->scratch = malloc((size_t)t->T * sizeof(float));
    t->masks = malloc(n * (size_t)t->nranks);
    t->mask = t->masks;
    t->unmask = malloc(n);
    t->counts = malloc((size_t)t->nranks * sizeof *t->counts);
    if (!t->target || !t->input || !t->scratch || !t->masks || !t->unmask ||
        !t->counts)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory for batches");
    if (t->nranks > 1 && !(t->sync = mspt_dist_grads_new(t->params, BUCKET_BYTES)))
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory for gradients");

    snprintf(t->ckpt_dir, sizeof t->ckpt_dir, "%s/checkpoints", t->run_dir);
    return t->rank == 0 ? mspt_make_dirs(t->ckpt_dir, err) : 0;
}

static void teardown(trainer *t)
{
    if (t->sched)
        t->svt->destroy(t->sched);
    if (t->opt)
        t->ovt->destroy(t->opt);
    if (t->loss)
        t->lvt->destroy(t->loss);
    if (t->model)
        t->enc->destroy(t->model);
    mspt_loader_free(t->loader);
    for (size_t i = 0; i < t->x->ndata; i++)
        if (t->datasets[i])
            ((const mspt_dataset_vt *)t->x->data[i].c->vtable)->destroy(t->datasets[i]);
    for (size_t g = 0; g < t->ngroups; g++)
        free(t->groups[g].params);
    mspt_masker_free(&t->masker);
    mspt_params_free(t->params);
    mspt_ctx_free(t->ctx);
    mspt_rng_free(t->mask_rng);
    mspt_rng_free(t->drop_rng);
    mspt_rng_free(t->val_rng);
    free(t->target);
    free(t->input);
    free(t->scratch);
    free(t->masks);
    free(t->unmask);
    free(t->counts);
    mspt_dist_grads_free(t->sync);
    mspt_metrics_close(&t->metrics);
    mspt_tb_close(t->tb);
}

/* ---- one batch ----------------------------------------------------------- */

/* Masks for a global batch of `total` windows, drawn as one rank drawing
 * them all would (so the masks do not depend on the number of ranks, and
 * the mask stream in checkpoints suits any), and this rank's: `before`
 * windows in. */
static void make_masks(trainer *t, mspt_rng *rng, int total, int before)
{
    mspt_masker_fill(&t->masker, total, rng, t->masks);
    t->mask = t->masks + (size_t)before * t->C * t->T;
}

/* A batch as the ranks share it. */
typedef struct micro {
    const float *x;
    int count;  /* this rank's windows (may be 0) */
    int total;  /* the global batch's windows */
} micro;

/* The next batch of the pass, taken by every rank at once, with this rank's
 * masks made.  *rc: this rank's status so far, which every rank learns
 * here.  Returns 1 (a batch), 0 at the end of the pass or on an error of
 * any rank (*rc set, the same on every rank). */
static int take(trainer *t, int *rc, mspt_rng *rng, micro *m, mspt_error *err)
{
    int got = 0;
    m->count = 0;
    if (!*rc && (got = mspt_loader_take(t->loader, &m->x, &m->count, err)) < 0)
        *rc = err->status;
    if ((*rc = mspt_dist_gather(*rc, m->count, t->counts, err)) || got == 0)
        return 0;
    int before = 0;
    m->total = 0;
    for (int r = 0; r < t->nranks; r++) {
        before += r < t->rank ? t->counts[r] : 0;
        m->total += t->counts[r];
    }
    make_masks(t, rng, m->total, before);
    return 1;
}

/* Normalise, mask (with t->mask), run the model and the loss for B windows
 * at x.  Returns the loss tensor (NULL after an error in ctx). */
static mspt_tensor *forward(trainer *t, const float *x, int B)
{
    size_t win = (size_t)t->C * t->T, n = (size_t)B * win;
    memcpy(t->target, x, n * sizeof(float));
    if (t->s.normalize)
        mspt_robust_normalize(t->target, (size_t)B * t->C, t->T, t->s.q_lower,
                              t->s.q_upper, t->scratch);
    mspt_mask_apply(t->target, t->mask, n, t->input);

    mspt_ctx *ctx = t->ctx;
    mspt_ctx_reset(ctx);
    int shape[3] = {B, t->C, t->T};
    mspt_tensor *target = mspt_tensor_wrap(ctx, t->target, 3, shape);
    mspt_tensor *input = mspt_tensor_wrap(ctx, t->input, 3, shape);
    mspt_tensor *recon = t->enc->forward(t->model, ctx, input, t->mask, NULL);
    if (!recon)
        return mspt_ctx_error(ctx) ? NULL
                                   : mspt_fail(ctx, "the encoder returned nothing");
    if (!mspt_tensor_same_shape(recon, target)) {
        char a[64], b[64];
        return mspt_fail(ctx, "the encoder returned %s for input %s",
                         mspt_shape_str(recon, a, sizeof a),
                         mspt_shape_str(target, b, sizeof b));
    }
    t->last_recon = recon;
    mspt_tensor *loss = t->lvt->forward(t->loss, ctx, recon, target, t->mask);
    if (t->s.unmasked_coeff > 0) {
        for (size_t i = 0; i < n; i++)
            t->unmask[i] = !t->mask[i];
        mspt_tensor *vis = t->lvt->forward(t->loss, ctx, recon, target, t->unmask);
        loss = mspt_add(ctx, loss, mspt_scale(ctx, vis, (float)t->s.unmasked_coeff));
    }
    return loss;
}

/* ---- logging ---------------------------------------------------------------- */

/* One record to metrics.csv and TensorBoard (tags = the CSV's columns). */
static void log_record(trainer *t, const mspt_record *r)
{
    mspt_metrics_write(&t->metrics, r); /* no-op without csv */
    const char *tags[] = {"train_loss", "train_loss_epoch", "val_loss", "lr"};
    double vals[] = {r->train_loss, r->train_loss_epoch, r->val_loss, r->lr};
    for (int i = 0; i < 4; i++)
        if (!isnan(vals[i]))
            mspt_tb_scalar(t->tb, tags[i], r->step, 0, (float)vals[i]);
}

/* Reconstructions of the fixed validation windows plots.samples (channels
 * plots.channels), with the same masks every epoch, to
 * run_dir/plots/epoch_NNN_sample_K.png and TensorBoard. */
static int plot_samples(trainer *t, mspt_error *err)
{
    const settings *s = &t->s;
    if (mspt_loader_windows(t->loader, MSPT_SPLIT_VAL) == 0 || s->plot_samples->n == 0)
        return 0; /* check_plots vetted the indices against the split */
    size_t win = (size_t)t->C * t->T;
    float *x = malloc(win * sizeof(float));
    if (!x)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory for plots");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/plots", t->run_dir);
    int rc = mspt_make_dirs(dir, err);
    mspt_rng_seed(t->val_rng, (uint64_t)s->seed ^ 0x706c6fULL); /* same masks */
    mspt_ctx_set_grad(t->ctx, 0);
    mspt_ctx_set_training(t->ctx, 0);
    /* one window at a time: any number of samples, whatever the batch size */
    for (size_t k = 0; k < s->plot_samples->n && !rc; k++) {
        long long idx = s->plot_samples->items[k]->i;
        rc = mspt_loader_read(t->loader, MSPT_SPLIT_VAL, (size_t)idx, x, err);
        if (rc)
            break;
        make_masks(t, t->val_rng, 1, 0);
        mspt_tensor *loss = forward(t, x, 1);
        mspt_tensor *recon = loss ? t->last_recon : NULL;
        if (!recon) {
            rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "plots: %s", mspt_ctx_error(t->ctx));
            break;
        }
        for (size_t c = 0; c < s->plot_channels->n && !rc; c++) {
            int ch = (int)s->plot_channels->items[c]->i;
            size_t off = (size_t)ch * t->T;
            mspt_plot_trace tr = {t->target + off, recon->data + off, t->mask + off,
                                  t->T, 0.0, t->epoch + 1, idx, ch};
            unsigned char *png = NULL;
            size_t len = 0;
            rc = mspt_plot_reconstruction(&tr, s->plot_w, s->plot_h, &png, &len, err);
            if (rc)
                break;
            char path[4400], tag[64];
            if (s->plot_channels->n == 1)
                snprintf(path, sizeof path, "%s/epoch_%03lld_sample_%lld.png", dir,
                         t->epoch + 1, idx);
            else
                snprintf(path, sizeof path, "%s/epoch_%03lld_sample_%lld_ch_%d.png",
                         dir, t->epoch + 1, idx, ch);
            snprintf(tag, sizeof tag, "reconstruction/sample_%lld_ch_%d", idx, ch);
            rc = mspt_png_save(path, png, len, err);
            if (!rc)
                mspt_tb_image(t->tb, tag, t->step, 0, png, len, s->plot_w, s->plot_h, 4);
            free(png);
        }
    }
    mspt_ctx_set_grad(t->ctx, 1);
    mspt_ctx_set_training(t->ctx, 1);
    free(x);
    return rc;
}

/* ---- validation, checkpoints --------------------------------------------- */

/* Mean validation loss over windows, of all ranks (NAN when there are
 * none). */
static int validate(trainer *t, double *out, mspt_error *err)
{
    *out = NAN;
    if (mspt_loader_windows(t->loader, MSPT_SPLIT_VAL) == 0)
        return 0;
    mspt_rng_seed(t->val_rng, (uint64_t)t->s.seed ^ 0x76616cULL); /* same masks */
    mspt_loader_begin(t->loader, MSPT_SPLIT_VAL, 0, (int)t->s.batch_size, 0, 0,
                      (size_t)t->s.limit_val, 0);
    mspt_ctx_set_grad(t->ctx, 0);
    mspt_ctx_set_training(t->ctx, 0);
    double v[2] = {0, 0}; /* loss × windows, windows: this rank's */
    int rc = 0;
    micro m;
    while (take(t, &rc, t->val_rng, &m, err)) {
        if (m.count == 0)
            continue;
        mspt_tensor *loss = forward(t, m.x, m.count);
        if (!loss) { /* the ranks learn of it at the next take */
            rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "validation: %s",
                                mspt_ctx_error(t->ctx));
            continue;
        }
        v[0] += (double)loss->data[0] * m.count;
        v[1] += m.count;
    }
    if (!rc)
        rc = mspt_dist_sum(0, v, 2, err);
    mspt_ctx_set_grad(t->ctx, 1);
    mspt_ctx_set_training(t->ctx, 1);
    if (v[1] > 0)
        *out = v[0] / v[1];
    return rc;
}

static void fill_state(const trainer *t, mspt_train_state *st, double score)
{
    memset(st, 0, sizeof *st);
    st->epoch = t->epoch;
    st->batch = t->batch_in_epoch;
    st->global_batch = t->s.batch_size * t->nranks;
    st->step = t->step;
    mspt_rng_get_state(t->mask_rng, st->mask_rng);
    mspt_rng_get_state(t->drop_rng, st->drop_rng);
    if (!isnan(score)) {
        st->has_score = 1;
        st->score = score;
        snprintf(st->monitor, sizeof st->monitor, "%s", t->s.monitor);
    }
}

static int better(const trainer *t, double a, double b)
{
    return t->s.mode_max ? a > b : a < b;
}

/* Keep the top-k checkpoints by score: write this one if it ranks. */
static int save_topk(trainer *t, double score, mspt_error *err)
{
    if (t->s.top_k == 0 || isnan(score))
        return 0;
    if (t->ntopk == t->s.top_k && !better(t, score, t->topk[t->ntopk - 1].score))
        return 0;
    topk_entry e;
    e.score = score;
    if (snprintf(e.path, sizeof e.path, "%s/epoch=%03lld-step=%lld.safetensors",
                 t->ckpt_dir, t->epoch, t->step) >= (int)sizeof e.path)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: path too long",
                              t->ckpt_dir);
    mspt_train_state st;
    fill_state(t, &st, score);
    int rc = mspt_checkpoint_save(e.path, t->params, t->ovt, t->opt, &st, err);
    if (rc)
        return rc;
    if (t->ntopk == t->s.top_k) { /* drop the worst */
        unlink(t->topk[t->ntopk - 1].path);
        t->ntopk--;
    }
    int i = t->ntopk++;
    while (i > 0 && better(t, score, t->topk[i - 1].score)) {
        t->topk[i] = t->topk[i - 1];
        i--;
    }
    t->topk[i] = e;
    return 0;
}

/* Rebuild the top-k list from the checkpoint directory (resume). */
static void scan_topk(trainer *t)
{
    DIR *d = opendir(t->ckpt_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) && t->ntopk < MAX_TOPK) {
        if (strncmp(de->d_name, "epoch=", 6) != 0)
            continue;
        topk_entry e;
        if (snprintf(e.path, sizeof e.path, "%s/%s", t->ckpt_dir, de->d_name) >=
                (int)sizeof e.path ||
            mspt_checkpoint_score(e.path, &e.score) != 0)
            continue;
        int i = t->ntopk++;
        while (i > 0 && better(t, e.score, t->topk[i - 1].score)) {
            t->topk[i] = t->topk[i - 1];
            i--;
        }
        t->topk[i] = e;
    }
    closedir(d);
}

static int save_last(trainer *t, double score, mspt_error *err)
{
    if (!t->s.save_last)
        return 0;
    char path[4300];
    snprintf(path, sizeof path, "%s/last.safetensors", t->ckpt_dir);
    mspt_train_state st;
    fill_state(t, &st, score);
    return mspt_checkpoint_save(path, t->params, t->ovt, t->opt, &st, err);
}

static int restore(trainer *t, const char *resume, mspt_error *err)
{
    const mspt_node *pre = key(t, "pretrained_checkpoint_path");
    if (!resume && pre->type == MSPT_NODE_STRING) {
        int rc = mspt_checkpoint_load_weights(pre->s, t->params, err);
        if (rc)
            return mspt_error_prefix(err, "pretrained_checkpoint_path");
        mspt_progress_line(&t->metrics, "loaded pretrained weights from %s", pre->s);
        return 0;
    }
    if (!resume)
        return 0;
    char path[4300];
    if (!strcmp(resume, "last"))
        snprintf(path, sizeof path, "%s/last.safetensors", t->ckpt_dir);
    else
        snprintf(path, sizeof path, "%s", resume);
    mspt_train_state st;
    int rc = mspt_checkpoint_load(path, t->params, t->ovt, t->opt, &st, err);
    if (rc)
        return mspt_error_prefix(err, "resume");
    /* The position in windows maps onto this run's batches, whatever the
     * number of ranks (and batch size) of the run that saved it. */
    long long global = t->s.batch_size * t->nranks;
    long long windows = st.batch * (st.global_batch > 0 ? st.global_batch : global);
    if (windows % global)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "resume: %s stopped %lld windows into epoch %lld, "
                              "not a whole number of batches of %lld windows "
                              "(trainer.batch_size %lld x %d ranks)", path, windows,
                              st.epoch + 1, global, t->s.batch_size, t->nranks);
    t->epoch = st.epoch;
    t->batch_in_epoch = windows / global;
    t->step = st.step;
    mspt_rng_set_state(t->mask_rng, st.mask_rng);
    mspt_rng_set_state(t->drop_rng, st.drop_rng);
    scan_topk(t);
    printf("resumed from %s at epoch %lld, step %lld\n", path, t->epoch + 1, t->step);
    return 0;
}

/* ---- ranks ---------------------------------------------------------------- */

/* Every rank starts where rank 0 does: its weights (fresh, pretrained or
 * resumed: only rank 0 reads files), optimizer state, position and mask
 * stream.  The ranks must also see the same windows. */
static int share_state(trainer *t, mspt_error *err)
{
    if (t->nranks == 1)
        return 0;
    uint64_t mine[2] = {mspt_loader_windows(t->loader, MSPT_SPLIT_TRAIN),
                        mspt_loader_windows(t->loader, MSPT_SPLIT_VAL)};
    uint64_t first[2] = {mine[0], mine[1]};
    mspt_dist_bcast(first, sizeof first);
    int rc = 0;
    if (mine[0] != first[0] || mine[1] != first[1])
        rc = mspt_error_set(err, MSPT_ERR_CONFIG,
                            "data: %llu training and %llu validation windows "
                            "here, %llu and %llu on rank 0: every rank needs "
                            "the same data", (unsigned long long)mine[0],
                            (unsigned long long)mine[1],
                            (unsigned long long)first[0],
                            (unsigned long long)first[1]);
    if ((rc = mspt_dist_agree(rc, err)))
        return rc;
    for (size_t i = 0; i < mspt_params_count(t->params); i++) {
        mspt_tensor *p = mspt_params_at(t->params, i);
        mspt_dist_bcast(p->data, p->numel * sizeof(float));
    }
    size_t n = t->ovt->state(t->opt, NULL, 0);
    mspt_state_buffer *bufs = calloc(n ? n : 1, sizeof *bufs);
    if (!bufs) /* cannot go on in step with the others */
        mspt_dist_abort("out of memory");
    n = t->ovt->state(t->opt, bufs, n);
    for (size_t i = 0; i < n; i++)
        mspt_dist_bcast(bufs[i].data, bufs[i].numel * sizeof(float));
    free(bufs);
    long long pos[4] = {t->epoch, t->batch_in_epoch, t->step,
                        t->ovt->get_steps(t->opt)};
    uint64_t rng[MSPT_RNG_STATE_WORDS];
    mspt_rng_get_state(t->mask_rng, rng);
    mspt_dist_bcast(pos, sizeof pos);
    mspt_dist_bcast(rng, sizeof rng);
    t->epoch = pos[0];
    t->batch_in_epoch = pos[1];
    t->step = pos[2];
    t->ovt->set_steps(t->opt, pos[3]);
    mspt_rng_set_state(t->mask_rng, rng);
    return 0;
}

/* With several ranks each draws its own dropout stream, from (seed, rank,
 * position) at every batch, so a resumed run repeats it; one rank keeps
 * the single stream saved in checkpoints. */
static void seed_dropout(trainer *t)
{
    if (t->nranks == 1)
        return;
    uint64_t pos = ((uint64_t)t->epoch << 32) ^ (uint64_t)t->batch_in_epoch;
    mspt_rng_seed(t->drop_rng, ((uint64_t)t->s.seed ^ 0x64726f70ULL) +
                                   0x9e3779b97f4a7c15ULL * (uint64_t)(t->rank + 1) +
                                   0xbf58476d1ce4e5b9ULL * pos);
}

/* Agree on rc, and check that every rank holds rank 0's weights: they all
 * apply the same update to the same summed gradients, so a difference is
 * a bug (or a non-deterministic reduction), caught before it grows. */
static int agree_weights(trainer *t, int rc, mspt_error *err)
{
    if (t->nranks == 1)
        return rc;
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a over 32-bit words */
    for (size_t i = 0; i < mspt_params_count(t->params); i++) {
        const mspt_tensor *p = mspt_params_at(t->params, i);
        for (size_t k = 0; k < p->numel; k++) {
            uint32_t w;
            memcpy(&w, p->data + k, sizeof w);
            h = (h ^ w) * 0x100000001b3ULL;
        }
    }
    uint64_t h0 = h;
    mspt_dist_bcast(&h0, sizeof h0);
    if (!rc && h != h0)
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME,
                            "after step %lld the weights differ from rank 0's",
                            t->step);
    return mspt_dist_agree(rc, err);
}

/* ---- the loop ------------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int end_of_interval(trainer *t, double *val, mspt_error *err)
{
    int rc = validate(t, val, err);
    if (rc)
        return rc;
    mspt_record r = mspt_record_empty(t->step, t->epoch);
    r.val_loss = *val;
    if (!isnan(*val))
        log_record(t, &r);
    return 0;
}

/* Forward and backward of this rank's part of a batch; its loss into *lv.
 * The loss is scaled by the rank's share of the global batch, so that the
 * gradients summed over the ranks are those of the global batch's mean. */
static int train_batch(trainer *t, const micro *m, double *lv, mspt_error *err)
{
    seed_dropout(t);
    mspt_tensor *loss = forward(t, m->x, m->count);
    const char *why = mspt_ctx_error(t->ctx);
    if (!why && !isfinite(loss->data[0]))
        why = "the loss is not finite";
    if (!why) {
        float scale = 1.0f / (float)t->s.accumulate;
        if (m->count != m->total)
            scale *= (float)m->count / (float)m->total;
        if (mspt_backward_with(t->ctx, loss, &scale))
            why = mspt_ctx_error(t->ctx);
    }
    if (!why) {
        *lv = loss->data[0];
        return 0;
    }
    char last[4300];
    struct stat st;
    snprintf(last, sizeof last, "%s/last.safetensors", t->ckpt_dir);
    int have = stat(last, &st) == 0;
    return mspt_error_set(err, MSPT_ERR_RUNTIME,
                          "step %lld (epoch %lld, batch %lld): %s; %s%s",
                          t->step, t->epoch + 1, t->batch_in_epoch + 1, why,
                          have ? "the last good checkpoint is "
                               : "no checkpoint was written yet",
                          have ? last : "");
}

static int train_loop(trainer *t, mspt_error *err)
{
    const settings *s = &t->s;
    int rc = 0, done = 0;
    size_t epoch_batches = mspt_loader_batches(t->loader, MSPT_SPLIT_TRAIN,
                                               (int)s->batch_size, s->drop_last);
    if (s->limit_train && epoch_batches > (size_t)s->limit_train)
        epoch_batches = (size_t)s->limit_train;
    double t_start = now(), waited0 = mspt_loader_wait_seconds(t->loader);
    if (s->max_steps > 0 && t->step >= s->max_steps)
        done = 1;

    for (; t->epoch < s->max_epochs && !done; t->epoch++, t->batch_in_epoch = 0) {
        mspt_loader_begin(t->loader, MSPT_SPLIT_TRAIN, t->epoch, (int)s->batch_size,
                          s->shuffle, s->drop_last, (size_t)s->limit_train,
                          (size_t)t->batch_in_epoch);
        /* sums of loss × windows and windows, this rank's; epoch_total: the
         * windows of all ranks */
        double epoch_sum = 0, log_sum = 0;
        long long epoch_n = 0, log_n = 0, epoch_total = 0, pending = 0;
        double t_log = now(), t_epoch = t_log, lv = 0;
        micro m;
        /* An error of this rank (rc) is learnt by all at the next take or
         * gradient sum, whichever comes first; all stop there. */
        while (take(t, &rc, t->mask_rng, &m, err)) {
            if (m.count > 0 && !(rc = train_batch(t, &m, &lv, err))) {
                epoch_sum += lv * m.count;
                epoch_n += m.count;
                log_sum += lv * m.count;
                log_n += m.count;
            }
            epoch_total += m.total;
            pending += m.total > 0;
            t->batch_in_epoch++;
            int last = (size_t)t->batch_in_epoch == epoch_batches;
            if (pending == 0 || (pending < s->accumulate && !last))
                continue;
            pending = 0;

            /* one optimizer update, on the gradients summed over the ranks */
            if (!rc)
                rc = set_lrs(t, err);
            if (t->sync)
                rc = mspt_dist_grads_sum(t->sync, rc, err);
            if (rc)
                break;
            if (s->clip > 0)
                mspt_clip_grad_norm(t->params, s->clip);
            t->ovt->step(t->opt);
            mspt_params_zero_grad(t->params);
            t->step++;

            if (t->step % s->log_every == 0) {
                double v[2] = {log_sum, (double)log_n};
                if ((rc = mspt_dist_sum(0, v, 2, err)))
                    break;
                double dt = now() - t_log;
                mspt_record r = mspt_record_empty(t->step, t->epoch);
                r.train_loss = v[0] / v[1];
                r.lr = t->groups[0].lr;
                r.samples_per_sec = dt > 0 ? v[1] / dt : NAN;
                log_record(t, &r);
                if (!s->bar)
                    mspt_progress_line(&t->metrics,
                                       "epoch %lld step %lld train_loss %.6f lr %.3e "
                                       "%.1f samples/s", t->epoch + 1, t->step,
                                       r.train_loss, r.lr, r.samples_per_sec);
                log_sum = 0;
                log_n = 0;
                t_log = now();
            }
            double el = now() - t_epoch;
            mspt_progress(&t->metrics, t->epoch, s->max_epochs, t->batch_in_epoch,
                          (long long)epoch_batches, lv, t->groups[0].lr,
                          el > 0 ? (double)t->batch_in_epoch / el : 0);
            if (s->val_every && t->step % s->val_every == 0 && !last) {
                double val;
                if ((rc = end_of_interval(t, &val, err)))
                    break;
                mspt_progress_line(&t->metrics, "step %lld: val_loss %.6f", t->step, val);
            }
            if (s->max_steps > 0 && t->step >= s->max_steps) {
                done = 1;
                break;
            }
        }
        if (rc)
            break;
        if (epoch_total == 0)
            continue;

        /* end of epoch (or of the run at max_steps): validate, log, save */
        double val, v[2] = {epoch_sum, (double)epoch_n};
        if ((rc = validate(t, &val, err)) || (rc = mspt_dist_sum(0, v, 2, err)))
            break;
        mspt_record r = mspt_record_empty(t->step, t->epoch);
        r.train_loss_epoch = v[0] / v[1];
        r.val_loss = val;
        log_record(t, &r);
        if (t->rank == 0)
            rc = plot_samples(t, err);
        mspt_progress_line(&t->metrics, "epoch %lld: train_loss %.6f val_loss %.6f "
                           "(%.1f s)", t->epoch + 1, r.train_loss_epoch, val,
                           now() - t_epoch);
        double score = !strcmp(s->monitor, "val_loss") ? val : r.train_loss_epoch;
        int complete = (size_t)t->batch_in_epoch >= epoch_batches;
        if (complete) { /* the saved position is the next epoch's start */
            t->epoch++;
            t->batch_in_epoch = 0;
        }
        if (!rc && t->rank == 0)
            rc = save_topk(t, score, err);
        if (!rc && t->rank == 0)
            rc = save_last(t, score, err);
        if (complete) {
            t->epoch--;
            t->batch_in_epoch = epoch_batches;
        }
        if ((rc = agree_weights(t, rc, err)))
            break;
    }
    if (!rc && t->s.csv) {
        mspt_error perr = {0};
        if (mspt_render_curves(t->run_dir, 0, NULL, 0, &perr))
            mspt_progress_line(&t->metrics, "note: no curves.png: %s", perr.msg);
    }
    double total = now() - t_start;
    double waited = mspt_loader_wait_seconds(t->loader) - waited0;
    double skipped = (double)mspt_loader_skipped(t->loader);
    if (!rc)
        rc = mspt_dist_sum(0, &skipped, 1, err);
    char ranks[160] = "";
    if (t->sync) {
        long long calls;
        double slow, sync = mspt_dist_grads_seconds(t->sync, &slow, &calls);
        double per = calls ? 1e3 / (double)calls : 0;
        snprintf(ranks, sizeof ranks, "; %d ranks, gradient allreduce %.1f ms per "
                 "update (%d buckets) after %.1f ms waiting for the slowest rank",
                 t->nranks, sync * per, mspt_dist_grads_buckets(t->sync), slow * per);
    }
    if (total > 0)
        mspt_progress_line(&t->metrics, "done: %lld updates in %.1f s; waited for "
                           "data %.1f%% of the time; %.0f non-finite windows "
                           "skipped%s", t->step, total, 100.0 * waited / total,
                           skipped, ranks);
    return rc;
}

int mspt_train(mspt_experiment *x, const char *run_dir, const char *resume,
               mspt_error *err)
{
    trainer *t = calloc(1, sizeof *t);
    if (!t)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    t->x = x;
    t->rank = mspt_dist_rank();
    t->nranks = mspt_dist_size();
    snprintf(t->run_dir, sizeof t->run_dir, "%s", run_dir);
    if (!resume && key(t, "resume")->type == MSPT_NODE_STRING)
        resume = key(t, "resume")->s;
    int rc = read_settings(t, err);
    if (!rc)
        rc = setup(t, err);
    if (!rc && t->rank == 0) /* the others receive what it reads */
        rc = restore(t, resume, err);
    if (!rc) /* resuming drops the rows the stopped run wrote after its save */
        rc = mspt_metrics_open(&t->metrics, run_dir, resume ? t->step : -1,
                               t->s.csv, t->s.bar, err);
    if (!rc && t->s.tensorboard) {
        char tb[4200];
        snprintf(tb, sizeof tb, "%s/tb", run_dir);
        t->tb = mspt_tb_open(tb, err);
        rc = t->tb ? 0 : err->status;
    }
    rc = mspt_dist_agree(rc, err);
    if (!rc)
        rc = share_state(t, err);
    if (!rc) {
        printf("model: %zu parameters; %zu training and %zu validation windows "
               "of %d x %d\n", mspt_params_numel(t->params),
               mspt_loader_windows(t->loader, MSPT_SPLIT_TRAIN),
               mspt_loader_windows(t->loader, MSPT_SPLIT_VAL), t->C, t->T);
        rc = train_loop(t, err);
    }
    teardown(t);
    free(t);
    return rc;
}
