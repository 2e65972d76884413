/* The plugin registry: modules loaded with dlopen, the components they
 * register, and lookup by kind and name.
 *
 * Search order (earlier wins when two directories offer the same
 * component): paths given in the experiment, then MSPT_PLUGIN_PATH, then
 * the build tree's plugins when mspt runs uninstalled, else the install
 * directory.  The current directory is never searched implicitly. */
#ifndef MSPT_REGISTRY_H
#define MSPT_REGISTRY_H

#include <mspt/plugin.h>

typedef struct mspt_registry mspt_registry;

typedef struct mspt_entry {
    const mspt_component *c;
    const char *module;   /* file it came from */
    const char *shadowed; /* a later module offering the same name, or NULL */
} mspt_entry;

mspt_registry *mspt_registry_new(void);
void mspt_registry_free(mspt_registry *reg);

/* Load one module; rank orders search precedence (lower wins). */
int mspt_registry_load_file(mspt_registry *reg, const char *path, int rank,
                            mspt_error *err);
/* Load every *.so in dir, dir/<kind>/ and dir/<kind>/.libs/ (the build
 * tree).  A missing directory is not an error, nor is a module there that
 * does not load (not a plugin, another ABI, a duplicate): it is skipped and
 * remembered, and finding a component it would have provided (its file
 * stem, or a name its init tried to register) fails, naming it. */
int mspt_registry_load_dir(mspt_registry *reg, const char *dir, int rank,
                           mspt_error *err);
/* The standard search: extra directories first (may be NULL/0). */
int mspt_registry_load_default(mspt_registry *reg, const char *const *extra,
                               size_t nextra, mspt_error *err);

/* Modules skipped by directory searches: their count, and the reason of
 * the i-th ("plugin DIR/x.so: not an mspt plugin (...)"). */
size_t mspt_registry_skipped(const mspt_registry *reg, size_t i,
                             const char **why);
/* One warning line on stderr per skipped module. */
void mspt_registry_warn_skipped(const mspt_registry *reg);

size_t mspt_registry_count(const mspt_registry *reg);
const mspt_entry *mspt_registry_at(const mspt_registry *reg, size_t i);
/* NULL with a message listing what exists (and a did-you-mean). */
const mspt_component *mspt_registry_find(const mspt_registry *reg,
                                         mspt_kind kind, const char *name,
                                         mspt_error *err);
/* Components of `kind` registered by the module at path. */
size_t mspt_registry_from_module(const mspt_registry *reg, const char *path,
                                 mspt_kind kind, const mspt_component **out,
                                 size_t cap);

/* A _target_ (or a command-line argument) naming a module file rather
 * than a registered name: it holds a '/' or ends in .so or .so:NAME. */
int mspt_target_is_path(const char *target);
/* Split "path.so:NAME" into the module file (file, cap bytes) and NAME
 * (returned, pointing into target), or NULL for a bare path. */
const char *mspt_target_split(const char *target, char *file, size_t cap);

/* "encoders" for MSPT_KIND_ENCODER; -1 if unknown. */
const char *mspt_kind_plural(mspt_kind kind);
int mspt_kind_from_plural(const char *word);
/* Where the standard search looks when mspt runs uninstalled / installed. */
int mspt_running_uninstalled(void);

#endif
