/* test_rate.c - the rate syntax of rate groups and tiers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/rate.h"

static void test_units(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t bytes;
    } ok[] = {
        {"50MB/s", 50000000ULL},  {"250MB/s", 250000000ULL},      {"1GB/s", 1000000000ULL},
        {"800KB/s", 800000ULL},   {"1000B/s", 1000ULL},           {"4MiB/s", 4ULL << 20},
        {"2GiB/s", 2ULL << 30},   {"64KiB/s", 64ULL << 10},       {"1.5MB/s", 1500000ULL},
        {"0.5GiB/s", 1ULL << 29}, {"1000GB/s", 1000000000000ULL},
    };
    cf_err err;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint64_t v = 0;
        assert_int_equal(cf_rate_parse(ok[i].text, &v, &err), 0);
        assert_int_equal(v, ok[i].bytes);
        char back[CF_RATE_TEXT_MAX];
        cf_rate_format(v, back);
        uint64_t again = 0;
        assert_int_equal(cf_rate_parse(back, &again, &err), 0);
        assert_int_equal(again, v);
    }
    char t[CF_RATE_TEXT_MAX];
    cf_rate_format(250000000, t);
    assert_string_equal(t, "250MB/s");
    cf_rate_format(4 << 20, t);
    assert_string_equal(t, "4MiB/s");
    cf_rate_format(1234567, t);
    assert_string_equal(t, "1234567B/s");
}

static void test_rejects_naming_the_fault(void **state)
{
    (void)state;
    static const struct {
        const char *text, *says;
    } bad[] = {
        {"", "begin with a number"},
        {"fast", "begin with a number"},
        {"-5MB/s", "begin with a number"},
        {"50", "unit"},
        {"50MB", "unit"},
        {"50mb/s", "unit"},
        {"50Mb/s", "unit"},
        {"50 MB/s", "unit"},
        {"50MB/s ", "unit"},
        {"1.MB/s", "fraction"},
        {"1.0000000001MB/s", "fraction"},
        {"0MB/s", "between"},
        {"999B/s", "between"},
        {"1001GB/s", "largest"},
        {"99999999999999GiB/s", "largest"},
        {"18446744073709551617B/s", "largest"},
    };
    cf_err err;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t v = 7;
        assert_int_equal(cf_rate_parse(bad[i].text, &v, &err), CF_EINVAL);
        assert_int_equal(v, 7);
        assert_non_null(strstr(err.msg, bad[i].says));
        assert_non_null(strstr(err.msg, "rate '"));
    }
    uint64_t v;
    assert_int_equal(cf_rate_parse(NULL, &v, &err), CF_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_rejects_naming_the_fault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
