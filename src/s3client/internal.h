/*
 * internal.h - what the s3client files share: the client, and one request ("transfer") that
 * carries its own retry state so that many can run on the client's multi handle at once.
 */
#ifndef CF_S3CLIENT_INTERNAL_H
#define CF_S3CLIENT_INTERNAL_H

#include <curl/curl.h>

#include "crypto/sigv4.h"
#include "s3client/s3client.h"

#define CF_S3C_MAX_ACTIVE 128
#define CF_S3C_MAX_PARAMS 8
#define CF_S3C_RESP_MAX ((size_t)16 << 20)
#define CF_S3C_MAX_HDRS (CF_S3C_META_FIELDS + 12) /* room for the standard headers too */

enum { XF_IDLE, XF_RUNNING, XF_WAITING, XF_DONE };

typedef struct cf_s3c_xfer {
    cf_s3c *c;
    CURL *easy;
    struct curl_slist *headers;
    int state, attempt, rc;
    double retry_at;    /* monotonic seconds, while XF_WAITING */
    double retry_after; /* seconds the last answer's Retry-After asked for; -1: none */
    double moved_at;    /* monotonic seconds when the attempt last moved a byte (or began) */
    uint64_t moved;     /* bytes the attempt moved, both directions, as of moved_at */
    int stalled;        /* the attempt was cut for moving nothing for stall_timeout_ms */
    cf_err err;

    /* Request; every pointer is borrowed until the transfer is done. */
    const char *method, *bucket, *key, *content_type;
    cf_sigv4_param params[CF_S3C_MAX_PARAMS];
    size_t nparams;
    int has_range;
    uint64_t range_off, range_len; /* range_len 0: to the end */
    char if_match[140];
    /* Extra x-amz-* headers (user metadata, copy source), all signed: S3 refuses unsigned ones.
     * Names live in hdr_names (lower-case); values are borrowed. */
    cf_sigv4_param hdrs[CF_S3C_MAX_HDRS];
    size_t nhdrs;
    char hdr_names[CF_S3C_META_MAX + CF_S3C_MAX_HDRS * 32];
    size_t hdr_names_len;

    /* Body: memory (body != NULL), a stream (read != NULL) or none. */
    const char *body;
    size_t body_len, body_off;
    cf_s3c_read_fn read;
    cf_s3c_seek_fn seek;
    void *rctx;
    uint64_t stream_len, stream_off;
    char payload_hash[65];
    char crc32c[16]; /* base64 x-amz-checksum-crc32c of the body, "" when not sent */

    /* Response. A 2xx body goes to write when set, else to resp (as does every error body). */
    cf_s3c_write_fn write;
    void *wctx;
    uint64_t delivered; /* bytes given to write, over all attempts */
    int user_abort;
    cf_buf resp;
    long status;
    cf_s3c_object_info info;
    uint64_t total_size; /* from Content-Range "…/total", else Content-Length */
    char curl_msg[CURL_ERROR_SIZE];

    void *owner; /* for the parallel drivers */
    size_t slot;
} cf_s3c_xfer;

struct cf_s3c {
    cf_s3c_config cfg;
    char scheme[8];
    char host[512]; /* host[:port] of the endpoint */
    CURLM *multi;
    CURLSH *share;
    CURL *idle[CF_S3C_MAX_ACTIVE]; /* easy handles kept for reuse */
    size_t nidle;
    cf_s3c_xfer *active[CF_S3C_MAX_ACTIVE];
    size_t nactive;
    cf_sigv4_key_cache *keys; /* the signing keys of this client's requests and URLs */
    uint64_t rng;
    cf_s3c_stats stats;
    int virtual_host;
    double failing_since; /* monotonic seconds of the first failure since the last success; 0: none */
};

/* Prepares x for method on bucket/key (key may be NULL); clears everything else. */
void cf_s3c_xfer_init(cf_s3c_xfer *x, cf_s3c *c, const char *method, const char *bucket, const char *key);
void cf_s3c_xfer_cleanup(cf_s3c_xfer *x);
int cf_s3c_xfer_param(cf_s3c_xfer *x, const char *name, const char *value);
/* Adds the signed header prefix+name (name lower-cased) with value (borrowed). CF_ETOOBIG when
 * there is no room. */
int cf_s3c_xfer_header(cf_s3c_xfer *x, const char *prefix, const char *name, const char *value);
void cf_s3c_xfer_body(cf_s3c_xfer *x, const void *data, size_t len);
/* Like cf_s3c_xfer_body for bulk data: UNSIGNED-PAYLOAD instead of a SHA-256 of the body, with
 * x-amz-checksum-crc32c (signed) for the server to check the bytes that arrive. */
void cf_s3c_xfer_body_crc32c(cf_s3c_xfer *x, const void *data, size_t len);
/* As cf_s3c_xfer_body_crc32c, with the CRC32C of the body already known. */
void cf_s3c_xfer_body_crc32c_known(cf_s3c_xfer *x, const void *data, size_t len, uint32_t crc);

/* Starts x on the multi handle (first attempt). */
int cf_s3c_xfer_start(cf_s3c_xfer *x, cf_err *err);
/* Drives every started transfer until at least one changes to XF_DONE, or a short wait ends. */
int cf_s3c_pump(cf_s3c *c, cf_err *err);
/* Starts x and drives it to the end; returns x->rc and copies x->err into err. */
int cf_s3c_xfer_run(cf_s3c_xfer *x, cf_err *err);
/* Fails x for good (as if it got the S3 error body in x->resp): maps code/status to CF_E… */
int cf_s3c_fail_from_body(cf_s3c_xfer *x);
/* Stops x if it is running or waiting (used when a parallel operation gives up). */
void cf_s3c_xfer_cancel(cf_s3c_xfer *x);

/* The path as S3 signs it ("/bucket/key" or "/key"), decoded. */
int cf_s3c_path(cf_s3c *c, const char *bucket, const char *key, cf_buf *out);
/* The Host header for bucket (NULL: the endpoint's). */
void cf_s3c_host(cf_s3c *c, const char *bucket, char *out, size_t outlen);

#endif
