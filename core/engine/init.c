/* Initializers with PyTorch's default semantics (torch.nn.init). */
#include <mspt/tensor.h>

#include <math.h>

int mspt_tensor_fan_in(const mspt_tensor *w)
{
    if (w->ndim < 2)
        return w->shape[0];
    int f = w->shape[1];
    for (int i = 2; i < w->ndim; i++)
        f *= w->shape[i];
    return f;
}

int mspt_tensor_fan_out(const mspt_tensor *w)
{
    int f = w->shape[0];
    for (int i = 2; i < w->ndim; i++)
        f *= w->shape[i];
    return f;
}

void mspt_init_uniform(mspt_tensor *t, mspt_rng *rng, float lo, float hi)
{
    for (size_t i = 0; i < t->numel; i++)
        t->data[i] = lo + (hi - lo) * (float)mspt_rng_uniform(rng);
}

void mspt_init_normal(mspt_tensor *t, mspt_rng *rng, float mean, float std)
{
    for (size_t i = 0; i < t->numel; i++)
        t->data[i] = mean + std * (float)mspt_rng_normal(rng);
}

void mspt_init_trunc_normal(mspt_tensor *t, mspt_rng *rng, float mean,
                            float std, float lo, float hi)
{
    for (size_t i = 0; i < t->numel; i++) {
        double v;
        int tries = 0;
        do /* rejection; bounded so a degenerate range cannot spin */
            v = mean + std * mspt_rng_normal(rng);
        while ((v < lo || v > hi) && ++tries < 1000);
        t->data[i] = (float)(v < lo ? lo : v > hi ? hi : v);
    }
}

void mspt_init_const(mspt_tensor *t, float value)
{
    for (size_t i = 0; i < t->numel; i++)
        t->data[i] = value;
}

/* kaiming_uniform_(a, mode='fan_in', nonlinearity='leaky_relu'):
 * bound = √3 · √(2 / (1 + a²)) / √fan_in; a = √5 gives 1/√fan_in. */
void mspt_init_kaiming_uniform(mspt_tensor *t, mspt_rng *rng, float a)
{
    double gain = sqrt(2.0 / (1.0 + (double)a * a));
    double bound = sqrt(3.0) * gain / sqrt((double)mspt_tensor_fan_in(t));
    mspt_init_uniform(t, rng, (float)-bound, (float)bound);
}

void mspt_init_xavier_uniform(mspt_tensor *t, mspt_rng *rng, float gain)
{
    double fan = (double)mspt_tensor_fan_in(t) + mspt_tensor_fan_out(t);
    double bound = gain * sqrt(6.0 / fan);
    mspt_init_uniform(t, rng, (float)-bound, (float)bound);
}

void mspt_init_fan_in_bias(mspt_tensor *t, mspt_rng *rng, int fan_in)
{
    double bound = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0.0;
    mspt_init_uniform(t, rng, (float)-bound, (float)bound);
}
