/*
 * test_verify.c - coffer mirror --verify (cf_mirror_verify) between two directories, a directory
 * and a bucket prefix, and two bucket prefixes, on a real coffer server: identical trees, a file
 * changed behind the mirror's back with the same size and mtime, missing, extra and empty files,
 * excludes, an object whose bytes were changed on the server's disk behind S3's back, and the
 * human and JSON output.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../live_server.h"
#include "../repo_object.h"
#include "core/fs.h"
#include "s3client/s3client.h"
#include "mirror/verify.h"
#include "storage/repo.h"

#define USER "verifytestadmin"
#define PASS "verifytestsecret123"
#define BUCKET "verify-test"
#define MIB ((size_t)1 << 20)

static char tmp[256];
static live_server server;
static char endpoint[64];
static unsigned counter; /* makes each test's directories and prefixes its own */

/* ---- trees, sides and the server's data files ---- */

/* Bytes that differ for every seed and offset (a 64-bit LCG's top byte). */
static void fill(unsigned char *p, size_t n, unsigned seed)
{
    uint64_t x = seed + 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (unsigned char)(x >> 56);
    }
}

static void write_file(const char *root, const char *key, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, key);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    cf_err err;
    assert_int_equal(cf_fs_mkdirs(path, 0755, &err), 0);
    *slash = '/';
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* The tree every test starts from: nested keys, an empty file, a 20 MiB file (two parts of
 * coffer's 16 MiB on S3, so a multipart ETag) and files under the subtree tests exclude. */
typedef struct file {
    const char *key;
    size_t size;
} file;
static const file tree[] = {
    {"a.txt", 100},         {"b/c.bin", 70000},    {"b/d/e.dat", 17000},
    {"cache/x.bin", 30000}, {"cache/y/z.bin", 10}, {"empty", 0},
    {"big.bin", 20 * MIB},  {"notes.tmp", 5},      {"z/last", 1},
};
#define NTREE (sizeof tree / sizeof *tree)

static void lay_tree(cf_repo *r, const char *dir)
{
    for (size_t i = 0; i < NTREE; i++) {
        unsigned char *p = malloc(tree[i].size + 1);
        fill(p, tree[i].size, (unsigned)i + 1);
        if (dir)
            write_file(dir, tree[i].key, p, tree[i].size);
        else
            put_object(r, tree[i].key, p, tree[i].size, NULL);
        free(p);
    }
}

typedef struct side {
    cf_mirror_side s;
    cf_repo *repo;
    char path[512];
    char url[600];
} side;

static void open_dir_side(side *d, const char *name)
{
    snprintf(d->path, sizeof d->path, "%s/%s-%u", tmp, name, counter);
    snprintf(d->url, sizeof d->url, "%s", d->path);
    cf_err err;
    assert_int_equal(cf_repo_open_dir(d->path, &d->repo, &err), 0);
    d->s = (cf_mirror_side){d->repo, d->url, d->path};
    lay_tree(d->repo, d->path);
}

static void open_s3_side(side *d, const char *name)
{
    char root[128];
    snprintf(root, sizeof root, "%s-%u", name, counter);
    snprintf(d->url, sizeof d->url, "s3://%s/%s", BUCKET, root);
    cf_repo_s3_conn c = {0};
    c.endpoint = endpoint;
    c.access_key = USER;
    c.secret_key = PASS;
    cf_err err;
    if (cf_repo_open_s3_conn(&c, BUCKET, root, &d->repo, &err))
        fail_msg("open %s: %s", d->url, err.msg);
    d->s = (cf_mirror_side){d->repo, d->url, NULL};
    lay_tree(d->repo, NULL);
}

static void close_side(side *d)
{
    cf_repo_close(d->repo);
}

static cf_verify_summary verify(side *a, side *b, const char *const *ex, size_t nex, int jobs)
{
    cf_verify_summary s;
    cf_err err;
    if (cf_mirror_verify(&a->s, &b->s, ex, nex, jobs, NULL, &s, &err))
        fail_msg("verify: %s", err.msg);
    return s;
}

static uint64_t tree_bytes(void)
{
    uint64_t n = 0;
    for (size_t i = 0; i < NTREE; i++)
        n += tree[i].size;
    return n;
}

/* Changes one byte of the file at path in place, keeping its size and mtime. */
static void flip_byte(const char *path, long at)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x5a, f);
    assert_int_equal(fclose(f), 0);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/coffer-test-verify-XXXXXX");
    if (!mkdtemp(tmp) || live_server_start(&server, tmp, USER, PASS))
        return -1;
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", server.port);
    cf_s3c_config cfg = {0};
    snprintf(cfg.endpoint, sizeof cfg.endpoint, "%s", endpoint);
    snprintf(cfg.region, sizeof cfg.region, "us-east-1");
    snprintf(cfg.access_key, sizeof cfg.access_key, USER);
    snprintf(cfg.secret_key, sizeof cfg.secret_key, PASS);
    cf_s3c *client;
    cf_err err;
    if (cf_s3c_new(&cfg, &client, &err))
        return -1;
    int rc = cf_s3c_create_bucket(client, BUCKET, &err);
    cf_s3c_free(client);
    if (rc)
        fprintf(stderr, "create bucket '%s': %s\n", BUCKET, err.msg);
    return rc ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    live_server_stop(&server);
    if (!server.unclean)
        cf_fs_remove_tree(tmp, NULL);
    return server.unclean ? -1 : 0;
}

static int each(void **state)
{
    (void)state;
    counter++;
    return 0;
}

/* ---- directory to directory ---- */

static void test_identical_trees_have_no_finding(void **state)
{
    (void)state;
    side a, b;
    open_dir_side(&a, "src");
    open_dir_side(&b, "dst");
    for (int jobs = 1; jobs <= 16; jobs *= 4) {
        cf_verify_summary s = verify(&a, &b, NULL, 0, jobs);
        assert_int_equal(s.files_checked, NTREE);
        assert_int_equal(s.bytes_checked, tree_bytes());
        assert_int_equal(s.bytes_read, 2 * tree_bytes());
        assert_int_equal(s.nmissing + s.ndifferent + s.nextra, 0);
        assert_true(cf_verify_summary_ok(&s));
        cf_verify_summary_free(&s);
    }
    close_side(&a);
    close_side(&b);
}

static void test_missing_extra_different_in_key_order(void **state)
{
    (void)state;
    side a, b;
    open_dir_side(&a, "src");
    open_dir_side(&b, "dst");
    char path[1024];
    /* Same size, same mtime: the mirror's incremental rule would skip it; verify must not. */
    snprintf(path, sizeof path, "%s/b/d/e.dat", b.path);
    flip_byte(path, 16999);
    snprintf(path, sizeof path, "%s/a.txt", b.path);
    flip_byte(path, 0);
    snprintf(path, sizeof path, "%s/z/last", b.path);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof path, "%s/b/c.bin", b.path);
    assert_int_equal(unlink(path), 0);
    write_file(b.path, "only/here", "x", 1);
    write_file(b.path, "0-first", "", 0);
    /* A hidden file is mirrored, so it is verified; a symbolic link is neither. */
    write_file(a.path, ".htaccess", "deny", 4);
    snprintf(path, sizeof path, "%s/link", a.path);
    assert_int_equal(symlink("a.txt", path), 0);
    /* An empty file against a non-empty one. */
    write_file(b.path, "empty", "!", 1);
    cf_verify_summary s = verify(&a, &b, NULL, 0, 4);
    assert_int_equal(s.files_checked, NTREE + 1);
    assert_int_equal(s.nmissing, 3);
    assert_string_equal(s.missing[0], ".htaccess");
    assert_string_equal(s.missing[1], "b/c.bin");
    assert_string_equal(s.missing[2], "z/last");
    assert_int_equal(s.ndifferent, 3);
    assert_string_equal(s.different[0], "a.txt");
    assert_string_equal(s.different[1], "b/d/e.dat");
    assert_string_equal(s.different[2], "empty");
    assert_string_equal(s.why[0], "content differs (SHA-256)");
    assert_int_equal(s.side[0], CF_VERIFY_SIDE_UNKNOWN); /* directories have no ETag to tell */
    assert_string_equal(s.why[2], "size differs: 0 bytes in the source, 1 in the destination");
    assert_int_equal(s.nextra, 2);
    assert_string_equal(s.extra[0], "0-first");
    assert_string_equal(s.extra[1], "only/here");
    assert_false(cf_verify_summary_ok(&s));
    cf_verify_summary_free(&s);
    /* The other way round, what was missing is extra and the reverse. */
    s = verify(&b, &a, NULL, 0, 1);
    assert_int_equal(s.nmissing, 2);
    assert_string_equal(s.missing[0], "0-first");
    assert_int_equal(s.nextra, 3);
    assert_string_equal(s.extra[0], ".htaccess");
    assert_string_equal(s.extra[2], "z/last");
    cf_verify_summary_free(&s);
    close_side(&a);
    close_side(&b);
}

static void test_excludes_are_respected(void **state)
{
    (void)state;
    side a, b;
    open_dir_side(&a, "src");
    open_dir_side(&b, "dst");
    char path[1024];
    snprintf(path, sizeof path, "%s/cache/y/z.bin", b.path);
    flip_byte(path, 3);
    snprintf(path, sizeof path, "%s/cache/x.bin", a.path);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof path, "%s/notes.tmp", b.path);
    assert_int_equal(unlink(path), 0);
    write_file(b.path, "cache/new", "n", 1);
    write_file(b.path, "other.tmp", "n", 1);
    static const char *const ex[] = {"cache/", "*.tmp"};
    cf_verify_summary s = verify(&a, &b, ex, 2, 8);
    assert_int_equal(s.files_checked, NTREE - 3);
    assert_int_equal(s.nmissing + s.ndifferent + s.nextra, 0);
    cf_verify_summary_free(&s);
    /* Without them, each one shows. */
    s = verify(&a, &b, NULL, 0, 8);
    assert_int_equal(s.nmissing, 1);
    assert_int_equal(s.ndifferent, 1);
    assert_string_equal(s.different[0], "cache/y/z.bin");
    assert_int_equal(s.nextra, 3);
    cf_verify_summary_free(&s);
    close_side(&a);
    close_side(&b);
}

/* ---- with S3 sides ---- */

/* The newest data file of the server holding these bytes (objects above 16 KiB have one of their
 * own, each part of a multipart object one: docs/internals/store.md), found by content, as a key
 * is never part of a file name. */
static const unsigned char *wanted;
static size_t wanted_len;
static char found[1024];
static struct timespec found_mtime;

static int find_data_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F || (size_t)st->st_size != wanted_len)
        return 0;
    unsigned char *buf = malloc(wanted_len);
    FILE *f = fopen(path, "rb");
    int same = f && fread(buf, 1, wanted_len, f) == wanted_len && !memcmp(buf, wanted, wanted_len);
    if (f)
        fclose(f);
    free(buf);
    int newer = st->st_mtim.tv_sec > found_mtime.tv_sec ||
                (st->st_mtim.tv_sec == found_mtime.tv_sec && st->st_mtim.tv_nsec > found_mtime.tv_nsec);
    if (same && newer) {
        snprintf(found, sizeof found, "%s", path);
        found_mtime = st->st_mtim;
    }
    return 0;
}

static void find_newest(const void *p, size_t n)
{
    wanted = p;
    wanted_len = n;
    found[0] = '\0';
    found_mtime = (struct timespec){0, 0};
    char objects[400];
    snprintf(objects, sizeof objects, "%s/objects", server.dir);
    nftw(objects, find_data_file, 16, FTW_PHYS);
    if (!found[0])
        fail_msg("no data file of the server holds those %zu bytes", n);
}

/* One key different, on that side, for a reason holding both phrases. */
static void assert_one_different(const cf_verify_summary *s, const char *key, cf_verify_side which,
                                 const char *phrase, const char *other_phrase)
{
    assert_int_equal(s->ndifferent, 1);
    assert_string_equal(s->different[0], key);
    assert_int_equal(s->side[0], which);
    if (!strstr(s->why[0], phrase) || !strstr(s->why[0], other_phrase))
        fail_msg("'%s' does not say '%s' and '%s'", s->why[0], phrase, other_phrase);
}

static void corrupt_on_server(size_t tree_index, size_t len, long at)
{
    unsigned char *p = malloc(tree[tree_index].size);
    fill(p, tree[tree_index].size, (unsigned)tree_index + 1);
    find_newest(p, len);
    free(p);
    flip_byte(found, at);
}

static void test_dir_to_bucket_and_bytes_changed_on_the_server(void **state)
{
    (void)state;
    side a, b;
    open_dir_side(&a, "src");
    open_s3_side(&b, "dst");
    cf_verify_summary s = verify(&a, &b, NULL, 0, 8);
    assert_int_equal(s.files_checked, NTREE);
    assert_int_equal(s.nmissing + s.ndifferent + s.nextra, 0);
    cf_verify_summary_free(&s);

    /* b/d/e.dat (17,000 bytes, one PUT: a plain MD5 ETag) changed in the server's data file:
     * S3 still lists it as before, the bytes differ, and the ETag names the destination. */
    corrupt_on_server(2, 17000, 100);
    s = verify(&a, &b, NULL, 0, 8);
    assert_int_equal(s.nmissing + s.nextra, 0);
    assert_one_different(&s, "b/d/e.dat", CF_VERIFY_SIDE_DESTINATION, "content differs (SHA-256)",
                         "ETag does not match bytes in the destination");
    cf_verify_summary_free(&s);

    /* The same object read against itself: the bytes agree, the ETag does not. The copy is
     * proven (an ETag that is not an MD5, as SSE-KMS gives, must not fail a migration), and the
     * object is counted and named in the summary line. */
    s = verify(&b, &b, NULL, 0, 2);
    assert_int_equal(s.ndifferent + s.nmissing, 0);
    assert_int_equal(s.etag_unexplained, 1);
    assert_true(cf_verify_summary_ok(&s));
    char line[160], want[160];
    cf_verify_summary_line(&s, line, sizeof line);
    snprintf(want, sizeof want,
             "verified %zu: 0 missing, 0 different (1 with an ETag their bytes do not give)", (size_t)NTREE);
    assert_string_equal(line, want);
    cf_verify_summary_free(&s);
    close_side(&a);
    close_side(&b);
}

static void test_bucket_to_bucket_multipart_changed_names_the_side(void **state)
{
    (void)state;
    side a, b;
    open_s3_side(&a, "src");
    open_s3_side(&b, "dst");
    cf_verify_summary s = verify(&a, &b, NULL, 0, 8);
    assert_int_equal(s.nmissing + s.ndifferent + s.nextra, 0);
    assert_int_equal(s.bytes_read, 2 * tree_bytes());
    cf_verify_summary_free(&s);
    /* big.bin is two parts (16 MiB + 4 MiB) on each side: corrupt the destination's second part
     * (the newest data file holding those bytes). The source's bytes give the ETag both share
     * with 16 MiB parts, the destination's do not with that part size: the destination changed. */
    unsigned char *p = malloc(20 * MIB);
    fill(p, 20 * MIB, 7);
    find_newest(p + 16 * MIB, 4 * MIB);
    free(p);
    flip_byte(found, 12345);
    s = verify(&a, &b, NULL, 0, 8);
    assert_int_equal(s.ndifferent, 1);
    assert_string_equal(s.different[0], "big.bin");
    assert_int_equal(s.side[0], CF_VERIFY_SIDE_DESTINATION);
    assert_string_equal(s.why[0], "content differs (SHA-256); ETag does not match bytes in the destination: "
                                  "changed behind the server's back");
    cf_verify_summary_free(&s);
    /* Read against itself, the destination's multipart ETag matches none of the usual part
     * sizes: no certainty, so no finding when the bytes agree. */
    s = verify(&b, &b, NULL, 0, 8);
    assert_int_equal(s.ndifferent, 0);
    cf_verify_summary_free(&s);
    close_side(&a);
    close_side(&b);
}

/* Between the listing and the reads (the log line of the first key's ETag, read first with one
 * job), one destination file goes and another becomes a symbolic link. */
static side *racing_dst;
static int raced;

static void race(void *ctx, cf_log_level level, const char *line, size_t len)
{
    (void)ctx, (void)level, (void)len;
    if (raced || !strstr(line, "verify: etag"))
        return;
    raced = 1;
    char path[1024];
    snprintf(path, sizeof path, "%s/b/c.bin", racing_dst->path);
    unlink(path);
    snprintf(path, sizeof path, "%s/b/d/e.dat", racing_dst->path);
    unlink(path);
    if (symlink("../../a.txt", path))
        fail_msg("symlink: %s", strerror(errno));
}

static void test_keys_gone_or_unreadable_after_the_listing(void **state)
{
    (void)state;
    side a, b;
    open_s3_side(&a, "src");
    open_dir_side(&b, "dst");
    racing_dst = &b;
    raced = 0;
    cf_logger log = {CF_LOG_DEBUG, race, NULL};
    cf_verify_summary s;
    cf_err err;
    assert_int_equal(cf_mirror_verify(&a.s, &b.s, NULL, 0, 1, &log, &s, &err), 0);
    assert_true(raced);
    assert_int_equal(s.nmissing, 1);
    assert_string_equal(s.missing[0], "b/c.bin");
    assert_one_different(&s, "b/d/e.dat", CF_VERIFY_SIDE_DESTINATION,
                         "cannot read the destination: ", "symbolic link");
    cf_verify_summary_free(&s);
    close_side(&a);
    close_side(&b);
}

static void test_unlisted_bucket_fails_the_run(void **state)
{
    (void)state;
    side a;
    open_dir_side(&a, "src");
    cf_repo_s3_conn c = {0};
    c.endpoint = endpoint;
    c.access_key = USER;
    c.secret_key = PASS;
    cf_repo *r;
    cf_err err;
    assert_int_equal(cf_repo_open_s3_conn(&c, "no-such-bucket", "", &r, &err), 0);
    cf_mirror_side b = {r, "s3://no-such-bucket", NULL};
    cf_verify_summary s;
    assert_int_not_equal(cf_mirror_verify(&a.s, &b, NULL, 0, 8, NULL, &s, &err), 0);
    assert_int_equal(s.files_checked + s.nmissing + s.ndifferent + s.nextra, 0);
    assert_null(s.missing);
    assert_int_equal(cf_mirror_verify(&a.s, &a.s, NULL, 0, 257, NULL, &s, &err), CF_EINVAL);
    assert_int_equal(cf_mirror_verify(&a.s, &a.s, NULL, 0, -1, NULL, &s, &err), CF_EINVAL);
    cf_repo_close(r);
    close_side(&a);
}

/* ---- output ---- */

/* What cf_verify_summary_report writes; the caller frees it. */
static char *report_text(const cf_verify_summary *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    cf_verify_summary_report(s, f);
    fclose(f);
    return text;
}

static void test_line_report_and_json(void **state)
{
    (void)state;
    char *missing[] = {"gone\n coffer mirror: forged", "m2"};
    char *different[] = {"bad\xff\x1b[2J"};
    char *why[] = {"content differs (SHA-256)"};
    cf_verify_side sides[] = {CF_VERIFY_SIDE_DESTINATION};
    char *extra[] = {"x\\y"};
    cf_verify_summary s = {.files_checked = 12,
                           .bytes_checked = 345,
                           .missing = missing,
                           .nmissing = 2,
                           .different = different,
                           .ndifferent = 1,
                           .extra = extra,
                           .nextra = 1,
                           .why = why,
                           .side = sides};
    char line[100];
    cf_verify_summary_line(&s, line, sizeof line);
    assert_string_equal(line, "verified 12: 2 missing, 1 different");

    char *text = report_text(&s);
    assert_string_equal(text, "coffer mirror: gone\\x0a coffer mirror: forged: missing from the destination\n"
                              "coffer mirror: m2: missing from the destination\n"
                              "coffer mirror: bad\xff\\x1b[2J: content differs (SHA-256)\n"
                              "coffer mirror: x\\x5cy: only in the destination\n");
    free(text);

    json_t *obj = json_object();
    assert_int_equal(cf_verify_summary_json(&s, obj), 0);
    char *js = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(js,
                        "{\"verify\":{\"bytes\":345,\"checked\":12,\"different\":[\"bad\\\\xff\\u001B[2J\"],"
                        "\"etag_unexplained\":0,\"extra\":[\"x\\\\y\"],\"findings\":[{\"key\":"
                        "\"bad\\\\xff\\u001B[2J\",\"side\":"
                        "\"destination\",\"why\":\"content differs (SHA-256)\"}],\"missing\":[\"gone\\n "
                        "coffer mirror: forged\",\"m2\"]}}");
    free(js);
    json_decref(obj);

    /* An empty summary: every list there, empty. */
    cf_verify_summary none = {0};
    obj = json_object();
    assert_int_equal(cf_verify_summary_json(&none, obj), 0);
    js = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(js, "{\"verify\":{\"bytes\":0,\"checked\":0,\"different\":[],\"etag_unexplained\":0,"
                            "\"extra\":[],\"findings\":[],"
                            "\"missing\":[]}}");
    free(js);
    json_decref(obj);
    cf_verify_summary_free(NULL);
}

/* A finding's reason may quote the key (a read's error names it): escaped as the key is, so a key
 * with a newline cannot forge a line of the report through it. */
static void test_report_escapes_the_reason(void **state)
{
    (void)state;
    char *different[] = {"k\n"};
    char *why[] = {"cannot read the source: GET 'k\ncoffer mirror: forged\x1b[2J': refused"};
    cf_verify_side sides[] = {CF_VERIFY_SIDE_SOURCE};
    cf_verify_summary s = {.different = different, .ndifferent = 1, .why = why, .side = sides};
    char *text = report_text(&s);
    assert_string_equal(text, "coffer mirror: k\\x0a: cannot read the source: GET 'k\\x0acoffer mirror: "
                              "forged\\x1b[2J': refused\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_identical_trees_have_no_finding, each),
        cmocka_unit_test_setup(test_missing_extra_different_in_key_order, each),
        cmocka_unit_test_setup(test_excludes_are_respected, each),
        cmocka_unit_test_setup(test_dir_to_bucket_and_bytes_changed_on_the_server, each),
        cmocka_unit_test_setup(test_bucket_to_bucket_multipart_changed_names_the_side, each),
        cmocka_unit_test_setup(test_keys_gone_or_unreadable_after_the_listing, each),
        cmocka_unit_test_setup(test_unlisted_bucket_fails_the_run, each),
        cmocka_unit_test(test_line_report_and_json),
        cmocka_unit_test(test_report_escapes_the_reason),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
