/*
 * client.c - the client object and the request engine: SigV4 header signing, one curl multi
 * handle with a shared connection cache, retries with full-jitter backoff.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/clock.h"
#include "crypto/checksum.h"
#include "crypto/hash.h"
#include "s3/xml.h"
#include "s3client/internal.h"

#define BACKOFF_BASE 0.1
#define BACKOFF_CAP 5.0

/* libcurl's global set-up, once per process: it is libcurl's own state, which it asks to have
 * initialised before any thread uses it. Written once, read-only after (docs/internals/threads.md). */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void init_curl(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static const char EMPTY_SHA256[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

int cf_s3c_new(const cf_s3c_config *cfg, cf_s3c **out, cf_err *err)
{
    *out = NULL;
    const char *ep = cfg->endpoint;
    const char *sep = strstr(ep, "://");
    if (!sep || sep - ep > 5 || (strncmp(ep, "http", 4) != 0))
        return cf_err_set(err, CF_EINVAL, "endpoint '%s' must start with http:// or https://", ep);
    if (!*cfg->access_key || !*cfg->secret_key)
        return cf_err_set(err, CF_EINVAL, "endpoint '%s': no access key or secret key", ep);
    pthread_once(&curl_once, init_curl);
    if (curl_init_rc != CURLE_OK)
        return cf_err_set(err, CF_EINTERNAL, "cannot initialise libcurl");
    cf_s3c *c = calloc(1, sizeof *c);
    if (!c)
        return cf_err_set(err, CF_ENOMEM, "endpoint '%s': out of memory", ep);
    c->cfg = *cfg;
    if (c->cfg.max_attempts <= 0)
        c->cfg.max_attempts = CF_S3C_MAX_ATTEMPTS_DEFAULT;
    if (c->cfg.connect_timeout_ms <= 0)
        c->cfg.connect_timeout_ms = 10000;
    if (c->cfg.stall_timeout_ms <= 0)
        c->cfg.stall_timeout_ms = CF_S3C_STALL_TIMEOUT_DEFAULT_MS;
    if (c->cfg.retry_budget_ms <= 0)
        c->cfg.retry_budget_ms = CF_S3C_RETRY_BUDGET_DEFAULT_MS;
    snprintf(c->scheme, sizeof c->scheme, "%.*s", (int)(sep - ep), ep);
    snprintf(c->host, sizeof c->host, "%s", sep + 3);
    char *slash = strchr(c->host, '/');
    if (slash)
        *slash = '\0';
    /* The Host header must be what the signature covers: drop a default port, as clients do. */
    size_t hl = strlen(c->host);
    if (!strcmp(c->scheme, "http") && hl > 3 && !strcmp(c->host + hl - 3, ":80"))
        c->host[hl - 3] = '\0';
    if (!strcmp(c->scheme, "https") && hl > 4 && !strcmp(c->host + hl - 4, ":443"))
        c->host[hl - 4] = '\0';
    c->virtual_host = cfg->virtual_host;
    if (c->virtual_host < 0) {
        size_t n = strlen(c->host);
        c->virtual_host = n > 14 && strstr(c->host, ".amazonaws.com") != NULL;
    }
    c->rng = (uint64_t)cf_clock_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)c;
    c->multi = curl_multi_init();
    c->share = curl_share_init();
    if (cf_sigv4_key_cache_new(&c->keys) != 0) {
        cf_s3c_free(c);
        return cf_err_set(err, CF_ENOMEM, "endpoint '%s': out of memory", ep);
    }
    if (!c->multi || !c->share) {
        cf_s3c_free(c);
        return cf_err_set(err, CF_ENOMEM, "endpoint '%s': cannot start libcurl", ep);
    }
    /* One connection cache for every request: keep-alive across calls and parallel parts. */
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    *out = c;
    return 0;
}

void cf_s3c_free(cf_s3c *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    if (c->share)
        curl_share_cleanup(c->share);
    memset(c->cfg.secret_key, 0, sizeof c->cfg.secret_key);
    cf_sigv4_key_cache_free(c->keys);
    free(c);
}

int cf_s3c_new_like(const cf_s3c *c, cf_s3c **out, cf_err *err)
{
    return cf_s3c_new(&c->cfg, out, err);
}

void cf_s3c_get_stats(const cf_s3c *c, cf_s3c_stats *out)
{
    *out = c->stats;
}

int cf_s3c_same_principal(const cf_s3c *a, const cf_s3c *b)
{
    const cf_s3c_config *x = &a->cfg, *y = &b->cfg;
    return !strcmp(a->scheme, b->scheme) && !strcasecmp(a->host, b->host) && !strcmp(x->region, y->region) &&
           !strcmp(x->access_key, y->access_key) && !strcmp(x->secret_key, y->secret_key) &&
           !strcmp(x->session_token, y->session_token);
}

void cf_s3c_host(cf_s3c *c, const char *bucket, char *out, size_t outlen)
{
    if (c->virtual_host && bucket && *bucket)
        snprintf(out, outlen, "%s.%s", bucket, c->host);
    else
        snprintf(out, outlen, "%s", c->host);
}

int cf_s3c_path(cf_s3c *c, const char *bucket, const char *key, cf_buf *out)
{
    int rc = 0;
    if (!c->virtual_host && bucket && *bucket)
        rc = cf_buf_printf(out, "/%s", bucket);
    if (!rc && key && *key)
        rc = cf_buf_printf(out, "/%s", key);
    if (!rc && out->len == 0)
        rc = cf_buf_putc(out, '/');
    return rc;
}

void cf_s3c_xfer_init(cf_s3c_xfer *x, cf_s3c *c, const char *method, const char *bucket, const char *key)
{
    memset(x, 0, sizeof *x);
    x->c = c;
    x->method = method;
    x->bucket = bucket;
    x->key = key;
    x->retry_after = -1;
    cf_buf_init(&x->resp, CF_S3C_RESP_MAX);
    snprintf(x->payload_hash, sizeof x->payload_hash, "%s", EMPTY_SHA256);
}

void cf_s3c_xfer_cleanup(cf_s3c_xfer *x)
{
    cf_s3c_xfer_cancel(x);
    cf_buf_cleanup(&x->resp);
}

int cf_s3c_xfer_param(cf_s3c_xfer *x, const char *name, const char *value)
{
    if (x->nparams == CF_S3C_MAX_PARAMS)
        return CF_EINVAL;
    x->params[x->nparams].name = name;
    x->params[x->nparams].value = value ? value : "";
    x->nparams++;
    return 0;
}

/* Header names are ASCII; tolower would follow the locale. */
static char ascii_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

int cf_s3c_xfer_header(cf_s3c_xfer *x, const char *prefix, const char *name, const char *value)
{
    size_t pl = strlen(prefix), nl = strlen(name);
    char *dst = x->hdr_names + x->hdr_names_len;
    if (x->nhdrs == CF_S3C_MAX_HDRS || pl + nl + 1 > sizeof x->hdr_names - x->hdr_names_len)
        return CF_ETOOBIG;
    memcpy(dst, prefix, pl);
    for (size_t i = 0; i < nl; i++)
        dst[pl + i] = ascii_lower(name[i]);
    dst[pl + nl] = '\0';
    x->hdr_names_len += pl + nl + 1;
    x->hdrs[x->nhdrs].name = dst;
    x->hdrs[x->nhdrs].value = value;
    x->nhdrs++;
    return 0;
}

void cf_s3c_xfer_body(cf_s3c_xfer *x, const void *data, size_t len)
{
    unsigned char d[CF_SHA256_LEN];
    x->body = data ? data : "";
    x->body_len = len;
    cf_sha256(x->body, len, d);
    cf_hex_encode(d, sizeof d, x->payload_hash);
}

void cf_s3c_xfer_body_crc32c(cf_s3c_xfer *x, const void *data, size_t len)
{
    unsigned char raw[CF_CHECKSUM_MAX_LEN];
    x->body = data ? data : "";
    x->body_len = len;
    snprintf(x->payload_hash, sizeof x->payload_hash, "%s", CF_SIGV4_UNSIGNED_PAYLOAD);
    cf_checksum_compute(CF_CK_CRC32C, x->body, len, raw);
    cf_base64_encode(raw, 4, x->crc32c);
}

void cf_s3c_xfer_body_crc32c_known(cf_s3c_xfer *x, const void *data, size_t len, uint32_t crc)
{
    unsigned char raw[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16), (unsigned char)(crc >> 8),
                            (unsigned char)crc};
    x->body = data ? data : "";
    x->body_len = len;
    snprintf(x->payload_hash, sizeof x->payload_hash, "%s", CF_SIGV4_UNSIGNED_PAYLOAD);
    cf_base64_encode(raw, 4, x->crc32c);
}

/* ---- curl callbacks ---- */

static size_t on_read(char *p, size_t size, size_t n, void *ud)
{
    cf_s3c_xfer *x = ud;
    size_t cap = size * n;
    if (x->body) {
        size_t left = x->body_len - x->body_off;
        size_t k = left < cap ? left : cap;
        memcpy(p, x->body + x->body_off, k);
        x->body_off += k;
        return k;
    }
    uint64_t left = x->stream_len - x->stream_off;
    if (left == 0)
        return 0;
    if (cap > left)
        cap = (size_t)left;
    size_t got = 0;
    if (x->read(x->rctx, p, cap, &got) != 0 || got > cap || got == 0) {
        x->user_abort = 1; /* a source that ends early would leave the server waiting */
        return CURL_READFUNC_ABORT;
    }
    x->stream_off += got;
    return got;
}

/* libcurl rewinds a body itself when a reused connection turns out dead mid-send and it tries
 * again on a new one; without this it fails such a request with CURLE_SEND_FAIL_REWIND. */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
    cf_s3c_xfer *x = ud;
    if (origin != SEEK_SET || offset < 0)
        return CURL_SEEKFUNC_CANTSEEK;
    if (x->body) {
        if ((uint64_t)offset > x->body_len)
            return CURL_SEEKFUNC_FAIL;
        x->body_off = (size_t)offset;
        return CURL_SEEKFUNC_OK;
    }
    if (!x->seek || (uint64_t)offset > x->stream_len || x->seek(x->rctx, (uint64_t)offset) != 0)
        return CURL_SEEKFUNC_CANTSEEK;
    x->stream_off = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    cf_s3c_xfer *x = ud;
    size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300 && x->write) {
        if (x->write(x->wctx, p, len) != 0) {
            x->user_abort = 1;
            return 0;
        }
        x->delivered += len;
        return len;
    }
    return cf_buf_append(&x->resp, p, len) ? 0 : len;
}

static void header_value(const char *p, size_t n, char *out, size_t outlen)
{
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' '))
        n--;
    snprintf(out, outlen, "%.*s", (int)n, p);
}

/* Keeps an x-amz-meta-* field as "name\0value\0" in info->meta, while there is room. */
static void keep_meta(cf_s3c_object_info *info, const char *name, size_t nl, const char *v, size_t vl)
{
    char value[CF_S3C_META_MAX + 1];
    header_value(v, vl, value, sizeof value);
    size_t need = nl + strlen(value) + 2;
    if (need > sizeof info->meta - info->meta_len)
        return;
    char *dst = info->meta + info->meta_len;
    for (size_t i = 0; i < nl; i++)
        dst[i] = ascii_lower(name[i]);
    dst[nl] = '\0';
    memcpy(dst + nl + 1, value, strlen(value) + 1);
    info->meta_len += need;
}

/* Retry-After is delay-seconds or an HTTP date (RFC 9110 10.2.3); -1 when it is neither. A date
 * in the past asks for no wait. */
static double retry_after_seconds(const char *v, time_t now)
{
    size_t digits = strspn(v, "0123456789");
    if (digits && !v[digits])
        return digits > 9 ? 1e9 : (double)strtol(v, NULL, 10);
    time_t at = curl_getdate(v, NULL);
    if (at <= 0)
        return -1;
    return at > now ? (double)(at - now) : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    cf_s3c_xfer *x = ud;
    size_t len = size * n;
    if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
        /* A new response (after a 100 Continue, too): forget the previous one's headers. */
        memset(&x->info, 0, sizeof x->info);
        x->total_size = 0;
        x->retry_after = -1;
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return len;
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vl = len - nl - 1;
    char tmp[256];
    if (nl > 11 && !strncasecmp(p, "x-amz-meta-", 11))
        keep_meta(&x->info, p + 11, nl - 11, v, vl);
    else if (nl == 4 && !strncasecmp(p, "etag", 4))
        header_value(v, vl, x->info.etag, sizeof x->info.etag);
    else if (nl == 12 && !strncasecmp(p, "content-type", 12))
        header_value(v, vl, x->info.content_type, sizeof x->info.content_type);
    else if (nl == 13 && !strncasecmp(p, "cache-control", 13))
        header_value(v, vl, x->info.cache_control, sizeof x->info.cache_control);
    else if (nl == 19 && !strncasecmp(p, "content-disposition", 19))
        header_value(v, vl, x->info.content_disposition, sizeof x->info.content_disposition);
    else if (nl == 16 && !strncasecmp(p, "content-encoding", 16))
        header_value(v, vl, x->info.content_encoding, sizeof x->info.content_encoding);
    else if (nl == 16 && !strncasecmp(p, "content-language", 16))
        header_value(v, vl, x->info.content_language, sizeof x->info.content_language);
    else if (nl == 7 && !strncasecmp(p, "expires", 7))
        header_value(v, vl, x->info.expires, sizeof x->info.expires);
    else if (nl == 14 && !strncasecmp(p, "content-length", 14)) {
        header_value(v, vl, tmp, sizeof tmp);
        x->info.size = strtoull(tmp, NULL, 10);
        if (!x->total_size)
            x->total_size = x->info.size;
    } else if (nl == 13 && !strncasecmp(p, "content-range", 13)) {
        header_value(v, vl, tmp, sizeof tmp);
        const char *slash = strchr(tmp, '/');
        if (slash && slash[1] != '*')
            x->total_size = strtoull(slash + 1, NULL, 10);
    } else if (nl == 11 && !strncasecmp(p, "retry-after", 11)) {
        header_value(v, vl, tmp, sizeof tmp);
        x->retry_after = retry_after_seconds(tmp, cf_clock_time(x->c->cfg.clock));
    } else if (nl == 13 && !strncasecmp(p, "last-modified", 13)) {
        header_value(v, vl, tmp, sizeof tmp);
        time_t t = curl_getdate(tmp, NULL);
        x->info.last_modified = t > 0 ? (int64_t)t : 0;
    }
    return len;
}

/* Watches for a stall: no byte sent or received for stall_timeout_ms, whether the transfer is
 * connecting, sending, waiting for the answer or receiving it. libcurl's own low-speed check
 * averages over its last five seconds, so it would notice a stall mid-body seconds late. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)ultotal;
    cf_s3c_xfer *x = ud;
    uint64_t moved = (uint64_t)dlnow + (uint64_t)ulnow;
    double now = cf_clock_mono();
    if (moved != x->moved) {
        x->moved = moved;
        x->moved_at = now;
        return 0;
    }
    if ((now - x->moved_at) * 1000.0 < (double)x->c->cfg.stall_timeout_ms)
        return 0;
    x->stalled = 1;
    return 1;
}

/* ---- signing ---- */

typedef struct sign_headers {
    const char *host, *range, *sha, *date, *token, *crc32c;
    const cf_s3c_xfer *x; /* its extra headers */
} sign_headers;

static const char *sign_header(void *ctx, const char *name)
{
    const sign_headers *h = ctx;
    if (!strcmp(name, "host"))
        return h->host;
    if (!strcmp(name, "range"))
        return h->range;
    if (!strcmp(name, "x-amz-checksum-crc32c"))
        return h->crc32c;
    if (!strcmp(name, "x-amz-content-sha256"))
        return h->sha;
    if (!strcmp(name, "x-amz-date"))
        return h->date;
    if (!strcmp(name, "x-amz-security-token"))
        return h->token;
    for (size_t i = 0; i < h->x->nhdrs; i++)
        if (!strcmp(name, h->x->hdrs[i].name))
            return h->x->hdrs[i].value;
    return NULL;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "host;…" for SignedHeaders: every header sh has, sorted as SigV4 wants. */
static void signed_header_names(const sign_headers *sh, char *out, size_t cap)
{
    const char *names[6 + CF_S3C_MAX_HDRS];
    size_t n = 0;
    names[n++] = "host";
    if (sh->range)
        names[n++] = "range";
    if (sh->crc32c)
        names[n++] = "x-amz-checksum-crc32c";
    names[n++] = "x-amz-content-sha256";
    names[n++] = "x-amz-date";
    if (sh->token)
        names[n++] = "x-amz-security-token";
    for (size_t i = 0; i < sh->x->nhdrs; i++)
        names[n++] = sh->x->hdrs[i].name;
    qsort(names, n, sizeof *names, cmp_name);
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s%s", i ? ";" : "", names[i]);
}

static struct curl_slist *add_header(struct curl_slist *l, int *fail, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static struct curl_slist *add_header(struct curl_slist *l, int *fail, const char *fmt, ...)
{
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    struct curl_slist *n = curl_slist_append(l, line);
    if (!n)
        *fail = 1;
    return n ? n : l;
}

/* Builds URL, headers and signature for the next attempt of x. */
static int prepare(cf_s3c_xfer *x, char **url_out, cf_err *err)
{
    cf_s3c *c = x->c;
    char host[600], range[64] = "", amz_date[17], date[9];
    cf_buf path, url, creq, sts;
    int rc = 0, fail = 0;
    cf_buf_init(&path, 8192);
    cf_buf_init(&url, 16384);
    cf_buf_init(&creq, 65536);
    cf_buf_init(&sts, 1024);
    cf_s3c_host(c, x->bucket, host, sizeof host);
    if ((rc = cf_s3c_path(c, x->bucket, x->key, &path)))
        goto out;
    if (x->has_range || x->delivered) {
        /* A retried download resumes after the bytes the caller already has. */
        uint64_t off = x->range_off + x->delivered;
        if (x->has_range && x->range_len)
            snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)off,
                     (unsigned long long)(x->range_off + x->range_len - 1));
        else
            snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)off);
    }
    if (x->delivered && !x->if_match[0] && x->info.etag[0])
        snprintf(x->if_match, sizeof x->if_match, "%s", x->info.etag);
    cf_sigv4_format_amz_date((int64_t)cf_clock_time(c->cfg.clock), amz_date);
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    sign_headers sh = {host,
                       range[0] ? range : NULL,
                       x->payload_hash,
                       amz_date,
                       c->cfg.session_token[0] ? c->cfg.session_token : NULL,
                       x->crc32c[0] ? x->crc32c : NULL,
                       x};
    char signed_names[sizeof x->hdr_names + 160];
    signed_header_names(&sh, signed_names, sizeof signed_names);
    cf_sigv4_request req = {x->method,   path.data, x->params,       x->nparams,
                            sign_header, &sh,       x->payload_hash, NULL};
    if ((rc = cf_sigv4_canonical_request(&req, signed_names, &creq, err)))
        goto out;
    if ((rc = cf_sigv4_string_to_sign(amz_date, date, c->cfg.region, "s3", creq.data, creq.len, &sts)))
        goto out;
    unsigned char key[32];
    char sig[65];
    rc = cf_sigv4_cached_signing_key(c->keys, c->cfg.secret_key, date, c->cfg.region, "s3", key);
    if (!rc)
        rc = cf_sigv4_sign(key, sts.data, sts.len, sig);
    memset(key, 0, sizeof key);
    if (rc) {
        rc = cf_err_set(err, rc, "out of memory signing a request");
        goto out;
    }

    rc = cf_buf_printf(&url, "%s://%s", c->scheme, host);
    if (!rc)
        rc = cf_sigv4_uri_encode(&url, path.data, path.len, 1);
    for (size_t i = 0; !rc && i < x->nparams; i++) {
        rc = cf_buf_putc(&url, i ? '&' : '?');
        if (!rc)
            rc = cf_sigv4_uri_encode(&url, x->params[i].name, strlen(x->params[i].name), 0);
        if (!rc && x->params[i].value[0]) {
            rc = cf_buf_putc(&url, '=');
            if (!rc)
                rc = cf_sigv4_uri_encode(&url, x->params[i].value, strlen(x->params[i].value), 0);
        }
    }
    if (rc)
        goto out;
    struct curl_slist *h = NULL;
    h = add_header(h, &fail, "Host: %s", host);
    h = add_header(h, &fail, "x-amz-date: %s", amz_date);
    h = add_header(h, &fail, "x-amz-content-sha256: %s", x->payload_hash);
    if (sh.crc32c)
        h = add_header(h, &fail, "x-amz-checksum-crc32c: %s", sh.crc32c);
    if (sh.range)
        h = add_header(h, &fail, "Range: %s", range);
    if (sh.token)
        h = add_header(h, &fail, "x-amz-security-token: %s", sh.token);
    if (x->if_match[0])
        h = add_header(h, &fail, "If-Match: %s", x->if_match);
    if (x->content_type)
        h = add_header(h, &fail, "Content-Type: %s", x->content_type);
    for (size_t i = 0; i < x->nhdrs; i++) {
        if (x->hdrs[i].value[0])
            h = add_header(h, &fail, "%s: %s", x->hdrs[i].name, x->hdrs[i].value);
        else /* "name:" would tell libcurl to drop the header */
            h = add_header(h, &fail, "%s;", x->hdrs[i].name);
    }
    /* Expect: 100-continue costs a round trip (or a 1 s stall on servers that ignore it). */
    h = add_header(h, &fail, "Expect:");
    h = add_header(h, &fail,
                   "Authorization: " CF_SIGV4_ALGORITHM
                   " Credential=%s/%s/%s/s3/aws4_request, SignedHeaders=%s, Signature=%s",
                   c->cfg.access_key, date, c->cfg.region, signed_names, sig);
    if (fail) {
        curl_slist_free_all(h);
        rc = CF_ENOMEM;
        goto out;
    }
    curl_slist_free_all(x->headers);
    x->headers = h;
    *url_out = cf_buf_steal(&url, NULL);
out:
    if (rc && err && !err->code)
        cf_err_set(err, rc, "s3 %s '%s/%s': cannot build the request", x->method, x->bucket ? x->bucket : "",
                   x->key ? x->key : "");
    cf_buf_cleanup(&path);
    cf_buf_cleanup(&url);
    cf_buf_cleanup(&creq);
    cf_buf_cleanup(&sts);
    return rc;
}

/* ---- the engine ---- */

static void set_options(cf_s3c_xfer *x, const char *url)
{
    CURL *e = x->easy;
    cf_s3c *c = x->c;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_SHARE, c->share);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_msg);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
    /* Also a timer: with a low-speed limit libcurl looks at an idle transfer (and so calls
     * on_progress) every second. Its own verdict comes later than on_progress's. */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, c->cfg.stall_timeout_ms / 1000 + 10);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL);
    /* Bulk transfers: curl's 16 KiB receive and 64 KiB send buffers cost a system call (and a
     * callback) per piece, a quarter of a restore's CPU on a fast link. */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
    if (!strcmp(x->method, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(x->method, "PUT") || !strcmp(x->method, "POST")) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, x);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
        curl_off_t size = x->read ? (curl_off_t)x->stream_len : (curl_off_t)x->body_len;
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, size);
        if (!strcmp(x->method, "POST"))
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "POST");
    } else if (strcmp(x->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method);
    }
}

static int begin_attempt(cf_s3c_xfer *x)
{
    cf_s3c *c = x->c;
    char *url = NULL;
    x->err.code = 0;
    x->body_off = 0;
    if (x->read && x->stream_off) {
        if (!x->seek || x->seek(x->rctx, 0) != 0)
            return cf_err_set(&x->err, CF_EIO, "s3 %s '%s/%s': cannot rewind the body to retry", x->method,
                              x->bucket ? x->bucket : "", x->key ? x->key : "");
        x->stream_off = 0;
    }
    int rc = prepare(x, &url, &x->err);
    if (rc)
        return rc;
    if (!x->easy)
        x->easy = c->nidle ? c->idle[--c->nidle] : curl_easy_init();
    else
        curl_easy_reset(x->easy);
    if (!x->easy) {
        free(url);
        return cf_err_set(&x->err, CF_ENOMEM, "s3: cannot start an HTTP request");
    }
    cf_buf_reset(&x->resp);
    x->status = 0;
    x->curl_msg[0] = '\0';
    x->retry_after = -1;
    x->stalled = 0;
    x->moved = 0;
    x->moved_at = cf_clock_mono();
    set_options(x, url);
    free(url); /* libcurl copies the URL */
    if (curl_multi_add_handle(c->multi, x->easy) != CURLM_OK)
        return cf_err_set(&x->err, CF_EINTERNAL, "s3: cannot queue an HTTP request");
    x->state = XF_RUNNING;
    c->stats.requests++;
    return 0;
}

static void release_easy(cf_s3c_xfer *x)
{
    cf_s3c *c = x->c;
    if (!x->easy)
        return;
    if (x->state == XF_RUNNING)
        curl_multi_remove_handle(c->multi, x->easy);
    if (c->nidle < CF_S3C_MAX_ACTIVE) {
        curl_easy_reset(x->easy);
        c->idle[c->nidle++] = x->easy;
    } else {
        curl_easy_cleanup(x->easy);
    }
    x->easy = NULL;
    curl_slist_free_all(x->headers);
    x->headers = NULL;
}

static void deactivate(cf_s3c_xfer *x)
{
    cf_s3c *c = x->c;
    for (size_t i = 0; i < c->nactive; i++)
        if (c->active[i] == x) {
            c->active[i] = c->active[--c->nactive];
            break;
        }
}

static void finish(cf_s3c_xfer *x, int rc)
{
    release_easy(x);
    deactivate(x);
    x->state = XF_DONE;
    x->rc = rc;
}

void cf_s3c_xfer_cancel(cf_s3c_xfer *x)
{
    if (x->state == XF_RUNNING || x->state == XF_WAITING)
        finish(x, CF_EIO);
    else
        release_easy(x);
}

int cf_s3c_xfer_start(cf_s3c_xfer *x, cf_err *err)
{
    cf_s3c *c = x->c;
    if (c->nactive == CF_S3C_MAX_ACTIVE)
        return cf_err_set(err, CF_EINVAL, "s3: more than %d requests at once", CF_S3C_MAX_ACTIVE);
    x->attempt = 1;
    c->active[c->nactive++] = x;
    int rc = begin_attempt(x);
    if (rc) {
        finish(x, rc);
        if (err)
            *err = x->err;
    }
    return rc;
}

typedef struct s3_error {
    char code[64], message[300];
} s3_error;

static void parse_error(const cf_s3c_xfer *x, s3_error *e)
{
    cf_xml_node *root = NULL;
    memset(e, 0, sizeof *e);
    if (x->resp.len && cf_xml_parse(x->resp.data, x->resp.len, &root, NULL) == 0 && root &&
        !strcmp(root->name, "Error")) {
        const cf_xml_node *n = cf_xml_child(root, "Code");
        if (n)
            snprintf(e->code, sizeof e->code, "%s", n->text);
        if ((n = cf_xml_child(root, "Message")))
            snprintf(e->message, sizeof e->message, "%s", n->text);
    }
    cf_xml_free(root);
}

static int map_error(long status, const char *code)
{
    static const struct {
        const char *code;
        int err;
    } table[] = {
        {"NoSuchKey", CF_ENOTFOUND},
        {"NoSuchBucket", CF_ENOTFOUND},
        {"NoSuchUpload", CF_ENOTFOUND},
        {"SignatureDoesNotMatch", CF_EAUTH},
        {"InvalidAccessKeyId", CF_EAUTH},
        {"ExpiredToken", CF_EAUTH},
        {"InvalidToken", CF_EAUTH},
        {"TokenRefreshRequired", CF_EAUTH},
        {"AuthorizationHeaderMalformed", CF_EAUTH},
        {"RequestTimeTooSkewed", CF_EAUTH},
        {"AccessDenied", CF_EDENIED},
        {"AllAccessDisabled", CF_EDENIED},
        {"BucketAlreadyExists", CF_EEXISTS},
        {"BucketAlreadyOwnedByYou", CF_EEXISTS},
        {"BucketNotEmpty", CF_ENOTEMPTY},
        {"PreconditionFailed", CF_EPRECOND},
        {"InvalidRange", CF_ERANGE},
        {"BadDigest", CF_EDIGEST},
        {"InvalidDigest", CF_EDIGEST},
        {"XAmzContentSHA256Mismatch", CF_EDIGEST},
        {"EntityTooLarge", CF_ETOOBIG},
        {"NotImplemented", CF_ENOTSUP},
        {"SlowDown", CF_EAGAIN},
        {"ServiceUnavailable", CF_EAGAIN},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(code, table[i].code))
            return table[i].err;
    switch (status) {
    case 401: return CF_EAUTH;
    case 403: return CF_EDENIED;
    case 404: return CF_ENOTFOUND;
    case 409: return CF_EEXISTS;
    case 412: return CF_EPRECOND;
    case 416: return CF_ERANGE;
    case 429:
    case 503: return CF_EAGAIN;
    case 501: return CF_ENOTSUP;
    default: return status >= 500 ? CF_EIO : CF_EINVAL;
    }
}

int cf_s3c_fail_from_body(cf_s3c_xfer *x)
{
    s3_error e;
    parse_error(x, &e);
    if (!e.code[0]) /* HEAD answers carry no body */
        snprintf(e.code, sizeof e.code, "%s",
                 x->status == 404   ? "NotFound"
                 : x->status == 403 ? "Forbidden"
                                    : "");
    int rc = map_error(x->status, e.code);
    cf_err_set(&x->err, rc, "s3 %s '%s%s%s': %s%s%s (HTTP %ld)", x->method, x->bucket ? x->bucket : "",
               x->key ? "/" : "", x->key ? x->key : "", e.code[0] ? e.code : cf_strerror(rc),
               e.message[0] ? ": " : "", e.message, x->status);
    /* With the error, not only the client: a repository's call may have run on any client of
     * its pool, and the error is what reaches the caller. */
    x->err.answer.status = x->status;
    snprintf(x->err.answer.code, sizeof x->err.answer.code, "%s", e.code);
    return rc;
}

static int retryable(const cf_s3c_xfer *x, CURLcode res)
{
    if (x->user_abort)
        return 0;
    if (x->read && x->stream_off && !x->seek)
        return 0;
    switch (res) {
    case CURLE_OK:
        /* 501 NotImplemented and 505 will answer the same however often they are asked. */
        return (x->status >= 500 && x->status != 501 && x->status != 505) || x->status == 429;
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_FAIL_REWIND: /* begin_attempt rewinds, or says why it cannot */ return 1;
    case CURLE_ABORTED_BY_CALLBACK: return x->stalled;
    default: return 0;
    }
}

/* Full jitter: a uniform wait in [0, min(cap, base * 2^attempt)), so that many clients that
 * failed together do not come back together. */
static double backoff(cf_s3c *c, int attempt)
{
    double ceil = BACKOFF_BASE * (double)(1u << (attempt < 16 ? attempt - 1 : 15));
    if (ceil > BACKOFF_CAP)
        ceil = BACKOFF_CAP;
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return ceil * (double)(c->rng >> 11) / (double)(1ull << 53);
}

/* When x, which failed in a way worth retrying, should try again (monotonic seconds), or -1
 * with why (for the error) when it should not: no attempt or no retry budget left. */
static double next_try(cf_s3c_xfer *x, char *why, size_t whylen)
{
    cf_s3c *c = x->c;
    double now = cf_clock_mono(), budget = (double)c->cfg.retry_budget_ms / 1000.0;
    if (!c->failing_since)
        c->failing_since = now;
    if (x->attempt >= c->cfg.max_attempts) {
        snprintf(why, whylen, "after %d attempts", x->attempt);
        return -1;
    }
    /* A store that asks for longer than the whole budget is taken at its word. */
    if (x->retry_after > budget) {
        snprintf(why, whylen,
                 "after %d attempts: the store asked to wait %.0f s (Retry-After), longer than the "
                 "retry budget of %g s",
                 x->attempt, x->retry_after, budget);
        return -1;
    }
    double wait = backoff(c, x->attempt);
    if (x->retry_after > wait)
        wait = x->retry_after < CF_S3C_RETRY_AFTER_MAX_S ? x->retry_after : CF_S3C_RETRY_AFTER_MAX_S;
    if (now + wait - c->failing_since > budget) {
        snprintf(why, whylen, "after %d attempts: the retry budget of %g s is spent (failing for %.1f s)",
                 x->attempt, budget, now - c->failing_since);
        return -1;
    }
    return now + wait;
}

static void attempt_done(cf_s3c_xfer *x, CURLcode res)
{
    cf_s3c *c = x->c;
    long connects = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &connects);
    c->stats.connections += (uint64_t)connects;
    curl_multi_remove_handle(c->multi, x->easy);
    x->state = XF_IDLE;
    if (res == CURLE_OK && x->status >= 200 && x->status < 300) {
        c->failing_since = 0;
        finish(x, 0);
        return;
    }
    char why[200] = "";
    if (retryable(x, res)) {
        double at = next_try(x, why, sizeof why);
        if (at >= 0) {
            x->retry_at = at;
            x->attempt++;
            x->state = XF_WAITING;
            c->stats.retries++;
            return;
        }
    } else {
        if (res == CURLE_OK)
            c->failing_since = 0; /* an answer that is final: the store works */
        if (x->attempt > 1)
            snprintf(why, sizeof why, "after %d attempts", x->attempt);
    }
    int rc;
    if (res == CURLE_OK) {
        rc = cf_s3c_fail_from_body(x);
    } else if (x->stalled) {
        rc = cf_err_set(&x->err, CF_EIO, "s3 %s '%s%s%s': stalled: no byte moved for %g s", x->method,
                        x->bucket ? x->bucket : "", x->key ? "/" : "", x->key ? x->key : "",
                        (double)c->cfg.stall_timeout_ms / 1000.0);
    } else {
        rc = cf_err_set(&x->err, CF_EIO, "s3 %s '%s%s%s': %s%s%s%s", x->method, x->bucket ? x->bucket : "",
                        x->key ? "/" : "", x->key ? x->key : "",
                        x->user_abort ? "stopped by the caller" : curl_easy_strerror(res),
                        x->curl_msg[0] && !x->user_abort ? " (" : "", x->user_abort ? "" : x->curl_msg,
                        x->curl_msg[0] && !x->user_abort ? ")" : "");
    }
    if (why[0]) {
        char msg[sizeof x->err.msg];
        snprintf(msg, sizeof msg, "%s", x->err.msg); /* the message cannot format itself */
        cf_err_reword(&x->err, rc, "%.300s, %s", msg, why);
    }
    finish(x, rc);
}

int cf_s3c_pump(cf_s3c *c, cf_err *err)
{
    double now = cf_clock_mono(), wait = 1.0;
    int changed = 0;
    for (size_t i = 0; i < c->nactive; i++) {
        cf_s3c_xfer *x = c->active[i];
        if (x->state != XF_WAITING)
            continue;
        if (x->retry_at <= now) {
            if (begin_attempt(x)) {
                finish(x, x->err.code);
                changed = 1;
                i--; /* finish() moved another transfer into slot i */
            }
        } else if (x->retry_at - now < wait) {
            wait = x->retry_at - now;
        }
    }
    if (changed)
        return 0;
    int running = 0;
    if (curl_multi_perform(c->multi, &running) != CURLM_OK)
        return cf_err_set(err, CF_EINTERNAL, "s3: the HTTP engine failed");
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        cf_s3c_xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        attempt_done(x, m->data.result);
        changed = 1;
    }
    if (changed)
        return 0;
    int ms = (int)(wait * 1000);
    curl_multi_poll(c->multi, NULL, 0, ms > 0 ? ms : 1, NULL);
    return 0;
}

int cf_s3c_xfer_run(cf_s3c_xfer *x, cf_err *err)
{
    int rc = cf_s3c_xfer_start(x, err);
    if (rc)
        return rc;
    while (x->state != XF_DONE)
        if ((rc = cf_s3c_pump(x->c, err))) {
            cf_s3c_xfer_cancel(x);
            return rc;
        }
    if (x->rc && err)
        *err = x->err;
    return x->rc;
}
