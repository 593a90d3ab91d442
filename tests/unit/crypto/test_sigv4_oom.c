/*
 * test_sigv4_oom.c - SigV4 when OpenSSL cannot allocate: every call that derives a key or
 * signs reports CF_ENOMEM, never a signature made with a random or half-derived key, and a
 * failed derivation is not cached. OpenSSL's allocator is replaced before its first allocation
 * (so this test has a process of its own) by one that fails while `failing` is set.
 */
#include <openssl/crypto.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "crypto/hash.h"
#include "crypto/sigv4.h"

static int failing;

static void *test_malloc_fn(size_t n, const char *file, int line)
{
    (void)file, (void)line;
    return failing ? NULL : malloc(n);
}

static void *test_realloc_fn(void *p, size_t n, const char *file, int line)
{
    (void)file, (void)line;
    return failing ? NULL : realloc(p, n);
}

static void test_free_fn(void *p, const char *file, int line)
{
    (void)file, (void)line;
    free(p);
}

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define LONG_SECRET "a secret longer than the sixty bytes that fit beside AWS4 in one HMAC block"
#define DOCUMENTED_KEY "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378"

static void assert_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i], 0);
}

static void test_signing_key_reports_enomem(void **state)
{
    (void)state;
    unsigned char key[32];
    const char *const secrets[] = {SECRET, LONG_SECRET};
    for (size_t i = 0; i < 2; i++) {
        memset(key, 0x5a, sizeof key);
        failing = 1;
        int rc = cf_sigv4_signing_key(secrets[i], "20130524", "us-east-1", "s3", key);
        failing = 0;
        assert_int_equal(rc, CF_ENOMEM);
        assert_zero(key, sizeof key);
    }
    char sig[65];
    failing = 1;
    int rc = cf_sigv4_sign(key, "string to sign", 14, sig);
    failing = 0;
    assert_int_equal(rc, CF_ENOMEM);
}

/* A cache keeps nothing from a failed derivation: once memory is back, the right key. */
static void test_cache_keeps_no_failed_key(void **state)
{
    (void)state;
    cf_sigv4_key_cache *keys;
    assert_int_equal(cf_sigv4_key_cache_new(&keys), 0);
    unsigned char key[32];
    failing = 1;
    int rc = cf_sigv4_cached_signing_key(keys, SECRET, "20130524", "us-east-1", "s3", key);
    failing = 0;
    assert_int_equal(rc, CF_ENOMEM);
    assert_int_equal(cf_sigv4_cached_signing_key(keys, SECRET, "20130524", "us-east-1", "s3", key), 0);
    char hex[65];
    cf_hex_encode(key, 32, hex);
    assert_string_equal(hex, DOCUMENTED_KEY);
    cf_sigv4_key_cache_free(keys);
}

static const char *host_only(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "host") == 0 ? "examplebucket.s3.amazonaws.com" : NULL;
}

static int each_host(void *ctx, cf_sigv4_header_visit_fn visit, void *arg)
{
    (void)ctx;
    return visit(arg, "Host");
}

/* A verifier out of memory answers CF_ENOMEM (a server error), not CF_EAUTH: the client's
 * signature was never compared with anything. */
static void test_verify_and_presign_report_enomem(void **state)
{
    (void)state;
    cf_sigv4_auth auth = {0};
    cf_err err = {0};
    assert_int_equal(cf_sigv4_parse_auth("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20130524/us-east-1/s3/"
                                         "aws4_request,SignedHeaders=host,Signature="
                                         "0000000000000000000000000000000000000000000000000000000000000000",
                                         &auth, &err),
                     0);
    cf_sigv4_request req = {"GET",    "/test.txt", NULL, 0, host_only, NULL, CF_SIGV4_UNSIGNED_PAYLOAD,
                            each_host};
    int64_t now;
    assert_int_equal(cf_sigv4_parse_amz_date("20130524T000000Z", &now), 0);
    failing = 1;
    int rc = cf_sigv4_verify(NULL, &req, &auth, SECRET, "20130524T000000Z", now, NULL, &err);
    failing = 0;
    assert_int_equal(rc, CF_ENOMEM);
    assert_int_equal(err.code, CF_ENOMEM);

    cf_sigv4_presign_opts o = {.method = "GET",
                               .host = "127.0.0.1:9000",
                               .path = "/b/k",
                               .access_key = "AKIDEXAMPLE",
                               .secret = SECRET,
                               .region = "us-east-1",
                               .now = now,
                               .expires = 60};
    cf_buf url;
    cf_buf_init(&url, 1 << 16);
    failing = 1;
    rc = cf_sigv4_presign(&o, &url, &err);
    failing = 0;
    assert_int_equal(rc, CF_ENOMEM);
    assert_true(url.len == 0);
    assert_int_equal(cf_sigv4_presign(&o, &url, &err), 0);
    assert_non_null(strstr(url.data, "X-Amz-Signature="));
    cf_buf_cleanup(&url);
}

int main(void)
{
    /* Before OpenSSL allocates anything: it accepts a new allocator only then. */
    if (!CRYPTO_set_mem_functions(test_malloc_fn, test_realloc_fn, test_free_fn))
        return 1;
    /* Warm up, so that the fetched algorithm handles exist before allocations fail. */
    unsigned char key[32];
    char hex[65];
    if (cf_sigv4_signing_key(SECRET, "20130524", "us-east-1", "s3", key) != 0)
        return 1;
    cf_hex_encode(key, 32, hex);
    if (strcmp(hex, DOCUMENTED_KEY) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signing_key_reports_enomem),
        cmocka_unit_test(test_cache_keeps_no_failed_key),
        cmocka_unit_test(test_verify_and_presign_report_enomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
