/*
 * chunked.c - aws-chunked body decoder: a byte-driven state machine over the encoded body.
 *
 * Lines (chunk headers, the end of the body, trailers) are collected in one bounded buffer;
 * chunk data never is: it goes to the consumer straight from the caller's buffer, and into the
 * chunk's SHA-256, so a 5 GiB chunk costs no more memory than a 5 byte one.
 *
 * A chunk's signature is checked as soon as its data has been read (before its closing CRLF),
 * so that a flipped data byte is reported as a signature mismatch even when the framing after
 * it is broken too. The chain continues from the signature we computed, which is the one the
 * client sent, since they matched.
 */
#include "s3/chunked.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto/hash.h"

#define EMPTY_SHA256_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define TRAILER_SIGNATURE "x-amz-trailer-signature"
#define MAX_DATE 32
#define MAX_SCOPE 256
#define MAX_TRAILER_NAME 128
/* "AWS4-HMAC-SHA256-PAYLOAD\n" date "\n" scope "\n" prev "\n" empty-hash "\n" chunk-hash */
#define STS_MAX (32 + MAX_DATE + MAX_SCOPE + 3 * 65 + 8)

typedef enum state {
    ST_HEADER,  /* reading a chunk header line */
    ST_DATA,    /* inside chunk data */
    ST_DATA_CR, /* the CRLF after chunk data */
    ST_DATA_LF,
    ST_FINAL,       /* CF_CHUNKED_SIGNED: the empty line after the last chunk */
    ST_TRAILER,     /* trailer lines, ended by an empty line (or the trailer signature) */
    ST_TRAILER_END, /* the empty line after x-amz-trailer-signature */
    ST_DONE,
    ST_FAILED,
} state;

struct cf_chunked {
    cf_chunked_mode mode;
    int is_signed;
    state st;
    cf_chunked_error failure;
    cf_err err; /* the failure, replayed by later calls */

    cf_chunked_data_fn on_data;
    void *ctx;
    uint64_t declared; /* CF_CHUNKED_LENGTH_UNKNOWN when not given */
    uint64_t decoded;
    uint64_t consumed;  /* encoded bytes read, for messages */
    uint64_t chunks;    /* chunk headers read */
    uint64_t size;      /* of the current chunk */
    uint64_t remaining; /* of it still to read */

    /* signatures */
    unsigned char key[32];
    char date[MAX_DATE + 1];
    char scope[MAX_SCOPE + 1];
    char prev[65];          /* lowercase hex of the previous signature */
    unsigned char sent[32]; /* the current chunk's chunk-signature */
    cf_hash *sha;           /* current chunk's data; then the canonical trailers */

    /* trailer */
    char trailer_name[MAX_TRAILER_NAME + 1]; /* lowercase; "" when none declared */
    int trailer_seen;
    char trailer_value[CF_CHUNKED_MAX_LINE];

    size_t linelen;
    char line[CF_CHUNKED_MAX_LINE];
};

/* ---- small helpers ---- */

static const char *const error_names[] = {
    [CF_CHUNKED_OK] = "ok",
    [CF_CHUNKED_BAD_SIGNATURE] = "bad_signature",
    [CF_CHUNKED_MALFORMED] = "malformed",
    [CF_CHUNKED_LINE_TOO_LONG] = "line_too_long",
    [CF_CHUNKED_TRUNCATED] = "truncated",
    [CF_CHUNKED_LENGTH_MISMATCH] = "length_mismatch",
    [CF_CHUNKED_TRAILER_MISSING] = "trailer_missing",
    [CF_CHUNKED_TRAILER_UNEXPECTED] = "trailer_unexpected",
    [CF_CHUNKED_CONSUMER] = "consumer",
    [CF_CHUNKED_NO_MEMORY] = "no_memory",
};

const char *cf_chunked_error_name(cf_chunked_error e)
{
    return (unsigned)e < sizeof error_names / sizeof error_names[0] ? error_names[e] : "unknown";
}

/* The S3 error each failure answers with, which fail() puts in the cf_err's detail. */
static cf_s3_error s3_error(cf_chunked_error e)
{
    switch (e) {
    case CF_CHUNKED_OK: return CF_S3_OK;
    case CF_CHUNKED_BAD_SIGNATURE: return CF_S3_SignatureDoesNotMatch;
    case CF_CHUNKED_TRUNCATED:
    case CF_CHUNKED_LENGTH_MISMATCH: return CF_S3_IncompleteBody;
    case CF_CHUNKED_MALFORMED:
    case CF_CHUNKED_LINE_TOO_LONG:
    case CF_CHUNKED_TRAILER_MISSING:
    case CF_CHUNKED_TRAILER_UNEXPECTED: return CF_S3_InvalidRequest;
    case CF_CHUNKED_CONSUMER: return CF_S3_OK; /* the consumer's detail, or its code's row */
    case CF_CHUNKED_NO_MEMORY: return CF_S3_InternalError;
    }
    return CF_S3_InternalError;
}

int cf_chunked_mode_from_payload(const char *v, cf_chunked_mode *out)
{
    if (!v)
        return CF_EINVAL;
    if (strcmp(v, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") == 0)
        *out = CF_CHUNKED_SIGNED;
    else if (strcmp(v, "STREAMING-UNSIGNED-PAYLOAD-TRAILER") == 0)
        *out = CF_CHUNKED_UNSIGNED_TRAILER;
    else if (strcmp(v, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") == 0)
        *out = CF_CHUNKED_SIGNED_TRAILER;
    else
        return strncmp(v, "STREAMING-", 10) == 0 ? CF_ENOTSUP : CF_EINVAL;
    return 0;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 tchar. */
static int is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies at most 48 bytes of s for a message, with anything unprintable as '?'. */
static const char *quote(const char *s, size_t n, char out[52])
{
    size_t i, m = n > 48 ? 48 : n;
    for (i = 0; i < m; i++)
        out[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
    if (n > m)
        memcpy(out + i, "...", 4);
    else
        out[i] = '\0';
    return out;
}

__attribute__((format(printf, 5, 6))) static int fail(cf_chunked *d, cf_chunked_error kind, int code,
                                                      cf_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    d->err.code = code;
    d->err.detail = (int)s3_error(kind);
    vsnprintf(d->err.msg, sizeof d->err.msg, fmt, ap);
    va_end(ap);
    d->failure = kind;
    d->st = ST_FAILED;
    if (err)
        *err = d->err;
    return code;
}

/* ---- signatures ---- */

static size_t sts_prefix(const cf_chunked *d, char *out, const char *algorithm)
{
    return (size_t)snprintf(out, STS_MAX, "%s\n%s\n%s\n%s\n", algorithm, d->date, d->scope, d->prev);
}

/* Signs sts, compares with `sent` and moves the chain on. 1 when they match, 0 when not, or
 * CF_ENOMEM (the decoder has failed) when the MAC cannot be computed. */
static int sign_and_compare(cf_chunked *d, const char *sts, size_t len, cf_err *err)
{
    unsigned char mac[32];
    if (cf_hmac_sha256(d->key, sizeof d->key, sts, len, mac) != 0)
        return fail(d, CF_CHUNKED_NO_MEMORY, CF_ENOMEM, err, "aws-chunked: out of memory signing a chunk");
    int ok = cf_consttime_eq(mac, d->sent, sizeof mac);
    cf_hex_encode(mac, sizeof mac, d->prev);
    return ok;
}

/* The digest of what the signature covers, into out. */
static int payload_digest(cf_chunked *d, unsigned char out[CF_SHA256_LEN], cf_err *err)
{
    if (cf_hash_final(d->sha, out) != 0)
        return fail(d, CF_CHUNKED_NO_MEMORY, CF_ENOMEM, err, "aws-chunked: out of memory hashing a chunk");
    return 0;
}

static int check_chunk_signature(cf_chunked *d, uint64_t size, cf_err *err)
{
    char sts[STS_MAX];
    unsigned char digest[CF_SHA256_LEN];
    int rc = payload_digest(d, digest, err);
    if (rc)
        return rc;
    size_t n = sts_prefix(d, sts, "AWS4-HMAC-SHA256-PAYLOAD");
    memcpy(sts + n, EMPTY_SHA256_HEX "\n", 65);
    n += 65;
    cf_hex_encode(digest, sizeof digest, sts + n);
    n += 64;
    int match = sign_and_compare(d, sts, n, err);
    if (!match)
        return fail(d, CF_CHUNKED_BAD_SIGNATURE, CF_EAUTH, err,
                    "aws-chunked: the signature of chunk %llu (%llu bytes) does not match",
                    (unsigned long long)d->chunks, (unsigned long long)size);
    return match < 0 ? match : 0;
}

/* ---- lines ---- */

/* Parses "hex-size *( BWS ; BWS name [ BWS = BWS value ] ) BWS". */
static int parse_chunk_header(cf_chunked *d, const char *s, size_t n, uint64_t *size, int *has_sig,
                              cf_err *err)
{
    char q[52];
    size_t i = 0;
    uint64_t v = 0;
    int digits = 0;
    for (; i < n && hexval(s[i]) >= 0; i++) {
        if (v >> 60)
            return fail(d, CF_CHUNKED_MALFORMED, CF_EINVAL, err,
                        "aws-chunked: chunk %llu: size \"%s\" does not fit in 64 bits",
                        (unsigned long long)d->chunks, quote(s, n, q));
        v = v << 4 | (uint64_t)hexval(s[i]);
        digits++;
    }
    if (!digits)
        goto bad;
    *has_sig = 0;
    for (;;) {
        while (i < n && is_ws(s[i]))
            i++;
        if (i == n)
            break;
        if (s[i++] != ';')
            goto bad;
        while (i < n && is_ws(s[i]))
            i++;
        size_t name = i;
        while (i < n && is_tchar(s[i]))
            i++;
        size_t name_len = i - name;
        if (!name_len)
            goto bad;
        while (i < n && is_ws(s[i]))
            i++;
        size_t val = i, val_len = 0;
        if (i < n && s[i] == '=') {
            i++;
            while (i < n && is_ws(s[i]))
                i++;
            val = i;
            if (i < n && s[i] == '"') { /* quoted-string */
                for (i++; i < n && s[i] != '"'; i++)
                    if (s[i] == '\\' && ++i == n)
                        goto bad;
                if (i == n)
                    goto bad;
                i++;
            } else {
                while (i < n && is_tchar(s[i]))
                    i++;
            }
            val_len = i - val;
            if (!val_len)
                goto bad;
        }
        if (d->is_signed && name_len == 15 && strncasecmp(s + name, "chunk-signature", 15) == 0) {
            if (*has_sig)
                return fail(d, CF_CHUNKED_MALFORMED, CF_EINVAL, err,
                            "aws-chunked: chunk %llu has two chunk-signature extensions",
                            (unsigned long long)d->chunks);
            if (val_len != 64 || cf_hex_decode(s + val, 32, d->sent) != 0)
                return fail(d, CF_CHUNKED_MALFORMED, CF_EINVAL, err,
                            "aws-chunked: chunk %llu: chunk-signature must be 64 hex digits",
                            (unsigned long long)d->chunks);
            *has_sig = 1;
        }
    }
    *size = v;
    return 0;
bad:
    return fail(d, CF_CHUNKED_MALFORMED, CF_EINVAL, err,
                "aws-chunked: malformed chunk header \"%s\" (chunk %llu, at byte %llu)", quote(s, n, q),
                (unsigned long long)d->chunks, (unsigned long long)d->consumed);
}

static int on_chunk_header(cf_chunked *d, const char *s, size_t n, cf_err *err)
{
    uint64_t size = 0;
    int has_sig = 0, rc;
    d->chunks++;
    if ((rc = parse_chunk_header(d, s, n, &size, &has_sig, err)) != 0)
        return rc;
    if (d->is_signed && !has_sig)
        return fail(d, CF_CHUNKED_BAD_SIGNATURE, CF_EAUTH, err,
                    "aws-chunked: chunk %llu has no chunk-signature", (unsigned long long)d->chunks);
    if (size) {
        /* Refused before any of its bytes reach the consumer. */
        if (d->declared != CF_CHUNKED_LENGTH_UNKNOWN ? size > d->declared - d->decoded
                                                     : size > UINT64_MAX - 1 - d->decoded)
            return fail(d, CF_CHUNKED_LENGTH_MISMATCH, CF_EINVAL, err,
                        "aws-chunked: chunk %llu of %llu bytes goes past x-amz-decoded-content-length "
                        "%llu (%llu bytes so far)",
                        (unsigned long long)d->chunks, (unsigned long long)size,
                        (unsigned long long)d->declared, (unsigned long long)d->decoded);
        d->size = d->remaining = size;
        d->st = ST_DATA;
        return 0;
    }
    if (d->declared != CF_CHUNKED_LENGTH_UNKNOWN && d->decoded != d->declared)
        return fail(d, CF_CHUNKED_LENGTH_MISMATCH, CF_EINVAL, err,
                    "aws-chunked: the body decodes to %llu bytes, x-amz-decoded-content-length says %llu",
                    (unsigned long long)d->decoded, (unsigned long long)d->declared);
    if (d->is_signed && (rc = check_chunk_signature(d, 0, err)) != 0)
        return rc;
    d->st = d->mode == CF_CHUNKED_SIGNED ? ST_FINAL : ST_TRAILER;
    return 0;
}

static int check_trailer_signature(cf_chunked *d, const char *hex, size_t n, cf_err *err)
{
    if (n != 64 || cf_hex_decode(hex, 32, d->sent) != 0)
        return fail(d, CF_CHUNKED_BAD_SIGNATURE, CF_EAUTH, err,
                    "aws-chunked: x-amz-trailer-signature must be 64 hex digits");
    char sts[STS_MAX];
    unsigned char digest[CF_SHA256_LEN];
    int rc = payload_digest(d, digest, err); /* the canonical trailers (or nothing) */
    if (rc)
        return rc;
    size_t len = sts_prefix(d, sts, "AWS4-HMAC-SHA256-TRAILER");
    cf_hex_encode(digest, sizeof digest, sts + len);
    len += 64;
    int match = sign_and_compare(d, sts, len, err);
    if (!match)
        return fail(d, CF_CHUNKED_BAD_SIGNATURE, CF_EAUTH, err,
                    "aws-chunked: the trailer signature does not match");
    return match < 0 ? match : 0;
}

static int trailer_missing(cf_chunked *d, cf_err *err)
{
    return fail(d, CF_CHUNKED_TRAILER_MISSING, CF_EINVAL, err,
                "aws-chunked: the trailer \"%s\" named by x-amz-trailer was not sent", d->trailer_name);
}

static int on_trailer_line(cf_chunked *d, const char *s, size_t n, cf_err *err)
{
    char q[52];
    if (n == 0) {
        if (d->trailer_name[0] && !d->trailer_seen)
            return trailer_missing(d, err);
        if (d->is_signed)
            return fail(d, CF_CHUNKED_BAD_SIGNATURE, CF_EAUTH, err,
                        "aws-chunked: the trailer has no x-amz-trailer-signature");
        d->st = ST_DONE;
        return 0;
    }
    const char *colon = memchr(s, ':', n);
    size_t name_len = colon ? (size_t)(colon - s) : 0;
    for (size_t i = 0; i < name_len; i++)
        if (!is_tchar(s[i]))
            name_len = 0;
    if (!name_len)
        return fail(d, CF_CHUNKED_MALFORMED, CF_EINVAL, err, "aws-chunked: malformed trailer line \"%s\"",
                    quote(s, n, q));
    const char *v = colon + 1, *end = s + n;
    while (v < end && is_ws(*v))
        v++;
    while (end > v && is_ws(end[-1]))
        end--;
    for (const char *c = v; c < end; c++)
        if ((unsigned char)*c < 0x20 ? *c != '\t' : *c == 0x7f)
            return fail(d, CF_CHUNKED_MALFORMED, CF_EINVAL, err,
                        "aws-chunked: control character in trailer \"%s\"", quote(s, name_len, q));
    size_t vlen = (size_t)(end - v);

    if (name_len == sizeof TRAILER_SIGNATURE - 1 && strncasecmp(s, TRAILER_SIGNATURE, name_len) == 0) {
        if (!d->is_signed)
            return fail(d, CF_CHUNKED_TRAILER_UNEXPECTED, CF_EINVAL, err,
                        "aws-chunked: x-amz-trailer-signature in an unsigned (%s) body",
                        "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
        if (d->trailer_name[0] && !d->trailer_seen)
            return trailer_missing(d, err);
        int rc = check_trailer_signature(d, v, vlen, err);
        if (rc)
            return rc;
        d->st = ST_TRAILER_END;
        return 0;
    }
    if (!d->trailer_name[0] || d->trailer_seen || name_len != strlen(d->trailer_name) ||
        strncasecmp(s, d->trailer_name, name_len) != 0)
        return fail(d, CF_CHUNKED_TRAILER_UNEXPECTED, CF_EINVAL, err,
                    d->trailer_seen ? "aws-chunked: unexpected trailer \"%s\" after \"%s\""
                                    : "aws-chunked: unexpected trailer \"%s\" (x-amz-trailer: \"%s\")",
                    quote(s, name_len, q), d->trailer_name);
    d->trailer_seen = 1;
    memcpy(d->trailer_value, v, vlen);
    d->trailer_value[vlen] = '\0';
    if (d->is_signed) {
        /* Canonical form: lowercase name, trimmed value, "\n" (what the SDKs sign). */
        cf_hash_update(d->sha, d->trailer_name, name_len);
        cf_hash_update(d->sha, ":", 1);
        cf_hash_update(d->sha, v, vlen);
        cf_hash_update(d->sha, "\n", 1);
    }
    return 0;
}

/* A complete line (without its CRLF) for the current state. */
static int on_line(cf_chunked *d, const char *s, size_t n, cf_err *err)
{
    char q[52];
    switch (d->st) {
    case ST_HEADER: return on_chunk_header(d, s, n, err);
    case ST_TRAILER: return on_trailer_line(d, s, n, err);
    case ST_FINAL:
    case ST_TRAILER_END:
        if (n == 0) {
            d->st = ST_DONE;
            return 0;
        }
        if (d->st == ST_FINAL && memchr(s, ':', n))
            return fail(d, CF_CHUNKED_TRAILER_UNEXPECTED, CF_EINVAL, err,
                        "aws-chunked: trailer \"%s\" in a body without trailers (%s)", quote(s, n, q),
                        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
        return fail(d, CF_CHUNKED_MALFORMED, CF_EINVAL, err,
                    "aws-chunked: \"%s\" where the body should end with an empty line", quote(s, n, q));
    default: return fail(d, CF_CHUNKED_MALFORMED, CF_EINVAL, err, "aws-chunked: internal state error");
    }
}

/* Collects line bytes; returns bytes used, or -1 after a failure. */
static long take_line(cf_chunked *d, const char *p, size_t n, cf_err *err)
{
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) : n;
    /* The CRLF counts towards the limit; the '\n' is never stored. */
    if (take > CF_CHUNKED_MAX_LINE - 1 - d->linelen) {
        fail(d, CF_CHUNKED_LINE_TOO_LONG, CF_ETOOBIG, err,
             "aws-chunked: a %s line is longer than %d bytes (at byte %llu)",
             d->st == ST_HEADER ? "chunk header" : "trailer", CF_CHUNKED_MAX_LINE,
             (unsigned long long)d->consumed);
        return -1;
    }
    memcpy(d->line + d->linelen, p, take);
    d->linelen += take;
    if (!nl)
        return (long)take;
    d->consumed += take + 1;
    size_t len = d->linelen;
    d->linelen = 0;
    if (!len || d->line[len - 1] != '\r') {
        fail(d, CF_CHUNKED_MALFORMED, CF_EINVAL, err, "aws-chunked: line not ended by CRLF (at byte %llu)",
             (unsigned long long)d->consumed);
        return -1;
    }
    len--;
    if (memchr(d->line, '\r', len) || memchr(d->line, '\0', len)) {
        fail(d, CF_CHUNKED_MALFORMED, CF_EINVAL, err, "aws-chunked: stray CR or NUL in a line (at byte %llu)",
             (unsigned long long)d->consumed);
        return -1;
    }
    return on_line(d, d->line, len, err) ? -1 : (long)(take + 1);
}

static long take_data(cf_chunked *d, const char *p, size_t n, cf_err *err)
{
    size_t take = d->remaining < n ? (size_t)d->remaining : n;
    if (d->is_signed)
        cf_hash_update(d->sha, p, take);
    cf_err cerr = {0};
    int rc = d->on_data(d->ctx, p, take, &cerr);
    if (rc) {
        if (rc > 0 || rc <= CF_ERR_FIRST_ || rc >= CF_ERR_LAST_)
            rc = CF_EINTERNAL;
        if (!cerr.msg[0])
            snprintf(cerr.msg, sizeof cerr.msg, "%s", cf_strerror(rc));
        fail(d, CF_CHUNKED_CONSUMER, rc, err, "%s", cerr.msg);
        d->err.detail = cerr.detail;
        if (err)
            err->detail = cerr.detail;
        return -1;
    }
    d->decoded += take;
    d->consumed += take;
    d->remaining -= take;
    if (!d->remaining) {
        d->st = ST_DATA_CR;
        if (d->is_signed && check_chunk_signature(d, d->size, err) != 0)
            return -1;
    }
    return (long)take;
}

int cf_chunked_feed(cf_chunked *d, const void *buf, size_t n, cf_err *err)
{
    const char *p = buf;
    while (n) {
        long used = 1;
        switch (d->st) {
        case ST_FAILED:
            if (err)
                *err = d->err;
            return d->err.code;
        case ST_DONE: {
            char q[52];
            return fail(d, CF_CHUNKED_MALFORMED, CF_EINVAL, err,
                        "aws-chunked: %zu bytes after the end of the body (\"%s\")", n, quote(p, n, q));
        }
        case ST_DATA: used = take_data(d, p, n, err); break;
        case ST_DATA_CR:
        case ST_DATA_LF:
            if (*p != (d->st == ST_DATA_CR ? '\r' : '\n'))
                return fail(d, CF_CHUNKED_MALFORMED, CF_EINVAL, err,
                            "aws-chunked: chunk %llu is not followed by CRLF (at byte %llu)",
                            (unsigned long long)d->chunks, (unsigned long long)d->consumed);
            d->st = d->st == ST_DATA_CR ? ST_DATA_LF : ST_HEADER;
            d->consumed++;
            break;
        default: used = take_line(d, p, n, err); break;
        }
        if (used < 0)
            return d->err.code;
        p += used;
        n -= (size_t)used;
    }
    return 0;
}

int cf_chunked_finish(cf_chunked *d, cf_err *err)
{
    switch (d->st) {
    case ST_DONE: return 0;
    case ST_FAILED:
        if (err)
            *err = d->err;
        return d->err.code;
    case ST_DATA:
        return fail(d, CF_CHUNKED_TRUNCATED, CF_EINVAL, err,
                    "aws-chunked: the body ended inside chunk %llu, %llu bytes short",
                    (unsigned long long)d->chunks, (unsigned long long)d->remaining);
    case ST_HEADER:
    case ST_DATA_CR:
    case ST_DATA_LF:
        return fail(d, CF_CHUNKED_TRUNCATED, CF_EINVAL, err,
                    "aws-chunked: the body ended after %llu bytes, before its final zero-length chunk",
                    (unsigned long long)d->consumed);
    default:
        return fail(d, CF_CHUNKED_TRUNCATED, CF_EINVAL, err,
                    "aws-chunked: the body ended after %llu bytes, before the end of its %s",
                    (unsigned long long)d->consumed,
                    d->mode == CF_CHUNKED_SIGNED ? "final chunk" : "trailer");
    }
}

/* ---- life cycle ---- */

static int copy_field(char *dst, size_t max, const char *src, const char *what, cf_err *err)
{
    size_t n = src ? strlen(src) : 0;
    if (!n || n > max || strpbrk(src, "\r\n"))
        return cf_err_set(err, CF_EINVAL, "aws-chunked: %s must be 1 to %zu characters on one line", what,
                          max);
    memcpy(dst, src, n + 1);
    return 0;
}

int cf_chunked_new(const cf_chunked_config *cfg, cf_chunked **out, cf_err *err)
{
    *out = NULL;
    if (!cfg || !cfg->on_data)
        return cf_err_set(err, CF_EINVAL, "aws-chunked: no data callback");
    if (cfg->mode != CF_CHUNKED_SIGNED && cfg->mode != CF_CHUNKED_UNSIGNED_TRAILER &&
        cfg->mode != CF_CHUNKED_SIGNED_TRAILER)
        return cf_err_set(err, CF_EINVAL, "aws-chunked: unknown mode %d", (int)cfg->mode);
    cf_chunked *d = calloc(1, sizeof *d);
    if (!d)
        return cf_err_set(err, CF_ENOMEM, "aws-chunked: out of memory");
    int rc = 0;
    d->mode = cfg->mode;
    d->is_signed = cfg->mode != CF_CHUNKED_UNSIGNED_TRAILER;
    d->st = ST_HEADER;
    d->on_data = cfg->on_data;
    d->ctx = cfg->ctx;
    d->declared = cfg->decoded_length;

    if (d->is_signed) {
        memcpy(d->key, cfg->signing_key, sizeof d->key);
        unsigned char seed[32];
        if ((rc = copy_field(d->date, MAX_DATE, cfg->amz_date, "the amz date", err)) != 0 ||
            (rc = copy_field(d->scope, MAX_SCOPE, cfg->scope, "the credential scope", err)) != 0)
            goto out;
        if (!cfg->seed_signature || strlen(cfg->seed_signature) != 64 ||
            cf_hex_decode(cfg->seed_signature, 32, seed) != 0) {
            rc = cf_err_set(err, CF_EINVAL, "aws-chunked: the seed signature must be 64 hex digits");
            goto out;
        }
        cf_hex_encode(seed, sizeof seed, d->prev); /* lowercase, as it is signed */
        if (!(d->sha = cf_hash_new(CF_HASH_SHA256))) {
            rc = cf_err_set(err, CF_ENOMEM, "aws-chunked: out of memory");
            goto out;
        }
    }

    if (cfg->mode != CF_CHUNKED_SIGNED && cfg->trailer_name) {
        /* Trimmed, since x-amz-trailer is a list header; but only one trailer is supported. */
        const char *s = cfg->trailer_name, *e;
        while (is_ws(*s))
            s++;
        for (e = s + strlen(s); e > s && is_ws(e[-1]); e--)
            ;
        size_t n = (size_t)(e - s);
        int ok = n > 0 && n <= MAX_TRAILER_NAME;
        for (size_t i = 0; ok && i < n; i++)
            ok = is_tchar(s[i]);
        if (!ok || (n == sizeof TRAILER_SIGNATURE - 1 && strncasecmp(s, TRAILER_SIGNATURE, n) == 0)) {
            rc = cf_err_set(err, CF_EINVAL, "aws-chunked: x-amz-trailer must name one header");
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            d->trailer_name[i] = (char)tolower((unsigned char)s[i]);
        d->trailer_name[n] = '\0';
    }
out:
    if (rc) {
        cf_chunked_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

cf_chunked_error cf_chunked_failure(const cf_chunked *d)
{
    return d->failure;
}

uint64_t cf_chunked_decoded(const cf_chunked *d)
{
    return d->decoded;
}

const char *cf_chunked_trailer_value(const cf_chunked *d)
{
    return d->st == ST_DONE && d->trailer_seen ? d->trailer_value : NULL;
}

void cf_chunked_free(cf_chunked *d)
{
    if (!d)
        return;
    cf_hash_free(d->sha);
    /* The signing key opens every request of this key for the day. */
    explicit_bzero(d->key, sizeof d->key);
    free(d);
}
