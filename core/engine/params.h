/* The parameter set's side of building a model (the rest is in
 * <mspt/tensor.h>). */
#ifndef MSPT_ENGINE_PARAMS_H
#define MSPT_ENGINE_PARAMS_H

#include <mspt/tensor.h>

#define MSPT_STR_(x) #x
#define MSPT_STR(x) MSPT_STR_(x)

/* The first mspt_param_new the set refused ("parameter 'w': the name is
 * used twice"), or NULL: a plugin that ignores the NULL it got learns of it
 * when the model is built, not as a failed forward pass. */
const char *mspt_params_refused(const mspt_params *ps);

#endif
