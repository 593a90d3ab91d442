/*
 * store.h - the object store engine: buckets and objects in an LMDB index plus data files.
 * Knows nothing of HTTP. See docs/internals/store.md for the on-disk layout and the commit
 * protocol.
 *
 * Threads: one cf_store is shared by all threads; every function is thread-safe. Writers are
 * serialised only for the short LMDB commit, never while a body streams in, and object writes
 * that commit at the same time share one commit (group commit, txn.c).
 */
#ifndef CF_STORE_STORE_H
#define CF_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/log.h"

#define CF_STORE_ID_LEN 16

typedef struct cf_store cf_store;

/* A stored header to replay on GET/HEAD: "content-type", "cache-control", "x-amz-meta-color". */
typedef struct cf_store_kv {
    char *name; /* lowercase */
    char *value;
} cf_store_kv;

typedef struct cf_store_segment {
    unsigned char id[CF_STORE_ID_LEN]; /* names the data file objects/ab/cd/<hex id> */
    uint64_t len;
} cf_store_segment;

typedef struct cf_object_info {
    uint64_t size;
    int64_t mtime_ns;
    char etag[72];        /* without quotes: 32 hex digits, or "<hex>-N" for multipart */
    cf_store_kv *headers; /* owned */
    size_t nheaders;
    cf_store_segment *segs; /* owned */
    size_t nsegs;
    unsigned char *data; /* owned: the body itself when it is kept in the record (then
                            nsegs is 0; NULL for an empty body and for data files) */
} cf_object_info;

/* Frees what an info owns; the struct itself is the caller's. Safe on a zeroed struct. */
void cf_object_info_cleanup(cf_object_info *info);
/* Value of a stored header by lowercase name, or NULL. Borrowed from info. */
const char *cf_object_info_header(const cf_object_info *info, const char *name);

/*
 * Opens (creating when absent) the store in dir and recovers from any crash: removes tmp/,
 * unlinks the files listed as garbage and, unless the previous run shut down cleanly, every
 * data file no record references. *out is freed with cf_store_close.
 */
int cf_store_open(const char *dir, const cf_logger *log, cf_store **out, cf_err *err);
/*
 * Bodies of at most this many bytes are kept in their object's index record instead of a data
 * file of their own (docs/internals/store.md, "Small objects"): such a PUT costs one index
 * commit, shared with the PUTs committing at the same time, instead of a file creation and
 * three flushes. cf_store_set_inline_max changes it for one store (tests: 0 gives every
 * non-empty body a data file).
 */
#define CF_STORE_INLINE_MAX 16384
void cf_store_set_inline_max(cf_store *s, size_t max);
/* Marks a clean shutdown (so the next open skips the orphan scan) and frees. NULL is a no-op. */
void cf_store_close(cf_store *s);
const char *cf_store_dir(const cf_store *s);
/* Bytes of the bodies written so far whose MD5 was computed alone and side by side with other
 * bodies' (crypto/md5.h), for the server's metrics. */
void cf_store_md5_stats(cf_store *s, uint64_t *alone, uint64_t *side_by_side);
/* Readiness: the index answers and a file can be created and removed in tmp/. */
int cf_store_check_ready(cf_store *s, cf_err *err);

/* Buckets. Names are validated by the caller (S3 rules live in src/s3/). */
typedef struct cf_store_bucket {
    char name[64];
    int64_t created_ns;
    uint64_t objects; /* as of the listing */
    uint64_t bytes;
} cf_store_bucket;

int cf_store_bucket_create(cf_store *s, const char *name, cf_err *err); /* CF_EEXISTS */
int cf_store_bucket_delete(cf_store *s, const char *name, cf_err *err); /* CF_ENOTFOUND, CF_ENOTEMPTY */
int cf_store_bucket_exists(cf_store *s, const char *name, cf_err *err); /* 0 or CF_ENOTFOUND */
/* All buckets, sorted by name; *out is freed by the caller with free(). */
int cf_store_bucket_list(cf_store *s, cf_store_bucket **out, size_t *n, cf_err *err);

/*
 * Writing an object: begin, write the body (any number of times), finish (fsync, MD5 known),
 * then commit under a key or abort. Nothing is visible to readers before commit returns 0;
 * abort (or a failed commit) leaves no file behind. The writer is not thread-safe by itself:
 * one request owns it.
 */
typedef struct cf_store_writer cf_store_writer;

int cf_store_writer_begin(cf_store *s, cf_store_writer **out, cf_err *err);
int cf_store_writer_write(cf_store_writer *w, const void *p, size_t n, cf_err *err);
/* The body's declared size, before the first write: a large body then goes through the write
 * pipeline, and MD5 takes it in whole slots, from its first byte. */
void cf_store_writer_expect(cf_store_writer *w, uint64_t size);
/* Flushes the body to stable storage; fills the MD5 and size of what was written. */
int cf_store_writer_finish(cf_store_writer *w, unsigned char md5[16], uint64_t *size, cf_err *err);
/*
 * Makes the finished body the object bucket/key (keylen bytes) with the given headers
 * (copied), replacing any previous version, whose data is then reclaimed. Fills *info when
 * non-NULL. CF_ENOTFOUND when the bucket no longer exists. Frees the writer in every case.
 */
int cf_store_writer_commit(cf_store_writer *w, const char *bucket, const char *key, size_t keylen,
                           const cf_store_kv *headers, size_t nheaders, cf_object_info *info, cf_err *err);
/*
 * A condition on what the key holds at the instant of the commit, checked inside the commit's
 * transaction so that no other writer can slip in between (If-None-Match: *, If-Match). When
 * it fails, the commit returns CF_EPRECOND, changes nothing, and sets `failed`.
 */
typedef enum cf_store_cond_failure {
    CF_STORE_COND_OK = 0,
    CF_STORE_COND_EXISTS,   /* must_not_exist, and the key exists */
    CF_STORE_COND_MISSING,  /* etag_match, and the key does not exist */
    CF_STORE_COND_MISMATCH, /* etag_match, and the key holds another ETag */
} cf_store_cond_failure;

typedef struct cf_store_condition {
    int must_not_exist;
    const char *etag_match; /* without quotes; NULL for none */
    cf_store_cond_failure failed;
} cf_store_condition;

/* The condition the next commit of w must meet (borrowed until then); NULL for none. */
void cf_store_writer_set_condition(cf_store_writer *w, cf_store_condition *cond);
/* Discards the body and frees the writer. NULL is a no-op. */
void cf_store_writer_abort(cf_store_writer *w);

/*
 * Reads the record of bucket/key into *info (caller cleans up). When fd is non-NULL, also opens
 * the data of the first segment for reading (caller closes *fd); the open file stays readable
 * even if the object is overwritten or deleted meanwhile. An object without segments (kept in
 * its record, info->data, or empty) leaves *fd untouched. CF_ENOTFOUND names whether the bucket
 * or the key is missing: *missing_bucket is set to 1 for the former (may be NULL).
 */
int cf_store_object_get(cf_store *s, const char *bucket, const char *key, size_t keylen, cf_object_info *info,
                        int *fd, int *missing_bucket, cf_err *err);
/* Opens the data file of one segment (for objects of several segments). Caller closes. A file
 * shorter than the segment is CF_ECORRUPT (damage: data files are never shortened in place). */
int cf_store_segment_open(cf_store *s, const cf_store_segment *seg, int *fd, cf_err *err);
/* As cf_store_segment_open for segment i of info, where a missing file tells: CF_ENOTFOUND when
 * an overwrite replaced the version (look it up again), CF_ECORRUPT when the version is still
 * there without it (checked by pinning it, only after the open failed). */
int cf_store_part_open(cf_store *s, const cf_object_info *info, size_t i, int *fd, cf_err *err);

/* Sets (value non-NULL) or removes one stored header of an existing object, in place: the data
 * and ETag are unchanged (tagging). CF_ENOTFOUND for a missing bucket or key. */
int cf_store_object_set_header(cf_store *s, const char *bucket, const char *key, size_t keylen,
                               const char *name, const char *value, cf_err *err);

/*
 * A byte range of an object read across its segments, in order. The reader copies what it
 * needs from info and holds that version's data until it is freed, so it reads one whole
 * version even when the key is overwritten or deleted meanwhile. open fails with CF_ENOTFOUND
 * when the version was already replaced (look the key up again). read returns the bytes read,
 * 0 at the end of the range, or a negative CF_E code.
 */
typedef struct cf_store_reader cf_store_reader;
int cf_store_reader_open(cf_store *s, const cf_object_info *info, uint64_t start, uint64_t len,
                         cf_store_reader **out, cf_err *err);
long cf_store_reader_read(cf_store_reader *rd, void *buf, size_t n, cf_err *err);
void cf_store_reader_free(cf_store_reader *rd);

/* Deletes bucket/key; deleting a missing key is not an error (S3 semantics). CF_ENOTFOUND only
 * when the bucket is missing. */
int cf_store_object_delete(cf_store *s, const char *bucket, const char *key, size_t keylen, cf_err *err);

/*
 * Listing in key order (bytewise, as S3). Visits keys of bucket beginning with prefix that sort
 * after `after` (exclusive; "" for the start). With a non-empty delimiter, keys whose remainder
 * after the prefix contains it are rolled up into one common prefix each, visited once and then
 * skipped by a cursor seek, so that a page costs O(page), not O(bucket). Stops after max
 * entries (keys + common prefixes); *truncated tells whether more follow, and *next (caller
 * frees, may be NULL when not truncated) is the last visited key or common prefix, to pass as
 * `after` for the next page.
 */
typedef struct cf_store_list_entry {
    const char *key; /* borrowed, valid during the callback only */
    size_t keylen;
    int is_prefix; /* a common prefix: info is NULL */
    const cf_object_info *info;
} cf_store_list_entry;
typedef int (*cf_store_list_fn)(void *ctx, const cf_store_list_entry *e);

int cf_store_list(cf_store *s, const char *bucket, const char *prefix, size_t prefixlen,
                  const char *delimiter, size_t delimlen, const char *after, size_t afterlen, size_t max,
                  cf_store_list_fn fn, void *ctx, int *truncated, char **next, size_t *nextlen, cf_err *err);

/*
 * Multipart uploads. An upload holds its target bucket/key and the headers the object will get;
 * parts are written with the ordinary writer and committed under a part number (a later part
 * of the same number replaces the earlier). Completion makes the chosen parts, in the caller's
 * order, the segments of the object in one transaction: no data is copied, and every part not
 * chosen is reclaimed. S3's rules (part sizes, order, ETags, checksums) are the caller's.
 */
#define CF_STORE_UPLOAD_ID_LEN 32 /* hex digits */

typedef struct cf_store_upload {
    char id[CF_STORE_UPLOAD_ID_LEN + 1];
    char bucket[64];
    char *key; /* owned */
    size_t keylen;
    int64_t initiated_ns;
    cf_store_kv *headers; /* owned */
    size_t nheaders;
} cf_store_upload;

typedef struct cf_store_part {
    uint32_t number;
    cf_object_info info; /* size, mtime, etag (hex MD5), headers, one segment */
} cf_store_part;

void cf_store_upload_cleanup(cf_store_upload *u);
void cf_store_parts_free(cf_store_part *parts, size_t n);

/* CF_ENOTFOUND when the bucket does not exist. */
int cf_store_upload_create(cf_store *s, const char *bucket, const char *key, size_t keylen,
                           const cf_store_kv *headers, size_t nheaders,
                           char id_out[CF_STORE_UPLOAD_ID_LEN + 1], cf_err *err);
/* CF_ENOTFOUND when no such upload is in progress (or the id is malformed). */
int cf_store_upload_get(cf_store *s, const char *upload_id, cf_store_upload *out, cf_err *err);
/* The uploads in progress in bucket, sorted by key then initiation time; caller frees each
 * with cf_store_upload_cleanup and the array with free(). */
int cf_store_upload_list(cf_store *s, const char *bucket, cf_store_upload **out, size_t *n, cf_err *err);
int cf_store_upload_abort(cf_store *s, const char *upload_id, cf_err *err);
/* Aborts every upload initiated before cutoff_ns, and forgets completions whose record has
 * expired; *aborted (may be NULL) counts the uploads. */
int cf_store_upload_expire(cf_store *s, int64_t cutoff_ns, size_t *aborted, cf_err *err);

/* Commits a finished writer's body as part `number` of the upload; frees w in every case.
 * CF_ENOTFOUND when the upload no longer exists (its body is then discarded). */
int cf_store_part_commit(cf_store_writer *w, const char *upload_id, uint32_t number,
                         const cf_store_kv *headers, size_t nheaders, cf_object_info *info, cf_err *err);
/* Up to max parts numbered after `after`, ascending; *truncated when more follow. */
int cf_store_part_list(cf_store *s, const char *upload_id, uint32_t after, size_t max, cf_store_part **out,
                       size_t *n, int *truncated, cf_err *err);
/*
 * Makes rec (size, etag, headers, and as segments the data of the chosen parts in object order)
 * the object the upload names, replacing any previous version, and ends the upload.
 * rec->mtime_ns is the caller's. CF_EINVAL when a segment is no longer one of the upload's
 * parts (a part was uploaded again meanwhile); CF_ENOTFOUND when the upload or the bucket is gone.
 */
typedef struct cf_store_completion cf_store_completion;
int cf_store_upload_complete(cf_store *s, const char *upload_id, const cf_object_info *rec,
                             cf_store_condition *cond, const cf_store_completion *done, cf_err *err);

/*
 * How an upload completed, kept (when given to cf_store_upload_complete, in the same
 * transaction) until expires_ns so that a client retrying a completion whose answer it lost
 * gets the same answer. The store compares nothing: parts_digest and answer are the caller's.
 */
struct cf_store_completion {
    char bucket[64];
    char key[1025];
    size_t keylen;
    char etag[72];
    unsigned char parts_digest[32];
    char answer[256]; /* more of the answer (checksums), as the caller encodes it */
    int64_t expires_ns;
};
/* CF_ENOTFOUND when the upload did not complete, or its record expired. */
int cf_store_upload_completed(cf_store *s, const char *upload_id, cf_store_completion *out, cf_err *err);

/*
 * Access keys besides root. A key carries one policy ("readwrite", "readonly", "writeonly")
 * on a bucket ("" = every bucket) and a key prefix within it ("" = the whole bucket); what the
 * policies allow is the server's business (src/server/access.c).
 */
typedef struct cf_store_key {
    char access_key[129];
    char secret_key[129];
    char policy[16];
    char bucket[64];
    char prefix[1025];
    int64_t created_ns;
    char rate_group[33]; /* "" = none; see cf_store_rate_group_name_valid */
} cf_store_key;

int cf_store_key_add(cf_store *s, const cf_store_key *key, cf_err *err);                   /* CF_EEXISTS */
int cf_store_key_get(cf_store *s, const char *access_key, cf_store_key *out, cf_err *err); /* CF_ENOTFOUND */
/* All keys, sorted by access key; *out is freed by the caller with free(). */
int cf_store_key_list(cf_store *s, cf_store_key **out, size_t *n, cf_err *err);
int cf_store_key_delete(cf_store *s, const char *access_key, cf_err *err); /* CF_ENOTFOUND */

/* A key's rate group: responses to all its keys share one budget, the setting
 * "rategroup/<name>" (decimal bytes/s) the server keeps (src/server/rate_groups.c). Names are
 * 1 to 32 of [a-z0-9-]; "" (no group) is valid too. */
#define CF_STORE_RATE_GROUP_MAX 32
int cf_store_rate_group_name_valid(const char *name);

/* Small named settings ("policy/<bucket>"). get: *value NUL-terminated, caller frees;
 * CF_ENOTFOUND when unset. put with value NULL removes the setting. */
int cf_store_meta_get(cf_store *s, const char *name, char **value, size_t *len, cf_err *err);
int cf_store_meta_put(cf_store *s, const char *name, const void *value, size_t len, cf_err *err);
/* Visits the settings whose names begin with prefix, in name order; value is len bytes valid
 * during the call. The visitor returns 0 to go on, 1 to stop, or a negative CF_E* to fail. */
typedef int (*cf_store_meta_visitor)(void *ctx, const char *name, const void *value, size_t len);
int cf_store_meta_list(cf_store *s, const char *prefix, cf_store_meta_visitor visit, void *ctx, cf_err *err);

/* Totals for metrics and tests. */
typedef struct cf_store_stats {
    uint64_t buckets;
    uint64_t objects;
    uint64_t bytes;
} cf_store_stats;
int cf_store_stats_get(cf_store *s, cf_store_stats *out, cf_err *err);

/* Tests only: make the n-th following data-file write fail with EIO (0 disables). */
void cf_store_fail_nth_write(cf_store *s, int n);
/* Tests only: make the n-th following group commit fail as a failed flush would (0 disables). */
void cf_store_fail_nth_commit(cf_store *s, int n);
/* Tests only: while hold is set, object commits queue up but none starts; releasing runs the
 * queued ones as one batch. cf_store_commits_queued counts those waiting. */
void cf_store_hold_commits(cf_store *s, int hold);
size_t cf_store_commits_queued(cf_store *s);

#endif
