/* test_limiter.c - failed-login windows: the limit, Retry-After, window expiry, success
 * forgetting, bounded memory with the oldest window evicted, and no lost count under threads
 * (also run under ThreadSanitizer by scripts/test-all.sh). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "console/limiter.h"

static cf_limiter *limiter(unsigned failures, double window, size_t entries)
{
    cf_limiter *l = NULL;
    cf_err err = {0};
    assert_int_equal(cf_limiter_new(failures, window, entries, &l, &err), 0);
    return l;
}

static void test_refuses_after_the_limit_until_the_window_ends(void **state)
{
    (void)state;
    cf_limiter *l = limiter(5, 60, 100);
    double retry = -1;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(cf_limiter_allow(l, "user:alice", 100 + i, &retry), 1);
        cf_limiter_fail(l, "user:alice", 100 + i);
    }
    assert_int_equal(cf_limiter_allow(l, "user:alice", 110, &retry), 0);
    assert_true(retry > 49.9 && retry < 50.1); /* window opened at 100, ends at 160 */
    assert_int_equal(cf_limiter_allow(l, "user:alice", 159.5, &retry), 0);
    assert_true(retry > 0.4 && retry < 0.6);
    assert_int_equal(cf_limiter_allow(l, "user:alice", 159.5, NULL), 0);
    /* Another key is not touched. */
    assert_int_equal(cf_limiter_allow(l, "user:bob", 110, &retry), 1);
    assert_int_equal(cf_limiter_allow(l, "ip:alice", 110, &retry), 1);
    /* The window over, the key starts afresh. */
    assert_int_equal(cf_limiter_allow(l, "user:alice", 160, &retry), 1);
    cf_limiter_fail(l, "user:alice", 161);
    assert_int_equal(cf_limiter_allow(l, "user:alice", 161, &retry), 1);
    cf_limiter_free(l);
}

static void test_failures_after_the_window_open_a_new_one(void **state)
{
    (void)state;
    cf_limiter *l = limiter(3, 10, 100);
    cf_limiter_fail(l, "k", 0);
    cf_limiter_fail(l, "k", 1);
    cf_limiter_fail(l, "k", 11); /* the first window ended at 10 */
    assert_int_equal(cf_limiter_allow(l, "k", 12, NULL), 1);
    cf_limiter_fail(l, "k", 12);
    cf_limiter_fail(l, "k", 13);
    double retry;
    assert_int_equal(cf_limiter_allow(l, "k", 14, &retry), 0);
    assert_true(retry > 6.9 && retry < 7.1);
    cf_limiter_free(l);
}

static void test_success_forgets_the_key(void **state)
{
    (void)state;
    cf_limiter *l = limiter(2, 60, 100);
    cf_limiter_fail(l, "user:alice", 1);
    cf_limiter_fail(l, "user:alice", 2);
    assert_int_equal(cf_limiter_allow(l, "user:alice", 3, NULL), 0);
    cf_limiter_succeed(l, "user:alice");
    assert_int_equal(cf_limiter_size(l), 0);
    assert_int_equal(cf_limiter_allow(l, "user:alice", 3, NULL), 1);
    cf_limiter_succeed(l, "never-seen");
    cf_limiter_free(l);
}

static void test_memory_is_bounded_and_the_oldest_window_goes_first(void **state)
{
    (void)state;
    cf_limiter *l = limiter(1, 1000, 3);
    cf_limiter_fail(l, "a", 1);
    cf_limiter_fail(l, "b", 2);
    cf_limiter_fail(l, "c", 3);
    assert_int_equal(cf_limiter_size(l), 3);
    cf_limiter_fail(l, "d", 4);
    assert_int_equal(cf_limiter_size(l), 3);
    assert_int_equal(cf_limiter_allow(l, "a", 5, NULL), 1); /* evicted */
    assert_int_equal(cf_limiter_allow(l, "b", 5, NULL), 0);
    assert_int_equal(cf_limiter_allow(l, "d", 5, NULL), 0);
    /* A failure counted again in a live window does not make an entry younger. */
    cf_limiter_fail(l, "b", 6);
    cf_limiter_fail(l, "e", 7);
    assert_int_equal(cf_limiter_allow(l, "b", 8, NULL), 1);
    assert_int_equal(cf_limiter_allow(l, "c", 8, NULL), 0);
    for (int i = 0; i < 10000; i++) {
        char key[32];
        snprintf(key, sizeof key, "ip:10.0.%d.%d", i / 256, i % 256);
        cf_limiter_fail(l, key, 10 + i);
        assert_true(cf_limiter_size(l) <= 3);
    }
    cf_limiter_free(l);
}

static void test_expired_entries_are_dropped_when_seen(void **state)
{
    (void)state;
    cf_limiter *l = limiter(1, 10, 10);
    cf_limiter_fail(l, "a", 0);
    assert_int_equal(cf_limiter_size(l), 1);
    assert_int_equal(cf_limiter_allow(l, "a", 20, NULL), 1);
    assert_int_equal(cf_limiter_size(l), 0);
    cf_limiter_free(l);
}

static void test_long_keys_and_bad_parameters(void **state)
{
    (void)state;
    char key[1000];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    cf_limiter *l = limiter(1, 10, 10);
    cf_limiter_fail(l, key, 0);
    assert_int_equal(cf_limiter_allow(l, key, 1, NULL), 0);
    cf_limiter_free(l);
    cf_err err = {0};
    assert_int_equal(cf_limiter_new(0, 10, 10, &l, &err), CF_EINVAL);
    assert_null(l);
    assert_int_equal(cf_limiter_new(1, 0, 10, &l, &err), CF_EINVAL);
    assert_int_equal(cf_limiter_new(1, -1, 10, &l, &err), CF_EINVAL);
    assert_int_equal(cf_limiter_new(1, 10, 0, &l, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "limiter"));
    cf_limiter_free(NULL);
}

#define THREADS 8
#define FAILS_EACH 2000

typedef struct worker {
    cf_limiter *l, *small;
    int id;
} worker;

static void *hammer(void *arg)
{
    worker *w = arg;
    char key[32];
    for (int i = 0; i < FAILS_EACH; i++) {
        cf_limiter_fail(w->l, "user:shared", 1);
        cf_limiter_allow(w->l, "user:shared", 1, NULL);
        /* Churn in a small table: evictions race lookups and successes. */
        snprintf(key, sizeof key, "ip:%d:%d", w->id, i % 50);
        cf_limiter_fail(w->small, key, i);
        cf_limiter_allow(w->small, key, i, NULL);
        if (i % 7 == 0)
            cf_limiter_succeed(w->small, key);
        (void)cf_limiter_size(w->small);
    }
    return NULL;
}

static void test_threads_lose_no_failure(void **state)
{
    (void)state;
    cf_limiter *exact = limiter(THREADS * FAILS_EACH, 1e9, 16), *small = limiter(3, 100, 32);
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){exact, small, i};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    /* Exactly the limit: one lost increment would leave the key allowed. */
    double retry;
    assert_int_equal(cf_limiter_allow(exact, "user:shared", 2, &retry), 0);
    cf_limiter_succeed(exact, "user:shared");
    for (int i = 0; i < THREADS * FAILS_EACH - 1; i++)
        cf_limiter_fail(exact, "user:shared", 2);
    assert_int_equal(cf_limiter_allow(exact, "user:shared", 2, NULL), 1);
    assert_true(cf_limiter_size(small) <= 32);
    cf_limiter_free(exact);
    cf_limiter_free(small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refuses_after_the_limit_until_the_window_ends),
        cmocka_unit_test(test_failures_after_the_window_open_a_new_one),
        cmocka_unit_test(test_success_forgets_the_key),
        cmocka_unit_test(test_memory_is_bounded_and_the_oldest_window_goes_first),
        cmocka_unit_test(test_expired_entries_are_dropped_when_seen),
        cmocka_unit_test(test_long_keys_and_bad_parameters),
        cmocka_unit_test(test_threads_lose_no_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
