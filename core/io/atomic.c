/* Atomic file replacement, see atomic.h. */
#include "io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fsync_dir_of(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int mspt_atomic_write(const char *path, mspt_write_fn fn, void *ud,
                      mspt_error *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot create: %s",
                               tmp, strerror(errno));
    if (fn(fp, ud, err) != 0) {
        fclose(fp);
        unlink(tmp);
        mspt_error_prefix(err, "%s", path);
        return MSPT_ERR_RUNTIME;
    }
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        int e = errno;
        fclose(fp);
        unlink(tmp);
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: write failed: %s",
                               path, strerror(e));
    }
    if (fclose(fp) != 0) {
        int e = errno;
        unlink(tmp);
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: write failed: %s",
                               path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot replace: %s",
                               path, strerror(e));
    }
    fsync_dir_of(path);
    return 0;
}
