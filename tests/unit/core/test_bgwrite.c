/* test_bgwrite.c - the background writer keeps every byte, in order, and reports failures. */
#include <errno.h>
#include <pthread.h>
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
#include "crypto/hash.h"
#include "crypto/md5.h"

/* The hook's view of the stream: a digest, the slot sizes it saw, and on which thread. */
typedef struct hook_seen {
    cf_md5_ctx md5;
    size_t slots, bytes, not_full;
    pthread_t producer;
    int on_producer;
} hook_seen;

static void seen_slot(void *ctx, const void *p, size_t n)
{
    hook_seen *h = ctx;
    cf_md5_update(&h->md5, p, n);
    h->slots++;
    h->bytes += n;
    h->not_full += n != 4096;
    h->on_producer |= pthread_equal(pthread_self(), h->producer);
}

/* The hook sees every byte in order, in whole slots but the last, on the writer's thread (so
 * that a server's event thread does not spend an upload's MD5), and its state is complete when
 * finish returns. */
static void test_hook_sees_whole_slots_on_the_writer_thread(void **state)
{
    (void)state;
    char path[] = "/tmp/coffer-bgwrite-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t total = 4096 * 37 + 123;
    unsigned char *src = malloc(total);
    for (size_t i = 0; i < total; i++)
        src[i] = (unsigned char)(i * 7 + (i >> 9));
    hook_seen h = {.producer = pthread_self()};
    cf_md5_init(&h.md5, NULL);
    cf_bgwrite *bw;
    assert_int_equal(cf_bgwrite_new(fd, 0, 4096, 2, 0, &bw), 0);
    cf_bgwrite_set_hook(bw, seen_slot, &h);
    for (size_t off = 0; off < total; off += 1000)
        assert_int_equal(cf_bgwrite_write(bw, src + off, total - off < 1000 ? total - off : 1000), 0);
    assert_int_equal(cf_bgwrite_finish(bw), 0);
    cf_bgwrite_free(bw);
    unsigned char got[16], want[16];
    cf_md5_final(&h.md5, got);
    cf_md5(src, total, want);
    assert_memory_equal(got, want, 16);
    assert_int_equal(h.bytes, total);
    assert_int_equal(h.slots, 38);
    assert_int_equal(h.not_full, 1);
    assert_false(h.on_producer);
    close(fd);
    unlink(path);
    free(src);
}

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
        cmocka_unit_test(test_hook_sees_whole_slots_on_the_writer_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
