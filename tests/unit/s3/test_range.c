/*
 * test_range.c - cf_s3_range_parse against RFC 9110 section 14 and what S3 does with it.
 *
 * S3 sends 206 for a satisfiable single range, 416 InvalidRange when the first byte lies at or
 * past the end of the object (or the object is empty), and otherwise ignores a Range it does not
 * understand and answers 200 with the whole object: a reversed range ("bytes=5-1"), a
 * multi-range (S3 serves no multipart/byteranges), another unit, garbage. The parser's three
 * answers map onto those: 0 (206), CF_ERANGE (416), CF_EINVAL (ignore, 200).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "s3/request.h"

/* Sentinels: a failed parse must not write through its out pointers. */
#define UNTOUCHED 0xdeadbeefULL

typedef struct range_case {
    const char *header;
    uint64_t size;
    int rc;
    uint64_t start, len; /* when rc == 0 */
} range_case;

static void check_cases(const range_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t start = UNTOUCHED, len = UNTOUCHED;
        int rc = cf_s3_range_parse(c[i].header, c[i].size, &start, &len);
        if (rc != c[i].rc)
            fail_msg("'%s' on %llu bytes: rc %d, want %d", c[i].header, (unsigned long long)c[i].size, rc,
                     c[i].rc);
        if (rc == 0 && (start != c[i].start || len != c[i].len))
            fail_msg("'%s' on %llu bytes: start %llu len %llu, want %llu %llu", c[i].header,
                     (unsigned long long)c[i].size, (unsigned long long)start, (unsigned long long)len,
                     (unsigned long long)c[i].start, (unsigned long long)c[i].len);
        if (rc != 0 && (start != UNTOUCHED || len != UNTOUCHED))
            fail_msg("'%s': failed parse wrote its outputs", c[i].header);
    }
}

#define CHECK(cases) check_cases(cases, sizeof cases / sizeof *cases)

/* The RFC 9110 section 14.1.2 examples, on its 10000-byte representation. */
static void test_rfc_examples(void **state)
{
    /* clang-format off */
    static const range_case cases[] = {
        {"bytes=0-499", 10000, 0, 0, 500},
        {"bytes=500-999", 10000, 0, 500, 500},
        {"bytes=-500", 10000, 0, 9500, 500},
        {"bytes=9500-", 10000, 0, 9500, 500},
        {"bytes=0-0", 10000, 0, 0, 1},
        {"bytes=-1", 10000, 0, 9999, 1},
        {"bytes=0-", 10000, 0, 0, 10000},
    };
    /* clang-format on */
    CHECK(cases);
}

/* A last-pos at or past the end means "to the end" (RFC 9110 14.1.2), and S3 answers 206. */
static void test_end_past_size_is_clamped(void **state)
{
    /* clang-format off */
    static const range_case cases[] = {
        {"bytes=0-10", 10, 0, 0, 10},
        {"bytes=0-9", 10, 0, 0, 10},
        {"bytes=5-1000000", 10, 0, 5, 5},
        {"bytes=9-9", 10, 0, 9, 1},
        {"bytes=9-18446744073709551615", 10, 0, 9, 1},
        {"bytes=0-18446744073709551615", 18446744073709551615ULL, 0, 0, 18446744073709551615ULL},
    };
    /* clang-format on */
    CHECK(cases);
}

/* A suffix longer than the object selects all of it, still as a 206. */
static void test_suffix(void **state)
{
    /* clang-format off */
    static const range_case cases[] = {
        {"bytes=-10", 10, 0, 0, 10},
        {"bytes=-11", 10, 0, 0, 10},
        {"bytes=-18446744073709551615", 10, 0, 0, 10},
        {"bytes=-1", 1, 0, 0, 1},
        {"bytes=-3", 18446744073709551615ULL, 0, 18446744073709551612ULL, 3},
    };
    /* clang-format on */
    CHECK(cases);
}

/* 416: no byte of the object is selected. An empty object has no satisfiable range at all
 * (RFC 9110 14.1.3); AWS answers InvalidRange for "bytes=0-" on a 0-byte object too. */
static void test_unsatisfiable(void **state)
{
    /* clang-format off */
    static const range_case cases[] = {
        {"bytes=10-", 10, CF_ERANGE, 0, 0},
        {"bytes=10-20", 10, CF_ERANGE, 0, 0},
        {"bytes=11-11", 10, CF_ERANGE, 0, 0},
        {"bytes=18446744073709551615-", 10, CF_ERANGE, 0, 0},
        {"bytes=-0", 10, CF_ERANGE, 0, 0},
        {"bytes=-00", 10, CF_ERANGE, 0, 0},
        {"bytes=0-", 0, CF_ERANGE, 0, 0},
        {"bytes=0-0", 0, CF_ERANGE, 0, 0},
        {"bytes=-1", 0, CF_ERANGE, 0, 0},
        {"bytes=-0", 0, CF_ERANGE, 0, 0},
    };
    /* clang-format on */
    CHECK(cases);
}

/* Syntactically invalid per RFC 9110 (last-pos < first-pos); AWS returns the whole object for
 * "bytes=1-0" and "bytes=15-1" alike, even when the start is past the end. */
static void test_reversed_range_is_ignored(void **state)
{
    /* clang-format off */
    static const range_case cases[] = {
        {"bytes=1-0", 12, CF_EINVAL, 0, 0},
        {"bytes=15-1", 12, CF_EINVAL, 0, 0},
        {"bytes=5-4", 0, CF_EINVAL, 0, 0},
    };
    /* clang-format on */
    CHECK(cases);
}

/* S3 serves one range per GET; a list of ranges is ignored rather than half-served. */
static void test_multiple_ranges_are_ignored(void **state)
{
    /* clang-format off */
    static const range_case cases[] = {
        {"bytes=0-1,3-4", 100, CF_EINVAL, 0, 0},
        {"bytes=0-1, 3-4", 100, CF_EINVAL, 0, 0},
        {"bytes=-5,0-1", 100, CF_EINVAL, 0, 0},
        {"bytes=0-1,", 100, CF_EINVAL, 0, 0},
        {"bytes=,0-1", 100, CF_EINVAL, 0, 0},
        /* Even when every listed range is unsatisfiable: nothing is selected, nothing refused. */
        {"bytes=200-300,400-500", 100, CF_EINVAL, 0, 0},
    };
    /* clang-format on */
    CHECK(cases);
}

static void test_malformed_is_ignored(void **state)
{
    /* clang-format off */
    static const range_case cases[] = {
        {"", 100, CF_EINVAL, 0, 0},
        {"0-10", 100, CF_EINVAL, 0, 0},
        {"bytes", 100, CF_EINVAL, 0, 0},
        {"bytes=", 100, CF_EINVAL, 0, 0},
        {"bytes=-", 100, CF_EINVAL, 0, 0},
        {"bytes=5", 100, CF_EINVAL, 0, 0},
        {"bytes=a-b", 100, CF_EINVAL, 0, 0},
        {"bytes=0x10-0x20", 100, CF_EINVAL, 0, 0},
        {"bytes=1-2-3", 100, CF_EINVAL, 0, 0},
        {"bytes=1--2", 100, CF_EINVAL, 0, 0},
        {"bytes=--5", 100, CF_EINVAL, 0, 0},
        {"bytes=-5-", 100, CF_EINVAL, 0, 0},
        {"bytes=-5-6", 100, CF_EINVAL, 0, 0},
        {"bytes=+5-6", 100, CF_EINVAL, 0, 0},
        {"bytes=5-+6", 100, CF_EINVAL, 0, 0},
        {"bytes=-+5", 100, CF_EINVAL, 0, 0},
        {"bytes=1.5-2", 100, CF_EINVAL, 0, 0},
        {"bytes=0-10x", 100, CF_EINVAL, 0, 0},
        {"bytes:0-10", 100, CF_EINVAL, 0, 0},
        {"bytes =0-10", 100, CF_EINVAL, 0, 0},
        {"items=0-10", 100, CF_EINVAL, 0, 0},
        {"bytesx=0-10", 100, CF_EINVAL, 0, 0},
        {"xbytes=0-10", 100, CF_EINVAL, 0, 0},
        {"bytes=0-10;x", 100, CF_EINVAL, 0, 0},
        /* Whitespace inside a range-spec is not OWS in the grammar. */
        {"bytes=0 -10", 100, CF_EINVAL, 0, 0},
        {"bytes=0- 10", 100, CF_EINVAL, 0, 0},
        {"bytes=- 5", 100, CF_EINVAL, 0, 0},
        {"bytes=\t0-10", 100, CF_EINVAL, 0, 0},
        /* The parser must see the whole header: an embedded newline is not its end. */
        {"bytes=0-10\r\nX: y", 100, CF_EINVAL, 0, 0},
        /* Malformed stays malformed on an empty object: ignored (200), not 416. */
        {"bytes=abc", 0, CF_EINVAL, 0, 0},
    };
    /* clang-format on */
    CHECK(cases);
}

/*
 * Positions that do not fit in 64 bits. RFC 9110 would clamp a huge last-pos (206) and refuse a
 * huge first-pos (416); this parser treats them as malformed, so the header is ignored and the
 * whole object is sent with 200. The data sent is the same for a huge last-pos from 0 (the whole
 * object); see the report for the other two cases.
 */
static void test_overflowing_numbers_are_ignored(void **state)
{
    /* clang-format off */
    static const range_case cases[] = {
        {"bytes=99999999999999999999999-", 100, CF_EINVAL, 0, 0},
        {"bytes=0-99999999999999999999999", 100, CF_EINVAL, 0, 0},
        {"bytes=-99999999999999999999999", 100, CF_EINVAL, 0, 0},
        {"bytes=18446744073709551616-", 100, CF_EINVAL, 0, 0},
        {"bytes=0-18446744073709551616", 100, CF_EINVAL, 0, 0},
        /* A negative position is not a position: "-1-5" is not a suffix either. */
        {"bytes=-1-5", 100, CF_EINVAL, 0, 0},
    };
    /* clang-format on */
    CHECK(cases);
}

/* Leading zeros are digits like any other, and spaces around the value are tolerated. */
static void test_lenient_forms(void **state)
{
    /* clang-format off */
    static const range_case cases[] = {
        {"bytes=007-0009", 100, 0, 7, 3},
        {"bytes=000000000000000000000000001-2", 100, 0, 1, 2},
        {" bytes=1-2", 100, 0, 1, 2},
        {"bytes= 1-2", 100, 0, 1, 2},
        {"bytes=1-2  ", 100, 0, 1, 2},
        {"bytes=1- ", 100, 0, 1, 99},
        {"bytes=-2 ", 100, 0, 98, 2},
    };
    /* clang-format on */
    CHECK(cases);
}

/* Every satisfiable answer lies inside the object, for every start and end around its edges. */
static void test_results_stay_inside_the_object(void **state)
{
    char h[64];
    for (uint64_t size = 0; size <= 5; size++) {
        for (uint64_t a = 0; a <= 7; a++) {
            for (uint64_t b = 0; b <= 7; b++) {
                uint64_t start = UNTOUCHED, len = UNTOUCHED;
                snprintf(h, sizeof h, "bytes=%llu-%llu", (unsigned long long)a, (unsigned long long)b);
                int rc = cf_s3_range_parse(h, size, &start, &len);
                int want = b < a ? CF_EINVAL : a >= size ? CF_ERANGE : 0;
                assert_int_equal(rc, want);
                if (rc == 0) {
                    assert_int_equal(start, a);
                    assert_int_equal(len, (b < size ? b : size - 1) - a + 1);
                }
            }
            uint64_t start = UNTOUCHED, len = UNTOUCHED;
            snprintf(h, sizeof h, "bytes=-%llu", (unsigned long long)a);
            int rc = cf_s3_range_parse(h, size, &start, &len);
            assert_int_equal(rc, a == 0 || size == 0 ? CF_ERANGE : 0);
            if (rc == 0) {
                uint64_t want = a < size ? a : size;
                assert_int_equal(len, want);
                assert_int_equal(start + len, size);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_examples),
        cmocka_unit_test(test_end_past_size_is_clamped),
        cmocka_unit_test(test_suffix),
        cmocka_unit_test(test_unsatisfiable),
        cmocka_unit_test(test_reversed_range_is_ignored),
        cmocka_unit_test(test_multiple_ranges_are_ignored),
        cmocka_unit_test(test_malformed_is_ignored),
        cmocka_unit_test(test_overflowing_numbers_are_ignored),
        cmocka_unit_test(test_lenient_forms),
        cmocka_unit_test(test_results_stay_inside_the_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
