/* Robust quartile normalisation, see normalize.h. */
#include "task/normalize.h"

#include <stdlib.h>
#include <string.h>

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

double mspt_quantile_sorted(const float *v, int n, double q)
{
    double pos = q * (n - 1);
    int lo = (int)pos;
    if (lo >= n - 1)
        return v[n - 1];
    double frac = pos - lo;
    return v[lo] + frac * ((double)v[lo + 1] - v[lo]);
}

void mspt_robust_normalize(float *x, size_t rows, int T, double lower,
                           double upper, float *scratch)
{
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * (size_t)T;
        memcpy(scratch, row, (size_t)T * sizeof *row);
        qsort(scratch, (size_t)T, sizeof *scratch, cmp_float);
        /* float32 arithmetic in PyTorch's order, for parity */
        float lo = (float)mspt_quantile_sorted(scratch, T, lower);
        float hi = (float)mspt_quantile_sorted(scratch, T, upper);
        float denom = (hi - lo) + 1e-8f;
        for (int t = 0; t < T; t++)
            row[t] = (row[t] - lo) / denom;
    }
}
