/* The mspt command's subcommands. Each returns the process exit code:
 * 0 success, 1 runtime failure, 2 usage or configuration error. */
#ifndef MSPT_CLI_H
#define MSPT_CLI_H

#include <mspt/error.h>

int mspt_cmd_run(int argc, char **argv);
int mspt_cmd_plugins(int argc, char **argv);
int mspt_cmd_reconstruct(int argc, char **argv);
int mspt_cmd_plot(int argc, char **argv);
int mspt_cmd_prepare(int argc, char **argv);

/* Does argv hold -h or --help?  Every command answers it: its usage on
 * stdout, exit 0. */
int mspt_cli_wants_help(int argc, char **argv);

/* Print "mspt: message" as one line on stderr; returns the exit code. */
int mspt_cli_fail(const mspt_error *err);
int mspt_cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
