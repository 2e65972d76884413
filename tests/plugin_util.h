/* Helpers for tests of plugin components: load a module from the build
 * tree and build a validated configuration from a YAML flow mapping.
 *
 *   const mspt_component *c = tp_component("optimizers", "adamw", MSPT_KIND_OPTIMIZER);
 *   mspt_config cfg; mspt_node *tree = tp_config(c, "optimizer", "{lr: 0.1}", &cfg);
 *   ... c->vtable ... ; mspt_node_free(tree);
 */
#ifndef MSPT_PLUGIN_UTIL_H
#define MSPT_PLUGIN_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include <mspt/mspt.h>

#include "config/node.h"
#include "config/schema.h"
#include "config/yaml_io.h"
#include "plugin/registry.h"
#include "tap.h"

static mspt_registry *tp_registry;

/* Loads plugins/<dir>/.libs/<module>.so of the build tree (once) and
 * returns the component of that kind and name; bails out if missing. */
static inline const mspt_component *tp_component(const char *dir,
                                                 const char *module,
                                                 mspt_kind kind,
                                                 const char *name)
{
    const char *build = getenv("MSPT_BUILDDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/plugins/%s/.libs/%s.so",
             build ? build : ".", dir, module);
    if (!tp_registry)
        tp_registry = mspt_registry_new();
    mspt_error err = {0};
    if (mspt_registry_load_file(tp_registry, path, 0, &err))
        tap_bail(err.msg);
    const mspt_component *c = mspt_registry_find(tp_registry, kind, name, &err);
    if (!c)
        tap_bail(err.msg);
    return c;
}

/* Parses yaml (a flow mapping such as "{lr: 0.1, betas: [0.9, 0.99]}"),
 * validates it against c's schema with defaults; NULL + err on failure.
 * The returned tree backs cfg: free it with mspt_node_free when done. */
static inline mspt_node *tp_config_err(const mspt_component *c,
                                       const char *path, const char *yaml,
                                       mspt_config *cfg, mspt_error *err)
{
    mspt_node *tree = mspt_yaml_parse(yaml, path, err);
    if (!tree)
        return NULL;
    if (tree->type == MSPT_NODE_NULL) {
        mspt_node_free(tree);
        tree = mspt_node_new(MSPT_NODE_MAP);
    }
    const mspt_param *schemas[] = {c->params, NULL};
    if (mspt_schema_validate(tree, path, schemas, NULL, err)) {
        mspt_node_free(tree);
        return NULL;
    }
    mspt_config_init(cfg, path, tree);
    return tree;
}

static inline mspt_node *tp_config(const mspt_component *c, const char *path,
                                   const char *yaml, mspt_config *cfg)
{
    mspt_error err = {0};
    mspt_node *tree = tp_config_err(c, path, yaml, cfg, &err);
    if (!tree)
        tap_bail(err.msg);
    return tree;
}

#endif
