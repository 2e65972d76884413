/* TensorBoard event files: CRC-32C against published vectors, records
 * byte-identical to a known writer's, and a file written through the API
 * read back by an independent reader written here (TFRecord framing with
 * both CRCs checked, a small protobuf decoder): file_version first, scalar
 * tags, steps and values, image sizes and PNG bytes that libpng decodes. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/png.h"
#include "io/tfevents.h"
#include "png_decode.h"
#include "tap.h"

#include "tfevents_reader.h"

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static int memfind(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(hay + i, needle, m))
            return 1;
    return 0;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_crc(void)
{
    const uint8_t digits[] = "123456789";
    ok(ref_crc32c(digits, 9) == 0xE3069283u, "reference CRC-32C of \"123456789\"");
    ok(mspt_crc32c(digits, 9) == 0xE3069283u, "mspt_crc32c(\"123456789\") = 0xE3069283");
    uint8_t buf[32];
    memset(buf, 0, 32);
    ok(mspt_crc32c(buf, 32) == 0x8A9136AAu, "RFC 3720: 32 zero bytes");
    memset(buf, 0xFF, 32);
    ok(mspt_crc32c(buf, 32) == 0x62A8AB43u, "RFC 3720: 32 bytes of 0xFF");
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    ok(mspt_crc32c(buf, 32) == 0x46DD794Eu, "RFC 3720: bytes 0..31");
    ok(mspt_crc32c(buf, 0) == 0, "empty input");
    int agree = 1;
    uint8_t big[1000];
    for (int i = 0; i < 1000; i++)
        big[i] = (uint8_t)(i * 131 + 7);
    for (size_t n = 0; n <= 1000; n += 37)
        agree &= mspt_crc32c(big, n) == ref_crc32c(big, n);
    ok(agree, "table CRC agrees with the bitwise one on 28 lengths");
    int masks = 1;
    for (uint32_t c = 1; c < 4000000000u; c += 99999989u)
        masks &= mspt_crc32c_mask(c) == ref_mask(c);
    ok(masks, "mask: rotate right 15, add 0xa282ead8");
}

/* Records from other writers, as their own tests pin them: TensorFlow's
 * event_file_loader_test (file_version "brain.Event:1") and
 * tensorboard_logger's (wall_time 256.5, file_version and two scalars). */
static const uint8_t tf_record[] =
    "\x18\x00\x00\x00\x00\x00\x00\x00\xa3\x7fK\"\t\x00\x00\xc0%\xddu"
    "\xd5\x41\x1a\rbrain.Event:1\xec\xf3\x32\x8d";
static const uint8_t tbl_version[] =
    "\x18\x00\x00\x00\x00\x00\x00\x00\xa3\x7fK\"\t\x00\x00\x00\x00\x00\x08p@"
    "\x1a\rbrain.Event:2\xbc\x98!+";
static const uint8_t tbl_v1[] =
    "\x19\x00\x00\x00\x00\x00\x00\x00\x8b\xf1\x08(\t\x00\x00\x00\x00\x00\x08p@"
    "\x10\x01*\x0c\n\n\n\x03v/1\x15\x00\x00\xc0?,\xec\xc0\x87";
static const uint8_t tbl_v22[] =
    "\x1a\x00\x00\x00\x00\x00\x00\x00\x12\x9b\xd8-\t\x00\x00\x00\x00\x00\x08p@"
    "\x10\x02*\r\n\x0b\n\x04v/22\x15\x00\x00\x80\x41\x8f\xa3\xb6\x88";

static void test_golden_reader(void)
{
    event e[2];
    const char *why = "";
    ok(read_records(tf_record, sizeof tf_record - 1, e, 2, &why) == 1 &&
           !strcmp(e[0].file_version, "brain.Event:1"),
       "reader accepts TensorFlow's test record");
    ok(read_records(tbl_version, sizeof tbl_version - 1, e, 2, &why) == 1 &&
           e[0].wall_time == 256.5 && !strcmp(e[0].file_version, "brain.Event:2"),
       "reader accepts tensorboard_logger's file_version record");
    ok(read_records(tbl_v1, sizeof tbl_v1 - 1, e, 2, &why) == 1 && e[0].step == 1 &&
           !strcmp(e[0].tag, "v/1") && e[0].simple == 1.5f,
       "reader decodes tensorboard_logger's scalar v/1 = 1.5 at step 1");
    uint8_t bad[sizeof tbl_v1];
    memcpy(bad, tbl_v1, sizeof bad);
    bad[20] ^= 1;
    ok(read_records(bad, sizeof bad - 1, e, 2, &why) < 0 &&
           !strcmp(why, "data CRC mismatch"),
       "reader rejects a flipped data bit");
    memcpy(bad, tbl_v1, sizeof bad);
    bad[0] ^= 1;
    ok(read_records(bad, sizeof bad - 1, e, 2, &why) < 0 &&
           !strcmp(why, "length CRC mismatch"),
       "reader rejects a flipped length bit");
}

/* A 37 × 23 RGBA test card. */
static unsigned char *test_card(void)
{
    unsigned char *px = malloc(37 * 23 * 4);
    for (int y = 0; y < 23; y++)
        for (int x = 0; x < 37; x++) {
            unsigned char *p = px + (y * 37 + x) * 4;
            p[0] = (unsigned char)(x * 7);
            p[1] = (unsigned char)(y * 11);
            p[2] = (unsigned char)((x ^ y) * 5);
            p[3] = (unsigned char)(255 - x);
        }
    return px;
}

static void test_png(void)
{
    unsigned char *card = test_card(), *png = NULL;
    size_t len = 0;
    mspt_error err = {0};
    int rc = mspt_png_encode(card, 37, 23, &png, &len, &err);
    ok(rc == 0 && len > 8 && !memcmp(png, "\x89PNG\r\n\x1a\n", 8),
       "png: encodes with the PNG signature (%zu bytes)", len);
    int w = 0, h = 0;
    unsigned char *back = png ? png_decode(png, len, &w, &h) : NULL;
    ok(back && w == 37 && h == 23 && !memcmp(back, card, 37 * 23 * 4),
       "png: libpng decodes the same 37x23 RGBA pixels");
    free(back);
    free(png);
    ok(mspt_png_encode(card, 0, 5, &png, &len, &err) != 0 &&
           strstr(err.msg, "0x5") && !png,
       "png: a 0x5 image is refused: %s", err.msg);
    free(card);
}

static void test_writer(const char *tmp)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/run/tb", tmp);
    mspt_error err = {0};
    double t0 = (double)time(NULL);
    mspt_tb_writer *w = mspt_tb_open(dir, &err);
    if (!ok(w != NULL, "open creates %s: %s", dir, err.msg))
        return;
    char path[900];
    snprintf(path, sizeof path, "%s", mspt_tb_path(w));
    char host[256] = "";
    gethostname(host, sizeof host);
    const char *base = strrchr(path, '/') + 1;
    long long stamp = 0;
    char rest[300] = "";
    ok(sscanf(base, "events.out.tfevents.%10lld.%299s", &stamp, rest) == 2 &&
           !strcmp(rest, host) && llabs(stamp - (long long)t0) <= 5,
       "file named events.out.tfevents.<time>.<hostname>: %s", base);

    /* what a run logs, plus byte-exact records and awkward steps */
    static const char *tags[] = {"train_loss", "lr", "train_loss_epoch", "val_loss"};
    int rc = 0;
    for (int s = 1; s <= 6; s++)
        rc |= mspt_tb_scalar(w, tags[(s - 1) % 4], s * 10, 0, 1.0f / (float)s);
    rc |= mspt_tb_scalar(w, "v/1", 1, 256.5, 1.5f);
    rc |= mspt_tb_scalar(w, "v/22", 2, 256.5, 16.0f);
    rc |= mspt_tb_scalar(w, "big", 1LL << 40, 1e9, -3.25f);
    rc |= mspt_tb_scalar(w, "zero", 0, 1e9, 0.0f);
    unsigned char *card = test_card(), *png = NULL;
    size_t len = 0;
    rc |= mspt_png_encode(card, 37, 23, &png, &len, &err);
    rc |= mspt_tb_image(w, "reconstruction/sample_3", 7, 0, png, len, 37, 23, 4);
    ok(rc == 0, "scalars and an image written");
    ok(mspt_tb_image(w, "bad", 1, 0, png, len, 0, 23, 4) != 0,
       "an image of width 0 is refused");
    mspt_tb_close(w);

    size_t flen = 0;
    uint8_t *file = slurp(path, &flen);
    if (!ok(file != NULL, "read back %s", path)) {
        free(card);
        free(png);
        return;
    }
    event ev[32];
    const char *why = "";
    int n = read_records(file, flen, ev, 32, &why);
    ok(n == 12, "12 records, every length and data CRC right (%d; %s)", n, why);
    if (n != 12) {
        free(file);
        free(card);
        free(png);
        return;
    }
    ok(!strcmp(ev[0].file_version, "brain.Event:2") && ev[0].step == 0 &&
           fabs(ev[0].wall_time - t0) < 60 && !ev[0].tag[0],
       "first event: file_version brain.Event:2 at the current wall time");
    ok(!memcmp(file, "\x18\x00\x00\x00\x00\x00\x00\x00\xa3\x7fK\"", 12),
       "first record's header is byte-identical to TensorFlow's");
    int scal = 1;
    for (int s = 1; s <= 6; s++) {
        const event *e = &ev[s];
        scal &= !strcmp(e->tag, tags[(s - 1) % 4]) && e->step == s * 10 &&
                e->has_simple && e->simple == 1.0f / (float)s && !e->has_image &&
                fabs(e->wall_time - t0) < 60;
    }
    ok(scal, "six scalars: tags, steps, values and wall times as written");
    ok(memfind(file, flen, tbl_v1, sizeof tbl_v1 - 1) &&
           memfind(file, flen, tbl_v22, sizeof tbl_v22 - 1),
       "scalar records byte-identical to tensorboard_logger's");
    ok(ev[9].step == 1LL << 40 && ev[9].simple == -3.25f && ev[9].wall_time == 1e9,
       "step 2^40 and a negative value round-trip");
    ok(ev[10].step == 0 && !strcmp(ev[10].tag, "zero") && ev[10].has_simple &&
           ev[10].simple == 0.0f,
       "step 0 and value 0 round-trip");
    const event *im = &ev[11];
    ok(im->has_image && !im->has_simple && !strcmp(im->tag, "reconstruction/sample_3") &&
           im->step == 7 && im->height == 23 && im->width == 37 && im->colorspace == 4,
       "image: tag, step, height 23, width 37, colorspace 4");
    int w2 = 0, h2 = 0;
    unsigned char *px = im->png ? png_decode(im->png, im->png_len, &w2, &h2) : NULL;
    ok(px && w2 == 37 && h2 == 23 && !memcmp(px, card, 37 * 23 * 4) &&
           im->png_len == len,
       "image bytes decode as a 37x23 PNG with the pixels written");
    free(px);
    free(file);
    free(card);
    free(png);

    /* a second writer in the same second gets its own file */
    mspt_tb_writer *a = mspt_tb_open(dir, &err), *b = mspt_tb_open(dir, &err);
    ok(a && b && strcmp(mspt_tb_path(a), mspt_tb_path(b)) != 0 && count_files(dir) == 3,
       "writers opened in the same second never share a file");
    mspt_tb_close(a);
    mspt_tb_close(b);
}

static void test_errors(const char *tmp)
{
    char file[600], dir[700];
    snprintf(file, sizeof file, "%s/plain", tmp);
    FILE *fp = fopen(file, "w");
    if (fp)
        fclose(fp);
    snprintf(dir, sizeof dir, "%s/tb", file);
    mspt_error err = {0};
    mspt_tb_writer *w = mspt_tb_open(dir, &err);
    ok(!w && err.status == MSPT_ERR_RUNTIME && strstr(err.msg, file),
       "open under a regular file fails, naming it: %s", err.msg);
    mspt_tb_flush(NULL); /* no-ops, must not crash */
    mspt_tb_close(NULL);
    ok(mspt_tb_scalar(NULL, "x", 1, 0, 1.0f) == 0 &&
           mspt_tb_image(NULL, "x", 1, 0, (const unsigned char *)"", 0, 1, 1, 4) == 0,
       "a NULL writer (logging off) takes events and does nothing");
}

int main(void)
{
    char tmp[] = "/tmp/mspt-test-tfevents-XXXXXX";
    if (!mkdtemp(tmp))
        tap_bail("mkdtemp");
    test_crc();
    test_golden_reader();
    test_png();
    test_writer(tmp);
    test_errors(tmp);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        diag("could not remove %s", tmp);
    return tap_done();
}
