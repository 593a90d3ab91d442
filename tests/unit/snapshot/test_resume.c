/* test_resume.c - what resuming an interrupted create relies on: the same tree and options give
 * the same archive bytes (several compression threads, encryption, a pax extension header whose
 * access time the first read moved), the fingerprint moves when the tree does, and the resume
 * state survives a round trip through a repository with its salts and parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "archive/chunk.h"
#include "archive/tar.h"
#include "core/buf.h"
#include "core/fs.h"
#include "snapshot/resume.h"

static char dir[256], src[300];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/coffer-test-resume-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(src, sizeof src, "%s/src", dir);
    cf_err err;
    assert_int_equal(cf_fs_mkdirs(src, 0755, &err), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_fs_remove_tree(dir, NULL);
    return 0;
}

/* A name past ustar's 100 bytes makes libarchive write a pax extension header, the one place
 * access and change times would go. */
#define LONG_NAME                                                                                            \
    "a-file-whose-name-is-longer-than-the-hundred-bytes-a-ustar-header-holds-so-that-a-pax-header-is-"       \
    "needed."                                                                                                \
    "bin"

static void put(const char *name, size_t n, unsigned seed)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", src, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        fputc((int)(seed >> 16), f);
    }
    fclose(f);
    /* An access time before the modification: relatime moves it at the first read. */
    struct timespec ts[2] = {{1000000000, 0}, {.tv_nsec = UTIME_OMIT}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void make_tree(void)
{
    put(LONG_NAME, 3 << 20, 1);
    put("small.txt", 100, 2);
    char sub[400];
    snprintf(sub, sizeof sub, "%s/sub", src);
    assert_int_equal(mkdir(sub, 0750), 0);
    put("sub/data", (5 << 20) + 17, 3);
}

static int sink(void *ctx, const void *p, size_t n, cf_err *err)
{
    return cf_buf_append(ctx, p, n) ? cf_err_set(err, CF_ENOMEM, "test buffer full") : 0;
}

static int to_writer(void *ctx, const void *p, size_t n, cf_err *err)
{
    return cf_archive_writer_write(ctx, p, n, err);
}

/* The archive create would store: the tar of src, in 1 MiB chunks, zstd, sealed, 3 workers. */
static void archive_of(cf_buf *out)
{
    cf_master_key master;
    cf_archive_key key;
    unsigned char raw[32], salt[CF_ARCHIVE_SALT_LEN];
    memset(raw, 7, sizeof raw);
    memset(salt, 9, sizeof salt);
    cf_err err;
    assert_int_equal(cf_master_key_from_bytes(raw, sizeof raw, &master, &err), 0);
    assert_int_equal(cf_archive_key_derive(&master, salt, &key, &err), 0);
    cf_archive_writer_opts wo = {{CF_CODEC_ZSTD, 3, &key}, 1 << 20, 3};
    cf_archive_writer *w;
    cf_buf_init(out, (size_t)64 << 20);
    assert_int_equal(cf_archive_writer_new(&wo, sink, out, &w, &err), 0);
    assert_int_equal(cf_tar_write_dir(src, NULL, to_writer, w, NULL, &err), 0);
    cf_archive_result res;
    assert_int_equal(cf_archive_writer_finish(w, &res, &err), 0);
    cf_archive_writer_free(w);
    cf_archive_key_cleanup(&key);
    cf_master_key_cleanup(&master);
}

static void fingerprint(unsigned char d[CF_SHA256_LEN])
{
    uint64_t bytes, files;
    cf_err err;
    assert_int_equal(cf_tar_fingerprint(src, NULL, &bytes, &files, d, &err), 0);
    assert_int_equal(files, 4);
}

static void test_same_tree_same_archive(void **state)
{
    (void)state;
    make_tree();
    unsigned char f1[CF_SHA256_LEN], f2[CF_SHA256_LEN];
    fingerprint(f1);
    cf_buf a, b;
    archive_of(&a);
    archive_of(&b);
    fingerprint(f2);
    assert_true(a.len > (8 << 20));
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_memory_equal(f1, f2, sizeof f1); /* reading the tree is no change */
    cf_buf_cleanup(&a);
    cf_buf_cleanup(&b);
}

static void test_fingerprint_moves_with_the_tree(void **state)
{
    (void)state;
    make_tree();
    unsigned char before[CF_SHA256_LEN], after[CF_SHA256_LEN];
    fingerprint(before);
    /* The same size and the same mtime, other bytes: the change time still tells. */
    char path[600];
    snprintf(path, sizeof path, "%s/small.txt", src);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    usleep(20000);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, 0), 1);
    close(fd);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    fingerprint(after);
    assert_memory_not_equal(before, after, sizeof before);
}

/* A file's fingerprint moves with each of what tells a write (size, mtime and ctime to the
 * nanosecond) or a replacement (device, inode), and with nothing else. */
static void test_file_fingerprint_fields(void **state)
{
    (void)state;
    struct stat base = {0}, st;
    base.st_dev = 8;
    base.st_ino = 1234;
    base.st_size = 1 << 20;
    base.st_mtim = (struct timespec){1795361400, 5};
    base.st_ctim = (struct timespec){1795361400, 7};
    base.st_mode = S_IFREG | 0644;
    unsigned char a[CF_SHA256_LEN], b[CF_SHA256_LEN];
    cf_resume_file_fingerprint(&base, a);
    st = base;
    st.st_atim = (struct timespec){1, 1}; /* a read moves the access time only */
    st.st_nlink = 2;
    cf_resume_file_fingerprint(&st, b);
    assert_memory_equal(a, b, sizeof a);
    for (int field = 0; field < 6; field++) {
        st = base;
        switch (field) {
        case 0: st.st_dev++; break;
        case 1: st.st_ino++; break;
        case 2: st.st_size++; break;
        case 3: st.st_mtim.tv_nsec++; break;
        case 4: st.st_ctim.tv_nsec++; break;
        default: st.st_ctim.tv_sec++; break;
        }
        cf_resume_file_fingerprint(&st, b);
        assert_memory_not_equal(a, b, sizeof a);
    }
}

static void test_state_round_trip(void **state)
{
    (void)state;
    char rdir[400];
    snprintf(rdir, sizeof rdir, "%s/repo", dir);
    cf_repo *repo;
    cf_err err;
    assert_int_equal(cf_repo_open_dir(rdir, &repo, &err), 0);
    cf_resume_state st = {0}, back = {0};
    const char *ex[] = {"*.log"};
    cf_resume_key("ns", "host", "/src", 0, CF_CODEC_ZSTD, 3, 0, "", ex, 1, 0, 0, NULL, 0, st.key);
    char other[512];
    cf_resume_key("ns", "host", "/src", 0, CF_CODEC_ZSTD, 4, 0, "", ex, 1, 0, 0, NULL, 0, other);
    assert_string_not_equal(st.key, other); /* another level: another run */
    assert_int_equal(strncmp(st.key, "ns/.resume/", 11), 0);
    memcpy(back.key, st.key, sizeof back.key);
    assert_int_equal(cf_resume_load(repo, &back, &err), CF_ENOTFOUND);
    snprintf(st.id, sizeof st.id, "20261122T153000Z-7f3a");
    st.created_ns = 1795361400123456789LL;
    memset(st.fingerprint, 0xab, sizeof st.fingerprint);
    st.encrypted = 1;
    memset(st.enc.salt, 0x11, sizeof st.enc.salt);
    memset(st.enc.scrypt.salt, 0x22, sizeof st.enc.scrypt.salt);
    st.enc.scrypt.n = 1 << 15;
    st.enc.passphrase = 1;
    snprintf(st.enc.key_id, sizeof st.enc.key_id, "0123456789abcdef");
    snprintf(st.upload_id, sizeof st.upload_id, "upload-1");
    st.part_size = 16 << 20;
    for (unsigned i = 1; i <= 3; i++)
        assert_int_equal(cf_resume_note_part(&st, i, (uint64_t)i << 20, 0xfffffff0u + i), 0);
    assert_int_equal(cf_resume_note_part(&st, 5, 1, 1), CF_EINTERNAL); /* out of order */
    assert_int_equal(cf_resume_save(repo, &st, &err), 0);
    assert_int_equal(cf_resume_load(repo, &back, &err), 0);
    assert_string_equal(back.id, st.id);
    assert_true(back.created_ns == st.created_ns);
    assert_memory_equal(back.fingerprint, st.fingerprint, sizeof st.fingerprint);
    assert_int_equal(back.encrypted, 1);
    assert_memory_equal(&back.enc.salt, &st.enc.salt, sizeof st.enc.salt);
    assert_memory_equal(&back.enc.scrypt.salt, &st.enc.scrypt.salt, sizeof st.enc.scrypt.salt);
    assert_string_equal(back.enc.key_id, st.enc.key_id);
    assert_string_equal(back.upload_id, "upload-1");
    assert_int_equal(back.nparts, 3);
    assert_int_equal(back.sizes[2], 3 << 20);
    assert_int_equal(back.crcs[2], 0xfffffff3u);
    /* A state this version did not write is no state: the create starts over. */
    cf_repo_writer *w;
    assert_int_equal(cf_repo_writer_begin(repo, st.key, 0, &w, &err), 0);
    assert_int_equal(cf_repo_writer_write(w, "{\"format\": 99}", 14, &err), 0);
    assert_int_equal(cf_repo_writer_commit(w, &err), 0);
    assert_int_equal(cf_resume_load(repo, &back, &err), CF_ECORRUPT);
    cf_resume_reset(&st);
    cf_resume_reset(&back);
    cf_repo_close(repo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_tree_same_archive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint_moves_with_the_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_round_trip, setup, teardown),
        cmocka_unit_test(test_file_fingerprint_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
