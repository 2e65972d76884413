/* Bump allocator, see arena.h. */
#include "arena.h"

#include <stdlib.h>

#define ARENA_ALIGN 64
#define ARENA_MIN_CHUNK (1u << 20)

struct mspt_arena_chunk {
    mspt_arena_chunk *next; /* older chunk */
    size_t size, off;
    char *mem;
};

static mspt_arena_chunk *chunk_new(size_t size)
{
    mspt_arena_chunk *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    c->mem = aligned_alloc(ARENA_ALIGN, size);
    if (!c->mem) {
        free(c);
        return NULL;
    }
    c->size = size;
    c->off = 0;
    c->next = NULL;
    return c;
}

void mspt_arena_init(mspt_arena *a)
{
    a->head = NULL;
    a->used = a->reserved = 0;
}

void mspt_arena_release(mspt_arena *a)
{
    mspt_arena_chunk *c = a->head;
    while (c) {
        mspt_arena_chunk *next = c->next;
        free(c->mem);
        free(c);
        c = next;
    }
    mspt_arena_init(a);
}

void *mspt_arena_alloc(mspt_arena *a, size_t bytes)
{
    size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need == 0)
        need = ARENA_ALIGN;
    mspt_arena_chunk *c = a->head;
    if (!c || c->size - c->off < need) {
        size_t size = c ? 2 * c->size : ARENA_MIN_CHUNK;
        if (size < need)
            size = need;
        mspt_arena_chunk *fresh = chunk_new(size);
        if (!fresh)
            return NULL;
        fresh->next = c;
        a->head = c = fresh;
        a->reserved += size;
    }
    void *p = c->mem + c->off;
    c->off += need;
    a->used += need;
    return p;
}

void mspt_arena_reset(mspt_arena *a)
{
    /* Several chunks mean this step needed more than one: replace them by a
     * single chunk large enough for the whole step. */
    if (a->head && a->head->next) {
        size_t total = a->reserved;
        mspt_arena_release(a);
        mspt_arena_chunk *c = chunk_new(total);
        if (c) {
            a->head = c;
            a->reserved = total;
        }
    } else if (a->head) {
        a->head->off = 0;
    }
    a->used = 0;
}
