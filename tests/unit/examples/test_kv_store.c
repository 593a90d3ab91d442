/* test_kv_store.c - the kvstore example's node: a state written from another thread while entries
 * are applied is exactly the state at the (index, term) it reports, as the snapshotter's "write
 * your state" callback needs; truncation waits for a durable state; a node reopens from its
 * checkpoint and log. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv_store.h"
#include "kv_test.h"

#define KEYS 64
#define ENTRIES 20000

/* Entry i sets key i % KEYS to "v<i>" in term 1 + i / 1000. */
static void *fill(void *arg)
{
    kv_store *store = arg;
    char key[16], value[16];
    for (uint64_t i = 1; i <= ENTRIES; i++) {
        int kl = snprintf(key, sizeof key, "k%02llu", (unsigned long long)(i % KEYS));
        int vl = snprintf(value, sizeof value, "v%llu", (unsigned long long)i);
        uint64_t index;
        if (kv_store_set(store, 1 + i / 1000, key, (uint32_t)kl, value, (uint32_t)vl, &index) != KV_OK ||
            index != i)
            abort();
    }
    return NULL;
}

/* Whether state holds what the entries up to its applied index leave, and nothing else. */
static void check_state_at_its_index(const kv_state *state)
{
    uint64_t at = kv_state_applied_index(state);
    assert_int_equal(kv_state_applied_term(state), at ? 1 + at / 1000 : 0);
    assert_int_equal(kv_state_count(state), at < KEYS ? at : KEYS);
    for (uint64_t k = 0; k < KEYS && k <= at; k++) {
        uint64_t last = at - (at + KEYS - k) % KEYS; /* the last index <= at with index % KEYS == k */
        if (last == 0)
            continue;
        char key[16], want[16];
        snprintf(key, sizeof key, "k%02llu", (unsigned long long)k);
        snprintf(want, sizeof want, "v%llu", (unsigned long long)last);
        const char *value;
        uint32_t len;
        assert_int_equal(kv_state_get(state, key, (uint32_t)strlen(key), &value, &len), KV_OK);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(value, want, len);
    }
}

static void test_state_written_while_applying_is_consistent(void **unused)
{
    (void)unused;
    char *dir = kv_test_dir();
    kv_store *store;
    char why[256];
    assert_int_equal(kv_store_open(dir, KV_SYNC_NONE, &store, why, sizeof why), KV_OK);
    pthread_t filler;
    assert_int_equal(pthread_create(&filler, NULL, fill, store), 0);
    uint64_t index = 0, term = 0, seen = 0;
    while (index < ENTRIES) {
        kv_test_mem m = {0};
        assert_int_equal(kv_store_write_state(store, kv_test_mem_write, &m, &index, &term), KV_OK);
        kv_state *copy;
        assert_int_equal(kv_state_read(&copy, kv_test_mem_read, &m), KV_OK);
        assert_int_equal(kv_state_applied_index(copy), index);
        assert_int_equal(kv_state_applied_term(copy), term);
        check_state_at_its_index(copy);
        kv_state_free(copy);
        free(m.data);
        seen++;
    }
    assert_int_equal(pthread_join(filler, NULL), 0);
    assert_true(seen >= 1);
    assert_int_equal(kv_store_close(store), KV_OK);
    kv_test_remove_dir(dir);
}

static void test_truncation_waits_for_a_durable_state_and_the_node_reopens(void **unused)
{
    (void)unused;
    char *dir = kv_test_dir();
    kv_store *store;
    char why[256] = "";
    assert_int_equal(kv_store_open(dir, KV_SYNC_BATCH, &store, why, sizeof why), KV_OK);
    fill(store);
    assert_int_equal(kv_store_truncate_before(store, 1000), KV_ERANGE);
    kv_store_note_durable_state(store, 1500); /* a snapshot at 1500 is in the repository */
    assert_int_equal(kv_store_truncate_before(store, 1501), KV_ERANGE);
    assert_int_equal(kv_store_truncate_before(store, 1500), KV_OK);
    uint64_t before;
    assert_int_equal(kv_store_digest(store, &before), KV_OK);
    assert_int_equal(kv_store_close(store), KV_OK);
    /* Without a checkpoint the node cannot rebuild entries 1..1500: it says so. */
    assert_int_equal(kv_store_open(dir, KV_SYNC_BATCH, &store, why, sizeof why), KV_ERANGE);
    assert_non_null(strstr(why, "load-state"));
    kv_test_remove_dir(dir);

    dir = kv_test_dir();
    assert_int_equal(kv_store_open(dir, KV_SYNC_BATCH, &store, why, sizeof why), KV_OK);
    fill(store);
    assert_int_equal(kv_store_checkpoint(store), KV_OK);
    assert_int_equal(kv_store_truncate_before(store, ENTRIES), KV_OK);
    assert_int_equal(kv_store_close(store), KV_OK);
    assert_int_equal(kv_store_open(dir, KV_SYNC_BATCH, &store, why, sizeof why), KV_OK);
    uint64_t after;
    assert_int_equal(kv_store_digest(store, &after), KV_OK);
    assert_true(before == after);
    kv_store_status st;
    kv_store_get_status(store, &st);
    assert_int_equal(st.base_index, ENTRIES);
    assert_int_equal(st.applied_index, ENTRIES);
    uint64_t index;
    assert_int_equal(kv_store_del(store, 1 + ENTRIES / 1000, "k01", 3, &index), KV_OK);
    assert_int_equal(index, ENTRIES + 1);
    assert_int_equal(kv_store_close(store), KV_OK);
    kv_test_remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_written_while_applying_is_consistent),
        cmocka_unit_test(test_truncation_waits_for_a_durable_state_and_the_node_reopens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
