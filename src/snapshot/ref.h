/*
 * ref.h - naming snapshots on the command line.
 *
 *   s3://bucket/some/prefix/NAMESPACE[@ID|@latest]
 *   /local/dir/NAMESPACE[@ID|@latest]          (also relative paths, and file://)
 *
 * The last path segment is the namespace (a chain id, a tenant, `topic-partition`); the rest is
 * the repository. A snapshot ID names its creation second: 20261122T153000Z-7f3a (UTC, then 4
 * random hex digits); snapshot/order.h orders snapshots within a second.
 */
#ifndef CF_SNAPSHOT_REF_H
#define CF_SNAPSHOT_REF_H

#include <limits.h>
#include <stdint.h>

#include "archive/manifest.h" /* CF_SNAPSHOT_ID_LEN, cf_snapshot_id_new, cf_snapshot_id_valid */
#include "core/err.h"

typedef struct cf_snapshot_ref {
    int is_s3;
    char bucket[64];     /* s3 */
    char root[PATH_MAX]; /* s3: key prefix without the namespace ("" or "a/b"); dir: the parent directory */
    char ns[256];
    char id[CF_SNAPSHOT_ID_LEN + 1]; /* "" when none was given */
    int latest;                      /* "@latest" */
} cf_snapshot_ref;

/* CF_EINVAL with a message naming what is wrong in text. allow_id: whether "@..." may follow. */
int cf_snapshot_ref_parse(const char *text, int allow_id, cf_snapshot_ref *out, cf_err *err);
/* 1 when ns can name a namespace: not empty, "." or "..", and without control characters, '\\'
 * or '@' (what separates the id). A namespace is one path segment: the caller keeps '/' out. */
int cf_snapshot_ns_valid(const char *ns);
/* The creation time a well-formed ID names, or -1 when it names no real instant (31 Nov). */
int64_t cf_snapshot_id_time(const char *id);

#endif
