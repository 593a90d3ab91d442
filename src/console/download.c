/*
 * download.c - what a download request answers (a URL, its expiry, the caller's tier and
 * commands to paste), and with --proxy-downloads the /download mount that streams archives.
 *
 * Presigned (the default): the URL is a SigV4 presigned GET of the archive, signed with the
 * access key of the caller's tier (anonymous: "free"). The store paces every response served
 * under a key of a rate group from that group's one budget, so the tier is enforced there.
 *
 * Proxied (for stores that cannot pace): the URL points at this console's
 * /download/{chain}/{id}?tier=T&expires=E&sig=S, S = HMAC-SHA256 under a key derived from the
 * session secret (console.c) over "v1\nCHAIN\nID\nTIER\nEXPIRES", so any replica can check it
 * and nobody can change the tier or stretch the expiry. The archive is read from the repository
 * with the general credentials and sent through the tier's cf_http_bucket: one shared budget
 * per tier per replica.
 *
 * The proxy's reader runs on the connection's event thread (the HTTP layer calls it when the
 * meter grants bytes) and must not wait for the repository there: it sends from a 1 MiB window
 * while the prefetch pool (prefetch.c) reads the next one with a ranged GET. The first window is
 * read on the blocking pool with the HEAD; the event thread waits only when the repository is
 * slower than the tier, or after a seek it could not foresee.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/console_int.h"
#include "core/clock.h"

#define TOKEN_VERSION "v1"
#define PROXY_WINDOW (1u << 20)
#define PROXY_BLOCK (256u << 10)

/* Appends s single-quoted for a POSIX shell: ' becomes '\''. */
static void shell_quote(cf_buf *b, const char *s)
{
    cf_buf_putc(b, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            cf_buf_puts(b, "'\\''");
        else
            cf_buf_putc(b, *s);
    }
    cf_buf_putc(b, '\'');
}

static int token_mac(const unsigned char key[CF_SHA256_LEN], const char *chain, const char *id,
                     const char *tier, const char *expires, unsigned char mac[CF_SHA256_LEN])
{
    cf_buf msg;
    cf_buf_init(&msg, 4096);
    cf_buf_printf(&msg, TOKEN_VERSION "\n%s\n%s\n%s\n%s", chain, id, tier, expires);
    int rc = cf_buf_error(&msg) ? CF_ENOMEM : cf_hmac_sha256(key, CF_SHA256_LEN, msg.data, msg.len, mac);
    cf_buf_cleanup(&msg);
    return rc;
}

int cf_console_token_check(const unsigned char key[CF_SHA256_LEN], const char *chain, const char *id,
                           const char *tier, const char *expires, const char *sig, int64_t now, cf_err *err)
{
    if (!tier || !expires || !sig)
        return cf_err_set(err, CF_EDENIED, "the download link lacks its tier, expires or sig parameter");
    size_t elen = strlen(expires);
    if (elen == 0 || elen > 18 || strspn(expires, "0123456789") != elen)
        return cf_err_set(err, CF_EDENIED, "the download link's expires is not a time");
    unsigned char want[CF_SHA256_LEN], got[CF_SHA256_LEN];
    if (strlen(sig) != 2 * CF_SHA256_LEN || cf_hex_decode(sig, CF_SHA256_LEN, got) != 0)
        return cf_err_set(err, CF_EDENIED, "the download link's signature is malformed");
    if (token_mac(key, chain, id, tier, expires, want) != 0)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    if (!cf_consttime_eq(want, got, sizeof want))
        return cf_err_set(err, CF_EDENIED,
                          "the download link's signature does not match: ask for a new link");
    if (strtoll(expires, NULL, 10) <= now)
        return cf_err_set(err, CF_EPRECOND, "the download link expired: ask for a new link");
    return 0;
}

int cf_console_range(const char *h, uint64_t size, uint64_t *start, uint64_t *len)
{
    if (strncmp(h, "bytes=", 6) != 0)
        return CF_EINVAL;
    const char *p = h + 6;
    uint64_t a = 0, b = 0;
    int has_a = 0, has_b = 0;
    for (; *p >= '0' && *p <= '9'; p++, has_a = 1) {
        if (a > (UINT64_MAX - 9) / 10)
            return CF_EINVAL;
        a = a * 10 + (uint64_t)(*p - '0');
    }
    if (*p++ != '-')
        return CF_EINVAL;
    for (; *p >= '0' && *p <= '9'; p++, has_b = 1) {
        if (b > (UINT64_MAX - 9) / 10)
            return CF_EINVAL;
        b = b * 10 + (uint64_t)(*p - '0');
    }
    if (*p || (!has_a && !has_b) || (has_a && has_b && b < a))
        return CF_EINVAL;
    if (!has_a) { /* the last b bytes */
        if (b == 0 || size == 0)
            return CF_ERANGE;
        *len = b < size ? b : size;
        *start = size - *len;
        return 0;
    }
    if (a >= size)
        return CF_ERANGE;
    uint64_t end = has_b && b < size - 1 ? b : size - 1;
    *start = a;
    *len = end - a + 1;
    return 0;
}

/* 1 when a snapshot's archive key lies in its own chain's namespace ("CHAIN/NAME..."), with no
 * empty, "." or ".." segment and no control character or backslash. A manifest is the bucket's
 * word, not ours: one naming "../private/x" or another chain's archive would have the console
 * sign or proxy (with its general credentials) an object the site never published. */
int cf_console_archive_key_ok(const char *chain, const char *k)
{
    size_t n = strlen(chain);
    if (!k || strncmp(k, chain, n) != 0 || k[n] != '/')
        return 0;
    for (const char *seg = k + n + 1;;) {
        size_t len = strcspn(seg, "/");
        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return 0;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)seg[i] < 0x20 || seg[i] == 0x7f || seg[i] == '\\')
                return 0;
        if (!seg[len])
            return 1;
        seg += len + 1;
    }
}

static int archive_key_in_chain(const cf_cat_snapshot *s)
{
    return cf_console_archive_key_ok(s->chain, s->archive_key);
}

/* The repository path of a snapshot's archive for a presigned URL: "/BUCKET/ROOT/KEY" (decoded). */
static void archive_path(const cf_console_repo *repo, const cf_cat_snapshot *s, cf_buf *out)
{
    cf_buf_printf(out, "/%s/%s%s%s", repo->bucket, repo->root, repo->root[0] ? "/" : "", s->archive_key);
}

/* The proxy URL of s for tier, valid until expires. */
static int proxy_url(cf_console_req *r, const cf_cat_snapshot *s, const char *tier, int64_t expires,
                     cf_buf *url)
{
    cf_console *c = r->c;
    char origin[600], exp[24], hex[2 * CF_SHA256_LEN + 1];
    unsigned char mac[CF_SHA256_LEN];
    if (c->public_url[0])
        snprintf(origin, sizeof origin, "%s", c->public_url);
    else
        cf_console_origin(r, origin, sizeof origin);
    snprintf(exp, sizeof exp, "%" PRId64, expires);
    if (token_mac(c->proxy_key, s->chain, s->id, tier, exp, mac) != 0)
        return CF_ENOMEM;
    cf_hex_encode(mac, sizeof mac, hex);
    cf_buf_puts(url, origin);
    cf_buf_puts(url, "/download/");
    cf_sigv4_uri_encode(url, s->chain, strlen(s->chain), 0);
    cf_buf_putc(url, '/');
    cf_sigv4_uri_encode(url, s->id, strlen(s->id), 0);
    cf_buf_printf(url, "?tier=%s&expires=%s&sig=%s", tier, exp, hex);
    return cf_buf_error(url);
}

static json_t *commands_json(const cf_console *c, const cf_cat_snapshot *s, const char *url)
{
    const cf_console_repo *repo = &c->repos[s->repo_index < c->nrepos ? s->repo_index : 0];
    cf_buf curl, restore;
    cf_buf_init(&curl, 64 << 10);
    cf_buf_init(&restore, 8 << 10);
    if (!s->encrypted) {
        cf_buf_puts(&curl, "curl -fL ");
        shell_quote(&curl, url);
        if (strcmp(s->compression, "zstd") == 0)
            cf_buf_puts(&curl, " | zstd -dc");
        else if (strcmp(s->compression, "lz4") == 0)
            cf_buf_puts(&curl, " | lz4 -dc");
        cf_buf_puts(&curl, " | tar -x");
    }
    char ref[2048];
    snprintf(ref, sizeof ref, "s3://%s/%s%s%s@%s", repo->bucket, repo->root, repo->root[0] ? "/" : "",
             s->chain, s->id);
    cf_buf_puts(&restore, "coffer snapshot restore ");
    shell_quote(&restore, ref);
    cf_buf_putc(&restore, ' ');
    shell_quote(&restore, s->chain);
    if (c->endpoint[0]) {
        cf_buf_puts(&restore, " --endpoint ");
        shell_quote(&restore, c->endpoint);
    }
    if (s->encrypted)
        cf_buf_puts(&restore, " --encrypt-key-file KEYFILE");
    json_t *out = NULL;
    if (!cf_buf_error(&curl) && !cf_buf_error(&restore) && (s->encrypted || curl.data) && restore.data)
        out = json_pack("{s:o,s:s}", "curl", s->encrypted ? json_null() : json_string(curl.data), "coffer",
                        restore.data);
    cf_buf_cleanup(&curl);
    cf_buf_cleanup(&restore);
    return out;
}

int cf_console_download_answer(cf_console_req *r, const cf_cat_snapshot *s, const char *tier, json_t **out,
                               const char **code, cf_err *err)
{
    cf_console *c = r->c;
    *out = NULL;
    cf_console_tier_state *t = cf_console_find_tier(c, tier);
    if (!t) {
        *code = "TierUnavailable";
        cf_err_set(err, CF_ENOTFOUND, "tier '%s' is not configured on this console (--tier %s=RATE)", tier,
                   tier);
        return 503;
    }
    if (!c->proxy_downloads && !t->access_key) {
        *code = "TierUnavailable";
        cf_err_set(err, CF_ENOTFOUND, "downloads in tier '%s' are not configured: the console needs %s", tier,
                   t->missing[0] ? t->missing : "the tier's access key");
        return 503;
    }
    if (!s->archive_key || s->repo_index >= c->nrepos) {
        *code = "NoSuchSnapshot";
        cf_err_set(err, CF_ENOTFOUND, "snapshot '%s' of chain '%s' names no archive", s->id, s->chain);
        return 404;
    }
    if (!archive_key_in_chain(s)) {
        *code = "NoSuchSnapshot";
        cf_log(&c->log, CF_LOG_WARN, "download refused: the manifest's archive is outside its chain", "chain",
               s->chain, "id", s->id, "archive_key", s->archive_key, NULL);
        cf_err_set(err, CF_ENOTFOUND, "snapshot '%s' of chain '%s' names an archive outside its chain", s->id,
                   s->chain);
        return 404;
    }
    int64_t now = cf_console_now(c), expires = now + c->url_expiry_s;
    cf_buf url;
    cf_buf_init(&url, 64 << 10);
    int rc;
    if (c->proxy_downloads) {
        rc = proxy_url(r, s, t->name, expires, &url);
    } else {
        cf_buf path;
        cf_buf_init(&path, 8 << 10);
        archive_path(&c->repos[s->repo_index], s, &path);
        cf_buf_puts(&url, c->endpoint);
        cf_sigv4_presign_opts o = {.method = "GET",
                                   .host = c->endpoint_host,
                                   .path = path.data ? path.data : "/",
                                   .access_key = t->access_key,
                                   .secret = t->secret_key,
                                   .region = c->region,
                                   .now = now,
                                   .expires = c->url_expiry_s,
                                   .keys = c->sign_keys};
        rc = cf_buf_error(&path) ? CF_ENOMEM : cf_sigv4_presign(&o, &url, err);
        cf_buf_cleanup(&path);
    }
    if (rc || cf_buf_error(&url) || !url.data) {
        cf_buf_cleanup(&url);
        *code = "InternalError";
        cf_err_set(err, CF_ENOMEM, "cannot build the download URL");
        return 500;
    }
    char at[32];
    cf_console_rfc3339(expires, at);
    *out = json_pack("{s:s,s:s,s:I,s:s,s:I,s:o,s:o}", "url", url.data, "expires_at", at, "expires_in",
                     (json_int_t)c->url_expiry_s, "tier", t->name, "rate_bytes_per_s", (json_int_t)t->rate,
                     "snapshot", cf_console_snapshot_json(c, s), "commands", commands_json(c, s, url.data));
    cf_buf_cleanup(&url);
    if (!*out) {
        *code = "InternalError";
        cf_err_set(err, CF_ENOMEM, "out of memory");
        return 500;
    }
    atomic_fetch_add(&t->urls_issued, 1);
    cf_log(&c->log, CF_LOG_INFO, "download url", "chain", s->chain, "id", s->id, "tier", t->name, "mode",
           c->proxy_downloads ? "proxy" : "presigned", NULL);
    return 0;
}

/* A proxied download: what the blocking pool needs to answer it, and the reader's windows: the
 * one being sent and the next, read ahead by the prefetch pool. */
typedef struct proxy {
    cf_console *c;
    cf_console_tier_state *tier;
    cf_repo *repo;
    char etag[72];
    char disposition[300];
    uint64_t start, len; /* the bytes of the archive sent */
    char *win;
    uint64_t win_pos, win_len; /* relative to start */
    cf_prefetch_job *ahead;    /* the next window being read, or NULL */
    uint64_t ahead_pos;
    char key[];
} proxy;

/* The window at pos into p->win: the one read ahead when it is that, else read now. */
static int load_window(proxy *p, uint64_t pos)
{
    cf_prefetch *pool = p->c->prefetch;
    uint64_t want = p->len - pos < PROXY_WINDOW ? p->len - pos : PROXY_WINDOW;
    long got = -1;
    cf_err err = {0};
    if (p->ahead && p->ahead_pos == pos) {
        char *buf;
        got = cf_prefetch_wait(pool, p->ahead, &buf);
        p->ahead = NULL;
        if (got > 0) {
            free(p->win);
            p->win = buf;
        } else {
            free(buf);
        }
    } else if (p->ahead) { /* a seek: the read-ahead is of no use */
        cf_prefetch_abandon(pool, p->ahead);
        p->ahead = NULL;
    }
    if (got <= 0 &&
        (!p->win || (got = cf_prefetch_read(p->repo, p->key, p->start + pos, want, p->win, &err)) <= 0)) {
        cf_log(&p->c->log, CF_LOG_WARN, "proxy download cut", "key", p->key, "error", err.msg, NULL);
        return -1;
    }
    p->win_pos = pos;
    p->win_len = (uint64_t)got;
    uint64_t next = pos + (uint64_t)got;
    if (pool && next < p->len) {
        uint64_t n = p->len - next < PROXY_WINDOW ? p->len - next : PROXY_WINDOW;
        p->ahead = cf_prefetch_submit(pool, p->repo, p->key, p->start + next, n);
        p->ahead_pos = next;
    }
    return 0;
}

static long proxy_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    proxy *p = cls;
    if (pos >= p->len)
        return CF_HTTP_READER_END;
    if ((pos < p->win_pos || pos >= p->win_pos + p->win_len) && load_window(p, pos) != 0)
        return CF_HTTP_READER_ERROR;
    uint64_t off = pos - p->win_pos, n = p->win_len - off;
    if (n > max)
        n = max;
    memcpy(buf, p->win + off, n);
    atomic_fetch_add(&p->tier->proxy_bytes, n);
    return (long)n;
}

static void proxy_free(void *cls)
{
    proxy *p = cls;
    if (p->ahead)
        cf_prefetch_abandon(p->c->prefetch, p->ahead);
    free(p->win);
    free(p);
}

/* On the blocking pool: the archive's size (one HEAD), then the paced response. */
static int run_proxy(cf_console_req *r)
{
    proxy *p = r->download;
    cf_repo_info info;
    cf_err err = {0};
    int rc = cf_repo_stat(p->repo, p->key, &info, &err);
    if (rc == CF_ENOTFOUND)
        return cf_console_error(r, 404, "NoSuchSnapshot", NULL, NULL, "the archive of this snapshot is gone");
    if (rc) {
        cf_log(&r->c->log, CF_LOG_WARN, "proxy download: cannot read the archive", "key", p->key, "error",
               err.msg, NULL);
        return cf_console_error(r, 502, "RepositoryUnavailable", NULL, NULL,
                                "the repository did not answer: try again later");
    }
    uint64_t size = info.size, start = 0, len = size;
    int status = 200;
    const char *range = cf_http_header(r->hr, "Range");
    char content_range[96] = "";
    if (range) {
        int prc = cf_console_range(range, size, &start, &len);
        if (prc == CF_ERANGE) {
            snprintf(content_range, sizeof content_range, "bytes */%" PRIu64, size);
            return cf_console_error(r, 416, "InvalidRange", "Content-Range", content_range,
                                    "the range '%.100s' is outside the archive's %" PRIu64 " bytes", range,
                                    size);
        }
        if (prc == 0) {
            status = 206;
            snprintf(content_range, sizeof content_range, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start,
                     start + len - 1, size);
        } else {
            start = 0;
            len = size;
        }
    }
    p->start = start;
    p->len = len;
    /* The first window is read here, on the blocking pool, and the second queued: the event
     * thread starts sending without waiting for the repository. */
    if (!(p->win = malloc(PROXY_WINDOW)))
        return 0;
    if (len && strcmp(r->hr->method, "HEAD") != 0 && load_window(p, 0) != 0)
        return cf_console_error(r, 502, "RepositoryUnavailable", NULL, NULL,
                                "the repository did not send the archive: try again later");
    /* The response owns the reader's state from here; r->download must not free it twice. */
    r->download = NULL;
    cf_console_tier_state *t = p->tier;
    cf_http_meter meter;
    cf_http_response *resp;
    char etag[72], disposition[300];
    memcpy(etag, p->etag, sizeof etag);
    memcpy(disposition, p->disposition, sizeof disposition);
    if (t->bucket) {
        meter = cf_http_bucket_meter(t->bucket);
        resp = cf_http_body_paced(r->hr, len, PROXY_BLOCK, proxy_read, p, proxy_free, &meter);
    } else {
        resp = cf_http_body_reader(len, PROXY_BLOCK, proxy_read, p, proxy_free);
    }
    if (!resp)
        return 0;
    cf_http_add_header(resp, "Content-Type", "application/octet-stream");
    cf_http_add_header(resp, "Accept-Ranges", "bytes");
    cf_http_add_header(resp, "ETag", etag);
    cf_http_add_header(resp, "Content-Disposition", disposition);
    cf_http_add_header(resp, "Cache-Control", "private, no-store");
    if (status == 206)
        cf_http_add_header(resp, "Content-Range", content_range);
    r->bytes_out = len;
    return cf_http_respond(r->hr, status, resp);
}

/* GET /download/{chain}/{id}?tier&expires&sig. */
static int download_begin(void *ctx, cf_http_request *hr)
{
    cf_console *c = ctx;
    cf_console_req *r = cf_console_req_new(c, hr, CF_ROUTE_PROXY);
    if (!r)
        return 0;
    if (!c->proxy_downloads)
        return cf_console_error(r, 404, "NotFound", NULL, NULL,
                                "this console does not serve downloads itself (no --proxy-downloads)");
    const char *path = hr->url + strlen("/download/");
    const char *slash = strncmp(hr->url, "/download/", 10) == 0 ? strchr(path, '/') : NULL;
    if (!slash || slash == path || !slash[1] || strchr(slash + 1, '/'))
        return cf_console_error(r, 404, "NotFound", NULL, NULL,
                                "no such download '%s': expected /download/CHAIN/ID", hr->url);
    if (strcmp(hr->method, "GET") != 0 && strcmp(hr->method, "HEAD") != 0)
        return cf_console_error(r, 405, "MethodNotAllowed", "Allow", "GET, HEAD",
                                "%s is not allowed on a download: use GET", hr->method);
    /* Chain names and ids as the catalogue holds them: the URL encodes only what needs it. */
    cf_buf chain;
    cf_buf_init(&chain, 1024);
    for (const char *p = path; p < slash; p++) {
        unsigned v;
        if (*p == '%' && p + 2 < slash + 1 && sscanf(p + 1, "%2x", &v) == 1 && v) {
            cf_buf_putc(&chain, (char)v);
            p += 2;
        } else {
            cf_buf_putc(&chain, *p);
        }
    }
    r->chain = cf_buf_error(&chain) ? NULL : cf_buf_steal(&chain, NULL);
    cf_buf_cleanup(&chain);
    r->id = strdup(slash + 1);
    if (!r->chain || !r->id)
        return 0;
    cf_err err = {0};
    int rc = cf_console_token_check(c->proxy_key, r->chain, r->id, cf_http_param(hr, "tier"),
                                    cf_http_param(hr, "expires"), cf_http_param(hr, "sig"), cf_console_now(c),
                                    &err);
    if (rc)
        return cf_console_error(r, 403, rc == CF_EPRECOND ? "ExpiredToken" : "InvalidToken", NULL, NULL, "%s",
                                err.msg);
    cf_console_tier_state *t = cf_console_find_tier(c, cf_http_param(hr, "tier"));
    if (!t)
        return cf_console_error(r, 403, "InvalidToken", NULL, NULL,
                                "the download link names a tier this console "
                                "does not have");
    /* Each download holds a window and its read-ahead (2 MiB) for as long as its client takes:
     * without a bound, clients that open many and read none would hold the memory of all; and
     * one client must not take every slot. */
    int all_taken;
    if (cf_console_proxy_slot_take(r, &all_taken) != 0)
        return all_taken ? cf_console_error(r, 503, "SlowDown", "Retry-After", "5",
                                            "the console is serving %u downloads already: try again in a few "
                                            "seconds",
                                            c->max_proxy_downloads)
                         : cf_console_error(r, 503, "SlowDown", "Retry-After", "5",
                                            "this address has %u downloads in progress already: finish one "
                                            "first",
                                            c->max_proxy_per_client);
    const cf_cat_view *v = cf_catalogue_acquire(c->cat);
    const cf_cat_chain *ch = cf_cat_find_chain(v, r->chain);
    const cf_cat_snapshot *s = ch ? cf_cat_find_snapshot(ch, r->id) : NULL;
    proxy *p = NULL;
    if (s && !archive_key_in_chain(s))
        s = NULL; /* its link was never issued (cf_console_download_answer refuses it) */
    if (s && s->archive_key && s->repo_index < c->nrepos &&
        (p = calloc(1, sizeof *p + strlen(s->archive_key) + 1))) {
        p->c = c;
        p->tier = t;
        p->repo = c->repos[s->repo_index].repo;
        strcpy(p->key, s->archive_key);
        snprintf(p->etag, sizeof p->etag, "\"%s\"", s->sha256);
        /* The archive's own name, limited to characters no header or shell will misread. */
        const char *base = strrchr(s->archive_key, '/');
        base = base ? base + 1 : s->archive_key;
        char name[200];
        size_t n = 0;
        for (; *base && n < sizeof name - 1; base++)
            name[n++] = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *base)
                            ? *base
                            : '_';
        name[n] = '\0';
        snprintf(p->disposition, sizeof p->disposition, "attachment; filename=\"%s\"", name);
    }
    cf_catalogue_release(c->cat, v);
    if (!s)
        return cf_console_error(r, 404, "NoSuchSnapshot", NULL, NULL, "no snapshot '%s' in chain '%s'", r->id,
                                r->chain);
    if (!p)
        return 0;
    r->download = p;
    r->download_free = proxy_free;
    r->run = run_proxy;
    return 1;
}

/* The (empty) body is in: the archive's HEAD blocks, so it runs on the pool. */
static int download_complete(cf_http_request *hr)
{
    cf_console_req *r = hr->front;
    return cf_http_offload(hr) == 0 ? 1 : run_proxy(r);
}

const cf_http_handlers cf_console_download_mount = {
    .begin = download_begin,
    .body = cf_console_req_body,
    .complete = download_complete,
    .run = cf_console_req_run,
    .done = cf_console_req_done,
};
