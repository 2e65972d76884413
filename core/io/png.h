/* PNG encoding with libpng (core-internal): plots and TensorBoard images.
 *
 *   unsigned char *png; size_t len;
 *   if (mspt_png_encode(rgba, w, h, &png, &len, &err)) ... err.msg
 *   mspt_png_save("run/plots/curves.png", png, len, &err);
 *   free(png);
 */
#ifndef MSPT_IO_PNG_H
#define MSPT_IO_PNG_H

#include <stddef.h>

#include <mspt/error.h>

/* rgba: h rows of w pixels, 4 bytes each (R, G, B, A; straight alpha).
 * *out is malloc'd; the caller frees it. */
int mspt_png_encode(const unsigned char *rgba, int w, int h, unsigned char **out,
                    size_t *len, mspt_error *err);

/* Write len bytes to path atomically (a reader never sees half a file). */
int mspt_png_save(const char *path, const unsigned char *png, size_t len,
                  mspt_error *err);

#endif
