/* kv_test.h - what the kvstore example's unit tests share: a scratch directory, and an in-memory
 * sink and source for state files. */
#ifndef KV_TEST_H
#define KV_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline char *kv_test_dir(void)
{
    char *dir = strdup("/tmp/test_kv.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static inline void kv_test_remove_dir(char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

/* A growable buffer written through kv_write_fn and read back through kv_read_fn, at most
 * max_read bytes a call when it is not 0 (a reader must cope with short reads). */
typedef struct {
    unsigned char *data;
    size_t len, cap, pos, max_read;
} kv_test_mem;

static inline int kv_test_mem_write(void *ctx, const void *buf, size_t len)
{
    kv_test_mem *m = ctx;
    if (m->len + len > m->cap) {
        unsigned char *grown = realloc(m->data, (m->len + len) * 2);
        if (!grown)
            return -1;
        m->data = grown;
        m->cap = (m->len + len) * 2;
    }
    memcpy(m->data + m->len, buf, len);
    m->len += len;
    return 0;
}

static inline long kv_test_mem_read(void *ctx, void *buf, size_t len)
{
    kv_test_mem *m = ctx;
    size_t n = m->len - m->pos < len ? m->len - m->pos : len;
    if (m->max_read && n > m->max_read)
        n = m->max_read;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (long)n;
}

#endif
