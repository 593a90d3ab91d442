/*
 * console.h - the snapshot download site (`coffer console`): one process on the HTTP layer that
 * serves the JSON API (/api/v1/...), /health, /metrics, proxied downloads (/download/...) and
 * the web page (/), reading snapshot repositories through the catalogue (console/catalogue.h).
 *
 * Stateless: a replica keeps nothing a second replica would need. Sessions live in sealed
 * cookies and proxy download tokens are HMACs, both under keys derived from the one session
 * secret, so replicas behind an ingress share that secret and nothing else. docs/console.md has
 * the API, the command line and the trust rules.
 *
 * Use: cf_console_new, cf_console_start, ..., cf_console_stop. Everything the options point to is
 * borrowed and must outlive the console, but the secrets, which are copied (and wiped on stop).
 */
#ifndef CF_CONSOLE_CONSOLE_H
#define CF_CONSOLE_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "console/catalogue.h"
#include "console/users.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "http/http.h"

#define CF_CONSOLE_DEFAULT_URL_EXPIRY_S 3600
#define CF_CONSOLE_MAX_URL_EXPIRY_S 604800 /* seven days: what SigV4 allows */
#define CF_CONSOLE_DEFAULT_SESSION_TTL_S (12 * 3600)
#define CF_CONSOLE_MAX_TIERS 16
#define CF_CONSOLE_DEFAULT_MAX_PROXY 128
#define CF_CONSOLE_DEFAULT_MAX_PROXY_PER_CLIENT 8
#define CF_CONSOLE_MAX_TRUSTED_PROXIES 16

/* A bandwidth tier: whom the console signs download URLs as, and the proxy's shared budget. */
typedef struct cf_console_tier {
    const char *name;       /* [a-z0-9-]{1,32}: "free", "premium" */
    uint64_t rate;          /* bytes/s the tier shares (the proxy's budget; shown to clients) */
    const char *access_key; /* the key of the tier's server rate group; NULL: not configured */
    const char *secret_key; /* copied */
    const char *missing;    /* the environment variable to name when access_key is NULL */
} cf_console_tier;

/* When the session cookie carries Secure. */
typedef enum cf_console_secure {
    CF_CONSOLE_SECURE_AUTO,   /* when the request came through TLS (see console.c: trusted ingress) */
    CF_CONSOLE_SECURE_ALWAYS, /* the site is only ever reached over https */
    CF_CONSOLE_SECURE_NEVER,  /* plain http, e.g. a laptop */
} cf_console_secure;

typedef struct cf_console_options {
    cf_http_options http; /* address and connection limits; log is set by the console */
    const cf_cat_repo *repos;
    size_t nrepos;
    const cf_users *users; /* NULL or empty: nobody can log in */
    /* The session secret (>= 32 bytes; copied). NULL: a random one for this process only,
     * refused when users exist (a restart or a second replica would drop every session). */
    const void *session_secret;
    size_t session_secret_len;
    int64_t session_ttl_s; /* 0 = default (12 h) */
    const cf_console_tier *tiers;
    size_t ntiers;
    int proxy_downloads;           /* stream archives through /download instead of presigning */
    unsigned max_proxy_downloads;  /* proxied downloads at once (each holds up to 2 MiB); 0 = 128 */
    unsigned max_proxy_per_client; /* ... of them for one client address (an IPv6 /64); 0 = 8 */
    const char *public_url;        /* "https://snapshots.example.com": proxy URLs; NULL = request's */
    const char *download_endpoint; /* "http(s)://host[:port]" the presigned URLs name */
    const char *region;            /* of the presigned URLs; NULL = us-east-1 */
    int64_t url_expiry_s;          /* 0 = default (1 h); at most 7 days */
    double refresh_interval_s;     /* 0 = the catalogue's default */
    cf_console_secure secure_cookies;
    /* Peers whose X-Forwarded-For/-Proto are believed: "ADDR/BITS" (or an address), or the one
     * word "none". None given: loopback and private addresses (where an ingress sits). */
    const char *const *trusted_proxies;
    size_t ntrusted_proxies;
    const cf_logger *log; /* copied; NULL = nothing logged */
    const cf_clock *clock;
} cf_console_options;

typedef struct cf_console cf_console;

/* Checks the options, builds the catalogue (no I/O yet). *out: cf_console_stop frees it. */
int cf_console_new(const cf_console_options *o, cf_console **out, cf_err *err);
/* Binds the address, starts the catalogue's refresh thread (first refresh right away). */
int cf_console_start(cf_console *c, cf_err *err);
/* The port bound (useful with port 0). */
uint16_t cf_console_port(const cf_console *c);
/* Asks for a catalogue refresh now (SIGHUP); coalesced. Thread-safe. */
void cf_console_request_refresh(cf_console *c);
/* Stops serving, waits for requests in flight, stops the catalogue, frees c. NULL: no-op. */
void cf_console_stop(cf_console *c);

#endif
