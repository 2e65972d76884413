/* The drawing kit behind plots.c (core-internal, cairo only): a white
 * canvas with a data area, linear or log axes with ticks and tick labels,
 * a title, a legend strip, and conversion to PNG. */
#ifndef MSPT_TASK_PLOT_CANVAS_H
#define MSPT_TASK_PLOT_CANVAS_H

#include <stddef.h>

#include <cairo.h>

#include <mspt/error.h>

#include "task/plots.h"

#define PC_TEXT 0x222222
#define PC_FONT_SIZE 11.0
#define PC_TITLE_SIZE 14.0
#define PC_TITLE_BASELINE 19  /* title text baseline */
#define PC_LEGEND_ROW 38      /* legend swatches: rows 37 and 38 */

typedef struct pc_canvas {
    cairo_surface_t *surface;
    cairo_t *cr;
    int width, height;
    mspt_plot_box box;
} pc_canvas;

/* Value range shown along one axis; log: lo and hi are log10 of values. */
typedef struct pc_axis {
    double lo, hi;
    int log;
} pc_axis;

typedef enum pc_mark { PC_LINE, PC_DASHED, PC_LINE_DOTS, PC_BOX } pc_mark;

typedef struct pc_legend {
    const char *label;
    unsigned colour;
    pc_mark mark;
} pc_legend;

/* A white width × height canvas with the given data area; the title and the
 * legend go on fixed rows above it, so box.y0 should be at least 48. */
int pc_open(pc_canvas *c, int width, int height, mspt_plot_box box,
            mspt_error *err);
/* PNG bytes of the canvas; frees it either way. */
int pc_finish(pc_canvas *c, unsigned char **png, size_t *len, mspt_error *err);

void pc_colour(cairo_t *cr, unsigned rgb);
/* Axis from data values lo..hi, widened by pad × span at each end (a flat
 * range becomes ±1 around it); log axes take log10 of the values. */
pc_axis pc_axis_make(double lo, double hi, double pad, int log);
/* Pixel position of value v (already log10'd for a log axis). */
double pc_map_x(const pc_canvas *c, const pc_axis *a, double v);
double pc_map_y(const pc_canvas *c, const pc_axis *a, double v);

/* Text anchored at (x, y): h = 0 left, 0.5 centre, 1 right aligned; v = 0
 * puts y at the top of capital letters, 0.5 at their middle, 1 on the
 * baseline.  vertical: turned to read bottom to top (a y axis label). */
void pc_text(pc_canvas *c, double x, double y, double h, double v, double size,
             int vertical, const char *s);
void pc_frame(pc_canvas *c);
void pc_x_ticks(pc_canvas *c, const pc_axis *a, const char *label);
/* right: ticks and label on the right edge of the data area. */
void pc_y_ticks(pc_canvas *c, const pc_axis *a, int right, const char *label);
void pc_title(pc_canvas *c, const char *s);
void pc_legend_draw(pc_canvas *c, const pc_legend *items, int n);
/* Clip drawing to the data area (undo with cairo_reset_clip). */
void pc_clip(pc_canvas *c);

#endif
