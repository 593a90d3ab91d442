/*
 * repo.h - where snapshots live: a prefix in a bucket (s3://bucket/prefix) or a directory
 * (a local disk, an NFS mount). Both hold the same objects under the same keys, so a
 * repository can be copied from one kind to the other with any tool.
 *
 * An object becomes visible only whole: the directory backend writes a temporary file beside
 * it, fsyncs, renames and fsyncs the directory; the S3 backend completes a multipart upload.
 * A write that fails (or is aborted) leaves the previous object at the key as it was.
 *
 * Metadata: an S3 object's content type and x-amz-meta-* fields are S3's. A directory keeps them
 * in extended attributes of the file (user.coffer.content_type, user.coffer.meta.<name>), set on
 * the temporary file before the rename, so bytes and metadata replace the previous ones in one
 * step and the file itself stays byte-identical (cp -a, rsync -X, tar --xattrs keep them; a
 * filesystem without user xattrs refuses a put that carries metadata with CF_ENOTSUP). A
 * directory's ETag is not an MD5: it is made of the file's inode, size and mtime, so it changes
 * whenever the object does, which is what a mirror compares.
 *
 * Threads: every function may be called from several threads at once on one repository; only a
 * writer (and a listing's callback) belongs to the thread using it. A directory needs no state
 * beyond its path. An S3 repository keeps a pool of clients: a call takes one (the caller's client
 * first, others made like it when all are busy: one per concurrent call), and gives it back when
 * it returns; a writer holds one from its first part or its commit until its commit or abort.
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
    int64_t mtime;    /* seconds since the epoch */
    const char *etag; /* quoted; "" when the backend's listing has none */
    int is_prefix;    /* cf_repo_list_dir: a "directory", key ends with '/'; no size, mtime, etag */
    int is_special;   /* CF_REPO_LIST_SPECIAL: not a regular file (a symbolic link, a device...) */
} cf_repo_entry;

/* S3's limits on user metadata (names and values together), and ours on the number of fields. */
#define CF_REPO_META_MAX 2048
#define CF_REPO_META_FIELDS 64

/* One user metadata field (x-amz-meta-<name>); names are HTTP tokens, unique regardless of case
 * (S3 and directories keep them lower-case); values hold no control character but tab. */
typedef struct cf_repo_meta {
    const char *name, *value;
} cf_repo_meta;

/* What a write stores beside the bytes. */
typedef struct cf_repo_put_opts {
    const char *content_type; /* NULL: application/octet-stream */
    const cf_repo_meta *meta;
    size_t nmeta;
    /* The standard headers S3 stores and serves with an object (NULL: none); a directory keeps
     * them in extended attributes as it keeps the content type. Same rules as a content type. */
    const char *cache_control, *content_disposition, *content_encoding, *content_language, *expires;
    /* A directory sets the file's modification time to this (seconds since the epoch) before the
     * rename; 0 leaves it. S3 sets LastModified itself, so an S3 repository ignores it. */
    int64_t mtime;
    /* A directory skips the fsyncs of this write (the file's and its directory's): the caller
     * makes many files durable at once with cf_repo_sync. The rename still makes it whole. */
    int no_sync;
    /* A directory creates the file with these permission bits, and the directories it needs with
     * 0777, both less the umask, as cp and tar do; 0: 0600 and 0700, a repository's private files. */
    unsigned mode;
    /* cf_repo_copy and cf_repo_copy_from only: copy only while the source's ETag is this one (as
     * cf_repo_stat gave it), else CF_EPRECOND and nothing is written, so that a source rewritten
     * since it was read is not copied with what was read of it. S3 sends it as
     * x-amz-copy-source-if-match (the server decides, at the copy); a directory compares it with
     * the ETag of the file it opens to copy. NULL: whatever the source holds. */
    const char *if_match;
} cf_repo_put_opts;

/* What cf_repo_stat tells. meta[] points into buf: use the struct where it was filled. */
typedef struct cf_repo_info {
    uint64_t size;
    int64_t mtime; /* seconds since the epoch */
    char etag[132];
    char content_type[128];
    /* The standard headers of cf_repo_put_opts, "" when absent. */
    char cache_control[256];
    char content_disposition[512];
    char content_encoding[128];
    char content_language[128];
    char expires[64];
    size_t nmeta;
    cf_repo_meta meta[CF_REPO_META_FIELDS];
    char buf[CF_REPO_META_MAX + 2 * CF_REPO_META_FIELDS];
} cf_repo_info;

/* Put options that store what info tells (content type, standard headers, metadata), pointing
 * into info. */
cf_repo_put_opts cf_repo_opts_of_info(const cf_repo_info *info);

typedef int (*cf_repo_list_fn)(void *ctx, const cf_repo_entry *e);
typedef int (*cf_repo_data_fn)(void *ctx, const void *p, size_t n, cf_err *err);
/* What the object holds beside its bytes, before the first byte (cf_repo_read). */
typedef int (*cf_repo_info_fn)(void *ctx, const cf_repo_info *info, cf_err *err);

/* A directory repository at path (created when absent). */
int cf_repo_open_dir(const char *path, cf_repo **out, cf_err *err);
/* The same without creating path: a missing one lists empty and is made by the first write. For
 * a dry run, which must leave the file system as it found it. */
int cf_repo_open_dir_as_is(const char *path, cf_repo **out, cf_err *err);
/* A repository under root ("" or "a/b") in bucket. client becomes the first of the repository's
 * pool until cf_repo_close, which leaves it to the caller: meanwhile make no call of one's own on
 * it. A failure's S3 answer is in err->answer (core/err.h). */
struct cf_s3c;
int cf_repo_open_s3(struct cf_s3c *client, const char *bucket, const char *root, cf_repo **out, cf_err *err);
/* How cf_repo_open_s3_conn reaches the server. Values are explicit; the environment and the AWS
 * files are read (cf_s3c_config_resolve's rule, for what is NULL here) only when use_environment
 * is set, so that a library never picks up keys its application did not give it. */
typedef struct cf_repo_s3_conn {
    const char *endpoint;                /* NULL: AWS S3 in region */
    const char *region;                  /* NULL: us-east-1 */
    const char *access_key, *secret_key; /* both, or (use_environment) neither */
    const char *session_token;           /* NULL when none */
    int virtual_host;                    /* 1: bucket.host/key; 0: path-style unless AWS's endpoint */
    int use_environment;
    /* cf_s3c_config's; 0: its defaults. */
    int max_attempts;
    long stall_timeout_ms, retry_budget_ms;
} cf_repo_s3_conn;
/* As cf_repo_open_s3 with a client of its own, made from c and freed by cf_repo_close (the
 * repository's copy of the secret is wiped then). */
int cf_repo_open_s3_conn(const cf_repo_s3_conn *c, const char *bucket, const char *root, cf_repo **out,
                         cf_err *err);
void cf_repo_close(cf_repo *r);
/* Human name for messages: the URL or the path. */
const char *cf_repo_name(const cf_repo *r);

/* size_hint: the object's expected size, 0 when unknown; an S3 repository picks its part size
 * from it, so that objects larger than 10,000 default parts still upload. */
int cf_repo_writer_begin(cf_repo *r, const char *key, uint64_t size_hint, cf_repo_writer **out, cf_err *err);
/* As cf_repo_writer_begin, storing o's content type and metadata with the object (o may be NULL;
 * it is copied). Bad metadata is CF_EINVAL here, before any byte is written. */
int cf_repo_writer_begin_opts(cf_repo *r, const char *key, uint64_t size_hint, const cf_repo_put_opts *o,
                              cf_repo_writer **out, cf_err *err);
int cf_repo_writer_write(cf_repo_writer *w, const void *p, size_t n, cf_err *err);
/* Makes the object visible whole (replacing any previous one) and frees w. */
int cf_repo_writer_commit(cf_repo_writer *w, cf_err *err);
/* Discards what was written; NULL is a no-op. */
void cf_repo_writer_abort(cf_repo_writer *w);

/* A write that survives its process: an S3 multipart upload whose id the caller keeps (in a
 * small object of its own), so that a later process writing the same bytes continues it. The
 * parts the store already holds are not sent again when the new bytes prove them the same: the
 * size, and the ETag when it is an MD5 (S3's and coffer's for unencrypted parts), else the
 * CRC32C the caller recorded of the part sent before. A directory repository has no such write
 * (CF_ENOTSUP): its caller writes again from the start. */
#define CF_REPO_UPLOAD_ID_MAX 1024
typedef struct cf_repo_resume {
    /* In: the upload to continue, "" for a new one; begin sets it to the upload's id. */
    char upload_id[CF_REPO_UPLOAD_ID_MAX];
    /* In: the part size of the upload continued (0: from the size hint); begin sets the one used. */
    size_t part_size;
    /* In (may be NULL): size and CRC32C of parts 1..nrecorded as sent before. Borrowed. */
    const uint64_t *recorded_size;
    const uint32_t *recorded_crc;
    size_t nrecorded;
    /* In: keep the upload when the writer is aborted or fails (for the next process), instead
     * of aborting it. */
    int keep_on_abort;
    /* Called on the writing thread as each part is handed over (kept: the store's is used), in
     * order; its error stops the write. May be NULL. */
    int (*on_part)(void *ctx, unsigned number, uint64_t size, uint32_t crc32c, int kept, cf_err *err);
    void *ctx;
    /* Out: parts the store held before (begin), and how many of them were kept, and their bytes. */
    unsigned parts_held, parts_kept, parts_sent;
    uint64_t bytes_kept;
} cf_repo_resume;
/* Begins (rs->upload_id "") or continues a resumable write of key; the new upload's id is known
 * when this returns. CF_ENOTFOUND: the upload to continue no longer exists. rs must outlive w. */
int cf_repo_writer_begin_resume(cf_repo *r, const char *key, uint64_t size_hint, cf_repo_resume *rs,
                                cf_repo_writer **out, cf_err *err);
/* Aborts the upload upload_id of key (one a resumable write left); a missing one is no error.
 * A directory has none: nothing to do. */
int cf_repo_upload_abort(cf_repo *r, const char *key, const char *upload_id, cf_err *err);

/* Bytes [offset, offset+len) of key (len UINT64_MAX: to the end) to fn. CF_ENOTFOUND. */
int cf_repo_get(cf_repo *r, const char *key, uint64_t offset, uint64_t len, cf_repo_data_fn fn, void *ctx,
                cf_err *err);
/* As cf_repo_get, and *info gets what cf_repo_stat would tell of the object, from the same
 * answer where the backend can (S3: the ranged GET's headers, so that one request does the work
 * of a HEAD and a GET; elsewhere a stat before the get). An empty object gives its info and no
 * byte; len 0 asks for none (S3: a HEAD). CF_ENOTFOUND. */
int cf_repo_get_info(cf_repo *r, const char *key, uint64_t offset, uint64_t len, cf_repo_info *info,
                     cf_repo_data_fn fn, void *ctx, cf_err *err);
/* The whole object key to fn, in order, as fast as the backend can: a directory reads the file
 * sequentially in large blocks, S3 keeps several ranged GETs in flight. fn runs on the calling
 * thread; its error stops the transfer and is returned as is. CF_ENOTFOUND. */
int cf_repo_stream(cf_repo *r, const char *key, cf_repo_data_fn fn, void *ctx, cf_err *err);
/* The whole object key as cf_repo_stream delivers it, and first (once, before any byte, also for
 * an empty object) what cf_repo_stat would tell of it, taken from the same read: the directory's
 * fstat and extended attributes, S3's response headers. size_hint is the size a listing gave;
 * S3 reads an object of at most 8 MiB in one GET (held in memory until its headers are known),
 * a larger one as cf_repo_stream does. on_info's failure stops the read and is returned as is. */
int cf_repo_read(cf_repo *r, const char *key, uint64_t size_hint, cf_repo_info_fn on_info, cf_repo_data_fn fn,
                 void *ctx, cf_err *err);
/* Every object whose key starts with prefix, in key order. */
int cf_repo_list(cf_repo *r, const char *prefix, cf_repo_list_fn fn, void *ctx, cf_err *err);
/* cf_repo_list's flags, for a directory (S3 has neither): names starting with '.' listed too (never
 * the temporary files of writes in flight), and entries that are not regular files listed with
 * is_special set, so that a caller can say what it leaves out. Neither is followed or read. */
#define CF_REPO_LIST_HIDDEN 1
#define CF_REPO_LIST_SPECIAL 2
int cf_repo_list_flags(cf_repo *r, const char *prefix, int flags, cf_repo_list_fn fn, void *ctx, cf_err *err);
/* One level below prefix, as S3 lists with delimiter '/': the objects whose key starts with
 * prefix and holds no '/' after it, and each deeper level once, as an entry with is_prefix set
 * and the key up to and including that '/'. In key order. */
int cf_repo_list_dir(cf_repo *r, const char *prefix, cf_repo_list_fn fn, void *ctx, cf_err *err);
/* Size, mtime, ETag, content type and metadata of key. CF_ENOTFOUND. */
int cf_repo_stat(cf_repo *r, const char *key, cf_repo_info *out, cf_err *err);
/* Copies src to dst within the repository without the bytes passing through the caller: S3
 * CopyObject (up to 5 GiB; larger objects UploadPartCopy in parts of 512 MiB), a directory
 * copy_file_range (a reflink where the filesystem can) into a temporary file renamed into place.
 * o NULL keeps src's content type and metadata; otherwise o's replace them. dst appears whole or
 * not at all. A missing src is CF_ENOTFOUND. */
int cf_repo_copy(cf_repo *r, const char *src, const char *dst, const cf_repo_put_opts *o, cf_err *err);
/* Copies src_key of src onto dst_key of dst without the bytes passing through the caller, as
 * cf_repo_copy does within one repository: two S3 repositories on the same endpoint with the same
 * credentials (cf_s3c_same_principal), or the same repository. Anything else is CF_ENOTSUP, and
 * the caller copies the bytes itself. o as for cf_repo_copy (its mtime and no_sync ignored). */
int cf_repo_copy_from(cf_repo *dst, const char *dst_key, cf_repo *src, const char *src_key,
                      const cf_repo_put_opts *o, cf_err *err);
/* Makes the writes made with no_sync durable: a directory syncs its filesystem (syncfs); S3
 * writes are durable when they return, so nothing to do there. */
int cf_repo_sync(cf_repo *r, cf_err *err);
/* Removing a missing key is not an error. The removal is durable when it returns: a directory
 * syncs the file's directory after the unlink (else a power cut could bring the file back). */
int cf_repo_delete(cf_repo *r, const char *key, cf_err *err);
/* cf_repo_delete_flags's flag: a directory leaves the removal to the caller's later cf_repo_sync,
 * as a write's no_sync does (S3 ignores it). */
#define CF_REPO_DELETE_NO_SYNC 1
int cf_repo_delete_flags(cf_repo *r, const char *key, int flags, cf_err *err);
/* Removes n keys (S3: DeleteObjects, 1000 per request); missing keys are not an error. Durable
 * when it returns, as cf_repo_delete; a directory syncs each directory it removed from once, after
 * every unlink. On a failure, the keys before the one named in err are gone, the others may be. */
int cf_repo_delete_many(cf_repo *r, const char *const *keys, size_t n, cf_err *err);
/* 1 when name (one path segment) is a directory repository's temporary file of a write in flight,
 * "NAME.tmp-" and 16 lower-case hex digits: never listed as an object, removed by a sweep. */
int cf_repo_dir_temporary(const char *name);
/* Removes what interrupted writes left under prefix, started before `before` (seconds since
 * the epoch): temporary files of a directory, multipart uploads of a bucket. *removed counts. */
int cf_repo_sweep(cf_repo *r, const char *prefix, int64_t before, size_t *removed, cf_err *err);

#endif
