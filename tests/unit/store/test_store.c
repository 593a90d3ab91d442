/* test_store.c - the object store engine: durability protocol, recovery, listing. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/fs.h"
#include "store/store.h"
#include "store/store_int.h" /* the LMDB environment, to fill the index */

typedef struct fixture {
    char dir[256];
    cf_store *s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/coffer-test-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    cf_err err;
    assert_int_equal(cf_store_open(f->dir, NULL, &f->s, &err), 0);
    assert_int_equal(cf_store_bucket_create(f->s, "b", &err), 0);
    /* Most tests follow bodies through their data files: every non-empty body gets one. */
    cf_store_set_inline_max(f->s, 0);
    *state = f;
    return 0;
}

/* The store as it runs: small bodies kept in their records. */
static int setup_inline(void **state)
{
    setup(state);
    fixture *f = *state;
    cf_store_set_inline_max(f->s, CF_STORE_INLINE_MAX);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    cf_store_close(f->s);
    cf_fs_remove_tree(f->dir, NULL);
    free(f);
    return 0;
}

static void put(cf_store *s, const char *bucket, const char *key, size_t keylen, const char *body)
{
    cf_store_writer *w;
    cf_err err;
    assert_int_equal(cf_store_writer_begin(s, &w, &err), 0);
    assert_int_equal(cf_store_writer_write(w, body, strlen(body), &err), 0);
    assert_int_equal(cf_store_writer_commit(w, bucket, key, keylen, NULL, 0, NULL, &err), 0);
}

static void put_str(cf_store *s, const char *key, const char *body)
{
    put(s, "b", key, strlen(key), body);
}

static char *read_all(cf_store *s, const char *key, size_t keylen)
{
    cf_object_info info;
    cf_err err;
    int fd = -1;
    if (cf_store_object_get(s, "b", key, keylen, &info, &fd, NULL, &err) != 0)
        return NULL;
    char *buf = calloc(1, info.size + 1);
    if (info.nsegs == 0) {
        assert_int_equal(fd, -1);
        if (info.size)
            memcpy(buf, info.data, info.size);
    } else {
        assert_int_equal(pread(fd, buf, info.size, 0), (ssize_t)info.size);
        close(fd);
    }
    cf_object_info_cleanup(&info);
    return buf;
}

static size_t count_files(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            n += count_files(p);
        else
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

static size_t data_files(fixture *f)
{
    char p[512];
    snprintf(p, sizeof p, "%s/objects", f->dir);
    return count_files(p);
}

/* ---- listing ---- */

typedef struct collected {
    char items[4096][64];
    int is_prefix[4096];
    size_t n;
} collected;

static int collect(void *ctx, const cf_store_list_entry *e)
{
    collected *c = ctx;
    snprintf(c->items[c->n], sizeof c->items[0], "%.*s", (int)e->keylen, e->key);
    c->is_prefix[c->n] = e->is_prefix;
    c->n++;
    return 0;
}

/* Lists all pages of max entries each; returns the number of pages. */
static int list_all(cf_store *s, const char *prefix, const char *delim, size_t max, collected *c)
{
    char *after = NULL;
    size_t afterlen = 0;
    int pages = 0, truncated;
    c->n = 0;
    do {
        char *next = NULL;
        size_t nextlen = 0;
        cf_err err;
        assert_int_equal(cf_store_list(s, "b", prefix, strlen(prefix), delim, delim ? strlen(delim) : 0,
                                       after, afterlen, max, collect, c, &truncated, &next, &nextlen, &err),
                         0);
        free(after);
        after = next;
        afterlen = nextlen;
        pages++;
        assert_true(pages < 10000);
    } while (truncated);
    free(after);
    return pages;
}

static void test_list_delimiter_rolls_up_prefixes(void **state)
{
    fixture *f = *state;
    const char *keys[] = {"a.txt", "dir1/x", "dir1/y", "dir1/sub/z", "dir2/x", "e", "dir10/q"};
    for (size_t i = 0; i < 7; i++)
        put_str(f->s, keys[i], "v");
    collected *c = calloc(1, sizeof *c);
    list_all(f->s, "", "/", 1000, c);
    assert_int_equal(c->n, 5);
    assert_string_equal(c->items[0], "a.txt");
    assert_string_equal(c->items[1], "dir1/");
    assert_true(c->is_prefix[1]);
    assert_string_equal(c->items[2], "dir10/");
    assert_string_equal(c->items[3], "dir2/");
    assert_string_equal(c->items[4], "e");
    assert_false(c->is_prefix[4]);

    list_all(f->s, "dir1/", "/", 1000, c);
    assert_int_equal(c->n, 3);
    assert_string_equal(c->items[0], "dir1/sub/");
    assert_string_equal(c->items[1], "dir1/x");
    assert_string_equal(c->items[2], "dir1/y");
    free(c);
}

static void test_list_pages_visit_every_entry_once(void **state)
{
    fixture *f = *state;
    char key[64];
    for (int d = 0; d < 20; d++)
        for (int i = 0; i < 30; i++) {
            snprintf(key, sizeof key, "d%02d/k%03d", d, i);
            put_str(f->s, key, "x");
        }
    for (int i = 0; i < 15; i++) {
        snprintf(key, sizeof key, "top%02d", i);
        put_str(f->s, key, "x");
    }
    collected *c = calloc(1, sizeof *c);
    size_t sizes[] = {1, 2, 7, 1000};
    for (size_t s = 0; s < 4; s++) {
        int pages = list_all(f->s, "", "/", sizes[s], c);
        assert_int_equal(c->n, 35);
        assert_int_equal(pages, (int)((35 + sizes[s] - 1) / sizes[s]));
        for (size_t i = 1; i < c->n; i++)
            assert_true(strcmp(c->items[i - 1], c->items[i]) < 0);
        pages = list_all(f->s, "", NULL, sizes[s], c);
        assert_int_equal(c->n, 615);
        for (size_t i = 1; i < c->n; i++)
            assert_true(strcmp(c->items[i - 1], c->items[i]) < 0);
    }
    free(c);
}

static void test_list_start_after_and_other_buckets(void **state)
{
    fixture *f = *state;
    cf_err err;
    assert_int_equal(cf_store_bucket_create(f->s, "b2", &err), 0);
    put(f->s, "b2", "zzz", 3, "other bucket");
    put_str(f->s, "k1", "1");
    put_str(f->s, "k2", "2");
    put_str(f->s, "k3", "3");
    collected *c = calloc(1, sizeof *c);
    int truncated;
    char *next = NULL;
    size_t nextlen;
    assert_int_equal(cf_store_list(f->s, "b", "", 0, NULL, 0, "k1", 2, 1000, collect, c, &truncated, &next,
                                   &nextlen, &err),
                     0);
    assert_int_equal(c->n, 2);
    assert_string_equal(c->items[0], "k2");
    assert_false(truncated);
    assert_null(next);
    assert_int_equal(cf_store_list(f->s, "nope", "", 0, NULL, 0, NULL, 0, 10, collect, c, &truncated, &next,
                                   &nextlen, &err),
                     CF_ENOTFOUND);
    free(c);
}

typedef struct big_key {
    char k[1100];
    size_t len;
} big_key;
typedef struct big_list {
    big_key k[16];
    size_t n;
} big_list;

static int collect_big(void *ctx, const cf_store_list_entry *e)
{
    big_list *l = ctx;
    memcpy(l->k[l->n].k, e->key, e->keylen);
    l->k[l->n].len = e->keylen;
    l->n++;
    return 0;
}

static void test_long_keys_keep_order_and_round_trip(void **state)
{
    fixture *f = *state;
    /* 1024-byte keys sharing a 600-byte head land in one overflow group. */
    char keys[5][1025];
    const char tails[5] = {'c', 'a', 'e', 'b', 'd'};
    for (int i = 0; i < 5; i++) {
        memset(keys[i], 'h', 1024);
        keys[i][1024] = '\0';
        keys[i][700] = tails[i];
        char body[16];
        snprintf(body, sizeof body, "body-%c", tails[i]);
        put(f->s, "b", keys[i], 1024, body);
    }
    char shortkey[601];
    memset(shortkey, 'h', 600);
    shortkey[600] = '\0';
    put_str(f->s, shortkey, "short");
    put_str(f->s, "i", "after");

    for (int i = 0; i < 5; i++) {
        char *got = read_all(f->s, keys[i], 1024);
        char want[16];
        snprintf(want, sizeof want, "body-%c", tails[i]);
        assert_non_null(got);
        assert_string_equal(got, want);
        free(got);
    }
    /* Overwrite one long key: the old data file must be reclaimed. */
    size_t before = data_files(f);
    put(f->s, "b", keys[2], 1024, "new-e");
    assert_int_equal(data_files(f), before);

    cf_err err;
    big_list *seen = calloc(1, sizeof *seen);
    char *after = NULL;
    size_t afterlen = 0;
    int truncated;
    do {
        char *next = NULL;
        size_t nextlen = 0;
        assert_int_equal(cf_store_list(f->s, "b", "", 0, NULL, 0, after, afterlen, 2, collect_big, seen,
                                       &truncated, &next, &nextlen, &err),
                         0);
        free(after);
        after = next;
        afterlen = nextlen;
    } while (truncated);
    free(after);
    size_t nseen = seen->n;
    big_key *keysseen = seen->k;
    assert_int_equal(nseen, 7);
    assert_int_equal(keysseen[0].len, 600);
    for (size_t i = 1; i < nseen; i++) {
        size_t m = keysseen[i - 1].len < keysseen[i].len ? keysseen[i - 1].len : keysseen[i].len;
        int cmp = memcmp(keysseen[i - 1].k, keysseen[i].k, m);
        assert_true(cmp < 0 || (cmp == 0 && keysseen[i - 1].len < keysseen[i].len));
    }
    assert_int_equal(keysseen[6].len, 1);
    free(seen);

    assert_int_equal(cf_store_object_delete(f->s, "b", keys[0], 1024, &err), 0);
    assert_null(read_all(f->s, keys[0], 1024));
    char *other = read_all(f->s, keys[1], 1024);
    assert_string_equal(other, "body-a");
    free(other);
}

/* ---- writes, overwrites, deletes ---- */

static void test_overwrite_and_delete_reclaim_data(void **state)
{
    fixture *f = *state;
    put_str(f->s, "k", "one");
    assert_int_equal(data_files(f), 1);
    put_str(f->s, "k", "two");
    assert_int_equal(data_files(f), 1);
    char *got = read_all(f->s, "k", 1);
    assert_string_equal(got, "two");
    free(got);
    cf_err err;
    cf_store_stats st;
    assert_int_equal(cf_store_stats_get(f->s, &st, &err), 0);
    assert_int_equal(st.objects, 1);
    assert_int_equal(st.bytes, 3);
    assert_int_equal(cf_store_bucket_delete(f->s, "b", &err), CF_ENOTEMPTY);
    assert_int_equal(cf_store_object_delete(f->s, "b", "k", 1, &err), 0);
    assert_int_equal(data_files(f), 0);
    assert_int_equal(cf_store_object_delete(f->s, "b", "k", 1, &err), 0);
    assert_int_equal(cf_store_stats_get(f->s, &st, &err), 0);
    assert_int_equal(st.objects, 0);
    assert_int_equal(cf_store_bucket_delete(f->s, "b", &err), 0);
    assert_int_equal(cf_store_bucket_exists(f->s, "b", &err), CF_ENOTFOUND);
}

static void test_open_fd_survives_overwrite(void **state)
{
    fixture *f = *state;
    put_str(f->s, "k", "first");
    cf_object_info info;
    cf_err err;
    int fd;
    assert_int_equal(cf_store_object_get(f->s, "b", "k", 1, &info, &fd, NULL, &err), 0);
    put_str(f->s, "k", "second!");
    char buf[16] = {0};
    assert_int_equal(pread(fd, buf, sizeof buf, 0), 5);
    assert_string_equal(buf, "first");
    close(fd);
    cf_object_info_cleanup(&info);
}

static void test_failed_write_leaves_previous_version(void **state)
{
    fixture *f = *state;
    put_str(f->s, "k", "kept");
    cf_store_writer *w;
    cf_err err;
    cf_store_fail_nth_write(f->s, 2);
    assert_int_equal(cf_store_writer_begin(f->s, &w, &err), 0);
    assert_int_equal(cf_store_writer_write(w, "ab", 2, &err), 0);
    assert_int_equal(cf_store_writer_write(w, "cd", 2, &err), CF_EIO);
    assert_non_null(strstr(err.msg, "injected"));
    cf_store_writer_abort(w);
    char *got = read_all(f->s, "k", 1);
    assert_string_equal(got, "kept");
    free(got);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s/tmp", f->dir);
    assert_int_equal(count_files(tmp), 0);
    assert_int_equal(data_files(f), 1);
}

static void test_commit_to_missing_bucket_leaves_nothing(void **state)
{
    fixture *f = *state;
    cf_store_writer *w;
    cf_err err;
    assert_int_equal(cf_store_writer_begin(f->s, &w, &err), 0);
    assert_int_equal(cf_store_writer_write(w, "x", 1, &err), 0);
    assert_int_equal(cf_store_writer_commit(w, "gone", "k", 1, NULL, 0, NULL, &err), CF_ENOTFOUND);
    assert_int_equal(data_files(f), 0);
}

/* Every write inside a transaction that finds the bucket gone says so, and changes nothing. */
static void test_writes_to_a_missing_bucket_say_so(void **state)
{
    fixture *f = *state;
    cf_err err;
    char id[CF_STORE_UPLOAD_ID_LEN + 1];
    put_str(f->s, "k", "v");
    assert_int_equal(cf_store_object_delete(f->s, "gone", "k", 1, &err), CF_ENOTFOUND);
    assert_string_equal(err.msg, "bucket 'gone' does not exist");
    assert_int_equal(cf_store_object_set_header(f->s, "gone", "k", 1, "content-type", "a/b", &err),
                     CF_ENOTFOUND);
    assert_string_equal(err.msg, "bucket 'gone' does not exist");
    assert_int_equal(cf_store_upload_create(f->s, "gone", "k", 1, NULL, 0, id, &err), CF_ENOTFOUND);
    assert_string_equal(err.msg, "bucket 'gone' does not exist");
    char *body = read_all(f->s, "k", 1);
    assert_string_equal(body, "v");
    free(body);
    cf_store_stats st;
    assert_int_equal(cf_store_stats_get(f->s, &st, &err), 0);
    assert_int_equal(st.objects, 1);
}

/* A full index refuses the write that does not fit with CF_ENOSPACE, leaves no data file of it,
 * keeps what it held, and takes writes again once there is room. */
static void test_full_index_refuses_writes_and_keeps_what_it_held(void **state)
{
    fixture *f = *state;
    cf_err err;
    put_str(f->s, "k", "v1");
    /* A map smaller than the index is taken as the index's size: it cannot grow any more. */
    assert_int_equal(mdb_env_set_mapsize(f->s->env, 1), 0);
    /* Records of a page or more each, so that the index fills within a few writes. */
    char key[32], value[6000];
    memset(value, 'm', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    cf_store_kv meta = {"x-amz-meta-fill", value};
    int rc = 0, puts = 0;
    while (!rc && puts < 10000) {
        cf_store_writer *w;
        snprintf(key, sizeof key, "fill-%06d", puts);
        assert_int_equal(cf_store_writer_begin(f->s, &w, &err), 0);
        assert_int_equal(cf_store_writer_write(w, "x", 1, &err), 0);
        if (!(rc = cf_store_writer_commit(w, "b", key, strlen(key), &meta, 1, NULL, &err)))
            puts++;
    }
    assert_int_equal(rc, CF_ENOSPACE);
    assert_int_equal(data_files(f), (size_t)puts + 1);
    char *body = read_all(f->s, "k", 1);
    assert_string_equal(body, "v1");
    free(body);
    assert_int_equal(mdb_env_set_mapsize(f->s->env, (size_t)1 << 30), 0);
    put_str(f->s, key, "fits now");
    cf_store_stats st;
    assert_int_equal(cf_store_stats_get(f->s, &st, &err), 0);
    assert_int_equal(st.objects, (uint64_t)puts + 2);
}

static void test_recovery_removes_crash_leftovers(void **state)
{
    fixture *f = *state;
    put_str(f->s, "keep", "data");
    cf_store_close(f->s);
    f->s = NULL;
    /* What a crash can leave: a temp file, and a data file renamed but never committed. */
    char p[600];
    snprintf(p, sizeof p, "%s/tmp/half-written", f->dir);
    assert_int_equal(cf_fs_write_atomic(p, "x", 1, 0600, NULL), 0);
    snprintf(p, sizeof p, "%s/objects/ff/ff", f->dir);
    assert_int_equal(cf_fs_mkdirs(p, 0700, NULL), 0);
    snprintf(p, sizeof p, "%s/objects/ff/ff/ffff0000000000000000000000000000", f->dir);
    assert_int_equal(cf_fs_write_atomic(p, "orphan", 6, 0600, NULL), 0);
    /* A clean-shutdown marker would skip the scan; a crash never writes one. */
    snprintf(p, sizeof p, "%s/clean-shutdown", f->dir);
    unlink(p);

    cf_err err;
    assert_int_equal(cf_store_open(f->dir, NULL, &f->s, &err), 0);
    assert_int_equal(data_files(f), 1);
    snprintf(p, sizeof p, "%s/tmp", f->dir);
    assert_int_equal(count_files(p), 0);
    char *got = read_all(f->s, "keep", 4);
    assert_string_equal(got, "data");
    free(got);
}

static void test_record_headers_round_trip(void **state)
{
    fixture *f = *state;
    cf_store_kv headers[] = {{"content-type", "text/plain"}, {"x-amz-meta-colour", "bl\xc3\xa9u"}};
    cf_store_writer *w;
    cf_err err;
    assert_int_equal(cf_store_writer_begin(f->s, &w, &err), 0);
    assert_int_equal(cf_store_writer_write(w, "abc", 3, &err), 0);
    cf_object_info info;
    assert_int_equal(cf_store_writer_commit(w, "b", "h", 1, headers, 2, &info, &err), 0);
    assert_string_equal(info.etag, "900150983cd24fb0d6963f7d28e17f72");
    cf_object_info_cleanup(&info);
    assert_int_equal(cf_store_object_get(f->s, "b", "h", 1, &info, NULL, NULL, &err), 0);
    assert_int_equal(info.size, 3);
    assert_string_equal(cf_object_info_header(&info, "content-type"), "text/plain");
    assert_string_equal(cf_object_info_header(&info, "x-amz-meta-colour"), "bl\xc3\xa9u");
    assert_null(cf_object_info_header(&info, "missing"));
    cf_object_info_cleanup(&info);
    int missing;
    assert_int_equal(cf_store_object_get(f->s, "nob", "h", 1, &info, NULL, &missing, &err), CF_ENOTFOUND);
    assert_int_equal(missing, 1);
    assert_int_equal(cf_store_object_get(f->s, "b", "zz", 2, &info, NULL, &missing, &err), CF_ENOTFOUND);
    assert_int_equal(missing, 0);
}

/* ---- multipart uploads ---- */

static void put_part(cf_store *s, const char *upload, uint32_t number, const char *body, int want_rc)
{
    cf_store_writer *w;
    cf_err err;
    assert_int_equal(cf_store_writer_begin(s, &w, &err), 0);
    assert_int_equal(cf_store_writer_write(w, body, strlen(body), &err), 0);
    assert_int_equal(cf_store_part_commit(w, upload, number, NULL, 0, NULL, &err), want_rc);
}

/* The record a caller builds from the chosen parts: their segments, in order. */
static void complete_done(cf_store *s, const char *upload, const uint32_t *numbers, size_t n,
                          const cf_store_completion *done, int want_rc)
{
    cf_store_part *parts;
    size_t nparts;
    cf_err err;
    assert_int_equal(cf_store_part_list(s, upload, 0, 10000, &parts, &nparts, NULL, &err), 0);
    cf_store_segment segs[16];
    cf_object_info rec = {0};
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < nparts; j++)
            if (parts[j].number == numbers[i]) {
                segs[i] = parts[j].info.segs[0];
                rec.size += segs[i].len;
            }
    snprintf(rec.etag, sizeof rec.etag, "test-%zu", n);
    rec.segs = segs;
    rec.nsegs = n;
    assert_int_equal(cf_store_upload_complete(s, upload, &rec, NULL, done, &err), want_rc);
    cf_store_parts_free(parts, nparts);
}

static void complete_with(cf_store *s, const char *upload, const uint32_t *numbers, size_t n, int want_rc)
{
    complete_done(s, upload, numbers, n, NULL, want_rc);
}

/* Reads every segment of an object in order. */
static char *read_segments(cf_store *s, const char *key)
{
    cf_object_info info;
    cf_err err;
    if (cf_store_object_get(s, "b", key, strlen(key), &info, NULL, NULL, &err) != 0)
        return NULL;
    char *buf = calloc(1, info.size + 1);
    uint64_t off = 0;
    for (size_t i = 0; i < info.nsegs; i++) {
        int fd;
        assert_int_equal(cf_store_segment_open(s, &info.segs[i], &fd, &err), 0);
        assert_int_equal(pread(fd, buf + off, info.segs[i].len, 0), (ssize_t)info.segs[i].len);
        off += info.segs[i].len;
        close(fd);
    }
    assert_int_equal(off, info.size);
    cf_object_info_cleanup(&info);
    return buf;
}

static void test_upload_completes_chosen_parts_without_copying(void **state)
{
    fixture *f = *state;
    char id[CF_STORE_UPLOAD_ID_LEN + 1];
    cf_err err;
    cf_store_kv headers[] = {{"content-type", "text/plain"}};
    put_str(f->s, "obj", "old version");
    assert_int_equal(cf_store_upload_create(f->s, "b", "obj", 3, headers, 1, id, &err), 0);
    put_part(f->s, id, 1, "alpha-", 0);
    put_part(f->s, id, 2, "unused", 0);
    put_part(f->s, id, 3, "gamma", 0);
    assert_int_equal(data_files(f), 4);
    /* Until completion the old version is what readers see. */
    char *got = read_segments(f->s, "obj");
    assert_string_equal(got, "old version");
    free(got);

    cf_store_upload u;
    assert_int_equal(cf_store_upload_get(f->s, id, &u, &err), 0);
    assert_string_equal(u.bucket, "b");
    assert_memory_equal(u.key, "obj", 3);
    assert_int_equal(u.nheaders, 1);
    assert_string_equal(u.headers[0].value, "text/plain");
    cf_store_upload_cleanup(&u);

    uint32_t chosen[] = {1, 3};
    complete_with(f->s, id, chosen, 2, 0);
    got = read_segments(f->s, "obj");
    assert_string_equal(got, "alpha-gamma");
    free(got);
    /* The old version and the unchosen part are reclaimed; the chosen parts are the object. */
    assert_int_equal(data_files(f), 2);
    assert_int_equal(cf_store_upload_get(f->s, id, &u, &err), CF_ENOTFOUND);
    cf_store_stats st;
    assert_int_equal(cf_store_stats_get(f->s, &st, &err), 0);
    assert_int_equal(st.objects, 1);
    assert_int_equal(st.bytes, 11);
    /* Completing twice finds no upload. */
    cf_object_info empty = {0};
    assert_int_equal(cf_store_upload_complete(f->s, id, &empty, NULL, NULL, &err), CF_ENOTFOUND);
}

/* A completion given a record keeps it, in its own transaction, until it expires. */
static void test_completion_is_kept_until_it_expires(void **state)
{
    fixture *f = *state;
    char kept[CF_STORE_UPLOAD_ID_LEN + 1], stale[CF_STORE_UPLOAD_ID_LEN + 1];
    cf_err err;
    cf_store_completion done = {
        .bucket = "b", .key = "obj", .keylen = 3, .etag = "abc-1", .answer = "CRC32 x= COMPOSITE"};
    memset(done.parts_digest, 7, sizeof done.parts_digest);
    done.expires_ns = cf_clock_now_ns() + (int64_t)3600 * 1000000000;
    uint32_t one[] = {1};
    assert_int_equal(cf_store_upload_create(f->s, "b", "obj", 3, NULL, 0, kept, &err), 0);
    put_part(f->s, kept, 1, "body", 0);
    complete_done(f->s, kept, one, 1, &done, 0);
    cf_store_completion got;
    assert_int_equal(cf_store_upload_completed(f->s, kept, &got, &err), 0);
    assert_string_equal(got.bucket, "b");
    assert_int_equal(got.keylen, 3);
    assert_memory_equal(got.key, "obj", 3);
    assert_string_equal(got.etag, "abc-1");
    assert_string_equal(got.answer, "CRC32 x= COMPOSITE");
    assert_memory_equal(got.parts_digest, done.parts_digest, sizeof done.parts_digest);
    assert_int_equal(got.expires_ns, done.expires_ns);

    done.expires_ns = cf_clock_now_ns() - 1;
    assert_int_equal(cf_store_upload_create(f->s, "b", "obj2", 4, NULL, 0, stale, &err), 0);
    put_part(f->s, stale, 1, "body", 0);
    complete_done(f->s, stale, one, 1, &done, 0);
    assert_int_equal(cf_store_upload_completed(f->s, stale, &got, &err), CF_ENOTFOUND);
    /* Expiry forgets the stale one only. */
    assert_int_equal(cf_store_upload_expire(f->s, 0, NULL, &err), 0);
    assert_int_equal(cf_store_upload_completed(f->s, kept, &got, &err), 0);
    /* A live upload, a malformed id, an unknown id: nothing completed. */
    assert_int_equal(cf_store_upload_completed(f->s, "zz", &got, &err), CF_ENOTFOUND);
    assert_int_equal(cf_store_upload_completed(f->s, "00000000000000000000000000000000", &got, &err),
                     CF_ENOTFOUND);
}

/* A reader of a version of several segments reads it whole across an overwrite, and its files
 * go when the reader does. */
static void test_reader_holds_its_version_across_an_overwrite(void **state)
{
    fixture *f = *state;
    char id[CF_STORE_UPLOAD_ID_LEN + 1];
    cf_err err;
    uint32_t all[] = {1, 2, 3};
    assert_int_equal(cf_store_upload_create(f->s, "b", "mp", 2, NULL, 0, id, &err), 0);
    put_part(f->s, id, 1, "one-", 0);
    put_part(f->s, id, 2, "two-", 0);
    put_part(f->s, id, 3, "three", 0);
    complete_with(f->s, id, all, 3, 0);
    assert_int_equal(data_files(f), 3);

    cf_object_info info;
    assert_int_equal(cf_store_object_get(f->s, "b", "mp", 2, &info, NULL, NULL, &err), 0);
    cf_store_reader *rd, *second;
    assert_int_equal(cf_store_reader_open(f->s, &info, 0, info.size, &rd, &err), 0);
    assert_int_equal(cf_store_reader_open(f->s, &info, 4, 4, &second, &err), 0);
    char buf[32] = "";
    assert_int_equal(cf_store_reader_read(rd, buf, 2, &err), 2);
    put_str(f->s, "mp", "new");
    assert_int_equal(data_files(f), 4); /* the old version is still held */
    size_t got = 2;
    for (long n; (n = cf_store_reader_read(rd, buf + got, sizeof buf - 1 - got, &err)) > 0;)
        got += (size_t)n;
    assert_string_equal(buf, "one-two-three");
    cf_store_reader_free(rd);
    assert_int_equal(data_files(f), 4); /* and by the second reader */
    cf_store_reader_free(second);
    assert_int_equal(data_files(f), 1);
    /* A reader opened on the replaced version now finds it gone: the caller looks again. */
    assert_int_equal(cf_store_reader_open(f->s, &info, 0, info.size, &rd, &err), CF_ENOTFOUND);
    cf_object_info_cleanup(&info);
}

/* Readers pinning a version of several segments while the main thread replaces it over and
 * over: pins, unpins and reclaims from several threads at once (run under ThreadSanitizer by
 * `make test`). Every read sends one whole version; the last unpin leaves only the last one. */
typedef struct pin_reader {
    cf_store *s;
    atomic_int *stop;
    int whole, torn, replaced_first, errors;
} pin_reader;

static void *read_while_replaced(void *arg)
{
    pin_reader *r = arg;
    while (!atomic_load(r->stop)) {
        cf_object_info info;
        cf_store_reader *rd;
        cf_err err;
        if (cf_store_object_get(r->s, "b", "mp", 2, &info, NULL, NULL, &err) != 0) {
            r->errors++;
            continue;
        }
        int rc = cf_store_reader_open(r->s, &info, 0, info.size, &rd, &err);
        if (rc == CF_ENOTFOUND) {
            r->replaced_first++; /* an overwrite won between the lookup and the pin */
            cf_object_info_cleanup(&info);
            continue;
        }
        char buf[64] = "";
        size_t got = 0;
        long n = 0;
        if (!rc) {
            while (got < sizeof buf - 1 &&
                   (n = cf_store_reader_read(rd, buf + got, sizeof buf - 1 - got, &err)) > 0)
                got += (size_t)n;
            cf_store_reader_free(rd);
        }
        char want[64];
        snprintf(want, sizeof want, "%.4sone-%.4stwo-%.4sthree", buf, buf, buf);
        if (rc || n < 0)
            r->errors++;
        else if (strcmp(buf, want) == 0)
            r->whole++;
        else
            r->torn++;
        cf_object_info_cleanup(&info);
    }
    return NULL;
}

static void test_readers_pin_versions_replaced_meanwhile(void **state)
{
    fixture *f = *state;
    atomic_int stop = 0;
    pin_reader r[4];
    pthread_t t[4];
    uint32_t all[] = {1, 2, 3};
    for (int v = 0; v < 40; v++) {
        char id[CF_STORE_UPLOAD_ID_LEN + 1], part[3][32];
        cf_err err;
        snprintf(part[0], sizeof part[0], "v%03done-", v);
        snprintf(part[1], sizeof part[1], "v%03dtwo-", v);
        snprintf(part[2], sizeof part[2], "v%03dthree", v);
        assert_int_equal(cf_store_upload_create(f->s, "b", "mp", 2, NULL, 0, id, &err), 0);
        for (uint32_t i = 0; i < 3; i++)
            put_part(f->s, id, i + 1, part[i], 0);
        complete_with(f->s, id, all, 3, 0);
        if (v == 0)
            for (int i = 0; i < 4; i++) {
                r[i] = (pin_reader){.s = f->s, .stop = &stop};
                assert_int_equal(pthread_create(&t[i], NULL, read_while_replaced, &r[i]), 0);
            }
    }
    atomic_store(&stop, 1);
    int whole = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].torn, 0);
        assert_int_equal(r[i].errors, 0);
        whole += r[i].whole;
    }
    assert_true(whole > 0);
    assert_int_equal(data_files(f), 3); /* every replaced version went with its last reader */
}

static void test_part_replacement_and_listing(void **state)
{
    fixture *f = *state;
    char id[CF_STORE_UPLOAD_ID_LEN + 1];
    cf_err err;
    assert_int_equal(cf_store_upload_create(f->s, "b", "k", 1, NULL, 0, id, &err), 0);
    for (uint32_t n = 1; n <= 5; n++)
        put_part(f->s, id, n * 2, "p", 0);
    put_part(f->s, id, 4, "replaced", 0);
    assert_int_equal(data_files(f), 5);

    cf_store_part *parts;
    size_t n;
    int truncated;
    assert_int_equal(cf_store_part_list(f->s, id, 2, 2, &parts, &n, &truncated, &err), 0);
    assert_int_equal(n, 2);
    assert_true(truncated);
    assert_int_equal(parts[0].number, 4);
    assert_int_equal(parts[0].info.size, 8);
    assert_int_equal(parts[1].number, 6);
    cf_store_parts_free(parts, n);
    assert_int_equal(cf_store_part_list(f->s, id, 8, 100, &parts, &n, &truncated, &err), 0);
    assert_int_equal(n, 1);
    assert_false(truncated);
    assert_int_equal(parts[0].number, 10);
    cf_store_parts_free(parts, n);
}

static void test_complete_refuses_a_part_replaced_meanwhile(void **state)
{
    fixture *f = *state;
    char id[CF_STORE_UPLOAD_ID_LEN + 1];
    cf_err err;
    assert_int_equal(cf_store_upload_create(f->s, "b", "k", 1, NULL, 0, id, &err), 0);
    put_part(f->s, id, 1, "first", 0);
    cf_store_part *parts;
    size_t n;
    assert_int_equal(cf_store_part_list(f->s, id, 0, 10, &parts, &n, NULL, &err), 0);
    put_part(f->s, id, 1, "second", 0);
    cf_object_info rec = {.size = parts[0].info.size, .segs = parts[0].info.segs, .nsegs = 1};
    assert_int_equal(cf_store_upload_complete(f->s, id, &rec, NULL, NULL, &err), CF_EINVAL);
    cf_store_parts_free(parts, n);
    assert_null(read_segments(f->s, "k"));
    assert_int_equal(data_files(f), 1);
}

static void test_abort_expire_and_bucket_delete_reclaim_parts(void **state)
{
    fixture *f = *state;
    char a[CF_STORE_UPLOAD_ID_LEN + 1], b[CF_STORE_UPLOAD_ID_LEN + 1], c[CF_STORE_UPLOAD_ID_LEN + 1];
    cf_err err;
    assert_int_equal(cf_store_upload_create(f->s, "b", "x", 1, NULL, 0, a, &err), 0);
    assert_int_equal(cf_store_upload_create(f->s, "b", "x", 1, NULL, 0, b, &err), 0);
    put_part(f->s, a, 1, "a1", 0);
    put_part(f->s, a, 2, "a2", 0);
    put_part(f->s, b, 1, "b1", 0);
    cf_store_upload *list;
    size_t n;
    assert_int_equal(cf_store_upload_list(f->s, "b", &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_true(list[0].initiated_ns <= list[1].initiated_ns);
    for (size_t i = 0; i < n; i++)
        cf_store_upload_cleanup(&list[i]);
    free(list);

    assert_int_equal(cf_store_upload_abort(f->s, a, &err), 0);
    assert_int_equal(data_files(f), 1);
    assert_int_equal(cf_store_upload_abort(f->s, a, &err), CF_ENOTFOUND);
    /* A part arriving after the abort is discarded, not leaked. */
    put_part(f->s, a, 3, "late", CF_ENOTFOUND);
    assert_int_equal(data_files(f), 1);

    size_t expired = 99;
    assert_int_equal(cf_store_upload_expire(f->s, 0, &expired, &err), 0);
    assert_int_equal(expired, 0);
    assert_int_equal(cf_store_upload_expire(f->s, INT64_MAX, &expired, &err), 0);
    assert_int_equal(expired, 1);
    assert_int_equal(data_files(f), 0);

    assert_int_equal(cf_store_upload_create(f->s, "b", "y", 1, NULL, 0, c, &err), 0);
    put_part(f->s, c, 1, "c1", 0);
    assert_int_equal(cf_store_bucket_delete(f->s, "b", &err), 0);
    assert_int_equal(data_files(f), 0);
    assert_int_equal(cf_store_upload_get(f->s, c, &(cf_store_upload){0}, &err), CF_ENOTFOUND);
    assert_int_equal(cf_store_upload_create(f->s, "b", "z", 1, NULL, 0, c, &err), CF_ENOTFOUND);
    assert_int_equal(cf_store_upload_get(f->s, "not-an-id", &(cf_store_upload){0}, &err), CF_ENOTFOUND);
}

static void test_recovery_keeps_parts_of_uploads_in_progress(void **state)
{
    fixture *f = *state;
    char id[CF_STORE_UPLOAD_ID_LEN + 1];
    cf_err err;
    assert_int_equal(cf_store_upload_create(f->s, "b", "k", 1, NULL, 0, id, &err), 0);
    put_part(f->s, id, 1, "survives", 0);
    cf_store_close(f->s);
    char p[600];
    snprintf(p, sizeof p, "%s/clean-shutdown", f->dir);
    unlink(p); /* as after a crash: the orphan scan runs */
    assert_int_equal(cf_store_open(f->dir, NULL, &f->s, &err), 0);
    assert_int_equal(data_files(f), 1);
    uint32_t chosen[] = {1};
    complete_with(f->s, id, chosen, 1, 0);
    char *got = read_segments(f->s, "k");
    assert_string_equal(got, "survives");
    free(got);
}

/* ---- conditional commits ---- */

static int put_if(cf_store *s, const char *key, const char *body, cf_store_condition *cond)
{
    cf_store_writer *w;
    cf_err err;
    assert_int_equal(cf_store_writer_begin(s, &w, &err), 0);
    assert_int_equal(cf_store_writer_write(w, body, strlen(body), &err), 0);
    cf_store_writer_set_condition(w, cond);
    return cf_store_writer_commit(w, "b", key, strlen(key), NULL, 0, NULL, &err);
}

static void test_conditional_commit(void **state)
{
    fixture *f = *state;
    cf_store_condition create = {.must_not_exist = 1};
    assert_int_equal(put_if(f->s, "k", "one", &create), 0);
    assert_int_equal(put_if(f->s, "k", "two", &create), CF_EPRECOND);
    assert_int_equal(create.failed, CF_STORE_COND_EXISTS);
    cf_store_condition stale = {.etag_match = "00000000000000000000000000000000"};
    assert_int_equal(put_if(f->s, "k", "two", &stale), CF_EPRECOND);
    assert_int_equal(stale.failed, CF_STORE_COND_MISMATCH);
    cf_store_condition missing = {.etag_match = "f97c5d29941bfb1b2fdab0874906ab82"};
    assert_int_equal(put_if(f->s, "nokey", "x", &missing), CF_EPRECOND);
    assert_int_equal(missing.failed, CF_STORE_COND_MISSING);
    char *got = read_all(f->s, "k", 1);
    assert_string_equal(got, "one");
    free(got);
    /* A failed condition leaves no data file behind. */
    assert_int_equal(data_files(f), 1);
    cf_store_condition swap = {.etag_match = "f97c5d29941bfb1b2fdab0874906ab82"}; /* md5("one") */
    assert_int_equal(put_if(f->s, "k", "two", &swap), 0);
    got = read_all(f->s, "k", 1);
    assert_string_equal(got, "two");
    free(got);
    assert_int_equal(data_files(f), 1);
}

/* ---- group commit ---- */

typedef struct committer {
    cf_store *s;
    char key[32];
    char body[64];
    int puts;  /* how many versions to write, one after another */
    int rc;    /* of the last commit */
    int acked; /* commits answered 0 */
} committer;

static void *commit_versions(void *arg)
{
    committer *c = arg;
    for (int v = 0; v < c->puts; v++) {
        cf_store_writer *w;
        cf_err err;
        snprintf(c->body, sizeof c->body, "%s version %d", c->key, v);
        c->rc = cf_store_writer_begin(c->s, &w, &err);
        if (!c->rc && (c->rc = cf_store_writer_write(w, c->body, strlen(c->body), &err)))
            cf_store_writer_abort(w);
        if (!c->rc)
            c->rc = cf_store_writer_commit(w, "b", c->key, strlen(c->key), NULL, 0, NULL, &err);
        if (c->rc)
            return NULL;
        c->acked++;
    }
    return NULL;
}

static void *commit_create_only(void *arg)
{
    committer *c = arg;
    cf_store_condition create = {.must_not_exist = 1};
    c->rc = put_if(c->s, c->key, "second", &create);
    return NULL;
}

#define COMMITTERS 16

/* COMMITTERS threads write 25 versions each of their own key at the same time; every last
 * version, and nothing else, must be there after the store is opened again. */
static void commit_concurrently_and_reopen(fixture *f, size_t files_expected)
{
    committer c[COMMITTERS];
    pthread_t t[COMMITTERS];
    for (int i = 0; i < COMMITTERS; i++) {
        c[i] = (committer){.s = f->s, .puts = 25};
        snprintf(c[i].key, sizeof c[i].key, "g/%02d", i);
        assert_int_equal(pthread_create(&t[i], NULL, commit_versions, &c[i]), 0);
    }
    for (int i = 0; i < COMMITTERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(c[i].rc, 0);
        assert_int_equal(c[i].acked, 25);
    }
    cf_store_close(f->s);
    cf_err err;
    assert_int_equal(cf_store_open(f->dir, NULL, &f->s, &err), 0);
    for (int i = 0; i < COMMITTERS; i++) {
        char *got = read_all(f->s, c[i].key, strlen(c[i].key));
        assert_non_null(got);
        assert_string_equal(got, c[i].body);
        free(got);
    }
    cf_store_stats st;
    assert_int_equal(cf_store_stats_get(f->s, &st, &err), 0);
    assert_int_equal(st.objects, COMMITTERS);
    assert_int_equal(data_files(f), files_expected);
}

static void test_group_commit_keeps_every_acknowledged_write(void **state)
{
    commit_concurrently_and_reopen(*state, COMMITTERS);
}

static void test_group_commit_keeps_every_acknowledged_small_write(void **state)
{
    commit_concurrently_and_reopen(*state, 0);
}

static void test_failed_group_commit_fails_its_whole_batch(void **state)
{
    fixture *f = *state;
    committer c[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        c[i] = (committer){.s = f->s, .puts = 1};
        snprintf(c[i].key, sizeof c[i].key, "f/%d", i);
        put_str(f->s, c[i].key, "previous");
    }
    /* All eight queue behind the hold, so they form one batch, whose commit then fails. */
    cf_store_hold_commits(f->s, 1);
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, commit_versions, &c[i]), 0);
    for (int spins = 0; cf_store_commits_queued(f->s) < 8; spins++) {
        assert_true(spins < 10000);
        usleep(1000);
    }
    cf_store_fail_nth_commit(f->s, 1);
    cf_store_hold_commits(f->s, 0);
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(c[i].rc, CF_EIO);
        assert_int_equal(c[i].acked, 0);
    }
    for (int i = 0; i < 8; i++) {
        char *got = read_all(f->s, c[i].key, strlen(c[i].key));
        assert_string_equal(got, "previous");
        free(got);
    }
    assert_int_equal(data_files(f), 8);
    /* The next commit goes through. */
    put_str(f->s, c[0].key, "after");
    char *got = read_all(f->s, c[0].key, strlen(c[0].key));
    assert_string_equal(got, "after");
    free(got);
}

static void test_refused_change_leaves_the_rest_of_its_batch(void **state)
{
    fixture *f = *state;
    put_str(f->s, "taken", "first");
    committer c[6];
    pthread_t t[6];
    cf_store_hold_commits(f->s, 1);
    for (int i = 0; i < 6; i++) {
        c[i] = (committer){.s = f->s, .puts = 1};
        snprintf(c[i].key, sizeof c[i].key, "r/%d", i);
        assert_int_equal(pthread_create(&t[i], NULL, commit_versions, &c[i]), 0);
    }
    for (int spins = 0; cf_store_commits_queued(f->s) < 6; spins++) {
        assert_true(spins < 10000);
        usleep(1000);
    }
    /* A create-only write of an existing key joins the same batch and alone is refused. */
    pthread_t refused;
    committer bad = {.s = f->s};
    strcpy(bad.key, "taken");
    assert_int_equal(pthread_create(&refused, NULL, commit_create_only, &bad), 0);
    for (int spins = 0; cf_store_commits_queued(f->s) < 7; spins++) {
        assert_true(spins < 10000);
        usleep(1000);
    }
    cf_store_hold_commits(f->s, 0);
    pthread_join(refused, NULL);
    assert_int_equal(bad.rc, CF_EPRECOND);
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(c[i].rc, 0);
        char *got = read_all(f->s, c[i].key, strlen(c[i].key));
        assert_string_equal(got, c[i].body);
        free(got);
    }
    char *got = read_all(f->s, "taken", 5);
    assert_string_equal(got, "first");
    free(got);
    assert_int_equal(data_files(f), 7);
}

/* ---- small bodies kept in their records ---- */

static void test_small_bodies_live_in_their_record(void **state)
{
    fixture *f = *state;
    cf_err err;
    put_str(f->s, "k", "hello");
    assert_int_equal(data_files(f), 0);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s/tmp", f->dir);
    assert_int_equal(count_files(tmp), 0);
    cf_object_info info;
    int fd = -1;
    assert_int_equal(cf_store_object_get(f->s, "b", "k", 1, &info, &fd, NULL, &err), 0);
    assert_int_equal(fd, -1);
    assert_int_equal(info.nsegs, 0);
    assert_int_equal(info.size, 5);
    assert_memory_equal(info.data, "hello", 5);
    assert_string_equal(info.etag, "5d41402abc4b2a76b9719d911017c592");
    /* A range of it, as GET and CopyObject read it. */
    cf_store_reader *rd;
    char buf[8] = {0};
    assert_int_equal(cf_store_reader_open(f->s, &info, 1, 3, &rd, &err), 0);
    assert_int_equal(cf_store_reader_read(rd, buf, sizeof buf, &err), 3);
    assert_int_equal(cf_store_reader_read(rd, buf + 3, sizeof buf, &err), 0);
    assert_string_equal(buf, "ell");
    cf_store_reader_free(rd);
    cf_object_info_cleanup(&info);

    /* Replaced by a large body: one data file; by a small one again: none (reclaimed). */
    size_t big = CF_STORE_INLINE_MAX + 1;
    char *body = malloc(big + 1);
    memset(body, 'x', big);
    body[big] = '\0';
    put_str(f->s, "k", body);
    assert_int_equal(data_files(f), 1);
    char *got = read_all(f->s, "k", 1);
    assert_string_equal(got, body);
    free(got);
    body[CF_STORE_INLINE_MAX] = '\0';
    put_str(f->s, "k", body); /* exactly the limit: still inline */
    assert_int_equal(data_files(f), 0);
    got = read_all(f->s, "k", 1);
    assert_string_equal(got, body);
    free(got);
    free(body);
    put_str(f->s, "empty", "");
    assert_int_equal(data_files(f), 0);
    got = read_all(f->s, "empty", 5);
    assert_string_equal(got, "");
    free(got);
    cf_store_stats st;
    assert_int_equal(cf_store_stats_get(f->s, &st, &err), 0);
    assert_int_equal(st.objects, 2);
    assert_int_equal(st.bytes, CF_STORE_INLINE_MAX);

    /* A crash (no clean-shutdown marker) and the orphan scan keep them. */
    cf_store_close(f->s);
    char p[600];
    snprintf(p, sizeof p, "%s/clean-shutdown", f->dir);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(cf_store_open(f->dir, NULL, &f->s, &err), 0);
    got = read_all(f->s, "k", 1);
    assert_int_equal(strlen(got), CF_STORE_INLINE_MAX);
    free(got);
    assert_int_equal(cf_store_object_delete(f->s, "b", "k", 1, &err), 0);
    assert_null(read_all(f->s, "k", 1));
}

static void test_body_growing_past_the_limit_moves_to_a_file(void **state)
{
    fixture *f = *state;
    cf_err err;
    char chunk[CF_STORE_INLINE_MAX / 2 + 1];
    memset(chunk, 'a', sizeof chunk);
    cf_store_writer *w;
    assert_int_equal(cf_store_writer_begin(f->s, &w, &err), 0);
    assert_int_equal(cf_store_writer_write(w, chunk, sizeof chunk, &err), 0);
    chunk[0] = 'b';
    assert_int_equal(cf_store_writer_write(w, chunk, sizeof chunk, &err), 0);
    assert_int_equal(cf_store_writer_commit(w, "b", "grown", 5, NULL, 0, NULL, &err), 0);
    assert_int_equal(data_files(f), 1);
    char *got = read_all(f->s, "grown", 5);
    assert_int_equal(strlen(got), 2 * sizeof chunk);
    assert_int_equal(got[0], 'a');
    assert_int_equal(got[sizeof chunk], 'b');
    assert_int_equal(got[sizeof chunk + 1], 'a');
    free(got);
    /* A body declared larger than the limit goes to its file from its first byte. */
    assert_int_equal(cf_store_writer_begin(f->s, &w, &err), 0);
    cf_store_writer_expect(w, CF_STORE_INLINE_MAX + 1);
    assert_int_equal(cf_store_writer_write(w, "x", 1, &err), 0);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s/tmp", f->dir);
    assert_int_equal(count_files(tmp), 1);
    cf_store_writer_abort(w);
    assert_int_equal(count_files(tmp), 0);
    assert_int_equal(data_files(f), 1);
}

static void test_small_part_gets_a_data_file(void **state)
{
    fixture *f = *state;
    cf_err err;
    char id[CF_STORE_UPLOAD_ID_LEN + 1];
    assert_int_equal(cf_store_upload_create(f->s, "b", "mp", 2, NULL, 0, id, &err), 0);
    cf_store_writer *w;
    assert_int_equal(cf_store_writer_begin(f->s, &w, &err), 0);
    assert_int_equal(cf_store_writer_write(w, "tail", 4, &err), 0);
    cf_object_info part;
    assert_int_equal(cf_store_part_commit(w, id, 1, NULL, 0, &part, &err), 0);
    /* Completion makes parts the object's segments without copying: a part needs its file. */
    assert_int_equal(part.nsegs, 1);
    assert_int_equal(data_files(f), 1);
    cf_object_info rec = {.size = 4, .segs = part.segs, .nsegs = 1};
    strcpy(rec.etag, "x-1");
    assert_int_equal(cf_store_upload_complete(f->s, id, &rec, NULL, NULL, &err), 0);
    char *got = read_all(f->s, "mp", 2);
    assert_string_equal(got, "tail");
    free(got);
    cf_object_info_cleanup(&part);
}

/* ---- access keys and settings ---- */

static void test_keys_and_settings(void **state)
{
    fixture *f = *state;
    cf_err err;
    cf_store_key k = {.access_key = "reader",
                      .secret_key = "s3cr3t-s3cr3t",
                      .policy = "readonly",
                      .bucket = "b",
                      .prefix = "public/",
                      .created_ns = 42};
    assert_int_equal(cf_store_key_add(f->s, &k, &err), 0);
    assert_int_equal(cf_store_key_add(f->s, &k, &err), CF_EEXISTS);
    cf_store_key got;
    assert_int_equal(cf_store_key_get(f->s, "reader", &got, &err), 0);
    assert_memory_equal(&got, &k, sizeof got - sizeof got.prefix);
    assert_string_equal(got.prefix, "public/");
    assert_int_equal(cf_store_key_get(f->s, "nobody", &got, &err), CF_ENOTFOUND);
    strcpy(k.access_key, "alpha");
    assert_int_equal(cf_store_key_add(f->s, &k, &err), 0);
    cf_store_key *list;
    size_t n;
    assert_int_equal(cf_store_key_list(f->s, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].access_key, "alpha");
    free(list);
    assert_int_equal(cf_store_key_delete(f->s, "alpha", &err), 0);
    assert_int_equal(cf_store_key_delete(f->s, "alpha", &err), CF_ENOTFOUND);

    char *v;
    size_t len;
    assert_int_equal(cf_store_meta_get(f->s, "policy/b", &v, &len, &err), CF_ENOTFOUND);
    assert_int_equal(cf_store_meta_put(f->s, "policy/b", "{}", 2, &err), 0);
    assert_int_equal(cf_store_meta_get(f->s, "policy/b", &v, &len, &err), 0);
    assert_string_equal(v, "{}");
    free(v);
    /* A bucket's policy goes with the bucket. */
    assert_int_equal(cf_store_bucket_delete(f->s, "b", &err), 0);
    assert_int_equal(cf_store_bucket_create(f->s, "b", &err), 0);
    assert_int_equal(cf_store_meta_get(f->s, "policy/b", &v, &len, &err), CF_ENOTFOUND);
    assert_int_equal(cf_store_meta_put(f->s, "policy/b", NULL, 0, &err), 0);
}

/* A record as the version before rate groups wrote it: version byte 1, no group field. */
static void put_v1_key_record(fixture *f, const char *access_key, const char *secret, const char *policy)
{
    unsigned char rec[256];
    size_t n = 0;
    int64_t created = 7;
    rec[n++] = 1;
    memcpy(rec + n, &created, 8);
    n += 8;
    const char *fields[] = {secret, policy, "b", ""};
    for (size_t i = 0; i < 4; i++) {
        uint16_t len = (uint16_t)strlen(fields[i]);
        memcpy(rec + n, &len, 2);
        memcpy(rec + n + 2, fields[i], len);
        n += 2u + len;
    }
    MDB_txn *txn;
    MDB_val k = {strlen(access_key), (void *)access_key}, v = {n, rec};
    assert_int_equal(mdb_txn_begin(f->s->env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_put(txn, f->s->keys, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
}

static void test_key_rate_groups(void **state)
{
    fixture *f = *state;
    cf_err err;
    cf_store_key k = {
        .access_key = "premium-1", .secret_key = "s", .policy = "readonly", .rate_group = "premium"};
    assert_int_equal(cf_store_key_add(f->s, &k, &err), 0);
    cf_store_key got;
    assert_int_equal(cf_store_key_get(f->s, "premium-1", &got, &err), 0);
    assert_string_equal(got.rate_group, "premium");
    assert_string_equal(got.policy, "readonly");

    /* Names the metrics label and the setting's name can carry as they are, nothing else. */
    const char *bad[] = {"Premium", "free tier", "a/b", "x\"y"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cf_store_key b = {.access_key = "bad", .secret_key = "s", .policy = "readonly"};
        snprintf(b.rate_group, sizeof b.rate_group, "%s", bad[i]);
        assert_int_equal(cf_store_key_add(f->s, &b, &err), CF_EINVAL);
        assert_non_null(strstr(err.msg, "rate group"));
        assert_int_equal(cf_store_key_get(f->s, "bad", &got, &err), CF_ENOTFOUND);
    }
    assert_false(cf_store_rate_group_name_valid("0123456789012345678901234567890123"));
    assert_true(cf_store_rate_group_name_valid("01234567890123456789012345678901"));
    assert_true(cf_store_rate_group_name_valid(""));

    /* Keys written before rate groups load, without a group, beside new ones. */
    put_v1_key_record(f, "old-key", "old-secret", "readwrite");
    assert_int_equal(cf_store_key_get(f->s, "old-key", &got, &err), 0);
    assert_string_equal(got.secret_key, "old-secret");
    assert_string_equal(got.policy, "readwrite");
    assert_string_equal(got.bucket, "b");
    assert_string_equal(got.rate_group, "");
    assert_int_equal(got.created_ns, 7);
    cf_store_key *list;
    size_t n;
    assert_int_equal(cf_store_key_list(f->s, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].access_key, "old-key");
    assert_string_equal(list[1].rate_group, "premium");
    free(list);

    /* A version this build does not know is refused rather than misread. */
    MDB_txn *txn;
    MDB_val key = {7, "old-key"}, v;
    assert_int_equal(mdb_txn_begin(f->s->env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_get(txn, f->s->keys, &key, &v), 0);
    unsigned char copy[256];
    memcpy(copy, v.mv_data, v.mv_size);
    copy[0] = 3;
    v.mv_data = copy;
    assert_int_equal(mdb_put(txn, f->s->keys, &key, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    assert_int_equal(cf_store_key_get(f->s, "old-key", &got, &err), CF_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_delimiter_rolls_up_prefixes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pages_visit_every_entry_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_start_after_and_other_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_keys_keep_order_and_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overwrite_and_delete_reclaim_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fd_survives_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_leaves_previous_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_to_missing_bucket_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes_to_a_missing_bucket_say_so, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_index_refuses_writes_and_keeps_what_it_held, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recovery_removes_crash_leftovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_headers_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_completes_chosen_parts_without_copying, setup, teardown),
        cmocka_unit_test_setup_teardown(test_part_replacement_and_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_complete_refuses_a_part_replaced_meanwhile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_expire_and_bucket_delete_reclaim_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_keeps_parts_of_uploads_in_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_and_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_rate_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conditional_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_completion_is_kept_until_it_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_holds_its_version_across_an_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_pin_versions_replaced_meanwhile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_keeps_every_acknowledged_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_keeps_every_acknowledged_small_write, setup_inline,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_group_commit_fails_its_whole_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_change_leaves_the_rest_of_its_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_bodies_live_in_their_record, setup_inline, teardown),
        cmocka_unit_test_setup_teardown(test_body_growing_past_the_limit_moves_to_a_file, setup_inline,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_small_part_gets_a_data_file, setup_inline, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
