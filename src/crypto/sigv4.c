/*
 * sigv4.c - AWS Signature Version 4, S3 flavour (see sigv4.h for the rules that differ from
 * the generic suite). Every step is a separate function so that each intermediate product can
 * be checked against AWS's published vectors.
 *
 * Character classes are spelled out in ASCII rather than taken from <ctype.h>: isalnum() follows
 * the locale, and a host application that calls setlocale() must not change what we sign.
 */
#include "crypto/sigv4.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/hash.h"

#define MAX_SKEW_SECONDS (15 * 60)

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_unreserved(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 9110 token characters: what a method or a header name may be made of. */
static int is_tchar(unsigned char c)
{
    return is_alnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* ---- Authorization header ---- */

/* CF_EINVAL for an empty field or one that does not fit: the caller names the field. */
static int copy_field(char *dst, size_t dstlen, const char *src, size_t n)
{
    if (n == 0 || n >= dstlen)
        return CF_EINVAL;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

/* Scope fields end up in the string to sign and in messages: printable, no spaces. */
static int printable_field(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* The parsers of the three fields below name the field as the request spelled it (name:
 * "Credential" in an Authorization header, "X-Amz-Credential" in a presigned URL). */

/* AKID/20130524/us-east-1/s3/aws4_request; the key id itself may not contain '/'. */
static int parse_credential(const char *v, size_t n, cf_sigv4_auth *out, const char *name, cf_err *err)
{
    const char *part[5];
    size_t len[5], np = 0, start = 0;
    int bad = 0;
    for (size_t i = 0; i <= n && !bad; i++) {
        if (i < n && v[i] != '/')
            continue;
        if (np == 5) {
            bad = 1;
            break;
        }
        part[np] = v + start;
        len[np++] = i - start;
        start = i + 1;
    }
    bad = bad || np != 5 || !printable_field(v, n) ||
          copy_field(out->access_key, sizeof out->access_key, part[0], len[0]) || len[1] != 8 ||
          copy_field(out->date, sizeof out->date, part[1], len[1]) ||
          copy_field(out->region, sizeof out->region, part[2], len[2]) ||
          copy_field(out->service, sizeof out->service, part[3], len[3]) || len[4] != 12 ||
          memcmp(part[4], "aws4_request", 12) != 0;
    for (int i = 0; i < 8 && !bad; i++)
        bad = !is_digit((unsigned char)out->date[i]);
    if (bad)
        return cf_err_set(err, CF_EINVAL,
                          "malformed %s: expected ACCESSKEY/YYYYMMDD/REGION/SERVICE/aws4_request", name);
    return 0;
}

static int parse_signed_headers(const char *v, size_t n, cf_sigv4_auth *out, const char *name, cf_err *err)
{
    size_t names = 1;
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == ';') {
            /* Empty names (";;", a leading or trailing ';') would sign nothing. */
            bad = i == 0 || i + 1 == n || v[i - 1] == ';';
            names++;
        } else {
            bad = !is_tchar(c) || (c >= 'A' && c <= 'Z');
        }
    }
    if (bad || names > CF_SIGV4_MAX_SIGNED_HEADERS ||
        copy_field(out->signed_headers, sizeof out->signed_headers, v, n) != 0)
        return cf_err_set(err, CF_EINVAL,
                          "malformed %s: expected at most %d lowercase header names joined by ';'", name,
                          CF_SIGV4_MAX_SIGNED_HEADERS);
    return 0;
}

static int parse_signature(const char *v, size_t n, cf_sigv4_auth *out, const char *name, cf_err *err)
{
    int bad = n != 64;
    for (size_t i = 0; i < 64 && !bad; i++) {
        char c = v[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        else if (!is_digit((unsigned char)c) && !(c >= 'a' && c <= 'f'))
            bad = 1;
        if (!bad)
            out->signature[i] = c;
    }
    if (bad)
        return cf_err_set(err, CF_EINVAL, "%s must be 64 hex digits", name);
    out->signature[64] = '\0';
    return 0;
}

static void trim(const char **s, size_t *n)
{
    while (*n && is_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_space((*s)[*n - 1]))
        (*n)--;
}

enum { HAVE_CRED = 1, HAVE_SH = 2, HAVE_SIG = 4 };

/* An unknown component's name is echoed only when it is a plain word, so that whatever the
 * client put there (a signature, a secret pasted by mistake) does not come back in a message. */
static int unknown_component(const char *name, size_t n, cf_err *err)
{
    int word = n > 0 && n <= 32;
    for (size_t i = 0; word && i < n; i++)
        word = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z');
    if (word)
        return cf_err_set(err, CF_EINVAL, "unknown authorization component '%.*s'", (int)n, name);
    return cf_err_set(err, CF_EINVAL, "authorization has a component that is not NAME=VALUE");
}

static int parse_component(const char *p, size_t len, cf_sigv4_auth *out, int *seen, cf_err *err)
{
    const char *eq = memchr(p, '=', len);
    if (!eq)
        return cf_err_set(err, CF_EINVAL, "authorization component without '='");
    const char *name = p, *v = eq + 1;
    size_t nlen = (size_t)(eq - p), vlen = len - nlen - 1;
    trim(&name, &nlen);
    trim(&v, &vlen);
    int which = 0, rc = 0;
    if (nlen == 10 && memcmp(name, "Credential", 10) == 0) {
        which = HAVE_CRED;
        rc = parse_credential(v, vlen, out, "Credential", err);
    } else if (nlen == 13 && memcmp(name, "SignedHeaders", 13) == 0) {
        which = HAVE_SH;
        rc = parse_signed_headers(v, vlen, out, "SignedHeaders", err);
    } else if (nlen == 9 && memcmp(name, "Signature", 9) == 0) {
        which = HAVE_SIG;
        rc = parse_signature(v, vlen, out, "Signature", err);
    } else {
        return unknown_component(name, nlen, err);
    }
    /* A component given twice is reported as such, whatever its value. */
    if (*seen & which)
        return cf_err_set(err, CF_EINVAL, "authorization has '%.*s' twice", (int)nlen, name);
    *seen |= which;
    return rc;
}

int cf_sigv4_parse_auth(const char *header, cf_sigv4_auth *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    size_t alg = strlen(CF_SIGV4_ALGORITHM);
    if (!header || strncmp(header, CF_SIGV4_ALGORITHM, alg) != 0 || !is_space(header[alg]))
        return cf_err_set(err, CF_EINVAL, "authorization does not start with '%s '", CF_SIGV4_ALGORITHM);
    int seen = 0, rc = 0;
    for (const char *p = header + alg; *p && !rc;) {
        if (is_space(*p) || *p == ',') {
            p++;
            continue;
        }
        size_t len = strcspn(p, ",");
        rc = parse_component(p, len, out, &seen, err);
        p += len;
    }
    if (!rc && !(seen & HAVE_CRED))
        rc = cf_err_set(err, CF_EINVAL, "authorization has no Credential");
    if (!rc && !(seen & HAVE_SH))
        rc = cf_err_set(err, CF_EINVAL, "authorization has no SignedHeaders");
    if (!rc && !(seen & HAVE_SIG))
        rc = cf_err_set(err, CF_EINVAL, "authorization has no Signature");
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- Canonical request ---- */

int cf_sigv4_uri_encode(cf_buf *out, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n > ((size_t)-1 - 1) / 3)
        return CF_ETOOBIG;
    /* Reserve the worst case once; the loop then writes without further checks. */
    int rc = cf_buf_reserve(out, n * 3);
    if (rc)
        return rc;
    char *o = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = '\0';
    return 0;
}

typedef struct enc_param {
    size_t name_off, value_off; /* into the arena while it may still move */
    const char *name, *value;
} enc_param;

static int cmp_param(const void *a, const void *b)
{
    const enc_param *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static int encode_param(cf_buf *arena, const cf_sigv4_param *in, enc_param *p)
{
    const char *name = in->name ? in->name : "", *value = in->value ? in->value : "";
    p->name_off = arena->len;
    int rc = cf_sigv4_uri_encode(arena, name, strlen(name), 0);
    if (!rc)
        rc = cf_buf_putc(arena, '\0');
    p->value_off = arena->len;
    if (!rc)
        rc = cf_sigv4_uri_encode(arena, value, strlen(value), 0);
    if (!rc)
        rc = cf_buf_putc(arena, '\0');
    return rc;
}

/* Sorted by encoded name, then encoded value (byte order), each "name=value", joined by '&'.
 * Parameters named skip (when non-NULL) are left out: a presigned URL's X-Amz-Signature cannot
 * sign itself. */
static int canonical_query(const cf_sigv4_request *req, const char *skip, cf_buf *out)
{
    size_t total = req->nparams, n = 0;
    if (total == 0)
        return 0;
    if (total > ((size_t)-1) / sizeof(enc_param))
        return CF_ETOOBIG;
    enc_param *p = malloc(total * sizeof *p);
    cf_buf arena;
    cf_buf_init(&arena, out->max); /* no encoded query can be larger than the whole output */
    int rc = p ? 0 : CF_ENOMEM;
    for (size_t i = 0; i < total && !rc; i++) {
        const char *name = req->params[i].name;
        if (skip && name && strcmp(name, skip) == 0)
            continue;
        rc = encode_param(&arena, &req->params[i], &p[n++]);
    }
    if (!rc) {
        for (size_t i = 0; i < n; i++) {
            p[i].name = arena.data + p[i].name_off;
            p[i].value = arena.data + p[i].value_off;
        }
        qsort(p, n, sizeof *p, cmp_param);
        for (size_t i = 0; i < n && !rc; i++)
            rc = cf_buf_printf(out, "%s%s=%s", i ? "&" : "", p[i].name, p[i].value);
    }
    free(p);
    cf_buf_cleanup(&arena);
    return rc;
}

/* Trimmed, with every run of whitespace collapsed to one space (AWS collapses inside quotes
 * too: get-header-value-trim). CR and LF count as whitespace, so a value can never add a line
 * to the canonical request. */
static int canonical_value(cf_buf *out, const char *v)
{
    size_t len = strlen(v);
    int rc = cf_buf_reserve(out, len);
    if (rc)
        return rc;
    char *o = out->data + out->len;
    int pending_space = 0;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            pending_space = o != out->data + out->len;
            continue;
        }
        if (pending_space)
            *o++ = ' ';
        pending_space = 0;
        *o++ = c;
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = '\0';
    return 0;
}

/* One "name:value\n" line per signed header, in the order the client listed them. */
static int canonical_headers(const cf_sigv4_request *req, const char *signed_headers, cf_buf *out,
                             cf_err *err)
{
    int rc = 0, count = 0;
    /* Each name is followed by ';' or the end; "", ";x", "x;;y" and "x;" all hold an empty name. */
    for (const char *p = signed_headers; !rc; p++) {
        size_t n = strcspn(p, ";");
        char name[128];
        if (n == 0 || n >= sizeof name)
            return cf_err_set(err, CF_EINVAL, "signed header name is empty or too long");
        if (++count > CF_SIGV4_MAX_SIGNED_HEADERS)
            return cf_err_set(err, CF_EINVAL, "more than %d signed headers", CF_SIGV4_MAX_SIGNED_HEADERS);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            if (!is_tchar(c) || (c >= 'A' && c <= 'Z'))
                return cf_err_set(err, CF_EINVAL, "signed header names must be lowercase tokens");
            name[i] = (char)c;
        }
        name[n] = '\0';
        const char *v = req->header(req->header_ctx, name);
        if (!v)
            return cf_err_set(err, CF_EINVAL, "signed header '%s' is not in the request", name);
        rc = cf_buf_printf(out, "%s:", name);
        if (!rc)
            rc = canonical_value(out, v);
        if (!rc)
            rc = cf_buf_putc(out, '\n');
        p += n;
        if (!*p)
            break;
    }
    if (rc)
        return cf_err_set(err, rc, "canonical request is too large");
    return 0;
}

static int valid_method(const char *m)
{
    if (!m || !*m)
        return 0;
    for (; *m; m++)
        if (!is_tchar((unsigned char)*m))
            return 0;
    return 1;
}

static int valid_payload_hash(const char *h)
{
    return h && *h && printable_field(h, strlen(h));
}

static int build_canonical_request(const cf_sigv4_request *req, const char *skip_param,
                                   const char *signed_headers, cf_buf *out, cf_err *err)
{
    if (!valid_method(req->method))
        return cf_err_set(err, CF_EINVAL, "request method is not an HTTP token");
    if (!valid_payload_hash(req->payload_hash))
        return cf_err_set(err, CF_EINVAL, "payload hash is empty or not printable");
    const char *path = req->path && *req->path ? req->path : "/";
    int rc = cf_buf_printf(out, "%s\n", req->method);
    if (!rc)
        rc = cf_sigv4_uri_encode(out, path, strlen(path), 1);
    if (!rc)
        rc = cf_buf_putc(out, '\n');
    if (!rc)
        rc = canonical_query(req, skip_param, out);
    if (!rc)
        rc = cf_buf_putc(out, '\n');
    if (rc)
        return cf_err_set(err, rc, "canonical request is too large");
    rc = canonical_headers(req, signed_headers, out, err);
    if (rc)
        return rc;
    if (cf_buf_printf(out, "\n%s\n%s", signed_headers, req->payload_hash) != 0)
        return cf_err_set(err, CF_ETOOBIG, "canonical request is too large");
    return 0;
}

static int canonical_request_skipping(const cf_sigv4_request *req, const char *skip_param,
                                      const char *signed_headers, cf_buf *out, cf_err *err)
{
    size_t start = out->len;
    int rc = build_canonical_request(req, skip_param, signed_headers, out, err);
    /* A failure leaves out as it was, never with half a canonical request appended. */
    if (rc && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}

int cf_sigv4_canonical_request(const cf_sigv4_request *req, const char *signed_headers, cf_buf *out,
                               cf_err *err)
{
    return canonical_request_skipping(req, NULL, signed_headers, out, err);
}

/* ---- Signing ---- */

int cf_sigv4_string_to_sign(const char *amz_date, const char *date, const char *region, const char *service,
                            const char *canonical_request, size_t len, cf_buf *out)
{
    unsigned char d[CF_SHA256_LEN];
    char hex[2 * CF_SHA256_LEN + 1];
    cf_sha256(canonical_request, len, d);
    cf_hex_encode(d, sizeof d, hex);
    return cf_buf_printf(out, "%s\n%s\n%s/%s/%s/aws4_request\n%s", CF_SIGV4_ALGORITHM, amz_date, date, region,
                         service, hex);
}

/* HMAC(K, m) with K = "AWS4" + secret. Short keys are joined on the stack; a key longer than
 * HMAC's block is replaced by its SHA-256 anyway (RFC 2104), so a long secret is hashed in two
 * pieces instead of being copied. 0 or CF_ENOMEM. */
static int hmac_aws4_secret(const char *secret, const char *msg, unsigned char out[32])
{
    size_t slen = strlen(secret);
    unsigned char k[64];
    size_t klen;
    if (slen <= sizeof k - 4) {
        memcpy(k, "AWS4", 4);
        memcpy(k + 4, secret, slen);
        klen = 4 + slen;
    } else {
        cf_hash *h = cf_hash_new(CF_HASH_SHA256);
        if (!h)
            return CF_ENOMEM;
        cf_hash_update(h, "AWS4", 4);
        cf_hash_update(h, secret, slen);
        cf_hash_final(h, k);
        cf_hash_free(h);
        klen = CF_SHA256_LEN;
    }
    int rc = cf_hmac_sha256(k, klen, msg, strlen(msg), out);
    OPENSSL_cleanse(k, sizeof k);
    return rc;
}

int cf_sigv4_signing_key(const char *secret, const char *date, const char *region, const char *service,
                         unsigned char key[32])
{
    unsigned char a[32], b[32];
    int rc = hmac_aws4_secret(secret, date, a);
    if (!rc)
        rc = cf_hmac_sha256(a, 32, region, strlen(region), b);
    if (!rc)
        rc = cf_hmac_sha256(b, 32, service, strlen(service), a);
    if (!rc)
        rc = cf_hmac_sha256(a, 32, "aws4_request", 12, key);
    OPENSSL_cleanse(a, sizeof a);
    OPENSSL_cleanse(b, sizeof b);
    if (rc)
        OPENSSL_cleanse(key, 32); /* half-derived bytes are no key */
    return rc;
}

/*
 * Derived keys change once a day per access key, yet deriving one costs four HMACs, most of a
 * small request's signature check: the owner keeps the last few. Entries are found by a digest
 * of the secret, so the cache never holds a secret itself.
 */
#define KEY_CACHE_SIZE 16

typedef struct key_cache_entry {
    unsigned char secret_digest[32];
    char scope[112]; /* date/region/service */
    unsigned char key[32];
    int used;
} key_cache_entry;

struct cf_sigv4_key_cache {
    pthread_mutex_t mu;
    key_cache_entry entries[KEY_CACHE_SIZE];
    unsigned next; /* the entry the next miss replaces */
};

int cf_sigv4_key_cache_new(cf_sigv4_key_cache **out)
{
    cf_sigv4_key_cache *c = calloc(1, sizeof *c);
    if (!c)
        return CF_ENOMEM;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return CF_ENOMEM;
    }
    *out = c;
    return 0;
}

void cf_sigv4_key_cache_free(cf_sigv4_key_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    OPENSSL_cleanse(c->entries, sizeof c->entries);
    free(c);
}

int cf_sigv4_cached_signing_key(cf_sigv4_key_cache *c, const char *secret, const char *date,
                                const char *region, const char *service, unsigned char key[32])
{
    char scope[112];
    unsigned char digest[32];
    int n = snprintf(scope, sizeof scope, "%s/%s/%s", date, region, service);
    if (!c || n < 0 || (size_t)n >= sizeof scope)
        return cf_sigv4_signing_key(secret, date, region, service, key);
    cf_sha256(secret, strlen(secret), digest);
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < KEY_CACHE_SIZE; i++) {
        key_cache_entry *e = &c->entries[i];
        if (e->used && strcmp(e->scope, scope) == 0 && memcmp(e->secret_digest, digest, 32) == 0) {
            memcpy(key, e->key, 32);
            pthread_mutex_unlock(&c->mu);
            return 0;
        }
    }
    pthread_mutex_unlock(&c->mu);
    int rc = cf_sigv4_signing_key(secret, date, region, service, key);
    if (rc)
        return rc;
    pthread_mutex_lock(&c->mu);
    key_cache_entry *e = &c->entries[c->next++ % KEY_CACHE_SIZE];
    memcpy(e->secret_digest, digest, 32);
    memcpy(e->scope, scope, (size_t)n + 1);
    memcpy(e->key, key, 32);
    e->used = 1;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int cf_sigv4_sign(const unsigned char key[32], const char *string_to_sign, size_t len, char hex[65])
{
    unsigned char d[32];
    int rc = cf_hmac_sha256(key, 32, string_to_sign, len, d);
    cf_hex_encode(d, sizeof d, hex);
    return rc;
}

/* ---- Dates ---- */

static int two(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

int cf_sigv4_parse_amz_date(const char *s, int64_t *out)
{
    if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return CF_EINVAL;
    for (int i = 0; i < 15; i++)
        if (i != 8 && !is_digit((unsigned char)s[i]))
            return CF_EINVAL;
    struct tm tm = {0};
    tm.tm_year = two(s) * 100 + two(s + 2) - 1900;
    tm.tm_mon = two(s + 4) - 1;
    tm.tm_mday = two(s + 6);
    tm.tm_hour = two(s + 9);
    tm.tm_min = two(s + 11);
    tm.tm_sec = two(s + 13);
    time_t t = timegm(&tm);
    /* timegm normalises 20130230 into March; only a date that formats back to itself is real. */
    char again[17];
    cf_sigv4_format_amz_date((int64_t)t, again);
    if (memcmp(again, s, 16) != 0)
        return CF_EINVAL;
    *out = (int64_t)t;
    return 0;
}

void cf_sigv4_format_amz_date(int64_t t, char out[17])
{
    time_t tt = (time_t)t;
    struct tm tm;
    /* Outside 0000..9999 the format would not fit; the epoch is a harmless stand-in that no
     * parse of a real request produces for such a time. */
    if (!gmtime_r(&tt, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
        memcpy(out, "19700101T000000Z", 17);
        return;
    }
    /* strftime: the compiler cannot bound snprintf's %d widths for struct tm fields. */
    if (strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        memcpy(out, "19700101T000000Z", 17);
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 IMF-fixdate), rewritten as YYYYMMDDTHHMMSSZ. */
static int http_date_to_amz(const char *s, char iso[17])
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || strcmp(s + 25, " GMT") != 0)
        return CF_EINVAL;
    int mon = -1;
    for (int i = 0; i < 12 && mon < 0; i++)
        if (memcmp(months + 3 * i, s + 8, 3) == 0)
            mon = i + 1;
    if (mon < 0)
        return CF_EINVAL;
    memcpy(iso, s + 12, 4);
    iso[4] = (char)('0' + mon / 10);
    iso[5] = (char)('0' + mon % 10);
    memcpy(iso + 6, s + 5, 2);
    iso[8] = 'T';
    memcpy(iso + 9, s + 17, 2);
    memcpy(iso + 11, s + 20, 2);
    memcpy(iso + 13, s + 23, 2);
    iso[15] = 'Z';
    iso[16] = '\0';
    return 0;
}

/* The request time as signed: x-amz-date as is, or a Date header converted, because the
 * string to sign always carries the ISO 8601 basic form. */
static int request_time(const char *s, int64_t *t, char iso[17])
{
    if (!s)
        return CF_EINVAL;
    if (strlen(s) == 16) {
        memcpy(iso, s, 17);
    } else if (http_date_to_amz(s, iso) != 0) {
        return CF_EINVAL;
    }
    return cf_sigv4_parse_amz_date(iso, t);
}

/* ---- Verification ---- */

static int signs_header(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ";");
        if (len == n && memcmp(p, name, n) == 0)
            return 1;
        p += len;
        if (*p == ';')
            p++;
    }
    return 0;
}

/* ---- Headers that must be signed ---- */

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int prefix_ci(const char *s, const char *lower_prefix)
{
    for (; *lower_prefix; s++, lower_prefix++)
        if (ascii_lower(*s) != *lower_prefix)
            return 0;
    return 1;
}

static int equal_ci(const char *s, const char *lower)
{
    return prefix_ci(s, lower) && s[strlen(lower)] == '\0';
}

int cf_sigv4_header_must_be_signed(const char *name)
{
    return name && prefix_ci(name, "x-amz-") && !equal_ci(name, "x-amz-content-sha256");
}

/* item appears in the ", "-joined list */
static int listed(const char *list, size_t len, const char *item, size_t n)
{
    for (size_t i = 0; i + n <= len; i++) {
        if ((i == 0 || (i >= 2 && list[i - 2] == ',')) && memcmp(list + i, item, n) == 0 &&
            (i + n == len || list[i + n] == ','))
            return 1;
    }
    return 0;
}

typedef struct unsigned_scan {
    const char *signed_headers;
    cf_buf *out;
    int count;
} unsigned_scan;

static int note_if_unsigned(void *arg, const char *name)
{
    unsigned_scan *s = arg;
    if (!cf_sigv4_header_must_be_signed(name))
        return 0;
    /* Longer names cannot be in a valid SignedHeaders list (canonical_headers refuses them). */
    char lower[128];
    size_t n = strlen(name);
    if (n >= sizeof lower)
        n = sizeof lower - 1;
    for (size_t i = 0; i < n; i++)
        lower[i] = ascii_lower(name[i]);
    lower[n] = '\0';
    if (strlen(name) < sizeof lower && signs_header(s->signed_headers, lower))
        return 0;
    s->count++;
    if (s->out && !(s->out->data && listed(s->out->data, s->out->len, lower, n))) {
        size_t start = s->out->len;
        /* A list cut short still names whole headers. */
        if (cf_buf_printf(s->out, "%s%s", start ? ", " : "", lower) != 0 && s->out->data) {
            s->out->len = start;
            s->out->data[start] = '\0';
        }
    }
    return 0;
}

int cf_sigv4_unsigned_headers(const cf_sigv4_request *req, const char *signed_headers, cf_buf *out)
{
    if (!req->each_header)
        return CF_EINVAL;
    unsigned_scan s = {signed_headers ? signed_headers : "", out, 0};
    req->each_header(req->header_ctx, note_if_unsigned, &s);
    return s.count;
}

static int refuse_unsigned_headers(const cf_sigv4_request *req, const char *signed_headers, cf_err *err)
{
    int n = cf_sigv4_unsigned_headers(req, signed_headers, NULL);
    if (n < 0)
        return cf_err_set(err, CF_EINVAL,
                          "the request's headers cannot be listed, so unsigned ones cannot be found");
    if (n > 0)
        return cf_err_set(err, CF_EDENIED, CF_SIGV4_UNSIGNED_HEADERS_MESSAGE);
    return 0;
}

/* What both kinds of authentication require of the credential scope and signed headers. */
static int check_service_and_host(const cf_sigv4_auth *auth, cf_err *err)
{
    if (strcmp(auth->service, "s3") != 0)
        return cf_err_set(err, CF_EINVAL, "credential scope service is '%.31s', expected 's3'",
                          auth->service);
    if (!signs_header(auth->signed_headers, "host"))
        return cf_err_set(err, CF_EINVAL, "the host header must be signed");
    return 0;
}

static int check_scope(const cf_sigv4_auth *auth, const char *amz_date, int64_t now, int64_t *t, char iso[17],
                       cf_err *err)
{
    int rc = check_service_and_host(auth, err);
    if (rc)
        return rc;
    if (!amz_date)
        return cf_err_set(err, CF_EINVAL, "the request has no x-amz-date (or Date) header");
    if (request_time(amz_date, t, iso) != 0)
        return cf_err_set(err, CF_EINVAL, "x-amz-date '%.40s' is not YYYYMMDDTHHMMSSZ", amz_date);
    if (memcmp(iso, auth->date, 8) != 0)
        return cf_err_set(err, CF_EINVAL, "credential scope date '%.8s' does not match x-amz-date '%s'",
                          auth->date, iso);
    if (*t > now + MAX_SKEW_SECONDS || *t < now - MAX_SKEW_SECONDS)
        return cf_err_set(err, CF_EPRECOND,
                          "request time %s differs from the server's clock by more than 15 minutes", iso);
    return 0;
}

/* Canonical request, string to sign and signature for iso (the request time as signed), then a
 * constant-time comparison with the signature the client sent. */
static int compute_and_compare(cf_sigv4_key_cache *keys, const cf_sigv4_request *req, const char *skip_param,
                               const cf_sigv4_auth *auth, const char *secret, const char *iso,
                               unsigned char *signing_key_out, cf_err *err)
{
    cf_buf creq, sts;
    unsigned char key[32];
    char sig[65];
    cf_buf_init(&creq, 1 << 20);
    cf_buf_init(&sts, 4096);
    int rc = canonical_request_skipping(req, skip_param, auth->signed_headers, &creq, err);
    if (!rc &&
        cf_sigv4_string_to_sign(iso, auth->date, auth->region, auth->service, creq.data, creq.len, &sts) != 0)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory building the string to sign");
    if (!rc &&
        (cf_sigv4_cached_signing_key(keys, secret, auth->date, auth->region, auth->service, key) != 0 ||
         cf_sigv4_sign(key, sts.data, sts.len, sig) != 0))
        rc = cf_err_set(err, CF_ENOMEM, "out of memory computing the signature");
    else if (!rc) {
        if (!cf_consttime_eq(sig, auth->signature, 64))
            rc = cf_err_set(
                err, CF_EAUTH,
                "the request signature does not match; check the secret key and the signing method");
        else if (signing_key_out)
            memcpy(signing_key_out, key, 32);
    }
    OPENSSL_cleanse(key, sizeof key);
    cf_buf_cleanup(&creq);
    cf_buf_cleanup(&sts);
    return rc;
}

int cf_sigv4_verify(cf_sigv4_key_cache *keys, const cf_sigv4_request *req, const cf_sigv4_auth *auth,
                    const char *secret, const char *amz_date, int64_t now, unsigned char *signing_key_out,
                    cf_err *err)
{
    int64_t t;
    char iso[17];
    if (!req->each_header)
        return refuse_unsigned_headers(req, auth->signed_headers, err);
    int rc = check_scope(auth, amz_date, now, &t, iso, err);
    if (!rc)
        rc = compute_and_compare(keys, req, NULL, auth, secret, iso, signing_key_out, err);
    if (rc)
        return rc;
    /* Only a request that proves its signer learns which headers it should have signed. */
    rc = refuse_unsigned_headers(req, auth->signed_headers, err);
    if (rc && signing_key_out)
        OPENSSL_cleanse(signing_key_out, 32); /* a refused request hands out no key */
    return rc;
}

/* ---- Query-string authentication (presigned URLs) ---- */

enum { Q_ALGORITHM, Q_CREDENTIAL, Q_DATE, Q_EXPIRES, Q_SIGNED_HEADERS, Q_SIGNATURE, Q_COUNT };

static const char *const query_names[Q_COUNT] = {
    "X-Amz-Algorithm", "X-Amz-Credential",    "X-Amz-Date",
    "X-Amz-Expires",   "X-Amz-SignedHeaders", "X-Amz-Signature",
};

static int query_name_index(const char *name)
{
    for (int q = 0; name && q < Q_COUNT; q++)
        if (strcmp(name, query_names[q]) == 0)
            return q;
    return -1;
}

int cf_sigv4_has_query_auth(const cf_sigv4_param *params, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int q = query_name_index(params[i].name);
        if (q == Q_ALGORITHM || q == Q_CREDENTIAL || q == Q_SIGNATURE)
            return 1;
    }
    return 0;
}

/* Digits only: "+60", " 60" and "6e1" are not numbers of seconds a signer would write. */
static int parse_expires(const char *v, int64_t *out, cf_err *err)
{
    size_t n = strlen(v);
    if (n == 0)
        return cf_err_set(err, CF_EINVAL, "X-Amz-Expires should be a number of seconds");
    if (v[0] == '-')
        return cf_err_set(err, CF_EINVAL, "X-Amz-Expires must be non-negative");
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)v[i]))
            return cf_err_set(err, CF_EINVAL, "X-Amz-Expires should be a number of seconds");
        /* Past the limit there is nothing more to learn, and no overflow to worry about. */
        if (x <= CF_SIGV4_MAX_EXPIRES)
            x = x * 10 + (v[i] - '0');
    }
    if (x > CF_SIGV4_MAX_EXPIRES)
        return cf_err_set(err, CF_EINVAL, "X-Amz-Expires must be less than a week (in seconds) that is %d",
                          CF_SIGV4_MAX_EXPIRES);
    if (x < 1)
        return cf_err_set(err, CF_EINVAL, "X-Amz-Expires must be at least 1 second");
    *out = x;
    return 0;
}

static int parse_query_fields(const char *const v[Q_COUNT], cf_sigv4_query_auth *out, cf_err *err)
{
    cf_sigv4_auth *a = &out->auth;
    if (strcmp(v[Q_ALGORITHM], CF_SIGV4_ALGORITHM) != 0)
        return cf_err_set(err, CF_EINVAL, "X-Amz-Algorithm only supports '%s'", CF_SIGV4_ALGORITHM);
    int rc = parse_credential(v[Q_CREDENTIAL], strlen(v[Q_CREDENTIAL]), a, query_names[Q_CREDENTIAL], err);
    if (!rc)
        rc = parse_signed_headers(v[Q_SIGNED_HEADERS], strlen(v[Q_SIGNED_HEADERS]), a,
                                  query_names[Q_SIGNED_HEADERS], err);
    if (!rc)
        rc = parse_signature(v[Q_SIGNATURE], strlen(v[Q_SIGNATURE]), a, query_names[Q_SIGNATURE], err);
    if (rc)
        return rc;
    /* Only the ISO 8601 basic form: a URL has no Date header to fall back on. */
    if (cf_sigv4_parse_amz_date(v[Q_DATE], &out->time) != 0)
        return cf_err_set(err, CF_EINVAL, "X-Amz-Date must be YYYYMMDDTHHMMSSZ");
    memcpy(out->amz_date, v[Q_DATE], 17);
    if (memcmp(out->amz_date, a->date, 8) != 0)
        return cf_err_set(err, CF_EINVAL,
                          "invalid credential date '%.8s': it is not the date of X-Amz-Date '%s'", a->date,
                          out->amz_date);
    return parse_expires(v[Q_EXPIRES], &out->expires, err);
}

int cf_sigv4_parse_query_auth(const cf_sigv4_param *params, size_t n, cf_sigv4_query_auth *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    const char *v[Q_COUNT] = {0};
    for (size_t i = 0; i < n; i++) {
        int q = query_name_index(params[i].name);
        if (q < 0)
            continue;
        /* Two values would leave it to chance which one was signed and which one is checked. */
        if (v[q])
            return cf_err_set(err, CF_EINVAL, "%s appears more than once", query_names[q]);
        v[q] = params[i].value ? params[i].value : "";
    }
    for (int q = 0; q < Q_COUNT; q++)
        if (!v[q])
            return cf_err_set(
                err, CF_EINVAL,
                "query-string authentication requires the X-Amz-Algorithm, X-Amz-Credential, "
                "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders and X-Amz-Expires parameters; "
                "%s is missing",
                query_names[q]);
    int rc = parse_query_fields(v, out, err);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

int cf_sigv4_verify_query(cf_sigv4_key_cache *keys, const cf_sigv4_request *req, const cf_sigv4_query_auth *q,
                          const char *secret, int64_t now, cf_err *err)
{
    if (!req->each_header)
        return refuse_unsigned_headers(req, q->auth.signed_headers, err);
    int rc = check_service_and_host(&q->auth, err);
    if (rc)
        return rc;
    /* A URL may be used long after it was signed, but never before: the signer's clock may be
     * ahead of ours by the same 15 minutes a header-signed request is allowed. */
    if (q->time > now + MAX_SKEW_SECONDS)
        return cf_err_set(err, CF_EPRECOND,
                          "request is not valid yet: X-Amz-Date %s is more than 15 minutes ahead of the "
                          "server's clock",
                          q->amz_date);
    if (now - q->time > q->expires)
        return cf_err_set(err, CF_EPRECOND, "request has expired: signed at %s, valid for %lld seconds",
                          q->amz_date, (long long)q->expires);
    cf_sigv4_request r = *req;
    r.payload_hash = CF_SIGV4_UNSIGNED_PAYLOAD;
    rc = compute_and_compare(keys, &r, query_names[Q_SIGNATURE], &q->auth, secret, q->amz_date, NULL, err);
    return rc ? rc : refuse_unsigned_headers(req, q->auth.signed_headers, err);
}

int cf_sigv4_explain_mismatch(const cf_sigv4_request *req, const cf_sigv4_auth *auth, const char *amz_date,
                              int presigned, cf_buf *canonical_request, cf_buf *string_to_sign, cf_err *err)
{
    int64_t t;
    char iso[17];
    if (request_time(amz_date, &t, iso) != 0)
        return cf_err_set(err, CF_EINVAL, "the request time is not valid");
    cf_sigv4_request r = *req;
    if (presigned)
        r.payload_hash = CF_SIGV4_UNSIGNED_PAYLOAD;
    size_t start = canonical_request->len;
    int rc = canonical_request_skipping(&r, presigned ? query_names[Q_SIGNATURE] : NULL, auth->signed_headers,
                                        canonical_request, err);
    if (rc)
        return rc;
    if (cf_sigv4_string_to_sign(iso, auth->date, auth->region, auth->service, canonical_request->data + start,
                                canonical_request->len - start, string_to_sign) != 0)
        return cf_err_set(err, CF_ETOOBIG, "the string to sign is too large");
    return 0;
}

static const char *presign_host(void *ctx, const char *name)
{
    return strcmp(name, "host") == 0 ? ctx : NULL;
}

static int check_presign_opts(const cf_sigv4_presign_opts *o, cf_err *err)
{
    if (!valid_method(o->method))
        return cf_err_set(err, CF_EINVAL, "method is not an HTTP token");
    if (!o->host || !*o->host || !printable_field(o->host, strlen(o->host)))
        return cf_err_set(err, CF_EINVAL, "host is empty or not printable");
    if (!o->path || o->path[0] != '/')
        return cf_err_set(err, CF_EINVAL, "path must start with '/'");
    /* These end up in X-Amz-Credential, whose parts are separated by '/'. */
    size_t ak = o->access_key ? strlen(o->access_key) : 0, rl = o->region ? strlen(o->region) : 0;
    if (ak == 0 || ak > 128 || !printable_field(o->access_key, ak) || strchr(o->access_key, '/'))
        return cf_err_set(err, CF_EINVAL, "access key must be 1 to 128 printable characters without '/'");
    if (rl == 0 || rl > 63 || !printable_field(o->region, rl) || strchr(o->region, '/'))
        return cf_err_set(err, CF_EINVAL, "region must be 1 to 63 printable characters without '/'");
    if (!o->secret)
        return cf_err_set(err, CF_EINVAL, "no secret key");
    if (o->expires < 1 || o->expires > CF_SIGV4_MAX_EXPIRES)
        return cf_err_set(err, CF_EINVAL, "expiry must be 1 to %d seconds", CF_SIGV4_MAX_EXPIRES);
    for (size_t i = 0; i < o->nparams; i++)
        if (query_name_index(o->params[i].name) >= 0)
            return cf_err_set(err, CF_EINVAL, "extra parameter '%s' is one the signature sets itself",
                              o->params[i].name);
    return 0;
}

static int build_presigned(const cf_sigv4_presign_opts *o, cf_buf *out, cf_err *err)
{
    int rc = check_presign_opts(o, err);
    if (rc)
        return rc;
    char iso[17], date[9], cred[256], expires[16];
    cf_sigv4_format_amz_date(o->now, iso);
    memcpy(date, iso, 8);
    date[8] = '\0';
    snprintf(cred, sizeof cred, "%s/%s/%s/s3/aws4_request", o->access_key, date, o->region);
    snprintf(expires, sizeof expires, "%lld", (long long)o->expires);

    size_t n = o->nparams + 5;
    cf_sigv4_param *params = malloc(n * sizeof *params);
    if (!params)
        return cf_err_set(err, CF_ENOMEM, "out of memory presigning a URL");
    params[0] = (cf_sigv4_param){query_names[Q_ALGORITHM], CF_SIGV4_ALGORITHM};
    params[1] = (cf_sigv4_param){query_names[Q_CREDENTIAL], cred};
    params[2] = (cf_sigv4_param){query_names[Q_DATE], iso};
    params[3] = (cf_sigv4_param){query_names[Q_EXPIRES], expires};
    params[4] = (cf_sigv4_param){query_names[Q_SIGNED_HEADERS], "host"};
    if (o->nparams)
        memcpy(params + 5, o->params, o->nparams * sizeof *params);
    cf_sigv4_request req = {
        o->method, o->path, params, n, presign_host, (void *)o->host, CF_SIGV4_UNSIGNED_PAYLOAD, NULL};

    cf_buf creq, sts;
    cf_buf_init(&creq, 1 << 20);
    cf_buf_init(&sts, 4096);
    unsigned char key[32];
    char sig[65];
    rc = cf_sigv4_canonical_request(&req, "host", &creq, err);
    if (!rc && cf_sigv4_string_to_sign(iso, date, o->region, "s3", creq.data, creq.len, &sts) != 0)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory building the string to sign");
    if (!rc && (cf_sigv4_cached_signing_key(o->keys, o->secret, date, o->region, "s3", key) != 0 ||
                cf_sigv4_sign(key, sts.data, sts.len, sig) != 0))
        rc = cf_err_set(err, CF_ENOMEM, "out of memory computing the signature");
    OPENSSL_cleanse(key, sizeof key);
    if (!rc) {
        /* The canonical query string is already a valid, fully encoded query. */
        rc = cf_sigv4_uri_encode(out, o->path, strlen(o->path), 1);
        if (!rc)
            rc = cf_buf_putc(out, '?');
        if (!rc)
            rc = canonical_query(&req, NULL, out);
        if (!rc)
            rc = cf_buf_printf(out, "&%s=%s", query_names[Q_SIGNATURE], sig);
        if (rc)
            rc = cf_err_set(err, rc, "the presigned URL is too large");
    }
    cf_buf_cleanup(&creq);
    cf_buf_cleanup(&sts);
    free(params);
    return rc;
}

int cf_sigv4_presign(const cf_sigv4_presign_opts *o, cf_buf *out, cf_err *err)
{
    size_t start = out->len;
    int rc = build_presigned(o, out, err);
    if (rc && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}
