/*
 * test_clock.c - the time and randomness seam (core/clock.c): the system clock agrees with
 * time(2); a fixed clock stands still until moved and draws the same bytes from the same seed
 * (different ones from another); tokens take only their alphabet's characters, each about
 * equally often; a clock passed as NULL is the system's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/err.h"

static void test_system_clock_reads_the_real_time(void **state)
{
    (void)state;
    time_t before = time(NULL);
    time_t got = cf_clock_time(NULL), via = cf_clock_time(&cf_clock_system), plain = cf_clock_now();
    time_t after = time(NULL);
    assert_true(got >= before && got <= after);
    assert_true(via >= before && via <= after);
    assert_true(plain >= before && plain <= after);
    int64_t ns = cf_clock_time_ns(NULL);
    assert_true(ns / 1000000000 >= before && ns / 1000000000 <= after + 1);
    unsigned char a[32] = {0}, b[32] = {0};
    assert_int_equal(cf_clock_random(NULL, a, sizeof a), 0);
    assert_int_equal(cf_random_bytes(b, sizeof b), 0);
    assert_memory_not_equal(a, b, sizeof a);
}

static void test_fixed_clock_stands_still_and_repeats(void **state)
{
    (void)state;
    cf_fixed_clock f, g, other;
    cf_fixed_clock_init(&f, 1369353600LL * 1000000000 + 999999999, 42);
    cf_fixed_clock_init(&g, 0, 42);
    cf_fixed_clock_init(&other, 0, 43);
    assert_int_equal(cf_clock_time(&f.clock), 1369353600); /* 2013-05-24T00:00:00Z, rounded down */
    assert_int_equal(cf_clock_time(&f.clock), 1369353600);
    f.now_ns = -1; /* just before the epoch is second -1, not 0 */
    assert_int_equal(cf_clock_time(&f.clock), -1);
    f.now_ns = 5000000000;
    assert_int_equal(cf_clock_time_ns(&f.clock), 5000000000);

    unsigned char a[64], b[64], c[64];
    assert_int_equal(cf_clock_random(&f.clock, a, sizeof a), 0);
    assert_int_equal(cf_clock_random(&g.clock, b, sizeof b), 0);
    assert_int_equal(cf_clock_random(&other.clock, c, sizeof c), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    assert_int_equal(cf_clock_random(&f.clock, a, sizeof a), 0);
    assert_memory_not_equal(a, b, sizeof a); /* the stream goes on */

    char t1[41], t2[41];
    cf_fixed_clock_init(&f, 0, 7);
    cf_fixed_clock_init(&g, 0, 7);
    assert_int_equal(cf_clock_token(&f.clock, t1, 40, CF_SECRET_KEY_ALPHABET), 0);
    assert_int_equal(cf_clock_token(&g.clock, t2, 40, CF_SECRET_KEY_ALPHABET), 0);
    assert_string_equal(t1, t2);
}

static void test_tokens_use_their_alphabet_evenly(void **state)
{
    (void)state;
    enum { N = 36000 };
    static char tok[N + 1];
    assert_int_equal(cf_clock_token(NULL, tok, N, CF_ACCESS_KEY_ALPHABET), 0);
    assert_int_equal(strlen(tok), N);
    unsigned count[256] = {0};
    for (size_t i = 0; i < N; i++)
        count[(unsigned char)tok[i]]++;
    size_t alen = strlen(CF_ACCESS_KEY_ALPHABET);
    for (unsigned ch = 0; ch < 256; ch++) {
        int in = ch && strchr(CF_ACCESS_KEY_ALPHABET, (int)ch) != NULL;
        if (!in) {
            assert_int_equal(count[ch], 0);
            continue;
        }
        /* 1000 expected per letter; a letter favoured by modulo bias (256 % 36 = 4) would get
         * about 1100. Five standard deviations either side. */
        assert_in_range(count[ch], N / alen - 160, N / alen + 160);
    }
    char out[4];
    assert_int_equal(cf_clock_token(NULL, out, 3, ""), CF_EINVAL);
    assert_int_equal(cf_random_token(out, 3, "ab"), 0);
    assert_true(strspn(out, "ab") == 3 && out[3] == '\0');
}

static int64_t broken_now(void *ctx)
{
    (void)ctx;
    return 0;
}

static int broken_random(void *ctx, void *p, size_t n)
{
    (void)ctx, (void)p, (void)n;
    return CF_EIO;
}

/* A source that fails makes a token fail, rather than hand out a predictable one. */
static void test_failing_randomness_fails_the_token(void **state)
{
    (void)state;
    const cf_clock broken = {broken_now, broken_random, NULL};
    char out[21];
    assert_int_equal(cf_clock_token(&broken, out, 20, CF_ACCESS_KEY_ALPHABET), CF_EIO);
    assert_int_equal(cf_clock_random(&broken, out, 4), CF_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_system_clock_reads_the_real_time),
        cmocka_unit_test(test_fixed_clock_stands_still_and_repeats),
        cmocka_unit_test(test_tokens_use_their_alphabet_evenly),
        cmocka_unit_test(test_failing_randomness_fails_the_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
