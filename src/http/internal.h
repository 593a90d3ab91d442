/*
 * internal.h - what the files of src/http/ share and front ends do not see: the daemon, the
 * connection table (conn.c), the blocking pool (offload.c) and the pacing timer (pace.c).
 */
#ifndef CF_HTTP_INTERNAL_H
#define CF_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>

#include "http/http.h"

/* cf_http_response is libmicrohttpd's response under a name the front ends can hold. */
static inline struct MHD_Response *cf_mhd_response(cf_http_response *r)
{
    return (struct MHD_Response *)r;
}
static inline cf_http_response *cf_http_response_of(struct MHD_Response *r)
{
    return (cf_http_response *)r;
}

typedef struct cf_http_conn cf_conn;
typedef struct cf_conns cf_conns;
typedef struct cf_offload cf_offload;
typedef struct cf_pace_timer cf_pace_timer;

typedef struct cf_http_mount_entry {
    char *prefix;
    size_t len;
    cf_http_handlers handlers;
    void *ctx;
} cf_http_mount_entry;

struct cf_http {
    struct MHD_Daemon *daemon;
    cf_http_options opts; /* defaults applied; address copied below */
    char address[300];
    cf_logger log;
    uint16_t port;
    cf_http_mount_entry *mounts; /* longest prefix first */
    size_t nmounts;
    cf_conns *conns;       /* conn.c: header deadline, minimum body rate */
    cf_offload *offload;   /* offload.c: handlers that block */
    cf_pace_timer *pacing; /* pace.c: paced responses waiting for their meter */
};

/* conn.c: every open connection, and a reaper that shuts down those past a deadline. */
int cf_conns_start(double header_timeout, uint64_t min_body_rate, double body_window, const cf_logger *log,
                   cf_conns **out);
void cf_conns_stop(cf_conns *t);
/* MHD_OPTION_NOTIFY_CONNECTION callback; cls is the cf_conns. */
void cf_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode code);
/* Appends the connection gauges and counters to a /metrics page. */
int cf_conns_render(cf_conns *t, cf_buf *b);
cf_conn *cf_conn_of(struct MHD_Connection *conn); /* NULL when untracked; the calls below accept it */
void cf_conn_headers_received(cf_conn *c);
void cf_conn_body_received(cf_conn *c, size_t n);
void cf_conn_body_complete(cf_conn *c);
void cf_conn_request_done(cf_conn *c);

/* offload.c: a bounded pool of threads for handlers that block on the disk. */
typedef void (*cf_offload_fn)(cf_http_request *r);
enum { CF_OFFLOAD_NONE, CF_OFFLOAD_QUEUED };
int cf_offload_start(unsigned nthreads, cf_offload_fn run, cf_offload **out);
/* From the access handler: suspends r's connection and queues run(r) (0), or -1 when the pool
 * is stopping (run it on the caller's thread). The worker resumes the connection after run. */
int cf_offload_submit(cf_offload *p, cf_http_request *r);
/* Waits until r is neither queued nor running (before freeing it). */
void cf_offload_forget(cf_offload *p, cf_http_request *r);
/* Refuses new work and waits for what is queued or running: before MHD_stop_daemon, which
 * must not find a suspended connection. */
void cf_offload_drain(cf_offload *p);
void cf_offload_stop(cf_offload *p);

/* pace.c: the timer that resumes paced connections. */
int cf_pace_timer_start(cf_pace_timer **out);
/* Resumes every waiting connection and suspends none after: before MHD_stop_daemon. */
void cf_pace_timer_drain(cf_pace_timer *t);
void cf_pace_timer_stop(cf_pace_timer *t);

#endif
