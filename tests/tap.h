/* Minimal TAP producer for mspt's tests (read by Automake's tap-driver).
 *
 *   ok(cond, "name %d", i);         one test point
 *   is_close(got, want, tol, name); |got - want| <= tol·max(1, |want|)
 *   tap_skip_all("no data file");    whole program skipped
 *   return tap_done();               prints the plan, exit status
 */
#ifndef MSPT_TAP_H
#define MSPT_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_count, tap_failures;

static inline int tap_vok(int cond, const char *fmt, va_list ap)
{
    tap_count++;
    if (!cond)
        tap_failures++;
    printf("%sok %d - ", cond ? "" : "not ", tap_count);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    return cond;
}

static inline __attribute__((format(printf, 2, 3))) int ok(int cond,
                                                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = tap_vok(cond, fmt, ap);
    va_end(ap);
    return r;
}

static inline __attribute__((format(printf, 1, 2))) void diag(const char *fmt,
                                                             ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("# ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

static inline __attribute__((format(printf, 4, 5))) int
is_close(double got, double want, double tol, const char *fmt, ...)
{
    double scale = fabs(want) > 1.0 ? fabs(want) : 1.0;
    int cond = fabs(got - want) <= tol * scale && !isnan(got);
    va_list ap;
    va_start(ap, fmt);
    tap_vok(cond, fmt, ap);
    va_end(ap);
    if (!cond)
        diag("got %.9g, want %.9g (tol %.3g)", got, want, tol);
    return cond;
}

static inline __attribute__((noreturn)) void tap_skip_all(const char *reason)
{
    printf("1..0 # SKIP %s\n", reason);
    exit(0);
}

static inline __attribute__((noreturn)) void tap_bail(const char *reason)
{
    printf("Bail out! %s\n", reason);
    exit(1);
}

static inline int tap_done(void)
{
    printf("1..%d\n", tap_count);
    return tap_failures ? 1 : 0;
}

#endif
