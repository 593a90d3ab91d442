/*
 * request.h - the state of one S3 request as it passes through the S3 front (cf_request) and
 * the server it belongs to (cf_server). What each file offers the others has its own header
 * (response.h, auth.h, access.h, body.h, handlers_*.h...).
 */
#ifndef CF_SERVER_REQUEST_H
#define CF_SERVER_REQUEST_H

#include <pthread.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/clock.h"
#include "crypto/checksum.h"
#include "crypto/hash.h"
#include "crypto/sigv4.h"
#include "http/http.h"
#include "s3/chunked.h"
#include "s3/error.h"
#include "s3/request.h"
#include "server/server.h"
#include "store/store.h"

#define CF_MAX_SMALL_BODY (8 << 20)         /* XML bodies: a CompleteMultipartUpload of 10,000 parts */
#define CF_MAX_PUT_SIZE ((uint64_t)5 << 30) /* AWS's limit for a single PUT */
#define CF_MAX_USER_METADATA 2048           /* AWS: 2 KB of x-amz-meta-* names and values */
#define CF_ERROR_DETAIL_MAX (64 * 1024)     /* cf_error_detail: the elements recorded for one error */
#define CF_ERROR_DETAIL_FIELDS 8

typedef struct cf_metrics cf_metrics;
typedef struct cf_request cf_request;

struct cf_server {
    cf_http *http; /* the daemon the S3 front is mounted on */
    cf_store *store;
    char region[64];
    cf_credential root;
    struct cf_policy_cache *policy_cache; /* access.c: parsed bucket policies, made on first use */
    struct cf_cors_cache *cors_cache;     /* cors_rules.c: parsed CORS rules, made on first use */
    uint64_t request_seq;
    char boot_id[9];
    char domain[256]; /* for virtual-host style; "" when off */
    int64_t multipart_expiry_s;

    cf_logger log;
    const cf_clock *clock;    /* "now" of signatures and policies, new credentials and ids */
    cf_sigv4_key_cache *keys; /* signing keys of the requests verified lately */
    cf_metrics *metrics;
    struct cf_rate_groups *rate_groups; /* rate_groups.c: the budgets of the keys' groups */

    /* janitor.c */
    pthread_t janitor;
    pthread_mutex_t janitor_mu;
    pthread_cond_t janitor_cv;
    int janitor_stop;
    int janitor_running;
};

typedef enum body_mode {
    BODY_NONE,   /* no body expected: any bytes are discarded */
    BODY_SMALL,  /* buffered in `small` up to CF_MAX_SMALL_BODY */
    BODY_OBJECT, /* streamed into the store writer */
} body_mode;

typedef enum cf_principal {
    CF_PRINCIPAL_ANONYMOUS = 0, /* no Authorization: only what a bucket policy makes public */
    CF_PRINCIPAL_ROOT,
    CF_PRINCIPAL_KEY, /* a stored access key: see `grant` for its policy */
} cf_principal;

struct cf_request {
    cf_server *srv;
    cf_http_request *http; /* the HTTP layer's side: status, responded, start time */
    const char *method;    /* http->method */
    char request_id[24];
    cf_s3_op op;
    char *bucket; /* decoded */
    char *key;    /* decoded; may contain NUL-free UTF-8 only */
    size_t keylen;
    char *resource;                       /* decoded path, for error documents */
    char *signed_path;                    /* virtual-host style: the path as sent (what SigV4 covers) */
    struct cf_access_cache *access_cache; /* access.c: the bucket policy last read */
    char access_key[129];
    cf_principal principal;
    cf_store_key grant;           /* when principal is CF_PRINCIPAL_KEY: its policy and scope */
    char headers_not_signed[256]; /* x-amz-* names a signed request left unsigned, ", "-joined:
                                   * AccessDenied's <HeadersNotSigned> (auth.c) */

    /* body */
    body_mode body;
    cf_buf small;
    cf_store_writer *writer;
    cf_hash *sha256; /* set when the payload hash is signed */
    char payload_hash[65];
    uint64_t bytes_in;      /* as received, framing included (logs, metrics) */
    uint64_t body_bytes;    /* decoded: the object's bytes */
    int decoded_length_set; /* expected_len came from x-amz-decoded-content-length */

    /* aws-chunked (STREAMING-*): set by auth.c, consumed by cf_body_prepare */
    int stream_mode_set;
    cf_chunked_mode stream_mode;
    unsigned char stream_key[32];
    char stream_date[17];
    char stream_scope[128];
    char stream_seed[65];
    cf_chunked *chunked;

    /* x-amz-checksum-* (header or trailer) */
    cf_checksum *ck;
    cf_checksum_alg ck_alg;
    int ck_have_expected, ck_in_trailer;
    unsigned char ck_expected[CF_CHECKSUM_MAX_LEN];
    unsigned char ck_actual[CF_CHECKSUM_MAX_LEN];
    char ck_b64[CF_CHECKSUM_B64_MAX];
    uint64_t expected_len; /* Content-Length, when given */
    int has_length;

    /* an error found while the body was streaming, sent when it ends */
    cf_s3_error deferred;
    char deferred_msg[256];

    /* The elements AWS adds to an error that only the check finding it knows (SignatureDoesNotMatch's
     * StringToSign, BadDigest's CalculatedDigest...): "name\0value\0" pairs, added by
     * cf_respond_error when it reports error_detail_for (cf_error_detail). */
    cf_s3_error error_detail_for;
    cf_buf error_detail;

    uint32_t part_number;        /* UploadPart */
    struct cf_post_upload *post; /* POST Object: the form on its way in (handlers_post.c) */

    uint64_t bytes_out; /* for the access log */
};

/* request.c: what a handler reads of its request. */
const char *cf_request_header(const cf_request *r, const char *name);
const char *cf_request_param(const cf_request *r, const char *name);

#endif
