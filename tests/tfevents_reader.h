/* An independent reader of TensorBoard event files for tests: TFRecord
 * framing with both masked CRC-32C checked, and a small protobuf decoder of
 * the Event fields mspt writes.  Written from the format's definition, not
 * from core/io/tfevents.c. */
#ifndef MSPT_TFEVENTS_READER_H
#define MSPT_TFEVENTS_READER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the independent reader -------------------------------------------------- */

/* CRC-32C bit by bit, straight from the definition (no table). */
static uint32_t ref_crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

static uint32_t ref_mask(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* One decoded Event (the fields mspt writes). */
typedef struct event {
    double wall_time;
    long long step;
    char file_version[32];
    char tag[64];
    int has_simple, has_image;
    float simple;
    long long height, width, colorspace;
    const uint8_t *png;
    size_t png_len;
    int session_status; /* SessionLog.status (1 = START), 0 when absent */
} event;

typedef struct cursor {
    const uint8_t *p, *end;
    int bad;
} cursor;

static uint64_t varint(cursor *c)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (c->p >= c->end) {
            c->bad = 1;
            return 0;
        }
        uint8_t b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    c->bad = 1;
    return 0;
}

/* Next field: number and wire type; a length-delimited field's body in sub. */
static int field(cursor *c, int *num, int *wire, cursor *sub)
{
    if (c->p >= c->end || c->bad)
        return 0;
    uint64_t key = varint(c);
    *num = (int)(key >> 3);
    *wire = (int)(key & 7);
    if (*wire == 2) {
        uint64_t n = varint(c);
        if (n > (uint64_t)(c->end - c->p)) {
            c->bad = 1;
            return 0;
        }
        *sub = (cursor){c->p, c->p + n, 0};
        c->p += n;
    }
    return !c->bad;
}

static void copy_str(char *dst, size_t size, const cursor *s)
{
    size_t n = (size_t)(s->end - s->p);
    n = n < size - 1 ? n : size - 1;
    memcpy(dst, s->p, n);
    dst[n] = '\0';
}

static int decode_image(cursor c, event *e)
{
    int num, wire;
    cursor s;
    while (field(&c, &num, &wire, &s)) {
        if (num >= 1 && num <= 3 && wire == 0) {
            long long v = (long long)varint(&c);
            *(num == 1 ? &e->height : num == 2 ? &e->width : &e->colorspace) = v;
        } else if (num == 4 && wire == 2) {
            e->png = s.p;
            e->png_len = (size_t)(s.end - s.p);
        } else
            return -1;
    }
    e->has_image = 1;
    return c.bad ? -1 : 0;
}

static int decode_value(cursor c, event *e)
{
    int num, wire;
    cursor s;
    while (field(&c, &num, &wire, &s)) {
        if (num == 1 && wire == 2)
            copy_str(e->tag, sizeof e->tag, &s);
        else if (num == 2 && wire == 5 && c.end - c.p >= 4) {
            uint32_t bits = (uint32_t)le(c.p, 4);
            memcpy(&e->simple, &bits, 4);
            c.p += 4;
            e->has_simple = 1;
        } else if (num == 4 && wire == 2) {
            if (decode_image(s, e))
                return -1;
        } else
            return -1;
    }
    return c.bad ? -1 : 0;
}

static int decode_event(const uint8_t *p, size_t n, event *e)
{
    memset(e, 0, sizeof *e);
    cursor c = {p, p + n, 0}, s;
    int num, wire, values = 0;
    while (field(&c, &num, &wire, &s)) {
        if (num == 1 && wire == 1 && c.end - c.p >= 8) {
            uint64_t bits = le(c.p, 8);
            memcpy(&e->wall_time, &bits, 8);
            c.p += 8;
        } else if (num == 2 && wire == 0)
            e->step = (long long)varint(&c);
        else if (num == 3 && wire == 2)
            copy_str(e->file_version, sizeof e->file_version, &s);
        else if (num == 7 && wire == 2) { /* SessionLog: its status only */
            int sn, sw;
            cursor v;
            while (field(&s, &sn, &sw, &v)) {
                if (sn != 1 || sw != 0)
                    return -1;
                e->session_status = (int)varint(&s);
            }
            if (s.bad || !e->session_status)
                return -1;
        }
        else if (num == 5 && wire == 2) { /* Summary: exactly one value */
            int vn, vw;
            cursor v;
            while (field(&s, &vn, &vw, &v)) {
                if (vn != 1 || vw != 2 || decode_value(v, e))
                    return -1;
                values++;
            }
            if (s.bad || values != 1)
                return -1;
        } else
            return -1;
    }
    return c.bad ? -1 : 0;
}

/* Read every record of a file; returns the count, or -1 (with why) when a
 * length or a CRC is wrong or the file ends inside a record. */
static int read_records(const uint8_t *buf, size_t len, event *out, int max,
                        const char **why)
{
    size_t at = 0;
    int n = 0;
    while (at < len) {
        if (len - at < 12) {
            *why = "truncated header";
            return -1;
        }
        uint64_t dl = le(buf + at, 8);
        if (ref_mask(ref_crc32c(buf + at, 8)) != (uint32_t)le(buf + at + 8, 4)) {
            *why = "length CRC mismatch";
            return -1;
        }
        if (dl > len - at - 16) {
            *why = "truncated data";
            return -1;
        }
        const uint8_t *data = buf + at + 12;
        if (ref_mask(ref_crc32c(data, dl)) != (uint32_t)le(data + dl, 4)) {
            *why = "data CRC mismatch";
            return -1;
        }
        if (n >= max || decode_event(data, dl, &out[n])) {
            *why = "bad Event proto";
            return -1;
        }
        n++;
        at += 16 + dl;
    }
    return n;
}


static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(buf, 1, (size_t)n, fp);
    fclose(fp);
    return buf;
}

#endif
