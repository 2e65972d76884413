/* A process-wide cache of FFTW plans (see edf_fft.h). */
#include "edf_fft.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

enum { R2C, C2R, C2C_BACKWARD };

typedef struct plan_entry {
    int n, kind;
    fftwf_plan plan;
    struct plan_entry *next;
} plan_entry;

static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;
static plan_entry *plans;
static int measured; /* plans measured since wisdom was last saved */

/* Long complex inverses (resampling to an awkward length such as 268435 =
 * 5·37·1451) run twice as fast with a measured plan; measuring costs a few
 * seconds once per length, and saved wisdom (edf_fft_wisdom) then brings
 * back the same plan, hence the same results, in later runs. */
static unsigned complex_flags(int n)
{
    return n >= (1 << 17) ? FFTW_MEASURE : FFTW_ESTIMATE;
}

static fftwf_plan get(int n, int kind)
{
    pthread_mutex_lock(&plan_lock);
    plan_entry *e = plans;
    while (e && (e->n != n || e->kind != kind))
        e = e->next;
    if (!e) {
        /* FFTW_ESTIMATE: no timing runs, so the same plan (and the same
         * bytes out) every run; the buffers only serve the planner */
        float *r = fftwf_malloc(sizeof(float) * (size_t)n);
        fftwf_complex *c = fftwf_malloc(sizeof(fftwf_complex) * (size_t)n);
        fftwf_complex *o = fftwf_malloc(sizeof(fftwf_complex) * (size_t)n);
        e = malloc(sizeof *e);
        if (r && c && o && e) {
            e->n = n;
            e->kind = kind;
            e->plan = kind == R2C ? fftwf_plan_dft_r2c_1d(n, r, c, FFTW_ESTIMATE)
                    : kind == C2R ? fftwf_plan_dft_c2r_1d(n, c, r, FFTW_ESTIMATE)
                                  : fftwf_plan_dft_1d(n, c, o, FFTW_BACKWARD,
                                                      complex_flags(n));
            measured += kind == C2C_BACKWARD && complex_flags(n) == FFTW_MEASURE;
            e->next = plans;
            plans = e;
        } else {
            free(e);
            e = NULL;
        }
        fftwf_free(r);
        fftwf_free(c);
        fftwf_free(o);
    }
    pthread_mutex_unlock(&plan_lock);
    return e ? e->plan : NULL;
}

fftwf_plan edf_fft_r2c(int n) { return get(n, R2C); }
fftwf_plan edf_fft_c2r(int n) { return get(n, C2R); }
fftwf_plan edf_fft_c2c_backward(int n) { return get(n, C2C_BACKWARD); }

void edf_fft_wisdom_load(const char *path)
{
    pthread_mutex_lock(&plan_lock);
    fftwf_import_wisdom_from_filename(path); /* absent or stale: ignored */
    pthread_mutex_unlock(&plan_lock);
}

void edf_fft_wisdom_save(const char *path)
{
    char tmp[4200];
    pthread_mutex_lock(&plan_lock);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (measured && fftwf_export_wisdom_to_filename(tmp) && !rename(tmp, path))
        measured = 0;
    else
        unlink(tmp);
    pthread_mutex_unlock(&plan_lock);
}
