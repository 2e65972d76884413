/* An experiment: the resolved configuration tree and the components it
 * names, found in the plugin registry and checked against their schemas.
 *
 * Loading order (each step's errors name the key path):
 *   1. run the Lua script (or read hparams.yaml: no code runs)
 *   2. apply overrides that add, remove or replace a component (_target_
 *      keys, whole slots: +scheduler={...}, ~scheduler, data.1={...})
 *   3. load plugins: explicit module paths, plugin_path, MSPT_PLUGIN_PATH,
 *      then the build tree or the install directory
 *   4. find each slot's component (model → encoder, criterion → loss,
 *      optimizer, scheduler, data → dataset, one table or a list)
 *   5. fill schema defaults, apply the other overrides, validate. */
#ifndef MSPT_EXPERIMENT_H
#define MSPT_EXPERIMENT_H

#include <limits.h>

#include <mspt/plugin.h>

#include "config/node.h"
#include "config/schema.h"
#include "plugin/registry.h"

typedef struct lua_State lua_State;

#define MSPT_MAX_DATASETS 32

typedef struct mspt_slot {
    char path[64];                /* "model", "data.0" */
    const mspt_component *c;      /* NULL: slot absent (optional ones) */
    mspt_config cfg;
} mspt_slot;

typedef struct mspt_experiment {
    char source[PATH_MAX];        /* the .lua or .yaml file */
    char dir[PATH_MAX];           /* its directory */
    lua_State *L;                 /* alive while Lua functions are referenced */
    mspt_node *root;
    mspt_registry *reg;
    mspt_slot model, criterion, optimizer, scheduler;
    mspt_slot data[MSPT_MAX_DATASETS];
    size_t ndata;
    mspt_node *scheduler_fn;      /* scheduler given as a Lua function */
    int plot_samples_default;     /* plots.samples left at its default */
} mspt_experiment;

/* Top-level keys the core itself reads (dotted: trainer.max_epochs). */
extern const mspt_param mspt_experiment_params[];
/* Keys of the optimizer slot read by the core (differential lr, decay). */
extern const mspt_param mspt_optimizer_slot_params[];
/* Keys of the scheduler slot that the core reads. */
extern const mspt_param mspt_scheduler_slot_params[];

int mspt_experiment_load(mspt_experiment *x, const char *path,
                         const char *const *overrides, size_t noverrides,
                         mspt_error *err);
void mspt_experiment_free(mspt_experiment *x);

/* After slot s's component was built (create returned rc; ps: the
 * encoder's parameters, or NULL): a plugin bug create did not report, a
 * key read that its schema does not declare or a parameter refused (a
 * name used twice), becomes the error, naming the key or parameter and
 * the component. */
int mspt_slot_built(const mspt_slot *s, const mspt_params *ps, int rc,
                    mspt_error *err);

#endif
