/*
 * server.h - coffer server: the S3 HTTP front over the object store.
 *
 * cf_server_start binds and serves on background threads (src/http/) until cf_server_stop.
 * The store stays the caller's: open it before start, close it after stop.
 */
#ifndef CF_SERVER_SERVER_H
#define CF_SERVER_SERVER_H

#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"
#include "http/http.h"
#include "store/store.h"

typedef struct cf_credential {
    char access_key[129];
    char secret_key[129];
} cf_credential;

/* Another front end on the same daemon (a console): its path prefix and handlers. */
typedef struct cf_server_mount {
    const char *prefix;
    const cf_http_handlers *handlers;
    void *ctx;
} cf_server_mount;

typedef struct cf_server_options {
    cf_http_options http; /* address, connection limits and deadlines, threads; its log is ignored */
    const char *region;   /* "us-east-1" */
    cf_credential root;
    int64_t multipart_expiry_s;    /* uploads older than this are aborted; 0 = 7 days */
    const char *domain;            /* virtual-host style: BUCKET.domain; NULL = path style only */
    const cf_logger *log;          /* copied; NULL = nothing is logged */
    const cf_server_mount *mounts; /* more front ends beside S3 (the connection limits above are shared) */
    size_t nmounts;
    const cf_clock *clock; /* borrowed until stop; NULL = the system's (core/clock.h) */
} cf_server_options;

typedef struct cf_server cf_server;

int cf_server_start(cf_store *store, const cf_server_options *opts, cf_server **out, cf_err *err);
/* The port actually bound (useful with port 0). */
uint16_t cf_server_port(const cf_server *srv);
/* Stops accepting, waits for requests in flight, frees. NULL is a no-op. */
void cf_server_stop(cf_server *srv);

#endif
