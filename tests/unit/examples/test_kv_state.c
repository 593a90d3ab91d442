/* test_kv_state.c - the kvstore example's state machine: entries applied in index order only, a
 * digest that depends on the map and not on how it was reached, and a state file that reads back
 * the same state or is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv_state.h"
#include "kv_test.h"

static void set(kv_state *s, const char *key, const char *value)
{
    kv_entry e = {.index = kv_state_applied_index(s) + 1,
                  .term = 1,
                  .op = KV_OP_SET,
                  .key = key,
                  .key_len = (uint32_t)strlen(key),
                  .value = value,
                  .value_len = (uint32_t)strlen(value)};
    assert_int_equal(kv_state_apply(s, &e), KV_OK);
}

static void del(kv_state *s, const char *key)
{
    kv_entry e = {.index = kv_state_applied_index(s) + 1,
                  .term = 2,
                  .op = KV_OP_DEL,
                  .key = key,
                  .key_len = (uint32_t)strlen(key)};
    assert_int_equal(kv_state_apply(s, &e), KV_OK);
}

static void test_apply_in_order_only(void **state)
{
    (void)state;
    kv_state *s = kv_state_new();
    set(s, "a", "1");
    set(s, "a", "2");
    del(s, "missing");
    const char *value;
    uint32_t len;
    assert_int_equal(kv_state_get(s, "a", 1, &value, &len), KV_OK);
    assert_memory_equal(value, "2", len);
    assert_int_equal(kv_state_applied_index(s), 3);
    assert_int_equal(kv_state_applied_term(s), 2);
    kv_entry skip = {
        .index = 5, .term = 2, .op = KV_OP_SET, .key = "b", .key_len = 1, .value = "x", .value_len = 1};
    assert_int_equal(kv_state_apply(s, &skip), KV_ERANGE);
    assert_int_equal(kv_state_get(s, "b", 1, &value, &len), KV_ENOENT);
    del(s, "a");
    assert_int_equal(kv_state_get(s, "a", 1, &value, &len), KV_ENOENT);
    assert_int_equal(kv_state_count(s), 0);
    kv_state_free(s);
}

static void test_digest_depends_on_the_map_only(void **state)
{
    (void)state;
    kv_state *x = kv_state_new(), *y = kv_state_new();
    char key[16], value[16];
    /* 5000 keys force the table to grow several times. */
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        snprintf(value, sizeof value, "v%d", i);
        set(x, key, value);
    }
    for (int i = 4999; i >= 0; i--) {
        snprintf(key, sizeof key, "k%d", i);
        set(y, key, "stale");
        snprintf(value, sizeof value, "v%d", i);
        set(y, key, value);
    }
    uint64_t dx, dy;
    assert_int_equal(kv_state_digest(x, &dx), KV_OK);
    assert_int_equal(kv_state_digest(y, &dy), KV_OK);
    assert_true(dx == dy);
    set(y, "k0", "changed");
    assert_int_equal(kv_state_digest(y, &dy), KV_OK);
    assert_true(dx != dy);
    kv_state_free(x);
    kv_state_free(y);
}

static void test_state_file_round_trip_and_damage(void **state)
{
    (void)state;
    kv_state *s = kv_state_new();
    set(s, "zeta", "last");
    set(s, "alpha", "first");
    set(s, "mid", "");
    del(s, "gone");
    kv_test_mem m = {.max_read = 7};
    assert_int_equal(kv_state_write(s, kv_test_mem_write, &m), KV_OK);
    kv_state *back;
    assert_int_equal(kv_state_read(&back, kv_test_mem_read, &m), KV_OK);
    assert_int_equal(kv_state_applied_index(back), 4);
    assert_int_equal(kv_state_applied_term(back), 2);
    assert_int_equal(kv_state_count(back), 3);
    uint64_t d1, d2;
    kv_state_digest(s, &d1);
    kv_state_digest(back, &d2);
    assert_true(d1 == d2);
    /* It keeps applying after the loaded index. */
    set(back, "new", "entry");
    assert_int_equal(kv_state_applied_index(back), 5);
    kv_state_free(back);
    /* Every flipped byte is refused, and so is every short file. */
    for (size_t i = 0; i < m.len; i++) {
        m.data[i] ^= 0x01;
        m.pos = 0;
        kv_err err = kv_state_read(&back, kv_test_mem_read, &m);
        assert_true(err == KV_ECORRUPT || err == KV_ETRUNCATED);
        m.data[i] ^= 0x01;
    }
    size_t whole = m.len;
    for (m.len = 0; m.len < whole; m.len++) {
        m.pos = 0;
        assert_int_equal(kv_state_read(&back, kv_test_mem_read, &m), KV_ETRUNCATED);
    }
    kv_state_free(s);
    free(m.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_in_order_only),
        cmocka_unit_test(test_digest_depends_on_the_map_only),
        cmocka_unit_test(test_state_file_round_trip_and_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
