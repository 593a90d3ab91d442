/*
 * test_mounts.c - the S3 server on the HTTP layer beside another front end: a mount given in
 * cf_server_options answers its prefix, and S3, /health and /metrics keep theirs. Driven over
 * loopback with libcurl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "server/server.h"

typedef struct reply {
    long status;
    char body[4096];
    size_t len;
} reply;

static size_t take(char *data, size_t size, size_t nmemb, void *cls)
{
    reply *r = cls;
    size_t n = size * nmemb, room = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, data, n < room ? n : room);
    r->len += n < room ? n : room;
    r->body[r->len] = '\0';
    return n;
}

static reply fetch(cf_server *srv, const char *path)
{
    reply r = {0};
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", cf_server_port(srv), path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, take);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    return r;
}

/* A console-like front end: it answers JSON under its prefix. */
static int console_begin(void *ctx, cf_http_request *hr)
{
    char body[256];
    int n = snprintf(body, sizeof body, "{\"front\":\"%s\",\"path\":\"%s\"}", (const char *)ctx, hr->url);
    cf_http_response *resp = cf_http_body_buffer(body, (size_t)n, 1);
    if (resp)
        cf_http_add_header(resp, "Content-Type", "application/json");
    return cf_http_respond(hr, 200, resp);
}

static const cf_http_handlers console = {.begin = console_begin};

static void test_another_front_end_beside_s3(void **state)
{
    (void)state;
    char dir[] = "/tmp/coffer-test-mounts-XXXXXX";
    assert_non_null(mkdtemp(dir));
    cf_err err;
    cf_store *store;
    assert_int_equal(cf_store_open(dir, NULL, &store, &err), 0);
    const cf_server_mount mounts[] = {{"/console", &console, "console"}};
    cf_server_options o = {.http = {.address = "127.0.0.1:0", .threads = 1, .blocking_threads = 1},
                           .root = {"test-root", "test-secret-key-0123456789"},
                           .mounts = mounts,
                           .nmounts = 1};
    cf_server *srv;
    assert_int_equal(cf_server_start(store, &o, &srv, &err), 0);

    reply r = fetch(srv, "/console/api/tiers");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"front\":\"console\",\"path\":\"/console/api/tiers\"}");
    assert_string_equal(fetch(srv, "/console").body, "{\"front\":\"console\",\"path\":\"/console\"}");
    /* The S3 front keeps the rest: an anonymous request for a bucket named like the mount's
     * prefix, but longer, is S3's (an S3 error document). */
    r = fetch(srv, "/consoles/key");
    assert_true(r.status == 403 || r.status == 404);
    assert_non_null(strstr(r.body, "<Error><Code>"));
    r = fetch(srv, "/health/live");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    r = fetch(srv, "/metrics");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "coffer_http_connections "));

    /* A second mount of a prefix the server already has is refused at start. */
    const cf_server_mount clash[] = {{"/metrics", &console, "clash"}};
    o.mounts = clash;
    cf_server *other = NULL;
    assert_int_equal(cf_server_start(store, &o, &other, &err), CF_EEXISTS);
    assert_null(other);

    cf_server_stop(srv);
    cf_store_close(store);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_another_front_end_beside_s3),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
