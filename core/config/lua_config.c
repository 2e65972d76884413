/* Lua experiments, see lua_config.h. */
#include "config/lua_config.h"

#include <glob.h>
#include <libgen.h>
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

static mspt_node *to_node(lua_State *L, int idx, const char *path, int depth,
                          mspt_error *err);

static mspt_node *table_to_node(lua_State *L, int idx, const char *path,
                                int depth, mspt_error *err)
{
    idx = lua_absindex(L, idx);
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
                           *path ? path : "experiment");
            return NULL;
        }
        lua_pop(L, 1);
    }
    if (nstr && nstr != nkeys) {
        mspt_error_set(err, MSPT_ERR_CONFIG,
                       "%s: table mixes list items and named keys",
                       *path ? path : "experiment");
        return NULL;
    }
    if (nkeys && !nstr) { /* a list */
        mspt_node *list = mspt_node_new(MSPT_NODE_LIST);
        for (lua_Integer i = 1; i <= len; i++) {
            char p[512];
            snprintf(p, sizeof p, *path ? "%s.%lld" : "%s%lld", path,
                     (long long)(i - 1));
            lua_rawgeti(L, idx, i);
            mspt_node *v = to_node(L, -1, p, depth + 1, err);
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
        mspt_node *v = to_node(L, -1, p, depth + 1, err);
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

static mspt_node *to_node(lua_State *L, int idx, const char *path, int depth,
                          mspt_error *err)
{
    if (depth > 64) {
        mspt_error_set(err, MSPT_ERR_CONFIG,
                       "%s: tables nested too deep (a cycle?)", path);
        return NULL;
    }
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
        return table_to_node(L, idx, path, depth, err);
    case LUA_TFUNCTION: {
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
        mspt_error_set(err, MSPT_ERR_CONFIG, "%s: a %s cannot be configuration",
                       path, luaL_typename(L, idx));
        return NULL;
    }
}

mspt_node *mspt_lua_to_node(lua_State *L, int idx, const char *path,
                            mspt_error *err)
{
    return to_node(L, idx, path, 0, err);
}

/* ---- node -> Lua ---------------------------------------------------------- */

void mspt_lua_push_node(lua_State *L, const mspt_node *n)
{
    switch (n->type) {
    case MSPT_NODE_NULL: lua_pushnil(L); break;
    case MSPT_NODE_BOOL: lua_pushboolean(L, n->b); break;
    case MSPT_NODE_INT: lua_pushinteger(L, (lua_Integer)n->i); break;
    case MSPT_NODE_FLOAT: lua_pushnumber(L, n->f); break;
    case MSPT_NODE_STRING: lua_pushstring(L, n->s); break;
    case MSPT_NODE_FUNCTION: lua_rawgeti(L, LUA_REGISTRYINDEX, n->ref); break;
    case MSPT_NODE_LIST:
        lua_createtable(L, (int)n->n, 0);
        for (size_t i = 0; i < n->n; i++) {
            mspt_lua_push_node(L, n->items[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    case MSPT_NODE_MAP:
        lua_createtable(L, 0, (int)n->n);
        for (size_t i = 0; i < n->n; i++) {
            mspt_lua_push_node(L, n->items[i]);
            lua_setfield(L, -2, n->keys[i]);
        }
        break;
    }
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

/* Deep copy of table at idx onto the stack top. */
static void deep_copy(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);
        if (lua_istable(L, -2))
            deep_copy(L, -2);
        else
            lua_pushvalue(L, -2);
        lua_settable(L, -5);
        lua_pop(L, 1);
    }
}

/* Merge table src into table dst (both absolute indices), recursively for
 * named tables; lists and scalars are replaced. */
static void merge_into(lua_State *L, int dst, int src)
{
    lua_pushnil(L);
    while (lua_next(L, src)) {
        int v = lua_gettop(L);
        lua_pushvalue(L, -2);
        lua_gettable(L, dst);
        if (lua_istable(L, -1) && lua_istable(L, v) && !is_list(L, v) &&
            !is_list(L, lua_gettop(L))) {
            merge_into(L, lua_gettop(L), v);
            lua_pop(L, 1);
        } else {
            lua_pop(L, 1);
            lua_pushvalue(L, -2);
            if (lua_istable(L, v))
                deep_copy(L, v);
            else
                lua_pushvalue(L, v);
            lua_settable(L, dst);
        }
        lua_pop(L, 1);
    }
}

/* mspt.merge(base, override, ...) -> a new table; later tables win. */
static int l_merge(lua_State *L)
{
    int n = lua_gettop(L);
    lua_newtable(L);
    int dst = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        if (lua_isnil(L, i))
            continue;
        luaL_checktype(L, i, LUA_TTABLE);
        merge_into(L, dst, i);
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
    mspt_lua_push_node(L, n);
    mspt_node_free(n);
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
        mspt_error_set(err, MSPT_ERR_CONFIG, "%s", lua_tostring(L, -1));
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
