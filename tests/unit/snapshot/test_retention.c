/* test_retention.c - prune rules against tables of dated snapshots, restic's meaning of each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "snapshot/retention.h"

/* 2026-11-22T12:00:00Z, a Sunday. */
#define BASE 1795348800LL
#define H 3600LL
#define D 86400LL

static int kept(const cf_retention_item *items, size_t n, int64_t t)
{
    for (size_t i = 0; i < n; i++)
        if (items[i].key.created == t)
            return items[i].keep;
    fail_msg("no snapshot at %lld", (long long)t);
    return 0;
}

static void test_base_is_what_the_tests_assume(void **state)
{
    (void)state;
    time_t t = (time_t)BASE;
    struct tm tm;
    gmtime_r(&t, &tm);
    assert_int_equal(tm.tm_year + 1900, 2026);
    assert_int_equal(tm.tm_mon, 10);
    assert_int_equal(tm.tm_mday, 22);
    assert_int_equal(tm.tm_hour, 12);
    assert_int_equal(tm.tm_wday, 0); /* Sunday */
}

static void test_keep_last(void **state)
{
    (void)state;
    cf_retention_item items[5];
    for (int i = 0; i < 5; i++)
        items[i] = (cf_retention_item){.key.created = BASE - i * H};
    cf_retention p = {.last = 3};
    cf_err err;
    assert_int_equal(cf_retention_apply(&p, items, 5, &err), 0);
    assert_true(kept(items, 5, BASE) && kept(items, 5, BASE - H) && kept(items, 5, BASE - 2 * H));
    assert_false(kept(items, 5, BASE - 3 * H) || kept(items, 5, BASE - 4 * H));
    assert_string_equal(items[0].reasons, "last");
}

static void test_daily_keeps_newest_of_each_day_with_snapshots(void **state)
{
    (void)state;
    /* Four snapshots a day for five days, but no snapshot on the third day. */
    cf_retention_item items[16];
    size_t n = 0;
    for (int day = 0; day < 5; day++) {
        if (day == 2)
            continue;
        for (int k = 0; k < 4; k++)
            items[n++] = (cf_retention_item){.key.created = BASE - day * D - k * H};
    }
    cf_retention p = {.daily = 3};
    cf_err err;
    assert_int_equal(cf_retention_apply(&p, items, n, &err), 0);
    /* "the last 3 days that have snapshots": days 0, 1 and 3, newest of each. */
    assert_true(kept(items, n, BASE));
    assert_true(kept(items, n, BASE - D));
    assert_true(kept(items, n, BASE - 3 * D));
    assert_false(kept(items, n, BASE - 4 * D));
    assert_false(kept(items, n, BASE - H));
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += items[i].keep;
    assert_int_equal(count, 3);
}

static void test_weekly_uses_iso_weeks(void **state)
{
    (void)state;
    /* BASE is a Sunday: BASE and BASE-6 days (Monday) share an ISO week; BASE-7 days does not. */
    cf_retention_item items[] = {
        {.key.created = BASE}, {.key.created = BASE - 6 * D}, {.key.created = BASE - 7 * D}};
    cf_retention p = {.weekly = 2};
    cf_err err;
    assert_int_equal(cf_retention_apply(&p, items, 3, &err), 0);
    assert_true(kept(items, 3, BASE));
    assert_false(kept(items, 3, BASE - 6 * D));
    assert_true(kept(items, 3, BASE - 7 * D));
}

static void test_monthly_yearly_and_within_combine(void **state)
{
    (void)state;
    cf_retention_item items[] = {
        {.key.created = BASE},           /* Nov 2026 */
        {.key.created = BASE - 2 * H},   /* Nov 2026, older */
        {.key.created = BASE - 30 * D},  /* Oct 2026 */
        {.key.created = BASE - 400 * D}, /* Oct 2025 */
        {.key.created = BASE - 800 * D}, /* Sep 2024 */
    };
    cf_retention p = {.monthly = 2, .yearly = 3, .within_s = 3 * H};
    cf_err err;
    assert_int_equal(cf_retention_apply(&p, items, 5, &err), 0);
    assert_true(kept(items, 5, BASE));
    assert_true(kept(items, 5, BASE - 2 * H));   /* within 3 h of the newest */
    assert_true(kept(items, 5, BASE - 30 * D));  /* second month */
    assert_true(kept(items, 5, BASE - 400 * D)); /* a year */
    assert_true(kept(items, 5, BASE - 800 * D)); /* a third year */
    assert_non_null(strstr(items[0].reasons, "monthly"));
    assert_non_null(strstr(items[0].reasons, "yearly"));
    assert_non_null(strstr(items[0].reasons, "within"));
}

/* Snapshots of one second: the rules pick the newest by cf_snapshot_key_cmp, the order @latest
 * follows, whatever order the items come in. */
static void test_same_second_keeps_what_latest_names(void **state)
{
    (void)state;
    cf_retention_item items[] = {
        {.key = {BASE, 0, "20261122T120000Z-ffff"}},   /* whole seconds: .0 */
        {.key = {BASE, 300, "20261122T120000Z-0001"}}, /* the newest */
        {.key = {BASE, 200, "20261122T120000Z-9999"}},
        {.key = {BASE - H, 900, "20261122T110000Z-ffff"}},
    };
    cf_retention p = {.last = 1};
    cf_err err;
    assert_int_equal(cf_retention_apply(&p, items, 4, &err), 0);
    assert_int_equal(items[0].keep + items[1].keep + items[2].keep + items[3].keep, 1);
    assert_true(items[1].keep);
    cf_retention hourly = {.hourly = 2};
    assert_int_equal(cf_retention_apply(&hourly, items, 4, &err), 0);
    assert_true(items[1].keep && items[3].keep && !items[0].keep && !items[2].keep);
    cf_retention_item tie[] = {{.key = {BASE, 7, "20261122T120000Z-0002"}},
                               {.key = {BASE, 7, "20261122T120000Z-0003"}}};
    assert_int_equal(cf_retention_apply(&p, tie, 2, &err), 0);
    assert_true(!tie[0].keep && tie[1].keep); /* the same instant: the greater id */
}

static void test_no_rule_is_refused(void **state)
{
    (void)state;
    cf_retention_item items[] = {{.key.created = BASE}};
    cf_retention p = {0};
    cf_err err;
    assert_int_equal(cf_retention_apply(&p, items, 1, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "every snapshot"));
    cf_retention q = {.last = 1};
    assert_int_equal(cf_retention_apply(&q, NULL, 0, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_is_what_the_tests_assume),
        cmocka_unit_test(test_keep_last),
        cmocka_unit_test(test_daily_keeps_newest_of_each_day_with_snapshots),
        cmocka_unit_test(test_weekly_uses_iso_weeks),
        cmocka_unit_test(test_monthly_yearly_and_within_combine),
        cmocka_unit_test(test_same_second_keeps_what_latest_names),
        cmocka_unit_test(test_no_rule_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
