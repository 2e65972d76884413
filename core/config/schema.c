/* Schema validation and config accessors, see schema.h. */
#include "config/schema.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/suggest.h"
#include "config/yaml_io.h"

const char *mspt_param_type_name(mspt_param_type t)
{
    switch (t) {
    case MSPT_PARAM_INT: return "integer";
    case MSPT_PARAM_FLOAT: return "number";
    case MSPT_PARAM_BOOL: return "boolean";
    case MSPT_PARAM_STRING: return "string";
    case MSPT_PARAM_INTS: return "list of integers";
    case MSPT_PARAM_FLOATS: return "list of numbers";
    case MSPT_PARAM_STRINGS: return "list of strings";
    }
    return "?";
}

static const mspt_param *find_param(const mspt_param *const *schemas,
                                    const char *name)
{
    for (size_t s = 0; schemas[s]; s++)
        for (const mspt_param *p = schemas[s]; p->name; p++)
            if (strcmp(p->name, name) == 0)
                return p;
    return NULL;
}

/* Is `prefix.` the start of some parameter name (a nested table)? */
static int is_table_prefix(const mspt_param *const *schemas, const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t s = 0; schemas[s]; s++)
        for (const mspt_param *p = schemas[s]; p->name; p++)
            if (strncmp(p->name, prefix, n) == 0 && p->name[n] == '.')
                return 1;
    return 0;
}

static void join(char *out, size_t size, const char *a, const char *b)
{
    if (a && *a)
        snprintf(out, size, "%s.%s", a, b);
    else
        snprintf(out, size, "%s", b);
}

static void describe(const mspt_node *v, char *buf, size_t size)
{
    switch (v->type) {
    case MSPT_NODE_STRING: snprintf(buf, size, "string \"%.60s\"", v->s); break;
    case MSPT_NODE_INT: snprintf(buf, size, "integer %lld", v->i); break;
    case MSPT_NODE_FLOAT: snprintf(buf, size, "number %g", v->f); break;
    case MSPT_NODE_BOOL: snprintf(buf, size, "boolean %s", v->b ? "true" : "false"); break;
    default: snprintf(buf, size, "%s", mspt_node_type_name(v->type)); break;
    }
}

/* Coerce scalar v in place to the element type; 0 if impossible. */
static int coerce_scalar(mspt_node *v, mspt_param_type t)
{
    switch (t) {
    case MSPT_PARAM_INT:
    case MSPT_PARAM_INTS:
        if (v->type == MSPT_NODE_INT)
            return 1;
        if (v->type == MSPT_NODE_FLOAT && isfinite(v->f) && v->f == floor(v->f) &&
            fabs(v->f) < 9e15) {
            v->type = MSPT_NODE_INT;
            v->i = (long long)v->f;
            return 1;
        }
        return 0;
    case MSPT_PARAM_FLOAT:
    case MSPT_PARAM_FLOATS:
        if (v->type == MSPT_NODE_INT) {
            v->type = MSPT_NODE_FLOAT;
            v->f = (double)v->i;
        }
        return v->type == MSPT_NODE_FLOAT;
    case MSPT_PARAM_BOOL:
        return v->type == MSPT_NODE_BOOL;
    case MSPT_PARAM_STRING:
    case MSPT_PARAM_STRINGS:
        return v->type == MSPT_NODE_STRING;
    }
    return 0;
}

static int is_list_type(mspt_param_type t)
{
    return t == MSPT_PARAM_INTS || t == MSPT_PARAM_FLOATS ||
           t == MSPT_PARAM_STRINGS;
}

/* An integer parameter holds a C int (plugins read it as long long and
 * store it in an int), except a seed ("seed", "..._seed"), which is hashed
 * into 64 bits and takes any integer. */
static int is_seed(const char *name)
{
    const char *dot = strrchr(name, '.');
    const char *last = dot ? dot + 1 : name;
    size_t n = strlen(last);
    return !strcmp(last, "seed") || (n > 5 && !strcmp(last + n - 5, "_seed"));
}

static int out_of_range(const mspt_node *v, const mspt_param *p)
{
    return (p->type == MSPT_PARAM_INT || p->type == MSPT_PARAM_INTS) &&
           !is_seed(p->name) && (v->i < INT_MIN || v->i > INT_MAX);
}

#define RANGE "is out of range (an integer parameter takes -2147483648 to " \
              "2147483647)"

static int check_type(mspt_node *v, const mspt_param *p, const char *key,
                      mspt_error *err)
{
    char got[96];
    if (is_list_type(p->type)) {
        if (v->type == MSPT_NODE_MAP && v->n == 0) /* Lua's {} */
            v->type = MSPT_NODE_LIST;
        if (v->type != MSPT_NODE_LIST) {
            describe(v, got, sizeof got);
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "%s: expected a %s, got %s", key,
                                  mspt_param_type_name(p->type), got);
        }
        for (size_t i = 0; i < v->n; i++)
            if (!coerce_scalar(v->items[i], p->type)) {
                describe(v->items[i], got, sizeof got);
                return mspt_error_set(err, MSPT_ERR_CONFIG,
                                      "%s[%zu]: expected a %s, got %s", key,
                                      i + 1, mspt_param_type_name(p->type), got);
            } else if (out_of_range(v->items[i], p)) {
                return mspt_error_set(err, MSPT_ERR_CONFIG, "%s[%zu]: %lld " RANGE,
                                      key, i + 1, v->items[i]->i);
            }
        return 0;
    }
    if (!coerce_scalar(v, p->type)) {
        describe(v, got, sizeof got);
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: expected %s %s, got %s",
                              key, p->type == MSPT_PARAM_INT ? "an" : "a",
                              mspt_param_type_name(p->type), got);
    }
    if (out_of_range(v, p))
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: %lld " RANGE, key, v->i);
    return 0;
}

static mspt_node *parse_default(const mspt_param *p)
{
    if (p->type == MSPT_PARAM_STRING) {
        size_t n = strlen(p->def);
        if (n >= 2 && p->def[0] == '"' && p->def[n - 1] == '"') {
            mspt_node *s = mspt_node_string(p->def + 1);
            s->s[n - 2] = '\0';
            return s;
        }
        return mspt_node_string(p->def);
    }
    /* Lua list syntax {a, b} is YAML's [a, b]. */
    char buf[512];
    snprintf(buf, sizeof buf, "%s", p->def);
    size_t n = strlen(buf);
    if (n >= 2 && buf[0] == '{' && buf[n - 1] == '}') {
        buf[0] = '[';
        buf[n - 1] = ']';
    }
    mspt_node *v = mspt_yaml_parse(buf, p->name, NULL);
    if (!v)
        return NULL;
    if (check_type(v, p, p->name, NULL) != 0) {
        mspt_node_free(v);
        return NULL;
    }
    return v;
}

/* Set a dotted key, creating intermediate tables (in place of a missing or
 * null one).  A table given as something else is left for validation to
 * name (trainer = "x" must not become the defaults); v is then dropped. */
static void set_path(mspt_node *map, const char *dotted, mspt_node *v)
{
    const char *dot = strchr(dotted, '.');
    if (!dot) {
        mspt_node_set(map, dotted, v);
        return;
    }
    char head[256];
    snprintf(head, sizeof head, "%.*s", (int)(dot - dotted), dotted);
    mspt_node *sub = mspt_node_get(map, head);
    if (sub && sub->type != MSPT_NODE_MAP && sub->type != MSPT_NODE_NULL) {
        mspt_node_free(v);
        return;
    }
    if (!sub || sub->type != MSPT_NODE_MAP) {
        sub = mspt_node_new(MSPT_NODE_MAP);
        mspt_node_set(map, head, sub);
    }
    set_path(sub, dot + 1, v);
}

static int skipped(const char *const *skip, const char *key)
{
    for (size_t i = 0; skip && skip[i]; i++)
        if (strcmp(skip[i], key) == 0)
            return 1;
    return 0;
}

static int unknown_key(const mspt_param *const *schemas, const char *rel,
                       const char *full, mspt_error *err)
{
    mspt_suggest s;
    mspt_suggest_init(&s, rel);
    for (size_t i = 0; schemas[i]; i++)
        for (const mspt_param *p = schemas[i]; p->name; p++)
            mspt_suggest_offer(&s, p->name);
    const char *best = mspt_suggest_best(&s);
    if (best)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "%s: unknown key (did you mean '%s'?)", full, best);
    return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: unknown key", full);
}

/* Check every key present in `map`; rel is the dotted prefix inside the
 * component, path the component's own key path. */
static int check_present(mspt_node *map, const char *path, const char *rel,
                         const mspt_param *const *schemas,
                         const char *const *skip, mspt_error *err)
{
    for (size_t i = 0; i < map->n; i++) {
        char relkey[256], full[512];
        join(relkey, sizeof relkey, rel, map->keys[i]);
        join(full, sizeof full, path, relkey);
        if (!*rel && skipped(skip, map->keys[i]))
            continue;
        const mspt_param *p = find_param(schemas, relkey);
        mspt_node *v = map->items[i];
        if (p && v->type == MSPT_NODE_NULL) {
            /* null means unset: fine for an optional key; a defaulted or
             * required one is handled by the missing-key pass */
            if (!p->def || strcmp(p->def, MSPT_NO_DEFAULT) != 0) {
                mspt_node_remove(map, map->keys[i]);
                i--;
            }
        } else if (p) {
            if (check_type(v, p, full, err) != 0)
                return MSPT_ERR_CONFIG;
        } else if (is_table_prefix(schemas, relkey)) {
            if (v->type != MSPT_NODE_MAP)
                return mspt_error_set(err, MSPT_ERR_CONFIG,
                                      "%s: expected a table, got %s", full,
                                      mspt_node_type_name(v->type));
            if (check_present(v, path, relkey, schemas, NULL, err) != 0)
                return MSPT_ERR_CONFIG;
        } else {
            unknown_key(schemas, relkey, full, err);
            return MSPT_ERR_CONFIG;
        }
    }
    return 0;
}

void mspt_schema_fill_defaults(mspt_node *map, const mspt_param *const *schemas)
{
    for (size_t s = 0; schemas[s]; s++)
        for (const mspt_param *p = schemas[s]; p->name; p++) {
            if (!p->def || mspt_node_at(map, p->name))
                continue;
            /* optional keys appear as null, so that overrides can set them */
            mspt_node *v = strcmp(p->def, MSPT_NO_DEFAULT) == 0
                               ? mspt_node_new(MSPT_NODE_NULL)
                               : parse_default(p);
            if (v)
                set_path(map, p->name, v);
        }
}

int mspt_schema_validate(mspt_node *map, const char *path,
                         const mspt_param *const *schemas,
                         const char *const *skip, mspt_error *err)
{
    if (!map || map->type != MSPT_NODE_MAP)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: expected a table",
                              path);
    if (check_present(map, path, "", schemas, skip, err) != 0)
        return MSPT_ERR_CONFIG;
    for (size_t s = 0; schemas[s]; s++)
        for (const mspt_param *p = schemas[s]; p->name; p++) {
            if (mspt_node_at(map, p->name))
                continue;
            char full[512];
            join(full, sizeof full, path, p->name);
            if (!p->def)
                return mspt_error_set(err, MSPT_ERR_CONFIG,
                                      "%s: missing required key (%s: %s)", full,
                                      mspt_param_type_name(p->type),
                                      p->help ? p->help : "");
            mspt_node *v = strcmp(p->def, MSPT_NO_DEFAULT) == 0
                               ? mspt_node_new(MSPT_NODE_NULL)
                               : parse_default(p);
            if (!v)
                return mspt_error_set(err, MSPT_ERR_CONFIG,
                                      "%s: the component's default '%s' is not "
                                      "a valid %s (plugin bug)", full, p->def,
                                      mspt_param_type_name(p->type));
            set_path(map, p->name, v);
        }
    return 0;
}

/* ---- accessors (include/mspt/config.h) ---------------------------------- */

void mspt_config_init(mspt_config *cfg, const char *path, const mspt_node *map)
{
    snprintf(cfg->path, sizeof cfg->path, "%s", path);
    cfg->map = map;
    cfg->undeclared[0] = '\0';
}

const char *mspt_config_undeclared(const mspt_config *cfg)
{
    return cfg->undeclared[0] ? cfg->undeclared : NULL;
}

/* The value at key; NULL, remembering the key, when the schema does not
 * declare it (every declared key is present once defaults are filled in,
 * unset optional ones as null). */
static const mspt_node *declared(const mspt_config *cfg, const char *key)
{
    const mspt_node *v = mspt_node_at(cfg->map, key);
    if (!v && !cfg->undeclared[0]) /* the handle is the host's, not const */
        snprintf(((mspt_config *)cfg)->undeclared, sizeof cfg->undeclared, "%s", key);
    return v;
}

const char *mspt_config_path(const mspt_config *cfg) { return cfg->path; }

int mspt_config_has(const mspt_config *cfg, const char *key)
{
    const mspt_node *v = mspt_node_at(cfg->map, key);
    return v && v->type != MSPT_NODE_NULL;
}

static const mspt_node *lookup(const mspt_config *cfg, const char *key,
                               mspt_node_type want)
{
    const mspt_node *v = declared(cfg, key);
    if (!v) /* reported as an error when the component is built */
        return NULL;
    if (v->type == want)
        return v;
    if (want == MSPT_NODE_FLOAT && v->type == MSPT_NODE_INT)
        return v;
    /* A declared key read as another type, or an unset optional one read
     * without mspt_config_has: a plugin bug; say so, and read it as zero. */
    if (v->type != MSPT_NODE_NULL || want != MSPT_NODE_STRING)
        fprintf(stderr, "mspt: warning: %s.%s read as %s but %s\n", cfg->path,
                key, mspt_node_type_name(want),
                v->type != MSPT_NODE_NULL ? mspt_node_type_name(v->type)
                                          : "it is not set");
    return NULL;
}

long long mspt_config_int(const mspt_config *cfg, const char *key)
{
    const mspt_node *v = lookup(cfg, key, MSPT_NODE_INT);
    return v ? v->i : 0;
}

double mspt_config_float(const mspt_config *cfg, const char *key)
{
    const mspt_node *v = lookup(cfg, key, MSPT_NODE_FLOAT);
    return v ? mspt_node_number(v) : 0.0;
}

int mspt_config_bool(const mspt_config *cfg, const char *key)
{
    const mspt_node *v = lookup(cfg, key, MSPT_NODE_BOOL);
    return v ? v->b : 0;
}

const char *mspt_config_string(const mspt_config *cfg, const char *key)
{
    const mspt_node *v = declared(cfg, key);
    return v && v->type == MSPT_NODE_STRING ? v->s : NULL;
}

size_t mspt_config_len(const mspt_config *cfg, const char *key)
{
    const mspt_node *v = declared(cfg, key);
    return v && v->type == MSPT_NODE_LIST ? v->n : 0;
}

static const mspt_node *item(const mspt_config *cfg, const char *key, size_t i)
{
    const mspt_node *v = declared(cfg, key);
    return v && v->type == MSPT_NODE_LIST && i < v->n ? v->items[i] : NULL;
}

long long mspt_config_int_at(const mspt_config *cfg, const char *key, size_t i)
{
    const mspt_node *v = item(cfg, key, i);
    return v && v->type == MSPT_NODE_INT ? v->i : 0;
}

double mspt_config_float_at(const mspt_config *cfg, const char *key, size_t i)
{
    const mspt_node *v = item(cfg, key, i);
    return v && mspt_node_is_number(v) ? mspt_node_number(v) : 0.0;
}

const char *mspt_config_string_at(const mspt_config *cfg, const char *key,
                                  size_t i)
{
    const mspt_node *v = item(cfg, key, i);
    return v && v->type == MSPT_NODE_STRING ? v->s : NULL;
}
