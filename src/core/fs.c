#include "core/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cf_fs_write_all(int fd, const void *p, size_t n, const char *path, cf_err *err)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot write '%s'", path);
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int cf_fs_fsync_dir(const char *path, cf_err *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot open directory '%s'", path);
    int rc = 0;
    if (fsync(fd) != 0)
        rc = cf_err_sys(err, CF_EIO, errno, "cannot fsync directory '%s'", path);
    close(fd);
    return rc;
}

int cf_fs_mkdirs(const char *path, mode_t mode, cf_err *err)
{
    char tmp[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof tmp)
        return cf_err_set(err, CF_EINVAL, "path '%s' is empty or too long", path);
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(tmp, mode) == 0) {
            /* The new entry lives in the parent directory; make it durable there. */
            char parent[PATH_MAX];
            memcpy(parent, tmp, strlen(tmp) + 1);
            char *slash = strrchr(parent, '/');
            if (slash == parent)
                slash[1] = '\0';
            else if (slash)
                *slash = '\0';
            else
                strcpy(parent, ".");
            int rc = cf_fs_fsync_dir(parent, err);
            if (rc)
                return rc;
        } else if (errno != EEXIST) {
            return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot create directory '%s'", tmp);
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

int cf_fs_remove_tree(const char *path, cf_err *err)
{
    if (nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return cf_err_sys(err, CF_EIO, errno, "cannot remove '%s'", path);
    return 0;
}

int cf_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, cf_err *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return cf_err_set(err, CF_EINVAL, "path '%s' is too long", path);
    /* The name is predictable: O_EXCL | O_NOFOLLOW so that a link planted there is never
     * followed; what is there (a crash's leftover, a link) is unlinked once and the open retried. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot create '%s'", tmp);
    int rc = 0;
    if (fchmod(fd, mode) != 0)
        rc = cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot set the mode of '%s'", tmp);
    if (!rc)
        rc = cf_fs_write_all(fd, data, len, tmp, err);
    if (!rc && fsync(fd) != 0)
        rc = cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot write '%s'", tmp);
    if (close(fd) != 0 && !rc)
        rc = cf_err_sys(err, CF_EIO, errno, "cannot write '%s'", tmp);
    if (!rc && rename(tmp, path) != 0)
        rc = cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot rename '%s' to '%s'", tmp, path);
    if (rc) {
        unlink(tmp);
        return rc;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    return cf_fs_fsync_dir(dir, err);
}

int cf_fs_read_small(const char *path, size_t max, char **out, size_t *len, cf_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot open '%s'", path);
    char *data = malloc(max + 1);
    if (!data) {
        close(fd);
        return cf_err_set(err, CF_ENOMEM, "out of memory reading '%s'", path);
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, data + n, max + 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            free(data);
            return cf_err_sys(err, CF_EIO, e, "cannot read '%s'", path);
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            close(fd);
            free(data);
            return cf_err_set(err, CF_ETOOBIG, "file '%s' is larger than %zu bytes", path, max);
        }
    }
    close(fd);
    data[n] = '\0';
    *out = data;
    if (len)
        *len = n;
    return 0;
}

int cf_fs_env_or_file(const char *name, char *out, size_t outlen, cf_err *err)
{
    const char *v = getenv(name);
    if (v && *v) {
        if (strlen(v) >= outlen)
            return cf_err_set(err, CF_EINVAL, "%s is longer than %zu characters", name, outlen - 1);
        snprintf(out, outlen, "%s", v);
        return 1;
    }
    char fname[128];
    snprintf(fname, sizeof fname, "%s_FILE", name);
    const char *path = getenv(fname);
    if (!path || !*path)
        return 0;
    char *data = NULL;
    size_t len;
    int rc = cf_fs_read_small(path, outlen - 1 + 2, &data, &len, err);
    if (rc) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg); /* err->msg cannot be both source and target */
        return cf_err_set(err, rc, "%s: %s", fname, why);
    }
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
        data[--len] = '\0';
    if (len == 0 || len >= outlen) {
        free(data);
        return cf_err_set(err, CF_EINVAL, "%s: file '%s' must hold 1 to %zu characters", fname, path,
                          outlen - 1);
    }
    snprintf(out, outlen, "%s", data);
    free(data);
    return 1;
}
