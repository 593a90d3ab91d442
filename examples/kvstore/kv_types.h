/* What the log, the state machine and the store share: one error enum, the entry, the bounds.
 *
 * Every function of the example returns a kv_err (KV_OK is 0). KV_EIO leaves errno as the failing
 * system call set it, so a caller can say why. */
#ifndef KV_TYPES_H
#define KV_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    KV_OK = 0,
    KV_EIO,       /* a system call failed; errno says why */
    KV_ENOMEM,    /* out of memory */
    KV_EINVAL,    /* an argument out of its bounds (key or value too long, unknown op) */
    KV_ECORRUPT,  /* a checksum or a structure is wrong where no crash could have left it */
    KV_ERANGE,    /* an index that does not follow, or entries no longer (or not yet) held */
    KV_ENOENT,    /* no such key */
    KV_EEXIST,    /* a new node's directory already holds a log */
    KV_ETRUNCATED /* a stream ended inside a record */
} kv_err;

const char *kv_strerror(kv_err err);

/* A count or an index from a command line or a serve line: digits only (strtoull alone takes
 * " -1" as 2^64 - 1, and "+5"), within 64 bits. 0, or -1. */
int kv_parse_u64(const char *text, uint64_t *out);

typedef enum { KV_OP_SET = 1, KV_OP_DEL = 2 } kv_op;

/* Bounds checked on append and on decode, so a damaged length never drives an allocation. */
#define KV_KEY_MAX (64u * 1024u)
#define KV_VALUE_MAX (16u * 1024u * 1024u)

/* One replicated command. key and value are borrowed: valid as long as their owner says (a
 * callback's entry until the callback returns). value is ignored for KV_OP_DEL. */
typedef struct {
    uint64_t index; /* 1, 2, 3 ... without gaps */
    uint64_t term;  /* never decreases along the log */
    kv_op op;
    const char *key;
    uint32_t key_len;
    const char *value;
    uint32_t value_len;
} kv_entry;

/* Sinks and sources for state files and entry streams: an fd, a FILE*, or later a snapshot
 * stream. A write sink takes all of len or fails (non-zero); a read source returns the bytes it
 * gave (0 at the end, negative on error), possibly fewer than len. */
typedef int (*kv_write_fn)(void *ctx, const void *buf, size_t len);
typedef long (*kv_read_fn)(void *ctx, void *buf, size_t len);

int kv_fd_write(void *fd_ptr, const void *buf, size_t len); /* ctx: an int * */
long kv_fd_read(void *fd_ptr, void *buf, size_t len);       /* ctx: an int * */

/* Syncs the directory holding path, so that a rename or a creation there is durable. */
kv_err kv_fsync_parent(const char *path);

#endif
