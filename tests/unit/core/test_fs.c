/* test_fs.c - the durable file helpers report failures as CF_E codes naming the file. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fs.h"

static void test_write_all_writes_everything(void **state)
{
    (void)state;
    char path[] = "/tmp/coffer-fs-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    cf_err err = {0};
    assert_int_equal(cf_fs_write_all(fd, "hello", 5, path, &err), 0);
    assert_int_equal(err.code, 0);
    char back[8] = {0};
    assert_int_equal(pread(fd, back, sizeof back, 0), 5);
    assert_string_equal(back, "hello");
    close(fd);
    unlink(path);
}

/* Not -1 and errno: a negative code and a message with the file and the system's cause. */
static void test_write_all_failure_is_a_code_and_names_the_file(void **state)
{
    (void)state;
    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    cf_err err = {0};
    int rc = cf_fs_write_all(fd, "x", 1, "/dev/null", &err);
    assert_int_equal(rc, CF_EIO);
    assert_int_equal(err.code, CF_EIO);
    assert_non_null(strstr(err.msg, "'/dev/null'"));
    assert_non_null(strstr(err.msg, strerror(EBADF)));
    assert_int_equal(cf_fs_write_all(fd, "x", 1, "/dev/null", NULL), CF_EIO);
    close(fd);
}

static void test_write_atomic_reports_a_missing_directory(void **state)
{
    (void)state;
    cf_err err = {0};
    int rc = cf_fs_write_atomic("/nonexistent-coffer-dir/f", "x", 1, 0600, &err);
    assert_int_equal(rc, CF_ENOTFOUND);
    assert_int_equal(err.code, CF_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent-coffer-dir/f"));
}

/* The temporary name is predictable (PATH.tmp.PID): a link planted there by whoever can write
 * the directory must not be followed (it would truncate and overwrite its target, then become
 * PATH), and a stale file left there by a crash must not stop the write. */
static void test_write_atomic_follows_no_planted_link(void **state)
{
    (void)state;
    char dir[] = "/tmp/coffer-fs-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], tmp[160], victim[128];
    snprintf(path, sizeof path, "%s/users", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    snprintf(victim, sizeof victim, "%s/victim", dir);
    int fd = open(victim, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "precious", 8), 8);
    close(fd);
    assert_int_equal(symlink(victim, tmp), 0);
    cf_err err = {0};
    assert_int_equal(cf_fs_write_atomic(path, "new", 3, 0600, &err), 0);
    char *back = NULL;
    size_t n = 0;
    assert_int_equal(cf_fs_read_small(victim, 64, &back, &n, &err), 0);
    assert_int_equal(n, 8);
    assert_memory_equal(back, "precious", 8);
    free(back);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(lstat(tmp, &st), -1);
    /* A stale regular file at the temporary name. */
    fd = open(tmp, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(cf_fs_write_atomic(path, "newer", 5, 0600, &err), 0);
    assert_int_equal(lstat(tmp, &st), -1);
    unlink(path);
    unlink(victim);
    rmdir(dir);
}

static void test_read_small_round_trip_and_limit(void **state)
{
    (void)state;
    char dir[] = "/tmp/coffer-fs-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/f", dir);
    assert_int_equal(cf_fs_write_atomic(path, "0123456789", 10, 0600, NULL), 0);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(cf_fs_read_small(path, 64, &data, &len, NULL), 0);
    assert_int_equal(len, 10);
    assert_string_equal(data, "0123456789");
    free(data);
    cf_err err = {0};
    assert_true(cf_fs_read_small(path, 4, &data, &len, &err) < 0);
    assert_true(err.code < 0);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(cf_fs_remove_tree(dir, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_all_writes_everything),
        cmocka_unit_test(test_write_all_failure_is_a_code_and_names_the_file),
        cmocka_unit_test(test_write_atomic_reports_a_missing_directory),
        cmocka_unit_test(test_write_atomic_follows_no_planted_link),
        cmocka_unit_test(test_read_small_round_trip_and_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
