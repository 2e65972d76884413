/* Command-line overrides with Hydra's habits:
 *   a.b=3     change an existing key; the value is typed by the old one
 *   +a.c=3    add a key that does not exist yet (typed as YAML would)
 *   ~a.b      remove a key
 * List items are addressed by 0-based index (data.0.path=...). */
#ifndef MSPT_OVERRIDE_H
#define MSPT_OVERRIDE_H

#include <mspt/error.h>

#include "config/node.h"

/* Is arg an override (rather than a file name)? */
int mspt_override_is(const char *arg);
/* Does the override's key end in _target_ (applied before defaults)? */
int mspt_override_is_target(const char *arg);
/* Does the override add, remove or replace a component: a _target_ key, a
 * whole slot of `slots` (NULL-terminated: "scheduler") or one item of a
 * list slot ("data.1")?  These apply before components are looked up. */
int mspt_override_is_structural(const char *arg, const char *const *slots);
int mspt_override_apply(mspt_node *root, const char *arg, mspt_error *err);

#endif
