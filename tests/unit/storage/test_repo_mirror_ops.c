/* test_repo_mirror_ops.c - what coffer mirror added to repositories, on a directory: standard
 * headers and mtime stored with a write, cf_repo_read's info before the bytes, listing flags,
 * cf_repo_copy_from's refusal across repositories, the checks of the new put options. (The S3
 * side of each runs against real servers in tests/integration/test_mirror.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fs.h"
#include "storage/repo.h"

#include "../repo_object.h"

static char base[64];

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof base, "/tmp/test_repo_mirror_ops.XXXXXX");
    return mkdtemp(base) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cf_fs_remove_tree(base, NULL);
    return 0;
}

static cf_repo *open_at(const char *sub)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", base, sub);
    cf_repo *r = NULL;
    assert_int_equal(cf_repo_open_dir(path, &r, NULL), 0);
    return r;
}

static void put(cf_repo *r, const char *key, const char *data, const cf_repo_put_opts *o)
{
    put_object(r, key, data, strlen(data), o);
}

static void test_headers_mtime_and_mode_are_stored(void **state)
{
    (void)state;
    cf_repo *r = open_at("h");
    cf_repo_meta m[] = {{"owner", "shop"}};
    cf_repo_put_opts o = {.content_type = "image/png",
                          .meta = m,
                          .nmeta = 1,
                          .cache_control = "public, max-age=60",
                          .content_disposition = "inline",
                          .content_encoding = "identity",
                          .content_language = "de",
                          .expires = "Thu, 01 Dec 2050 16:00:00 GMT",
                          .mtime = 1700000000,
                          .no_sync = 1,
                          .mode = 0666};
    mode_t old = umask(022);
    put(r, "d/e/f.png", "png bytes", &o);
    umask(old);
    cf_repo_info info;
    assert_int_equal(cf_repo_stat(r, "d/e/f.png", &info, NULL), 0);
    assert_int_equal(info.mtime, 1700000000);
    assert_string_equal(info.content_type, "image/png");
    assert_string_equal(info.cache_control, "public, max-age=60");
    assert_string_equal(info.content_disposition, "inline");
    assert_string_equal(info.content_encoding, "identity");
    assert_string_equal(info.content_language, "de");
    assert_string_equal(info.expires, "Thu, 01 Dec 2050 16:00:00 GMT");
    assert_int_equal(info.nmeta, 1);
    char path[160];
    struct stat st;
    snprintf(path, sizeof path, "%s/h/d/e/f.png", base);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    snprintf(path, sizeof path, "%s/h/d/e", base);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755);
    /* A copy within the repository keeps them all; the default stays a private 0600. */
    assert_int_equal(cf_repo_copy(r, "d/e/f.png", "g", NULL, NULL), 0);
    assert_int_equal(cf_repo_stat(r, "g", &info, NULL), 0);
    assert_string_equal(info.cache_control, "public, max-age=60");
    assert_string_equal(info.content_language, "de");
    snprintf(path, sizeof path, "%s/h/g", base);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(cf_repo_sync(r, NULL), 0);
    cf_repo_close(r);
}

static void test_bad_standard_headers_are_refused_before_writing(void **state)
{
    (void)state;
    cf_repo *r = open_at("bad");
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cf_repo_put_opts bad[] = {
        {.cache_control = "a\r\nX-Injected: 1"}, {.expires = "\x01"}, {.cache_control = big}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cf_repo_writer *w = NULL;
        cf_err err;
        assert_int_equal(cf_repo_writer_begin_opts(r, "k", 1, &bad[i], &w, &err), CF_EINVAL);
        assert_null(w);
    }
    cf_repo_close(r);
}

typedef struct reading {
    int infos, info_before_data;
    char type[128];
    int64_t mtime;
    char data[64];
    size_t len;
    int fail_info;
} reading;

static int on_info(void *ctx, const cf_repo_info *info, cf_err *err)
{
    reading *rd = ctx;
    rd->infos++;
    rd->info_before_data = rd->len == 0;
    snprintf(rd->type, sizeof rd->type, "%s", info->content_type);
    rd->mtime = info->mtime;
    return rd->fail_info ? cf_err_set(err, CF_EDENIED, "refused by the test") : 0;
}

static int on_data(void *ctx, const void *p, size_t n, cf_err *err)
{
    (void)err;
    reading *rd = ctx;
    assert_true(rd->len + n <= sizeof rd->data);
    memcpy(rd->data + rd->len, p, n);
    rd->len += n;
    return 0;
}

static void test_read_tells_info_before_the_bytes(void **state)
{
    (void)state;
    cf_repo *r = open_at("rd");
    cf_repo_put_opts o = {.content_type = "text/css", .mtime = 1600000000};
    put(r, "a.css", "body{}", &o);
    put(r, "empty", "", &o);
    reading rd = {0};
    assert_int_equal(cf_repo_read(r, "a.css", 6, on_info, on_data, &rd, NULL), 0);
    assert_int_equal(rd.infos, 1);
    assert_true(rd.info_before_data);
    assert_string_equal(rd.type, "text/css");
    assert_int_equal(rd.mtime, 1600000000);
    assert_int_equal(rd.len, 6);
    assert_memory_equal(rd.data, "body{}", 6);
    memset(&rd, 0, sizeof rd);
    assert_int_equal(cf_repo_read(r, "empty", 0, on_info, on_data, &rd, NULL), 0);
    assert_int_equal(rd.infos, 1); /* an empty object is told too */
    memset(&rd, 0, sizeof rd);
    rd.fail_info = 1;
    cf_err err;
    assert_int_equal(cf_repo_read(r, "a.css", 6, on_info, on_data, &rd, &err), CF_EDENIED);
    assert_string_equal(err.msg, "refused by the test");
    assert_int_equal(rd.len, 0);
    assert_int_equal(cf_repo_read(r, "missing", 0, on_info, on_data, &rd, NULL), CF_ENOTFOUND);
    cf_repo_close(r);
}

typedef struct seen {
    char keys[8][32];
    int special[8];
    int n;
} seen;

static int collect(void *ctx, const cf_repo_entry *e)
{
    seen *s = ctx;
    assert_true(s->n < 8);
    snprintf(s->keys[s->n], sizeof s->keys[0], "%s", e->key);
    s->special[s->n++] = e->is_special;
    return 0;
}

static void test_listing_flags(void **state)
{
    (void)state;
    cf_repo *r = open_at("ls");
    put(r, ".hidden/x", "1", NULL);
    put(r, "b", "2", NULL);
    put(r, "c.tmp-final", "3", NULL); /* not a temporary name: an object like any */
    char path[160], target[160];
    snprintf(path, sizeof path, "%s/ls/link", base);
    snprintf(target, sizeof target, "%s/ls/b", base);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof path, "%s/ls/b.tmp-0011223344556677", base);
    FILE *f = fopen(path, "w"); /* a write in flight */
    assert_non_null(f);
    fclose(f);
    seen s = {0};
    assert_int_equal(cf_repo_list(r, "", collect, &s, NULL), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.keys[0], "b");
    assert_string_equal(s.keys[1], "c.tmp-final");
    memset(&s, 0, sizeof s);
    assert_int_equal(cf_repo_list_flags(r, "", CF_REPO_LIST_HIDDEN | CF_REPO_LIST_SPECIAL, collect, &s, NULL),
                     0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.keys[0], ".hidden/x");
    assert_string_equal(s.keys[1], "b");
    assert_string_equal(s.keys[2], "c.tmp-final");
    assert_string_equal(s.keys[3], "link");
    assert_int_equal(s.special[1], 0);
    assert_int_equal(s.special[3], 1);
    assert_true(cf_repo_dir_temporary("b.tmp-0011223344556677"));
    assert_false(cf_repo_dir_temporary("b.tmp-001122334455667"));
    assert_false(cf_repo_dir_temporary("b.tmp-00112233445566778"));
    assert_false(cf_repo_dir_temporary("b.tmp-00112233445566ZZ"));
    cf_repo_close(r);
}

static void test_copy_from_another_directory_is_not_supported(void **state)
{
    (void)state;
    cf_repo *a = open_at("ca"), *b = open_at("cb");
    put(a, "k", "bytes", NULL);
    cf_err err;
    assert_int_equal(cf_repo_copy_from(b, "k", a, "k", NULL, &err), CF_ENOTSUP);
    assert_int_equal(cf_repo_copy_from(a, "k2", a, "k", NULL, &err), 0); /* the same repository */
    cf_repo_info info;
    assert_int_equal(cf_repo_stat(a, "k2", &info, NULL), 0);
    assert_int_equal(info.size, 5);
    cf_repo_close(a);
    cf_repo_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_mtime_and_mode_are_stored),
        cmocka_unit_test(test_bad_standard_headers_are_refused_before_writing),
        cmocka_unit_test(test_read_tells_info_before_the_bytes),
        cmocka_unit_test(test_listing_flags),
        cmocka_unit_test(test_copy_from_another_directory_is_not_supported),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
