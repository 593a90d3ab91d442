/* test_bgwrite.c - the background writer keeps every byte, in order, and reports failures. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/bgwrite.h"

static void test_bytes_arrive_in_order(void **state)
{
    (void)state;
    char path[] = "/tmp/coffer-bgwrite-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char head[] = "head:";
    assert_int_equal(write(fd, head, 5), 5);
    size_t total = 10 * 1000 * 1000 + 7;
    unsigned char *src = malloc(total);
    for (size_t i = 0; i < total; i++)
        src[i] = (unsigned char)(i * 131 + (i >> 13));
    cf_bgwrite *bw;
    assert_int_equal(cf_bgwrite_new(fd, 5, 64 * 1024, 3, 1 << 20, &bw), 0);
    /* Odd piece sizes cross slot boundaries in every way. */
    size_t off = 0, step = 1;
    while (off < total) {
        size_t n = step < total - off ? step : total - off;
        assert_int_equal(cf_bgwrite_write(bw, src + off, n), 0);
        off += n;
        step = step * 3 % 200003 + 1;
    }
    assert_int_equal(cf_bgwrite_finish(bw), 0);
    cf_bgwrite_free(bw);
    unsigned char *back = malloc(total + 5);
    assert_int_equal(pread(fd, back, total + 5, 0), (ssize_t)(total + 5));
    assert_memory_equal(back, head, 5);
    assert_memory_equal(back + 5, src, total);
    close(fd);
    unlink(path);
    free(src);
    free(back);
}

static void test_write_error_is_reported(void **state)
{
    (void)state;
    int fd = open("/dev/null", O_RDONLY); /* writes fail with EBADF */
    assert_true(fd >= 0);
    cf_bgwrite *bw;
    assert_int_equal(cf_bgwrite_new(fd, 0, 4096, 2, 0, &bw), 0);
    char buf[4096] = {0};
    int e = 0;
    for (int i = 0; i < 100 && !e; i++)
        e = cf_bgwrite_write(bw, buf, sizeof buf);
    if (!e)
        e = cf_bgwrite_finish(bw);
    assert_int_equal(e, EBADF);
    cf_bgwrite_free(bw);
    close(fd);
}

static void test_free_without_finish_discards(void **state)
{
    (void)state;
    char path[] = "/tmp/coffer-bgwrite-XXXXXX";
    int fd = mkstemp(path);
    cf_bgwrite *bw;
    assert_int_equal(cf_bgwrite_new(fd, 0, 1024, 2, 0, &bw), 0);
    char buf[3000] = {1};
    assert_int_equal(cf_bgwrite_write(bw, buf, sizeof buf), 0);
    cf_bgwrite_free(bw);
    assert_int_equal(cf_bgwrite_new(fd, 0, 1024, 1, 0, &bw), EINVAL);
    close(fd);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_arrive_in_order),
        cmocka_unit_test(test_write_error_is_reported),
        cmocka_unit_test(test_free_without_finish_discards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
