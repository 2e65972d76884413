/* Running a Lua experiment script into a configuration tree.
 *
 * The script runs with `require` resolving next to it and a `mspt` module
 * (also a global) offering what experiments need: glob, env, merge,
 * load_yaml, path, script_dir.  It must return the experiment table. */
#ifndef MSPT_LUA_CONFIG_H
#define MSPT_LUA_CONFIG_H

#include <mspt/error.h>

#include "config/node.h"

typedef struct lua_State lua_State;

/* Runs the script; on success *L_out keeps the state alive (FUNCTION nodes
 * refer into it) and the caller closes it with lua_close. */
mspt_node *mspt_lua_load(const char *path, lua_State **L_out, mspt_error *err);

/* Convert the Lua value at stack index idx (path names it in errors). */
mspt_node *mspt_lua_to_node(lua_State *L, int idx, const char *path,
                            mspt_error *err);
/* Push a configuration tree as Lua values; -1 (nothing pushed) when the Lua
 * stack cannot grow. */
int mspt_lua_push_node(lua_State *L, const mspt_node *n);

#endif
