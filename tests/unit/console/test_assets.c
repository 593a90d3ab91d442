/*
 * test_assets.c - the web page built into the binary (console/assets.h): every file under web/
 * is found at its path with its bytes, length and content type; its ETag is the SHA-256 of
 * what is served; index.html links the other assets with their hash; "/" is index.html, and
 * nothing else is found.
 */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "console/assets.h"
#include "crypto/hash.h"

/* web/ of the checkout this test was compiled from: __FILE__ is tests/unit/console/test_assets.c. */
static void web_dir(char *out, size_t n)
{
    snprintf(out, n, "%s", __FILE__);
    for (int up = 0; up < 4; up++) {
        char *slash = strrchr(out, '/');
        assert_non_null(slash);
        *slash = '\0';
    }
    strncat(out, "/web", n - strlen(out) - 1);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    char *data = malloc((size_t)size + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    data[size] = '\0';
    *len = (size_t)size;
    return data;
}

/* embed_assets.cmake's table of types by extension, as the page's files need them. */
static const char *expected_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".json", "application/json"},
        {".ico", "image/x-icon"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
    };
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static void check_etag(const cf_asset *a)
{
    unsigned char digest[CF_SHA256_LEN];
    assert_int_equal(cf_sha256(a->data, a->len, digest), 0);
    char want[35] = "\"";
    for (int i = 0; i < 16; i++)
        snprintf(want + 1 + 2 * i, 3, "%02x", digest[i]);
    strcat(want, "\"");
    assert_string_equal(a->etag, want);
}

/* Every regular file under dir (relative name rel) is an asset as the file says. */
static size_t check_tree(const char *dir, const char *rel)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t found = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[PATH_MAX], name[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(name, sizeof name, "%s/%s", rel, e->d_name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            found += check_tree(path, name);
            continue;
        }
        const cf_asset *a = cf_asset_find(name);
        if (!a)
            fail_msg("web%s is not embedded", name);
        assert_string_equal(a->path, name);
        assert_string_equal(a->content_type, expected_type(name));
        check_etag(a);
        size_t len;
        char *bytes = read_file(path, &len);
        if (strcmp(name, "/index.html") == 0) {
            /* Rewritten: each link gains "?v=" and 16 hex digits. */
            assert_true(a->len > len);
            assert_int_equal((a->len - len) % 19, 0);
        } else {
            assert_int_equal(a->len, len);
            assert_memory_equal(a->data, bytes, len);
        }
        free(bytes);
        found++;
    }
    closedir(d);
    return found;
}

static void test_every_web_file_is_embedded(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    web_dir(dir, sizeof dir);
    assert_true(check_tree(dir, "") >= 3);
    assert_non_null(cf_asset_find("/app.js"));
    assert_non_null(cf_asset_find("/app.css"));
}

static void test_root_is_index(void **state)
{
    (void)state;
    const cf_asset *root = cf_asset_find("/");
    assert_non_null(root);
    assert_ptr_equal(root, cf_asset_find("/index.html"));
    assert_string_equal(root->content_type, "text/html; charset=utf-8");
}

/* index.html names app.js and app.css with the hash of what is served under those names, so
 * a browser may keep them as long as the page links them. */
static void test_index_links_carry_the_hash(void **state)
{
    (void)state;
    const cf_asset *index = cf_asset_find("/");
    char *html = malloc(index->len + 1);
    assert_non_null(html);
    memcpy(html, index->data, index->len);
    html[index->len] = '\0';
    const char *linked[] = {"app.js", "app.css"};
    for (size_t i = 0; i < 2; i++) {
        const cf_asset *a = cf_asset_find(i ? "/app.css" : "/app.js");
        char want[64];
        snprintf(want, sizeof want, "\"%s?v=%.16s\"", linked[i], a->etag + 1);
        if (!strstr(html, want))
            fail_msg("index.html does not link %s", want);
    }
    assert_null(strstr(html, "\"app.js\""));
    free(html);
}

static void test_unknown_paths_are_absent(void **state)
{
    (void)state;
    const char *absent[] = {"",
                            "index.html",
                            "/index.html/",
                            "//index.html",
                            "/INDEX.HTML",
                            "/%69ndex.html",
                            "/../web/index.html",
                            "/web/index.html",
                            "/index.rewritten.html",
                            "/app.js?v=0",
                            "/api/v1/chains",
                            "/favicon.ico"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        if (cf_asset_find(absent[i]))
            fail_msg("'%s' found", absent[i]);
    assert_null(cf_asset_find(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_web_file_is_embedded),
        cmocka_unit_test(test_root_is_index),
        cmocka_unit_test(test_index_links_carry_the_hash),
        cmocka_unit_test(test_unknown_paths_are_absent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
