/* test_ref.c - snapshot references on the command line, and snapshot ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "snapshot/ref.h"

static void test_s3_references(void **state)
{
    (void)state;
    cf_snapshot_ref r;
    cf_err err;
    assert_int_equal(cf_snapshot_ref_parse("s3://backups/pg/tenant-a@latest", 1, &r, &err), 0);
    assert_true(r.is_s3 && r.latest);
    assert_string_equal(r.bucket, "backups");
    assert_string_equal(r.root, "pg");
    assert_string_equal(r.ns, "tenant-a");
    assert_int_equal(cf_snapshot_ref_parse("s3://snaps/cosmoshub-4@20261122T153000Z-7f3a", 1, &r, &err), 0);
    assert_string_equal(r.root, "");
    assert_string_equal(r.ns, "cosmoshub-4");
    assert_string_equal(r.id, "20261122T153000Z-7f3a");
    assert_int_equal(cf_snapshot_ref_parse("s3://b/a/b/c/", 0, &r, &err), 0);
    assert_string_equal(r.root, "a/b");
    assert_string_equal(r.ns, "c");
}

static void test_directory_references(void **state)
{
    (void)state;
    cf_snapshot_ref r;
    cf_err err;
    assert_int_equal(cf_snapshot_ref_parse("/mnt/nfs/raft/node-1", 0, &r, &err), 0);
    assert_false(r.is_s3);
    assert_string_equal(r.root, "/mnt/nfs/raft");
    assert_string_equal(r.ns, "node-1");
    assert_int_equal(cf_snapshot_ref_parse("repo", 0, &r, &err), 0);
    assert_string_equal(r.root, ".");
    assert_int_equal(cf_snapshot_ref_parse("/top", 0, &r, &err), 0);
    assert_string_equal(r.root, "/");
    assert_int_equal(cf_snapshot_ref_parse("file:///srv/r/ns@latest", 1, &r, &err), 0);
    assert_string_equal(r.root, "/srv/r");
    assert_true(r.latest);
}

static void test_bad_references_say_why(void **state)
{
    (void)state;
    struct {
        const char *text, *why;
        int allow_id;
    } cases[] = {
        {"s3://bucketonly", "expected s3://BUCKET", 1},
        {"s3:///ns", "expected s3://BUCKET", 1},
        {"http://x/y", "repositories are", 1},
        {"s3://b/ns@yesterday", "not a snapshot id", 1},
        {"s3://b/ns@20261131T000000Z-0000", "not a snapshot id", 1},
        {"s3://b/ns@latest", "takes a repository", 0},
        {"s3://b/..", "cannot be one", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cf_snapshot_ref r;
        cf_err err = {0};
        assert_int_equal(cf_snapshot_ref_parse(cases[i].text, cases[i].allow_id, &r, &err), CF_EINVAL);
        if (!strstr(err.msg, cases[i].why))
            fail_msg("%s: '%s' lacks '%s'", cases[i].text, err.msg, cases[i].why);
    }
}

static void test_ids_sort_by_time(void **state)
{
    (void)state;
    char a[CF_SNAPSHOT_ID_LEN + 1], b[CF_SNAPSHOT_ID_LEN + 1];
    cf_err err;
    assert_int_equal(cf_snapshot_id_new(NULL, 1795361400, a, &err), 0); /* 2026-11-22T15:30:00Z */
    assert_memory_equal(a, "20261122T153000Z-", 17);
    assert_true(cf_snapshot_id_valid(a));
    assert_int_equal(cf_snapshot_id_time(a), 1795361400);
    assert_int_equal(cf_snapshot_id_new(NULL, 1795361401, b, &err), 0);
    assert_true(strcmp(a, b) < 0);
    assert_false(cf_snapshot_id_valid("20261122T153000Z-7F3A"));
    assert_int_equal(cf_snapshot_id_time("20261122T253000Z-7f3a"), -1);
    assert_int_equal(cf_snapshot_id_time("20261131T000000Z-7f3a"), -1);
    assert_false(cf_snapshot_id_valid("20261122T153000Z7f3a"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s3_references),
        cmocka_unit_test(test_directory_references),
        cmocka_unit_test(test_bad_references_say_why),
        cmocka_unit_test(test_ids_sort_by_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
