/*
 * test_keepalive.c - an answer a mount gives from begin keeps the connection open for the next
 * request when no body follows the head (libmicrohttpd would close it), and still goes out at
 * once, closing the connection, when a body follows that nobody will read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "http/http.h"

static int answer_begin(void *ctx, cf_http_request *hr)
{
    (void)ctx;
    return cf_http_respond(hr, 200, cf_http_body_buffer("early", 5, 1));
}

static const cf_http_handlers answer_handlers = {.begin = answer_begin};

static size_t take(char *data, size_t size, size_t nmemb, void *cls)
{
    size_t *got = cls;
    (void)data;
    *got += size * nmemb;
    return size * nmemb;
}

/* One request on the easy handle (which keeps its connection between requests): the number of
 * new connections it opened, and the bytes received. */
static long request(CURL *c, const char *url, const char *body, size_t *got)
{
    *got = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, take);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, got);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long code = 0, connects = -1;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    assert_int_equal(code, 200);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    return connects;
}

static void test_early_answers_keep_the_connection(void **state)
{
    (void)state;
    cf_http *h;
    cf_err err;
    cf_http_options o = {.address = "127.0.0.1:0", .threads = 1, .blocking_threads = 1};
    assert_int_equal(cf_http_new(&o, &h, &err), 0);
    assert_int_equal(cf_http_mount(h, "/", &answer_handlers, NULL, &err), 0);
    assert_int_equal(cf_http_start(h, &err), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", (unsigned)cf_http_port(h));

    CURL *c = curl_easy_init();
    assert_non_null(c);
    size_t got;
    assert_int_equal(request(c, url, NULL, &got), 1);
    assert_int_equal(got, 5);
    /* No body: the second GET and a bodyless POST reuse the first connection. */
    assert_int_equal(request(c, url, NULL, &got), 0);
    assert_int_equal(got, 5);
    assert_int_equal(request(c, url, "", &got), 0);
    /* A body nobody reads: answered at once, and the connection is not reused after it. */
    assert_int_equal(request(c, url, "a body the mount never reads", &got), 0);
    assert_int_equal(got, 5);
    assert_int_equal(request(c, url, NULL, &got), 1);
    curl_easy_cleanup(c);
    cf_http_stop(h);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_early_answers_keep_the_connection),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
