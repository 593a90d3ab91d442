#include "kv_record.h"

#include "kv_crc.h"

#include <stdlib.h>
#include <string.h>

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

size_t kv_record_size(const kv_entry *entry)
{
    uint32_t value_len = entry->op == KV_OP_SET ? entry->value_len : 0;
    return KV_RECORD_HEADER + KV_RECORD_FIXED + entry->key_len + value_len;
}

kv_err kv_record_encode(const kv_entry *entry, unsigned char *buf)
{
    if (entry->op != KV_OP_SET && entry->op != KV_OP_DEL)
        return KV_EINVAL;
    uint32_t value_len = entry->op == KV_OP_SET ? entry->value_len : 0;
    if (entry->key_len > KV_KEY_MAX || value_len > KV_VALUE_MAX)
        return KV_EINVAL;
    unsigned char *body = buf + KV_RECORD_HEADER;
    put_u64(body, entry->index);
    put_u64(body + 8, entry->term);
    body[16] = (unsigned char)entry->op;
    put_u32(body + 17, entry->key_len);
    put_u32(body + 21, value_len);
    if (entry->key_len)
        memcpy(body + KV_RECORD_FIXED, entry->key, entry->key_len);
    if (value_len)
        memcpy(body + KV_RECORD_FIXED + entry->key_len, entry->value, value_len);
    uint32_t body_len = KV_RECORD_FIXED + entry->key_len + value_len;
    put_u32(buf, body_len);
    put_u32(buf + 4, kv_crc32c(0, body, body_len));
    return KV_OK;
}

kv_err kv_record_decode(const unsigned char *buf, size_t len, kv_entry *out, size_t *consumed)
{
    if (len < KV_RECORD_HEADER) {
        *consumed = KV_RECORD_HEADER;
        return KV_ETRUNCATED;
    }
    uint32_t body_len = get_u32(buf);
    if (body_len < KV_RECORD_FIXED || body_len > KV_RECORD_MAX - KV_RECORD_HEADER) {
        *consumed = 0;
        return KV_ECORRUPT;
    }
    *consumed = KV_RECORD_HEADER + (size_t)body_len;
    if (len < *consumed)
        return KV_ETRUNCATED;
    const unsigned char *body = buf + KV_RECORD_HEADER;
    if (kv_crc32c(0, body, body_len) != get_u32(buf + 4))
        return KV_ECORRUPT;
    uint32_t key_len = get_u32(body + 17), value_len = get_u32(body + 21);
    /* Checked apart so that their sum cannot wrap. */
    if (key_len > KV_KEY_MAX || value_len > KV_VALUE_MAX || KV_RECORD_FIXED + key_len + value_len != body_len)
        return KV_ECORRUPT;
    kv_op op = (kv_op)body[16];
    if ((op != KV_OP_SET && op != KV_OP_DEL) || (op == KV_OP_DEL && value_len))
        return KV_ECORRUPT;
    out->index = get_u64(body);
    out->term = get_u64(body + 8);
    out->op = op;
    out->key = (const char *)body + KV_RECORD_FIXED;
    out->key_len = key_len;
    out->value = out->key + key_len;
    out->value_len = value_len;
    return KV_OK;
}

void kv_record_reader_init(kv_record_reader *reader, kv_read_fn read, void *ctx)
{
    memset(reader, 0, sizeof *reader);
    reader->read = read;
    reader->ctx = ctx;
}

void kv_record_reader_cleanup(kv_record_reader *reader)
{
    free(reader->buf);
    reader->buf = NULL;
}

/* Makes at least want bytes available from start, unless the source ends first. */
static kv_err fill(kv_record_reader *reader, size_t want)
{
    if (reader->end - reader->start >= want || reader->eof)
        return KV_OK;
    if (reader->start) {
        memmove(reader->buf, reader->buf + reader->start, reader->end - reader->start);
        reader->end -= reader->start;
        reader->start = 0;
    }
    size_t chunk = 64 * 1024;
    if (reader->cap < want || reader->cap < chunk) {
        size_t cap = want > chunk ? want : chunk;
        unsigned char *grown = realloc(reader->buf, cap);
        if (!grown)
            return KV_ENOMEM;
        reader->buf = grown;
        reader->cap = cap;
    }
    while (reader->end < want) {
        long n = reader->read(reader->ctx, reader->buf + reader->end, reader->cap - reader->end);
        if (n < 0)
            return KV_EIO;
        if (n == 0) {
            reader->eof = 1;
            break;
        }
        reader->end += (size_t)n;
    }
    return KV_OK;
}

kv_err kv_record_next(kv_record_reader *reader, kv_entry *out, size_t *bad_size)
{
    size_t want = KV_RECORD_HEADER, consumed = 0;
    if (bad_size)
        *bad_size = 0;
    for (;;) {
        kv_err err = fill(reader, want);
        if (err)
            return err;
        size_t have = reader->end - reader->start;
        if (have == 0 && reader->eof)
            return KV_ENOENT;
        err = kv_record_decode(reader->buf + reader->start, have, out, &consumed);
        if (err == KV_OK) {
            reader->start += consumed;
            reader->offset += consumed;
            return KV_OK;
        }
        if (bad_size)
            *bad_size = consumed;
        if (err != KV_ETRUNCATED || reader->eof)
            return err;
        want = consumed;
    }
}
