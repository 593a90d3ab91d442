/*
 * fuzz_query_auth.c - a presigned URL's X-Amz-* parameters are untrusted. The input is a query
 * string ("name=value&name2=value2", already decoded, '&'-separated); it is parsed as the server
 * parses it.
 *
 * Postconditions: a parse that succeeds yields the fields AWS requires in the forms the parser
 * promises (a 64-digit signature, a 16-character date whose day is the credential's, an expiry
 * of 1 to 7 days in seconds); a failure names no signature in its message;
 * cf_sigv4_has_query_auth agrees with the presence of the X-Amz-* names; and a URL presigned here
 * (signing the host header only), sent with the input's pairs as extra request headers, is
 * accepted exactly when none of them is an x-amz-* header other than x-amz-content-sha256 (the
 * rule restated here, independently of the library).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "crypto/sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARAMS 32

static void check(int ok)
{
    if (!ok)
        abort();
}

typedef struct extra_headers {
    const cf_sigv4_param *list;
    size_t n;
} extra_headers;

static const char *host_only(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "host") == 0 ? "127.0.0.1:9000" : NULL;
}

static int each_extra(void *ctx, cf_sigv4_header_visit_fn visit, void *arg)
{
    const extra_headers *h = ctx;
    int rc = visit(arg, "Host");
    for (size_t i = 0; !rc && i < h->n; i++)
        rc = visit(arg, h->list[i].name);
    return rc;
}

static int must_sign(const char *name)
{
    return strncasecmp(name, "x-amz-", 6) == 0 && strcasecmp(name, "x-amz-content-sha256") != 0;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* In place: the presigned query is canonical, so every '%' is followed by two uppercase digits. */
static void pct_decode(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '%') {
            *o++ = (char)(hex_digit(s[1]) << 4 | hex_digit(s[2]));
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

static void check_presigned_with_headers(const cf_sigv4_param *extra, size_t nextra)
{
    cf_buf url;
    cf_err err;
    cf_buf_init(&url, 1 << 16);
    cf_sigv4_presign_opts o = {"PUT",    "127.0.0.1:9000", "/bkt1/incoming.bin", NULL, 0,   "AKID",
                               "secret", "us-east-1",      1700000000,           900,  NULL};
    check(cf_sigv4_presign(&o, &url, &err) == 0);
    cf_sigv4_param params[8];
    size_t n = 0;
    char *save, *query = strchr(url.data, '?') + 1;
    for (char *tok = strtok_r(query, "&", &save); tok && n < 8; tok = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(tok, '=');
        check(eq != NULL);
        *eq = '\0';
        pct_decode(tok);
        pct_decode(eq + 1);
        params[n].name = tok;
        params[n].value = eq + 1;
        n++;
    }
    cf_sigv4_query_auth q;
    check(cf_sigv4_parse_query_auth(params, n, &q, &err) == 0);
    extra_headers h = {extra, nextra};
    cf_sigv4_request req = {"PUT", "/bkt1/incoming.bin", params, n, host_only, &h, NULL, each_extra};
    int unsigned_amz = 0;
    for (size_t i = 0; i < nextra; i++)
        unsigned_amz |= must_sign(extra[i].name);
    int rc = cf_sigv4_verify_query(NULL, &req, &q, "secret", 1700000000 + 60, &err);
    check(unsigned_amz ? rc == CF_EDENIED : rc == 0);
    cf_buf_cleanup(&url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192 || memchr(data, '\0', size))
        return 0;
    char *text = malloc(size + 1);
    check(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    cf_sigv4_param params[MAX_PARAMS];
    size_t n = 0;
    int named = 0;
    for (char *save, *tok = strtok_r(text, "&", &save); tok && n < MAX_PARAMS;
         tok = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = '\0';
        params[n].name = tok;
        params[n].value = eq ? eq + 1 : "";
        named |= !strcmp(tok, "X-Amz-Algorithm") || !strcmp(tok, "X-Amz-Credential") ||
                 !strcmp(tok, "X-Amz-Signature");
        n++;
    }
    check(cf_sigv4_has_query_auth(params, n) == named);

    cf_sigv4_query_auth q;
    cf_err err = {0};
    if (cf_sigv4_parse_query_auth(params, n, &q, &err) == 0) {
        check(strlen(q.auth.signature) == 64);
        for (const char *c = q.auth.signature; *c; c++)
            check((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'));
        check(strlen(q.amz_date) == 16 && q.amz_date[8] == 'T' && q.amz_date[15] == 'Z');
        check(strncmp(q.amz_date, q.auth.date, 8) == 0);
        check(q.expires >= 1 && q.expires <= 604800);
        check(q.auth.access_key[0] != '\0' && q.auth.signed_headers[0] != '\0');
    } else {
        check(err.code != 0 && err.msg[0] != '\0');
        /* A signature-like value (16+ hex digits) must not be echoed; other text may coincide
         * with words of the message. */
        for (size_t i = 0; i < n; i++)
            if (!strcmp(params[i].name, "X-Amz-Signature") && strlen(params[i].value) >= 16 &&
                strspn(params[i].value, "0123456789abcdefABCDEF") == strlen(params[i].value))
                check(strstr(err.msg, params[i].value) == NULL);
    }
    check_presigned_with_headers(params, n);
    free(text);
    return 0;
}
