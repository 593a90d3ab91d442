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

#include "core/clock.h"
#include "core/log.h"
#include "crypto/sigv4.h"
#include "server/request.h"

#define MAX_HEADER_BYTES (64 << 10) /* S3 allows 8 KiB; long keys in copy sources need more */

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
        if (!rc) rc = cf_buf_append(&full, host, vlen);
        if (!rc) rc = cf_buf_append(&full, path.data, path.len);
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
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), value,
                                      NULL) == MHD_YES) {
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
    if (strcmp(url, "/health/live") == 0 && (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)) {
        r->op = CF_S3_OP_UNKNOWN;
        cf_buf b;
        cf_buf_init(&b, 64);
        cf_buf_puts(&b, "ok\n");
        return cf_respond_xml(r, 200, &b) ? MHD_YES : MHD_NO;
    }
    if (strcmp(url, "/metrics") == 0 && strcmp(r->method, "GET") == 0) {
        cf_buf b;
        cf_buf_init(&b, (size_t)64 << 20);
        if (cf_metrics_render(r->srv->metrics, r->srv->store, &b) != 0) {
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
    if (strcmp(url, "/health/ready") == 0 && (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)) {
        cf_err err;
        int ready = cf_store_check_ready(r->srv->store, &err) == 0;
        if (!ready)
            cf_log(CF_LOG_WARN, "not ready", "error", err.msg, NULL);
        cf_buf b;
        cf_buf_init(&b, 64);
        cf_buf_puts(&b, ready ? "ready\n" : "not ready\n");
        return cf_respond_xml(r, ready ? 200 : 503, &b) ? MHD_YES : MHD_NO;
    }

    if (split_path(r, url) != 0)
        return cf_respond_error(r, CF_S3_InvalidArgument, "the request path is not valid percent-encoding") ? MHD_YES : MHD_NO;
    r->op = strcmp(r->bucket, "_admin") == 0 ? CF_S3_OP_ADMIN : cf_s3_route(r->method, r->bucket, r->key, route_param, r);

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
    case CF_S3_OP_ADMIN:
        r->body = BODY_SMALL;
        return MHD_YES;
    case CF_S3_OP_UNSUPPORTED:
        return cf_respond_error(r, CF_S3_NotImplemented, "this operation is not implemented by coffer server yet") ? MHD_YES : MHD_NO;
    case CF_S3_OP_METHOD_NOT_ALLOWED:
    case CF_S3_OP_UNKNOWN:
        return cf_respond_error(r, CF_S3_MethodNotAllowed, NULL) ? MHD_YES : MHD_NO;
    default:
        r->body = BODY_NONE;
        return MHD_YES;
    }
}

/* The last call: the body is complete. */
static int finish_request(cf_request *r)
{
    char msg[256] = "";
    cf_s3_error e = cf_body_complete(r, msg, sizeof msg);
    if (e)
        return cf_respond_error(r, e, msg[0] ? msg : NULL);
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
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
        snprintf(r->request_id, sizeof r->request_id, "%s%012llX", srv->boot_id, (unsigned long long)seq);
        cf_buf_init(&r->small, CF_MAX_SMALL_BODY);
        cf_metrics_begin(srv->metrics);
        return begin_request(r, url);
    }
    if (*upload_data_size) {
        if (r->responded)
            ;
        else if (r->post)
            cf_post_object_take(r, upload_data, *upload_data_size);
        else
            cf_body_take(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->responded)
        return MHD_YES;
    return finish_request(r) ? MHD_YES : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    cf_request *r = *con_cls;
    if (!r)
        return;
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

    char status[8], ms[32], in[24], out[24];
    snprintf(status, sizeof status, "%d", r->responded ? r->status : 0);
    snprintf(ms, sizeof ms, "%.3f", (cf_clock_mono() - r->started) * 1000.0);
    snprintf(in, sizeof in, "%llu", (unsigned long long)r->bytes_in);
    snprintf(out, sizeof out, "%llu", (unsigned long long)r->bytes_out);
    cf_log(toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? CF_LOG_INFO : CF_LOG_WARN, "request",
           "id", r->request_id, "method", r->method, "op", cf_s3_op_name(r->op),
           "bucket", r->bucket ? r->bucket : "", "key", r->key ? r->key : "",
           "status", status, "bytes_in", in, "bytes_out", out, "ms", ms,
           "access_key", r->access_key,
           "result", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "ok" : "aborted", NULL);
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
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    cf_log(CF_LOG_DEBUG, "http", "detail", msg, NULL);
}

static int parse_address(const char *address, struct sockaddr_storage *ss, socklen_t *len,
                         int *v6, cf_err *err)
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
    if (!(srv->metrics = cf_metrics_new())) {
        free(srv);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    snprintf(srv->region, sizeof srv->region, "%s", opts->region ? opts->region : "us-east-1");
    snprintf(srv->domain, sizeof srv->domain, "%s", opts->domain ? opts->domain : "");
    srv->multipart_expiry_s = opts->multipart_expiry_s > 0 ? opts->multipart_expiry_s : (int64_t)7 * 86400;
    unsigned char rnd[4];
    cf_random_bytes(rnd, sizeof rnd);
    snprintf(srv->boot_id, sizeof srv->boot_id, "%02X%02X%02X%02X", rnd[0], rnd[1], rnd[2], rnd[3]);

    /* A thread per connection: a request blocks its thread in fsync and in LMDB's commit, and
     * with a small event-loop pool one slow disk flush would stall every connection sharing
     * that thread (docs/internals/server.md). */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_raw, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, opts->connection_timeout_s ? opts->connection_timeout_s : 120u,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(opts->max_connections ? opts->max_connections : 1024),
        /* Headers beyond the pool are refused with 431 before any handler runs (and beyond
         * MAX_HEADER_BYTES by begin_request). The pool is also the read buffer, so it sets the
         * body piece handed to us per call; MHD zeroes the used pool between keep-alive
         * requests, so 1 MiB cost a third of a small GET's CPU, while 128 KiB keeps large PUTs
         * at the same rate (docs/BENCHMARKS.md). */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)128 * 1024,
        MHD_OPTION_CONNECTION_MEMORY_INCREMENT, (size_t)32 * 1024,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_END);
    if (!srv->daemon) {
        cf_metrics_free(srv->metrics);
        free(srv);
        return cf_err_set(err, CF_EIO, "cannot listen on '%s'; hint: is the port already in use?", opts->address);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    if (cf_janitor_start(srv) != 0) {
        MHD_stop_daemon(srv->daemon);
        cf_metrics_free(srv->metrics);
        free(srv);
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
    MHD_stop_daemon(srv->daemon);
    cf_janitor_stop(srv);
    cf_metrics_free(srv->metrics);
    cf_policy_cache_free(srv->policy_cache);
    free(srv);
}
