/* The optimizers module: sgd, adam, adamw and lamb.
 *
 * Contract with the trainer:
 * - The trainer builds the parameter groups (mspt_param_group: params, lr,
 *   weight_decay) and keeps the array alive as long as the optimizer; the
 *   optimizer holds a pointer to it and reads it at every step.
 * - Before every step the trainer sets each group's `lr` from the scheduler
 *   and its `weight_decay` from this config.  So every schema here declares
 *   `lr` (default 1e-3) and `weight_decay` (default 0, but 0.01 for adam as
 *   in the seed pipeline and for adamw as in PyTorch): the core reads those
 *   two keys, the optimizer reads its own other keys (and checks all).
 * - step() updates every parameter of every group from its accumulated
 *   `grad` (parameters whose grad is NULL are skipped, as torch skips
 *   grad None) with the group's current lr and weight_decay.
 * - All state is allocated in create, none in step.  state() exposes each
 *   buffer as "<param name>.<buffer>" (torch's names: momentum_buffer,
 *   exp_avg, exp_avg_sq, max_exp_avg_sq) for checkpoints; get_steps and
 *   set_steps carry the step counter (bias corrections, SGD's first step).
 *   A fresh optimizer given the saved buffers and step count continues
 *   bit-identically.
 * - Elementwise loops run on OpenMP threads for large tensors; lamb's norms
 *   are summed in double over fixed chunks added in order, so results do
 *   not depend on the thread count.
 * Semantics are PyTorch's (torch 1.13) and torch_optimizer's Lamb, float
 * operations in torch's scalar order (torch's vectorised kernels fuse some
 * a·x + y into one FMA, so results agree with torch to a few ulps). */
#include "optim.h"

MSPT_PLUGIN_EXPORT int mspt_plugin_init(mspt_plugin *p)
{
    const mspt_component *all[] = {&optim_sgd, &optim_adam, &optim_adamw,
                                   &optim_lamb};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (mspt_plugin_register(p, all[i]))
            return 1;
    return 0;
}
