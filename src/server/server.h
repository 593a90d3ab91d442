/*
 * server.h - coffer server: the S3 HTTP front over the object store.
 *
 * cf_server_start binds and serves on background threads until cf_server_stop. The store
 * stays the caller's: open it before start, close it after stop.
 */
#ifndef CF_SERVER_SERVER_H
#define CF_SERVER_SERVER_H

#include <stdint.h>

#include "core/err.h"
#include "store/store.h"

typedef struct cf_credential {
    char access_key[129];
    char secret_key[129];
} cf_credential;

typedef struct cf_server_options {
    const char *address;        /* "127.0.0.1:9000", "[::1]:9000" or ":9000" (all addresses) */
    const char *region;         /* "us-east-1" */
    cf_credential root;
    unsigned connection_timeout_s;  /* idle connections are closed after this; 0 = default */
    size_t max_connections;     /* 0 = default */
    int64_t multipart_expiry_s; /* uploads older than this are aborted; 0 = 7 days */
    const char *domain;         /* virtual-host style: BUCKET.domain; NULL = path style only */
} cf_server_options;

typedef struct cf_server cf_server;

int cf_server_start(cf_store *store, const cf_server_options *opts, cf_server **out, cf_err *err);
/* The port actually bound (useful with port 0). */
uint16_t cf_server_port(const cf_server *srv);
/* Stops accepting, waits for requests in flight, frees. NULL is a no-op. */
void cf_server_stop(cf_server *srv);

#endif
