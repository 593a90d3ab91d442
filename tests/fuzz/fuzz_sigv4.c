/*
 * fuzz_sigv4.c - everything SigV4 reads from a request is untrusted: the Authorization header,
 * the method, path, query and header values that go into the canonical request, the date.
 *
 * The input is used twice. As a whole, it is an Authorization header value (and its first bytes
 * a date). Split into lines, it is a request: line 1 the method, line 2 the decoded path, line 3
 * the decoded query ("a=1&b&c=3"), every further line a header "name:value"; the signed headers
 * are those names in that order.
 *
 * Postconditions, not only "no crash": a parse that succeeds yields well-formed fields that
 * format and parse back identically; a failure leaves nothing behind and echoes no signature;
 * URI encoding emits only unreserved bytes, '/' and %XX, and decodes back to its input; a
 * canonical request has exactly one line per section and per header, with a sorted query; a
 * request signed here verifies, while the same request with one signature digit changed does not;
 * and when only the first k headers are signed (k from the first input byte), the request is
 * accepted exactly when no later header is an x-amz-* header left out of the list (judged here
 * independently of the library), so no accepted request carries an unsigned x-amz-* header.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "core/buf.h"
#include "core/err.h"
#include "crypto/hash.h"
#include "crypto/sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARAMS 32
#define MAX_HEADERS 80
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define AMZ_DATE "20130524T000000Z"

static int is_unreserved(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int upper_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

/* Checks that enc is a valid S3 encoding and returns its decoding (caller frees). */
static char *decode_checked(const char *enc, size_t n, int keep_slash, size_t *outlen)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    check(out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)enc[i];
        if (c == '%') {
            check(i + 2 < n);
            int hi = upper_hex((unsigned char)enc[i + 1]), lo = upper_hex((unsigned char)enc[i + 2]);
            check(hi >= 0 && lo >= 0);
            unsigned char d = (unsigned char)(hi << 4 | lo);
            /* Encoding is canonical: a byte that may stay literal is never escaped. */
            check(!is_unreserved(d) && !(keep_slash && d == '/'));
            out[o++] = (char)d;
            i += 2;
        } else {
            check(is_unreserved(c) || (keep_slash && c == '/'));
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

static void check_uri_encode(const uint8_t *data, size_t size)
{
    for (int keep = 0; keep < 2; keep++) {
        cf_buf b;
        size_t n;
        cf_buf_init(&b, 3 * size + 16);
        check(cf_buf_puts(&b, "x") == 0);
        check(cf_sigv4_uri_encode(&b, (const char *)data, size, keep) == 0);
        check(b.data[0] == 'x' && b.len >= 1 + size && b.len <= 1 + 3 * size);
        char *back = decode_checked(b.data + 1, b.len - 1, keep, &n);
        check(n == size && memcmp(back, data, size) == 0);
        free(back);
        cf_buf_cleanup(&b);
    }
}

/* ---- Authorization header ---- */

static int valid_signed_headers(const char *s)
{
    size_t names = 0, len = 0;
    for (const char *p = s;; p++) {
        if (*p == ';' || !*p) {
            if (len == 0)
                return 0;
            names++;
            len = 0;
            if (!*p)
                break;
        } else if (!is_tchar((unsigned char)*p) || (*p >= 'A' && *p <= 'Z')) {
            return 0;
        } else {
            len++;
        }
    }
    return names >= 1 && names <= CF_SIGV4_MAX_SIGNED_HEADERS;
}

static void check_parsed(const cf_sigv4_auth *a)
{
    check(strlen(a->signature) == 64);
    for (int i = 0; i < 64; i++)
        check((a->signature[i] >= '0' && a->signature[i] <= '9') ||
              (a->signature[i] >= 'a' && a->signature[i] <= 'f'));
    check(a->access_key[0] && !strchr(a->access_key, '/'));
    check(strlen(a->date) == 8);
    for (int i = 0; i < 8; i++)
        check(a->date[i] >= '0' && a->date[i] <= '9');
    check(a->region[0] && a->service[0]);
    check(valid_signed_headers(a->signed_headers));
}

/* The signature a failed parse must not echo: a run of 16 or more hex digits after any
 * "Signature=", with a digit among its first 16 (so it cannot be a plain word that a message
 * may legitimately name). */
static void check_no_signature_echo(const char *header, const char *msg)
{
    for (const char *p = header; (p = strstr(p, "Signature=")) != NULL;) {
        p += 10;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strspn(p, "0123456789abcdefABCDEF");
        if (n >= 16 && strcspn(p, "0123456789") < 16)
            check(memmem(msg, strlen(msg), p, 16) == NULL);
    }
}

static void check_parse_auth(const char *s)
{
    cf_sigv4_auth a, again;
    cf_err err = {0};
    int rc = cf_sigv4_parse_auth(s, &a, &err);
    if (rc != 0) {
        check(rc == CF_EINVAL && err.code == CF_EINVAL && err.msg[0]);
        check(a.access_key[0] == '\0' && a.signature[0] == '\0' && a.signed_headers[0] == '\0');
        check_no_signature_echo(s, err.msg);
        return;
    }
    check(strncmp(s, CF_SIGV4_ALGORITHM, strlen(CF_SIGV4_ALGORITHM)) == 0);
    check_parsed(&a);
    /* What was understood, written the standard way, is understood the same way again. */
    cf_buf b;
    cf_buf_init(&b, 8192);
    check(cf_buf_printf(&b, "%s Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
                        CF_SIGV4_ALGORITHM, a.access_key, a.date, a.region, a.service, a.signed_headers,
                        a.signature) == 0);
    check(cf_sigv4_parse_auth(b.data, &again, NULL) == 0);
    check(memcmp(&a, &again, sizeof a) == 0);
    cf_buf_cleanup(&b);
}

static void check_dates(const char *s)
{
    int64_t t;
    char back[17];
    if (cf_sigv4_parse_amz_date(s, &t) == 0) {
        cf_sigv4_format_amz_date(t, back);
        check(strcmp(back, s) == 0);
    }
}

/* ---- canonical request ---- */

typedef struct hdr {
    char *name, *value;
} hdr;

typedef struct fuzz_req {
    char *buf; /* the input, cut into NUL-terminated pieces */
    const char *method, *path;
    cf_sigv4_param params[MAX_PARAMS];
    size_t nparams;
    hdr headers[MAX_HEADERS];
    size_t nheaders;
    cf_buf signed_list;
} fuzz_req;

static const char *lookup(void *ctx, const char *name)
{
    const fuzz_req *r = ctx;
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static int each(void *ctx, cf_sigv4_header_visit_fn visit, void *arg)
{
    const fuzz_req *r = ctx;
    for (size_t i = 0; i < r->nheaders; i++) {
        int rc = visit(arg, r->headers[i].name);
        if (rc)
            return rc;
    }
    return 0;
}

static char *next_line(char **p)
{
    char *line = *p;
    if (!line)
        return NULL;
    char *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *p = nl + 1;
    } else {
        *p = NULL;
    }
    return line;
}

static void split_query(fuzz_req *r, char *q)
{
    if (!*q)
        return;
    for (char *tok = q; tok && r->nparams < MAX_PARAMS;) {
        char *amp = strchr(tok, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = '\0';
        r->params[r->nparams].name = tok;
        r->params[r->nparams].value = eq ? eq + 1 : "";
        r->nparams++;
        tok = amp ? amp + 1 : NULL;
    }
}

static int build_request(fuzz_req *r, const uint8_t *data, size_t size)
{
    memset(r, 0, sizeof *r);
    r->buf = malloc(size + 1);
    check(r->buf);
    memcpy(r->buf, data, size);
    r->buf[size] = '\0';
    char *p = r->buf;
    r->method = next_line(&p);
    r->path = next_line(&p);
    char *q = next_line(&p);
    if (!q)
        return -1;
    split_query(r, q);
    cf_buf_init(&r->signed_list, 1 << 16);
    for (char *line; (line = next_line(&p)) && r->nheaders < MAX_HEADERS;) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        /* The signed list joins names with ';', so a name holding one would be read back as two
         * other names: such a header cannot be in a list (nor in a request: ';' is no tchar). */
        if (strchr(line, ';'))
            continue;
        r->headers[r->nheaders].name = line;
        r->headers[r->nheaders].value = colon + 1;
        check(cf_buf_printf(&r->signed_list, "%s%s", r->nheaders ? ";" : "", line) == 0);
        r->nheaders++;
    }
    return r->nheaders ? 0 : -1;
}

static int valid_method(const char *m)
{
    if (!*m)
        return 0;
    for (; *m; m++)
        if (!is_tchar((unsigned char)*m))
            return 0;
    return 1;
}

static int name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len >= 128)
        return 0;
    for (; *n; n++)
        if (!is_tchar((unsigned char)*n) || (*n >= 'A' && *n <= 'Z'))
            return 0;
    return 1;
}

static int expect_valid(const fuzz_req *r)
{
    if (!valid_method(r->method) || r->nheaders > CF_SIGV4_MAX_SIGNED_HEADERS)
        return 0;
    for (size_t i = 0; i < r->nheaders; i++)
        if (!name_ok(r->headers[i].name))
            return 0;
    return 1;
}

/* "name:value" where value is trimmed and holds single spaces only. */
static void check_header_line(const char *line, size_t len, const hdr *h)
{
    size_t n = strlen(h->name);
    check(len > n && memcmp(line, h->name, n) == 0 && line[n] == ':');
    const char *v = line + n + 1;
    size_t vlen = len - n - 1;
    if (vlen) {
        check(v[0] != ' ' && v[vlen - 1] != ' ');
    }
    for (size_t i = 0; i < vlen; i++) {
        check(v[i] != '\t' && v[i] != '\r' && v[i] != '\n');
        check(!(v[i] == ' ' && i + 1 < vlen && v[i + 1] == ' '));
    }
}

typedef struct span {
    const char *p;
    size_t n;
} span;

/* Byte order, a prefix first: strcmp's order for strings that hold no NUL. */
static int span_cmp(span a, span b)
{
    int c = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
    return c ? c : (a.n > b.n) - (a.n < b.n);
}

/* Pairs are sorted by encoded name, then encoded value; each is NAME=VALUE, both encoded. */
static void check_query(const char *q, size_t len, size_t nparams)
{
    if (nparams == 0) {
        check(len == 0);
        return;
    }
    span prev_name = {NULL, 0}, prev_value = {NULL, 0};
    size_t pieces = 0;
    for (size_t start = 0; start <= len; pieces++) {
        size_t end = start;
        while (end < len && q[end] != '&')
            end++;
        const char *piece = q + start, *eq = memchr(piece, '=', end - start);
        check(eq);
        span name = {piece, (size_t)(eq - piece)}, value = {eq + 1, (size_t)(q + end - eq - 1)};
        check(!memchr(value.p, '=', value.n));
        size_t dn;
        free(decode_checked(name.p, name.n, 0, &dn));
        free(decode_checked(value.p, value.n, 0, &dn));
        if (prev_name.p) {
            int c = span_cmp(prev_name, name);
            check(c < 0 || (c == 0 && span_cmp(prev_value, value) <= 0));
        }
        prev_name = name;
        prev_value = value;
        start = end + 1;
    }
    check(pieces == nparams);
}

static void check_sections(const fuzz_req *r, const cf_buf *creq)
{
    const char *s = creq->data, *line[5 + MAX_HEADERS];
    size_t len[5 + MAX_HEADERS], nl = 0;
    for (size_t i = 0; i < creq->len; i++)
        nl += s[i] == '\n';
    check(nl == r->nheaders + 5);
    size_t k = 0;
    for (const char *p = s; k <= nl; k++) {
        const char *e = memchr(p, '\n', creq->len - (size_t)(p - s));
        line[k] = p;
        len[k] = e ? (size_t)(e - p) : creq->len - (size_t)(p - s);
        p = e ? e + 1 : p + len[k];
    }
    check(len[0] == strlen(r->method) && memcmp(line[0], r->method, len[0]) == 0);
    size_t dn;
    char *path = decode_checked(line[1], len[1], 1, &dn);
    check(strcmp(path, *r->path ? r->path : "/") == 0);
    free(path);
    check_query(line[2], len[2], r->nparams);
    for (size_t h = 0; h < r->nheaders; h++)
        check_header_line(line[3 + h], len[3 + h], &r->headers[h]);
    check(len[3 + r->nheaders] == 0);
    check(len[4 + r->nheaders] == r->signed_list.len &&
          memcmp(line[4 + r->nheaders], r->signed_list.data, r->signed_list.len) == 0);
    check(strcmp(line[5 + r->nheaders], CF_SIGV4_UNSIGNED_PAYLOAD) == 0);
}

/* The Authorization a client would send for creq, signed over signed_list. */
static void sign_as_client(const cf_buf *creq, const char *signed_list, cf_sigv4_auth *auth,
                           unsigned char key[32])
{
    cf_buf sts;
    cf_buf_init(&sts, 4096);
    check(cf_sigv4_string_to_sign(AMZ_DATE, "20130524", "us-east-1", "s3", creq->data, creq->len, &sts) == 0);
    memset(auth, 0, sizeof *auth);
    cf_sigv4_signing_key(SECRET, "20130524", "us-east-1", "s3", key);
    cf_sigv4_sign(key, sts.data, sts.len, auth->signature);
    strcpy(auth->access_key, "AKIAIOSFODNN7EXAMPLE");
    strcpy(auth->date, "20130524");
    strcpy(auth->region, "us-east-1");
    strcpy(auth->service, "s3");
    snprintf(auth->signed_headers, sizeof auth->signed_headers, "%s", signed_list);
    cf_buf_cleanup(&sts);
}

static int lower_eq(const char *a, const char *lower)
{
    for (; *a && *lower; a++, lower++)
        if ((*a >= 'A' && *a <= 'Z' ? *a - 'A' + 'a' : *a) != *lower)
            return 0;
    return *a == *lower;
}

/* AWS's rule, restated: every x-amz-* header but x-amz-content-sha256, any letter case. */
static int must_sign(const char *name)
{
    char prefix[7];
    size_t n = strlen(name);
    if (n < 6)
        return 0;
    memcpy(prefix, name, 6);
    prefix[6] = '\0';
    return lower_eq(prefix, "x-amz-") && !lower_eq(name, "x-amz-content-sha256");
}

/* Only headers [0, k) signed; the rest arrive as if added after signing. */
static void check_partly_signed(fuzz_req *r, cf_sigv4_request *req, size_t k)
{
    cf_buf list, creq;
    cf_buf_init(&list, 1 << 16);
    for (size_t i = 0; i < k; i++)
        check(cf_buf_printf(&list, "%s%s", i ? ";" : "", r->headers[i].name) == 0);
    int has_host = 0, unsigned_amz = 0;
    for (size_t i = 0; i < k; i++)
        has_host |= strcmp(r->headers[i].name, "host") == 0;
    for (size_t i = k; i < r->nheaders; i++) {
        int listed = 0;
        for (size_t j = 0; j < k && !listed; j++)
            listed = strcmp(r->headers[i].name, r->headers[j].name) == 0;
        unsigned_amz += !listed && must_sign(r->headers[i].name);
    }
    cf_buf_init(&creq, (MAX_HEADERS + 4) * ((size_t)1 << 16) + 1024);
    if (list.len < sizeof((cf_sigv4_auth *)0)->signed_headers &&
        cf_sigv4_canonical_request(req, list.data, &creq, NULL) == 0) {
        cf_sigv4_auth auth;
        unsigned char key[32];
        int64_t now;
        cf_err err;
        sign_as_client(&creq, list.data, &auth, key);
        check(cf_sigv4_parse_amz_date(AMZ_DATE, &now) == 0);
        int rc = cf_sigv4_verify(NULL, req, &auth, SECRET, AMZ_DATE, now, NULL, &err);
        if (!has_host)
            check(rc == CF_EINVAL);
        else if (unsigned_amz)
            check(rc == CF_EDENIED && strcmp(err.msg, CF_SIGV4_UNSIGNED_HEADERS_MESSAGE) == 0);
        else
            check(rc == 0);
        check(cf_sigv4_unsigned_headers(req, list.data, NULL) == unsigned_amz);
    }
    cf_buf_cleanup(&creq);
    cf_buf_cleanup(&list);
}

/* Sign the request as a client would, then verify it as the server does. */
static void check_sign_verify(fuzz_req *r, cf_sigv4_request *req, const cf_buf *creq)
{
    if (r->signed_list.len >= sizeof((cf_sigv4_auth *)0)->signed_headers)
        return;
    cf_sigv4_auth auth;
    unsigned char key[32], got[32];
    int64_t now;
    cf_err err;
    sign_as_client(creq, r->signed_list.data, &auth, key);
    check(cf_sigv4_parse_amz_date(AMZ_DATE, &now) == 0);

    int has_host = lookup(r, "host") != NULL;
    int rc = cf_sigv4_verify(NULL, req, &auth, SECRET, AMZ_DATE, now, got, &err);
    check(has_host ? rc == 0 && memcmp(got, key, 32) == 0 : rc == CF_EINVAL);
    if (has_host) {
        auth.signature[17] = auth.signature[17] == 'a' ? 'b' : 'a';
        check(cf_sigv4_verify(NULL, req, &auth, SECRET, AMZ_DATE, now, NULL, &err) == CF_EAUTH);
        check(!strstr(err.msg, SECRET) && !strstr(err.msg, auth.signature));
    }
    /* Without a way to list the headers, nothing verifies. */
    cf_sigv4_request blind = *req;
    blind.each_header = NULL;
    check(cf_sigv4_verify(NULL, &blind, &auth, SECRET, AMZ_DATE, now, NULL, &err) == CF_EINVAL);
}

static void check_canonical(const uint8_t *data, size_t size)
{
    fuzz_req r;
    if (build_request(&r, data, size) == 0) {
        cf_sigv4_request req = {r.method, r.path, r.params, r.nparams, lookup, &r, CF_SIGV4_UNSIGNED_PAYLOAD,
                                each};
        cf_buf creq;
        cf_err err = {0};
        /* Generous: a repeated header name emits the first instance's value each time. */
        cf_buf_init(&creq, (MAX_HEADERS + 4) * size + 1024);
        int rc = cf_sigv4_canonical_request(&req, r.signed_list.data, &creq, &err);
        if (expect_valid(&r)) {
            check(rc == 0);
            check_sections(&r, &creq);
            check_sign_verify(&r, &req, &creq);
            check_partly_signed(&r, &req, 1 + (size ? data[0] : 0) % r.nheaders);
        } else {
            check(rc == CF_EINVAL && err.code == CF_EINVAL && creq.len == 0);
        }
        cf_buf_cleanup(&creq);
    }
    cf_buf_cleanup(&r.signed_list);
    free(r.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *s = malloc(size + 1);
    check(s);
    memcpy(s, data, size);
    s[size] = '\0';
    check_parse_auth(s);
    check_dates(s);
    free(s);
    check_uri_encode(data, size);
    check_canonical(data, size);
    return 0;
}
