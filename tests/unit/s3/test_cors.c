/* test_cors.c - CORS configurations: what parses, what is refused and why, which rule matches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3/cors.h"

#define RULE(body) "<CORSRule>" body "</CORSRule>"
#define CONFIG(rules)                                                                                        \
    "<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">" rules "</CORSConfiguration>"

static int parse(const char *xml, cf_cors_config *c, cf_err *err)
{
    return cf_cors_parse(xml, strlen(xml), c, err);
}

static const char *const shop =
    CONFIG(RULE("<ID>shop</ID><AllowedOrigin>https://shop.example</AllowedOrigin>"
                "<AllowedOrigin>http://*.shop.example</AllowedOrigin><AllowedMethod>PUT</AllowedMethod>"
                "<AllowedMethod>POST</AllowedMethod><AllowedHeader>Content-*</AllowedHeader>"
                "<AllowedHeader>x-amz-meta-color</AllowedHeader><ExposeHeader>ETag</ExposeHeader>"
                "<MaxAgeSeconds>3000</MaxAgeSeconds>")
               RULE("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"));

static void test_first_matching_rule_wins(void **state)
{
    (void)state;
    cf_cors_config c;
    cf_err err;
    assert_int_equal(parse(shop, &c, &err), 0);
    assert_int_equal(c.n, 2);
    const cf_cors_rule *r =
        cf_cors_match(&c, "https://shop.example", "PUT", "content-type, X-Amz-Meta-Color");
    assert_non_null(r);
    assert_string_equal(r->id, "shop");
    assert_int_equal(r->max_age, 3000);
    assert_false(cf_cors_rule_any_origin(r, "https://shop.example"));
    /* Methods and origins outside the first rule fall to the second, or to none. */
    r = cf_cors_match(&c, "https://shop.example", "GET", NULL);
    assert_non_null(r);
    assert_null(r->id);
    assert_true(cf_cors_rule_any_origin(r, "https://shop.example"));
    assert_null(cf_cors_match(&c, "https://shop.example", "DELETE", NULL));
    assert_null(cf_cors_match(&c, "https://evil.example", "PUT", NULL));
    /* A header no AllowedHeader covers refuses the whole preflight. */
    assert_null(cf_cors_match(&c, "https://shop.example", "PUT", "content-type, authorization"));
    /* Origins compare with case; the wildcard stands for any run. */
    assert_null(cf_cors_match(&c, "HTTPS://SHOP.EXAMPLE", "PUT", NULL));
    assert_non_null(cf_cors_match(&c, "http://a.b.shop.example", "PUT", NULL));
    assert_null(cf_cors_match(&c, "https://a.shop.example", "PUT", NULL));
    assert_null(cf_cors_match(&c, "http://shop.example", "PUT", NULL));
    assert_null(cf_cors_match(&c, "https://shop.example", "OPTIONS", NULL));
    assert_null(cf_cors_match(&c, NULL, "GET", NULL));
    cf_cors_config_cleanup(&c);
}

static void test_wildcards(void **state)
{
    (void)state;
    assert_true(cf_cors_wildcard_match("*", "", 0));
    assert_true(cf_cors_wildcard_match("a*", "a", 0));
    assert_true(cf_cors_wildcard_match("*b", "ab", 0));
    assert_true(cf_cors_wildcard_match("a*b", "ab", 0));
    assert_false(cf_cors_wildcard_match("a*b", "a", 0));
    assert_false(cf_cors_wildcard_match("ab*ab", "ab", 0)); /* prefix and suffix may not overlap */
    assert_true(cf_cors_wildcard_match("X-Amz-*", "x-amz-date", 1));
    assert_false(cf_cors_wildcard_match("X-Amz-*", "x-amz-date", 0));
}

static void test_xml_round_trip(void **state)
{
    (void)state;
    cf_cors_config c, again;
    cf_err err;
    assert_int_equal(parse(shop, &c, &err), 0);
    cf_buf b;
    cf_buf_init(&b, 1 << 20);
    assert_int_equal(cf_cors_to_xml(&c, &b), 0);
    assert_non_null(strstr(b.data, "<AllowedMethod>PUT</AllowedMethod><AllowedMethod>POST</AllowedMethod>"));
    assert_int_equal(cf_cors_parse(b.data, b.len, &again, &err), 0);
    assert_int_equal(again.n, 2);
    assert_string_equal(again.rules[0].origins.items[1], "http://*.shop.example");
    assert_int_equal(again.rules[0].methods, c.rules[0].methods);
    assert_int_equal(again.rules[1].max_age, -1);
    cf_buf_reset(&b);
    assert_int_equal(cf_cors_methods_join(c.rules[0].methods, &b), 0);
    assert_string_equal(b.data, "PUT, POST");
    cf_buf_cleanup(&b);
    cf_cors_config_cleanup(&c);
    cf_cors_config_cleanup(&again);
}

static void test_refused_with_a_reason(void **state)
{
    (void)state;
    struct {
        const char *xml;
        int code;
        const char *reason;
    } cases[] = {
        {"<CORSConfiguration>", CF_EINVAL, ""},
        {CONFIG(""), CF_EINVAL, "at least one"},
        {"<Other>" RULE("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>") "</Other>",
         CF_EINVAL, "CORSConfiguration"},
        {CONFIG(RULE("<AllowedMethod>GET</AllowedMethod>")), CF_EINVAL, "AllowedOrigin"},
        {CONFIG(RULE("<AllowedOrigin>*</AllowedOrigin>")), CF_EINVAL, "AllowedMethod"},
        {CONFIG(RULE("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>")), CF_ENOTSUP,
         "PATCH"},
        {CONFIG(RULE("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>get</AllowedMethod>")), CF_ENOTSUP,
         "get"},
        {CONFIG(RULE("<AllowedOrigin>https://*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>")),
         CF_ENOTSUP, "wildcard"},
        {CONFIG(RULE("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader>**</"
                     "AllowedHeader>")),
         CF_ENOTSUP, "wildcard"},
        {CONFIG(RULE("<AllowedOrigin>a\r\nSet-Cookie: x</AllowedOrigin><AllowedMethod>GET</AllowedMethod>")),
         CF_ENOTSUP, "header"},
        {CONFIG(RULE("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>-1</"
                     "MaxAgeSeconds>")),
         CF_EINVAL, "MaxAgeSeconds"},
        {CONFIG(RULE("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>1x</"
                     "MaxAgeSeconds>")),
         CF_EINVAL, "MaxAgeSeconds"},
        {CONFIG(RULE("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><Extra>1</Extra>")),
         CF_EINVAL, "Extra"},
        {CONFIG(RULE("<AllowedOrigin><b>*</b></AllowedOrigin><AllowedMethod>GET</AllowedMethod>")), CF_EINVAL,
         "holds elements"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cf_cors_config c;
        cf_err err = {0};
        int rc = parse(cases[i].xml, &c, &err);
        if (rc != cases[i].code || !strstr(err.msg, cases[i].reason))
            fail_msg("case %zu: rc %d, message '%s'", i, rc, err.msg);
        assert_null(c.rules);
    }
}

static void test_limits(void **state)
{
    (void)state;
    cf_buf b;
    cf_buf_init(&b, 1 << 20);
    cf_buf_puts(&b, "<CORSConfiguration>");
    for (int i = 0; i < 101; i++)
        cf_buf_puts(&b, RULE("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"));
    cf_buf_puts(&b, "</CORSConfiguration>");
    cf_cors_config c;
    cf_err err;
    assert_int_equal(cf_cors_parse(b.data, b.len, &c, &err), CF_ETOOBIG);
    /* 100 rules are fine. */
    char *last = strstr(b.data, "<CORSRule>");
    memmove(last, last + strlen(RULE("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>")),
            strlen(last) -
                strlen(RULE("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>")) + 1);
    assert_int_equal(cf_cors_parse(b.data, strlen(b.data), &c, &err), 0);
    assert_int_equal(c.n, 100);
    cf_cors_config_cleanup(&c);
    cf_buf_cleanup(&b);
    char *big = malloc(CF_CORS_MAX_BYTES + 2);
    memset(big, ' ', CF_CORS_MAX_BYTES + 1);
    big[CF_CORS_MAX_BYTES + 1] = '\0';
    assert_int_equal(cf_cors_parse(big, CF_CORS_MAX_BYTES + 1, &c, &err), CF_ETOOBIG);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_matching_rule_wins),
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_xml_round_trip),
        cmocka_unit_test(test_refused_with_a_reason),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
