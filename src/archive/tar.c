/*
 * tar.c - pax tar through libarchive, with errors carried out of its callbacks in a cf_err.
 */
#include "archive/tar.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

typedef struct wctx {
    cf_archive_sink_fn sink;
    void *ctx;
    cf_err err;
    int rc;
} wctx;

static la_ssize_t write_cb(struct archive *a, void *arg, const void *p, size_t n)
{
    wctx *w = arg;
    if ((w->rc = w->sink(w->ctx, p, n, &w->err)) != 0) {
        archive_set_error(a, EIO, "%s", w->err.msg);
        return -1;
    }
    return (la_ssize_t)n;
}

/* The callback's own error wins over libarchive's retelling of it. */
static int la_fail(cf_err *err, int cb_rc, const cf_err *cb_err, struct archive *a, const char *what,
                   const char *name)
{
    if (cb_rc) {
        if (err)
            *err = *cb_err;
        return cb_rc;
    }
    int e = archive_errno(a);
    return cf_err_set(err,
                      e == ENOENT   ? CF_ENOTFOUND
                      : e == EACCES ? CF_EDENIED
                                    : CF_EIO,
                      "%s \"%s\": %s", what, name,
                      archive_error_string(a) ? archive_error_string(a) : "failed");
}

/* File data is read in blocks this large: few system calls, and the sink gets big pieces. */
#define READ_BLOCK ((size_t)1 << 20)

static int excluded(const cf_tar_write_opts *o, const char *rel, int is_dir)
{
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    for (size_t i = 0; o && i < o->nexclude; i++) {
        char pat[4096];
        const char *p = o->exclude[i];
        while (*p == '/')
            p++;
        size_t n = strlen(p);
        if (n >= sizeof pat)
            continue;
        memcpy(pat, p, n + 1);
        if (n && pat[n - 1] == '/') {
            if (!is_dir)
                continue;
            pat[--n] = '\0';
        }
        int anchored = strchr(o->exclude[i], '/') && strchr(o->exclude[i], '/')[1] != '\0';
        if (n && fnmatch(pat, anchored ? rel : base, anchored ? FNM_PATHNAME : 0) == 0)
            return 1;
    }
    return 0;
}

/* An unreadable entry: an error naming it, or, when allowed, a note and a skip (returns 1). */
static int unreadable(const cf_tar_write_opts *o, const char *rel, int e, cf_err *err)
{
    if (!o || !o->allow_unreadable)
        return cf_err_sys(err, CF_EUNREADABLE, e,
                          "cannot read \"%s\"; no snapshot was created (--allow-unreadable stores the rest "
                          "and lists what was left out)",
                          rel);
    int rc = o->skipped ? o->skipped(o->skipped_ctx, rel, strerror(e)) : 0;
    return rc ? cf_err_set(err, rc, "stopped at \"%s\"", rel) : 1;
}

/*
 * The walk behind cf_tar_write_dir (out set) and cf_tar_measure (out NULL): libarchive's
 * directory reader, not following symlinks, with our exclusions, mount-point and readability
 * rules applied before an entry is written, so that a left-out entry leaves no trace.
 */
/* What tells an entry changed since an earlier walk: a new write moves the mtime or the ctime,
 * a replaced file the inode; the path and the metadata the tar header stores complete it. */
static void fingerprint_entry(cf_hash *fp, const char *rel, struct archive_entry *e)
{
    const struct stat *st = archive_entry_stat(e);
    char line[256];
    int n = snprintf(line, sizeof line, "\n%llu %llu %o %u %u %lld %lld.%09ld %lld.%09ld\n",
                     (unsigned long long)st->st_dev, (unsigned long long)st->st_ino, (unsigned)st->st_mode,
                     (unsigned)st->st_uid, (unsigned)st->st_gid, (long long)st->st_size,
                     (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec,
                     st->st_ctim.tv_nsec);
    cf_hash_update(fp, rel, strlen(rel) + 1);
    cf_hash_update(fp, line, (size_t)n);
}

static int walk(const char *dir, const cf_tar_write_opts *o, struct archive *out, wctx *w, uint64_t *files,
                uint64_t *bytes, cf_hash *fp, cf_err *err)
{
    struct archive *disk = archive_read_disk_new();
    struct archive_entry *e = archive_entry_new();
    struct archive_entry_linkresolver *links = out ? archive_entry_linkresolver_new() : NULL;
    char *buf = out ? malloc(READ_BLOCK) : NULL;
    uint64_t count = 0, data = 0;
    int rc = 0;
    size_t dlen = strlen(dir);
    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--;
    if (!disk || !e || (out && (!links || !buf))) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    if (out)
        archive_entry_linkresolver_set_strategy(links, archive_format(out));
    archive_read_disk_set_symlink_physical(disk);
    archive_read_disk_set_standard_lookup(disk);
    struct stat root;
    if (stat(dir, &root) != 0) {
        rc = cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot open directory \"%s\"", dir);
        goto out;
    }
    if (archive_read_disk_open(disk, dir) != ARCHIVE_OK) {
        rc = la_fail(err, 0, NULL, disk, "cannot open directory", dir);
        goto out;
    }
    for (;;) {
        archive_entry_clear(e);
        int r = archive_read_next_header2(disk, e);
        if (r == ARCHIVE_EOF)
            break;
        const char *path = archive_entry_pathname(e);
        /* FAILED is one entry libarchive could not open for its metadata (sparse map, ACLs):
         * an unreadable file, named relative to dir like every other. */
        if (r == ARCHIVE_FAILED && !out)
            continue; /* measuring: an estimate, and the real walk reports it */
        if (r == ARCHIVE_FAILED && path && strncmp(path, dir, dlen) == 0 && path[dlen] == '/') {
            int e_no = archive_errno(disk) > 0 ? archive_errno(disk) : EIO;
            if ((rc = unreadable(o, path + dlen + 1, e_no, err)) < 0)
                goto out;
            rc = 0;
            continue;
        }
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            rc = la_fail(err, 0, NULL, disk, "cannot read", path ? path : dir);
            goto out;
        }
        if (strncmp(path, dir, dlen) != 0 || (path[dlen] != '/' && path[dlen] != '\0'))
            continue; /* cannot happen: the walk stays under dir */
        int is_dir = archive_entry_filetype(e) == AE_IFDIR;
        if (path[dlen] == '\0') {
            archive_read_disk_descend(disk); /* the root: the destination directory stands for it */
            continue;
        }
        char *rel = strdup(path + dlen + 1);
        if (!rel) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        int fd = -1;
        if (excluded(o, rel, is_dir)) {
            free(rel);
            continue;
        }
        if (is_dir) {
            int other_fs = o && o->one_file_system && archive_entry_dev(e) != root.st_dev;
            DIR *probe = other_fs ? NULL : opendir(path);
            /* A mount point (one_file_system) or an unreadable directory (allowed) is stored
             * as an empty directory: not descended into. */
            if (probe)
                archive_read_disk_descend(disk);
            if (!other_fs && out && !probe && (rc = unreadable(o, rel, errno, err)) < 0) {
                free(rel);
                goto out;
            }
            rc = 0;
            if (probe)
                closedir(probe);
        } else if (out && archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0) {
            fd = open(archive_entry_sourcepath(e), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                rc = unreadable(o, rel, errno, err);
                free(rel);
                if (rc < 0)
                    goto out;
                rc = 0;
                continue;
            }
        }
        count++;
        if (fp)
            fingerprint_entry(fp, rel, e);
        if (archive_entry_filetype(e) == AE_IFREG)
            data += (uint64_t)archive_entry_size(e);
        if (!out) {
            free(rel);
            continue;
        }
        archive_entry_set_pathname(e, rel);
        free(rel);
        /* Reading a file moves its access time (relatime): the same tree must make the same
         * stream again for an interrupted upload to be resumed, so no access time goes into a
         * header (libarchive's restricted pax writes none today; this keeps it so). */
        archive_entry_unset_atime(e);
        /* Second and later names of a file become hard-link entries without data. For tar
         * formats the resolver never defers an entry, so e stays ours and spare stays NULL. */
        struct archive_entry *cur = e, *spare = NULL;
        archive_entry_linkify(links, &cur, &spare);
        if (cur != e || spare) {
            if (fd >= 0)
                close(fd);
            rc = cf_err_set(err, CF_EINTERNAL, "hard link resolution deferred \"%s\"", path);
            goto out;
        }
        if (archive_write_header(out, e) < ARCHIVE_WARN) {
            if (fd >= 0)
                close(fd);
            rc = la_fail(err, w->rc, &w->err, out, "cannot write the tar header of", path);
            goto out;
        }
        if (fd < 0)
            continue;
        /* A hard link's later names carry no data: their size is 0 after linkify. */
        ssize_t n = 0;
        while (archive_entry_size(e) > 0 && (n = read(fd, buf, READ_BLOCK)) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                break;
            if (archive_write_data(out, buf, (size_t)n) < 0) {
                close(fd);
                rc = la_fail(err, w->rc, &w->err, out, "cannot write the data of", path);
                goto out;
            }
        }
        int read_errno = n < 0 ? errno : 0;
        close(fd);
        if (read_errno) {
            rc = cf_err_sys(err, CF_EIO, read_errno, "cannot read \"%s\"", path);
            goto out;
        }
    }
out:
    if (files)
        *files = count;
    if (bytes)
        *bytes = data;
    archive_entry_free(e);
    if (links)
        archive_entry_linkresolver_free(links);
    if (disk)
        archive_read_free(disk);
    free(buf);
    return rc;
}

int cf_tar_write_dir(const char *dir, const cf_tar_write_opts *o, cf_archive_sink_fn sink, void *sink_ctx,
                     uint64_t *files, cf_err *err)
{
    wctx w = {.sink = sink, .ctx = sink_ctx};
    struct archive *out = archive_write_new();
    if (files)
        *files = 0;
    if (!out)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    archive_write_set_format_pax_restricted(out);
    /* Unblocked: file data goes from our read buffer to the sink without libarchive copying
     * it into records first; the stream is the same, padded to 512-byte blocks. */
    archive_write_set_bytes_per_block(out, 0);
    archive_write_set_bytes_in_last_block(out, 1);
    int rc = 0;
    if (archive_write_open2(out, &w, NULL, write_cb, NULL, NULL) != ARCHIVE_OK)
        rc = la_fail(err, w.rc, &w.err, out, "cannot start the tar stream for", dir);
    if (!rc)
        rc = walk(dir, o, out, &w, files, NULL, NULL, err);
    if (!rc && archive_write_close(out) != ARCHIVE_OK)
        rc = la_fail(err, w.rc, &w.err, out, "cannot finish the tar stream of", dir);
    archive_write_free(out);
    return rc;
}

int cf_tar_measure(const char *dir, const cf_tar_write_opts *o, uint64_t *bytes, uint64_t *files, cf_err *err)
{
    return walk(dir, o, NULL, NULL, files, bytes, NULL, err);
}

int cf_tar_fingerprint(const char *dir, const cf_tar_write_opts *o, uint64_t *bytes, uint64_t *files,
                       unsigned char sha256[CF_SHA256_LEN], cf_err *err)
{
    cf_hash *fp = cf_hash_new(CF_HASH_SHA256);
    if (!fp)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    int rc = walk(dir, o, NULL, NULL, files, bytes, fp, err);
    if (!rc && cf_hash_final(fp, sha256) != 0)
        rc = cf_err_set(err, CF_EINTERNAL, "cannot hash the walk of \"%s\"", dir);
    cf_hash_free(fp);
    return rc;
}

typedef struct rctx {
    cf_tar_pull_fn pull;
    void *ctx;
    cf_err err;
    int rc;
} rctx;

static la_ssize_t read_cb(struct archive *a, void *arg, const void **p)
{
    rctx *r = arg;
    size_t n = 0;
    if ((r->rc = r->pull(r->ctx, p, &n, &r->err)) != 0) {
        archive_set_error(a, EIO, "%s", r->err.msg);
        return -1;
    }
    return (la_ssize_t)n;
}

/* Our own check before libarchive's, for a message that names the entry and the reason. */
static const char *unsafe_path(const char *p)
{
    if (!p || !*p)
        return "has an empty name";
    if (p[0] == '/')
        return "is an absolute path";
    for (const char *s = p; *s;) {
        const char *end = strchr(s, '/');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len == 2 && s[0] == '.' && s[1] == '.')
            return "has a \"..\" component";
        s += len;
        while (*s == '/')
            s++;
    }
    return NULL;
}

/* p rewritten in place as the filesystem resolves it: no "." components, no repeated or
 * trailing '/', so that the symlink check below sees the paths the filesystem will use. */
static void normalize(char *p)
{
    char *out = p;
    for (const char *s = p; *s;) {
        while (*s == '/')
            s++;
        const char *end = strchr(s, '/');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len == 0)
            break;
        if (!(len == 1 && s[0] == '.')) {
            if (out != p)
                *out++ = '/';
            memmove(out, s, len);
            out += len;
        }
        s += len;
    }
    *out = '\0';
}

/*
 * The symlinks an extraction has created, by path relative to the destination. The
 * destination starts empty, so these are the only symlinks under it, and an entry whose parent
 * path holds one would be written through it. Checking names against this set replaces
 * libarchive's SECURE_SYMLINKS, which lstat()s and opens every component of every absolute
 * path: about ten system calls per file, a quarter of a restore's system time.
 */
typedef struct link_set {
    char **slot;
    size_t cap, n;
} link_set;

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static int link_set_has(const link_set *s, const char *p, size_t n)
{
    if (!s->n)
        return 0;
    for (size_t i = fnv1a(p, n) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slot[i])
            return 0;
        if (strlen(s->slot[i]) == n && memcmp(s->slot[i], p, n) == 0)
            return 1;
    }
}

static int link_set_add(link_set *s, const char *p)
{
    size_t n = strlen(p);
    if (link_set_has(s, p, n))
        return 0;
    if (2 * (s->n + 1) > s->cap) {
        link_set bigger = {calloc(s->cap ? 2 * s->cap : 64, sizeof(char *)), s->cap ? 2 * s->cap : 64, 0};
        if (!bigger.slot)
            return CF_ENOMEM;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i]) {
                size_t j = fnv1a(s->slot[i], strlen(s->slot[i])) & (bigger.cap - 1);
                while (bigger.slot[j])
                    j = (j + 1) & (bigger.cap - 1);
                bigger.slot[j] = s->slot[i];
                bigger.n++;
            }
        free(s->slot);
        *s = bigger;
    }
    size_t i = fnv1a(p, n) & (s->cap - 1);
    while (s->slot[i])
        i = (i + 1) & (s->cap - 1);
    if (!(s->slot[i] = strdup(p)))
        return CF_ENOMEM;
    s->n++;
    return 0;
}

static void link_set_free(link_set *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->slot[i]);
    free(s->slot);
}

/* The symlink that a normalized path's parent directories go through, or NULL. */
static const char *through_symlink(const link_set *s, const char *p, char *buf, size_t cap)
{
    for (const char *slash = strchr(p, '/'); s->n && slash; slash = strchr(slash + 1, '/'))
        if (link_set_has(s, p, (size_t)(slash - p))) {
            snprintf(buf, cap, "%.*s", (int)(slash - p), p);
            return buf;
        }
    return NULL;
}

static int join(const char *dest, const char *rel, char **out)
{
    size_t n = strlen(dest) + strlen(rel) + 2;
    *out = malloc(n);
    if (!*out)
        return CF_ENOMEM;
    snprintf(*out, n, "%s/%s", dest, rel);
    return 0;
}

/* Adds every symlink under root/rel (rel "" for root) to s, relative to root. */
static int collect_symlinks(link_set *s, int dirfd, const char *rel, cf_err *err)
{
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return cf_err_sys(err, CF_EIO, errno, "cannot read the directory \"%s\" of the restore", rel);
    }
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s%s%s", rel, *rel ? "/" : "", de->d_name) >= (int)sizeof path) {
            rc = cf_err_set(err, CF_ETOOBIG, "path too long under \"%s\"", rel);
            break;
        }
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            rc = cf_err_sys(err, CF_EIO, errno, "cannot stat \"%s\" of the restore", path);
        else if (S_ISLNK(st.st_mode))
            rc = link_set_add(s, path) ? cf_err_set(err, CF_ENOMEM, "out of memory") : 0;
        else if (S_ISDIR(st.st_mode)) {
            int fd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rc = fd < 0 ? cf_err_sys(err, CF_EIO, errno, "cannot open \"%s\" of the restore", path)
                        : collect_symlinks(s, fd, path, err);
        }
    }
    closedir(d);
    return rc;
}

/* dest/rel opened as a directory one component at a time, never following a symlink: an entry
 * extracted later may have replaced a directory of the state by a symlink to anywhere. */
static int open_dir_beneath(const char *dest, const char *rel)
{
    int fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char part[PATH_MAX];
    for (const char *s = rel; fd >= 0 && *s;) {
        size_t len = strcspn(s, "/");
        if (len == 0 || len >= sizeof part) {
            s += len ? len : 1;
            continue;
        }
        memcpy(part, s, len);
        part[len] = '\0';
        int next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        fd = next;
        s += len;
    }
    return fd;
}

int cf_tar_restore_dir(const char *dest, const cf_tar_entry_info *e, cf_err *err)
{
    int fd = open_dir_beneath(dest, e->rel);
    if (fd < 0)
        return cf_err_sys(err, CF_EIO, errno, "cannot open the directory \"%s\" of the restore", e->rel);
    struct timespec ts[2] = {{e->mtime, e->mtime_ns}, {e->mtime, e->mtime_ns}};
    int rc = 0;
    if (geteuid() == 0 && fchown(fd, (uid_t)e->uid, (gid_t)e->gid) != 0)
        rc = cf_err_sys(err, CF_EIO, errno, "cannot set the owner of \"%s\"", e->rel);
    else if (fchmod(fd, e->mode & 07777) != 0 || futimens(fd, ts) != 0)
        rc = cf_err_sys(err, CF_EIO, errno, "cannot set the mode and times of \"%s\"", e->rel);
    close(fd);
    return rc;
}

int cf_tar_extract(const char *dest, cf_tar_pull_fn pull, void *pull_ctx, uint64_t *files, cf_err *err)
{
    return cf_tar_extract_ex(dest, pull, pull_ctx, NULL, files, err);
}

int cf_tar_extract_ex(const char *dest, cf_tar_pull_fn pull, void *pull_ctx, const cf_tar_extract_opts *o,
                      uint64_t *files, cf_err *err)
{
    rctx r = {.pull = pull, .ctx = pull_ctx};
    struct archive *in = archive_read_new(), *disk = archive_write_disk_new();
    cf_tar_extract_opts none = {0};
    if (!o)
        o = &none;
    uint64_t count = 0;
    int rc = 0;
    char *full = NULL, *name = NULL, *root = NULL, *target = NULL;
    link_set links = {0};
    if (!in || !disk) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    /* Entries are joined onto dest, so they are absolute by the time libarchive sees them:
     * unsafe_path() checked the names as stored, and the link set (above) what they go
     * through. dest must be empty, or the set would not know every symlink under it. */
    if (!(root = realpath(dest, NULL))) {
        rc = cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot extract into \"%s\"", dest);
        goto out;
    }
    if (o->base) {
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = fd < 0 ? cf_err_sys(err, CF_EIO, errno, "cannot open \"%s\"", dest)
                    : collect_symlinks(&links, fd, "", err);
        if (rc)
            goto out;
    }
    DIR *d = o->base ? NULL : opendir(root);
    struct dirent *de = NULL;
    while (d && (de = readdir(d)) && (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")))
        ;
    if (d)
        closedir(d);
    if (!o->base && (!d || de)) {
        rc = cf_err_set(err, d ? CF_EEXISTS : CF_EIO, "cannot extract into \"%s\": %s", dest,
                        d ? "it is not empty" : "cannot read it");
        goto out;
    }
    int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT;
    if (geteuid() == 0)
        flags |= ARCHIVE_EXTRACT_OWNER;
    archive_write_disk_set_options(disk, flags);
    archive_write_disk_set_standard_lookup(disk);
    archive_read_support_format_tar(in);
    if (archive_read_open(in, &r, NULL, read_cb, NULL) != ARCHIVE_OK) {
        rc = la_fail(err, r.rc, &r.err, in, "cannot read the tar stream for", dest);
        goto out;
    }
    for (;;) {
        struct archive_entry *e;
        int x = archive_read_next_header(in, &e);
        if (x == ARCHIVE_EOF)
            break;
        if (x < ARCHIVE_WARN) {
            rc = la_fail(err, r.rc, &r.err, in, "cannot read the tar stream for", dest);
            goto out;
        }
        free(name);
        const char *stored_name = archive_entry_pathname(e);
        /* A copy: the entry's own string is replaced below, and messages need the stored name. */
        if (!(name = strdup(stored_name ? stored_name : ""))) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        const char *why = unsafe_path(name), *link = archive_entry_hardlink(e);
        if (!why && link && (why = unsafe_path(link)) != NULL)
            why = "is a hard link whose target leaves the destination";
        free(target);
        target = NULL;
        if (link && !(target = strdup(link))) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        char rel[PATH_MAX];
        snprintf(rel, sizeof rel, "%s", name);
        normalize(rel);
        if (target)
            normalize(target);
        char via[PATH_MAX];
        const char *sym = NULL;
        if (!why && (sym = through_symlink(&links, rel, via, sizeof via)) != NULL)
            why = "would be written through a symlink";
        else if (!why && target && (sym = through_symlink(&links, target, via, sizeof via)) != NULL)
            why = "is a hard link through a symlink";
        else if (!why && !*rel)
            why = "names the destination itself";
        if (why) {
            rc = sym ? cf_err_set(err, CF_EDENIED, "refusing to extract tar entry \"%s\": it %s (\"%s\")",
                                  name, why, sym)
                     : cf_err_set(err, CF_EDENIED, "refusing to extract tar entry \"%s\": it %s", name, why);
            goto out;
        }
        if (o->on_entry) {
            const struct stat *st = archive_entry_stat(e);
            cf_tar_entry_info info = {o->base + (uint64_t)archive_read_header_position(in),
                                      o->done_before + count,
                                      rel,
                                      archive_entry_filetype(e) == AE_IFDIR,
                                      (unsigned)st->st_mode,
                                      (int64_t)archive_entry_mtime(e),
                                      archive_entry_mtime_nsec(e),
                                      (int64_t)archive_entry_uid(e),
                                      (int64_t)archive_entry_gid(e)};
            if ((rc = o->on_entry(o->ctx, &info, err)) != 0)
                goto out;
        }
        free(full);
        if (join(root, rel, &full) != 0) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        archive_entry_set_pathname(e, full);
        if (target) {
            char *lfull;
            if (join(root, target, &lfull) != 0) {
                rc = cf_err_set(err, CF_ENOMEM, "out of memory");
                goto out;
            }
            archive_entry_set_hardlink(e, lfull);
            free(lfull);
        }
        /* A hard link to a symlink is a symlink too. */
        int is_symlink =
            target ? link_set_has(&links, target, strlen(target)) : archive_entry_filetype(e) == AE_IFLNK;
        if (is_symlink && link_set_add(&links, rel) != 0) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        if (archive_write_header(disk, e) < ARCHIVE_WARN) {
            rc = cf_err_set(err, CF_EDENIED, "cannot extract tar entry \"%s\": %s", name,
                            archive_error_string(disk));
            goto out;
        }
        count++;
        const void *buf;
        size_t size;
        la_int64_t off;
        while ((x = archive_read_data_block(in, &buf, &size, &off)) == ARCHIVE_OK) {
            if (archive_write_data_block(disk, buf, size, off) < ARCHIVE_WARN) {
                rc = la_fail(err, 0, NULL, disk, "cannot write", full);
                goto out;
            }
        }
        if (x != ARCHIVE_EOF) {
            rc = la_fail(err, r.rc, &r.err, in, "cannot read the data of tar entry", name);
            goto out;
        }
        if (archive_write_finish_entry(disk) < ARCHIVE_WARN) {
            rc = la_fail(err, 0, NULL, disk, "cannot finish", full);
            goto out;
        }
    }
    if (archive_write_close(disk) != ARCHIVE_OK)
        rc = la_fail(err, 0, NULL, disk, "cannot finish extracting into", dest);
out:
    if (files)
        *files = o->done_before + count;
    free(full);
    free(name);
    free(root);
    free(target);
    link_set_free(&links);
    if (in)
        archive_read_free(in);
    if (disk)
        archive_write_free(disk);
    return rc;
}

int cf_tar_pull_from_reader(void *reader, const void **p, size_t *n, cf_err *err)
{
    return cf_archive_reader_next(reader, p, n, err);
}
