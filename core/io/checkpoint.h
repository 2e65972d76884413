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
/* How mspt_checkpoint_load_weights treats a file that is not exactly the
 * model's parameters (as PyTorch's load_state_dict(strict=...)). */
typedef enum mspt_weights_match {
    MSPT_WEIGHTS_STRICT,   /* every parameter, and no tensor besides */
    MSPT_WEIGHTS_EXTRA_OK, /* every parameter; other tensors ignored */
    MSPT_WEIGHTS_LENIENT   /* what matches loads; the rest is listed */
} mspt_weights_match;

/* Load weights only, under "model.<name>" or plain "<name>" (a PyTorch
 * state_dict saved with safetensors), each with the parameter's shape.  The
 * optimizer state of an mspt checkpoint is never "another tensor".  With
 * MSPT_WEIGHTS_LENIENT, note (cap bytes, may be NULL) says what was ignored
 * and which parameters kept their initial values ("" when all matched). */
int mspt_checkpoint_load_weights(const char *path, mspt_params *params,
                                 mspt_weights_match match, char *note,
                                 size_t cap, mspt_error *err);
/* Load weights, optimizer state and training position for resuming. */
int mspt_checkpoint_load(const char *path, mspt_params *params,
                         const mspt_optimizer_vt *ovt, void *opt,
                         mspt_train_state *st, mspt_error *err);
/* Read only the monitored score of a checkpoint (top-k bookkeeping). */
int mspt_checkpoint_score(const char *path, double *score);

#endif
