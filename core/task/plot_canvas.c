/* Drawing kit for plots.c, see plot_canvas.h.  Built only with cairo. */
#include "task/plot_canvas.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/png.h"

int pc_open(pc_canvas *c, int width, int height, mspt_plot_box box,
            mspt_error *err)
{
    c->width = width;
    c->height = height;
    c->box = box;
    if (width > 16384 || height > 16384)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "plot: size %dx%d is too large "
                              "(at most 16384 a side)", width, height);
    if (box.x1 - box.x0 < 40 || box.y1 - box.y0 < 40)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "plot: size %dx%d leaves no room to draw (at least "
                              "%dx%d)", width, height, width - (box.x1 - box.x0) + 40,
                              height - (box.y1 - box.y0) + 40);
    /* RGB24: the plots are opaque, so no premultiplied alpha to undo */
    c->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    c->cr = cairo_create(c->surface);
    cairo_status_t st = cairo_status(c->cr);
    if (st != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(c->cr);
        cairo_surface_destroy(c->surface);
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "plot: cairo: %s",
                              cairo_status_to_string(st));
    }
    cairo_t *cr = c->cr;
    pc_colour(cr, 0xffffff);
    cairo_paint(cr);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           CAIRO_FONT_WEIGHT_NORMAL);
    /* grey antialiasing: subpixel text would put colour fringes in a plot */
    cairo_font_options_t *fo = cairo_font_options_create();
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
    cairo_set_font_options(cr, fo);
    cairo_font_options_destroy(fo);
    return 0;
}

int pc_finish(pc_canvas *c, unsigned char **png, size_t *len, mspt_error *err)
{
    cairo_surface_flush(c->surface);
    int rc = 0;
    if (cairo_status(c->cr) != CAIRO_STATUS_SUCCESS)
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "plot: cairo: %s",
                            cairo_status_to_string(cairo_status(c->cr)));
    unsigned char *rgba = rc ? NULL : malloc((size_t)c->width * c->height * 4);
    if (!rc && !rgba)
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "plot: out of memory");
    if (!rc) {
        /* RGB24 pixels are native-endian 32-bit words 0x00RRGGBB */
        const unsigned char *src = cairo_image_surface_get_data(c->surface);
        int stride = cairo_image_surface_get_stride(c->surface);
        for (int y = 0; y < c->height; y++) {
            const uint32_t *row = (const uint32_t *)(src + (size_t)y * stride);
            unsigned char *out = rgba + (size_t)y * c->width * 4;
            for (int x = 0; x < c->width; x++) {
                out[4 * x + 0] = (unsigned char)(row[x] >> 16);
                out[4 * x + 1] = (unsigned char)(row[x] >> 8);
                out[4 * x + 2] = (unsigned char)row[x];
                out[4 * x + 3] = 255;
            }
        }
        rc = mspt_png_encode(rgba, c->width, c->height, png, len, err);
    }
    free(rgba);
    cairo_destroy(c->cr);
    cairo_surface_destroy(c->surface);
    return rc;
}

void pc_colour(cairo_t *cr, unsigned rgb)
{
    cairo_set_source_rgb(cr, ((rgb >> 16) & 255) / 255.0, ((rgb >> 8) & 255) / 255.0,
                         (rgb & 255) / 255.0);
}

pc_axis pc_axis_make(double lo, double hi, double pad, int log)
{
    if (log) {
        lo = log10(lo);
        hi = log10(hi);
    }
    if (!(hi > lo)) { /* flat or empty */
        double mid = isfinite(lo) ? lo : 0;
        return (pc_axis){mid - 1, mid + 1, log};
    }
    double span = hi - lo;
    return (pc_axis){lo - pad * span, hi + pad * span, log};
}

double pc_map_x(const pc_canvas *c, const pc_axis *a, double v)
{
    return c->box.x0 + (v - a->lo) / (a->hi - a->lo) * (c->box.x1 - c->box.x0);
}

double pc_map_y(const pc_canvas *c, const pc_axis *a, double v)
{
    return c->box.y0 + (a->hi - v) / (a->hi - a->lo) * (c->box.y1 - c->box.y0);
}

void pc_text(pc_canvas *c, double x, double y, double h, double v, double size,
             int vertical, const char *s)
{
    cairo_t *cr = c->cr;
    cairo_save(cr);
    cairo_set_font_size(cr, size);
    pc_colour(cr, PC_TEXT);
    cairo_text_extents_t ext;
    cairo_text_extents(cr, s, &ext);
    double cap = 0.73 * size; /* DejaVu Sans cap height */
    cairo_translate(cr, x, y);
    if (vertical)
        cairo_rotate(cr, -M_PI / 2);
    cairo_move_to(cr, -h * ext.x_advance, cap * (1 - v));
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

void pc_frame(pc_canvas *c)
{
    cairo_t *cr = c->cr;
    const mspt_plot_box *b = &c->box;
    cairo_save(cr);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
    cairo_set_line_width(cr, 1);
    pc_colour(cr, 0x000000);
    /* the pixels just outside the data area: columns x0-1 and x1, rows y0-1 and y1 */
    cairo_rectangle(cr, b->x0 - 0.5, b->y0 - 0.5, b->x1 - b->x0 + 1, b->y1 - b->y0 + 1);
    cairo_stroke(cr);
    cairo_restore(cr);
}

/* Ticks at 1, 2, 2.5 or 5 × 10^k within [lo, hi], at most max of them. */
static int nice_ticks(double lo, double hi, int max, double *out)
{
    if (max < 2)
        max = 2;
    double raw = (hi - lo) / (max - 1);
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
    int n = 0;
    for (double k = ceil(lo / step - 1e-9); k * step <= hi + 1e-9 * step && n < 32; k++)
        out[n++] = k == 0 ? 0 : k * step;
    return n;
}

/* Log axis ticks (in log10 units): whole decades, with 2 and 5 × 10^k added
 * when fewer than three decades show. */
static int log_ticks(double lo, double hi, double *out)
{
    int n = 0, fine = hi - lo < 2;
    for (double d = floor(lo); d <= ceil(hi) && n < 29; d++) {
        const double mult[3] = {1, 2, 5};
        for (int m = 0; m < (fine ? 3 : 1); m++) {
            double v = d + log10(mult[m]);
            if (v >= lo - 1e-9 && v <= hi + 1e-9)
                out[n++] = v;
        }
    }
    return n;
}

static int axis_ticks(const pc_axis *a, int pixels, int spacing, double *out)
{
    return a->log ? log_ticks(a->lo, a->hi, out)
                  : nice_ticks(a->lo, a->hi, pixels / spacing + 1, out);
}

static void tick_label(const pc_axis *a, double v, char *buf, size_t size)
{
    snprintf(buf, size, "%g", a->log ? pow(10, v) : v);
}

void pc_x_ticks(pc_canvas *c, const pc_axis *a, const char *label)
{
    cairo_t *cr = c->cr;
    const mspt_plot_box *b = &c->box;
    double ticks[32];
    int n = axis_ticks(a, b->x1 - b->x0, 90, ticks);
    for (int i = 0; i < n; i++) {
        double x = floor(pc_map_x(c, a, ticks[i])) + 0.5;
        cairo_save(cr);
        cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
        cairo_set_line_width(cr, 1);
        pc_colour(cr, 0x000000);
        cairo_move_to(cr, x, b->y1 + 1);
        cairo_line_to(cr, x, b->y1 + 5);
        cairo_stroke(cr);
        cairo_restore(cr);
        char buf[32];
        tick_label(a, ticks[i], buf, sizeof buf);
        pc_text(c, x, b->y1 + 8, 0.5, 0, PC_FONT_SIZE, 0, buf);
    }
    pc_text(c, (b->x0 + b->x1) / 2.0, c->height - 5, 0.5, 1, PC_FONT_SIZE, 0, label);
}

void pc_y_ticks(pc_canvas *c, const pc_axis *a, int right, const char *label)
{
    cairo_t *cr = c->cr;
    const mspt_plot_box *b = &c->box;
    double ticks[32];
    int n = axis_ticks(a, b->y1 - b->y0, 45, ticks);
    double edge = right ? b->x1 + 1 : b->x0 - 1, dir = right ? 1 : -1;
    for (int i = 0; i < n; i++) {
        double y = floor(pc_map_y(c, a, ticks[i])) + 0.5;
        cairo_save(cr);
        cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
        cairo_set_line_width(cr, 1);
        pc_colour(cr, 0x000000);
        cairo_move_to(cr, edge, y);
        cairo_line_to(cr, edge + 4 * dir, y);
        cairo_stroke(cr);
        cairo_restore(cr);
        char buf[32];
        tick_label(a, ticks[i], buf, sizeof buf);
        pc_text(c, edge + 7 * dir, y, right ? 0 : 1, 0.5, PC_FONT_SIZE, 0, buf);
    }
    double x = right ? c->width - 8 : 14;
    pc_text(c, x, (b->y0 + b->y1) / 2.0, 0.5, right ? 1 : 0, PC_FONT_SIZE, 1, label);
}

void pc_title(pc_canvas *c, const char *s)
{
    pc_text(c, c->width / 2.0, PC_TITLE_BASELINE, 0.5, 1, PC_TITLE_SIZE, 0, s);
}

/* Right-aligned on the legend row, ending at the data area's right edge. */
void pc_legend_draw(pc_canvas *c, const pc_legend *items, int n)
{
    cairo_t *cr = c->cr;
    const double swatch = 22, gap = 5, space = 16;
    double widths[8], total = 0;
    cairo_save(cr);
    cairo_set_font_size(cr, PC_FONT_SIZE);
    for (int i = 0; i < n && i < 8; i++) {
        cairo_text_extents_t ext;
        cairo_text_extents(cr, items[i].label, &ext);
        widths[i] = ext.x_advance;
        total += swatch + gap + widths[i] + (i ? space : 0);
    }
    double x = floor(c->box.x1 - total);
    const double row = PC_LEGEND_ROW;
    for (int i = 0; i < n && i < 8; i++) {
        pc_colour(cr, items[i].colour);
        if (items[i].mark == PC_BOX) {
            cairo_rectangle(cr, x + 4, row - 5, 14, 10);
            cairo_fill(cr);
        } else {
            /* 2 px wide on integer rows: rows row-1 and row, solid colour */
            cairo_set_line_width(cr, 2);
            cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
            if (items[i].mark == PC_DASHED) {
                const double dash[2] = {5, 3};
                cairo_set_dash(cr, dash, 2, 0);
            }
            cairo_move_to(cr, x, row);
            cairo_line_to(cr, x + swatch, row);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
            if (items[i].mark == PC_LINE_DOTS) {
                cairo_arc(cr, x + swatch / 2, row, 3, 0, 2 * M_PI);
                cairo_fill(cr);
            }
        }
        pc_text(c, x + swatch + gap, row - 0.5, 0, 0.5, PC_FONT_SIZE, 0, items[i].label);
        x += swatch + gap + widths[i] + space;
    }
    cairo_restore(cr);
}

void pc_clip(pc_canvas *c)
{
    const mspt_plot_box *b = &c->box;
    cairo_rectangle(c->cr, b->x0, b->y0, b->x1 - b->x0, b->y1 - b->y0);
    cairo_clip(c->cr);
}
