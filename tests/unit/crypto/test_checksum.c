/*
 * test_checksum.c - S3's additional checksums.
 *
 * Vectors:
 *  - the CRC catalogue check values for "123456789" (CRC-32/ISO-HDLC 0xCBF43926, CRC-32/ISCSI
 *    0xE3069283, CRC-64/NVME 0xAE8B14860A799888);
 *  - the AWS SDK for Go v2 checksum middleware tests: "hello world" as CRC32 "DUoRhQ==", CRC32C
 *    "yZRlqg==", CRC64NVME "jSnVw/bqjr4=", SHA1 "Kq5sNclPz7QV2+lfQIuc6R7oRu0=", SHA256
 *    "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=";
 *  - awslabs/aws-c-s3 tests/s3_checksums_crc64nvme_tests.c: "aaaaaaaaaa" → 0C1A80036D65C555;
 *    awslabs/aws-c-checksums: 32 zero bytes → 0xCF3473434D4ECF3B;
 *  - the S3 API reference, sigv4-streaming-trailers: 66560 bytes of 'a' → CRC32C "sOO8/Q==";
 *  - SPDK's test_crc64_nvme (NVM Command Set 1.0c): 4096 zeros → 0x6482D367EB22B64E, 4096 0xff
 *    → 0xC0DDBA7302ECA3AC.
 * Everything else is checked against a bit-at-a-time reference written here from the
 * polynomial definitions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "crypto/checksum.h"
#include "crypto/hash.h"

static const cf_checksum_alg all_algs[] = {CF_CK_CRC32, CF_CK_CRC32C, CF_CK_CRC64NVME, CF_CK_SHA1,
                                           CF_CK_SHA256};
static const cf_checksum_alg crc_algs[] = {CF_CK_CRC32, CF_CK_CRC32C, CF_CK_CRC64NVME};

/* ---- reference implementations, one bit at a time ---- */

static uint64_t ref_crc(cf_checksum_alg alg, const unsigned char *p, size_t n)
{
    int wide = alg == CF_CK_CRC64NVME;
    uint64_t poly = alg == CF_CK_CRC32    ? 0xEDB88320u
                    : alg == CF_CK_CRC32C ? 0x82F63B78u
                                          : 0x9A6C9329AC4BC9B5ull;
    uint64_t mask = wide ? UINT64_MAX : 0xffffffffu, c = mask;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ poly : c >> 1;
    }
    return ~c & mask;
}

static uint64_t crc_of(cf_checksum_alg alg, uint64_t crc, const void *p, size_t n)
{
    switch (alg) {
    case CF_CK_CRC32: return cf_crc32((uint32_t)crc, p, n);
    case CF_CK_CRC32C: return cf_crc32c((uint32_t)crc, p, n);
    default: return cf_crc64nvme(crc, p, n);
    }
}

static uint64_t combine_of(cf_checksum_alg alg, uint64_t a, uint64_t b, uint64_t len)
{
    switch (alg) {
    case CF_CK_CRC32: return cf_crc32_combine((uint32_t)a, (uint32_t)b, len);
    case CF_CK_CRC32C: return cf_crc32c_combine((uint32_t)a, (uint32_t)b, len);
    default: return cf_crc64nvme_combine(a, b, len);
    }
}

static uint64_t be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        p[i] = (unsigned char)seed;
    }
}

static void b64_of(cf_checksum_alg alg, const void *p, size_t n, char out[CF_CHECKSUM_B64_MAX])
{
    cf_checksum *ck = cf_checksum_new(alg);
    assert_non_null(ck);
    cf_checksum_update(ck, p, n);
    long len = cf_checksum_final_base64(ck, out);
    assert_int_equal(len, (long)strlen(out));
    cf_checksum_free(ck);
}

/* ---- known values ---- */

static void test_check_values(void **state)
{
    (void)state;
    const char *s = "123456789";
    assert_int_equal(cf_crc32(0, s, 9), 0xCBF43926u);
    assert_int_equal(cf_crc32c(0, s, 9), 0xE3069283u);
    assert_int_equal(cf_crc32c_portable(0, s, 9), 0xE3069283u);
    assert_true(cf_crc64nvme(0, s, 9) == 0xAE8B14860A799888ull);
    for (size_t i = 0; i < 3; i++)
        assert_true(ref_crc(crc_algs[i], (const unsigned char *)s, 9) == crc_of(crc_algs[i], 0, s, 9));

    /* Raw bytes are big-endian. */
    unsigned char raw[CF_CHECKSUM_MAX_LEN];
    assert_int_equal(cf_checksum_compute(CF_CK_CRC32, s, 9, raw), 0);
    assert_memory_equal(raw, "\xcb\xf4\x39\x26", 4);
    char b64[CF_CHECKSUM_B64_MAX];
    b64_of(CF_CK_CRC32, s, 9, b64);
    assert_string_equal(b64, "y/Q5Jg==");
    b64_of(CF_CK_CRC32C, s, 9, b64);
    assert_string_equal(b64, "4waSgw==");
    b64_of(CF_CK_CRC64NVME, s, 9, b64);
    assert_string_equal(b64, "rosUhgp5mIg=");
}

static void test_aws_sdk_vectors(void **state)
{
    (void)state;
    const char *want[] = {"DUoRhQ==", "yZRlqg==", "jSnVw/bqjr4=", "Kq5sNclPz7QV2+lfQIuc6R7oRu0=",
                          "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="};
    for (size_t i = 0; i < 5; i++) {
        char b64[CF_CHECKSUM_B64_MAX];
        b64_of(all_algs[i], "hello world", 11, b64);
        assert_string_equal(b64, want[i]);
    }

    unsigned char raw[8];
    assert_int_equal(cf_checksum_compute(CF_CK_CRC64NVME, "aaaaaaaaaa", 10, raw), 0);
    assert_memory_equal(raw, "\x0C\x1A\x80\x03\x6D\x65\xC5\x55", 8);
    /* The same ten bytes one and two at a time (aws-c-s3 nist cases 3 and 4). */
    cf_checksum *ck = cf_checksum_new(CF_CK_CRC64NVME);
    for (int i = 0; i < 10; i++)
        cf_checksum_update(ck, "a", 1);
    size_t len = 0;
    cf_checksum_final(ck, raw, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(raw, "\x0C\x1A\x80\x03\x6D\x65\xC5\x55", 8);
    for (int i = 0; i < 5; i++)
        cf_checksum_update(ck, "aa", 2);
    cf_checksum_final(ck, raw, NULL);
    assert_memory_equal(raw, "\x0C\x1A\x80\x03\x6D\x65\xC5\x55", 8);
    cf_checksum_free(ck);

    static unsigned char buf[66560];
    memset(buf, 0, 32);
    assert_true(cf_crc64nvme(0, buf, 32) == 0xCF3473434D4ECF3Bull);
    memset(buf, 0, 4096);
    assert_true(cf_crc64nvme(0, buf, 4096) == 0x6482D367EB22B64Eull);
    memset(buf, 0xff, 4096);
    assert_true(cf_crc64nvme(0, buf, 4096) == 0xC0DDBA7302ECA3ACull);

    memset(buf, 'a', sizeof buf);
    char b64[CF_CHECKSUM_B64_MAX];
    b64_of(CF_CK_CRC32C, buf, sizeof buf, b64);
    assert_string_equal(b64, "sOO8/Q==");
}

static void test_empty_input(void **state)
{
    (void)state;
    const char *want[] = {"AAAAAA==", "AAAAAA==", "AAAAAAAAAAA=", "2jmj7l5rSw0yVb/vlWAYkK/YBwk=",
                          "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="};
    for (size_t i = 0; i < 5; i++) {
        char b64[CF_CHECKSUM_B64_MAX];
        b64_of(all_algs[i], "", 0, b64);
        assert_string_equal(b64, want[i]);
        /* update with 0 bytes changes nothing, also with a NULL pointer */
        cf_checksum *ck = cf_checksum_new(all_algs[i]);
        cf_checksum_update(ck, NULL, 0);
        cf_checksum_final_base64(ck, b64);
        assert_string_equal(b64, want[i]);
        cf_checksum_free(ck);
    }
    assert_int_equal(cf_crc32(0, NULL, 0), 0);
    assert_int_equal(cf_crc32c(0, NULL, 0), 0);
    assert_true(cf_crc64nvme(0, NULL, 0) == 0);
}

/* ---- incremental ---- */

static void test_odd_pieces_equal_one_shot(void **state)
{
    (void)state;
    enum { N = 100003 };
    unsigned char *buf = malloc(N);
    assert_non_null(buf);
    fill(buf, N, 42);
    const size_t pieces[] = {1, 2, 3, 5, 7, 8, 9, 13, 63, 64, 65, 1000, 3071, 3072, 3073, 4099, 65537};
    for (size_t a = 0; a < 5; a++) {
        unsigned char one[CF_CHECKSUM_MAX_LEN], inc[CF_CHECKSUM_MAX_LEN];
        assert_int_equal(cf_checksum_compute(all_algs[a], buf, N, one), 0);
        if (a < 3)
            assert_true(be(one, cf_checksum_len(all_algs[a])) == ref_crc(all_algs[a], buf, N));
        cf_checksum *ck = cf_checksum_new(all_algs[a]);
        assert_non_null(ck);
        assert_int_equal(cf_checksum_get_alg(ck), all_algs[a]);
        for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
            /* piece sizes cycle so that every offset alignment occurs */
            size_t off = 0, k = 0;
            while (off < N) {
                size_t n = pieces[(p + k++) % (sizeof pieces / sizeof pieces[0])];
                if (n > N - off)
                    n = N - off;
                cf_checksum_update(ck, buf + off, n);
                off += n;
            }
            size_t len = 0;
            cf_checksum_final(ck, inc, &len); /* resets ck for the next round */
            assert_int_equal(len, cf_checksum_len(all_algs[a]));
            assert_memory_equal(one, inc, len);
        }
        /* reset discards what was fed */
        cf_checksum_update(ck, "junk", 4);
        cf_checksum_reset(ck);
        cf_checksum_update(ck, buf, N);
        cf_checksum_final(ck, inc, NULL);
        assert_memory_equal(one, inc, cf_checksum_len(all_algs[a]));
        cf_checksum_free(ck);
    }
    free(buf);
}

static void test_tables_match_reference_on_every_short_length(void **state)
{
    (void)state;
    unsigned char buf[300];
    fill(buf, sizeof buf, 9);
    for (size_t a = 0; a < 3; a++)
        for (size_t off = 0; off < 9; off++)
            for (size_t n = 0; n + off <= sizeof buf; n++)
                assert_true(crc_of(crc_algs[a], 0, buf + off, n) == ref_crc(crc_algs[a], buf + off, n));
}

static void test_crc32c_hardware_equals_tables(void **state)
{
    (void)state;
    if (!cf_crc32c_accelerated())
        print_message("no SSE4.2 here: cf_crc32c uses the tables, compared with themselves\n");
    enum { N = 70000 };
    unsigned char *buf = malloc(N + 16);
    assert_non_null(buf);
    fill(buf, N + 16, 1234);
    /* Every length up to 3 blocks and a bit past the interleaved loop's boundaries, every
     * alignment; then long lengths around multiples of the 3 KiB round. */
    for (size_t off = 0; off < 16; off++)
        for (size_t n = 0; n <= 3 * 1024 + 80; n += off < 2 ? 1 : 7)
            assert_int_equal(cf_crc32c(0, buf + off, n), cf_crc32c_portable(0, buf + off, n));
    const size_t lens[] = {6143, 6144, 6145, 9215, 9216, 9217, 30000, 65536, N};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        for (size_t off = 0; off < 16; off += 3) {
            uint32_t seed = (uint32_t)(i * 77 + off);
            assert_int_equal(cf_crc32c(seed, buf + off, lens[i]),
                             cf_crc32c_portable(seed, buf + off, lens[i]));
            assert_true(cf_crc32c(0, buf + off, lens[i]) == ref_crc(CF_CK_CRC32C, buf + off, lens[i]));
        }
    free(buf);
}

/* ---- combine ---- */

static void test_combine_every_split(void **state)
{
    (void)state;
    const char *in = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                     "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    size_t n = strlen(in);
    for (size_t a = 0; a < 3; a++) {
        uint64_t whole = crc_of(crc_algs[a], 0, in, n);
        for (size_t split = 0; split <= n; split++) {
            uint64_t x = crc_of(crc_algs[a], 0, in, split), y = crc_of(crc_algs[a], 0, in + split, n - split);
            assert_true(combine_of(crc_algs[a], x, y, n - split) == whole);
        }
    }
}

static void test_combine_long_and_many_parts(void **state)
{
    (void)state;
    enum { N = 1 << 20 };
    unsigned char *buf = malloc(N);
    assert_non_null(buf);
    fill(buf, N, 77);
    const size_t parts[] = {1, 7, 16, 3, 64, 21, 65536, 100000, 5, 300000};
    for (size_t a = 0; a < 3; a++) {
        cf_checksum_alg alg = crc_algs[a];
        size_t len = cf_checksum_len(alg);
        unsigned char acc[8] = {0}, part[8], whole[8]; /* all zeros: the CRC of nothing */
        size_t off = 0;
        for (size_t i = 0; off < N; i++) {
            size_t n = i < sizeof parts / sizeof parts[0] ? parts[i] : N - off;
            if (n > N - off)
                n = N - off;
            assert_int_equal(cf_checksum_compute(alg, buf + off, n, part), 0);
            assert_int_equal(cf_checksum_combine(alg, acc, part, n), 0);
            off += n;
        }
        assert_int_equal(cf_checksum_compute(alg, buf, N, whole), 0);
        assert_memory_equal(acc, whole, len);
        /* An empty part leaves it alone. */
        assert_int_equal(cf_checksum_compute(alg, "", 0, part), 0);
        assert_int_equal(cf_checksum_combine(alg, acc, part, 0), 0);
        assert_memory_equal(acc, whole, len);
    }
    /* Combining with N zero bytes equals feeding them; doubling a run of zeros by combining it
     * with itself equals the CRC of the longer run. */
    memset(buf, 0, N);
    for (size_t a = 0; a < 3; a++) {
        uint64_t x = crc_of(crc_algs[a], 0, "xyz", 3);
        uint64_t zeros = crc_of(crc_algs[a], 0, buf, N / 4);
        assert_true(combine_of(crc_algs[a], x, zeros, N / 4) == crc_of(crc_algs[a], x, buf, N / 4));
        uint64_t twice = combine_of(crc_algs[a], zeros, zeros, N / 4);
        assert_true(twice == crc_of(crc_algs[a], 0, buf, N / 2));
        assert_true(combine_of(crc_algs[a], twice, twice, N / 2) == crc_of(crc_algs[a], 0, buf, N));
        /* Lengths far beyond memory (terabytes, and the top bit of 64): the operator is the same
         * whichever way the lengths are grouped. */
        const uint64_t l1 = (uint64_t)1 << 40, l2 = 3 * ((uint64_t)1 << 41) + 5, l3 = (uint64_t)1 << 63;
        uint64_t p = 0x0123456789abcdefull, q = 0xfedcba9876543210ull, r = 0x5555aaaa3333ccccull;
        if (a < 2) {
            p &= 0xffffffffu;
            q &= 0xffffffffu;
            r &= 0xffffffffu;
        }
        assert_true(combine_of(crc_algs[a], combine_of(crc_algs[a], p, q, l1), r, l2) ==
                    combine_of(crc_algs[a], p, combine_of(crc_algs[a], q, r, l2), l1 + l2));
        assert_true(combine_of(crc_algs[a], combine_of(crc_algs[a], p, q, l3), r, l3 - 1) ==
                    combine_of(crc_algs[a], p, combine_of(crc_algs[a], q, r, l3 - 1), UINT64_MAX));
    }
    unsigned char sha[20] = {0};
    assert_int_equal(cf_checksum_combine(CF_CK_SHA1, sha, sha, 1), CF_EINVAL);
    assert_int_equal(cf_checksum_combine(CF_CK_SHA256, sha, sha, 1), CF_EINVAL);
    free(buf);
}

/* ---- composite ---- */

static void test_composite_format(void **state)
{
    (void)state;
    unsigned char p1[5000], p2[3000];
    fill(p1, sizeof p1, 1);
    fill(p2, sizeof p2, 2);
    for (size_t a = 0; a < 5; a++) {
        cf_checksum_alg alg = all_algs[a];
        size_t len = cf_checksum_len(alg);
        unsigned char raw[2 * CF_CHECKSUM_MAX_LEN], outer[CF_CHECKSUM_MAX_LEN];
        assert_int_equal(cf_checksum_compute(alg, p1, sizeof p1, raw), 0);
        assert_int_equal(cf_checksum_compute(alg, p2, sizeof p2, raw + len), 0);
        /* By hand: checksum of the concatenated raw checksums, base64, "-2". */
        assert_int_equal(cf_checksum_compute(alg, raw, 2 * len, outer), 0);
        char want[CF_CHECKSUM_COMPOSITE_MAX], got[CF_CHECKSUM_COMPOSITE_MAX];
        size_t n = cf_base64_encode(outer, len, want);
        strcpy(want + n, "-2");
        cf_err err;
        assert_int_equal(cf_checksum_composite(alg, raw, 2, got, &err), (int)strlen(want));
        assert_string_equal(got, want);

        cf_checksum *ck = cf_checksum_new(alg);
        cf_checksum_update(ck, raw, len);
        cf_checksum_update(ck, raw + len, len);
        assert_int_equal(cf_checksum_final_composite(ck, 2, got, &err), (int)strlen(want));
        assert_string_equal(got, want);
        /* ck was reset: the same again */
        cf_checksum_update(ck, raw, 2 * len);
        assert_true(cf_checksum_final_composite(ck, 2, got, &err) > 0);
        assert_string_equal(got, want);
        assert_int_equal(cf_checksum_final_composite(ck, 0, got, &err), CF_EINVAL);
        cf_checksum_free(ck);
        assert_int_equal(cf_checksum_composite(alg, raw, 0, got, &err), CF_EINVAL);
        assert_non_null(strstr(err.msg, "parts"));
    }
    /* The longest: SHA-256 of 10,000 parts. */
    static unsigned char many[10000 * 32];
    fill(many, sizeof many, 3);
    char got[CF_CHECKSUM_COMPOSITE_MAX];
    assert_int_equal(cf_checksum_composite(CF_CK_SHA256, many, 10000, got, NULL), 44 + 6);
    assert_string_equal(got + 44, "-10000");
    assert_int_equal(cf_checksum_composite((cf_checksum_alg)9, many, 1, got, NULL), CF_EINVAL);
}

/* ---- names and decoding ---- */

static void test_names(void **state)
{
    (void)state;
    const char *names[] = {"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"};
    const size_t lens[] = {4, 4, 8, 20, 32};
    for (size_t i = 0; i < 5; i++) {
        cf_checksum_alg alg = (cf_checksum_alg)99;
        assert_int_equal(cf_checksum_alg_from_name(names[i], &alg), 0);
        assert_int_equal(alg, all_algs[i]);
        assert_string_equal(cf_checksum_name(alg), names[i]);
        assert_int_equal(cf_checksum_len(alg), lens[i]);
        assert_int_equal(cf_checksum_is_crc(alg), i < 3);
        const char *h = cf_checksum_header(alg);
        assert_int_equal(strncmp(h, "x-amz-checksum-", 15), 0);
        alg = (cf_checksum_alg)99;
        assert_int_equal(cf_checksum_alg_from_name(h, &alg), 0); /* full header */
        assert_int_equal(alg, all_algs[i]);
        alg = (cf_checksum_alg)99;
        assert_int_equal(cf_checksum_alg_from_name(h + 15, &alg), 0); /* suffix */
        assert_int_equal(alg, all_algs[i]);
    }
    assert_string_equal(cf_checksum_header(CF_CK_CRC64NVME), "x-amz-checksum-crc64nvme");
    cf_checksum_alg alg;
    assert_int_equal(cf_checksum_alg_from_name("Crc64Nvme", &alg), 0);
    assert_int_equal(alg, CF_CK_CRC64NVME);
    assert_int_equal(cf_checksum_alg_from_name("X-Amz-Checksum-Crc32c", &alg), 0);
    assert_int_equal(alg, CF_CK_CRC32C);
    const char *bad[] = {"",
                         "MD5",
                         "crc",
                         "crc32 ",
                         "x-amz-checksum-",
                         "x-amz-checksum-md5",
                         "sha-256",
                         "x-amz-checksum-crc32-x",
                         "CRC64"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cf_checksum_alg_from_name(bad[i], &alg), CF_EINVAL);
    assert_int_equal(cf_checksum_alg_from_name(NULL, &alg), CF_EINVAL);
    assert_null(cf_checksum_new((cf_checksum_alg)5));
    assert_int_equal(cf_checksum_len((cf_checksum_alg)5), 0);
    assert_string_equal(cf_checksum_name((cf_checksum_alg)5), "");
    cf_checksum_free(NULL);
}

static void test_decode_header_values(void **state)
{
    (void)state;
    unsigned char raw[CF_CHECKSUM_MAX_LEN];
    cf_err err;
    assert_int_equal(cf_checksum_decode(CF_CK_CRC32, "y/Q5Jg==", 8, raw, &err), 0);
    assert_memory_equal(raw, "\xcb\xf4\x39\x26", 4);
    assert_int_equal(cf_checksum_decode(CF_CK_CRC64NVME, "rosUhgp5mIg=", 12, raw, &err), 0);
    assert_true(be(raw, 8) == 0xAE8B14860A799888ull);
    assert_int_equal(
        cf_checksum_decode(CF_CK_SHA256, "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=", 44, raw, &err), 0);
    struct {
        cf_checksum_alg alg;
        const char *s;
    } bad[] = {
        {CF_CK_CRC32, "y/Q5Jg="}, /* padding missing */
        {CF_CK_CRC32, "y/Q5Jg"},
        {CF_CK_CRC32, "y/Q5Jh=="},     /* non-zero bits under the padding */
        {CF_CK_CRC32, "rosUhgp5mIg="}, /* a CRC64 */
        {CF_CK_CRC64NVME, "y/Q5Jg=="}, /* a CRC32 */
        {CF_CK_CRC32, "y/Q5Jg==\n"},
        {CF_CK_CRC32, ""},
        {CF_CK_SHA1, "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="},
        {CF_CK_CRC32C, "y/Q5-g=="},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cf_checksum_decode(bad[i].alg, bad[i].s, strlen(bad[i].s), raw, &err), CF_EINVAL);
        assert_non_null(strstr(err.msg, cf_checksum_header(bad[i].alg)));
    }
    assert_int_equal(cf_checksum_decode((cf_checksum_alg)7, "y/Q5Jg==", 8, raw, NULL), CF_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_values),
        cmocka_unit_test(test_aws_sdk_vectors),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_odd_pieces_equal_one_shot),
        cmocka_unit_test(test_tables_match_reference_on_every_short_length),
        cmocka_unit_test(test_crc32c_hardware_equals_tables),
        cmocka_unit_test(test_combine_every_split),
        cmocka_unit_test(test_combine_long_and_many_parts),
        cmocka_unit_test(test_composite_format),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_decode_header_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
