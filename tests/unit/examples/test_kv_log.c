/* test_kv_log.c - the kvstore example's log: records that checksum, a torn last record dropped on
 * recovery but damage in the middle refused, and truncation that leaves only the entries after
 * an index in the file. */
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

#include "kv_log.h"
#include "kv_record.h"
#include "kv_test.h"

static char *path_in(const char *dir, const char *name)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    return path;
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void append_n(kv_log *log, uint64_t n, uint64_t term)
{
    char key[32], value[32];
    for (uint64_t i = 0; i < n; i++) {
        uint64_t index = kv_log_last_index(log) + 1;
        kv_entry e = {.index = index, .term = term, .op = KV_OP_SET, .key = key, .value = value};
        e.key_len = (uint32_t)snprintf(key, sizeof key, "k%llu", (unsigned long long)index);
        e.value_len = (uint32_t)snprintf(value, sizeof value, "v%llu", (unsigned long long)index);
        assert_int_equal(kv_log_append(log, &e), KV_OK);
    }
}

typedef struct {
    uint64_t count, first, last;
} walk;

static kv_err count_entry(void *ctx, const kv_entry *e)
{
    walk *w = ctx;
    char key[32];
    snprintf(key, sizeof key, "k%llu", (unsigned long long)e->index);
    assert_int_equal(e->key_len, strlen(key));
    assert_memory_equal(e->key, key, e->key_len);
    if (!w->count)
        w->first = e->index;
    w->last = e->index;
    w->count++;
    return KV_OK;
}

static void test_record_round_trip_and_damage(void **state)
{
    (void)state;
    kv_entry e = {
        .index = 7, .term = 3, .op = KV_OP_SET, .key = "key", .key_len = 3, .value = "value", .value_len = 5};
    unsigned char buf[128];
    size_t size = kv_record_size(&e), consumed;
    assert_int_equal(size, KV_RECORD_HEADER + KV_RECORD_FIXED + 8);
    assert_int_equal(kv_record_encode(&e, buf), KV_OK);
    kv_entry out;
    assert_int_equal(kv_record_decode(buf, size, &out, &consumed), KV_OK);
    assert_int_equal(consumed, size);
    assert_int_equal(out.index, 7);
    assert_int_equal(out.term, 3);
    assert_int_equal(out.op, KV_OP_SET);
    assert_memory_equal(out.value, "value", 5);
    /* Every prefix is incomplete, never corrupt or good. */
    for (size_t len = 0; len < size; len++)
        assert_int_equal(kv_record_decode(buf, len, &out, &consumed), KV_ETRUNCATED);
    /* Any flipped bit of the body fails the checksum. */
    for (size_t i = KV_RECORD_HEADER; i < size; i++) {
        buf[i] ^= 0x10;
        assert_int_equal(kv_record_decode(buf, size, &out, &consumed), KV_ECORRUPT);
        buf[i] ^= 0x10;
    }
    /* A length beyond every bound is refused before anything is read or allocated for it. */
    unsigned char huge[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    assert_int_equal(kv_record_decode(huge, sizeof huge, &out, &consumed), KV_ECORRUPT);
    e.op = (kv_op)9;
    assert_int_equal(kv_record_encode(&e, buf), KV_EINVAL);
    e.op = KV_OP_SET;
    e.key_len = KV_KEY_MAX + 1;
    assert_int_equal(kv_record_encode(&e, buf), KV_EINVAL);
}

static void test_append_reopen_read_after(void **state)
{
    (void)state;
    char *dir = kv_test_dir(), *path = path_in(dir, "log");
    kv_log *log;
    kv_log_options opts = {.sync = KV_SYNC_BATCH};
    assert_int_equal(kv_log_open(path, &opts, &log, NULL), KV_OK);
    append_n(log, 1000, 2);
    /* Out of order or going back in term: refused, nothing written. */
    kv_entry gap = {.index = 1002, .term = 2, .op = KV_OP_DEL, .key = "k", .key_len = 1};
    assert_int_equal(kv_log_append(log, &gap), KV_ERANGE);
    gap.index = 1001;
    gap.term = 1;
    assert_int_equal(kv_log_append(log, &gap), KV_ERANGE);
    assert_int_equal(kv_log_close(log), KV_OK);

    kv_log_recovery rec;
    assert_int_equal(kv_log_open(path, &opts, &log, &rec), KV_OK);
    assert_int_equal(rec.entries, 1000);
    assert_int_equal(rec.dropped_bytes, 0);
    assert_int_equal(kv_log_last_index(log), 1000);
    assert_int_equal(kv_log_last_term(log), 2);
    walk w = {0};
    assert_int_equal(kv_log_read_after(log, 990, count_entry, &w), KV_OK);
    assert_int_equal(w.count, 10);
    assert_int_equal(w.first, 991);
    assert_int_equal(w.last, 1000);
    assert_int_equal(kv_log_close(log), KV_OK);
    free(path);
    kv_test_remove_dir(dir);
}

/* A crash during an append leaves part of the last record: recovery cuts it off and the log
 * appends after the last whole entry. */
static void test_torn_last_record_is_dropped(void **state)
{
    (void)state;
    char *dir = kv_test_dir(), *path = path_in(dir, "log");
    kv_log *log;
    assert_int_equal(kv_log_open(path, NULL, &log, NULL), KV_OK);
    append_n(log, 10, 1);
    off_t nine = (off_t)kv_log_size(log);
    append_n(log, 1, 1);
    off_t ten = (off_t)kv_log_size(log);
    assert_int_equal(kv_log_close(log), KV_OK);
    for (off_t cut = nine + 1; cut < ten; cut++) {
        assert_int_equal(truncate(path, cut), 0);
        kv_log_recovery rec;
        assert_int_equal(kv_log_open(path, NULL, &log, &rec), KV_OK);
        assert_int_equal(kv_log_last_index(log), 10);
        assert_int_equal(rec.dropped_bytes, (uint64_t)(cut - nine));
        assert_int_equal(file_size(path), nine);
        append_n(log, 1, 1);
        assert_int_equal(kv_log_close(log), KV_OK);
    }
    /* Zeros where the last record should be (an extension whose data never reached the disk). */
    assert_int_equal(truncate(path, ten + 100), 0);
    kv_log_recovery rec;
    assert_int_equal(kv_log_open(path, NULL, &log, &rec), KV_OK);
    assert_int_equal(kv_log_last_index(log), 11);
    assert_int_equal(rec.dropped_bytes, 100);
    kv_log_close(log);
    free(path);
    kv_test_remove_dir(dir);
}

/* A damaged record with good ones after it is no crash's doing: refused, the file untouched. */
static void test_damage_in_the_middle_is_refused(void **state)
{
    (void)state;
    char *dir = kv_test_dir(), *path = path_in(dir, "log");
    kv_log *log;
    assert_int_equal(kv_log_open(path, NULL, &log, NULL), KV_OK);
    append_n(log, 5, 1);
    off_t middle = (off_t)kv_log_size(log) - 3;
    append_n(log, 5, 1);
    assert_int_equal(kv_log_close(log), KV_OK);
    off_t size = file_size(path);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, middle, SEEK_SET);
    fputc('X', f);
    fclose(f);
    assert_int_equal(kv_log_open(path, NULL, &log, NULL), KV_ECORRUPT);
    assert_int_equal(file_size(path), size);
    free(path);
    kv_test_remove_dir(dir);
}

static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char data[1 << 20];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    return memmem(data, n, needle, strlen(needle)) != NULL;
}

static void test_truncate_before_removes_the_entries_from_the_file(void **state)
{
    (void)state;
    char *dir = kv_test_dir(), *path = path_in(dir, "log");
    kv_log *log;
    kv_log_options opts = {.sync = KV_SYNC_BATCH};
    assert_int_equal(kv_log_open(path, &opts, &log, NULL), KV_OK);
    append_n(log, 200, 1);
    append_n(log, 100, 4);
    assert_true(file_contains(path, "k150"));
    assert_int_equal(kv_log_truncate_before(log, 301), KV_ERANGE);
    assert_int_equal(kv_log_truncate_before(log, 200), KV_OK);
    assert_int_equal(kv_log_base_index(log), 200);
    assert_int_equal(kv_log_base_term(log), 1);
    /* The bytes of entries <= 200 are gone from the file, those after stay. */
    assert_false(file_contains(path, "v150"));
    assert_false(file_contains(path, "k200"));
    assert_true(file_contains(path, "k201"));
    walk w = {0};
    assert_int_equal(kv_log_read_after(log, 199, count_entry, &w), KV_ERANGE);
    assert_int_equal(kv_log_read_after(log, 200, count_entry, &w), KV_OK);
    assert_int_equal(w.count, 100);
    assert_int_equal(w.first, 201);
    /* The log keeps appending after truncation, and again after a reopen. */
    append_n(log, 5, 4);
    assert_int_equal(kv_log_truncate_before(log, 100), KV_OK); /* already gone: nothing to do */
    assert_int_equal(kv_log_close(log), KV_OK);
    char *tmp = path_in(dir, "log.tmp");
    FILE *stale = fopen(tmp, "wb"); /* a rewrite a crash stopped before its rename */
    fclose(stale);
    kv_log_recovery rec;
    assert_int_equal(kv_log_open(path, &opts, &log, &rec), KV_OK);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(rec.entries, 105);
    assert_int_equal(kv_log_base_index(log), 200);
    assert_int_equal(kv_log_last_index(log), 305);
    assert_int_equal(kv_log_truncate_before(log, 305), KV_OK);
    assert_int_equal(kv_log_base_term(log), 4);
    assert_int_equal(kv_log_last_index(log), 305);
    append_n(log, 1, 4);
    assert_int_equal(kv_log_close(log), KV_OK);
    free(tmp);
    free(path);
    kv_test_remove_dir(dir);
}

static void test_new_log_starts_after_a_base(void **state)
{
    (void)state;
    char *dir = kv_test_dir(), *path = path_in(dir, "log");
    kv_log *log;
    kv_log_options opts = {.sync = KV_SYNC_ALWAYS, .create_base_index = 500, .create_base_term = 3};
    assert_int_equal(kv_log_open(path, &opts, &log, NULL), KV_OK);
    assert_int_equal(kv_log_last_index(log), 500);
    kv_entry first = {.index = 1, .term = 3, .op = KV_OP_DEL, .key = "k", .key_len = 1};
    assert_int_equal(kv_log_append(log, &first), KV_ERANGE);
    append_n(log, 3, 3);
    kv_log_close(log);
    /* The header is checked: a flipped base index is refused. */
    FILE *f = fopen(path, "r+b");
    fseek(f, 8, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    assert_int_equal(kv_log_open(path, &opts, &log, NULL), KV_ECORRUPT);
    free(path);
    kv_test_remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_round_trip_and_damage),
        cmocka_unit_test(test_append_reopen_read_after),
        cmocka_unit_test(test_torn_last_record_is_dropped),
        cmocka_unit_test(test_damage_in_the_middle_is_refused),
        cmocka_unit_test(test_truncate_before_removes_the_entries_from_the_file),
        cmocka_unit_test(test_new_log_starts_after_a_base),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
