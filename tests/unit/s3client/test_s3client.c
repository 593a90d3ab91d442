/*
 * test_s3client.c - the S3 client: configuration and INI parsing (pure), every operation
 * against a real coffer server (COFFER_BIN, default the coffer next to this test binary), and
 * retries against a tiny scripted TCP server that resets connections or answers 503/403.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/clock.h"
#include "s3client/s3client.h"

#include "../live_server.h"

static char tmpdir[256];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void clear_env(void)
{
    static const char *const vars[] = {"COFFER_ENDPOINT",
                                       "COFFER_REGION",
                                       "COFFER_ACCESS_KEY",
                                       "COFFER_ACCESS_KEY_FILE",
                                       "COFFER_SECRET_KEY",
                                       "COFFER_SECRET_KEY_FILE",
                                       "COFFER_SESSION_TOKEN",
                                       "COFFER_ROOT_USER",
                                       "COFFER_ROOT_USER_FILE",
                                       "COFFER_ROOT_PASSWORD",
                                       "COFFER_ROOT_PASSWORD_FILE",
                                       "AWS_ENDPOINT_URL",
                                       "AWS_ENDPOINT_URL_S3",
                                       "AWS_ACCESS_KEY_ID",
                                       "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN",
                                       "AWS_REGION",
                                       "AWS_DEFAULT_REGION",
                                       "AWS_PROFILE",
                                       "AWS_DEFAULT_PROFILE",
                                       "AWS_SHARED_CREDENTIALS_FILE",
                                       "AWS_CONFIG_FILE",
                                       NULL};
    for (const char *const *v = vars; *v; v++)
        unsetenv(*v);
    char home[300];
    snprintf(home, sizeof home, "%s/nohome", tmpdir); /* never read the developer's ~/.aws */
    setenv("HOME", home, 1);
}

/* ---- configuration ---- */

static void test_ini_sections_comments_and_duplicates(void **state)
{
    char path[300], v[64];
    snprintf(path, sizeof path, "%s/ini", tmpdir);
    write_file(path, "# comment\n[default]\nkey = one\n\n[ profile x ]\n; note\n  key=two  \n"
                     "key = three\nother=\n[default]\nlast = yes\r\n");
    assert_int_equal(cf_s3c_ini_get(path, "default", "key", v, sizeof v, NULL), 1);
    assert_string_equal(v, "one");
    assert_int_equal(cf_s3c_ini_get(path, "profile x", "key", v, sizeof v, NULL), 1);
    assert_string_equal(v, "three");
    assert_int_equal(cf_s3c_ini_get(path, "profile x", "other", v, sizeof v, NULL), 1);
    assert_string_equal(v, "");
    assert_int_equal(cf_s3c_ini_get(path, "default", "last", v, sizeof v, NULL), 1);
    assert_string_equal(v, "yes");
    assert_int_equal(cf_s3c_ini_get(path, "default", "missing", v, sizeof v, NULL), 0);
    assert_int_equal(cf_s3c_ini_get(path, "nosection", "key", v, sizeof v, NULL), 0);
    assert_int_equal(cf_s3c_ini_get("/nonexistent/ini", "default", "key", v, sizeof v, NULL), 0);
    char tiny[3];
    cf_err err;
    assert_int_equal(cf_s3c_ini_get(path, "profile x", "key", tiny, sizeof tiny, &err), CF_EINVAL);
}

static void test_config_flags_win(void **state)
{
    clear_env();
    setenv("COFFER_ENDPOINT", "http://coffer:1", 1);
    setenv("COFFER_ACCESS_KEY", "cofferkey", 1);
    setenv("COFFER_SECRET_KEY", "coffersecret", 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    cf_s3c_flags f = {.endpoint = "http://flag:2/",
                      .region = "flag-region",
                      .access_key = "flagkey",
                      .secret_key = "flagsecret",
                      .virtual_host = 0};
    cf_s3c_config c;
    cf_err err;
    assert_int_equal(cf_s3c_config_resolve(&f, &c, &err), 0);
    assert_string_equal(c.endpoint, "http://flag:2");
    assert_string_equal(c.region, "flag-region");
    assert_string_equal(c.access_key, "flagkey");
    assert_string_equal(c.secret_key, "flagsecret");
    assert_string_equal(c.session_token, "");
    assert_int_equal(c.virtual_host, 0);
}

static void test_config_coffer_env_before_aws(void **state)
{
    clear_env();
    char path[300];
    snprintf(path, sizeof path, "%s/secret", tmpdir);
    write_file(path, "filesecret\n");
    setenv("COFFER_ACCESS_KEY", "cofferkey", 1);
    setenv("COFFER_SECRET_KEY_FILE", path, 1);
    setenv("COFFER_REGION", "coffer-region", 1);
    setenv("AWS_ACCESS_KEY_ID", "awskey", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "awssecret", 1);
    setenv("AWS_SESSION_TOKEN", "awstoken", 1);
    setenv("AWS_REGION", "aws-region", 1);
    setenv("AWS_ENDPOINT_URL", "http://aws:3", 1);
    cf_s3c_config c;
    cf_err err;
    assert_int_equal(cf_s3c_config_resolve(NULL, &c, &err), 0);
    assert_string_equal(c.access_key, "cofferkey");
    assert_string_equal(c.secret_key, "filesecret");
    assert_string_equal(c.session_token, ""); /* AWS's token belongs to AWS's keys */
    assert_string_equal(c.region, "coffer-region");
    assert_string_equal(c.endpoint, "http://aws:3");
    assert_int_equal(c.max_attempts, 5);
}

static void test_config_aws_env_with_token(void **state)
{
    clear_env();
    setenv("AWS_ACCESS_KEY_ID", "awskey", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "awssecret", 1);
    setenv("AWS_SESSION_TOKEN", "awstoken", 1);
    setenv("AWS_DEFAULT_REGION", "ap-south-1", 1);
    setenv("COFFER_SECRET_KEY", "must-not-pair", 1);
    cf_s3c_config c;
    cf_err err;
    assert_int_equal(cf_s3c_config_resolve(NULL, &c, &err), 0);
    assert_string_equal(c.access_key, "awskey");
    assert_string_equal(c.secret_key, "awssecret");
    assert_string_equal(c.session_token, "awstoken");
    assert_string_equal(c.region, "ap-south-1");
    assert_string_equal(c.endpoint, "https://s3.ap-south-1.amazonaws.com");
    assert_int_equal(c.virtual_host, -1);
}

static void test_config_profile_files(void **state)
{
    clear_env();
    char cred[300], conf[300];
    snprintf(cred, sizeof cred, "%s/credentials", tmpdir);
    snprintf(conf, sizeof conf, "%s/config", tmpdir);
    write_file(cred, "[default]\naws_access_key_id = defkey\naws_secret_access_key = defsecret\n"
                     "[work]\naws_access_key_id = workkey\naws_secret_access_key = worksecret\n"
                     "aws_session_token = worktoken\n");
    write_file(conf, "[default]\nregion = us-west-2\n[profile work]\nregion = eu-central-1\n"
                     "endpoint_url = http://minio.local:9000\n[work]\nregion = wrong\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
    setenv("AWS_CONFIG_FILE", conf, 1);
    cf_s3c_config c;
    cf_err err;
    assert_int_equal(cf_s3c_config_resolve(NULL, &c, &err), 0);
    assert_string_equal(c.access_key, "defkey");
    assert_string_equal(c.secret_key, "defsecret");
    assert_string_equal(c.region, "us-west-2");
    setenv("AWS_PROFILE", "work", 1);
    assert_int_equal(cf_s3c_config_resolve(NULL, &c, &err), 0);
    assert_string_equal(c.access_key, "workkey");
    assert_string_equal(c.secret_key, "worksecret");
    assert_string_equal(c.session_token, "worktoken");
    assert_string_equal(c.region, "eu-central-1");
    assert_string_equal(c.endpoint, "http://minio.local:9000");
    /* A flag names another profile; the environment still wins over the files. */
    cf_s3c_flags f = {.profile = "default", .virtual_host = -1};
    setenv("AWS_REGION", "env-region", 1);
    assert_int_equal(cf_s3c_config_resolve(&f, &c, &err), 0);
    assert_string_equal(c.access_key, "defkey");
    assert_string_equal(c.region, "env-region");
    /* ~/.aws is the default place. */
    clear_env();
    char dir[300], path[320];
    snprintf(dir, sizeof dir, "%s/nohome", tmpdir);
    mkdir(dir, 0700);
    snprintf(dir, sizeof dir, "%s/nohome/.aws", tmpdir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/credentials", dir);
    write_file(path, "[default]\naws_access_key_id=homekey\naws_secret_access_key=homesecret\n");
    assert_int_equal(cf_s3c_config_resolve(NULL, &c, &err), 0);
    assert_string_equal(c.access_key, "homekey");
    unlink(path);
    rmdir(dir);
}

/* The command line's rule: its own default endpoint, the server's root variables as a pair, and
 * a secret file that holds nothing refused rather than passed over. */
static void test_config_default_endpoint_and_root_pair(void **state)
{
    clear_env();
    setenv("COFFER_ROOT_USER", "rootkey", 1);
    setenv("COFFER_ROOT_PASSWORD", "rootsecret", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "awssecret", 1);
    cf_s3c_flags f = {.virtual_host = -1, .default_endpoint = "http://127.0.0.1:9000"};
    cf_s3c_config c;
    cf_err err;
    assert_int_equal(cf_s3c_config_resolve(&f, &c, &err), 0);
    assert_string_equal(c.endpoint, "http://127.0.0.1:9000");
    assert_string_equal(c.access_key, "rootkey");
    assert_string_equal(c.secret_key, "rootsecret");
    assert_int_equal(c.virtual_host, -1);
    /* COFFER_ACCESS_KEY and COFFER_SECRET_KEY come before the root pair. */
    setenv("COFFER_ACCESS_KEY", "cofferkey", 1);
    setenv("COFFER_SECRET_KEY", "coffersecret", 1);
    assert_int_equal(cf_s3c_config_resolve(&f, &c, &err), 0);
    assert_string_equal(c.access_key, "cofferkey");
    assert_string_equal(c.secret_key, "coffersecret");
    /* The root user never pairs with COFFER_SECRET_KEY, which is above it. */
    unsetenv("COFFER_ACCESS_KEY");
    unsetenv("COFFER_ROOT_PASSWORD");
    assert_int_equal(cf_s3c_config_resolve(&f, &c, &err), 0);
    assert_string_equal(c.access_key, "rootkey");
    assert_string_equal(c.secret_key, "awssecret");
    /* An explicit endpoint wins over the default. */
    setenv("AWS_ENDPOINT_URL", "http://elsewhere:1", 1);
    assert_int_equal(cf_s3c_config_resolve(&f, &c, &err), 0);
    assert_string_equal(c.endpoint, "http://elsewhere:1");
    /* An empty --secret-key-file is an error, not a reason to look further. */
    char path[300];
    snprintf(path, sizeof path, "%s/empty-secret", tmpdir);
    write_file(path, "\n");
    cf_s3c_flags g = {.access_key = "flagkey", .secret_key_file = path, .virtual_host = -1};
    assert_int_equal(cf_s3c_config_resolve(&g, &c, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "--secret-key-file"));
    clear_env();
}

static void test_config_missing_credentials(void **state)
{
    clear_env();
    cf_s3c_config c;
    cf_err err;
    assert_int_equal(cf_s3c_config_resolve(NULL, &c, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "no access key"));
    setenv("AWS_ACCESS_KEY_ID", "awskey", 1);
    setenv("COFFER_SECRET_KEY", "higher-level", 1);
    assert_int_equal(cf_s3c_config_resolve(NULL, &c, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "no secret key"));
    setenv("COFFER_ENDPOINT", "ftp://x", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
    assert_int_equal(cf_s3c_config_resolve(NULL, &c, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "ftp://x"));
    clear_env();
}

/* ---- helpers for the network tests ---- */

typedef struct sink {
    char *data;
    size_t len, cap;
    int calls;
} sink;

static int to_sink(void *ctx, const char *p, size_t n)
{
    sink *s = ctx;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        while (cap < s->len + n)
            cap *= 2;
        char *d = realloc(s->data, cap);
        if (!d)
            return 1;
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
    s->calls++;
    return 0;
}

static void fill_pattern(char *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (char)(x >> 24);
    }
}

/* ---- the real server ---- */

#define ROOT_USER "s3ctestadmin"
#define ROOT_PASS "s3ctestsecret123"
#define BUCKET "s3c-test"

static live_server server;

static cf_s3c *new_client_with_clock(const char *secret, const cf_clock *clock)
{
    cf_s3c_config cfg = {.clock = clock};
    snprintf(cfg.endpoint, sizeof cfg.endpoint, "http://127.0.0.1:%d", server.port);
    snprintf(cfg.region, sizeof cfg.region, "us-east-1");
    snprintf(cfg.access_key, sizeof cfg.access_key, ROOT_USER);
    snprintf(cfg.secret_key, sizeof cfg.secret_key, "%s", secret);
    cf_s3c *c = NULL;
    cf_err err;
    int rc = cf_s3c_new(&cfg, &c, &err);
    if (rc)
        fail_msg("%s", err.msg);
    return c;
}

static cf_s3c *new_client(const char *secret)
{
    return new_client_with_clock(secret, NULL);
}

static int start_server(void **state)
{
    (void)state;
    return live_server_start(&server, tmpdir, ROOT_USER, ROOT_PASS);
}

static int stop_server(void **state)
{
    (void)state;
    live_server_stop(&server);
    return 0;
}

static uint64_t requests(cf_s3c *c)
{
    cf_s3c_stats s;
    cf_s3c_get_stats(c, &s);
    return s.requests;
}

static void test_put_get_head_delete_range(void **state)
{
    cf_s3c *c = new_client(ROOT_PASS);
    cf_err err;
    int rc = cf_s3c_create_bucket(c, BUCKET, &err);
    assert_true(rc == 0 || rc == CF_EEXISTS);
    assert_int_equal(cf_s3c_head_bucket(c, BUCKET, &err), 0);
    assert_int_equal(cf_s3c_head_bucket(c, "s3c-no-such-bucket", &err), CF_ENOTFOUND);
    /* The answer travels with the error, not only in the client's last status. */
    assert_int_equal(err.answer.status, 404);
    assert_string_equal(err.answer.code, "NotFound"); /* a HEAD's answer has no body */

    const char *text = "hello, coffer world";
    cf_s3c_object_info put, head, got;
    assert_int_equal(
        cf_s3c_put_object(c, BUCKET, "dir/hello world+?.txt", text, strlen(text), "text/plain", &put, &err),
        0);
    assert_true(put.etag[0] == '"');
    assert_int_equal(cf_s3c_head_object(c, BUCKET, "dir/hello world+?.txt", &head, &err), 0);
    assert_int_equal(head.size, strlen(text));
    assert_string_equal(head.etag, put.etag);
    assert_string_equal(head.content_type, "text/plain");
    assert_true(head.last_modified > 0);

    sink s = {0};
    assert_int_equal(cf_s3c_get_object(c, BUCKET, "dir/hello world+?.txt", NULL, to_sink, &s, &got, &err), 0);
    assert_int_equal(s.len, strlen(text));
    assert_memory_equal(s.data, text, s.len);
    assert_int_equal(got.size, strlen(text));
    s.len = 0;
    cf_s3c_range r = {7, 6};
    assert_int_equal(cf_s3c_get_object(c, BUCKET, "dir/hello world+?.txt", &r, to_sink, &s, &got, &err), 0);
    assert_int_equal(s.len, 6);
    assert_memory_equal(s.data, "coffer", 6);
    assert_int_equal(got.size, strlen(text)); /* the whole object's, from Content-Range */
    s.len = 0;
    r = (cf_s3c_range){14, 0};
    assert_int_equal(cf_s3c_get_object(c, BUCKET, "dir/hello world+?.txt", &r, to_sink, &s, NULL, &err), 0);
    assert_int_equal(s.len, 5);
    assert_memory_equal(s.data, "world", 5);
    r = (cf_s3c_range){1000, 0};
    assert_int_equal(cf_s3c_get_object(c, BUCKET, "dir/hello world+?.txt", &r, to_sink, &s, NULL, &err),
                     CF_ERANGE);

    assert_int_equal(cf_s3c_delete_object(c, BUCKET, "dir/hello world+?.txt", &err), 0);
    assert_int_equal(cf_s3c_head_object(c, BUCKET, "dir/hello world+?.txt", &head, &err), CF_ENOTFOUND);
    /* A 4xx is final: one request, no retry. */
    uint64_t before = requests(c);
    assert_int_equal(cf_s3c_get_object(c, BUCKET, "dir/hello world+?.txt", NULL, to_sink, &s, NULL, &err),
                     CF_ENOTFOUND);
    assert_int_equal(requests(c) - before, 1);
    assert_string_equal(err.answer.code, "NoSuchKey");
    assert_int_equal(err.answer.status, 404);
    assert_non_null(strstr(err.msg, "NoSuchKey"));
    assert_int_equal(cf_s3c_delete_object(c, BUCKET, "never-was", &err), 0);
    free(s.data);
    cf_s3c_free(c);
}

typedef struct source {
    const char *data;
    size_t len, off;
    int seeks;
} source;

static int src_read(void *ctx, char *buf, size_t cap, size_t *n)
{
    source *s = ctx;
    size_t k = s->len - s->off < cap ? s->len - s->off : cap;
    if (k > 1000)
        k = 1000; /* short reads must be fine */
    memcpy(buf, s->data + s->off, k);
    s->off += k;
    *n = k;
    return 0;
}

static int src_seek(void *ctx, uint64_t off)
{
    source *s = ctx;
    s->off = (size_t)off;
    s->seeks++;
    return 0;
}

/* A copy pinned to the ETag that was read: the server copies only while the source is still
 * that object, and the pin travels with the copy itself (no HEAD of the client's in between). */
static void test_copy_object_pinned_to_an_etag(void **state)
{
    (void)state;
    cf_s3c *c = new_client(ROOT_PASS);
    cf_err err;
    int rc = cf_s3c_create_bucket(c, BUCKET, &err);
    assert_true(rc == 0 || rc == CF_EEXISTS);
    cf_s3c_object_info first, second, now;
    assert_int_equal(cf_s3c_put_object(c, BUCKET, "pin/src", "one", 3, "text/plain", &first, &err), 0);
    cf_s3c_put_opts css = {.content_type = "text/css"};
    assert_int_equal(
        cf_s3c_copy_object(c, BUCKET, "pin/src", BUCKET, "pin/src", &css, first.etag, NULL, &err), 0);
    assert_int_equal(cf_s3c_head_object(c, BUCKET, "pin/src", &now, &err), 0);
    assert_string_equal(now.content_type, "text/css");
    assert_string_equal(now.etag, first.etag); /* same bytes */

    assert_int_equal(cf_s3c_put_object(c, BUCKET, "pin/src", "two!", 4, "text/plain", &second, &err), 0);
    cf_s3c_put_opts js = {.content_type = "text/javascript"};
    assert_int_equal(cf_s3c_copy_object(c, BUCKET, "pin/src", BUCKET, "pin/src", &js, first.etag, NULL, &err),
                     CF_EPRECOND);
    assert_int_equal(err.answer.status, 412);
    assert_string_equal(err.answer.code, "PreconditionFailed");
    assert_int_equal(cf_s3c_head_object(c, BUCKET, "pin/src", &now, &err), 0);
    assert_string_equal(now.content_type, "text/plain"); /* the rewrite's, untouched */
    assert_int_equal(now.size, 4);
    assert_int_equal(
        cf_s3c_copy_object(c, BUCKET, "pin/src", BUCKET, "pin/dst", NULL, first.etag, NULL, &err),
        CF_EPRECOND);
    assert_int_equal(cf_s3c_head_object(c, BUCKET, "pin/dst", &now, &err), CF_ENOTFOUND);
    assert_int_equal(
        cf_s3c_copy_object(c, BUCKET, "pin/src", BUCKET, "pin/dst", NULL, second.etag, NULL, &err), 0);
    cf_s3c_free(c);
}

static void test_put_stream_and_wrong_secret(void **state)
{
    cf_s3c *c = new_client(ROOT_PASS);
    cf_err err;
    size_t n = (1 << 20) + 123;
    char *data = malloc(n);
    fill_pattern(data, n, 7);
    source src = {data, n, 0, 0};
    assert_int_equal(
        cf_s3c_put_object_stream(c, BUCKET, "stream.bin", n, src_read, src_seek, &src, NULL, NULL, &err), 0);
    sink s = {0};
    assert_int_equal(cf_s3c_get_object(c, BUCKET, "stream.bin", NULL, to_sink, &s, NULL, &err), 0);
    assert_int_equal(s.len, n);
    assert_memory_equal(s.data, data, n);
    free(s.data);
    cf_s3c_free(c);

    c = new_client("not-the-secret");
    uint64_t before = requests(c);
    int rc = cf_s3c_put_object(c, BUCKET, "x", "x", 1, NULL, NULL, &err);
    assert_true(rc == CF_EAUTH || rc == CF_EDENIED);
    assert_int_equal(requests(c) - before, 1);
    assert_string_equal(err.answer.code, "SignatureDoesNotMatch");
    cf_s3c_free(c);
    free(data);
}

static void test_list_pages_and_prefixes(void **state)
{
    cf_s3c *c = new_client(ROOT_PASS);
    cf_err err;
    char key[64];
    for (int i = 0; i < 2500; i++) {
        snprintf(key, sizeof key, "many/%05d", i);
        assert_int_equal(cf_s3c_put_object(c, BUCKET, key, key, strlen(key), NULL, NULL, &err), 0);
    }
    assert_int_equal(cf_s3c_put_object(c, BUCKET, "tree/a/1", "1", 1, NULL, NULL, &err), 0);
    assert_int_equal(cf_s3c_put_object(c, BUCKET, "tree/b/2", "2", 1, NULL, NULL, &err), 0);
    assert_int_equal(cf_s3c_put_object(c, BUCKET, "tree/top", "3", 1, NULL, NULL, &err), 0);

    cf_s3c_stats st;
    cf_s3c_get_stats(c, &st);
    assert_true(st.connections <= 2); /* keep-alive: 2,503 requests, one connection */

    cf_s3c_list *it = NULL;
    cf_s3c_list_opts o = {.prefix = "many/"};
    assert_int_equal(cf_s3c_list_open(c, BUCKET, &o, &it, &err), 0);
    uint64_t before = requests(c);
    cf_s3c_list_entry e;
    int count = 0, rc;
    while ((rc = cf_s3c_list_next(it, &e, &err)) == 1) {
        snprintf(key, sizeof key, "many/%05d", count);
        assert_string_equal(e.key, key);
        assert_int_equal(e.size, strlen(key));
        assert_false(e.is_prefix);
        /* The listing's ISO 8601 LastModified, read as a time (it once came back as 0). */
        assert_true(e.last_modified > time(NULL) - 600 && e.last_modified <= time(NULL) + 5);
        count++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(count, 2500);
    assert_int_equal(requests(c) - before, 3); /* pages of 1000, 1000, 500 */
    cf_s3c_list_close(it);

    o = (cf_s3c_list_opts){.prefix = "tree/", .delimiter = "/", .max_keys = 1};
    assert_int_equal(cf_s3c_list_open(c, BUCKET, &o, &it, &err), 0);
    const char *want[] = {"tree/a/", "tree/b/", "tree/top"};
    int seen[3] = {0};
    while ((rc = cf_s3c_list_next(it, &e, &err)) == 1) {
        for (int i = 0; i < 3; i++)
            if (!strcmp(e.key, want[i])) {
                seen[i]++;
                assert_int_equal(e.is_prefix, i < 2);
            }
        count++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(seen[0] + seen[1] + seen[2], 3);
    cf_s3c_list_close(it);
    assert_int_equal(cf_s3c_list_open(c, "s3c-no-such-bucket", NULL, &it, &err), 0);
    assert_int_equal(cf_s3c_list_next(it, &e, &err), CF_ENOTFOUND);
    cf_s3c_list_close(it);
    cf_s3c_free(c);
}

/* Keys XML 1.0 cannot carry (a terminal escape, a control character in a prefix) list like any
 * other, as do '+', '%', spaces and UTF-8: the listing asks for encoding-type=url and decodes. */
static void test_list_keys_xml_cannot_carry(void **state)
{
    (void)state;
    cf_s3c *c = new_client(ROOT_PASS);
    cf_err err;
    const char *keys[] = {"odd/esc\x1b[2J", "odd/pct%41",   "odd/plus+sign",
                          "odd/space here", "odd/\xc3\xbc", "odd/dir\x01/x"};
    const char *want[] = {"odd/dir\x01/",  "odd/esc\x1b[2J", "odd/pct%41",
                          "odd/plus+sign", "odd/space here", "odd/\xc3\xbc"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_int_equal(cf_s3c_put_object(c, BUCKET, keys[i], "k", 1, NULL, NULL, &err), 0);
    cf_s3c_list *it = NULL;
    cf_s3c_list_opts o = {.prefix = "odd/", .delimiter = "/", .max_keys = 2};
    assert_int_equal(cf_s3c_list_open(c, BUCKET, &o, &it, &err), 0);
    cf_s3c_list_entry e;
    int rc, seen[6] = {0};
    while ((rc = cf_s3c_list_next(it, &e, &err)) == 1)
        for (int i = 0; i < 6; i++)
            if (!strcmp(e.key, want[i])) {
                seen[i]++;
                assert_int_equal(e.is_prefix, i == 0);
            }
    if (rc)
        fail_msg("listing: %s", err.msg);
    for (int i = 0; i < 6; i++)
        assert_int_equal(seen[i], 1);
    cf_s3c_list_close(it);
    cf_s3c_free(c);
}

static int count_upload(void *ctx, const cf_s3c_upload_entry *u)
{
    if (!strcmp(u->key, "stale"))
        (*(int *)ctx)++;
    return 0;
}

static void test_multipart_parallel_upload(void **state)
{
    cf_s3c *c = new_client(ROOT_PASS);
    cf_err err;
    size_t part = 5u << 20;
    char *data = malloc(3 * part);
    fill_pattern(data, 3 * part, 11);
    cf_s3c_uploader *u = NULL;
    assert_int_equal(
        cf_s3c_uploader_begin(c, BUCKET, "multi.bin", "application/octet-stream", part, 3, &u, &err), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cf_s3c_uploader_submit(u, data + (size_t)i * part, part, &err), 0);
    cf_s3c_object_info info;
    assert_int_equal(cf_s3c_uploader_commit(u, &info, &err), 0);
    assert_non_null(strstr(info.etag, "-3"));
    cf_s3c_object_info head;
    assert_int_equal(cf_s3c_head_object(c, BUCKET, "multi.bin", &head, &err), 0);
    assert_int_equal(head.size, 3 * part);
    sink s = {0};
    assert_int_equal(cf_s3c_get_object(c, BUCKET, "multi.bin", NULL, to_sink, &s, NULL, &err), 0);
    assert_int_equal(s.len, 3 * part);
    assert_memory_equal(s.data, data, s.len);
    free(s.data);

    /* One-request multipart calls, and finding stale uploads. */
    char id[CF_S3C_UPLOAD_ID_MAX], etag[132];
    assert_int_equal(cf_s3c_mpu_create(c, BUCKET, "stale", NULL, id, &err), 0);
    assert_int_equal(cf_s3c_mpu_upload_part(c, BUCKET, "stale", id, 1, "abc", 3, etag, &err), 0);
    int found = 0;
    assert_int_equal(cf_s3c_list_uploads(c, BUCKET, NULL, count_upload, &found, &err), 0);
    assert_int_equal(found, 1);
    assert_int_equal(cf_s3c_mpu_abort(c, BUCKET, "stale", id, &err), 0);
    found = 0;
    assert_int_equal(cf_s3c_list_uploads(c, BUCKET, "st", count_upload, &found, &err), 0);
    assert_int_equal(found, 0);
    cf_s3c_part bogus = {1, "\"0000\""};
    assert_int_equal(cf_s3c_mpu_complete(c, BUCKET, "stale", id, &bogus, 1, NULL, &err), CF_ENOTFOUND);

    /* A failing part (NoSuchUpload after an abort behind the uploader's back) fails submit or
     * commit, and abort cleans up. */
    assert_int_equal(cf_s3c_uploader_begin(c, BUCKET, "small-parts", NULL, 16, 2, &u, &err), 0);
    assert_int_equal(cf_s3c_uploader_submit(u, "a", 1, &err), 0);
    assert_int_equal(cf_s3c_uploader_submit(u, "b", 1, &err), 0);
    assert_int_equal(cf_s3c_uploader_commit(u, NULL, &err), CF_EINVAL); /* EntityTooSmall */
    cf_s3c_free(c);
    free(data);
}

static int in_order(void *ctx, const char *p, size_t n)
{
    sink *s = ctx;
    return to_sink(s, p, n);
}

static void test_parallel_ranged_download(void **state)
{
    cf_s3c *c = new_client(ROOT_PASS);
    cf_err err;
    size_t n = 20u << 20;
    char *data = malloc(n);
    fill_pattern(data, n, 23);
    assert_int_equal(cf_s3c_put_object(c, BUCKET, "big.bin", data, n, NULL, NULL, &err), 0);
    sink s = {0};
    cf_s3c_object_info info;
    uint64_t before = requests(c);
    assert_int_equal(cf_s3c_download(c, BUCKET, "big.bin", 1u << 20, 4, in_order, &s, &info, &err), 0);
    assert_int_equal(requests(c) - before, 21); /* one HEAD, 20 ranges */
    assert_int_equal(s.len, n);
    assert_int_equal(s.calls, 20);
    assert_memory_equal(s.data, data, n);
    assert_int_equal(info.size, n);
    /* An odd tail and a range larger than the object. */
    s.len = 0;
    s.calls = 0;
    assert_int_equal(cf_s3c_put_object(c, BUCKET, "odd.bin", data, 3000001, NULL, NULL, &err), 0);
    assert_int_equal(cf_s3c_download(c, BUCKET, "odd.bin", 1u << 20, 4, in_order, &s, NULL, &err), 0);
    assert_int_equal(s.len, 3000001);
    assert_memory_equal(s.data, data, s.len);
    s.len = 0;
    assert_int_equal(cf_s3c_download(c, BUCKET, "odd.bin", 8u << 20, 4, in_order, &s, NULL, &err), 0);
    assert_int_equal(s.len, 3000001);
    assert_int_equal(cf_s3c_download(c, BUCKET, "nope.bin", 1u << 20, 4, in_order, &s, NULL, &err),
                     CF_ENOTFOUND);
    free(s.data);
    free(data);
    cf_s3c_free(c);
}

static size_t curl_sink(char *p, size_t size, size_t n, void *ctx)
{
    return to_sink(ctx, p, size * n) ? 0 : size * n;
}

/* The client signs with the time of the clock it was given: an hour behind, the server
 * refuses the request as skewed and a presigned URL carries exactly that time; set right, the
 * same client's requests pass. */
static void test_client_signs_with_its_clock(void **state)
{
    (void)state;
    cf_fixed_clock fixed;
    int64_t hour_ago = ((int64_t)time(NULL) - 3600) / 60 * 60;
    cf_fixed_clock_init(&fixed, hour_ago * 1000000000, 1);
    cf_s3c *c = new_client_with_clock(ROOT_PASS, &fixed.clock);
    cf_err err;
    assert_int_not_equal(cf_s3c_put_object(c, BUCKET, "clocked", "x", 1, NULL, NULL, &err), 0);
    assert_string_equal(err.answer.code, "RequestTimeTooSkewed");
    cf_buf url;
    cf_buf_init(&url, 8192);
    assert_int_equal(cf_s3c_presign(c, "GET", BUCKET, "clocked", 60, &url, &err), 0);
    char want[40];
    time_t t = (time_t)hour_ago;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(want, sizeof want, "X-Amz-Date=%Y%m%dT%H%M%SZ", &tm);
    assert_non_null(strstr(url.data, want));
    cf_buf_cleanup(&url);
    fixed.now_ns = (int64_t)time(NULL) * 1000000000;
    assert_int_equal(cf_s3c_put_object(c, BUCKET, "clocked", "x", 1, NULL, NULL, &err), 0);
    assert_int_equal(cf_s3c_delete_object(c, BUCKET, "clocked", &err), 0);
    cf_s3c_free(c);
}

static void test_presign(void **state)
{
    cf_s3c *c = new_client(ROOT_PASS);
    cf_err err;
    assert_int_equal(cf_s3c_put_object(c, BUCKET, "pre signed.txt", "presigned!", 10, NULL, NULL, &err), 0);
    cf_buf url;
    cf_buf_init(&url, 8192);
    assert_int_equal(cf_s3c_presign(c, "GET", BUCKET, "pre signed.txt", 300, &url, &err), 0);
    assert_non_null(strstr(url.data, "X-Amz-Signature="));
    sink s = {0};
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url.data);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curl_sink);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    long status;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 200);
    assert_int_equal(s.len, 10);
    assert_memory_equal(s.data, "presigned!", 10);
    curl_easy_cleanup(e);
    free(s.data);
    cf_buf_cleanup(&url);
    cf_s3c_free(c);
}

/* ---- a scripted server for retries ---- */

typedef struct fake {
    int fd, port;
    /* per connection: R reset, 5 answer 503, 4 answer 403, O answer 200, S silent for 1.5 s,
     * P a short body, A 503 with Retry-After: 2, D 503 with Retry-After an HTTP date an hour
     * ahead, M a 200 whose body stops after 1000 of its 100000 bytes for 2.5 s */
    const char *script;
    int conns;
    size_t body_bytes[16];
    char head[16][2048]; /* each request's line and headers */
    atomic_int stop;     /* set by the test thread, polled by the server thread */
    pthread_t th;
} fake;

static void send_all(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        s += k;
        n -= (size_t)k;
    }
}

static void reply(int fd, const char *status, const char *xml)
{
    char head[256];
    snprintf(head, sizeof head,
             "HTTP/1.1 %s\r\nContent-Type: application/xml\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
             status, strlen(xml));
    send_all(fd, head);
    send_all(fd, xml);
}

static void *fake_main(void *arg)
{
    fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {f->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(f->fd, NULL, NULL);
        if (fd < 0)
            continue;
        char req[65536];
        size_t len = 0;
        char *end = NULL;
        while (!end && len < sizeof req - 1) {
            ssize_t k = recv(fd, req + len, sizeof req - 1 - len, 0);
            if (k <= 0)
                break;
            len += (size_t)k;
            req[len] = '\0';
            end = strstr(req, "\r\n\r\n");
        }
        size_t want = 0, have = end ? len - (size_t)(end + 4 - req) : 0;
        const char *cl = end ? strcasestr(req, "\r\ncontent-length:") : NULL;
        if (cl)
            want = strtoul(cl + 17, NULL, 10);
        while (have < want) {
            char tmp[65536];
            ssize_t k = recv(fd, tmp, sizeof tmp, 0);
            if (k <= 0)
                break;
            have += (size_t)k;
        }
        int i = f->conns++;
        if (i < 16) {
            f->body_bytes[i] = have;
            snprintf(f->head[i], sizeof f->head[i], "%.*s", end ? (int)(end - req) : (int)len, req);
        }
        size_t sl = strlen(f->script);
        char act = f->script[(size_t)i < sl ? (size_t)i : sl - 1];
        if (act == 'R') {
            struct linger lg = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        } else if (act == 'S') {
            usleep(1500000); /* silent until the client's low-speed timeout fires */
        } else if (act == 'P') {
            /* The headers promise 4 bytes; the connection dies after 2. */
            send_all(fd, "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 4\r\n\r\nok");
        } else if (act == '5') {
            reply(fd, "503 Service Unavailable",
                  "<Error><Code>SlowDown</Code><Message>slow</Message></Error>");
        } else if (act == 'A' || act == 'D') {
            char head[512], date[64];
            const char *xml = "<Error><Code>SlowDown</Code><Message>later</Message></Error>";
            time_t later = time(NULL) + 3600;
            struct tm tm;
            strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&later, &tm));
            snprintf(head, sizeof head,
                     "HTTP/1.1 503 Slow Down\r\nRetry-After: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     act == 'A' ? "2" : date, strlen(xml), xml);
            send_all(fd, head);
        } else if (act == 'M') {
            char part[1001];
            memset(part, 'm', 1000);
            part[1000] = '\0';
            send_all(fd, "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 100000\r\n\r\n");
            send_all(fd, part);
            usleep(2500000);
        } else if (act == '4') {
            reply(fd, "403 Forbidden", "<Error><Code>AccessDenied</Code><Message>no way</Message></Error>");
        } else {
            send_all(fd, "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 2\r\n"
                         "Connection: close\r\n\r\nok");
        }
        close(fd);
    }
    return NULL;
}

static void fake_start(fake *f, const char *script)
{
    memset(f, 0, sizeof *f);
    f->script = script;
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->fd, 16), 0);
    getsockname(f->fd, (struct sockaddr *)&a, &len);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(fake *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->th, NULL);
    close(f->fd);
}

static cf_s3c *fake_client(const fake *f, int attempts)
{
    cf_s3c_config cfg = {.max_attempts = attempts, .virtual_host = 0};
    snprintf(cfg.endpoint, sizeof cfg.endpoint, "http://127.0.0.1:%d", f->port);
    snprintf(cfg.region, sizeof cfg.region, "us-east-1");
    snprintf(cfg.access_key, sizeof cfg.access_key, "AK");
    snprintf(cfg.secret_key, sizeof cfg.secret_key, "SK");
    snprintf(cfg.session_token, sizeof cfg.session_token, "TOKEN");
    cf_s3c *c = NULL;
    assert_int_equal(cf_s3c_new(&cfg, &c, NULL), 0);
    return c;
}

static void test_retry_reset_and_503_then_ok(void **state)
{
    fake f;
    fake_start(&f, "R55O");
    cf_s3c *c = fake_client(&f, 5);
    cf_err err;
    sink s = {0};
    assert_int_equal(cf_s3c_get_object(c, "b", "k", NULL, to_sink, &s, NULL, &err), 0);
    assert_int_equal(s.len, 2);
    assert_memory_equal(s.data, "ok", 2);
    cf_s3c_stats st;
    cf_s3c_get_stats(c, &st);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.retries, 3);
    assert_int_equal(f.conns, 4);
    free(s.data);
    cf_s3c_free(c);
    fake_stop(&f);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_download_resumes_after_a_cut(void **state)
{
    fake f;
    fake_start(&f, "PO");
    cf_s3c *c = fake_client(&f, 5);
    cf_err err;
    sink s = {0};
    assert_int_equal(cf_s3c_get_object(c, "b", "k", NULL, to_sink, &s, NULL, &err), 0);
    assert_int_equal(f.conns, 2);
    /* The second try asks only for what is missing, from the same version. */
    assert_non_null(strcasestr(f.head[1], "\r\nRange: bytes=2-"));
    assert_non_null(strcasestr(f.head[1], "\r\nIf-Match: \"e\""));
    assert_int_equal(s.len, 4);
    assert_memory_equal(s.data, "okok", 4);
    free(s.data);
    cf_s3c_free(c);
    fake_stop(&f);
}

static void test_path_and_virtual_host_style(void **state)
{
    fake f;
    fake_start(&f, "O");
    cf_s3c *c = fake_client(&f, 1);
    cf_err err;
    assert_int_equal(cf_s3c_head_object(c, "bkt", "a b/c", NULL, &err), 0);
    assert_true(starts_with(f.head[0], "HEAD /bkt/a%20b/c HTTP/1.1\r\n"));
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%d\r\n", f.port);
    assert_non_null(strcasestr(f.head[0], host));
    assert_non_null(strcasestr(f.head[0], "\r\nx-amz-security-token: TOKEN\r\n"));
    assert_non_null(
        strstr(f.head[0], "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"));
    cf_s3c_free(c);

    /* curl resolves *.localhost to the loopback address itself, so no DNS is needed. */
    cf_s3c_config cfg = {.max_attempts = 1, .virtual_host = 1};
    snprintf(cfg.endpoint, sizeof cfg.endpoint, "http://localhost:%d", f.port);
    snprintf(cfg.region, sizeof cfg.region, "us-east-1");
    snprintf(cfg.access_key, sizeof cfg.access_key, "AK");
    snprintf(cfg.secret_key, sizeof cfg.secret_key, "SK");
    assert_int_equal(cf_s3c_new(&cfg, &c, NULL), 0);
    assert_int_equal(cf_s3c_head_object(c, "bkt", "key", NULL, &err), 0);
    assert_true(starts_with(f.head[1], "HEAD /key HTTP/1.1\r\n"));
    snprintf(host, sizeof host, "\r\nHost: bkt.localhost:%d\r\n", f.port);
    assert_non_null(strcasestr(f.head[1], host));
    cf_buf url;
    cf_buf_init(&url, 4096);
    assert_int_equal(cf_s3c_presign(c, "GET", "bkt", "key", 60, &url, &err), 0);
    snprintf(host, sizeof host, "http://bkt.localhost:%d/key?", f.port);
    assert_true(starts_with(url.data, host));
    cf_buf_cleanup(&url);
    cf_s3c_free(c);
    fake_stop(&f);
}

static void test_retry_after_timeout(void **state)
{
    fake f;
    fake_start(&f, "SO");
    cf_s3c_config cfg = {.max_attempts = 3, .stall_timeout_ms = 1000};
    snprintf(cfg.endpoint, sizeof cfg.endpoint, "http://127.0.0.1:%d", f.port);
    snprintf(cfg.region, sizeof cfg.region, "us-east-1");
    snprintf(cfg.access_key, sizeof cfg.access_key, "AK");
    snprintf(cfg.secret_key, sizeof cfg.secret_key, "SK");
    cf_s3c *c = NULL;
    assert_int_equal(cf_s3c_new(&cfg, &c, NULL), 0);
    cf_err err;
    assert_int_equal(cf_s3c_head_object(c, "b", "k", NULL, &err), 0);
    cf_s3c_stats st;
    cf_s3c_get_stats(c, &st);
    assert_int_equal(st.retries, 1);
    assert_int_equal(f.conns, 2);
    cf_s3c_free(c);
    fake_stop(&f);
}

static cf_s3c *fake_client_net(const fake *f, int attempts, long budget_ms, long stall_ms)
{
    cf_s3c_config cfg = {
        .max_attempts = attempts, .retry_budget_ms = budget_ms, .stall_timeout_ms = stall_ms};
    snprintf(cfg.endpoint, sizeof cfg.endpoint, "http://127.0.0.1:%d", f->port);
    snprintf(cfg.region, sizeof cfg.region, "us-east-1");
    snprintf(cfg.access_key, sizeof cfg.access_key, "AK");
    snprintf(cfg.secret_key, sizeof cfg.secret_key, "SK");
    cf_s3c *c = NULL;
    assert_int_equal(cf_s3c_new(&cfg, &c, NULL), 0);
    return c;
}

/* A 503 with Retry-After: 2 is retried no sooner than 2 s later (the jitter alone would wait at
 * most 0.1 s), and the answer after it counts. */
static void test_retry_after_is_honoured(void **state)
{
    fake f;
    fake_start(&f, "AO");
    cf_s3c *c = fake_client_net(&f, 3, 0, 0);
    cf_err err;
    double t0 = cf_clock_mono();
    assert_int_equal(cf_s3c_head_object(c, "b", "k", NULL, &err), 0);
    assert_true(cf_clock_mono() - t0 >= 2.0);
    assert_int_equal(f.conns, 2);
    cf_s3c_free(c);
    fake_stop(&f);
}

/* A store that answers 503 for ever: with 100 attempts allowed, the budget (1.5 s) ends the
 * call, and the error names the last answer and the budget. */
static void test_retry_budget_bounds_a_failing_store(void **state)
{
    fake f;
    fake_start(&f, "5");
    cf_s3c *c = fake_client_net(&f, 100, 1500, 0);
    cf_err err;
    sink s = {0};
    double t0 = cf_clock_mono();
    assert_int_equal(cf_s3c_get_object(c, "b", "k", NULL, to_sink, &s, NULL, &err), CF_EAGAIN);
    double took = cf_clock_mono() - t0;
    assert_true(took < 1.5 + 10); /* 1.5 s plus one attempt; the margin is for a loaded machine */
    assert_true(f.conns >= 2 && f.conns < 100);
    assert_int_equal(err.answer.status, 503);
    assert_string_equal(err.answer.code, "SlowDown");
    assert_non_null(strstr(err.msg, "SlowDown: slow (HTTP 503)"));
    assert_non_null(strstr(err.msg, "the retry budget of 1.5 s is spent"));
    /* A success starts the count again: the next call gets a budget of its own. */
    fake_stop(&f);
    cf_s3c_free(c);
    fake_start(&f, "O5");
    c = fake_client_net(&f, 100, 1500, 0);
    assert_int_equal(cf_s3c_head_object(c, "b", "k", NULL, &err), 0);
    assert_int_equal(cf_s3c_head_object(c, "b", "k", NULL, &err), CF_EAGAIN);
    assert_true(f.conns >= 3); /* it did retry */
    assert_int_equal(s.len, 0);
    free(s.data);
    cf_s3c_free(c);
    fake_stop(&f);
}

/* Retry-After an hour ahead, an HTTP date: past the budget, so the call fails at once, saying so,
 * rather than waiting for nothing. */
static void test_retry_after_past_the_budget(void **state)
{
    fake f;
    fake_start(&f, "DO");
    cf_s3c *c = fake_client_net(&f, 5, 60000, 0);
    cf_err err;
    double t0 = cf_clock_mono();
    assert_int_equal(cf_s3c_head_object(c, "b", "k", NULL, &err), CF_EAGAIN);
    assert_true(cf_clock_mono() - t0 < 30);
    assert_int_equal(f.conns, 1);
    assert_non_null(strstr(err.msg, "(Retry-After), longer than the retry budget of 60 s"));
    cf_s3c_free(c);
    fake_stop(&f);
}

/* A body that stops coming mid-way is cut after the stall timeout and resumed by a retry from
 * the byte it stopped at; with one attempt only, the error says it stalled. */
static void test_stall_mid_body(void **state)
{
    fake f;
    fake_start(&f, "M");
    cf_s3c *c = fake_client_net(&f, 1, 0, 1000);
    cf_err err;
    sink s = {0};
    double t0 = cf_clock_mono();
    assert_int_equal(cf_s3c_get_object(c, "b", "k", NULL, to_sink, &s, NULL, &err), CF_EIO);
    assert_true(cf_clock_mono() - t0 >= 1.0);
    assert_non_null(strstr(err.msg, "stalled: no byte moved for 1 s"));
    assert_int_equal(s.len, 1000);
    cf_s3c_free(c);
    free(s.data);
    fake_stop(&f);
}

static void test_retry_resends_body(void **state)
{
    fake f;
    fake_start(&f, "55O");
    cf_s3c *c = fake_client(&f, 5);
    cf_err err;
    char body[100000];
    fill_pattern(body, sizeof body, 3);
    assert_int_equal(cf_s3c_put_object(c, "b", "k", body, sizeof body, NULL, NULL, &err), 0);
    assert_int_equal(f.conns, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(f.body_bytes[i], sizeof body);
    /* A stream is re-read after a seek to 0. */
    fake_stop(&f);
    cf_s3c_free(c);
    fake_start(&f, "5O");
    c = fake_client(&f, 5);
    source src = {body, sizeof body, 0, 0};
    assert_int_equal(
        cf_s3c_put_object_stream(c, "b", "k", sizeof body, src_read, src_seek, &src, NULL, NULL, &err), 0);
    assert_int_equal(src.seeks, 1);
    assert_int_equal(f.body_bytes[1], sizeof body);
    cf_s3c_free(c);
    fake_stop(&f);
}

static void test_no_retry_on_4xx_and_give_up(void **state)
{
    fake f;
    fake_start(&f, "4");
    cf_s3c *c = fake_client(&f, 5);
    cf_err err;
    sink s = {0};
    assert_int_equal(cf_s3c_get_object(c, "b", "k", NULL, to_sink, &s, NULL, &err), CF_EDENIED);
    assert_int_equal(f.conns, 1);
    assert_int_equal(err.answer.status, 403);
    assert_string_equal(err.answer.code, "AccessDenied");
    assert_non_null(strstr(err.msg, "no way"));
    cf_s3c_free(c);
    fake_stop(&f);

    fake_start(&f, "5");
    c = fake_client(&f, 3);
    assert_int_equal(cf_s3c_head_object(c, "b", "k", NULL, &err), CF_EAGAIN);
    assert_int_equal(f.conns, 3);
    cf_s3c_free(c);
    fake_stop(&f);

    /* Nobody listening: transport errors are retried too, then reported as I/O errors. */
    int port = live_free_port();
    cf_s3c_config cfg = {.max_attempts = 2};
    snprintf(cfg.endpoint, sizeof cfg.endpoint, "http://127.0.0.1:%d", port);
    snprintf(cfg.region, sizeof cfg.region, "us-east-1");
    snprintf(cfg.access_key, sizeof cfg.access_key, "AK");
    snprintf(cfg.secret_key, sizeof cfg.secret_key, "SK");
    assert_int_equal(cf_s3c_new(&cfg, &c, NULL), 0);
    assert_int_equal(cf_s3c_head_bucket(c, "b", &err), CF_EIO);
    assert_int_equal(err.answer.status, 0); /* no answer came */
    assert_string_equal(err.answer.code, "");
    cf_s3c_stats st;
    cf_s3c_get_stats(c, &st);
    assert_int_equal(st.requests, 2);
    cf_s3c_free(c);
}

static void rm_rf(const char *dir)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cf-s3client-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_ini_sections_comments_and_duplicates),
        cmocka_unit_test(test_config_flags_win),
        cmocka_unit_test(test_config_coffer_env_before_aws),
        cmocka_unit_test(test_config_aws_env_with_token),
        cmocka_unit_test(test_config_profile_files),
        cmocka_unit_test(test_config_missing_credentials),
        cmocka_unit_test(test_config_default_endpoint_and_root_pair),
        cmocka_unit_test(test_retry_reset_and_503_then_ok),
        cmocka_unit_test(test_retry_resends_body),
        cmocka_unit_test(test_download_resumes_after_a_cut),
        cmocka_unit_test(test_retry_after_timeout),
        cmocka_unit_test(test_retry_after_is_honoured),
        cmocka_unit_test(test_retry_budget_bounds_a_failing_store),
        cmocka_unit_test(test_retry_after_past_the_budget),
        cmocka_unit_test(test_stall_mid_body),
        cmocka_unit_test(test_path_and_virtual_host_style),
        cmocka_unit_test(test_no_retry_on_4xx_and_give_up),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(test_put_get_head_delete_range),
        cmocka_unit_test(test_copy_object_pinned_to_an_etag),
        cmocka_unit_test(test_put_stream_and_wrong_secret),
        cmocka_unit_test(test_list_pages_and_prefixes),
        cmocka_unit_test(test_list_keys_xml_cannot_carry),
        cmocka_unit_test(test_multipart_parallel_upload),
        cmocka_unit_test(test_parallel_ranged_download),
        cmocka_unit_test(test_presign),
        cmocka_unit_test(test_client_signs_with_its_clock),
    };
    int failed = cmocka_run_group_tests_name("s3client_pure", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("s3client_live", live, start_server, stop_server);
    stop_server(NULL);
    curl_global_cleanup();
    rm_rf(tmpdir);
    return failed || server.unclean ? 1 : 0;
}
