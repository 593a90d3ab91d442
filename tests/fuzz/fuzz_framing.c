/*
 * fuzz_framing.c - the header fields of a request head are untrusted, and their framing verdict
 * decides whether the bytes after the head are read as a body or as the next request.
 *
 * The input is split into lines: line 1 names the version ("1.0" for HTTP/1.0, anything else
 * HTTP/1.1), every further line is a field "name:value" (split at the first ':'; a line without
 * one is a name with an empty value, as a broken parser might pass it on). Values may hold any
 * byte but '\n'.
 *
 * Postcondition: the request is accepted exactly when its length is unambiguous by RFC 9112,
 * restated here independently: every name a token, none that starts with Content-Length or
 * Transfer-Encoding without being it, no control character in a value, one Host (HTTP/1.0: at
 * most one), at most one Content-Length, and Transfer-Encoding either absent or alone, exactly
 * "chunked", without Content-Length, in HTTP/1.1. A refusal is 400 or 501 with a reason; 501 only
 * for a Transfer-Encoding, named in *header.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_check.h"
#include "http/framing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && memchr("!#$%&'*+-.^_`|~", c, 15));
}

static int is_name(const char *s, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(s, want, n) == 0;
}

typedef struct expect {
    int bad_field, hosts, cls, tes, te_exact;
} expect;

static void judge_field(expect *x, const char *name, size_t nlen, const char *value, size_t vlen)
{
    int token = nlen > 0;
    for (size_t i = 0; i < nlen; i++)
        token &= tchar((unsigned char)name[i]);
    if (!token) {
        x->bad_field = 1;
        return;
    }
    int cl = is_name(name, nlen, "content-length"), te = is_name(name, nlen, "transfer-encoding");
    if ((nlen > 14 && strncasecmp(name, "content-length", 14) == 0 && !cl) ||
        (nlen > 17 && strncasecmp(name, "transfer-encoding", 17) == 0 && !te))
        x->bad_field = 1;
    x->hosts += is_name(name, nlen, "host");
    x->cls += cl;
    if (te) {
        x->tes++;
        x->te_exact = is_name(value, vlen, "chunked");
    }
    for (size_t i = 0; i < vlen; i++)
        if ((unsigned char)value[i] < 0x20 ? value[i] != '\t' : (unsigned char)value[i] == 0x7f)
            x->bad_field = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    const char *p = (const char *)data, *end = p + size;
    const char *nl = memchr(p, '\n', size);
    size_t first = nl ? (size_t)(nl - p) : size;
    int http10 = first == 3 && memcmp(p, "1.0", 3) == 0;
    cf_framing_scan s = {0};
    expect x = {0};
    for (p = nl ? nl + 1 : end; p < end;) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        size_t len = e ? (size_t)(e - p) : (size_t)(end - p);
        const char *colon = memchr(p, ':', len);
        size_t nlen = colon ? (size_t)(colon - p) : len;
        const char *v = colon ? colon + 1 : p + len;
        size_t vlen = colon ? len - nlen - 1 : 0;
        cf_framing_scan_field(&s, p, nlen, v, vlen);
        judge_field(&x, p, nlen, v, vlen);
        p = e ? e + 1 : end;
    }
    int unambiguous = !x.bad_field && (x.hosts == 1 || (http10 && x.hosts == 0)) && x.cls <= 1 &&
                      (x.tes == 0 || (x.tes == 1 && x.te_exact && !x.cls && !http10));
    const char *header = "unset";
    cf_err err = {0};
    int rc = cf_framing_verdict(&s, http10, &header, &err);
    int e = cf_framing_status(rc);
    check((e == 0) == unambiguous);
    if (e == 0) {
        check(header == NULL);
    } else {
        check(rc == err.code && (rc == CF_EINVAL || rc == CF_ENOTSUP));
        check(err.msg[0] && strlen(err.msg) < sizeof err.msg);
        check(e == 501 ? x.tes == 1 && header && strcmp(header, "Transfer-Encoding") == 0 : header == NULL);
    }
    return 0;
}
