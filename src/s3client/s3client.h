/*
 * s3client.h - an S3 client on libcurl multi: SigV4-signed requests, keep-alive, retries,
 * parallel multipart upload, parallel ranged download, list iteration, presigned URLs.
 *
 * Works against any S3 server, not only coffer: requests are signed here with crypto/sigv4.h
 * (not CURLOPT_AWS_SIGV4, which mis-encodes some queries), path- or virtual-host-style.
 *
 * Threads: a cf_s3c is used by one thread at a time (cf_s3c_wake excepted). Every call is
 * synchronous; the parallel uploader and downloader keep up to K requests in flight on the
 * client's one multi handle, and all requests share one connection cache (keep-alive).
 *
 * Retries: up to max_attempts tries with full-jitter exponential backoff (base 100 ms, cap 5 s)
 * on HTTP 5xx, 429, timeouts, stalls, reset or refused connections. Never on other 4xx. A
 * Retry-After header (seconds or an HTTP date) lengthens the wait to what it asks, up to
 * CF_S3C_RETRY_AFTER_MAX_S. The retry budget bounds the time a failing store can hold a call:
 * a retry that would start more than retry_budget_ms after the client's first failure since its
 * last success is not made, and the call fails naming the last answer. A transfer that moves no
 * byte for stall_timeout_ms is cut (mid-body too, both directions) and retried. Bodies are
 * re-sent from memory or re-read after the caller's seek callback; a download that fails midway
 * resumes where it stopped (bytes already delivered are not delivered twice).
 *
 * Errors: every operation returns 0 or a negative CF_E… code and fills err with the S3 error
 * code and message from the XML error body: NoSuchKey/NoSuchBucket/NoSuchUpload/404 ->
 * CF_ENOTFOUND, SignatureDoesNotMatch/InvalidAccessKeyId/expired or bad token -> CF_EAUTH,
 * AccessDenied/other 403 -> CF_EDENIED, BucketAlreadyExists… -> CF_EEXISTS, BucketNotEmpty ->
 * CF_ENOTEMPTY, 412 -> CF_EPRECOND, 416 -> CF_ERANGE, BadDigest… -> CF_EDIGEST, EntityTooLarge
 * -> CF_ETOOBIG, 501 -> CF_ENOTSUP, SlowDown/503/429 -> CF_EAGAIN, other 5xx and transport
 * failures -> CF_EIO, other 4xx -> CF_EINVAL. err->answer holds the HTTP status and S3 code
 * behind the failure (status 0 when no answer came): with the error rather than in the client,
 * so that it reaches the caller whichever client of a pool made the request.
 */
#ifndef CF_S3CLIENT_S3CLIENT_H
#define CF_S3CLIENT_S3CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"

/* ---- Configuration ---- */

#define CF_S3C_MAX_ATTEMPTS_DEFAULT 5
#define CF_S3C_STALL_TIMEOUT_DEFAULT_MS 30000L
#define CF_S3C_RETRY_BUDGET_DEFAULT_MS 120000L
/* The longest wait a Retry-After header obtains (a longer one is waited this long). */
#define CF_S3C_RETRY_AFTER_MAX_S 30

typedef struct cf_s3c_config {
    char endpoint[512]; /* "http(s)://host[:port]", no trailing '/' */
    char region[64];
    char access_key[129];
    char secret_key[129];
    char session_token[4096]; /* "" when none; sent as x-amz-security-token */
    int virtual_host;         /* 1: bucket.host/key, 0: host/bucket/key, -1: virtual for
                               * *.amazonaws.com, path otherwise */
    int max_attempts;         /* tries per request, >= 1; 0 means 5 */
    long connect_timeout_ms;  /* 0 means 10 s */
    /* A transfer that moves no byte, in either direction (connecting, sending the body, waiting
     * for the answer, receiving the body), for this long is cut and retried; 0: 30 s. */
    long stall_timeout_ms;
    /* While none of the client's requests succeeds, it keeps retrying for at most this long
     * (from the first failure; any success starts the count again), whatever max_attempts
     * allows; 0: 2 min. So a store that fails every request fails the call in bounded time. */
    long retry_budget_ms;
    const cf_clock *clock; /* the signatures' "now": borrowed for the client's life; NULL = the
                            * system's (core/clock.h) */
} cf_s3c_config;

/* Explicit values (NULL or "" when not given); they win over everything else. */
typedef struct cf_s3c_flags {
    const char *endpoint, *region, *access_key, *profile;
    const char *secret_key; /* for library callers; the CLI passes secret_key_file */
    const char *secret_key_file;
    const char *session_token;
    int virtual_host; /* as in cf_s3c_config; pass -1 for "auto" */
    /* When nothing names an endpoint; NULL: AWS S3 in the resolved region. The command line
     * passes its local server, so that every command talks to the same place. */
    const char *default_endpoint;
} cf_s3c_flags;

/*
 * Fills out from, first found wins:
 *   endpoint: flag, COFFER_ENDPOINT, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, profile
 *             endpoint_url (config file), else flags->default_endpoint, else
 *             https://s3.<region>.amazonaws.com
 *   region:   flag, COFFER_REGION, AWS_REGION, AWS_DEFAULT_REGION, profile region (config
 *             file), else us-east-1
 *   keys:     flag (access key + secret or secret file), COFFER_ACCESS_KEY +
 *             COFFER_SECRET_KEY, COFFER_ROOT_USER + COFFER_ROOT_PASSWORD (the server's own root
 *             variables), AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), the
 *             profile's aws_access_key_id, aws_secret_access_key and aws_session_token in the
 *             credentials file, then in the config file. Every COFFER_* variable may instead be
 *             NAME_FILE naming a file that holds it. The secret (and token) is looked up from the
 *             level the access key came from down, so keys of two different sources are never
 *             paired the other way.
 * The profile is flag, AWS_PROFILE, AWS_DEFAULT_PROFILE, else "default"; the files are
 * AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials) and AWS_CONFIG_FILE (default
 * ~/.aws/config, where sections are "[profile NAME]", or "[default]"). Missing files are fine;
 * no access key or secret is CF_EINVAL with a hint, and out->access_key tells which ("" when
 * no access key was found). flags may be NULL.
 */
int cf_s3c_config_resolve(const cf_s3c_flags *flags, cf_s3c_config *out, cf_err *err);

/* Looks key up in section of the INI file at path ("#" and ";" comments, "key = value",
 * section names and keys trimmed, keys case-sensitive; a later duplicate wins). Returns 1 and
 * fills out when found, 0 when the file, section or key is absent, or a negative CF_E code
 * (value too long for outlen, unreadable file). */
int cf_s3c_ini_get(const char *path, const char *section, const char *key, char *out, size_t outlen,
                   cf_err *err);

/* ---- The client ---- */

typedef struct cf_s3c cf_s3c;

/* Caller frees *out with cf_s3c_free. The config is copied. */
int cf_s3c_new(const cf_s3c_config *cfg, cf_s3c **out, cf_err *err);
void cf_s3c_free(cf_s3c *c);
/* A new client with c's configuration and nothing else of c's (no connections, no counters), for
 * another thread to use while c is in use. Caller frees *out with cf_s3c_free. */
int cf_s3c_new_like(const cf_s3c *c, cf_s3c **out, cf_err *err);

typedef struct cf_s3c_stats {
    uint64_t requests; /* HTTP attempts started, retries included */
    uint64_t retries;
    uint64_t connections; /* new connections opened; far below requests when keep-alive works */
} cf_s3c_stats;
void cf_s3c_get_stats(const cf_s3c *c, cf_s3c_stats *out);
/* 1 when a and b talk to the same endpoint as the same principal (region, keys and session token
 * equal), so that one may read what the other names: a server-side copy between their buckets. */
int cf_s3c_same_principal(const cf_s3c *a, const cf_s3c *b);

/* Returns 0 and fills *n with 0..n bytes copied to buf, or nonzero to abort the request. */
typedef int (*cf_s3c_read_fn)(void *ctx, char *buf, size_t cap, size_t *n);
/* Positions the source at byte off (0 to start over before a retry); 0 or nonzero = cannot. */
typedef int (*cf_s3c_seek_fn)(void *ctx, uint64_t off);
/* Receives body bytes; return 0, or nonzero to abort (the call then fails with CF_EIO). */
typedef int (*cf_s3c_write_fn)(void *ctx, const char *data, size_t n);

/* S3's limits on user metadata: names and values together, and (ours) the number of fields. */
#define CF_S3C_META_MAX 2048
#define CF_S3C_META_FIELDS 64

typedef struct cf_s3c_object_info {
    uint64_t size;         /* Content-Length of HEAD, or of the whole object for a GET */
    char etag[132];        /* as sent, quotes included */
    int64_t last_modified; /* seconds since the epoch, 0 when absent */
    char content_type[128];
    /* x-amz-meta-* of a HEAD or GET answer as "name\0value\0"…, names lower-case without the
     * prefix; fields beyond S3's limit are dropped. */
    char meta[CF_S3C_META_MAX + 2 * CF_S3C_META_FIELDS];
    size_t meta_len;
    /* The standard headers S3 stores with an object ("" when absent). */
    char cache_control[256];
    char content_disposition[512];
    char content_encoding[128];
    char content_language[128];
    char expires[64];
} cf_s3c_object_info;

/* A user metadata field, sent as "x-amz-meta-<name>: <value>"; S3 lower-cases the name. */
typedef struct cf_s3c_meta {
    const char *name, *value;
} cf_s3c_meta;

/* What a write stores beside the bytes. Names are HTTP tokens, unique regardless of case; values
 * hold no control character but tab; names and values together at most CF_S3C_META_MAX bytes,
 * at most CF_S3C_META_FIELDS fields. Anything else is CF_EINVAL before a request is sent. */
typedef struct cf_s3c_put_opts {
    const char *content_type; /* NULL: none sent (the server picks its default) */
    const cf_s3c_meta *meta;
    size_t nmeta;
    /* Standard headers S3 stores and serves back with the object; NULL: none sent. */
    const char *cache_control, *content_disposition, *content_encoding, *content_language, *expires;
} cf_s3c_put_opts;

/* ---- Buckets and objects ---- */

int cf_s3c_create_bucket(cf_s3c *c, const char *bucket, cf_err *err);
int cf_s3c_delete_bucket(cf_s3c *c, const char *bucket, cf_err *err);
int cf_s3c_head_bucket(cf_s3c *c, const char *bucket, cf_err *err);

/* content_type may be NULL. The body's SHA-256 is signed. info (may be NULL) gets the ETag. */
int cf_s3c_put_object(cf_s3c *c, const char *bucket, const char *key, const void *data, size_t len,
                      const char *content_type, cf_s3c_object_info *info, cf_err *err);
/* As cf_s3c_put_object, storing o's content type and user metadata (o may be NULL). */
int cf_s3c_put_object_opts(cf_s3c *c, const char *bucket, const char *key, const void *data, size_t len,
                           const cf_s3c_put_opts *o, cf_s3c_object_info *info, cf_err *err);
/* Streams exactly len bytes from read, signed as UNSIGNED-PAYLOAD. Without seek (NULL) a
 * failure after the first byte was read is not retried. */
int cf_s3c_put_object_stream(cf_s3c *c, const char *bucket, const char *key, uint64_t len,
                             cf_s3c_read_fn read, cf_s3c_seek_fn seek, void *ctx, const char *content_type,
                             cf_s3c_object_info *info, cf_err *err);

/* A byte range: [offset, offset+length); length 0 means to the end. */
typedef struct cf_s3c_range {
    uint64_t offset, length;
} cf_s3c_range;

/* Delivers the object's bytes (or the range's, when range is non-NULL) to write, in order.
 * info (may be NULL) gets size (the whole object's), ETag, Last-Modified, Content-Type. */
int cf_s3c_get_object(cf_s3c *c, const char *bucket, const char *key, const cf_s3c_range *range,
                      cf_s3c_write_fn write, void *ctx, cf_s3c_object_info *info, cf_err *err);
int cf_s3c_head_object(cf_s3c *c, const char *bucket, const char *key, cf_s3c_object_info *info, cf_err *err);
/* S3 answers 204 for a key that does not exist; so does this (returns 0). */
int cf_s3c_delete_object(cf_s3c *c, const char *bucket, const char *key, cf_err *err);
/* DeleteObjects: removes up to CF_S3C_DELETE_MAX keys of bucket in one request; missing keys are
 * not an error. A key the server could not delete fails the call, naming it (CF_EDENIED for
 * AccessDenied, else CF_EIO); the others may be gone. */
#define CF_S3C_DELETE_MAX 1000
int cf_s3c_delete_objects(cf_s3c *c, const char *bucket, const char *const *keys, size_t n, cf_err *err);
/* CopyObject of src_bucket/src_key onto bucket/key, done by the server (S3 copies up to 5 GiB
 * this way). o NULL keeps the source's content type and metadata; otherwise o's replace them.
 * src_etag (NULL: none) pins the source (x-amz-copy-source-if-match): a source whose ETag is
 * another by then is not copied, CF_EPRECOND. info (may be NULL) gets the new ETag and
 * Last-Modified. A missing source is CF_ENOTFOUND. */
int cf_s3c_copy_object(cf_s3c *c, const char *src_bucket, const char *src_key, const char *bucket,
                       const char *key, const cf_s3c_put_opts *o, const char *src_etag,
                       cf_s3c_object_info *info, cf_err *err);

/* ---- Listing (ListObjectsV2) ---- */

typedef struct cf_s3c_list_opts {
    const char *prefix, *delimiter, *start_after; /* NULL when unused */
    int max_keys;                                 /* per page, 0 = server default (1000) */
} cf_s3c_list_opts;

typedef struct cf_s3c_list_entry {
    const char *key; /* the key, or the common prefix when is_prefix */
    int is_prefix;
    uint64_t size;
    const char *etag;
    int64_t last_modified;
} cf_s3c_list_entry;

typedef struct cf_s3c_list cf_s3c_list;
/* Pages are fetched as needed, following continuation tokens. Within a page the objects come
 * first, then the common prefixes. Caller closes *out with cf_s3c_list_close. */
int cf_s3c_list_open(cf_s3c *c, const char *bucket, const cf_s3c_list_opts *o, cf_s3c_list **out,
                     cf_err *err);
/* 1 and *e set (borrowed until the next call), 0 at the end, or a negative CF_E code. */
int cf_s3c_list_next(cf_s3c_list *it, cf_s3c_list_entry *e, cf_err *err);
void cf_s3c_list_close(cf_s3c_list *it);

/* ---- Multipart, one request at a time ---- */

#define CF_S3C_UPLOAD_ID_MAX 1024

typedef struct cf_s3c_part {
    int number; /* 1..10000 */
    char etag[132];
} cf_s3c_part;

int cf_s3c_mpu_create(cf_s3c *c, const char *bucket, const char *key, const char *content_type,
                      char upload_id[CF_S3C_UPLOAD_ID_MAX], cf_err *err);
/* As cf_s3c_mpu_create, storing o's content type and user metadata (o may be NULL). */
int cf_s3c_mpu_create_opts(cf_s3c *c, const char *bucket, const char *key, const cf_s3c_put_opts *o,
                           char upload_id[CF_S3C_UPLOAD_ID_MAX], cf_err *err);
int cf_s3c_mpu_upload_part(cf_s3c *c, const char *bucket, const char *key, const char *upload_id, int number,
                           const void *data, size_t len, char etag[132], cf_err *err);
/* UploadPartCopy: part number is bytes [offset, offset+len) of src_bucket/src_key, copied by the
 * server; with src_etag (may be NULL), only while the source still has that ETag (CF_EPRECOND
 * otherwise), so that the parts of one upload all come from one version. */
int cf_s3c_mpu_upload_part_copy(cf_s3c *c, const char *bucket, const char *key, const char *upload_id,
                                int number, const char *src_bucket, const char *src_key, const char *src_etag,
                                uint64_t offset, uint64_t len, char etag[132], cf_err *err);
/* parts in ascending number order. S3 may answer 200 with an error body; that is an error. */
int cf_s3c_mpu_complete(cf_s3c *c, const char *bucket, const char *key, const char *upload_id,
                        const cf_s3c_part *parts, size_t nparts, cf_s3c_object_info *info, cf_err *err);
int cf_s3c_mpu_abort(cf_s3c *c, const char *bucket, const char *key, const char *upload_id, cf_err *err);

typedef struct cf_s3c_upload_entry {
    const char *key, *upload_id; /* borrowed for the callback */
    int64_t initiated;           /* seconds since the epoch */
} cf_s3c_upload_entry;
/* Calls fn for each multipart upload in progress under prefix (may be NULL), following pages.
 * fn returns 0 to go on, nonzero to stop (then returned as is). */
int cf_s3c_list_uploads(cf_s3c *c, const char *bucket, const char *prefix,
                        int (*fn)(void *ctx, const cf_s3c_upload_entry *u), void *ctx, cf_err *err);

/* One part of an upload in progress, as ListParts tells it. */
typedef struct cf_s3c_part_entry {
    int number;
    uint64_t size;
    const char *etag; /* quoted as the server sent it; borrowed for the callback */
} cf_s3c_part_entry;
/* Calls fn for each part the server holds of upload_id, in number order, following pages.
 * CF_ENOTFOUND when the upload no longer exists (completed, aborted or expired). fn returns 0
 * to go on, nonzero to stop (then returned as is). */
int cf_s3c_mpu_list_parts(cf_s3c *c, const char *bucket, const char *key, const char *upload_id,
                          int (*fn)(void *ctx, const cf_s3c_part_entry *p), void *ctx, cf_err *err);

/* ---- Parallel multipart upload ---- */

typedef struct cf_s3c_uploader cf_s3c_uploader;
/* Starts a multipart upload with up to max_in_flight (1..64) parts of at most part_max bytes in
 * flight. Peak memory: max_in_flight * part_max. Caller ends it with commit or abort. */
int cf_s3c_uploader_begin(cf_s3c *c, const char *bucket, const char *key, const char *content_type,
                          size_t part_max, int max_in_flight, cf_s3c_uploader **out, cf_err *err);
/* As cf_s3c_uploader_begin, storing o's content type and user metadata (o may be NULL; it is
 * used before this returns). */
int cf_s3c_uploader_begin_opts(cf_s3c *c, const char *bucket, const char *key, const cf_s3c_put_opts *o,
                               size_t part_max, int max_in_flight, cf_s3c_uploader **out, cf_err *err);
/* As cf_s3c_uploader_begin_opts, continuing upload_id (made by cf_s3c_mpu_create_opts, maybe
 * by an earlier process) instead of starting one: parts are numbered from 1 again, and each is
 * either sent or, with cf_s3c_uploader_keep, taken as the server already holds it. */
int cf_s3c_uploader_resume(cf_s3c *c, const char *bucket, const char *key, const char *upload_id,
                           size_t part_max, int max_in_flight, cf_s3c_uploader **out, cf_err *err);
/* Counts the next part (len bytes) as one the server holds with this ETag, sending nothing. */
int cf_s3c_uploader_keep(cf_s3c_uploader *u, size_t len, const char *etag, cf_err *err);
/* Stops the parts in flight and frees u, leaving the upload on the server for a later
 * cf_s3c_uploader_resume (or a sweep). NULL is a no-op. */
void cf_s3c_uploader_release(cf_s3c_uploader *u);
/* Copies len (1..part_max) bytes as the next part (numbered 1, 2, …) and sends it; waits for a
 * free slot first. Every part but the last must be at least 5 MiB for S3. Fails with the
 * error of any part that failed for good; the caller then calls abort. */
int cf_s3c_uploader_submit(cf_s3c_uploader *u, const void *data, size_t len, cf_err *err);
/* As submit, without the copy: the part is *buf itself (from malloc, at least part_max bytes),
 * which the uploader keeps; *buf becomes a buffer of the uploader's it no longer needs (same
 * size, or NULL), for the caller to fill next and free in the end. crc32c, when not NULL, is the
 * CRC32C of the len bytes, which the caller computed anyway, so the part is not read again
 * before it is sent. */
int cf_s3c_uploader_submit_buffer(cf_s3c_uploader *u, unsigned char **buf, size_t len, const uint32_t *crc32c,
                                  cf_err *err);
/* Collects the parts that finished and returns how many are still in flight (so submit will not
 * wait while that is below max_in_flight), or the error of a part that failed for good (the
 * caller then aborts). With wait, and parts in flight, first drives them until one finishes or
 * a short while (at most 1 s) passes; cf_s3c_wake from another thread ends that wait early. */
int cf_s3c_uploader_poll(cf_s3c_uploader *u, int wait, cf_err *err);
/* Ends early the current wait for the network of the thread using c, so that its
 * cf_s3c_uploader_poll returns (other calls just wait again). The one call that any thread may
 * make at any time, while c exists. */
void cf_s3c_wake(cf_s3c *c);
/* Waits for every part, completes the upload and frees u (also on failure, after aborting). */
int cf_s3c_uploader_commit(cf_s3c_uploader *u, cf_s3c_object_info *info, cf_err *err);
/* Aborts the upload on the server (best effort) and frees u. NULL is a no-op. */
void cf_s3c_uploader_abort(cf_s3c_uploader *u);

/* ---- Parallel ranged download ---- */

/* Fetches the object in ranges of range_size bytes, up to max_in_flight (1..64) at a time, and
 * delivers the bytes to write in order. Peak memory: max_in_flight * range_size. The ranges are
 * pinned to the ETag seen by a first HEAD (If-Match), so a concurrent overwrite fails the call
 * with CF_EPRECOND instead of mixing versions. info (may be NULL) gets the HEAD's answer. */
int cf_s3c_download(cf_s3c *c, const char *bucket, const char *key, size_t range_size, int max_in_flight,
                    cf_s3c_write_fn write, void *ctx, cf_s3c_object_info *info, cf_err *err);

/* ---- Presigned URLs ---- */

/* Appends "scheme://host/path?X-Amz-…" to out for method ("GET", "PUT", "HEAD", "DELETE") on
 * bucket/key (key may be NULL for the bucket), valid for expires seconds (1..604800). With a
 * session token, X-Amz-Security-Token is signed in. */
int cf_s3c_presign(cf_s3c *c, const char *method, const char *bucket, const char *key, int64_t expires,
                   cf_buf *out, cf_err *err);

#endif
