/* Training loop, see trainer.h; the internals are in trainer_impl.h. */
#include "task/trainer_impl.h"

#include "config/yaml_io.h"

/* ---- the loop ------------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int end_of_interval(trainer *t, double *val, mspt_error *err)
{
    int rc = trainer_validate(t, val, err);
    if (rc)
        return rc;
    mspt_record r = mspt_record_empty(t->step, t->epoch);
    r.val_loss = *val;
    if (!isnan(*val))
        trainer_log_record(t, &r);
    return 0;
}

/* Forward and backward of this rank's part of a batch; its loss into *lv.
 * The loss is scaled by the rank's share of the global batch, so that the
 * gradients summed over the ranks are those of the global batch's mean. */
static int train_batch(trainer *t, const micro *m, double *lv, mspt_error *err)
{
    trainer_seed_dropout(t);
    mspt_tensor *loss = trainer_forward(t, m->x, m->count);
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
        while (trainer_take(t, &rc, t->mask_rng, &m, err)) {
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
                rc = trainer_set_lrs(t, err);
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
                trainer_log_record(t, &r);
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
        if ((rc = trainer_validate(t, &val, err)) || (rc = mspt_dist_sum(0, v, 2, err)))
            break;
        mspt_record r = mspt_record_empty(t->step, t->epoch);
        r.train_loss_epoch = v[0] / v[1];
        r.val_loss = val;
        trainer_log_record(t, &r);
        if (t->rank == 0 && !(rc = trainer_log_status(t, err)))
            rc = trainer_plot_samples(t, err);
        char vals[64] = ""; /* no validation split: no val_loss at all */
        if (!isnan(val))
            snprintf(vals, sizeof vals, " val_loss %.6f", val);
        mspt_progress_line(&t->metrics, "epoch %lld: train_loss %.6f%s (%.1f s)",
                           t->epoch + 1, r.train_loss_epoch, vals, now() - t_epoch);
        double score = !strcmp(s->monitor, "val_loss") ? val : r.train_loss_epoch;
        int complete = (size_t)t->batch_in_epoch >= epoch_batches;
        if (complete) { /* the saved position is the next epoch's start */
            t->epoch++;
            t->batch_in_epoch = 0;
        }
        if (!rc && t->rank == 0)
            rc = trainer_save_topk(t, score, err);
        if (!rc && t->rank == 0)
            rc = trainer_save_last(t, score, err);
        if (complete) {
            t->epoch--;
            t->batch_in_epoch = epoch_batches;
        }
        if ((rc = trainer_agree_weights(t, rc, err)))
            break;
    }
    if (!rc && t->s.csv && !(rc = trainer_log_status(t, err))) {
        mspt_error perr = {0};
        char plots[4200];
        snprintf(plots, sizeof plots, "%s/plots", t->run_dir);
        int crc = mspt_render_curves(t->run_dir, 0, NULL, 0, &perr);
        /* nothing to draw is a note; failing to write plots/ (whose errors
         * start with the path) loses an output, and stops the run */
        if (crc && !strncmp(perr.msg, plots, strlen(plots)))
            rc = mspt_error_set(err, crc, "%s", perr.msg);
        else if (crc)
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

/* The run directory with hparams.yaml (and checkpoints/ when checkpoints
 * are kept), made once the configuration and the data have proved good:
 * a run stopped by a configuration or data error leaves nothing behind.
 * Only rank 0 writes files. */
static int open_run_dir(trainer *t, mspt_error *err)
{
    if (t->rank > 0)
        return 0;
    char hp[4200];
    snprintf(hp, sizeof hp, "%s/hparams.yaml", t->run_dir);
    int rc = mspt_make_dirs(t->run_dir, err);
    /* one run at a time in a directory: two would interleave metrics.csv */
    if (!rc)
        rc = mspt_lock_dir(t->run_dir, &t->lock_fd, err);
    if (!rc) { /* held: every temporary file left is a killed writer's */
        char plots[4200];
        snprintf(plots, sizeof plots, "%s/plots", t->run_dir);
        const char *dirs[] = {t->run_dir, t->ckpt_dir, plots};
        long n = 0;
        long long bytes = 0;
        for (int i = 0; i < 3; i++) {
            long k = mspt_remove_temporaries(dirs[i], &bytes);
            n += k > 0 ? k : 0;
        }
        if (n)
            printf("removed %ld temporary file%s (%.1f MB) left by a stopped run\n",
                   n, n == 1 ? "" : "s", (double)bytes / 1e6);
    }
    if (!rc) /* data problems found while building the datasets, and later */
        rc = mspt_data_log_open(t->run_dir, err);
    if (!rc)
        rc = mspt_yaml_save(t->x->root, hp, err);
    if (!rc && (t->s.save_last || t->s.top_k > 0))
        rc = mspt_make_dirs(t->ckpt_dir, err);
    return rc;
}

int mspt_train(mspt_experiment *x, const char *run_dir, const char *resume,
               mspt_error *err)
{
    trainer *t = calloc(1, sizeof *t);
    if (!t)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    t->x = x;
    t->lock_fd = -1;
    t->rank = mspt_dist_rank();
    t->nranks = mspt_dist_size();
    snprintf(t->run_dir, sizeof t->run_dir, "%s", run_dir);
    if (!resume && trainer_key(t, "resume")->type == MSPT_NODE_STRING)
        resume = trainer_key(t, "resume")->s;
    int rc = trainer_read_settings(t, err);
    if (!rc)
        rc = trainer_setup(t, err);
    if (!rc && t->rank == 0) /* the others receive what it reads */
        rc = trainer_restore(t, resume, err);
    if (!rc)
        rc = open_run_dir(t, err);
    if (!rc) /* resuming drops the rows the stopped run wrote after its save */
        rc = mspt_metrics_open(&t->metrics, run_dir, resume ? t->step : -1,
                               t->s.csv, t->s.bar, err);
    if (!rc && t->s.tensorboard) {
        char tb[4200];
        snprintf(tb, sizeof tb, "%s/tb", run_dir);
        t->tb = mspt_tb_open(tb, err);
        rc = t->tb ? 0 : err->status;
        /* a resumed run hides what the stopped one logged after its save */
        if (!rc && mspt_tb_session_start(t->tb, resume ? t->step + 1 : 0))
            rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s",
                                mspt_tb_path(t->tb), strerror(errno));
    }
    rc = mspt_dist_agree(rc, err);
    if (!rc)
        rc = trainer_share_state(t, err);
    if (!rc) {
        printf("model: %zu parameters; %zu training and %zu validation windows "
               "of %d x %d\n", mspt_params_numel(t->params),
               mspt_loader_windows(t->loader, MSPT_SPLIT_TRAIN),
               mspt_loader_windows(t->loader, MSPT_SPLIT_VAL), t->C, t->T);
        rc = train_loop(t, err);
    }
    if (t->rank == 0) { /* a log lost at its close fails the run too */
        mspt_error cerr = {0};
        int crc = trainer_close_logs(t, &cerr);
        if (!rc && (rc = mspt_dist_agree(crc, &cerr)))
            *err = cerr;
    } else if (!rc)
        rc = mspt_dist_agree(0, err);
    trainer_teardown(t);
    if (t->lock_fd >= 0) /* after the last write to the run directory */
        close(t->lock_fd);
    free(t);
    return rc;
}
