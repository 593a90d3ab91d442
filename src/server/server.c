/*
 * server.c - the libmicrohttpd daemon, the request lifecycle and the dispatch to handlers.
 *
 * One request passes through: first call (parse path, route, authenticate, decide what to do
 * with the body) → body calls (stream to the store or a small buffer, hashing as it goes) →
 * last call (verify digests, commit, respond) → completion callback (abort what was not
 * committed, write the access log line). A client that disconnects mid-body only ever reaches
 * the completion callback, which discards the partial data.
 */
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "crypto/sigv4.h"
#include "server/request.h"

#define MAX_HEADER_BYTES (32 << 10)   /* S3 allows 8 KiB; long keys in copy sources need more */
#define CF_CONNECTION_POOL (64 << 10) /* libmicrohttpd's memory per connection (see below) */

/* Keep the raw bytes of the path and query: SigV4 and S3 keys need them undecoded (MHD would
 * otherwise decode %2F into '/' before we could split bucket from key). */
static size_t keep_raw(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

/*
 * Virtual-host style: "BUCKET.DOMAIN[:port]" names the bucket and the whole path is the key.
 * Returns the bucket's length in host, or 0 for path style.
 */
static size_t vhost_bucket(const cf_request *r, const char **host_out)
{
    const char *domain = r->srv->domain;
    const char *host = cf_request_header(r, "Host");
    if (!*domain || !host)
        return 0;
    size_t hl = strlen(host), dl = strlen(domain);
    const char *colon = memchr(host, ':', hl);
    if (colon)
        hl = (size_t)(colon - host);
    if (hl <= dl + 1 || host[hl - dl - 1] != '.' || strncasecmp(host + hl - dl, domain, dl) != 0)
        return 0;
    *host_out = host;
    return hl - dl - 1;
}

static int split_path(cf_request *r, const char *raw_url)
{
    cf_buf path;
    cf_buf_init(&path, MAX_HEADER_BYTES + 1); /* longer paths were refused with the headers */
    int rc = cf_s3_url_decode(&path, raw_url, strlen(raw_url));
    if (rc) {
        cf_buf_cleanup(&path);
        return rc;
    }
    if (!path.data)
        cf_buf_puts(&path, "/");
    const char *host;
    size_t vlen = vhost_bucket(r, &host);
    if (vlen) {
        if (!(r->signed_path = strndup(path.data, path.len))) {
            cf_buf_cleanup(&path);
            return CF_ENOMEM;
        }
        /* Rewrite to the path-style form, which everything after this point expects. */
        cf_buf full;
        cf_buf_init(&full, MAX_HEADER_BYTES + 512);
        rc = cf_buf_puts(&full, "/");
        if (!rc)
            rc = cf_buf_append(&full, host, vlen);
        if (!rc)
            rc = cf_buf_append(&full, path.data, path.len);
        cf_buf_cleanup(&path);
        if (rc) {
            cf_buf_cleanup(&full);
            return rc;
        }
        path = full;
    }
    if (memchr(path.data, '\0', path.len)) { /* %00 cannot name a key */
        cf_buf_cleanup(&path);
        return CF_EINVAL;
    }
    const char *p = path.data[0] == '/' ? path.data + 1 : path.data;
    const char *slash = strchr(p, '/');
    size_t blen = slash ? (size_t)(slash - p) : strlen(p);
    r->bucket = strndup(p, blen);
    r->key = strdup(slash ? slash + 1 : "");
    r->keylen = r->key ? strlen(r->key) : 0;
    r->resource = cf_buf_steal(&path, NULL);
    return r->bucket && r->key && r->resource ? 0 : CF_ENOMEM;
}

static int get_param_cb(void *ctx, const char *name, const char **value);

static const char *route_param(void *ctx, const char *name)
{
    const char *v = NULL;
    return get_param_cb(ctx, name, &v) ? v : NULL;
}

static int get_param_cb(void *ctx, const char *name, const char **value)
{
    cf_request *r = ctx;
    /* MHD reports a bare "?acl" as present with a NULL value. */
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), value, NULL) ==
        MHD_YES) {
        if (!*value)
            *value = "";
        return 1;
    }
    return 0;
}

/* The first call: everything that can be decided from the request line and headers. */
static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key, size_t klen,
                                       const char *value, size_t vlen)
{
    (void)kind;
    (void)key;
    (void)value;
    *(size_t *)cls += klen + vlen + 4;
    return MHD_YES;
}

static enum MHD_Result begin_request(cf_request *r, const char *url)
{
    int framing = cf_framing_check(r);
    if (framing)
        return framing > 0 ? MHD_YES : MHD_NO;
    /* The connection pool (below) is larger than the header limit, so enforce it here. */
    size_t header_bytes = strlen(url);
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, add_header_size, &header_bytes);
    if (header_bytes > MAX_HEADER_BYTES)
        return cf_respond_error(r, CF_S3_RequestHeaderSectionTooLarge, NULL) ? MHD_YES : MHD_NO;
    if (strcmp(url, "/health/live") == 0 &&
        (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)) {
        r->op = CF_S3_OP_UNKNOWN;
        cf_buf b;
        cf_buf_init(&b, 64);
        cf_buf_puts(&b, "ok\n");
        return cf_respond_xml(r, 200, &b) ? MHD_YES : MHD_NO;
    }
    if (strcmp(url, "/metrics") == 0 && strcmp(r->method, "GET") == 0) {
        cf_buf b;
        cf_buf_init(&b, (size_t)64 << 20);
        if (cf_metrics_render(r->srv->metrics, r->srv->store, &r->srv->log, &b) != 0 ||
            cf_conns_render(r->srv->conns, &b) != 0) {
            cf_buf_cleanup(&b);
            cf_buf_init(&b, 64);
            cf_buf_puts(&b, "metrics unavailable\n");
            return cf_respond_xml(r, 500, &b) ? MHD_YES : MHD_NO;
        }
        size_t len;
        char *data = cf_buf_steal(&b, &len);
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
            free(data);
            return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
        r->bytes_out = len;
        return cf_respond(r, 200, resp) ? MHD_YES : MHD_NO;
    }
    if (strcmp(url, "/health/ready") == 0 &&
        (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)) {
        cf_err err;
        int ready = cf_store_check_ready(r->srv->store, &err) == 0;
        if (!ready)
            cf_log(&r->srv->log, CF_LOG_WARN, "not ready", "error", err.msg, NULL);
        cf_buf b;
        cf_buf_init(&b, 64);
        cf_buf_puts(&b, ready ? "ready\n" : "not ready\n");
        return cf_respond_xml(r, ready ? 200 : 503, &b) ? MHD_YES : MHD_NO;
    }

    if (split_path(r, url) != 0)
        return cf_respond_error(r, CF_S3_InvalidArgument, "the request path is not valid percent-encoding")
                   ? MHD_YES
                   : MHD_NO;
    r->op = strcmp(r->bucket, "_admin") == 0 ? CF_S3_OP_ADMIN
                                             : cf_s3_route(r->method, r->bucket, r->key, route_param, r);

    cf_s3_error e = CF_S3_OK;
    char msg[256] = "";
    if (cf_auth_check(r, &e, msg, sizeof msg) != 0)
        return cf_respond_error(r, e, msg[0] ? msg : NULL) ? MHD_YES : MHD_NO;

    if ((e = cf_access_check(r)) != CF_S3_OK)
        return cf_respond_error(r, e, NULL) ? MHD_YES : MHD_NO;
    if ((e = cf_body_prepare(r, msg, sizeof msg)) != CF_S3_OK)
        return cf_respond_error(r, e, msg[0] ? msg : NULL) ? MHD_YES : MHD_NO;

    if (r->keylen > CF_S3_MAX_KEY_LEN)
        return cf_respond_error(r, CF_S3_KeyTooLongError, NULL) ? MHD_YES : MHD_NO;

    switch (r->op) {
    case CF_S3_OP_PUT_OBJECT:
        if (cf_put_object_begin(r, &e, msg, sizeof msg) != 0)
            return cf_respond_error(r, e, msg[0] ? msg : NULL) ? MHD_YES : MHD_NO;
        return MHD_YES;
    case CF_S3_OP_UPLOAD_PART:
        if (cf_upload_part_begin(r, &e, msg, sizeof msg) != 0)
            return cf_respond_error(r, e, msg[0] ? msg : NULL) ? MHD_YES : MHD_NO;
        return MHD_YES;
    case CF_S3_OP_POST_OBJECT:
        if (cf_post_object_begin(r, &e, msg, sizeof msg) != 0)
            return cf_respond_error(r, e, msg[0] ? msg : NULL) ? MHD_YES : MHD_NO;
        return MHD_YES;
    case CF_S3_OP_CREATE_BUCKET:
    case CF_S3_OP_COMPLETE_MULTIPART_UPLOAD:
    case CF_S3_OP_PUT_OBJECT_TAGGING:
    case CF_S3_OP_DELETE_OBJECTS:
    case CF_S3_OP_PUT_BUCKET_POLICY:
    case CF_S3_OP_PUT_BUCKET_CORS:
    case CF_S3_OP_ADMIN: r->body = BODY_SMALL; return MHD_YES;
    case CF_S3_OP_UNSUPPORTED:
        return cf_respond_error(r, CF_S3_NotImplemented,
                                "this operation is not implemented by coffer server yet")
                   ? MHD_YES
                   : MHD_NO;
    case CF_S3_OP_METHOD_NOT_ALLOWED:
    case CF_S3_OP_UNKNOWN: return cf_respond_error(r, CF_S3_MethodNotAllowed, NULL) ? MHD_YES : MHD_NO;
    default: r->body = BODY_NONE; return MHD_YES;
    }
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

/* On an offload worker: the handler's response is held for the event thread (on_request). */
static void run_offloaded(cf_request *r)
{
    r->hold_response = 1;
    r->handler_ok = run_handler(r);
    r->hold_response = 0;
    r->resumed = 1;
}

/* The last call: the body is complete. */
static int finish_request(cf_request *r)
{
    cf_conn_body_complete(r->track);
    char msg[256] = "";
    cf_s3_error e = cf_body_complete(r, msg, sizeof msg);
    if (e)
        return cf_respond_error(r, e, msg[0] ? msg : NULL);
    if (!op_only_reads(r->op) && cf_offload_submit(r->srv->offload, r) == 0)
        return 1;
    return run_handler(r);
}

/* The connection resumed after its handler ran on the offload pool. */
static enum MHD_Result queue_held_response(cf_request *r)
{
    r->resumed = 0;
    struct MHD_Response *resp = r->held_response;
    r->held_response = NULL;
    if (!resp)
        return r->handler_ok ? MHD_YES : MHD_NO;
    enum MHD_Result ok = MHD_queue_response(r->conn, r->held_status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    cf_server *srv = cls;
    cf_request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        r->srv = srv;
        r->conn = conn;
        r->method = method;
        r->version = version;
        r->started = cf_clock_mono();
        uint64_t seq = atomic_fetch_add((_Atomic uint64_t *)&srv->request_seq, 1);
        /* boot id, then the sequence number as 12 hex digits (no printf: once per request) */
        memcpy(r->request_id, srv->boot_id, 8);
        for (int i = 11; i >= 0; i--, seq >>= 4)
            r->request_id[8 + i] = "0123456789ABCDEF"[seq & 15];
        r->request_id[20] = '\0';
        cf_buf_init(&r->small, CF_MAX_SMALL_BODY);
        cf_metrics_begin(srv->metrics);
        r->track = cf_conn_of(conn);
        cf_conn_headers_received(r->track);
        return begin_request(r, url);
    }
    if (*upload_data_size) {
        cf_conn_body_received(r->track, *upload_data_size);
        if (r->responded)
            ;
        else if (r->post)
            cf_post_object_take(r, upload_data, *upload_data_size);
        else
            cf_body_take(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->resumed)
        return queue_held_response(r);
    if (r->responded)
        return MHD_YES;
    return finish_request(r) ? MHD_YES : MHD_NO;
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

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    cf_request *r = *con_cls;
    if (!r)
        return;
    cf_offload_forget(r->srv->offload, r);
    if (r->held_response)
        MHD_destroy_response(r->held_response);
    cf_conn_request_done(r->track);
    /* Anything not committed by now is discarded: a client that went away leaves nothing. */
    cf_store_writer_abort(r->writer);
    cf_post_object_cleanup(r);
    cf_body_cleanup(r);
    cf_metrics_end(r->srv->metrics, r->op, r->responded ? r->status : 0, r->bytes_in, r->bytes_out,
                   cf_clock_mono() - r->started);
    cf_hash_free(r->sha256);
    cf_buf_cleanup(&r->small);
    cf_buf_cleanup(&r->error_detail);
    cf_access_cleanup(r);

    char status[24], ms[48], in[24], out[24];
    decimal(status, (uint64_t)(r->responded ? r->status : 0));
    uint64_t us = (uint64_t)((cf_clock_mono() - r->started) * 1e6);
    char *frac = decimal(ms, us / 1000);
    *frac++ = '.';
    frac[0] = (char)('0' + us % 1000 / 100);
    frac[1] = (char)('0' + us % 100 / 10);
    frac[2] = (char)('0' + us % 10);
    frac[3] = '\0';
    decimal(in, r->bytes_in);
    decimal(out, r->bytes_out);
    cf_log(&r->srv->log, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? CF_LOG_INFO : CF_LOG_WARN, "request",
           "id", r->request_id, "method", r->method, "op", cf_s3_op_name(r->op), "bucket",
           r->bucket ? r->bucket : "", "key", r->key ? r->key : "", "status", status, "bytes_in", in,
           "bytes_out", out, "ms", ms, "access_key", r->access_key, "result",
           toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "ok" : "aborted", NULL);
    free(r->bucket);
    free(r->key);
    free(r->resource);
    free(r->signed_path);
    free(r);
    *con_cls = NULL;
}

/* libmicrohttpd's own diagnostics (bad requests, dropped connections) join the log stream. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    const cf_logger *log = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    cf_log(log, CF_LOG_DEBUG, "http", "detail", msg, NULL);
}

static int parse_address(const char *address, struct sockaddr_storage *ss, socklen_t *len, int *v6,
                         cf_err *err)
{
    char host[256];
    const char *colon = strrchr(address, ':');
    if (!colon)
        return cf_err_set(err, CF_EINVAL, "address '%s' has no port; hint: use HOST:PORT", address);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || colon[1] == '\0')
        return cf_err_set(err, CF_EINVAL, "port in address '%s' is not a number from 0 to 65535", address);
    size_t hl = (size_t)(colon - address);
    if (hl >= sizeof host)
        return cf_err_set(err, CF_EINVAL, "address '%s' is too long", address);
    memcpy(host, address, hl);
    host[hl] = '\0';
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return cf_err_set(err, CF_EINVAL, "'%s' is not an IPv6 address", host + 1);
        *len = sizeof *a6;
        *v6 = 1;
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    if (hl == 0 || strcmp(host, "0.0.0.0") == 0)
        a4->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        return cf_err_set(err, CF_EINVAL, "'%s' is not an IPv4 address", host);
    *len = sizeof *a4;
    *v6 = 0;
    return 0;
}

static void free_server(cf_server *srv)
{
    cf_offload_stop(srv->offload);
    cf_conns_stop(srv->conns);
    cf_metrics_free(srv->metrics);
    cf_sigv4_key_cache_free(srv->keys);
    cf_policy_cache_free(srv->policy_cache);
    cf_cors_cache_free(srv->cors_cache);
    free(srv);
}

/* Every connection is a file descriptor: raise the soft limit as far as the hard one allows,
 * and lower the connection limit if that is still not enough. */
static unsigned raise_fd_limit(unsigned max_conns, const cf_logger *log)
{
    const rlim_t reserve = 256; /* data files, LMDB, logs */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return max_conns;
    rlim_t want = (rlim_t)max_conns + reserve;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want) {
        unsigned fit =
            rl.rlim_cur > reserve * 2 ? (unsigned)(rl.rlim_cur - reserve) : (unsigned)(rl.rlim_cur / 2);
        char have[24], limit[24];
        snprintf(have, sizeof have, "%llu", (unsigned long long)rl.rlim_cur);
        snprintf(limit, sizeof limit, "%u", fit);
        cf_log(log, CF_LOG_WARN, "open file limit too low for the connection limit; lowered it", "nofile",
               have, "max_connections", limit, NULL);
        return fit;
    }
    return max_conns;
}

int cf_server_start(cf_store *store, const cf_server_options *opts, cf_server **out, cf_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int v6 = 0;
    int rc = parse_address(opts->address, &ss, &sslen, &v6, err);
    if (rc)
        return rc;
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
    snprintf(srv->region, sizeof srv->region, "%s", opts->region ? opts->region : "us-east-1");
    snprintf(srv->domain, sizeof srv->domain, "%s", opts->domain ? opts->domain : "");
    srv->multipart_expiry_s = opts->multipart_expiry_s > 0 ? opts->multipart_expiry_s : (int64_t)7 * 86400;
    unsigned char rnd[4];
    if (cf_clock_random(srv->clock, rnd, sizeof rnd) != 0) {
        free_server(srv);
        return cf_err_set(err, CF_EIO, "no randomness for the boot id");
    }
    snprintf(srv->boot_id, sizeof srv->boot_id, "%02X%02X%02X%02X", rnd[0], rnd[1], rnd[2], rnd[3]);

    unsigned max_conns =
        (unsigned)(opts->max_connections ? opts->max_connections : CF_SERVER_MAX_CONNECTIONS);
    max_conns = raise_fd_limit(max_conns, &srv->log);
    unsigned http_threads = opts->http_threads;
    if (!http_threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        http_threads = n > 0 ? (unsigned)n : 1;
    }
    double header_timeout = opts->header_timeout_s ? opts->header_timeout_s : CF_SERVER_HEADER_TIMEOUT_S;
    uint64_t min_rate = opts->min_body_rate ? opts->min_body_rate : CF_SERVER_MIN_BODY_RATE;
    if (min_rate == UINT64_MAX)
        min_rate = 0;
    rc =
        cf_conns_start(header_timeout, min_rate,
                       opts->body_rate_window_s > 0 ? opts->body_rate_window_s : CF_SERVER_BODY_RATE_WINDOW_S,
                       &srv->log, &srv->conns);
    if (!rc)
        rc = cf_offload_start(opts->blocking_threads ? opts->blocking_threads : CF_SERVER_BLOCKING_THREADS,
                              run_offloaded, &srv->offload);
    if (rc) {
        free_server(srv);
        return cf_err_set(err, rc, "cannot start the server's threads");
    }

    /* A few event-loop threads serve every connection; handlers that wait for the disk run on
     * the offload pool with their connection suspended (docs/internals/server.md). */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        &srv->log, /* first, or MHD logs some of its own way */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, http_threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, cf_conns_notify,
        srv->conns, MHD_OPTION_UNESCAPE_CALLBACK, keep_raw, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        opts->connection_timeout_s ? opts->connection_timeout_s : CF_SERVER_IDLE_TIMEOUT_S,
        MHD_OPTION_CONNECTION_LIMIT, max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        opts->max_connections_per_ip ? opts->max_connections_per_ip : CF_SERVER_MAX_CONNECTIONS_PER_IP,
        /* Headers beyond the pool are refused with 431 before any handler runs (and beyond
         * MAX_HEADER_BYTES by begin_request). The pool is also the read buffer, so it sets the
         * body piece handed to us per call; MHD zeroes the whole pool between keep-alive
         * requests: at 1 MiB that was a third of a small GET's CPU, at 128 KiB still 8 % of
         * it, so 64 KiB (docs/BENCHMARKS.md). It bounds a connection's memory. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CF_CONNECTION_POOL,
        MHD_OPTION_CONNECTION_MEMORY_INCREMENT, (size_t)32 * 1024, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_END);
    if (!srv->daemon) {
        free_server(srv);
        return cf_err_set(err, CF_EIO, "cannot listen on '%s'; hint: is the port already in use?",
                          opts->address);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    if (cf_janitor_start(srv) != 0) {
        cf_offload_drain(srv->offload);
        MHD_stop_daemon(srv->daemon);
        free_server(srv);
        return cf_err_set(err, CF_EIO, "cannot start the housekeeping thread");
    }
    *out = srv;
    return 0;
}

uint16_t cf_server_port(const cf_server *srv)
{
    return srv->port;
}

void cf_server_stop(cf_server *srv)
{
    if (!srv)
        return;
    /* MHD_stop_daemon aborts the process if a connection is still suspended. */
    cf_offload_drain(srv->offload);
    MHD_stop_daemon(srv->daemon);
    cf_janitor_stop(srv);
    free_server(srv);
}
