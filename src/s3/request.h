/*
 * request.h - pure functions over the parts of an S3 request: which operation it is, ranges,
 * bucket and key naming rules, the URL encoding S3 uses, and dates. No I/O, no allocation
 * beyond what the caller's buffers hold.
 */
#ifndef CF_S3_REQUEST_H
#define CF_S3_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"

#define CF_S3_MAX_KEY_LEN 1024

typedef enum cf_s3_op {
    CF_S3_OP_UNKNOWN = 0,
    CF_S3_OP_LIST_BUCKETS,
    CF_S3_OP_CREATE_BUCKET,
    CF_S3_OP_HEAD_BUCKET,
    CF_S3_OP_DELETE_BUCKET,
    CF_S3_OP_LIST_OBJECTS,    /* GET /bucket without list-type=2 */
    CF_S3_OP_LIST_OBJECTS_V2, /* GET /bucket?list-type=2 */
    CF_S3_OP_GET_BUCKET_LOCATION,
    CF_S3_OP_GET_BUCKET_VERSIONING, /* GET /bucket?versioning */
    CF_S3_OP_LIST_OBJECT_VERSIONS,  /* GET /bucket?versions */
    CF_S3_OP_DELETE_OBJECTS,        /* POST /bucket?delete */
    CF_S3_OP_GET_BUCKET_POLICY,     /* GET|PUT|DELETE /bucket?policy */
    CF_S3_OP_PUT_BUCKET_POLICY,
    CF_S3_OP_DELETE_BUCKET_POLICY,
    CF_S3_OP_GET_BUCKET_CORS, /* GET|PUT|DELETE /bucket?cors */
    CF_S3_OP_PUT_BUCKET_CORS,
    CF_S3_OP_DELETE_BUCKET_CORS,
    CF_S3_OP_CORS_PREFLIGHT, /* OPTIONS /bucket[/key]: unauthenticated, as browsers send it */
    CF_S3_OP_POST_OBJECT,    /* POST /bucket, multipart/form-data: a browser form upload */
    CF_S3_OP_ADMIN,          /* /_admin/...: coffer's own API (set by the server) */
    CF_S3_OP_PUT_OBJECT,
    CF_S3_OP_GET_OBJECT,
    CF_S3_OP_HEAD_OBJECT,
    CF_S3_OP_DELETE_OBJECT,
    CF_S3_OP_COPY_OBJECT,               /* PutObject with x-amz-copy-source (set by the server) */
    CF_S3_OP_CREATE_MULTIPART_UPLOAD,   /* POST /bucket/key?uploads */
    CF_S3_OP_UPLOAD_PART,               /* PUT /bucket/key?partNumber=N&uploadId=U */
    CF_S3_OP_UPLOAD_PART_COPY,          /* UploadPart with x-amz-copy-source (set by the server) */
    CF_S3_OP_COMPLETE_MULTIPART_UPLOAD, /* POST /bucket/key?uploadId=U */
    CF_S3_OP_ABORT_MULTIPART_UPLOAD,    /* DELETE /bucket/key?uploadId=U */
    CF_S3_OP_LIST_PARTS,                /* GET /bucket/key?uploadId=U */
    CF_S3_OP_LIST_MULTIPART_UPLOADS,    /* GET /bucket?uploads */
    CF_S3_OP_GET_OBJECT_TAGGING,        /* GET /bucket/key?tagging */
    CF_S3_OP_PUT_OBJECT_TAGGING,
    CF_S3_OP_DELETE_OBJECT_TAGGING,
    CF_S3_OP_UNSUPPORTED,        /* a known S3 sub-resource we do not implement: NotImplemented */
    CF_S3_OP_METHOD_NOT_ALLOWED, /* e.g. POST /bucket/key without a sub-resource */
    CF_S3_OP_COUNT_
} cf_s3_op;

/* Name of the operation as used in logs and metrics ("GetObject"). */
const char *cf_s3_op_name(cf_s3_op op);

/* True when the query has a parameter of that name (has_param(ctx, "uploads")). */
typedef int (*cf_s3_has_param_fn)(void *ctx, const char *name);
typedef const char *(*cf_s3_get_param_fn)(void *ctx, const char *name); /* NULL when absent */

/*
 * Routes a path-style request. bucket and key are the decoded path split at the first '/'
 * after the leading one ("" bucket for "/", "" key for "/bucket" or "/bucket/").
 * Query sub-resources (acl, tagging, uploads, uploadId, versioning, policy, cors, lifecycle,
 * website, …) that this server does not implement give CF_S3_OP_UNSUPPORTED.
 */
cf_s3_op cf_s3_route(const char *method, const char *bucket, const char *key, cf_s3_get_param_fn get_param,
                     void *ctx);

/*
 * Parses a Range header ("bytes=0-99", "bytes=100-", "bytes=-500") against an object of size
 * bytes. Returns 0 and fills *start and *len when satisfiable; CF_ERANGE when well-formed but
 * unsatisfiable (start >= size, or a zero suffix); CF_EINVAL when malformed or a multi-range
 * (S3 then ignores the header and sends the whole object).
 */
int cf_s3_range_parse(const char *header, uint64_t size, uint64_t *start, uint64_t *len);

/* S3 bucket naming rules: 3-63 chars of a-z 0-9 . -, starts and ends with letter or digit, no
 * "..", not an IPv4 address, not starting with "xn--" or "sthree-", not ending with "-s3alias"
 * or "--ol-s3". Returns 1 when valid. */
int cf_s3_bucket_name_valid(const char *name);

/* A key is valid when it is 1..1024 bytes of well-formed UTF-8. Returns 0, CF_ETOOBIG (too
 * long) or CF_EINVAL (empty or not UTF-8). */
int cf_s3_key_check(const char *key, size_t len);
/* Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
int cf_s3_utf8_valid(const unsigned char *s, size_t n);

/* Percent-decodes n bytes of s onto out ('+' is kept as '+'); CF_EINVAL on a bad escape. */
int cf_s3_url_decode(cf_buf *out, const char *s, size_t n);

/* The encoding S3 uses for encoding-type=url in listings: like the SigV4 encoding but '/' kept. */
int cf_s3_url_encode_key(cf_buf *out, const char *s, size_t n);

/* "Wed, 12 Oct 2009 17:50:00 GMT" (out: 30 bytes). */
void cf_s3_http_date(time_t t, char out[30]);
/* "2009-10-12T17:50:30.000Z" (out: 25 bytes), with milliseconds from ns. */
void cf_s3_iso8601(int64_t ns, char out[25]);
/* Parses "2026-12-31T12:00:00Z", with or without fractional seconds (S3's XML dates, a POST
 * policy's expiration) into seconds since the epoch; CF_EINVAL when malformed. */
int cf_s3_parse_iso8601(const char *s, int64_t *out);
/* Parses an RFC 1123 / RFC 850 / asctime HTTP date; CF_EINVAL when malformed. */
int cf_s3_parse_http_date(const char *s, time_t *out);

#endif
