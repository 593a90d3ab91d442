/*
 * tar.c - pax tar through libarchive, with errors carried out of its callbacks in a cf_err.
 */
#include "archive/tar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
static int la_fail(cf_err *err, int cb_rc, const cf_err *cb_err, struct archive *a,
                   const char *what, const char *name)
{
    if (cb_rc) {
        if (err)
            *err = *cb_err;
        return cb_rc;
    }
    int e = archive_errno(a);
    return cf_err_set(err, e == ENOENT ? CF_ENOTFOUND : e == EACCES ? CF_EDENIED : CF_EIO,
                      "%s \"%s\": %s", what, name, archive_error_string(a) ? archive_error_string(a) : "failed");
}

int cf_tar_write_dir(const char *dir, cf_archive_sink_fn sink, void *sink_ctx, uint64_t *files,
                     cf_err *err)
{
    wctx w = {.sink = sink, .ctx = sink_ctx};
    struct archive *out = archive_write_new(), *disk = archive_read_disk_new();
    struct archive_entry *e = archive_entry_new();
    struct archive_entry_linkresolver *links = archive_entry_linkresolver_new();
    char *buf = malloc(1 << 16);
    uint64_t count = 0;
    int rc = 0;
    size_t dlen = strlen(dir);
    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--;
    if (!out || !disk || !e || !links || !buf) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    archive_write_set_format_pax_restricted(out);
    archive_entry_linkresolver_set_strategy(links, archive_format(out));
    /* Blocks of 64 KiB rather than tar's 10 KiB records: fewer sink calls, same stream. */
    archive_write_set_bytes_per_block(out, 1 << 16);
    archive_write_set_bytes_in_last_block(out, 1);
    if (archive_write_open2(out, &w, NULL, write_cb, NULL, NULL) != ARCHIVE_OK) {
        rc = la_fail(err, w.rc, &w.err, out, "cannot start the tar stream for", dir);
        goto out;
    }
    archive_read_disk_set_symlink_physical(disk);
    archive_read_disk_set_standard_lookup(disk);
    if (archive_read_disk_open(disk, dir) != ARCHIVE_OK) {
        rc = la_fail(err, 0, NULL, disk, "cannot open directory", dir);
        goto out;
    }
    for (;;) {
        archive_entry_clear(e);
        int r = archive_read_next_header2(disk, e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            rc = la_fail(err, 0, NULL, disk, "cannot read", dir);
            goto out;
        }
        archive_read_disk_descend(disk);
        const char *path = archive_entry_pathname(e);
        if (strncmp(path, dir, dlen) != 0 || (path[dlen] != '/' && path[dlen] != '\0'))
            continue; /* cannot happen: the walk stays under dir */
        if (path[dlen] == '\0')
            continue; /* the root itself: the destination directory stands for it */
        char *rel = strdup(path + dlen + 1);
        if (!rel) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        archive_entry_set_pathname(e, rel);
        free(rel);
        /* Second and later names of a file become hard-link entries without data. For tar
         * formats the resolver never defers an entry, so e stays ours and spare stays NULL. */
        struct archive_entry *cur = e, *spare = NULL;
        archive_entry_linkify(links, &cur, &spare);
        if (cur != e || spare) {
            rc = cf_err_set(err, CF_EINTERNAL, "hard link resolution deferred \"%s\"", path);
            goto out;
        }
        if (archive_write_header(out, e) < ARCHIVE_WARN) {
            rc = la_fail(err, w.rc, &w.err, out, "cannot write the tar header of", path);
            goto out;
        }
        count++;
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_size(e) == 0)
            continue;
        const char *src = archive_entry_sourcepath(e);
        FILE *f = fopen(src, "rb");
        if (!f) {
            rc = cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot open \"%s\"", src);
            goto out;
        }
        size_t n;
        while ((n = fread(buf, 1, 1 << 16, f)) > 0) {
            if (archive_write_data(out, buf, n) < 0) {
                fclose(f);
                rc = la_fail(err, w.rc, &w.err, out, "cannot write the data of", src);
                goto out;
            }
        }
        int bad = ferror(f);
        fclose(f);
        if (bad) {
            rc = cf_err_set(err, CF_EIO, "cannot read \"%s\"", src);
            goto out;
        }
    }
    if (archive_write_close(out) != ARCHIVE_OK)
        rc = la_fail(err, w.rc, &w.err, out, "cannot finish the tar stream of", dir);
out:
    if (files)
        *files = count;
    archive_entry_free(e);
    if (links)
        archive_entry_linkresolver_free(links);
    if (disk)
        archive_read_free(disk);
    if (out)
        archive_write_free(out);
    free(buf);
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

static int join(const char *dest, const char *rel, char **out)
{
    size_t n = strlen(dest) + strlen(rel) + 2;
    *out = malloc(n);
    if (!*out)
        return CF_ENOMEM;
    snprintf(*out, n, "%s/%s", dest, rel);
    return 0;
}

int cf_tar_extract(const char *dest, cf_tar_pull_fn pull, void *pull_ctx, uint64_t *files,
                   cf_err *err)
{
    rctx r = {.pull = pull, .ctx = pull_ctx};
    struct archive *in = archive_read_new(), *disk = archive_write_disk_new();
    uint64_t count = 0;
    int rc = 0;
    char *full = NULL, *name = NULL, *root = NULL;
    if (!in || !disk) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    /* Entries are joined onto dest, so they are absolute by the time libarchive sees them:
     * unsafe_path() checked the names as stored, and dest is resolved so that its own
     * ancestors hold no symlink for SECURE_SYMLINKS to trip on. */
    if (!(root = realpath(dest, NULL))) {
        rc = cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot extract into \"%s\"", dest);
        goto out;
    }
    int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                ARCHIVE_EXTRACT_SECURE_SYMLINKS;
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
        if (why) {
            rc = cf_err_set(err, CF_EDENIED, "refusing to extract tar entry \"%s\": it %s",
                            name, why);
            goto out;
        }
        free(full);
        if (join(root, name, &full) != 0) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        archive_entry_set_pathname(e, full);
        if (link) {
            char *lfull;
            if (join(root, link, &lfull) != 0) {
                rc = cf_err_set(err, CF_ENOMEM, "out of memory");
                goto out;
            }
            archive_entry_set_hardlink(e, lfull);
            free(lfull);
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
        *files = count;
    free(full);
    free(name);
    free(root);
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
