/*
 * sigv4.c - AWS Signature Version 4, S3 flavour (see sigv4.h for the rules that differ from
 * the generic suite). Every step is a separate function so that each intermediate product can
 * be checked against AWS's published vectors.
 */
#include "crypto/sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/hash.h"

#define MAX_SKEW_SECONDS (15 * 60)

static int copy_field(char *dst, size_t dstlen, const char *src, size_t n)
{
    if (n == 0 || n >= dstlen)
        return -1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

static int parse_credential(const char *v, size_t n, cf_sigv4_auth *out)
{
    /* AKID/20130524/us-east-1/s3/aws4_request; the key id itself may not contain '/'. */
    const char *parts[5];
    size_t lens[5];
    size_t np = 0;
    const char *start = v, *end = v + n;
    for (const char *p = v; p <= end && np < 5; p++) {
        if (p == end || *p == '/') {
            parts[np] = start;
            lens[np] = (size_t)(p - start);
            np++;
            start = p + 1;
        }
    }
    if (np != 5 || start <= end)
        return -1;
    if (copy_field(out->access_key, sizeof out->access_key, parts[0], lens[0]) ||
        lens[1] != 8 || copy_field(out->date, sizeof out->date, parts[1], lens[1]) ||
        copy_field(out->region, sizeof out->region, parts[2], lens[2]) ||
        copy_field(out->service, sizeof out->service, parts[3], lens[3]) ||
        lens[4] != 12 || memcmp(parts[4], "aws4_request", 12) != 0)
        return -1;
    for (int i = 0; i < 8; i++)
        if (!isdigit((unsigned char)out->date[i]))
            return -1;
    return 0;
}

int cf_sigv4_parse_auth(const char *header, cf_sigv4_auth *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    size_t alg = strlen(CF_SIGV4_ALGORITHM);
    if (strncmp(header, CF_SIGV4_ALGORITHM, alg) != 0 || header[alg] != ' ')
        return cf_err_set(err, CF_EINVAL, "authorization does not start with '%s '", CF_SIGV4_ALGORITHM);
    int have_cred = 0, have_sh = 0, have_sig = 0;
    const char *p = header + alg;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *eq = strchr(p, '=');
        if (!eq)
            return cf_err_set(err, CF_EINVAL, "authorization component without '='");
        const char *vend = strchr(eq + 1, ',');
        if (!vend)
            vend = eq + 1 + strlen(eq + 1);
        const char *v = eq + 1;
        size_t vlen = (size_t)(vend - v);
        while (vlen && v[vlen - 1] == ' ')
            vlen--;
        size_t klen = (size_t)(eq - p);
        if (klen == 10 && memcmp(p, "Credential", 10) == 0) {
            if (parse_credential(v, vlen, out) != 0)
                return cf_err_set(err, CF_EINVAL, "malformed Credential: expected KEY/YYYYMMDD/REGION/SERVICE/aws4_request");
            have_cred = 1;
        } else if (klen == 13 && memcmp(p, "SignedHeaders", 13) == 0) {
            if (copy_field(out->signed_headers, sizeof out->signed_headers, v, vlen) != 0)
                return cf_err_set(err, CF_EINVAL, "SignedHeaders is empty or too long");
            have_sh = 1;
        } else if (klen == 9 && memcmp(p, "Signature", 9) == 0) {
            if (vlen != 64 || copy_field(out->signature, sizeof out->signature, v, vlen) != 0)
                return cf_err_set(err, CF_EINVAL, "Signature must be 64 hex digits");
            for (size_t i = 0; i < 64; i++) {
                char c = out->signature[i];
                if (!isxdigit((unsigned char)c))
                    return cf_err_set(err, CF_EINVAL, "Signature must be 64 hex digits");
                out->signature[i] = (char)tolower((unsigned char)c);
            }
            have_sig = 1;
        } else {
            return cf_err_set(err, CF_EINVAL, "unknown authorization component '%.*s'", (int)(klen > 32 ? 32 : klen), p);
        }
        p = vend;
    }
    if (!have_cred)
        return cf_err_set(err, CF_EINVAL, "authorization has no Credential");
    if (!have_sh)
        return cf_err_set(err, CF_EINVAL, "authorization has no SignedHeaders");
    if (!have_sig)
        return cf_err_set(err, CF_EINVAL, "authorization has no Signature");
    return 0;
}

int cf_sigv4_uri_encode(cf_buf *out, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = cf_buf_reserve(out, n * 3);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
            out->data[out->len++] = (char)c;
        } else {
            out->data[out->len++] = '%';
            out->data[out->len++] = hex[c >> 4];
            out->data[out->len++] = hex[c & 15];
        }
    }
    out->data[out->len] = '\0';
    return 0;
}

typedef struct enc_param {
    char *name;
    char *value;
} enc_param;

static int cmp_param(const void *a, const void *b)
{
    const enc_param *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static int canonical_query(const cf_sigv4_request *req, cf_buf *out)
{
    if (req->nparams == 0)
        return 0;
    enc_param *p = calloc(req->nparams, sizeof *p);
    if (!p)
        return CF_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < req->nparams && !rc; i++) {
        cf_buf n, v;
        cf_buf_init(&n, 65536);
        cf_buf_init(&v, 65536);
        rc = cf_sigv4_uri_encode(&n, req->params[i].name, strlen(req->params[i].name), 0);
        if (!rc)
            rc = cf_sigv4_uri_encode(&v, req->params[i].value, strlen(req->params[i].value), 0);
        p[i].name = n.data ? cf_buf_steal(&n, NULL) : strdup("");
        p[i].value = v.data ? cf_buf_steal(&v, NULL) : strdup("");
        cf_buf_cleanup(&n);
        cf_buf_cleanup(&v);
        if (!p[i].name || !p[i].value)
            rc = CF_ENOMEM;
    }
    if (!rc) {
        qsort(p, req->nparams, sizeof *p, cmp_param);
        for (size_t i = 0; i < req->nparams && !rc; i++)
            rc = cf_buf_printf(out, "%s%s=%s", i ? "&" : "", p[i].name, p[i].value);
    }
    for (size_t i = 0; i < req->nparams; i++) {
        free(p[i].name);
        free(p[i].value);
    }
    free(p);
    return rc;
}

/* Trim, and collapse runs of spaces to one (outside of quotes is not distinguished: AWS
 * collapses everywhere for S3). */
static int canonical_value(cf_buf *out, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t len = strlen(v);
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    int space = 0, rc = 0;
    for (size_t i = 0; i < len && !rc; i++) {
        char c = v[i] == '\t' ? ' ' : v[i];
        if (c == ' ') {
            if (space)
                continue;
            space = 1;
        } else {
            space = 0;
        }
        rc = cf_buf_putc(out, c);
    }
    return rc;
}

int cf_sigv4_canonical_request(const cf_sigv4_request *req, const char *signed_headers,
                               cf_buf *out, cf_err *err)
{
    int rc = cf_buf_printf(out, "%s\n", req->method);
    if (!rc)
        rc = cf_sigv4_uri_encode(out, req->path, strlen(req->path), 1);
    if (!rc && out->data[out->len - 1] == '\n')
        rc = cf_buf_putc(out, '/');
    if (!rc)
        rc = cf_buf_putc(out, '\n');
    if (!rc)
        rc = canonical_query(req, out);
    if (!rc)
        rc = cf_buf_putc(out, '\n');
    const char *p = signed_headers;
    while (!rc && *p) {
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        char name[128];
        if (n == 0 || n >= sizeof name)
            return cf_err_set(err, CF_EINVAL, "signed header name is empty or too long");
        for (size_t i = 0; i < n; i++) {
            if (isupper((unsigned char)p[i]))
                return cf_err_set(err, CF_EINVAL, "signed header names must be lowercase");
            name[i] = p[i];
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
        if (*p == ';')
            p++;
    }
    if (!rc)
        rc = cf_buf_printf(out, "\n%s\n%s", signed_headers, req->payload_hash);
    if (rc)
        return cf_err_set(err, rc, "canonical request is too large");
    return 0;
}

int cf_sigv4_string_to_sign(const char *amz_date, const char *date, const char *region,
                            const char *service, const char *canonical_request, size_t len,
                            cf_buf *out)
{
    unsigned char d[CF_SHA256_LEN];
    char hex[65];
    cf_sha256(canonical_request, len, d);
    cf_hex_encode(d, sizeof d, hex);
    return cf_buf_printf(out, "%s\n%s\n%s/%s/%s/aws4_request\n%s", CF_SIGV4_ALGORITHM, amz_date,
                         date, region, service, hex);
}

void cf_sigv4_signing_key(const char *secret, const char *date, const char *region,
                          const char *service, unsigned char key[32])
{
    char k0[160];
    int n = snprintf(k0, sizeof k0, "AWS4%s", secret);
    unsigned char a[32], b[32];
    cf_hmac_sha256(k0, (size_t)n, date, strlen(date), a);
    cf_hmac_sha256(a, 32, region, strlen(region), b);
    cf_hmac_sha256(b, 32, service, strlen(service), a);
    cf_hmac_sha256(a, 32, "aws4_request", 12, key);
}

void cf_sigv4_sign(const unsigned char key[32], const char *string_to_sign, size_t len,
                   char hex[65])
{
    unsigned char d[32];
    cf_hmac_sha256(key, 32, string_to_sign, len, d);
    cf_hex_encode(d, sizeof d, hex);
}

int cf_sigv4_parse_amz_date(const char *s, int64_t *out)
{
    if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return CF_EINVAL;
    for (int i = 0; i < 15; i++)
        if (i != 8 && !isdigit((unsigned char)s[i]))
            return CF_EINVAL;
    struct tm tm = {0};
    tm.tm_year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') - 1900;
    tm.tm_mon = (s[4] - '0') * 10 + (s[5] - '0') - 1;
    tm.tm_mday = (s[6] - '0') * 10 + (s[7] - '0');
    tm.tm_hour = (s[9] - '0') * 10 + (s[10] - '0');
    tm.tm_min = (s[11] - '0') * 10 + (s[12] - '0');
    tm.tm_sec = (s[13] - '0') * 10 + (s[14] - '0');
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return CF_EINVAL;
    *out = (int64_t)timegm(&tm);
    return 0;
}

void cf_sigv4_format_amz_date(int64_t t, char out[17])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    /* strftime: the compiler cannot bound snprintf's %d widths for struct tm fields. */
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int signs_header(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return 1;
        p += len;
        if (*p == ';')
            p++;
    }
    return 0;
}

int cf_sigv4_verify(const cf_sigv4_request *req, const cf_sigv4_auth *auth, const char *secret,
                    const char *amz_date, int64_t now, unsigned char *signing_key_out,
                    cf_err *err)
{
    int64_t t;
    if (strcmp(auth->service, "s3") != 0)
        return cf_err_set(err, CF_EINVAL, "credential scope service is '%s', expected 's3'", auth->service);
    if (!signs_header(auth->signed_headers, "host"))
        return cf_err_set(err, CF_EINVAL, "the host header must be signed");
    if (cf_sigv4_parse_amz_date(amz_date, &t) != 0)
        return cf_err_set(err, CF_EINVAL, "x-amz-date '%.32s' is not YYYYMMDDTHHMMSSZ", amz_date);
    if (memcmp(amz_date, auth->date, 8) != 0)
        return cf_err_set(err, CF_EINVAL, "credential scope date %s does not match x-amz-date", auth->date);
    if (t > now + MAX_SKEW_SECONDS || t < now - MAX_SKEW_SECONDS)
        return cf_err_set(err, CF_EPRECOND, "request time %s differs from the server's clock by more than 15 minutes", amz_date);

    cf_buf creq, sts;
    cf_buf_init(&creq, 1 << 20);
    cf_buf_init(&sts, 4096);
    int rc = cf_sigv4_canonical_request(req, auth->signed_headers, &creq, err);
    if (!rc && cf_sigv4_string_to_sign(amz_date, auth->date, auth->region, auth->service,
                                       creq.data, creq.len, &sts) != 0)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    if (!rc) {
        unsigned char key[32];
        char sig[65];
        cf_sigv4_signing_key(secret, auth->date, auth->region, auth->service, key);
        cf_sigv4_sign(key, sts.data, sts.len, sig);
        if (!cf_consttime_eq(sig, auth->signature, 64))
            rc = cf_err_set(err, CF_EAUTH, "the request signature does not match");
        else if (signing_key_out)
            memcpy(signing_key_out, key, 32);
    }
    cf_buf_cleanup(&creq);
    cf_buf_cleanup(&sts);
    return rc;
}
