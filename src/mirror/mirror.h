/*
 * mirror.h - makes a destination repository hold what a source repository holds (coffer mirror).
 * Either side is a cf_repo: a directory or a prefix in a bucket, and the two may be different
 * endpoints with different credentials. Only what differs is copied (the "same" rules of
 * docs/MIRROR.md, decided from the two listings alone: no request per object), on a pool of
 * worker threads; within one endpoint an object is copied by the server; everything else streams
 * from the source's reader to the destination's writer, which makes it visible whole or not at
 * all. A failed file is named in the summary and the others go on.
 */
#ifndef CF_MIRROR_MIRROR_H
#define CF_MIRROR_MIRROR_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/log.h"
#include "storage/repo.h"

typedef struct cf_mirror_side {
    cf_repo *repo;
    const char *url; /* as given, for messages */
    const char *dir; /* the directory's path when a directory side, else NULL */
} cf_mirror_side;

/* Where a run is: the totals are known once both sides are listed (before any transfer). */
typedef struct cf_mirror_progress {
    uint64_t files_done, files_total; /* copies, links and deletes planned, and those finished */
    uint64_t bytes_done, bytes_total; /* bytes to copy, and those written so far */
} cf_mirror_progress;

/* Called from the thread running cf_mirror_run (never from a worker), at most about ten times a
 * second and once at the end. */
typedef void (*cf_mirror_progress_fn)(void *ctx, const cf_mirror_progress *p);

typedef struct cf_mirror_opts {
    int delete_extra, dry_run, jobs; /* jobs 0: 8 */
    const char *const *exclude;
    size_t nexclude;
    /* NULL, or a directory (cf_mirror_dated passes the newest earlier dated copy; the destination
     * is then a directory side). A key the plan would copy whose link_dest/KEY is a regular file
     * (reached without following a symbolic link) the same as the source's by the directory
     * destination's rule is hard-linked instead of copied: linked under a temporary name beside
     * dst/KEY and renamed over it, counted in files_linked and bytes_linked (a failed link is a
     * failed file). A file the destination already holds the same is skipped as always.
     * What --dated relies on, with or without link_dest: an existing destination file is never
     * written into or changed in place (not its bytes, mtime or metadata), only replaced whole by
     * a rename, since it may be a hard link that earlier dated copies share. */
    const char *link_dest;
    const cf_logger *log;
    cf_mirror_progress_fn progress;
    void *progress_ctx;
    /* Optional, dry run only: each planned "copy" and "delete" (key order, the calling thread). */
    void (*planned)(void *ctx, const char *action, const char *key, uint64_t size);
    void *planned_ctx;
} cf_mirror_opts;

typedef struct cf_mirror_failure {
    char *key;
    char *why;
} cf_mirror_failure;

typedef struct cf_mirror_summary {
    uint64_t files_copied, bytes_copied;
    uint64_t files_skipped, bytes_skipped; /* already the same */
    uint64_t files_linked, bytes_linked;   /* link_dest: hard links to the previous copy */
    uint64_t files_deleted;
    uint64_t files_failed;
    cf_mirror_failure *failures; /* every failed file, key order */
    size_t nfailures;
    double seconds;
} cf_mirror_summary;

/*
 * Lists both sides, plans and carries out the copies (and with delete_extra the deletes); with
 * dry_run only plans (the summary then counts what would be done). Returns 0 when the run went
 * through, even if some files failed (out->files_failed, out->failures); an error only when the
 * run as a whole failed (a side could not be listed, out of memory), and out then holds what was
 * done until then. out is always filled and must be freed with cf_mirror_summary_free.
 */
int cf_mirror_run(const cf_mirror_side *src, const cf_mirror_side *dst, const cf_mirror_opts *o,
                  cf_mirror_summary *out, cf_err *err);
void cf_mirror_summary_free(cf_mirror_summary *s);

#endif
