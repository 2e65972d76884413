/* The pretraining task and its training loop (seed: pretrain_task.md).
 *
 * Per batch: window x (B,C,T) → optional robust normalisation (the target)
 * → patch mask → masked input (masked entries zero) → encoder → recon
 * → loss = criterion(recon[mask], x[mask]) (+ unmasked_loss_coeff × the
 * same on visible entries) → backward → (every accumulate_grad_batches)
 * global-norm clipping, scheduler lr, optimizer step.
 * Validation runs in no-grad mode with the same masks every epoch. */
#ifndef MSPT_TRAINER_H
#define MSPT_TRAINER_H

#include "task/experiment.h"

/* Train the experiment, writing into run_dir (created, with hparams.yaml,
 * once the configuration and data have been checked).  resume: NULL, or
 * "last", or a checkpoint path, overriding the experiment's `resume`. */
int mspt_train(mspt_experiment *x, const char *run_dir, const char *resume,
               mspt_error *err);

#endif
