/* The state machine: a map of key -> value that applies log entries in index order, and its
 * serialisation at a consistent point.
 *
 * The state file (what the snapshotter's "write your state" callback writes):
 *
 *   "CFKVSTA1"  u64 applied_index  u64 applied_term  u64 count
 *   count times: u32 key_len  u32 value_len  key  value     (keys in byte order)
 *   u32 crc32c(every byte before)
 *
 * little-endian. The pairs are sorted, so two replicas holding the same map write the same bytes,
 * and kv_state_digest is a hash of those pair bytes.
 *
 * Threads: a kv_state is used by one thread at a time; kv_state_write reads it, so it must not
 * run while an entry is applied (kv_store takes care of that). */
#ifndef KV_STATE_H
#define KV_STATE_H

#include "kv_types.h"

typedef struct kv_state kv_state;

/* An empty state at (0, 0); NULL when out of memory. Freed by kv_state_free. */
kv_state *kv_state_new(void);
void kv_state_free(kv_state *state);

/* Applies entry, whose index must be kv_state_applied_index + 1 (KV_ERANGE otherwise, nothing
 * changed). DEL of a missing key is applied (the index moves on). */
kv_err kv_state_apply(kv_state *state, const kv_entry *entry);

/* KV_OK with *value (borrowed until the next apply or free) or KV_ENOENT. */
kv_err kv_state_get(const kv_state *state, const char *key, uint32_t key_len, const char **value,
                    uint32_t *value_len);

uint64_t kv_state_applied_index(const kv_state *state);
uint64_t kv_state_applied_term(const kv_state *state);
uint64_t kv_state_count(const kv_state *state);

/* 64-bit FNV-1a over the sorted pairs as the state file holds them: equal maps give equal
 * digests whatever order the entries came in. Not a cryptographic hash: it compares replicas. */
kv_err kv_state_digest(const kv_state *state, uint64_t *digest);

/* Calls fn for each pair in key order (the strings are borrowed during the call); a non-zero
 * return stops the walk and is returned. */
typedef kv_err (*kv_pair_fn)(void *ctx, const char *key, uint32_t key_len, const char *value,
                             uint32_t value_len);
kv_err kv_state_each_sorted(const kv_state *state, kv_pair_fn fn, void *ctx);

/* Writes the state file into sink (KV_EIO when the sink fails). */
kv_err kv_state_write(const kv_state *state, kv_write_fn sink, void *ctx);

/* Reads a state file from source into a new state (*out, the caller's). KV_ECORRUPT for a bad
 * magic, checksum, bound or order, KV_ETRUNCATED for a short one; nothing is returned then. */
kv_err kv_state_read(kv_state **out, kv_read_fn source, void *ctx);

#endif
