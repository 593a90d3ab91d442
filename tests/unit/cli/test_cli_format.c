/* test_cli_format.c - the byte counts the commands print: the snapshot's progress bar writes two
 * decimals, the mirror's one, and both must keep writing what they wrote before they shared it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli_format.h"

static void test_units_and_decimals(void **state)
{
    (void)state;
    char out[32];
    cf_cli_human_bytes(0, 2, out, sizeof out);
    assert_string_equal(out, "0 B");
    cf_cli_human_bytes(1023, 1, out, sizeof out);
    assert_string_equal(out, "1023 B"); /* whole bytes: no decimals whatever was asked */
    cf_cli_human_bytes(1536, 2, out, sizeof out);
    assert_string_equal(out, "1.50 KiB");
    cf_cli_human_bytes(1536, 1, out, sizeof out);
    assert_string_equal(out, "1.5 KiB");
    cf_cli_human_bytes(3.0 * 1024 * 1024 * 1024, 2, out, sizeof out);
    assert_string_equal(out, "3.00 GiB");
    cf_cli_human_bytes(2048.0 * 1024 * 1024 * 1024 * 1024 * 1024, 1, out, sizeof out);
    assert_string_equal(out, "2048.0 PiB"); /* no unit beyond PiB */
}

static void test_truncates(void **state)
{
    (void)state;
    char out[4];
    cf_cli_human_bytes(1536, 2, out, sizeof out);
    assert_string_equal(out, "1.5");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units_and_decimals),
        cmocka_unit_test(test_truncates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
