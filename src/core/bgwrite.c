#include "core/bgwrite.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"

#define MAX_SLOTS 16

struct cf_bgwrite {
    int fd;
    char *name; /* the file, for messages */
    size_t slot_size;
    unsigned nslots;
    char *slots[MAX_SLOTS];
    size_t lens[MAX_SLOTS];
    /* A ring of slot indexes: [head, head+queued) are full and wait for the thread; the
     * producer fills slot `filling`. Slots rotate in order, so the ring is all we need. */
    unsigned head, queued, filling;
    int stop, started;
    int error;      /* CF_E code of the first failed write (or of cf_bgwrite_free's stop) */
    cf_err failure; /* its message; written once, by the thread, before error is set */
    uint64_t written, flushed, writeback_step;
    cf_bgwrite_hook_fn hook;
    void *hook_ctx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t has_work, has_room;
};

static void *drain(void *arg)
{
    cf_bgwrite *bw = arg;
    pthread_mutex_lock(&bw->mu);
    for (;;) {
        while (!bw->queued && !bw->stop)
            pthread_cond_wait(&bw->has_work, &bw->mu);
        if (!bw->queued)
            break;
        unsigned i = bw->head;
        int skip = bw->error;
        pthread_mutex_unlock(&bw->mu);
        int e = 0;
        cf_err werr;
        if (!skip && bw->hook)
            bw->hook(bw->hook_ctx, bw->slots[i], bw->lens[i]);
        if (!skip)
            e = cf_fs_write_all(bw->fd, bw->slots[i], bw->lens[i], bw->name, &werr);
        if (!e) {
            bw->written += bw->lens[i];
            if (bw->writeback_step && bw->written - bw->flushed >= bw->writeback_step) {
                sync_file_range(bw->fd, (off_t)bw->flushed, (off_t)(bw->written - bw->flushed),
                                SYNC_FILE_RANGE_WRITE);
                bw->flushed = bw->written;
            }
        }
        pthread_mutex_lock(&bw->mu);
        if (e && !bw->error) {
            bw->failure = werr;
            bw->error = e;
        }
        bw->head = (bw->head + 1) % bw->nslots;
        bw->queued--;
        pthread_cond_signal(&bw->has_room);
    }
    pthread_mutex_unlock(&bw->mu);
    return NULL;
}

int cf_bgwrite_new(int fd, const char *name, uint64_t offset, size_t slot_size, unsigned slots,
                   uint64_t writeback_step, cf_bgwrite **out, cf_err *err)
{
    if (slots < 2 || slots > MAX_SLOTS || slot_size == 0)
        return cf_err_set(err, CF_EINVAL, "cannot write '%s' in %u slots of %zu bytes", name, slots,
                          slot_size);
    cf_bgwrite *bw = calloc(1, sizeof *bw);
    if (!bw || !(bw->name = strdup(name))) {
        free(bw);
        return cf_err_set(err, CF_ENOMEM, "out of memory starting to write '%s'", name);
    }
    bw->fd = fd;
    bw->slot_size = slot_size;
    bw->nslots = slots;
    bw->writeback_step = writeback_step;
    bw->written = bw->flushed = offset;
    for (unsigned i = 0; i < slots; i++)
        if (!(bw->slots[i] = malloc(slot_size))) {
            cf_bgwrite_free(bw);
            return cf_err_set(err, CF_ENOMEM, "out of memory starting to write '%s'", name);
        }
    pthread_mutex_init(&bw->mu, NULL);
    pthread_cond_init(&bw->has_work, NULL);
    pthread_cond_init(&bw->has_room, NULL);
    int rc = pthread_create(&bw->thread, NULL, drain, bw);
    if (rc) {
        pthread_mutex_destroy(&bw->mu);
        pthread_cond_destroy(&bw->has_work);
        pthread_cond_destroy(&bw->has_room);
        int code = cf_err_sys(err, cf_err_from_errno(rc), rc, "cannot start a thread writing '%s'", bw->name);
        cf_bgwrite_free(bw);
        return code;
    }
    bw->started = 1;
    *out = bw;
    return 0;
}

void cf_bgwrite_set_hook(cf_bgwrite *bw, cf_bgwrite_hook_fn fn, void *ctx)
{
    bw->hook = fn;
    bw->hook_ctx = ctx;
}

/* Hands the slot being filled to the thread and waits for a free one. */
static int push(cf_bgwrite *bw)
{
    pthread_mutex_lock(&bw->mu);
    bw->queued++;
    pthread_cond_signal(&bw->has_work);
    while (bw->queued == bw->nslots && !bw->error)
        pthread_cond_wait(&bw->has_room, &bw->mu);
    int e = bw->error;
    bw->filling = (bw->filling + 1) % bw->nslots;
    bw->lens[bw->filling] = 0;
    pthread_mutex_unlock(&bw->mu);
    return e;
}

/* The first failed write, whose message names the file; the thread no longer touches it. */
static int write_failed(const cf_bgwrite *bw, cf_err *err)
{
    if (err)
        *err = bw->failure;
    return bw->error;
}

int cf_bgwrite_write(cf_bgwrite *bw, const void *p, size_t n, cf_err *err)
{
    const char *c = p;
    while (n) {
        size_t *len = &bw->lens[bw->filling];
        size_t take = bw->slot_size - *len;
        if (take > n)
            take = n;
        memcpy(bw->slots[bw->filling] + *len, c, take);
        *len += take;
        c += take;
        n -= take;
        if (*len == bw->slot_size) {
            int e = push(bw);
            if (e)
                return write_failed(bw, err);
        }
    }
    return 0;
}

int cf_bgwrite_finish(cf_bgwrite *bw, cf_err *err)
{
    if (bw->lens[bw->filling])
        push(bw);
    pthread_mutex_lock(&bw->mu);
    bw->stop = 1;
    pthread_cond_signal(&bw->has_work);
    pthread_mutex_unlock(&bw->mu);
    if (bw->started)
        pthread_join(bw->thread, NULL);
    bw->started = 0;
    return bw->error ? write_failed(bw, err) : 0;
}

void cf_bgwrite_free(cf_bgwrite *bw)
{
    if (!bw)
        return;
    if (bw->started) {
        pthread_mutex_lock(&bw->mu);
        if (!bw->error) { /* skip what is queued */
            cf_err_set(&bw->failure, CF_EIO, "writing '%s' was cancelled", bw->name);
            bw->error = CF_EIO;
        }
        bw->stop = 1;
        pthread_cond_signal(&bw->has_work);
        pthread_mutex_unlock(&bw->mu);
        pthread_join(bw->thread, NULL);
        pthread_mutex_destroy(&bw->mu);
        pthread_cond_destroy(&bw->has_work);
        pthread_cond_destroy(&bw->has_room);
    }
    for (unsigned i = 0; i < bw->nslots; i++)
        free(bw->slots[i]);
    free(bw->name);
    free(bw);
}
