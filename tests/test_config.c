/* Configuration: YAML round trip, Lua experiments and the mspt module,
 * overrides, schema validation.  Every error is checked for the key path
 * it must name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lua.h>

#include <mspt/mspt.h>

#include "config/lua_config.h"
#include "config/node.h"
#include "config/override.h"
#include "config/schema.h"
#include "config/suggest.h"
#include "config/yaml_io.h"
#include "tap.h"

static char tmpdir[256];

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
}

static int contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

static int nodes_equal(const mspt_node *a, const mspt_node *b)
{
    if (a->type != b->type || a->n != b->n)
        return 0;
    switch (a->type) {
    case MSPT_NODE_BOOL: return a->b == b->b;
    case MSPT_NODE_INT: return a->i == b->i;
    case MSPT_NODE_FLOAT: return a->f == b->f || (a->f != a->f && b->f != b->f);
    case MSPT_NODE_STRING: return !strcmp(a->s, b->s);
    case MSPT_NODE_MAP:
        for (size_t i = 0; i < a->n; i++)
            if (strcmp(a->keys[i], b->keys[i]) ||
                !nodes_equal(a->items[i], b->items[i]))
                return 0;
        return 1;
    case MSPT_NODE_LIST:
        for (size_t i = 0; i < a->n; i++)
            if (!nodes_equal(a->items[i], b->items[i]))
                return 0;
        return 1;
    default: return 1;
    }
}

static void test_yaml(void)
{
    mspt_node *root = mspt_node_new(MSPT_NODE_MAP);
    mspt_node_set(root, "lr", mspt_node_float(5e-4));
    mspt_node_set(root, "tiny", mspt_node_float(1e-300));
    mspt_node_set(root, "one", mspt_node_float(1.0));
    mspt_node_set(root, "third", mspt_node_float(1.0 / 3.0));
    mspt_node_set(root, "epochs", mspt_node_int(-12));
    mspt_node_set(root, "flag", mspt_node_bool(1));
    mspt_node_set(root, "looks_int", mspt_node_string("123"));
    mspt_node_set(root, "looks_bool", mspt_node_string("true"));
    mspt_node_set(root, "empty", mspt_node_string(""));
    mspt_node_set(root, "text", mspt_node_string("µV: \"quoted\" # not a comment"));
    mspt_node *list = mspt_node_new(MSPT_NODE_LIST);
    mspt_node_push(list, mspt_node_int(2));
    mspt_node_push(list, mspt_node_int(16));
    mspt_node_set(root, "patch", list);
    mspt_node *data = mspt_node_new(MSPT_NODE_LIST);
    mspt_node *ds = mspt_node_new(MSPT_NODE_MAP);
    mspt_node_set(ds, "_target_", mspt_node_string("synthetic"));
    mspt_node_push(data, ds);
    mspt_node_set(root, "data", data);
    mspt_node_set(root, "nothing", mspt_node_new(MSPT_NODE_NULL));

    char path[512];
    snprintf(path, sizeof path, "%s/h.yaml", tmpdir);
    mspt_error err = {0};
    ok(mspt_yaml_save(root, path, &err) == 0, "yaml: save");
    mspt_node *back = mspt_yaml_load(path, &err);
    ok(back && nodes_equal(root, back),
       "yaml: round trip keeps every type, value and order");
    FILE *fp = fopen(path, "r");
    char text[4096] = {0};
    fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    ok(contains(text, "lr: 0.0005") && contains(text, "one: 1.0") &&
           contains(text, "tiny: 1.0e-300"),
       "yaml: floats written shortest, always with a '.' (PyYAML reads them)");
    ok(contains(text, "looks_int: \"123\"") && contains(text, "patch: [2, 16]"),
       "yaml: ambiguous strings quoted, scalar lists in flow style");
    mspt_node_free(back);
    mspt_node_free(root);

    snprintf(path, sizeof path, "%s/bad.yaml", tmpdir);
    write_file("bad.yaml", "a: 1\nb: [1, 2\n");
    back = mspt_yaml_load(path, &err);
    ok(!back && contains(err.msg, "bad.yaml:") && err.status == MSPT_ERR_CONFIG,
       "yaml: syntax error names file and line (%s)", err.msg);
    write_file("dup.yaml", "a: 1\na: 2\n");
    snprintf(path, sizeof path, "%s/dup.yaml", tmpdir);
    back = mspt_yaml_load(path, &err);
    ok(!back && contains(err.msg, "duplicate key 'a'"), "yaml: duplicate key refused");
    write_file("fn.yaml", "scheduler: !lua \"function at x.lua:3\"\n");
    snprintf(path, sizeof path, "%s/fn.yaml", tmpdir);
    back = mspt_yaml_load(path, &err);
    ok(!back && contains(err.msg, "Lua function"),
       "yaml: a Lua function cannot be replayed from YAML");

    mspt_node *v = mspt_yaml_resolve_plain("1e-3");
    ok(v->type == MSPT_NODE_FLOAT && v->f == 1e-3, "yaml: 1e-3 is a float (YAML 1.2)");
    mspt_node_free(v);
    v = mspt_yaml_resolve_plain("0x10");
    ok(v->type == MSPT_NODE_STRING, "yaml: 0x10 stays a string");
    mspt_node_free(v);
}

static void test_lua(void)
{
    mspt_error err = {0};
    lua_State *L = NULL;
    char path[512];
    write_file("base.lua",
               "return { model = { _target_ = 'toy', embed_dim = 8,"
               " filter = { low = 0.5 } }, seed = 1 }\n");
    write_file("exp.lua",
               "local mspt = require 'mspt'\n"
               "local base = require 'base'\n"
               "local e = mspt.merge(base, { model = { embed_dim = 16 },"
               " name = mspt.env('MSPT_TEST_NAME', 'dflt'),"
               " n = mspt.env('MSPT_TEST_NUM', 3) })\n"
               "e.files = mspt.glob('*.lua')\n"
               "e.yaml = mspt.load_yaml('h.yaml').patch\n"
               "e.here = mspt.script_dir\n"
               "e.sched = function(step) return 1 end\n"
               "return e\n");
    setenv("MSPT_TEST_NUM", "7", 1);
    snprintf(path, sizeof path, "%s/exp.lua", tmpdir);
    mspt_node *t = mspt_lua_load(path, &L, &err);
    ok(t != NULL, "lua: experiment with require, merge, env, glob, load_yaml");
    if (!t) {
        diag("%s", err.msg);
        return;
    }
    mspt_node *ed = mspt_node_at(t, "model.embed_dim");
    ok(ed && ed->type == MSPT_NODE_INT && ed->i == 16, "lua: merge overrides nested key");
    mspt_node *low = mspt_node_at(t, "model.filter.low");
    ok(low && low->type == MSPT_NODE_FLOAT && low->f == 0.5,
       "lua: merge keeps untouched nested keys");
    mspt_node *name = mspt_node_get(t, "name"), *n = mspt_node_get(t, "n");
    ok(name && !strcmp(name->s, "dflt") && n && n->type == MSPT_NODE_INT && n->i == 7,
       "lua: env falls back to the default and is typed by it");
    mspt_node *files = mspt_node_get(t, "files");
    ok(files && files->type == MSPT_NODE_LIST && files->n == 2 &&
           contains(files->items[0]->s, "base.lua"),
       "lua: glob is relative to the script and sorted");
    mspt_node *y = mspt_node_get(t, "yaml");
    ok(y && y->type == MSPT_NODE_LIST && y->n == 2 && y->items[1]->i == 16,
       "lua: load_yaml");
    mspt_node *fn = mspt_node_get(t, "sched");
    ok(fn && fn->type == MSPT_NODE_FUNCTION && contains(fn->s, "exp.lua:7"),
       "lua: functions are kept as references (%s)", fn ? fn->s : "-");
    ok(t->n && !strcmp(t->keys[0], "files"), "lua: keys are sorted");
    mspt_node *model = mspt_node_get(t, "model");
    ok(!strcmp(model->keys[0], "_target_"), "lua: _target_ comes first");
    mspt_node_free(t);
    lua_close(L);

    /* a script given by a relative path: mspt.path() is absolute, and so
     * taken as is by load_yaml (it used to double the directory) */
    write_file("rel.lua",
               "local mspt = require 'mspt'\n"
               "return { p = mspt.path('h.yaml'),"
               " yaml = mspt.load_yaml(mspt.path('h.yaml')).patch }\n");
    char cwd[4096], parent[256], rel[600];
    snprintf(parent, sizeof parent, "%s", tmpdir);
    char *slash = strrchr(parent, '/');
    if (!slash || slash == parent || !getcwd(cwd, sizeof cwd))
        tap_bail("tmpdir");
    *slash = '\0';
    snprintf(rel, sizeof rel, "%s/rel.lua", slash + 1); /* from its parent */
    if (chdir(parent) != 0)
        tap_bail("chdir");
    t = mspt_lua_load(rel, &L, &err);
    if (chdir(cwd) != 0)
        tap_bail("chdir back");
    mspt_node *p = t ? mspt_node_get(t, "p") : NULL;
    y = t ? mspt_node_get(t, "yaml") : NULL;
    ok(t && p && p->s[0] == '/' && y && y->type == MSPT_NODE_LIST && y->n == 2,
       "lua: load_yaml(mspt.path(x)) from a script given by a relative path (%s)",
       t ? (p ? p->s : "-") : err.msg);
    mspt_node_free(t);
    if (L)
        lua_close(L);

    write_file("syntax.lua", "return {\n  a = 1,\n  b = = 2 }\n");
    snprintf(path, sizeof path, "%s/syntax.lua", tmpdir);
    t = mspt_lua_load(path, &L, &err);
    ok(!t && contains(err.msg, "syntax.lua:3:") && err.status == MSPT_ERR_CONFIG,
       "lua: syntax error names file and line (%s)", err.msg);
    write_file("notable.lua", "return 3\n");
    snprintf(path, sizeof path, "%s/notable.lua", tmpdir);
    t = mspt_lua_load(path, &L, &err);
    ok(!t && contains(err.msg, "must return the experiment table"),
       "lua: a script must return a table");
    write_file("mixed.lua", "return { model = { 1, 2, x = 3 } }\n");
    snprintf(path, sizeof path, "%s/mixed.lua", tmpdir);
    t = mspt_lua_load(path, &L, &err);
    ok(!t && contains(err.msg, "model: table mixes"),
       "lua: mixed list/map table refused with its path (%s)", err.msg);
    write_file("udata.lua", "return { data = { { f = io.stdout } } }\n");
    snprintf(path, sizeof path, "%s/udata.lua", tmpdir);
    t = mspt_lua_load(path, &L, &err);
    ok(!t && contains(err.msg, "data.0.f: a userdata"),
       "lua: unsupported value named by path (%s)", err.msg);
    write_file("env.lua", "return { x = require('mspt').env('MSPT_NOPE_NOT_SET') }\n");
    snprintf(path, sizeof path, "%s/env.lua", tmpdir);
    t = mspt_lua_load(path, &L, &err);
    ok(!t && contains(err.msg, "MSPT_NOPE_NOT_SET is not set"),
       "lua: env without default fails naming the variable");
    snprintf(path, sizeof path, "%s/missing.lua", tmpdir);
    t = mspt_lua_load(path, &L, &err);
    ok(!t && contains(err.msg, "missing.lua"), "lua: missing file named");
}

static mspt_node *sample_tree(void)
{
    mspt_error err;
    return mspt_yaml_parse("{optimizer: {_target_: adamw, lr: 0.001, betas: [0.9, 0.99]},"
                           " trainer: {max_epochs: 10, fast: false, name: run},"
                           " data: [{path: a.edf}, {path: b.edf}]}",
                           "test", &err);
}

static void test_overrides(void)
{
    mspt_error err = {0};
    mspt_node *t = sample_tree();
    ok(mspt_override_apply(t, "optimizer.lr=5e-4", &err) == 0 &&
           mspt_node_at(t, "optimizer.lr")->f == 5e-4,
       "override: float key set");
    ok(mspt_override_apply(t, "optimizer.lr=1", &err) == 0 &&
           mspt_node_at(t, "optimizer.lr")->type == MSPT_NODE_FLOAT,
       "override: integer text typed as the float it replaces");
    ok(mspt_override_apply(t, "trainer.max_epochs=3", &err) == 0 &&
           mspt_node_at(t, "trainer.max_epochs")->i == 3,
       "override: integer key set");
    ok(mspt_override_apply(t, "trainer.max_epochs=many", &err) == MSPT_ERR_CONFIG &&
           contains(err.msg, "'many' is not an integer"),
       "override: wrong type refused (%s)", err.msg);
    ok(mspt_override_apply(t, "trainer.name=123", &err) == 0 &&
           mspt_node_at(t, "trainer.name")->type == MSPT_NODE_STRING,
       "override: digits into a string key stay a string");
    ok(mspt_override_apply(t, "trainer.fast=true", &err) == 0 &&
           mspt_node_at(t, "trainer.fast")->b == 1,
       "override: boolean");
    ok(mspt_override_apply(t, "optimizer.betas=[0.8, 0.9]", &err) == 0 &&
           mspt_node_at(t, "optimizer.betas.0")->f == 0.8,
       "override: list value");
    ok(mspt_override_apply(t, "optimizer.betas={0.7, 0.9}", &err) == 0 &&
           mspt_node_at(t, "optimizer.betas.0")->f == 0.7,
       "override: Lua-style list value");
    ok(mspt_override_apply(t, "data.1.path=c.edf", &err) == 0 &&
           !strcmp(mspt_node_at(t, "data.1.path")->s, "c.edf"),
       "override: list items by 0-based index");
    ok(mspt_override_apply(t, "optimizer.lrr=1", &err) == MSPT_ERR_CONFIG &&
           contains(err.msg, "no key 'optimizer.lrr'") &&
           contains(err.msg, "did you mean 'lr'"),
       "override: unknown key refused with did-you-mean (%s)", err.msg);
    ok(mspt_override_apply(t, "+trainer.max_steps=10", &err) == 0 &&
           mspt_node_at(t, "trainer.max_steps")->i == 10,
       "override: +key adds a typed key");
    ok(mspt_override_apply(t, "+trainer.max_steps=11", &err) == MSPT_ERR_CONFIG &&
           contains(err.msg, "exists already"),
       "override: +key on an existing key refused");
    ok(mspt_override_apply(t, "+nothere.x=1", &err) == MSPT_ERR_CONFIG &&
           contains(err.msg, "'nothere' is not a table"),
       "override: +key under a missing table refused");
    ok(mspt_override_apply(t, "~trainer.fast", &err) == 0 &&
           !mspt_node_at(t, "trainer.fast"),
       "override: ~key removes");
    ok(mspt_override_apply(t, "=3", &err) == MSPT_ERR_CONFIG &&
           mspt_override_apply(t, "+x", &err) == MSPT_ERR_CONFIG,
       "override: malformed text refused");
    ok(mspt_override_apply(t, "trainer=3", &err) == MSPT_ERR_CONFIG,
       "override: a table cannot become a scalar");
    ok(mspt_override_is_target("model._target_=femba") &&
           !mspt_override_is_target("model.x=1"),
       "override: _target_ overrides recognised");
    static const char *const slots[] = {"scheduler", "data", NULL};
    ok(mspt_override_is_structural("+scheduler={_target_: linear}", slots) &&
           mspt_override_is_structural("~scheduler", slots) &&
           mspt_override_is_structural("data.1={_target_: toy}", slots) &&
           mspt_override_is_structural("data._target_=x", slots) &&
           !mspt_override_is_structural("scheduler.warmup_epochs=2", slots) &&
           !mspt_override_is_structural("data.1.windows=2", slots) &&
           !mspt_override_is_structural("schedulers=2", slots) &&
           !mspt_override_is_structural("data.=2", slots),
       "override: whole slots and list items are structural, their keys not");
    mspt_node_free(t);
}

static const mspt_param schema[] = {
    {"embed_dim", MSPT_PARAM_INT, "79", "width"},
    {"lr", MSPT_PARAM_FLOAT, "1e-3", "learning rate"},
    {"patch_size", MSPT_PARAM_INTS, "{2, 16}", "patch"},
    {"names", MSPT_PARAM_STRINGS, "{}", "names"},
    {"kind", MSPT_PARAM_STRING, "cosine", "kind"},
    {"path", MSPT_PARAM_STRING, NULL, "required path"},
    {"label", MSPT_PARAM_STRING, "nil", "optional"},
    {"filter.low", MSPT_PARAM_FLOAT, "0.1", "nested"},
    {"flag", MSPT_PARAM_BOOL, "false", "flag"},
    {NULL, 0, NULL, NULL}};

static int validate(const char *yaml, mspt_error *err, mspt_node **out)
{
    mspt_node *t = mspt_yaml_parse(yaml, "test", err);
    const mspt_param *schemas[] = {schema, NULL};
    static const char *const skip[] = {"_target_", NULL};
    int rc = mspt_schema_validate(t, "model", schemas, skip, err);
    if (out)
        *out = t;
    else
        mspt_node_free(t);
    return rc;
}

static void test_schema(void)
{
    mspt_error err = {0};
    mspt_node *t = NULL;
    ok(validate("{_target_: x, path: a.edf, embed_dim: 35.0, lr: 1}", &err, &t) == 0,
       "schema: valid table accepted");
    mspt_config cfg;
    mspt_config_init(&cfg, "model", t);
    ok(mspt_config_int(&cfg, "embed_dim") == 35 &&
           mspt_node_at(t, "embed_dim")->type == MSPT_NODE_INT,
       "schema: integral float coerced to integer");
    ok(mspt_config_float(&cfg, "lr") == 1.0, "schema: integer accepted as number");
    ok(mspt_config_len(&cfg, "patch_size") == 2 &&
           mspt_config_int_at(&cfg, "patch_size", 1) == 16,
       "schema: list default from Lua syntax");
    ok(!strcmp(mspt_config_string(&cfg, "kind"), "cosine") &&
           mspt_config_float(&cfg, "filter.low") == 0.1 &&
           !mspt_config_bool(&cfg, "flag"),
       "schema: defaults filled, nested dotted key created");
    ok(!mspt_config_has(&cfg, "label") && mspt_config_string(&cfg, "label") == NULL,
       "schema: optional key without default stays unset");
    ok(mspt_config_len(&cfg, "names") == 0, "schema: empty list default");
    mspt_node_free(t);

    ok(validate("{path: a, embed_dimm: 3}", &err, NULL) == MSPT_ERR_CONFIG &&
           contains(err.msg, "model.embed_dimm: unknown key (did you mean 'embed_dim'?)"),
       "schema: unknown key with did-you-mean (%s)", err.msg);
    ok(validate("{path: a, zzzzzz: 3}", &err, NULL) == MSPT_ERR_CONFIG &&
           contains(err.msg, "model.zzzzzz: unknown key") && !contains(err.msg, "mean"),
       "schema: no far-fetched suggestion");
    ok(validate("{path: a, embed_dim: big}", &err, NULL) == MSPT_ERR_CONFIG &&
           contains(err.msg, "model.embed_dim: expected an integer, got string \"big\""),
       "schema: wrong type names key, expected and got (%s)", err.msg);
    ok(validate("{path: a, embed_dim: 3.5}", &err, NULL) == MSPT_ERR_CONFIG &&
           contains(err.msg, "model.embed_dim"),
       "schema: non-integral number refused for an integer");
    ok(validate("{embed_dim: 3}", &err, NULL) == MSPT_ERR_CONFIG &&
           contains(err.msg, "model.path: missing required key"),
       "schema: missing required key (%s)", err.msg);
    ok(validate("{path: a, patch_size: [2, x]}", &err, NULL) == MSPT_ERR_CONFIG &&
           contains(err.msg, "model.patch_size[2]: expected a list of integers"),
       "schema: bad list item named (%s)", err.msg);
    ok(validate("{path: a, patch_size: 16}", &err, NULL) == MSPT_ERR_CONFIG &&
           contains(err.msg, "model.patch_size: expected a list of integers"),
       "schema: scalar for a list refused");
    ok(validate("{path: a, filter: {lw: 1}}", &err, NULL) == MSPT_ERR_CONFIG &&
           contains(err.msg, "model.filter.lw: unknown key (did you mean 'filter.low'?)"),
       "schema: unknown nested key (%s)", err.msg);
    ok(validate("{path: a, filter: 3}", &err, NULL) == MSPT_ERR_CONFIG &&
           contains(err.msg, "model.filter: expected a table"),
       "schema: nested table expected");
    ok(validate("{path: a, flag: 1}", &err, NULL) == MSPT_ERR_CONFIG &&
           contains(err.msg, "model.flag: expected a boolean"),
       "schema: number is not a boolean");

    ok(mspt_edit_distance("femba", "fmeba") == 1 && mspt_edit_distance("adam", "adamw") == 1 &&
           mspt_edit_distance("", "abc") == 3,
       "suggest: edit distance with transpositions");
}

/* Limits against hostile input (issue 15): the depth limit exactly, the
 * alias budget, hashed big maps, integer ranges, sections that are not
 * tables, the Lua stack under deep trees. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *nested(int depth, const char *open, const char *leaf,
                    const char *close)
{
    size_t n = depth * (strlen(open) + strlen(close)) + strlen(leaf) + 1;
    char *s = malloc(n), *p = s;
    for (int i = 0; i < depth; i++)
        p += sprintf(p, "%s", open);
    p += sprintf(p, "%s", leaf);
    for (int i = 0; i < depth; i++)
        p += sprintf(p, "%s", close);
    return s;
}

static void test_limits(void)
{
    mspt_error err = {0};
    char *y = nested(MSPT_CONFIG_MAX_DEPTH, "[", "1", "]");
    mspt_node *t = mspt_yaml_parse(y, "deep", &err);
    ok(t != NULL, "limits: YAML nested exactly %d deep is read", MSPT_CONFIG_MAX_DEPTH);
    mspt_node_free(t);
    free(y);
    y = nested(MSPT_CONFIG_MAX_DEPTH + 1, "{a: ", "1", "}");
    t = mspt_yaml_parse(y, "deep", &err);
    ok(!t && contains(err.msg, "deep:1:") && contains(err.msg, "nested deeper than 64"),
       "limits: one level more is refused naming the place (%s)", err.msg);
    free(y);
    double t0 = now_s();
    y = nested(1000000, "[", "", "]");
    t = mspt_yaml_parse(y, "deeper", &err);
    free(y);
    ok(!t && now_s() - t0 < 5.0, "limits: a million open brackets refused in %.3f s",
       now_s() - t0);
    t = mspt_yaml_parse("a: &a [1, [2, 3]]\nb: [*a, *a]\nc: &c {x: *a}\nd: *c\n", "al", &err);
    ok(t && mspt_node_at(t, "b.1.1.0")->i == 2 && mspt_node_at(t, "d.x.0")->i == 1,
       "limits: aliases are copies of their anchors");
    mspt_node_free(t);
    char bomb[2048] = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (char c = 'b'; c <= 'h'; c++) {
        size_t n = strlen(bomb);
        snprintf(bomb + n, sizeof bomb - n, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, "
                 "*%c, *%c, *%c]\n", c, c, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1,
                 c - 1, c - 1, c - 1, c - 1);
    }
    t0 = now_s();
    t = mspt_yaml_parse(bomb, "bomb", &err);
    ok(!t && contains(err.msg, "bomb:6:") && contains(err.msg, "more than 1000000 nodes"),
       "limits: an alias bomb (10^8 nodes) refused in %.3f s (%s)", now_s() - t0, err.msg);
    y = nested(40, "[", "1", "]");
    char deep_alias[400];
    snprintf(deep_alias, sizeof deep_alias, "a: &a %s\nb: [[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]\n", y);
    free(y);
    t = mspt_yaml_parse(deep_alias, "da", &err);
    ok(!t && contains(err.msg, "alias '*a' makes values nested deeper than 64"),
       "limits: an alias may not carry values past the depth limit (%s)", err.msg);

    /* a map of 200,000 keys: hashed, and consistent through removals */
    t0 = now_s();
    mspt_node *m = mspt_node_new(MSPT_NODE_MAP);
    char k[32];
    for (int i = 0; i < 200000; i++) {
        snprintf(k, sizeof k, "k%d", i);
        mspt_node_set(m, k, mspt_node_int(i));
    }
    int good = m->n == 200000;
    for (int i = 0; i < 200000; i += 2) {
        snprintf(k, sizeof k, "k%d", i);
        good &= mspt_node_remove(m, k) && !mspt_node_get(m, k);
        if (i % 20000 == 0) { /* removals shift indices: the index follows */
            snprintf(k, sizeof k, "k%d", i + 1);
            good &= mspt_node_get(m, k) && mspt_node_get(m, k)->i == i + 1;
        }
        if (i > 100) /* a removal moves the later items: a few suffice */
            i += 2000;
    }
    for (int i = 1; i < 200000; i += 2) {
        snprintf(k, sizeof k, "k%d", i);
        good &= mspt_node_get(m, k) && mspt_node_get(m, k)->i == i;
    }
    mspt_node_set(m, "k1", mspt_node_int(-1));
    good &= mspt_node_get(m, "k1")->i == -1 && !mspt_node_get(m, "nope");
    mspt_node *c = mspt_node_copy(m);
    good &= c->n == m->n && mspt_node_get(c, "k199999")->i == 199999;
    mspt_node_free(c);
    mspt_node_free(m);
    ok(good && now_s() - t0 < 10.0, "limits: a map of 200,000 keys set, read, removed "
       "and copied in %.3f s", now_s() - t0);

    /* integer parameters hold a C int, seeds any 64-bit integer */
    static const mspt_param ints[] = {
        {"n", MSPT_PARAM_INT, "1", "n"},   {"sizes", MSPT_PARAM_INTS, "{1}", "s"},
        {"seed", MSPT_PARAM_INT, "1", "s"}, {"x.data_seed", MSPT_PARAM_INT, "1", "s"},
        {NULL, 0, NULL, NULL}};
    const mspt_param *schemas[] = {ints, NULL};
    struct { const char *yaml, *want; } cases[] = {
        {"{n: 4294967297}", "m.n: 4294967297 is out of range"},
        {"{n: -2147483649}", "m.n: -2147483649 is out of range"},
        {"{n: 4294967297.0}", "m.n: 4294967297 is out of range"},
        {"{sizes: [1, 2147483648]}", "m.sizes[2]: 2147483648 is out of range"},
        {"{n: 2147483647, sizes: [-2147483648], seed: 99999999999, x: {data_seed: -9223372036854775808}}", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        t = mspt_yaml_parse(cases[i].yaml, "ints", &err);
        int rc = mspt_schema_validate(t, "m", schemas, NULL, &err);
        ok(cases[i].want ? rc == MSPT_ERR_CONFIG && contains(err.msg, cases[i].want)
                         : rc == 0,
           "limits: %s %s (%s)", cases[i].yaml, cases[i].want ? "refused" : "accepted",
           rc ? err.msg : "");
        mspt_node_free(t);
    }

    /* a table given as something else is not replaced by the defaults */
    static const mspt_param sect[] = {{"trainer.max_epochs", MSPT_PARAM_INT, "10", "e"},
                                      {NULL, 0, NULL, NULL}};
    const mspt_param *ss[] = {sect, NULL};
    t = mspt_yaml_parse("{trainer: x}", "s", &err);
    mspt_schema_fill_defaults(t, ss);
    int rc = mspt_schema_validate(t, "", ss, NULL, &err);
    ok(rc == MSPT_ERR_CONFIG && !strcmp(err.msg, "trainer: expected a table, got string"),
       "limits: trainer = \"x\" is an error, not the defaults (%s)", err.msg);
    mspt_node_free(t);
    t = mspt_yaml_parse("{trainer: null}", "s", &err);
    mspt_schema_fill_defaults(t, ss);
    ok(mspt_schema_validate(t, "", ss, NULL, &err) == 0 &&
       mspt_node_at(t, "trainer.max_epochs")->i == 10, "limits: trainer = null takes the defaults");
    mspt_node_free(t);

    /* the Lua stack under a tree as deep as allowed, both ways */
    /* 63 lists under the root table: the limit exactly */
    char *lists = nested(MSPT_CONFIG_MAX_DEPTH - 1, "[", "1", "]");
    char yaml[400], at[400] = "a";
    snprintf(yaml, sizeof yaml, "a: %s\n", lists);
    free(lists);
    write_file("deep.yaml", yaml);
    for (int i = 0; i < MSPT_CONFIG_MAX_DEPTH - 1; i++)
        strcat(at, ".0");
    write_file("deep.lua", "local mspt = require('mspt')\n"
               "local y = mspt.load_yaml('deep.yaml')\n"
               "local t = mspt.merge(y, y, {b = 1})\n"
               "return t\n");
    char path[512];
    snprintf(path, sizeof path, "%s/deep.lua", tmpdir);
    lua_State *L = NULL;
    t = mspt_lua_load(path, &L, &err);
    mspt_node *leaf = t ? mspt_node_at(t, at) : NULL;
    ok(leaf && leaf->type == MSPT_NODE_INT && leaf->i == 1,
       "limits: load_yaml and merge of a tree 64 deep, converted back (%s)", t ? "" : err.msg);
    mspt_node_free(t);
    if (L)
        lua_close(L);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mspt-test-config-XXXXXX");
    if (!mkdtemp(tmpdir))
        tap_bail("mkdtemp failed");
    test_yaml();
    test_lua();
    test_overrides();
    test_schema();
    test_limits();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        diag("could not remove %s", tmpdir);
    return tap_done();
}
