/*
 * hash.h - digests, HMAC, hex and base64, as thin wrappers over OpenSSL's EVP (SHA-NI and
 * AES-NI accelerated). No OpenSSL type leaks out of this header.
 */
#ifndef CF_CRYPTO_HASH_H
#define CF_CRYPTO_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef enum cf_hash_alg { CF_HASH_MD5, CF_HASH_SHA1, CF_HASH_SHA256 } cf_hash_alg;

#define CF_MD5_LEN 16
#define CF_SHA1_LEN 20
#define CF_SHA256_LEN 32

/* Incremental digest. cf_hash_new returns NULL when out of memory; caller frees with cf_hash_free. */
typedef struct cf_hash cf_hash;
cf_hash *cf_hash_new(cf_hash_alg alg);
void cf_hash_update(cf_hash *h, const void *p, size_t n);
/* Writes the digest (16, 20 or 32 bytes) to out; h may then be reset and reused. */
void cf_hash_final(cf_hash *h, unsigned char *out);
void cf_hash_reset(cf_hash *h);
void cf_hash_free(cf_hash *h);

void cf_sha256(const void *p, size_t n, unsigned char out[CF_SHA256_LEN]);
void cf_md5(const void *p, size_t n, unsigned char out[CF_MD5_LEN]);
/* 0, or CF_ENOMEM when OpenSSL could not allocate (out is then random, as for the digests). */
int cf_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                   unsigned char out[CF_SHA256_LEN]);

/* Lowercase hex; out must hold 2n+1 bytes and is NUL-terminated. */
void cf_hex_encode(const unsigned char *p, size_t n, char *out);
/* Decodes exactly 2n hex digits (either case) into n bytes; returns 0 or CF_EINVAL. */
int cf_hex_decode(const char *hex, size_t n, unsigned char *out);

/* Standard base64 with padding; out must hold 4*((n+2)/3)+1 bytes. Returns the length written. */
size_t cf_base64_encode(const unsigned char *p, size_t n, char *out);
/* Strict standard base64 (padding required); returns decoded length, or -1 when malformed or
 * longer than outmax. */
long cf_base64_decode(const char *s, size_t len, unsigned char *out, size_t outmax);

/* Constant-time comparison of n bytes; 1 when equal. */
int cf_consttime_eq(const void *a, const void *b, size_t n);

#endif
