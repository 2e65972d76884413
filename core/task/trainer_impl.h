/* The trainer's internals, shared by its files (not installed):
 *   trainer.c        the loop and mspt_train
 *   trainer_setup.c  settings from the configuration, building the parts
 *   trainer_batch.c  one batch: masks, forward, logging, sample plots
 *   trainer_state.c  validation, checkpoints, resume, agreement of ranks */
#ifndef MSPT_TRAINER_IMPL_H
#define MSPT_TRAINER_IMPL_H

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
    long long epoch_lag; /* scheduler.epoch_lag */
    double split, clip, unmasked_coeff, ratio;
    int shuffle, drop_last, save_last, mode_max, per_batch;
    mspt_norm norm;
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
    int lock_fd; /* run_dir/.mspt.lock held for the run (rank 0), or -1 */
    int log_rc;         /* first failed write of a log (rank 0), kept until */
    mspt_error log_err; /* the loop can stop every rank: trainer_log_status */

    /* data parallelism: rank of nranks; with one rank all is as before */
    int rank, nranks;
    int *counts;             /* windows of each rank in the current batch */
    mspt_dist_grads *sync;   /* NULL with one rank */

    float *target, *input, *scratch;
    mspt_tensor *last_recon; /* of the last forward (plots) */
    uint8_t *masks;          /* masks of the whole global batch */
    uint8_t *mask, *unmask;  /* this rank's (mask points into masks) */
    const int *live;         /* live channels of each of this rank's windows
                              * (NULL: all); rows past them stay out of the loss */

    long long epoch, step, batch_in_epoch;
    topk_entry topk[MAX_TOPK];
    int ntopk;
} trainer;

/* A batch as the ranks share it. */
typedef struct micro {
    const float *x;
    int count;  /* this rank's windows (may be 0) */
    int total;  /* the global batch's windows */
} micro;

/* trainer_setup.c */
const mspt_node *trainer_key(const trainer *t, const char *path);
int trainer_read_settings(trainer *t, mspt_error *err);
int trainer_set_lrs(trainer *t, mspt_error *err);
int trainer_setup(trainer *t, mspt_error *err);
void trainer_teardown(trainer *t);

/* trainer_batch.c */
mspt_tensor *trainer_forward(trainer *t, const float *x, int B);
int trainer_log_record(trainer *t, const mspt_record *r);
int trainer_log_status(trainer *t, mspt_error *err);
int trainer_close_logs(trainer *t, mspt_error *err);
int trainer_plot_samples(trainer *t, mspt_error *err);
int trainer_take(trainer *t, int *rc, mspt_rng *rng, micro *m,
                 mspt_error *err);

/* trainer_state.c */
int trainer_agree_weights(trainer *t, int rc, mspt_error *err);
int trainer_restore(trainer *t, const char *resume, mspt_error *err);
int trainer_save_last(trainer *t, double score, mspt_error *err);
int trainer_save_topk(trainer *t, double score, mspt_error *err);
void trainer_seed_dropout(trainer *t);
int trainer_share_state(trainer *t, mspt_error *err);
int trainer_validate(trainer *t, double *out, mspt_error *err);

#endif
