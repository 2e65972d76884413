/* File-system helpers, see files.h. */
#include "io/files.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* fsync the directory holding path, so the rename itself is durable. */
static int sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + 1) : strdup(".");
    if (!dir)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    /* some file systems cannot sync a directory; nothing more to do then */
    int rc = fsync(fd) != 0 && errno != EINVAL && errno != EROFS ? -1 : 0;
    close(fd);
    return rc;
}

int mspt_atomic_write(const char *path, mspt_write_fn fn, void *ud,
                      mspt_error *err)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp.%ld", path, (long)getpid()) < 0)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: out of memory", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    FILE *fp = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!fp) {
        int rc = mspt_error_set(err, MSPT_ERR_RUNTIME,
                                "%s: cannot create temporary file %s: %s", path,
                                tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return rc;
    }
    mspt_error mine = {0};
    int wrc = fn(fp, ud, &mine);
    int saved = errno;
    if (!wrc && (fflush(fp) != 0 || fsync(fileno(fp)) != 0)) {
        wrc = -1;
        saved = errno;
    }
    if (fclose(fp) != 0 && !wrc) {
        wrc = -1;
        saved = errno;
    }
    int rc = 0;
    if (wrc) {
        if (mine.msg[0])
            rc = mspt_error_set(err, mine.status ? mine.status : MSPT_ERR_RUNTIME,
                                "%s: %s", path, mine.msg);
        else
            rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: writing %s failed: %s",
                                path, tmp, strerror(saved));
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME,
                            "%s: cannot rename %s over it: %s", path, tmp,
                            strerror(errno));
        unlink(tmp);
    } else if (sync_dir(path) != 0) {
        rc = mspt_error_set(err, MSPT_ERR_RUNTIME,
                            "%s: written, but syncing its directory failed: %s",
                            path, strerror(errno));
    }
    free(tmp);
    return rc;
}

static const char *kind(mode_t m)
{
    return S_ISFIFO(m)  ? "a FIFO"
           : S_ISDIR(m) ? "a directory"
           : S_ISCHR(m) ? "a character device"
           : S_ISBLK(m) ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                        : "not a plain file";
}

int mspt_open_regular(const char *path, mspt_error *err)
{
    /* O_NONBLOCK: opening a FIFO with no writer would otherwise wait for
     * one forever; on a regular file it changes nothing once cleared */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot open: %s", path,
                       strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot stat: %s", path,
                       strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        mspt_error_set(err, MSPT_ERR_CONFIG, "%s: not a regular file (%s)", path,
                       kind(sb.st_mode));
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

int mspt_check_regular(const char *path, mspt_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot open: %s", path,
                              strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return mspt_error_set(err, MSPT_ERR_CONFIG, "%s: not a regular file (%s)",
                              path, kind(sb.st_mode));
    return 0;
}

int mspt_make_dirs(const char *path, mspt_error *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: path too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s", buf,
                                  strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: %s", buf, strerror(errno));
    return 0;
}

int mspt_lock_dir(const char *dir, int *fd, mspt_error *err)
{
    char path[PATH_MAX];
    *fd = -1;
    if (snprintf(path, sizeof path, "%s/.mspt.lock", dir) >= (int)sizeof path)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: path too long", dir);
    int l = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (l < 0)
        return mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot create: %s", path,
                              strerror(errno));
    if (flock(l, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        char pid[32] = "";
        ssize_t n = busy ? pread(l, pid, sizeof pid - 1, 0) : 0;
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        int rc = busy ? mspt_error_set(err, MSPT_ERR_CONFIG,
                                       "run_dir %s is in use by another mspt run "
                                       "(pid %s); wait for it to end or choose "
                                       "another run_dir", dir, *pid ? pid : "?")
                      : mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot lock: %s",
                                       path, strerror(errno));
        close(l);
        return rc;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(l, 0) != 0 || pwrite(l, pid, (size_t)len, 0) != len) {
        int rc = mspt_error_set(err, MSPT_ERR_RUNTIME, "%s: cannot write: %s", path,
                                strerror(errno));
        close(l);
        return rc;
    }
    *fd = l;
    return 0;
}

/* "NAME.tmp.<digits>" */
static int is_temporary(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    while (t && strstr(t + 1, ".tmp."))
        t = strstr(t + 1, ".tmp.");
    if (!t || t == name || !t[5])
        return 0;
    for (const char *p = t + 5; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    return 1;
}

long mspt_remove_temporaries(const char *dir, long long *bytes)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    long removed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char path[PATH_MAX];
        struct stat sb;
        if (!is_temporary(de->d_name) ||
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path ||
            lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (unlink(path) == 0) {
            removed++;
            *bytes += (long long)sb.st_size;
        }
    }
    closedir(d);
    return removed;
}
