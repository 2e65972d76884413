/* hparams.yaml: the resolved configuration tree read and written with
 * libyaml.  Plain scalars are typed as YAML 1.2's core schema does (null,
 * true/false, integers, floats incl. 1e-3 and .inf); quoted ones are
 * strings.  Floats are written so that PyYAML reads them back as floats
 * too ("1.0e-05", never "1e-05"). */
#ifndef MSPT_YAML_IO_H
#define MSPT_YAML_IO_H

#include <stdio.h>

#include <mspt/error.h>

#include "config/node.h"

/* Parse a whole file; errors name path:line:column.  Values nest at most
 * MSPT_CONFIG_MAX_DEPTH levels and a document (aliases expanded) holds at
 * most MSPT_CONFIG_MAX_NODES nodes; only the first document is read. */
mspt_node *mspt_yaml_load(const char *path, mspt_error *err);
/* Parse a string (an override's value); `what` names it in errors. */
mspt_node *mspt_yaml_parse(const char *text, const char *what,
                           mspt_error *err);
/* Parse size bytes (need not end in a NUL; the fuzzer's entry). */
mspt_node *mspt_yaml_parse_bytes(const void *data, size_t size,
                                 const char *what, mspt_error *err);
/* Type of a plain (unquoted) scalar. */
mspt_node *mspt_yaml_resolve_plain(const char *text);
int mspt_yaml_write(const mspt_node *root, FILE *fp, mspt_error *err);
/* Write atomically (temporary file, fsync, rename). */
int mspt_yaml_save(const mspt_node *root, const char *path, mspt_error *err);

#endif
