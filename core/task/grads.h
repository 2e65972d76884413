/* Gradient utilities of the trainer. */
#ifndef MSPT_GRADS_H
#define MSPT_GRADS_H

#include <mspt/tensor.h>

/* torch.nn.utils.clip_grad_norm_(params, max_norm): the global L2 norm of
 * all gradients; if above max_norm, every gradient is scaled by
 * max_norm / (norm + 1e-6).  Returns the norm before clipping. */
double mspt_clip_grad_norm(mspt_params *params, double max_norm);

#endif
