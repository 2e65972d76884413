/* Reconstruction and loss-curve plots, see plots.h. */
#include "task/plots.h"

#include <math.h>
#include <stdio.h>

#include "config.h"

/* Margins around the data area: title and legend above, tick labels and
 * the axis label below and beside. */
enum { TOP = 52, BOTTOM = 44, LEFT = 64, RIGHT = 16, RIGHT_AXIS = 72 };

mspt_plot_box mspt_plot_reconstruction_area(int width, int height)
{
    return (mspt_plot_box){LEFT, TOP, width - RIGHT, height - BOTTOM};
}

#ifdef HAVE_CAIRO
#include "task/plot_canvas.h"

/* ---- reconstruction --------------------------------------------------------- */

/* First column of sample t (see plots.h). */
static int column(const mspt_plot_box *b, int T, int t)
{
    return b->x0 + (int)((long long)t * (b->x1 - b->x0) / T);
}

/* Shade each run of masked samples [a, e) over the columns they own. */
static void shade_masked(pc_canvas *c, const uint8_t *mask, int T)
{
    const mspt_plot_box *b = &c->box;
    cairo_t *cr = c->cr;
    cairo_save(cr);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
    pc_colour(cr, MSPT_PLOT_SHADE);
    for (int a = 0; a < T;) {
        if (!mask[a]) {
            a++;
            continue;
        }
        int e = a;
        while (e < T && mask[e])
            e++;
        int from = column(b, T, a);
        int to = column(b, T, e);
        if (to < column(b, T, e - 1) + 1)
            to = column(b, T, e - 1) + 1;
        cairo_rectangle(cr, from, b->y0, to - from, b->y1 - b->y0);
        a = e;
    }
    cairo_fill(cr);
    cairo_restore(cr);
}

/* The line through the sample centres; non-finite values break it. */
static void trace(pc_canvas *c, const pc_axis *ay, const float *v, int T,
                  unsigned colour)
{
    const mspt_plot_box *b = &c->box;
    cairo_t *cr = c->cr;
    double dx = (double)(b->x1 - b->x0) / T;
    int pen_down = 0;
    for (int t = 0; t < T; t++) {
        if (!isfinite(v[t])) {
            pen_down = 0;
            continue;
        }
        double x = b->x0 + (t + 0.5) * dx, y = pc_map_y(c, ay, v[t]);
        if (pen_down)
            cairo_line_to(cr, x, y);
        else
            cairo_move_to(cr, x, y);
        pen_down = 1;
    }
    pc_colour(cr, colour);
    cairo_set_line_width(cr, 1.5);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_stroke(cr);
}

static void finite_range(const float *v, int n, double *lo, double *hi)
{
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) {
            if (v[i] < *lo)
                *lo = v[i];
            if (v[i] > *hi)
                *hi = v[i];
        }
}

int mspt_plot_reconstruction(const mspt_plot_trace *tr, int width, int height,
                             unsigned char **png, size_t *len, mspt_error *err)
{
    *png = NULL;
    *len = 0;
    if (tr->T < 1 || !tr->signal || !tr->recon || !tr->mask)
        return mspt_error_set(err, MSPT_ERR_RUNTIME,
                              "plot: a reconstruction needs T >= 1 samples, got %d",
                              tr->T);
    pc_canvas c;
    int rc = pc_open(&c, width, height, mspt_plot_reconstruction_area(width, height),
                     err);
    if (rc)
        return rc;
    double lo = INFINITY, hi = -INFINITY;
    finite_range(tr->signal, tr->T, &lo, &hi);
    finite_range(tr->recon, tr->T, &lo, &hi);
    pc_axis ay = pc_axis_make(lo, hi, 0.08, 0);
    double seconds = tr->sample_rate > 0 ? tr->T / tr->sample_rate : 0;
    pc_axis ax = {0, seconds > 0 ? seconds : tr->T, 0};

    shade_masked(&c, tr->mask, tr->T);
    cairo_save(c.cr);
    pc_clip(&c);
    trace(&c, &ay, tr->signal, tr->T, MSPT_PLOT_ORIGINAL);
    trace(&c, &ay, tr->recon, tr->T, MSPT_PLOT_RECON);
    cairo_restore(c.cr);

    pc_frame(&c);
    pc_x_ticks(&c, &ax, seconds > 0 ? "time (s)" : "sample");
    pc_y_ticks(&c, &ay, 0, "amplitude");
    char title[160];
    snprintf(title, sizeof title, "epoch %lld \u2014 sample %lld (channel %d)",
             tr->epoch, tr->sample, tr->channel);
    pc_title(&c, title);
    const pc_legend legend[] = {
        {"original", MSPT_PLOT_ORIGINAL, PC_LINE},
        {"reconstruction", MSPT_PLOT_RECON, PC_LINE},
        {"masked", MSPT_PLOT_SHADE, PC_BOX},
    };
    pc_legend_draw(&c, legend, 3);
    return pc_finish(&c, png, len, err);
}

/* ---- loss curves ------------------------------------------------------------- */

/* Colours: matplotlib's C0, C2, C1, and grey for the learning rate. */
enum { C_STEP = 0x1f77b4, C_EPOCH = 0x2ca02c, C_VAL = 0xff7f0e, C_LR = 0x7f7f7f };

/* Widen [lo, hi] by the series' usable points (positive ones on a log axis). */
static void series_range(const mspt_series *s, int x_axis, int log, double *lo,
                         double *hi)
{
    for (size_t i = 0; i < s->n; i++) {
        double v = x_axis ? s->x[i] : s->y[i];
        if (!isfinite(s->x[i]) || !isfinite(s->y[i]) || (log && s->y[i] <= 0))
            continue;
        if (v < *lo)
            *lo = v;
        if (v > *hi)
            *hi = v;
    }
}

static void draw_series(pc_canvas *c, const pc_axis *ax, const pc_axis *ay,
                        const mspt_series *s, unsigned colour, pc_mark mark)
{
    cairo_t *cr = c->cr;
    int pen_down = 0;
    for (size_t i = 0; i < s->n; i++) {
        double v = s->y[i];
        if (!isfinite(s->x[i]) || !isfinite(v) || (ay->log && v <= 0)) {
            pen_down = 0;
            continue;
        }
        double x = pc_map_x(c, ax, s->x[i]);
        double y = pc_map_y(c, ay, ay->log ? log10(v) : v);
        if (pen_down)
            cairo_line_to(cr, x, y);
        else
            cairo_move_to(cr, x, y);
        pen_down = 1;
    }
    pc_colour(cr, colour);
    cairo_set_line_width(cr, 1.5);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    if (mark == PC_DASHED) {
        const double dash[2] = {5, 3};
        cairo_set_dash(cr, dash, 2, 0);
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    if (mark != PC_LINE_DOTS)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (isfinite(s->x[i]) && isfinite(s->y[i]) && !(ay->log && s->y[i] <= 0)) {
            double v = ay->log ? log10(s->y[i]) : s->y[i];
            cairo_arc(cr, pc_map_x(c, ax, s->x[i]), pc_map_y(c, ay, v), 3, 0,
                      2 * M_PI);
            cairo_fill(cr);
        }
}

int mspt_plot_curves(const mspt_curves *cv, int width, int height,
                     unsigned char **png, size_t *len, mspt_error *err)
{
    *png = NULL;
    *len = 0;
    const mspt_series *loss[3] = {&cv->train_step, &cv->train_epoch, &cv->val};
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    double rlo = INFINITY, rhi = -INFINITY;
    for (int i = 0; i < 3; i++) {
        series_range(loss[i], 1, cv->log_y, &xlo, &xhi);
        series_range(loss[i], 0, cv->log_y, &ylo, &yhi);
    }
    series_range(&cv->lr, 1, 0, &xlo, &xhi);
    series_range(&cv->lr, 0, 0, &rlo, &rhi);
    if (!(xhi >= xlo))
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "plot: no %sloss or lr values "
                              "to plot", cv->log_y ? "positive " : "");
    pc_canvas c;
    mspt_plot_box box = {LEFT, TOP, width - RIGHT_AXIS, height - BOTTOM};
    int rc = pc_open(&c, width, height, box, err);
    if (rc)
        return rc;
    pc_axis ax = pc_axis_make(xlo, xhi, 0.02, 0);
    pc_axis ay = yhi >= ylo ? pc_axis_make(ylo, yhi, 0.05, cv->log_y)
                            : pc_axis_make(0, 1, 0, 0);
    pc_axis ar = rhi >= rlo ? pc_axis_make(rlo < 0 ? rlo : 0, rhi, 0.05, 0)
                            : pc_axis_make(0, 1, 0, 0);

    cairo_save(c.cr);
    pc_clip(&c);
    draw_series(&c, &ax, &ar, &cv->lr, C_LR, PC_DASHED);
    draw_series(&c, &ax, &ay, &cv->train_step, C_STEP, PC_LINE);
    draw_series(&c, &ax, &ay, &cv->train_epoch, C_EPOCH, PC_LINE_DOTS);
    draw_series(&c, &ax, &ay, &cv->val, C_VAL, PC_LINE_DOTS);
    cairo_restore(c.cr);

    pc_frame(&c);
    pc_x_ticks(&c, &ax, "step");
    pc_y_ticks(&c, &ay, 0, cv->log_y ? "loss (log scale)" : "loss");
    pc_y_ticks(&c, &ar, 1, "learning rate");
    pc_title(&c, cv->title ? cv->title : "training curves");
    pc_legend all[4] = {
        {"train_loss (step)", C_STEP, PC_LINE},
        {"train_loss (epoch)", C_EPOCH, PC_LINE_DOTS},
        {"val_loss", C_VAL, PC_LINE_DOTS},
        {"lr (right axis)", C_LR, PC_DASHED},
    };
    const mspt_series *which[4] = {&cv->train_step, &cv->train_epoch, &cv->val, &cv->lr};
    pc_legend shown[4];
    int n = 0;
    for (int i = 0; i < 4; i++)
        if (which[i]->n)
            shown[n++] = all[i];
    pc_legend_draw(&c, shown, n);
    return pc_finish(&c, png, len, err);
}

#else /* without cairo: callers get one clear message */

int mspt_plot_unavailable(unsigned char **png, size_t *len, mspt_error *err)
{
    *png = NULL;
    *len = 0;
    return mspt_error_set(err, MSPT_ERR_RUNTIME,
                          "plots need cairo, and this mspt was built without it "
                          "(Debian: apt-get install libcairo2-dev, then rebuild)");
}

int mspt_plot_reconstruction(const mspt_plot_trace *tr, int width, int height,
                             unsigned char **png, size_t *len, mspt_error *err)
{
    (void)tr;
    (void)width;
    (void)height;
    return mspt_plot_unavailable(png, len, err);
}

int mspt_plot_curves(const mspt_curves *c, int width, int height,
                     unsigned char **png, size_t *len, mspt_error *err)
{
    (void)c;
    (void)width;
    (void)height;
    return mspt_plot_unavailable(png, len, err);
}

#endif
