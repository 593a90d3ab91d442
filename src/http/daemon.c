/*
 * daemon.c - the libmicrohttpd daemon, the mount table and the request lifecycle.
 *
 * One request passes through: first call (framing and header-size checks, find the mount, its
 * begin) → body calls (handed to the mount's body) → last call (the mount's complete, which
 * responds or hands the request to the blocking pool) → completion callback (the mount's done:
 * its cleanup and access log). A client that disconnects mid-body only ever reaches done.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/clock.h"
#include "http/framing.h"
#include "http/internal.h"

#define CF_CONNECTION_POOL (64 << 10) /* libmicrohttpd's memory per connection (see below) */

/* Keep the raw bytes of the path and query: SigV4 and S3 keys need them undecoded (MHD would
 * otherwise decode %2F into '/' before we could split bucket from key). */
static size_t keep_raw(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

/* The mount's prefix is the whole path or followed by '/' in it ("/" matches every path). */
static int prefix_matches(const cf_http_mount_entry *m, const char *url)
{
    if (strncmp(url, m->prefix, m->len) != 0)
        return 0;
    return url[m->len] == '\0' || url[m->len] == '/' || m->prefix[m->len - 1] == '/';
}

/* The first mount from index `from` whose prefix matches url; nmounts when none. */
static size_t find_mount(const cf_http *h, const char *url, size_t from)
{
    for (size_t i = from; i < h->nmounts; i++)
        if (prefix_matches(&h->mounts[i], url))
            return i;
    return h->nmounts;
}

static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key, size_t klen,
                                       const char *value, size_t vlen)
{
    (void)kind;
    (void)key;
    (void)value;
    *(size_t *)cls += klen + vlen + 4;
    return MHD_YES;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                   const char *value, size_t value_size)
{
    (void)kind;
    cf_framing_scan_field(cls, key, key_size, value ? value : "", value ? value_size : 0);
    return MHD_YES;
}

/* A refusal for a mount that words none itself. */
static int refuse_plain(cf_http_request *hr, const cf_http_refusal *why)
{
    char text[320];
    int n = snprintf(text, sizeof text, "%s\n", why->reason);
    cf_http_response *resp = cf_http_body_buffer(text, n > 0 ? (size_t)n : 0, 1);
    if (resp) {
        cf_http_add_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
        if (why->close)
            cf_http_add_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    return cf_http_respond(hr, why->status, resp);
}

static int refuse(cf_http_request *hr, const cf_http_mount_entry *m, const cf_http_refusal *why)
{
    if (m && m->handlers.refuse) {
        hr->handlers = &m->handlers;
        hr->mount_ctx = m->ctx;
        return m->handlers.refuse(m->ctx, hr, why);
    }
    return refuse_plain(hr, why);
}

/* What can be decided from the request line and headers, before any mount sees them. */
static int check_head(cf_http_request *hr, const cf_http_mount_entry *m, int *refused)
{
    *refused = 1;
    cf_framing_scan s = {0};
    MHD_get_connection_values_n(hr->conn, MHD_HEADER_KIND, scan_header, &s);
    int http10 = hr->version && strcmp(hr->version, MHD_HTTP_VERSION_1_0) == 0;
    const char *header;
    cf_err err;
    int rc = cf_framing_verdict(&s, http10, &header, &err);
    if (rc) {
        /* What follows the head on the connection cannot be trusted to start a request. */
        cf_http_refusal why = {cf_framing_status(rc), err.msg, header, 1};
        return refuse(hr, m, &why);
    }
    /* The connection pool (below) is larger than the header limit, so enforce it here. */
    size_t header_bytes = strlen(hr->url);
    MHD_get_connection_values_n(hr->conn, MHD_HEADER_KIND, add_header_size, &header_bytes);
    if (header_bytes > CF_HTTP_MAX_HEADER_BYTES) {
        cf_http_refusal why = {431, "the request's header section is too large", NULL, 0};
        return refuse(hr, m, &why);
    }
    *refused = 0;
    return 1;
}

/* Whether a body follows the head: framing was checked, so Transfer-Encoding means chunked. */
static int has_body(const cf_http_request *hr)
{
    const char *length =
        MHD_lookup_connection_value(hr->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (MHD_lookup_connection_value(hr->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        return 1;
    return length && strspn(length, "0") != strlen(length);
}

static int begin_request(cf_http *h, cf_http_request *hr)
{
    size_t i = find_mount(h, hr->url, 0);
    int refused;
    int ok = check_head(hr, i < h->nmounts ? &h->mounts[i] : NULL, &refused);
    if (refused)
        return ok;
    /* libmicrohttpd ends the connection after a response queued from the first call, before the
     * request is complete. A request without a body loses nothing by waiting for the next call,
     * so an answer from begin is held until then and the connection stays open for the next
     * request; one with a body is answered at once, so that the body need not be read. */
    int hold = !has_body(hr);
    for (; i < h->nmounts; i = find_mount(h, hr->url, i + 1)) {
        const cf_http_mount_entry *m = &h->mounts[i];
        hr->handlers = &m->handlers;
        hr->mount_ctx = m->ctx;
        hr->hold_response = hold;
        int rc = m->handlers.begin(m->ctx, hr);
        hr->hold_response = 0;
        if (rc == CF_HTTP_DECLINE)
            continue;
        if (hr->held_response) {
            hr->handler_ok = rc;
            hr->resumed = 1;
        }
        return rc;
    }
    hr->handlers = NULL;
    hr->mount_ctx = NULL;
    cf_http_refusal why = {404, "nothing is served at this path", NULL, 0};
    return refuse_plain(hr, &why);
}

/* On a blocking-pool worker: the handler's response is held for the event thread. */
static void run_offloaded(cf_http_request *hr)
{
    hr->hold_response = 1;
    hr->handler_ok = hr->handlers->run(hr);
    hr->hold_response = 0;
    hr->resumed = 1;
}

int cf_http_offload(cf_http_request *hr)
{
    if (!hr->handlers || !hr->handlers->run)
        return -1;
    return cf_offload_submit(hr->http->offload, hr);
}

/* The connection resumed after its handler ran on the blocking pool. */
static enum MHD_Result queue_held_response(cf_http_request *hr)
{
    hr->resumed = 0;
    struct MHD_Response *resp = cf_mhd_response(hr->held_response);
    hr->held_response = NULL;
    if (!resp)
        return hr->handler_ok ? MHD_YES : MHD_NO;
    enum MHD_Result ok = MHD_queue_response(hr->conn, hr->held_status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    cf_http *h = cls;
    cf_http_request *hr = *con_cls;
    if (!hr) {
        hr = calloc(1, sizeof *hr);
        if (!hr)
            return MHD_NO;
        *con_cls = hr;
        hr->http = h;
        hr->conn = conn;
        hr->url = url;
        hr->method = method;
        hr->version = version;
        hr->started = cf_clock_mono();
        hr->track = cf_conn_of(conn);
        cf_conn_headers_received(hr->track);
        return begin_request(h, hr) ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size) {
        cf_conn_body_received(hr->track, *upload_data_size);
        if (!hr->responded && hr->handlers && hr->handlers->body)
            hr->handlers->body(hr, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (hr->resumed)
        return queue_held_response(hr);
    if (hr->responded)
        return MHD_YES;
    cf_conn_body_complete(hr->track);
    if (!hr->handlers || !hr->handlers->complete)
        return MHD_NO;
    return hr->handlers->complete(hr) ? MHD_YES : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    cf_http *h = cls;
    cf_http_request *hr = *con_cls;
    if (!hr)
        return;
    cf_offload_forget(h->offload, hr);
    if (hr->held_response)
        MHD_destroy_response(cf_mhd_response(hr->held_response));
    cf_conn_request_done(hr->track);
    if (hr->handlers && hr->handlers->done)
        hr->handlers->done(hr, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    free(hr);
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

int cf_http_new(const cf_http_options *opts, cf_http **out, cf_err *err)
{
    cf_http *h = calloc(1, sizeof *h);
    if (!h)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    h->opts = *opts;
    snprintf(h->address, sizeof h->address, "%s", opts->address ? opts->address : "127.0.0.1:0");
    h->opts.address = h->address;
    if (opts->log)
        h->log = *opts->log;
    h->opts.log = &h->log;
    *out = h;
    return 0;
}

int cf_http_mount(cf_http *h, const char *prefix, const cf_http_handlers *handlers, void *ctx, cf_err *err)
{
    if (h->daemon)
        return cf_err_set(err, CF_EINVAL, "mount '%s' after the HTTP daemon started", prefix);
    if (!prefix || prefix[0] != '/' || !handlers->begin)
        return cf_err_set(err, CF_EINVAL,
                          "a mount needs a path prefix starting with '/' and a begin handler");
    size_t len = strlen(prefix);
    for (size_t i = 0; i < h->nmounts; i++)
        if (strcmp(h->mounts[i].prefix, prefix) == 0)
            return cf_err_set(err, CF_EEXISTS, "path prefix '%s' is already mounted", prefix);
    cf_http_mount_entry *grown = realloc(h->mounts, (h->nmounts + 1) * sizeof *grown);
    if (!grown)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    h->mounts = grown;
    char *copy = strdup(prefix);
    if (!copy)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    /* Longest prefix first: the first match is the most specific mount. */
    size_t at = 0;
    while (at < h->nmounts && h->mounts[at].len >= len)
        at++;
    memmove(&h->mounts[at + 1], &h->mounts[at], (h->nmounts - at) * sizeof *h->mounts);
    h->mounts[at] = (cf_http_mount_entry){copy, len, *handlers, ctx};
    h->nmounts++;
    return 0;
}

int cf_http_start(cf_http *h, cf_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int v6 = 0;
    int rc = parse_address(h->address, &ss, &sslen, &v6, err);
    if (rc)
        return rc;
    const cf_http_options *o = &h->opts;
    unsigned max_conns = (unsigned)(o->max_connections ? o->max_connections : CF_HTTP_MAX_CONNECTIONS);
    max_conns = raise_fd_limit(max_conns, &h->log);
    unsigned threads = o->threads;
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    double header_timeout = o->header_timeout_s ? o->header_timeout_s : CF_HTTP_HEADER_TIMEOUT_S;
    uint64_t min_rate = o->min_body_rate ? o->min_body_rate : CF_HTTP_MIN_BODY_RATE;
    if (min_rate == UINT64_MAX)
        min_rate = 0;
    rc = cf_conns_start(header_timeout, min_rate,
                        o->body_rate_window_s > 0 ? o->body_rate_window_s : CF_HTTP_BODY_RATE_WINDOW_S,
                        &h->log, &h->conns);
    if (!rc)
        rc = cf_offload_start(o->blocking_threads ? o->blocking_threads : CF_HTTP_BLOCKING_THREADS,
                              run_offloaded, &h->offload);
    if (!rc)
        rc = cf_pace_timer_start(&h->pacing);
    if (rc)
        return cf_err_set(err, rc, "cannot start the HTTP layer's threads");

    /* A few event-loop threads serve every connection; handlers that block run on the
     * blocking pool with their connection suspended (docs/internals/http.md). */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        &h->log, /* first, or MHD logs some of its own way */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, cf_conns_notify, h->conns,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_raw, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        o->connection_timeout_s ? o->connection_timeout_s : CF_HTTP_IDLE_TIMEOUT_S,
        MHD_OPTION_CONNECTION_LIMIT, max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        o->max_connections_per_ip ? o->max_connections_per_ip : CF_HTTP_MAX_CONNECTIONS_PER_IP,
        /* Headers beyond the pool are refused with 431 before any handler runs (and beyond
         * CF_HTTP_MAX_HEADER_BYTES by check_head). The pool is also the read buffer, so it sets
         * the body piece handed to us per call; MHD zeroes the whole pool between keep-alive
         * requests: at 1 MiB that was a third of a small GET's CPU, at 128 KiB still 8 % of
         * it, so 64 KiB (docs/BENCHMARKS.md). It bounds a connection's memory. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CF_CONNECTION_POOL,
        MHD_OPTION_CONNECTION_MEMORY_INCREMENT, (size_t)32 * 1024, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_END);
    if (!h->daemon)
        return cf_err_set(err, CF_EIO, "cannot listen on '%s'; hint: is the port already in use?",
                          h->address);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    return 0;
}

uint16_t cf_http_port(const cf_http *h)
{
    return h->port;
}

void cf_http_stop(cf_http *h)
{
    if (!h)
        return;
    if (h->daemon) {
        /* MHD_stop_daemon aborts the process if a connection is still suspended. */
        cf_offload_drain(h->offload);
        cf_pace_timer_drain(h->pacing);
        MHD_stop_daemon(h->daemon);
    }
    cf_pace_timer_stop(h->pacing);
    cf_offload_stop(h->offload);
    cf_conns_stop(h->conns);
    for (size_t i = 0; i < h->nmounts; i++)
        free(h->mounts[i].prefix);
    free(h->mounts);
    free(h);
}

int cf_http_render_metrics(cf_http *h, cf_buf *b)
{
    return cf_conns_render(h->conns, b);
}

const char *cf_http_header(const cf_http_request *hr, const char *name)
{
    return MHD_lookup_connection_value(hr->conn, MHD_HEADER_KIND, name);
}

const char *cf_http_param(const cf_http_request *hr, const char *name)
{
    const char *v = NULL;
    if (MHD_lookup_connection_value_n(hr->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v, NULL) !=
        MHD_YES)
        return NULL;
    return v ? v : "";
}

typedef struct visit_fields {
    cf_http_visitor visit;
    void *cls;
} visit_fields;

static enum MHD_Result visit_field(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                   const char *value, size_t value_size)
{
    (void)kind;
    visit_fields *v = cls;
    return v->visit(v->cls, key, key_size, value, value_size) ? MHD_YES : MHD_NO;
}

int cf_http_each_header(const cf_http_request *hr, cf_http_visitor visit, void *cls)
{
    visit_fields v = {visit, cls};
    return MHD_get_connection_values_n(hr->conn, MHD_HEADER_KIND, visit_field, &v);
}

int cf_http_each_param(const cf_http_request *hr, cf_http_visitor visit, void *cls)
{
    visit_fields v = {visit, cls};
    return MHD_get_connection_values_n(hr->conn, MHD_GET_ARGUMENT_KIND, visit_field, &v);
}

const struct sockaddr *cf_http_client_address(const cf_http_request *hr)
{
    const union MHD_ConnectionInfo *ci =
        hr->conn ? MHD_get_connection_info(hr->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS) : NULL;
    return ci ? ci->client_addr : NULL;
}
