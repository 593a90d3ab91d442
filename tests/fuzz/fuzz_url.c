/*
 * fuzz_url.c - the names S3 takes from the request line: percent-decoding of the path and
 * query, the key check, the encoding of keys in listings, and bucket names.
 *
 * The input is used as raw bytes throughout. Postconditions:
 *  - decoding succeeds exactly when every '%' starts a two-hex-digit escape, appends the bytes
 *    a reference decoder computes, and leaves what the buffer held before intact;
 *  - the key check agrees with a reference written from Unicode's table of well-formed UTF-8
 *    byte sequences (The Unicode Standard, table 3-7) and the 1..1024-byte rule;
 *  - encoding emits only unreserved bytes, '/' and uppercase %XX of bytes that needed it (never
 *    '+' or a space, which botocore's unquote_plus would turn into something else), and
 *    decode(encode(k)) == k for every input, valid key or not;
 *  - a bucket name is accepted exactly when a reference of request.h's rules accepts it;
 *  - the bucket and key a request names (s3/target.h), from a Host (the input up to its first
 *    newline, when it has one) and a raw path (the rest): virtual-host style exactly when a
 *    reference finds "BUCKET.DOMAIN[:port]" in the Host; bucket, key and resource agree with
 *    each other and with the Host's bucket; a refusal leaves nothing allocated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "core/buf.h"
#include "core/err.h"
#include "s3/request.h"
#include "s3/target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hex(uint8_t c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int unreserved(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* ---- decoding ---- */

static void check_decode(const uint8_t *data, size_t size)
{
    uint8_t *want = malloc(size + 1);
    size_t n = 0;
    int valid = 1;
    check(want);
    for (size_t i = 0; i < size && valid; i++) {
        if (data[i] != '%') {
            want[n++] = data[i];
        } else if (i + 2 < size && hex(data[i + 1]) >= 0 && hex(data[i + 2]) >= 0) {
            want[n++] = (uint8_t)(hex(data[i + 1]) << 4 | hex(data[i + 2]));
            i += 2;
        } else {
            valid = 0;
        }
    }
    cf_buf b;
    cf_buf_init(&b, 2 * size + 16);
    check(cf_buf_puts(&b, "pre") == 0);
    int rc = cf_s3_url_decode(&b, (const char *)data, size);
    check(memcmp(b.data, "pre", 3) == 0);
    if (valid) {
        check(rc == 0);
        check(b.len == 3 + n && memcmp(b.data + 3, want, n) == 0 && b.data[b.len] == '\0');
    } else {
        check(rc == CF_EINVAL);
    }
    cf_buf_cleanup(&b);
    free(want);
}

/* ---- the key check ---- */

/* Table 3-7: the well-formed byte sequences, by first byte and the range of the second. */
static size_t wellformed_len(const uint8_t *s, size_t n)
{
    static const struct {
        uint8_t lo, hi, len, second_lo, second_hi;
    } rows[] = {
        {0x00, 0x7f, 1, 0, 0},       {0xc2, 0xdf, 2, 0x80, 0xbf}, {0xe0, 0xe0, 3, 0xa0, 0xbf},
        {0xe1, 0xec, 3, 0x80, 0xbf}, {0xed, 0xed, 3, 0x80, 0x9f}, {0xee, 0xef, 3, 0x80, 0xbf},
        {0xf0, 0xf0, 4, 0x90, 0xbf}, {0xf1, 0xf3, 4, 0x80, 0xbf}, {0xf4, 0xf4, 4, 0x80, 0x8f},
    };
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        if (s[0] < rows[r].lo || s[0] > rows[r].hi)
            continue;
        size_t len = rows[r].len;
        if (len > n)
            return 0;
        if (len > 1 && (s[1] < rows[r].second_lo || s[1] > rows[r].second_hi))
            return 0;
        for (size_t j = 2; j < len; j++)
            if (s[j] < 0x80 || s[j] > 0xbf)
                return 0;
        return len;
    }
    return 0;
}

static int ref_key_check(const uint8_t *s, size_t n)
{
    if (n == 0)
        return CF_EINVAL;
    if (n > CF_S3_MAX_KEY_LEN)
        return CF_ETOOBIG;
    for (size_t i = 0; i < n;) {
        size_t len = wellformed_len(s + i, n - i);
        if (len == 0 || s[i] == 0)
            return CF_EINVAL;
        i += len;
    }
    return 0;
}

/* ---- encoding ---- */

static void check_encode(const uint8_t *data, size_t size)
{
    cf_buf enc, dec;
    cf_buf_init(&enc, 3 * size + 16);
    cf_buf_init(&dec, 3 * size + 16);
    check(cf_buf_puts(&enc, "<Key>") == 0);
    check(cf_s3_url_encode_key(&enc, (const char *)data, size) == 0);
    check(memcmp(enc.data, "<Key>", 5) == 0 && enc.data[enc.len] == '\0');
    const uint8_t *e = (const uint8_t *)enc.data + 5;
    size_t elen = enc.len - 5, escapes = 0;
    for (size_t i = 0; i < elen; i++) {
        if (e[i] == '%') {
            check(i + 2 < elen);
            /* Uppercase only, so that two servers list the same key identically. */
            check(hex(e[i + 1]) >= 0 && hex(e[i + 2]) >= 0);
            check(!(e[i + 1] >= 'a' && e[i + 1] <= 'f') && !(e[i + 2] >= 'a' && e[i + 2] <= 'f'));
            uint8_t d = (uint8_t)(hex(e[i + 1]) << 4 | hex(e[i + 2]));
            check(!unreserved(d) && d != '/');
            escapes++;
            i += 2;
        } else {
            check(unreserved(e[i]) || e[i] == '/');
        }
    }
    check(elen == size + 2 * escapes);
    check(cf_s3_url_decode(&dec, (const char *)e, elen) == 0);
    check(dec.len == size && (size == 0 || memcmp(dec.data, data, size) == 0));
    cf_buf_cleanup(&enc);
    cf_buf_cleanup(&dec);
}

/* ---- bucket names ---- */

static int ref_bucket_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i], next = s[i + 1];
        int lower = c >= 'a' && c <= 'z', digit = c >= '0' && c <= '9';
        if (!lower && !digit && c != '.' && c != '-')
            return 0;
        if ((i == 0 || i == n - 1) && !lower && !digit)
            return 0;
        if ((c == '.' && (next == '.' || next == '-')) || (c == '-' && next == '.'))
            return 0;
    }
    /* Four groups of one to three digits, separated by dots. */
    int groups = 0;
    size_t i = 0;
    while (i < n) {
        size_t d = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, d++;
        if (d < 1 || d > 3)
            break;
        groups++;
        if (i == n) {
            if (groups == 4)
                return 0;
            break;
        }
        if (s[i] != '.')
            break;
        i++;
    }
    static const char *const prefixes[] = {"xn--", "sthree-"};
    static const char *const suffixes[] = {"-s3alias", "--ol-s3"};
    for (size_t k = 0; k < 2; k++) {
        size_t pl = strlen(prefixes[k]), sl = strlen(suffixes[k]);
        if (n >= pl && memcmp(s, prefixes[k], pl) == 0)
            return 0;
        if (n >= sl && memcmp(s + n - sl, suffixes[k], sl) == 0)
            return 0;
    }
    return 1;
}

/* ---- the bucket and key of a request ---- */

#define VHOST_DOMAIN "s3.Example.com"

static size_t ref_vhost(const char *host)
{
    const char *dom = VHOST_DOMAIN;
    size_t hl = strcspn(host, ":"), dl = strlen(dom);
    if (hl <= dl + 1 || host[hl - dl - 1] != '.')
        return 0;
    for (size_t i = 0; i < dl; i++) {
        char a = host[hl - dl + i], b = dom[i];
        if ((a >= 'A' && a <= 'Z' ? a + 32 : a) != (b >= 'A' && b <= 'Z' ? b + 32 : b))
            return 0;
    }
    return hl - dl - 1;
}

static void check_target(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    check(in);
    memcpy(in, data, size);
    in[size] = '\0'; /* a NUL inside ends the string, as a C header value would */
    char *nl = strchr(in, '\n');
    const char *host = nl ? in : NULL, *path = nl ? nl + 1 : in;
    if (nl)
        *nl = '\0';
    cf_s3_target t;
    int rc = cf_s3_target_parse(path, host, VHOST_DOMAIN, 4096, &t);
    size_t vlen = host ? ref_vhost(host) : 0;
    check(cf_s3_vhost_bucket(host, VHOST_DOMAIN) == vlen);
    if (rc) {
        check(rc == CF_EINVAL);
        check(!t.bucket && !t.key && !t.resource && !t.signed_path);
        free(in);
        return;
    }
    check(t.keylen == strlen(t.key) && !strchr(t.bucket, '/'));
    const char *r = t.resource + (t.resource[0] == '/');
    size_t blen = strlen(t.bucket);
    check(strncmp(r, t.bucket, blen) == 0);
    check(r[blen] == '\0' ? !*t.key : r[blen] == '/' && strcmp(r + blen + 1, t.key) == 0);
    check(!t.signed_path == !vlen);
    if (vlen) {
        check(t.resource[0] == '/' && strncmp(t.resource + 1, host, vlen) == 0);
        check(strcmp(t.resource + 1 + vlen, t.signed_path) == 0);
    }
    cf_s3_target_cleanup(&t);
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    check_decode(data, size);
    check(cf_s3_key_check((const char *)data, size) == ref_key_check(data, size));
    check_encode(data, size);
    check_target(data, size);
    if (size <= 80 && !memchr(data, '\0', size)) {
        char name[81];
        memcpy(name, data, size);
        name[size] = '\0';
        check(cf_s3_bucket_name_valid(name) == ref_bucket_name(name));
    }
    return 0;
}
