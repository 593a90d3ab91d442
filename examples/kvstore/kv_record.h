/* The record: how one entry is laid out in the log file and in a tail stream.
 *
 *   u32 body_len   u32 crc32c(body)   body = u64 index, u64 term, u8 op, u32 key_len,
 *                                            u32 value_len, key, value
 *
 * little-endian. body_len is 25 + key_len + value_len: a record whose lengths disagree is
 * corrupt, which also bounds what a damaged length can make a reader allocate. */
#ifndef KV_RECORD_H
#define KV_RECORD_H

#include "kv_types.h"

#define KV_RECORD_HEADER 8u
#define KV_RECORD_FIXED 25u
#define KV_RECORD_MAX (KV_RECORD_HEADER + KV_RECORD_FIXED + KV_KEY_MAX + KV_VALUE_MAX)

/* Bytes kv_record_encode writes for entry. */
size_t kv_record_size(const kv_entry *entry);

/* Writes the record of entry into buf (kv_record_size bytes). KV_EINVAL on an unknown op or
 * a key or value over its bound. */
kv_err kv_record_encode(const kv_entry *entry, unsigned char *buf);

/* Decodes the record at the start of buf[0..len). KV_OK: *out points into buf, *consumed is the
 * record's size. KV_ETRUNCATED: buf holds only the start of a record (*consumed is the size it
 * claims, or the header's when the header itself is short). KV_ECORRUPT: the lengths or the
 * checksum are wrong (*consumed as for KV_ETRUNCATED when the lengths could be read). */
kv_err kv_record_decode(const unsigned char *buf, size_t len, kv_entry *out, size_t *consumed);

/* Reads records one after another from a source through a buffer that grows to the largest
 * record seen (at most KV_RECORD_MAX). */
typedef struct {
    kv_read_fn read;
    void *ctx;
    unsigned char *buf;
    size_t cap, start, end;
    int eof;
    uint64_t offset; /* of the next record, counted from where the reader began */
} kv_record_reader;

void kv_record_reader_init(kv_record_reader *reader, kv_read_fn read, void *ctx);
void kv_record_reader_cleanup(kv_record_reader *reader);

/* KV_OK with *out (valid until the next call); KV_ENOENT at a clean end; KV_ETRUNCATED when the
 * source ends inside a record; KV_ECORRUPT for a bad record (*bad_size, if not NULL, is the size
 * its header claims, 0 when unknown); KV_EIO or KV_ENOMEM. reader->offset stays at the start of
 * the record that failed. */
kv_err kv_record_next(kv_record_reader *reader, kv_entry *out, size_t *bad_size);

#endif
