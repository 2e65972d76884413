/* Configuration tree, see node.h. */
#include "config/node.h"

#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size);
    if (!q)
        abort(); /* out of memory while building a config: nothing to save */
    return q;
}

mspt_node *mspt_node_new(mspt_node_type type)
{
    mspt_node *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    n->type = type;
    n->ref = -1;
    return n;
}

mspt_node *mspt_node_bool(int b)
{
    mspt_node *n = mspt_node_new(MSPT_NODE_BOOL);
    n->b = !!b;
    return n;
}

mspt_node *mspt_node_int(long long i)
{
    mspt_node *n = mspt_node_new(MSPT_NODE_INT);
    n->i = i;
    return n;
}

mspt_node *mspt_node_float(double f)
{
    mspt_node *n = mspt_node_new(MSPT_NODE_FLOAT);
    n->f = f;
    return n;
}

mspt_node *mspt_node_string(const char *s)
{
    mspt_node *n = mspt_node_new(MSPT_NODE_STRING);
    n->s = strdup(s);
    if (!n->s)
        abort();
    return n;
}

void mspt_node_free(mspt_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        mspt_node_free(n->items[i]);
        if (n->keys)
            free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->hash);
    free(n->s);
    free(n);
}

mspt_node *mspt_node_copy(const mspt_node *src)
{
    if (!src)
        return NULL;
    mspt_node *n = mspt_node_new(src->type);
    n->b = src->b;
    n->i = src->i;
    n->f = src->f;
    n->ref = src->ref;
    if (src->s)
        n->s = strdup(src->s);
    for (size_t i = 0; i < src->n; i++) {
        if (src->type == MSPT_NODE_MAP)
            mspt_node_set(n, src->keys[i], mspt_node_copy(src->items[i]));
        else
            mspt_node_push(n, mspt_node_copy(src->items[i]));
    }
    return n;
}

static void grow(mspt_node *n)
{
    if (n->n < n->cap)
        return;
    n->cap = n->cap ? 2 * n->cap : 8;
    n->items = xrealloc(n->items, n->cap * sizeof *n->items);
    if (n->type == MSPT_NODE_MAP)
        n->keys = xrealloc(n->keys, n->cap * sizeof *n->keys);
}

/* Small maps are searched; from HASH_MIN keys on an index is kept. */
#define HASH_MIN 16

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* A slot whose key was removed: probing goes on past it. */
#define GONE ((size_t)-1)

static void hash_insert(mspt_node *map, size_t i)
{
    size_t mask = map->hcap - 1, h = hash_str(map->keys[i]) & mask;
    while (map->hash[h] && map->hash[h] != GONE)
        h = (h + 1) & mask;
    map->hused += !map->hash[h];
    map->hash[h] = i + 1;
}

static void hash_build(mspt_node *map)
{
    size_t cap = 64;
    while (cap < 2 * map->n)
        cap *= 2;
    free(map->hash);
    map->hash = calloc(cap, sizeof *map->hash);
    if (!map->hash)
        abort();
    map->hcap = cap;
    map->hused = 0;
    for (size_t i = 0; i < map->n; i++)
        hash_insert(map, i);
}

/* Index of key in map, or -1. */
static long find(const mspt_node *cmap, const char *key)
{
    if (cmap->n < HASH_MIN) {
        for (size_t i = 0; i < cmap->n; i++)
            if (strcmp(cmap->keys[i], key) == 0)
                return (long)i;
        return -1;
    }
    mspt_node *map = (mspt_node *)cmap; /* the index is a cache */
    if (!map->hash)
        hash_build(map);
    size_t mask = map->hcap - 1, h = hash_str(key) & mask;
    for (; map->hash[h]; h = (h + 1) & mask)
        if (map->hash[h] != GONE &&
            strcmp(map->keys[map->hash[h] - 1], key) == 0)
            return (long)map->hash[h] - 1;
    return -1;
}

mspt_node *mspt_node_get(const mspt_node *map, const char *key)
{
    if (!map || map->type != MSPT_NODE_MAP)
        return NULL;
    long i = find(map, key);
    return i < 0 ? NULL : map->items[i];
}

void mspt_node_set(mspt_node *map, const char *key, mspt_node *value)
{
    long i = find(map, key);
    if (i >= 0) {
        mspt_node_free(map->items[i]);
        map->items[i] = value;
        return;
    }
    grow(map);
    map->keys[map->n] = strdup(key);
    if (!map->keys[map->n])
        abort();
    map->items[map->n++] = value;
    if (map->hash) {
        if (2 * (map->hused + 1) > map->hcap) /* keeps empty slots: probes end */
            hash_build(map);
        else
            hash_insert(map, map->n - 1);
    }
}

int mspt_node_remove(mspt_node *map, const char *key)
{
    long found = find(map, key);
    if (found < 0)
        return 0;
    size_t i = (size_t)found;
    mspt_node_free(map->items[i]);
    free(map->keys[i]);
    memmove(map->items + i, map->items + i + 1,
            (map->n - i - 1) * sizeof *map->items);
    memmove(map->keys + i, map->keys + i + 1,
            (map->n - i - 1) * sizeof *map->keys);
    map->n--;
    if (map->hash) { /* the key's slot is gone, later items moved down */
        for (size_t h = 0; h < map->hcap; h++)
            if (map->hash[h] == i + 1)
                map->hash[h] = GONE;
            else if (map->hash[h] != GONE && map->hash[h] > i + 1)
                map->hash[h]--;
        if (map->n < HASH_MIN) {
            free(map->hash);
            map->hash = NULL;
            map->hcap = 0;
        }
    }
    return 1;
}

void mspt_node_push(mspt_node *list, mspt_node *value)
{
    grow(list);
    list->items[list->n++] = value;
}

mspt_node *mspt_node_at(const mspt_node *root, const char *path)
{
    char buf[512];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return NULL;
    memcpy(buf, path, len + 1);
    const mspt_node *cur = root;
    char *save = NULL;
    for (char *part = strtok_r(buf, ".", &save); part && cur;
         part = strtok_r(NULL, ".", &save)) {
        if (cur->type == MSPT_NODE_MAP) {
            cur = mspt_node_get(cur, part);
        } else if (cur->type == MSPT_NODE_LIST) {
            char *end;
            long idx = strtol(part, &end, 10);
            cur = (*end || idx < 0 || (size_t)idx >= cur->n) ? NULL
                                                            : cur->items[idx];
        } else {
            return NULL;
        }
    }
    return (mspt_node *)cur;
}

const char *mspt_node_type_name(mspt_node_type t)
{
    static const char *names[] = {"null",   "boolean", "integer", "number",
                                  "string", "list",    "table",   "function"};
    return names[t];
}

int mspt_node_is_number(const mspt_node *n)
{
    return n && (n->type == MSPT_NODE_INT || n->type == MSPT_NODE_FLOAT);
}

double mspt_node_number(const mspt_node *n)
{
    return n->type == MSPT_NODE_INT ? (double)n->i : n->f;
}
