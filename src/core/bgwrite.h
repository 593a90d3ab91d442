/*
 * bgwrite.h - writes a stream to a file descriptor on a helper thread, so that the caller's
 * CPU work on the same bytes (MD5 of an upload) overlaps the copy into the page cache and the
 * writeback to disk.
 *
 * Memory is bounded: `slots` buffers of `slot_size` bytes, allocated at creation. The caller
 * blocks when all of them wait to be written. Not thread-safe: one producer.
 */
#ifndef CF_CORE_BGWRITE_H
#define CF_CORE_BGWRITE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cf_bgwrite cf_bgwrite;

/* Starts the helper thread for fd, whose file offset is `offset` (bytes already written).
 * Returns 0 or an errno value. writeback_step > 0 starts asynchronous writeback
 * (sync_file_range) every that many bytes. */
int cf_bgwrite_new(int fd, uint64_t offset, size_t slot_size, unsigned slots, uint64_t writeback_step,
                   cf_bgwrite **out);
/* fn sees every slot's bytes, in order, on the producer's thread just before the slot is
 * queued for writing: whole slots, so a digest of the stream gets large even pieces whatever
 * sizes the producer writes in. Set before the first write. */
typedef void (*cf_bgwrite_hook_fn)(void *ctx, const void *p, size_t n);
void cf_bgwrite_set_hook(cf_bgwrite *bw, cf_bgwrite_hook_fn fn, void *ctx);
/* Copies n bytes into the pipeline. Returns 0, or the errno of an earlier failed write. */
int cf_bgwrite_write(cf_bgwrite *bw, const void *p, size_t n);
/* Writes out everything queued and stops the thread. Returns 0 or the first write's errno. */
int cf_bgwrite_finish(cf_bgwrite *bw);
/* Stops the thread (discarding what is queued) and frees. NULL is a no-op. */
void cf_bgwrite_free(cf_bgwrite *bw);

#endif
