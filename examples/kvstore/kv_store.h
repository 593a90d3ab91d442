/* A node of the replicated store: a directory holding the log (DIR/log) and, when one was taken,
 * a checkpoint of the state (DIR/checkpoint, a state file). Opening it loads the checkpoint and
 * replays the log after it; a new node starts from a state file another node wrote, and then
 * appends the entries that follow it.
 *
 * The snapshotter's three callbacks map onto this API:
 *   write your state at a consistent point -> kv_store_write_state (index and term out)
 *   truncate your log before an index      -> kv_store_truncate_before, after
 *                                             kv_store_note_durable_state(index)
 *   each applied index                     -> the index kv_store_set/del/append return
 *
 * The log is truncated only before an index some durable state covers (the checkpoint, or a
 * snapshot the caller declares durable), so the node can always be rebuilt.
 *
 * Threads: every call takes the store's lock, so kv_store_write_state may run in another thread
 * than the one applying entries; it then holds up applies while it writes. kv_store_get's value
 * is borrowed until the next change of the store. */
#ifndef KV_STORE_H
#define KV_STORE_H

#include "kv_log.h"
#include "kv_state.h"

typedef struct kv_store kv_store;

/* Opens DIR (created when missing). why (may be NULL) receives a sentence on failure. */
kv_err kv_store_open(const char *dir, kv_sync_policy sync, kv_store **out, char *why, size_t why_len);

/* Makes DIR a new node from a state file read from source: the state becomes DIR/checkpoint and
 * the log starts after its (index, term). KV_EEXIST when DIR already holds a log. */
kv_err kv_store_open_from_state(const char *dir, kv_sync_policy sync, kv_read_fn source, void *ctx,
                                kv_store **out, char *why, size_t why_len);

/* Syncs and frees store. */
kv_err kv_store_close(kv_store *store);

/* The leader's path: appends SET (or DEL) as entry last_index + 1 of term, and applies it.
 * *index (may be NULL) is the entry's index. */
kv_err kv_store_set(kv_store *store, uint64_t term, const char *key, uint32_t key_len, const char *value,
                    uint32_t value_len, uint64_t *index);
kv_err kv_store_del(kv_store *store, uint64_t term, const char *key, uint32_t key_len, uint64_t *index);

/* The follower's path: appends an entry received from the leader and applies it. */
kv_err kv_store_append(kv_store *store, const kv_entry *entry);

kv_err kv_store_sync(kv_store *store);

kv_err kv_store_get(kv_store *store, const char *key, uint32_t key_len, const char **value,
                    uint32_t *value_len);

/* Writes the state file at the current applied (index, term), holding the lock throughout, so the
 * bytes are exactly the state at that point. index and term may be NULL. */
kv_err kv_store_write_state(kv_store *store, kv_write_fn sink, void *ctx, uint64_t *index, uint64_t *term);

/* Writes DIR/checkpoint (through DIR/checkpoint.tmp, synced, renamed, directory synced). */
kv_err kv_store_checkpoint(kv_store *store);

/* Declares that a state at index or later is durable outside DIR (a snapshot in a repository). */
void kv_store_note_durable_state(kv_store *store, uint64_t index);

/* Truncates the log before index (kv_log_truncate_before). KV_ERANGE when no durable state covers
 * index, or index is past the last entry. */
kv_err kv_store_truncate_before(kv_store *store, uint64_t index);

/* Calls fn for each log entry after index (see kv_log_read_after). */
kv_err kv_store_tail_after(kv_store *store, uint64_t after, kv_entry_fn fn, void *ctx);

typedef struct {
    uint64_t base_index, base_term, last_index, last_term, log_bytes;
    uint64_t applied_index, applied_term, keys, durable_index;
} kv_store_status;

void kv_store_get_status(kv_store *store, kv_store_status *status);
kv_err kv_store_digest(kv_store *store, uint64_t *digest);

/* Calls fn for each pair in key order, under the lock. */
kv_err kv_store_each_sorted(kv_store *store, kv_pair_fn fn, void *ctx);

#endif
