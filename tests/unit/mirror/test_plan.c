/* test_plan.c - the mirror's plan: the same-rules of docs/MIRROR.md, excludes, the keys a
 * destination refuses, the delete plan, and keys that are hard for a directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mirror/plan.h"

static cf_plan_entry ent(const char *key, uint64_t size, int64_t mtime, const char *etag)
{
    return (cf_plan_entry){(char *)key, size, mtime, (char *)etag, 0};
}

static void test_dir_to_s3_is_same_when_uploaded_after_the_change(void **state)
{
    (void)state;
    cf_plan_entry f = ent("a", 10, 1000, "\"ino-10-1000\"");
    cf_plan_entry o = ent("a", 10, 1000, "\"0123456789abcdef0123456789abcdef\"");
    assert_true(cf_plan_same(CF_SIDE_DIR, CF_SIDE_S3, &f, &o));
    o.mtime = 2000; /* uploaded later */
    assert_true(cf_plan_same(CF_SIDE_DIR, CF_SIDE_S3, &f, &o));
    f.mtime = 2001; /* the file changed after the upload */
    assert_false(cf_plan_same(CF_SIDE_DIR, CF_SIDE_S3, &f, &o));
    f.mtime = 1000;
    f.size = 11;
    assert_false(cf_plan_same(CF_SIDE_DIR, CF_SIDE_S3, &f, &o));
}

static void test_s3_to_dir_needs_the_exact_mtime(void **state)
{
    (void)state;
    cf_plan_entry o = ent("a", 5, 1700000000, "\"d41d8cd98f00b204e9800998ecf8427e\"");
    cf_plan_entry f = ent("a", 5, 1700000000, "\"x\"");
    assert_true(cf_plan_same(CF_SIDE_S3, CF_SIDE_DIR, &o, &f));
    f.mtime++; /* touched in the destination: not what the mirror wrote */
    assert_false(cf_plan_same(CF_SIDE_S3, CF_SIDE_DIR, &o, &f));
    f.mtime -= 2;
    assert_false(cf_plan_same(CF_SIDE_S3, CF_SIDE_DIR, &o, &f));
    f.mtime = o.mtime;
    f.size = 6;
    assert_false(cf_plan_same(CF_SIDE_S3, CF_SIDE_DIR, &o, &f));
}

static void test_dir_to_dir_compares_size_and_mtime(void **state)
{
    (void)state;
    cf_plan_entry a = ent("a", 5, 100, "\"1-5-100\""), b = ent("a", 5, 100, "\"2-5-100\"");
    assert_true(cf_plan_same(CF_SIDE_DIR, CF_SIDE_DIR, &a, &b));
    b.mtime = 101;
    assert_false(cf_plan_same(CF_SIDE_DIR, CF_SIDE_DIR, &a, &b));
}

static void test_s3_to_s3_by_etag_then_time_for_multipart(void **state)
{
    (void)state;
    cf_plan_entry s = ent("a", 5, 100, "\"0123456789abcdef0123456789abcdef\"");
    cf_plan_entry d = ent("a", 5, 50, "\"0123456789ABCDEF0123456789ABCDEF\"");
    assert_true(cf_plan_same(CF_SIDE_S3, CF_SIDE_S3, &s, &d)); /* same MD5, whatever the time */
    d.etag = "0123456789abcdef0123456789abcdef";               /* a server without quotes */
    assert_true(cf_plan_same(CF_SIDE_S3, CF_SIDE_S3, &s, &d));
    d.etag = "\"ffffffffffffffffffffffffffffffff\"";
    d.mtime = 200;
    assert_false(cf_plan_same(CF_SIDE_S3, CF_SIDE_S3, &s, &d)); /* two MD5s differ: bytes differ */
    d.etag = "\"ffffffffffffffffffffffffffffffff-3\"";
    assert_true(cf_plan_same(CF_SIDE_S3, CF_SIDE_S3, &s, &d)); /* multipart: newer and same size */
    d.mtime = 99;
    assert_false(cf_plan_same(CF_SIDE_S3, CF_SIDE_S3, &s, &d)); /* multipart but older */
    s.etag = "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-2\"";
    d.etag = "\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"";
    d.mtime = 100;
    assert_true(cf_plan_same(CF_SIDE_S3, CF_SIDE_S3, &s, &d));
    d.size = 6;
    assert_false(cf_plan_same(CF_SIDE_S3, CF_SIDE_S3, &s, &d));
    d.size = 5;
    s.etag = "";
    assert_true(cf_plan_same(CF_SIDE_S3, CF_SIDE_S3, &s, &d)); /* no ETag listed: the time decides */
}

static void test_multipart_etag_shape(void **state)
{
    (void)state;
    assert_true(cf_plan_etag_is_multipart("\"abc-2\""));
    assert_true(cf_plan_etag_is_multipart("abc-10000"));
    assert_false(cf_plan_etag_is_multipart("\"abc\""));
    assert_false(cf_plan_etag_is_multipart("\"abc-\""));
    assert_false(cf_plan_etag_is_multipart("\"-2\""));
    assert_false(cf_plan_etag_is_multipart("\"ino-size-mtime\""));
    assert_false(cf_plan_etag_is_multipart(""));
}

static void test_excludes(void **state)
{
    (void)state;
    const char *pats[] = {"*.tmp", "cache/", "logs/*/old"};
    assert_true(cf_plan_excluded("a.tmp", pats, 3));
    assert_true(cf_plan_excluded("deep/dir/b.tmp", pats, 3)); /* '*' crosses '/' */
    assert_true(cf_plan_excluded("cache/x", pats, 3));
    assert_true(cf_plan_excluded("cache/y/z", pats, 3));
    assert_false(cf_plan_excluded("cache", pats, 3)); /* the file named like the directory */
    assert_false(cf_plan_excluded("notcache/x", pats, 3));
    assert_true(cf_plan_excluded("logs/2026/old", pats, 3));
    assert_false(cf_plan_excluded("a.tmpx", pats, 3));
    const char *sub[] = {"*/thumbs/"};
    assert_true(cf_plan_excluded("p/thumbs/a.jpg", sub, 1));
    assert_true(cf_plan_excluded("p/q/thumbs/a.jpg", sub, 1));
    assert_false(cf_plan_excluded("thumbs/a.jpg", sub, 1));
    assert_false(cf_plan_excluded("anything", NULL, 0));
}

static void test_directory_destination_refuses_escaping_keys(void **state)
{
    (void)state;
    const char *bad[] = {"../x",
                         "a/../../x",
                         "/etc/passwd",
                         "a//b",
                         "a/./b",
                         ".",
                         "..",
                         "a/..",
                         "dir/",
                         "a\nb",
                         "a\rb",
                         "\x1b[31m",
                         "tab\there",
                         "del\x7f",
                         "x/y.tmp-0123456789abcdef",
                         "d.tmp-0123456789abcdef/y",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_non_null(cf_plan_key_refused(bad[i], CF_SIDE_DIR));
    const char *good[] = {"a b/c d.txt",
                          "ünïcødé/日本.png",
                          "100%/a%2Fb",
                          "a+b=c",
                          "...",
                          "..a",
                          "a..",
                          ".hidden",
                          "x/.well-known/y",
                          "a\\b",
                          "report.tmp-final.pdf",
                          "y.tmp-0123"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_null(cf_plan_key_refused(good[i], CF_SIDE_DIR));
    char deep[4000] = "";
    for (int i = 0; i < 300; i++)
        strcat(deep, "d/");
    strcat(deep, "f");
    assert_null(cf_plan_key_refused(deep, CF_SIDE_DIR)); /* depth alone is no reason */
    char longseg[300];
    memset(longseg, 'x', 256);
    longseg[256] = '\0';
    assert_non_null(cf_plan_key_refused(longseg, CF_SIDE_DIR));
}

static void test_bucket_destination_rules(void **state)
{
    (void)state;
    assert_null(cf_plan_key_refused("../x", CF_SIDE_S3)); /* a bucket holds any key */
    assert_null(cf_plan_key_refused("a//b", CF_SIDE_S3));
    assert_null(cf_plan_key_refused("ünï/%+ .png", CF_SIDE_S3));
    assert_non_null(cf_plan_key_refused("a\nb", CF_SIDE_S3));
    assert_non_null(cf_plan_key_refused("\xff\xfe", CF_SIDE_S3));     /* not UTF-8 */
    assert_non_null(cf_plan_key_refused("\xc0\xaf", CF_SIDE_S3));     /* overlong '/' */
    assert_non_null(cf_plan_key_refused("\xed\xa0\x80", CF_SIDE_S3)); /* a surrogate */
    char big[1100];
    memset(big, 'k', 1025);
    big[1025] = '\0';
    assert_non_null(cf_plan_key_refused(big, CF_SIDE_S3));
    big[1024] = '\0';
    assert_null(cf_plan_key_refused(big, CF_SIDE_S3));
}

/* A list of entries from keys (size 1, mtime 1), sorted. */
static cf_plan_list list_of(const char *const *keys, size_t n)
{
    cf_plan_list l = {0};
    for (size_t i = 0; i < n; i++) {
        cf_repo_entry e = {keys[i], 1, 1, "\"e\"", 0, 0};
        assert_int_equal(cf_plan_list_add(&l, &e), 0);
    }
    cf_plan_list_sort(&l);
    return l;
}

static const cf_plan_item *find(const cf_plan *p, const char *key)
{
    for (size_t i = 0; i < p->n; i++) {
        const cf_plan_entry *e = p->v[i].src ? p->v[i].src : p->v[i].dst;
        if (!strcmp(e->key, key))
            return &p->v[i];
    }
    return NULL;
}

static void test_merge_copies_skips_and_deletes_in_key_order(void **state)
{
    (void)state;
    const char *sk[] = {"c", "a", "b", "keep/x"};
    const char *dk[] = {"b", "d", "a", "keep/y", "skipme.tmp"};
    cf_plan_list s = list_of(sk, 4), d = list_of(dk, 5);
    s.v[2].size = 2; /* "c" */
    d.v[1].size = 9; /* "b" differs in size */
    const char *ex[] = {"*.tmp"};
    cf_plan p;
    assert_int_equal(cf_plan_build(&s, CF_SIDE_S3, &d, CF_SIDE_DIR, ex, 1, 1, &p, NULL), 0);
    const char *order[] = {"a", "b", "c", "d", "keep/x", "keep/y"};
    assert_int_equal(p.n, 6);
    for (size_t i = 0; i < p.n; i++)
        assert_string_equal(p.v[i].src ? p.v[i].src->key : p.v[i].dst->key, order[i]);
    assert_int_equal(find(&p, "a")->action, CF_PLAN_SKIP);
    assert_int_equal(find(&p, "b")->action, CF_PLAN_COPY);
    assert_int_equal(find(&p, "c")->action, CF_PLAN_COPY);
    assert_int_equal(find(&p, "d")->action, CF_PLAN_DELETE);
    assert_int_equal(find(&p, "keep/y")->action, CF_PLAN_DELETE);
    assert_null(find(&p, "skipme.tmp")); /* excluded: never deleted */
    cf_plan_free(&p);
    /* Without --delete, the destination's extras are left alone. */
    assert_int_equal(cf_plan_build(&s, CF_SIDE_S3, &d, CF_SIDE_DIR, NULL, 0, 0, &p, NULL), 0);
    for (size_t i = 0; i < p.n; i++)
        assert_int_not_equal(p.v[i].action, CF_PLAN_DELETE);
    assert_null(find(&p, "d"));
    cf_plan_free(&p);
    cf_plan_list_free(&s);
    cf_plan_list_free(&d);
}

static void test_prefix_keys_sort_and_match_by_bytes(void **state)
{
    (void)state;
    /* "a" is a prefix of the others; '-', '.', ' ' sort before '/', which sorts before '0'. */
    const char *sk[] = {"a/b", "a", "a-b", "a.b", "a b", "a0", "ab"};
    const char *dk[] = {"a", "a/b", "ab"};
    cf_plan_list s = list_of(sk, 7), d = list_of(dk, 3);
    cf_plan p;
    assert_int_equal(cf_plan_build(&s, CF_SIDE_S3, &d, CF_SIDE_S3, NULL, 0, 1, &p, NULL), 0);
    assert_int_equal(p.n, 7);
    assert_int_equal(find(&p, "a")->action, CF_PLAN_SKIP);
    assert_int_equal(find(&p, "a/b")->action, CF_PLAN_SKIP);
    assert_int_equal(find(&p, "ab")->action, CF_PLAN_SKIP);
    assert_int_equal(find(&p, "a-b")->action, CF_PLAN_COPY);
    assert_int_equal(find(&p, "a b")->action, CF_PLAN_COPY);
    for (size_t i = 1; i < p.n; i++)
        assert_true(strcmp(p.v[i - 1].src->key, p.v[i].src->key) < 0);
    cf_plan_free(&p);
    cf_plan_list_free(&s);
    cf_plan_list_free(&d);
}

/* S3 may hold "a" and "a/b"; a directory cannot hold a file and a directory named "a". The file
 * is refused (a failed file, named), the tree under "a/" is mirrored, whatever the order in
 * which other keys sort between them. */
static void test_file_and_directory_of_one_name_going_to_a_directory(void **state)
{
    (void)state;
    const char *sk[] = {"a", "a.txt", "a-1", "a/b", "a/c/d", "b", "b/"};
    cf_plan_list s = list_of(sk, 7), d = {0};
    s.v[6].size = 0; /* "b/": a folder marker */
    cf_plan p;
    assert_int_equal(cf_plan_build(&s, CF_SIDE_S3, &d, CF_SIDE_DIR, NULL, 0, 0, &p, NULL), 0);
    assert_int_equal(find(&p, "a")->action, CF_PLAN_REFUSE);
    assert_non_null(strstr(find(&p, "a")->why, "directory"));
    assert_int_equal(find(&p, "a/b")->action, CF_PLAN_COPY);
    assert_int_equal(find(&p, "a/c/d")->action, CF_PLAN_COPY);
    assert_int_equal(find(&p, "a.txt")->action, CF_PLAN_COPY);
    assert_int_equal(find(&p, "a-1")->action, CF_PLAN_COPY);
    assert_int_equal(find(&p, "b")->action, CF_PLAN_COPY);
    assert_int_equal(find(&p, "b/")->action, CF_PLAN_LEAVE);
    cf_plan_free(&p);
    /* To a bucket, both are fine. */
    assert_int_equal(cf_plan_build(&s, CF_SIDE_S3, &d, CF_SIDE_S3, NULL, 0, 0, &p, NULL), 0);
    for (size_t i = 0; i < p.n; i++)
        assert_int_equal(p.v[i].action, CF_PLAN_COPY);
    cf_plan_free(&p);
    cf_plan_list_free(&s);
}

static void test_hostile_listing_is_refused_per_key(void **state)
{
    (void)state;
    const char *sk[] = {"../../etc/cron.d/x", "/abs", "ok/file", "a//b", "x/../../y", "nl\nname", "fine"};
    cf_plan_list s = list_of(sk, 7), d = {0};
    cf_plan p;
    assert_int_equal(cf_plan_build(&s, CF_SIDE_S3, &d, CF_SIDE_DIR, NULL, 0, 1, &p, NULL), 0);
    size_t refused = 0, copied = 0;
    for (size_t i = 0; i < p.n; i++) {
        refused += p.v[i].action == CF_PLAN_REFUSE;
        copied += p.v[i].action == CF_PLAN_COPY;
    }
    assert_int_equal(refused, 5);
    assert_int_equal(copied, 2);
    assert_int_equal(find(&p, "ok/file")->action, CF_PLAN_COPY);
    cf_plan_free(&p);
    cf_plan_list_free(&s);
}

static void test_special_files_are_left_and_replaced(void **state)
{
    (void)state;
    cf_plan_list s = {0}, d = {0};
    cf_repo_entry link = {"link", 11, 5, "\"e\"", 0, 1}, file = {"f", 3, 5, "\"e\"", 0, 0};
    assert_int_equal(cf_plan_list_add(&s, &link), 0);
    assert_int_equal(cf_plan_list_add(&s, &file), 0);
    cf_repo_entry planted = {"f", 3, 5, "\"e\"", 0, 1}; /* a symbolic link where the file goes */
    assert_int_equal(cf_plan_list_add(&d, &planted), 0);
    cf_plan_list_sort(&s);
    cf_plan p;
    assert_int_equal(cf_plan_build(&s, CF_SIDE_DIR, &d, CF_SIDE_DIR, NULL, 0, 1, &p, NULL), 0);
    assert_int_equal(find(&p, "link")->action, CF_PLAN_LEAVE);
    assert_int_equal(find(&p, "f")->action, CF_PLAN_COPY); /* never "the same" as a link */
    cf_plan_free(&p);
    cf_plan_list_free(&s);
    cf_plan_list_free(&d);
}

static void test_empty_sides(void **state)
{
    (void)state;
    cf_plan_list s = {0}, d = {0};
    cf_plan p;
    assert_int_equal(cf_plan_build(&s, CF_SIDE_DIR, &d, CF_SIDE_S3, NULL, 0, 1, &p, NULL), 0);
    assert_int_equal(p.n, 0);
    cf_plan_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dir_to_s3_is_same_when_uploaded_after_the_change),
        cmocka_unit_test(test_s3_to_dir_needs_the_exact_mtime),
        cmocka_unit_test(test_dir_to_dir_compares_size_and_mtime),
        cmocka_unit_test(test_s3_to_s3_by_etag_then_time_for_multipart),
        cmocka_unit_test(test_multipart_etag_shape),
        cmocka_unit_test(test_excludes),
        cmocka_unit_test(test_directory_destination_refuses_escaping_keys),
        cmocka_unit_test(test_bucket_destination_rules),
        cmocka_unit_test(test_merge_copies_skips_and_deletes_in_key_order),
        cmocka_unit_test(test_prefix_keys_sort_and_match_by_bytes),
        cmocka_unit_test(test_file_and_directory_of_one_name_going_to_a_directory),
        cmocka_unit_test(test_hostile_listing_is_refused_per_key),
        cmocka_unit_test(test_special_files_are_left_and_replaced),
        cmocka_unit_test(test_empty_sides),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
