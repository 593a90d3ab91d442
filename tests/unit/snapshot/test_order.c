/* test_order.c - the one order of snapshots that @latest, ls, prune and verify share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "snapshot/order.h"

#define T 1795361400LL /* 2026-11-22T15:30:00Z */

static cf_snapshot_key key(int64_t s, int32_t ns, const char *id)
{
    cf_snapshot_key k = {s, ns, ""};
    strcpy(k.id, id);
    return k;
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

static void test_time_first_to_the_nanosecond(void **state)
{
    (void)state;
    /* The id with the greater suffix is older here: the time decides, not the name. */
    cf_snapshot_key a = key(T, 100, "20261122T153000Z-ffff"), b = key(T, 101, "20261122T153000Z-0000");
    assert_true(cf_snapshot_key_cmp(&a, &b) < 0);
    assert_true(cf_snapshot_key_cmp(&b, &a) > 0);
    cf_snapshot_key c = key(T + 1, 0, "20261122T153001Z-0000"),
                    d = key(T, 999999999, "20261122T153000Z-ffff");
    assert_true(cf_snapshot_key_cmp(&d, &c) < 0);
}

static void test_a_manifest_of_whole_seconds_sorts_as_zero_nanoseconds(void **state)
{
    (void)state;
    cf_snapshot_key old = key(T, 0, "20261122T153000Z-ffff"), new = key(T, 1, "20261122T153000Z-0001");
    assert_true(cf_snapshot_key_cmp(&old, &new) < 0);
}

static void test_same_instant_is_broken_by_id(void **state)
{
    (void)state;
    cf_snapshot_key a = key(T, 5, "20261122T153000Z-1234"), b = key(T, 5, "20261122T153000Z-1235");
    assert_true(cf_snapshot_key_cmp(&a, &b) < 0);
    assert_true(cf_snapshot_key_cmp(&b, &a) > 0);
    assert_int_equal(cf_snapshot_key_cmp(&a, &a), 0);
}

static int by_key(const void *a, const void *b)
{
    return cf_snapshot_key_cmp(a, b);
}

/* Total: every permutation sorts to one sequence, and the relation is antisymmetric and
 * transitive over a set full of ties in the second, in the fraction and in both. */
static void test_total_order_whatever_the_input_order(void **state)
{
    (void)state;
    const cf_snapshot_key all[] = {
        key(T, 0, "20261122T153000Z-0002"),
        key(T, 0, "20261122T153000Z-0001"),
        key(T, 7, "20261122T153000Z-0000"),
        key(T, 7, "20261122T153000Z-fff0"),
        key(T, 500, "20261122T153000Z-0003"),
        key(T + 1, 0, "20261122T153001Z-0000"),
        key(T - 1, 999999999, "20261122T152959Z-aaaa"),
    };
    enum { N = sizeof all / sizeof *all };
    const char *want[N] = {"20261122T152959Z-aaaa", "20261122T153000Z-0001", "20261122T153000Z-0002",
                           "20261122T153000Z-0000", "20261122T153000Z-fff0", "20261122T153000Z-0003",
                           "20261122T153001Z-0000"};
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++) {
            assert_int_equal(sign(cf_snapshot_key_cmp(&all[i], &all[j])),
                             -sign(cf_snapshot_key_cmp(&all[j], &all[i])));
            assert_int_equal(cf_snapshot_key_cmp(&all[i], &all[j]) == 0, i == j);
            for (size_t k = 0; k < N; k++)
                if (cf_snapshot_key_cmp(&all[i], &all[j]) < 0 && cf_snapshot_key_cmp(&all[j], &all[k]) < 0)
                    assert_true(cf_snapshot_key_cmp(&all[i], &all[k]) < 0);
        }
    unsigned seed = 11;
    for (int round = 0; round < 200; round++) {
        cf_snapshot_key v[N];
        memcpy(v, all, sizeof v);
        for (size_t i = N - 1; i > 0; i--) { /* Fisher-Yates with a fixed seed: reproducible */
            seed = seed * 1103515245u + 12345u;
            size_t j = (seed >> 16) % (i + 1);
            cf_snapshot_key t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
        qsort(v, N, sizeof *v, by_key);
        for (size_t i = 0; i < N; i++)
            assert_string_equal(v[i].id, want[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_first_to_the_nanosecond),
        cmocka_unit_test(test_a_manifest_of_whole_seconds_sorts_as_zero_nanoseconds),
        cmocka_unit_test(test_same_instant_is_broken_by_id),
        cmocka_unit_test(test_total_order_whatever_the_input_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
