/* test_repo.c - directory repositories: whole-object visibility, ranges, listing, safety of keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/fs.h"
#include "storage/repo.h"

static char dir[256];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/coffer-test-repo-XXXXXX");
    assert_non_null(mkdtemp(dir));
    cf_repo *r;
    cf_err err;
    assert_int_equal(cf_repo_open_dir(dir, &r, &err), 0);
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    cf_repo_close(*state);
    cf_fs_remove_tree(dir, NULL);
    return 0;
}

static void put(cf_repo *r, const char *key, const char *data)
{
    cf_repo_writer *w;
    cf_err err;
    assert_int_equal(cf_repo_writer_begin(r, key, 0, &w, &err), 0);
    assert_int_equal(cf_repo_writer_write(w, data, strlen(data), &err), 0);
    assert_int_equal(cf_repo_writer_commit(w, &err), 0);
}

static int append(void *ctx, const void *p, size_t n, cf_err *err)
{
    (void)err;
    return cf_buf_append(ctx, p, n);
}

static int collect_keys(void *ctx, const cf_repo_entry *e)
{
    cf_buf *b = ctx;
    cf_buf_printf(b, "%s=%llu;", e->key, (unsigned long long)e->size);
    return 0;
}

static void test_objects_round_trip_and_ranges(void **state)
{
    cf_repo *r = *state;
    cf_err err;
    put(r, "chain-1/20261122T153000Z-7f3a.tar.zst", "0123456789");
    put(r, "chain-1/20261122T153000Z-7f3a.json", "{}");
    cf_buf got;
    cf_buf_init(&got, 1 << 20);
    assert_int_equal(cf_repo_get(r, "chain-1/20261122T153000Z-7f3a.tar.zst", 3, 4, append, &got, &err), 0);
    assert_string_equal(got.data, "3456");
    cf_buf_reset(&got);
    assert_int_equal(
        cf_repo_get(r, "chain-1/20261122T153000Z-7f3a.tar.zst", 8, UINT64_MAX, append, &got, &err), 0);
    assert_string_equal(got.data, "89");
    assert_int_equal(cf_repo_get(r, "chain-1/20261122T153000Z-7f3a.tar.zst", 8, 5, append, &got, &err),
                     CF_ECORRUPT);
    assert_int_equal(cf_repo_get(r, "chain-1/missing", 0, UINT64_MAX, append, &got, &err), CF_ENOTFOUND);
    cf_buf_cleanup(&got);
}

static void test_abort_and_listing(void **state)
{
    cf_repo *r = *state;
    cf_err err;
    put(r, "b/2", "xx");
    put(r, "a/1", "x");
    put(r, "ab", "xyz");
    cf_repo_writer *w;
    assert_int_equal(cf_repo_writer_begin(r, "a/in-flight", 0, &w, &err), 0);
    assert_int_equal(cf_repo_writer_write(w, "partial", 7, &err), 0);
    cf_buf keys;
    cf_buf_init(&keys, 1 << 16);
    /* A write in progress is not an object. */
    assert_int_equal(cf_repo_list(r, "", collect_keys, &keys, &err), 0);
    assert_string_equal(keys.data, "a/1=1;ab=3;b/2=2;");
    cf_repo_writer_abort(w);
    cf_buf_reset(&keys);
    assert_int_equal(cf_repo_list(r, "a", collect_keys, &keys, &err), 0);
    assert_string_equal(keys.data, "a/1=1;ab=3;");
    cf_buf_reset(&keys);
    assert_int_equal(cf_repo_list(r, "a/", collect_keys, &keys, &err), 0);
    assert_string_equal(keys.data, "a/1=1;");
    assert_int_equal(cf_repo_delete(r, "a/1", &err), 0);
    assert_int_equal(cf_repo_delete(r, "a/1", &err), 0);
    /* Durable deletes sync the parent: one that does not exist holds nothing to sync. */
    assert_int_equal(cf_repo_delete(r, "no/such/dir/x", &err), 0);
    assert_int_equal(cf_repo_delete_flags(r, "no/such/dir/x", CF_REPO_DELETE_NO_SYNC, &err), 0);
    const char *missing[] = {"no/such/x", "a/1", "no/such/y"};
    assert_int_equal(cf_repo_delete_many(r, missing, 3, &err), 0);
    cf_buf_reset(&keys);
    assert_int_equal(cf_repo_list(r, "a/", collect_keys, &keys, &err), 0);
    assert_null(keys.data && keys.len ? keys.data : NULL);
    cf_buf_cleanup(&keys);
    char p[512];
    snprintf(p, sizeof p, "%s/a/in-flight", dir);
    assert_int_not_equal(access(p, F_OK), 0);
}

static void test_keys_cannot_escape(void **state)
{
    cf_repo *r = *state;
    cf_err err;
    cf_repo_writer *w;
    const char *bad[] = {"../x", "a/../../x", "/etc/passwd", "", "a//b", "./a", "a/.."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(cf_repo_writer_begin(r, bad[i], 0, &w, &err), CF_EINVAL);
        assert_int_equal(cf_repo_delete(r, bad[i], &err), CF_EINVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_objects_round_trip_and_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_and_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_cannot_escape, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
