/*
 * request.h - the state of one S3 request as it passes through the server, shared by the
 * router (server.c), authentication (auth.c), responses (response.c) and the handlers.
 */
#ifndef CF_SERVER_REQUEST_H
#define CF_SERVER_REQUEST_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>

#include "core/buf.h"
#include "crypto/checksum.h"
#include "crypto/hash.h"
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
    cf_metrics *metrics;

    /* janitor.c */
    pthread_t janitor;
    pthread_mutex_t janitor_mu;
    pthread_cond_t janitor_cv;
    int janitor_stop;
    int janitor_running;
};

/* metrics.c: counters updated as requests end, rendered for GET /metrics. */
cf_metrics *cf_metrics_new(void);
void cf_metrics_free(cf_metrics *m);
void cf_metrics_begin(cf_metrics *m);
void cf_metrics_end(cf_metrics *m, cf_s3_op op, int status, uint64_t in, uint64_t out, double seconds);
int cf_metrics_render(cf_metrics *m, cf_store *store, const cf_logger *log, cf_buf *b);

/* janitor.c: the housekeeping thread (stale multipart uploads). */
int cf_janitor_start(cf_server *srv);
void cf_janitor_stop(cf_server *srv);

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
    cf_http_request *http;       /* the HTTP layer's side: status, responded, start time */
    struct MHD_Connection *conn; /* http->conn */
    const char *method;          /* http->method */
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

/* response.c */
int cf_respond_error(cf_request *r, cf_s3_error e, const char *message);
/* The error with one more element after Message (NULL: none), and the connection closed after
 * it: for a request whose end cannot be found, so that nothing after it is read as a request. */
int cf_respond_error_closing(cf_request *r, cf_s3_error e, const char *message, const char *elem,
                             const char *value);
/* Records an element for error e, which the request is about to report (replacing any recorded
 * for another error); a value too large for the document is left out. */
void cf_error_detail(cf_request *r, cf_s3_error e, const char *name, const char *value);
void cf_error_detail_u64(cf_request *r, cf_s3_error e, const char *name, uint64_t value);
/* MetadataTooLarge for size bytes of x-amz-meta-* (Size, MaxSizeAllowed). */
int cf_respond_metadata_too_large(cf_request *r, size_t size);
/* InvalidArgument naming the parameter at fault (ArgumentName, ArgumentValue), as AWS. */
int cf_respond_invalid_argument(cf_request *r, const char *message, const char *name, const char *value);
/* The error with the extra elements given instead of those cf_respond_error derives; header,
 * when not NULL, is added to the response with value (416's Content-Range). */
int cf_respond_error_fields(cf_request *r, cf_s3_error e, const char *message,
                            const cf_s3_error_field *fields, size_t nfields, const char *header,
                            const char *value);
int cf_respond_xml(cf_request *r, int status, cf_buf *body);
int cf_respond_empty(cf_request *r, int status);
/* Queues resp with the common headers (request id, server); destroys resp. */
int cf_respond(cf_request *r, int status, struct MHD_Response *resp);
/* request.c */
const char *cf_request_header(const cf_request *r, const char *name);
const char *cf_request_param(const cf_request *r, const char *name);

/* auth.c: checks the request's signature; on failure fills *e and msg. */
int cf_auth_check(cf_request *r, cf_s3_error *e, char *msg, size_t msglen);

/* access.c */
/* May the request's principal perform op on bucket/key, that bucket's policy included? */
int cf_access_allows(cf_request *r, cf_s3_op op, const char *bucket, const char *key, size_t keylen);
/* May the principal set tags along with write_op (x-amz-tagging, a form's tagging field)? The
 * bucket policy must allow s3:PutObjectTagging as well, as on AWS. */
int cf_access_allows_tags_on_write(cf_request *r, cf_s3_op write_op, const char *bucket, const char *key,
                                   size_t keylen);
/* The same for a request naming a version of the object (versioned: a versionId was given). */
int cf_access_allows_version(cf_request *r, cf_s3_op op, const char *bucket, const char *key, size_t keylen,
                             int versioned);
/* Frees the bucket policy the request read (access_cache). */
void cf_access_cleanup(cf_request *r);
/* At server stop, when no request runs any more. */
void cf_policy_cache_free(struct cf_policy_cache *pc);
/* The key lies in the principal's bucket and prefix (always, for root). */
int cf_access_key_in_scope(const cf_request *r, const char *bucket, const char *key, size_t keylen);
/* The whole decision for the request as routed, bucket policies included: OK or AccessDenied. */
cf_s3_error cf_access_check(cf_request *r);
/* May the principal only create objects, never replace one (a writeonly key)? Writes then
 * commit on the condition that the key is absent (cf_write_condition). */
int cf_access_create_only(const cf_request *r);

/* handlers_bucket.c */
int cf_handle_list_buckets(cf_request *r);
int cf_handle_create_bucket(cf_request *r);
int cf_handle_head_bucket(cf_request *r);
int cf_handle_delete_bucket(cf_request *r);
int cf_handle_list_objects(cf_request *r, int v2);
int cf_handle_bucket_location(cf_request *r);
int cf_handle_bucket_versioning(cf_request *r);
int cf_handle_list_object_versions(cf_request *r);
int cf_handle_delete_objects(cf_request *r);
/* <elem><ID>…</ID><DisplayName>…</DisplayName></elem> for Owner and Initiator. */
void cf_owner_xml(cf_request *r, cf_buf *b, const char *elem);

/* handlers_object.c */
/* Headers to store with an object, lowercase names, in a stable order. */
typedef struct cf_header_list {
    cf_store_kv *kv;
    size_t n, cap;
    size_t meta_bytes; /* of x-amz-meta-* names and values, for the 2 KB limit */
    int failed;
} cf_header_list;
int cf_header_add(cf_header_list *h, const char *name, size_t nlen, const char *value);
void cf_header_list_cleanup(cf_header_list *h);
/* Content-Type (defaulted), the other stored headers and x-amz-meta-* of the request. */
int cf_object_headers(cf_request *r, cf_header_list *h);

/* body.c: a request body on its way in (see the file's comment). */
/* Before any body byte: the aws-chunked decoder and the x-amz-checksum-* to verify. */
cf_s3_error cf_body_prepare(cf_request *r, char *msg, size_t msglen);
/* Checks Content-Length and Content-MD5 syntax before an object body streams in (0, or -1, *e). */
int cf_body_begin(cf_request *r, cf_s3_error *e, char *msg, size_t msglen);
/* Starts the store writer the body streams into (0, or -1 and *e). */
int cf_body_open_writer(cf_request *r, cf_s3_error *e);
void cf_body_take(cf_request *r, const char *data, size_t n);
/* After the last byte: chunk signatures, signed SHA-256, length, x-amz-checksum-*. */
cf_s3_error cf_body_complete(cf_request *r, char *msg, size_t msglen);
/* For an object body: data durable, Content-MD5 matches. CF_S3_OK or the error. */
cf_s3_error cf_body_finish(cf_request *r);
/* Adds the verified x-amz-checksum-* (if any) to the headers stored with the object. */
int cf_body_checksum_header(const cf_request *r, cf_header_list *h);
void cf_body_cleanup(cf_request *r);
/* 200 for a stored object or part: its ETag and verified checksum; cleans up info. */
int cf_respond_written(cf_request *r, cf_object_info *info);
/* For headers on a write that ask for a protection this server does not give, with a reason in
 * msg: SSE-C and SSE-KMS (NotImplemented: the object would be stored in clear), Object Lock
 * retention and legal hold (InvalidRequest, as AWS for a bucket without Object Lock). SSE-S3
 * (AES256) is accepted and left to the disk. */
cf_s3_error cf_write_protection_refused(const cf_request *r, char *msg, size_t msglen);
int cf_put_object_begin(cf_request *r, cf_s3_error *e, char *msg, size_t msglen);
int cf_put_object_end(cf_request *r);
int cf_handle_get_object(cf_request *r, int head);
int cf_handle_delete_object(cf_request *r);
/* Objects are unversioned: a versionId other than "null" is answered here (NoSuchVersion, or
 * InvalidArgument when empty), returning the respond result; -1 when the request may go on. */
int cf_refuse_other_version(cf_request *r);

/* The source of CopyObject and UploadPartCopy (x-amz-copy-source, its range and conditions). */
typedef struct cf_copy_source {
    char *bucket;
    char *key;
    size_t keylen;
    cf_object_info info;
    uint64_t start, len;
    cf_store_reader *rd; /* the range of that very version, held until cleanup */
    char msg[256];       /* detail for the error, when one is returned */
} cf_copy_source;
cf_s3_error cf_copy_source_open(cf_request *r, int allow_range, cf_copy_source *src);
/* Copies the source range into a new writer (*w, finished), or returns a CF_E code. */
int cf_copy_source_into_writer(cf_request *r, cf_copy_source *src, cf_store_writer **w);
void cf_copy_source_cleanup(cf_copy_source *src);
int cf_handle_copy_object(cf_request *r);
/* 200 for CopyObject (root "CopyObjectResult") or UploadPartCopy ("CopyPartResult"); cleans up info. */
int cf_respond_copied(cf_request *r, const char *root, cf_object_info *info);
/* If-None-Match: * and If-Match on a write, and create-only for a writeonly key, as a store
 * condition (etag is its buffer). */
cf_s3_error cf_write_condition(cf_request *r, cf_store_condition *c, char *etag, size_t etaglen);
/* The S3 error for a condition the store found false; msg (msglen bytes) gets the detail. */
cf_s3_error cf_write_condition_error(cf_request *r, const cf_store_condition *c, char *msg, size_t msglen);
/* If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since against an object, in RFC
 * 9110's order: PreconditionFailed, or OK with *not_modified set when a GET should get 304. */
cf_s3_error cf_check_conditions(const cf_object_info *info, const char *if_match, const char *if_none_match,
                                const char *if_modified_since, const char *if_unmodified_since,
                                int *not_modified);

/* handlers_tagging.c */
#define CF_TAGGING_HEADER "x-coffer-tagging" /* stored, never replayed: see handlers_tagging.c */
#define CF_INTERNAL_HEADER_PREFIX "x-coffer-"
/* Adds the tags of an x-amz-tagging request header to h (0), or fills *e and msg (-1). */
int cf_tagging_from_request(cf_request *r, cf_header_list *h, cf_s3_error *e, char *msg, size_t msglen);
/* A <Tagging> document (PutObjectTagging's body, a form's tagging field) checked as
 * PutObjectTagging does, into the stored form of CF_TAGGING_HEADER ("" when it has no tags;
 * the caller frees *stored). MalformedXML, InvalidTag (msg says why) or InternalError. */
cf_s3_error cf_tagging_from_xml(const char *xml, size_t len, char **stored, char *msg, size_t msglen);
size_t cf_tagging_count(const char *stored);
int cf_handle_get_object_tagging(cf_request *r);
int cf_handle_put_object_tagging(cf_request *r);
int cf_handle_delete_object_tagging(cf_request *r);

/* handlers_cors.c */
int cf_handle_bucket_cors(cf_request *r);
int cf_handle_cors_preflight(cf_request *r);

/* cors_rules.c */
struct cf_cors_config;
struct cf_cors_rule;
/* The setting name a bucket's CORS document is stored under ("cors/<bucket>"). */
void cf_cors_setting_name(const char *bucket, char *out, size_t n);
/* The bucket's rules, shared with other requests and held (a mutex) until
 * cf_cors_config_release; NULL with *rc CF_ENOTFOUND when it has none, or another CF_E code. */
const struct cf_cors_config *cf_cors_config_hold(cf_request *r, int *rc);
void cf_cors_config_release(cf_request *r);
/* The headers a matching rule grants, for a preflight (request_headers set) or the request itself. */
void cf_cors_add_rule_headers(struct MHD_Response *resp, const struct cf_cors_rule *rule, const char *origin,
                              const char *request_headers);
/* Adds the CORS headers a rule of the bucket grants the request's Origin, if any (cf_respond). */
void cf_cors_response_headers(cf_request *r, struct MHD_Response *resp);
/* At server stop, when no request runs any more. */
void cf_cors_cache_free(struct cf_cors_cache *cc);

/* handlers_post.c: POST Object, a browser form upload (the body is a multipart/form-data form). */
int cf_post_object_begin(cf_request *r, cf_s3_error *e, char *msg, size_t msglen);
void cf_post_object_take(cf_request *r, const char *data, size_t n);
int cf_post_object_end(cf_request *r);
void cf_post_object_cleanup(cf_request *r);

/* handlers_admin.c */
int cf_handle_bucket_policy(cf_request *r);
int cf_handle_admin(cf_request *r);

/* handlers_multipart.c */
/* Stored with an upload: the checksum its parts carry, and how the object's is made. */
#define CF_UPLOAD_CHECKSUM_ALG "x-coffer-checksum-algorithm"
#define CF_UPLOAD_CHECKSUM_TYPE "x-coffer-checksum-type"
const char *cf_upload_header(const cf_store_upload *u, const char *name);
int cf_handle_create_multipart(cf_request *r);
int cf_upload_part_begin(cf_request *r, cf_s3_error *e, char *msg, size_t msglen);
int cf_upload_part_end(cf_request *r);
int cf_handle_upload_part_copy(cf_request *r);
int cf_handle_complete_multipart(cf_request *r);
int cf_handle_abort_multipart(cf_request *r);
int cf_handle_list_parts(cf_request *r);
int cf_handle_list_multipart_uploads(cf_request *r);

#endif
