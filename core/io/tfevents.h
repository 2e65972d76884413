/* TensorBoard event files (core-internal), as PyTorch's SummaryWriter
 * writes them, so TensorBoard reads a run of ours as it reads theirs.
 *
 * File: dir/events.out.tfevents.<unix time>.<hostname>, a sequence of
 * TFRecords:
 *     uint64 length (little-endian)
 *     uint32 masked_crc32c(length bytes)
 *     byte   data[length]          one serialized tensorboard.Event proto
 *     uint32 masked_crc32c(data)
 * with masked_crc32c(x) = rotate_right(crc32c(x), 15) + 0xa282ead8.
 * The first Event carries file_version "brain.Event:2"; each later one a
 * Summary with one Value: a scalar (simple_value) or a PNG image.
 *
 *   mspt_tb_writer *w = mspt_tb_open("run/tb", &err);
 *   mspt_tb_scalar(w, "train_loss", step, 0, loss);   wall_time 0: now
 *   mspt_tb_image(w, "reconstruction/sample_3", step, 0, png, len, 800, 300, 4);
 *   mspt_tb_close(w);
 *
 * Every event is flushed to the file as it is written (TensorBoard follows
 * a growing file), so a crashed run keeps all it logged. */
#ifndef MSPT_IO_TFEVENTS_H
#define MSPT_IO_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>

#include <mspt/error.h>

typedef struct mspt_tb_writer mspt_tb_writer;

/* Create dir (mkdir -p) and a new event file in it; NULL after filling err.
 * Never overwrites: a name already taken gets a ".<pid>.<n>" suffix. */
mspt_tb_writer *mspt_tb_open(const char *dir, mspt_error *err);
/* The event file's path. */
const char *mspt_tb_path(const mspt_tb_writer *w);

/* Each returns 0, or MSPT_ERR_RUNTIME when the write failed (errno tells
 * why; the writer stays usable).  wall_time is seconds since the epoch,
 * 0 for now.  channels: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA (the PNGs of
 * io/png.h are RGBA).  A NULL writer (TensorBoard logging off) takes the
 * event and does nothing. */
int mspt_tb_scalar(mspt_tb_writer *w, const char *tag, long long step,
                   double wall_time, float value);
int mspt_tb_image(mspt_tb_writer *w, const char *tag, long long step,
                  double wall_time, const unsigned char *png, size_t len,
                  int width, int height, int channels);

/* A SessionLog START event at `step`: TensorBoard then drops the events of
 * earlier files in the directory whose step is ≥ step — those a stopped
 * run logged after the checkpoint a resumed run starts from.  (Newer
 * TensorBoards take the first START of a run as its beginning, not a
 * restart: so every run writes one, a fresh run at step 0.) */
int mspt_tb_session_start(mspt_tb_writer *w, long long step);

/* fsync what was written (the writer itself flushes after each event);
 * close also frees the writer.  Each returns 0, or MSPT_ERR_RUNTIME when
 * a write, the sync or the close failed (errno tells why). */
int mspt_tb_flush(mspt_tb_writer *w);
int mspt_tb_close(mspt_tb_writer *w);

/* CRC-32C (Castagnoli), and TensorFlow's masked form of it. */
uint32_t mspt_crc32c(const void *data, size_t n);
uint32_t mspt_crc32c_mask(uint32_t crc);

#endif
