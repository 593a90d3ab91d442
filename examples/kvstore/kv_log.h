/* The append-only log: one file of records (kv_record.h) after a 32-byte header
 *
 *   "CFKVLOG1"   u64 base_index   u64 base_term   u32 crc32c(the 24 bytes before)   u32 0
 *
 * The file holds the entries base_index+1 .. last_index, each index one more than the one before.
 * base_index is 0 for a log that was never truncated; after kv_log_truncate_before(I) it is I, and
 * base_term is the term of entry I, which a Raft follower needs to check the entry after it.
 *
 * Durability: an append is on disk when kv_log_append returns under KV_SYNC_ALWAYS, after
 * kv_log_sync (or kv_log_close) under KV_SYNC_BATCH, and when the kernel decides under
 * KV_SYNC_NONE. Truncation writes the kept entries into PATH.tmp, syncs it, renames it over PATH
 * and syncs the directory: a crash leaves either the old file or the new one, never a mix.
 *
 * Recovery (kv_log_open): a last record cut short or failing its checksum, or a tail of zeros, is
 * what a crash during an append leaves; it is dropped (the file cut back and synced) and reported.
 * A bad record with good records after it is not a crash's doing: the open fails with KV_ECORRUPT
 * and the file is left as it is.
 *
 * Threads: a kv_log is used by one thread at a time. */
#ifndef KV_LOG_H
#define KV_LOG_H

#include "kv_types.h"

typedef enum { KV_SYNC_ALWAYS, KV_SYNC_BATCH, KV_SYNC_NONE } kv_sync_policy;

typedef struct kv_log kv_log;

typedef struct {
    kv_sync_policy sync;
    /* Used only when PATH does not exist yet: the new log starts after (base_index, base_term),
     * as a node that starts from a state saved at that index needs. */
    uint64_t create_base_index;
    uint64_t create_base_term;
} kv_log_options;

typedef struct {
    uint64_t entries;       /* records found good */
    uint64_t dropped_bytes; /* the torn tail cut off, 0 when the file ended cleanly */
} kv_log_recovery;

/* Opens (or creates) the log at path. opts NULL: KV_SYNC_ALWAYS, created with base (0, 0).
 * recovery may be NULL. On success *out is the caller's, freed by kv_log_close. */
kv_err kv_log_open(const char *path, const kv_log_options *opts, kv_log **out, kv_log_recovery *recovery);

/* Syncs what KV_SYNC_BATCH left pending, and frees log. Returns the sync's result. */
kv_err kv_log_close(kv_log *log);

/* Appends entry, whose index must be kv_log_last_index + 1 and whose term must not be lower than
 * kv_log_last_term (KV_ERANGE otherwise, nothing written). A failed write is cut back off. */
kv_err kv_log_append(kv_log *log, const kv_entry *entry);

/* Makes every append so far durable. */
kv_err kv_log_sync(kv_log *log);

uint64_t kv_log_base_index(const kv_log *log);
uint64_t kv_log_base_term(const kv_log *log);
uint64_t kv_log_last_index(const kv_log *log); /* base_index when the log holds no entry */
uint64_t kv_log_last_term(const kv_log *log);
uint64_t kv_log_size(const kv_log *log); /* bytes of the file */

/* Calls fn for each entry with index > after, in order; the entry is valid during the call. A
 * non-zero return of fn stops the walk and is returned. KV_ERANGE when after < base_index: the
 * entries after it are no longer all held. */
typedef kv_err (*kv_entry_fn)(void *ctx, const kv_entry *entry);
kv_err kv_log_read_after(kv_log *log, uint64_t after, kv_entry_fn fn, void *ctx);

/* Removes every entry with index <= index, durably (see above); the log keeps appending after
 * its last entry. index <= base_index does nothing; index > last_index is KV_ERANGE. */
kv_err kv_log_truncate_before(kv_log *log, uint64_t index);

#endif
