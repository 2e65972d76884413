/* Trainer: validation, checkpoints, resume, and keeping the ranks in step. */
#include "task/trainer_impl.h"

/* ---- validation, checkpoints --------------------------------------------- */

/* Mean validation loss over windows, of all ranks (NAN when there are
 * none). */
int trainer_validate(trainer *t, double *out, mspt_error *err)
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
    while (trainer_take(t, &rc, t->val_rng, &m, err)) {
        if (m.count == 0)
            continue;
        mspt_tensor *loss = trainer_forward(t, m.x, m.count);
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
int trainer_save_topk(trainer *t, double score, mspt_error *err)
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

int trainer_save_last(trainer *t, double score, mspt_error *err)
{
    if (!t->s.save_last)
        return 0;
    char path[4300];
    snprintf(path, sizeof path, "%s/last.safetensors", t->ckpt_dir);
    mspt_train_state st;
    fill_state(t, &st, score);
    return mspt_checkpoint_save(path, t->params, t->ovt, t->opt, &st, err);
}

int trainer_restore(trainer *t, const char *resume, mspt_error *err)
{
    const mspt_node *pre = trainer_key(t, "pretrained_checkpoint_path");
    if (!resume && pre->type == MSPT_NODE_STRING) {
        char note[1024];
        int strict = trainer_key(t, "pretrained_strict")->b;
        int rc = mspt_checkpoint_load_weights(
            pre->s, t->params, strict ? MSPT_WEIGHTS_STRICT : MSPT_WEIGHTS_LENIENT,
            note, sizeof note, err);
        if (rc)
            return mspt_error_prefix(err, "pretrained_checkpoint_path");
        mspt_progress_line(&t->metrics, "loaded pretrained weights from %s", pre->s);
        if (*note)
            mspt_progress_line(&t->metrics, "pretrained_strict = false: %s", note);
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
    long long global = t->s.batch_size * t->nranks, windows;
    int over = __builtin_mul_overflow(
        st.batch, st.global_batch > 0 ? st.global_batch : global, &windows);
    if (!over && windows % global)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "resume: %s stopped %lld windows into epoch %lld, "
                              "not a whole number of batches of %lld windows "
                              "(trainer.batch_size %lld x %d ranks)", path, windows,
                              st.epoch + 1, global, t->s.batch_size, t->nranks);
    /* a saved position is inside its epoch: at its end the save names the
     * next epoch's start (batch 0) */
    size_t batches = mspt_loader_batches(t->loader, MSPT_SPLIT_TRAIN,
                                         (int)t->s.batch_size, t->s.drop_last);
    if (t->s.limit_train && batches > (size_t)t->s.limit_train)
        batches = (size_t)t->s.limit_train;
    if (over || windows / global >= (long long)batches)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "resume: %s: metadata 'batch' is %lld (%lld windows "
                              "into epoch %lld), but an epoch of this run has %zu "
                              "batches of %lld windows", path, st.batch, windows,
                              st.epoch + 1, batches, global);
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
int trainer_share_state(trainer *t, mspt_error *err)
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
void trainer_seed_dropout(trainer *t)
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
int trainer_agree_weights(trainer *t, int rc, mspt_error *err)
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
