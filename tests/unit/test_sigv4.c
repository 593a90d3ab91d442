/*
 * test_sigv4.c - SigV4 against AWS's published S3 examples ("Signature Calculations for the
 * Authorization Header: Transferring Payload in a Single Chunk", bucket examplebucket,
 * 20130524) and the generic suite's get-vanilla, plus the server-side checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/hash.h"
#include "crypto/sigv4.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

typedef struct hdr {
    const char *name;
    const char *value;
} hdr;

static const char *lookup(void *ctx, const char *name)
{
    for (const hdr *h = ctx; h->name; h++)
        if (strcmp(h->name, name) == 0)
            return h->value;
    return NULL;
}

/* Builds the canonical request, string to sign and signature, checking each. */
static void check_vector(const cf_sigv4_request *req, const char *signed_headers,
                         const char *want_creq, const char *want_sts, const char *secret,
                         const char *amz_date, const char *region, const char *service,
                         const char *want_sig)
{
    cf_buf creq, sts;
    cf_err err;
    cf_buf_init(&creq, 1 << 16);
    cf_buf_init(&sts, 1 << 16);
    assert_int_equal(cf_sigv4_canonical_request(req, signed_headers, &creq, &err), 0);
    assert_string_equal(creq.data, want_creq);
    char date[9];
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    assert_int_equal(cf_sigv4_string_to_sign(amz_date, date, region, service, creq.data, creq.len, &sts), 0);
    if (want_sts)
        assert_string_equal(sts.data, want_sts);
    unsigned char key[32];
    char sig[65];
    cf_sigv4_signing_key(secret, date, region, service, key);
    cf_sigv4_sign(key, sts.data, sts.len, sig);
    assert_string_equal(sig, want_sig);
    cf_buf_cleanup(&creq);
    cf_buf_cleanup(&sts);
}

static void test_s3_get_object_with_range(void **state)
{
    (void)state;
    hdr h[] = {{"host", "examplebucket.s3.amazonaws.com"}, {"range", "bytes=0-9"},
               {"x-amz-content-sha256", EMPTY_SHA256}, {"x-amz-date", "20130524T000000Z"}, {NULL, NULL}};
    cf_sigv4_request req = {"GET", "/test.txt", NULL, 0, lookup, h, EMPTY_SHA256};
    check_vector(&req, "host;range;x-amz-content-sha256;x-amz-date",
                 "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                 "x-amz-content-sha256:" EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
                 "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
                 "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                 "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
                 S3_SECRET, "20130524T000000Z", "us-east-1", "s3",
                 "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void test_s3_put_object_encodes_dollar(void **state)
{
    (void)state;
    const char *body_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    unsigned char d[32];
    char hex[65];
    cf_sha256("Welcome to Amazon S3.", 21, d);
    cf_hex_encode(d, 32, hex);
    assert_string_equal(hex, body_hash);
    hdr h[] = {{"date", "Fri, 24 May 2013 00:00:00 GMT"}, {"host", "examplebucket.s3.amazonaws.com"},
               {"x-amz-content-sha256", body_hash}, {"x-amz-date", "20130524T000000Z"},
               {"x-amz-storage-class", "REDUCED_REDUNDANCY"}, {NULL, NULL}};
    cf_sigv4_request req = {"PUT", "/test$file.text", NULL, 0, lookup, h, body_hash};
    check_vector(&req, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                 "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"
                 "host:examplebucket.s3.amazonaws.com\nx-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
                 "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
                 "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
                 "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
                 "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                 "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
                 S3_SECRET, "20130524T000000Z", "us-east-1", "s3",
                 "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void test_s3_get_bucket_lifecycle_bare_param(void **state)
{
    (void)state;
    hdr h[] = {{"host", "examplebucket.s3.amazonaws.com"}, {"x-amz-content-sha256", EMPTY_SHA256},
               {"x-amz-date", "20130524T000000Z"}, {NULL, NULL}};
    cf_sigv4_param params[] = {{"lifecycle", ""}};
    cf_sigv4_request req = {"GET", "/", params, 1, lookup, h, EMPTY_SHA256};
    check_vector(&req, "host;x-amz-content-sha256;x-amz-date",
                 "GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\n"
                 "x-amz-content-sha256:" EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
                 "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
                 "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                 "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
                 S3_SECRET, "20130524T000000Z", "us-east-1", "s3",
                 "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

static void test_s3_list_objects_sorts_params(void **state)
{
    (void)state;
    hdr h[] = {{"host", "examplebucket.s3.amazonaws.com"}, {"x-amz-content-sha256", EMPTY_SHA256},
               {"x-amz-date", "20130524T000000Z"}, {NULL, NULL}};
    cf_sigv4_param params[] = {{"prefix", "J"}, {"max-keys", "2"}};
    cf_sigv4_request req = {"GET", "/", params, 2, lookup, h, EMPTY_SHA256};
    check_vector(&req, "host;x-amz-content-sha256;x-amz-date",
                 "GET\n/\nmax-keys=2&prefix=J\nhost:examplebucket.s3.amazonaws.com\n"
                 "x-amz-content-sha256:" EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
                 "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
                 "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                 "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
                 S3_SECRET, "20130524T000000Z", "us-east-1", "s3",
                 "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

/* aws-sig-v4-test-suite/get-vanilla: service "service", no payload hash header. */
static void test_suite_get_vanilla(void **state)
{
    (void)state;
    hdr h[] = {{"host", "example.amazonaws.com"}, {"x-amz-date", "20150830T123600Z"}, {NULL, NULL}};
    cf_sigv4_request req = {"GET", "/", NULL, 0, lookup, h, EMPTY_SHA256};
    check_vector(&req, "host;x-amz-date",
                 "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA256,
                 "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
                 "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
                 "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830T123600Z", "us-east-1", "service",
                 "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void test_header_values_trimmed_and_collapsed(void **state)
{
    (void)state;
    hdr h[] = {{"host", "h"}, {"my-header1", "  value1  "}, {"my-header2", "\"a   b   c\""}, {NULL, NULL}};
    cf_sigv4_request req = {"GET", "/", NULL, 0, lookup, h, EMPTY_SHA256};
    cf_buf b;
    cf_err err;
    cf_buf_init(&b, 4096);
    assert_int_equal(cf_sigv4_canonical_request(&req, "host;my-header1;my-header2", &b, &err), 0);
    assert_non_null(strstr(b.data, "my-header1:value1\nmy-header2:\"a b c\"\n"));
    cf_buf_cleanup(&b);
}

static void test_uri_encoding(void **state)
{
    (void)state;
    cf_buf b;
    cf_buf_init(&b, 4096);
    assert_int_equal(cf_sigv4_uri_encode(&b, "a b/c+d~e_f.g-h*\xc3\xa9", 18, 1), 0);
    assert_string_equal(b.data, "a%20b/c%2Bd~e_f.g-h%2A%C3%A9");
    cf_buf_reset(&b);
    assert_int_equal(cf_sigv4_uri_encode(&b, "x/y=", 4, 0), 0);
    assert_string_equal(b.data, "x%2Fy%3D");
    cf_buf_cleanup(&b);
}

static void test_parse_auth(void **state)
{
    (void)state;
    cf_sigv4_auth a;
    cf_err err;
    const char *good = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                       "SignedHeaders=host;range;x-amz-date,"
                       "Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024";
    assert_int_equal(cf_sigv4_parse_auth(good, &a, &err), 0);
    assert_string_equal(a.access_key, "AKIAIOSFODNN7EXAMPLE");
    assert_string_equal(a.date, "20130524");
    assert_string_equal(a.region, "us-east-1");
    assert_string_equal(a.service, "s3");
    assert_string_equal(a.signed_headers, "host;range;x-amz-date");
    const char *spaced = "AWS4-HMAC-SHA256 Signature=FE5F80F77D5FA3BECA038A248FF027D0445342FE2855DDC963176630326F1024, "
                         "SignedHeaders=host, Credential=K/20130524/eu-west-1/s3/aws4_request";
    assert_int_equal(cf_sigv4_parse_auth(spaced, &a, &err), 0);
    assert_string_equal(a.signature, "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024");
    assert_string_equal(a.region, "eu-west-1");

    const char *bad[] = {
        "",
        "AWS AKID:signature",
        "AWS4-HMAC-SHA256 Credential=K/20130524/us-east-1/s3/aws4_request,SignedHeaders=host",
        "AWS4-HMAC-SHA256 Credential=K/2013052/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=" EMPTY_SHA256,
        "AWS4-HMAC-SHA256 Credential=K/20130524/us-east-1/s3/aws5_request,SignedHeaders=host,Signature=" EMPTY_SHA256,
        "AWS4-HMAC-SHA256 Credential=K/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=abc",
        "AWS4-HMAC-SHA256 Credential=K/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=zz" EMPTY_SHA256 ,
        "AWS4-HMAC-SHA256 Credential=K/20130524/us-east-1/s3/aws4_request,Bogus=1,SignedHeaders=host,Signature=" EMPTY_SHA256,
        "AWS4-HMAC-SHA256 Credential",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err.msg[0] = '\0';
        assert_int_equal(cf_sigv4_parse_auth(bad[i], &a, &err), CF_EINVAL);
        assert_true(err.msg[0] != '\0');
    }
    char longkey[400];
    snprintf(longkey, sizeof longkey, "AWS4-HMAC-SHA256 Credential=%0200d/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=%s", 0, EMPTY_SHA256);
    assert_int_equal(cf_sigv4_parse_auth(longkey, &a, &err), CF_EINVAL);
}

/* The server path: sign like a client, then verify; break one thing at a time. */
static void test_verify(void **state)
{
    (void)state;
    hdr h[] = {{"host", "127.0.0.1:9000"}, {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"},
               {"x-amz-date", "20261122T120000Z"}, {NULL, NULL}};
    cf_sigv4_param params[] = {{"list-type", "2"}, {"prefix", "a b/"}};
    cf_sigv4_request req = {"GET", "/bucket", params, 2, lookup, h, "UNSIGNED-PAYLOAD"};
    const char *sh = "host;x-amz-content-sha256;x-amz-date";
    cf_buf creq, sts;
    cf_err err;
    cf_buf_init(&creq, 1 << 16);
    cf_buf_init(&sts, 1 << 16);
    assert_int_equal(cf_sigv4_canonical_request(&req, sh, &creq, &err), 0);
    assert_int_equal(cf_sigv4_string_to_sign("20261122T120000Z", "20261122", "us-east-1", "s3", creq.data, creq.len, &sts), 0);
    unsigned char key[32], got_key[32];
    cf_sigv4_auth a = {0};
    cf_sigv4_signing_key("topsecret", "20261122", "us-east-1", "s3", key);
    cf_sigv4_sign(key, sts.data, sts.len, a.signature);
    strcpy(a.access_key, "AK");
    strcpy(a.date, "20261122");
    strcpy(a.region, "us-east-1");
    strcpy(a.service, "s3");
    strcpy(a.signed_headers, sh);
    int64_t now;
    assert_int_equal(cf_sigv4_parse_amz_date("20261122T120000Z", &now), 0);
    char back[17];
    cf_sigv4_format_amz_date(now, back);
    assert_string_equal(back, "20261122T120000Z");

    assert_int_equal(cf_sigv4_verify(&req, &a, "topsecret", "20261122T120000Z", now + 60, got_key, &err), 0);
    assert_memory_equal(got_key, key, 32);
    assert_int_equal(cf_sigv4_verify(&req, &a, "wrongsecret", "20261122T120000Z", now, NULL, &err), CF_EAUTH);
    assert_null(strstr(err.msg, "wrongsecret"));
    assert_null(strstr(err.msg, a.signature));
    assert_int_equal(cf_sigv4_verify(&req, &a, "topsecret", "20261122T120000Z", now + 16 * 60, NULL, &err), CF_EPRECOND);
    assert_int_equal(cf_sigv4_verify(&req, &a, "topsecret", "20261122T120000Z", now - 16 * 60, NULL, &err), CF_EPRECOND);
    params[1].value = "a b/c";
    assert_int_equal(cf_sigv4_verify(&req, &a, "topsecret", "20261122T120000Z", now, NULL, &err), CF_EAUTH);
    params[1].value = "a b/";
    strcpy(a.signed_headers, "host;x-amz-content-sha256;x-amz-date;x-amz-meta-missing");
    assert_int_equal(cf_sigv4_verify(&req, &a, "topsecret", "20261122T120000Z", now, NULL, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "x-amz-meta-missing"));
    strcpy(a.signed_headers, "x-amz-content-sha256;x-amz-date");
    assert_int_equal(cf_sigv4_verify(&req, &a, "topsecret", "20261122T120000Z", now, NULL, &err), CF_EINVAL);
    strcpy(a.signed_headers, sh);
    strcpy(a.date, "20261121");
    assert_int_equal(cf_sigv4_verify(&req, &a, "topsecret", "20261122T120000Z", now, NULL, &err), CF_EINVAL);
    strcpy(a.date, "20261122");
    strcpy(a.service, "ec2");
    assert_int_equal(cf_sigv4_verify(&req, &a, "topsecret", "20261122T120000Z", now, NULL, &err), CF_EINVAL);
    assert_int_equal(cf_sigv4_parse_amz_date("2026-11-22T12:00:00Z", &now), CF_EINVAL);
    assert_int_equal(cf_sigv4_parse_amz_date("20261322T120000Z", &now), CF_EINVAL);
    cf_buf_cleanup(&creq);
    cf_buf_cleanup(&sts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s3_get_object_with_range),
        cmocka_unit_test(test_s3_put_object_encodes_dollar),
        cmocka_unit_test(test_s3_get_bucket_lifecycle_bare_param),
        cmocka_unit_test(test_s3_list_objects_sorts_params),
        cmocka_unit_test(test_suite_get_vanilla),
        cmocka_unit_test(test_header_values_trimmed_and_collapsed),
        cmocka_unit_test(test_uri_encoding),
        cmocka_unit_test(test_parse_auth),
        cmocka_unit_test(test_verify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
