/* PNG decoding for tests, with libpng's simplified reader: returns w × h
 * RGBA pixels (malloc'd) or NULL when the bytes are not a valid PNG. */
#ifndef MSPT_TEST_PNG_DECODE_H
#define MSPT_TEST_PNG_DECODE_H

#include <png.h>
#include <stdlib.h>
#include <string.h>

static inline unsigned char *png_decode(const unsigned char *png, size_t len, int *w,
                                        int *h)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, png, len))
        return NULL;
    img.format = PNG_FORMAT_RGBA;
    unsigned char *px = malloc(PNG_IMAGE_SIZE(img));
    if (!px || !png_image_finish_read(&img, NULL, px, 0, NULL)) {
        free(px);
        png_image_free(&img);
        return NULL;
    }
    *w = (int)img.width;
    *h = (int)img.height;
    return px;
}

#endif
