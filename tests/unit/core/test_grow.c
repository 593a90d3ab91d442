/* test_grow.c - the growable array's room for one more element. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/grow.h"

static void test_doubles_from_first(void **state)
{
    (void)state;
    int *v = NULL;
    size_t n = 0, cap = 0;
    size_t caps[100];
    for (int i = 0; i < 100; i++) {
        int *p = cf_grow(v, &cap, n, sizeof *p, 4);
        assert_non_null(p);
        v = p;
        v[n++] = i;
        caps[i] = cap;
    }
    assert_int_equal(caps[0], 4);
    assert_int_equal(caps[3], 4);
    assert_int_equal(caps[4], 8);
    assert_int_equal(caps[8], 16);
    assert_int_equal(caps[99], 128);
    for (int i = 0; i < 100; i++)
        assert_int_equal(v[i], i);
    free(v);
}

static void test_room_left_keeps_pointer(void **state)
{
    (void)state;
    size_t cap = 0;
    char *v = cf_grow(NULL, &cap, 0, 1, 0);
    assert_non_null(v);
    assert_int_equal(cap, 1); /* first 0 still makes room */
    v[0] = 'a';
    assert_ptr_equal(cf_grow(v, &cap, 0, 1, 0), v);
    free(v);
}

static void test_overflow_leaves_array(void **state)
{
    (void)state;
    size_t cap = 4;
    int *v = calloc(cap, sizeof *v);
    assert_non_null(v);
    v[3] = 7;
    /* Doubling the count would pass SIZE_MAX bytes: refused, nothing changed. */
    size_t huge = SIZE_MAX / 4;
    assert_null(cf_grow(v, &huge, huge, sizeof *v, 4));
    assert_int_equal(huge, SIZE_MAX / 4);
    size_t half = SIZE_MAX / 2 + 1;
    assert_null(cf_grow(v, &half, half, 1, 4));
    assert_int_equal(half, SIZE_MAX / 2 + 1);
    assert_int_equal(v[3], 7);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubles_from_first),
        cmocka_unit_test(test_room_left_keeps_pointer),
        cmocka_unit_test(test_overflow_leaves_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
