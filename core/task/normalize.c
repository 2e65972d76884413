/* Input normalisations, see normalize.h. */
#include "task/normalize.h"

#include <math.h>
#include <string.h>

/* torch adds the Python float 1e-8 to a float32 tensor in float32 */
#define NORM_EPS 1e-8f

void mspt_affine_normalize(float *x, size_t rows, int T, double lower,
                           double upper)
{
    /* torch: tensor - q_lower (a float32 op with the scalar rounded), then
     * / (iqr + 1e-8), the denominator summed in double and rounded once */
    float lo = (float)lower, denom = (float)(upper - lower + 1e-8);
    size_t n = rows * (size_t)T;
    for (size_t i = 0; i < n; i++)
        x[i] = (x[i] - lo) / denom;
}

void mspt_zscore_normalize(float *x, size_t rows, int T)
{
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * (size_t)T;
        double sum = 0, ss = 0;
        for (int t = 0; t < T; t++)
            sum += row[t];
        double mean = sum / T;
        for (int t = 0; t < T; t++)
            ss += (row[t] - mean) * (row[t] - mean);
        /* unbiased, as torch.std; T = 1 gives NaN there and here */
        float m = (float)mean, denom = (float)sqrt(ss / (T - 1)) + NORM_EPS;
        for (int t = 0; t < T; t++)
            row[t] = (row[t] - m) / denom;
    }
}

void mspt_minmax_normalize(float *x, size_t rows, int T)
{
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * (size_t)T, lo = row[0], hi = row[0];
        for (int t = 1; t < T; t++) {
            lo = row[t] < lo ? row[t] : lo;
            hi = row[t] > hi ? row[t] : hi;
        }
        float denom = (hi - lo) + NORM_EPS;
        for (int t = 0; t < T; t++)
            row[t] = ((row[t] - lo) / denom - 0.5f) * 2.0f;
    }
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

/* The k-th smallest of v[0..n) (from 0), v reordered around it: nothing
 * before it is larger, nothing after smaller (Hoare's quickselect, median
 * of three).  O(n) on average against the sort's O(n log n): the quantiles
 * of every channel of every window, each step. */
static float select_kth(float *v, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        float a = v[lo], b = v[mid], c = v[hi];
        float p = a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] < p)
                i++;
            while (v[j] > p)
                j--;
            if (i <= j) {
                float t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break; /* between j and i: all equal to the pivot */
    }
    return v[k];
}

/* mspt_quantile_sorted's value without the sort: the order statistics it
 * reads, v[k] and v[k + 1], come from a selection and the tail's minimum. */
static double quantile_select(float *v, int n, double q)
{
    double pos = q * (n - 1);
    int k = (int)pos;
    if (k >= n - 1)
        return select_kth(v, n, n - 1);
    float a = select_kth(v, n, k), b = v[k + 1];
    for (int i = k + 2; i < n; i++)
        b = v[i] < b ? v[i] : b;
    return a + (pos - k) * ((double)b - a);
}

void mspt_robust_normalize(float *x, size_t rows, int T, double lower,
                           double upper, float *scratch)
{
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * (size_t)T;
        memcpy(scratch, row, (size_t)T * sizeof *row);
        /* float32 arithmetic in PyTorch's order, for parity */
        float lo = (float)quantile_select(scratch, T, lower);
        float hi = (float)quantile_select(scratch, T, upper);
        float denom = (hi - lo) + NORM_EPS;
        for (int t = 0; t < T; t++)
            row[t] = (row[t] - lo) / denom;
    }
}

void mspt_norm_apply(const mspt_norm *n, float *x, size_t rows, int T,
                     float *scratch)
{
    switch (n->mode) {
    case MSPT_NORM_OFF:
        break;
    case MSPT_NORM_AFFINE:
        mspt_affine_normalize(x, rows, T, n->lower, n->upper);
        break;
    case MSPT_NORM_QUANTILE:
        mspt_robust_normalize(x, rows, T, n->lower, n->upper, scratch);
        break;
    case MSPT_NORM_ZSCORE:
        mspt_zscore_normalize(x, rows, T);
        break;
    case MSPT_NORM_MINMAX:
        mspt_minmax_normalize(x, rows, T);
        break;
    }
}
