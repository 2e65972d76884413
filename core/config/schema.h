/* Checking a component's table against its parameter schema(s), completing
 * it with defaults, and the mspt_config handle constructors read. */
#ifndef MSPT_SCHEMA_H
#define MSPT_SCHEMA_H

#include <mspt/config.h>
#include <mspt/error.h>
#include <mspt/plugin.h>

#include "config/node.h"

/* A default of "nil" marks an optional parameter with no default. */
#define MSPT_NO_DEFAULT "nil"

/* Validate `map` (the table at key path `path`) against the NULL-terminated
 * list of schemas; keys listed in `skip` (NULL-terminated, may be NULL) are
 * left alone.  Coerces integral numbers, fills defaults in place.  Errors
 * (MSPT_ERR_CONFIG) carry the full key path: unknown key with a
 * did-you-mean, wrong type, missing required value. */
int mspt_schema_validate(mspt_node *map, const char *path,
                         const mspt_param *const *schemas,
                         const char *const *skip, mspt_error *err);

/* Complete `map` with the schemas' defaults, without checking anything else
 * (used before overrides, so that `a.b=3` may name a defaulted key). */
void mspt_schema_fill_defaults(mspt_node *map, const mspt_param *const *schemas);

/* A validated component table seen through config.h. */
struct mspt_config {
    char path[256];
    const mspt_node *map;
    char undeclared[128]; /* the first key read that the schema lacks */
};
void mspt_config_init(mspt_config *cfg, const char *path, const mspt_node *map);
/* The first key a component read that its schema does not declare (a
 * plugin bug, reported when the component is built), or NULL. */
const char *mspt_config_undeclared(const mspt_config *cfg);

/* Human name of a parameter type ("integer", "list of numbers"). */
const char *mspt_param_type_name(mspt_param_type t);

#endif
