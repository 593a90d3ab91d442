/* names.c - S3's rules for bucket names and object keys, and its URL encodings. */
#include <ctype.h>
#include <string.h>

#include "s3/request.h"

static int is_ipv4(const char *s)
{
    int dots = 0, digits = 0;
    for (; *s; s++) {
        if (*s == '.') {
            if (!digits)
                return 0;
            dots++;
            digits = 0;
        } else if (isdigit((unsigned char)*s)) {
            if (++digits > 3)
                return 0;
        } else {
            return 0;
        }
    }
    return dots == 3 && digits;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

int cf_s3_bucket_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n < 3 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '.' || c == '-'))
            return 0;
    }
    if (!isalnum((unsigned char)name[0]) || !isalnum((unsigned char)name[n - 1]))
        return 0;
    if (strstr(name, "..") || strstr(name, ".-") || strstr(name, "-."))
        return 0;
    if (is_ipv4(name))
        return 0;
    if (strncmp(name, "xn--", 4) == 0 || strncmp(name, "sthree-", 7) == 0)
        return 0;
    if (ends_with(name, n, "-s3alias") || ends_with(name, n, "--ol-s3"))
        return 0;
    return 1;
}

/* Well-formed UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
int cf_s3_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else
            return 0;
        if (i + len > n)
            return 0;
        for (size_t j = 1; j < len; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += len;
    }
    return 1;
}

int cf_s3_key_check(const char *key, size_t len)
{
    if (len == 0)
        return CF_EINVAL;
    if (len > CF_S3_MAX_KEY_LEN)
        return CF_ETOOBIG;
    if (memchr(key, '\0', len) || !cf_s3_utf8_valid((const unsigned char *)key, len))
        return CF_EINVAL;
    return 0;
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

int cf_s3_url_decode(cf_buf *out, const char *s, size_t n)
{
    int rc = cf_buf_reserve(out, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return CF_EINVAL;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return CF_EINVAL;
            c = (char)(h << 4 | l);
            i += 2;
        }
        out->data[out->len++] = c;
    }
    out->data[out->len] = '\0';
    return 0;
}

/*
 * encoding-type=url in listings: AWS encodes keys the way botocore decodes them, with
 * urllib's unquote_plus, so a literal '+' must go out as %2B and a space may go as '+' or %20;
 * we send %20. '/' is kept, as MinIO and AWS do, so prefixes stay readable.
 */
int cf_s3_url_encode_key(cf_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = cf_buf_reserve(out, n * 3);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
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
