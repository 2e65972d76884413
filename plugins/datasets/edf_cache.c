/* Window shards (see edf_cache.h).  Layout, host byte order:
 *
 *   header (64 bytes)  magic "MSPTWIN1", version, key length, window count,
 *                      channels, samples, data offset, checksums, 1.0f
 *   key                the text the shard was made for
 *   zeros              up to data offset (a multiple of 4096)
 *   windows            n × channels × samples float32 */
#include "edf_cache.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHARD_MAGIC "MSPTWIN1"
#define SHARD_VERSION 1u

typedef struct shard_header {
    char magic[8];
    uint32_t version, key_len;
    uint64_t n;
    uint32_t channels, samples;
    uint64_t data_offset;
    uint64_t data_hash;
    uint64_t head_hash; /* of this header (with head_hash 0) and the key */
    float one;          /* 1.0f: catches a shard from a host of other endianness */
    float seconds;      /* of recording the windows came from (0: unknown) */
} shard_header;

_Static_assert(sizeof(shard_header) == 64, "shard header is 64 bytes");

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Four independent multiply-rotate lanes over 32-byte blocks (the inner
 * loop of xxHash64), so that checking a shard runs at memory speed. */
uint64_t edf_hash(const void *p, size_t n, uint64_t seed)
{
    const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full;
    const uint8_t *b = p;
    uint64_t v[4] = {seed + P1 + P2, seed + P2, seed, seed - P1};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, b + i + 8 * k, 8);
            v[k] = rotl(v[k] + w * P2, 31) * P1;
        }
    uint64_t h = rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18);
    h += (uint64_t)n;
    for (; i < n; i++)
        h = rotl(h ^ (b[i] * P1), 11) * P2;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    return h;
}

static uint64_t head_hash(shard_header h, const char *key)
{
    h.head_hash = 0;
    return edf_hash(key, h.key_len, edf_hash(&h, sizeof h, 0));
}

int edf_shard_open(edf_shard *s, const char *path, const char *key, char *why,
                   size_t whylen)
{
    memset(s, 0, sizeof *s);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? 1 : fail(why, whylen, "cannot open: %m");
    struct stat st;
    if (fstat(fd, &st) || (size_t)st.st_size < sizeof(shard_header)) {
        close(fd);
        return fail(why, whylen, "truncated (%lld bytes)", (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return fail(why, whylen, "cannot map: %m");
    shard_header h;
    memcpy(&h, map, sizeof h);
    const char *stored = (const char *)map + sizeof h;
    size_t klen = strlen(key);
    int rc = 0;
    if (memcmp(h.magic, SHARD_MAGIC, 8) || h.version != SHARD_VERSION ||
        h.one != 1.0f)
        rc = fail(why, whylen, "not a version-%u shard", SHARD_VERSION);
    else if (h.key_len > size - sizeof h || h.head_hash != head_hash(h, stored))
        rc = fail(why, whylen, "header checksum mismatch (damaged)");
    else if (h.key_len != klen || memcmp(stored, key, klen))
        rc = fail(why, whylen, "made for another source file or recipe "
                  "(stale)");
    else if (h.data_offset > size || h.channels == 0 || h.samples == 0 ||
             (size - h.data_offset) / 4 / h.channels / h.samples != h.n ||
             (size - h.data_offset) % (4ull * h.channels * h.samples))
        rc = fail(why, whylen, "size %zu does not fit %llu windows (truncated)",
                  size, (unsigned long long)h.n);
    else if (edf_hash((const char *)map + h.data_offset, size - h.data_offset,
                      0) != h.data_hash)
        rc = fail(why, whylen, "window checksum mismatch (damaged)");
    if (rc) {
        munmap(map, size);
        return rc;
    }
    s->map = map;
    s->map_bytes = size;
    s->windows = (const float *)((const char *)map + h.data_offset);
    s->n = (size_t)h.n;
    s->seconds = h.seconds;
    s->channels = (int)h.channels;
    s->samples = (int)h.samples;
    return 0;
}

void edf_shard_close(edf_shard *s)
{
    if (s->map)
        munmap(s->map, s->map_bytes);
    memset(s, 0, sizeof *s);
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

int edf_shard_write(const char *path, const char *key, const float *windows,
                    size_t n, int channels, int samples, double seconds,
                    char *err, size_t errlen)
{
    shard_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, SHARD_MAGIC, 8);
    h.version = SHARD_VERSION;
    h.key_len = (uint32_t)strlen(key);
    h.n = n;
    h.channels = (uint32_t)channels;
    h.samples = (uint32_t)samples;
    h.data_offset = (sizeof h + h.key_len + 4095) / 4096 * 4096;
    size_t bytes = n * (size_t)channels * (size_t)samples * sizeof(float);
    h.data_hash = edf_hash(windows, bytes, 0);
    h.one = 1.0f;
    h.seconds = (float)seconds;
    h.head_hash = head_hash(h, key);

    /* path.tmp.<pid>: unique, as a process writes each shard from one
     * thread; edf_shard_clean removes those of processes that died */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s" EDF_SHARD_TMP "%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail(err, errlen, "cache %s: cannot create: %m", tmp);
    size_t gap = h.data_offset - sizeof h - h.key_len;
    char *zeros = calloc(1, gap ? gap : 1);
    int bad = !zeros || write_all(fd, &h, sizeof h) ||
              write_all(fd, key, h.key_len) || write_all(fd, zeros, gap) ||
              write_all(fd, windows, bytes);
    free(zeros);
    /* on disk before the rename: a crash never leaves a complete-looking
     * name over incomplete data */
    if (!bad && fsync(fd))
        bad = 1;
    if (close(fd))
        bad = 1;
    if (bad || rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return fail(err, errlen, "cache %s: cannot write: %m", path);
    }
    return 0;
}

int edf_shard_clean(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, EDF_SHARD_TMP);
        if (!t)
            continue;
        char *end;
        long pid = strtol(t + strlen(EDF_SHARD_TMP), &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* its writer is alive (or not ours to know): leave it */
        removed += unlinkat(dirfd(d), e->d_name, 0) == 0;
    }
    closedir(d);
    return removed;
}
