/* Lua experiments, see lua_config.h. */
#include "config/lua_config.h"

#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "config/yaml_io.h"

/* ---- Lua -> node ---------------------------------------------------------- */

static int cmp_keys(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    /* _target_ first, then alphabetical: hparams.yaml reads top-down. */
    int tx = strcmp(x, "_target_") == 0, ty = strcmp(y, "_target_") == 0;
    if (tx != ty)
        return ty - tx;
    return strcmp(x, y);
}

static void subpath(char *out, size_t size, const char *path, const char *key)
{
    snprintf(out, size, *path ? "%s.%s" : "%s%s", path, key);
}

/* Converting Lua values.  The C stack is bounded by the depth limit, the
 * Lua stack is checked at each level (Lua guarantees only LUA_MINSTACK
 * free slots), a table met again below itself is a cycle, and a table
 * shared many times over is expanded only within MSPT_CONFIG_MAX_NODES. */
typedef struct conv {
    lua_State *L;
    mspt_error *err;
    size_t nodes;
    const void *open[MSPT_CONFIG_MAX_DEPTH + 1]; /* tables being converted */
} conv;

static mspt_node *to_node(conv *c, int idx, const char *path, int depth);

static const char *or_experiment(const char *path)
{
    return *path ? path : "experiment";
}

static mspt_node *table_to_node(conv *c, int idx, const char *path, int depth)
{
    lua_State *L = c->L;
    mspt_error *err = c->err;
    idx = lua_absindex(L, idx);
    const void *me = lua_topointer(L, idx);
    for (int d = 0; d < depth; d++)
        if (c->open[d] == me) {
            mspt_error_set(err, MSPT_ERR_CONFIG,
                           "%s: the table contains itself (a cycle)", path);
            return NULL;
        }
    if (depth >= MSPT_CONFIG_MAX_DEPTH) {
        mspt_error_set(err, MSPT_ERR_CONFIG,
                       "%s: tables nested deeper than %d levels",
                       or_experiment(path), MSPT_CONFIG_MAX_DEPTH);
        return NULL;
    }
    if (!lua_checkstack(L, 8)) {
        mspt_error_set(err, MSPT_ERR_CONFIG, "%s: Lua stack exhausted",
                       or_experiment(path));
        return NULL;
    }
    c->open[depth] = me;
    lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
    size_t nkeys = 0, nstr = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        nkeys++;
        if (lua_type(L, -2) == LUA_TSTRING)
            nstr++;
        else if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 ||
                 lua_tointeger(L, -2) > len) {
            lua_pop(L, 2);
            mspt_error_set(err, MSPT_ERR_CONFIG,
                           "%s: table keys must be names or list positions 1..n",
                           or_experiment(path));
            return NULL;
        }
        lua_pop(L, 1);
    }
    if (nstr && nstr != nkeys) {
        mspt_error_set(err, MSPT_ERR_CONFIG,
                       "%s: table mixes list items and named keys",
                       or_experiment(path));
        return NULL;
    }
    if (nkeys > MSPT_CONFIG_MAX_NODES - c->nodes) {
        mspt_error_set(err, MSPT_ERR_CONFIG,
                       "%s: the experiment expands to more than %d values "
                       "(a table shared many times over?)",
                       or_experiment(path), MSPT_CONFIG_MAX_NODES);
        return NULL;
    }
    c->nodes += nkeys;
    if (nkeys && !nstr) { /* a list */
        mspt_node *list = mspt_node_new(MSPT_NODE_LIST);
        for (lua_Integer i = 1; i <= len; i++) {
            char p[512];
            snprintf(p, sizeof p, *path ? "%s.%lld" : "%s%lld", path,
                     (long long)(i - 1));
            lua_rawgeti(L, idx, i);
            mspt_node *v = to_node(c, -1, p, depth + 1);
            lua_pop(L, 1);
            if (!v) {
                mspt_node_free(list);
                return NULL;
            }
            mspt_node_push(list, v);
        }
        return list;
    }
    const char **keys = malloc((nkeys ? nkeys : 1) * sizeof *keys);
    if (!keys)
        abort(); /* as node.c */
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        keys[k++] = lua_tostring(L, -2); /* string keys stay alive in t */
        lua_pop(L, 1);
    }
    qsort(keys, nkeys, sizeof *keys, cmp_keys);
    mspt_node *map = mspt_node_new(MSPT_NODE_MAP);
    for (size_t i = 0; i < nkeys; i++) {
        char p[512];
        subpath(p, sizeof p, path, keys[i]);
        lua_getfield(L, idx, keys[i]);
        mspt_node *v = to_node(c, -1, p, depth + 1);
        lua_pop(L, 1);
        if (!v) {
            mspt_node_free(map);
            free(keys);
            return NULL;
        }
        mspt_node_set(map, keys[i], v);
    }
    free(keys);
    return map;
}

static mspt_node *to_node(conv *c, int idx, const char *path, int depth)
{
    lua_State *L = c->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return mspt_node_new(MSPT_NODE_NULL);
    case LUA_TBOOLEAN:
        return mspt_node_bool(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return mspt_node_int((long long)lua_tointeger(L, idx));
        return mspt_node_float(lua_tonumber(L, idx));
    case LUA_TSTRING:
        return mspt_node_string(lua_tostring(L, idx));
    case LUA_TTABLE:
        return table_to_node(c, idx, path, depth);
    case LUA_TFUNCTION: {
        if (!lua_checkstack(L, 2)) {
            mspt_error_set(c->err, MSPT_ERR_CONFIG, "%s: Lua stack exhausted",
                           path);
            return NULL;
        }
        mspt_node *n = mspt_node_new(MSPT_NODE_FUNCTION);
        lua_Debug ar;
        lua_pushvalue(L, idx);
        lua_getinfo(L, ">S", &ar);
        char desc[300];
        snprintf(desc, sizeof desc, "function at %s:%d", ar.short_src,
                 ar.linedefined);
        n->s = strdup(desc);
        lua_pushvalue(L, idx);
        n->ref = luaL_ref(L, LUA_REGISTRYINDEX);
        return n;
    }
    default:
        mspt_error_set(c->err, MSPT_ERR_CONFIG,
                       "%s: a %s cannot be configuration", path,
                       luaL_typename(L, idx));
        return NULL;
    }
}

mspt_node *mspt_lua_to_node(lua_State *L, int idx, const char *path,
                            mspt_error *err)
{
    conv c = {.L = L, .err = err};
    return to_node(&c, idx, path, 0);
}

/* ---- node -> Lua ---------------------------------------------------------- */

/* Trees are at most MSPT_CONFIG_MAX_DEPTH deep (yaml_io.c, to_node): two
 * slots a level. */
int mspt_lua_push_node(lua_State *L, const mspt_node *n)
{
    if (!lua_checkstack(L, 3))
        return -1;
    switch (n->type) {
    case MSPT_NODE_NULL: lua_pushnil(L); break;
    case MSPT_NODE_BOOL: lua_pushboolean(L, n->b); break;
    case MSPT_NODE_INT: lua_pushinteger(L, (lua_Integer)n->i); break;
    case MSPT_NODE_FLOAT: lua_pushnumber(L, n->f); break;
    case MSPT_NODE_STRING: lua_pushstring(L, n->s); break;
    case MSPT_NODE_FUNCTION: lua_rawgeti(L, LUA_REGISTRYINDEX, n->ref); break;
    case MSPT_NODE_LIST:
        lua_createtable(L, n->n > INT_MAX ? 0 : (int)n->n, 0);
        for (size_t i = 0; i < n->n; i++) {
            if (mspt_lua_push_node(L, n->items[i])) {
                lua_pop(L, 1);
                return -1;
            }
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    case MSPT_NODE_MAP:
        lua_createtable(L, 0, n->n > INT_MAX ? 0 : (int)n->n);
        for (size_t i = 0; i < n->n; i++) {
            if (mspt_lua_push_node(L, n->items[i])) {
                lua_pop(L, 1);
                return -1;
            }
            lua_setfield(L, -2, n->keys[i]);
        }
        break;
    }
    return 0;
}

/* ---- the mspt module -------------------------------------------------------- */

static const char *script_dir(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "mspt.script_dir");
    const char *d = lua_tostring(L, -1);
    lua_pop(L, 1);
    return d ? d : ".";
}

/* Resolve a path relative to the experiment's directory. */
static void resolve(lua_State *L, const char *p, char *out, size_t size)
{
    if (p[0] == '/')
        snprintf(out, size, "%s", p);
    else
        snprintf(out, size, "%s/%s", script_dir(L), p);
}

/* mspt.glob(pattern) -> sorted list of matching paths (relative patterns
 * are taken from the experiment's directory). */
static int l_glob(lua_State *L)
{
    char pat[4096];
    resolve(L, luaL_checkstring(L, 1), pat, sizeof pat);
    glob_t g;
    int rc = glob(pat, 0, NULL, &g);
    lua_newtable(L);
    if (rc == 0)
        for (size_t i = 0; i < g.gl_pathc; i++) {
            lua_pushstring(L, g.gl_pathv[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
    globfree(&g);
    return 1;
}

/* mspt.env(name [, default]): the variable's value, typed like default. */
static int l_env(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *v = getenv(name);
    if (!v) {
        if (lua_isnoneornil(L, 2))
            return luaL_error(L, "environment variable %s is not set and has "
                                 "no default", name);
        lua_pushvalue(L, 2);
        return 1;
    }
    switch (lua_type(L, 2)) {
    case LUA_TNUMBER:
        if (!lua_stringtonumber(L, v))
            return luaL_error(L, "environment variable %s='%s' is not a number",
                              name, v);
        return 1;
    case LUA_TBOOLEAN:
        if (!strcmp(v, "1") || !strcmp(v, "true"))
            lua_pushboolean(L, 1);
        else if (!strcmp(v, "0") || !strcmp(v, "false"))
            lua_pushboolean(L, 0);
        else
            return luaL_error(L, "environment variable %s='%s' is not a boolean",
                              name, v);
        return 1;
    default:
        lua_pushstring(L, v);
        return 1;
    }
}

static int is_list(lua_State *L, int idx)
{
    lua_pushnil(L);
    if (!lua_next(L, idx))
        return 0;
    lua_pop(L, 2);
    return lua_rawlen(L, idx) > 0;
}

/* mspt.merge's walk: the source tables open on the way down (a cycle is
 * one met again) and the key path that names them in errors. */
typedef struct walk {
    const void *open[MSPT_CONFIG_MAX_DEPTH + 1];
    char path[1024];
} walk;

static int merge_error(lua_State *L, const walk *w, const char *what)
{
    luaL_where(L, 1); /* the script's line that called mspt.merge */
    lua_pushfstring(L, "mspt.merge: %s: %s", *w->path ? w->path : "argument",
                    what);
    lua_concat(L, 2);
    return lua_error(L);
}

/* Enter the table at idx (absolute) reached by the key at stack index key:
 * depth and cycle checks, path extended; returns the old path length. */
static size_t walk_enter(lua_State *L, walk *w, int depth, int idx, int key)
{
    size_t len = strlen(w->path);
    if (key) {
        char k[160];
        if (lua_type(L, key) == LUA_TSTRING)
            snprintf(k, sizeof k, "%s", lua_tostring(L, key));
        else if (lua_isinteger(L, key))
            snprintf(k, sizeof k, "%lld", (long long)lua_tointeger(L, key) - 1);
        else
            snprintf(k, sizeof k, "[%s]", luaL_typename(L, key));
        snprintf(w->path + len, sizeof w->path - len, len ? ".%s" : "%s", k);
    }
    const void *me = lua_topointer(L, idx);
    for (int d = 0; d < depth; d++)
        if (w->open[d] == me)
            merge_error(L, w, "the table contains itself (a cycle)");
    if (depth >= MSPT_CONFIG_MAX_DEPTH) {
        char msg[80];
        snprintf(msg, sizeof msg, "tables nested deeper than %d levels",
                 MSPT_CONFIG_MAX_DEPTH);
        merge_error(L, w, msg);
    }
    luaL_checkstack(L, 6, "mspt.merge");
    w->open[depth] = me;
    return len;
}

/* Deep copy of table at idx onto the stack top. */
static void deep_copy(lua_State *L, int idx, walk *w, int depth, int key)
{
    idx = lua_absindex(L, idx);
    key = key ? lua_absindex(L, key) : 0;
    size_t len = walk_enter(L, w, depth, idx, key);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        if (lua_istable(L, -2))
            deep_copy(L, -2, w, depth + 1, -3);
        else
            lua_pushvalue(L, -2);
        lua_settable(L, -5);
        lua_pop(L, 1);
    }
    w->path[len] = '\0';
}

/* Merge table src into table dst (both absolute indices), recursively for
 * named tables; lists and scalars are replaced. */
static void merge_into(lua_State *L, int dst, int src, walk *w, int depth,
                       int key)
{
    size_t len = walk_enter(L, w, depth, src, key);
    lua_pushnil(L);
    while (lua_next(L, src)) {
        int v = lua_gettop(L);
        lua_pushvalue(L, -2);
        lua_gettable(L, dst);
        if (lua_istable(L, -1) && lua_istable(L, v) && !is_list(L, v) &&
            !is_list(L, lua_gettop(L))) {
            merge_into(L, lua_gettop(L), v, w, depth + 1, v - 1);
            lua_pop(L, 1);
        } else {
            lua_pop(L, 1);
            lua_pushvalue(L, -2);
            if (lua_istable(L, v))
                deep_copy(L, v, w, depth + 1, v - 1);
            else
                lua_pushvalue(L, v);
            lua_settable(L, dst);
        }
        lua_pop(L, 1);
    }
    w->path[len] = '\0';
}

/* mspt.merge(base, override, ...) -> a new table; later tables win. */
static int l_merge(lua_State *L)
{
    int n = lua_gettop(L);
    lua_newtable(L);
    int dst = lua_gettop(L);
    walk w;
    for (int i = 1; i <= n; i++) {
        if (lua_isnil(L, i))
            continue;
        luaL_checktype(L, i, LUA_TTABLE);
        w.path[0] = '\0';
        merge_into(L, dst, i, &w, 0, 0);
    }
    return 1;
}

/* mspt.load_yaml(path) -> table. */
static int l_load_yaml(lua_State *L)
{
    char path[4096];
    resolve(L, luaL_checkstring(L, 1), path, sizeof path);
    mspt_error err;
    mspt_node *n = mspt_yaml_load(path, &err);
    if (!n)
        return luaL_error(L, "%s", err.msg);
    int rc = mspt_lua_push_node(L, n);
    mspt_node_free(n);
    if (rc)
        return luaL_error(L, "%s: Lua stack exhausted", path);
    return 1;
}

/* mspt.path(rel) -> absolute path beside the experiment. */
static int l_path(lua_State *L)
{
    char path[4096];
    resolve(L, luaL_checkstring(L, 1), path, sizeof path);
    lua_pushstring(L, path);
    return 1;
}

static int open_mspt(lua_State *L)
{
    static const luaL_Reg fns[] = {{"glob", l_glob},
                                   {"env", l_env},
                                   {"merge", l_merge},
                                   {"load_yaml", l_load_yaml},
                                   {"path", l_path},
                                   {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_pushstring(L, script_dir(L));
    lua_setfield(L, -2, "script_dir");
    return 1;
}

/* A scalar for an error message: strings quoted, at most ~60 bytes. */
static void brief_value(lua_State *L, int idx, char *out, size_t size)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: snprintf(out, size, "\"%.60s\"", lua_tostring(L, idx)); break;
    case LUA_TNUMBER:
    case LUA_TBOOLEAN:
    case LUA_TNIL: snprintf(out, size, "%s", luaL_tolstring(L, idx, NULL));
        lua_pop(L, 1);
        break;
    default: snprintf(out, size, "<%s>", luaL_typename(L, idx)); break;
    }
}

/* What a failed script raised, said in words: a string as it is (Lua put
 * file:line: in front), a value with __tostring through it, a table by its
 * first fields, anything else by its type and value. */
static void describe_error(lua_State *L, const char *path, mspt_error *err)
{
    int e = lua_gettop(L);
    if (lua_type(L, e) == LUA_TSTRING) {
        mspt_error_set(err, MSPT_ERR_CONFIG, "%s", lua_tostring(L, e));
        return;
    }
    if (!lua_checkstack(L, 6)) {
        mspt_error_set(err, MSPT_ERR_CONFIG, "%s: the script raised a %s value",
                       path, luaL_typename(L, e));
        return;
    }
    if (luaL_getmetafield(L, e, "__tostring") != LUA_TNIL) {
        lua_pop(L, 1);
        mspt_error_set(err, MSPT_ERR_CONFIG, "%s: the script raised %s", path,
                       luaL_tolstring(L, e, NULL));
        return;
    }
    switch (lua_type(L, e)) {
    case LUA_TNIL:
        mspt_error_set(err, MSPT_ERR_CONFIG,
                       "%s: the script raised nil (error() with no message)",
                       path);
        return;
    case LUA_TNUMBER:
        mspt_error_set(err, MSPT_ERR_CONFIG, "%s: the script raised the number "
                       "%s (not a message)", path, luaL_tolstring(L, e, NULL));
        return;
    case LUA_TTABLE: {
        char fields[300] = "", kb[80], k[90], v[80];
        size_t len = 0, shown = 0;
        lua_pushnil(L);
        while (lua_next(L, e)) {
            if (shown == 4) {
                lua_pop(L, 2);
                snprintf(fields + len, sizeof fields - len, ", ...");
                break;
            }
            brief_value(L, -2, kb, sizeof kb);
            brief_value(L, -1, v, sizeof v);
            if (lua_type(L, -2) == LUA_TSTRING)
                snprintf(k, sizeof k, "%.60s", lua_tostring(L, -2));
            else
                snprintf(k, sizeof k, "[%s]", kb);
            int w = snprintf(fields + len, sizeof fields - len, "%s%s = %s",
                             shown ? ", " : "", k, v);
            len = w > 0 && len + (size_t)w < sizeof fields ? len + (size_t)w
                                                           : len;
            shown++;
            lua_pop(L, 1);
        }
        mspt_error_set(err, MSPT_ERR_CONFIG, "%s: the script raised a table "
                       "value (not a string): {%s}", path, fields);
        return;
    }
    default:
        mspt_error_set(err, MSPT_ERR_CONFIG, "%s: the script raised a %s value "
                       "(not a string): %s", path, luaL_typename(L, e),
                       luaL_tolstring(L, e, NULL));
    }
}

mspt_node *mspt_lua_load(const char *path, lua_State **L_out, mspt_error *err)
{
    lua_State *L = luaL_newstate();
    if (!L) {
        mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot create a Lua state",
                       path);
        return NULL;
    }
    luaL_openlibs(L);

    /* Absolute, so that mspt.path() results stay valid when passed back to
     * mspt.load_yaml() or mspt.glob(), or used from another directory. */
    char buf[4096], abs[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    char *dir = dirname(buf);
    if (realpath(dir, abs))
        dir = abs;
    lua_pushstring(L, dir);
    lua_setfield(L, LUA_REGISTRYINDEX, "mspt.script_dir");

    /* require looks beside the script first. */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir,
                    lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, open_mspt);
    lua_setfield(L, -2, "mspt");
    lua_pop(L, 2);
    luaL_requiref(L, "mspt", open_mspt, 1);
    lua_pop(L, 1);

    if (luaL_loadfile(L, path) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        describe_error(L, path, err);
        lua_close(L);
        return NULL;
    }
    if (!lua_istable(L, -1)) {
        mspt_error_set(err, MSPT_ERR_CONFIG,
                       "%s: the script must return the experiment table (it "
                       "returned %s)", path, luaL_typename(L, -1));
        lua_close(L);
        return NULL;
    }
    mspt_node *n = mspt_lua_to_node(L, -1, "", err);
    lua_pop(L, 1);
    if (!n) {
        mspt_error_prefix(err, "%s", path);
        lua_close(L);
        return NULL;
    }
    if (n->type != MSPT_NODE_MAP) {
        mspt_error_set(err, MSPT_ERR_CONFIG,
                       "%s: the experiment must be a table of named keys", path);
        mspt_node_free(n);
        lua_close(L);
        return NULL;
    }
    *L_out = L;
    return n;
}
