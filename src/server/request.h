/*
 * request.h - the state of one S3 request as it passes through the server, shared by the
 * router (server.c), authentication (auth.c), responses (response.c) and the handlers.
 */
#ifndef CF_SERVER_REQUEST_H
#define CF_SERVER_REQUEST_H

#include <microhttpd.h>
#include <stdint.h>

#include "core/buf.h"
#include "crypto/hash.h"
#include "s3/error.h"
#include "s3/request.h"
#include "server/server.h"
#include "store/store.h"

#define CF_MAX_SMALL_BODY (1 << 20)     /* XML bodies: CreateBucketConfiguration and the like */
#define CF_MAX_PUT_SIZE ((uint64_t)5 << 30) /* AWS's limit for a single PUT */
#define CF_MAX_USER_METADATA 2048        /* AWS: 2 KB of x-amz-meta-* names and values */

struct cf_server {
    struct MHD_Daemon *daemon;
    cf_store *store;
    char region[64];
    cf_credential root;
    uint16_t port;
    uint64_t request_seq;
    char boot_id[9];
};

typedef enum body_mode {
    BODY_NONE,      /* no body expected: any bytes are discarded */
    BODY_SMALL,     /* buffered in `small` up to CF_MAX_SMALL_BODY */
    BODY_OBJECT,    /* streamed into the store writer */
} body_mode;

typedef struct cf_request {
    cf_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    char request_id[24];
    double started;
    cf_s3_op op;
    char *bucket;                 /* decoded */
    char *key;                    /* decoded; may contain NUL-free UTF-8 only */
    size_t keylen;
    char *resource;               /* decoded path, for error documents */
    char access_key[129];

    /* body */
    body_mode body;
    cf_buf small;
    cf_store_writer *writer;
    cf_hash *sha256;              /* set when the payload hash is signed */
    char payload_hash[65];
    uint64_t bytes_in;
    uint64_t expected_len;        /* Content-Length, when given */
    int has_length;

    /* an error found while the body was streaming, sent when it ends */
    cf_s3_error deferred;
    char deferred_msg[256];

    int status;                   /* for the access log */
    uint64_t bytes_out;
    int responded;
} cf_request;

/* response.c */
int cf_respond_error(cf_request *r, cf_s3_error e, const char *message);
int cf_respond_xml(cf_request *r, int status, cf_buf *body);
int cf_respond_empty(cf_request *r, int status);
/* Queues resp with the common headers (request id, server); destroys resp. */
int cf_respond(cf_request *r, int status, struct MHD_Response *resp);
const char *cf_request_header(const cf_request *r, const char *name);
const char *cf_request_param(const cf_request *r, const char *name);

/* auth.c: checks the request's signature; on failure fills *e and msg. */
int cf_auth_check(cf_request *r, cf_s3_error *e, char *msg, size_t msglen);

/* handlers_bucket.c */
int cf_handle_list_buckets(cf_request *r);
int cf_handle_create_bucket(cf_request *r);
int cf_handle_head_bucket(cf_request *r);
int cf_handle_delete_bucket(cf_request *r);
int cf_handle_list_objects(cf_request *r, int v2);
int cf_handle_bucket_location(cf_request *r);

/* handlers_object.c */
int cf_put_object_begin(cf_request *r, cf_s3_error *e, char *msg, size_t msglen);
int cf_put_object_end(cf_request *r);
int cf_handle_get_object(cf_request *r, int head);
int cf_handle_delete_object(cf_request *r);

#endif
