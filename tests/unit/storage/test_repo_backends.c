/*
 * test_repo_backends.c - the repository interface, the same checks on both backends: a directory
 * and a prefix of a bucket on a real coffer server (COFFER_BIN, default the coffer next to this
 * test binary). Metadata, stat, copy, one-level listing, batch delete, refused input that keeps
 * the previous object, keys of an untrusted listing, and 8 threads at once on one repository.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/fs.h"
#include "s3client/s3client.h"
#include "storage/repo.h"
#include "storage/repo_int.h"

#include "../repo_object.h"

extern char **environ;

#define USER "repotestadmin"
#define PASS "repotestsecret123"
#define BUCKET "repo-test"

static char tmp[256];
static pid_t server;
static cf_s3c *client;
static cf_repo *dir_repo, *s3_repo;

/* ---- a coffer server of our own ---- */

static int unused_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int ok = !bind(fd, (struct sockaddr *)&a, sizeof a) && !getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ok ? ntohs(a.sin_port) : -1;
}

static void coffer_path(char *out, size_t n)
{
    const char *env = getenv("COFFER_BIN");
    if (env && *env) {
        snprintf(out, n, "%s", env);
        return;
    }
    char self[512] = "";
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    self[len > 0 ? len : 0] = '\0';
    snprintf(out, n, "%s/coffer", dirname(self));
}

static int start(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/coffer-test-backends-XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    char bin[600], data[300], addr[64], log[300];
    coffer_path(bin, sizeof bin);
    snprintf(data, sizeof data, "%s/server", tmp);
    snprintf(log, sizeof log, "%s/server.log", tmp);
    int port = unused_port();
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    setenv("COFFER_ROOT_USER", USER, 1);
    setenv("COFFER_ROOT_PASSWORD", PASS, 1);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char *argv[] = {"coffer", "server", "--address", addr, "--data", data, "--log-level", "warn", NULL};
    int e = posix_spawn(&server, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e) {
        fprintf(stderr, "cannot start '%s': %s\n", bin, strerror(e));
        return -1;
    }
    cf_s3c_config cfg = {0};
    snprintf(cfg.endpoint, sizeof cfg.endpoint, "http://%s", addr);
    snprintf(cfg.region, sizeof cfg.region, "us-east-1");
    snprintf(cfg.access_key, sizeof cfg.access_key, USER);
    snprintf(cfg.secret_key, sizeof cfg.secret_key, PASS);
    cfg.max_attempts = 1;
    cf_err err;
    if (cf_s3c_new(&cfg, &client, &err))
        return -1;
    /* Ready when it answers: the bucket is made by the first request that gets through. */
    int rc = -1;
    for (int i = 0; i < 300 && rc; i++) {
        rc = cf_s3c_create_bucket(client, BUCKET, &err);
        if (rc)
            usleep(50000);
    }
    if (rc) {
        fprintf(stderr, "coffer server '%s' did not answer: %s (log: %s)\n", bin, err.msg, log);
        return -1;
    }
    char dir[300];
    snprintf(dir, sizeof dir, "%s/repo", tmp);
    if (cf_repo_open_dir(dir, &dir_repo, &err) ||
        cf_repo_open_s3(client, BUCKET, "some/root", &s3_repo, &err))
        return -1;
    return 0;
}

static int stop(void **state)
{
    (void)state;
    cf_repo_close(dir_repo);
    cf_repo_close(s3_repo);
    cf_s3c_free(client);
    int failed = 0;
    if (server > 0) {
        kill(server, SIGTERM);
        int st = 0;
        waitpid(server, &st, 0);
        failed = !WIFEXITED(st) || WEXITSTATUS(st) != 0;
        char log[300], line[1024];
        snprintf(log, sizeof log, "%s/server.log", tmp);
        FILE *f = fopen(log, "r");
        while (f && fgets(line, sizeof line, f))
            failed |= strstr(line, "Sanitizer") != NULL || strstr(line, "runtime error:") != NULL;
        if (f)
            fclose(f);
        if (failed)
            fprintf(stderr, "coffer server: unclean exit or sanitizer report, see %s\n", log);
    }
    if (!failed)
        cf_fs_remove_tree(tmp, NULL);
    return failed ? -1 : 0;
}

/* ---- helpers ---- */

static int put_opts(cf_repo *r, const char *key, const void *data, size_t n, const cf_repo_put_opts *o,
                    cf_err *err)
{
    cf_repo_writer *w;
    int rc = cf_repo_writer_begin_opts(r, key, n, o, &w, err);
    if (rc)
        return rc;
    if ((rc = cf_repo_writer_write(w, data, n, err))) {
        cf_repo_writer_abort(w);
        return rc;
    }
    return cf_repo_writer_commit(w, err);
}

static void put(cf_repo *r, const char *key, const char *text)
{
    cf_err err;
    if (put_opts(r, key, text, strlen(text), NULL, &err))
        fail_msg("put '%s': %s", key, err.msg);
}

static int append(void *ctx, const void *p, size_t n, cf_err *err)
{
    (void)err;
    return cf_buf_append(ctx, p, n);
}

/* The object's bytes as a string ("" when missing; the code in *rc). */
static char *get_text(cf_repo *r, const char *key, int *rc)
{
    cf_buf b;
    cf_buf_init(&b, (size_t)64 << 20);
    cf_err err;
    *rc = cf_repo_get(r, key, 0, UINT64_MAX, append, &b, &err);
    cf_buf_putc(&b, '\0');
    return b.data;
}

static void assert_object(cf_repo *r, const char *key, const char *want)
{
    int rc;
    char *got = get_text(r, key, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(got, want);
    free(got);
}

/* ---- on both backends ---- */

static void test_stat_metadata_and_copy(void **state)
{
    cf_repo *r = *(cf_repo **)*state;
    cf_err err;
    cf_repo_meta meta[] = {{"Color", "blue"}, {"empty", ""}, {"x-note", "a b\tc"}};
    cf_repo_put_opts o = {.content_type = "text/plain; charset=utf-8", .meta = meta, .nmeta = 3};
    assert_int_equal(put_opts(r, "m/a.txt", "hello", 5, &o, &err), 0);
    cf_repo_info *info = malloc(sizeof *info);
    assert_int_equal(cf_repo_stat(r, "m/a.txt", info, &err), 0);
    assert_int_equal(info->size, 5);
    assert_true(info->mtime > 1700000000);
    assert_true(strlen(info->etag) > 2 && info->etag[0] == '"');
    assert_string_equal(info->content_type, "text/plain; charset=utf-8");
    assert_int_equal(info->nmeta, 3);
    assert_string_equal(meta_of(info, "color"), "blue");
    assert_string_equal(meta_of(info, "empty"), "");
    assert_string_equal(meta_of(info, "x-note"), "a b\tc");
    char etag[132];
    snprintf(etag, sizeof etag, "%s", info->etag);

    /* A copy keeps bytes and metadata, or takes new metadata. */
    assert_int_equal(cf_repo_copy(r, "m/a.txt", "m/b.txt", NULL, &err), 0);
    assert_object(r, "m/b.txt", "hello");
    assert_int_equal(cf_repo_stat(r, "m/b.txt", info, &err), 0);
    assert_string_equal(info->content_type, "text/plain; charset=utf-8");
    assert_string_equal(meta_of(info, "color"), "blue");
    cf_repo_meta other[] = {{"color", "red"}};
    cf_repo_put_opts o2 = {.content_type = NULL, .meta = other, .nmeta = 1};
    assert_int_equal(cf_repo_copy(r, "m/a.txt", "m/b.txt", &o2, &err), 0);
    assert_int_equal(cf_repo_stat(r, "m/b.txt", info, &err), 0);
    assert_int_equal(info->nmeta, 1);
    assert_string_equal(meta_of(info, "color"), "red");
    assert_string_equal(info->content_type, "application/octet-stream");

    /* A plain put replaces bytes and metadata alike; the ETag changes. */
    put(r, "m/a.txt", "bye");
    assert_int_equal(cf_repo_stat(r, "m/a.txt", info, &err), 0);
    assert_int_equal(info->size, 3);
    assert_int_equal(info->nmeta, 0);
    assert_string_not_equal(info->etag, etag);

    assert_int_equal(cf_repo_stat(r, "m/missing", info, &err), CF_ENOTFOUND);
    assert_non_null(strstr(err.msg, "m/missing"));
    assert_int_equal(cf_repo_copy(r, "m/missing", "m/b.txt", NULL, &err), CF_ENOTFOUND);
    assert_object(r, "m/b.txt", "hello"); /* the failed copy left the target alone */
    assert_int_equal(cf_repo_stat(r, "", info, &err), CF_EINVAL);
    free(info);
}

/* The first bytes of an object and what a stat tells of it, in one call: the whole object's size
 * and metadata (not the range's), an empty object's info without a byte, a missing object. */
static void test_get_info_gives_a_range_and_the_whole_objects_info(void **state)
{
    cf_repo *r = *(cf_repo **)*state;
    cf_err err;
    char body[10000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i % 26);
    cf_repo_meta meta[] = {{"owner", "shop"}};
    cf_repo_put_opts o = {.content_type = "text/css", .meta = meta, .nmeta = 1, .cache_control = "no-cache"};
    assert_int_equal(put_opts(r, "gi/a.css", body, sizeof body, &o, &err), 0);
    cf_repo_info *info = malloc(sizeof *info), *stat = malloc(sizeof *stat);
    assert_int_equal(cf_repo_stat(r, "gi/a.css", stat, &err), 0);
    cf_buf b;
    cf_buf_init(&b, 1 << 20);
    assert_int_equal(cf_repo_get_info(r, "gi/a.css", 0, 4096, info, append, &b, &err), 0);
    assert_int_equal(b.len, 4096);
    assert_memory_equal(b.data, body, 4096);
    assert_int_equal(info->size, sizeof body);
    assert_string_equal(info->etag, stat->etag);
    assert_string_equal(info->content_type, "text/css");
    assert_string_equal(info->cache_control, "no-cache");
    assert_int_equal(info->nmeta, 1);
    assert_string_equal(meta_of(info, "owner"), "shop");

    /* A range running past the end gives the bytes there are. */
    cf_buf_reset(&b);
    assert_int_equal(cf_repo_get_info(r, "gi/a.css", 8000, 4096, info, append, &b, &err), 0);
    assert_int_equal(b.len, sizeof body - 8000);
    assert_memory_equal(b.data, body + 8000, sizeof body - 8000);
    assert_int_equal(info->size, sizeof body);

    /* No byte asked: the info alone. */
    cf_buf_reset(&b);
    assert_int_equal(cf_repo_get_info(r, "gi/a.css", 0, 0, info, append, &b, &err), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(info->size, sizeof body);
    assert_string_equal(info->content_type, "text/css");

    cf_buf_reset(&b);
    put(r, "gi/empty", "");
    assert_int_equal(cf_repo_get_info(r, "gi/empty", 0, 4096, info, append, &b, &err), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(info->size, 0);
    assert_true(strlen(info->etag) > 2);

    assert_int_equal(cf_repo_get_info(r, "gi/missing", 0, 4096, info, append, &b, &err), CF_ENOTFOUND);
    assert_int_equal(b.len, 0);
    cf_buf_cleanup(&b);
    free(stat);
    free(info);
}

/* A copy pinned to the ETag that was read (if_match) is made only onto the same object: one
 * rewritten since is left as its writer made it, and so is the target. */
static void test_copy_pinned_to_what_was_read(void **state)
{
    cf_repo *r = *(cf_repo **)*state;
    cf_err err;
    put(r, "pin/a", "first");
    cf_repo_info *info = malloc(sizeof *info);
    assert_int_equal(cf_repo_stat(r, "pin/a", info, &err), 0);
    char read_etag[132];
    snprintf(read_etag, sizeof read_etag, "%s", info->etag);
    cf_repo_put_opts css = {.content_type = "text/css", .if_match = read_etag};
    assert_int_equal(cf_repo_copy(r, "pin/a", "pin/b", &css, &err), 0);
    assert_object(r, "pin/b", "first");

    put(r, "pin/a", "rewritten");
    cf_repo_put_opts js = {.content_type = "text/javascript", .if_match = read_etag};
    assert_int_equal(cf_repo_copy(r, "pin/a", "pin/a", &js, &err), CF_EPRECOND);
    assert_non_null(strstr(err.msg, "changed"));
    assert_int_equal(cf_repo_copy(r, "pin/a", "pin/b", &js, &err), CF_EPRECOND);
    assert_object(r, "pin/a", "rewritten");
    assert_object(r, "pin/b", "first");
    assert_int_equal(cf_repo_stat(r, "pin/a", info, &err), 0);
    assert_string_equal(info->content_type, "application/octet-stream");
    assert_int_equal(cf_repo_stat(r, "pin/b", info, &err), 0);
    assert_string_equal(info->content_type, "text/css");

    /* An ETag is sent in a header: one that could end it is refused before anything is sent. */
    cf_repo_put_opts bad = {.content_type = "text/css", .if_match = "\"x\"\r\nx-amz-acl: public-read"};
    assert_int_equal(cf_repo_copy(r, "pin/a", "pin/b", &bad, &err), CF_EINVAL);
    assert_object(r, "pin/b", "first");
    free(info);
}

static void test_refused_and_failed_puts_keep_the_previous_object(void **state)
{
    cf_repo *r = *(cf_repo **)*state;
    cf_err err;
    cf_repo_meta owner[] = {{"owner", "me"}};
    cf_repo_put_opts keep = {.content_type = "text/x-old", .meta = owner, .nmeta = 1};
    assert_int_equal(put_opts(r, "p/k", "old", 3, &keep, &err), 0);
    cf_repo_writer *w;
    cf_repo_meta crlf[] = {{"a", "x\r\nx-amz-meta-b: y"}};
    cf_repo_meta badname[] = {{"bad name", "v"}};
    cf_repo_meta twice[] = {{"a", "1"}, {"A", "2"}};
    char big[CF_REPO_META_MAX + 2];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cf_repo_meta huge[] = {{"a", big}};
    cf_repo_put_opts bad[] = {{.content_type = NULL, .meta = crlf, .nmeta = 1},
                              {.content_type = NULL, .meta = badname, .nmeta = 1},
                              {.content_type = NULL, .meta = twice, .nmeta = 2},
                              {.content_type = NULL, .meta = huge, .nmeta = 1},
                              {.content_type = "text/plain\r\nX-Injected: 1", .meta = NULL, .nmeta = 0}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(cf_repo_writer_begin_opts(r, "p/k", 3, &bad[i], &w, &err), CF_EINVAL);
        assert_non_null(strstr(err.msg, "p/k"));
        assert_int_equal(cf_repo_copy(r, "p/k", "p/k2", &bad[i], &err), CF_EINVAL);
    }
    /* A writer that fails before its commit: nothing of it shows. Large enough that an S3
     * repository has started its multipart upload. */
    size_t n = (size_t)17 << 20;
    char *data = malloc(n);
    memset(data, 'n', n);
    assert_int_equal(cf_repo_writer_begin(r, "p/k", n, &w, &err), 0);
    assert_int_equal(cf_repo_writer_write(w, data, n, &err), 0);
    cf_repo_writer_abort(w);
    free(data);
    assert_object(r, "p/k", "old");
    cf_repo_info *info = malloc(sizeof *info);
    assert_int_equal(cf_repo_stat(r, "p/k", info, &err), 0);
    assert_string_equal(info->content_type, "text/x-old");
    assert_string_equal(meta_of(info, "owner"), "me");
    free(info);
    int rc;
    free(get_text(r, "p/k2", &rc));
    assert_int_equal(rc, CF_ENOTFOUND);
}

static int collect(void *ctx, const cf_repo_entry *e)
{
    cf_buf_printf(ctx, "%s%s=%llu%s;", e->is_prefix ? "D:" : "", e->key, (unsigned long long)e->size,
                  e->is_prefix || e->etag[0] == '"' ? "" : "!etag");
    return 0;
}

static void test_list_dir_and_delete_many(void **state)
{
    cf_repo *r = *(cf_repo **)*state;
    cf_err err;
    const char *keys[] = {"l/a", "l/b/c", "l/b/d", "l/ba", "l/c/e/f"};
    for (size_t i = 0; i < 5; i++)
        put(r, keys[i], "xy");
    cf_buf b;
    cf_buf_init(&b, 1 << 16);
    assert_int_equal(cf_repo_list_dir(r, "l/", collect, &b, &err), 0);
    assert_string_equal(b.data, "l/a=2;D:l/b/=0;l/ba=2;D:l/c/=0;");
    cf_buf_reset(&b);
    assert_int_equal(cf_repo_list_dir(r, "l/b", collect, &b, &err), 0);
    assert_string_equal(b.data, "D:l/b/=0;l/ba=2;");
    cf_buf_reset(&b);
    assert_int_equal(cf_repo_list(r, "l/", collect, &b, &err), 0);
    assert_string_equal(b.data, "l/a=2;l/b/c=2;l/b/d=2;l/ba=2;l/c/e/f=2;");
    assert_int_equal(cf_repo_delete_many(r, keys, 5, &err), 0);
    assert_int_equal(cf_repo_delete_many(r, keys, 5, &err), 0); /* missing keys are no error */
    cf_buf_reset(&b);
    assert_int_equal(cf_repo_list(r, "l/", collect, &b, &err), 0);
    assert_true(b.len == 0);
    const char *empty[] = {"l/x", ""};
    assert_int_equal(cf_repo_delete_many(r, empty, 2, &err), CF_EINVAL);

    /* More keys than S3 takes in one request. */
    enum { MANY = 1003 };
    char **many = calloc(MANY, sizeof *many);
    for (int i = 0; i < MANY; i++) {
        many[i] = malloc(32);
        snprintf(many[i], 32, "many/%04d", i);
        put(r, many[i], "");
    }
    assert_int_equal(cf_repo_delete_many(r, (const char *const *)many, MANY, &err), 0);
    cf_buf_reset(&b);
    assert_int_equal(cf_repo_list(r, "many/", collect, &b, &err), 0);
    assert_true(b.len == 0);
    for (int i = 0; i < MANY; i++)
        free(many[i]);
    free(many);
    cf_buf_cleanup(&b);
}

/* Above CopyObject's limit (5 GiB on S3, lowered here), the server copies in parts. */
static void test_s3_copy_in_parts(void **state)
{
    (void)state;
    cf_err err;
    size_t n = (size_t)12 << 20;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 7 + i / 4096);
    cf_repo_meta m[] = {{"origin", "parts"}};
    cf_repo_put_opts o = {.content_type = "application/x-big", .meta = m, .nmeta = 1};
    assert_int_equal(put_opts(s3_repo, "big/src", data, n, &o, &err), 0);
    cf_repo_s3_set_copy_sizes(s3_repo, (uint64_t)5 << 20, (uint64_t)5 << 20);
    assert_int_equal(cf_repo_copy(s3_repo, "big/src", "big/dst", NULL, &err), 0);
    cf_repo_meta other[] = {{"origin", "replaced"}};
    cf_repo_put_opts o2 = {.content_type = "text/x-other", .meta = other, .nmeta = 1};
    assert_int_equal(cf_repo_copy(s3_repo, "big/src", "big/dst2", &o2, &err), 0);
    assert_int_equal(cf_repo_copy(s3_repo, "big/missing", "big/dst", NULL, &err), CF_ENOTFOUND);
    cf_repo_s3_set_copy_sizes(s3_repo, (uint64_t)5 << 30, (uint64_t)512 << 20);
    int rc;
    char *got = get_text(s3_repo, "big/dst", &rc);
    assert_int_equal(rc, 0);
    assert_memory_equal(got, data, n);
    free(got);
    cf_repo_info *info = malloc(sizeof *info);
    assert_int_equal(cf_repo_stat(s3_repo, "big/dst", info, &err), 0);
    assert_int_equal(info->size, n);
    assert_string_equal(info->content_type, "application/x-big");
    assert_string_equal(meta_of(info, "origin"), "parts");
    assert_non_null(strstr(info->etag, "-3\"")); /* a multipart ETag: three parts */
    assert_int_equal(cf_repo_stat(s3_repo, "big/dst2", info, &err), 0);
    assert_string_equal(info->content_type, "text/x-other");
    assert_string_equal(meta_of(info, "origin"), "replaced");
    free(info);
    free(data);
}

/* ---- 8 threads at once on one repository ---- */

#define THREADS 8
#define ROUNDS 6

typedef struct worker {
    cf_repo *r;
    int id;
    int rc;
    char msg[600];
} worker;

static int fail_worker(worker *w, int rc, const char *what, const cf_err *err)
{
    snprintf(w->msg, sizeof w->msg, "thread %d: %s: %s", w->id, what, err ? err->msg : "");
    w->rc = rc ? rc : -1;
    return w->rc;
}

static int one_round(worker *w, int round, cf_repo_info *info)
{
    char key[64], copy[64], body[256], value[32];
    cf_err err;
    snprintf(key, sizeof key, "t/%d/k%d", w->id, round);
    snprintf(copy, sizeof copy, "t/%d/c%d", w->id, round);
    int n = snprintf(body, sizeof body, "thread %d round %d", w->id, round);
    snprintf(value, sizeof value, "%d-%d", w->id, round);
    cf_repo_meta m[] = {{"round", value}};
    cf_repo_put_opts o = {.content_type = "text/plain", .meta = m, .nmeta = 1};
    int rc = put_opts(w->r, key, body, (size_t)n, &o, &err);
    if (rc)
        return fail_worker(w, rc, "put", &err);
    if ((rc = cf_repo_stat(w->r, key, info, &err)))
        return fail_worker(w, rc, "stat", &err);
    if (info->size != (uint64_t)n || info->nmeta != 1 || strcmp(info->meta[0].value, value))
        return fail_worker(w, -1, "stat tells another object", NULL);
    if ((rc = cf_repo_copy(w->r, key, copy, NULL, &err)))
        return fail_worker(w, rc, "copy", &err);
    cf_buf b;
    cf_buf_init(&b, 1 << 20);
    rc = cf_repo_get(w->r, copy, 0, UINT64_MAX, append, &b, &err);
    int same = !rc && b.len == (size_t)n && !memcmp(b.data, body, (size_t)n);
    cf_buf_reset(&b);
    if (!rc)
        rc = cf_repo_stream(w->r, key, append, &b, &err);
    same = same && !rc && b.len == (size_t)n && !memcmp(b.data, body, (size_t)n);
    cf_buf_cleanup(&b);
    if (rc || !same)
        return fail_worker(w, rc, "get of the copy or stream of the original", &err);
    if ((rc = cf_repo_delete(w->r, key, &err)) || (rc = cf_repo_delete(w->r, copy, &err)))
        return fail_worker(w, rc, "delete", &err);
    if (cf_repo_stat(w->r, key, info, &err) != CF_ENOTFOUND)
        return fail_worker(w, -1, "deleted object still there", NULL);
    return 0;
}

static void *work(void *arg)
{
    worker *w = arg;
    cf_repo_info *info = malloc(sizeof *info);
    for (int round = 0; round < ROUNDS && !w->rc; round++)
        one_round(w, round, info);
    /* One thread also writes an object of several parts, so that an upload thread runs too. */
    if (!w->rc && w->id == 0) {
        size_t n = (size_t)20 << 20;
        char *data = calloc(1, n);
        cf_err err;
        int rc = put_opts(w->r, "t/0/large", data, n, NULL, &err);
        if (!rc)
            rc = cf_repo_stat(w->r, "t/0/large", info, &err);
        if (rc || info->size != n)
            fail_worker(w, rc, "large put", &err);
        free(data);
    }
    free(info);
    return NULL;
}

static void test_eight_threads_on_one_repository(void **state)
{
    cf_repo *r = *(cf_repo **)*state;
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.r = r, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++)
        if (w[i].rc)
            fail_msg("%s", w[i].msg);
    cf_buf b;
    cf_buf_init(&b, 1 << 16);
    cf_err err;
    assert_int_equal(cf_repo_list(r, "t/", collect, &b, &err), 0);
    assert_string_equal(b.data, "t/0/large=20971520;");
    cf_buf_cleanup(&b);
}

/* ---- keys from an untrusted listing, into a directory ---- */

static int copy_into_dir(void *ctx, const cf_repo_entry *e)
{
    cf_err err;
    int *refused = ctx;
    int rc;
    char *text = get_text(s3_repo, e->key, &rc);
    if (!rc) {
        rc = put_opts(dir_repo, e->key, text, strlen(text), NULL, &err);
        if (rc == CF_EINVAL && strstr(err.msg, "leave the repository"))
            (*refused)++;
    }
    free(text);
    return 0;
}

static void test_listed_keys_cannot_leave_a_directory(void **state)
{
    (void)state;
    cf_err err;
    /* S3 allows any key: a bucket may list "../" segments, which must not reach the filesystem. */
    const char *evil[] = {"u/../../../escaped", "u/./x", "u//y"};
    int stored = 0;
    for (size_t i = 0; i < 3; i++)
        stored += put_opts(s3_repo, evil[i], "evil", 4, NULL, &err) == 0;
    put(s3_repo, "u/fine", "ok");
    int refused = 0;
    assert_int_equal(cf_repo_list(s3_repo, "u/", copy_into_dir, &refused, &err), 0);
    assert_true(stored > 0);
    assert_int_equal(refused, stored);
    assert_object(dir_repo, "u/fine", "ok");
    char p[400];
    snprintf(p, sizeof p, "%s/escaped", tmp);
    assert_int_not_equal(access(p, F_OK), 0);

    /* Every call refuses such keys, and a symbolic link planted in the directory is not followed. */
    cf_repo_info *info = malloc(sizeof *info);
    const char *bad[] = {"../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a/.."};
    cf_buf b;
    cf_buf_init(&b, 1 << 16);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(cf_repo_stat(dir_repo, bad[i], info, &err), CF_EINVAL);
        assert_int_equal(cf_repo_get(dir_repo, bad[i], 0, 1, append, &b, &err), CF_EINVAL);
        assert_int_equal(cf_repo_copy(dir_repo, "u/fine", bad[i], NULL, &err), CF_EINVAL);
        assert_int_equal(cf_repo_copy(dir_repo, bad[i], "u/x", NULL, &err), CF_EINVAL);
    }
    assert_int_equal(cf_repo_list_dir(dir_repo, "../", collect, &b, &err), CF_EINVAL);
    assert_int_equal(cf_repo_list_dir(dir_repo, "/etc/", collect, &b, &err), CF_EINVAL);
    char link[400];
    snprintf(link, sizeof link, "%s/repo/u/link", tmp);
    assert_int_equal(symlink("/etc/passwd", link), 0);
    assert_int_equal(cf_repo_stat(dir_repo, "u/link", info, &err), CF_EINVAL);
    assert_int_equal(cf_repo_get(dir_repo, "u/link", 0, UINT64_MAX, append, &b, &err), CF_EINVAL);
    assert_true(b.len == 0);
    /* Nor is a directory on the way that is a link, whether reading, writing or listing. */
    char outside[400];
    snprintf(outside, sizeof outside, "%s/outside", tmp);
    assert_int_equal(mkdir(outside, 0700), 0);
    snprintf(p, sizeof p, "%s/secret", outside);
    assert_int_equal(cf_fs_write_atomic(p, "secret", 6, 0600, &err), 0);
    snprintf(link, sizeof link, "%s/repo/u/linkdir", tmp);
    assert_int_equal(symlink(outside, link), 0);
    assert_int_equal(cf_repo_stat(dir_repo, "u/linkdir/secret", info, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "symbolic link"));
    assert_int_equal(cf_repo_get(dir_repo, "u/linkdir/secret", 0, UINT64_MAX, append, &b, &err), CF_EINVAL);
    assert_int_equal(put_opts(dir_repo, "u/linkdir/planted", "x", 1, NULL, &err), CF_EINVAL);
    assert_int_equal(cf_repo_copy(dir_repo, "u/fine", "u/linkdir/planted", NULL, &err), CF_EINVAL);
    assert_int_equal(cf_repo_delete(dir_repo, "u/linkdir/secret", &err), CF_EINVAL);
    assert_int_equal(cf_repo_list_dir(dir_repo, "u/linkdir/", collect, &b, &err), CF_EINVAL);
    assert_true(b.len == 0);
    snprintf(p, sizeof p, "%s/planted", outside);
    assert_int_not_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/secret", outside);
    assert_int_equal(access(p, F_OK), 0);
    cf_buf_cleanup(&b);
    free(info);
}

static void test_bad_repositories_are_refused(void **state)
{
    (void)state;
    cf_err err;
    cf_repo *r = NULL;
    char long_name[80];
    memset(long_name, 'b', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(cf_repo_open_s3(client, "", "x", &r, &err), CF_EINVAL);
    assert_int_equal(cf_repo_open_s3(client, long_name, "x", &r, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "bucket name"));
    char *long_root = malloc(2000);
    memset(long_root, 'r', 1999);
    long_root[1999] = '\0';
    assert_int_equal(cf_repo_open_s3(client, BUCKET, long_root, &r, &err), CF_ETOOBIG);
    free(long_root);
    assert_int_equal(cf_repo_open_dir("", &r, &err), CF_EINVAL);
    assert_null(r);
}

static void test_directory_objects_stay_plain_files(void **state)
{
    (void)state;
    cf_err err;
    cf_repo_meta m[] = {{"k", "v"}};
    cf_repo_put_opts o = {.content_type = "image/png", .meta = m, .nmeta = 1};
    assert_int_equal(put_opts(dir_repo, "f/plain", "\x89PNG", 4, &o, &err), 0);
    char p[400], *data = NULL;
    size_t len = 0;
    snprintf(p, sizeof p, "%s/repo/f/plain", tmp);
    assert_int_equal(cf_fs_read_small(p, 100, &data, &len, &err), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(data, "\x89PNG", 4);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_stat_metadata_and_copy, &dir_repo),
        cmocka_unit_test_prestate(test_stat_metadata_and_copy, &s3_repo),
        cmocka_unit_test_prestate(test_get_info_gives_a_range_and_the_whole_objects_info, &dir_repo),
        cmocka_unit_test_prestate(test_get_info_gives_a_range_and_the_whole_objects_info, &s3_repo),
        cmocka_unit_test_prestate(test_copy_pinned_to_what_was_read, &dir_repo),
        cmocka_unit_test_prestate(test_copy_pinned_to_what_was_read, &s3_repo),
        cmocka_unit_test_prestate(test_refused_and_failed_puts_keep_the_previous_object, &dir_repo),
        cmocka_unit_test_prestate(test_refused_and_failed_puts_keep_the_previous_object, &s3_repo),
        cmocka_unit_test_prestate(test_list_dir_and_delete_many, &dir_repo),
        cmocka_unit_test_prestate(test_list_dir_and_delete_many, &s3_repo),
        cmocka_unit_test(test_s3_copy_in_parts),
        cmocka_unit_test_prestate(test_eight_threads_on_one_repository, &dir_repo),
        cmocka_unit_test_prestate(test_eight_threads_on_one_repository, &s3_repo),
        cmocka_unit_test(test_listed_keys_cannot_leave_a_directory),
        cmocka_unit_test(test_bad_repositories_are_refused),
        cmocka_unit_test(test_directory_objects_stay_plain_files),
    };
    return cmocka_run_group_tests(tests, start, stop);
}
