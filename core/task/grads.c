/* Gradient utilities, see grads.h. */
#include "task/grads.h"

#include <math.h>

double mspt_clip_grad_norm(mspt_params *params, double max_norm)
{
    double sq = 0;
    for (size_t i = 0; i < mspt_params_count(params); i++) {
        const mspt_tensor *p = mspt_params_at(params, i);
        double s = 0; /* per tensor, then summed: PyTorch's order */
        for (size_t j = 0; j < p->numel; j++)
            s += (double)p->grad[j] * p->grad[j];
        sq += s;
    }
    double norm = sqrt(sq), coef = max_norm / (norm + 1e-6);
    if (coef >= 1.0)
        return norm;
    for (size_t i = 0; i < mspt_params_count(params); i++) {
        mspt_tensor *p = mspt_params_at(params, i);
        for (size_t j = 0; j < p->numel; j++)
            p->grad[j] *= (float)coef;
    }
    return norm;
}
