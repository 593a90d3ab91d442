/* test_pool.c - the worker pool of mirror, fixtypes and verify: every item taken once, a
 * thread's own state made once and freed, the first failure stopping the job, and the ticking
 * caller. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mirror/pool.h"

#define ITEMS 1000

typedef struct counts {
    atomic_int taken[ITEMS];
    atomic_int starts, stops, ticks;
    size_t fail_at; /* the item that fails, ITEMS for none */
    int fail_start; /* start fails */
    int slow;       /* each item sleeps this many ms */
} counts;

static int start(void *ctx, void **state, cf_err *err)
{
    counts *c = ctx;
    atomic_fetch_add(&c->starts, 1);
    if (c->fail_start)
        return cf_err_set(err, CF_EIO, "no detector");
    int *mine = malloc(sizeof *mine);
    if (!mine)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    *mine = 0;
    *state = mine;
    return 0;
}

static int item(void *ctx, void *state, size_t i, cf_err *err)
{
    counts *c = ctx;
    int *mine = state;
    (*mine)++;
    atomic_fetch_add(&c->taken[i], 1);
    if (c->slow) {
        struct timespec ts = {0, (long)c->slow * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (i == c->fail_at)
        return cf_err_set(err, CF_EDIGEST, "item %zu differs", i);
    return 0;
}

static void stop(void *ctx, void *state)
{
    counts *c = ctx;
    atomic_fetch_add(&c->stops, 1);
    free(state);
}

static void tick(void *ctx)
{
    counts *c = ctx;
    atomic_fetch_add(&c->ticks, 1);
}

static cf_pool_job job_of(counts *c, size_t n, int threads)
{
    return (cf_pool_job){.n = n, .threads = threads, .ctx = c, .start = start, .item = item, .stop = stop};
}

static void test_every_item_once_with_per_thread_state(void **state)
{
    (void)state;
    for (int threads = 0; threads <= 8; threads++) {
        counts *c = calloc(1, sizeof *c);
        assert_non_null(c);
        c->fail_at = ITEMS;
        cf_pool_job job = job_of(c, ITEMS, threads);
        cf_err err;
        assert_int_equal(cf_pool_run(&job, &err), 0);
        for (size_t i = 0; i < ITEMS; i++)
            assert_int_equal(atomic_load(&c->taken[i]), 1);
        assert_true(atomic_load(&c->starts) >= 1 && atomic_load(&c->starts) <= (threads ? threads : 1));
        assert_int_equal(atomic_load(&c->stops), atomic_load(&c->starts));
        free(c);
    }
}

static void test_no_more_threads_than_items(void **state)
{
    (void)state;
    counts *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fail_at = ITEMS;
    cf_pool_job job = job_of(c, 3, 64);
    assert_int_equal(cf_pool_run(&job, NULL), 0);
    assert_true(atomic_load(&c->starts) <= 3);
    job.n = 0;
    atomic_store(&c->starts, 0);
    assert_int_equal(cf_pool_run(&job, NULL), 0);
    assert_int_equal(atomic_load(&c->starts), 0); /* nothing to do: no thread, no state */
    free(c);
}

static void test_first_failure_stops_the_job(void **state)
{
    (void)state;
    counts *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fail_at = 10;
    cf_pool_job job = job_of(c, ITEMS, 4);
    cf_err err;
    cf_err_clear(&err);
    assert_int_equal(cf_pool_run(&job, &err), CF_EDIGEST);
    assert_string_equal(err.msg, "item 10 differs");
    size_t taken = 0;
    for (size_t i = 0; i < ITEMS; i++)
        taken += (size_t)atomic_load(&c->taken[i]);
    /* At most the items already in hand on the other three threads follow the failure. */
    assert_true(taken <= 11 + 3);
    assert_int_equal(atomic_load(&c->stops), atomic_load(&c->starts));
    free(c);
}

static void test_failed_start_stops_without_stop(void **state)
{
    (void)state;
    counts *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fail_at = ITEMS;
    c->fail_start = 1;
    cf_pool_job job = job_of(c, ITEMS, 4);
    cf_err err;
    cf_err_clear(&err);
    assert_int_equal(cf_pool_run(&job, &err), CF_EIO);
    assert_string_equal(err.msg, "no detector");
    for (size_t i = 0; i < ITEMS; i++)
        assert_int_equal(atomic_load(&c->taken[i]), 0);
    assert_int_equal(atomic_load(&c->stops), 0);
    free(c);
}

static void test_tick_runs_on_the_caller_while_others_work(void **state)
{
    (void)state;
    counts *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fail_at = ITEMS;
    c->slow = 50;
    cf_pool_job job = job_of(c, 8, 2);
    job.tick = tick;
    job.tick_ms = 10;
    assert_int_equal(cf_pool_run(&job, NULL), 0);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(atomic_load(&c->taken[i]), 1);
    /* 8 items of 50 ms on 2 threads: about 200 ms, ticked every 10 ms. */
    assert_true(atomic_load(&c->ticks) >= 2);
    assert_int_equal(atomic_load(&c->starts), 2); /* the caller ticks, it takes no item */
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_item_once_with_per_thread_state),
        cmocka_unit_test(test_no_more_threads_than_items),
        cmocka_unit_test(test_first_failure_stops_the_job),
        cmocka_unit_test(test_failed_start_stops_without_stop),
        cmocka_unit_test(test_tick_runs_on_the_caller_while_others_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
