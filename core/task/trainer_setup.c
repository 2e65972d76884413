/* Trainer: settings read from the configuration, and building the parts. */
#include "task/trainer_impl.h"

/* ---- configuration ----------------------------------------------------- */

const mspt_node *trainer_key(const trainer *t, const char *path)
{
    return mspt_node_at(t->x->root, path);
}
static long long cfg_int(const trainer *t, const char *p)
{
    return trainer_key(t, p)->i;
}
static double cfg_float(const trainer *t, const char *p)
{
    return mspt_node_number(trainer_key(t, p));
}
static int cfg_bool(const trainer *t, const char *p)
{
    return trainer_key(t, p)->b;
}
static const char *cfg_str(const trainer *t, const char *p)
{
    return trainer_key(t, p)->s;
}

int trainer_read_settings(trainer *t, mspt_error *err)
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
    const mspt_node *patch = trainer_key(t, "masking.patch_size");
    const mspt_node *loggers = trainer_key(t, "logger");
    s->plot_samples = trainer_key(t, "plots.samples");
    s->plot_channels = trainer_key(t, "plots.channels");
    s->plot_w = (int)cfg_int(t, "plots.width");
    s->plot_h = (int)cfg_int(t, "plots.height");

    s->epoch_lag = t->x->scheduler.c ? mspt_config_int(&t->x->scheduler.cfg, "epoch_lag") : 0;

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
    if (s->epoch_lag < 0 || s->epoch_lag > 1000)
        BAD("scheduler.epoch_lag: must be 0..1000, got %lld", s->epoch_lag);
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
    if (mspt_norm_read(t->x->root, &s->norm, err))
        return err->status;
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
int trainer_set_lrs(trainer *t, mspt_error *err)
{
    for (size_t g = 0; g < t->ngroups; g++) {
        double lr = t->base_lr[g];
        int failed = 0;
        if (t->sched)
            lr = t->svt->lr(t->sched, t->step,
                            t->epoch > t->s.epoch_lag ? t->epoch - t->s.epoch_lag : 0, lr);
        else if (t->x->scheduler_fn)
            lr = lua_schedule(t, t->step, t->epoch, lr, err, &failed);
        if (failed)
            return MSPT_ERR_CONFIG;
        t->groups[g].lr = (float)lr;
    }
    return 0;
}

/* plots.samples and plots.channels must name windows and channels that
 * exist (checked once the data is known, before training).  The default
 * samples {0, 1, 2} are cut to the validation split, in the tree, so that
 * hparams.yaml records what is plotted. */
static int check_plots(const trainer *t, mspt_error *err)
{
    const settings *s = &t->s;
    size_t nval = mspt_loader_windows(t->loader, MSPT_SPLIT_VAL);
    if (nval == 0) /* no validation split: nothing is plotted */
        return 0;
    if (t->x->plot_samples_default) {
        mspt_node *samples = (mspt_node *)s->plot_samples; /* the tree's */
        size_t keep = 0;
        for (size_t i = 0; i < samples->n; i++)
            if ((size_t)samples->items[i]->i < nval)
                samples->items[keep++] = samples->items[i];
            else
                mspt_node_free(samples->items[i]);
        samples->n = keep;
    }
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

/* Checkpoints ranked by val_loss need a validation split. */
static int check_monitor(const trainer *t, mspt_error *err)
{
    const settings *s = &t->s;
    if (s->top_k == 0 || strcmp(s->monitor, "val_loss") ||
        mspt_loader_windows(t->loader, MSPT_SPLIT_VAL) > 0)
        return 0;
    return mspt_error_set(err, MSPT_ERR_CONFIG,
                          "trainer.monitor: val_loss, but there is no validation "
                          "(trainer.train_val_split = %g leaves no window); "
                          "monitor train_loss_epoch or set trainer.save_top_k = 0",
                          s->split);
}

int trainer_setup(trainer *t, mspt_error *err)
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
        rc = dvt->create(&x->data[i].cfg, &t->datasets[i], err);
        if ((rc = mspt_slot_built(&x->data[i], NULL, rc, err))) {
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
    if ((rc = check_plots(t, err)) || (rc = check_monitor(t, err))) {
        mspt_rng_free(init_rng);
        return rc;
    }

    /* model: built from the run's seed, then checked against the data */
    t->enc = x->model.c->vtable;
    rc = t->enc->create(&x->model.cfg, t->params, init_rng, &t->model, err);
    mspt_rng_free(init_rng);
    if ((rc = mspt_slot_built(&x->model, t->params, rc, err)))
        return rc;
    if ((rc = t->enc->check_input(t->model, t->C, t->T, err)))
        return mspt_error_prefix(err, "data");
    t->lvt = x->criterion.c->vtable;
    rc = t->lvt->create(&x->criterion.cfg, &t->loss, err);
    if ((rc = mspt_slot_built(&x->criterion, NULL, rc, err)))
        return rc;
    if ((rc = build_groups(t, err)))
        return rc;
    t->ovt = x->optimizer.c->vtable;
    rc = t->ovt->create(&x->optimizer.cfg, t->groups, t->ngroups, &t->opt, err);
    if ((rc = mspt_slot_built(&x->optimizer, NULL, rc, err)))
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
        rc = t->svt->create(&x->scheduler.cfg, &info, &t->sched, err);
        if ((rc = mspt_slot_built(&x->scheduler, NULL, rc, err)))
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
    return 0; /* the directories are made once all of this succeeded */
}

void trainer_teardown(trainer *t)
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
    mspt_metrics_close(&t->metrics, NULL); /* trainer_close_logs checked */
    mspt_tb_close(t->tb);
}
