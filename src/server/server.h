/*
 * server.h - coffer server: the S3 HTTP front over the object store.
 *
 * cf_server_start binds and serves on background threads until cf_server_stop. The store
 * stays the caller's: open it before start, close it after stop.
 */
#ifndef CF_SERVER_SERVER_H
#define CF_SERVER_SERVER_H

#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"
#include "store/store.h"

typedef struct cf_credential {
    char access_key[129];
    char secret_key[129];
} cf_credential;

/* Defaults of the connection limits (README, `coffer server --help`). */
#define CF_SERVER_IDLE_TIMEOUT_S 60
#define CF_SERVER_MAX_CONNECTIONS 10000
#define CF_SERVER_MAX_CONNECTIONS_PER_IP 256
#define CF_SERVER_HEADER_TIMEOUT_S 10.0
#define CF_SERVER_MIN_BODY_RATE 1024
#define CF_SERVER_BODY_RATE_WINDOW_S 10.0
#define CF_SERVER_BLOCKING_THREADS 16

typedef struct cf_server_options {
    const char *address; /* "127.0.0.1:9000", "[::1]:9000" or ":9000" (all addresses) */
    const char *region;  /* "us-east-1" */
    cf_credential root;
    unsigned connection_timeout_s;   /* idle connections are closed after this; 0 = default (60 s) */
    size_t max_connections;          /* 0 = default (10,000) */
    unsigned max_connections_per_ip; /* 0 = default (256) */
    double header_timeout_s; /* request line and headers complete within this; 0 = default (10 s), <0 = off */
    uint64_t min_body_rate;  /* bytes/s a body must keep up; 0 = default (1024), UINT64_MAX = off */
    double body_rate_window_s;  /* ... measured over windows of this; 0 = default (10 s) */
    unsigned http_threads;      /* event-loop threads; 0 = one per core */
    unsigned blocking_threads;  /* threads for handlers that wait for the disk; 0 = default (16) */
    int64_t multipart_expiry_s; /* uploads older than this are aborted; 0 = 7 days */
    const char *domain;         /* virtual-host style: BUCKET.domain; NULL = path style only */
    const cf_logger *log;       /* copied; NULL = nothing is logged */
    const cf_clock *clock;      /* borrowed until stop; NULL = the system's (core/clock.h) */
} cf_server_options;

typedef struct cf_server cf_server;

int cf_server_start(cf_store *store, const cf_server_options *opts, cf_server **out, cf_err *err);
/* The port actually bound (useful with port 0). */
uint16_t cf_server_port(const cf_server *srv);
/* Stops accepting, waits for requests in flight, frees. NULL is a no-op. */
void cf_server_stop(cf_server *srv);

#endif
