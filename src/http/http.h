/*
 * http.h - the HTTP layer every front end mounts on (docs/internals/http.md).
 *
 * A cf_http is a libmicrohttpd daemon: a few epoll event-loop threads, connection limits and
 * deadlines, request framing checks, a pool of threads for handlers that block, and a mount
 * table of path prefixes. A front end (the S3 server, /health, /metrics, a console) registers
 * a prefix with a set of handlers; the layer finds the mount for each request and calls them
 * through the request's life. It knows HTTP, not what the front ends speak: how a refusal is
 * worded (an S3 error document, a JSON error) is each mount's business.
 *
 * Use: cf_http_new, cf_http_mount (any number), cf_http_start, ..., cf_http_stop.
 */
#ifndef CF_HTTP_HTTP_H
#define CF_HTTP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

/* Defaults of the connection limits (README, `coffer server --help`). */
#define CF_HTTP_IDLE_TIMEOUT_S 60
#define CF_HTTP_MAX_CONNECTIONS 10000
#define CF_HTTP_MAX_CONNECTIONS_PER_IP 256
#define CF_HTTP_HEADER_TIMEOUT_S 10.0
#define CF_HTTP_MIN_BODY_RATE 1024
#define CF_HTTP_BODY_RATE_WINDOW_S 10.0
#define CF_HTTP_BLOCKING_THREADS 16
#define CF_HTTP_MAX_HEADER_BYTES (32 << 10) /* S3 allows 8 KiB; long keys in copy sources need more */

typedef struct cf_http_options {
    const char *address;             /* "127.0.0.1:9000", "[::1]:9000" or ":9000" (all addresses) */
    unsigned connection_timeout_s;   /* idle connections are closed after this; 0 = default (60 s) */
    size_t max_connections;          /* 0 = default (10,000) */
    unsigned max_connections_per_ip; /* 0 = default (256) */
    double header_timeout_s; /* request line and headers complete within this; 0 = default (10 s), <0 = off */
    uint64_t min_body_rate;  /* bytes/s a body must keep up; 0 = default (1024), UINT64_MAX = off */
    double body_rate_window_s; /* ... measured over windows of this; 0 = default (10 s) */
    unsigned threads;          /* event-loop threads; 0 = one per core */
    unsigned blocking_threads; /* threads for handlers that block (cf_http_offload); 0 = default (16) */
    const cf_logger *log;      /* copied; NULL = nothing is logged */
} cf_http_options;

typedef struct cf_http cf_http;
typedef struct cf_http_request cf_http_request;
typedef struct cf_http_conn cf_http_conn; /* conn.c: the deadlines of one connection */
/* A response being built: made by a cf_http_body_* function, given to cf_http_respond. Opaque so
 * that only src/http/ knows libmicrohttpd. */
typedef struct cf_http_response cf_http_response;
struct MHD_Connection;
struct sockaddr;

/* Why the layer refused a request head before any mount's begin ran. */
typedef struct cf_http_refusal {
    int status;         /* 400, 501 (framing.h), 431 (header section too large) */
    const char *reason; /* a sentence for the error */
    const char *header; /* the header at fault, or NULL */
    int close;          /* the connection must close after the answer */
} cf_http_refusal;

/* What begin returns besides 1 (go on) and 0 (drop the connection): not this mount's request,
 * ask the next mount whose prefix matches (a shorter one). */
#define CF_HTTP_DECLINE (-2)

/*
 * The handlers of a mount. Each runs on the connection's event thread, but run, which runs on
 * the blocking pool when complete hands the request to cf_http_offload. Results: 1 = go on,
 * 0 = drop the connection.
 */
typedef struct cf_http_handlers {
    /* The request line and headers are in: set hr->front, and either respond now or wait for
     * the body. May return CF_HTTP_DECLINE before setting hr->front. */
    int (*begin)(void *ctx, cf_http_request *hr);
    /* Refuse a head the layer found broken (framing, header size); NULL: a plain-text answer.
     * Sets hr->front as begin would, as done is called after it. */
    int (*refuse)(void *ctx, cf_http_request *hr, const cf_http_refusal *why);
    /* A piece of the body (never after a response was queued); NULL: bodies are discarded. */
    void (*body)(cf_http_request *hr, const char *data, size_t n);
    /* The body is complete: respond, or cf_http_offload. */
    int (*complete)(cf_http_request *hr);
    /* On the blocking pool: its response is held and queued when the connection resumes. */
    int (*run)(cf_http_request *hr);
    /* The request is over (completed_ok: the response went out whole): the access-log hook,
     * and where hr->front is freed. Called for every request begin or refuse accepted. */
    void (*done)(cf_http_request *hr, int completed_ok);
} cf_http_handlers;

struct cf_http_request {
    cf_http *http;
    struct MHD_Connection *conn;
    const char *url; /* raw: percent-encoding kept, query removed */
    const char *method;
    const char *version; /* "HTTP/1.1", as libmicrohttpd parsed it */
    double started;      /* cf_clock_mono() when the head arrived */
    void *mount_ctx;     /* the ctx given to cf_http_mount */
    void *front;         /* the mount's own state of the request */
    int status;          /* of the response queued (or held) */
    int responded;

    /* The layer's own (daemon.c, offload.c). */
    const cf_http_handlers *handlers;
    cf_http_conn *track; /* conn.c's record of the connection, or NULL */
    int offload_state;   /* guarded by the pool's lock */
    cf_http_request *offload_next;
    int hold_response;
    int handler_ok;
    int resumed;
    cf_http_response *held_response;
    unsigned held_status;
};

int cf_http_new(const cf_http_options *opts, cf_http **out, cf_err *err);
/* Routes requests whose raw path is prefix or continues it after a '/' ("/" matches all) to
 * handlers, the longest prefix first. Before cf_http_start only: the table is read without a
 * lock while the daemon runs. ctx is the mount's, passed to begin and refuse. */
int cf_http_mount(cf_http *h, const char *prefix, const cf_http_handlers *handlers, void *ctx, cf_err *err);
/* Binds and serves on background threads. On failure h is left for cf_http_free. */
int cf_http_start(cf_http *h, cf_err *err);
/* The port actually bound (useful with port 0). */
uint16_t cf_http_port(const cf_http *h);
/* Stops accepting, waits for handlers on the blocking pool, resumes paced responses, closes every
 * connection (done is called for each request) and frees. NULL is a no-op. */
void cf_http_stop(cf_http *h);
/* Appends the connection gauges and counters to a Prometheus text page. */
int cf_http_render_metrics(cf_http *h, cf_buf *b);

/* What a handler reads of its request. A bare "?acl" is "" (present, empty). */
const char *cf_http_header(const cf_http_request *hr, const char *name);
const char *cf_http_param(const cf_http_request *hr, const char *name);
/* Called for each header field (or query parameter) in the order received; value is NULL for a
 * bare parameter. Returns 1 to go on, 0 to stop. */
typedef int (*cf_http_visitor)(void *cls, const char *name, size_t name_len, const char *value,
                               size_t value_len);
/* Visit every header field (or query parameter) of hr; returns how many were visited. */
int cf_http_each_header(const cf_http_request *hr, cf_http_visitor visit, void *cls);
int cf_http_each_param(const cf_http_request *hr, cf_http_visitor visit, void *cls);
/* The peer's address, or NULL when unknown. */
const struct sockaddr *cf_http_client_address(const cf_http_request *hr);

/* Queues resp with status (held for the event thread when called from run); destroys resp.
 * NULL resp (a failed create) returns 0. */
int cf_http_respond(cf_http_request *hr, int status, cf_http_response *resp);
/* A body of len bytes at data: copied (copy) or taken (freed with free()). */
cf_http_response *cf_http_body_buffer(const void *data, size_t len, int copy);
/* An empty body. */
cf_http_response *cf_http_body_empty(void);
/* len bytes of fd from offset (sendfile when it can); the response closes fd. */
cf_http_response *cf_http_body_fd(int fd, uint64_t offset, uint64_t len);
/* What a cf_http_reader returns besides a byte count: the end of the body, or a failure (the
 * connection is closed: the client sees a short body). */
#define CF_HTTP_READER_END 0
#define CF_HTTP_READER_ERROR (-1)
/* Produces up to max bytes at pos into buf: the count, CF_HTTP_READER_END only at the end, or
 * CF_HTTP_READER_ERROR. */
typedef long (*cf_http_reader)(void *cls, uint64_t pos, char *buf, size_t max);
/* len bytes from read, block bytes at a time; free_cls(cls) when the response is destroyed. */
cf_http_response *cf_http_body_reader(uint64_t len, size_t block, cf_http_reader read, void *cls,
                                      void (*free_cls)(void *cls));
/* Adds a header field (the value is copied). */
void cf_http_add_header(cf_http_response *resp, const char *name, const char *value);

/* From complete: suspends the connection and queues handlers->run on the blocking pool (0), or
 * -1 when the pool is stopping (run it on the caller's thread). */
int cf_http_offload(cf_http_request *hr);

/*
 * Pacing (pace.c): a meter decides how many bytes of a response may go out now. When it grants
 * nothing, the connection is suspended and resumed by a timer when the meter says bytes will be
 * available: no thread spins while a response waits.
 */
typedef struct cf_http_meter {
    /* Up to want bytes that may go now (> 0), or 0 with *wait_s set: when to ask again. Called
     * from many event threads at once: thread-safe. */
    size_t (*grant)(void *ctx, size_t want, double *wait_s);
    void *ctx;
    /* Optional, used instead of grant when set: takes a piece of up to want bytes (> 0) from the
     * budget now, in debt if need be, and sets *wait_s to when it may go (0: at once). Pieces go
     * in the order they were reserved, so the connections sharing a meter interleave fairly. */
    size_t (*reserve)(void *ctx, size_t want, double *wait_s);
} cf_http_meter;

/* Like cf_http_body_reader, with every piece metered by meter (which must outlive the
 * response): for request hr, whose connection it suspends while the meter grants nothing. */
cf_http_response *cf_http_body_paced(cf_http_request *hr, uint64_t len, size_t block, cf_http_reader read,
                                     void *cls, void (*free_cls)(void *cls), const cf_http_meter *meter);
/* len bytes of fd from offset, metered (read with pread: no sendfile); closes fd. */
cf_http_response *cf_http_body_fd_paced(cf_http_request *hr, int fd, uint64_t offset, uint64_t len,
                                        const cf_http_meter *meter);

/* A token bucket: rate bytes/s on average, at most burst bytes at once, shared by any number
 * of responses on any threads. It starts empty and fills from its first request, so the first
 * n bytes through it take at least n/rate s; after an idle spell, n bytes take (n - burst)/rate. */
typedef struct cf_http_bucket cf_http_bucket;
int cf_http_bucket_new(uint64_t rate, uint64_t burst, cf_http_bucket **out);
void cf_http_bucket_free(cf_http_bucket *b);
/* A new rate and burst from now on (a rate group's rate changed while responses run): responses
 * waiting on the old rate are resumed when it said, then go at the new one. 0s are ignored. */
void cf_http_bucket_set_rate(cf_http_bucket *b, uint64_t rate, uint64_t burst);
/* The meter of the bucket, for cf_http_body_paced: fair between the responses sharing it (each
 * takes at most 64 KiB, or rate/200 if less, at a time, in turn). */
cf_http_meter cf_http_bucket_meter(cf_http_bucket *b);

#endif
