/*
 * pool.h - a few threads taking the items 0..n-1 of one job in turn: the copies of a mirror run,
 * the objects whose content types are checked, the pairs that verify reads.
 *
 * Each thread may hold its own state (start/stop: a content-type detector or a hash, which
 * cannot be shared), made once before its first item rather than once per item. The first
 * failure (of a start or an item) stops the job: no item is taken after it and cf_pool_run
 * returns it. A job whose items record their own outcomes returns 0 from item and goes on.
 */
#ifndef CF_MIRROR_POOL_H
#define CF_MIRROR_POOL_H

#include <stddef.h>

#include "core/err.h"

typedef struct cf_pool_job {
    size_t n;    /* the items, 0 .. n-1 */
    int threads; /* at most this many work at once (below 1: one); never more than n */
    void *ctx;
    /* Optional: a thread's own state, made before its first item. On failure it leaves nothing
     * to free (stop is not called) and the job stops with its code and message. */
    int (*start)(void *ctx, void **state, cf_err *err);
    /* Item i; nonzero stops the job (err says why). */
    int (*item)(void *ctx, void *state, size_t i, cf_err *err);
    /* Optional: frees what start made, after the thread's last item. */
    void (*stop)(void *ctx, void *state);
    /* Optional: called on the calling thread about every tick_ms while the others work (progress
     * for a terminal). Without it the calling thread takes items too, so that one thread needs
     * none started. */
    void (*tick)(void *ctx);
    int tick_ms;
} cf_pool_job;

/* Runs job to its end. 0, the first failure of a start or an item (with its err), CF_ENOMEM, or,
 * with a tick (the calling thread does not work), CF_EAGAIN when no thread could start. Fewer
 * threads than asked for may run when the system refuses more. */
int cf_pool_run(const cf_pool_job *job, cf_err *err);

#endif
