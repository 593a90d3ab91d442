/* test_mirror_names.c - a directory destination holding a directory where the source now has a
 * file of that name, or a file where the source now has a directory: the deletes in the way run
 * before the copies and the directories they empty go, in a plain mirror with deletion and in a
 * dated mirror's reused staging directory. Also what a dated dry run says it would link. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fs.h"
#include "mirror/dated.h"
#include "mirror/mirror.h"
#include "storage/repo.h"

#include "scratch_tree.h"

static int is_file(const char *rel)
{
    struct stat st;
    return lstat(at(rel), &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *rel)
{
    struct stat st;
    return lstat(at(rel), &st) == 0 && S_ISDIR(st.st_mode);
}

static void assert_bytes(const char *rel, const char *want)
{
    char *s = slurp(rel);
    assert_string_equal(s, want);
    free(s);
}

/* coffer mirror ROOT/src ROOT/dst [--delete]: 0 or the run's error; out filled. */
static int mirror(int delete_extra, cf_mirror_summary *out)
{
    cf_repo *s, *d;
    cf_err err;
    assert_int_equal(cf_fs_mkdirs(at("dst"), 0755, NULL), 0);
    assert_int_equal(cf_repo_open_dir(at("src"), &s, &err), 0);
    assert_int_equal(cf_repo_open_dir(at("dst"), &d, &err), 0);
    cf_mirror_side src = {.repo = s, .url = at("src"), .dir = at("src")};
    cf_mirror_side dst = {.repo = d, .url = at("dst"), .dir = at("dst")};
    cf_mirror_opts o = {.delete_extra = delete_extra, .jobs = 2};
    int rc = cf_mirror_run(&src, &dst, &o, out, &err);
    for (size_t i = 0; i < out->nfailures; i++)
        print_message("%s: %s\n", out->failures[i].key, out->failures[i].why);
    cf_repo_close(s);
    cf_repo_close(d);
    return rc;
}

/* The source's files and the destination's before the run ({path, bytes}), and what the run does:
 * x/ emptied and removed for the file x, or the file x removed for the directory x/. A name that
 * sorts between x and x/ (x-1, x.txt) is there to catch an order that assumes they are adjacent. */
static const struct swap {
    const char *src[2][2], *dst[2][2];
    uint64_t copied, deleted;
} swaps[] = {
    {{{"x", "now a file"}, {"x-1", "sorts between"}}, {{"x/y", "was under x"}, {"x/z/w", "deeper"}}, 2, 2},
    {{{"x/y", "now under x"}, {"x.txt", "sorts between"}}, {{"x", "was a file"}, {"x.txt", "old"}}, 2, 1},
};

static void test_a_file_and_a_directory_trade_a_name(void **state)
{
    (void)state;
    char rel[64];
    for (size_t i = 0; i < sizeof swaps / sizeof *swaps; i++) {
        const struct swap *w = &swaps[i];
        cf_fs_remove_tree(at("src"), NULL);
        cf_fs_remove_tree(at("dst"), NULL);
        for (size_t k = 0; k < 2; k++) {
            snprintf(rel, sizeof rel, "src/%s", w->src[k][0]);
            file(rel, w->src[k][1], 1000);
            snprintf(rel, sizeof rel, "dst/%s", w->dst[k][0]);
            file(rel, w->dst[k][1], 500);
        }
        cf_mirror_summary out;
        assert_int_equal(mirror(1, &out), 0);
        assert_int_equal(out.files_failed, 0);
        assert_int_equal(out.files_copied, w->copied);
        assert_int_equal(out.files_deleted, w->deleted);
        cf_mirror_summary_free(&out);
        for (size_t k = 0; k < 2; k++) {
            snprintf(rel, sizeof rel, "dst/%s", w->src[k][0]);
            assert_bytes(rel, w->src[k][1]);
        }
        /* Again: nothing left to do. */
        assert_int_equal(mirror(1, &out), 0);
        assert_int_equal(out.files_copied + out.files_deleted + out.files_failed, 0);
        cf_mirror_summary_free(&out);
    }
}

static void test_without_delete_nothing_is_removed_and_the_file_fails(void **state)
{
    (void)state;
    file("src/x", "a file", 1000);
    file("dst/x/y", "kept", 1000);
    cf_mirror_summary out;
    assert_int_equal(mirror(0, &out), 0);
    assert_int_equal(out.files_failed, 1);
    assert_string_equal(out.failures[0].key, "x");
    cf_mirror_summary_free(&out);
    assert_bytes("dst/x/y", "kept");
}

static void test_deletes_never_remove_the_destination_or_what_they_did_not_empty(void **state)
{
    (void)state;
    file("src/keep/a", "a", 1000);
    file("dst/keep/a", "a", 1000);
    file("dst/keep/b", "goes", 1000);
    file("dst/gone/deep/c", "goes", 1000);
    assert_int_equal(cf_fs_mkdirs(at("outside/empty"), 0755, NULL), 0);
    assert_int_equal(symlink(at("outside"), at("dst/gone/link")), 0);
    cf_mirror_summary out;
    assert_int_equal(mirror(1, &out), 0);
    cf_mirror_summary_free(&out);
    assert_true(is_dir("dst"));
    assert_true(is_dir("dst/keep"));
    assert_false(is_file("dst/keep/b"));
    assert_false(is_dir("dst/gone/deep"));
    /* The link was deleted as an entry of the destination; what it pointed to stays. */
    assert_true(is_dir("outside/empty"));

    /* Everything goes: the destination directory itself stays. */
    assert_int_equal(cf_fs_remove_tree(at("src"), NULL), 0);
    assert_int_equal(cf_fs_mkdirs(at("src"), 0755, NULL), 0);
    assert_int_equal(mirror(1, &out), 0);
    cf_mirror_summary_free(&out);
    assert_true(is_dir("dst"));
    assert_false(is_dir("dst/keep"));
}

static int night(const char *name, int dry_run, cf_mirror_summary *out)
{
    cf_repo *s;
    cf_err err;
    assert_int_equal(cf_repo_open_dir(at("src"), &s, &err), 0);
    cf_mirror_side src = {.repo = s, .url = at("src"), .dir = at("src")};
    cf_mirror_opts o = {.jobs = 2, .dry_run = dry_run};
    cf_dated_opts d = {.as_of = name};
    char **removed;
    size_t nremoved;
    int rc = cf_mirror_dated(&src, at("nightly"), &o, &d, out, &removed, &nremoved, &err);
    if (rc)
        print_message("night %s: %s\n", name, err.msg);
    cf_dated_names_free(removed, nremoved);
    cf_repo_close(s);
    return rc;
}

/* A failed night leaves its staging directory, and the next run stages in it: it held x/y when
 * the source now has x, then x when the source has x/y again. */
static void test_dated_staging_reused_across_a_file_and_a_directory(void **state)
{
    (void)state;
    cf_mirror_summary out;
    for (int run = 0; run < 4; run++) {
        int a_file = run % 2, fails = run < 3;
        assert_int_equal(cf_fs_remove_tree(at("src"), NULL), 0);
        if (a_file)
            file("src/x", "file", 1000 + run);
        else
            file("src/x/y", "under", 1000 + run);
        if (fails)
            file("src/bad\x01name", "a key no directory may take: the night fails", 1000);
        assert_int_equal(night("2026-03-01", 0, &out) != 0, fails);
        assert_int_equal(out.files_failed, fails);
        assert_int_equal(out.files_copied, 1);
        cf_mirror_summary_free(&out);
        assert_true(a_file ? is_file("nightly/.2026-03-01.partial/x") || is_file("nightly/2026-03-01/x")
                           : is_file("nightly/.2026-03-01.partial/x/y") || is_file("nightly/2026-03-01/x/y"));
    }
    assert_true(is_file("nightly/2026-03-01/x"));
}

static void test_dated_dry_run_counts_links(void **state)
{
    (void)state;
    file("src/same.jpg", "unchanged", 1000);
    file("src/deep/same.css", "body{}", 1000);
    file("src/changes.txt", "monday", 1000);
    cf_mirror_summary out;
    assert_int_equal(night("2026-03-01", 0, &out), 0);
    cf_mirror_summary_free(&out);
    file("src/changes.txt", "tuesday!", 2000);
    assert_int_equal(night("2026-03-02", 1, &out), 0);
    assert_int_equal(out.files_linked, 2);
    assert_int_equal(out.bytes_linked, strlen("unchanged") + strlen("body{}"));
    assert_int_equal(out.files_copied, 1);
    assert_int_equal(out.bytes_copied, strlen("tuesday!"));
    cf_mirror_summary_free(&out);
    assert_false(is_dir("nightly/2026-03-02"));
    /* The real night does what the dry run said. */
    assert_int_equal(night("2026-03-02", 0, &out), 0);
    assert_int_equal(out.files_linked, 2);
    assert_int_equal(out.files_copied, 1);
    cf_mirror_summary_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_file_and_a_directory_trade_a_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_without_delete_nothing_is_removed_and_the_file_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deletes_never_remove_the_destination_or_what_they_did_not_empty,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_dated_staging_reused_across_a_file_and_a_directory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dated_dry_run_counts_links, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
