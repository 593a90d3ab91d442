/*
 * test_target.c - the bucket and key a request names: path style, virtual-host style from an
 * untrusted Host header, and the paths that must be refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "s3/target.h"

#define DOMAIN "s3.example.com"

static void check_target(const char *path, const char *host, const char *bucket, const char *key,
                         const char *resource, const char *signed_path)
{
    cf_s3_target t;
    assert_int_equal(cf_s3_target_parse(path, host, DOMAIN, 4096, &t), 0);
    assert_string_equal(t.bucket, bucket);
    assert_string_equal(t.key, key);
    assert_int_equal(t.keylen, strlen(key));
    assert_string_equal(t.resource, resource);
    if (signed_path)
        assert_string_equal(t.signed_path, signed_path);
    else
        assert_null(t.signed_path);
    cf_s3_target_cleanup(&t);
}

static void test_path_style(void **state)
{
    (void)state;
    check_target("/", "localhost:9000", "", "", "/", NULL);
    check_target("/b", NULL, "b", "", "/b", NULL);
    check_target("/b/", NULL, "b", "", "/b/", NULL);
    check_target("/b/k", "127.0.0.1", "b", "k", "/b/k", NULL);
    /* An encoded slash is decoded only after the raw path was kept: it stays in the key. */
    check_target("/b/dir%2Fname/x", NULL, "b", "dir/name/x", "/b/dir/name/x", NULL);
    check_target("/b/a+b%20c", NULL, "b", "a+b c", "/b/a+b c", NULL);
    /* A host of another domain, or the domain itself, is path style. */
    check_target("/b/k", "b.other.com", "b", "k", "/b/k", NULL);
    check_target("/b/k", DOMAIN, "b", "k", "/b/k", NULL);
    check_target("/b/k", "x" DOMAIN, "b", "k", "/b/k", NULL);
}

static void test_virtual_host_style(void **state)
{
    (void)state;
    check_target("/k", "photos." DOMAIN, "photos", "k", "/photos/k", "/k");
    check_target("/k", "photos.S3.Example.COM:9000", "photos", "k", "/photos/k", "/k");
    check_target("/", "photos." DOMAIN, "photos", "", "/photos/", "/");
    check_target("/a/b%2Fc", "my.dotted.bucket." DOMAIN, "my.dotted.bucket", "a/b/c",
                 "/my.dotted.bucket/a/b/c", "/a/b/c");
    /* Only the domain's own labels are cut: the port is not part of it. */
    assert_int_equal(cf_s3_vhost_bucket("b." DOMAIN ":80", DOMAIN), 1);
    assert_int_equal(cf_s3_vhost_bucket(".", DOMAIN), 0);
    assert_int_equal(cf_s3_vhost_bucket("." DOMAIN, DOMAIN), 0);
    assert_int_equal(cf_s3_vhost_bucket("b." DOMAIN, ""), 0);
    assert_int_equal(cf_s3_vhost_bucket("b." DOMAIN, NULL), 0);
    assert_int_equal(cf_s3_vhost_bucket(NULL, DOMAIN), 0);
}

/* The Host header is the client's: a slash in its bucket part reads exactly as the path-style
 * request would (bucket "a", key "b/k"), and access is judged on that bucket and key. */
static void test_host_with_a_slash_reads_as_path_style(void **state)
{
    (void)state;
    cf_s3_target t;
    assert_int_equal(cf_s3_target_parse("/k", "a/b." DOMAIN, DOMAIN, 4096, &t), 0);
    assert_string_equal(t.bucket, "a");
    assert_string_equal(t.key, "b/k");
    assert_string_equal(t.signed_path, "/k");
    cf_s3_target_cleanup(&t);
}

static void test_refused_paths(void **state)
{
    (void)state;
    cf_s3_target t;
    const char *bad[] = {"/b/%", "/b/%4", "/b/%zz", "/b/a%00b", "/%00/k"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(cf_s3_target_parse(bad[i], NULL, DOMAIN, 4096, &t), CF_EINVAL);
        assert_null(t.bucket);
        assert_null(t.signed_path);
    }
    assert_int_equal(cf_s3_target_parse("/k%00", "b." DOMAIN, DOMAIN, 4096, &t), CF_EINVAL);
    assert_null(t.signed_path);
    char longer[64];
    memset(longer, 'a', sizeof longer - 1);
    longer[0] = '/';
    longer[sizeof longer - 1] = '\0';
    assert_int_equal(cf_s3_target_parse(longer, NULL, NULL, 32, &t), CF_EINVAL);
    assert_int_equal(cf_s3_target_parse(longer, NULL, NULL, 63, &t), 0);
    cf_s3_target_cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_style),
        cmocka_unit_test(test_virtual_host_style),
        cmocka_unit_test(test_host_with_a_slash_reads_as_path_style),
        cmocka_unit_test(test_refused_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
