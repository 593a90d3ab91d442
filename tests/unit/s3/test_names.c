/*
 * test_names.c - the naming rules and encodings of src/s3/names.c and the dates of time.c.
 *
 * Bucket names follow AWS's "General purpose bucket naming rules" (user guide), whose examples
 * of valid and invalid names are used as given. Keys follow "Creating object key names": up to
 * 1024 bytes of UTF-8. Dates use the instant of RFC 9110's examples, 784111777 =
 * 1994-11-06T08:49:37Z, in its three formats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "s3/request.h"

/* ---- bucket names ---- */

static void expect_bucket(const char *name, int valid)
{
    if (cf_s3_bucket_name_valid(name) != valid)
        fail_msg("bucket name '%s': want %s", name, valid ? "valid" : "invalid");
}

static void test_bucket_names_aws_examples(void **state)
{
    /* The user guide's examples of valid names. */
    expect_bucket("docexamplebucket1", 1);
    expect_bucket("log-delivery-march-2020", 1);
    expect_bucket("my-hosted-content", 1);
    expect_bucket("docexamplewebsite.com", 1);
    expect_bucket("www.docexamplewebsite.com", 1);
    expect_bucket("my.example.s3.bucket", 1);
    /* ... and of invalid ones. */
    expect_bucket("doc_example_bucket", 0);
    expect_bucket("DocExampleBucket", 0);
    expect_bucket("doc-example-bucket-", 0);
}

static void test_bucket_name_length(void **state)
{
    char name[80];
    expect_bucket("", 0);
    expect_bucket("a", 0);
    expect_bucket("ab", 0);
    expect_bucket("abc", 1);
    expect_bucket("123", 1);
    memset(name, 'a', sizeof name);
    name[63] = '\0';
    expect_bucket(name, 1);
    name[63] = 'a';
    name[64] = '\0';
    expect_bucket(name, 0);
}

static void test_bucket_name_characters(void **state)
{
    expect_bucket("a-b.c9", 1);
    expect_bucket("a--b", 1); /* only "xn--" at the start is reserved, not "--" */
    /* Every byte that is not a-z 0-9 . - is refused, wherever it is. */
    for (int c = 1; c < 256; c++) {
        char name[] = "ab?cd";
        name[2] = (char)c;
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (cf_s3_bucket_name_valid(name) != ok)
            fail_msg("byte 0x%02x inside a bucket name: want %s", c, ok ? "valid" : "invalid");
    }
    expect_bucket("caf\xc3\xa9", 0);
    expect_bucket("my bucket", 0);
    expect_bucket("my/bucket", 0);
}

static void test_bucket_name_edges(void **state)
{
    expect_bucket("-abc", 0);
    expect_bucket(".abc", 0);
    expect_bucket("abc-", 0);
    expect_bucket("abc.", 0);
    expect_bucket("1bc", 1);
    expect_bucket("ab1", 1);
    expect_bucket("a..b", 0);
    expect_bucket("a.b.c", 1);
    /* The legacy DNS rule against a dash next to a dot is no longer in AWS's list; refusing
     * such names anyway keeps every name coffer accepts creatable on AWS. */
    expect_bucket("my-.bucket", 0);
    expect_bucket("my.-bucket", 0);
}

static void test_bucket_name_not_an_ip_address(void **state)
{
    expect_bucket("192.168.5.4", 0);
    expect_bucket("1.2.3.4", 0);
    expect_bucket("10.0.0.255", 0);
    /* Formatted as an address is enough; 256 is not a valid octet but the shape is refused. */
    expect_bucket("256.256.256.256", 0);
    expect_bucket("001.002.003.004", 0);
    /* Not the shape of a dotted quad. */
    expect_bucket("1.2.3", 1);
    expect_bucket("1.2.3.4.5", 1);
    expect_bucket("1.2.3.4a", 1);
    expect_bucket("a1.2.3.4", 1);
    expect_bucket("1234.1.1.1", 1);
    expect_bucket("192.168.5-4", 1);
}

static void test_bucket_name_reserved_affixes(void **state)
{
    expect_bucket("xn--abc", 0);
    expect_bucket("xn--", 0);
    expect_bucket("sthree-abc", 0);
    expect_bucket("sthree-configurator-abc", 0);
    expect_bucket("abc-s3alias", 0);
    expect_bucket("abc--ol-s3", 0);
    /* Near misses are ordinary names. */
    expect_bucket("xn-abc", 1);
    expect_bucket("axn--bc", 1);
    expect_bucket("sthree", 1);
    expect_bucket("sthreeabc", 1);
    expect_bucket("abc-s3alias1", 1);
    expect_bucket("abc-s3alia", 1);
    expect_bucket("abc-ol-s3", 1);
    expect_bucket("s3alias", 1);
}

/* ---- keys ---- */

static void expect_key(const char *key, size_t len, int rc)
{
    int got = cf_s3_key_check(key, len);
    if (got != rc) {
        char hex[64] = "";
        for (size_t i = 0; i < len && i < 16; i++)
            snprintf(hex + 3 * i, 4, "%02x ", (unsigned char)key[i]);
        fail_msg("key [%s] (%zu bytes): rc %d, want %d", hex, len, got, rc);
    }
}

#define KEY(s, rc) expect_key(s, sizeof(s) - 1, rc)

static void test_key_length_is_in_bytes(void **state)
{
    char key[1100];
    expect_key("", 0, CF_EINVAL);
    KEY("a", 0);
    memset(key, 'k', sizeof key);
    expect_key(key, 1024, 0);
    expect_key(key, 1025, CF_ETOOBIG);
    expect_key(key, sizeof key, CF_ETOOBIG);
    /* 1024 bytes, 342 characters: the limit counts UTF-8 bytes, not characters. */
    for (int i = 0; i < 341; i++)
        memcpy(key + 3 * i, "\xe2\x82\xac", 3);
    key[1023] = 'x';
    expect_key(key, 1024, 0);
    memcpy(key + 1023, "\xc3\xa9", 2);
    expect_key(key, 1025, CF_ETOOBIG);
}

/* The bytes after len are not the key's: a check that read to a NUL would see them. */
static void test_key_uses_len_not_nul(void **state)
{
    expect_key("abc\xff", 3, 0);
    expect_key("a\0b", 3, CF_EINVAL); /* NUL cannot be sent in XML 1.0 listings */
    expect_key("\0", 1, CF_EINVAL);
}

static void test_key_allows_any_well_formed_utf8(void **state)
{
    KEY("photos/2006/February/sample.jpg", 0);
    KEY("../../etc/passwd", 0); /* S3 keys are names, not paths */
    KEY("/", 0);
    KEY("a//b", 0);
    KEY(" ", 0);
    KEY("\x01\x1f\x7f", 0);     /* S3 allows them; encoding-type=url lists them */
    KEY("\xc2\x80", 0);         /* U+0080, the first two-byte character */
    KEY("\xdf\xbf", 0);         /* U+07FF */
    KEY("\xe0\xa0\x80", 0);     /* U+0800, the first three-byte character */
    KEY("\xed\x9f\xbf", 0);     /* U+D7FF, just below the surrogates */
    KEY("\xee\x80\x80", 0);     /* U+E000, just above them */
    KEY("\xef\xbf\xbf", 0);     /* U+FFFF */
    KEY("\xf0\x90\x80\x80", 0); /* U+10000, the first four-byte character */
    KEY("\xf4\x8f\xbf\xbf", 0); /* U+10FFFF, the last */
    KEY("\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80", 0);
}

static void test_key_refuses_malformed_utf8(void **state)
{
    KEY("\x80", CF_EINVAL); /* continuation byte without a lead */
    KEY("a\xbf", CF_EINVAL);
    KEY("\xc0\x80", CF_EINVAL);         /* overlong NUL */
    KEY("\xc1\xbf", CF_EINVAL);         /* overlong U+007F */
    KEY("\xe0\x80\x80", CF_EINVAL);     /* overlong three-byte */
    KEY("\xe0\x9f\xbf", CF_EINVAL);     /* overlong U+07FF */
    KEY("\xed\xa0\x80", CF_EINVAL);     /* U+D800, a surrogate */
    KEY("\xed\xbf\xbf", CF_EINVAL);     /* U+DFFF */
    KEY("\xf0\x80\x80\x80", CF_EINVAL); /* overlong four-byte */
    KEY("\xf0\x8f\xbf\xbf", CF_EINVAL); /* overlong U+FFFF */
    KEY("\xf4\x90\x80\x80", CF_EINVAL); /* U+110000 */
    KEY("\xf5\x80\x80\x80", CF_EINVAL); /* lead bytes F5..FF never occur */
    KEY("\xfe", CF_EINVAL);
    KEY("\xff", CF_EINVAL);
    KEY("\xe2\x82", CF_EINVAL); /* truncated at the end */
    KEY("\xf0\x9f\x98", CF_EINVAL);
    KEY("\xe2\x28\xa1", CF_EINVAL); /* ASCII where a continuation belongs */
    KEY("\xc3(", CF_EINVAL);
    KEY("\xc3\xa9\xc3", CF_EINVAL);
    KEY("ok\xed\xa0\x80\xed\xb0\x80", CF_EINVAL); /* CESU-8 pair: surrogates, not UTF-8 */
}

/* ---- percent-decoding ---- */

static void expect_decode(const char *in, const char *out, size_t outlen)
{
    cf_buf b;
    cf_buf_init(&b, 4096);
    int rc = cf_s3_url_decode(&b, in, strlen(in));
    if (rc != 0)
        fail_msg("decode '%s': rc %d", in, rc);
    assert_int_equal(b.len, outlen);
    assert_memory_equal(b.data, out, outlen);
    assert_int_equal(b.data[b.len], '\0');
    cf_buf_cleanup(&b);
}

static void test_url_decode(void **state)
{
    expect_decode("abc", "abc", 3);
    expect_decode("%41%42c", "ABc", 3);
    expect_decode("%2f%2F", "//", 2); /* hex digits of either case */
    expect_decode("a%20b", "a b", 3);
    /* A path is not a form: '+' is a plus sign, only %20 is a space. */
    expect_decode("a+b", "a+b", 3);
    expect_decode("%2B", "+", 1);
    expect_decode("%25", "%", 1);
    expect_decode("%2541", "%41", 3); /* decoded once, not twice */
    expect_decode("%E2%82%AC", "\xe2\x82\xac", 3);
    expect_decode("%ff%00%80", "\xff\0\x80", 3); /* bytes, not characters: callers judge them */
    expect_decode("", "", 0);
}

static void test_url_decode_bad_escapes(void **state)
{
    static const char *const bad[] = {"%",    "%4",  "a%",   "a%4", "%g0",       "%0g",
                                      "%%41", "%-1", "% 41", "%+1", "%\xff\xff", "abc%2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cf_buf b;
        cf_buf_init(&b, 4096);
        if (cf_s3_url_decode(&b, bad[i], strlen(bad[i])) != CF_EINVAL)
            fail_msg("decoded bad escape '%s'", bad[i]);
        cf_buf_cleanup(&b);
    }
}

/* n bounds the input: an escape cut by n is incomplete even if the string goes on. */
static void test_url_decode_reads_only_n_bytes(void **state)
{
    cf_buf b;
    cf_buf_init(&b, 64);
    assert_int_equal(cf_s3_url_decode(&b, "%41%42", 3), 0);
    assert_string_equal(b.data, "A");
    cf_buf_reset(&b);
    assert_int_equal(cf_s3_url_decode(&b, "%41", 2), CF_EINVAL);
    cf_buf_cleanup(&b);
}

/* Decoding appends: auth.c decodes every query name and value into one buffer. */
static void test_url_decode_appends(void **state)
{
    cf_buf b;
    cf_buf_init(&b, 64);
    assert_int_equal(cf_buf_puts(&b, "x="), 0);
    assert_int_equal(cf_s3_url_decode(&b, "%31%32", 6), 0);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "x=12");
    cf_buf_cleanup(&b);
}

static void test_url_decode_respects_buffer_max(void **state)
{
    cf_buf b;
    cf_buf_init(&b, 4);
    assert_int_equal(cf_s3_url_decode(&b, "abcde", 5), CF_ETOOBIG);
    assert_int_equal(b.len, 0);
    cf_buf_cleanup(&b);
}

/* ---- percent-encoding for encoding-type=url ---- */

static void expect_encode(const char *in, size_t n, const char *out)
{
    cf_buf b;
    cf_buf_init(&b, 4096);
    assert_int_equal(cf_s3_url_encode_key(&b, in, n), 0);
    assert_string_equal(b.data, out);
    cf_buf_cleanup(&b);
}

static void test_url_encode_key(void **state)
{
    expect_encode("photos/2006/February/sample.jpg", 31, "photos/2006/February/sample.jpg");
    expect_encode("AZaz09-_.~", 10, "AZaz09-_.~");
    /* botocore reads listings with unquote_plus: '+' must be escaped or it comes back a space. */
    expect_encode("a+b c", 5, "a%2Bb%20c");
    expect_encode("100%", 4, "100%25");
    expect_encode("a=b&c?d#e", 9, "a%3Db%26c%3Fd%23e");
    expect_encode("*'()!$,;:@[]", 12, "%2A%27%28%29%21%24%2C%3B%3A%40%5B%5D");
    expect_encode("\xe2\x82\xac", 3, "%E2%82%AC"); /* uppercase hex, as AWS sends */
    expect_encode("\x01\n\x7f", 3, "%01%0A%7F");
    expect_encode("a\0b", 3, "a%00b");
    expect_encode("", 0, "");
}

/* decode(encode(k)) == k for every byte, so every key survives a url-encoded listing. */
static void test_url_encode_then_decode_round_trips(void **state)
{
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    cf_buf enc, dec;
    cf_buf_init(&enc, 4096);
    cf_buf_init(&dec, 4096);
    assert_int_equal(cf_s3_url_encode_key(&enc, all, sizeof all), 0);
    for (size_t i = 0; i < enc.len; i++)
        assert_true(enc.data[i] > 0x20 && enc.data[i] < 0x7f && enc.data[i] != '+');
    assert_int_equal(cf_s3_url_decode(&dec, enc.data, enc.len), 0);
    assert_int_equal(dec.len, sizeof all);
    assert_memory_equal(dec.data, all, sizeof all);
    cf_buf_cleanup(&enc);
    cf_buf_cleanup(&dec);
}

static void test_url_encode_appends(void **state)
{
    cf_buf b;
    cf_buf_init(&b, 64);
    assert_int_equal(cf_buf_puts(&b, "<Key>"), 0);
    assert_int_equal(cf_s3_url_encode_key(&b, "a b", 3), 0);
    assert_string_equal(b.data, "<Key>a%20b");
    cf_buf_cleanup(&b);
}

/* ---- dates ---- */

#define RFC_INSTANT ((time_t)784111777) /* Sun, 06 Nov 1994 08:49:37 GMT */

static void test_http_date_format(void **state)
{
    char out[30];
    cf_s3_http_date(RFC_INSTANT, out);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    cf_s3_http_date(0, out);
    assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    cf_s3_http_date(951782400, out); /* a leap day in a year divisible by 400 */
    assert_string_equal(out, "Tue, 29 Feb 2000 00:00:00 GMT");
    cf_s3_http_date((time_t)2147483648LL, out); /* one past 32-bit time_t */
    assert_string_equal(out, "Tue, 19 Jan 2038 03:14:08 GMT");
    cf_s3_http_date(253402300799LL, out); /* the last second with a four-digit year */
    assert_string_equal(out, "Fri, 31 Dec 9999 23:59:59 GMT");
    assert_int_equal(strlen(out), 29);
}

static void test_iso8601_format(void **state)
{
    char out[25];
    cf_s3_iso8601(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    /* Milliseconds are truncated, not rounded: a listing never shows a time in the future. */
    cf_s3_iso8601((int64_t)RFC_INSTANT * 1000000000 + 123999999, out);
    assert_string_equal(out, "1994-11-06T08:49:37.123Z");
    cf_s3_iso8601((int64_t)RFC_INSTANT * 1000000000 + 999999999, out);
    assert_string_equal(out, "1994-11-06T08:49:37.999Z");
    cf_s3_iso8601((int64_t)951868799 * 1000000000 + 1000000, out);
    assert_string_equal(out, "2000-02-29T23:59:59.001Z");
    assert_int_equal(strlen(out), 24);
}

/* The reverse, one parser for S3's listings and a POST policy's expiration. */
static void test_iso8601_parse(void **state)
{
    (void)state;
    int64_t t = -1;
    assert_int_equal(cf_s3_parse_iso8601("1994-11-06T08:49:37.123Z", &t), 0);
    assert_int_equal(t, RFC_INSTANT);
    assert_int_equal(cf_s3_parse_iso8601("1994-11-06T08:49:37Z", &t), 0);
    assert_int_equal(t, RFC_INSTANT);
    const char *bad[] = {"",
                         "1994-11-06T08:49:37",
                         "1994-11-06T08:49:37+02:00",
                         "1994-11-06T08:49:37.123",
                         "1994-13-06T08:49:37Z",
                         "1994-11-06T24:49:37Z",
                         "1994-11-06 08:49:37Z",
                         "Sun, 06 Nov 1994 08:49:37 GMT"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(cf_s3_parse_iso8601(bad[i], &t), CF_EINVAL);
}

static void expect_date(const char *s, time_t want)
{
    time_t t = 12345;
    int rc = cf_s3_parse_http_date(s, &t);
    if (rc != 0)
        fail_msg("'%s': rc %d", s, rc);
    if (t != want)
        fail_msg("'%s': %lld, want %lld", s, (long long)t, (long long)want);
}

/* RFC 9110 section 5.6.7: a recipient accepts all three formats. */
static void test_parse_http_date_three_formats(void **state)
{
    expect_date("Sun, 06 Nov 1994 08:49:37 GMT", RFC_INSTANT);
    expect_date("Sunday, 06-Nov-94 08:49:37 GMT", RFC_INSTANT);
    expect_date("Sun Nov  6 08:49:37 1994", RFC_INSTANT);
    expect_date("Thu, 01 Jan 1970 00:00:00 GMT", 0);
    expect_date("Tue, 29 Feb 2000 00:00:00 GMT", 951782400);
    expect_date("Tue, 19 Jan 2038 03:14:08 GMT", (time_t)2147483648LL);
    /* Two-digit years in RFC 850 dates pivot at 70. */
    expect_date("Thursday, 01-Jan-70 00:00:00 GMT", 0);
    expect_date("Saturday, 01-Jan-00 00:00:00 GMT", 946684800);
}

static void test_parse_http_date_round_trips(void **state)
{
    static const time_t instants[] = {
        0,         1,          59,         86399,      86400,        784111777,   951782400,
        951868799, 1234567890, 1700000000, 2147483647, 2147483648LL, 4102444800LL};
    for (size_t i = 0; i < sizeof instants / sizeof *instants; i++) {
        char s[30];
        cf_s3_http_date(instants[i], s);
        expect_date(s, instants[i]);
    }
}

static void test_parse_http_date_rejects_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "garbage",
        "Sun, 06 Nov 1994 08:49:37",      /* no zone */
        "Sun, 06 Nov 1994 08:49:37 UTC",  /* HTTP dates are always "GMT" */
        "Sun, 06 Nov 1994 08:49:37 GMT ", /* trailing bytes */
        "Sun, 06 Nov 1994 08:49:37 GMTx",
        "Sun, 06 Nov 1994 08:49 GMT",
        "Sun, 06 Nov 1994 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Wed, 31 Dec 1969 23:59:59 GMT", /* before the epoch */
        "Sunday, 06-Foo-94 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37",
        "Sun Nov  6 08:49:37",
        "Sun Nov  6 08:49:37 1994 GMT",
        "20130524T000000Z", /* an x-amz-date is not an HTTP date */
        "1994-11-06T08:49:37Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        time_t t = 12345;
        if (cf_s3_parse_http_date(bad[i], &t) != CF_EINVAL)
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(t, 12345);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_names_aws_examples),
        cmocka_unit_test(test_bucket_name_length),
        cmocka_unit_test(test_bucket_name_characters),
        cmocka_unit_test(test_bucket_name_edges),
        cmocka_unit_test(test_bucket_name_not_an_ip_address),
        cmocka_unit_test(test_bucket_name_reserved_affixes),
        cmocka_unit_test(test_key_length_is_in_bytes),
        cmocka_unit_test(test_key_uses_len_not_nul),
        cmocka_unit_test(test_key_allows_any_well_formed_utf8),
        cmocka_unit_test(test_key_refuses_malformed_utf8),
        cmocka_unit_test(test_url_decode),
        cmocka_unit_test(test_url_decode_bad_escapes),
        cmocka_unit_test(test_url_decode_reads_only_n_bytes),
        cmocka_unit_test(test_url_decode_appends),
        cmocka_unit_test(test_url_decode_respects_buffer_max),
        cmocka_unit_test(test_url_encode_key),
        cmocka_unit_test(test_url_encode_then_decode_round_trips),
        cmocka_unit_test(test_url_encode_appends),
        cmocka_unit_test(test_http_date_format),
        cmocka_unit_test(test_iso8601_parse),
        cmocka_unit_test(test_iso8601_format),
        cmocka_unit_test(test_parse_http_date_three_formats),
        cmocka_unit_test(test_parse_http_date_round_trips),
        cmocka_unit_test(test_parse_http_date_rejects_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
