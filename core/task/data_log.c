/* Data problems reported by plugins (see mspt/data_log.h): printed on
 * stderr at once, kept in memory until the run directory exists, then
 * appended to its data_errors.log. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mspt/data_log.h>

/* Lines kept before the log file is known; past this the rest are counted
 * (a corpus of thousands of bad files must not grow memory without bound). */
enum { KEEP_BYTES = 1 << 20 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_path; /* set by mspt_data_log_open */
static FILE *log_file; /* opened at the first line to write */
static char *kept;
static size_t kept_len, dropped, count;

/* Under lock: append what was kept, then `line` (may be NULL). */
static int write_out(const char *line)
{
    if (!log_file && !(log_file = fopen(log_path, "a")))
        return -1;
    if (kept_len)
        fwrite(kept, 1, kept_len, log_file);
    if (dropped)
        fprintf(log_file, "(%zu more lines not kept; see stderr)\n", dropped);
    free(kept);
    kept = NULL;
    kept_len = dropped = 0;
    if (line)
        fprintf(log_file, "%s\n", line);
    return fflush(log_file) ? -1 : 0;
}

static void keep(const char *line, size_t len)
{
    char *k = kept_len + len + 1 <= KEEP_BYTES ? realloc(kept, kept_len + len + 2)
                                               : NULL;
    if (!k) {
        dropped++;
        return;
    }
    kept = k;
    memcpy(kept + kept_len, line, len);
    kept[kept_len + len] = '\n';
    kept_len += len + 1;
    kept[kept_len] = '\0';
}

void mspt_data_warning(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = strlen(line);
    while (len && line[len - 1] == '\n')
        line[--len] = '\0';
    pthread_mutex_lock(&lock);
    count++;
    /* on a terminal, clear a progress bar the line would run into */
    fprintf(stderr, "%s%s\n", isatty(2) ? "\r\033[K" : "", line);
    if (!log_path || write_out(line))
        keep(line, len); /* a failing log file loses nothing said on stderr */
    pthread_mutex_unlock(&lock);
}

size_t mspt_data_warnings(void)
{
    pthread_mutex_lock(&lock);
    size_t n = count;
    pthread_mutex_unlock(&lock);
    return n;
}

mspt_status mspt_data_log_open(const char *dir, mspt_error *err)
{
    pthread_mutex_lock(&lock);
    mspt_status rc = MSPT_OK;
    if (log_file)
        fclose(log_file);
    log_file = NULL;
    free(log_path);
    size_t n = strlen(dir) + sizeof "/data_errors.log";
    log_path = malloc(n);
    if (!log_path)
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "out of memory");
    else
        snprintf(log_path, n, "%s/data_errors.log", dir);
    if (log_path && (kept_len || dropped) && write_out(NULL))
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot write: %s",
                            log_path, strerror(errno));
    pthread_mutex_unlock(&lock);
    return rc;
}

void mspt_data_log_close(void)
{
    pthread_mutex_lock(&lock);
    if (log_file)
        fclose(log_file);
    log_file = NULL;
    free(log_path);
    log_path = NULL;
    pthread_mutex_unlock(&lock);
}
