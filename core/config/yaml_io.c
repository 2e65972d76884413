/* YAML reading and writing of configuration trees, see yaml_io.h. */
#include "config/yaml_io.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "io/files.h"

/* ---- reading ------------------------------------------------------------ */

static int full_match_int(const char *s, long long *out)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    if (!*p)
        return 0;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return 0;
    errno = 0;
    char *end;
    *out = strtoll(s, &end, 10);
    return errno == 0 && *end == '\0';
}

static int full_match_float(const char *s, double *out)
{
    if (!strcmp(s, ".inf") || !strcmp(s, ".Inf") || !strcmp(s, "+.inf")) {
        *out = INFINITY;
        return 1;
    }
    if (!strcmp(s, "-.inf") || !strcmp(s, "-.Inf")) {
        *out = -INFINITY;
        return 1;
    }
    if (!strcmp(s, ".nan") || !strcmp(s, ".NaN")) {
        *out = NAN;
        return 1;
    }
    /* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    int digits = 0;
    while (*p >= '0' && *p <= '9')
        p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++, digits++;
    }
    if (!digits)
        return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p)
        return 0;
    *out = strtod(s, NULL);
    return 1;
}

mspt_node *mspt_yaml_resolve_plain(const char *s)
{
    long long i;
    double f;
    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
        !strcmp(s, "NULL"))
        return mspt_node_new(MSPT_NODE_NULL);
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return mspt_node_bool(1);
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return mspt_node_bool(0);
    if (full_match_int(s, &i))
        return mspt_node_int(i);
    if (full_match_float(s, &f))
        return mspt_node_float(f);
    return mspt_node_string(s);
}

/* Composing a tree from libyaml's events rather than with yaml_parser_load:
 * nesting is refused as soon as it passes MSPT_CONFIG_MAX_DEPTH (before the
 * scanner has read the rest of a 100,000-deep flow collection, which costs
 * it quadratic time), and an alias is expanded by copying its anchored
 * node only while the document stays within MSPT_CONFIG_MAX_NODES nodes (an
 * alias bomb is refused in microseconds, not expanded until memory ends).
 * An anchor is defined once its node is complete, so an alias inside its
 * own anchor is undefined, never a cycle. */

typedef struct yanchor {
    char *name;
    const mspt_node *node; /* in the tree being built */
    size_t count;          /* nodes in it */
    int height;            /* levels of nesting in it (0: a scalar) */
} yanchor;

typedef struct yframe {
    mspt_node *node; /* LIST or MAP, already attached */
    char *key;       /* MAP: key read, value not yet */
    char *anchor;    /* its anchor, defined when it ends */
    size_t first;    /* node count when it started */
    int height;      /* levels of containers below it */
} yframe;

typedef struct ycompose {
    const char *what;
    mspt_error *err;
    mspt_node *root;
    yframe stack[MSPT_CONFIG_MAX_DEPTH];
    int depth;
    size_t nodes;
    yanchor *anchors;
    size_t nanchors, capanchors;
} ycompose;

static int yfail(ycompose *c, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int yfail(ycompose *c, const yaml_mark_t *m, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mspt_error_set(c->err, MSPT_ERR_CONFIG, "%s:%zu:%zu: %s", c->what,
                   m->line + 1, m->column + 1, msg);
    return -1;
}

static int yanchor_add(ycompose *c, const char *name, const mspt_node *n,
                       size_t count, int height)
{
    if (c->nanchors == c->capanchors) {
        size_t cap = c->capanchors ? 2 * c->capanchors : 16;
        yanchor *a = realloc(c->anchors, cap * sizeof *a);
        if (!a)
            abort(); /* as node.c: out of memory while reading a config */
        c->anchors = a;
        c->capanchors = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        abort();
    c->anchors[c->nanchors++] = (yanchor){copy, n, count, height};
    return 0;
}

/* A name may be anchored again: the latest definition counts. */
static const yanchor *yanchor_find(const ycompose *c, const char *name)
{
    for (size_t i = c->nanchors; i-- > 0;)
        if (!strcmp(c->anchors[i].name, name))
            return &c->anchors[i];
    return NULL;
}

static int ycount(ycompose *c, size_t more, const yaml_mark_t *m)
{
    if (more > MSPT_CONFIG_MAX_NODES - c->nodes)
        return yfail(c, m, "the document expands to more than %d nodes "
                     "(aliases repeating aliases?)", MSPT_CONFIG_MAX_NODES);
    c->nodes += more;
    return 0;
}

/* A value h levels high (containers, itself included) was placed: the
 * open containers are that much higher. */
static void yheight(ycompose *c, int h)
{
    for (int d = c->depth - 1; d >= 0; d--, h++)
        if (c->stack[d].height < h)
            c->stack[d].height = h;
}

/* Place a finished value (or a new container) at the current position. */
static int yattach(ycompose *c, mspt_node *v, const yaml_mark_t *m)
{
    if (c->depth == 0) {
        if (c->root) { /* cannot happen with one document; be safe */
            mspt_node_free(v);
            return yfail(c, m, "more than one root value");
        }
        c->root = v;
        return 0;
    }
    yframe *f = &c->stack[c->depth - 1];
    if (f->node->type == MSPT_NODE_LIST) {
        mspt_node_push(f->node, v);
        return 0;
    }
    mspt_node_set(f->node, f->key, v);
    free(f->key);
    f->key = NULL;
    return 0;
}

/* In a mapping waiting for a key? */
static int ywants_key(const ycompose *c)
{
    return c->depth > 0 && c->stack[c->depth - 1].node->type == MSPT_NODE_MAP &&
           !c->stack[c->depth - 1].key;
}

static int ykey(ycompose *c, const char *key, const yaml_mark_t *m)
{
    yframe *f = &c->stack[c->depth - 1];
    if (mspt_node_get(f->node, key))
        return yfail(c, m, "duplicate key '%.200s'", key);
    f->key = strdup(key);
    if (!f->key)
        abort();
    return 0;
}

static int yscalar(ycompose *c, const yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    const yaml_mark_t *m = &ev->start_mark;
    if (ywants_key(c))
        return ykey(c, text, m);
    if (tag && !strcmp(tag, "!lua")) {
        mspt_error_set(c->err, MSPT_ERR_CONFIG,
                       "%s:%zu: value '%.200s' is a Lua function, which YAML "
                       "cannot carry; run the Lua experiment instead",
                       c->what, m->line + 1, text);
        return -1;
    }
    if (ycount(c, 1, m))
        return -1;
    mspt_node *v = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
                       ? mspt_yaml_resolve_plain(text)
                       : mspt_node_string(text);
    const char *anchor = (const char *)ev->data.scalar.anchor;
    if (anchor)
        yanchor_add(c, anchor, v, 1, 0);
    return yattach(c, v, m);
}

static int yalias(ycompose *c, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    const yaml_mark_t *m = &ev->start_mark;
    const yanchor *a = yanchor_find(c, name);
    if (!a)
        return yfail(c, m, "alias '*%.100s' names no complete anchor (undefined, "
                     "or used inside its own anchor)", name);
    if (ywants_key(c)) {
        if (a->node->type != MSPT_NODE_STRING)
            return yfail(c, m, "mapping keys must be plain strings");
        return ykey(c, a->node->s, m);
    }
    if (c->depth + a->height > MSPT_CONFIG_MAX_DEPTH)
        return yfail(c, m, "alias '*%.100s' makes values nested deeper than %d "
                     "levels", name, MSPT_CONFIG_MAX_DEPTH);
    if (ycount(c, a->count, m))
        return -1;
    yheight(c, a->height);
    return yattach(c, mspt_node_copy(a->node), m);
}

static int ystart(ycompose *c, const yaml_event_t *ev, mspt_node_type type,
                  const yaml_char_t *anchor)
{
    const yaml_mark_t *m = &ev->start_mark;
    if (ywants_key(c))
        return yfail(c, m, "mapping keys must be plain strings");
    if (c->depth == MSPT_CONFIG_MAX_DEPTH)
        return yfail(c, m, "values nested deeper than %d levels",
                     MSPT_CONFIG_MAX_DEPTH);
    if (ycount(c, 1, m))
        return -1;
    mspt_node *n = mspt_node_new(type);
    if (yattach(c, n, m))
        return -1;
    yheight(c, 1);
    char *a = NULL;
    if (anchor && !(a = strdup((const char *)anchor)))
        abort();
    c->stack[c->depth++] = (yframe){n, NULL, a, c->nodes - 1, 0};
    return 0;
}

static void yend(ycompose *c)
{
    yframe *f = &c->stack[--c->depth];
    if (f->anchor)
        yanchor_add(c, f->anchor, f->node, c->nodes - f->first, f->height + 1);
    free(f->anchor);
    free(f->key);
}

static void ycompose_free(ycompose *c)
{
    for (int d = 0; d < c->depth; d++) {
        free(c->stack[d].anchor);
        free(c->stack[d].key);
    }
    for (size_t i = 0; i < c->nanchors; i++)
        free(c->anchors[i].name);
    free(c->anchors);
}

static mspt_node *load_with(yaml_parser_t *parser, const char *what,
                            mspt_error *err)
{
    ycompose c = {.what = what, .err = err};
    int done = 0, failed = 0;
    while (!done && !failed) {
        yaml_event_t ev;
        if (!yaml_parser_parse(parser, &ev)) {
            mspt_error_set(err, MSPT_ERR_CONFIG, "%s:%zu:%zu: %s", what,
                           parser->problem_mark.line + 1,
                           parser->problem_mark.column + 1,
                           parser->problem ? parser->problem
                                           : "YAML syntax error");
            failed = 1;
            break;
        }
        switch (ev.type) {
        case YAML_SCALAR_EVENT: failed = yscalar(&c, &ev) != 0; break;
        case YAML_ALIAS_EVENT: failed = yalias(&c, &ev) != 0; break;
        case YAML_SEQUENCE_START_EVENT:
            failed = ystart(&c, &ev, MSPT_NODE_LIST,
                            ev.data.sequence_start.anchor) != 0;
            break;
        case YAML_MAPPING_START_EVENT:
            failed = ystart(&c, &ev, MSPT_NODE_MAP,
                            ev.data.mapping_start.anchor) != 0;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: yend(&c); break;
        case YAML_DOCUMENT_END_EVENT: /* the first document is the file's */
        case YAML_STREAM_END_EVENT: done = 1; break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    ycompose_free(&c);
    if (failed) {
        mspt_node_free(c.root);
        return NULL;
    }
    return c.root ? c.root : mspt_node_new(MSPT_NODE_NULL);
}

mspt_node *mspt_yaml_load(const char *path, mspt_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        mspt_error_set(err, MSPT_ERR_CONFIG, "%s: %s", path, strerror(errno));
        return NULL;
    }
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, fp);
    mspt_node *n = load_with(&parser, path, err);
    yaml_parser_delete(&parser);
    fclose(fp);
    return n;
}

mspt_node *mspt_yaml_parse(const char *text, const char *what,
                           mspt_error *err)
{
    return mspt_yaml_parse_bytes(text, strlen(text), what, err);
}

mspt_node *mspt_yaml_parse_bytes(const void *data, size_t size,
                                 const char *what, mspt_error *err)
{
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, data, size);
    mspt_node *n = load_with(&parser, what, err);
    yaml_parser_delete(&parser);
    return n;
}

/* ---- writing ------------------------------------------------------------ */

/* Shortest text that reads back as the same double, always with a '.' in
 * the mantissa so YAML 1.1 readers (PyYAML) also see a float. */
static void format_float(double f, char *buf, size_t size)
{
    if (isnan(f)) {
        snprintf(buf, size, ".nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, size, f > 0 ? ".inf" : "-.inf");
        return;
    }
    char tmp[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, f);
        if (strtod(tmp, NULL) == f)
            break;
    }
    char *e = strpbrk(tmp, "eE");
    if (!strchr(tmp, '.')) {
        if (e) {
            char exp[32];
            snprintf(exp, sizeof exp, "%s", e);
            *e = '\0';
            if (snprintf(buf, size, "%s.0%s", tmp, exp) >= (int)size)
                buf[0] = '\0';
            return;
        }
        if (snprintf(buf, size, "%s.0", tmp) >= (int)size)
            buf[0] = '\0';
        return;
    }
    snprintf(buf, size, "%s", tmp);
}

static int emit(yaml_emitter_t *em, yaml_event_t *ev)
{
    return yaml_emitter_emit(em, ev);
}

static int emit_scalar(yaml_emitter_t *em, const char *tag, const char *text,
                       yaml_scalar_style_t style)
{
    yaml_event_t ev;
    int plain_ok = style == YAML_PLAIN_SCALAR_STYLE;
    if (!yaml_scalar_event_initialize(&ev, NULL, (yaml_char_t *)tag,
                                      (yaml_char_t *)text, (int)strlen(text),
                                      !tag && plain_ok, !tag, style))
        return 0;
    return emit(em, &ev);
}

static int is_scalar_list(const mspt_node *n)
{
    for (size_t i = 0; i < n->n; i++)
        if (n->items[i]->type == MSPT_NODE_LIST ||
            n->items[i]->type == MSPT_NODE_MAP)
            return 0;
    return 1;
}

static int emit_node(yaml_emitter_t *em, const mspt_node *n)
{
    yaml_event_t ev;
    char buf[64];
    switch (n->type) {
    case MSPT_NODE_NULL:
        return emit_scalar(em, NULL, "null", YAML_PLAIN_SCALAR_STYLE);
    case MSPT_NODE_BOOL:
        return emit_scalar(em, NULL, n->b ? "true" : "false",
                           YAML_PLAIN_SCALAR_STYLE);
    case MSPT_NODE_INT:
        snprintf(buf, sizeof buf, "%lld", n->i);
        return emit_scalar(em, NULL, buf, YAML_PLAIN_SCALAR_STYLE);
    case MSPT_NODE_FLOAT:
        format_float(n->f, buf, sizeof buf);
        return emit_scalar(em, NULL, buf, YAML_PLAIN_SCALAR_STYLE);
    case MSPT_NODE_STRING: {
        /* Quote strings that would read back as another type. */
        mspt_node *as_plain = mspt_yaml_resolve_plain(n->s);
        int quote = as_plain->type != MSPT_NODE_STRING;
        mspt_node_free(as_plain);
        return emit_scalar(em, NULL, n->s,
                           quote ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                 : YAML_PLAIN_SCALAR_STYLE);
    }
    case MSPT_NODE_FUNCTION:
        return emit_scalar(em, "!lua", n->s ? n->s : "function",
                           YAML_DOUBLE_QUOTED_SCALAR_STYLE);
    case MSPT_NODE_LIST:
        if (!yaml_sequence_start_event_initialize(
                &ev, NULL, NULL, 1,
                is_scalar_list(n) ? YAML_FLOW_SEQUENCE_STYLE
                                  : YAML_BLOCK_SEQUENCE_STYLE) ||
            !emit(em, &ev))
            return 0;
        for (size_t i = 0; i < n->n; i++)
            if (!emit_node(em, n->items[i]))
                return 0;
        return yaml_sequence_end_event_initialize(&ev) && emit(em, &ev);
    case MSPT_NODE_MAP:
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                                 n->n ? YAML_BLOCK_MAPPING_STYLE
                                                      : YAML_FLOW_MAPPING_STYLE) ||
            !emit(em, &ev))
            return 0;
        for (size_t i = 0; i < n->n; i++) {
            if (!emit_scalar(em, NULL, n->keys[i], YAML_PLAIN_SCALAR_STYLE) ||
                !emit_node(em, n->items[i]))
                return 0;
        }
        return yaml_mapping_end_event_initialize(&ev) && emit(em, &ev);
    }
    return 0;
}

int mspt_yaml_write(const mspt_node *root, FILE *fp, mspt_error *err)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    yaml_emitter_initialize(&em);
    yaml_emitter_set_output_file(&em, fp);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, 100);
    int okay = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
               emit(&em, &ev) &&
               yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
               emit(&em, &ev) && emit_node(&em, root) &&
               yaml_document_end_event_initialize(&ev, 1) && emit(&em, &ev) &&
               yaml_stream_end_event_initialize(&ev) && emit(&em, &ev);
    if (!okay)
        mspt_error_set(err, MSPT_ERR_RUNTIME, "writing YAML: %s",
                       em.problem ? em.problem : "emitter error");
    yaml_emitter_delete(&em);
    return okay ? 0 : -1;
}

static int write_cb(FILE *fp, void *ud, mspt_error *err)
{
    return mspt_yaml_write(ud, fp, err);
}

int mspt_yaml_save(const mspt_node *root, const char *path, mspt_error *err)
{
    return mspt_atomic_write(path, write_cb, (void *)root, err);
}
