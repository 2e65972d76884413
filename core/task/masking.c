/* Patch masking, see masking.h. */
#include "task/masking.h"

#include <stdlib.h>
#include <string.h>

int mspt_masker_init(mspt_masker *m, int ph, int pw, double ratio,
                     int per_batch, int C, int T, mspt_error *err)
{
    memset(m, 0, sizeof *m);
    if (ph < 1 || pw < 1)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "masking.patch_size: {%d, %d} must be >= 1", ph, pw);
    if (ph > C || pw > T)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "masking.patch_size: {%d, %d} does not fit in a "
                              "window of %d x %d", ph, pw, C, T);
    if (!(ratio >= 0.0 && ratio <= 1.0))
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "masking.masking_ratio: %g is not in [0, 1]", ratio);
    m->ph = ph;
    m->pw = pw;
    m->ratio = ratio;
    m->per_batch = per_batch;
    m->C = C;
    m->T = T;
    m->GH = C / ph;
    m->GW = T / pw;
    m->order = malloc((size_t)m->GH * m->GW * sizeof *m->order);
    if (!m->order)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    return 0;
}

void mspt_masker_free(mspt_masker *m)
{
    free(m->order);
    m->order = NULL;
}

int mspt_masker_count(const mspt_masker *m)
{
    /* The small epsilon keeps 0.3·10 from flooring to 2. */
    return (int)((double)m->GH * m->GW * m->ratio + 1e-9);
}

/* One window's mask: a partial Fisher–Yates shuffle picks k patches. */
static void fill_one(mspt_masker *m, mspt_rng *rng, uint8_t *mask)
{
    int P = m->GH * m->GW, k = mspt_masker_count(m);
    memset(mask, 0, (size_t)m->C * m->T);
    for (int i = 0; i < P; i++)
        m->order[i] = i;
    for (int i = 0; i < k; i++) {
        int j = i + (int)(mspt_rng_u64(rng) % (uint64_t)(P - i));
        int t = m->order[i];
        m->order[i] = m->order[j];
        m->order[j] = t;
        int gh = m->order[i] / m->GW, gw = m->order[i] % m->GW;
        for (int r = 0; r < m->ph; r++)
            memset(mask + (size_t)(gh * m->ph + r) * m->T + (size_t)gw * m->pw, 1,
                   (size_t)m->pw);
    }
}

void mspt_masker_fill(mspt_masker *m, int B, mspt_rng *rng, uint8_t *mask)
{
    size_t n = (size_t)m->C * m->T;
    for (int b = 0; b < B; b++) {
        if (m->per_batch && b > 0)
            memcpy(mask + b * n, mask, n);
        else
            fill_one(m, rng, mask + b * n);
    }
}

void mspt_mask_apply(const float *x, const uint8_t *mask, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = mask[i] ? 0.0f : x[i];
}
