/*
 * test_md5.c - the ETag MD5 (crypto/md5.c): RFC 1321 appendix A.5 vectors, agreement with
 * OpenSSL's MD5 (cf_md5) over lengths and update splits, every lane count of the interleaved
 * block function, and bodies hashed by several threads at once, some abandoned half way, which
 * must come out as if each had been hashed alone: side by side when they share a gather, alone
 * without one, and two gathers never mix their bodies or their counts.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/hash.h"
#include "crypto/md5.h"

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

static void md5_hex(const void *p, size_t n, char out[33])
{
    cf_md5_ctx m;
    unsigned char d[CF_MD5_LEN];
    cf_md5_init(&m, NULL);
    cf_md5_update(&m, p, n);
    cf_md5_final(&m, d);
    cf_hex_encode(d, sizeof d, out);
}

static void test_rfc1321_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *in, *md5;
    } v[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char hex[33];
        md5_hex(v[i].in, strlen(v[i].in), hex);
        assert_string_equal(hex, v[i].md5);
    }
}

/* Every length around the padding boundaries, each fed whole and in pieces of every awkward
 * size (one thread: the sharing path is the threaded test's). */
static void test_matches_openssl_over_lengths_and_splits(void **state)
{
    (void)state;
    enum { MAX = 4096 };
    unsigned char *buf = malloc(MAX);
    assert_non_null(buf);
    fill(buf, MAX, 7);
    static const size_t pieces[] = {1, 3, 63, 64, 65, 1000, 1024, 1088, MAX};
    for (size_t n = 0; n <= MAX; n += n < 200 ? 1 : 61) {
        unsigned char want[CF_MD5_LEN];
        cf_md5(buf, n, want);
        for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
            cf_md5_ctx m;
            unsigned char got[CF_MD5_LEN];
            cf_md5_init(&m, NULL);
            for (size_t off = 0; off < n; off += pieces[k])
                cf_md5_update(&m, buf + off, n - off < pieces[k] ? n - off : pieces[k]);
            cf_md5_final(&m, got);
            assert_memory_equal(got, want, CF_MD5_LEN);
        }
    }
    free(buf);
}

static void test_lanes_match_one_at_a_time(void **state)
{
    (void)state;
    enum { BLOCKS = 37 };
    unsigned char *data[CF_MD5_LANES];
    for (unsigned i = 0; i < CF_MD5_LANES; i++) {
        data[i] = malloc(BLOCKS * 64);
        assert_non_null(data[i]);
        fill(data[i], BLOCKS * 64, 100 + i);
    }
    for (unsigned n = 1; n <= CF_MD5_LANES; n++) {
        uint32_t st[CF_MD5_LANES][4], want[CF_MD5_LANES][4];
        uint32_t *stp[CF_MD5_LANES];
        const unsigned char *p[CF_MD5_LANES];
        for (unsigned i = 0; i < n; i++) {
            /* Different starting states per lane, so a lane mix-up shows. */
            for (int w = 0; w < 4; w++)
                st[i][w] = want[i][w] = 0x01020304u * (i + 1) + (uint32_t)w;
            cf_md5_blocks(want[i], data[i], BLOCKS);
            stp[i] = st[i];
            p[i] = data[i];
        }
        cf_md5_blocks_lanes(n, stp, p, BLOCKS);
        for (unsigned i = 0; i < n; i++)
            assert_memory_equal(st[i], want[i], sizeof want[i]);
    }
    for (unsigned i = 0; i < CF_MD5_LANES; i++)
        free(data[i]);
}

enum { THREADS = 6, BODIES_PER_THREAD = 5, BODY_MAX = 3 << 20 };

typedef struct {
    unsigned id;
    pthread_barrier_t *start;
    cf_md5_gather *gather; /* NULL: each body hashed alone */
    int mismatches;
} worker_arg;

/* Bodies of different sizes in update pieces of different sizes (the server's are 512 KiB
 * slots, but any split must work); every third body is abandoned part way with cf_md5_done,
 * as a failed upload is, and must not hold up the others. */
static void *worker(void *argp)
{
    worker_arg *a = argp;
    unsigned char *body = malloc(BODY_MAX);
    if (!body)
        return NULL;
    pthread_barrier_wait(a->start);
    for (unsigned b = 0; b < BODIES_PER_THREAD; b++) {
        unsigned seed = a->id * 100 + b;
        size_t len = BODY_MAX - (size_t)seed * 12345 % (BODY_MAX / 2);
        size_t piece = (size_t)1 << (14 + (a->id + b) % 6); /* 16 KiB .. 512 KiB */
        piece += seed % 3 ? 0 : 7;                          /* and odd sizes */
        fill(body, len, seed);
        int abandon = b % 3 == 2;
        cf_md5_ctx m;
        cf_md5_init(&m, a->gather);
        for (size_t off = 0; off < len; off += piece) {
            if (abandon && off >= len / 2)
                break;
            cf_md5_update(&m, body + off, len - off < piece ? len - off : piece);
        }
        if (abandon) {
            cf_md5_done(&m);
            cf_md5_done(&m); /* a second call is a no-op */
            continue;
        }
        unsigned char got[CF_MD5_LEN], want[CF_MD5_LEN];
        cf_md5_final(&m, got);
        cf_md5(body, len, want);
        a->mismatches += memcmp(got, want, CF_MD5_LEN) != 0;
    }
    free(body);
    return NULL;
}

/* Runs THREADS workers at once, the threads of `gathers[i % ngathers]`, and checks every digest. */
static void run_workers(cf_md5_gather *const *gathers, unsigned ngathers)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    pthread_t t[THREADS];
    worker_arg args[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        args[i] = (worker_arg){i, &start, gathers[i % ngathers], 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(args[i].mismatches, 0);
    }
    pthread_barrier_destroy(&start);
}

/* Whole blocks through the block function from the initial state, then a context resumed from
 * there for the tail: the digest of the whole, for every tail length around the padding's edge. */
static void test_resume_after_the_block_function(void **state)
{
    (void)state;
    unsigned char p[256];
    fill(p, sizeof p, 7);
    for (size_t tail = 0; tail <= 64; tail++) {
        uint32_t st[4];
        cf_md5_state_init(st);
        cf_md5_blocks(st, p, 2);
        cf_md5_ctx m;
        cf_md5_resume(&m, st, 128);
        cf_md5_update(&m, p + 128, tail);
        unsigned char d[CF_MD5_LEN];
        cf_md5_final(&m, d);
        char got[33], want[33];
        cf_hex_encode(d, sizeof d, got);
        md5_hex(p, 128 + tail, want);
        if (strcmp(got, want))
            fail_msg("tail %zu: %s, not %s", tail, got, want);
    }
}

static void test_bodies_hashed_at_once_by_many_threads(void **state)
{
    (void)state;
    cf_md5_gather *g;
    assert_int_equal(cf_md5_gather_new(&g), 0);
    uint64_t alone, side;
    cf_md5_gather_stats(g, &alone, &side);
    assert_int_equal(alone + side, 0);
    run_workers(&g, 1);
    cf_md5_gather_stats(g, &alone, &side);
    /* Six threads start together with megabytes each: some passes must have been shared. */
    assert_true(side > 0);
    assert_true(alone + side > 0);
    cf_md5_gather_free(g);
}

/* Without a gather every body is hashed alone, however many threads hash at once. */
static void test_bodies_without_a_gather_are_hashed_alone(void **state)
{
    (void)state;
    cf_md5_gather *none = NULL;
    run_workers(&none, 1);
}

/* Two owners' gathers (two stores in one process) pair only their own bodies and count only
 * their own bytes: a body of one never waits for a body of the other. */
static void test_two_gathers_are_independent(void **state)
{
    (void)state;
    cf_md5_gather *g[2], *idle;
    assert_int_equal(cf_md5_gather_new(&g[0]), 0);
    assert_int_equal(cf_md5_gather_new(&g[1]), 0);
    assert_int_equal(cf_md5_gather_new(&idle), 0);
    run_workers(g, 2);
    for (int i = 0; i < 2; i++) {
        uint64_t alone, side;
        cf_md5_gather_stats(g[i], &alone, &side);
        assert_true(alone + side > 0);
    }
    uint64_t alone, side;
    cf_md5_gather_stats(idle, &alone, &side);
    assert_int_equal(alone + side, 0);
    for (int i = 0; i < 2; i++)
        cf_md5_gather_free(g[i]);
    cf_md5_gather_free(idle);
    cf_md5_gather_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc1321_vectors),
        cmocka_unit_test(test_matches_openssl_over_lengths_and_splits),
        cmocka_unit_test(test_lanes_match_one_at_a_time),
        cmocka_unit_test(test_resume_after_the_block_function),
        cmocka_unit_test(test_bodies_hashed_at_once_by_many_threads),
        cmocka_unit_test(test_bodies_without_a_gather_are_hashed_alone),
        cmocka_unit_test(test_two_gathers_are_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
