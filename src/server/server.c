/*
 * server.c - the S3 front mounted on the HTTP layer (src/http/): its mounts ("/" for S3,
 * "/_admin", "/health", "/metrics") and the S3 request lifecycle.
 *
 * One request passes through: begin (parse path, route, authenticate, decide what to do with
 * the body) → body (stream to the store or a small buffer, hashing as it goes) → complete
 * (verify digests, then the handler: on the event thread for reads, on the HTTP layer's
 * blocking pool for writes, which commit and respond) → done (abort what was not committed,
 * write the access log line). A client that disconnects mid-body only ever reaches done,
 * which discards the partial data.
 */
#include "server/server.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "crypto/sigv4.h"
#include "s3/target.h"
#include "server/request.h"
#include "server/access.h"
#include "server/auth.h"
#include "server/body.h"
#include "server/cors_rules.h"
#include "server/handlers_admin.h"
#include "server/handlers_bucket.h"
#include "server/handlers_cors.h"
#include "server/handlers_multipart.h"
#include "server/handlers_object.h"
#include "server/handlers_post.h"
#include "server/handlers_tagging.h"
#include "server/janitor.h"
#include "server/metrics.h"
#include "server/rate_groups.h"
#include "server/response.h"

/* The bucket and key, from the path and, in virtual-host style, the Host header (s3/target.c). */
static int split_path(cf_request *r, const char *raw_url)
{
    cf_s3_target t;
    int rc = cf_s3_target_parse(raw_url, cf_request_header(r, "Host"), r->srv->domain,
                                CF_HTTP_MAX_HEADER_BYTES, &t);
    if (rc)
        return rc;
    r->bucket = t.bucket;
    r->key = t.key;
    r->keylen = t.keylen;
    r->resource = t.resource;
    r->signed_path = t.signed_path;
    return 0;
}

/* A bare "?acl" is present with an empty value. */
static const char *route_param(void *ctx, const char *name)
{
    return cf_request_param(ctx, name);
}

/* The request's state for the S3 front, made when the HTTP layer hands a request to one of its
 * mounts (hr->front); freed by s3_done. */
static cf_request *new_request(cf_server *srv, cf_http_request *hr)
{
    cf_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    hr->front = r;
    r->srv = srv;
    r->http = hr;
    r->method = hr->method;
    uint64_t seq = atomic_fetch_add((_Atomic uint64_t *)&srv->request_seq, 1);
    /* boot id, then the sequence number as 12 hex digits (no printf: once per request) */
    memcpy(r->request_id, srv->boot_id, 8);
    for (int i = 11; i >= 0; i--, seq >>= 4)
        r->request_id[8 + i] = "0123456789ABCDEF"[seq & 15];
    r->request_id[20] = '\0';
    cf_buf_init(&r->small, CF_MAX_SMALL_BODY);
    cf_metrics_begin(srv->metrics);
    return r;
}

/* A head the HTTP layer found broken, answered as S3 does. */
static int s3_refuse(void *ctx, cf_http_request *hr, const cf_http_refusal *why)
{
    cf_request *r = new_request(ctx, hr);
    if (!r)
        return 0;
    if (why->status == 431)
        return cf_respond_error(r, CF_S3_RequestHeaderSectionTooLarge, NULL);
    cf_s3_error e = why->status == 501 ? CF_S3_NotImplemented : CF_S3_InvalidRequest;
    return cf_respond_error_closing(r, e, why->reason, why->header ? "Header" : NULL, why->header);
}

static int health_begin(void *ctx, cf_http_request *hr)
{
    int live = strcmp(hr->url, "/health/live") == 0, ready = strcmp(hr->url, "/health/ready") == 0;
    if ((!live && !ready) || (strcmp(hr->method, "GET") != 0 && strcmp(hr->method, "HEAD") != 0))
        return CF_HTTP_DECLINE; /* a bucket named health */
    cf_request *r = new_request(ctx, hr);
    if (!r)
        return 0;
    r->op = CF_S3_OP_UNKNOWN;
    if (ready) {
        cf_err err;
        live = cf_store_check_ready(r->srv->store, &err) == 0;
        if (!live)
            cf_log(&r->srv->log, CF_LOG_WARN, "not ready", "error", err.msg, NULL);
    }
    cf_buf b;
    cf_buf_init(&b, 64);
    cf_buf_puts(&b, !ready ? "ok\n" : live ? "ready\n" : "not ready\n");
    return cf_respond_xml(r, live ? 200 : 503, &b);
}

static int metrics_begin(void *ctx, cf_http_request *hr)
{
    if (strcmp(hr->url, "/metrics") != 0 || strcmp(hr->method, "GET") != 0)
        return CF_HTTP_DECLINE; /* a bucket named metrics */
    cf_request *r = new_request(ctx, hr);
    if (!r)
        return 0;
    cf_buf b;
    cf_buf_init(&b, (size_t)64 << 20);
    if (cf_metrics_render(r->srv->metrics, r->srv->store, &r->srv->log, &b) != 0 ||
        cf_http_render_metrics(r->srv->http, &b) != 0 ||
        cf_rate_groups_render_metrics(r->srv->rate_groups, &b) != 0) {
        cf_buf_cleanup(&b);
        cf_buf_init(&b, 64);
        cf_buf_puts(&b, "metrics unavailable\n");
        return cf_respond_xml(r, 500, &b);
    }
    size_t len;
    char *data = cf_buf_steal(&b, &len);
    cf_http_response *resp = cf_http_body_buffer(data, len, 0);
    if (!resp)
        return 0;
    cf_http_add_header(resp, "Content-Type", "text/plain; version=0.0.4");
    r->bytes_out = len;
    return cf_respond(r, 200, resp);
}

/* Everything that can be decided from the request line and headers. admin: the request came
 * through the /_admin mount. */
static int begin_s3(void *ctx, cf_http_request *hr, int admin)
{
    cf_request *r = new_request(ctx, hr);
    if (!r)
        return 0;
    const char *url = hr->url;
    if (split_path(r, url) != 0)
        return cf_respond_error(r, CF_S3_InvalidArgument, "the request path is not valid percent-encoding");
    r->op = admin ? CF_S3_OP_ADMIN : cf_s3_route(r->method, r->bucket, r->key, route_param, r);

    cf_err refusal;
    if (cf_auth_check(r, &refusal) != 0)
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);

    if (cf_access_check(r, &refusal) != 0)
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
    if (cf_body_prepare(r, &refusal) != 0)
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);

    if (r->keylen > CF_S3_MAX_KEY_LEN)
        return cf_respond_error(r, CF_S3_KeyTooLongError, NULL);

    switch (r->op) {
    case CF_S3_OP_PUT_OBJECT:
        if (cf_put_object_begin(r, &refusal) != 0)
            return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
        return 1;
    case CF_S3_OP_UPLOAD_PART:
        if (cf_upload_part_begin(r, &refusal) != 0)
            return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
        return 1;
    case CF_S3_OP_POST_OBJECT:
        if (cf_post_object_begin(r, &refusal) != 0)
            return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
        return 1;
    case CF_S3_OP_CREATE_BUCKET:
    case CF_S3_OP_COMPLETE_MULTIPART_UPLOAD:
    case CF_S3_OP_PUT_OBJECT_TAGGING:
    case CF_S3_OP_DELETE_OBJECTS:
    case CF_S3_OP_PUT_BUCKET_POLICY:
    case CF_S3_OP_PUT_BUCKET_CORS:
    case CF_S3_OP_ADMIN: r->body = BODY_SMALL; return 1;
    case CF_S3_OP_UNSUPPORTED:
        return cf_respond_error(r, CF_S3_NotImplemented,
                                "this operation is not implemented by coffer server yet");
    case CF_S3_OP_METHOD_NOT_ALLOWED:
    case CF_S3_OP_UNKNOWN: return cf_respond_error(r, CF_S3_MethodNotAllowed, NULL);
    default: r->body = BODY_NONE; return 1;
    }
}

static int s3_begin(void *ctx, cf_http_request *hr)
{
    return begin_s3(ctx, hr, 0);
}

static int admin_begin(void *ctx, cf_http_request *hr)
{
    cf_server *srv = ctx;
    /* In virtual-host style the path is a key of the Host's bucket: "/_admin/x" is an object. */
    if (cf_s3_vhost_bucket(cf_http_header(hr, "Host"), srv->domain))
        return CF_HTTP_DECLINE;
    return begin_s3(ctx, hr, 1);
}

/* Operations that only read: their handlers do not wait for a flush, and run on the event
 * thread. Everything else (every write, and any operation added later) waits for the disk and
 * runs on the offload pool. */
static int op_only_reads(cf_s3_op op)
{
    switch (op) {
    case CF_S3_OP_LIST_BUCKETS:
    case CF_S3_OP_HEAD_BUCKET:
    case CF_S3_OP_LIST_OBJECTS:
    case CF_S3_OP_LIST_OBJECTS_V2:
    case CF_S3_OP_GET_BUCKET_LOCATION:
    case CF_S3_OP_GET_BUCKET_VERSIONING:
    case CF_S3_OP_LIST_OBJECT_VERSIONS:
    case CF_S3_OP_GET_BUCKET_POLICY:
    case CF_S3_OP_GET_BUCKET_CORS:
    case CF_S3_OP_CORS_PREFLIGHT:
    case CF_S3_OP_GET_OBJECT:
    case CF_S3_OP_HEAD_OBJECT:
    case CF_S3_OP_LIST_PARTS:
    case CF_S3_OP_LIST_MULTIPART_UPLOADS:
    case CF_S3_OP_GET_OBJECT_TAGGING: return 1;
    default: return 0;
    }
}

static int run_handler(cf_request *r)
{
    switch (r->op) {
    case CF_S3_OP_LIST_BUCKETS: return cf_handle_list_buckets(r);
    case CF_S3_OP_CREATE_BUCKET: return cf_handle_create_bucket(r);
    case CF_S3_OP_HEAD_BUCKET: return cf_handle_head_bucket(r);
    case CF_S3_OP_DELETE_BUCKET: return cf_handle_delete_bucket(r);
    case CF_S3_OP_LIST_OBJECTS: return cf_handle_list_objects(r, 0);
    case CF_S3_OP_LIST_OBJECTS_V2: return cf_handle_list_objects(r, 1);
    case CF_S3_OP_GET_BUCKET_LOCATION: return cf_handle_bucket_location(r);
    case CF_S3_OP_GET_BUCKET_VERSIONING: return cf_handle_bucket_versioning(r);
    case CF_S3_OP_LIST_OBJECT_VERSIONS: return cf_handle_list_object_versions(r);
    case CF_S3_OP_DELETE_OBJECTS: return cf_handle_delete_objects(r);
    case CF_S3_OP_GET_BUCKET_POLICY:
    case CF_S3_OP_PUT_BUCKET_POLICY:
    case CF_S3_OP_DELETE_BUCKET_POLICY: return cf_handle_bucket_policy(r);
    case CF_S3_OP_GET_BUCKET_CORS:
    case CF_S3_OP_PUT_BUCKET_CORS:
    case CF_S3_OP_DELETE_BUCKET_CORS: return cf_handle_bucket_cors(r);
    case CF_S3_OP_CORS_PREFLIGHT: return cf_handle_cors_preflight(r);
    case CF_S3_OP_POST_OBJECT: return cf_post_object_end(r);
    case CF_S3_OP_ADMIN: return cf_handle_admin(r);
    case CF_S3_OP_PUT_OBJECT: return cf_put_object_end(r);
    case CF_S3_OP_GET_OBJECT: return cf_handle_get_object(r, 0);
    case CF_S3_OP_HEAD_OBJECT: return cf_handle_get_object(r, 1);
    case CF_S3_OP_DELETE_OBJECT: return cf_handle_delete_object(r);
    case CF_S3_OP_COPY_OBJECT: return cf_handle_copy_object(r);
    case CF_S3_OP_CREATE_MULTIPART_UPLOAD: return cf_handle_create_multipart(r);
    case CF_S3_OP_UPLOAD_PART: return cf_upload_part_end(r);
    case CF_S3_OP_UPLOAD_PART_COPY: return cf_handle_upload_part_copy(r);
    case CF_S3_OP_COMPLETE_MULTIPART_UPLOAD: return cf_handle_complete_multipart(r);
    case CF_S3_OP_ABORT_MULTIPART_UPLOAD: return cf_handle_abort_multipart(r);
    case CF_S3_OP_LIST_PARTS: return cf_handle_list_parts(r);
    case CF_S3_OP_LIST_MULTIPART_UPLOADS: return cf_handle_list_multipart_uploads(r);
    case CF_S3_OP_GET_OBJECT_TAGGING: return cf_handle_get_object_tagging(r);
    case CF_S3_OP_PUT_OBJECT_TAGGING: return cf_handle_put_object_tagging(r);
    case CF_S3_OP_DELETE_OBJECT_TAGGING: return cf_handle_delete_object_tagging(r);
    default: return cf_respond_error(r, CF_S3_MethodNotAllowed, NULL);
    }
}

static int s3_run(cf_http_request *hr)
{
    return run_handler(hr->front);
}

static void s3_body(cf_http_request *hr, const char *data, size_t n)
{
    cf_request *r = hr->front;
    if (r->post)
        cf_post_object_take(r, data, n);
    else
        cf_body_take(r, data, n);
}

/* The body is complete. */
static int s3_complete(cf_http_request *hr)
{
    cf_request *r = hr->front;
    cf_err refusal;
    if (cf_body_complete(r, &refusal) != 0)
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
    /* Everything but reads (every write, and any operation added later) waits for the disk. */
    if (!op_only_reads(r->op) && cf_http_offload(hr) == 0)
        return 1;
    return run_handler(r);
}

/* Writes v in decimal with its NUL (at most 21 bytes); returns the NUL's place. The access log
 * line is written once per request, and printf's number formatting showed in its profile. */
static char *decimal(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return out + n;
}

static void s3_done(cf_http_request *hr, int completed_ok)
{
    cf_request *r = hr->front;
    if (!r)
        return;
    /* Anything not committed by now is discarded: a client that went away leaves nothing. */
    cf_store_writer_abort(r->writer);
    cf_post_object_cleanup(r);
    cf_body_cleanup(r);
    int status = hr->responded ? hr->status : 0;
    cf_metrics_end(r->srv->metrics, r->op, status, r->bytes_in, r->bytes_out, cf_clock_mono() - hr->started);
    cf_hash_free(r->sha256);
    cf_buf_cleanup(&r->small);
    cf_buf_cleanup(&r->error_detail);
    cf_access_cleanup(r);

    char status_s[24], ms[48], in[24], out[24];
    decimal(status_s, (uint64_t)status);
    uint64_t us = (uint64_t)((cf_clock_mono() - hr->started) * 1e6);
    char *frac = decimal(ms, us / 1000);
    *frac++ = '.';
    frac[0] = (char)('0' + us % 1000 / 100);
    frac[1] = (char)('0' + us % 100 / 10);
    frac[2] = (char)('0' + us % 10);
    frac[3] = '\0';
    decimal(in, r->bytes_in);
    decimal(out, r->bytes_out);
    cf_log(&r->srv->log, completed_ok ? CF_LOG_INFO : CF_LOG_WARN, "request", "id", r->request_id, "method",
           r->method, "op", cf_s3_op_name(r->op), "bucket", r->bucket ? r->bucket : "", "key",
           r->key ? r->key : "", "status", status_s, "bytes_in", in, "bytes_out", out, "ms", ms, "access_key",
           r->access_key, "result", completed_ok ? "ok" : "aborted", NULL);
    free(r->bucket);
    free(r->key);
    free(r->resource);
    free(r->signed_path);
    free(r);
    hr->front = NULL;
}

static void free_server(cf_server *srv)
{
    cf_http_stop(srv->http);
    cf_metrics_free(srv->metrics);
    cf_rate_groups_free(srv->rate_groups); /* after cf_http_stop: no paced response is left */
    cf_sigv4_key_cache_free(srv->keys);
    cf_policy_cache_free(srv->policy_cache);
    cf_cors_cache_free(srv->cors_cache);
    free(srv);
}

/* The mounts of the S3 front: their begin differs, the rest of a request's life is S3's. */
#define S3_MOUNT(begin)                                                                                      \
    {                                                                                                        \
        begin, s3_refuse, s3_body, s3_complete, s3_run, s3_done                                              \
    }
static const cf_http_handlers s3_mount = S3_MOUNT(s3_begin);
static const cf_http_handlers admin_mount = S3_MOUNT(admin_begin);
static const cf_http_handlers health_mount = S3_MOUNT(health_begin);
static const cf_http_handlers metrics_mount = S3_MOUNT(metrics_begin);

int cf_server_start(cf_store *store, const cf_server_options *opts, cf_server **out, cf_err *err)
{
    cf_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    srv->store = store;
    srv->root = opts->root;
    if (opts->log)
        srv->log = *opts->log;
    srv->clock = opts->clock ? opts->clock : &cf_clock_system;
    if (!(srv->metrics = cf_metrics_new()) || cf_sigv4_key_cache_new(&srv->keys) != 0) {
        free_server(srv);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    int rc = cf_rate_groups_new(store, &srv->rate_groups, err);
    if (rc) {
        free_server(srv);
        return rc;
    }
    snprintf(srv->region, sizeof srv->region, "%s", opts->region ? opts->region : "us-east-1");
    snprintf(srv->domain, sizeof srv->domain, "%s", opts->domain ? opts->domain : "");
    srv->multipart_expiry_s = opts->multipart_expiry_s > 0 ? opts->multipart_expiry_s : (int64_t)7 * 86400;
    unsigned char rnd[4];
    if (cf_clock_random(srv->clock, rnd, sizeof rnd) != 0) {
        free_server(srv);
        return cf_err_set(err, CF_EIO, "no randomness for the boot id");
    }
    snprintf(srv->boot_id, sizeof srv->boot_id, "%02X%02X%02X%02X", rnd[0], rnd[1], rnd[2], rnd[3]);

    cf_http_options http = opts->http;
    http.log = &srv->log;
    rc = cf_http_new(&http, &srv->http, err);
    if (!rc)
        rc = cf_http_mount(srv->http, "/", &s3_mount, srv, err);
    if (!rc)
        rc = cf_http_mount(srv->http, "/_admin", &admin_mount, srv, err);
    if (!rc)
        rc = cf_http_mount(srv->http, "/health", &health_mount, srv, err);
    if (!rc)
        rc = cf_http_mount(srv->http, "/metrics", &metrics_mount, srv, err);
    for (size_t i = 0; !rc && i < opts->nmounts; i++)
        rc = cf_http_mount(srv->http, opts->mounts[i].prefix, opts->mounts[i].handlers, opts->mounts[i].ctx,
                           err);
    if (!rc)
        rc = cf_http_start(srv->http, err);
    if (rc) {
        free_server(srv);
        return rc;
    }
    if (cf_janitor_start(srv) != 0) {
        free_server(srv);
        return cf_err_set(err, CF_EIO, "cannot start the housekeeping thread");
    }
    *out = srv;
    return 0;
}

uint16_t cf_server_port(const cf_server *srv)
{
    return cf_http_port(srv->http);
}

void cf_server_stop(cf_server *srv)
{
    if (!srv)
        return;
    /* Requests end (the HTTP layer waits for handlers in flight) before the janitor and the
     * caches go. */
    cf_http_stop(srv->http);
    srv->http = NULL;
    cf_janitor_stop(srv);
    free_server(srv);
}
