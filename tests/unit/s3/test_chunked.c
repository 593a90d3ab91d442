/*
 * test_chunked.c - the aws-chunked decoder.
 *
 * Vectors: the S3 API reference's worked examples, with the example credentials
 * (wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 20130524T000000Z, us-east-1): 66560 bytes of 'a'
 * in chunks of 64 KiB, 1 KiB and 0,
 *  - "Signature Calculations for the Authorization Header: Transferring Payload in Multiple
 *    Chunks" (sigv4-streaming): seed 4f232c43…, chunk signatures ad80c730…, 0055627c…,
 *    b6c6ea8a…;
 *  - "Signature calculations for trailing headers" (sigv4-streaming-trailers): seed 106e2a8a…,
 *    chunk signatures b474d886…, 1c1344b1…, 2ca2aba2…, trailer x-amz-checksum-crc32c:sOO8/Q==
 *    signed d81f82fc….
 * Every other body is built by the encoder below, written from the same documents, and decoded
 * whole, one byte at a time and in odd pieces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "crypto/checksum.h"
#include "crypto/hash.h"
#include "crypto/sigv4.h"
#include "s3/chunked.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define AMZ_DATE "20130524T000000Z"
#define SCOPE "20130524/us-east-1/s3/aws4_request"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#define SEED "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define SIG1 "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
#define SIG2 "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
#define SIG3 "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
#define T_SEED "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
#define T_SIG1 "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2"
#define T_SIG2 "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7"
#define T_SIG3 "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"
#define T_TRAILER_SIG "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
#define EXAMPLE_LEN 66560

static unsigned char signing_key[32];

/* ---- the consumer ---- */

typedef struct sink {
    cf_buf out;
    cf_checksum *crc32c; /* what a server does with the bytes: checksum them as they pass */
    size_t calls;
    int fail_at_call; /* 0: never */
} sink;

static int sink_data(void *ctx, const char *p, size_t n, cf_err *err)
{
    sink *s = ctx;
    assert_true(n > 0);
    if (++s->calls == (size_t)s->fail_at_call)
        return cf_err_set(err, CF_ENOSPACE, "disk full while writing \"k\"");
    cf_checksum_update(s->crc32c, p, n);
    return cf_buf_append(&s->out, p, n);
}

static void sink_init(sink *s)
{
    memset(s, 0, sizeof *s);
    cf_buf_init(&s->out, 1 << 20);
    s->crc32c = cf_checksum_new(CF_CK_CRC32C);
    assert_non_null(s->crc32c);
}

static void sink_cleanup(sink *s)
{
    cf_buf_cleanup(&s->out);
    cf_checksum_free(s->crc32c);
}

static cf_chunked_config config(cf_chunked_mode mode, const char *seed, uint64_t decoded_length,
                                const char *trailer, sink *s)
{
    cf_chunked_config c;
    memset(&c, 0, sizeof c);
    c.mode = mode;
    memcpy(c.signing_key, signing_key, 32);
    c.amz_date = AMZ_DATE;
    c.scope = SCOPE;
    c.seed_signature = seed;
    c.decoded_length = decoded_length;
    c.trailer_name = trailer;
    c.on_data = sink_data;
    c.ctx = s;
    return c;
}

typedef struct result {
    int rc; /* first non-zero of the feeds and finish */
    cf_chunked_error kind;
    cf_err err;
    char trailer[128];
    int has_trailer;
} result;

/* Feeds body in pieces of `step` bytes (0: whole), then finishes. */
static result decode(const cf_chunked_config *cfg, const char *body, size_t len, size_t step)
{
    result r;
    memset(&r, 0, sizeof r);
    cf_chunked *d = NULL;
    assert_int_equal(cf_chunked_new(cfg, &d, &r.err), 0);
    size_t off = 0;
    if (!step)
        step = len ? len : 1;
    while (off < len && !r.rc) {
        size_t n = len - off < step ? len - off : step;
        r.rc = cf_chunked_feed(d, body + off, n, &r.err);
        off += n;
    }
    if (!r.rc)
        r.rc = cf_chunked_finish(d, &r.err);
    r.kind = cf_chunked_failure(d);
    const char *t = cf_chunked_trailer_value(d);
    if (t) {
        r.has_trailer = 1;
        snprintf(r.trailer, sizeof r.trailer, "%s", t);
    }
    if (!r.rc)
        assert_int_equal(r.kind, CF_CHUNKED_OK);
    else
        assert_true(r.err.msg[0] != '\0');
    cf_chunked_free(d);
    return r;
}

/* ---- an encoder, from the AWS documents ---- */

static void sign_hex(const char *sts, char out[65])
{
    cf_sigv4_sign(signing_key, sts, strlen(sts), out);
}

static void chunk_signature(char prev[65], const void *data, size_t n)
{
    unsigned char d[32];
    char hex[65], sts[512];
    cf_sha256(data, n, d);
    cf_hex_encode(d, 32, hex);
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s", AMZ_DATE, SCOPE, prev,
             EMPTY_SHA256, hex);
    sign_hex(sts, prev);
}

/* Appends the encoding of data cut into chunks of `chunk` bytes. trailer_line is "name:value"
 * (NULL: none); the trailer signature covers the canonical form passed as `canonical` (NULL:
 * trailer_line + "\n"). */
static void encode(cf_buf *b, cf_chunked_mode mode, const char *seed, const void *data, size_t n,
                   size_t chunk, const char *trailer_line, const char *canonical)
{
    char prev[65];
    snprintf(prev, sizeof prev, "%s", seed ? seed : "");
    int is_signed = mode != CF_CHUNKED_UNSIGNED_TRAILER;
    const char *p = data;
    for (size_t off = 0;; off += chunk) {
        size_t len = off >= n ? 0 : n - off < chunk ? n - off : chunk;
        if (is_signed) {
            chunk_signature(prev, p + off, len);
            cf_buf_printf(b, "%zx;chunk-signature=%s\r\n", len, prev);
        } else {
            cf_buf_printf(b, "%zx\r\n", len);
        }
        if (!len)
            break;
        cf_buf_append(b, p + off, len);
        cf_buf_puts(b, "\r\n");
    }
    if (mode == CF_CHUNKED_SIGNED) {
        cf_buf_puts(b, "\r\n");
        return;
    }
    if (trailer_line)
        cf_buf_printf(b, "%s\r\n", trailer_line);
    if (mode == CF_CHUNKED_SIGNED_TRAILER) {
        char canon[512], sts[512], hex[65], sig[65];
        unsigned char d[32];
        snprintf(canon, sizeof canon, "%s", canonical ? canonical : "");
        if (!canonical && trailer_line)
            snprintf(canon, sizeof canon, "%s\n", trailer_line);
        cf_sha256(canon, strlen(canon), d);
        cf_hex_encode(d, 32, hex);
        snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256-TRAILER\n%s\n%s\n%s\n%s", AMZ_DATE, SCOPE, prev, hex);
        sign_hex(sts, sig);
        cf_buf_printf(b, "x-amz-trailer-signature:%s\r\n", sig);
    }
    cf_buf_puts(b, "\r\n");
}

static void make_data(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (unsigned char)(seed >> 16);
    }
}

static void aws_example(cf_buf *b, int trailer)
{
    static char a[65536];
    memset(a, 'a', sizeof a);
    cf_buf_init(b, 1 << 20);
    cf_buf_printf(b, "10000;chunk-signature=%s\r\n", trailer ? T_SIG1 : SIG1);
    cf_buf_append(b, a, 65536);
    cf_buf_printf(b, "\r\n400;chunk-signature=%s\r\n", trailer ? T_SIG2 : SIG2);
    cf_buf_append(b, a, 1024);
    cf_buf_printf(b, "\r\n0;chunk-signature=%s\r\n", trailer ? T_SIG3 : SIG3);
    if (trailer)
        cf_buf_puts(b, "x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:" T_TRAILER_SIG "\r\n");
    cf_buf_puts(b, "\r\n");
}

static int all_a(const cf_buf *b, size_t n)
{
    if (b->len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (b->data[i] != 'a')
            return 0;
    return 1;
}

/* ---- the documented examples ---- */

static void test_aws_signed_example_decodes_in_any_pieces(void **state)
{
    (void)state;
    cf_buf body;
    aws_example(&body, 0);
    assert_int_equal(body.len, 66824); /* the Content-Length of the documented request */
    const size_t steps[] = {0, 1, 2, 7, 90, 4096, 65536, 65627};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        sink s;
        sink_init(&s);
        cf_chunked_config c = config(CF_CHUNKED_SIGNED, SEED, EXAMPLE_LEN, NULL, &s);
        result r = decode(&c, body.data, body.len, steps[i]);
        assert_int_equal(r.rc, 0);
        assert_true(all_a(&s.out, EXAMPLE_LEN));
        assert_false(r.has_trailer);
        sink_cleanup(&s);
    }
    cf_buf_cleanup(&body);
}

static void test_aws_signed_example_matches_our_encoder(void **state)
{
    (void)state;
    cf_buf ours, theirs;
    static char a[EXAMPLE_LEN];
    memset(a, 'a', sizeof a);
    cf_buf_init(&ours, 1 << 20);
    encode(&ours, CF_CHUNKED_SIGNED, SEED, a, sizeof a, 65536, NULL, NULL);
    aws_example(&theirs, 0);
    assert_int_equal(ours.len, theirs.len);
    assert_memory_equal(ours.data, theirs.data, ours.len);
    cf_buf_cleanup(&ours);

    cf_buf_init(&ours, 1 << 20);
    encode(&ours, CF_CHUNKED_SIGNED_TRAILER, T_SEED, a, sizeof a, 65536,
           "x-amz-checksum-crc32c:sOO8/Q==", NULL);
    cf_buf_cleanup(&theirs);
    aws_example(&theirs, 1);
    assert_int_equal(ours.len, theirs.len);
    assert_memory_equal(ours.data, theirs.data, ours.len);
    cf_buf_cleanup(&ours);
    cf_buf_cleanup(&theirs);
}

static void test_aws_trailer_example_decodes_and_its_checksum_holds(void **state)
{
    (void)state;
    cf_buf body;
    aws_example(&body, 1);
    const size_t steps[] = {0, 1, 3, 1000};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        sink s;
        sink_init(&s);
        cf_chunked_config c =
            config(CF_CHUNKED_SIGNED_TRAILER, T_SEED, EXAMPLE_LEN, "x-amz-checksum-crc32c", &s);
        result r = decode(&c, body.data, body.len, steps[i]);
        assert_int_equal(r.rc, 0);
        assert_true(all_a(&s.out, EXAMPLE_LEN));
        assert_true(r.has_trailer);
        assert_string_equal(r.trailer, "sOO8/Q==");
        /* What the server does next: compare the trailer with the checksum of what it stored. */
        char b64[CF_CHECKSUM_B64_MAX];
        cf_checksum_final_base64(s.crc32c, b64);
        assert_string_equal(b64, r.trailer);
        sink_cleanup(&s);
    }
    cf_buf_cleanup(&body);
}

static void test_flipped_data_byte_is_a_signature_mismatch(void **state)
{
    (void)state;
    cf_buf body;
    aws_example(&body, 0);
    /* Chunk 1 data starts after its 88-byte header; chunk 2 data after CRLF and an 86-byte one. */
    const size_t at[] = {88, 88 + 30000, 88 + 65535, 88 + 65536 + 2 + 86, 88 + 65536 + 2 + 86 + 1023};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        assert_int_equal(body.data[at[i]], 'a');
        body.data[at[i]] = 'b';
        sink s;
        sink_init(&s);
        cf_chunked_config c = config(CF_CHUNKED_SIGNED, SEED, EXAMPLE_LEN, NULL, &s);
        result r = decode(&c, body.data, body.len, i % 2 ? 1 : 0);
        assert_int_equal(r.rc, CF_EAUTH);
        assert_int_equal(r.kind, CF_CHUNKED_BAD_SIGNATURE);
        assert_int_equal(cf_s3_error_of(&r.err, CF_S3_ON_REQUEST), CF_S3_SignatureDoesNotMatch);
        assert_non_null(strstr(r.err.msg, "signature"));
        body.data[at[i]] = 'a';
        sink_cleanup(&s);
    }
    cf_buf_cleanup(&body);
}

static void test_wrong_chunk_signatures_and_seed_are_refused(void **state)
{
    (void)state;
    const char *sigs[] = {SIG1, SIG2, SIG3};
    for (int which = 0; which < 4; which++) {
        cf_buf body;
        aws_example(&body, 0);
        if (which < 3) {
            char *p = strstr(body.data, sigs[which]);
            assert_non_null(p);
            p[63] = p[63] == '0' ? '1' : '0';
        }
        sink s;
        sink_init(&s);
        /* which == 3: all signatures right, the seed wrong (the trailer example's). */
        cf_chunked_config c = config(CF_CHUNKED_SIGNED, which == 3 ? T_SEED : SEED, EXAMPLE_LEN, NULL, &s);
        result r = decode(&c, body.data, body.len, 0);
        assert_int_equal(r.kind, CF_CHUNKED_BAD_SIGNATURE);
        /* Chunks before the bad one were delivered (unverified bytes: the caller discards them). */
        assert_int_equal(s.out.len, which == 0 || which == 3 ? 65536 : 66560);
        sink_cleanup(&s);
        cf_buf_cleanup(&body);
    }
}

static void test_uppercase_hex_and_spaced_extensions_are_accepted(void **state)
{
    (void)state;
    static char a[65536];
    memset(a, 'a', sizeof a);
    char upper1[65], upper3[65];
    for (int i = 0; i < 65; i++) {
        upper1[i] = (char)(SIG1[i] >= 'a' && SIG1[i] <= 'f' ? SIG1[i] - 32 : SIG1[i]);
        upper3[i] = (char)(SIG3[i] >= 'a' && SIG3[i] <= 'f' ? SIG3[i] - 32 : SIG3[i]);
    }
    cf_buf b;
    cf_buf_init(&b, 1 << 20);
    cf_buf_printf(&b, "0010000 ;chunk-signature=%s;x-ext=1\r\n", upper1);
    cf_buf_append(&b, a, 65536);
    cf_buf_printf(&b, "\r\n400\t; foo ;chunk-signature = %s ; bar=\"q;\\\"x\"\r\n", SIG2);
    cf_buf_append(&b, a, 1024);
    cf_buf_printf(&b, "\r\n0;chunk-signature=%s \r\n\r\n", upper3);
    sink s;
    sink_init(&s);
    cf_chunked_config c = config(CF_CHUNKED_SIGNED, SEED, EXAMPLE_LEN, NULL, &s);
    result r = decode(&c, b.data, b.len, 1);
    assert_int_equal(r.rc, 0);
    assert_true(all_a(&s.out, EXAMPLE_LEN));
    sink_cleanup(&s);
    cf_buf_cleanup(&b);
}

/* ---- truncation ---- */

/* Within 100 bytes of a line end: where cutting matters most. */
static int near_framing(const char *body, size_t len, size_t cut)
{
    size_t from = cut < 100 ? 0 : cut - 100, to = len - cut < 100 ? len : cut + 100;
    return memchr(body + from, '\n', to - from) != NULL || cut < 200 || len - cut < 200;
}

static void check_every_prefix_is_truncated(const cf_chunked_config *tmpl, const char *body, size_t len,
                                            size_t stride)
{
    for (size_t cut = 0; cut < len; cut += near_framing(body, len, cut) ? 1 : stride) {
        sink s;
        sink_init(&s);
        cf_chunked_config c = *tmpl;
        c.ctx = &s;
        /* Whole, in odd pieces, and byte by byte while that stays cheap. */
        result r = decode(&c, body, cut, cut % 3 == 0 ? 0 : cut % 3 == 2 || cut > 2000 ? 4099 : 1);
        if (r.kind != CF_CHUNKED_TRUNCATED)
            fail_msg("cut at %zu of %zu: %s (%s)", cut, len, cf_chunked_error_name(r.kind), r.err.msg);
        assert_int_equal(cf_s3_error_of(&r.err, CF_S3_ON_REQUEST), CF_S3_IncompleteBody);
        assert_false(r.has_trailer);
        sink_cleanup(&s);
    }
}

static void test_every_truncation_fails_at_finish(void **state)
{
    (void)state;
    unsigned char data[300];
    make_data(data, sizeof data, 7);
    const cf_chunked_mode modes[] = {CF_CHUNKED_SIGNED, CF_CHUNKED_UNSIGNED_TRAILER,
                                     CF_CHUNKED_SIGNED_TRAILER};
    for (int m = 0; m < 3; m++) {
        cf_buf b;
        cf_buf_init(&b, 1 << 20);
        encode(&b, modes[m], SEED, data, sizeof data, 128,
               modes[m] == CF_CHUNKED_SIGNED ? NULL : "x-amz-checksum-crc32:AAAAAA==", NULL);
        cf_chunked_config c = config(modes[m], SEED, sizeof data, "x-amz-checksum-crc32", NULL);
        check_every_prefix_is_truncated(&c, b.data, b.len, 1);
        sink s;
        sink_init(&s);
        c.ctx = &s;
        result r = decode(&c, b.data, b.len, 0);
        assert_int_equal(r.rc, 0);
        assert_int_equal(s.out.len, sizeof data);
        assert_memory_equal(s.out.data, data, sizeof data);
        sink_cleanup(&s);
        cf_buf_cleanup(&b);
    }
    cf_buf body;
    aws_example(&body, 1);
    cf_chunked_config c =
        config(CF_CHUNKED_SIGNED_TRAILER, T_SEED, EXAMPLE_LEN, "x-amz-checksum-crc32c", NULL);
    check_every_prefix_is_truncated(&c, body.data, body.len, 997);
    cf_buf_cleanup(&body);
}

static void test_empty_object(void **state)
{
    (void)state;
    const cf_chunked_mode modes[] = {CF_CHUNKED_SIGNED, CF_CHUNKED_UNSIGNED_TRAILER,
                                     CF_CHUNKED_SIGNED_TRAILER};
    for (int m = 0; m < 3; m++) {
        cf_buf b;
        cf_buf_init(&b, 4096);
        encode(&b, modes[m], SEED, "", 0, 10,
               modes[m] == CF_CHUNKED_SIGNED ? NULL : "x-amz-checksum-crc32:AAAAAA==", NULL);
        sink s;
        sink_init(&s);
        cf_chunked_config c = config(modes[m], SEED, 0, "x-amz-checksum-crc32", &s);
        result r = decode(&c, b.data, b.len, 1);
        assert_int_equal(r.rc, 0);
        assert_int_equal(s.out.len, 0);
        assert_int_equal(s.calls, 0);
        if (modes[m] != CF_CHUNKED_SIGNED)
            assert_string_equal(r.trailer, "AAAAAA==");
        sink_cleanup(&s);
        cf_buf_cleanup(&b);
    }
    /* An empty body is not an empty object: it lacks the final chunk. */
    sink s;
    sink_init(&s);
    cf_chunked_config c = config(CF_CHUNKED_UNSIGNED_TRAILER, NULL, 0, NULL, &s);
    result r = decode(&c, "", 0, 0);
    assert_int_equal(r.kind, CF_CHUNKED_TRUNCATED);
    sink_cleanup(&s);
}

/* ---- trailers ---- */

static result decode_unsigned(const char *body, const char *trailer, uint64_t len, sink *s)
{
    sink_init(s);
    cf_chunked_config c = config(CF_CHUNKED_UNSIGNED_TRAILER, NULL, len, trailer, s);
    return decode(&c, body, strlen(body), 1);
}

static void test_unsigned_trailer_mode(void **state)
{
    (void)state;
    sink s;
    /* As aws-cli / boto3 send it. */
    result r = decode_unsigned("5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
                               "x-amz-checksum-crc32", 11, &s);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.trailer, "DUoRhQ==");
    assert_int_equal(s.out.len, 11);
    assert_memory_equal(s.out.data, "hello world", 11);
    char b64[CF_CHECKSUM_B64_MAX];
    unsigned char raw[4];
    cf_checksum_compute(CF_CK_CRC32, s.out.data, s.out.len, raw);
    cf_base64_encode(raw, 4, b64);
    assert_string_equal(b64, r.trailer);
    sink_cleanup(&s);

    /* Case of the name, whitespace around the value, declared name padded and uppercase. */
    r = decode_unsigned("3\r\nabc\r\n0\r\nX-Amz-Checksum-CRC32C :  NSRBwg== \t\r\n\r\n",
                        " x-amz-checksum-crc32c ", 3, &s);
    assert_int_equal(r.kind, CF_CHUNKED_MALFORMED); /* no space before the colon (RFC 9112) */
    sink_cleanup(&s);
    r = decode_unsigned("3\r\nabc\r\n0\r\nX-Amz-Checksum-CRC32C:  NSRBwg== \t\r\n\r\n",
                        " X-AMZ-checksum-crc32c ", 3, &s);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.trailer, "NSRBwg==");
    sink_cleanup(&s);

    /* Uppercase hex sizes. */
    r = decode_unsigned("A\r\n0123456789\r\n0\r\n\r\n", NULL, 10, &s);
    assert_int_equal(r.rc, 0);
    assert_int_equal(s.out.len, 10);
    sink_cleanup(&s);
    /* Messages quote at most 48 bytes of what was sent. */
    r = decode_unsigned("3 junk junk junk junk junk junk junk junk junk junk junk junk\r\n", NULL, 3, &s);
    assert_int_equal(r.kind, CF_CHUNKED_MALFORMED);
    if (!strstr(r.err.msg, "...\""))
        fail_msg("%s", r.err.msg);
    sink_cleanup(&s);

    /* No trailer declared, none sent; and unknown length. */
    r = decode_unsigned("3\r\nabc\r\n0\r\n\r\n", NULL, CF_CHUNKED_LENGTH_UNKNOWN, &s);
    assert_int_equal(r.rc, 0);
    assert_false(r.has_trailer);
    sink_cleanup(&s);

    /* Missing. */
    r = decode_unsigned("3\r\nabc\r\n0\r\n\r\n", "x-amz-checksum-crc32", 3, &s);
    assert_int_equal(r.kind, CF_CHUNKED_TRAILER_MISSING);
    assert_int_equal(cf_s3_error_of(&r.err, CF_S3_ON_REQUEST), CF_S3_InvalidRequest);
    sink_cleanup(&s);
    /* Another one than declared. */
    r = decode_unsigned("3\r\nabc\r\n0\r\nx-amz-checksum-sha1:qZk+NkcGgWq6PiVxeFDCbJzQ2J0=\r\n\r\n",
                        "x-amz-checksum-crc32", 3, &s);
    assert_int_equal(r.kind, CF_CHUNKED_TRAILER_UNEXPECTED);
    sink_cleanup(&s);
    /* Twice. */
    r = decode_unsigned(
        "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n",
        "x-amz-checksum-crc32", 3, &s);
    assert_int_equal(r.kind, CF_CHUNKED_TRAILER_UNEXPECTED);
    sink_cleanup(&s);
    /* Sent without being declared. */
    r = decode_unsigned("3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n", NULL, 3, &s);
    assert_int_equal(r.kind, CF_CHUNKED_TRAILER_UNEXPECTED);
    sink_cleanup(&s);
    /* A trailer signature has no place in an unsigned body. */
    r = decode_unsigned(
        "3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\nx-amz-trailer-signature:" T_TRAILER_SIG "\r\n\r\n",
        "x-amz-checksum-crc32", 3, &s);
    assert_int_equal(r.kind, CF_CHUNKED_TRAILER_UNEXPECTED);
    sink_cleanup(&s);
    /* Malformed lines. */
    r = decode_unsigned("3\r\nabc\r\n0\r\nx-amz-checksum-crc32\r\n\r\n", "x-amz-checksum-crc32", 3, &s);
    assert_int_equal(r.kind, CF_CHUNKED_MALFORMED);
    sink_cleanup(&s);
    r = decode_unsigned("3\r\nabc\r\n0\r\n:x\r\n\r\n", "x-amz-checksum-crc32", 3, &s);
    assert_int_equal(r.kind, CF_CHUNKED_MALFORMED);
    sink_cleanup(&s);
    r = decode_unsigned("3\r\nabc\r\n0\r\nx-amz-checksum-crc32:a\x01z\r\n\r\n", "x-amz-checksum-crc32", 3,
                        &s);
    assert_int_equal(r.kind, CF_CHUNKED_MALFORMED);
    sink_cleanup(&s);
    /* The trailer is not what ends the body: the empty line is. */
    r = decode_unsigned("3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n", "x-amz-checksum-crc32", 3, &s);
    assert_int_equal(r.kind, CF_CHUNKED_TRUNCATED);
    assert_false(r.has_trailer); /* not before finish succeeded */
    sink_cleanup(&s);
}

static void test_signed_trailer_mode(void **state)
{
    (void)state;
    unsigned char data[1000];
    make_data(data, sizeof data, 3);
    struct {
        const char *line, *canonical, *declared;
        cf_chunked_error want;
    } cases[] = {
        {"x-amz-checksum-sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", NULL, "x-amz-checksum-sha256",
         CF_CHUNKED_OK},
        /* The signature covers the canonical form: lowercase name, trimmed value. */
        {"X-Amz-Checksum-Crc32: AAAAAA==  ", "x-amz-checksum-crc32:AAAAAA==\n", "x-amz-checksum-crc32",
         CF_CHUNKED_OK},
        /* A value other than the signed one. */
        {"x-amz-checksum-crc32:AAAAAB==", "x-amz-checksum-crc32:AAAAAA==\n", "x-amz-checksum-crc32",
         CF_CHUNKED_BAD_SIGNATURE},
        /* The signer saw the name as sent, not canonicalised. */
        {"X-Amz-Checksum-Crc32:AAAAAA==", "X-Amz-Checksum-Crc32:AAAAAA==\n", "x-amz-checksum-crc32",
         CF_CHUNKED_BAD_SIGNATURE},
        {NULL, "", "x-amz-checksum-crc32", CF_CHUNKED_TRAILER_MISSING},
        {NULL, "", NULL, CF_CHUNKED_OK},
        {"x-amz-checksum-crc32:AAAAAA==", NULL, "x-amz-checksum-crc32c", CF_CHUNKED_TRAILER_UNEXPECTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cf_buf b;
        cf_buf_init(&b, 1 << 16);
        encode(&b, CF_CHUNKED_SIGNED_TRAILER, SEED, data, sizeof data, 333, cases[i].line,
               cases[i].canonical);
        sink s;
        sink_init(&s);
        cf_chunked_config c = config(CF_CHUNKED_SIGNED_TRAILER, SEED, sizeof data, cases[i].declared, &s);
        result r = decode(&c, b.data, b.len, i % 2 ? 1 : 0);
        if (r.kind != cases[i].want)
            fail_msg("case %zu: %s (%s)", i, cf_chunked_error_name(r.kind), r.err.msg);
        if (cases[i].want == CF_CHUNKED_OK)
            assert_int_equal(r.has_trailer, cases[i].line != NULL);
        sink_cleanup(&s);
        cf_buf_cleanup(&b);
    }

    /* Framing around the trailer signature. */
    cf_buf body;
    aws_example(&body, 1);
    char *sig = strstr(body.data, "x-amz-trailer-signature:");
    assert_non_null(sig);
    const char *variants[] = {
        "",                                                       /* no signature at all */
        "x-amz-trailer-signature:" T_TRAILER_SIG "\r\nx-a:b\r\n", /* a trailer after it */
        "x-amz-trailer-signature:" T_TRAILER_SIG "x\r\n",         /* 65 digits */
        "x-amz-trailer-signature:" T_TRAILER_SIG "\r\n\r\nextra", /* bytes after the end */
    };
    const cf_chunked_error want[] = {CF_CHUNKED_BAD_SIGNATURE, CF_CHUNKED_MALFORMED, CF_CHUNKED_BAD_SIGNATURE,
                                     CF_CHUNKED_MALFORMED};
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        cf_buf v;
        cf_buf_init(&v, 1 << 20);
        cf_buf_append(&v, body.data, (size_t)(sig - body.data));
        cf_buf_puts(&v, variants[i]);
        if (i < 3)
            cf_buf_puts(&v, "\r\n");
        sink s;
        sink_init(&s);
        cf_chunked_config c =
            config(CF_CHUNKED_SIGNED_TRAILER, T_SEED, EXAMPLE_LEN, "x-amz-checksum-crc32c", &s);
        result r = decode(&c, v.data, v.len, 0);
        if (r.kind != want[i])
            fail_msg("variant %zu: %s (%s)", i, cf_chunked_error_name(r.kind), r.err.msg);
        sink_cleanup(&s);
        cf_buf_cleanup(&v);
    }
    cf_buf_cleanup(&body);
}

static void test_signed_mode_refuses_a_trailer(void **state)
{
    (void)state;
    cf_buf body;
    aws_example(&body, 0);
    body.len -= 2; /* drop the final empty line */
    cf_buf_puts(&body, "x-amz-checksum-crc32c:sOO8/Q==\r\n\r\n");
    sink s;
    sink_init(&s);
    cf_chunked_config c = config(CF_CHUNKED_SIGNED, SEED, EXAMPLE_LEN, "x-amz-checksum-crc32c", &s);
    result r = decode(&c, body.data, body.len, 0);
    assert_int_equal(r.kind, CF_CHUNKED_TRAILER_UNEXPECTED);
    sink_cleanup(&s);
    cf_buf_cleanup(&body);
}

/* ---- lengths ---- */

static void test_decoded_length_must_match(void **state)
{
    (void)state;
    unsigned char data[500];
    make_data(data, sizeof data, 11);
    cf_buf b;
    cf_buf_init(&b, 1 << 16);
    encode(&b, CF_CHUNKED_SIGNED, SEED, data, sizeof data, 200, NULL, NULL);
    const uint64_t declared[] = {0, 199, 200, 201, 499, 501, 1000000};
    for (size_t i = 0; i < sizeof declared / sizeof declared[0]; i++) {
        sink s;
        sink_init(&s);
        cf_chunked_config c = config(CF_CHUNKED_SIGNED, SEED, declared[i], NULL, &s);
        result r = decode(&c, b.data, b.len, i % 2 ? 1 : 0);
        assert_int_equal(r.kind, CF_CHUNKED_LENGTH_MISMATCH);
        assert_int_equal(r.rc, CF_EINVAL);
        assert_int_equal(cf_s3_error_of(&r.err, CF_S3_ON_REQUEST), CF_S3_IncompleteBody);
        /* Never more than declared reaches the consumer. */
        assert_true(s.out.len <= declared[i]);
        sink_cleanup(&s);
    }
    sink s;
    sink_init(&s);
    cf_chunked_config c = config(CF_CHUNKED_SIGNED, SEED, CF_CHUNKED_LENGTH_UNKNOWN, NULL, &s);
    result r = decode(&c, b.data, b.len, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(s.out.len, sizeof data);
    sink_cleanup(&s);
    cf_buf_cleanup(&b);
}

/* ---- framing ---- */

static void test_malformed_framing(void **state)
{
    (void)state;
    struct {
        const char *body;
        cf_chunked_error want;
    } cases[] = {
        {"3\nabc\r\n0\r\n\r\n", CF_CHUNKED_MALFORMED},    /* bare LF */
        {"3\r\nabc0\r\n\r\n", CF_CHUNKED_MALFORMED},      /* no CRLF after data */
        {"3\r\nabc\r0\r\n\r\n", CF_CHUNKED_MALFORMED},    /* CR without LF */
        {"3\r\nabcd\r\n0\r\n\r\n", CF_CHUNKED_MALFORMED}, /* longer than said */
        {"zz\r\nabc\r\n0\r\n\r\n", CF_CHUNKED_MALFORMED}, /* not hex */
        {"\r\nabc\r\n0\r\n\r\n", CF_CHUNKED_MALFORMED},   /* no size */
        {"-3\r\nabc\r\n0\r\n\r\n", CF_CHUNKED_MALFORMED},
        {"0x3\r\nabc\r\n0\r\n\r\n", CF_CHUNKED_MALFORMED},
        {" 3\r\nabc\r\n0\r\n\r\n", CF_CHUNKED_MALFORMED},
        {"3;\r\nabc\r\n0\r\n\r\n", CF_CHUNKED_MALFORMED}, /* empty extension */
        {"3;a=\r\nabc\r\n0\r\n\r\n", CF_CHUNKED_MALFORMED},
        {"3;a=\"x\r\nabc\r\n0\r\n\r\n", CF_CHUNKED_MALFORMED}, /* unterminated quote */
        {"3;a=b c\r\nabc\r\n0\r\n\r\n", CF_CHUNKED_MALFORMED},
        {"3\r\r\nabc\r\n0\r\n\r\n", CF_CHUNKED_MALFORMED}, /* stray CR */
        {"3\r\nabc\r\n0\r\n\r\nx", CF_CHUNKED_MALFORMED},  /* after the end */
        {"3\r\nabc\r\n0\r\n\r\n\r\n", CF_CHUNKED_MALFORMED},
        {"3\r\nabc\r\n0\r\nxyz\r\n", CF_CHUNKED_MALFORMED},                /* trailer without colon */
        {"10000000000000000\r\n", CF_CHUNKED_MALFORMED},                   /* 2^64 */
        {"ffffffffffffffff\r\n", CF_CHUNKED_LENGTH_MISMATCH},              /* over any declared length */
        {"00000000000000000000000003\r\nabc\r\n0\r\n\r\n", CF_CHUNKED_OK}, /* leading zeros are fine */
        {"3;a;b=c;d=\"e f\"\r\nabc\r\n0;z\r\n\r\n", CF_CHUNKED_OK},
        {"3;chunk-signature=zz\r\nabc\r\n0\r\n\r\n", CF_CHUNKED_OK}, /* ignored when unsigned */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t step = 0; step < 2; step++) {
            sink s;
            sink_init(&s);
            cf_chunked_config c = config(CF_CHUNKED_UNSIGNED_TRAILER, NULL, 3, NULL, &s);
            result r = decode(&c, cases[i].body, strlen(cases[i].body), step);
            if (r.kind != cases[i].want)
                fail_msg("case %zu \"%s\": %s (%s)", i, cases[i].body, cf_chunked_error_name(r.kind),
                         r.err.msg);
            sink_cleanup(&s);
        }
    }
}

static void test_signed_chunk_header_rules(void **state)
{
    (void)state;
    char body[512];
    struct {
        const char *tmpl; /* '@' stands for the signature, '\b' deletes the character before */
        cf_chunked_error want;
    } cases[] = {
        {"0\r\n\r\n", CF_CHUNKED_BAD_SIGNATURE},                                 /* none */
        {"0;chunk-signature=@;chunk-signature=@\r\n\r\n", CF_CHUNKED_MALFORMED}, /* twice */
        {"0;chunk-signature=@\b\r\n\r\n", CF_CHUNKED_MALFORMED},                 /* 63 digits */
        {"0;chunk-signature=@x\r\n\r\n", CF_CHUNKED_MALFORMED},
        {"0;Chunk-Signature=@\r\n\r\n", CF_CHUNKED_OK},
        {"0;chunk-signature=@\r\n", CF_CHUNKED_TRUNCATED}, /* the final empty line is required */
    };
    char sig[65] = SEED;
    chunk_signature(sig, "", 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        for (const char *t = cases[i].tmpl; *t; t++) {
            if (*t == '@') {
                memcpy(body + n, sig, 64);
                n += 64;
            } else if (*t == '\b') {
                n--;
            } else {
                body[n++] = *t;
            }
        }
        body[n] = '\0';
        sink s;
        sink_init(&s);
        cf_chunked_config c = config(CF_CHUNKED_SIGNED, SEED, 0, NULL, &s);
        result r = decode(&c, body, strlen(body), 1);
        if (r.kind != cases[i].want)
            fail_msg("case %zu \"%s\": %s (%s)", i, body, cf_chunked_error_name(r.kind), r.err.msg);
        sink_cleanup(&s);
    }
}

static void test_line_length_limit(void **state)
{
    (void)state;
    /* A chunk header of exactly CF_CHUNKED_MAX_LINE bytes with its CRLF passes, one more fails. */
    for (int extra = 0; extra < 2; extra++) {
        cf_buf b;
        cf_buf_init(&b, 1 << 16);
        cf_buf_puts(&b, "3;x=");
        while (b.len < CF_CHUNKED_MAX_LINE - 2 + (size_t)extra)
            cf_buf_putc(&b, 'y');
        cf_buf_puts(&b, "\r\nabc\r\n0\r\n\r\n");
        for (size_t step = 0; step < 2; step++) {
            sink s;
            sink_init(&s);
            cf_chunked_config c = config(CF_CHUNKED_UNSIGNED_TRAILER, NULL, 3, NULL, &s);
            result r = decode(&c, b.data, b.len, step);
            assert_int_equal(r.kind, extra ? CF_CHUNKED_LINE_TOO_LONG : CF_CHUNKED_OK);
            if (extra) {
                assert_int_equal(r.rc, CF_ETOOBIG);
                assert_int_equal(cf_s3_error_of(&r.err, CF_S3_ON_REQUEST), CF_S3_InvalidRequest);
            }
            sink_cleanup(&s);
        }
        cf_buf_cleanup(&b);
    }
    /* An endless line fails once it passes the limit, without waiting for a newline. */
    static char junk[100000];
    memset(junk, '0', sizeof junk);
    sink s;
    sink_init(&s);
    cf_chunked_config c = config(CF_CHUNKED_UNSIGNED_TRAILER, NULL, 3, NULL, &s);
    cf_chunked *d;
    assert_int_equal(cf_chunked_new(&c, &d, NULL), 0);
    size_t off = 0;
    int rc = 0;
    while (!rc && off < sizeof junk)
        rc = cf_chunked_feed(d, junk + off++, 1, NULL);
    assert_int_equal(rc, CF_ETOOBIG);
    assert_int_equal(off, CF_CHUNKED_MAX_LINE);
    cf_chunked_free(d);
    sink_cleanup(&s);
    /* Trailer lines too. */
    cf_buf b;
    cf_buf_init(&b, 1 << 16);
    cf_buf_puts(&b, "0\r\nx-amz-checksum-crc32:");
    while (b.len < 5000)
        cf_buf_putc(&b, 'A');
    cf_buf_puts(&b, "\r\n\r\n");
    sink_init(&s);
    c = config(CF_CHUNKED_UNSIGNED_TRAILER, NULL, 0, "x-amz-checksum-crc32", &s);
    result r = decode(&c, b.data, b.len, 0);
    assert_int_equal(r.kind, CF_CHUNKED_LINE_TOO_LONG);
    sink_cleanup(&s);
    cf_buf_cleanup(&b);
}

/* ---- consumer, life cycle ---- */

static void test_consumer_failure_stops_and_sticks(void **state)
{
    (void)state;
    unsigned char data[1000];
    make_data(data, sizeof data, 5);
    cf_buf b;
    cf_buf_init(&b, 1 << 16);
    encode(&b, CF_CHUNKED_SIGNED, SEED, data, sizeof data, 100, NULL, NULL);
    sink s;
    sink_init(&s);
    s.fail_at_call = 3;
    cf_chunked_config c = config(CF_CHUNKED_SIGNED, SEED, sizeof data, NULL, &s);
    cf_chunked *d;
    cf_err err;
    assert_int_equal(cf_chunked_new(&c, &d, &err), 0);
    assert_int_equal(cf_chunked_feed(d, b.data, b.len, &err), CF_ENOSPACE);
    assert_string_equal(err.msg, "disk full while writing \"k\"");
    assert_int_equal(cf_chunked_failure(d), CF_CHUNKED_CONSUMER);
    /* No S3 error of the decoder's own: the table's for the consumer's code. */
    assert_int_equal(cf_s3_error_of(&err, CF_S3_ON_REQUEST), CF_S3_ServiceUnavailable);
    assert_int_equal(cf_chunked_decoded(d), 200);
    size_t calls = s.calls;
    /* Final: the same answer, no more data delivered. */
    cf_err err2;
    assert_int_equal(cf_chunked_feed(d, "x", 1, &err2), CF_ENOSPACE);
    assert_string_equal(err2.msg, err.msg);
    assert_int_equal(cf_chunked_finish(d, NULL), CF_ENOSPACE);
    assert_int_equal(s.calls, calls);
    assert_null(cf_chunked_trailer_value(d));
    cf_chunked_free(d);
    sink_cleanup(&s);
    cf_buf_cleanup(&b);
}

static int rude_sink(void *ctx, const char *p, size_t n, cf_err *err)
{
    (void)ctx, (void)p, (void)n, (void)err;
    return 1; /* not a CF_E code, no message */
}

static void test_consumer_with_no_message(void **state)
{
    (void)state;
    cf_chunked_config c = config(CF_CHUNKED_UNSIGNED_TRAILER, NULL, 3, NULL, NULL);
    c.on_data = rude_sink;
    result r = decode(&c, "3\r\nabc\r\n0\r\n\r\n", 15, 0);
    assert_int_equal(r.rc, CF_EINTERNAL);
    assert_int_equal(r.kind, CF_CHUNKED_CONSUMER);
    assert_string_equal(r.err.msg, cf_strerror(CF_EINTERNAL));
}

static void test_configuration_is_checked(void **state)
{
    (void)state;
    sink s;
    sink_init(&s);
    cf_chunked *d = (cf_chunked *)&s;
    cf_err err;
    cf_chunked_config c = config(CF_CHUNKED_SIGNED, "abc", 0, NULL, &s);
    assert_int_equal(cf_chunked_new(&c, &d, &err), CF_EINVAL);
    assert_null(d);
    c = config(CF_CHUNKED_SIGNED, NULL, 0, NULL, &s);
    assert_int_equal(cf_chunked_new(&c, &d, &err), CF_EINVAL);
    c = config(CF_CHUNKED_SIGNED, SEED, 0, NULL, &s);
    c.scope = "a\nb";
    assert_int_equal(cf_chunked_new(&c, &d, &err), CF_EINVAL);
    c.scope = SCOPE;
    c.amz_date = "";
    assert_int_equal(cf_chunked_new(&c, &d, &err), CF_EINVAL);
    c = config(CF_CHUNKED_UNSIGNED_TRAILER, NULL, 0, "x-amz-checksum-crc32,x-amz-checksum-sha1", &s);
    assert_int_equal(cf_chunked_new(&c, &d, &err), CF_EINVAL);
    c.trailer_name = "x-amz-trailer-signature";
    assert_int_equal(cf_chunked_new(&c, &d, &err), CF_EINVAL);
    c.trailer_name = "  ";
    assert_int_equal(cf_chunked_new(&c, &d, &err), CF_EINVAL);
    c.trailer_name = "x-amz-checksum-crc32";
    c.on_data = NULL;
    assert_int_equal(cf_chunked_new(&c, &d, &err), CF_EINVAL);
    c = config((cf_chunked_mode)7, NULL, 0, NULL, &s);
    assert_int_equal(cf_chunked_new(&c, &d, &err), CF_EINVAL);
    /* Unsigned needs no key material; an uppercase seed is fine. */
    c = config(CF_CHUNKED_UNSIGNED_TRAILER, NULL, 0, NULL, &s);
    c.amz_date = c.scope = NULL;
    assert_int_equal(cf_chunked_new(&c, &d, &err), 0);
    cf_chunked_free(d);
    c = config(CF_CHUNKED_SIGNED, "4F232C4386841EF735655705268965C44A0E4690BAA4ADEA153F7DB9FA80A0A9", 0, NULL,
               &s);
    assert_int_equal(cf_chunked_new(&c, &d, &err), 0);
    cf_chunked_free(d);
    cf_chunked_free(NULL);
    sink_cleanup(&s);
}

static void test_modes_and_error_names(void **state)
{
    (void)state;
    cf_chunked_mode m;
    assert_int_equal(cf_chunked_mode_from_payload("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", &m), 0);
    assert_int_equal(m, CF_CHUNKED_SIGNED);
    assert_int_equal(cf_chunked_mode_from_payload("STREAMING-UNSIGNED-PAYLOAD-TRAILER", &m), 0);
    assert_int_equal(m, CF_CHUNKED_UNSIGNED_TRAILER);
    assert_int_equal(cf_chunked_mode_from_payload("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", &m), 0);
    assert_int_equal(m, CF_CHUNKED_SIGNED_TRAILER);
    assert_int_equal(cf_chunked_mode_from_payload("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", &m),
                     CF_ENOTSUP);
    assert_int_equal(cf_chunked_mode_from_payload("UNSIGNED-PAYLOAD", &m), CF_EINVAL);
    assert_int_equal(cf_chunked_mode_from_payload(EMPTY_SHA256, &m), CF_EINVAL);
    assert_int_equal(cf_chunked_mode_from_payload(NULL, &m), CF_EINVAL);
    assert_string_equal(cf_chunked_error_name(CF_CHUNKED_BAD_SIGNATURE), "bad_signature");
    assert_string_equal(cf_chunked_error_name(CF_CHUNKED_TRAILER_MISSING), "trailer_missing");
    assert_string_equal(cf_chunked_error_name((cf_chunked_error)99), "unknown");
}

static int setup(void **state)
{
    (void)state;
    cf_sigv4_signing_key(SECRET, "20130524", "us-east-1", "s3", signing_key);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_signed_example_decodes_in_any_pieces),
        cmocka_unit_test(test_aws_signed_example_matches_our_encoder),
        cmocka_unit_test(test_aws_trailer_example_decodes_and_its_checksum_holds),
        cmocka_unit_test(test_flipped_data_byte_is_a_signature_mismatch),
        cmocka_unit_test(test_wrong_chunk_signatures_and_seed_are_refused),
        cmocka_unit_test(test_uppercase_hex_and_spaced_extensions_are_accepted),
        cmocka_unit_test(test_every_truncation_fails_at_finish),
        cmocka_unit_test(test_empty_object),
        cmocka_unit_test(test_unsigned_trailer_mode),
        cmocka_unit_test(test_signed_trailer_mode),
        cmocka_unit_test(test_signed_mode_refuses_a_trailer),
        cmocka_unit_test(test_decoded_length_must_match),
        cmocka_unit_test(test_malformed_framing),
        cmocka_unit_test(test_signed_chunk_header_rules),
        cmocka_unit_test(test_line_length_limit),
        cmocka_unit_test(test_consumer_failure_stops_and_sticks),
        cmocka_unit_test(test_consumer_with_no_message),
        cmocka_unit_test(test_configuration_is_checked),
        cmocka_unit_test(test_modes_and_error_names),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
