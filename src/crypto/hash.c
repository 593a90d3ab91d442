/*
 * hash.c - digests and HMAC over OpenSSL 3 EVP; hex and base64.
 *
 * OpenSSL 3 looks an algorithm up in its provider tables every time a legacy getter such as
 * EVP_sha256() is passed to an init call; fetching each algorithm once and keeping the handle
 * halves the cost of a short digest (SigV4 hashes a few hundred bytes per request). The fetched
 * handles are immutable and safe to share between threads.
 *
 * The void functions cannot report failure, and OpenSSL fails only when it cannot allocate. A
 * failed digest or MAC must never produce a predictable value (zeros, or stale stack bytes), or
 * a verifier comparing it with an attacker's guess could be fooled under memory pressure; so a
 * failure fills the output with random bytes, which match nothing.
 */
#include "crypto/hash.h"

#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

struct cf_hash {
    EVP_MD_CTX *ctx;
    const EVP_MD *md;
    size_t len;
};

/* Written once under fetch_once and only read afterwards, so not state: a constant OpenSSL can
 * only hand out at run time (docs/internals/threads.md, "No process-wide mutable state"). */
static struct {
    EVP_MD *md5, *sha1, *sha256;
    EVP_MAC *hmac;
} fetched;
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

/* Never freed: the handles live as long as the process, like OpenSSL's own tables. */
static void fetch_algorithms(void)
{
    fetched.md5 = EVP_MD_fetch(NULL, "MD5", NULL);
    fetched.sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    fetched.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    fetched.hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* Falls back to the legacy getters when a fetch failed, so a missing provider costs speed, not
 * function. */
static const EVP_MD *md_of(cf_hash_alg alg)
{
    pthread_once(&fetch_once, fetch_algorithms);
    switch (alg) {
    case CF_HASH_MD5: return fetched.md5 ? fetched.md5 : EVP_md5();
    case CF_HASH_SHA1: return fetched.sha1 ? fetched.sha1 : EVP_sha1();
    case CF_HASH_SHA256: return fetched.sha256 ? fetched.sha256 : EVP_sha256();
    }
    return NULL;
}

static void poison(unsigned char *out, size_t n)
{
    if (RAND_bytes(out, (int)n) != 1) {
        /* No randomness either: at least avoid a constant, which a guess could match. */
        uintptr_t a = (uintptr_t)out;
        for (size_t i = 0; i < n; i++)
            out[i] = (unsigned char)((a >> (8 * (i % sizeof a))) ^ (0xa5 + i * 29));
    }
}

cf_hash *cf_hash_new(cf_hash_alg alg)
{
    cf_hash *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->md = md_of(alg);
    h->ctx = EVP_MD_CTX_new();
    if (!h->md || !h->ctx || EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1) {
        cf_hash_free(h);
        return NULL;
    }
    h->len = (size_t)EVP_MD_get_size(h->md);
    return h;
}

void cf_hash_update(cf_hash *h, const void *p, size_t n)
{
    /* Straight to the provider: no copy, no buffering, so SHA-NI sees the caller's buffer. */
    if (n)
        EVP_DigestUpdate(h->ctx, p, n);
}

void cf_hash_final(cf_hash *h, unsigned char *out)
{
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(h->ctx, out, &len) != 1 || len != h->len)
        poison(out, h->len);
    cf_hash_reset(h);
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

static void digest(cf_hash_alg alg, const void *p, size_t n, unsigned char *out, size_t outlen)
{
    unsigned int len = 0;
    if (EVP_Digest(p, n, out, &len, md_of(alg), NULL) != 1 || len != outlen)
        poison(out, outlen);
}

void cf_sha256(const void *p, size_t n, unsigned char out[CF_SHA256_LEN])
{
    digest(CF_HASH_SHA256, p, n, out, CF_SHA256_LEN);
}

void cf_md5(const void *p, size_t n, unsigned char out[CF_MD5_LEN])
{
    digest(CF_HASH_MD5, p, n, out, CF_MD5_LEN);
}

static int hmac_evp_mac(const void *key, size_t keylen, const void *msg, size_t msglen,
                        unsigned char out[CF_SHA256_LEN])
{
    if (!fetched.hmac)
        return -1;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(fetched.hmac);
    size_t len = 0;
    /* A zero-length key is legal HMAC; hand OpenSSL a valid pointer for it. */
    int ok = ctx && EVP_MAC_init(ctx, keylen ? key : (const void *)"", keylen, params) == 1 &&
             EVP_MAC_update(ctx, msg, msglen) == 1 && EVP_MAC_final(ctx, out, &len, CF_SHA256_LEN) == 1 &&
             len == CF_SHA256_LEN;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : -1;
}

int cf_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                   unsigned char out[CF_SHA256_LEN])
{
    pthread_once(&fetch_once, fetch_algorithms);
    if (hmac_evp_mac(key, keylen, msg, msglen, out) == 0)
        return 0;
    unsigned int len = 0;
    if (keylen > INT_MAX || !HMAC(EVP_sha256(), keylen ? key : "", (int)keylen, msg, msglen, out, &len) ||
        len != CF_SHA256_LEN) {
        poison(out, CF_SHA256_LEN);
        return CF_ENOMEM;
    }
    return 0;
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
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cf_hex_decode(const char *hex, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        /* The low digit is read only after the high one proved the string had not ended. */
        int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return CF_EINVAL;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* EVP_EncodeBlock takes an int; a multiple of 3 keeps every block but the last unpadded. */
#define B64_BLOCK ((size_t)3 << 28)

size_t cf_base64_encode(const unsigned char *p, size_t n, char *out)
{
    size_t o = 0;
    out[0] = '\0';
    while (n) {
        size_t take = n > B64_BLOCK ? B64_BLOCK : n;
        o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, p, (int)take);
        p += take;
        n -= take;
    }
    return o;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* One quantum of 4 characters; '=' only at the end of the last one. Returns bytes or -1. */
static int b64_quantum(const char *s, int last, unsigned long *triple)
{
    int pad = 0;
    unsigned long t = 0;
    for (int j = 0; j < 4; j++) {
        int v = 0;
        if (s[j] == '=' && last && j >= 2)
            pad++;
        else if (pad || (v = b64val(s[j])) < 0)
            return -1;
        t = t << 6 | (unsigned long)v;
    }
    /* Strict: the bits under the padding must be zero, so each byte string has one encoding
     * (Content-MD5 and continuation tokens are compared as decoded bytes). */
    if ((pad == 1 && (t & 0xff)) || (pad == 2 && (t & 0xffff)))
        return -1;
    *triple = t;
    return 3 - pad;
}

long cf_base64_decode(const char *s, size_t len, unsigned char *out, size_t outmax)
{
    if (len % 4 || len / 4 * 3 > LONG_MAX)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        unsigned long triple;
        int bytes = b64_quantum(s + i, i + 4 == len, &triple);
        if (bytes < 0 || o + (size_t)bytes > outmax)
            return -1;
        for (int j = 0; j < bytes; j++)
            out[o++] = (unsigned char)(triple >> (16 - 8 * j));
    }
    return (long)o;
}

int cf_consttime_eq(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
