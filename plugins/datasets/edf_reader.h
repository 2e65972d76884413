/* EDF, EDF+ and BDF files: the header, the samples of one signal as
 * physical values, and the contiguous runs of records of an EDF+D file.
 *
 * The parser works on the whole file in memory (a mapping), checks every
 * header field it relies on and says which one is wrong: messages read
 * "<file>: <field>: <problem>".  No libmspt dependency, so that the fuzz
 * target (fuzz/fuzz_edf.c) links this file alone. */
#ifndef MSPT_EDF_READER_H
#define MSPT_EDF_READER_H

#include <stddef.h>
#include <stdint.h>

enum { EDF_MAX_SIGNALS = 4096, EDF_ERR_LEN = 1024 };

/* Highest sample rate accepted; above it a header is taken as corrupt.
 * Data signals below EDF_MIN_RATE are refused as absurd for EEG when
 * picked (edf_prep), and records longer than EDF_MAX_DURATION anywhere. */
#define EDF_MAX_RATE 100000.0
#define EDF_MIN_RATE 1.0
#define EDF_MAX_DURATION 86400.0

typedef struct edf_signal {
    char label[17];    /* trimmed, non-printable bytes replaced by '?' */
    char unit[9];      /* physical dimension, e.g. "uV" (sanitized) */
    double to_uv;      /* physical unit -> microvolts; 0: not a voltage */
    double phys_min, phys_max;
    long dig_min, dig_max;
    long samples;      /* per data record */
    double cal, offset; /* physical = digital·cal + offset (as MNE) */
    size_t byte_offset; /* of this signal's samples within a record */
    int annotation;    /* an "EDF Annotations" signal: not data */
} edf_signal;

typedef struct edf_file {
    const uint8_t *data; /* the whole file; not owned */
    size_t size;
    const char *name;    /* for messages; not owned */
    int bdf;             /* 3-byte samples (BioSemi) instead of 2 */
    int plus;            /* EDF+ / BDF+ */
    int discontinuous;   /* EDF+D: records may have gaps */
    int nsignals;
    long long nrecords;
    double duration;     /* seconds per data record */
    size_t header_bytes, record_bytes;
    edf_signal *sig;     /* nsignals entries */
    int annotations;     /* index of the first annotation signal, or -1 */
    /* What was repaired as MNE does (a record count from the file size, a
     * trailing partial record dropped): lines "<file>: ...", '\n'-separated,
     * empty if none. */
    char warning[EDF_ERR_LEN];
} edf_file;

/* A run of records without gaps, starting onset seconds after the start. */
typedef struct edf_segment {
    long long first, count;
    double onset;
} edf_segment;

/* Parse and check the header of data[0..size).  0, or -1 with err filled. */
int edf_parse(edf_file *f, const uint8_t *data, size_t size, const char *name,
              char *err, size_t errlen);
void edf_free(edf_file *f);

/* Samples per second of signal s. */
double edf_rate(const edf_file *f, int s);

/* out (count·samples) = physical values of signal s over records
 * [first, first + count), times scale. */
void edf_read(const edf_file *f, int s, long long first, long long count,
              double scale, float *out);
/* The same into out[0], out[stride], out[2 stride], ... */
void edf_read_strided(const edf_file *f, int s, long long first,
                      long long count, double scale, float *out,
                      size_t stride);

/* The file's contiguous runs of records (one unless EDF+D, whose record
 * onsets come from the time-keeping annotations).  *out is malloc'd. */
int edf_segments(const edf_file *f, edf_segment **out, size_t *n, char *err,
                 size_t errlen);

#endif
