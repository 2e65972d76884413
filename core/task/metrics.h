/* Where a run's numbers go: metrics.csv in the run directory (a header row,
 * then one row per record, empty cells for metrics a record lacks) and the
 * console (a progress bar on a terminal, plain lines otherwise). */
#ifndef MSPT_METRICS_H
#define MSPT_METRICS_H

#include <stdio.h>

#include <mspt/error.h>

typedef struct mspt_record {
    long long step, epoch;
    double train_loss, train_loss_epoch, val_loss, lr, samples_per_sec;
} mspt_record; /* NAN marks an absent metric */

typedef struct mspt_metrics {
    FILE *csv;
    char path[4200];    /* of metrics.csv, for messages */
    int bar;            /* draw a progress bar */
    int bar_drawn;
    double epoch_t0;
} mspt_metrics;

/* An empty record (all metrics absent). */
mspt_record mspt_record_empty(long long step, long long epoch);
/* Open run_dir/metrics.csv (unless csv is 0: console only); when resuming at `keep_until_step` (>= 0), rows
 * of later steps (written by the run that stopped) are dropped. */
int mspt_metrics_open(mspt_metrics *m, const char *run_dir,
                      long long keep_until_step, int csv, int bar,
                      mspt_error *err);
/* Append a row and flush it; 0, or nonzero after filling err naming the
 * file (a full disk).  No-op without csv. */
int mspt_metrics_write(mspt_metrics *m, const mspt_record *r, mspt_error *err);
/* Close metrics.csv; 0, or nonzero after filling err (err may be NULL when
 * the outcome no longer matters). */
int mspt_metrics_close(mspt_metrics *m, mspt_error *err);

/* Console. */
void mspt_progress(mspt_metrics *m, long long epoch, long long max_epochs,
                   long long batch, long long batches, double loss, double lr,
                   double it_per_s);
void mspt_progress_line(mspt_metrics *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
