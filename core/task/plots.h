/* Plots for researchers (core-internal): a validation sample's reconstruction
 * and a run's loss curves, rendered with cairo into PNG bytes (io/png.h
 * saves them; io/tfevents.h puts them in TensorBoard).  Without cairo every
 * function fails with a message saying plots need cairo.
 *
 *   mspt_plot_trace tr = {x, recon, mask, T, 256.0, epoch, sample, 0};
 *   if (mspt_plot_reconstruction(&tr, 900, 320, &png, &len, &err)) ... err.msg
 *
 * Reconstruction layout, fixed so tests can check pixels: the data area is
 * the columns [x0, x1) and rows [y0, y1) of mspt_plot_reconstruction_area;
 * the frame is drawn just outside it.  Sample t of T owns the columns
 *     [col(t), max(col(t+1), col(t) + 1))   with col(t) = x0 + t*(x1-x0)/T
 * (integer division), and a column is shaded over the full height of the
 * data area iff a masked sample owns it.  The traces are drawn through the
 * sample centres, x0 + (t + 0.5)*(x1-x0)/T, with a margin of 8% of the value
 * range above and below, so the first and last rows of the data area show
 * only the background (white, or MSPT_PLOT_SHADE where masked). */
#ifndef MSPT_TASK_PLOTS_H
#define MSPT_TASK_PLOTS_H

#include <stddef.h>
#include <stdint.h>

#include <mspt/error.h>

/* Colours, 0xRRGGBB: matplotlib's first two defaults for the traces. */
#define MSPT_PLOT_ORIGINAL 0x1f77b4
#define MSPT_PLOT_RECON 0xff7f0e
#define MSPT_PLOT_SHADE 0xdddddd

typedef struct mspt_plot_trace {
    const float *signal;  /* T samples of one channel, as the model saw it
                             before masking (normalised) */
    const float *recon;   /* T samples of its reconstruction */
    const uint8_t *mask;  /* T bytes, nonzero where the model saw zeros */
    int T;
    double sample_rate;   /* Hz: x axis in seconds; 0: x axis in samples */
    long long epoch, sample;
    int channel;          /* title "epoch E — sample K (channel C)" */
} mspt_plot_trace;

typedef struct mspt_plot_box {
    int x0, y0, x1, y1; /* data area: columns [x0, x1), rows [y0, y1) */
} mspt_plot_box;

/* The data area of a width × height reconstruction plot. */
mspt_plot_box mspt_plot_reconstruction_area(int width, int height);

/* Render one reconstruction as PNG (*png malloc'd, RGBA, width × height). */
int mspt_plot_reconstruction(const mspt_plot_trace *tr, int width, int height,
                             unsigned char **png, size_t *len, mspt_error *err);

/* One series of a curves plot: n points (x[i], y[i]); NAN y values break
 * the line. */
typedef struct mspt_series {
    const double *x, *y;
    size_t n;
} mspt_series;

typedef struct mspt_curves {
    mspt_series train_step;  /* train_loss per logged step */
    mspt_series train_epoch; /* train_loss_epoch, at each epoch's last step */
    mspt_series val;         /* val_loss */
    mspt_series lr;          /* learning rate, drawn against a right axis */
    int log_y;               /* losses on a log scale (values <= 0 skipped) */
    const char *title;       /* NULL: "training curves" */
} mspt_curves;

/* Render the loss curves as PNG (*png malloc'd, RGBA, width × height). */
int mspt_plot_curves(const mspt_curves *c, int width, int height,
                     unsigned char **png, size_t *len, mspt_error *err);

/* What every plot returns in a build without cairo: *png NULL, *len 0 and
 * one clear message (the status). */
int mspt_plot_unavailable(unsigned char **png, size_t *len, mspt_error *err);

#endif
