#include "kv_types.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *kv_strerror(kv_err err)
{
    switch (err) {
    case KV_OK: return "success";
    case KV_EIO: return "input/output error";
    case KV_ENOMEM: return "out of memory";
    case KV_EINVAL: return "invalid argument";
    case KV_ECORRUPT: return "corrupt data";
    case KV_ERANGE: return "index out of range";
    case KV_ENOENT: return "not found";
    case KV_EEXIST: return "already exists";
    case KV_ETRUNCATED: return "stream ended inside a record";
    }
    return "unknown error";
}

int kv_parse_u64(const char *text, uint64_t *out)
{
    if (!text[0])
        return -1;
    for (const char *c = text; *c; c++)
        if (*c < '0' || *c > '9')
            return -1;
    errno = 0;
    unsigned long long v = strtoull(text, NULL, 10);
    if (errno)
        return -1;
    *out = v;
    return 0;
}

int kv_fd_write(void *fd_ptr, const void *buf, size_t len)
{
    int fd = *(int *)fd_ptr;
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

long kv_fd_read(void *fd_ptr, void *buf, size_t len)
{
    int fd = *(int *)fd_ptr;
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        return (long)n;
    }
}

kv_err kv_fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return KV_ENOMEM;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return KV_EIO;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc == 0 ? KV_OK : KV_EIO;
}
