/*
 * repo_dir.c - a repository in a directory. Keys map to relative paths; a key is refused when
 * it could leave the directory ("..", absolute, empty segments), since keys come from
 * manifests and listings of other repositories, which may come from anywhere; an object that is
 * a symbolic link is not followed.
 *
 * Content type and user metadata are extended attributes of the file (dir_meta.c), set on the
 * temporary file before it is renamed into place.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/fs.h"
#include "core/grow.h"
#include "storage/dir_meta.h"
#include "storage/repo_int.h"

typedef struct dir_repo {
    cf_repo base;
    char *path;
} dir_repo;

/* Writeback is started every this many bytes, so that the fsync at commit finds little left to
 * write: without it, committing a 1 GB archive waited about 0.5 s for the disk. */
#define WRITEBACK_STEP ((uint64_t)8 << 20)

typedef struct dir_writer {
    cf_repo_writer base;
    int fd;
    uint64_t written, flushed;
    int64_t mtime; /* set before the rename; 0: leave */
    int no_sync;
    char tmp[PATH_MAX];
    char final[PATH_MAX];
} dir_writer;

#define DIR_OF(r) ((dir_repo *)(r))

static int key_ok(const char *key)
{
    if (!*key || key[0] == '/')
        return 0;
    for (const char *seg = key; seg;) {
        const char *slash = strchr(seg, '/');
        size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return 0;
        seg = slash ? slash + 1 : NULL;
    }
    return 1;
}

static int key_path(const cf_repo *base, const char *key, char *out, cf_err *err)
{
    const dir_repo *r = (const dir_repo *)base;
    if (!key_ok(key))
        return cf_err_set(err, CF_EINVAL, "key '%.200s' could leave the repository directory", key);
    if ((size_t)snprintf(out, PATH_MAX, "%s/%s", r->path, key) >= PATH_MAX)
        return cf_err_set(err, CF_ETOOBIG, "path of key '%.200s' is too long", key);
    /* A directory on the way that is a symbolic link would lead out of the repository (the last
     * component is opened with O_NOFOLLOW, or renamed over, which does not follow it). */
    for (char *slash = out + strlen(r->path) + 1; (slash = strchr(slash, '/')); slash++) {
        struct stat st;
        *slash = '\0';
        int missing = lstat(out, &st) != 0, link = !missing && S_ISLNK(st.st_mode);
        *slash = '/';
        if (link)
            return cf_err_set(err, CF_EINVAL, "key '%.200s' passes through a symbolic link in '%s'", key,
                              r->path);
        if (missing)
            break; /* what is missing is made as real directories */
    }
    return 0;
}

static const cf_repo_ops dir_ops;

static int open_dir(const char *path, int create, cf_repo **out, cf_err *err)
{
    /* Keys are appended to the path: leave them room. */
    if (!path || !*path || strlen(path) > PATH_MAX / 2)
        return cf_err_set(err, CF_EINVAL, "a directory repository needs a path of 1 to %d bytes",
                          PATH_MAX / 2);
    int rc = create ? cf_fs_mkdirs(path, 0700, err) : 0;
    if (rc)
        return rc;
    dir_repo *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    size_t n = strlen(r->path);
    while (n > 1 && r->path[n - 1] == '/')
        r->path[--n] = '\0';
    r->base.ops = &dir_ops;
    r->base.name = r->path;
    *out = &r->base;
    return 0;
}

int cf_repo_open_dir(const char *path, cf_repo **out, cf_err *err)
{
    return open_dir(path, 1, out, err);
}

int cf_repo_open_dir_as_is(const char *path, cf_repo **out, cf_err *err)
{
    return open_dir(path, 0, out, err);
}

static void dir_close(cf_repo *base)
{
    dir_repo *r = DIR_OF(base);
    free(r->path);
    free(r);
}

static int dir_writer_begin(cf_repo *r, const char *key, uint64_t size_hint, const cf_repo_put_opts *o,
                            cf_repo_writer **out, cf_err *err)
{
    (void)size_hint; /* a file needs no plan */
    dir_writer *w = calloc(1, sizeof *w);
    if (!w)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    w->base.repo = r;
    w->fd = -1;
    w->mtime = o ? o->mtime : 0;
    w->no_sync = o ? o->no_sync : 0;
    int rc = key_path(r, key, w->final, err);
    if (!rc) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", w->final);
        *strrchr(dir, '/') = '\0';
        rc = cf_fs_mkdirs(dir, o && o->mode ? 0777 : 0700, err);
    }
    if (rc) {
        free(w);
        return rc;
    }
    unsigned char rnd[8];
    cf_random_bytes(rnd, sizeof rnd);
    /* Beside the target, so that the rename stays within one filesystem (and one NFS dir). */
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp-%02x%02x%02x%02x%02x%02x%02x%02x", w->final, rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                 o && o->mode ? (mode_t)(o->mode & 07777) : 0600);
    if (w->fd < 0) {
        int e = errno;
        rc = cf_err_sys(err, cf_err_from_errno(e), e, "cannot create '%s'", w->tmp);
        free(w);
        return rc;
    }
    if ((rc = cf_dir_meta_set(w->fd, w->tmp, o, err))) {
        close(w->fd);
        unlink(w->tmp);
        free(w);
        return rc;
    }
    *out = &w->base;
    return 0;
}

static int dir_writer_write(cf_repo_writer *base, const void *p, size_t n, cf_err *err)
{
    dir_writer *w = (dir_writer *)base;
    int rc = cf_fs_write_all(w->fd, p, n, w->tmp, err);
    if (rc)
        return rc;
    w->written += n;
    if (w->written - w->flushed >= WRITEBACK_STEP) {
        /* Only a hint: filesystems without it (some NFS) get the full fsync at commit. */
        (void)sync_file_range(w->fd, (off_t)w->flushed, (off_t)(w->written - w->flushed),
                              SYNC_FILE_RANGE_WRITE);
        w->flushed = w->written;
    }
    return 0;
}

static int dir_writer_commit(cf_repo_writer *base, cf_err *err)
{
    dir_writer *w = (dir_writer *)base;
    int rc = 0;
    struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = (time_t)w->mtime}};
    if (w->mtime && futimens(w->fd, times) != 0)
        rc = cf_err_sys(err, CF_EIO, errno, "cannot set the modification time of '%s'", w->tmp);
    if (!rc && !w->no_sync && fsync(w->fd) != 0)
        rc = cf_err_sys(err, CF_EIO, errno, "cannot flush '%s'", w->tmp);
    if (close(w->fd) != 0 && !rc)
        rc = cf_err_sys(err, CF_EIO, errno, "cannot close '%s'", w->tmp);
    w->fd = -1;
    if (!rc && rename(w->tmp, w->final) != 0)
        rc = cf_err_sys(err, CF_EIO, errno, "cannot rename '%s' into place", w->tmp);
    if (!rc && !w->no_sync) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", w->final);
        *strrchr(dir, '/') = '\0';
        rc = cf_fs_fsync_dir(dir, err);
    } else if (rc) {
        unlink(w->tmp);
    }
    free(w);
    return rc;
}

static void dir_writer_abort(cf_repo_writer *base)
{
    dir_writer *w = (dir_writer *)base;
    if (w->fd >= 0)
        close(w->fd);
    unlink(w->tmp);
    free(w);
}

/* The object's file for reading; a symbolic link is refused, whatever it points to. */
static int open_object(const char *path, cf_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0)
        return fd;
    int e = errno;
    if (e == ELOOP)
        return cf_err_set(err, CF_EINVAL, "'%s' is a symbolic link, not an object", path);
    return cf_err_sys(err, e == ENOENT || e == ENOTDIR ? CF_ENOTFOUND : CF_EIO, e, "cannot open '%s'", path);
}

/* The file of key, opened for reading, its path in path. */
static int open_key(cf_repo *r, const char *key, char path[PATH_MAX], cf_err *err)
{
    int rc = key_path(r, key, path, err);
    return rc ? rc : open_object(path, err);
}

/* Bytes [offset, offset+len) (len UINT64_MAX: to the end) in blocks of block bytes. A whole-file
 * stream also widens the read-ahead window, so that the disk keeps streaming while fn works. */
/* Bytes [offset, offset+len) of the open file fd (len UINT64_MAX: to the end) in blocks of
 * block bytes. A whole-file read also widens the read-ahead window, so that the disk keeps
 * streaming while fn works. */
static int read_fd(int fd, const char *path, uint64_t offset, uint64_t len, size_t block, cf_repo_data_fn fn,
                   void *ctx, cf_err *err)
{
    if (offset == 0 && len == UINT64_MAX)
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    char *buf = malloc(block);
    if (!buf)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    int rc = 0;
    uint64_t pos = offset, left = len;
    while (left > 0) {
        size_t want = left < block ? (size_t)left : block;
        ssize_t got = pread(fd, buf, want, (off_t)pos);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = cf_err_sys(err, CF_EIO, errno, "cannot read '%s'", path);
            break;
        }
        if (got == 0) {
            if (len != UINT64_MAX)
                rc = cf_err_set(err, CF_ECORRUPT, "'%s' ends before byte %llu", path,
                                (unsigned long long)(offset + len));
            break;
        }
        if ((rc = fn(ctx, buf, (size_t)got, err)))
            break;
        pos += (uint64_t)got;
        if (len != UINT64_MAX)
            left -= (uint64_t)got;
    }
    free(buf);
    return rc;
}

static int read_blocks(cf_repo *r, const char *key, uint64_t offset, uint64_t len, size_t block,
                       cf_repo_data_fn fn, void *ctx, cf_err *err)
{
    char path[PATH_MAX];
    int fd = open_key(r, key, path, err);
    if (fd < 0)
        return fd;
    int rc = read_fd(fd, path, offset, len, block, fn, ctx, err);
    close(fd);
    return rc;
}

static int dir_get(cf_repo *r, const char *key, uint64_t offset, uint64_t len, cf_repo_data_fn fn, void *ctx,
                   cf_err *err)
{
    return read_blocks(r, key, offset, len, (size_t)1 << 20, fn, ctx, err);
}

static int dir_stream(cf_repo *r, const char *key, cf_repo_data_fn fn, void *ctx, cf_err *err)
{
    return read_blocks(r, key, 0, UINT64_MAX, (size_t)4 << 20, fn, ctx, err);
}

/* A listed file as the walk's one lstat found it: the listing stats each file once. */
typedef struct listed_file {
    char *key;
    uint64_t size, ino;
    struct timespec mtim;
    int special; /* not a regular file (CF_REPO_LIST_SPECIAL) */
} listed_file;

typedef struct walk {
    dir_repo *repo;
    const char *prefix;
    int flags;
    listed_file *v;
    size_t n, cap;
} walk;

int cf_repo_dir_temporary(const char *name)
{
    const char *t = strstr(name, ".tmp-");
    for (const char *next; t && (next = strstr(t + 1, ".tmp-"));)
        t = next;
    if (!t || strlen(t + 5) != 16)
        return 0;
    for (const char *p = t + 5; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static int collect(walk *w, const char *rel, cf_err *err)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s%s%s", w->repo->path, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : cf_err_sys(err, CF_EIO, errno, "cannot list '%s'", dir);
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || cf_repo_dir_temporary(e->d_name) ||
            (e->d_name[0] == '.' && !(w->flags & CF_REPO_LIST_HIDDEN)))
            continue; /* in-flight writes are not objects */
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        /* Prune directories that cannot hold a key with the prefix. */
        size_t sl = strlen(sub), pl = strlen(w->prefix);
        if (strncmp(sub, w->prefix, sl < pl ? sl : pl) != 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        int special = !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
        if (S_ISDIR(st.st_mode)) {
            rc = collect(w, sub, err);
        } else if ((S_ISREG(st.st_mode) || (special && (w->flags & CF_REPO_LIST_SPECIAL))) && sl >= pl) {
            listed_file *v = cf_grow(w->v, &w->cap, w->n, sizeof *v, 64);
            if (v)
                w->v = v;
            char *key = v ? strdup(sub) : NULL;
            if (!key) {
                rc = cf_err_set(err, CF_ENOMEM, "out of memory");
                break;
            }
            w->v[w->n++] = (listed_file){key, (uint64_t)st.st_size, (uint64_t)st.st_ino, st.st_mtim, special};
        }
    }
    closedir(d);
    return rc;
}

/* Changes whenever the file is replaced or rewritten: a mirror's test for "changed". */
static void etag_from(uint64_t ino, uint64_t size, struct timespec mtim, char *out, size_t n)
{
    snprintf(out, n, "\"%llx-%llx-%llx\"", (unsigned long long)ino, (unsigned long long)size,
             (unsigned long long)mtim.tv_sec * 1000000000ull + (unsigned long long)mtim.tv_nsec);
}

static void etag_of(const struct stat *st, char *out, size_t n)
{
    etag_from((uint64_t)st->st_ino, (uint64_t)st->st_size, st->st_mtim, out, n);
}

static int cmp_listed(const void *a, const void *b)
{
    return strcmp(((const listed_file *)a)->key, ((const listed_file *)b)->key);
}

static int dir_list(cf_repo *base, const char *prefix, int flags, cf_repo_list_fn fn, void *ctx, cf_err *err)
{
    dir_repo *r = DIR_OF(base);
    walk w = {r, prefix, flags, NULL, 0, 0};
    int rc = collect(&w, "", err);
    if (!rc && w.n)
        qsort(w.v, w.n, sizeof *w.v, cmp_listed);
    for (size_t i = 0; !rc && i < w.n; i++) {
        const listed_file *f = &w.v[i];
        char etag[80];
        etag_from(f->ino, f->size, f->mtim, etag, sizeof etag);
        cf_repo_entry e = {f->key, f->size, (int64_t)f->mtim.tv_sec, etag, 0, f->special};
        if ((rc = fn(ctx, &e)))
            cf_err_set(err, rc, "listing of '%s' in '%s' stopped by its consumer", prefix, r->path);
    }
    for (size_t i = 0; i < w.n; i++)
        free(w.v[i].key);
    free(w.v);
    return rc;
}

/* The directory holding the file at path (path cut at its last '/'). */
static void parent_of(const char *path, char dir[PATH_MAX])
{
    snprintf(dir, PATH_MAX, "%s", path);
    *strrchr(dir, '/') = '\0';
}

/* An unlink is only a change of the directory's entries: until the directory is synced, a power
 * cut can bring the file back whole. A parent that is gone holds nothing to bring back. */
static int sync_parent(const char *path, cf_err *err)
{
    char dir[PATH_MAX];
    parent_of(path, dir);
    int rc = cf_fs_fsync_dir(dir, err);
    return rc == CF_ENOTFOUND ? 0 : rc;
}

static int unlink_key(cf_repo *r, const char *key, char path[PATH_MAX], cf_err *err)
{
    int rc = key_path(r, key, path, err);
    if (rc)
        return rc;
    if (unlink(path) != 0 && errno != ENOENT)
        return cf_err_sys(err, CF_EIO, errno, "cannot remove '%s'", path);
    return 0;
}

static int dir_delete(cf_repo *r, const char *key, int flags, cf_err *err)
{
    char path[PATH_MAX];
    int rc = unlink_key(r, key, path, err);
    /* Synced also when the file was already missing: another remover may not have synced yet. */
    return rc || (flags & CF_REPO_DELETE_NO_SYNC) ? rc : sync_parent(path, err);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every unlink first, then each directory they touched synced once: a prune of many snapshots
 * in one directory pays one fsync, not one per file. */
static int dir_delete_many(cf_repo *r, const char *const *keys, size_t n, cf_err *err)
{
    char **dirs = n ? calloc(n, sizeof *dirs) : NULL;
    if (n && !dirs)
        return cf_err_set(err, CF_ENOMEM, "removing %zu keys from '%s': out of memory", n, r->name);
    int rc = 0;
    size_t ndirs = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        char path[PATH_MAX];
        if ((rc = unlink_key(r, keys[i], path, err)))
            break;
        *strrchr(path, '/') = '\0';
        if (!(dirs[ndirs] = strdup(path)))
            rc = cf_err_set(err, CF_ENOMEM, "removing %zu keys from '%s': out of memory", n, r->name);
        else
            ndirs++;
    }
    /* What was removed before a failure is synced too: the caller is told those keys are gone. */
    if (ndirs)
        qsort(dirs, ndirs, sizeof *dirs, cmp_str);
    for (size_t i = 0; i < ndirs; i++) {
        if (i && !strcmp(dirs[i], dirs[i - 1]))
            continue;
        cf_err sync_err;
        int src = cf_fs_fsync_dir(dirs[i], &sync_err);
        if (src && src != CF_ENOTFOUND && !rc) {
            rc = src;
            *err = sync_err;
        }
    }
    for (size_t i = 0; i < ndirs; i++)
        free(dirs[i]);
    free(dirs);
    return rc;
}

typedef struct sweep_ctx {
    int64_t before;
    size_t *removed;
} sweep_ctx;

static int sweep_dir(const char *dir, const sweep_ctx *sc, cf_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : cf_err_sys(err, CF_EIO, errno, "cannot list '%s'", dir);
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char full[PATH_MAX];
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        if (lstat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            rc = sweep_dir(full, sc, err);
        else if (cf_repo_dir_temporary(e->d_name) && (int64_t)st.st_mtime < sc->before && unlink(full) == 0)
            (*sc->removed)++;
    }
    closedir(d);
    return rc;
}

static int dir_sweep(cf_repo *base, const char *prefix, int64_t before, size_t *removed, cf_err *err)
{
    char dir[PATH_MAX], trimmed[PATH_MAX];
    snprintf(trimmed, sizeof trimmed, "%s", prefix);
    size_t n = strlen(trimmed);
    int whole_dir = n && trimmed[n - 1] == '/';
    while (n && trimmed[n - 1] == '/')
        trimmed[--n] = '\0';
    if (!n)
        snprintf(dir, sizeof dir, "%s", DIR_OF(base)->path);
    else if (key_path(base, trimmed, dir, err) != 0)
        return err->code;
    char *slash = strrchr(dir, '/');
    if (n && !whole_dir && slash)
        *slash = '\0'; /* a partial last segment: sweep its directory */
    sweep_ctx sc = {before, removed};
    return sweep_dir(dir, &sc, err);
}

/* What cf_repo_stat tells of the open file fd (path names it), into out (zeroed). */
static int info_of_fd(int fd, const char *path, cf_repo_info *out, cf_err *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return cf_err_sys(err, CF_EIO, errno, "cannot stat '%s'", path);
    if (!S_ISREG(st.st_mode))
        return cf_err_set(err, CF_ENOTFOUND, "'%s' is a directory or a special file, not an object", path);
    out->size = (uint64_t)st.st_size;
    out->mtime = (int64_t)st.st_mtime;
    etag_of(&st, out->etag, sizeof out->etag);
    return cf_dir_meta_read(fd, path, out, err);
}

static int dir_stat(cf_repo *r, const char *key, cf_repo_info *out, cf_err *err)
{
    char path[PATH_MAX];
    int fd = open_key(r, key, path, err);
    if (fd < 0)
        return fd;
    int rc = info_of_fd(fd, path, out, err);
    close(fd);
    return rc;
}

typedef struct level_entry {
    char *key; /* "dir/" for a directory */
    struct stat st;
} level_entry;

static int cmp_level(const void *a, const void *b)
{
    return strcmp(((const level_entry *)a)->key, ((const level_entry *)b)->key);
}

/* Reads the one directory prefix names (up to its last '/'), keeping the names that start
 * with the rest of prefix. */
static int read_level(dir_repo *r, const char *prefix, level_entry **out, size_t *count, cf_err *err)
{
    const char *slash = strrchr(prefix, '/');
    size_t dl = slash ? (size_t)(slash - prefix) : 0;
    const char *part = slash ? slash + 1 : prefix;
    char rel[PATH_MAX], dir[PATH_MAX];
    snprintf(rel, sizeof rel, "%.*s", (int)dl, prefix);
    int rc = slash && !dl
                 ? cf_err_set(err, CF_EINVAL, "prefix '%.200s' could leave the repository directory", prefix)
                 : 0;
    if (rc || (dl && (rc = key_path(&r->base, rel, dir, err)) != 0))
        return rc;
    if (!dl)
        snprintf(dir, sizeof dir, "%s", r->path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (dl ? O_NOFOLLOW : 0));
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    int open_errno = errno;
    if (!d && fd >= 0)
        close(fd);
    struct stat st;
    if (!d && dl && lstat(dir, &st) == 0 && S_ISLNK(st.st_mode)) /* ELOOP, or ENOTDIR with O_DIRECTORY */
        return cf_err_set(err, CF_EINVAL, "prefix '%.200s' passes through a symbolic link in '%s'", prefix,
                          r->path);
    if (!d)
        return open_errno == ENOENT || open_errno == ENOTDIR
                   ? 0
                   : cf_err_sys(err, CF_EIO, open_errno, "cannot list '%s'", dir);
    level_entry *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.' || cf_repo_dir_temporary(e->d_name) ||
            strncmp(e->d_name, part, strlen(part)) != 0)
            continue;
        level_entry le;
        char full[PATH_MAX];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        if (lstat(full, &le.st) != 0 || !(S_ISDIR(le.st.st_mode) || S_ISREG(le.st.st_mode)))
            continue;
        int is_dir = S_ISDIR(le.st.st_mode);
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            level_entry *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = cf_err_set(err, CF_ENOMEM, "listing '%s': out of memory", dir);
                break;
            }
            v = nv;
        }
        size_t kl = dl + (dl ? 1 : 0) + strlen(e->d_name) + (size_t)is_dir + 1;
        if (!(le.key = malloc(kl))) {
            rc = cf_err_set(err, CF_ENOMEM, "listing '%s': out of memory", dir);
            break;
        }
        snprintf(le.key, kl, "%s%s%s%s", rel, dl ? "/" : "", e->d_name, is_dir ? "/" : "");
        v[n++] = le;
    }
    closedir(d);
    *out = v;
    *count = n;
    return rc;
}

static int dir_list_dir(cf_repo *base, const char *prefix, cf_repo_list_fn fn, void *ctx, cf_err *err)
{
    dir_repo *r = DIR_OF(base);
    level_entry *v = NULL;
    size_t n = 0;
    int rc = read_level(r, prefix, &v, &n, err);
    if (!rc && n)
        qsort(v, n, sizeof *v, cmp_level);
    for (size_t i = 0; !rc && i < n; i++) {
        char etag[80] = "";
        int is_dir = S_ISDIR(v[i].st.st_mode);
        if (!is_dir)
            etag_of(&v[i].st, etag, sizeof etag);
        cf_repo_entry e = {v[i].key,
                           is_dir ? 0 : (uint64_t)v[i].st.st_size,
                           is_dir ? 0 : (int64_t)v[i].st.st_mtime,
                           etag,
                           is_dir,
                           0};
        if ((rc = fn(ctx, &e)))
            cf_err_set(err, rc, "listing of '%s' in '%s' stopped by its consumer", prefix, r->path);
    }
    for (size_t i = 0; i < n; i++)
        free(v[i].key);
    free(v);
    return rc;
}

/* Copies in the kernel (a reflink where the filesystem shares extents), else through a buffer. */
static int copy_bytes(int from, const char *src, dir_writer *w, cf_err *err)
{
    for (;;) {
        ssize_t n = copy_file_range(from, NULL, w->fd, NULL, (size_t)1 << 30, 0);
        if (n == 0)
            return 0;
        if (n > 0) {
            w->written += (uint64_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
            return cf_err_sys(err, CF_EIO, errno, "cannot copy '%s' to '%s'", src, w->tmp);
        break;
    }
    size_t block = (size_t)1 << 20;
    char *buf = malloc(block);
    if (!buf)
        return cf_err_set(err, CF_ENOMEM, "copy of '%s': out of memory", src);
    int rc = 0;
    for (;;) {
        ssize_t got = read(from, buf, block);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = cf_err_sys(err, CF_EIO, errno, "cannot read '%s'", src);
        if (got <= 0)
            break;
        if ((rc = dir_writer_write(&w->base, buf, (size_t)got, err)))
            break;
    }
    free(buf);
    return rc;
}

static int dir_copy(cf_repo *r, const char *src, const char *dst, const cf_repo_put_opts *o, cf_err *err)
{
    char path[PATH_MAX];
    cf_repo_info *info = calloc(1, sizeof *info);
    if (!info)
        return cf_err_set(err, CF_ENOMEM, "copy of '%s%s': out of memory", r->name, src);
    int fd = open_key(r, src, path, err);
    int rc = fd < 0 ? fd : 0;
    if (!rc && o && o->if_match) {
        /* The file opened is the one copied: its ETag is the copy's. */
        struct stat st;
        if (fstat(fd, &st) != 0)
            rc = cf_err_sys(err, CF_EIO, errno, "cannot stat '%s'", path);
        else
            etag_of(&st, info->etag, sizeof info->etag);
        if (!rc && strcmp(info->etag, o->if_match) != 0)
            rc = cf_err_set(err, CF_EPRECOND, "'%s' changed since it was read (ETag %s, no longer %s)", path,
                            info->etag, o->if_match);
    }
    if (!rc && !o) {
        rc = cf_dir_meta_read(fd, path, info, err);
        if (!rc && !strcmp(info->content_type, CF_DIR_DEFAULT_TYPE))
            info->content_type[0] = '\0'; /* none was stored: store none */
    }
    cf_repo_put_opts keep = cf_repo_opts_of_info(info);
    if (!info->content_type[0])
        keep.content_type = NULL;
    cf_repo_writer *w = NULL;
    if (!rc)
        rc = dir_writer_begin(r, dst, 0, o ? o : &keep, &w, err);
    if (!rc)
        rc = copy_bytes(fd, path, (dir_writer *)w, err);
    if (!rc) {
        rc = dir_writer_commit(w, err);
        w = NULL;
    }
    if (w)
        dir_writer_abort(w);
    if (fd >= 0)
        close(fd);
    free(info);
    return rc;
}

/* The file's fstat and extended attributes, then its bytes, from one open file: what is told is
 * what is read, even when the file is replaced meanwhile. */
static int dir_read(cf_repo *r, const char *key, uint64_t size_hint, cf_repo_info_fn on_info,
                    cf_repo_data_fn fn, void *ctx, cf_err *err)
{
    (void)size_hint; /* the fstat tells */
    char path[PATH_MAX];
    int rc = 0, fd = open_key(r, key, path, err);
    if (fd < 0)
        return fd;
    cf_repo_info *info = calloc(1, sizeof *info);
    rc = info ? info_of_fd(fd, path, info, err)
              : cf_err_set(err, CF_ENOMEM, "read of '%s': out of memory", path);
    uint64_t size = info ? info->size : 0;
    if (!rc)
        rc = on_info(ctx, info, err);
    free(info);
    /* Small files get a buffer of their size: most of a mirror's files are small. */
    size_t block = (size_t)4 << 20;
    if (!rc && size < block)
        block = (size_t)size + 1 > (64 << 10) ? (size_t)size + 1 : (64 << 10);
    if (!rc)
        rc = read_fd(fd, path, 0, UINT64_MAX, block, fn, ctx, err);
    close(fd);
    return rc;
}

static int dir_sync(cf_repo *base, cf_err *err)
{
    dir_repo *r = DIR_OF(base);
    int fd = open(r->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cf_err_sys(err, CF_EIO, errno, "cannot open '%s'", r->path);
    int rc =
        syncfs(fd) != 0 ? cf_err_sys(err, CF_EIO, errno, "cannot sync the filesystem of '%s'", r->path) : 0;
    close(fd);
    return rc;
}

static const cf_repo_ops dir_ops = {
    .close = dir_close,
    .writer_begin = dir_writer_begin,
    .writer_write = dir_writer_write,
    .writer_commit = dir_writer_commit,
    .writer_abort = dir_writer_abort,
    .get = dir_get,
    .stream = dir_stream,
    .list = dir_list,
    .read = dir_read,
    .sync = dir_sync,
    .list_dir = dir_list_dir,
    .stat = dir_stat,
    .copy = dir_copy,
    .del = dir_delete,
    .del_many = dir_delete_many,
    .sweep = dir_sweep,
};
