/*
 * record.h - the bytes of an object record in the index, and the index key of an object.
 *
 * Record (version 1, little-endian):
 *   u8 version | u64 size | i64 mtime_ns | u8 etag_len, etag | u16 nheaders,
 *   { u16 name_len, name, u16 value_len, value } * nheaders | u32 nsegs, { id[16], u64 len } * nsegs
 * Version 2 is version 1 with no segments followed by the body itself (size bytes, 1 to
 * CF_STORE_INLINE_MAX): a small object kept in its record. An empty object is version 1 with
 * no segments; every other record is version 1, as before version 2 existed.
 *
 * Index keys are "bucket\0key". LMDB limits keys to mdb_env_get_maxkeysize() bytes (511 in
 * Debian's build) while S3 keys reach 1024 bytes, so a composite longer than the limit is
 * stored in an *overflow group* under the key head[0..limit-1) + 0xFF: 0xFF never occurs in
 * UTF-8, so the group sorts right after the short key equal to its head and before every key
 * with a greater head, which keeps listing order exact. The group's value holds all long keys
 * sharing that head, sorted, each with its record:
 *   u8 'G' | u32 count | { u16 key_len, key, u32 rec_len, rec } * count
 */
#ifndef CF_STORE_RECORD_H
#define CF_STORE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/store.h"

#define CF_RECORD_VERSION 1
#define CF_RECORD_VERSION_INLINE 2
#define CF_GROUP_MAGIC 'G'

int cf_record_encode(const cf_object_info *info, cf_buf *out);
/* Fills *info from the bytes (deep copy); CF_ECORRUPT on malformed bytes. */
int cf_record_decode(const void *p, size_t n, cf_object_info *info);
/* The same without the body of a record that holds one (info->data stays NULL): for listings
 * and for the version a write replaces, which need only its size and segments. */
int cf_record_decode_meta(const void *p, size_t n, cf_object_info *info);
/* Copies headers and segments (deep copy) from src to dst. */
int cf_object_info_copy(cf_object_info *dst, const cf_object_info *src);

/* One entry of an overflow group, pointing into the group's bytes. */
typedef struct cf_group_entry {
    const char *key; /* the full composite "bucket\0key" */
    size_t keylen;
    const unsigned char *rec;
    size_t reclen;
} cf_group_entry;

/* Parses a group value into at most max entries; returns the count or CF_ECORRUPT. */
long cf_group_parse(const void *p, size_t n, cf_group_entry *entries, size_t max);
/* Writes a group value from entries (already sorted by key). */
int cf_group_encode(const cf_group_entry *entries, size_t count, cf_buf *out);

#endif
