/* A run's loss curves from its metrics.csv (train_loss per step,
 * train_loss_epoch and val_loss, lr on a right axis) into
 * RUN_DIR/plots/curves.png: `mspt plot` and the end of training. */
#include "task/curves.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/files.h"
#include "io/png.h"
#include "task/plots.h"

#define WIDTH 1000
#define HEIGHT 450

enum { COL_STEP, COL_TRAIN, COL_TRAIN_EPOCH, COL_VAL, COL_LR, NCOLS };
static const char *const col_names[NCOLS] = {"step", "train_loss", "train_loss_epoch",
                                             "val_loss", "lr"};

/* A growing series of (step, value) points. */
typedef struct points {
    double *x, *y;
    size_t n, cap;
} points;

static int push(points *p, double x, double y)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 256;
        double *nx = realloc(p->x, cap * sizeof *nx);
        if (!nx)
            return -1;
        p->x = nx;
        double *ny = realloc(p->y, cap * sizeof *ny);
        if (!ny)
            return -1;
        p->y = ny;
        p->cap = cap;
    }
    p->x[p->n] = x;
    p->y[p->n] = y;
    p->n++;
    return 0;
}

/* Split line at commas in place (no quoting: metrics.csv holds numbers). */
static int split(char *line, char **cells, int max)
{
    line[strcspn(line, "\r\n")] = '\0';
    int n = 0;
    for (char *p = line;; p++) {
        if (n < max)
            cells[n] = p;
        n++;
        p = strchr(p, ',');
        if (!p)
            break;
        *p = '\0';
    }
    return n;
}

/* Columns of the header row: where[c] = index of col_names[c]. */
static int read_header(char *line, const char *path, int *where, mspt_error *err)
{
    char *cells[64];
    int n = split(line, cells, 64);
    for (int c = 0; c < NCOLS; c++) {
        where[c] = -1;
        for (int i = 0; i < n && i < 64; i++)
            if (!strcmp(cells[i], col_names[c]))
                where[c] = i;
        if (where[c] < 0)
            return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: no column '%s' in the "
                                  "header row", path, col_names[c]);
    }
    return 0;
}

static int read_metrics(const char *path, points *series, mspt_error *err)
{
    struct stat sb; /* opening a FIFO would wait for a writer */
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: not a regular file", path);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: %s (is it a run "
                              "directory?)", path, strerror(errno));
    char line[4096];
    int where[NCOLS], rc = 0;
    long lineno = 1;
    if (!fgets(line, sizeof line, fp))
        rc = mspt_error_set(err, MSPT_ERR_CONFIG, "%s: empty file", path);
    else
        rc = read_header(line, path, where, err);
    while (!rc && fgets(line, sizeof line, fp)) {
        lineno++;
        char *cells[64];
        int n = split(line, cells, 64);
        if (n == 1 && !cells[0][0])
            continue; /* blank line */
        double v[NCOLS];
        for (int c = 0; c < NCOLS && !rc; c++) {
            const char *s = where[c] < n ? cells[where[c]] : "";
            char *end;
            v[c] = *s ? strtod(s, &end) : NAN;
            if (*s && (*end || !isfinite(v[c])))
                rc = mspt_error_set(err, MSPT_ERR_CONFIG, "%s:%ld: %s '%s' is not a "
                                    "number", path, lineno, col_names[c], s);
        }
        if (!rc && isnan(v[COL_STEP]))
            rc = mspt_error_set(err, MSPT_ERR_CONFIG, "%s:%ld: no step", path, lineno);
        for (int c = COL_TRAIN; c < NCOLS && !rc; c++)
            if (!isnan(v[c]) && push(&series[c], v[COL_STEP], v[c]))
                rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: out of memory", path);
    }
    fclose(fp);
    return rc;
}

static mspt_series as_series(const points *p) { return (mspt_series){p->x, p->y, p->n}; }

int mspt_render_curves(const char *run_dir, int log_y, char *out_path,
                       size_t out_size, mspt_error *errp)
{
    mspt_error err = {0};
    char csv[4200], dir[4200], out[4300], title[4300];
    snprintf(csv, sizeof csv, "%s/metrics.csv", run_dir);
    snprintf(dir, sizeof dir, "%s/plots", run_dir);
    snprintf(out, sizeof out, "%s/curves.png", dir);
    snprintf(title, sizeof title, "training curves \u2014 %s", run_dir);
    points series[NCOLS] = {{0}};
    unsigned char *png = NULL;
    size_t len = 0;
    int rc = read_metrics(csv, series, &err);
    if (!rc) {
        mspt_curves c = {as_series(&series[COL_TRAIN]),
                         as_series(&series[COL_TRAIN_EPOCH]),
                         as_series(&series[COL_VAL]), as_series(&series[COL_LR]),
                         log_y, title};
        rc = mspt_plot_curves(&c, WIDTH, HEIGHT, &png, &len, &err);
        if (rc)
            mspt_error_prefix(&err, "%s", csv);
    }
    if (!rc)
        rc = mspt_make_dirs(dir, &err);
    if (!rc)
        rc = mspt_png_save(out, png, len, &err);
    if (!rc && out_path)
        snprintf(out_path, out_size, "%s", out);
    free(png);
    for (int c = 0; c < NCOLS; c++) {
        free(series[c].x);
        free(series[c].y);
    }
    if (rc && errp)
        *errp = err;
    return rc;
}
