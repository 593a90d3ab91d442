/* test_fixtypes.c - --fix-content-types on a directory repository (types in extended attributes):
 * what is fixed, what is kept, what is left alone, failures, and many objects on many threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/fs.h"
#include "mirror/fixtypes.h"
#include "storage/repo_int.h"

#include "../repo_object.h"

static const char PNG[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\1\0\0\0\1\x08\x02\0\0\0";
#define PNG_LEN (sizeof PNG - 1)
static const char CSS[] = "body { margin: 0 }\n.a > .b { color: #333 }\n";

typedef struct fixture {
    char dir[64];
    cf_repo *repo;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_fixtypes.XXXXXX");
    cf_err err;
    if (!mkdtemp(f->dir) || cf_repo_open_dir(f->dir, &f->repo, &err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    cf_repo_close(f->repo);
    cf_err err;
    cf_fs_remove_tree(f->dir, &err);
    free(f);
    return 0;
}

static void put_typed(cf_repo *r, const char *key, const void *p, size_t n, const char *type)
{
    cf_repo_put_opts o = {.content_type = type};
    put_object(r, key, p, n, &o);
}

static cf_repo_info *stat_of(cf_repo *r, const char *key)
{
    static cf_repo_info info; /* one test thread */
    cf_err err;
    memset(&info, 0, sizeof info);
    assert_int_equal(cf_repo_stat(r, key, &info, &err), 0);
    return &info;
}

static void test_fixes_and_keeps(void **state)
{
    fixture *f = *state;
    cf_repo *r = f->repo;
    cf_repo_meta meta[] = {{"owner", "shop"}, {"rev", "7"}};
    cf_repo_put_opts css_opts = {.content_type = "image/jpeg",
                                 .meta = meta,
                                 .nmeta = 2,
                                 .cache_control = "public, max-age=60",
                                 .content_disposition = "inline",
                                 .content_language = "en"};
    put_object(r, "css/site.css", CSS, strlen(CSS), &css_opts);
    put_typed(r, "img/a.png", PNG, PNG_LEN, "application/octet-stream");
    put_typed(r, "img/b.png", PNG, PNG_LEN, "image/png");
    put_typed(r, "img/c.png", PNG, PNG_LEN, "text/plain");
    put_typed(r, "skip/d.png", PNG, PNG_LEN, "application/octet-stream");
    put_typed(r, "notes.txt", CSS, strlen(CSS), "application/octet-stream");
    cf_repo_put_opts gz = {.content_type = "text/css", .content_encoding = "gzip"};
    put_object(r, "gz/site.css", "\x1f\x8b\x08\0\0\0\0\0", 8, &gz);
    char etag_b[132], etag_css[132];
    snprintf(etag_b, sizeof etag_b, "%s", stat_of(r, "img/b.png")->etag);
    snprintf(etag_css, sizeof etag_css, "%s", stat_of(r, "css/site.css")->etag);

    const char *exclude[] = {"skip/", "*.txt"};
    cf_fix_summary s;
    cf_err err;
    assert_int_equal(cf_mirror_fix_content_types(r, exclude, 2, 2, 1, NULL, &s, &err), 0);
    assert_int_equal(s.checked, 5);
    assert_int_equal(s.fixed, 3);
    assert_int_equal(s.nkeys, 3);
    assert_string_equal(s.keys[0], "css/site.css");
    assert_string_equal(s.changes[0].stored, "image/jpeg");
    assert_string_equal(s.changes[0].detected, "text/css; charset=utf-8");
    assert_string_equal(s.keys[1], "img/a.png");
    assert_string_equal(s.changes[1].stored, "application/octet-stream");
    assert_string_equal(s.changes[1].detected, "image/png");
    assert_string_equal(s.keys[2], "img/c.png");
    assert_int_equal(s.nfailures, 0);
    cf_fix_summary_free(&s);
    /* The dry run wrote nothing. */
    assert_string_equal(stat_of(r, "css/site.css")->etag, etag_css);
    assert_string_equal(stat_of(r, "img/a.png")->content_type, "application/octet-stream");

    assert_int_equal(cf_mirror_fix_content_types(r, exclude, 2, 0, 0, NULL, &s, &err), 0);
    assert_int_equal(s.fixed, 3);
    cf_fix_summary_free(&s);
    cf_repo_info *info = stat_of(r, "css/site.css");
    assert_string_equal(info->content_type, "text/css; charset=utf-8");
    assert_string_equal(info->cache_control, "public, max-age=60");
    assert_string_equal(info->content_disposition, "inline");
    assert_string_equal(info->content_language, "en");
    assert_int_equal(info->nmeta, 2);
    assert_string_equal(meta_of(info, "owner"), "shop");
    assert_string_equal(meta_of(info, "rev"), "7");
    assert_string_equal(stat_of(r, "img/a.png")->content_type, "image/png");
    assert_string_equal(stat_of(r, "img/c.png")->content_type, "image/png");
    /* Left alone: right already, excluded, or encoded bytes judged by their name. */
    assert_string_equal(stat_of(r, "img/b.png")->etag, etag_b);
    assert_string_equal(stat_of(r, "skip/d.png")->content_type, "application/octet-stream");
    assert_string_equal(stat_of(r, "notes.txt")->content_type, "application/octet-stream");
    assert_string_equal(stat_of(r, "gz/site.css")->content_type, "text/css");

    /* A second run finds nothing. */
    assert_int_equal(cf_mirror_fix_content_types(r, exclude, 2, 3, 0, NULL, &s, &err), 0);
    assert_int_equal(s.fixed, 0);
    assert_int_equal(s.checked, 5);
    cf_fix_summary_free(&s);
}

/* Metadata a copy could not carry whole is a failure, and the object stays as it was. */
static void test_metadata_that_would_be_lost_is_a_failure(void **state)
{
    fixture *f = *state;
    cf_repo_meta meta[CF_REPO_META_FIELDS];
    char names[CF_REPO_META_FIELDS][8];
    for (int i = 0; i < CF_REPO_META_FIELDS; i++) {
        snprintf(names[i], sizeof names[i], "m%d", i);
        meta[i] = (cf_repo_meta){names[i], "v"};
    }
    cf_repo_put_opts o = {
        .content_type = "application/octet-stream", .meta = meta, .nmeta = CF_REPO_META_FIELDS};
    put_object(f->repo, "full/a.png", PNG, PNG_LEN, &o);
    put_typed(f->repo, "full/b.png", PNG, PNG_LEN, "");
    cf_fix_summary s;
    cf_err err;
    const char *exclude[] = {"[!f]*"};
    assert_int_equal(cf_mirror_fix_content_types(f->repo, exclude, 1, 4, 0, NULL, &s, &err), 0);
    assert_int_equal(s.nfailures, 1);
    assert_string_equal(s.failures[0].key, "full/a.png");
    assert_non_null(strstr(s.failures[0].why, "metadata"));
    assert_int_equal(s.fixed, 1);
    assert_string_equal(s.keys[0], "full/b.png");
    cf_fix_summary_free(&s);
    assert_string_equal(stat_of(f->repo, "full/a.png")->content_type, "application/octet-stream");
    assert_string_equal(stat_of(f->repo, "full/b.png")->content_type, "image/png");
}

/* A repository whose object is rewritten by another writer just before each of the first
 * `rewrites` copies: the window between the fix's read and its copy, made certain. Every other
 * call goes to the directory repository underneath. */
typedef struct racing_repo {
    cf_repo base;
    cf_repo *inner;
    int rewrites, copies;
} racing_repo;

#define INNER(r) (((racing_repo *)(r))->inner)

static int race_list(cf_repo *r, const char *prefix, int flags, cf_repo_list_fn fn, void *ctx, cf_err *err)
{
    return cf_repo_list_flags(INNER(r), prefix, flags, fn, ctx, err);
}

static int race_stat(cf_repo *r, const char *key, cf_repo_info *out, cf_err *err)
{
    return cf_repo_stat(INNER(r), key, out, err);
}

static int race_get(cf_repo *r, const char *key, uint64_t offset, uint64_t len, cf_repo_data_fn fn, void *ctx,
                    cf_err *err)
{
    return cf_repo_get(INNER(r), key, offset, len, fn, ctx, err);
}

static const char REWRITTEN[] = "body { margin: 1em }\n";

static int race_copy(cf_repo *r, const char *src, const char *dst, const cf_repo_put_opts *o, cf_err *err)
{
    racing_repo *rr = (racing_repo *)r;
    rr->copies++;
    if (rr->rewrites > 0) {
        char rev[16];
        snprintf(rev, sizeof rev, "w%d", rr->rewrites--);
        cf_repo_meta meta[] = {{"rev", rev}};
        cf_repo_put_opts theirs = {.content_type = "text/plain", .meta = meta, .nmeta = 1};
        put_object(rr->inner, src, REWRITTEN, strlen(REWRITTEN), &theirs);
    }
    return cf_repo_copy(rr->inner, src, dst, o, err);
}

static const cf_repo_ops racing_ops = {
    .list = race_list, .stat = race_stat, .get = race_get, .copy = race_copy};

/* An object rewritten between the fix's read and its copy: the copy, pinned to what was read,
 * writes nothing; the object is read again and fixed as it now is (its metadata kept, not the
 * first read's). Rewritten at every try, it is reported and left as its writer made it. */
static void test_object_rewritten_before_the_copy(void **state)
{
    fixture *f = *state;
    cf_repo_meta meta[] = {{"rev", "mine"}};
    cf_repo_put_opts mine = {.content_type = "application/octet-stream", .meta = meta, .nmeta = 1};
    put_object(f->repo, "race.css", CSS, strlen(CSS), &mine);
    racing_repo rr = {.base = {.ops = &racing_ops, .name = "racing:"}, .inner = f->repo, .rewrites = 1};
    cf_fix_summary s;
    cf_err err;
    assert_int_equal(cf_mirror_fix_content_types(&rr.base, NULL, 0, 1, 0, NULL, &s, &err), 0);
    assert_int_equal(rr.copies, 2);
    assert_int_equal(s.nfailures, 0);
    assert_int_equal(s.fixed, 1);
    assert_string_equal(s.changes[0].stored, "text/plain"); /* what it was when fixed */
    cf_fix_summary_free(&s);
    cf_repo_info *info = stat_of(f->repo, "race.css");
    assert_string_equal(info->content_type, "text/css; charset=utf-8");
    assert_string_equal(meta_of(info, "rev"), "w1"); /* the rewrite's metadata on the rewrite's bytes */
    assert_int_equal(info->size, strlen(REWRITTEN));

    put_object(f->repo, "race.css", CSS, strlen(CSS), &mine);
    rr = (racing_repo){.base = {.ops = &racing_ops, .name = "racing:"}, .inner = f->repo, .rewrites = 5};
    assert_int_equal(cf_mirror_fix_content_types(&rr.base, NULL, 0, 1, 0, NULL, &s, &err), 0);
    assert_int_equal(rr.copies, 2); /* read again once, not forever */
    assert_int_equal(s.fixed, 0);
    assert_int_equal(s.nfailures, 1);
    assert_string_equal(s.failures[0].key, "race.css");
    assert_non_null(strstr(s.failures[0].why, "rewritten"));
    cf_fix_summary_free(&s);
    info = stat_of(f->repo, "race.css");
    assert_string_equal(info->content_type, "text/plain");
    assert_string_equal(meta_of(info, "rev"), "w4");
}

/* Many objects on more threads than objects fit per thread: every one is looked at once. */
static void test_many_objects_on_many_threads(void **state)
{
    fixture *f = *state;
    char key[64];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "many/%03d.%s", i, i % 3 ? "png" : "css");
        if (i % 3)
            put_typed(f->repo, key, PNG, PNG_LEN, i % 2 ? "binary/octet-stream" : "image/png");
        else
            put_typed(f->repo, key, CSS, strlen(CSS), "text/plain");
    }
    const char *exclude[] = {"[!m]*"};
    cf_fix_summary s;
    cf_err err;
    assert_int_equal(cf_mirror_fix_content_types(f->repo, exclude, 1, 8, 0, NULL, &s, &err), 0);
    assert_int_equal(s.checked, 300);
    size_t want = 0;
    for (int i = 0; i < 300; i++)
        want += !(i % 3) || (i % 2);
    assert_int_equal(s.fixed, want);
    for (size_t i = 1; i < s.nkeys; i++)
        assert_true(strcmp(s.keys[i - 1], s.keys[i]) < 0);
    cf_fix_summary_free(&s);
    assert_string_equal(stat_of(f->repo, "many/000.css")->content_type, "text/css; charset=utf-8");
    assert_string_equal(stat_of(f->repo, "many/001.png")->content_type, "image/png");
}

/* --exclude means what it means to the mirror (cf_plan_excluded): a pattern ending in '/' is a
 * glob over whole leading directories, so a subtree named by a wildcard is left alone too. */
static void test_excluded_subtree_glob_is_left_alone(void **state)
{
    fixture *f = *state;
    put_typed(f->repo, "assets-v2/logo.png", PNG, PNG_LEN, "application/octet-stream");
    put_typed(f->repo, "site/assets-v3/deep/icon.png", PNG, PNG_LEN, "application/octet-stream");
    put_typed(f->repo, "img/fix.png", PNG, PNG_LEN, "application/octet-stream");
    const char *exclude[] = {"assets-*/", "site/*/deep/"};
    cf_fix_summary s;
    cf_err err;
    assert_int_equal(cf_mirror_fix_content_types(f->repo, exclude, 2, 2, 0, NULL, &s, &err), 0);
    assert_int_equal(s.checked, 1);
    assert_int_equal(s.fixed, 1);
    assert_string_equal(s.keys[0], "img/fix.png");
    cf_fix_summary_free(&s);
    assert_string_equal(stat_of(f->repo, "assets-v2/logo.png")->content_type, "application/octet-stream");
    assert_string_equal(stat_of(f->repo, "site/assets-v3/deep/icon.png")->content_type,
                        "application/octet-stream");
}

static void test_bad_jobs_refused(void **state)
{
    fixture *f = *state;
    cf_fix_summary s;
    cf_err err;
    assert_int_equal(cf_mirror_fix_content_types(f->repo, NULL, 0, 257, 0, NULL, &s, &err), CF_EINVAL);
    assert_int_equal(cf_mirror_fix_content_types(f->repo, NULL, 0, -1, 0, NULL, &s, &err), CF_EINVAL);
    assert_int_equal(s.nkeys + s.nfailures, 0);
    cf_fix_summary_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fixes_and_keeps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_that_would_be_lost_is_a_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_rewritten_before_the_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_objects_on_many_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_excluded_subtree_glob_is_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_jobs_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
