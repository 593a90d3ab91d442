/*
 * tar.h - the raw stream of a directory snapshot: a POSIX pax tar stream written and extracted
 * with libarchive.
 *
 * Writing walks a directory (not following symlinks) and names entries relative to it, so the
 * stream extracts anywhere. Extraction refuses, naming the entry, any path that is absolute,
 * has a ".." component, or would be written through a symlink (a symlink in the archive may
 * point anywhere, but nothing is ever extracted through one); hard links must stay inside too.
 */
#ifndef CF_ARCHIVE_TAR_H
#define CF_ARCHIVE_TAR_H

#include <stddef.h>
#include <stdint.h>

#include "archive/chunk.h"
#include "core/err.h"

/* What a directory snapshot leaves out. */
typedef struct cf_tar_write_opts {
    /* Shell patterns (fnmatch). One without a '/' matches an entry's name at any depth
     * ("*.log", "cache"); one with a '/' matches the whole path relative to the source
     * ("db/tmp", "/lock": a leading '/' anchors at the source, as it must anyway). A trailing '/'
     * matches directories only. An excluded directory's contents are not walked. */
    const char *const *exclude;
    size_t nexclude;
    int one_file_system; /* store mount points found inside as empty directories */
    /* A file or directory that cannot be read (permission, vanished) fails the walk, naming
     * it, unless allow_unreadable: it is then left out (a directory stays, empty) and told
     * to skipped, whose nonzero return stops the walk. */
    int allow_unreadable;
    int (*skipped)(void *ctx, const char *path, const char *why);
    void *skipped_ctx;
} cf_tar_write_opts;

/* Writes a pax tar stream of everything under dir to sink; o may be NULL (everything).
 * *files (may be NULL) receives the number of entries. */
int cf_tar_write_dir(const char *dir, const cf_tar_write_opts *o, cf_archive_sink_fn sink, void *sink_ctx,
                     uint64_t *files, cf_err *err);

/* Walks dir as cf_tar_write_dir would, reading no file data: the bytes of file data and the
 * entries it would store, so that progress can show how much is left. */
int cf_tar_measure(const char *dir, const cf_tar_write_opts *o, uint64_t *bytes, uint64_t *files,
                   cf_err *err);

/* cf_tar_measure, and a SHA-256 of what says whether the tree changed since another walk: every
 * entry's path, type and mode, owner, size, mtime and ctime to the nanosecond, device and inode.
 * The same tree, unchanged, gives the same digest, and cf_tar_write_dir the same stream. */
int cf_tar_fingerprint(const char *dir, const cf_tar_write_opts *o, uint64_t *bytes, uint64_t *files,
                       unsigned char sha256[CF_SHA256_LEN], cf_err *err);

/* Supplies tar bytes on demand: *p borrowed until the next call, *n = 0 at the end.
 * cf_archive_reader_next has this shape, so restore is cf_tar_extract(dest, reader_pull, r). */
typedef int (*cf_tar_pull_fn)(void *ctx, const void **p, size_t *n, cf_err *err);

/* Extracts the tar stream into the existing directory dest (permissions and mtimes restored,
 * ownership only when running as root). *files (may be NULL) receives the entry count. */
int cf_tar_extract(const char *dest, cf_tar_pull_fn pull, void *pull_ctx, uint64_t *files, cf_err *err);

/* An entry about to be extracted: every entry before it is on disk (not necessarily durable). */
typedef struct cf_tar_entry_info {
    uint64_t offset; /* of its header (its pax header first) in the whole tar stream */
    uint64_t done;   /* entries extracted before it, by this call and the earlier ones resumed */
    const char *rel; /* its path relative to dest, normalized */
    int is_dir;
    unsigned mode;
    int64_t mtime;
    long mtime_ns;
    int64_t uid, gid;
} cf_tar_entry_info;

/* What cf_tar_extract_ex adds to cf_tar_extract: resuming an extraction cut at an entry. */
typedef struct cf_tar_extract_opts {
    /* Called before each entry; its error stops the extraction and is returned. May be NULL. */
    int (*on_entry)(void *ctx, const cf_tar_entry_info *e, cf_err *err);
    void *ctx;
    /* The stream pulled starts at this offset of the whole tar stream, at an entry's header; dest
     * holds what an extraction of the stream wrote of the entries before it (so dest need not be
     * empty, and its symlinks, all that extraction's, are checked as if this one had made them).
     * done_before counts those entries. Directories before it keep what was set when they were
     * created: the caller sets their final modes and times (cf_tar_restore_dir). */
    uint64_t base, done_before;
} cf_tar_extract_opts;
int cf_tar_extract_ex(const char *dest, cf_tar_pull_fn pull, void *pull_ctx, const cf_tar_extract_opts *o,
                      uint64_t *files, cf_err *err);
/* Sets the mode, times (and owner, as root) of the directory dest/rel as extraction does last. */
int cf_tar_restore_dir(const char *dest, const cf_tar_entry_info *e, cf_err *err);

/* Adapts a cf_archive_reader to cf_tar_pull_fn (ctx is the reader). */
int cf_tar_pull_from_reader(void *reader, const void **p, size_t *n, cf_err *err);

#endif
