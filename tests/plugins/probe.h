/* What tests/plugins/probe.c records of each call of losses.probe_l1. */
#ifndef MSPT_TEST_PROBE_H
#define MSPT_TEST_PROBE_H

#include <stddef.h>
#include <stdint.h>

typedef struct probe_call {
    size_t n;      /* elements (B, C, T) */
    float value;   /* the loss returned */
    int has_mask;
    uint8_t *mask; /* n bytes (valid when has_mask) */
    float *pred, *target;
} probe_call;

/* The calls recorded since the last reset (reset: forget them first). */
typedef const probe_call *(*probe_calls_fn)(size_t *n, int reset);

#endif
