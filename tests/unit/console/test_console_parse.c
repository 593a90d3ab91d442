/*
 * test_console_parse.c - what the console parses from requests (console_int.h): login bodies,
 * page parameters, proxy download tokens and Range headers. The HTTP side is covered by
 * tests/integration/test_console_*.py against a real console.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "console/console_int.h"

static void login_ok(const char *body, const char *user, const char *password)
{
    char *u, *p;
    int malformed = -1;
    cf_err err = {0};
    assert_int_equal(cf_console_login_body(body, strlen(body), &u, &p, &malformed, &err), 0);
    assert_string_equal(u, user);
    assert_string_equal(p, password);
    free(u);
    free(p);
}

static void login_refused(const char *body, int want_malformed, const char *needle)
{
    char *u = (char *)1, *p = (char *)1;
    int malformed = -1;
    cf_err err = {0};
    assert_int_equal(cf_console_login_body(body, strlen(body), &u, &p, &malformed, &err), CF_EINVAL);
    assert_null(u);
    assert_null(p);
    assert_int_equal(malformed, want_malformed);
    if (!strstr(err.msg, needle))
        fail_msg("'%s' does not name '%s'", err.msg, needle);
}

static void test_login_body(void **state)
{
    (void)state;
    login_ok("{\"username\":\"alice\",\"password\":\"pw\"}", "alice", "pw");
    login_ok("{\"password\":\"p \\u00e9\",\"username\":\"bob@x.org\",\"extra\":1}", "bob@x.org",
             "p \xc3\xa9");
    login_refused("", 1, "JSON");
    login_refused("{\"username\":\"a\"", 1, "JSON");
    login_refused("{\"username\":\"a\",\"username\":\"b\",\"password\":\"x\"}", 1, "JSON");
    login_refused("[\"alice\",\"pw\"]", 0, "object");
    login_refused("{\"password\":\"pw\"}", 0, "username");
    login_refused("{\"username\":1,\"password\":\"pw\"}", 0, "username");
    login_refused("{\"username\":\"\",\"password\":\"pw\"}", 0, "username");
    login_refused("{\"username\":\"a\\u0000b\",\"password\":\"pw\"}", 1, "JSON"); /* jansson refuses NUL */
    login_refused("{\"username\":\"alice\"}", 0, "password");
    login_refused("{\"username\":\"alice\",\"password\":null}", 0, "password");
    login_refused("{\"username\":\"alice\",\"password\":\"\"}", 0, "password");
    char big[1200];
    snprintf(big, sizeof big, "{\"username\":\"alice\",\"password\":\"%01025d\"}", 0);
    login_refused(big, 0, "password");
    snprintf(big, sizeof big, "{\"username\":\"%065d\",\"password\":\"x\"}", 0);
    login_refused(big, 0, "username");
}

static void test_page_params(void **state)
{
    (void)state;
    long limit = 0;
    cf_err err = {0};
    assert_int_equal(cf_console_page_params(NULL, NULL, &limit, &err), 0);
    assert_int_equal(limit, 50);
    assert_int_equal(cf_console_page_params("1", "20261206T030000Z-7f3a", &limit, &err), 0);
    assert_int_equal(limit, 1);
    assert_int_equal(cf_console_page_params("1000", NULL, &limit, &err), 0);
    assert_int_equal(limit, 1000);
    static const char *const bad[] = {"0", "1001", "-1", "+5", " 5", "5 ", "", "abc", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(cf_console_page_params(bad[i], NULL, &limit, &err), CF_EINVAL);
        assert_non_null(strstr(err.msg, "limit"));
    }
    assert_int_equal(cf_console_page_params(NULL, "", &limit, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "cursor"));
    assert_int_equal(cf_console_page_params(NULL, "20261206T030000Z-7f3a-and-more", &limit, &err), CF_EINVAL);
}

static const unsigned char key[CF_SHA256_LEN] = "unit-console-download-key-01234";

static void sign(const char *chain, const char *id, const char *tier, const char *expires, char hex[65])
{
    char msg[512];
    unsigned char mac[CF_SHA256_LEN];
    int n = snprintf(msg, sizeof msg, "v1\n%s\n%s\n%s\n%s", chain, id, tier, expires);
    assert_int_equal(cf_hmac_sha256(key, sizeof key, msg, (size_t)n, mac), 0);
    cf_hex_encode(mac, sizeof mac, hex);
}

static void test_token(void **state)
{
    (void)state;
    char sig[65];
    cf_err err = {0};
    const int64_t now = 1800000000;
    sign("mainnet", "20261206T030000Z-7f3a", "free", "1800000600", sig);
    assert_int_equal(
        cf_console_token_check(key, "mainnet", "20261206T030000Z-7f3a", "free", "1800000600", sig, now, &err),
        0);
    /* Every field is covered. */
    assert_int_equal(
        cf_console_token_check(key, "testnet", "20261206T030000Z-7f3a", "free", "1800000600", sig, now, &err),
        CF_EDENIED);
    assert_int_equal(
        cf_console_token_check(key, "mainnet", "20261206T030001Z-7f3a", "free", "1800000600", sig, now, &err),
        CF_EDENIED);
    assert_int_equal(cf_console_token_check(key, "mainnet", "20261206T030000Z-7f3a", "premium", "1800000600",
                                            sig, now, &err),
                     CF_EDENIED);
    assert_int_equal(
        cf_console_token_check(key, "mainnet", "20261206T030000Z-7f3a", "free", "1800000601", sig, now, &err),
        CF_EDENIED);
    /* Expiry: valid up to the second before. */
    assert_int_equal(cf_console_token_check(key, "mainnet", "20261206T030000Z-7f3a", "free", "1800000600",
                                            sig, 1800000600, &err),
                     CF_EPRECOND);
    assert_non_null(strstr(err.msg, "expired"));
    /* Malformed parts. */
    assert_int_equal(cf_console_token_check(key, "c", "i", NULL, "1", sig, now, &err), CF_EDENIED);
    assert_int_equal(cf_console_token_check(key, "c", "i", "free", "", sig, now, &err), CF_EDENIED);
    assert_int_equal(cf_console_token_check(key, "c", "i", "free", "-5", sig, now, &err), CF_EDENIED);
    assert_int_equal(cf_console_token_check(key, "c", "i", "free", "1800000600", "abc", now, &err),
                     CF_EDENIED);
    sig[63] = 'g';
    assert_int_equal(
        cf_console_token_check(key, "mainnet", "20261206T030000Z-7f3a", "free", "1800000600", sig, now, &err),
        CF_EDENIED);
    assert_null(strstr(err.msg, sig));
}

static void range_ok(const char *h, uint64_t size, uint64_t start, uint64_t len)
{
    uint64_t s = 0, l = 0;
    assert_int_equal(cf_console_range(h, size, &s, &l), 0);
    assert_int_equal(s, start);
    assert_int_equal(l, len);
}

static void test_range(void **state)
{
    (void)state;
    uint64_t s, l;
    range_ok("bytes=0-0", 10, 0, 1);
    range_ok("bytes=2-5", 10, 2, 4);
    range_ok("bytes=2-", 10, 2, 8);
    range_ok("bytes=2-100", 10, 2, 8);
    range_ok("bytes=-3", 10, 7, 3);
    range_ok("bytes=-30", 10, 0, 10);
    assert_int_equal(cf_console_range("bytes=10-", 10, &s, &l), CF_ERANGE);
    assert_int_equal(cf_console_range("bytes=-0", 10, &s, &l), CF_ERANGE);
    assert_int_equal(cf_console_range("bytes=0-", 0, &s, &l), CF_ERANGE);
    static const char *const bad[] = {"bytes=5-3",
                                      "bytes=-",
                                      "bytes=1-2,4-5",
                                      "items=1-2",
                                      "bytes= 1-2",
                                      "bytes=1-2x",
                                      "bytes=99999999999999999999-",
                                      ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(cf_console_range(bad[i], 10, &s, &l), CF_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_body),
        cmocka_unit_test(test_page_params),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
