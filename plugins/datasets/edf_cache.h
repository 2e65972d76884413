/* Shards of preprocessed windows on disk, memory-mapped when read.
 *
 * A shard holds the windows of one source file for one recipe.  Its header
 * stores the key (source identity and recipe, as text) and checksums of
 * itself and of the windows; opening a shard compares the key and verifies
 * both checksums, so a stale, truncated or damaged shard is reported (and
 * rebuilt by the caller), never used.  Writes go to a temporary file that
 * is renamed into place, so readers never see a half-written shard. */
#ifndef MSPT_EDF_CACHE_H
#define MSPT_EDF_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct edf_shard {
    void *map;
    size_t map_bytes;
    const float *windows; /* n × channels × samples */
    size_t n;
    int channels, samples;
    double seconds; /* of recording behind the windows; 0 if not recorded */
} edf_shard;

/* Suffix of a shard being written: "<shard>.tmp.<pid>". */
#define EDF_SHARD_TMP ".tmp."


/* 64-bit checksum of p[0..n) (a fast multiply-rotate hash). */
uint64_t edf_hash(const void *p, size_t n, uint64_t seed);

/* Map the shard at path if its key is `key` and it is intact: 0; 1 when
 * absent; -1 when stale or damaged, with the reason in why. */
int edf_shard_open(edf_shard *s, const char *path, const char *key, char *why,
                   size_t whylen);
void edf_shard_close(edf_shard *s);

/* Write n windows of (channels, samples) from `seconds` of recording under
 * key: to a temporary name, fsync'd, renamed.  0, or -1 with err. */
int edf_shard_write(const char *path, const char *key, const float *windows,
                    size_t n, int channels, int samples, double seconds,
                    char *err, size_t errlen);

/* Remove the temporary files in dir left by writers that died (a SIGKILL
 * during a write); returns how many. */
int edf_shard_clean(const char *dir);

#endif
