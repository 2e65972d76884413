/* Checkpoints: safetensors files holding the model's weights under PyTorch
 * names ("model.<state_dict key>"), the optimizer's state buffers
 * ("optimizer.<param>.<buffer>"), and the training position in metadata
 * (epoch, step, batch, RNG states, optimizer step count, monitored score).
 * Writes are atomic: a crash never damages the previous file. */
#ifndef MSPT_CHECKPOINT_H
#define MSPT_CHECKPOINT_H

#include <stdint.h>

#include <mspt/plugin.h>

#define MSPT_CKPT_FORMAT "mspt-checkpoint-1"

typedef struct mspt_train_state {
    long long epoch;       /* current epoch (0-based) */
    long long batch;       /* batches of that epoch already done */
    long long step;        /* optimizer updates so far */
    long long opt_steps;   /* the optimizer's own counter */
    long long global_batch; /* windows per batch over all ranks when saved
                              (0: not recorded, older checkpoints) */
    uint64_t mask_rng[MSPT_RNG_STATE_WORDS];
    uint64_t drop_rng[MSPT_RNG_STATE_WORDS];
    int has_score;
    double score;          /* monitored metric at save time */
    char monitor[64];
} mspt_train_state;

/* Save weights, optimizer state (opt may be NULL) and state. */
int mspt_checkpoint_save(const char *path, const mspt_params *params,
                         const mspt_optimizer_vt *ovt, void *opt,
                         const mspt_train_state *st, mspt_error *err);
/* Load weights only: every parameter must be present with its shape, under
 * "model.<name>" or plain "<name>" (a PyTorch state_dict saved with
 * safetensors); extra tensors are ignored. */
int mspt_checkpoint_load_weights(const char *path, mspt_params *params,
                                 mspt_error *err);
/* Load weights, optimizer state and training position for resuming. */
int mspt_checkpoint_load(const char *path, mspt_params *params,
                         const mspt_optimizer_vt *ovt, void *opt,
                         mspt_train_state *st, mspt_error *err);
/* Read only the monitored score of a checkpoint (top-k bookkeeping). */
int mspt_checkpoint_score(const char *path, double *score);

#endif
