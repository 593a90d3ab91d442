/*
 * test_tar.c - directory → pax tar → chunked, compressed, sealed archive → extraction,
 * compared with `diff -r`; the standard tools reading the same stream; and extraction refusing
 * entries that would land outside the destination.
 */
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
#include <archive.h>
#include <archive_entry.h>

#include "archive/chunk.h"
#include "archive/seal.h"
#include "archive/tar.h"
#include "core/buf.h"
#include "core/err.h"

static int buf_sink(void *ctx, const void *p, size_t n, cf_err *err)
{
    int rc = cf_buf_append(ctx, p, n);
    return rc ? cf_err_set(err, rc, "test sink full") : 0;
}

static int buf_fetch(void *ctx, uint64_t offset, uint64_t size, void *out, cf_err *err)
{
    cf_buf *b = ctx;
    if (offset + size > b->len)
        return cf_err_set(err, CF_ERANGE, "fetch past the end");
    memcpy(out, b->data + offset, size);
    return 0;
}

typedef struct once {
    const cf_buf *b;
    int done;
} once;

static int pull_once(void *ctx, const void **p, size_t *n, cf_err *err)
{
    once *o = ctx;
    *p = o->b->data;
    *n = o->done ? 0 : o->b->len;
    o->done = 1;
    return 0;
}

static void put_file(const char *dir, const char *name, const void *p, size_t n, mode_t mode)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* A tree with a large file, an empty one, a subdirectory, a symlink and a hard link. */
static void make_tree(char *root)
{
    assert_non_null(mkdtemp(root));
    char path[512];
    size_t n = 300000;
    unsigned char *big = malloc(n);
    assert_non_null(big);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (unsigned char)(i % 3 ? x >> 16 : 'a');
    }
    put_file(root, "big.bin", big, n, 0640);
    free(big);
    put_file(root, "empty", "", 0, 0600);
    snprintf(path, sizeof path, "%s/sub", root);
    assert_int_equal(mkdir(path, 0750), 0);
    put_file(root, "sub/deep.txt", "deep\n", 5, 0644);
    snprintf(path, sizeof path, "%s/link", root);
    assert_int_equal(symlink("sub/deep.txt", path), 0);
    char target[512];
    snprintf(target, sizeof target, "%s/big.bin", root);
    snprintf(path, sizeof path, "%s/hardlink", root);
    assert_int_equal(link(target, path), 0);
}

static void test_directory_round_trip_through_sealed_archive(void **state)
{
    (void)state;
    char src[] = "/tmp/cf_tar_src_XXXXXX", dst[] = "/tmp/cf_tar_dst_XXXXXX";
    make_tree(src);
    assert_non_null(mkdtemp(dst));

    cf_buf tar;
    cf_buf_init(&tar, 16u << 20);
    uint64_t files = 0;
    cf_err err;
    int rc = cf_tar_write_dir(src, NULL, buf_sink, &tar, &files, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(files, 6); /* big.bin empty sub sub/deep.txt link hardlink */

    unsigned char raw[32], salt[32];
    memset(raw, 9, sizeof raw);
    memset(salt, 8, sizeof salt);
    cf_master_key m;
    cf_archive_key key;
    assert_int_equal(cf_master_key_from_bytes(raw, sizeof raw, &m, NULL), 0);
    assert_int_equal(cf_archive_key_derive(&m, salt, &key, NULL), 0);
    cf_archive_writer_opts o = {
        .params = {.codec = CF_CODEC_ZSTD, .key = &key}, .chunk_size = 16 << 10, .threads = 2};
    cf_buf arch;
    cf_buf_init(&arch, 16u << 20);
    cf_archive_writer *w;
    cf_archive_result res;
    assert_int_equal(cf_archive_writer_new(&o, buf_sink, &arch, &w, &err), 0);
    assert_int_equal(cf_archive_writer_write(w, tar.data, tar.len, &err), 0);
    assert_int_equal(cf_archive_writer_finish(w, &res, &err), 0);
    assert_true(res.nchunks > 2);

    cf_archive_read_opts ro = {.params = o.params,
                               .key_id = key.key_id,
                               .sha256 = res.sha256,
                               .size = res.size,
                               .raw_size = res.raw_size};
    cf_archive_reader *r;
    assert_int_equal(cf_archive_reader_new(&ro, res.chunks, res.nchunks, buf_fetch, &arch, &r, &err), 0);
    rc = cf_tar_extract(dst, cf_tar_pull_from_reader, r, &files, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(files, 6);
    cf_archive_reader_free(r);
    cf_archive_writer_free(w);

    assert_int_equal(run("diff -r --no-dereference %s %s", src, dst), 0);
    struct stat a, b, h;
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/big.bin", dst);
    snprintf(p2, sizeof p2, "%s/hardlink", dst);
    assert_int_equal(stat(p1, &a), 0);
    assert_int_equal(stat(p2, &h), 0);
    assert_int_equal(a.st_mode & 0777, 0640);
    assert_int_equal(a.st_ino, h.st_ino); /* still a hard link */
    snprintf(p1, sizeof p1, "%s/big.bin", src);
    assert_int_equal(stat(p1, &b), 0);
    assert_int_equal(a.st_mtime, b.st_mtime);
    snprintf(p2, sizeof p2, "%s/link", dst);
    assert_int_equal(lstat(p2, &a), 0);
    assert_true(S_ISLNK(a.st_mode));

    /* The same tar stream is what GNU tar reads, plain or through zstd. */
    char tarfile[] = "/tmp/cf_tar_file_XXXXXX", dst2[] = "/tmp/cf_tar_dst2_XXXXXX";
    int fd = mkstemp(tarfile);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, tar.data, tar.len), (ssize_t)tar.len);
    close(fd);
    assert_non_null(mkdtemp(dst2));
    assert_int_equal(run("tar -xf %s -C %s && diff -r --no-dereference %s %s", tarfile, dst2, src, dst2), 0);

    assert_int_equal(run("rm -rf %s %s %s %s", src, dst, dst2, tarfile), 0);
    cf_buf_cleanup(&tar);
    cf_buf_cleanup(&arch);
    cf_master_key_cleanup(&m);
    cf_archive_key_cleanup(&key);
}

static la_ssize_t mem_write(struct archive *a, void *ctx, const void *p, size_t n)
{
    return cf_buf_append(ctx, p, n) == 0 ? (la_ssize_t)n : -1;
}

/* A tar holding a harmless file, then the hostile entry described by type/name/target. */
static void hostile_tar(cf_buf *out, int type, const char *name, const char *target, const char *then)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    cf_buf_init(out, 1u << 20);
    assert_int_equal(archive_write_open2(a, out, NULL, mem_write, NULL, NULL), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "ok.txt");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 2);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, "ok", 2), 2);
    archive_entry_clear(e);
    archive_entry_set_pathname(e, name);
    archive_entry_set_perm(e, 0644);
    if (type == AE_IFLNK) {
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, target);
    } else if (target) {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, target);
    } else {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, 4);
    }
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    if (type != AE_IFLNK && !target)
        assert_int_equal(archive_write_data(a, "evil", 4), 4);
    if (then && then[0] == '!') {
        /* "!X": a hard link X to the entry above, then a file under X. */
        archive_entry_clear(e);
        archive_entry_set_pathname(e, then + 1);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, name);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        static char under[256];
        snprintf(under, sizeof under, "%s/evil", then + 1);
        then = under;
    }
    if (then) {
        archive_entry_clear(e);
        archive_entry_set_pathname(e, then);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, 4);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        assert_int_equal(archive_write_data(a, "evil", 4), 4);
    }
    archive_entry_free(e);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

static void expect_refused(int type, const char *name, const char *target, const char *then,
                           const char *needle)
{
    char base[] = "/tmp/cf_tar_evil_XXXXXX", dst[600];
    assert_non_null(mkdtemp(base));
    snprintf(dst, sizeof dst, "%s/dst", base);
    assert_int_equal(mkdir(dst, 0700), 0);
    cf_buf t;
    hostile_tar(&t, type, name, target, then);
    once o = {.b = &t};
    cf_err err;
    cf_err_clear(&err);
    int rc = cf_tar_extract(dst, pull_once, &o, NULL, &err);
    if (rc != CF_EDENIED || !strstr(err.msg, needle))
        fail_msg("want denied with '%s', got %s: '%s'", needle, cf_strerror(rc), err.msg);
    /* Nothing escaped next to dst, and the harmless entry before it was extracted. */
    assert_int_equal(run("test -f %s/ok.txt && test \"$(ls %s)\" = dst && test ! -e /tmp/evil", dst, base),
                     0);
    assert_int_equal(run("rm -rf %s", base), 0);
    cf_buf_cleanup(&t);
}

static void test_extraction_refuses_escapes(void **state)
{
    (void)state;
    expect_refused(AE_IFREG, "../evil", NULL, NULL, "\"../evil\": it has a \"..\" component");
    expect_refused(AE_IFREG, "a/../../evil", NULL, NULL, "has a \"..\" component");
    expect_refused(AE_IFREG, "/tmp/evil", NULL, NULL, "\"/tmp/evil\": it is an absolute path");
    expect_refused(AE_IFREG, "h", "../evil", NULL, "hard link whose target leaves");
    /* A symlink may point anywhere; writing through it may not. */
    expect_refused(AE_IFLNK, "up", "..", "up/evil", "\"up/evil\"");
    expect_refused(AE_IFLNK, "tmp", "/tmp", "tmp/evil", "\"tmp/evil\"");
    /* The same path spelled otherwise is the same path. */
    expect_refused(AE_IFLNK, "tmp", "/tmp", "./tmp//evil", "written through a symlink (\"tmp\")");
    expect_refused(AE_IFLNK, "d/tmp", "/tmp", "d/./tmp/evil", "(\"d/tmp\")");
    /* A hard link to a symlink is one too: nothing goes through either. */
    expect_refused(AE_IFLNK, "tmp", "/tmp", "tmp/x/evil", "(\"tmp\")");
    expect_refused(AE_IFLNK, "s", "/tmp", "!h", "(\"h\")");
}

/* A resumed extraction (cf_tar_extract_ex with a base) finds its destination holding what the
 * interrupted one made: its symlinks are checked as if this run had made them. */
static void test_resumed_extraction_knows_earlier_symlinks(void **state)
{
    (void)state;
    char base[] = "/tmp/cf_tar_resume_XXXXXX", dst[600], link[700];
    assert_non_null(mkdtemp(base));
    snprintf(dst, sizeof dst, "%s/dst", base);
    assert_int_equal(mkdir(dst, 0700), 0);
    snprintf(link, sizeof link, "%s/d", dst);
    assert_int_equal(mkdir(link, 0700), 0);
    snprintf(link, sizeof link, "%s/d/tmp", dst);
    assert_int_equal(symlink("/tmp", link), 0);
    cf_buf t;
    hostile_tar(&t, AE_IFREG, "d/tmp/evil", NULL, NULL);
    once o = {.b = &t};
    cf_err err;
    cf_tar_extract_opts xo = {.base = 4096, .done_before = 7};
    uint64_t files = 0;
    int rc = cf_tar_extract_ex(dst, pull_once, &o, &xo, &files, &err);
    if (rc != CF_EDENIED || !strstr(err.msg, "written through a symlink (\"d/tmp\")"))
        fail_msg("want denied through d/tmp, got %s: '%s'", cf_strerror(rc), err.msg);
    assert_int_equal(run("test -f %s/ok.txt && test ! -e /tmp/evil", dst), 0);
    /* A directory of the state that became a symlink (an entry after the checkpoint replaced
     * it): its mode and times are not set through it. */
    char outside[700];
    snprintf(outside, sizeof outside, "%s/outside", base);
    assert_int_equal(mkdir(outside, 0755), 0);
    snprintf(link, sizeof link, "%s/a", dst);
    assert_int_equal(symlink(outside, link), 0);
    cf_tar_entry_info dir = {.rel = "a", .is_dir = 1, .mode = 040700, .mtime = 1000};
    assert_int_not_equal(cf_tar_restore_dir(dst, &dir, &err), 0);
    dir.rel = "d/tmp";
    assert_int_not_equal(cf_tar_restore_dir(dst, &dir, &err), 0);
    struct stat st;
    assert_int_equal(stat(outside, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    assert_true(st.st_mtime != 1000);
    dir.rel = "d";
    assert_int_equal(cf_tar_restore_dir(dst, &dir, &err), 0);
    snprintf(link, sizeof link, "%s/d", dst);
    assert_int_equal(stat(link, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(st.st_mtime, 1000);
    /* Not empty, and that is what a resumed extraction expects; a fresh one refuses it. */
    o.done = 0;
    assert_int_equal(cf_tar_extract(dst, pull_once, &o, NULL, &err), CF_EEXISTS);
    assert_int_equal(run("rm -rf %s", base), 0);
    cf_buf_cleanup(&t);
}

static void test_missing_directory_is_named(void **state)
{
    (void)state;
    cf_buf b;
    cf_buf_init(&b, 1 << 20);
    cf_err err;
    assert_int_equal(cf_tar_write_dir("/nonexistent/coffer", NULL, buf_sink, &b, NULL, &err), CF_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/coffer"));
    once o = {.b = &b};
    assert_int_equal(cf_tar_extract("/nonexistent/coffer", pull_once, &o, NULL, &err), CF_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/coffer"));
    cf_buf_cleanup(&b);
}

/* Names of the entries in a tar stream, sorted, joined by spaces. */
static void entry_names(const cf_buf *tar, char *out, size_t cap)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, tar->data, tar->len), ARCHIVE_OK);
    char names[32][128];
    int n = 0;
    struct archive_entry *e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK && n < 32)
        snprintf(names[n++], sizeof names[0], "%s", archive_entry_pathname(e));
    archive_read_free(a);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? " " : "", names[i]);
}

static void test_exclusions_and_measure(void **state)
{
    (void)state;
    char src[] = "/tmp/cf_tar_ex_XXXXXX";
    make_tree(src); /* big.bin empty sub/ sub/deep.txt link hardlink */
    const char *const patterns[] = {"empty", "/sub/deep.txt", "*link"};
    cf_tar_write_opts o = {.exclude = patterns, .nexclude = 3};
    cf_buf tar;
    cf_buf_init(&tar, 16u << 20);
    uint64_t files = 0, bytes = 0, mfiles = 0;
    cf_err err;
    assert_int_equal(cf_tar_write_dir(src, &o, buf_sink, &tar, &files, &err), 0);
    char names[1024];
    entry_names(&tar, names, sizeof names);
    assert_string_equal(names, "big.bin sub/");
    assert_int_equal(files, 2);
    assert_int_equal(cf_tar_measure(src, &o, &bytes, &mfiles, &err), 0);
    assert_int_equal(mfiles, 2);
    assert_int_equal(bytes, 300000);

    /* A trailing slash: directories only, so the file named like the pattern stays. */
    const char *const dirs_only[] = {"sub/", "big.bin/"};
    cf_tar_write_opts d = {.exclude = dirs_only, .nexclude = 2};
    tar.len = 0;
    assert_int_equal(cf_tar_write_dir(src, &d, buf_sink, &tar, &files, &err), 0);
    entry_names(&tar, names, sizeof names);
    assert_string_equal(names, "big.bin empty hardlink link");
    cf_buf_cleanup(&tar);
    run("rm -rf %s", src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directory_round_trip_through_sealed_archive),
        cmocka_unit_test(test_extraction_refuses_escapes),
        cmocka_unit_test(test_resumed_extraction_knows_earlier_symlinks),
        cmocka_unit_test(test_missing_directory_is_named),
        cmocka_unit_test(test_exclusions_and_measure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
