/*
 * test_etag.c - S3 ETags of byte streams and the matcher that infers the part size.
 *
 * The expected ETags were computed apart from this code, with Python's hashlib, over the same
 * bytes (stream() below: SHA-256 of a little-endian 64-bit counter, concatenated):
 *   md5(data).hexdigest(), or md5(b"".join(md5(part).digest() ...)).hexdigest() + "-N".
 * "97b3402a…-5" is also what a coffer server answered for those 40 MiB uploaded by boto3's
 * upload_fileobj in parts of 8 MiB (tests/integration/test_mirror_verify.py checks it again).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/hash.h"
#include "mirror/etag.h"

#define MIB ((uint64_t)1 << 20)
#define BOTO3_40MIB_ETAG "97b3402a85263c2b3687d30a8e8c2a43-5"

static unsigned char *data; /* stream(STREAM_LEN) */
#define STREAM_LEN (40 * MIB + 777)

static void stream(unsigned char *out, size_t n)
{
    for (uint64_t i = 0; i * 32 < n; i++) {
        unsigned char le[8], d[32];
        for (int b = 0; b < 8; b++)
            le[b] = (unsigned char)(i >> (8 * b));
        cf_sha256(le, sizeof le, d);
        size_t take = n - i * 32 < 32 ? n - i * 32 : 32;
        memcpy(out + i * 32, d, take);
    }
}

static int setup(void **state)
{
    (void)state;
    data = malloc(STREAM_LEN);
    if (!data)
        return -1;
    stream(data, STREAM_LEN);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(data);
    return 0;
}

static const struct vector {
    uint64_t size, part;
    const char *etag;
} vectors[] = {
    {0, CF_ETAG_SINGLE, "d41d8cd98f00b204e9800998ecf8427e"},
    {0, CF_ETAG_WHOLE, "59adb24ef3cdbe0297f05b395827453f-1"},
    {1, CF_ETAG_SINGLE, "00d9712ec5eb70807a73b8d2d6ead90d"},
    {55, CF_ETAG_SINGLE, "2c3b2aa9ea9991cc348b9981073aee16"},
    {56, CF_ETAG_SINGLE, "0aba0d4b49bbcfb255ac12029849a681"},
    {63, CF_ETAG_SINGLE, "ae5dcb8c482fbef229d68bb74fc09cc3"},
    {64, CF_ETAG_SINGLE, "07f03c0d1f759b69641651b5b8274709"},
    {65, CF_ETAG_SINGLE, "2a9e3087e3f7b631d45ec49cb0f1be9f"},
    {119, CF_ETAG_SINGLE, "578a117354cc067dc39bf7cbcd3b4aca"},
    {120, CF_ETAG_SINGLE, "ae471c644986a0c108cd8e6d42fc3d53"},
    {128, CF_ETAG_SINGLE, "b9ef5db0a83ac054e5ce8f1d4e36b25f"},
    {1000, CF_ETAG_SINGLE, "37b0980a15a90f69cd1db1b9d77637e6"},
    {1000, 64, "4e2c821aee26616c40874e032d7ff2e4-16"},
    {1000, 100, "414a83ac12728a4cbfd6a211668d7914-10"},
    {1000, 1000, "7bc3e682b50258dafd164e85679f234e-1"},
    {1000, 999, "d743a408d7856302956841a7340bbd99-2"},
    {100, 64, "b585a672267294882ed51a220329ffc8-2"},
    {128, 64, "70a26de7f94566c4f60f824f3bd54f12-2"},
    {16777216, 8388608, "a8ba4183d4fc5459990c2199463023b2-2"},
    {41943040, 8388608, BOTO3_40MIB_ETAG},
    {41943040, 5242880, "d8f3ba9a62cdabc664d44737a4ee5ea7-8"},
    {41943817, 8388608, "9a77cd55b15c6bf28211cea54dc35511-6"},
    {17825795, 5941932, "f6d04f53c2373ba48dfce813871b49be-3"},
    {41943040, CF_ETAG_WHOLE, "e5ef8483b6d9c3a231b4a8bb899c2689-1"},
};
#define NVECTORS (sizeof vectors / sizeof *vectors)

static void test_one_shot_matches_hashlib(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVECTORS; i++) {
        char got[CF_ETAG_MAX];
        cf_err err;
        assert_int_equal(cf_etag_of(data, vectors[i].size, vectors[i].part, got, &err), 0);
        if (strcmp(got, vectors[i].etag))
            fail_msg("vector %zu (%llu bytes, parts of %llu): got %s, want %s", i,
                     (unsigned long long)vectors[i].size, (unsigned long long)vectors[i].part, got,
                     vectors[i].etag);
    }
}

/* Every vector at once in one calculator (aligned and unaligned lanes side by side), fed in
 * pieces of awkward sizes, gives what each gives alone. */
static void test_all_sizes_in_one_read_any_chunking(void **state)
{
    (void)state;
    static const size_t chunks[] = {1, 7, 63, 64, 65, 4095, 131072 + 3, 1 << 20};
    uint64_t sizes[] = {CF_ETAG_SINGLE, CF_ETAG_WHOLE, 5 * MIB, 8 * MIB, 64, 100, 999, 5941932};
    const size_t nsizes = sizeof sizes / sizeof *sizes;
    for (size_t k = 0; k < sizeof chunks / sizeof *chunks; k++) {
        /* A whole number of parts, and not; tiny pieces over fewer bytes, to keep the test short. */
        uint64_t len = chunks[k] < 4096 ? 2 * MIB + 12345 : k % 2 ? 40 * MIB : 17825795;
        cf_etag_calc *c;
        cf_err err;
        assert_int_equal(cf_etag_calc_new(sizes, nsizes, &c, &err), 0);
        for (uint64_t off = 0; off < len; off += chunks[k])
            cf_etag_calc_update(c, data + off, len - off < chunks[k] ? (size_t)(len - off) : chunks[k]);
        cf_etag_calc_final(c);
        for (size_t i = 0; i < nsizes; i++) {
            char want[CF_ETAG_MAX];
            assert_int_equal(cf_etag_of(data, len, sizes[i], want, &err), 0);
            if (strcmp(cf_etag_calc_etag(c, i), want))
                fail_msg("pieces of %zu, parts of %llu: %s, alone %s", chunks[k],
                         (unsigned long long)sizes[i], cf_etag_calc_etag(c, i), want);
        }
        cf_etag_calc_free(c);
    }
}

static void test_calc_refuses_bad_counts(void **state)
{
    (void)state;
    uint64_t sizes[CF_ETAG_SIZES_MAX + 1] = {0};
    cf_etag_calc *c = NULL;
    cf_err err;
    assert_int_equal(cf_etag_calc_new(sizes, 0, &c, &err), CF_EINVAL);
    assert_int_equal(cf_etag_calc_new(sizes, CF_ETAG_SIZES_MAX + 1, &c, &err), CF_EINVAL);
    assert_null(c);
    cf_etag_calc_free(NULL);
    cf_etag_match_free(NULL);
}

static void test_parse(void **state)
{
    (void)state;
    unsigned char md5[16];
    unsigned n = 99;
    assert_int_equal(cf_etag_parse("\"d41d8cd98f00b204e9800998ecf8427e\"", md5, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(md5[0], 0xd4);
    assert_int_equal(cf_etag_parse("D41D8CD98F00B204E9800998ECF8427E", md5, &n), 0);
    assert_int_equal(cf_etag_parse("\"" BOTO3_40MIB_ETAG "\"", md5, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(cf_etag_parse("97b3402a85263c2b3687d30a8e8c2a43-10000", md5, &n), 0);
    assert_int_equal(n, 10000);
    static const char *bad[] = {
        "",
        "\"\"",
        "\"",
        "d41d8cd98f00b204e9800998ecf8427",   /* 31 digits */
        "d41d8cd98f00b204e9800998ecf8427e0", /* 33 */
        "g41d8cd98f00b204e9800998ecf8427e",
        "97b3402a85263c2b3687d30a8e8c2a43-",
        "97b3402a85263c2b3687d30a8e8c2a43-0",
        "97b3402a85263c2b3687d30a8e8c2a43-05",
        "97b3402a85263c2b3687d30a8e8c2a43-10001",
        "97b3402a85263c2b3687d30a8e8c2a43-99999999999",
        "97b3402a85263c2b3687d30a8e8c2a43-5x",
        "97b3402a85263c2b3687d30a8e8c2a43--5",
        "\"97b3402a85263c2b3687d30a8e8c2a43-5",
        "W/\"d41d8cd98f00b204e9800998ecf8427e\"",
        "\"1234-5678-9abc\"", /* a directory repository's: inode, size, mtime */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (cf_etag_parse(bad[i], md5, &n) != CF_EINVAL)
            fail_msg("accepted '%s'", bad[i]);
}

static int contains(const uint64_t *v, size_t n, uint64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

static void test_part_sizes_of_the_usual_clients(void **state)
{
    (void)state;
    uint64_t s[CF_ETAG_SIZES_MAX];
    const uint64_t GIB = 1024 * MIB;
    assert_int_equal(cf_etag_part_sizes(123, 0, s), 1);
    assert_true(s[0] == CF_ETAG_SINGLE);
    assert_int_equal(cf_etag_part_sizes(123, 1, s), 1);
    assert_true(s[0] == CF_ETAG_WHOLE);
    /* boto3's 8 MiB first; then every MiB that gives 5 parts: 9 MiB. */
    size_t n = cf_etag_part_sizes(40 * MIB, 5, s);
    assert_int_equal(n, 2);
    assert_true(s[0] == 8 * MIB && s[1] == 9 * MIB);
    /* Two parts of 10 MiB: 8 MiB, 5 MiB, then 6, 7 and 9 MiB. */
    n = cf_etag_part_sizes(10 * MIB, 2, s);
    assert_int_equal(n, 5);
    assert_true(s[0] == 8 * MIB && s[1] == 5 * MIB && s[2] == 6 * MIB && s[3] == 7 * MIB && s[4] == 9 * MIB);
    /* A wide range of sizes (2 parts of 3 GiB) is cut at the maximum. */
    assert_int_equal(cf_etag_part_sizes(3 * GIB, 2, s), CF_ETAG_SIZES_MAX);
    /* awscli doubles 8 MiB to 32 MiB for 200 GiB (6,400 parts); coffer's writer takes 23 MiB
     * (200 GiB / 9,000 + 1 MiB, rounded down to a MiB: 8,905 parts); rclone 21 MiB for 200 GiB (9,753). */
    n = cf_etag_part_sizes(200 * GIB, 6400, s);
    assert_true(n >= 1 && s[0] == 32 * MIB);
    assert_true(contains(s, cf_etag_part_sizes(200 * GIB, 8905, s), 23 * MIB));
    assert_true(contains(s, cf_etag_part_sizes(200 * GIB, 9753, s), 21 * MIB));
    /* mc (minio-go): 200 GiB / 10,000 rounded up to 16 MiB: 32 MiB as well; 1 TiB: 112 MiB. */
    assert_true(contains(s, cf_etag_part_sizes(1024 * GIB, 9363, s), 112 * MIB));
    /* coffer's server-side copy of an object over 5 GiB: 512 MiB parts. */
    assert_true(contains(s, cf_etag_part_sizes(6 * GIB, 12, s), 512 * MIB));
    /* s3cmd's 15 MiB. */
    assert_true(contains(s, cf_etag_part_sizes(100 * MIB, 7, s), 15 * MIB));
    /* The JS and Java SDKs split 10,000 parts evenly (ceil), the Go SDK takes size / 10,000 + 1. */
    uint64_t odd = 10000 * 6 * MIB + 12345;
    n = cf_etag_part_sizes(odd, 10000, s);
    assert_true(contains(s, n, odd / 10000 + 1));
    /* Every size given gives exactly the count, and none twice; never more than the maximum. */
    const struct {
        uint64_t size;
        unsigned parts;
    } cases[] = {{40 * MIB, 5}, {200 * GIB, 6400}, {10 * MIB, 2},
                 {3 * GIB, 2},  {7 * MIB + 5, 8},  {odd, 10000}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        n = cf_etag_part_sizes(cases[c].size, cases[c].parts, s);
        assert_true(n >= 1 && n <= CF_ETAG_SIZES_MAX);
        for (size_t i = 0; i < n; i++) {
            assert_true(s[i] > 0 && s[i] < cases[c].size);
            uint64_t parts = cases[c].size / s[i] + (cases[c].size % s[i] != 0);
            assert_int_equal(parts, cases[c].parts);
            for (size_t j = 0; j < i; j++)
                assert_true(s[i] != s[j]);
        }
    }
    /* No part size makes 8 parts of 7 bytes, or 2 parts of 1 byte; no client makes 2 parts of
     * 1,000 bytes. */
    assert_int_equal(cf_etag_part_sizes(7, 8, s), 0);
    assert_int_equal(cf_etag_part_sizes(1, 2, s), 0);
    assert_int_equal(cf_etag_part_sizes(1000, 2, s), 0);
}

static cf_etag_verdict match(const char *etag, const unsigned char *p, uint64_t size, uint64_t read,
                             uint64_t *part)
{
    cf_etag_match *m;
    cf_err err;
    assert_int_equal(cf_etag_match_new(etag, size, &m, &err), 0);
    for (uint64_t off = 0; off < read; off += 1000003)
        cf_etag_match_update(m, p + off, read - off < 1000003 ? (size_t)(read - off) : 1000003);
    cf_etag_verdict v = cf_etag_match_final(m, part);
    cf_etag_match_free(m);
    return v;
}

static void test_match_single_put(void **state)
{
    (void)state;
    uint64_t part = 1;
    assert_int_equal(match("\"37b0980a15a90f69cd1db1b9d77637e6\"", data, 1000, 1000, &part), CF_ETAG_MATCH);
    assert_true(part == CF_ETAG_SINGLE);
    assert_int_equal(match("d41d8cd98f00b204e9800998ecf8427e", data, 0, 0, &part), CF_ETAG_MATCH);
    /* One byte changed: a plain MD5 ETag is certain. */
    unsigned char copy[1000];
    memcpy(copy, data, sizeof copy);
    copy[500] ^= 1;
    assert_int_equal(match("\"37b0980a15a90f69cd1db1b9d77637e6\"", copy, 1000, 1000, &part),
                     CF_ETAG_MISMATCH);
    assert_true(part == 0);
    /* Fewer bytes than the size listed, even if they happened to hash right. */
    assert_int_equal(match("\"37b0980a15a90f69cd1db1b9d77637e6\"", data, 1001, 1000, NULL), CF_ETAG_MISMATCH);
}

static void test_match_infers_part_size(void **state)
{
    (void)state;
    uint64_t part = 0;
    /* The ETag boto3 got from a coffer server for 40 MiB in parts of 8 MiB. */
    assert_int_equal(match("\"" BOTO3_40MIB_ETAG "\"", data, 40 * MIB, 40 * MIB, &part), CF_ETAG_MATCH);
    assert_true(part == 8 * MIB);
    assert_int_equal(match("d8f3ba9a62cdabc664d44737a4ee5ea7-8", data, 40 * MIB, 40 * MIB, &part),
                     CF_ETAG_MATCH);
    assert_true(part == 5 * MIB);
    assert_int_equal(match("e5ef8483b6d9c3a231b4a8bb899c2689-1", data, 40 * MIB, 40 * MIB, &part),
                     CF_ETAG_MATCH);
    assert_true(part == CF_ETAG_WHOLE);
    assert_int_equal(match("59adb24ef3cdbe0297f05b395827453f-1", data, 0, 0, &part), CF_ETAG_MATCH);
    /* 10,000 parts of an SDK's even split, no whole number of blocks (4,000 bytes). */
    assert_int_equal(match("7ac0aa5b31d6916534ff1ec832dbf130-10000", data, 39999993, 39999993, &part),
                     CF_ETAG_MATCH);
    assert_true(part == 4000);
    /* An even split into 3 parts is no client's rule: not tried, so not known. */
    assert_int_equal(match("f6d04f53c2373ba48dfce813871b49be-3", data, 17825795, 17825795, &part),
                     CF_ETAG_UNKNOWN);
}

static void test_match_multipart_changed_or_unknown(void **state)
{
    (void)state;
    unsigned char *copy = malloc(40 * MIB);
    assert_non_null(copy);
    memcpy(copy, data, 40 * MIB);
    copy[20 * MIB + 5] ^= 0x80;
    cf_etag_match *m;
    cf_err err;
    assert_int_equal(cf_etag_match_new(BOTO3_40MIB_ETAG, 40 * MIB, &m, &err), 0);
    cf_etag_match_update(m, copy, 40 * MIB);
    /* No part size tried gives it, but another could have been used: not certain alone. */
    assert_int_equal(cf_etag_match_final(m, NULL), CF_ETAG_UNKNOWN);
    /* With the part size another copy matched, it is. */
    assert_int_equal(cf_etag_match_tried(m, 8 * MIB), 0);
    assert_int_equal(cf_etag_match_tried(m, 9 * MIB), 0);
    assert_int_equal(cf_etag_match_tried(m, 7 * MIB), -1);
    cf_etag_match_free(m);
    free(copy);
    /* An ETag of 5 parts of 40 MiB in parts of 8 MiB + 12,345 bytes: a size no client uses. */
    uint64_t odd = 8 * MIB + 12345;
    char etag[CF_ETAG_MAX];
    assert_int_equal(cf_etag_of(data, 40 * MIB, odd, etag, &err), 0);
    assert_string_equal(etag + 32, "-5");
    assert_int_equal(match(etag, data, 40 * MIB, 40 * MIB, NULL), CF_ETAG_UNKNOWN);
    /* 20 parts of 10 bytes cannot be: certain. */
    assert_int_equal(match("97b3402a85263c2b3687d30a8e8c2a43-20", data, 10, 10, NULL), CF_ETAG_MISMATCH);
    /* A multipart ETag whose bytes were cut short. */
    assert_int_equal(match(BOTO3_40MIB_ETAG, data, 40 * MIB, 40 * MIB - 1, NULL), CF_ETAG_MISMATCH);
}

static void test_match_refuses_non_md5_etags(void **state)
{
    (void)state;
    cf_etag_match *m = NULL;
    cf_err err;
    assert_int_equal(cf_etag_match_new("\"2a1f-400-65f0e2c1\"", 1024, &m, &err), CF_EINVAL);
    assert_null(m);
    assert_int_equal(cf_etag_match_new("", 0, &m, &err), CF_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_shot_matches_hashlib),
        cmocka_unit_test(test_all_sizes_in_one_read_any_chunking),
        cmocka_unit_test(test_calc_refuses_bad_counts),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_part_sizes_of_the_usual_clients),
        cmocka_unit_test(test_match_single_put),
        cmocka_unit_test(test_match_infers_part_size),
        cmocka_unit_test(test_match_multipart_changed_or_unknown),
        cmocka_unit_test(test_match_refuses_non_md5_etags),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
