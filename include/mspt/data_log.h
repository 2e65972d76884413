/* mspt — reporting problems with input data.
 *
 * A dataset plugin that skips a recording it cannot read, or repairs a
 * header field, says so with mspt_data_warning: one line naming the file
 * and the reason.  The core prints it on stderr and appends it to
 * run_dir/data_errors.log; lines reported before the run directory exists
 * (datasets are built first) are kept and written when it is made. */
#ifndef MSPT_DATA_LOG_H
#define MSPT_DATA_LOG_H

#include <stddef.h>

#include <mspt/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Report one data problem (printf-style, no trailing newline needed).
 * Thread-safe. */
void mspt_data_warning(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Lines reported so far in this process. */
size_t mspt_data_warnings(void);

/* Core side: append the lines reported so far, and every later one, to
 * dir/data_errors.log (made when there is a first line to write).  0, or
 * a status with err. */
mspt_status mspt_data_log_open(const char *dir, mspt_error *err);
/* Stop writing to the file (lines are still printed on stderr). */
void mspt_data_log_close(void);

#ifdef __cplusplus
}
#endif
#endif
