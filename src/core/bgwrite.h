/*
 * bgwrite.h - writes a stream to a file descriptor on a helper thread, which also runs the
 * stream's digest (the hook), so that the caller only copies bytes in and goes on serving.
 *
 * Memory is bounded: `slots` buffers of `slot_size` bytes, allocated at creation. The caller
 * blocks when all of them wait to be written. Not thread-safe: one producer.
 */
#ifndef CF_CORE_BGWRITE_H
#define CF_CORE_BGWRITE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct cf_bgwrite cf_bgwrite;

/* Starts the helper thread for fd (the file `name`, copied, which messages cite), whose file
 * offset is `offset` (bytes already written). writeback_step > 0 starts asynchronous writeback
 * (sync_file_range) every that many bytes. CF_EINVAL for a bad geometry, CF_ENOMEM, or the
 * CF_E code of a thread that cannot start. */
int cf_bgwrite_new(int fd, const char *name, uint64_t offset, size_t slot_size, unsigned slots,
                   uint64_t writeback_step, cf_bgwrite **out, cf_err *err);
/* fn sees every slot's bytes, in order, on the helper thread just before the slot is written:
 * whole slots, so a digest of the stream gets large even pieces whatever sizes the producer
 * writes in, and the digest's CPU is not the producer's (a server's event thread serves many
 * connections: an upload hashed there would make the others wait, and two uploads fed by one
 * thread could never be hashed side by side). Not called for slots after a failed write, nor
 * for those discarded by cf_bgwrite_free. fn's state may be read by the producer only after
 * cf_bgwrite_finish. Set before the first write. */
typedef void (*cf_bgwrite_hook_fn)(void *ctx, const void *p, size_t n);
void cf_bgwrite_set_hook(cf_bgwrite *bw, cf_bgwrite_hook_fn fn, void *ctx);
/* Copies n bytes into the pipeline. Returns 0, or the CF_E code of an earlier failed write
 * (the message names the file and the system's cause). */
int cf_bgwrite_write(cf_bgwrite *bw, const void *p, size_t n, cf_err *err);
/* Writes out everything queued and stops the thread. Returns 0 or the first failed write's
 * CF_E code. */
int cf_bgwrite_finish(cf_bgwrite *bw, cf_err *err);
/* Stops the thread (discarding what is queued) and frees. NULL is a no-op. */
void cf_bgwrite_free(cf_bgwrite *bw);

#endif
