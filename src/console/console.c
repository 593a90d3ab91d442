/*
 * console.c - the console process: its options, its mounts on one cf_http (/api from api.c,
 * /download from download.c, /health, /metrics and the web page here), the request state every
 * mount shares (session from the cookie, client address, JSON answers) and the metrics.
 *
 * Trust rule for headers an ingress sets (docs/console.md, "Cookies and CSRF"): X-Forwarded-Proto
 * and X-Forwarded-For are believed only from a peer in --trusted-proxy, by default a loopback or
 * private address (127/8, 10/8, 172.16/12, 192.168/16, ::1, fc00::/7), which is where an ingress
 * or a sidecar sits; a
 * client that reaches the console directly from a public address cannot claim https or another
 * address. From a trusted peer the client address is the last X-Forwarded-For entry (the one the
 * ingress appended: entries before it are the client's own claims).
 */
#include "console/console.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "console/console_int.h"
#include "console/static.h"
#include "core/clock.h"

#define SESSION_COOKIE "coffer_session"
#define PROXY_KEY_INFO "coffer console download v1"
/* Proxy read-ahead: each thread has one ranged GET in flight; 4 keep dozens of paced downloads
 * ahead at tier rates (a window lasts 1 MiB / rate: 20 ms at 50MB/s). */
#define PREFETCH_THREADS 4

static const char *const route_templates[] = {
#define CF_CONSOLE_ROUTE_TMPL_(name, tmpl) tmpl,
    CF_CONSOLE_ROUTES(CF_CONSOLE_ROUTE_TMPL_)
#undef CF_CONSOLE_ROUTE_TMPL_
};

static const double latency_bounds[CF_CONSOLE_LATENCY_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                  0.05,   0.1,   0.25,   0.5,   1,    2.5};

static const char *const login_results[CF_LOGIN_RESULTS] = {"ok", "wrong", "limited", "malformed"};

void cf_console_count_login(cf_console_req *r, int result)
{
    if (r->login_result >= 0 || result < 0 || result >= CF_LOGIN_RESULTS)
        return;
    r->login_result = result;
    atomic_fetch_add(&r->c->logins[result], 1);
}

int64_t cf_console_now(const cf_console *c)
{
    return (int64_t)cf_clock_time(c->clock);
}

void cf_console_rfc3339(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, 32, "1970-01-01T00:00:00Z");
}

cf_console_tier_state *cf_console_find_tier(cf_console *c, const char *name)
{
    for (size_t i = 0; i < c->ntiers; i++)
        if (strcmp(c->tiers[i].name, name) == 0)
            return &c->tiers[i];
    return NULL;
}

static const char *const default_trusted[] = {"127.0.0.0/8",    "10.0.0.0/8", "172.16.0.0/12",
                                              "192.168.0.0/16", "::1/128",    "fc00::/7"};

/* "ADDR[/BITS]" into out; CF_EINVAL when it is not one. */
static int parse_cidr(const char *text, struct cf_console_cidr *out)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n == 0 || n >= sizeof addr)
        return CF_EINVAL;
    memcpy(addr, text, n);
    addr[n] = '\0';
    memset(out, 0, sizeof *out);
    out->family = strchr(addr, ':') ? AF_INET6 : AF_INET;
    unsigned max = out->family == AF_INET ? 32 : 128;
    if (inet_pton(out->family, addr, out->addr) != 1)
        return CF_EINVAL;
    out->bits = max;
    if (slash) {
        char *end;
        unsigned long b = strtoul(slash + 1, &end, 10);
        if (!slash[1] || *end || slash[1] == '-' || slash[1] == '+' || b > max)
            return CF_EINVAL;
        out->bits = (unsigned)b;
    }
    return 0;
}

static int cidr_has(const struct cf_console_cidr *n, const unsigned char *a)
{
    unsigned whole = n->bits / 8, rest = n->bits % 8;
    if (memcmp(n->addr, a, whole) != 0)
        return 0;
    return rest == 0 || ((n->addr[whole] ^ a[whole]) & (0xFF << (8 - rest))) == 0;
}

/* 1 for a peer in --trusted-proxy (default: loopback and private): an ingress's headers are
 * believed from it. An IPv4-mapped IPv6 peer is its IPv4 address. */
static int trusted_peer(const cf_console *c, const struct sockaddr *sa)
{
    const unsigned char *a;
    int family;
    static const unsigned char v4mapped[12] = {[10] = 0xFF, [11] = 0xFF};
    if (sa && sa->sa_family == AF_INET) {
        family = AF_INET;
        a = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa && sa->sa_family == AF_INET6) {
        a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        family = memcmp(a, v4mapped, sizeof v4mapped) == 0 ? AF_INET : AF_INET6;
        if (family == AF_INET)
            a += sizeof v4mapped;
    } else {
        return 0;
    }
    for (size_t i = 0; i < c->ntrusted; i++)
        if (c->trusted[i].family == family && cidr_has(&c->trusted[i], a))
            return 1;
    return 0;
}

static int set_trusted(cf_console *c, const cf_console_options *o, cf_err *err)
{
    const char *const *list = o->ntrusted_proxies ? o->trusted_proxies : default_trusted;
    size_t n = o->ntrusted_proxies ? o->ntrusted_proxies : sizeof default_trusted / sizeof *default_trusted;
    if (n == 1 && strcmp(list[0], "none") == 0)
        return 0;
    if (n > CF_CONSOLE_MAX_TRUSTED_PROXIES)
        return cf_err_set(err, CF_EINVAL, "at most %d trusted proxies", CF_CONSOLE_MAX_TRUSTED_PROXIES);
    for (size_t i = 0; i < n; i++) {
        if (parse_cidr(list[i], &c->trusted[i]) != 0)
            return cf_err_set(err, CF_EINVAL,
                              "trusted proxy '%s' is not an address or ADDRESS/BITS (or the one word 'none')",
                              list[i]);
        c->ntrusted = i + 1;
    }
    return 0;
}

static void peer_text(const struct sockaddr *sa, char *out, size_t n)
{
    snprintf(out, n, "unknown");
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

/* The last entry of X-Forwarded-For, trimmed, if it is a plausible address. */
static int forwarded_for(const char *h, char *out, size_t n)
{
    const char *last = strrchr(h, ',');
    last = last ? last + 1 : h;
    while (*last == ' ' || *last == '\t')
        last++;
    size_t len = strcspn(last, " \t");
    if (len == 0 || len >= n || len > 45 || strspn(last, "0123456789abcdefABCDEF.:") < len)
        return 0;
    memcpy(out, last, len);
    out[len] = '\0';
    return 1;
}

/* The key per-client limits count a client by: an IPv6 client by its /64, which one subscriber
 * holds whole (2^64 addresses would each get their own share); an IPv4-mapped address by its
 * IPv4 address. */
static void client_key(const char *client, char *out, size_t n)
{
    unsigned char a[16];
    char text[INET6_ADDRSTRLEN];
    static const unsigned char v4mapped[12] = {[10] = 0xFF, [11] = 0xFF};
    if (!strchr(client, ':') || inet_pton(AF_INET6, client, a) != 1) {
        snprintf(out, n, "ip:%s", client);
        return;
    }
    if (memcmp(a, v4mapped, sizeof v4mapped) == 0 && inet_ntop(AF_INET, a + 12, text, sizeof text)) {
        snprintf(out, n, "ip:%s", text);
        return;
    }
    memset(a + 8, 0, 8);
    snprintf(out, n, "ip:%s/64", inet_ntop(AF_INET6, a, text, sizeof text) ? text : client);
}

int cf_console_proxy_slot_take(cf_console_req *r, int *all_taken)
{
    cf_console *c = r->c;
    long free_slot = -1;
    unsigned mine = 0;
    pthread_mutex_lock(&c->proxy_mu);
    for (unsigned i = 0; i < c->max_proxy_downloads; i++) {
        if (!c->proxy_slots[i][0])
            free_slot = free_slot < 0 ? (long)i : free_slot;
        else
            mine += strcmp(c->proxy_slots[i], r->client_key) == 0;
    }
    *all_taken = free_slot < 0;
    if (free_slot >= 0 && mine < c->max_proxy_per_client) {
        snprintf(c->proxy_slots[free_slot], CF_CONSOLE_CLIENT_KEY_LEN, "%s", r->client_key);
        r->proxy_slot = free_slot + 1;
    }
    pthread_mutex_unlock(&c->proxy_mu);
    return r->proxy_slot ? 0 : CF_EAGAIN;
}

/* The session from the Cookie header: anything wrong with it makes the request anonymous and
 * the response clear the cookie (never a 500). Two coffer_session cookies are wrong too: a
 * sibling domain or a path can plant a second one (cookie tossing), and whichever came first
 * would log the visitor in as the planter. */
static void read_session(cf_console_req *r)
{
    const char *h = cf_http_header(r->hr, "Cookie");
    if (!h)
        return;
    const char *p = h, *value = NULL;
    size_t vlen = 0, namelen = strlen(SESSION_COOKIE), found = 0;
    while (*p) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = p + strcspn(p, ";");
        if ((size_t)(end - p) > namelen && strncmp(p, SESSION_COOKIE, namelen) == 0 && p[namelen] == '=' &&
            found++ == 0) {
            value = p + namelen + 1;
            vlen = (size_t)(end - value);
            while (vlen && value[vlen - 1] == ' ')
                vlen--;
        }
        p = end;
    }
    if (!value)
        return;
    r->set_cookie = cf_console_cookie(r, "", 0);
    if (!r->c->keys || vlen == 0 || vlen > CF_SESSION_COOKIE_MAX || found > 1) {
        r->session_state = CF_SESS_INVALID;
        return;
    }
    char *v = strndup(value, vlen);
    cf_err err = {0};
    cf_session s;
    int rc = v ? cf_session_open(r->c->keys, v, cf_console_now(r->c), &s, &err) : CF_ENOMEM;
    free(v);
    /* The account as this console knows it now: a session of an account removed from the users
     * file ends, and a changed tier applies, once the console runs with the new file (every
     * replica reads the same one, so this needs no shared state). */
    long account = rc == 0 && r->c->users ? cf_users_find(r->c->users, s.user) : -1;
    if (rc == 0 && account < 0) {
        memset(&s, 0, sizeof s);
        r->session_state = CF_SESS_INVALID;
        return;
    }
    if (rc == 0) {
        snprintf(s.tier, sizeof s.tier, "%s", cf_users_tier(r->c->users, (size_t)account));
        r->session = s;
        r->session_state = CF_SESS_OK;
        free(r->set_cookie);
        r->set_cookie = NULL;
        return;
    }
    r->session_state =
        err.detail == CF_SESSION_EXPIRED || strstr(err.msg, "expired") ? CF_SESS_EXPIRED : CF_SESS_INVALID;
}

char *cf_console_cookie(const cf_console_req *r, const char *value, int64_t max_age)
{
    int secure = r->c->secure_cookies == CF_CONSOLE_SECURE_ALWAYS ||
                 (r->c->secure_cookies == CF_CONSOLE_SECURE_AUTO && r->via_tls);
    size_t n = strlen(value) + 128;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, SESSION_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%lld%s", value,
                 (long long)max_age, secure ? "; Secure" : "");
    return out;
}

cf_console_req *cf_console_req_new(cf_console *c, cf_http_request *hr, cf_console_route route)
{
    cf_console_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    hr->front = r;
    r->c = c;
    r->hr = hr;
    r->route = route;
    r->login_result = -1;
    cf_buf_init(&r->body, 0);
    const struct sockaddr *peer = cf_http_client_address(hr);
    int trusted = trusted_peer(c, peer);
    const char *xff = trusted ? cf_http_header(hr, "X-Forwarded-For") : NULL;
    if (!xff || !forwarded_for(xff, r->client, sizeof r->client))
        peer_text(peer, r->client, sizeof r->client);
    client_key(r->client, r->client_key, sizeof r->client_key);
    const char *proto = trusted ? cf_http_header(hr, "X-Forwarded-Proto") : NULL;
    r->via_tls = proto && strcasecmp(proto, "https") == 0;
    read_session(r);
    return r;
}

void cf_console_origin(const cf_console_req *r, char *out, size_t n)
{
    const char *host = cf_http_header(r->hr, "Host");
    if (!host || !*host) {
        out[0] = '\0';
        return;
    }
    snprintf(out, n, "%s://%s", r->via_tls ? "https" : "http", host);
}

static int respond(cf_console_req *r, int status, char *data, size_t len, const char *content_type,
                   const char *extra_header, const char *extra_value)
{
    cf_http_response *resp = cf_http_body_buffer(data, len, 0);
    if (!resp) {
        free(data);
        return 0;
    }
    cf_http_add_header(resp, "Content-Type", content_type);
    cf_http_add_header(resp, "Cache-Control", "no-store");
    cf_console_security_headers(resp);
    if (r->set_cookie)
        cf_http_add_header(resp, "Set-Cookie", r->set_cookie);
    if (extra_header)
        cf_http_add_header(resp, extra_header, extra_value);
    r->bytes_out = len;
    return cf_http_respond(r->hr, status, resp);
}

static int respond_json_extra(cf_console_req *r, int status, json_t *obj, const char *extra_header,
                              const char *extra_value)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(obj);
    if (!text)
        return 0;
    size_t len = strlen(text);
    /* json_dumps's buffer is malloc'd: the response frees it with free(). */
    return respond(r, status, text, len, "application/json", extra_header, extra_value);
}

int cf_console_json(cf_console_req *r, int status, json_t *obj)
{
    return respond_json_extra(r, status, obj, NULL, NULL);
}

int cf_console_json_buf(cf_console_req *r, int status, cf_buf *b)
{
    size_t len;
    char *text = cf_buf_error(b) ? NULL : cf_buf_steal(b, &len);
    cf_buf_cleanup(b);
    if (!text)
        return 0;
    return respond(r, status, text, len, "application/json", NULL, NULL);
}

/* Replaces every byte that is not part of valid UTF-8 (or is a control character) with '?': a
 * message quotes paths and names from the request, and JSON strings must be UTF-8. */
static void utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80             ? 1
                   : (*p & 0xE0) == 0xC0 ? 2
                   : (*p & 0xF0) == 0xE0 ? 3
                   : (*p & 0xF8) == 0xF0 ? 4
                                         : 0;
        size_t ok = n;
        for (size_t i = 1; i < n && ok; i++)
            if ((p[i] & 0xC0) != 0x80)
                ok = 0;
        if (n == 2 && *p < 0xC2)
            ok = 0; /* overlong */
        if (!ok || (n == 1 && *p < 0x20)) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

int cf_console_error(cf_console_req *r, int status, const char *code, const char *extra_header,
                     const char *extra_value, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    utf8_scrub(msg);
    json_t *obj = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    return respond_json_extra(r, status, obj, extra_header, extra_value);
}

json_t *cf_console_snapshot_json(const cf_console *c, const cf_cat_snapshot *s)
{
    char created[32];
    cf_console_rfc3339(s->created, created);
    json_t *labels = json_object();
    for (size_t i = 0; labels && i < s->nlabels; i++)
        json_object_set_new(labels, s->labels[i].key, json_string(s->labels[i].value));
    int64_t age = cf_console_now(c) - s->created;
    return json_pack(
        "{s:s,s:s,s:s,s:I,s:I,s:o,s:o,s:I,s:I,s:I,s:s,s:i,s:b,s:s,s:s}", "chain", s->chain, "id", s->id,
        "created", created, "created_ns", (json_int_t)s->created_ns, "age_seconds",
        (json_int_t)(age > 0 ? age : 0), "height", s->height ? json_string(s->height) : json_null(), "labels",
        labels ? labels : json_object(), "size", (json_int_t)s->size, "raw_size", (json_int_t)s->raw_size,
        "files", (json_int_t)s->files, "compression", s->compression, "level", s->level, "encrypted",
        s->encrypted, "sha256", s->sha256, "archive_key", s->archive_key ? s->archive_key : "");
}

/* Every mount's request ends here: the latency histogram, the log line, the state freed. */
void cf_console_req_done(cf_http_request *hr, int completed_ok)
{
    cf_console_req *r = hr->front;
    if (!r)
        return;
    cf_console *c = r->c;
    double s = cf_clock_mono() - hr->started;
    size_t b = 0;
    while (b < CF_CONSOLE_LATENCY_BUCKETS && s > latency_bounds[b])
        b++;
    atomic_fetch_add(&c->latency[r->route][b], 1);
    atomic_fetch_add(&c->latency_us_sum[r->route], (uint64_t)(s * 1e6));
    if (r->holds_login_check)
        atomic_fetch_sub(&c->login_checks, 1);
    if (r->proxy_slot) {
        pthread_mutex_lock(&c->proxy_mu);
        c->proxy_slots[r->proxy_slot - 1][0] = '\0';
        pthread_mutex_unlock(&c->proxy_mu);
    }
    cf_log_level level = completed_ok ? CF_LOG_INFO : CF_LOG_WARN;
    if (c->log.sink && level >= c->log.min) { /* three printfs a request otherwise thrown away */
        char status[16], ms[32], bytes[24];
        snprintf(status, sizeof status, "%d", hr->responded ? hr->status : 0);
        snprintf(ms, sizeof ms, "%.3f", s * 1e3);
        snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)r->bytes_out);
        /* The route template and the user name, never the cookie, a token or a password. */
        cf_log(&c->log, level, "request", "method", hr->method, "route", route_templates[r->route], "status",
               status, "bytes_out", bytes, "ms", ms, "client", r->client, "user",
               r->session_state == CF_SESS_OK ? r->session.user : "-", "result",
               completed_ok ? "ok" : "aborted", NULL);
    }
    cf_buf_cleanup(&r->body);
    free(r->chain);
    free(r->id);
    free(r->set_cookie);
    if (r->download)
        r->download_free(r->download);
    memset(&r->session, 0, sizeof r->session);
    free(r);
    hr->front = NULL;
}

void cf_console_req_body(cf_http_request *hr, const char *data, size_t n)
{
    cf_console_req *r = hr->front;
    if (r->body_too_big || r->body.len + n > r->body_max) {
        r->body_too_big = 1;
        return;
    }
    if (cf_buf_append(&r->body, data, n) != 0)
        r->body_too_big = 1;
}

int cf_console_req_run(cf_http_request *hr)
{
    cf_console_req *r = hr->front;
    return r->run(r);
}

/* /health/live and /health/ready (once the first catalogue refresh succeeded). */
static int health_begin(void *ctx, cf_http_request *hr)
{
    return cf_console_req_new(ctx, hr, CF_ROUTE_HEALTH) != NULL;
}

static int health_complete(cf_http_request *hr)
{
    cf_console_req *r = hr->front;
    cf_console *c = r->c;
    int live = strcmp(hr->url, "/health/live") == 0, ready = strcmp(hr->url, "/health/ready") == 0;
    if (!live && !ready)
        return cf_console_error(r, 404, "NotFound", NULL, NULL,
                                "no such health check '%s': try /health/live or "
                                "/health/ready",
                                hr->url);
    if (strcmp(hr->method, "GET") != 0 && strcmp(hr->method, "HEAD") != 0)
        return cf_console_error(r, 405, "MethodNotAllowed", "Allow", "GET, HEAD",
                                "%s is not allowed on %s: use GET", hr->method, hr->url);
    int ok = 1;
    if (ready) {
        const cf_cat_view *v = cf_catalogue_acquire(c->cat);
        ok = v->ready;
        cf_catalogue_release(c->cat, v);
    }
    const char *text = !ready ? "ok\n" : ok ? "ready\n" : "not ready: the catalogue has not loaded yet\n";
    char *copy = strdup(text);
    if (!copy)
        return 0;
    return respond(r, ok ? 200 : 503, copy, strlen(copy), "text/plain; charset=utf-8", NULL, NULL);
}

static int render_metrics(cf_console *c, cf_buf *b)
{
    cf_buf_puts(b, "# HELP coffer_console_request_duration_seconds Console request latency by route.\n"
                   "# TYPE coffer_console_request_duration_seconds histogram\n");
    for (int i = 0; i < CF_ROUTE_COUNT; i++) {
        uint64_t cum = 0;
        for (int k = 0; k <= CF_CONSOLE_LATENCY_BUCKETS; k++) {
            cum += atomic_load(&c->latency[i][k]);
            if (k < CF_CONSOLE_LATENCY_BUCKETS)
                cf_buf_printf(b,
                              "coffer_console_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                              route_templates[i], latency_bounds[k], (unsigned long long)cum);
            else
                cf_buf_printf(
                    b, "coffer_console_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                    route_templates[i], (unsigned long long)cum);
        }
        cf_buf_printf(b, "coffer_console_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
                      route_templates[i], (double)atomic_load(&c->latency_us_sum[i]) / 1e6);
        cf_buf_printf(b, "coffer_console_request_duration_seconds_count{route=\"%s\"} %llu\n",
                      route_templates[i], (unsigned long long)cum);
    }
    cf_buf_puts(b, "# HELP coffer_console_logins_total Login attempts by result.\n"
                   "# TYPE coffer_console_logins_total counter\n");
    for (int i = 0; i < CF_LOGIN_RESULTS; i++)
        cf_buf_printf(b, "coffer_console_logins_total{result=\"%s\"} %llu\n", login_results[i],
                      (unsigned long long)atomic_load(&c->logins[i]));
    cf_buf_puts(b, "# HELP coffer_console_download_urls_total Download URLs issued by tier.\n"
                   "# TYPE coffer_console_download_urls_total counter\n");
    for (size_t i = 0; i < c->ntiers; i++)
        cf_buf_printf(b, "coffer_console_download_urls_total{tier=\"%s\"} %llu\n", c->tiers[i].name,
                      (unsigned long long)atomic_load(&c->tiers[i].urls_issued));
    cf_buf_puts(b, "# HELP coffer_console_proxy_bytes_total Archive bytes the console streamed by tier "
                   "(--proxy-downloads).\n"
                   "# TYPE coffer_console_proxy_bytes_total counter\n");
    for (size_t i = 0; i < c->ntiers; i++)
        cf_buf_printf(b, "coffer_console_proxy_bytes_total{tier=\"%s\"} %llu\n", c->tiers[i].name,
                      (unsigned long long)atomic_load(&c->tiers[i].proxy_bytes));
    cf_buf_puts(b, "# HELP coffer_console_tier_rate_bytes The rate each tier shares, bytes/s.\n"
                   "# TYPE coffer_console_tier_rate_bytes gauge\n");
    for (size_t i = 0; i < c->ntiers; i++)
        cf_buf_printf(b, "coffer_console_tier_rate_bytes{tier=\"%s\"} %llu\n", c->tiers[i].name,
                      (unsigned long long)c->tiers[i].rate);
    int rc = cf_catalogue_render_metrics(c->cat, b);
    if (!rc)
        rc = cf_http_render_metrics(c->http, b);
    return rc ? rc : cf_buf_error(b);
}

static int metrics_begin(void *ctx, cf_http_request *hr)
{
    return cf_console_req_new(ctx, hr, CF_ROUTE_METRICS) != NULL;
}

static int metrics_complete(cf_http_request *hr)
{
    cf_console_req *r = hr->front;
    cf_console *c = r->c;
    if (strcmp(hr->url, "/metrics") != 0)
        return cf_console_error(r, 404, "NotFound", NULL, NULL, "no such page '%s'", hr->url);
    if (strcmp(hr->method, "GET") != 0 && strcmp(hr->method, "HEAD") != 0)
        return cf_console_error(r, 405, "MethodNotAllowed", "Allow", "GET, HEAD",
                                "%s is not allowed on /metrics: use GET", hr->method);
    cf_buf b;
    cf_buf_init(&b, (size_t)16 << 20);
    if (render_metrics(c, &b) != 0) {
        cf_buf_cleanup(&b);
        return cf_console_error(r, 500, "InternalError", NULL, NULL, "the metrics could not be rendered");
    }
    size_t len;
    char *data = cf_buf_steal(&b, &len);
    if (!data)
        return 0;
    return respond(r, 200, data, len, "text/plain; version=0.0.4", NULL, NULL);
}

/* The web page (static.c); anything else under / is its 404. */
static int asset_begin(void *ctx, cf_http_request *hr)
{
    return cf_console_req_new(ctx, hr, CF_ROUTE_ASSET) != NULL;
}

static int asset_complete(cf_http_request *hr)
{
    cf_console_req *r = hr->front;
    int status;
    cf_http_response *resp = cf_console_static_response(hr, &status, &r->bytes_out);
    if (!resp)
        return 0;
    if (r->set_cookie) /* a bad session cookie is cleared whatever page it came with */
        cf_http_add_header(resp, "Set-Cookie", r->set_cookie);
    return cf_http_respond(hr, status, resp);
}

/* These answer once the request is complete, not from begin: libmicrohttpd (0.9.75) closes the
 * connection after a response queued before then, and a browser loading the page, or a probe
 * polling /health, would open a TCP connection per request. A body sent with them is ignored. */
#define CONSOLE_MOUNT(begin, complete)                                                                       \
    {                                                                                                        \
        begin, NULL, cf_console_req_body, complete, cf_console_req_run, cf_console_req_done                  \
    }
static const cf_http_handlers health_mount = CONSOLE_MOUNT(health_begin, health_complete);
static const cf_http_handlers metrics_mount = CONSOLE_MOUNT(metrics_begin, metrics_complete);
static const cf_http_handlers asset_mount = CONSOLE_MOUNT(asset_begin, asset_complete);

/* HKDF-SHA256 (RFC 5869) for one 32-byte output block, salt all zeros. */
static int hkdf_sha256(const void *ikm, size_t len, const char *info, unsigned char out[CF_SHA256_LEN])
{
    unsigned char zeros[CF_SHA256_LEN] = {0}, prk[CF_SHA256_LEN], msg[128];
    size_t n = strlen(info);
    if (n + 1 > sizeof msg)
        return CF_EINVAL;
    memcpy(msg, info, n);
    msg[n] = 1;
    int rc = cf_hmac_sha256(zeros, sizeof zeros, ikm, len, prk);
    if (!rc)
        rc = cf_hmac_sha256(prk, sizeof prk, msg, n + 1, out);
    memset(prk, 0, sizeof prk);
    return rc;
}

/* "s3://bucket/prefix" into bucket and root. */
static int split_repo_url(const char *url, cf_console_repo *out, cf_err *err)
{
    if (strncmp(url, "s3://", 5) != 0)
        return cf_err_set(err, CF_EINVAL, "repository '%s' is not s3://BUCKET[/PREFIX]", url);
    const char *b = url + 5, *slash = strchr(b, '/');
    size_t blen = slash ? (size_t)(slash - b) : strlen(b);
    if (blen == 0 || blen >= sizeof out->bucket)
        return cf_err_set(err, CF_EINVAL, "repository '%s' names no valid bucket", url);
    memcpy(out->bucket, b, blen);
    out->bucket[blen] = '\0';
    const char *root = slash ? slash + 1 : "";
    size_t rlen = strlen(root);
    while (rlen && root[rlen - 1] == '/')
        rlen--;
    if (rlen >= sizeof out->root)
        return cf_err_set(err, CF_EINVAL, "repository '%s': prefix too long", url);
    memcpy(out->root, root, rlen);
    out->root[rlen] = '\0';
    return 0;
}

/* "http(s)://host[:port]" into its host (as the Host header: default ports left out). */
static int endpoint_host(const char *endpoint, char *host, size_t n)
{
    const char *p = strstr(endpoint, "://");
    if (!p || (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0))
        return CF_EINVAL;
    p += 3;
    if (!*p || strchr(p, '/') || strlen(p) >= n)
        return CF_EINVAL;
    snprintf(host, n, "%s", p);
    size_t len = strlen(host);
    int https = endpoint[4] == 's';
    if (!https && len > 3 && strcmp(host + len - 3, ":80") == 0)
        host[len - 3] = '\0';
    if (https && len > 4 && strcmp(host + len - 4, ":443") == 0)
        host[len - 4] = '\0';
    return 0;
}

static void free_console(cf_console *c)
{
    cf_render_free(c->render); /* it holds a view of the catalogue */
    cf_catalogue_free(c->cat);
    cf_session_keys_free(c->keys);
    cf_limiter_free(c->login_ip);
    cf_limiter_free(c->login_user);
    cf_sigv4_key_cache_free(c->sign_keys);
    cf_prefetch_free(c->prefetch);
    for (size_t i = 0; i < c->ntiers; i++) {
        free(c->tiers[i].access_key);
        if (c->tiers[i].secret_key) {
            memset(c->tiers[i].secret_key, 0, strlen(c->tiers[i].secret_key));
            free(c->tiers[i].secret_key);
        }
        cf_http_bucket_free(c->tiers[i].bucket);
    }
    free(c->repos);
    free(c->proxy_slots);
    pthread_mutex_destroy(&c->proxy_mu);
    memset(c->proxy_key, 0, sizeof c->proxy_key);
    free(c);
}

static int new_render(cf_console *c, cf_err *err)
{
    const char **urls = calloc(c->nrepos ? c->nrepos : 1, sizeof *urls);
    if (!urls)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->nrepos; i++)
        urls[i] = c->repos[i].url;
    int rc = cf_render_new(c->cat, urls, c->nrepos, &c->render, err);
    free(urls);
    return rc;
}

static int set_tiers(cf_console *c, const cf_console_options *o, cf_err *err)
{
    if (o->ntiers > CF_CONSOLE_MAX_TIERS)
        return cf_err_set(err, CF_EINVAL, "at most %d tiers", CF_CONSOLE_MAX_TIERS);
    for (size_t i = 0; i < o->ntiers; i++) {
        const cf_console_tier *t = &o->tiers[i];
        cf_console_tier_state *s = &c->tiers[i];
        if (!t->name || !cf_users_valid_tier(t->name))
            return cf_err_set(err, CF_EINVAL, "tier name '%s' must be 1 to 32 of a-z, 0-9 and '-'",
                              t->name ? t->name : "");
        for (size_t k = 0; k < i; k++)
            if (strcmp(o->tiers[k].name, t->name) == 0)
                return cf_err_set(err, CF_EINVAL, "tier '%s' is given twice", t->name);
        snprintf(s->name, sizeof s->name, "%s", t->name);
        snprintf(s->missing, sizeof s->missing, "%s", t->missing ? t->missing : "");
        s->rate = t->rate;
        c->ntiers = i + 1;
        if (t->access_key && t->secret_key &&
            (!(s->access_key = strdup(t->access_key)) || !(s->secret_key = strdup(t->secret_key))))
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        if (o->proxy_downloads && t->rate) {
            uint64_t burst = t->rate / 10 > (64u << 10) ? t->rate / 10 : (64u << 10);
            if (cf_http_bucket_new(t->rate, burst, &s->bucket) != 0)
                return cf_err_set(err, CF_ENOMEM, "out of memory");
        }
    }
    if (!cf_console_find_tier(c, "free"))
        return cf_err_set(err, CF_EINVAL, "no tier 'free': anonymous visitors download in it");
    return 0;
}

int cf_console_new(const cf_console_options *o, cf_console **out, cf_err *err)
{
    *out = NULL;
    cf_console *c = calloc(1, sizeof *c);
    if (!c)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    if (o->log)
        c->log = *o->log;
    c->clock = o->clock ? o->clock : &cf_clock_system;
    c->users = o->users;
    c->session_ttl_s = o->session_ttl_s > 0 ? o->session_ttl_s : CF_CONSOLE_DEFAULT_SESSION_TTL_S;
    c->url_expiry_s = o->url_expiry_s > 0 ? o->url_expiry_s : CF_CONSOLE_DEFAULT_URL_EXPIRY_S;
    c->proxy_downloads = o->proxy_downloads;
    c->max_proxy_downloads = o->max_proxy_downloads ? o->max_proxy_downloads : CF_CONSOLE_DEFAULT_MAX_PROXY;
    c->max_proxy_per_client =
        o->max_proxy_per_client ? o->max_proxy_per_client : CF_CONSOLE_DEFAULT_MAX_PROXY_PER_CLIENT;
    pthread_mutex_init(&c->proxy_mu, NULL);
    c->secure_cookies = o->secure_cookies;
    snprintf(c->region, sizeof c->region, "%s", o->region ? o->region : "us-east-1");
    int rc = 0;
    if (c->url_expiry_s > CF_CONSOLE_MAX_URL_EXPIRY_S)
        rc = cf_err_set(err, CF_EINVAL, "the URL expiry must be at most 7 days (SigV4's limit)");
    if (!rc && o->public_url) {
        size_t n = strlen(o->public_url);
        while (n && o->public_url[n - 1] == '/')
            n--;
        char host[512];
        char trimmed[512];
        snprintf(trimmed, sizeof trimmed, "%.*s", (int)n, o->public_url);
        if (n >= sizeof c->public_url || endpoint_host(trimmed, host, sizeof host) != 0)
            rc = cf_err_set(err, CF_EINVAL, "public URL '%s' must be http(s)://HOST[:PORT], without a path",
                            o->public_url);
        else
            snprintf(c->public_url, sizeof c->public_url, "%s", trimmed);
    }
    if (!rc && !o->proxy_downloads) {
        if (!o->download_endpoint || strlen(o->download_endpoint) >= sizeof c->endpoint ||
            endpoint_host(o->download_endpoint, c->endpoint_host, sizeof c->endpoint_host) != 0)
            rc = cf_err_set(err, CF_EINVAL,
                            "download endpoint '%s' must be http(s)://HOST[:PORT], without a path",
                            o->download_endpoint ? o->download_endpoint : "");
        else
            snprintf(c->endpoint, sizeof c->endpoint, "%s", o->download_endpoint);
    }
    if (!rc && o->nrepos == 0)
        rc = cf_err_set(err, CF_EINVAL, "no repository: give --repository s3://BUCKET[/PREFIX]");
    if (!rc && o->proxy_downloads &&
        !(c->proxy_slots = calloc(c->max_proxy_downloads, sizeof *c->proxy_slots)))
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    if (!rc && !(c->repos = calloc(o->nrepos, sizeof *c->repos)))
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < o->nrepos; i++) {
        c->repos[i].url = o->repos[i].url;
        c->repos[i].repo = o->repos[i].repo;
        rc = split_repo_url(o->repos[i].url, &c->repos[i], err);
    }
    c->nrepos = o->nrepos;
    if (!rc)
        rc = set_tiers(c, o, err);
    if (!rc)
        rc = set_trusted(c, o, err);

    /* The session secret keys sessions and, through its own HKDF info, proxy tokens. */
    int has_users = o->users && cf_users_count(o->users) > 0;
    unsigned char generated[32];
    const void *secret = o->session_secret;
    size_t secret_len = o->session_secret_len;
    if (!rc && !secret) {
        if (has_users)
            rc = cf_err_set(
                err, CF_EINVAL,
                "users can log in but no session secret is set: set COFFER_CONSOLE_SESSION_SECRET_FILE "
                "(or COFFER_CONSOLE_SESSION_SECRET) to at least 32 random bytes");
        else if (cf_clock_random(c->clock, generated, sizeof generated) != 0)
            rc = cf_err_set(err, CF_EIO, "no randomness for the session secret");
        secret = generated;
        secret_len = sizeof generated;
    }
    if (!rc)
        rc = cf_session_keys_new(secret, secret_len, &c->keys, err);
    if (!rc && hkdf_sha256(secret, secret_len, PROXY_KEY_INFO, c->proxy_key) != 0)
        rc = cf_err_set(err, CF_ENOMEM, "cannot derive the download token key");
    memset(generated, 0, sizeof generated);
    if (!rc && (cf_limiter_new(20, 60, 100000, &c->login_ip, err) != 0 ||
                cf_limiter_new(5, 60, 100000, &c->login_user, err) != 0))
        rc = err ? err->code : CF_ENOMEM;
    if (!rc && cf_sigv4_key_cache_new(&c->sign_keys) != 0)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    if (!rc && o->proxy_downloads && cf_prefetch_new(PREFETCH_THREADS, &c->prefetch) != 0)
        rc = cf_err_set(err, CF_ENOMEM, "cannot start the download read-ahead threads");
    if (!rc) {
        cf_catalogue_opts co = {.repos = o->repos,
                                .nrepos = o->nrepos,
                                .refresh_interval_s = o->refresh_interval_s,
                                .log = &c->log,
                                .clock = c->clock};
        rc = cf_catalogue_new(&co, &c->cat, err);
    }
    if (!rc)
        rc = new_render(c, err);
    cf_http_options http = o->http;
    http.log = &c->log;
    if (!rc)
        rc = cf_http_new(&http, &c->http, err);
    static const struct {
        const char *prefix;
        const cf_http_handlers *h;
    } mounts[] = {
        {"/", &asset_mount},          {"/api", &cf_console_api_mount},           {"/health", &health_mount},
        {"/metrics", &metrics_mount}, {"/download", &cf_console_download_mount},
    };
    for (size_t i = 0; !rc && i < sizeof mounts / sizeof *mounts; i++)
        rc = cf_http_mount(c->http, mounts[i].prefix, mounts[i].h, c, err);
    if (rc) {
        if (c->http)
            cf_http_stop(c->http);
        free_console(c);
        return rc;
    }
    *out = c;
    return 0;
}

int cf_console_start(cf_console *c, cf_err *err)
{
    int rc = cf_catalogue_start(c->cat, err);
    if (!rc)
        rc = cf_http_start(c->http, err);
    if (!rc)
        cf_catalogue_request_refresh(c->cat);
    return rc;
}

uint16_t cf_console_port(const cf_console *c)
{
    return cf_http_port(c->http);
}

void cf_console_request_refresh(cf_console *c)
{
    cf_catalogue_request_refresh(c->cat);
}

void cf_console_stop(cf_console *c)
{
    if (!c)
        return;
    /* Requests end first: they hold catalogue views and the tiers' buckets. */
    cf_http_stop(c->http);
    c->http = NULL;
    free_console(c);
}
