/* Hydra-style overrides, see override.h. */
#include "config/override.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config/suggest.h"
#include "config/yaml_io.h"

int mspt_override_is(const char *arg)
{
    return arg[0] == '+' || arg[0] == '~' || strchr(arg, '=') != NULL;
}

int mspt_override_is_target(const char *arg)
{
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    return n >= 8 && strncmp(arg + n - 8, "_target_", 8) == 0;
}

int mspt_override_is_structural(const char *arg, const char *const *slots)
{
    if (mspt_override_is_target(arg))
        return 1;
    const char *body = arg + (arg[0] == '+' || arg[0] == '~');
    const char *eq = strchr(body, '=');
    size_t n = eq ? (size_t)(eq - body) : strlen(body);
    for (size_t i = 0; slots && slots[i]; i++) {
        size_t m = strlen(slots[i]);
        if (n < m || strncmp(body, slots[i], m) != 0)
            continue;
        if (n == m) /* the whole slot: scheduler={...}, ~scheduler */
            return 1;
        /* one item of a list slot: data.1={...} */
        size_t k = m;
        if (body[k++] != '.' || k == n)
            continue;
        while (k < n && body[k] >= '0' && body[k] <= '9')
            k++;
        if (k == n)
            return 1;
    }
    return 0;
}

/* Split "a.b.c" into parent node and last key; NULL with a message when a
 * parent is missing. */
static mspt_node *find_parent(mspt_node *root, char *key, char **last,
                              const char *arg, mspt_error *err)
{
    char *dot = strrchr(key, '.');
    *last = dot ? dot + 1 : key;
    if (!dot)
        return root;
    *dot = '\0';
    mspt_node *parent = mspt_node_at(root, key);
    if (!parent || (parent->type != MSPT_NODE_MAP &&
                    parent->type != MSPT_NODE_LIST)) {
        mspt_error_set(err, MSPT_ERR_CONFIG,
                       "override '%s': '%s' is not a table in the experiment",
                       arg, key);
        *dot = '.';
        return NULL;
    }
    *dot = '.';
    return parent;
}

static int no_such_key(mspt_node *parent, const char *key, const char *last,
                       const char *arg, mspt_error *err)
{
    mspt_suggest s;
    mspt_suggest_init(&s, last);
    if (parent->type == MSPT_NODE_MAP)
        for (size_t i = 0; i < parent->n; i++)
            mspt_suggest_offer(&s, parent->keys[i]);
    const char *best = mspt_suggest_best(&s);
    if (best)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "override '%s': no key '%s' (did you mean '%s'? "
                              "use +%s=... to add a new key)", arg, key, best,
                              key);
    return mspt_error_set(err, MSPT_ERR_CONFIG,
                          "override '%s': no key '%s' (use +%s=... to add a new "
                          "key)", arg, key, key);
}

/* Parse text as the type of old. */
static mspt_node *typed_value(const mspt_node *old, const char *text,
                              const char *arg, mspt_error *err)
{
    mspt_node *v;
    switch (old->type) {
    case MSPT_NODE_STRING: {
        size_t n = strlen(text);
        if (n >= 2 && ((text[0] == '"' && text[n - 1] == '"') ||
                       (text[0] == '\'' && text[n - 1] == '\''))) {
            v = mspt_node_string(text + 1);
            v->s[n - 2] = '\0';
            return v;
        }
        return mspt_node_string(text);
    }
    case MSPT_NODE_LIST:
    case MSPT_NODE_MAP: {
        char buf[4096];
        snprintf(buf, sizeof buf, "%s", text);
        size_t n = strlen(buf);
        if (old->type == MSPT_NODE_LIST && n >= 2 && buf[0] == '{' &&
            buf[n - 1] == '}' && !strchr(buf, ':')) { /* Lua list syntax
                                                         (not a YAML table) */
            buf[0] = '[';
            buf[n - 1] = ']';
        }
        char what[600];
        snprintf(what, sizeof what, "override '%s'", arg);
        v = mspt_yaml_parse(buf, what, err);
        if (!v)
            return NULL;
        if ((old->type == MSPT_NODE_LIST) != (v->type == MSPT_NODE_LIST) ||
            (old->type == MSPT_NODE_MAP && v->type != MSPT_NODE_MAP)) {
            mspt_error_set(err, MSPT_ERR_CONFIG,
                           "override '%s': expected a %s like the value it "
                           "replaces", arg, mspt_node_type_name(old->type));
            mspt_node_free(v);
            return NULL;
        }
        return v;
    }
    case MSPT_NODE_FUNCTION:
        mspt_error_set(err, MSPT_ERR_CONFIG,
                       "override '%s': the key holds a Lua function", arg);
        return NULL;
    default:
        break;
    }
    v = mspt_yaml_resolve_plain(text);
    int fits = v->type == old->type || old->type == MSPT_NODE_NULL ||
               (old->type == MSPT_NODE_FLOAT && v->type == MSPT_NODE_INT) ||
               (old->type == MSPT_NODE_INT && v->type == MSPT_NODE_FLOAT &&
                v->f == floor(v->f) && fabs(v->f) < 9e15);
    if (!fits) {
        mspt_error_set(err, MSPT_ERR_CONFIG,
                       "override '%s': '%s' is not %s %s", arg, text,
                       old->type == MSPT_NODE_INT ? "an" : "a",
                       mspt_node_type_name(old->type));
        mspt_node_free(v);
        return NULL;
    }
    if (old->type == MSPT_NODE_FLOAT && v->type == MSPT_NODE_INT) {
        v->type = MSPT_NODE_FLOAT;
        v->f = (double)v->i;
    } else if (old->type == MSPT_NODE_INT && v->type == MSPT_NODE_FLOAT) {
        v->type = MSPT_NODE_INT;
        v->i = (long long)v->f;
    }
    return v;
}

static int list_index(const mspt_node *list, const char *last, size_t *out)
{
    char *end;
    long idx = strtol(last, &end, 10);
    if (*end || idx < 0 || (size_t)idx >= list->n)
        return 0;
    *out = (size_t)idx;
    return 1;
}

int mspt_override_apply(mspt_node *root, const char *arg, mspt_error *err)
{
    int add = arg[0] == '+', del = arg[0] == '~';
    const char *body = arg + (add || del);
    const char *eq = strchr(body, '=');
    if ((!del && !eq) || (del && eq) || (eq && eq == body) || !*body)
        return mspt_error_set(err, MSPT_ERR_CONFIG,
                              "override '%s': expected key=value, +key=value "
                              "or ~key", arg);
    char key[512];
    size_t klen = eq ? (size_t)(eq - body) : strlen(body);
    if (klen >= sizeof key)
        return mspt_error_set(err, MSPT_ERR_CONFIG, "override '%s': key too long",
                              arg);
    memcpy(key, body, klen);
    key[klen] = '\0';
    const char *text = eq ? eq + 1 : NULL;

    char *last;
    mspt_node *parent = find_parent(root, key, &last, arg, err);
    if (!parent)
        return MSPT_ERR_CONFIG;
    size_t idx = 0;
    mspt_node *old = NULL;
    if (parent->type == MSPT_NODE_MAP)
        old = mspt_node_get(parent, last);
    else if (list_index(parent, last, &idx))
        old = parent->items[idx];

    if (del) {
        if (!old)
            return no_such_key(parent, key, last, arg, err);
        if (parent->type != MSPT_NODE_MAP)
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "override '%s': cannot remove a list item", arg);
        mspt_node_remove(parent, last);
        return 0;
    }
    if (add) {
        if (old)
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "override '%s': key '%s' exists already (drop "
                                  "the + to change it)", arg, key);
        if (parent->type != MSPT_NODE_MAP)
            return mspt_error_set(err, MSPT_ERR_CONFIG,
                                  "override '%s': '%s' is past the end of the "
                                  "list", arg, key);
        char what[600];
        snprintf(what, sizeof what, "override '%s'", arg);
        mspt_node *v = mspt_yaml_parse(text, what, err);
        if (!v)
            return MSPT_ERR_CONFIG;
        mspt_node_set(parent, last, v);
        return 0;
    }
    if (!old)
        return no_such_key(parent, key, last, arg, err);
    mspt_node *v = typed_value(old, text, arg, err);
    if (!v)
        return MSPT_ERR_CONFIG;
    if (parent->type == MSPT_NODE_MAP) {
        mspt_node_set(parent, last, v);
    } else {
        mspt_node_free(parent->items[idx]);
        parent->items[idx] = v;
    }
    return 0;
}
