/* fuzz_kv_stream.c - the kvstore example's parsers of what another node sends: a stream of log
 * records (append-entries) and a state file (load-state, a restored snapshot). Both formats are
 * canonical, so whatever is accepted must encode back to exactly the bytes it came from. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "kv_record.h"
#include "kv_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const uint8_t *data;
    size_t size, pos;
} source;

static long source_read(void *ctx, void *buf, size_t len)
{
    source *s = ctx;
    size_t n = s->size - s->pos < len ? s->size - s->pos : len;
    memcpy(buf, s->data + s->pos, n);
    s->pos += n;
    return (long)n;
}

typedef struct {
    const uint8_t *expected;
    size_t size, pos;
} compare_sink;

static int compare_write(void *ctx, const void *buf, size_t len)
{
    compare_sink *c = ctx;
    check(c->pos + len <= c->size && memcmp(c->expected + c->pos, buf, len) == 0);
    c->pos += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    source src = {data, size, 0};
    kv_record_reader reader;
    kv_record_reader_init(&reader, source_read, &src);
    kv_entry entry;
    uint64_t at = 0;
    while (kv_record_next(&reader, &entry, NULL) == KV_OK) {
        size_t len = kv_record_size(&entry);
        unsigned char *again = malloc(len);
        check(again && kv_record_encode(&entry, again) == KV_OK);
        check(at + len == reader.offset && memcmp(again, data + at, len) == 0);
        free(again);
        at = reader.offset;
    }
    kv_record_reader_cleanup(&reader);

    src.pos = 0;
    kv_state *state;
    if (kv_state_read(&state, source_read, &src) == KV_OK) {
        compare_sink sink = {data, size, 0};
        check(kv_state_write(state, compare_write, &sink) == KV_OK && sink.pos == src.pos);
        kv_state_free(state);
    }
    return 0;
}
