/* test_buf.c - a buffer remembers its first failed append, so that a document built from
 * unchecked appends is refused whole rather than sent cut short. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"

static void test_failed_append_is_remembered(void **state)
{
    (void)state;
    cf_buf b;
    cf_buf_init(&b, 8);
    assert_int_equal(cf_buf_puts(&b, "<a>"), 0);
    assert_int_equal(cf_buf_error(&b), 0);
    assert_int_equal(cf_buf_puts(&b, "too long for it"), CF_ETOOBIG);
    /* The buffer is as it was, and later appends that fit do not hide the loss. */
    assert_string_equal(b.data, "<a>");
    assert_int_equal(cf_buf_puts(&b, "</a>"), 0);
    assert_string_equal(b.data, "<a></a>");
    assert_int_equal(cf_buf_error(&b), CF_ETOOBIG);
    assert_int_equal(cf_buf_printf(&b, "%s", "overflowing"), CF_ETOOBIG);
    assert_int_equal(cf_buf_error(&b), CF_ETOOBIG);
    cf_buf_reset(&b);
    assert_int_equal(cf_buf_error(&b), 0);
    assert_int_equal(cf_buf_putc(&b, 'x'), 0);
    assert_int_equal(cf_buf_error(&b), 0);
    cf_buf_cleanup(&b);
}

static void test_init_cleanup_and_steal_start_clean(void **state)
{
    (void)state;
    cf_buf b;
    cf_buf_init(&b, 2);
    assert_int_equal(cf_buf_puts(&b, "abc"), CF_ETOOBIG);
    cf_buf_cleanup(&b);
    assert_int_equal(cf_buf_error(&b), 0);
    assert_int_equal(cf_buf_puts(&b, "abc"), CF_ETOOBIG);
    size_t len = 99;
    char *p = cf_buf_steal(&b, &len);
    assert_null(p);
    assert_int_equal(len, 0);
    assert_int_equal(cf_buf_error(&b), 0);
    cf_buf_init(&b, 16);
    assert_int_equal(cf_buf_error(&b), 0);
    cf_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_append_is_remembered),
        cmocka_unit_test(test_init_cleanup_and_steal_start_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
