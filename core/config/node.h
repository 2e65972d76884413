/* The configuration tree: what a Lua experiment returns, what hparams.yaml
 * holds, and what overrides edit.  Maps keep insertion order. */
#ifndef MSPT_NODE_H
#define MSPT_NODE_H

#include <stddef.h>

typedef enum mspt_node_type {
    MSPT_NODE_NULL,
    MSPT_NODE_BOOL,
    MSPT_NODE_INT,
    MSPT_NODE_FLOAT,
    MSPT_NODE_STRING,
    MSPT_NODE_LIST,
    MSPT_NODE_MAP,
    MSPT_NODE_FUNCTION /* a Lua function (registry ref); not serialisable */
} mspt_node_type;

typedef struct mspt_node mspt_node;
struct mspt_node {
    mspt_node_type type;
    int b;
    long long i;
    double f;
    char *s;            /* STRING; FUNCTION: a description */
    int ref;            /* FUNCTION: Lua registry reference */
    size_t n, cap;      /* LIST and MAP entries */
    char **keys;        /* MAP */
    mspt_node **items;  /* LIST items, MAP values */
    size_t *hash, hcap; /* MAP of many keys: open-addressing index of keys
                           (slot holds item index + 1; 0 empty), built on
                           demand so that a big table reads in linear time */
    size_t hused;       /* slots not empty (keys and removed ones) */
};

/* Limits of every configuration tree (YAML, Lua, mspt.merge): deeper
 * nesting is refused, naming the key path. */
#define MSPT_CONFIG_MAX_DEPTH 64
/* Most nodes one tree may hold: a YAML document with its aliases expanded,
 * or a Lua experiment whose tables share subtables (an alias bomb, in YAML
 * or in Lua, is refused rather than expanded). */
#define MSPT_CONFIG_MAX_NODES 1000000

mspt_node *mspt_node_new(mspt_node_type type);
mspt_node *mspt_node_bool(int b);
mspt_node *mspt_node_int(long long i);
mspt_node *mspt_node_float(double f);
mspt_node *mspt_node_string(const char *s);
void mspt_node_free(mspt_node *n);
mspt_node *mspt_node_copy(const mspt_node *n);

/* MAP: value of key or NULL. */
mspt_node *mspt_node_get(const mspt_node *map, const char *key);
/* MAP: set key (replacing and freeing an old value). Takes ownership. */
void mspt_node_set(mspt_node *map, const char *key, mspt_node *value);
/* MAP: remove key; returns 1 if it was there. */
int mspt_node_remove(mspt_node *map, const char *key);
/* LIST: append. Takes ownership. */
void mspt_node_push(mspt_node *list, mspt_node *value);

/* Dotted path lookup ("trainer.max_epochs"; list items by index "data.1"). */
mspt_node *mspt_node_at(const mspt_node *root, const char *path);

const char *mspt_node_type_name(mspt_node_type t);
/* INT or FLOAT, and its value as a double. */
int mspt_node_is_number(const mspt_node *n);
double mspt_node_number(const mspt_node *n);

#endif
