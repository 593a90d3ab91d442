/* test_duration.c - the duration syntax of command-line flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/duration.h"
#include "core/err.h"

static void test_units(void **state)
{
    (void)state;
    int64_t s;
    assert_int_equal(cf_duration_parse("90", &s), 0);
    assert_int_equal(s, 90);
    assert_int_equal(cf_duration_parse("90s", &s), 0);
    assert_int_equal(s, 90);
    assert_int_equal(cf_duration_parse("15m", &s), 0);
    assert_int_equal(s, 900);
    assert_int_equal(cf_duration_parse("1h", &s), 0);
    assert_int_equal(s, 3600);
    assert_int_equal(cf_duration_parse("7d", &s), 0);
    assert_int_equal(s, 604800);
}

static void test_rejects(void **state)
{
    (void)state;
    int64_t s = 42;
    const char *bad[] = {"",      "0", "0s", "-1h", "1w", "1hh", "h", " 1h", "1.5h", "99999999999999999999d",
                         "36501d"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(cf_duration_parse(bad[i], &s), CF_EINVAL);
    assert_int_equal(cf_duration_parse(NULL, &s), CF_EINVAL);
    assert_int_equal(s, 42); /* untouched on failure */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
