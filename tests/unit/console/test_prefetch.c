/*
 * test_prefetch.c - the proxy's read-ahead pool (console/prefetch.c) over a directory
 * repository: jobs read the bytes asked for, waiting returns them, and jobs abandoned while
 * queued, running or done are freed (the ASan build's leak check and TSan watch this).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "console/console_int.h"

#define OBJECT_SIZE (3u << 20)

typedef struct fixture {
    char dir[64];
    cf_repo *repo;
    unsigned char *data;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/coffer-test-prefetch-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    cf_err err;
    assert_int_equal(cf_repo_open_dir(f->dir, &f->repo, &err), 0);
    f->data = malloc(OBJECT_SIZE);
    for (size_t i = 0; i < OBJECT_SIZE; i++)
        f->data[i] = (unsigned char)(i * 2654435761u >> 13);
    cf_repo_writer *w;
    assert_int_equal(cf_repo_writer_begin(f->repo, "chain/archive.tar", OBJECT_SIZE, &w, &err), 0);
    assert_int_equal(cf_repo_writer_write(w, f->data, OBJECT_SIZE, &err), 0);
    assert_int_equal(cf_repo_writer_commit(w, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    cf_repo_close(f->repo);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f->data);
    free(f);
    return 0;
}

static void test_jobs_read_what_was_asked(void **state)
{
    fixture *f = *state;
    cf_prefetch *pool;
    assert_int_equal(cf_prefetch_new(3, &pool), 0);
    cf_prefetch_job *jobs[12];
    for (size_t i = 0; i < 12; i++)
        assert_non_null(jobs[i] = cf_prefetch_submit(pool, f->repo, "chain/archive.tar", i * 250000, 250000));
    for (size_t i = 0; i < 12; i++) {
        char *buf = NULL;
        long got = cf_prefetch_wait(pool, jobs[i], &buf);
        assert_int_equal(got, 250000);
        assert_memory_equal(buf, f->data + i * 250000, 250000);
        free(buf);
    }
    /* The last bytes of the object. */
    cf_prefetch_job *tail = cf_prefetch_submit(pool, f->repo, "chain/archive.tar", OBJECT_SIZE - 10, 10);
    char *buf = NULL;
    assert_int_equal(cf_prefetch_wait(pool, tail, &buf), 10);
    assert_memory_equal(buf, f->data + OBJECT_SIZE - 10, 10);
    free(buf);
    /* A missing object: -1. */
    cf_prefetch_job *missing = cf_prefetch_submit(pool, f->repo, "chain/nope", 0, 100);
    assert_int_equal(cf_prefetch_wait(pool, missing, &buf), -1);
    free(buf);
    cf_prefetch_free(pool);
}

static void test_abandoned_jobs_are_freed(void **state)
{
    fixture *f = *state;
    cf_prefetch *pool;
    assert_int_equal(cf_prefetch_new(2, &pool), 0);
    /* Many more jobs than threads: some are abandoned queued, some running, some done. */
    cf_prefetch_job *jobs[64];
    for (size_t i = 0; i < 64; i++)
        assert_non_null(jobs[i] = cf_prefetch_submit(pool, f->repo, "chain/archive.tar", 0, OBJECT_SIZE));
    for (size_t i = 0; i < 64; i += 2)
        cf_prefetch_abandon(pool, jobs[i]);
    char *buf = NULL;
    assert_int_equal(cf_prefetch_wait(pool, jobs[1], &buf), OBJECT_SIZE);
    assert_memory_equal(buf, f->data, OBJECT_SIZE);
    free(buf);
    for (size_t i = 3; i < 64; i += 2)
        cf_prefetch_abandon(pool, jobs[i]);
    /* Freeing the pool finishes the reads still running and frees them. */
    cf_prefetch_free(pool);
}

static void test_read_inline(void **state)
{
    fixture *f = *state;
    char *buf = malloc(1 << 20);
    cf_err err = {0};
    assert_int_equal(cf_prefetch_read(f->repo, "chain/archive.tar", 1000, 1 << 20, buf, &err), 1 << 20);
    assert_memory_equal(buf, f->data + 1000, 1 << 20);
    assert_int_equal(cf_prefetch_read(f->repo, "chain/nope", 0, 10, buf, &err), -1);
    assert_true(err.msg[0] != '\0');
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jobs_read_what_was_asked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abandoned_jobs_are_freed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_inline, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
