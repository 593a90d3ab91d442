/*
 * test_server_clock.c - the server reads "now" and draws its ids through the clock it is given
 * (cf_server_options.clock): with a clock fixed at 2013-05-24 it accepts the GET Object request
 * that AWS's SigV4 documentation signed that day, and with the system's clock it refuses the
 * same bytes as RequestTimeTooSkewed; a tampered signature is refused either way; the boot id
 * (x-amz-id-2) comes from the clock's randomness.
 */
#include <curl/curl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/fs.h"
#include "server/server.h"
#include "store/store.h"

/* docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "GET Object". */
#define DOC_ACCESS_KEY "AKIAIOSFODNN7EXAMPLE"
#define DOC_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define DOC_SIGNATURE "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
#define DOC_TIME 1369353600 /* 20130524T000000Z */

typedef struct running {
    char dir[64];
    cf_store *store;
    cf_server *srv;
} running;

static void start(running *r, const cf_clock *clock)
{
    snprintf(r->dir, sizeof r->dir, "/tmp/coffer-clock-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    cf_err err = {0};
    if (cf_store_open(r->dir, NULL, &r->store, &err) != 0)
        fail_msg("%s", err.msg);
    cf_server_options o = {.http = {.address = "127.0.0.1:0", .threads = 1, .blocking_threads = 2},
                           .region = "us-east-1",
                           .domain = "s3.amazonaws.com",
                           .clock = clock};
    snprintf(o.root.access_key, sizeof o.root.access_key, DOC_ACCESS_KEY);
    snprintf(o.root.secret_key, sizeof o.root.secret_key, DOC_SECRET);
    if (cf_server_start(r->store, &o, &r->srv, &err) != 0)
        fail_msg("%s", err.msg);
}

static void stop(running *r)
{
    cf_server_stop(r->srv);
    cf_store_close(r->store);
    cf_err err = {0};
    cf_fs_remove_tree(r->dir, &err);
}

static size_t to_buf(char *p, size_t size, size_t n, void *ctx)
{
    return cf_buf_append(ctx, p, size * n) == 0 ? size * n : 0;
}

/* Sends the documented request with signature and returns the status; the response body is
 * appended to body, its header lines to headers. */
static long send_documented_get(const running *r, const char *signature, cf_buf *body, cf_buf *headers)
{
    char url[64], auth[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/test.txt", (unsigned)cf_server_port(r->srv));
    snprintf(auth, sizeof auth,
             "Authorization: AWS4-HMAC-SHA256 Credential=" DOC_ACCESS_KEY
             "/20130524/us-east-1/s3/aws4_request,"
             "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=%s",
             signature);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Host: examplebucket.s3.amazonaws.com");
    h = curl_slist_append(h, "Range: bytes=0-9");
    h = curl_slist_append(
        h, "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    h = curl_slist_append(h, "x-amz-date: 20130524T000000Z");
    h = curl_slist_append(h, auth);
    CURL *e = curl_easy_init();
    assert_non_null(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, to_buf);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, to_buf);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, headers);
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    return status;
}

static void test_fixed_clock_accepts_the_documented_request(void **state)
{
    (void)state;
    cf_fixed_clock fixed;
    cf_fixed_clock_init(&fixed, (int64_t)DOC_TIME * 1000000000 + 120000000000, 2013);
    running r;
    start(&r, &fixed.clock);
    cf_buf body, headers;
    cf_buf_init(&body, 1 << 16);
    cf_buf_init(&headers, 1 << 16);
    /* Signed correctly and on time: authentication passes, and the bucket does not exist. */
    long st = send_documented_get(&r, DOC_SIGNATURE, &body, &headers);
    if (st != 404)
        fail_msg("%ld %s", st, body.data);
    assert_non_null(strstr(body.data, "<Code>NoSuchBucket</Code>"));
    /* The boot id is the clock's first four random bytes. */
    cf_fixed_clock same;
    cf_fixed_clock_init(&same, 0, 2013);
    unsigned char rnd[4];
    assert_int_equal(cf_clock_random(&same.clock, rnd, sizeof rnd), 0);
    char want[32];
    snprintf(want, sizeof want, "x-amz-id-2: %02X%02X%02X%02X", rnd[0], rnd[1], rnd[2], rnd[3]);
    assert_non_null(strstr(headers.data, want));

    cf_buf_reset(&body);
    char tampered[] = DOC_SIGNATURE;
    tampered[0] = tampered[0] == '0' ? '1' : '0';
    assert_int_equal(send_documented_get(&r, tampered, &body, &headers), 403);
    assert_non_null(strstr(body.data, "<Code>SignatureDoesNotMatch</Code>"));

    /* Sixteen minutes later by the same clock, the same bytes are too old. */
    fixed.now_ns += (int64_t)16 * 60 * 1000000000;
    cf_buf_reset(&body);
    assert_int_equal(send_documented_get(&r, DOC_SIGNATURE, &body, &headers), 403);
    assert_non_null(strstr(body.data, "<Code>RequestTimeTooSkewed</Code>"));
    assert_non_null(strstr(body.data, "<ServerTime>2013-05-24T00:18:00Z</ServerTime>"));
    cf_buf_cleanup(&body);
    cf_buf_cleanup(&headers);
    stop(&r);
}

static void test_system_clock_refuses_it_as_skewed(void **state)
{
    (void)state;
    running r;
    start(&r, NULL);
    cf_buf body, headers;
    cf_buf_init(&body, 1 << 16);
    cf_buf_init(&headers, 1 << 16);
    assert_int_equal(send_documented_get(&r, DOC_SIGNATURE, &body, &headers), 403);
    assert_non_null(strstr(body.data, "<Code>RequestTimeTooSkewed</Code>"));
    cf_buf_cleanup(&body);
    cf_buf_cleanup(&headers);
    stop(&r);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_clock_accepts_the_documented_request),
        cmocka_unit_test(test_system_clock_refuses_it_as_skewed),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
