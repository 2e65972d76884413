/* metrics.csv and console output, see metrics.h. */
#include "task/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char header[] =
    "step,epoch,train_loss,train_loss_epoch,val_loss,lr,samples_per_sec\n";

mspt_record mspt_record_empty(long long step, long long epoch)
{
    mspt_record r = {step, epoch, NAN, NAN, NAN, NAN, NAN};
    return r;
}

/* Keep the header and the rows whose step is at most `until`. */
static int truncate_rows(const char *path, long long until, mspt_error *err)
{
    struct stat sb; /* opening a FIFO would wait for a writer */
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: not a regular file", path);
    FILE *in = fopen(path, "r");
    if (!in)
        return 0;
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        fclose(in);
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: path too long", path);
    }
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s", tmp, strerror(errno));
    }
    char line[1024];
    int first = 1, bad = 0;
    while (!bad && fgets(line, sizeof line, in)) {
        if (first || strtoll(line, NULL, 10) <= until)
            bad = fputs(line, out) == EOF;
        first = 0;
    }
    int saved = errno;
    if (ferror(in) && !bad) {
        bad = 1;
        saved = errno;
    }
    fclose(in);
    if (!bad && fflush(out) != 0) {
        bad = 1;
        saved = errno;
    }
    if (fclose(out) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    if (bad) {
        unlink(tmp);
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: rewriting it as %s "
                              "failed: %s", path, tmp, strerror(saved));
    }
    if (rename(tmp, path) != 0)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s", path, strerror(errno));
    return 0;
}

int mspt_metrics_open(mspt_metrics *m, const char *run_dir,
                      long long keep_until_step, int csv, int bar,
                      mspt_error *err)
{
    memset(m, 0, sizeof *m);
    m->bar = bar;
    if (!csv)
        return 0;
    char *path = m->path;
    snprintf(path, sizeof m->path, "%s/metrics.csv", run_dir);
    if (keep_until_step >= 0) {
        int rc = truncate_rows(path, keep_until_step, err);
        if (rc)
            return rc;
    }
    struct stat sb;
    int exists = keep_until_step >= 0 && stat(path, &sb) == 0;
    m->csv = fopen(path, exists ? "a" : "w");
    if (!m->csv)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s", path, strerror(errno));
    if ((!exists && fputs(header, m->csv) == EOF) || fflush(m->csv) != 0) {
        int rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot write: %s", path,
                                strerror(errno));
        fclose(m->csv);
        m->csv = NULL;
        return rc;
    }
    return 0;
}

static void cell(FILE *fp, double v)
{
    if (isnan(v))
        fputc(',', fp);
    else
        fprintf(fp, ",%.9g", v);
}

int mspt_metrics_write(mspt_metrics *m, const mspt_record *r, mspt_error *err)
{
    if (!m->csv)
        return 0;
    fprintf(m->csv, "%lld,%lld", r->step, r->epoch);
    cell(m->csv, r->train_loss);
    cell(m->csv, r->train_loss_epoch);
    cell(m->csv, r->val_loss);
    cell(m->csv, r->lr);
    cell(m->csv, r->samples_per_sec);
    fputc('\n', m->csv);
    /* flushed row by row: a crashed run keeps its rows; the stream's error
     * flag catches a failed write of any cell */
    if (fflush(m->csv) != 0 || ferror(m->csv))
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot write: %s",
                              m->path, strerror(errno));
    return 0;
}

int mspt_metrics_close(mspt_metrics *m, mspt_error *err)
{
    if (m->bar_drawn)
        fputc('\n', stdout);
    m->bar_drawn = 0;
    int rc = 0;
    if (m->csv && fclose(m->csv) != 0)
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot write: %s", m->path,
                            strerror(errno));
    m->csv = NULL;
    return rc;
}

void mspt_progress(mspt_metrics *m, long long epoch, long long max_epochs,
                   long long batch, long long batches, double loss, double lr,
                   double it_per_s)
{
    if (!m->bar)
        return;
    const int width = 24;
    int filled = batches > 0 ? (int)(width * batch / batches) : 0;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    double eta = it_per_s > 0 ? (double)(batches - batch) / it_per_s : 0;
    printf("\repoch %lld/%lld [%s] %lld/%lld loss %.4f lr %.2e %.1f it/s ETA %d:%02d ",
           epoch + 1, max_epochs, bar, batch, batches, loss, lr, it_per_s,
           (int)eta / 60, (int)eta % 60);
    fflush(stdout);
    m->bar_drawn = 1;
}

void mspt_progress_line(mspt_metrics *m, const char *fmt, ...)
{
    if (m->bar_drawn) {
        fputc('\n', stdout);
        m->bar_drawn = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}
