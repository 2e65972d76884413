/* Plots of a classifier (core-internal): the confusion matrix and the ROC
 * curves of what a mspt_clf_metrics accumulator holds, rendered with cairo
 * into PNG bytes (RGBA, width × height, *png malloc'd).  Without cairo both
 * fail with a message saying plots need cairo.
 *
 *   mspt_plot_confusion(&m, names, "test confusion matrix", 640, 560, &png, &len, &err);
 *   mspt_plot_roc(&m, names, "test ROC", 640, 560, &png, &len, &err);
 *
 * names: K class names, or NULL for "0" .. "K-1".
 *
 * Confusion matrix (binary and multiclass only): rows are the true class,
 * columns the predicted one.  Cell (i, j) fills the columns
 * [x0 + j·s, x0 + (j+1)·s) and rows [y0 + i·s, y0 + (i+1)·s) of
 * mspt_plot_confusion_area (s = its width / K), shaded from white (0) to
 * MSPT_PLOT_CM_DARK (1) by the row-normalised fraction count / row total
 * (white for a row without samples), with the count written in its centre.
 *
 * ROC: one curve per score column (binary: one, for class 1; multiclass:
 * one-vs-rest per class; multilabel: per label), the chance diagonal dashed
 * grey, and a legend inside the lower right corner naming each curve with its
 * AUROC.  Inside mspt_plot_roc_area the axes run over [−0.02, 1.02]:
 * x = x0 + (fpr + 0.02)/1.04 · (x1 − x0), y = y1 − (tpr + 0.02)/1.04 · (y1 − y0). */
#ifndef MSPT_TASK_CLF_PLOTS_H
#define MSPT_TASK_CLF_PLOTS_H

#include <stddef.h>

#include <mspt/error.h>

#include "task/clf_metrics.h"
#include "task/plots.h"

#define MSPT_PLOT_CM_DARK 0x08306b  /* matplotlib's Blues at 1 */
#define MSPT_PLOT_DIAGONAL 0x888888

mspt_plot_box mspt_plot_confusion_area(int width, int height, int K);
mspt_plot_box mspt_plot_roc_area(int width, int height);

int mspt_plot_confusion(const mspt_clf_metrics *m, const char *const *names,
                        const char *title, int width, int height,
                        unsigned char **png, size_t *len, mspt_error *err);
/* m is not const: the curves reuse its sort scratch. */
int mspt_plot_roc(mspt_clf_metrics *m, const char *const *names, const char *title,
                  int width, int height, unsigned char **png, size_t *len,
                  mspt_error *err);

#endif
