/* mspt — masked signal pretraining: the public API in one include.
 *
 *   version.h  MSPT_VERSION
 *   error.h    status codes and messages
 *   tensor.h   tensors, per-step context, autograd tape, parameters, RNG
 *   ops.h      differentiable ops encoders are built from
 *   config.h   reading a component's validated configuration
 *   plugin.h   the plugin ABI: component descriptors and vtables
 *   data_log.h reporting a skipped recording or a repaired header
 */
#ifndef MSPT_MSPT_H
#define MSPT_MSPT_H

#include <mspt/version.h>
#include <mspt/error.h>
#include <mspt/tensor.h>
#include <mspt/ops.h>
#include <mspt/config.h>
#include <mspt/plugin.h>
#include <mspt/data_log.h>

#endif
