/*
 * repo.h - where snapshots live: a prefix in a bucket (s3://bucket/prefix) or a directory
 * (a local disk, an NFS mount). Both hold the same objects under the same keys, so a
 * repository can be copied from one kind to the other with any tool.
 *
 * An object becomes visible only whole: the directory backend writes a temporary file beside
 * it, fsyncs, renames and fsyncs the directory; the S3 backend completes a multipart upload.
 */
#ifndef CF_STORAGE_REPO_H
#define CF_STORAGE_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct cf_repo cf_repo;
typedef struct cf_repo_writer cf_repo_writer;

typedef struct cf_repo_entry {
    const char *key; /* relative to the repository, e.g. "ns/ID.json" */
    uint64_t size;
    int64_t mtime; /* seconds since the epoch */
} cf_repo_entry;

typedef int (*cf_repo_list_fn)(void *ctx, const cf_repo_entry *e);
typedef int (*cf_repo_data_fn)(void *ctx, const void *p, size_t n, cf_err *err);

/* A directory repository at path (created when absent). */
int cf_repo_open_dir(const char *path, cf_repo **out, cf_err *err);
/* A repository under root ("" or "a/b") in bucket; the client stays the caller's. A writer
 * whose object outgrows one part uploads on a thread of its own, which alone uses the client
 * until that writer's commit or abort returns: make no other call on the client meanwhile. */
struct cf_s3c;
int cf_repo_open_s3(struct cf_s3c *client, const char *bucket, const char *root, cf_repo **out, cf_err *err);
void cf_repo_close(cf_repo *r);
/* Human name for messages: the URL or the path. */
const char *cf_repo_name(const cf_repo *r);

/* size_hint: the object's expected size, 0 when unknown; an S3 repository picks its part size
 * from it, so that objects larger than 10,000 default parts still upload. */
int cf_repo_writer_begin(cf_repo *r, const char *key, uint64_t size_hint, cf_repo_writer **out, cf_err *err);
int cf_repo_writer_write(cf_repo_writer *w, const void *p, size_t n, cf_err *err);
/* Makes the object visible whole (replacing any previous one) and frees w. */
int cf_repo_writer_commit(cf_repo_writer *w, cf_err *err);
/* Discards what was written; NULL is a no-op. */
void cf_repo_writer_abort(cf_repo_writer *w);

/* Bytes [offset, offset+len) of key (len UINT64_MAX: to the end) to fn. CF_ENOTFOUND. */
int cf_repo_get(cf_repo *r, const char *key, uint64_t offset, uint64_t len, cf_repo_data_fn fn, void *ctx,
                cf_err *err);
/* The whole object key to fn, in order, as fast as the backend can: a directory reads the file
 * sequentially in large blocks, S3 keeps several ranged GETs in flight. fn runs on the calling
 * thread; its error stops the transfer and is returned as is. CF_ENOTFOUND. */
int cf_repo_stream(cf_repo *r, const char *key, cf_repo_data_fn fn, void *ctx, cf_err *err);
/* Every object whose key starts with prefix, in key order. */
int cf_repo_list(cf_repo *r, const char *prefix, cf_repo_list_fn fn, void *ctx, cf_err *err);
/* Removing a missing key is not an error. */
int cf_repo_delete(cf_repo *r, const char *key, cf_err *err);
/* Removes what interrupted writes left under prefix, started before `before` (seconds since
 * the epoch): temporary files of a directory, multipart uploads of a bucket. *removed counts. */
int cf_repo_sweep(cf_repo *r, const char *prefix, int64_t before, size_t *removed, cf_err *err);

#endif
