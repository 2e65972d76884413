/* TensorBoard event files, see tfevents.h.  The protobuf is written by hand:
 * three messages with a handful of fields (field numbers from TensorBoard's
 * event.proto and summary.proto) do not justify a protobuf dependency. */
#include "io/tfevents.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/files.h"

struct mspt_tb_writer {
    FILE *fp;
    char *path;
    uint8_t *buf; /* one serialized Event, reused */
    size_t cap;
};

/* ---- CRC-32C ------------------------------------------------------------ */

/* Reflected Castagnoli polynomial 0x1EDC6F41, one byte per table step. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t mspt_crc32c(const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* TensorFlow masks stored CRCs so that a CRC of data holding CRCs stays
 * well distributed: rotate right by 15, add a constant. */
uint32_t mspt_crc32c_mask(uint32_t crc)
{
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

/* ---- protobuf wire format ------------------------------------------------- */

enum { WIRE_VARINT = 0, WIRE_64BIT = 1, WIRE_LEN = 2, WIRE_32BIT = 5 };

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *put_key(uint8_t *p, int field, int wire)
{
    return put_varint(p, (uint64_t)(field << 3 | wire));
}

static uint8_t *put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

/* Key and length prefix of a length-delimited field of n bytes. */
static uint8_t *put_len(uint8_t *p, int field, size_t n)
{
    return put_varint(put_key(p, field, WIRE_LEN), n);
}

/* Size of a length-delimited field (1-byte key) holding n bytes. */
static size_t len_field(size_t n) { return 1 + varint_len(n) + n; }

/* Event.wall_time (1, double) and Event.step (2, int64; proto3 leaves out
 * a zero, as PyTorch's writer does). */
static size_t event_head_len(long long step)
{
    return 9 + (step ? 1 + varint_len((uint64_t)step) : 0);
}

static uint8_t *put_event_head(uint8_t *p, double wall_time, long long step)
{
    uint64_t bits;
    memcpy(&bits, &wall_time, sizeof bits);
    p = put_le(put_key(p, 1, WIRE_64BIT), bits, 8);
    if (step)
        p = put_varint(put_key(p, 2, WIRE_VARINT), (uint64_t)step);
    return p;
}

/* ---- records ---------------------------------------------------------------- */

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static uint8_t *reserve(mspt_tb_writer *w, size_t n)
{
    if (n > w->cap) {
        uint8_t *b = realloc(w->buf, n);
        if (!b)
            return NULL;
        w->buf = b;
        w->cap = n;
    }
    return w->buf;
}

/* Frame w->buf[0..n) as one TFRecord and write it out. */
static int write_record(mspt_tb_writer *w, size_t n)
{
    uint8_t head[12], tail[4];
    put_le(head, n, 8);
    put_le(head + 8, mspt_crc32c_mask(mspt_crc32c(head, 8)), 4);
    put_le(tail, mspt_crc32c_mask(mspt_crc32c(w->buf, n)), 4);
    if (fwrite(head, 1, 12, w->fp) != 12 || fwrite(w->buf, 1, n, w->fp) != n ||
        fwrite(tail, 1, 4, w->fp) != 4 || fflush(w->fp) != 0)
        return MSPT_ERR_RUNTIME;
    return 0;
}

static int write_file_version(mspt_tb_writer *w)
{
    static const char version[] = "brain.Event:2";
    size_t vn = sizeof version - 1;
    uint8_t *p = reserve(w, event_head_len(0) + len_field(vn));
    if (!p)
        return MSPT_ERR_RUNTIME;
    p = put_event_head(p, wall_now(), 0);
    p = put_len(p, 3, vn); /* Event.file_version */
    memcpy(p, version, vn);
    return write_record(w, (size_t)(p + vn - w->buf));
}

int mspt_tb_session_start(mspt_tb_writer *w, long long step)
{
    if (!w)
        return 0;
    uint8_t *p = reserve(w, event_head_len(step) + len_field(2));
    if (!p)
        return MSPT_ERR_RUNTIME;
    p = put_event_head(p, wall_now(), step);
    p = put_len(p, 7, 2);                   /* Event.session_log */
    p = put_varint(put_key(p, 1, WIRE_VARINT), 1); /* status = START */
    return write_record(w, (size_t)(p - w->buf));
}

/* An Event holding a Summary holding one Value with the given tag; the
 * value's own field (body_len bytes) is written by the caller at the
 * returned pointer. */
static uint8_t *begin_summary(mspt_tb_writer *w, const char *tag, long long step,
                              double wall_time, size_t body_len, size_t *total)
{
    size_t tn = strlen(tag);
    size_t value_len = len_field(tn) + body_len;
    size_t summary_len = len_field(value_len);
    *total = event_head_len(step) + len_field(summary_len);
    uint8_t *p = reserve(w, *total);
    if (!p)
        return NULL;
    p = put_event_head(p, wall_time > 0 ? wall_time : wall_now(), step);
    p = put_len(p, 5, summary_len); /* Event.summary */
    p = put_len(p, 1, value_len);   /* Summary.value */
    p = put_len(p, 1, tn);          /* Value.tag */
    memcpy(p, tag, tn);
    return p + tn;
}

int mspt_tb_scalar(mspt_tb_writer *w, const char *tag, long long step,
                   double wall_time, float value)
{
    if (!w)
        return 0;
    size_t total;
    uint8_t *p = begin_summary(w, tag, step, wall_time, 5, &total);
    if (!p)
        return MSPT_ERR_RUNTIME;
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    put_le(put_key(p, 2, WIRE_32BIT), bits, 4); /* Value.simple_value */
    return write_record(w, total);
}

int mspt_tb_image(mspt_tb_writer *w, const char *tag, long long step,
                  double wall_time, const unsigned char *png, size_t len,
                  int width, int height, int channels)
{
    if (!w)
        return 0;
    if (width <= 0 || height <= 0 || channels < 1 || channels > 4) {
        errno = EINVAL;
        return MSPT_ERR_RUNTIME;
    }
    size_t image_len = 1 + varint_len((uint64_t)height) + 1 +
                       varint_len((uint64_t)width) + 2 + len_field(len);
    size_t total;
    uint8_t *p = begin_summary(w, tag, step, wall_time, len_field(image_len), &total);
    if (!p)
        return MSPT_ERR_RUNTIME;
    p = put_len(p, 4, image_len);                                 /* Value.image */
    p = put_varint(put_key(p, 1, WIRE_VARINT), (uint64_t)height); /* Image.height */
    p = put_varint(put_key(p, 2, WIRE_VARINT), (uint64_t)width);  /* Image.width */
    p = put_varint(put_key(p, 3, WIRE_VARINT), (uint64_t)channels); /* colorspace */
    p = put_len(p, 4, len);                         /* Image.encoded_image_string */
    memcpy(p, png, len);
    return write_record(w, total);
}

/* ---- the file ------------------------------------------------------------------ */

/* Create path exclusively; on a name clash try path.<pid>.<n>. */
static FILE *create_unique(const char *base, char **path)
{
    for (int n = 0; n < 100; n++) {
        char *p = NULL;
        int r = n ? asprintf(&p, "%s.%ld.%d", base, (long)getpid(), n)
                  : asprintf(&p, "%s", base);
        if (r < 0)
            return NULL;
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            FILE *fp = fdopen(fd, "wb");
            if (!fp) {
                close(fd);
                free(p);
                return NULL;
            }
            *path = p;
            return fp;
        }
        free(p);
        if (errno != EEXIST)
            return NULL;
    }
    return NULL;
}

mspt_tb_writer *mspt_tb_open(const char *dir, mspt_error *err)
{
    if (mspt_make_dirs(dir, err))
        return NULL;
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    char *base = NULL;
    if (asprintf(&base, "%s/events.out.tfevents.%010lld.%s", dir,
                 (long long)time(NULL), host) < 0) {
        mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: out of memory", dir);
        return NULL;
    }
    mspt_tb_writer *w = calloc(1, sizeof *w);
    if (w)
        w->fp = create_unique(base, &w->path);
    if (!w || !w->fp) {
        mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot create an event file: %s",
                       base, strerror(errno));
        free(w);
        free(base);
        return NULL;
    }
    free(base);
    if (write_file_version(w)) {
        mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s", w->path, strerror(errno));
        mspt_tb_close(w);
        return NULL;
    }
    return w;
}

const char *mspt_tb_path(const mspt_tb_writer *w) { return w->path; }

int mspt_tb_flush(mspt_tb_writer *w)
{
    /* EINVAL/EROFS: a file that cannot be synced (a pipe, /dev/null) */
    if (w && (fflush(w->fp) != 0 ||
              (fsync(fileno(w->fp)) != 0 && errno != EINVAL && errno != EROFS)))
        return MSPT_ERR_RUNTIME;
    return 0;
}

int mspt_tb_close(mspt_tb_writer *w)
{
    if (!w)
        return 0;
    int rc = mspt_tb_flush(w), saved = errno;
    if (fclose(w->fp) != 0 && !rc) {
        rc = MSPT_ERR_RUNTIME;
        saved = errno;
    }
    free(w->path);
    free(w->buf);
    free(w);
    errno = saved;
    return rc;
}
