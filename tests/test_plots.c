/* Plots, checked on their pixels: a reconstruction of a known signal and
 * mask, decoded from its PNG, is shaded in exactly the columns the masked
 * samples own (fewer and more samples than columns), framed just outside
 * its data area, with both traces in their legend colours where the
 * signals put them, a legend and text; the loss-curves plot shows one
 * legend swatch per series given; sizes, determinism, errors, atomic save. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "io/png.h"
#include "png_decode.h"
#include "tap.h"
#include "task/plots.h"

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void test_save(void)
{
    char dir[] = "/tmp/mspt-test-plots-XXXXXX";
    if (!mkdtemp(dir))
        tap_bail("mkdtemp");
    char path[200], bad[200];
    snprintf(path, sizeof path, "%s/a.png", dir);
    snprintf(bad, sizeof bad, "%s/missing/a.png", dir);
    const unsigned char bytes[] = "\x89PNG not really";
    mspt_error err = {0};
    int rc = mspt_png_save(path, bytes, sizeof bytes, &err);
    FILE *fp = fopen(path, "rb");
    unsigned char back[64] = {0};
    size_t n = fp ? fread(back, 1, sizeof back, fp) : 0;
    if (fp)
        fclose(fp);
    ok(rc == 0 && n == sizeof bytes && !memcmp(back, bytes, n) && count_entries(dir) == 1,
       "png_save writes the bytes and leaves no temporary file");
    ok(mspt_png_save(bad, bytes, sizeof bytes, &err) != 0 && strstr(err.msg, bad),
       "png_save into a missing directory fails naming the file: %s", err.msg);
    remove(path);
    remove(dir);
}

#ifdef HAVE_CAIRO
typedef struct image {
    unsigned char *px;
    int w, h;
} image;

static unsigned rgb_at(const image *im, int x, int y)
{
    const unsigned char *p = im->px + ((size_t)y * im->w + x) * 4;
    return (unsigned)p[0] << 16 | (unsigned)p[1] << 8 | p[2];
}

/* Every channel within tol of colour c. */
static int near(unsigned a, unsigned c, int tol)
{
    for (int s = 0; s <= 16; s += 8)
        if (abs((int)((a >> s) & 255) - (int)((c >> s) & 255)) > tol)
            return 0;
    return 1;
}

/* Exact-colour pixels in rows [y0, y1), and the leftmost one's column. */
static int count_colour(const image *im, int y0, int y1, unsigned c, int *left)
{
    int n = 0;
    *left = im->w;
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < im->w; x++)
            if (rgb_at(im, x, y) == c) {
                n++;
                if (x < *left)
                    *left = x;
            }
    return n;
}

static int count_dark(const image *im, int x0, int y0, int x1, int y1)
{
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            n += near(rgb_at(im, x, y), 0x000000, 120);
    return n;
}

static int decode(const unsigned char *png, size_t len, image *im)
{
    im->px = png ? png_decode(png, len, &im->w, &im->h) : NULL;
    return im->px != NULL;
}

/* The rule plots.h states: sample t owns [col(t), max(col(t+1), col(t)+1)). */
static int col_of(const mspt_plot_box *b, int T, int t)
{
    return b->x0 + (int)((long long)t * (b->x1 - b->x0) / T);
}

static int expect_shaded(const mspt_plot_box *b, const uint8_t *mask, int T, int x)
{
    for (int t = 0; t < T; t++) {
        int a = col_of(b, T, t), e = col_of(b, T, t + 1);
        if (e < a + 1)
            e = a + 1;
        if (mask[t] && x >= a && x < e)
            return 1;
    }
    return 0;
}

/* Masked spans of assorted lengths, including single samples and the ends. */
static void make_mask(uint8_t *mask, int T)
{
    memset(mask, 0, (size_t)T);
    for (int t = 0; t < T; t++) {
        int k = t % 97;
        mask[t] = (k >= 10 && k < 26) || k == 40 || (k >= 60 && k < 63) || t < 3 ||
                  t >= T - 5;
    }
}

static void test_shading(int T, int width, int height)
{
    float *sig = malloc((size_t)T * sizeof *sig), *rec = malloc((size_t)T * sizeof *rec);
    uint8_t *mask = malloc((size_t)T);
    for (int t = 0; t < T; t++) {
        sig[t] = 1.0f + 0.5f * sinf(0.07f * (float)t);  /* in [0.5, 1.5] */
        rec[t] = -1.0f + 0.5f * cosf(0.05f * (float)t); /* in [-1.5, -0.5] */
    }
    make_mask(mask, T);
    mspt_plot_trace tr = {sig, rec, mask, T, 0, 4, 2, 1};
    unsigned char *png = NULL;
    size_t len = 0;
    mspt_error err = {0};
    int rc = mspt_plot_reconstruction(&tr, width, height, &png, &len, &err);
    image im;
    if (!ok(rc == 0 && decode(png, len, &im) && im.w == width && im.h == height,
            "T=%d: renders a PNG that decodes to %dx%d (%s)", T, width, height, err.msg)) {
        free(png);
        free(sig);
        free(rec);
        free(mask);
        return;
    }
    mspt_plot_box b = mspt_plot_reconstruction_area(width, height);

    /* background rows at the top and bottom of the data area */
    int wrong = 0, shaded = 0, first_wrong = -1;
    for (int x = b.x0; x < b.x1; x++) {
        int want = expect_shaded(&b, mask, T, x);
        unsigned c = want ? MSPT_PLOT_SHADE : 0xffffff;
        shaded += want;
        if (rgb_at(&im, x, b.y0) != c || rgb_at(&im, x, b.y1 - 1) != c) {
            if (first_wrong < 0)
                first_wrong = x;
            wrong++;
        }
    }
    ok(wrong == 0 && shaded > 0 && shaded < b.x1 - b.x0,
       "T=%d: columns shaded exactly where masked samples lie (%d of %d shaded; "
       "%d wrong, first at x=%d)", T, shaded, b.x1 - b.x0, wrong, first_wrong);

    /* the frame sits just outside the data area */
    int mid_y = (b.y0 + b.y1) / 2, mid_x = (b.x0 + b.x1) / 2;
    ok(rgb_at(&im, b.x0 - 1, mid_y) == 0 && rgb_at(&im, b.x1, mid_y) == 0 &&
           rgb_at(&im, mid_x, b.y0 - 1) == 0 && rgb_at(&im, mid_x, b.y1) == 0,
       "T=%d: frame on the rows and columns around the data area", T);

    /* each trace passes where its values put it, in its colour: the value
     * range [-1.5, 1.5] padded by 8% maps onto the data area's rows */
    double lo = -1.5 - 0.24, hi = 1.5 + 0.24;
    int blue = 0, orange = 0, probes = 0;
    for (int t = 5; t < T; t += T / 23) {
        int x = (int)floor(b.x0 + (t + 0.5) * (b.x1 - b.x0) / T);
        double ys = b.y0 + (hi - sig[t]) / (hi - lo) * (b.y1 - b.y0);
        double yr = b.y0 + (hi - rec[t]) / (hi - lo) * (b.y1 - b.y0);
        int fb = 0, fo = 0;
        for (int dy = -2; dy <= 2; dy++) {
            /* a line centred on a row boundary covers each row by 3/4 */
            fb |= near(rgb_at(&im, x, (int)ys + dy), MSPT_PLOT_ORIGINAL, 70);
            fo |= near(rgb_at(&im, x, (int)yr + dy), MSPT_PLOT_RECON, 70);
        }
        if (!fb || !fo)
            diag("probe t=%d x=%d: row %.1f %06x, row %.1f %06x", t, x, ys,
                 rgb_at(&im, x, (int)ys), yr, rgb_at(&im, x, (int)yr));
        blue += fb;
        orange += fo;
        probes++;
    }
    ok(blue == probes && orange == probes,
       "T=%d: original in #1f77b4 and reconstruction in #ff7f0e where their "
       "values lie (%d and %d of %d probes)", T, blue, orange, probes);

    /* legend: solid swatches between the title and the data area, in the
     * order of the traces */
    int lb, lo_, ls;
    int nb = count_colour(&im, 27, b.y0 - 1, MSPT_PLOT_ORIGINAL, &lb);
    int no = count_colour(&im, 27, b.y0 - 1, MSPT_PLOT_RECON, &lo_);
    int ns = count_colour(&im, 27, b.y0 - 1, MSPT_PLOT_SHADE, &ls);
    ok(nb >= 30 && no >= 30 && ns >= 100 && lb < lo_ && lo_ < ls,
       "T=%d: legend swatches original, reconstruction, masked (%d, %d, %d px)", T,
       nb, no, ns);
    ok(count_dark(&im, 0, 0, width, 26) > 60 &&
           count_dark(&im, b.x0, b.y1 + 3, b.x1, height) > 60 &&
           count_dark(&im, 0, b.y0, b.x0 - 6, b.y1) > 30,
       "T=%d: text in the title, under the x axis and beside the y axis", T);
    free(im.px);

    unsigned char *again = NULL;
    size_t len2 = 0;
    mspt_plot_reconstruction(&tr, width, height, &again, &len2, &err);
    ok(again && len2 == len && !memcmp(png, again, len), "T=%d: rendering is deterministic",
       T);
    free(again);
    free(png);
    free(sig);
    free(rec);
    free(mask);
}

static void test_recon_edges(void)
{
    float sig[40], rec[40];
    uint8_t mask[40] = {0};
    for (int t = 0; t < 40; t++)
        sig[t] = rec[t] = 2.0f; /* a flat signal still gets an axis */
    sig[7] = NAN;
    rec[8] = INFINITY;
    mspt_plot_trace tr = {sig, rec, mask, 40, 256.0, 1, 0, 0};
    unsigned char *png = NULL;
    size_t len = 0;
    mspt_error err = {0};
    image im;
    ok(mspt_plot_reconstruction(&tr, 300, 200, &png, &len, &err) == 0 &&
           decode(png, len, &im) && im.w == 300 && im.h == 200,
       "flat signal with NaN and inf, no mask: renders (%s)", err.msg);
    if (png) {
        mspt_plot_box b = mspt_plot_reconstruction_area(300, 200);
        int shaded = 0;
        for (int x = b.x0; x < b.x1; x++)
            shaded += rgb_at(&im, x, b.y0) != 0xffffff;
        ok(shaded == 0, "no mask: no column shaded");
        free(im.px);
    }
    free(png);
    png = NULL;
    ok(mspt_plot_reconstruction(&tr, 100, 80, &png, &len, &err) != 0 && !png &&
           strstr(err.msg, "100x80"),
       "too small a plot is refused: %s", err.msg);
    tr.T = 0;
    ok(mspt_plot_reconstruction(&tr, 300, 200, &png, &len, &err) != 0 && !png,
       "T=0 is refused: %s", err.msg);
}

static void test_curves(void)
{
    double sx[50], sy[50], ex[3] = {20, 40, 50}, ey[3] = {0.5, 0.3, 0.25};
    double lx[50], ly[50];
    for (int i = 0; i < 50; i++) {
        sx[i] = lx[i] = i + 1;
        sy[i] = 1.0 / (1 + 0.1 * i);
        ly[i] = 1e-3 * (i < 5 ? i / 5.0 : 1);
    }
    sy[10] = NAN;
    mspt_curves c = {{sx, sy, 50}, {ex, ey, 3}, {NULL, NULL, 0}, {lx, ly, 50}, 0, "t"};
    unsigned char *png = NULL;
    size_t len = 0;
    mspt_error err = {0};
    image im;
    int rc = mspt_plot_curves(&c, 640, 300, &png, &len, &err);
    if (!ok(rc == 0 && decode(png, len, &im) && im.w == 640 && im.h == 300,
            "curves: a 640x300 PNG (%s)", err.msg)) {
        free(png);
        return;
    }
    int l;
    ok(count_colour(&im, 0, 48, 0x1f77b4, &l) >= 30 &&
           count_colour(&im, 0, 48, 0x2ca02c, &l) >= 30 &&
           count_colour(&im, 0, 48, 0x7f7f7f, &l) >= 10 &&
           count_colour(&im, 0, 48, 0xff7f0e, &l) == 0,
       "curves: legend swatches for train step, train epoch and lr; none for "
       "the absent val_loss");
    ok(count_dark(&im, 600, 60, 640, 250) > 30, "curves: a labelled right axis for lr");
    free(im.px);
    free(png);

    c.log_y = 1;
    sy[3] = 0; /* not drawable on a log axis: skipped */
    ok(mspt_plot_curves(&c, 640, 300, &png, &len, &err) == 0 && len > 0,
       "curves: log scale, a zero loss skipped (%s)", err.msg);
    free(png);

    mspt_curves none = {{NULL, NULL, 0}, {NULL, NULL, 0}, {NULL, NULL, 0},
                        {NULL, NULL, 0}, 0, NULL};
    png = NULL;
    ok(mspt_plot_curves(&none, 640, 300, &png, &len, &err) != 0 && !png &&
           strstr(err.msg, "no loss or lr values"),
       "curves: nothing to plot is an error: %s", err.msg);
}
#endif

int main(void)
{
    test_save();
#ifdef HAVE_CAIRO
    test_shading(300, 701, 263);  /* about two columns per sample */
    test_shading(1500, 640, 220); /* several samples per column */
    test_recon_edges();
    test_curves();
#else
    unsigned char *png = NULL;
    size_t len = 0;
    mspt_error err = {0};
    mspt_plot_trace tr = {0};
    ok(mspt_plot_reconstruction(&tr, 300, 200, &png, &len, &err) != 0 &&
           strstr(err.msg, "plots need cairo"),
       "without cairo, plotting says so: %s", err.msg);
#endif
    return tap_done();
}
