/*
 * console_int.h - what console.c, api.c and download.c share: the console's state, one request's
 * state, the route table the metrics are kept by, and the JSON response helpers.
 *
 * Dependencies run one way: console.c mounts api.c's and download.c's handlers; api.c calls
 * download.c for a download request; neither calls back into console.c but through the helpers
 * declared here, which console.c defines and which call nothing of theirs.
 */
#ifndef CF_CONSOLE_CONSOLE_INT_H
#define CF_CONSOLE_CONSOLE_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "console/catalogue.h"
#include "console/console.h"
#include "console/limiter.h"
#include "console/render.h"
#include "console/session.h"
#include "core/buf.h"
#include "crypto/hash.h"
#include "crypto/sigv4.h"
#include "http/http.h"

/* The routes, by template: the latency histogram's label (never the raw path, whose chain and
 * id would make one series per snapshot). */
#define CF_CONSOLE_ROUTES(XX)                                                                                \
    XX(CHAINS, "/api/v1/chains")                                                                             \
    XX(CHAIN, "/api/v1/chains/{chain}")                                                                      \
    XX(SNAPSHOTS, "/api/v1/chains/{chain}/snapshots")                                                        \
    XX(SNAPSHOT, "/api/v1/chains/{chain}/snapshots/{id}")                                                    \
    XX(LATEST, "/api/v1/chains/{chain}/latest")                                                              \
    XX(DOWNLOAD_URL, "/api/v1/chains/{chain}/snapshots/{id}/download")                                       \
    XX(LOGIN, "/api/v1/login")                                                                               \
    XX(LOGOUT, "/api/v1/logout")                                                                             \
    XX(ME, "/api/v1/me")                                                                                     \
    XX(REFRESH, "/api/v1/refresh")                                                                           \
    XX(API_UNKNOWN, "/api/{unknown}")                                                                        \
    XX(HEALTH, "/health/{check}")                                                                            \
    XX(METRICS, "/metrics")                                                                                  \
    XX(PROXY, "/download/{chain}/{id}")                                                                      \
    XX(ASSET, "/{asset}")

typedef enum cf_console_route {
#define CF_CONSOLE_ROUTE_ENUM_(name, tmpl) CF_ROUTE_##name,
    CF_CONSOLE_ROUTES(CF_CONSOLE_ROUTE_ENUM_)
#undef CF_CONSOLE_ROUTE_ENUM_
        CF_ROUTE_COUNT
} cf_console_route;

#define CF_CONSOLE_LATENCY_BUCKETS 12

/* Login attempts by result (coffer_console_logins_total{result}). */
enum { CF_LOGIN_OK, CF_LOGIN_WRONG, CF_LOGIN_LIMITED, CF_LOGIN_MALFORMED, CF_LOGIN_RESULTS };

typedef struct cf_console_tier_state {
    char name[33];
    uint64_t rate;
    char *access_key, *secret_key; /* NULL when not configured; the secret is wiped on stop */
    char missing[128];
    cf_http_bucket *bucket; /* the proxy's shared budget (NULL without --proxy-downloads) */
    _Atomic uint64_t urls_issued;
    _Atomic uint64_t proxy_bytes;
} cf_console_tier_state;

#define CF_CONSOLE_CLIENT_KEY_LEN 96

typedef struct cf_prefetch cf_prefetch;
typedef struct cf_prefetch_job cf_prefetch_job;

/* A repository as the console names it in URLs it signs: its bucket and key prefix. */
typedef struct cf_console_repo {
    const char *url;
    cf_repo *repo;
    char bucket[64];
    char root[1024]; /* "" or "a/b" */
} cf_console_repo;

struct cf_console {
    cf_http *http;
    cf_catalogue *cat;
    cf_render *render; /* the catalogue's JSON, rendered once per view */
    cf_console_repo *repos;
    size_t nrepos;
    const cf_users *users;
    cf_session_keys *keys;
    unsigned char proxy_key[CF_SHA256_LEN]; /* HKDF of the session secret: download tokens */
    int64_t session_ttl_s;
    cf_console_tier_state tiers[CF_CONSOLE_MAX_TIERS];
    size_t ntiers;
    int proxy_downloads;
    unsigned max_proxy_downloads, max_proxy_per_client;
    pthread_mutex_t proxy_mu;
    char (*proxy_slots)[CF_CONSOLE_CLIENT_KEY_LEN]; /* max_proxy_downloads: a download's client key, or "" */
    char public_url[512];                           /* "" when the request's own origin is used */
    char endpoint[512];                             /* of presigned URLs: "http://host:port" */
    char endpoint_host[512];
    char region[64];
    int64_t url_expiry_s;
    cf_console_secure secure_cookies;
    struct cf_console_cidr {
        int family; /* AF_INET or AF_INET6 */
        unsigned char addr[16];
        unsigned bits;
    } trusted[CF_CONSOLE_MAX_TRUSTED_PROXIES];
    size_t ntrusted;
    cf_limiter *login_ip, *login_user;
    cf_sigv4_key_cache *sign_keys;
    cf_prefetch *prefetch; /* proxy mode: read-ahead of downloads (NULL: every read inline) */
    cf_logger log;
    const cf_clock *clock;

    _Atomic uint64_t latency[CF_ROUTE_COUNT][CF_CONSOLE_LATENCY_BUCKETS + 1];
    _Atomic uint64_t latency_us_sum[CF_ROUTE_COUNT];
    _Atomic uint64_t logins[CF_LOGIN_RESULTS];
    _Atomic unsigned login_checks;   /* password checks queued or running (api.c's bound) */
    _Atomic int64_t next_refresh_ms; /* monotonic ms before which POST /refresh is refused */
};

/* prefetch.c: threads that read a proxied download's next window ahead of need. */
int cf_prefetch_new(unsigned threads, cf_prefetch **out);
/* After every job was waited for or abandoned (abandoned ones still running are finished). */
void cf_prefetch_free(cf_prefetch *p);
/* Bytes [offset, offset+len) of key into buf (len bytes): the count (> 0), or -1 with err set. */
long cf_prefetch_read(cf_repo *repo, const char *key, uint64_t offset, uint64_t len, char *buf, cf_err *err);
/* Queues such a read into a buffer of its own; NULL when out of memory. key is copied. */
cf_prefetch_job *cf_prefetch_submit(cf_prefetch *p, cf_repo *repo, const char *key, uint64_t offset,
                                    uint64_t len);
/* Waits for the job and frees it: the count or -1, *buf (caller frees) holds the bytes. */
long cf_prefetch_wait(cf_prefetch *p, cf_prefetch_job *j, char **buf);
/* The submitter no longer wants it: freed now, or by its thread when the read ends. */
void cf_prefetch_abandon(cf_prefetch *p, cf_prefetch_job *j);

/* What a session cookie turned out to be. */
typedef enum { CF_SESS_NONE, CF_SESS_OK, CF_SESS_EXPIRED, CF_SESS_INVALID } cf_console_session_state;

/* One request's state (hr->front), whichever mount took it. */
typedef struct cf_console_req {
    cf_console *c;
    cf_http_request *hr;
    cf_console_route route;
    char *chain; /* decoded path segments, or NULL */
    char *id;
    cf_buf body;
    size_t body_max;
    int body_too_big;
    cf_console_session_state session_state;
    cf_session session;
    char *set_cookie; /* a Set-Cookie value to send with the response, or NULL */
    int via_tls;      /* the client reached us over https (console.c's trust rule) */
    char client[80];  /* the client's address, for the log */
    char client_key[CF_CONSOLE_CLIENT_KEY_LEN]; /* whom per-client limits count: "ip:ADDR", "ip:V6/64" */
    int (*run)(struct cf_console_req *r);       /* what the blocking pool runs */
    int login_result;                           /* CF_LOGIN_*, or -1 when not a login */
    void *download;                             /* download.c's state of a proxied download, */
    void (*download_free)(void *download);      /* ... freed by this when no response took it */
    uint64_t bytes_out;
    int holds_login_check; /* counted in c->login_checks until the request ends */
    long proxy_slot;       /* 1 + its index in c->proxy_slots while it holds one, else 0 */
} cf_console_req;

/* Counts the login attempt r is with its result (CF_LOGIN_*) when its verdict is known, before
 * the answer goes out, so that a client reading /metrics after the answer sees it counted; the
 * first verdict of a request is the one counted. */
void cf_console_count_login(cf_console_req *r, int result);

/* console.c: a request's state (NULL: out of memory), its session read from the cookie. */
cf_console_req *cf_console_req_new(cf_console *c, cf_http_request *hr, cf_console_route route);
/* A Set-Cookie value for the session cookie (value "" and max_age 0 clear it), Secure by the
 * console's rule; NULL when out of memory. Caller frees. */
char *cf_console_cookie(const cf_console_req *r, const char *value, int64_t max_age);
/* The handlers every mount shares: the body kept up to body_max (beyond it body_too_big), r->run
 * on the blocking pool, and the end of a request (metrics, log line, state freed). */
void cf_console_req_body(cf_http_request *hr, const char *data, size_t n);
int cf_console_req_run(cf_http_request *hr);
void cf_console_req_done(cf_http_request *hr, int completed_ok);
/* Responds with obj (taken) as JSON, adding the request's Set-Cookie. */
int cf_console_json(cf_console_req *r, int status, json_t *obj);
/* The same with JSON text already written into b (taken, left empty). */
int cf_console_json_buf(cf_console_req *r, int status, cf_buf *b);
/* {"error":{"code","message"}}; extra_header/value (e.g. Retry-After, Allow) may be NULL. */
int cf_console_error(cf_console_req *r, int status, const char *code, const char *extra_header,
                     const char *extra_value, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Seconds since the epoch through the console's clock. */
int64_t cf_console_now(const cf_console *c);
/* "2026-12-06T03:00:00Z" into out[21]. */
void cf_console_rfc3339(int64_t t, char out[32]);
/* The request's own origin, "http(s)://Host", or "" when the request has no Host. */
void cf_console_origin(const cf_console_req *r, char *out, size_t n);
/* Takes a proxied download's slot for r's client: 0, or CF_EAGAIN when every slot is taken
 * (--max-proxy-downloads) or the client holds its share (--max-proxy-downloads-per-client), with
 * *all_taken saying which. The slot is given back when the request ends. */
int cf_console_proxy_slot_take(cf_console_req *r, int *all_taken);
/* The tier named name, or NULL. */
cf_console_tier_state *cf_console_find_tier(cf_console *c, const char *name);

/* api.c: the /api mount. */
extern const cf_http_handlers cf_console_api_mount;
/* Parses limit (1..1000) and cursor of a snapshots page: 0 or CF_EINVAL with a message naming
 * the parameter. NULL text = absent. (Exposed for the fuzz target.) */
int cf_console_page_params(const char *limit_text, const char *cursor_text, long *limit, cf_err *err);
/* Parses a login body: 0 and the two strings (caller frees), or CF_EINVAL (malformed JSON: the
 * code is MalformedJSON, *malformed set) / InvalidArgument. */
int cf_console_login_body(const char *body, size_t len, char **user, char **password, int *malformed,
                          cf_err *err);

/* download.c: the /download mount, and the answer to a download request. */
extern const cf_http_handlers cf_console_download_mount;
/* Builds the download answer for snapshot s of chain ch, for the tier: the URL (presigned, or
 * the proxy's), its expiry and the commands. 0 with *out set, or a status (503: no credentials
 * for the tier) with the error's code and message in err (code text in *code). */
int cf_console_download_answer(cf_console_req *r, const cf_cat_snapshot *s, const char *tier, json_t **out,
                               const char **code, cf_err *err);
/* The JSON of a snapshot (SNAP in docs/console.md). */
json_t *cf_console_snapshot_json(const cf_console *c, const cf_cat_snapshot *s);
/* Checks a proxy download token: 0, or CF_EDENIED (bad signature) / CF_EPRECOND (expired) with a
 * message. (Exposed for the fuzz target.) */
int cf_console_token_check(const unsigned char key[CF_SHA256_LEN], const char *chain, const char *id,
                           const char *tier, const char *expires, const char *sig, int64_t now, cf_err *err);
/* 1 when archive key k lies in chain's namespace ("CHAIN/..." with no empty, "." or ".."
 * segment and no control character or backslash), else 0. (Exposed for the fuzz target.) */
int cf_console_archive_key_ok(const char *chain, const char *k);
/* Parses a single "bytes=a-b" range against size: 0 (start, len), CF_ERANGE (unsatisfiable),
 * CF_EINVAL (not a single byte range: serve the whole object). */
int cf_console_range(const char *h, uint64_t size, uint64_t *start, uint64_t *len);

#endif
