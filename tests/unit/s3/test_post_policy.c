/* test_post_policy.c - POST policy documents: what parses, and which forms pass their conditions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "s3/post_policy.h"

#define NOW 1796472000 /* 2026-12-05T12:00:00Z */

/* From AWS's sigv4-HTTPPOSTConstructPolicy example, with a later expiration. */
static const char example[] =
    "{ \"expiration\": \"2026-12-30T12:00:00.000Z\",\n"
    "  \"conditions\": [\n"
    "    {\"bucket\": \"sigv4examplebucket\"},\n"
    "    [\"starts-with\", \"$key\", \"user/user1/\"],\n"
    "    {\"acl\": \"public-read\"},\n"
    "    {\"success_action_redirect\": "
    "\"http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html\"},\n"
    "    [\"starts-with\", \"$Content-Type\", \"image/\"],\n"
    "    {\"x-amz-meta-uuid\": \"14365123651274\"},\n"
    "    {\"x-amz-server-side-encryption\": \"AES256\"},\n"
    "    [\"starts-with\", \"$x-amz-meta-tag\", \"\"],\n"
    "    {\"x-amz-credential\": \"AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request\"},\n"
    "    {\"x-amz-algorithm\": \"AWS4-HMAC-SHA256\"},\n"
    "    {\"x-amz-date\": \"20151229T000000Z\" },\n"
    "    [\"content-length-range\", 1048576, \"10485760\"]\n"
    "  ]\n"
    "}";

static cf_post_field form[] = {
    {"key", "user/user1/${filename}"},
    {"acl", "public-read"},
    {"success_action_redirect", "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html"},
    {"Content-Type", "image/jpeg"},
    {"x-amz-meta-uuid", "14365123651274"},
    {"x-amz-server-side-encryption", "AES256"},
    {"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request"},
    {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
    {"X-Amz-Date", "20151229T000000Z"},
    {"x-amz-meta-tag", ""},
    {"Policy", "eyJ..."},
    {"X-Amz-Signature", "abc"},
    {"x-ignore-submit", "Upload"},
};
#define NFORM (sizeof form / sizeof *form)

static void parse_example(cf_post_policy *p)
{
    cf_err err;
    assert_int_equal(cf_post_policy_parse(example, strlen(example), p, &err), 0);
}

static void test_the_aws_example_passes(void **state)
{
    (void)state;
    cf_post_policy p;
    cf_err err;
    parse_example(&p);
    assert_int_equal(p.n, 12);
    assert_int_equal(cf_post_policy_check(&p, "sigv4examplebucket", form, NFORM, NOW, &err), 0);
    assert_int_equal(cf_post_policy_size(&p, 1048576), 0);
    assert_int_equal(cf_post_policy_size(&p, 10485760), 0);
    assert_int_equal(cf_post_policy_size(&p, 1048575), -1);
    assert_int_equal(cf_post_policy_size(&p, 10485761), 1);
    cf_post_policy_cleanup(&p);
}

static void expect_denied(cf_post_policy *p, const char *bucket, cf_post_field *f, size_t n, const char *msg)
{
    cf_err err = {0};
    int rc = cf_post_policy_check(p, bucket, f, n, NOW, &err);
    if (rc != CF_EDENIED || strcmp(err.msg, msg) != 0)
        fail_msg("rc %d, message '%s', wanted '%s'", rc, err.msg, msg);
}

static void test_each_condition_kind_refuses(void **state)
{
    (void)state;
    cf_post_policy p;
    parse_example(&p);
    expect_denied(
        &p, "other", form, NFORM,
        "Invalid according to Policy: Policy Condition failed: {\"bucket\": \"sigv4examplebucket\"}");
    cf_post_field f[NFORM];
    memcpy(f, form, sizeof f);
    f[0].value = "user/user2/x";
    expect_denied(
        &p, "sigv4examplebucket", f, NFORM,
        "Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$key\", \"user/user1/\"]");
    memcpy(f, form, sizeof f);
    f[1].value = "public-read-write";
    expect_denied(&p, "sigv4examplebucket", f, NFORM,
                  "Invalid according to Policy: Policy Condition failed: {\"acl\": \"public-read\"}");
    /* Content-Type: every listed type must start with the prefix. */
    memcpy(f, form, sizeof f);
    f[3].value = "image/png, text/html";
    expect_denied(&p, "sigv4examplebucket", f, NFORM,
                  "Invalid according to Policy: Policy Condition failed: [\"starts-with\", "
                  "\"$Content-Type\", \"image/\"]");
    f[3].value = "image/png,image/gif";
    cf_err err;
    assert_int_equal(cf_post_policy_check(&p, "sigv4examplebucket", f, NFORM, NOW, &err), 0);
    /* A condition on a field the form lacks fails. */
    expect_denied(
        &p, "sigv4examplebucket", form + 1, NFORM - 1,
        "Invalid according to Policy: Policy Condition failed: [\"starts-with\", \"$key\", \"user/user1/\"]");
    cf_post_policy_cleanup(&p);
}

static void test_every_field_must_be_named(void **state)
{
    (void)state;
    cf_post_policy p;
    parse_example(&p);
    cf_post_field f[NFORM + 1];
    memcpy(f, form, sizeof form);
    f[NFORM] = (cf_post_field){"x-amz-meta-evil", "1"};
    expect_denied(&p, "sigv4examplebucket", f, NFORM + 1,
                  "Invalid according to Policy: Extra input fields: x-amz-meta-evil");
    f[NFORM] = (cf_post_field){"success_action_status", "201"};
    expect_denied(&p, "sigv4examplebucket", f, NFORM + 1,
                  "Invalid according to Policy: Extra input fields: success_action_status");
    f[NFORM] = (cf_post_field){"FILE", "x"};
    cf_err err;
    assert_int_equal(cf_post_policy_check(&p, "sigv4examplebucket", f, NFORM + 1, NOW, &err), 0);
    assert_true(cf_post_field_exempt("x-ignore-anything"));
    assert_false(cf_post_field_exempt("x-ignore"));
    cf_post_policy_cleanup(&p);
}

static void test_expiry(void **state)
{
    (void)state;
    cf_post_policy p;
    cf_err err;
    parse_example(&p);
    assert_int_equal(p.expiration, 1798632000);
    assert_int_equal(cf_post_policy_check(&p, "sigv4examplebucket", form, NFORM, 1798632000, &err), 0);
    assert_int_equal(cf_post_policy_check(&p, "sigv4examplebucket", form, NFORM, 1798632001, &err),
                     CF_EPRECOND);
    assert_string_equal(err.msg, "Invalid according to Policy: Policy expired.");
    cf_post_policy_cleanup(&p);
    const char *plain = "{\"expiration\":\"2026-12-05T12:00:00Z\",\"conditions\":[]}";
    assert_int_equal(cf_post_policy_parse(plain, strlen(plain), &p, &err), 0);
    assert_int_equal(p.expiration, NOW);
    cf_post_policy_cleanup(&p);
}

static void test_refused_documents(void **state)
{
    (void)state;
    const char *cases[] = {
        "",
        "[]",
        "{\"conditions\":[]}",
        "{\"expiration\":\"tomorrow\",\"conditions\":[]}",
        "{\"expiration\":\"2026-13-05T12:00:00Z\",\"conditions\":[]}",
        "{\"expiration\":\"2026-12-05T12:00:00\",\"conditions\":[]}",
        "{\"expiration\":\"2026-12-05T12:00:00Z\"}",
        "{\"expiration\":\"2026-12-05T12:00:00Z\",\"conditions\":[[\"eq\",\"key\",\"a\"]]}",
        "{\"expiration\":\"2026-12-05T12:00:00Z\",\"conditions\":[[\"eq\",\"$\",\"a\"]]}",
        "{\"expiration\":\"2026-12-05T12:00:00Z\",\"conditions\":[[\"matches\",\"$key\",\"a\"]]}",
        "{\"expiration\":\"2026-12-05T12:00:00Z\",\"conditions\":[[\"eq\",\"$key\",1]]}",
        "{\"expiration\":\"2026-12-05T12:00:00Z\",\"conditions\":[{\"a\":\"1\",\"b\":\"2\"}]}",
        "{\"expiration\":\"2026-12-05T12:00:00Z\",\"conditions\":[{\"a\":1}]}",
        "{\"expiration\":\"2026-12-05T12:00:00Z\",\"conditions\":[[\"content-length-range\",10,1]]}",
        "{\"expiration\":\"2026-12-05T12:00:00Z\",\"conditions\":[[\"content-length-range\",-1,1]]}",
        "{\"expiration\":\"2026-12-05T12:00:00Z\",\"conditions\":[[\"content-length-range\",0,1],[\"content-"
        "length-range\",0,9]]}",
        "{\"expiration\":\"2026-12-05T12:00:00Z\",\"expiration\":\"2036-12-05T12:00:00Z\",\"conditions\":[]}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cf_post_policy p;
        cf_err err = {0};
        int rc = cf_post_policy_parse(cases[i], strlen(cases[i]), &p, &err);
        if (rc != CF_EINVAL || strncmp(err.msg, "Invalid Policy: ", 16) != 0)
            fail_msg("case %zu: rc %d, '%s'", i, rc, err.msg);
        assert_null(p.conds);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_aws_example_passes),    cmocka_unit_test(test_each_condition_kind_refuses),
        cmocka_unit_test(test_every_field_must_be_named), cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_refused_documents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
