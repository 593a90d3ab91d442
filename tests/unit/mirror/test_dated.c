/* test_dated.c - dated mirrors: names and dates, the retention over names, the linking pass and
 * the reuse of a failed night's files, publishing over a same-night copy, and what is left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fs.h"
#include "mirror/dated.h"
#include "storage/repo.h"

#include "scratch_tree.h"

static void dir(const char *rel)
{
    assert_int_equal(cf_fs_mkdirs(at(rel), 0755, NULL), 0);
}

static int exists(const char *rel)
{
    struct stat st;
    return lstat(at(rel), &st) == 0;
}

static ino_t inode(const char *rel)
{
    struct stat st;
    assert_int_equal(lstat(at(rel), &st), 0);
    return st.st_ino;
}

static void test_parse_accepts_calendar_dates_only(void **state)
{
    (void)state;
    int64_t day;
    assert_int_equal(cf_dated_parse("2026-12-06", &day), 0);
    assert_int_equal(day, 1796515200); /* 2026-12-06T00:00:00Z */
    assert_int_equal(cf_dated_parse("2024-02-29", &day), 0);
    assert_int_equal(cf_dated_parse("2000-02-29", &day), 0);
    assert_int_equal(cf_dated_parse("1970-01-01", &day), 0);
    assert_int_equal(day, 0);
    assert_int_equal(cf_dated_parse("9999-12-31", &day), 0);
    static const char *const refused[] = {
        "2026-02-30", "2026-02-29", "2100-02-29",  "2026-04-31",  "2026-13-01",
        "2026-00-10", "2026-01-00", "2026-1-1",    "26-01-01",    "2026-01-1",
        "../x",       "",           " 2026-01-01", "2026-01-01 ", "2026/01/01",
        "+026-01-01", "2026-01-0a", "1969-12-31",  "0000-01-01",  "2026-01-01/../x",
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        if (cf_dated_parse(refused[i], &day) != CF_EINVAL)
            fail_msg("'%s' was taken for a date", refused[i]);
    assert_int_equal(cf_dated_parse(NULL, &day), CF_EINVAL);
}

static void test_name_is_as_of_or_today_utc(void **state)
{
    (void)state;
    char name[CF_DATED_NAME_LEN];
    cf_err err;
    cf_dated_opts d = {.as_of = NULL};
    /* 2026-12-06T23:59:59Z: still the 6th in UTC, whatever the machine's zone. */
    assert_int_equal(cf_dated_name(&d, 1796601599, name, &err), 0);
    assert_string_equal(name, "2026-12-06");
    d.as_of = "2026-01-05";
    assert_int_equal(cf_dated_name(&d, 1796601599, name, &err), 0);
    assert_string_equal(name, "2026-01-05");
    d.as_of = "2026-02-30";
    assert_int_equal(cf_dated_name(&d, 0, name, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "--as-of '2026-02-30'"));
    assert_non_null(strstr(err.msg, "YYYY-MM-DD"));
}

/* Whether the retention keeps each of names (given in the order of want). */
static void expect_kept(const cf_dated_opts *d, const char *tonight, const char *const *names, size_t n,
                        const int *want)
{
    int keep[64];
    cf_err err;
    assert_int_equal(cf_dated_retain(d, tonight, names, n, keep, &err), 0);
    for (size_t i = 0; i < n; i++)
        if (keep[i] != want[i])
            fail_msg("%s: kept %d, expected %d", names[i], keep[i], want[i]);
}

static void test_retention_keeps_newest_days_weeks_months(void **state)
{
    (void)state;
    /* Ten nights, given out of order. */
    const char *const nights[] = {"2026-03-05", "2026-03-01", "2026-03-10", "2026-03-02", "2026-03-03",
                                  "2026-03-04", "2026-03-06", "2026-03-07", "2026-03-08", "2026-03-09"};
    cf_dated_opts daily = {.keep_daily = 7};
    expect_kept(&daily, NULL, nights, 10, (const int[]){1, 0, 1, 0, 0, 1, 1, 1, 1, 1});
    /* No rule: everything stays. */
    cf_dated_opts none = {0};
    expect_kept(&none, NULL, nights, 10, (const int[]){1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
    /* A backfilled night older than the rules reach is still kept: it is tonight's copy. */
    expect_kept(&daily, "2026-03-01", nights, 10, (const int[]){1, 1, 1, 0, 0, 1, 1, 1, 1, 1});
    /* Weekly (ISO weeks, Monday first): 2026-03-01 is a Sunday, 03-02 a Monday, 03-09 a Monday.
     * Newest of each of the last 3 weeks: 03-10 (week of 03-09), 03-08 (week of 03-02), 03-01. */
    cf_dated_opts weekly = {.keep_weekly = 3};
    expect_kept(&weekly, NULL, nights, 10, (const int[]){0, 1, 1, 0, 0, 0, 0, 0, 1, 0});
    /* Monthly: the newest of each month; daily 2 and monthly 3 together. */
    const char *const months[] = {"2026-01-15", "2026-01-31", "2026-02-01", "2026-02-27",
                                  "2026-03-01", "2025-12-31", "2026-03-02"};
    cf_dated_opts monthly = {.keep_daily = 2, .keep_monthly = 3};
    expect_kept(&monthly, NULL, months, 7, (const int[]){0, 1, 0, 1, 1, 0, 1});
    cf_dated_opts monthly4 = {.keep_monthly = 4};
    expect_kept(&monthly4, NULL, months, 7, (const int[]){0, 1, 0, 1, 0, 1, 1});
}

static void test_list_takes_only_real_dated_directories(void **state)
{
    (void)state;
    dir("backups/2026-03-01");
    dir("backups/2026-03-03");
    dir("backups/2026-3-2");
    dir("backups/.2026-03-04.partial");
    dir("backups/notes");
    dir("elsewhere");
    file("backups/2026-03-05", "a file named like a copy", 1);
    file("backups/README", "x", 1);
    assert_int_equal(symlink(at("elsewhere"), at("backups/2026-03-06")), 0);
    char **names;
    size_t n;
    cf_err err;
    assert_int_equal(cf_dated_list(at("backups"), &names, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "2026-03-01");
    assert_string_equal(names[1], "2026-03-03");
    cf_dated_names_free(names, n);
}

static void test_remove_tree_never_follows_links(void **state)
{
    (void)state;
    file("outside/keep.txt", "precious", 1);
    file("victim/a/b.txt", "x", 1);
    assert_int_equal(symlink(at("outside"), at("victim/a/to-outside")), 0);
    assert_int_equal(symlink(at("outside/keep.txt"), at("victim/file-link")), 0);
    cf_err err;
    assert_int_equal(cf_dated_remove_tree(root, "victim", &err), 0);
    assert_false(exists("victim"));
    assert_true(exists("outside/keep.txt"));
    char *s = slurp("outside/keep.txt");
    assert_string_equal(s, "precious");
    free(s);
    /* The top itself a link: the link goes, not its target. */
    assert_int_equal(symlink(at("outside"), at("top-link")), 0);
    assert_int_equal(cf_dated_remove_tree(root, "top-link", &err), 0);
    assert_false(exists("top-link"));
    assert_true(exists("outside/keep.txt"));
    assert_int_equal(cf_dated_remove_tree(root, "missing", &err), 0);
}

static cf_repo *open_dir(const char *rel)
{
    cf_repo *r;
    cf_err err;
    assert_int_equal(cf_repo_open_dir(at(rel), &r, &err), 0);
    return r;
}

/* One night of coffer mirror SRC DIR --dated --as-of name: 0 or the error. */
static int run_night(const char *name, const cf_dated_opts *keep, cf_mirror_summary *out, char ***removed,
                     size_t *nremoved)
{
    cf_repo *src = open_dir("src");
    cf_mirror_side side = {.repo = src, .url = at("src"), .dir = at("src")};
    cf_mirror_opts o = {.jobs = 2};
    cf_dated_opts d = *keep;
    d.as_of = name;
    cf_err err;
    int rc = cf_mirror_dated(&side, at("nightly"), &o, &d, out, removed, nremoved, &err);
    if (rc)
        print_message("night %s: %s\n", name, err.msg);
    cf_repo_close(src);
    return rc;
}

static void night_ok(const char *name, const cf_dated_opts *keep, cf_mirror_summary *out)
{
    char **removed;
    size_t n;
    assert_int_equal(run_night(name, keep, out, &removed, &n), 0);
    cf_dated_names_free(removed, n);
}

static void test_nights_share_unchanged_files_and_never_change_old_ones(void **state)
{
    (void)state;
    file("src/same.jpg", "unchanged", 1000);
    file("src/deep/er/same.css", "body{}", 1000);
    file("src/changes.txt", "monday", 1000);
    file("src/goes.txt", "deleted on tuesday", 1000);
    cf_dated_opts all = {0};
    cf_mirror_summary out;
    night_ok("2026-03-02", &all, &out);
    assert_int_equal(out.files_copied, 4);
    assert_int_equal(out.files_linked, 0);
    cf_mirror_summary_free(&out);
    assert_false(exists("nightly/.2026-03-02.partial"));

    file("src/changes.txt", "tuesday!", 2000);
    file("src/new.txt", "new", 2000);
    assert_int_equal(unlink(at("src/goes.txt")), 0);
    night_ok("2026-03-03", &all, &out);
    assert_int_equal(out.files_linked, 2);
    assert_int_equal(out.bytes_linked, strlen("unchanged") + strlen("body{}"));
    assert_int_equal(out.files_copied, 2);
    cf_mirror_summary_free(&out);
    assert_int_equal(inode("nightly/2026-03-02/same.jpg"), inode("nightly/2026-03-03/same.jpg"));
    assert_int_equal(inode("nightly/2026-03-02/deep/er/same.css"),
                     inode("nightly/2026-03-03/deep/er/same.css"));
    assert_int_not_equal(inode("nightly/2026-03-02/changes.txt"), inode("nightly/2026-03-03/changes.txt"));
    char *s = slurp("nightly/2026-03-02/changes.txt");
    assert_string_equal(s, "monday");
    free(s);
    s = slurp("nightly/2026-03-03/changes.txt");
    assert_string_equal(s, "tuesday!");
    free(s);
    assert_true(exists("nightly/2026-03-02/goes.txt"));
    assert_false(exists("nightly/2026-03-03/goes.txt"));
    assert_true(exists("nightly/2026-03-03/new.txt"));

    /* Links go to the newest earlier copy only: a file changed back to Monday's bytes and mtime
     * is copied again, and Tuesday's copy keeps Tuesday's bytes. */
    file("src/changes.txt", "monday", 1000);
    night_ok("2026-03-04", &all, &out);
    assert_int_equal(out.files_linked, 3);
    cf_mirror_summary_free(&out);
    assert_int_not_equal(inode("nightly/2026-03-04/changes.txt"), inode("nightly/2026-03-03/changes.txt"));
    s = slurp("nightly/2026-03-03/changes.txt");
    assert_string_equal(s, "tuesday!");
    free(s);
    assert_int_equal(inode("nightly/2026-03-04/same.jpg"), inode("nightly/2026-03-02/same.jpg"));
}

static void test_reuses_what_a_failed_night_staged(void **state)
{
    (void)state;
    file("src/a.jpg", "aaaa", 1000);
    file("src/b.jpg", "bbbb", 1000);
    /* What a failed run left: a.jpg copied whole, a stale b.jpg, and a file the source lost. */
    file("nightly/.2026-03-01.partial/a.jpg", "aaaa", 1000);
    file("nightly/.2026-03-01.partial/b.jpg", "old", 900);
    file("nightly/.2026-03-01.partial/lost.jpg", "gone from the source", 1000);
    ino_t staged = inode("nightly/.2026-03-01.partial/a.jpg");
    cf_dated_opts all = {0};
    cf_mirror_summary out;
    night_ok("2026-03-02", &all, &out); /* the next night adopts the 1st's staging */
    assert_int_equal(out.files_skipped, 1);
    assert_int_equal(out.files_copied, 1);
    cf_mirror_summary_free(&out);
    assert_int_equal(inode("nightly/2026-03-02/a.jpg"), staged);
    char *s = slurp("nightly/2026-03-02/b.jpg");
    assert_string_equal(s, "bbbb");
    free(s);
    assert_false(exists("nightly/2026-03-02/lost.jpg"));
    assert_false(exists("nightly/.2026-03-01.partial"));
    assert_false(exists("nightly/2026-03-01"));
}

static void test_second_run_same_night_replaces_the_copy(void **state)
{
    (void)state;
    file("src/a.jpg", "first", 1000);
    file("src/only-first.jpg", "x", 1000);
    cf_dated_opts all = {0};
    cf_mirror_summary out;
    night_ok("2026-03-01", &all, &out);
    cf_mirror_summary_free(&out);
    file("src/a.jpg", "second", 2000);
    assert_int_equal(unlink(at("src/only-first.jpg")), 0);
    night_ok("2026-03-01", &all, &out);
    cf_mirror_summary_free(&out);
    char *s = slurp("nightly/2026-03-01/a.jpg");
    assert_string_equal(s, "second");
    free(s);
    assert_false(exists("nightly/2026-03-01/only-first.jpg"));
    assert_false(exists("nightly/.2026-03-01.partial") || exists("nightly/.2026-03-01.old"));
}

static void test_retention_after_ten_nights_leaves_unrelated_entries(void **state)
{
    (void)state;
    file("src/a.jpg", "a", 1000);
    file("nightly/README", "mine", 1);
    dir("nightly/2020-1-1");
    dir("nightly/old-stuff/2026-01-01");
    cf_dated_opts keep = {.keep_daily = 7};
    char **removed = NULL;
    size_t nremoved = 0, total_removed = 0;
    for (int day = 1; day <= 10; day++) {
        char name[16];
        snprintf(name, sizeof name, "2026-03-%02d", day);
        cf_mirror_summary out;
        assert_int_equal(run_night(name, &keep, &out, &removed, &nremoved), 0);
        cf_mirror_summary_free(&out);
        if (day <= 7)
            assert_int_equal(nremoved, 0);
        else {
            assert_int_equal(nremoved, 1);
            char want[16];
            snprintf(want, sizeof want, "2026-03-%02d", day - 7);
            assert_string_equal(removed[0], want);
        }
        total_removed += nremoved;
        cf_dated_names_free(removed, nremoved);
    }
    assert_int_equal(total_removed, 3);
    char **names;
    size_t n;
    cf_err err;
    assert_int_equal(cf_dated_list(at("nightly"), &names, &n, &err), 0);
    assert_int_equal(n, 7);
    assert_string_equal(names[0], "2026-03-04");
    assert_string_equal(names[6], "2026-03-10");
    cf_dated_names_free(names, n);
    assert_true(exists("nightly/README") && exists("nightly/2020-1-1") &&
                exists("nightly/old-stuff/2026-01-01"));
    /* All seven share the one copy of a.jpg. */
    struct stat st;
    assert_int_equal(stat(at("nightly/2026-03-10/a.jpg"), &st), 0);
    assert_int_equal(st.st_nlink, 7);
}

/* A night laid down by hand: dir/NAME holding one file. */
static void night(const char *name, const char *bytes)
{
    char rel[128];
    snprintf(rel, sizeof rel, "nightly/%s/photo.jpg", name);
    file(rel, bytes, 1000);
}

static void test_publish_replaces_a_same_night_copy(void **state)
{
    (void)state;
    night("2026-03-01", "first run");
    file("nightly/.2026-03-01.partial/photo.jpg", "second run", 1000);
    file("nightly/.2026-03-01.partial/more.jpg", "more", 1000);
    file("nightly/unrelated.txt", "mine", 1);
    cf_err err;
    assert_int_equal(cf_dated_publish(at("nightly"), "2026-03-01", NULL, &err), 0);
    char *s = slurp("nightly/2026-03-01/photo.jpg");
    assert_string_equal(s, "second run");
    free(s);
    assert_true(exists("nightly/2026-03-01/more.jpg"));
    assert_false(exists("nightly/.2026-03-01.partial"));
    assert_false(exists("nightly/.2026-03-01.old"));
    assert_true(exists("nightly/unrelated.txt"));
    /* Where the filesystem cannot exchange: the old copy goes aside, then away. */
    file("nightly/.2026-03-01.partial/photo.jpg", "third run", 1000);
    ino_t second = inode("nightly/2026-03-01/photo.jpg");
    assert_int_equal(cf_dated_publish_in_steps(at("nightly"), "2026-03-01", NULL, &err), 0);
    s = slurp("nightly/2026-03-01/photo.jpg");
    assert_string_equal(s, "third run");
    free(s);
    assert_int_not_equal(inode("nightly/2026-03-01/photo.jpg"), second);
    assert_false(exists("nightly/2026-03-01/more.jpg"));
    assert_false(exists("nightly/.2026-03-01.partial") || exists("nightly/.2026-03-01.old"));
    /* And a first publish of a night. */
    file("nightly/.2026-03-02.partial/photo.jpg", "night 2", 1000);
    assert_int_equal(cf_dated_publish(at("nightly"), "2026-03-02", NULL, &err), 0);
    assert_true(exists("nightly/2026-03-02/photo.jpg"));
    assert_false(exists("nightly/.2026-03-02.partial"));
}

/* A source no run can read: an endpoint where nothing listens. */
static cf_repo *unreachable(void)
{
    cf_repo_s3_conn c = {
        .endpoint = "http://127.0.0.1:9", .access_key = "AKIDEXAMPLE", .secret_key = "secret"};
    cf_repo *r;
    cf_err err;
    assert_int_equal(cf_repo_open_s3_conn(&c, "images", "", &r, &err), 0);
    return r;
}

static void test_failed_night_publishes_nothing_and_keeps_everything(void **state)
{
    (void)state;
    for (int d = 1; d <= 3; d++) {
        char name[16];
        snprintf(name, sizeof name, "2026-03-0%d", d);
        night(name, name);
    }
    /* Leftovers of earlier failures: a night's staging files, and a copy a publish set aside. */
    file("nightly/.2026-03-03.partial/copied-before.jpg", "x", 1000);
    file("nightly/.2026-03-02.old/photo.jpg", "aside", 1000);
    file("nightly/notes/keep.txt", "unrelated", 1);
    file("nightly/1999-99-99", "unrelated", 1);
    cf_repo *src = unreachable();
    cf_mirror_side side = {.repo = src, .url = "s3://images"};
    cf_mirror_opts o = {.jobs = 1};
    cf_dated_opts d = {.as_of = "2026-03-04", .keep_daily = 1};
    cf_mirror_summary out;
    char **removed;
    size_t nremoved;
    cf_err err;
    assert_int_not_equal(cf_mirror_dated(&side, at("nightly"), &o, &d, &out, &removed, &nremoved, &err), 0);
    cf_mirror_summary_free(&out);
    assert_int_equal(nremoved, 0);
    assert_false(exists("nightly/2026-03-04"));
    /* The retention did not run: every copy is there. */
    assert_true(exists("nightly/2026-03-01/photo.jpg") && exists("nightly/2026-03-02/photo.jpg") &&
                exists("nightly/2026-03-03/photo.jpg"));
    /* The failed 3rd's staged files became the 4th's, for the next run to reuse. */
    assert_true(exists("nightly/.2026-03-04.partial/copied-before.jpg"));
    assert_false(exists("nightly/.2026-03-03.partial"));
    /* A copy set aside while its replacement existed is dropped; unrelated entries stay. */
    assert_false(exists("nightly/.2026-03-02.old"));
    assert_true(exists("nightly/notes/keep.txt") && exists("nightly/1999-99-99"));

    /* A copy set aside with no replacement (a crash between the two renames) comes back. */
    assert_int_equal(rename(at("nightly/2026-03-03"), at("nightly/.2026-03-03.old")), 0);
    d.as_of = "2026-03-03";
    assert_int_not_equal(cf_mirror_dated(&side, at("nightly"), &o, &d, &out, &removed, &nremoved, &err), 0);
    cf_mirror_summary_free(&out);
    char *s = slurp("nightly/2026-03-03/photo.jpg");
    assert_string_equal(s, "2026-03-03");
    free(s);
    assert_false(exists("nightly/.2026-03-03.old"));
    /* The 4th's staging is later than the 3rd: not adopted. */
    assert_true(exists("nightly/.2026-03-04.partial/copied-before.jpg"));
    cf_repo_close(src);
}

static void test_refuses_what_it_must_not_do(void **state)
{
    (void)state;
    cf_repo *src = open_dir("src");
    cf_mirror_side side = {.repo = src, .url = at("src"), .dir = at("src")};
    cf_mirror_summary out;
    char **removed;
    size_t nremoved;
    cf_err err;
    cf_mirror_opts o = {.delete_extra = 1};
    cf_dated_opts d = {.as_of = "2026-03-01"};
    assert_int_equal(cf_mirror_dated(&side, at("nightly"), &o, &d, &out, &removed, &nremoved, &err),
                     CF_EINVAL);
    assert_non_null(strstr(err.msg, "--delete"));
    o.delete_extra = 0;
    static const char *const bad[] = {"../x", "2026-02-30", "2026-1-1", "../../etc"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        d.as_of = bad[i];
        assert_int_equal(cf_mirror_dated(&side, at("nightly"), &o, &d, &out, &removed, &nremoved, &err),
                         CF_EINVAL);
    }
    assert_false(exists("nightly"));
    assert_false(exists("x"));
    /* Another run holds DIR: this one stages nothing. */
    dir("nightly");
    int held = open(at("nightly"), O_RDONLY | O_DIRECTORY);
    assert_int_equal(flock(held, LOCK_EX), 0);
    d.as_of = "2026-03-02";
    assert_int_equal(cf_mirror_dated(&side, at("nightly"), &o, &d, &out, &removed, &nremoved, &err),
                     CF_EAGAIN);
    assert_non_null(strstr(err.msg, "another coffer mirror --dated"));
    assert_false(exists("nightly/.2026-03-02.partial"));
    close(held);
    /* An entry named like tonight's copy that is not a directory is someone else's. */
    file("nightly/2026-03-01", "not a copy", 1);
    d.as_of = "2026-03-01";
    assert_int_equal(cf_mirror_dated(&side, at("nightly"), &o, &d, &out, &removed, &nremoved, &err),
                     CF_EEXISTS);
    char *s = slurp("nightly/2026-03-01");
    assert_string_equal(s, "not a copy");
    free(s);
    cf_repo_close(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_calendar_dates_only),
        cmocka_unit_test(test_name_is_as_of_or_today_utc),
        cmocka_unit_test(test_retention_keeps_newest_days_weeks_months),
        cmocka_unit_test_setup_teardown(test_list_takes_only_real_dated_directories, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_tree_never_follows_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nights_share_unchanged_files_and_never_change_old_ones, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reuses_what_a_failed_night_staged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_run_same_night_replaces_the_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_after_ten_nights_leaves_unrelated_entries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_publish_replaces_a_same_night_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_night_publishes_nothing_and_keeps_everything, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refuses_what_it_must_not_do, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
