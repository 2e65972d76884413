/* PNG encoding, see png.h. */
#include "io/png.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "io/files.h"

/* The growing output buffer libpng writes into; msg keeps libpng's error. */
typedef struct membuf {
    unsigned char *data;
    size_t len, cap;
    char msg[200];
} membuf;

static void on_write(png_structp png, png_bytep bytes, size_t n)
{
    membuf *m = png_get_io_ptr(png);
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + n)
            cap *= 2;
        unsigned char *d = realloc(m->data, cap);
        if (!d)
            png_error(png, "out of memory");
        m->data = d;
        m->cap = cap;
    }
    memcpy(m->data + m->len, bytes, n);
    m->len += n;
}

static void on_flush(png_structp png) { (void)png; }

static void on_error(png_structp png, png_const_charp msg)
{
    membuf *m = png_get_error_ptr(png);
    snprintf(m->msg, sizeof m->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

int mspt_png_encode(const unsigned char *rgba, int w, int h, unsigned char **out,
                    size_t *len, mspt_error *err)
{
    *out = NULL;
    *len = 0;
    if (w <= 0 || h <= 0)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "png: bad image size %dx%d", w, h);
    /* on the heap: locals changed after setjmp are unreliable after longjmp */
    membuf *m = calloc(1, sizeof *m);
    png_bytep *rows = malloc((size_t)h * sizeof *rows);
    png_structp png = m && rows ? png_create_write_struct(PNG_LIBPNG_VER_STRING, m,
                                                          on_error, on_warning)
                                : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        free(rows);
        free(m);
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "png: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        free(m->data);
        int rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "png: %s", m->msg);
        free(m);
        return rc;
    }
    for (int y = 0; y < h; y++)
        rows[y] = (png_bytep)(rgba + (size_t)y * w * 4);
    png_set_write_fn(png, m, on_write, on_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGBA,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    *out = m->data;
    *len = m->len;
    free(m);
    return 0;
}

typedef struct bytes {
    const unsigned char *p;
    size_t n;
} bytes;

static int write_bytes(FILE *fp, void *ud, mspt_error *err)
{
    (void)err;
    const bytes *b = ud;
    return fwrite(b->p, 1, b->n, fp) == b->n ? 0 : -1;
}

int mspt_png_save(const char *path, const unsigned char *png, size_t len,
                  mspt_error *err)
{
    bytes b = {png, len};
    return mspt_atomic_write(path, write_bytes, &b, err);
}
