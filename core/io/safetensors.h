/* safetensors I/O (core-internal): Hugging Face's tensor file format.
 *
 * File: 8-byte little-endian header length N, N bytes of JSON header,
 * then the raw little-endian tensor data.  The header maps each tensor
 * name to {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}
 * (offsets relative to the start of the data section) and may hold a
 * "__metadata__" object of string → string.
 *
 *   mspt_st_file *f = mspt_st_open("ckpt.safetensors", &err);
 *   float *w = malloc(n * sizeof *w);
 *   if (!f || mspt_st_read_f32(f, "pos_embed", w, n, &err)) ... err.msg
 *   mspt_st_close(f);
 *
 *   mspt_st_writer *w = mspt_st_writer_new();
 *   mspt_st_add_f32(w, t->name, t->ndim, t->shape, t->data);
 *   mspt_st_set_metadata(w, "step", "1200");
 *   if (mspt_st_save(w, "ckpt.safetensors", &err)) ... err.msg
 *   mspt_st_writer_free(w);
 *
 * The reader maps the file read-only and validates the whole header when it
 * opens (JSON parsed with libyaml, strictly JSON-shaped); the data must be
 * covered exactly by the tensors, with no overlap and no hole, as the
 * safetensors crate requires.  Errors name the file and the tensor or field
 * at fault.  Functions returning int give 0 on success, else an mspt_status.
 *
 * Limits: names and metadata keys at most 1022 characters once JSON-escaped
 * (libyaml's bound on a mapping key); \u escapes of characters outside the
 * BMP (surrogate pairs) are not decoded, so such names fail to open. */
#ifndef MSPT_IO_SAFETENSORS_H
#define MSPT_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include <mspt/error.h>

/* Element types in the safetensors crate's order: its writer puts tensors
 * in descending dtype order, then by name, and so does ours. */
typedef enum mspt_st_dtype {
    MSPT_ST_BOOL, MSPT_ST_U8, MSPT_ST_I8, MSPT_ST_F8_E5M2, MSPT_ST_F8_E4M3,
    MSPT_ST_I16, MSPT_ST_U16, MSPT_ST_F16, MSPT_ST_BF16, MSPT_ST_I32,
    MSPT_ST_U32, MSPT_ST_F32, MSPT_ST_F64, MSPT_ST_I64, MSPT_ST_U64,
    MSPT_ST_NDTYPES
} mspt_st_dtype;

/* Longest name or metadata key, in characters of its JSON-escaped form. */
#define MSPT_ST_MAX_KEY_CHARS 1022

const char *mspt_st_dtype_name(mspt_st_dtype dt); /* "F32" */
size_t mspt_st_dtype_size(mspt_st_dtype dt);      /* bytes per element */

/* ---- reader ------------------------------------------------------------ */

typedef struct mspt_st_file mspt_st_file;

mspt_st_file *mspt_st_open(const char *path, mspt_error *err);
void mspt_st_close(mspt_st_file *f);

/* Tensors are indexed 0..count-1 in name order (bytewise). */
size_t mspt_st_count(const mspt_st_file *f);
const char *mspt_st_name(const mspt_st_file *f, size_t i);
mspt_st_dtype mspt_st_dtype_of(const mspt_st_file *f, size_t i);
int mspt_st_ndim(const mspt_st_file *f, size_t i);
const int64_t *mspt_st_shape(const mspt_st_file *f, size_t i);
size_t mspt_st_numel(const mspt_st_file *f, size_t i);
/* Raw little-endian bytes in the mapping (not necessarily aligned). */
const void *mspt_st_data(const mspt_st_file *f, size_t i, size_t *nbytes);
/* Index of the tensor with this name, or -1. */
long mspt_st_find(const mspt_st_file *f, const char *name);

/* "__metadata__" value for key, or NULL; keys indexed in name order. */
const char *mspt_st_metadata(const mspt_st_file *f, const char *key);
size_t mspt_st_metadata_count(const mspt_st_file *f);
const char *mspt_st_metadata_key(const mspt_st_file *f, size_t i);

/* Copy tensor `name` into out (numel floats, which must equal the tensor's
 * element count), converting any dtype to float32: floats round to
 * nearest, integers are cast, BOOL gives 0 or 1. */
int mspt_st_read_f32(const mspt_st_file *f, const char *name, float *out,
                     size_t numel, mspt_error *err);

/* Elements [first, first + n) of tensor i, converted as mspt_st_read_f32
 * does (a tensor read piecewise); nonzero when the range is outside it. */
int mspt_st_read_range_f32(const mspt_st_file *f, size_t i, size_t first,
                           size_t n, float *out);

/* ---- writer ------------------------------------------------------------ */

typedef struct mspt_st_writer mspt_st_writer;

mspt_st_writer *mspt_st_writer_new(void);
void mspt_st_writer_free(mspt_st_writer *w);

/* Add a tensor: the name and shape are copied, the data is referenced and
 * must stay valid until mspt_st_save.  A bad argument returns nonzero and
 * is also kept, so mspt_st_save fails with its message. */
int mspt_st_add(mspt_st_writer *w, const char *name, mspt_st_dtype dtype,
                int ndim, const int *shape, const void *data);
int mspt_st_add_f32(mspt_st_writer *w, const char *name, int ndim,
                    const int *shape, const float *data);
int mspt_st_add_u8(mspt_st_writer *w, const char *name, int ndim,
                   const int *shape, const uint8_t *data);
int mspt_st_add_i64(mspt_st_writer *w, const char *name, int ndim,
                    const int *shape, const int64_t *data);
/* Set (or replace) one "__metadata__" entry; both strings are copied. */
int mspt_st_set_metadata(mspt_st_writer *w, const char *key, const char *value);

/* Write the file atomically: into path + ".tmp.<pid>" in the same
 * directory, flushed and fsync'ed, then renamed over path and the
 * directory fsync'ed.  On failure the temporary file is removed and an
 * existing file at path is left as it was.  The bytes are those the
 * safetensors crate writes for the same tensors and metadata (metadata
 * keys sorted). */
int mspt_st_save(mspt_st_writer *w, const char *path, mspt_error *err);

#endif
