/*
 * chunk_writer.c - the ordered chunk writer with its optional worker pool.
 *
 * Writer slots: chunk i always uses slot i % nslots, so a slot is free again exactly when chunk
 * i - nslots has been emitted; emission is strictly in index order, which keeps the SHA-256 of
 * the stored object and the table offsets simple. Workers take the lowest queued index first so
 * the ordered emitter waits as little as possible. With workers, emission (SHA-256 and the
 * sink's write or upload hand-over) runs on a thread of its own: on the caller's thread it
 * took a third of a create's CPU on the one thread that also reads every source file, and on
 * two cores that thread, not compression, set the pace while small files were read.
 */
#include "archive/chunk.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_FREE, SLOT_FILLING, SLOT_QUEUED, SLOT_RUNNING, SLOT_DONE };

struct slot {
    unsigned char *raw, *out;
    size_t raw_n, out_len;
    uint64_t index;
    int last, state, rc;
    uint32_t crc;
    cf_err err;
};

struct cf_archive_writer {
    cf_archive_params params;
    size_t chunk_size, out_cap;
    cf_archive_sink_fn sink;
    void *sink_ctx;
    struct slot *slots;
    unsigned nslots, nthreads;
    pthread_t *threads, emitter;
    int has_emitter;
    pthread_mutex_t mu;
    pthread_cond_t work, done, freed; /* freed: a slot was emitted, or emission failed */
    int stop, failed, finished;
    int emit_rc; /* the emitter's failure, reported by the next claim or finish */
    cf_err emit_err;
    uint64_t cur;       /* index of the chunk being filled */
    uint64_t next_emit; /* index of the next chunk to hand to the sink */
    cf_hash *sha;
    cf_archive_chunk *chunks;
    size_t nchunks, chunks_cap;
    uint64_t size, raw_size;
};

static void *emitter_main(void *arg);

static void encode_slot(cf_archive_writer *w, struct slot *s)
{
    cf_err_clear(&s->err);
    s->rc = cf_archive_chunk_encode(&w->params, s->index, s->last, s->raw, s->raw_n, s->out, w->out_cap,
                                    &s->out_len, &s->crc, &s->err);
}

static void *worker(void *arg)
{
    cf_archive_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        struct slot *pick = NULL;
        for (unsigned i = 0; i < w->nslots; i++) {
            struct slot *s = &w->slots[i];
            if (s->state == SLOT_QUEUED && (!pick || s->index < pick->index))
                pick = s;
        }
        if (!pick) {
            if (w->stop)
                break;
            pthread_cond_wait(&w->work, &w->mu);
            continue;
        }
        pick->state = SLOT_RUNNING;
        pthread_mutex_unlock(&w->mu);
        encode_slot(w, pick);
        pthread_mutex_lock(&w->mu);
        pick->state = SLOT_DONE;
        pthread_cond_broadcast(&w->done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int cf_archive_writer_new(const cf_archive_writer_opts *opts, cf_archive_sink_fn sink, void *sink_ctx,
                          cf_archive_writer **out, cf_err *err)
{
    cf_archive_writer_opts def = {.params = {.codec = CF_CODEC_ZSTD}};
    if (!opts)
        opts = &def;
    *out = NULL;
    int rc = cf_codec_check_level(opts->params.codec, opts->params.level, err);
    if (rc)
        return rc;
    size_t chunk = opts->chunk_size ? opts->chunk_size : CF_ARCHIVE_DEFAULT_CHUNK;
    if (chunk > CF_ARCHIVE_MAX_CHUNK)
        return cf_err_set(err, CF_EINVAL, "chunk size %zu above the maximum of %zu", chunk,
                          CF_ARCHIVE_MAX_CHUNK);
    if (opts->threads > 256)
        return cf_err_set(err, CF_EINVAL, "%u compression threads; at most 256", opts->threads);
    cf_archive_writer *w = calloc(1, sizeof *w);
    if (!w)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    w->params = opts->params;
    w->chunk_size = chunk;
    w->out_cap = cf_archive_chunk_bound(&w->params, chunk);
    w->sink = sink;
    w->sink_ctx = sink_ctx;
    w->nthreads = opts->threads;
    w->nslots = opts->threads ? 2 * opts->threads + 1 : 1;
    w->slots = calloc(w->nslots, sizeof *w->slots);
    w->sha = cf_hash_new(CF_HASH_SHA256);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->done, NULL);
    pthread_cond_init(&w->freed, NULL);
    if (!w->slots || !w->sha)
        goto nomem;
    if (w->nthreads) {
        w->threads = calloc(w->nthreads, sizeof *w->threads);
        if (!w->threads)
            goto nomem;
        for (unsigned i = 0; i < w->nthreads; i++) {
            if (pthread_create(&w->threads[i], NULL, worker, w) != 0) {
                w->nthreads = i; /* join only those that started */
                cf_archive_writer_free(w);
                return cf_err_set(err, CF_EAGAIN, "cannot start compression thread %u", i);
            }
        }
        if (pthread_create(&w->emitter, NULL, emitter_main, w) != 0) {
            cf_archive_writer_free(w);
            return cf_err_set(err, CF_EAGAIN, "cannot start the archive's output thread");
        }
        w->has_emitter = 1;
    }
    *out = w;
    return 0;
nomem:
    cf_archive_writer_free(w);
    return cf_err_set(err, CF_ENOMEM, "out of memory");
}

/* Workers scan every slot's state under mu, so the writer changes it there too. */
static void set_state(cf_archive_writer *w, struct slot *s, int state)
{
    if (w->nthreads)
        pthread_mutex_lock(&w->mu);
    s->state = state;
    if (w->nthreads)
        pthread_mutex_unlock(&w->mu);
}

/* Hands encoded chunk next_emit, in slot s, to the sink. Only one thread emits: the caller's
 * without workers, the emitter's with them. Called without mu. */
static int emit_slot(cf_archive_writer *w, struct slot *s, cf_err *err)
{
    if (s->rc) {
        if (err)
            *err = s->err;
        return s->rc;
    }
    if (w->nchunks == w->chunks_cap) {
        size_t ncap = w->chunks_cap ? 2 * w->chunks_cap : 16;
        cf_archive_chunk *n = realloc(w->chunks, ncap * sizeof *n);
        if (!n)
            return cf_err_set(err, CF_ENOMEM, "out of memory for the chunk table");
        w->chunks = n;
        w->chunks_cap = ncap;
    }
    int rc = w->sink(w->sink_ctx, s->out, s->out_len, err);
    if (rc)
        return rc;
    cf_hash_update(w->sha, s->out, s->out_len);
    w->chunks[w->nchunks++] =
        (cf_archive_chunk){.offset = w->size, .size = s->out_len, .raw_size = s->raw_n, .crc32c = s->crc};
    w->size += s->out_len;
    return 0;
}

/* Serial writer only: emits the chunk just encoded in place. */
static int emit_next(cf_archive_writer *w, cf_err *err)
{
    int rc = emit_slot(w, &w->slots[w->next_emit % w->nslots], err);
    if (!rc) {
        w->slots[w->next_emit % w->nslots].state = SLOT_FREE;
        w->next_emit++;
    }
    return rc;
}

static void *emitter_main(void *arg)
{
    cf_archive_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    /* stop: the writer is being freed, after finish or after a failure; either way nothing
     * more goes to the sink. */
    while (!w->emit_rc && !w->stop) {
        struct slot *s = &w->slots[w->next_emit % w->nslots];
        if (s->state != SLOT_DONE || s->index != w->next_emit) {
            pthread_cond_wait(&w->done, &w->mu);
            continue;
        }
        pthread_mutex_unlock(&w->mu);
        cf_err e;
        cf_err_clear(&e);
        int rc = emit_slot(w, s, &e);
        pthread_mutex_lock(&w->mu);
        if (rc) {
            w->emit_rc = rc;
            w->emit_err = e;
        } else {
            s->state = SLOT_FREE;
            w->next_emit++;
        }
        pthread_cond_broadcast(&w->freed);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Waits until the emitter has emitted every chunk before index `upto`, or failed. */
static int wait_emitted(cf_archive_writer *w, uint64_t upto, cf_err *err)
{
    pthread_mutex_lock(&w->mu);
    while (w->next_emit < upto && !w->emit_rc)
        pthread_cond_wait(&w->freed, &w->mu);
    int rc = w->emit_rc;
    if (rc && err)
        *err = w->emit_err;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Queues the chunk being filled; with no threads, encodes and emits it at once. */
static int submit(cf_archive_writer *w, int last, cf_err *err)
{
    struct slot *s = &w->slots[w->cur % w->nslots];
    s->last = last;
    w->cur++;
    if (!w->nthreads) {
        encode_slot(w, s);
        s->state = SLOT_DONE;
        return emit_next(w, err);
    }
    pthread_mutex_lock(&w->mu);
    s->state = SLOT_QUEUED;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* Workers change a slot's state under mu, so the writer reads it there too. */
static int slot_busy(cf_archive_writer *w, struct slot *s)
{
    if (!w->nthreads)
        return s->state != SLOT_FREE && s->state != SLOT_FILLING;
    pthread_mutex_lock(&w->mu);
    int busy = s->state != SLOT_FREE && s->state != SLOT_FILLING;
    pthread_mutex_unlock(&w->mu);
    return busy;
}

/* Makes slot cur % nslots ready for filling, emitting earlier chunks to free it. */
static int claim(cf_archive_writer *w, struct slot **out, cf_err *err)
{
    struct slot *s = &w->slots[w->cur % w->nslots];
    if (w->nthreads && slot_busy(w, s)) {
        /* Its chunk, cur - nslots, is free once emitted. */
        int rc = wait_emitted(w, w->cur - w->nslots + 1, err);
        if (rc)
            return rc;
    }
    while (!w->nthreads && slot_busy(w, s)) {
        int rc = emit_next(w, err);
        if (rc)
            return rc;
    }
    if (!s->raw) {
        s->raw = malloc(w->chunk_size);
        s->out = malloc(w->out_cap);
        if (!s->raw || !s->out)
            return cf_err_set(err, CF_ENOMEM, "out of memory for a %zu-byte chunk", w->chunk_size);
    }
    if (s->state == SLOT_FREE) {
        s->index = w->cur;
        s->raw_n = 0;
        set_state(w, s, SLOT_FILLING);
    }
    *out = s;
    return 0;
}

int cf_archive_writer_write(cf_archive_writer *w, const void *p, size_t n, cf_err *err)
{
    if (w->failed || w->finished)
        return cf_err_set(err, CF_EINVAL, "archive writer used after %s", w->failed ? "an error" : "finish");
    const unsigned char *src = p;
    int rc = 0;
    while (n > 0) {
        struct slot *s;
        if ((rc = claim(w, &s, err)) != 0)
            break;
        if (s->raw_n == w->chunk_size) {
            /* A full chunk is queued only once more data proves it is not the last. */
            if ((rc = submit(w, 0, err)) != 0)
                break;
            continue;
        }
        size_t take = w->chunk_size - s->raw_n;
        if (take > n)
            take = n;
        memcpy(s->raw + s->raw_n, src, take);
        s->raw_n += take;
        w->raw_size += take;
        src += take;
        n -= take;
    }
    if (rc)
        w->failed = 1;
    return rc;
}

int cf_archive_writer_finish(cf_archive_writer *w, cf_archive_result *res, cf_err *err)
{
    if (w->failed || w->finished)
        return cf_err_set(err, CF_EINVAL, "archive writer used after %s", w->failed ? "an error" : "finish");
    struct slot *s;
    int rc = claim(w, &s, err);
    if (!rc)
        rc = submit(w, 1, err);
    if (!rc && w->nthreads)
        rc = wait_emitted(w, w->cur, err);
    while (!rc && w->next_emit < w->cur)
        rc = emit_next(w, err);
    if (rc) {
        w->failed = 1;
        return rc;
    }
    w->finished = 1;
    res->chunks = w->chunks;
    res->nchunks = w->nchunks;
    res->size = w->size;
    res->raw_size = w->raw_size;
    if (cf_hash_final(w->sha, res->sha256) != 0)
        return cf_err_set(err, CF_ENOMEM, "out of memory computing the archive's SHA-256");
    return 0;
}

void cf_archive_writer_free(cf_archive_writer *w)
{
    if (!w)
        return;
    if (w->threads) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_broadcast(&w->work);
        pthread_cond_broadcast(&w->done);
        pthread_mutex_unlock(&w->mu);
        for (unsigned i = 0; i < w->nthreads; i++)
            pthread_join(w->threads[i], NULL);
        if (w->has_emitter)
            pthread_join(w->emitter, NULL);
        free(w->threads);
    }
    for (unsigned i = 0; w->slots && i < w->nslots; i++) {
        free(w->slots[i].raw);
        free(w->slots[i].out);
    }
    free(w->slots);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->done);
    pthread_cond_destroy(&w->freed);
    cf_hash_free(w->sha);
    free(w->chunks);
    free(w);
}
