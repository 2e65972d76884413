/* Bump allocator for one training step's activations.  Reset keeps the
 * memory: after the first step has grown it, reset coalesces the chunks into
 * one so later steps of the same shape never call malloc. */
#ifndef MSPT_ARENA_H
#define MSPT_ARENA_H

#include <stddef.h>

typedef struct mspt_arena_chunk mspt_arena_chunk;

typedef struct mspt_arena {
    mspt_arena_chunk *head; /* current chunk (others linked behind it) */
    size_t used;            /* bytes handed out since the last reset */
    size_t reserved;        /* bytes held in all chunks */
} mspt_arena;

void mspt_arena_init(mspt_arena *a);
void mspt_arena_release(mspt_arena *a);
/* 64-byte aligned block, NULL if memory is exhausted. */
void *mspt_arena_alloc(mspt_arena *a, size_t bytes);
void mspt_arena_reset(mspt_arena *a);

#endif
