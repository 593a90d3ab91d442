/*
 * test_hash.c - digests, HMAC, hex and base64.
 *
 * Digest vectors: FIPS 180-2 appendix B (SHA-256 "abc", the 448-bit message, a million 'a'),
 * RFC 1321 appendix A.5 (MD5), FIPS 180-1 (SHA-1 "abc"). HMAC vectors: RFC 4231 test cases 1,
 * 2, 6 and 7. Base64 vectors: RFC 4648 section 10.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "crypto/hash.h"

static size_t digest_len(cf_hash_alg alg)
{
    return alg == CF_HASH_MD5 ? CF_MD5_LEN : alg == CF_HASH_SHA1 ? CF_SHA1_LEN : CF_SHA256_LEN;
}

static void assert_hex(const unsigned char *d, size_t n, const char *want)
{
    char hex[2 * 64 + 1];
    assert_true(n <= 64);
    cf_hex_encode(d, n, hex);
    assert_string_equal(hex, want);
}

static void assert_oneshot(cf_hash_alg alg, const void *p, size_t n, const char *want)
{
    unsigned char d[CF_SHA256_LEN];
    cf_hash *h = cf_hash_new(alg);
    assert_non_null(h);
    cf_hash_update(h, p, n);
    cf_hash_final(h, d);
    assert_hex(d, digest_len(alg), want);
    cf_hash_free(h);
    if (alg == CF_HASH_SHA256) {
        cf_sha256(p, n, d);
        assert_hex(d, CF_SHA256_LEN, want);
    } else if (alg == CF_HASH_MD5) {
        cf_md5(p, n, d);
        assert_hex(d, CF_MD5_LEN, want);
    }
}

static void test_sha256_known_digests(void **state)
{
    (void)state;
    assert_oneshot(CF_HASH_SHA256, "", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_oneshot(CF_HASH_SHA256, "abc", 3,
                   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_oneshot(CF_HASH_SHA256, m448, strlen(m448),
                   "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_md5_and_sha1_known_digests(void **state)
{
    (void)state;
    assert_oneshot(CF_HASH_MD5, "", 0, "d41d8cd98f00b204e9800998ecf8427e");
    assert_oneshot(CF_HASH_MD5, "abc", 3, "900150983cd24fb0d6963f7d28e17f72");
    assert_oneshot(CF_HASH_MD5, "message digest", 14, "f96b697d7cb7938d525a2f31aaf161d0");
    assert_oneshot(CF_HASH_SHA1, "", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_oneshot(CF_HASH_SHA1, "abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
}

static void test_million_a_in_odd_pieces(void **state)
{
    (void)state;
    size_t n = 1000000;
    char *a = malloc(n);
    assert_non_null(a);
    memset(a, 'a', n);
    cf_hash *sha = cf_hash_new(CF_HASH_SHA256), *md5 = cf_hash_new(CF_HASH_MD5);
    assert_non_null(sha);
    assert_non_null(md5);
    for (size_t off = 0, step = 1; off < n; off += step, step = step * 3 + 1) {
        size_t take = off + step > n ? n - off : step;
        cf_hash_update(sha, a + off, take);
        cf_hash_update(md5, a + off, take);
    }
    unsigned char d[CF_SHA256_LEN];
    cf_hash_final(sha, d);
    assert_hex(d, CF_SHA256_LEN, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    cf_hash_final(md5, d);
    assert_hex(d, CF_MD5_LEN, "7707d6ae4e027c70eea2a935c2296f21");
    cf_hash_free(sha);
    cf_hash_free(md5);
    free(a);
}

/* The PUT path feeds bodies in whatever pieces the network delivers; the digest must not care. */
static void test_multi_megabyte_streaming_equals_one_shot(void **state)
{
    (void)state;
    size_t n = 5 * 1024 * 1024 + 77;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
    static const size_t pieces[] = {1, 3, 63, 64, 65, 127, 4097, 65535, 1048577, 7};
    cf_hash_alg algs[] = {CF_HASH_MD5, CF_HASH_SHA1, CF_HASH_SHA256};
    for (size_t a = 0; a < 3; a++) {
        unsigned char whole[CF_SHA256_LEN], streamed[CF_SHA256_LEN];
        cf_hash *h = cf_hash_new(algs[a]);
        assert_non_null(h);
        cf_hash_update(h, buf, n);
        cf_hash_final(h, whole);
        /* The same handle, reused after final: final resets it. */
        size_t off = 0;
        for (size_t i = 0; off < n; i++) {
            size_t take = pieces[i % 10];
            if (take > n - off)
                take = n - off;
            cf_hash_update(h, buf + off, take);
            cf_hash_update(h, buf, 0);
            off += take;
        }
        cf_hash_final(h, streamed);
        assert_memory_equal(whole, streamed, digest_len(algs[a]));
        cf_hash_free(h);
    }
    unsigned char d1[CF_SHA256_LEN], d2[CF_SHA256_LEN];
    cf_sha256(buf, n, d1);
    cf_hash *h = cf_hash_new(CF_HASH_SHA256);
    cf_hash_update(h, buf, n);
    cf_hash_final(h, d2);
    assert_memory_equal(d1, d2, CF_SHA256_LEN);
    cf_hash_free(h);
    free(buf);
}

static void test_reset_discards_input(void **state)
{
    (void)state;
    unsigned char d[CF_SHA256_LEN];
    cf_hash *h = cf_hash_new(CF_HASH_SHA256);
    assert_non_null(h);
    cf_hash_update(h, "garbage", 7);
    cf_hash_reset(h);
    cf_hash_update(h, "abc", 3);
    cf_hash_final(h, d);
    assert_hex(d, CF_SHA256_LEN, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cf_hash_free(h);
    cf_hash_free(NULL);
    assert_null(cf_hash_new((cf_hash_alg)42));
}

static void assert_hmac(const void *key, size_t keylen, const char *msg, const char *want)
{
    unsigned char d[CF_SHA256_LEN];
    cf_hmac_sha256(key, keylen, msg, strlen(msg), d);
    assert_hex(d, CF_SHA256_LEN, want);
}

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    unsigned char k1[20], k6[131];
    memset(k1, 0x0b, sizeof k1);
    memset(k6, 0xaa, sizeof k6);
    assert_hmac(k1, sizeof k1, "Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    assert_hmac("Jefe", 4, "what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    assert_hmac(k6, sizeof k6, "Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    assert_hmac(k6, sizeof k6,
                "This is a test using a larger than block-size key and a larger than block-size "
                "data. The key needs to be hashed before being used by the HMAC algorithm.",
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
    /* Empty key and message: legal HMAC, and must not be confused with a failure. */
    assert_hmac("", 0, "", "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void test_hex_round_trip_and_case(void **state)
{
    (void)state;
    unsigned char in[256], out[256];
    char hex[513];
    for (int i = 0; i < 256; i++)
        in[i] = (unsigned char)i;
    cf_hex_encode(in, sizeof in, hex);
    assert_int_equal(strlen(hex), 512);
    assert_memory_equal(hex, "000102", 6);
    assert_string_equal(hex + 506, "fdfeff");
    assert_int_equal(cf_hex_decode(hex, sizeof in, out), 0);
    assert_memory_equal(in, out, sizeof in);
    assert_int_equal(cf_hex_decode("DEADbeef", 4, out), 0);
    assert_memory_equal(out, "\xde\xad\xbe\xef", 4);
    cf_hex_encode(in, 0, hex);
    assert_string_equal(hex, "");
}

static void test_hex_rejects_malformed(void **state)
{
    (void)state;
    unsigned char out[4];
    assert_int_equal(cf_hex_decode("0g", 1, out), CF_EINVAL);
    assert_int_equal(cf_hex_decode("g0", 1, out), CF_EINVAL);
    assert_int_equal(cf_hex_decode("12 4", 2, out), CF_EINVAL);
    assert_int_equal(cf_hex_decode("-1", 1, out), CF_EINVAL);
    /* Shorter than announced: the terminating NUL is not a digit, and nothing past it is read. */
    assert_int_equal(cf_hex_decode("abc", 2, out), CF_EINVAL);
    assert_int_equal(cf_hex_decode("", 1, out), CF_EINVAL);
}

static void test_base64_rfc4648(void **state)
{
    (void)state;
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char b64[16];
        unsigned char back[8];
        size_t n = strlen(plain[i]);
        assert_int_equal(cf_base64_encode((const unsigned char *)plain[i], n, b64), strlen(coded[i]));
        assert_string_equal(b64, coded[i]);
        assert_int_equal(cf_base64_decode(coded[i], strlen(coded[i]), back, sizeof back), (long)n);
        assert_memory_equal(back, plain[i], n);
    }
}

static void test_base64_round_trip_all_lengths(void **state)
{
    (void)state;
    unsigned char in[300], back[300];
    char b64[4 * 100 + 1];
    for (int i = 0; i < 300; i++)
        in[i] = (unsigned char)(i * 151 + 7);
    for (size_t n = 0; n <= 300; n += (n < 20 ? 1 : 37)) {
        size_t len = cf_base64_encode(in, n, b64);
        assert_int_equal(len, 4 * ((n + 2) / 3));
        assert_int_equal(strlen(b64), len);
        assert_int_equal(cf_base64_decode(b64, len, back, n), (long)n);
        assert_memory_equal(in, back, n);
        /* One byte less room than needed is an error, not a truncation. */
        if (n)
            assert_int_equal(cf_base64_decode(b64, len, back, n - 1), CF_EINVAL);
    }
}

static void test_base64_rejects_malformed(void **state)
{
    (void)state;
    unsigned char out[16];
    static const char *bad[] = {
        "Zg=",               /* not a multiple of 4 */
        "Zg",                /* padding required */
        "Z===",              /* at most two '=' */
        "====",      "Zg=a", /* data after padding */
        "Zg==Zg==",          /* padding only in the last quantum */
        "Zm9v Zg==",         /* whitespace */
        "Zm9\nYg==", "Zm9-", /* base64url alphabet */
        "Zm9_",      "Zh==", /* non-zero bits under the padding: "Zg==" is the only encoding of "f" */
        "Zm9=",      "Zm\0v",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t len = i == sizeof bad / sizeof *bad - 1 ? 4 : strlen(bad[i]);
        assert_int_equal(cf_base64_decode(bad[i], len, out, sizeof out), CF_EINVAL);
    }
    assert_int_equal(cf_base64_decode("", 0, out, 0), 0);
}

static void test_consttime_eq(void **state)
{
    (void)state;
    assert_true(cf_consttime_eq("abcdef", "abcdef", 6));
    assert_false(cf_consttime_eq("abcdef", "abcdeF", 6));
    assert_false(cf_consttime_eq("xbcdef", "abcdef", 6));
    assert_true(cf_consttime_eq("a", "b", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_known_digests),
        cmocka_unit_test(test_md5_and_sha1_known_digests),
        cmocka_unit_test(test_million_a_in_odd_pieces),
        cmocka_unit_test(test_multi_megabyte_streaming_equals_one_shot),
        cmocka_unit_test(test_reset_discards_input),
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_hex_round_trip_and_case),
        cmocka_unit_test(test_hex_rejects_malformed),
        cmocka_unit_test(test_base64_rfc4648),
        cmocka_unit_test(test_base64_round_trip_all_lengths),
        cmocka_unit_test(test_base64_rejects_malformed),
        cmocka_unit_test(test_consttime_eq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
