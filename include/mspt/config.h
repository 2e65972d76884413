/* mspt — a component's configuration, as its constructor sees it.
 *
 * Before a component is built its table has been checked against the
 * component's parameter schema (plugin.h) and completed with defaults, so
 * every declared parameter can be read without further checks.  Keys are the
 * schema names; a dotted name ("filter.low") reaches into a nested table. */
#ifndef MSPT_CONFIG_H
#define MSPT_CONFIG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mspt_config mspt_config;

/* Full key path of this component in the experiment ("model"), for errors. */
const char *mspt_config_path(const mspt_config *cfg);
/* Is the key set (explicitly or by a default)? */
int mspt_config_has(const mspt_config *cfg, const char *key);

long long mspt_config_int(const mspt_config *cfg, const char *key);
double mspt_config_float(const mspt_config *cfg, const char *key);
int mspt_config_bool(const mspt_config *cfg, const char *key);
/* NULL when unset (a parameter with no default that was not given). */
const char *mspt_config_string(const mspt_config *cfg, const char *key);

/* Lists (MSPT_PARAM_INTS / FLOATS / STRINGS). */
size_t mspt_config_len(const mspt_config *cfg, const char *key);
long long mspt_config_int_at(const mspt_config *cfg, const char *key,
                             size_t i);
double mspt_config_float_at(const mspt_config *cfg, const char *key,
                            size_t i);
const char *mspt_config_string_at(const mspt_config *cfg, const char *key,
                                  size_t i);

#ifdef __cplusplus
}
#endif
#endif
