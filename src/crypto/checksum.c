/*
 * checksum.c - CRC32, CRC32C and CRC64NVME (slice-by-8, SSE4.2 for CRC32C), their combine
 * operators, and SHA-1/SHA-256 through crypto/hash.h, behind one incremental interface.
 *
 * All three CRCs are reflected, with init and xorout ~0. Inside, a CRC is kept as the raw
 * register (the value before the final inversion), on which processing data is affine:
 * raw(s, D) = shift_|D|(s) ^ raw(0, D), where shift_n is the linear map "feed n zero bytes",
 * i.e. multiplication by x^(8n) modulo the polynomial. That one identity gives both the combine
 * functions and the three-stream SSE4.2 loop (three blocks are CRC'd independently and joined by
 * shifting).
 */
#include "crypto/checksum.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto/hash.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#define CF_CK_X86 1
#endif

#define POLY_CRC32 0xEDB88320u
#define POLY_CRC32C 0x82F63B78u
#define POLY_CRC64NVME 0x9A6C9329AC4BC9B5ull

/* x^(2^k) mod P for k < X2N_LEN: a length of up to 2^64 bytes is 2^67 bits. */
#define X2N_LEN 67

/* Bytes per stream per round of the SSE4.2 loop. Three streams hide the instruction's latency
 * of three cycles; joining them costs two table shifts per round, nothing next to 3 KiB. */
#define HW_BLOCK 1024

/* Constants computed at first use rather than spelled out: written once under tables_once and
 * only read afterwards, so they are not state (docs/internals/threads.md, "No process-wide
 * mutable state"). */
static struct {
    uint32_t crc32[8][256], crc32c[8][256];
    uint64_t crc64[8][256];
    uint32_t crc32_x2n[X2N_LEN], crc32c_x2n[X2N_LEN];
    uint64_t crc64_x2n[X2N_LEN];
    uint32_t crc32c_shift[4][256]; /* shift by HW_BLOCK zero bytes, one table per input byte */
    int sse42;
} T;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* a * b modulo the polynomial, both in reflected form (bit 31 is x^0). */
static uint32_t mult32(uint32_t a, uint32_t b, uint32_t poly)
{
    uint32_t p = 0;
    for (uint32_t m = 1u << 31; m; m >>= 1) {
        if (a & m)
            p ^= b;
        b = b & 1 ? (b >> 1) ^ poly : b >> 1;
    }
    return p;
}

static uint64_t mult64(uint64_t a, uint64_t b, uint64_t poly)
{
    uint64_t p = 0;
    for (uint64_t m = 1ull << 63; m; m >>= 1) {
        if (a & m)
            p ^= b;
        b = b & 1 ? (b >> 1) ^ poly : b >> 1;
    }
    return p;
}

static void build32(uint32_t tab[8][256], uint32_t x2n[X2N_LEN], uint32_t poly)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ poly : c >> 1;
        tab[0][i] = c;
    }
    /* tab[t][b]: byte b followed by t zero bytes. */
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            tab[t][i] = tab[0][tab[t - 1][i] & 0xff] ^ (tab[t - 1][i] >> 8);
    x2n[0] = 1u << 30; /* x^1 */
    for (int k = 1; k < X2N_LEN; k++)
        x2n[k] = mult32(x2n[k - 1], x2n[k - 1], poly);
}

static void build64(uint64_t tab[8][256], uint64_t x2n[X2N_LEN], uint64_t poly)
{
    for (uint64_t i = 0; i < 256; i++) {
        uint64_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ poly : c >> 1;
        tab[0][i] = c;
    }
    for (int i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            tab[t][i] = tab[0][tab[t - 1][i] & 0xff] ^ (tab[t - 1][i] >> 8);
    x2n[0] = 1ull << 62;
    for (int k = 1; k < X2N_LEN; k++)
        x2n[k] = mult64(x2n[k - 1], x2n[k - 1], poly);
}

/* x^(8n) mod P: the operator that feeds n zero bytes. */
static uint32_t zeros32(const uint32_t x2n[X2N_LEN], uint64_t n, uint32_t poly)
{
    uint32_t p = 1u << 31; /* x^0 */
    for (int k = 3; n; n >>= 1, k++)
        if (n & 1)
            p = mult32(x2n[k], p, poly);
    return p;
}

static uint64_t zeros64(const uint64_t x2n[X2N_LEN], uint64_t n, uint64_t poly)
{
    uint64_t p = 1ull << 63;
    for (int k = 3; n; n >>= 1, k++)
        if (n & 1)
            p = mult64(x2n[k], p, poly);
    return p;
}

static void build_tables(void)
{
    build32(T.crc32, T.crc32_x2n, POLY_CRC32);
    build32(T.crc32c, T.crc32c_x2n, POLY_CRC32C);
    build64(T.crc64, T.crc64_x2n, POLY_CRC64NVME);
    uint32_t op = zeros32(T.crc32c_x2n, HW_BLOCK, POLY_CRC32C);
    for (uint32_t k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++)
            T.crc32c_shift[k][b] = mult32(op, b << (8 * k), POLY_CRC32C);
#ifdef CF_CK_X86
    __builtin_cpu_init();
    T.sse42 = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

static inline void tables(void)
{
    pthread_once(&tables_once, build_tables);
}

static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

static uint32_t slice8_32(const uint32_t tab[8][256], uint32_t c, const unsigned char *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        c = tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        n--;
    }
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w = load_le64(p) ^ c;
        c = tab[7][w & 0xff] ^ tab[6][(w >> 8) & 0xff] ^ tab[5][(w >> 16) & 0xff] ^ tab[4][(w >> 24) & 0xff] ^
            tab[3][(w >> 32) & 0xff] ^ tab[2][(w >> 40) & 0xff] ^ tab[1][(w >> 48) & 0xff] ^ tab[0][w >> 56];
    }
    while (n--)
        c = tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

static uint64_t slice8_64(const uint64_t tab[8][256], uint64_t c, const unsigned char *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        c = tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        n--;
    }
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w = load_le64(p) ^ c;
        c = tab[7][w & 0xff] ^ tab[6][(w >> 8) & 0xff] ^ tab[5][(w >> 16) & 0xff] ^ tab[4][(w >> 24) & 0xff] ^
            tab[3][(w >> 32) & 0xff] ^ tab[2][(w >> 40) & 0xff] ^ tab[1][(w >> 48) & 0xff] ^ tab[0][w >> 56];
    }
    while (n--)
        c = tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

#ifdef CF_CK_X86
static inline uint32_t shift_block(uint32_t c)
{
    return T.crc32c_shift[0][c & 0xff] ^ T.crc32c_shift[1][(c >> 8) & 0xff] ^
           T.crc32c_shift[2][(c >> 16) & 0xff] ^ T.crc32c_shift[3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t c, const unsigned char *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8(c, *p++);
        n--;
    }
    uint64_t c0 = c;
    for (; n >= 3 * HW_BLOCK; n -= 3 * HW_BLOCK) {
        uint64_t c1 = 0, c2 = 0;
        for (const unsigned char *end = p + HW_BLOCK; p < end; p += 8) {
            c0 = _mm_crc32_u64(c0, load_le64(p));
            c1 = _mm_crc32_u64(c1, load_le64(p + HW_BLOCK));
            c2 = _mm_crc32_u64(c2, load_le64(p + 2 * HW_BLOCK));
        }
        c0 = shift_block((uint32_t)c0) ^ (uint32_t)c1;
        c0 = shift_block((uint32_t)c0) ^ (uint32_t)c2;
        p += 2 * HW_BLOCK;
    }
    for (; n >= 8; p += 8, n -= 8)
        c0 = _mm_crc32_u64(c0, load_le64(p));
    c = (uint32_t)c0;
    while (n--)
        c = _mm_crc32_u8(c, *p++);
    return c;
}
#endif

uint32_t cf_crc32(uint32_t crc, const void *p, size_t n)
{
    tables();
    return ~slice8_32(T.crc32, ~crc, p, n);
}

uint32_t cf_crc32c_portable(uint32_t crc, const void *p, size_t n)
{
    tables();
    return ~slice8_32(T.crc32c, ~crc, p, n);
}

uint32_t cf_crc32c(uint32_t crc, const void *p, size_t n)
{
    tables();
#ifdef CF_CK_X86
    if (T.sse42)
        return ~crc32c_sse42(~crc, p, n);
#endif
    return ~slice8_32(T.crc32c, ~crc, p, n);
}

int cf_crc32c_accelerated(void)
{
    tables();
    return T.sse42;
}

uint64_t cf_crc64nvme(uint64_t crc, const void *p, size_t n)
{
    tables();
    return ~slice8_64(T.crc64, ~crc, p, n);
}

/* Valid on the conditioned values too: the inversions at both ends cancel out (zlib's
 * crc32_combine rests on the same fact). */
uint32_t cf_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    tables();
    return mult32(zeros32(T.crc32_x2n, len_b, POLY_CRC32), crc_a, POLY_CRC32) ^ crc_b;
}

uint32_t cf_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    tables();
    return mult32(zeros32(T.crc32c_x2n, len_b, POLY_CRC32C), crc_a, POLY_CRC32C) ^ crc_b;
}

uint64_t cf_crc64nvme_combine(uint64_t crc_a, uint64_t crc_b, uint64_t len_b)
{
    tables();
    return mult64(zeros64(T.crc64_x2n, len_b, POLY_CRC64NVME), crc_a, POLY_CRC64NVME) ^ crc_b;
}

/* ---- algorithm table ---- */

static const struct {
    const char *name, *header;
    size_t len;
} algs[CF_CK_COUNT] = {
    [CF_CK_CRC32] = {"CRC32", "x-amz-checksum-crc32", 4},
    [CF_CK_CRC32C] = {"CRC32C", "x-amz-checksum-crc32c", 4},
    [CF_CK_CRC64NVME] = {"CRC64NVME", "x-amz-checksum-crc64nvme", 8},
    [CF_CK_SHA1] = {"SHA1", "x-amz-checksum-sha1", CF_SHA1_LEN},
    [CF_CK_SHA256] = {"SHA256", "x-amz-checksum-sha256", CF_SHA256_LEN},
};

static int valid_alg(cf_checksum_alg alg)
{
    return (unsigned)alg < CF_CK_COUNT;
}

int cf_checksum_alg_from_name(const char *name, cf_checksum_alg *out)
{
    static const char prefix[] = "x-amz-checksum-";
    if (!name)
        return CF_EINVAL;
    if (strncasecmp(name, prefix, sizeof prefix - 1) == 0)
        name += sizeof prefix - 1;
    for (int i = 0; i < CF_CK_COUNT; i++) {
        if (strcasecmp(name, algs[i].name) == 0) {
            *out = (cf_checksum_alg)i;
            return 0;
        }
    }
    return CF_EINVAL;
}

const char *cf_checksum_name(cf_checksum_alg alg)
{
    return valid_alg(alg) ? algs[alg].name : "";
}

const char *cf_checksum_header(cf_checksum_alg alg)
{
    return valid_alg(alg) ? algs[alg].header : "";
}

size_t cf_checksum_len(cf_checksum_alg alg)
{
    return valid_alg(alg) ? algs[alg].len : 0;
}

int cf_checksum_is_crc(cf_checksum_alg alg)
{
    return alg == CF_CK_CRC32 || alg == CF_CK_CRC32C || alg == CF_CK_CRC64NVME;
}

/* ---- incremental interface ---- */

struct cf_checksum {
    cf_checksum_alg alg;
    uint64_t crc; /* conditioned CRC so far (the low 32 bits for the 32-bit CRCs) */
    cf_hash *h;   /* SHA algorithms */
};

cf_checksum *cf_checksum_new(cf_checksum_alg alg)
{
    if (!valid_alg(alg))
        return NULL;
    cf_checksum *ck = calloc(1, sizeof *ck);
    if (!ck)
        return NULL;
    ck->alg = alg;
    if (!cf_checksum_is_crc(alg)) {
        ck->h = cf_hash_new(alg == CF_CK_SHA1 ? CF_HASH_SHA1 : CF_HASH_SHA256);
        if (!ck->h) {
            free(ck);
            return NULL;
        }
    }
    return ck;
}

cf_checksum_alg cf_checksum_get_alg(const cf_checksum *ck)
{
    return ck->alg;
}

void cf_checksum_update(cf_checksum *ck, const void *p, size_t n)
{
    if (!n)
        return;
    switch (ck->alg) {
    case CF_CK_CRC32: ck->crc = cf_crc32((uint32_t)ck->crc, p, n); break;
    case CF_CK_CRC32C: ck->crc = cf_crc32c((uint32_t)ck->crc, p, n); break;
    case CF_CK_CRC64NVME: ck->crc = cf_crc64nvme(ck->crc, p, n); break;
    case CF_CK_SHA1:
    case CF_CK_SHA256: cf_hash_update(ck->h, p, n); break;
    }
}

static void put_be(unsigned char *out, uint64_t v, size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = (unsigned char)(v >> (8 * (len - 1 - i)));
}

static uint64_t get_be(const unsigned char *in, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v = v << 8 | in[i];
    return v;
}

void cf_checksum_final(cf_checksum *ck, unsigned char *out, size_t *len)
{
    size_t n = algs[ck->alg].len;
    if (ck->h)
        cf_hash_final(ck->h, out); /* also resets it */
    else
        put_be(out, ck->crc, n);
    ck->crc = 0;
    if (len)
        *len = n;
}

size_t cf_checksum_final_base64(cf_checksum *ck, char out[CF_CHECKSUM_B64_MAX])
{
    unsigned char raw[CF_CHECKSUM_MAX_LEN];
    size_t n;
    cf_checksum_final(ck, raw, &n);
    return cf_base64_encode(raw, n, out);
}

void cf_checksum_reset(cf_checksum *ck)
{
    ck->crc = 0;
    if (ck->h)
        cf_hash_reset(ck->h);
}

void cf_checksum_free(cf_checksum *ck)
{
    if (!ck)
        return;
    cf_hash_free(ck->h);
    free(ck);
}

int cf_checksum_compute(cf_checksum_alg alg, const void *p, size_t n, unsigned char *out)
{
    switch (alg) {
    case CF_CK_CRC32: put_be(out, cf_crc32(0, p, n), 4); return 0;
    case CF_CK_CRC32C: put_be(out, cf_crc32c(0, p, n), 4); return 0;
    case CF_CK_CRC64NVME: put_be(out, cf_crc64nvme(0, p, n), 8); return 0;
    case CF_CK_SHA1:
    case CF_CK_SHA256: {
        cf_checksum *ck = cf_checksum_new(alg);
        if (!ck)
            return CF_ENOMEM;
        cf_checksum_update(ck, p, n);
        cf_checksum_final(ck, out, NULL);
        cf_checksum_free(ck);
        return 0;
    }
    }
    return CF_EINVAL;
}

int cf_checksum_decode(cf_checksum_alg alg, const char *b64, size_t len,
                       unsigned char out[CF_CHECKSUM_MAX_LEN], cf_err *err)
{
    if (!valid_alg(alg))
        return cf_err_set(err, CF_EINVAL, "unknown checksum algorithm %d", (int)alg);
    size_t want = algs[alg].len;
    /* The exact encoded length first: a longer string must not decode into out at all. */
    if (len != 4 * ((want + 2) / 3) || cf_base64_decode(b64, len, out, want) != (long)want)
        return cf_err_set(err, CF_EINVAL, "\"%s\" must be the base64 of a %zu-byte %s checksum",
                          algs[alg].header, want, algs[alg].name);
    return 0;
}

int cf_checksum_combine(cf_checksum_alg alg, unsigned char *acc, const unsigned char *part, uint64_t part_len)
{
    switch (alg) {
    case CF_CK_CRC32:
        put_be(acc, cf_crc32_combine((uint32_t)get_be(acc, 4), (uint32_t)get_be(part, 4), part_len), 4);
        return 0;
    case CF_CK_CRC32C:
        put_be(acc, cf_crc32c_combine((uint32_t)get_be(acc, 4), (uint32_t)get_be(part, 4), part_len), 4);
        return 0;
    case CF_CK_CRC64NVME:
        put_be(acc, cf_crc64nvme_combine(get_be(acc, 8), get_be(part, 8), part_len), 8);
        return 0;
    case CF_CK_SHA1:
    case CF_CK_SHA256: break;
    }
    return CF_EINVAL;
}

int cf_checksum_final_composite(cf_checksum *ck, size_t nparts, char out[CF_CHECKSUM_COMPOSITE_MAX],
                                cf_err *err)
{
    if (nparts == 0 || nparts > UINT32_MAX) {
        cf_checksum_reset(ck);
        return cf_err_set(err, CF_EINVAL, "a composite checksum needs 1 to %u parts, not %zu",
                          (unsigned)UINT32_MAX, nparts);
    }
    size_t n = cf_checksum_final_base64(ck, out);
    snprintf(out + n, CF_CHECKSUM_COMPOSITE_MAX - n, "-%zu", nparts);
    return (int)strlen(out);
}

int cf_checksum_composite(cf_checksum_alg alg, const unsigned char *raw_parts, size_t nparts,
                          char out[CF_CHECKSUM_COMPOSITE_MAX], cf_err *err)
{
    if (!valid_alg(alg))
        return cf_err_set(err, CF_EINVAL, "unknown checksum algorithm %d", (int)alg);
    cf_checksum *ck = cf_checksum_new(alg);
    if (!ck)
        return cf_err_set(err, CF_ENOMEM, "composite %s checksum: out of memory", algs[alg].name);
    size_t len = algs[alg].len;
    for (size_t i = 0; i < nparts && i <= UINT32_MAX; i++)
        cf_checksum_update(ck, raw_parts + i * len, len);
    int rc = cf_checksum_final_composite(ck, nparts, out, err);
    cf_checksum_free(ck);
    return rc;
}
