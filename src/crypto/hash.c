/* hash.c - digests and HMAC over OpenSSL EVP; hex and base64. */
#include "crypto/hash.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

struct cf_hash {
    EVP_MD_CTX *ctx;
    const EVP_MD *md;
};

static const EVP_MD *md_of(cf_hash_alg alg)
{
    switch (alg) {
    case CF_HASH_MD5: return EVP_md5();
    case CF_HASH_SHA1: return EVP_sha1();
    case CF_HASH_SHA256: return EVP_sha256();
    }
    return NULL;
}

cf_hash *cf_hash_new(cf_hash_alg alg)
{
    cf_hash *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->md = md_of(alg);
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || !h->md || EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1) {
        cf_hash_free(h);
        return NULL;
    }
    return h;
}

void cf_hash_update(cf_hash *h, const void *p, size_t n)
{
    EVP_DigestUpdate(h->ctx, p, n);
}

void cf_hash_final(cf_hash *h, unsigned char *out)
{
    unsigned int len;
    EVP_DigestFinal_ex(h->ctx, out, &len);
    EVP_DigestInit_ex(h->ctx, h->md, NULL);
}

void cf_hash_reset(cf_hash *h)
{
    EVP_DigestInit_ex(h->ctx, h->md, NULL);
}

void cf_hash_free(cf_hash *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void cf_sha256(const void *p, size_t n, unsigned char out[CF_SHA256_LEN])
{
    unsigned int len;
    EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

void cf_md5(const void *p, size_t n, unsigned char out[CF_MD5_LEN])
{
    unsigned int len;
    EVP_Digest(p, n, out, &len, EVP_md5(), NULL);
}

void cf_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                    unsigned char out[CF_SHA256_LEN])
{
    unsigned int len;
    HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &len);
}

void cf_hex_encode(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int cf_hex_decode(const char *hex, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return CF_EINVAL;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

size_t cf_base64_encode(const unsigned char *p, size_t n, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long cf_base64_decode(const char *s, size_t len, unsigned char *out, size_t outmax)
{
    if (len % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            if (s[i + j] == '=' && i + 4 == len && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (pad || (v[j] = b64val(s[i + j])) < 0) {
                return -1;
            }
        }
        unsigned long triple = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
                               (unsigned long)v[2] << 6 | (unsigned long)v[3];
        size_t bytes = 3 - (size_t)pad;
        if (o + bytes > outmax)
            return -1;
        for (size_t j = 0; j < bytes; j++)
            out[o++] = (unsigned char)(triple >> (16 - 8 * j));
    }
    return (long)o;
}

int cf_consttime_eq(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
