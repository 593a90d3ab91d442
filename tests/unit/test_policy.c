/* test_policy.c - the bucket policy subset: what parses, what is refused, what it allows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "s3/policy.h"

static int parse(const char *json, cf_policy *p, cf_err *err)
{
    return cf_policy_parse(json, strlen(json), "site", p, err);
}

static void test_public_read_of_a_prefix(void **state)
{
    (void)state;
    cf_policy p;
    cf_err err;
    const char *json = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"pub\",\"Effect\":\"Allow\","
                       "\"Principal\":{\"AWS\":[\"*\"]},\"Action\":[\"s3:GetObject\"],"
                       "\"Resource\":[\"arn:aws:s3:::site/public/*\"]}]}";
    assert_int_equal(parse(json, &p, &err), 0);
    assert_true(cf_policy_allows(&p, CF_POLICY_GET_OBJECT, "public/a.png", 12));
    assert_true(cf_policy_allows(&p, CF_POLICY_GET_OBJECT, "public/", 7));
    assert_false(cf_policy_allows(&p, CF_POLICY_GET_OBJECT, "private/a.png", 13));
    assert_false(cf_policy_allows(&p, CF_POLICY_GET_OBJECT, "publi", 5));
    assert_false(cf_policy_allows(&p, CF_POLICY_LIST_BUCKET, "", 0));
}

static void test_exact_object_and_listing(void **state)
{
    (void)state;
    cf_policy p;
    cf_err err;
    const char *json = "{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":\"*\","
                       "\"Action\":[\"s3:GetObject\",\"s3:ListBucket\"],"
                       "\"Resource\":[\"arn:aws:s3:::site/index.html\",\"arn:aws:s3:::site\"]}}";
    assert_int_equal(parse(json, &p, &err), 0);
    assert_true(cf_policy_allows(&p, CF_POLICY_GET_OBJECT, "index.html", 10));
    assert_false(cf_policy_allows(&p, CF_POLICY_GET_OBJECT, "index.html.bak", 14));
    assert_true(cf_policy_allows(&p, CF_POLICY_LIST_BUCKET, "", 0));
}

static void test_refused_with_a_reason(void **state)
{
    (void)state;
    struct {
        const char *json, *reason;
    } cases[] = {
        {"not json", "not valid JSON"},
        {"[]", "JSON object"},
        {"{\"Statement\":[]}", "non-empty"},
        {"{\"Statement\":[{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::site/*\"}]}", "Allow"},
        {"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::1:root\"},\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::site/*\"}]}", "anonymous"},
        {"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:PutObject\",\"Resource\":\"arn:aws:s3:::site/*\"}]}", "s3:PutObject"},
        {"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::other/*\"}]}", "not this bucket"},
        {"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::site2/*\"}]}", "not this bucket"},
        {"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::site/a*b\"}]}", "only at the end"},
        {"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::site/*\",\"Condition\":{}}]}", "Condition"},
        {"{\"Version\":\"2099-01-01\",\"Statement\":[]}", "Version"},
        {"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::site/*\"}]}", "JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cf_policy p;
        cf_err err = {0};
        assert_int_equal(parse(cases[i].json, &p, &err), CF_EINVAL);
        if (!strstr(err.msg, cases[i].reason))
            fail_msg("%s: message '%s' lacks '%s'", cases[i].json, err.msg, cases[i].reason);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_read_of_a_prefix),
        cmocka_unit_test(test_exact_object_and_listing),
        cmocka_unit_test(test_refused_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
