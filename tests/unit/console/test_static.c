/*
 * test_static.c - the embedded page served over the HTTP layer (console/static.h), driven over
 * loopback with libcurl: GET and HEAD with the asset, its ETag and the security headers; 304 for
 * a matching If-None-Match; long caching only for the URL index.html links; 404 and 405 as JSON
 * errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "console/assets.h"
#include "console/static.h"

typedef struct reply {
    long status;
    char headers[8192];
    size_t hlen;
    char *body;
    size_t len;
} reply;

static size_t take_body(char *data, size_t size, size_t nmemb, void *cls)
{
    reply *r = cls;
    size_t n = size * nmemb;
    r->body = realloc(r->body, r->len + n + 1);
    assert_non_null(r->body);
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t take_header(char *data, size_t size, size_t nmemb, void *cls)
{
    reply *r = cls;
    size_t n = size * nmemb, room = sizeof r->headers - 1 - r->hlen;
    memcpy(r->headers + r->hlen, data, n < room ? n : room);
    r->hlen += n < room ? n : room;
    r->headers[r->hlen] = '\0';
    return n;
}

/* The value of a response header (case-insensitive name), copied into out; NULL when absent. */
static const char *header(const reply *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *line = r->headers; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r\n");
            snprintf(out, n, "%.*s", (int)len, v);
            return out;
        }
    }
    return NULL;
}

static int serve(void *ctx, cf_http_request *hr)
{
    return cf_console_static_respond(hr);
}

/* The way the console's own mount calls it: the answer built, a header of its own added (here,
 * what the access log would be told), then queued. */
static int serve_logged(void *ctx, cf_http_request *hr)
{
    int status;
    uint64_t bytes;
    cf_http_response *resp = cf_console_static_response(hr, &status, &bytes);
    if (!resp)
        return 0;
    char text[64];
    snprintf(text, sizeof text, "%d %llu", status, (unsigned long long)bytes);
    cf_http_add_header(resp, "X-Logged", text);
    return cf_http_respond(hr, status, resp);
}

static const cf_http_handlers static_handlers = {.begin = serve};
static const cf_http_handlers logged_handlers = {.begin = serve_logged};

static cf_http *start(void)
{
    cf_http_options o = {.address = "127.0.0.1:0", .threads = 1, .blocking_threads = 1};
    cf_http *h;
    cf_err err;
    assert_int_equal(cf_http_new(&o, &h, &err), 0);
    assert_int_equal(cf_http_mount(h, "/", &static_handlers, NULL, &err), 0);
    assert_int_equal(cf_http_mount(h, "/logged", &logged_handlers, NULL, &err), 0);
    assert_int_equal(cf_http_start(h, &err), 0);
    return h;
}

static reply fetch(cf_http *h, const char *method, const char *path, const char *extra_header)
{
    reply r = {0};
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", cf_http_port(h), path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, take_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, take_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    struct curl_slist *list = extra_header ? curl_slist_append(NULL, extra_header) : NULL;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
    return r;
}

static void check_security_headers(const reply *r)
{
    char v[256];
    assert_non_null(header(r, "Content-Security-Policy", v, sizeof v));
    assert_string_equal(v, "default-src 'self'; frame-ancestors 'none'");
    assert_string_equal(header(r, "X-Content-Type-Options", v, sizeof v), "nosniff");
    assert_string_equal(header(r, "Referrer-Policy", v, sizeof v), "no-referrer");
    assert_string_equal(header(r, "X-Frame-Options", v, sizeof v), "DENY");
}

static void test_get_serves_the_asset(void **state)
{
    (void)state;
    cf_http *h = start();
    const cf_asset *index = cf_asset_find("/index.html");
    reply r = fetch(h, "GET", "/", NULL);
    char v[256];
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, index->len);
    assert_memory_equal(r.body, index->data, index->len);
    assert_string_equal(header(&r, "Content-Type", v, sizeof v), "text/html; charset=utf-8");
    assert_string_equal(header(&r, "ETag", v, sizeof v), index->etag);
    assert_string_equal(header(&r, "Cache-Control", v, sizeof v), "no-cache");
    check_security_headers(&r);
    free(r.body);

    const cf_asset *js = cf_asset_find("/app.js");
    r = fetch(h, "GET", "/app.js", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, js->len);
    assert_string_equal(header(&r, "Content-Type", v, sizeof v), "text/javascript; charset=utf-8");
    assert_string_equal(header(&r, "Cache-Control", v, sizeof v), "no-cache");
    free(r.body);
    cf_http_stop(h);
}

/* Only the URL index.html links (?v= the asset's own hash) may be cached for long: another v
 * (an old page asking a new replica, or a guess) is revalidated like an unversioned one. */
static void test_versioned_url_is_immutable(void **state)
{
    (void)state;
    cf_http *h = start();
    const cf_asset *css = cf_asset_find("/app.css");
    char path[128], v[256];
    snprintf(path, sizeof path, "/app.css?v=%.16s", css->etag + 1);
    reply r = fetch(h, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Cache-Control", v, sizeof v), "public, max-age=31536000, immutable");
    free(r.body);
    r = fetch(h, "GET", "/app.css?v=0000000000000000", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Cache-Control", v, sizeof v), "no-cache");
    free(r.body);
    /* index.html itself never: it is what names the others. */
    snprintf(path, sizeof path, "/index.html?v=%.16s", cf_asset_find("/")->etag + 1);
    r = fetch(h, "GET", path, NULL);
    assert_string_equal(header(&r, "Cache-Control", v, sizeof v), "no-cache");
    free(r.body);
    cf_http_stop(h);
}

static void test_if_none_match(void **state)
{
    (void)state;
    cf_http *h = start();
    const cf_asset *js = cf_asset_find("/app.js");
    char line[256], v[256];
    /* Each: what comes before the ETag, and after it ("*" alone matches anything). */
    const char *matching[][2] = {{"", ""}, {"\"0\", ", ""}, {"W/", ""}, {"*", NULL}, {"\"a\",", " , \"b\""}};
    for (size_t i = 0; i < sizeof matching / sizeof matching[0]; i++) {
        char tags[128];
        snprintf(tags, sizeof tags, "%s%s%s", matching[i][0], matching[i][1] ? js->etag : "",
                 matching[i][1] ? matching[i][1] : "");
        snprintf(line, sizeof line, "If-None-Match: %s", tags);
        reply r = fetch(h, "GET", "/app.js", line);
        if (r.status != 304)
            fail_msg("If-None-Match: %s answered %ld", tags, r.status);
        assert_int_equal(r.len, 0);
        assert_string_equal(header(&r, "ETag", v, sizeof v), js->etag);
        check_security_headers(&r);
        free(r.body);
    }
    const char *other[] = {"\"0\"", "\"c7aa\"", "", "garbage", "\"unterminated"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        snprintf(line, sizeof line, "If-None-Match: %s", other[i]);
        reply r = fetch(h, "GET", "/app.js", line);
        if (r.status != 200)
            fail_msg("If-None-Match: %s answered %ld", other[i], r.status);
        assert_int_equal(r.len, js->len);
        free(r.body);
    }
    cf_http_stop(h);
}

static void test_head_has_no_body(void **state)
{
    (void)state;
    cf_http *h = start();
    const cf_asset *css = cf_asset_find("/app.css");
    reply r = fetch(h, "HEAD", "/app.css", NULL);
    char v[256], want[32];
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    snprintf(want, sizeof want, "%zu", css->len);
    assert_string_equal(header(&r, "Content-Length", v, sizeof v), want);
    assert_string_equal(header(&r, "ETag", v, sizeof v), css->etag);
    check_security_headers(&r);
    cf_http_stop(h);
}

static void test_refusals_are_json(void **state)
{
    (void)state;
    cf_http *h = start();
    char v[256];
    reply r = fetch(h, "GET", "/nope.js", NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(header(&r, "Content-Type", v, sizeof v), "application/json");
    assert_non_null(strstr(r.body, "\"code\":\"NoSuchAsset\""));
    assert_non_null(strstr(r.body, "'/nope.js'"));
    check_security_headers(&r);
    free(r.body);

    /* The path is the client's: quoted back escaped and cut short, the document stays JSON. */
    char path[600] = "/%22quote%5Cback\"\\";
    memset(path + strlen(path), 'x', 400);
    r = fetch(h, "GET", path, NULL);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "/%22quote%5Cback\\\"\\\\x"));
    assert_non_null(strstr(r.body, "xxx...'"));
    assert_true(r.len < 512);
    free(r.body);

    const char *methods[] = {"POST", "PUT", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < 4; i++) {
        r = fetch(h, methods[i], "/index.html", NULL);
        assert_int_equal(r.status, 405);
        assert_string_equal(header(&r, "Allow", v, sizeof v), "GET, HEAD");
        assert_non_null(strstr(r.body, "\"code\":\"MethodNotAllowed\""));
        assert_non_null(strstr(r.body, methods[i]));
        check_security_headers(&r);
        free(r.body);
    }
    cf_http_stop(h);
}

/* What the caller learns for its log: the status and the body's bytes (none for HEAD or 304). */
static void test_response_for_a_caller_that_logs(void **state)
{
    (void)state;
    cf_http *h = start();
    const cf_asset *css = cf_asset_find("/app.css");
    char v[256], want[64], inm[128];
    /* Mounted at /logged, the path it looks up is the whole URL: none, so a 404. */
    reply r = fetch(h, "GET", "/logged", NULL);
    assert_int_equal(r.status, 404);
    snprintf(want, sizeof want, "404 %zu", r.len);
    assert_string_equal(header(&r, "X-Logged", v, sizeof v), want);
    check_security_headers(&r);
    free(r.body);
    r = fetch(h, "DELETE", "/logged", NULL);
    snprintf(want, sizeof want, "405 %zu", r.len);
    assert_string_equal(header(&r, "X-Logged", v, sizeof v), want);
    free(r.body);
    cf_http_stop(h);

    /* Mounted at "/", for the assets themselves. */
    cf_http_options o = {.address = "127.0.0.1:0", .threads = 1, .blocking_threads = 1};
    cf_err err;
    assert_int_equal(cf_http_new(&o, &h, &err), 0);
    assert_int_equal(cf_http_mount(h, "/", &logged_handlers, NULL, &err), 0);
    assert_int_equal(cf_http_start(h, &err), 0);
    r = fetch(h, "GET", "/app.css", NULL);
    snprintf(want, sizeof want, "200 %zu", css->len);
    assert_string_equal(header(&r, "X-Logged", v, sizeof v), want);
    assert_int_equal(r.len, css->len);
    free(r.body);
    r = fetch(h, "HEAD", "/app.css", NULL);
    assert_string_equal(header(&r, "X-Logged", v, sizeof v), "200 0");
    snprintf(inm, sizeof inm, "If-None-Match: %s", css->etag);
    r = fetch(h, "GET", "/app.css", inm);
    assert_int_equal(r.status, 304);
    assert_string_equal(header(&r, "X-Logged", v, sizeof v), "304 0");
    free(r.body);
    cf_http_stop(h);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_serves_the_asset), cmocka_unit_test(test_versioned_url_is_immutable),
        cmocka_unit_test(test_if_none_match),        cmocka_unit_test(test_head_has_no_body),
        cmocka_unit_test(test_refusals_are_json),    cmocka_unit_test(test_response_for_a_caller_that_logs),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
