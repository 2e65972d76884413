/* Confusion-matrix and ROC plots of a classifier, see clf_plots.h. */
#include "task/clf_plots.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "task/plots.h"

/* Margins: title and legend row above; class names and axis labels below
 * and to the left of the matrix. */
enum { TOP = 52, BOTTOM = 50, LEFT = 96, RIGHT = 16, ROC_LEFT = 64, ROC_BOTTOM = 44 };

mspt_plot_box mspt_plot_confusion_area(int width, int height, int K)
{
    int w = width - LEFT - RIGHT, h = height - TOP - BOTTOM;
    int side = w < h ? w : h;
    int s = K > 0 && side > 0 ? side / K : 0;
    return (mspt_plot_box){LEFT, TOP, LEFT + s * K, TOP + s * K};
}

mspt_plot_box mspt_plot_roc_area(int width, int height)
{
    return (mspt_plot_box){ROC_LEFT, TOP, width - RIGHT, height - ROC_BOTTOM};
}

#ifdef HAVE_CAIRO
#include "task/plot_canvas.h"

/* matplotlib's tab10, for the ROC curves */
static const unsigned PALETTE[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                     0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

static const char *class_name(const char *const *names, int c, char *buf, size_t size)
{
    if (names && names[c])
        return names[c];
    snprintf(buf, size, "%d", c);
    return buf;
}

/* White at 0, MSPT_PLOT_CM_DARK at 1. */
static unsigned shade(double f)
{
    if (!(f > 0))
        return 0xffffff;
    if (f > 1)
        f = 1;
    unsigned out = 0;
    for (int sh = 16; sh >= 0; sh -= 8) {
        double dark = (MSPT_PLOT_CM_DARK >> sh) & 255;
        out |= (unsigned)lround(255 + (dark - 255) * f) << sh;
    }
    return out;
}

int mspt_plot_confusion(const mspt_clf_metrics *m, const char *const *names,
                        const char *title, int width, int height,
                        unsigned char **png, size_t *len, mspt_error *err)
{
    *png = NULL;
    *len = 0;
    if (m->mode == MSPT_CLF_MULTILABEL)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "plot: a confusion matrix needs "
                              "binary or multiclass labels, not multilabel");
    int K = m->K;
    mspt_plot_box box = mspt_plot_confusion_area(width, height, K);
    pc_canvas c;
    int rc = pc_open(&c, width, height, box, err);
    if (rc)
        return rc;
    cairo_t *cr = c.cr;
    int s = (box.x1 - box.x0) / K;
    double fsize = s < 30 ? s * 0.35 : PC_FONT_SIZE;
    for (int i = 0; i < K; i++) {
        long long row = 0;
        for (int j = 0; j < K; j++)
            row += m->confusion[(size_t)i * K + j];
        for (int j = 0; j < K; j++) {
            long long v = m->confusion[(size_t)i * K + j];
            double f = row ? (double)v / (double)row : 0;
            cairo_save(cr);
            cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
            pc_colour(cr, shade(f));
            cairo_rectangle(cr, box.x0 + j * s, box.y0 + i * s, s, s);
            cairo_fill(cr);
            cairo_restore(cr);
            if (s >= 12) { /* counts only where they fit */
                char buf[32];
                snprintf(buf, sizeof buf, "%lld", v);
                cairo_save(cr);
                cairo_set_font_size(cr, fsize);
                cairo_text_extents_t ext;
                cairo_text_extents(cr, buf, &ext);
                pc_colour(cr, f > 0.5 ? 0xffffff : PC_TEXT);
                cairo_move_to(cr, box.x0 + (j + 0.5) * s - ext.x_advance / 2,
                              box.y0 + (i + 0.5) * s + 0.73 * fsize / 2);
                cairo_show_text(cr, buf);
                cairo_restore(cr);
            }
        }
    }
    pc_frame(&c);
    if (s >= 10) {
        for (int k = 0; k < K; k++) {
            char buf[16];
            const char *nm = class_name(names, k, buf, sizeof buf);
            pc_text(&c, box.x0 + (k + 0.5) * s, box.y1 + 8, 0.5, 0, PC_FONT_SIZE, 0, nm);
            pc_text(&c, box.x0 - 7, box.y0 + (k + 0.5) * s, 1, 0.5, PC_FONT_SIZE, 0, nm);
        }
    }
    pc_text(&c, (box.x0 + box.x1) / 2.0, box.y1 + 40, 0.5, 1, PC_FONT_SIZE, 0,
            "predicted class");
    pc_text(&c, 14, (box.y0 + box.y1) / 2.0, 0.5, 0, PC_FONT_SIZE, 1, "true class");
    pc_title(&c, title ? title : "confusion matrix");
    pc_legend legend[1] = {{"shade: fraction of the true class", MSPT_PLOT_CM_DARK, PC_BOX}};
    pc_legend_draw(&c, legend, 1);
    return pc_finish(&c, png, len, err);
}

/* Legend inside the data area's lower right corner, one row per entry. */
static void roc_legend(pc_canvas *c, const char **labels, const unsigned *colours,
                       const pc_mark *marks, int n)
{
    cairo_t *cr = c->cr;
    const double row = 16, swatch = 22, pad = 6;
    double w = 0;
    cairo_save(cr);
    cairo_set_font_size(cr, PC_FONT_SIZE);
    for (int i = 0; i < n; i++) {
        cairo_text_extents_t ext;
        cairo_text_extents(cr, labels[i], &ext);
        if (ext.x_advance > w)
            w = ext.x_advance;
    }
    w += swatch + 3 * pad;
    double h = n * row + pad;
    double x = c->box.x1 - w - 8, y = c->box.y1 - h - 8;
    pc_colour(cr, 0xffffff);
    cairo_rectangle(cr, x, y, w, h);
    cairo_fill_preserve(cr);
    pc_colour(cr, 0xcccccc);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    for (int i = 0; i < n; i++) {
        double yy = y + pad + (i + 0.5) * row - 2;
        pc_colour(cr, colours[i]);
        cairo_set_line_width(cr, 2);
        if (marks[i] == PC_DASHED) {
            const double dash[2] = {5, 3};
            cairo_set_dash(cr, dash, 2, 0);
        }
        cairo_move_to(cr, x + pad, yy);
        cairo_line_to(cr, x + pad + swatch, yy);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        pc_text(c, x + 2 * pad + swatch, yy, 0, 0.5, PC_FONT_SIZE, 0, labels[i]);
    }
    cairo_restore(cr);
}

enum { ROC_LEGEND_MAX = 16 }; /* curves named in the legend */

int mspt_plot_roc(mspt_clf_metrics *m, const char *const *names, const char *title,
                  int width, int height, unsigned char **png, size_t *len,
                  mspt_error *err)
{
    *png = NULL;
    *len = 0;
    if (m->n == 0)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "plot: no samples for a ROC curve");
    double *fpr = malloc((m->n + 1) * sizeof *fpr), *tpr = malloc((m->n + 1) * sizeof *tpr);
    if (!fpr || !tpr) {
        free(fpr);
        free(tpr);
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "plot: out of memory");
    }
    pc_canvas c;
    int rc = pc_open(&c, width, height, mspt_plot_roc_area(width, height), err);
    if (rc) {
        free(fpr);
        free(tpr);
        return rc;
    }
    cairo_t *cr = c.cr;
    pc_axis ax = pc_axis_make(0, 1, 0.02, 0), ay = pc_axis_make(0, 1, 0.02, 0);
    cairo_save(cr);
    pc_clip(&c);
    pc_colour(cr, MSPT_PLOT_DIAGONAL);
    cairo_set_line_width(cr, 1);
    const double dash[2] = {5, 3};
    cairo_set_dash(cr, dash, 2, 0);
    cairo_move_to(cr, pc_map_x(&c, &ax, 0), pc_map_y(&c, &ay, 0));
    cairo_line_to(cr, pc_map_x(&c, &ax, 1), pc_map_y(&c, &ay, 1));
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);

    int n = m->cols, shown = n < ROC_LEGEND_MAX ? n : ROC_LEGEND_MAX;
    char text[ROC_LEGEND_MAX + 1][96];
    const char *labels[ROC_LEGEND_MAX + 1];
    unsigned colours[ROC_LEGEND_MAX + 1];
    pc_mark marks[ROC_LEGEND_MAX + 1];
    cairo_set_line_width(cr, 1.5);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (int k = 0; k < n; k++) {
        size_t np = mspt_clf_roc(m, k, fpr, tpr);
        double auc = mspt_clf_auroc(m, k);
        unsigned colour = PALETTE[k % 10];
        pc_colour(cr, colour);
        for (size_t i = 0; i < np; i++) {
            double x = pc_map_x(&c, &ax, fpr[i]), y = pc_map_y(&c, &ay, tpr[i]);
            if (i)
                cairo_line_to(cr, x, y);
            else
                cairo_move_to(cr, x, y);
        }
        cairo_stroke(cr);
        if (k < shown) {
            char buf[16];
            int cls = m->mode == MSPT_CLF_BINARY ? 1 : k;
            snprintf(text[k], sizeof text[k], "%s%.40s (AUROC %.3f)",
                     m->mode == MSPT_CLF_MULTILABEL ? "label " : "class ",
                     class_name(names, cls, buf, sizeof buf), auc);
            labels[k] = text[k];
            colours[k] = colour;
            marks[k] = PC_LINE;
        }
    }
    cairo_restore(cr);
    labels[shown] = "chance";
    colours[shown] = MSPT_PLOT_DIAGONAL;
    marks[shown] = PC_DASHED;
    roc_legend(&c, labels, colours, marks, shown + 1);
    free(fpr);
    free(tpr);

    pc_frame(&c);
    pc_x_ticks(&c, &ax, "false positive rate");
    pc_y_ticks(&c, &ay, 0, "true positive rate");
    pc_title(&c, title ? title : "ROC curve");
    return pc_finish(&c, png, len, err);
}

#else /* without cairo: callers get one clear message */

int mspt_plot_confusion(const mspt_clf_metrics *m, const char *const *names,
                        const char *title, int width, int height,
                        unsigned char **png, size_t *len, mspt_error *err)
{
    (void)m, (void)names, (void)title, (void)width, (void)height;
    return mspt_plot_unavailable(png, len, err);
}

int mspt_plot_roc(mspt_clf_metrics *m, const char *const *names, const char *title,
                  int width, int height, unsigned char **png, size_t *len,
                  mspt_error *err)
{
    (void)m, (void)names, (void)title, (void)width, (void)height;
    return mspt_plot_unavailable(png, len, err);
}

#endif
