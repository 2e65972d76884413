/* mspt — errors carried by status codes and one message.
 *
 * Every fallible function returns an mspt_status and, on failure, fills an
 * mspt_error whose message names the file, key or value at fault.  The CLI
 * prints the message on one line and exits with the status as exit code. */
#ifndef MSPT_ERROR_H
#define MSPT_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mspt_status {
    MSPT_OK = 0,
    MSPT_ERR_RUNTIME = 1, /* I/O, numerical failure, resource exhaustion */
    MSPT_ERR_CONFIG = 2   /* bad usage, configuration or plugin */
} mspt_status;

typedef struct mspt_error {
    mspt_status status;
    char msg[1024];
} mspt_error;

/* Fill *err (which may be NULL) and return status. printf-style. */
mspt_status mspt_error_set(mspt_error *err, mspt_status status,
                           const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message: "prefix: old message". */
mspt_status mspt_error_prefix(mspt_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
