/*
 * api.c - the console's JSON API under /api/v1 (docs/console.md, "HTTP API"): the catalogue's
 * chains and snapshots, download requests, login, logout, who-am-I and on-demand refresh.
 *
 * Reads answer from the catalogue's in-memory view on the event thread: no request lists a
 * bucket. A login runs on the blocking pool, since checking a bcrypt hash takes tens of
 * milliseconds. Every refusal is {"error":{"code","message"}} with the status docs/console.md
 * gives; every POST passes the CSRF rules first (check_csrf).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "console/console_int.h"
#include "core/clock.h"

#define API_PREFIX "/api/v1/"
#define LOGIN_BODY_MAX (8u << 10)
#define OTHER_BODY_MAX (1u << 10)
#define PAGE_DEFAULT 50
#define PAGE_MAX 1000
#define MAX_SEGMENTS 8
/* Password checks queued or running at once: each is ~270 ms of a core (bcrypt cost 12), and
 * per-address limits do not stop a flood from many addresses. Beyond this a login is refused at
 * once (429), so a flood holds at most this many of the blocking pool's threads and cores;
 * browsing and downloads keep the rest. */
#define LOGIN_CHECKS_MAX 4
/* An on-demand refresh lists every chain of every repository: anyone may ask for one, but not
 * more often than this, or a loop of POSTs would keep the console listing the buckets
 * back to back (load on the store, and a bill on AWS). */
#define REFRESH_MIN_GAP_MS 5000

int cf_console_page_params(const char *limit_text, const char *cursor_text, long *limit, cf_err *err)
{
    *limit = PAGE_DEFAULT;
    if (limit_text) {
        char *end;
        long v = strtol(limit_text, &end, 10);
        if (!*limit_text || *end || limit_text[0] == '-' || limit_text[0] == '+' || limit_text[0] == ' ' ||
            v < 1 || v > PAGE_MAX)
            return cf_err_set(err, CF_EINVAL, "limit must be a whole number from 1 to %d, not '%.64s'",
                              PAGE_MAX, limit_text);
        *limit = v;
    }
    if (cursor_text && (!*cursor_text || strlen(cursor_text) > CF_SNAPSHOT_ID_LEN))
        return cf_err_set(err, CF_EINVAL,
                          "cursor must be the id of the previous page's last snapshot, not '%.64s'",
                          cursor_text);
    return 0;
}

int cf_console_login_body(const char *body, size_t len, char **user, char **password, int *malformed,
                          cf_err *err)
{
    *user = *password = NULL;
    *malformed = 0;
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        *malformed = 1;
        return cf_err_set(err, CF_EINVAL, "the body is not JSON: %s (at byte %d)", jerr.text, jerr.position);
    }
    int rc = 0;
    json_t *u = json_object_get(doc, "username"), *p = json_object_get(doc, "password");
    if (!json_is_object(doc))
        rc = cf_err_set(err, CF_EINVAL, "the body must be a JSON object {\"username\",\"password\"}");
    else if (!json_is_string(u) || json_string_length(u) == 0 || json_string_length(u) > CF_USER_NAME_MAX ||
             strlen(json_string_value(u)) != json_string_length(u))
        rc = cf_err_set(err, CF_EINVAL, "username must be a string of 1 to %d characters", CF_USER_NAME_MAX);
    else if (!json_is_string(p) || json_string_length(p) == 0 || json_string_length(p) > 1024 ||
             strlen(json_string_value(p)) != json_string_length(p))
        rc = cf_err_set(err, CF_EINVAL, "password must be a string of 1 to 1024 characters");
    else if (!(*user = strdup(json_string_value(u))) || !(*password = strdup(json_string_value(p)))) {
        free(*user);
        *user = NULL;
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    json_decref(doc);
    return rc;
}

/* Percent-decodes one path segment; NULL for a bad escape, a NUL byte or no memory. */
static char *decode_segment(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int v = 0;
        for (size_t k = 1; k <= 2; k++) {
            char ch = i + k < n ? s[i + k] : '\0';
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d < 0) {
                free(out);
                return NULL;
            }
            v = v * 16 + d;
        }
        if (v == 0) {
            free(out);
            return NULL;
        }
        out[o++] = (char)v;
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* The route of a path below /api/v1/, and its chain and id segments (decoded). */
static cf_console_route route_of(const char *url, char **chain, char **id)
{
    *chain = *id = NULL;
    if (strncmp(url, API_PREFIX, strlen(API_PREFIX)) != 0)
        return CF_ROUTE_API_UNKNOWN;
    const char *seg[MAX_SEGMENTS];
    size_t len[MAX_SEGMENTS], n = 0;
    for (const char *p = url + strlen(API_PREFIX);; p++) {
        if (n == MAX_SEGMENTS)
            return CF_ROUTE_API_UNKNOWN;
        seg[n] = p;
        len[n] = strcspn(p, "/");
        p += len[n];
        if (len[n] == 0)
            return CF_ROUTE_API_UNKNOWN; /* "//" or a trailing '/' */
        n++;
        if (!*p)
            break;
    }
#define IS(i, lit) (len[i] == strlen(lit) && strncmp(seg[i], lit, len[i]) == 0)
    if (n == 1 && IS(0, "chains"))
        return CF_ROUTE_CHAINS;
    if (n == 1 && IS(0, "login"))
        return CF_ROUTE_LOGIN;
    if (n == 1 && IS(0, "logout"))
        return CF_ROUTE_LOGOUT;
    if (n == 1 && IS(0, "me"))
        return CF_ROUTE_ME;
    if (n == 1 && IS(0, "refresh"))
        return CF_ROUTE_REFRESH;
    if (n < 2 || !IS(0, "chains"))
        return CF_ROUTE_API_UNKNOWN;
    cf_console_route route = CF_ROUTE_API_UNKNOWN;
    if (n == 2)
        route = CF_ROUTE_CHAIN;
    else if (n == 3 && IS(2, "snapshots"))
        route = CF_ROUTE_SNAPSHOTS;
    else if (n == 3 && IS(2, "latest"))
        route = CF_ROUTE_LATEST;
    else if (n == 4 && IS(2, "snapshots"))
        route = CF_ROUTE_SNAPSHOT;
    else if (n == 5 && IS(2, "snapshots") && IS(4, "download"))
        route = CF_ROUTE_DOWNLOAD_URL;
#undef IS
    if (route == CF_ROUTE_API_UNKNOWN)
        return route;
    if (!(*chain = decode_segment(seg[1], len[1])))
        return CF_ROUTE_API_UNKNOWN;
    if (n >= 4 && !(*id = decode_segment(seg[3], len[3]))) {
        free(*chain);
        *chain = NULL;
        return CF_ROUTE_API_UNKNOWN;
    }
    return route;
}

static int route_is_post(cf_console_route route)
{
    return route == CF_ROUTE_DOWNLOAD_URL || route == CF_ROUTE_LOGIN || route == CF_ROUTE_LOGOUT ||
           route == CF_ROUTE_REFRESH;
}

/* An answer of the catalogue: the rendered fragments (render.h) copied into one buffer. */
static void answer_init(cf_buf *b, size_t size_hint)
{
    cf_buf_init(b, (size_t)1 << 31);
    cf_buf_reserve(b, size_hint);
}

static int get_chains(cf_console_req *r, cf_rendered *rv)
{
    const cf_cat_view *v = cf_rendered_view(rv);
    int64_t now = cf_console_now(r->c);
    cf_buf b;
    answer_init(&b, 64 + v->nchains * 640);
    cf_buf_puts(&b, "{\"chains\":[");
    for (size_t i = 0; i < v->nchains; i++) {
        if (i)
            cf_buf_putc(&b, ',');
        cf_render_chain(rv, &b, &v->chains[i], now);
    }
    cf_buf_puts(&b, "],\"refreshed_at\":");
    if (v->refreshed_at) {
        char at[32];
        cf_console_rfc3339(v->refreshed_at, at);
        cf_render_json_string(&b, at);
    } else {
        cf_buf_puts(&b, "null");
    }
    cf_buf_putc(&b, '}');
    return cf_console_json_buf(r, 200, &b);
}

static int get_chain(cf_console_req *r, cf_rendered *rv, const cf_cat_chain *ch)
{
    cf_buf b;
    answer_init(&b, 640);
    cf_render_chain(rv, &b, ch, cf_console_now(r->c));
    return cf_console_json_buf(r, 200, &b);
}

static int get_one(cf_console_req *r, cf_rendered *rv, const cf_cat_chain *ch, const cf_cat_snapshot *s)
{
    cf_buf b;
    answer_init(&b, 640);
    cf_render_snapshot(rv, &b, ch, (size_t)(s - ch->snaps), cf_console_now(r->c));
    return cf_console_json_buf(r, 200, &b);
}

static int no_chain(cf_console_req *r)
{
    return cf_console_error(r, 404, "NoSuchChain", NULL, NULL, "no chain '%s' in the catalogue", r->chain);
}

static int get_snapshots(cf_console_req *r, cf_rendered *rv, const cf_cat_chain *ch)
{
    long limit;
    cf_err err = {0};
    const char *cursor = cf_http_param(r->hr, "cursor");
    if (cf_console_page_params(cf_http_param(r->hr, "limit"), cursor, &limit, &err) != 0)
        return cf_console_error(r, 400, "InvalidArgument", NULL, NULL, "%s", err.msg);
    size_t start = 0;
    if (cursor) {
        const cf_cat_snapshot *at = cf_cat_find_snapshot(ch, cursor);
        if (!at)
            return cf_console_error(r, 400, "InvalidArgument", NULL, NULL,
                                    "cursor '%s' names no snapshot of chain '%s' (deleted since? start again "
                                    "without a cursor)",
                                    cursor, ch->name);
        start = (size_t)(at - ch->snaps) + 1;
    }
    size_t end = start + (size_t)limit < ch->nsnaps ? start + (size_t)limit : ch->nsnaps;
    int64_t now = cf_console_now(r->c);
    cf_buf b;
    answer_init(&b, 64 + (end - start) * 600);
    cf_buf_puts(&b, "{\"snapshots\":[");
    for (size_t i = start; i < end; i++) {
        if (i > start)
            cf_buf_putc(&b, ',');
        cf_render_snapshot(rv, &b, ch, i, now);
    }
    cf_buf_puts(&b, "],\"next_cursor\":");
    if (end < ch->nsnaps && end > start)
        cf_render_json_string(&b, ch->snaps[end - 1].id);
    else
        cf_buf_puts(&b, "null");
    cf_buf_putc(&b, '}');
    return cf_console_json_buf(r, 200, &b);
}

/* The snapshot a path names ("latest" or an id), or a 404 sent. */
static const cf_cat_snapshot *find_snapshot(cf_console_req *r, const cf_cat_chain *ch, const char *id,
                                            int *sent)
{
    *sent = 0;
    const cf_cat_snapshot *s = NULL;
    if (strcmp(id, "latest") == 0) {
        if (ch->nsnaps)
            return &ch->snaps[0];
        *sent = 1;
        cf_console_error(r, 404, "NoSuchSnapshot", NULL, NULL, "chain '%s' has no snapshot yet", ch->name);
        return NULL;
    }
    if ((s = cf_cat_find_snapshot(ch, id)))
        return s;
    *sent = 1;
    cf_console_error(r, 404, "NoSuchSnapshot", NULL, NULL, "no snapshot '%s' in chain '%s'", id, ch->name);
    return NULL;
}

static const char *caller_tier(const cf_console_req *r)
{
    return r->session_state == CF_SESS_OK ? r->session.tier : "free";
}

static int post_download(cf_console_req *r, const cf_cat_chain *ch)
{
    int sent;
    const cf_cat_snapshot *s = find_snapshot(r, ch, r->id, &sent);
    if (!s)
        return sent ? 1 : 0;
    json_t *answer = NULL;
    const char *code = "InternalError";
    cf_err err = {0};
    int status = cf_console_download_answer(r, s, caller_tier(r), &answer, &code, &err);
    if (status)
        return cf_console_error(r, status, code, NULL, NULL, "%s", err.msg);
    return cf_console_json(r, 200, answer);
}

/* Reads of the catalogue, and the download request: one view held for the answer. */
static int catalogue_route(cf_console_req *r)
{
    cf_rendered *rv = cf_render_acquire(r->c->render);
    if (!rv)
        return cf_console_error(r, 500, "InternalError", NULL, NULL, "out of memory");
    const cf_cat_view *v = cf_rendered_view(rv);
    int rc;
    const cf_cat_chain *ch = r->chain ? cf_cat_find_chain(v, r->chain) : NULL;
    int sent;
    const cf_cat_snapshot *s;
    if (r->route == CF_ROUTE_CHAINS)
        rc = get_chains(r, rv);
    else if (!v->ready)
        rc = cf_console_error(r, 503, "NotReady", "Retry-After", "5",
                              "the catalogue has not loaded yet: try again in a few seconds");
    else if (!ch)
        rc = no_chain(r);
    else if (r->route == CF_ROUTE_CHAIN)
        rc = get_chain(r, rv, ch);
    else if (r->route == CF_ROUTE_SNAPSHOTS)
        rc = get_snapshots(r, rv, ch);
    else if (r->route == CF_ROUTE_DOWNLOAD_URL)
        rc = post_download(r, ch);
    else if ((s = find_snapshot(r, ch, r->route == CF_ROUTE_LATEST ? "latest" : r->id, &sent)))
        rc = get_one(r, rv, ch, s);
    else
        rc = sent;
    cf_render_release(rv);
    return rc;
}

static int get_me(cf_console_req *r)
{
    int in = r->session_state == CF_SESS_OK;
    json_t *obj = json_pack("{s:o,s:s,s:o}", "user", in ? json_string(r->session.user) : json_null(), "tier",
                            caller_tier(r), "csrf", in ? json_string(r->session.csrf) : json_null());
    if (obj && r->session_state == CF_SESS_EXPIRED)
        json_object_set_new(obj, "session", json_string("expired"));
    else if (obj && r->session_state == CF_SESS_INVALID)
        json_object_set_new(obj, "session", json_string("invalid"));
    return cf_console_json(r, 200, obj);
}

static int post_logout(cf_console_req *r)
{
    free(r->set_cookie);
    r->set_cookie = cf_console_cookie(r, "", 0);
    return cf_console_json(r, 200, json_object());
}

/* 1 when a Content-Type is application/json, with or without parameters. */
static int is_json_type(const char *ct)
{
    if (!ct)
        return 0;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0)
        return 0;
    const char *rest = ct + n;
    while (*rest == ' ')
        rest++;
    return *rest == '\0' || *rest == ';';
}

/* The CSRF rules of every POST (docs/console.md, "Cookies and CSRF"): a JSON content type (an
 * HTML form cannot send one without CORS), an Origin, when present, that is the request's own or
 * the public URL's, and a logged-in session's token in X-CSRF-Token. 0, or a 403 sent. */
static int check_csrf(cf_console_req *r, int *sent)
{
    *sent = 1;
    if (!is_json_type(cf_http_header(r->hr, "Content-Type")))
        return cf_console_error(r, 403, "CSRFRejected", NULL, NULL,
                                "a POST must have Content-Type: application/json");
    const char *origin = cf_http_header(r->hr, "Origin");
    if (origin) {
        char own[600];
        cf_console_origin(r, own, sizeof own);
        int ok = (*own && strcasecmp(origin, own) == 0) ||
                 (r->c->public_url[0] && strcasecmp(origin, r->c->public_url) == 0);
        if (!ok)
            return cf_console_error(r, 403, "CSRFRejected", NULL, NULL,
                                    "Origin '%.200s' is not this site's origin '%s'", origin,
                                    *own ? own : "(no Host header)");
    }
    if (r->session_state == CF_SESS_OK) {
        const char *token = cf_http_header(r->hr, "X-CSRF-Token");
        size_t n = strlen(r->session.csrf);
        if (!token || strlen(token) != n || !cf_consttime_eq(token, r->session.csrf, n))
            return cf_console_error(r, 403, "CSRFRejected", NULL, NULL,
                                    token ? "X-CSRF-Token does not match the session's token (GET /api/v1/me)"
                                          : "a logged-in POST must carry X-CSRF-Token (from GET /api/v1/me)");
    }
    *sent = 0;
    return 0;
}

/* A name typed into a login form is logged only when it is an account's: people type their
 * password into the user name field, and the log must never hold one. */
static const char *loggable_user(const cf_console *c, const char *user)
{
    return c->users && cf_users_find(c->users, user) >= 0 ? user : "(not a user)";
}

/* On the blocking pool: the password check (slow on purpose), then the session cookie. */
static int run_login(cf_console_req *r)
{
    cf_console *c = r->c;
    char *user = NULL, *password = NULL, userkey[80];
    int malformed;
    cf_err err = {0};
    if (cf_console_login_body(r->body.data ? r->body.data : "", r->body.len, &user, &password, &malformed,
                              &err)) {
        cf_console_count_login(r, CF_LOGIN_MALFORMED);
        return cf_console_error(r, err.code == CF_ENOMEM ? 500 : 400,
                                malformed ? "MalformedJSON" : "InvalidArgument", NULL, NULL, "%s", err.msg);
    }
    snprintf(userkey, sizeof userkey, "user:%s", user);
    double now = cf_clock_mono(), wait_ip = 0, wait_user = 0;
    int allow_ip = cf_limiter_allow(c->login_ip, r->client_key, now, &wait_ip);
    int allow_user = cf_limiter_allow(c->login_user, userkey, now, &wait_user);
    int rc;
    if (!allow_ip || !allow_user) {
        double wait = !allow_ip && wait_ip > wait_user ? wait_ip : !allow_user ? wait_user : wait_ip;
        char after[24];
        long whole = (long)wait; /* rounded up, at least 1 s: no libm for one ceil() */
        snprintf(after, sizeof after, "%ld", whole < 1 ? 1 : whole + (wait > (double)whole));
        cf_console_count_login(r, CF_LOGIN_LIMITED);
        cf_log(&c->log, CF_LOG_WARN, "login refused: too many attempts", "user", loggable_user(c, user),
               "client", r->client, NULL);
        rc = cf_console_error(r, 429, "TooManyAttempts", "Retry-After", after,
                              "too many failed logins from this %s: try again in %s s",
                              !allow_ip ? "address" : "account", after);
        goto out;
    }
    const char *tier = NULL;
    if (!c->users || cf_users_check(c->users, user, password, &tier, &err) != 0) {
        cf_limiter_fail(c->login_ip, r->client_key, now);
        cf_limiter_fail(c->login_user, userkey, now);
        cf_console_count_login(r, CF_LOGIN_WRONG);
        cf_log(&c->log, CF_LOG_WARN, "login failed", "user", loggable_user(c, user), "client", r->client,
               NULL);
        rc = cf_console_error(r, 401, "InvalidCredentials", NULL, NULL, "wrong user name or password");
        goto out;
    }
    cf_limiter_succeed(c->login_user, userkey);
    cf_session s;
    char *sealed = NULL;
    int64_t now_s = cf_console_now(c);
    if (cf_session_new(user, tier, now_s, c->session_ttl_s, &s, &err) != 0 ||
        cf_session_seal(c->keys, &s, &sealed, &err) != 0) {
        rc = cf_console_error(r, 500, "InternalError", NULL, NULL, "cannot make the session: %s", err.msg);
        goto out;
    }
    free(r->set_cookie);
    r->set_cookie = cf_console_cookie(r, sealed, c->session_ttl_s);
    memset(sealed, 0, strlen(sealed));
    free(sealed);
    cf_console_count_login(r, CF_LOGIN_OK);
    cf_log(&c->log, CF_LOG_INFO, "login", "user", user, "tier", tier, "client", r->client, NULL);
    rc = cf_console_json(r, 200, json_pack("{s:s,s:s,s:s}", "user", s.user, "tier", s.tier, "csrf", s.csrf));
    memset(&s, 0, sizeof s);
out:
    if (password) {
        memset(password, 0, strlen(password));
        free(password);
    }
    free(user);
    return rc;
}

/* A GET is answered once its request is complete, not from api_begin: libmicrohttpd (0.9.75)
 * takes a response queued before then as the end of the connection (Connection: close), and a
 * new TCP connection per request cost more than the answer itself. A body sent with a GET is
 * read and ignored. */
static int get_route(cf_console_req *r)
{
    if (r->route == CF_ROUTE_ME)
        return get_me(r);
    return catalogue_route(r);
}

static int post_refresh(cf_console_req *r)
{
    int64_t now = (int64_t)(cf_clock_mono() * 1000), next = atomic_load(&r->c->next_refresh_ms);
    if (now < next ||
        !atomic_compare_exchange_strong(&r->c->next_refresh_ms, &next, now + REFRESH_MIN_GAP_MS)) {
        int64_t wait_ms = atomic_load(&r->c->next_refresh_ms) - now;
        char after[24];
        snprintf(after, sizeof after, "%lld", (long long)(wait_ms > 0 ? (wait_ms + 999) / 1000 : 1));
        return cf_console_error(r, 429, "SlowDown", "Retry-After", after,
                                "a catalogue refresh was requested less than %d s ago: try again in %s s",
                                REFRESH_MIN_GAP_MS / 1000, after);
    }
    cf_catalogue_request_refresh(r->c->cat);
    return cf_console_json(r, 202, json_pack("{s:s}", "refresh", "requested"));
}

static int api_complete(cf_http_request *hr)
{
    cf_console_req *r = hr->front;
    if (!route_is_post(r->route))
        return get_route(r);
    if (r->body_too_big) {
        if (r->route == CF_ROUTE_LOGIN)
            cf_console_count_login(r, CF_LOGIN_MALFORMED);
        return cf_console_error(r, 413, "PayloadTooLarge", NULL, NULL, "the body is larger than %zu bytes",
                                r->body_max);
    }
    int sent;
    if (check_csrf(r, &sent) != 0 || sent) {
        if (r->route == CF_ROUTE_LOGIN)
            cf_console_count_login(r, CF_LOGIN_MALFORMED);
        return 1;
    }
    switch (r->route) {
    case CF_ROUTE_LOGIN:
        if (atomic_fetch_add(&r->c->login_checks, 1) >= LOGIN_CHECKS_MAX) {
            atomic_fetch_sub(&r->c->login_checks, 1);
            cf_console_count_login(r, CF_LOGIN_LIMITED);
            return cf_console_error(r, 429, "TooManyAttempts", "Retry-After", "1",
                                    "the console is checking %d logins already: try again in 1 s",
                                    LOGIN_CHECKS_MAX);
        }
        r->holds_login_check = 1;
        r->run = run_login;
        return cf_http_offload(hr) == 0 ? 1 : run_login(r);
    case CF_ROUTE_LOGOUT: return post_logout(r);
    case CF_ROUTE_REFRESH: return post_refresh(r);
    default: return catalogue_route(r);
    }
}

static int api_begin(void *ctx, cf_http_request *hr)
{
    cf_console *c = ctx;
    char *chain, *id;
    cf_console_route route = route_of(hr->url, &chain, &id);
    cf_console_req *r = cf_console_req_new(c, hr, route);
    if (!r) {
        free(chain);
        free(id);
        return 0;
    }
    r->chain = chain;
    r->id = id;
    if (route == CF_ROUTE_API_UNKNOWN)
        return cf_console_error(r, 404, "NotFound", NULL, NULL,
                                "no API route '%s' (docs/console.md lists them)", hr->url);
    int post = route_is_post(route);
    int get = strcmp(hr->method, "GET") == 0 || strcmp(hr->method, "HEAD") == 0;
    if (post ? strcmp(hr->method, "POST") != 0 : !get)
        return cf_console_error(r, 405, "MethodNotAllowed", "Allow", post ? "POST" : "GET, HEAD",
                                "%s is not allowed on %s: use %s", hr->method, hr->url,
                                post ? "POST" : "GET");
    if (!post)
        return 1; /* answered by api_complete: see get_route */
    r->body_max = route == CF_ROUTE_LOGIN ? LOGIN_BODY_MAX : OTHER_BODY_MAX;
    cf_buf_init(&r->body, r->body_max);
    const char *cl = cf_http_header(hr, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > r->body_max) {
        if (route == CF_ROUTE_LOGIN)
            cf_console_count_login(r, CF_LOGIN_MALFORMED);
        return cf_console_error(r, 413, "PayloadTooLarge", "Connection", "close",
                                "the body is larger than %zu bytes", r->body_max);
    }
    return 1;
}

const cf_http_handlers cf_console_api_mount = {
    .begin = api_begin,
    .body = cf_console_req_body,
    .complete = api_complete,
    .run = cf_console_req_run,
    .done = cf_console_req_done,
};
