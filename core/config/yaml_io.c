/* YAML reading and writing of configuration trees, see yaml_io.h. */
#include "config/yaml_io.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
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

static mspt_node *convert(yaml_document_t *doc, yaml_node_t *y,
                          const char *what, int depth, mspt_error *err)
{
    if (depth > 64) {
        mspt_error_set(err, MSPT_ERR_CONFIG, "%s: nesting too deep", what);
        return NULL;
    }
    switch (y->type) {
    case YAML_SCALAR_NODE: {
        const char *text = (const char *)y->data.scalar.value;
        const char *tag = (const char *)y->tag;
        if (tag && !strcmp(tag, "!lua")) {
            mspt_error_set(err, MSPT_ERR_CONFIG,
                           "%s:%zu: value '%s' is a Lua function, which YAML "
                           "cannot carry; run the Lua experiment instead",
                           what, y->start_mark.line + 1, text);
            return NULL;
        }
        if (y->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
            return mspt_yaml_resolve_plain(text);
        return mspt_node_string(text);
    }
    case YAML_SEQUENCE_NODE: {
        mspt_node *list = mspt_node_new(MSPT_NODE_LIST);
        for (yaml_node_item_t *it = y->data.sequence.items.start;
             it < y->data.sequence.items.top; it++) {
            mspt_node *v = convert(doc, yaml_document_get_node(doc, *it), what,
                                   depth + 1, err);
            if (!v) {
                mspt_node_free(list);
                return NULL;
            }
            mspt_node_push(list, v);
        }
        return list;
    }
    case YAML_MAPPING_NODE: {
        mspt_node *map = mspt_node_new(MSPT_NODE_MAP);
        for (yaml_node_pair_t *p = y->data.mapping.pairs.start;
             p < y->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            if (k->type != YAML_SCALAR_NODE) {
                mspt_error_set(err, MSPT_ERR_CONFIG,
                               "%s:%zu: mapping keys must be plain strings",
                               what, k->start_mark.line + 1);
                mspt_node_free(map);
                return NULL;
            }
            const char *key = (const char *)k->data.scalar.value;
            if (mspt_node_get(map, key)) {
                mspt_error_set(err, MSPT_ERR_CONFIG,
                               "%s:%zu: duplicate key '%s'", what,
                               k->start_mark.line + 1, key);
                mspt_node_free(map);
                return NULL;
            }
            mspt_node *v = convert(doc, yaml_document_get_node(doc, p->value),
                                   what, depth + 1, err);
            if (!v) {
                mspt_node_free(map);
                return NULL;
            }
            mspt_node_set(map, key, v);
        }
        return map;
    }
    default:
        return mspt_node_new(MSPT_NODE_NULL);
    }
}

static mspt_node *load_with(yaml_parser_t *parser, const char *what,
                            mspt_error *err)
{
    yaml_document_t doc;
    if (!yaml_parser_load(parser, &doc)) {
        mspt_error_set(err, MSPT_ERR_CONFIG, "%s:%zu:%zu: %s", what,
                       parser->problem_mark.line + 1,
                       parser->problem_mark.column + 1,
                       parser->problem ? parser->problem : "YAML syntax error");
        return NULL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    mspt_node *n = root ? convert(&doc, root, what, 0, err)
                        : mspt_node_new(MSPT_NODE_NULL);
    yaml_document_delete(&doc);
    return n;
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
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text,
                                 strlen(text));
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
