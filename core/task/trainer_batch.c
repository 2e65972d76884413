/* Trainer: one batch (masks, forward, loss), logging, sample plots. */
#include "task/trainer_impl.h"

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

/* Zero rows at or past each window's live channel count in mask (B, C, T):
 * zero padding (datasets' live_channels) is never scored.  Done after the
 * masks are drawn, so the mask stream is the same as without padding. */
static void clear_padding(const trainer *t, uint8_t *mask, int B)
{
    if (!t->live)
        return;
    const size_t T = (size_t)t->T;
    for (int b = 0; b < B; b++)
        if (t->live[b] < t->C)
            memset(mask + ((size_t)b * t->C + (size_t)t->live[b]) * T, 0,
                   (size_t)(t->C - t->live[b]) * T);
}

/* The next batch of the pass, taken by every rank at once, with this rank's
 * masks made.  *rc: this rank's status so far, which every rank learns
 * here.  Returns 1 (a batch), 0 at the end of the pass or on an error of
 * any rank (*rc set, the same on every rank). */
int trainer_take(trainer *t, int *rc, mspt_rng *rng, micro *m, mspt_error *err)
{
    int got = 0;
    m->count = 0;
    if (!*rc)
        *rc = trainer_log_status(t, err);
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
    t->live = mspt_loader_live(t->loader);
    clear_padding(t, t->mask, m->count);
    return 1;
}

/* Normalise, mask (with t->mask), run the model and the loss for B windows
 * at x.  Returns the loss tensor (NULL after an error in ctx). */
mspt_tensor *trainer_forward(trainer *t, const float *x, int B)
{
    size_t win = (size_t)t->C * t->T, n = (size_t)B * win;
    memcpy(t->target, x, n * sizeof(float));
    mspt_norm_apply(&t->s.norm, t->target, (size_t)B * t->C, t->T, t->scratch);
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
        clear_padding(t, t->unmask, B);
        mspt_tensor *vis = t->lvt->forward(t->loss, ctx, recon, target, t->unmask);
        loss = mspt_add(ctx, loss, mspt_scale(ctx, vis, (float)t->s.unmasked_coeff));
    }
    return loss;
}

/* ---- logging ---------------------------------------------------------------- */

/* Keep the first failure of a log write, naming the file (errno: why). */
static int log_failed(trainer *t, const char *path)
{
    if (!t->log_rc)
        t->log_rc = mspt_error_set(&t->log_err, MSPT_ERR_RUNTIME,
                                   "%s: cannot write: %s", path, strerror(errno));
    return t->log_rc;
}

/* One record to metrics.csv and TensorBoard (tags = the CSV's columns).
 * A failed write (a full disk) is kept in t->log_rc: rank 0 alone logs,
 * so the loop stops on it where every rank learns of it. */
int trainer_log_record(trainer *t, const mspt_record *r)
{
    if (t->log_rc)
        return t->log_rc;
    mspt_error e = {0};
    if (mspt_metrics_write(&t->metrics, r, &e)) { /* no-op without csv */
        t->log_err = e;
        return t->log_rc = e.status;
    }
    const char *tags[] = {"train_loss", "train_loss_epoch", "val_loss", "lr"};
    double vals[] = {r->train_loss, r->train_loss_epoch, r->val_loss, r->lr};
    for (int i = 0; i < 4; i++)
        if (!isnan(vals[i]) &&
            mspt_tb_scalar(t->tb, tags[i], r->step, 0, (float)vals[i]))
            return log_failed(t, mspt_tb_path(t->tb));
    return 0;
}

/* The kept log failure into err (0: none). */
int trainer_log_status(trainer *t, mspt_error *err)
{
    if (t->log_rc)
        *err = t->log_err;
    return t->log_rc;
}

/* Close metrics.csv and the event file, checking that all reached the
 * disk; 0 or the first failure (a kept one first). */
int trainer_close_logs(trainer *t, mspt_error *err)
{
    mspt_error e = {0};
    int rc = trainer_log_status(t, err);
    int crc = mspt_metrics_close(&t->metrics, &e);
    if (!rc && crc) {
        *err = e;
        rc = crc;
    }
    const char *tb = t->tb ? strdup(mspt_tb_path(t->tb)) : NULL;
    if (mspt_tb_close(t->tb) && !rc)
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot write: %s",
                            tb ? tb : "event file", strerror(errno));
    t->tb = NULL;
    free((void *)tb);
    return rc;
}

/* Reconstructions of the fixed validation windows plots.samples (channels
 * plots.channels), with the same masks every epoch, to
 * run_dir/plots/epoch_NNN_sample_K.png and TensorBoard. */
int trainer_plot_samples(trainer *t, mspt_error *err)
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
        int live = mspt_loader_live_channels(t->loader, MSPT_SPLIT_VAL, (size_t)idx);
        t->live = &live;
        clear_padding(t, t->mask, 1);
        mspt_tensor *loss = trainer_forward(t, x, 1);
        t->live = NULL;
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
            if (!rc && mspt_tb_image(t->tb, tag, t->step, 0, png, len, s->plot_w,
                                     s->plot_h, 4))
                rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot write: %s",
                                    mspt_tb_path(t->tb), strerror(errno));
            free(png);
        }
    }
    mspt_ctx_set_grad(t->ctx, 1);
    mspt_ctx_set_training(t->ctx, 1);
    free(x);
    return rc;
}
