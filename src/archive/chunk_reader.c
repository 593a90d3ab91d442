/*
 * chunk_reader.c - the readers of a chunked archive: serial (one fetch per chunk) and parallel
 * (one stream of the whole object, decoded by a pool), behind one pull API.
 */
#include "archive/chunk.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int check_table(const cf_archive_read_opts *o, const cf_archive_chunk *chunks, size_t n,
                       uint64_t *max_size, uint64_t *max_raw, cf_err *err)
{
    if (n == 0)
        return cf_err_set(err, CF_ECORRUPT, "chunk table is empty; an archive has at least one chunk");
    uint64_t off = 0, raw = 0;
    *max_size = *max_raw = 0;
    for (size_t i = 0; i < n; i++) {
        const cf_archive_chunk *c = &chunks[i];
        if (c->offset != off)
            return cf_err_set(err, CF_ECORRUPT,
                              "chunk %zu starts at offset %llu, expected %llu (chunks must be "
                              "contiguous)",
                              i, (unsigned long long)c->offset, (unsigned long long)off);
        if (c->raw_size > CF_ARCHIVE_MAX_CHUNK ||
            c->size > cf_archive_chunk_bound(&o->params, (size_t)c->raw_size))
            return cf_err_set(err, CF_ECORRUPT,
                              "chunk %zu at offset %llu: sizes %llu stored / %llu raw are "
                              "impossible for \"%s\"%s",
                              i, (unsigned long long)off, (unsigned long long)c->size,
                              (unsigned long long)c->raw_size, cf_codec_name(o->params.codec),
                              o->params.key ? " sealed" : "");
        off += c->size;
        raw += c->raw_size;
        if (c->size > *max_size)
            *max_size = c->size;
        if (c->raw_size > *max_raw)
            *max_raw = c->raw_size;
    }
    if (o->size && off != o->size)
        return cf_err_set(err, CF_ECORRUPT, "chunk table covers %llu stored bytes, archive size is %llu",
                          (unsigned long long)off, (unsigned long long)o->size);
    if (o->raw_size && raw != o->raw_size)
        return cf_err_set(err, CF_ECORRUPT, "chunk table covers %llu raw bytes, archive raw size is %llu",
                          (unsigned long long)raw, (unsigned long long)o->raw_size);
    return 0;
}

/* Parallel reader slots: chunk i always uses slot i % nslots, as in the writer. The producer
 * owns a FILLING slot's bytes, a worker (or the consumer) a RUNNING one's, the consumer the DONE
 * slot it last returned; every state change happens under mu. */
enum { RSLOT_FREE, RSLOT_FILLING, RSLOT_QUEUED, RSLOT_RUNNING, RSLOT_DONE };

struct rslot {
    unsigned char *stored, *raw;
    size_t index;
    uint64_t filled; /* stored bytes received so far; producer only */
    int state, rc;
    int hashed, consumed; /* a DONE slot is FREE again once both are set */
    cf_err err;
};

struct cf_archive_reader {
    const cf_archive_read_opts *o;
    const cf_archive_chunk *chunks;
    size_t nchunks, next;
    cf_archive_fetch_fn fetch;
    void *fetch_ctx;
    unsigned char *stored, *raw;
    cf_hash *sha;
    int failed;
    int skipped; /* chunks before next were never read: no whole-object digest to check */

    /* The parallel reader only (stream != NULL). */
    cf_archive_stream_fn stream;
    void *stream_ctx;
    struct rslot *slots, *held; /* held: the slot whose raw bytes reader_next returned last */
    unsigned nslots, nthreads;
    pthread_t producer, *workers, hasher;
    int producer_started, hasher_started;
    /* The hasher's: the next chunk to hash, and the digest once the last is hashed. */
    size_t hash_next;
    int hash_finished;
    pthread_mutex_t mu;
    pthread_cond_t work, done, space;
    int cancel;
    /* Producer's own: the chunk being filled, and the first error its sink met. */
    size_t cur;
    uint64_t pos;
    int sink_rc;
    cf_err sink_err;
    /* Published by the producer under mu when the stream has ended. */
    int prod_finished, prod_rc;
    size_t prod_at; /* chunks before it were all handed on; its error belongs to it */
    cf_err prod_err;
    unsigned char digest[CF_SHA256_LEN];
};

static void stop_threads(cf_archive_reader *r)
{
    pthread_mutex_lock(&r->mu);
    r->cancel = 1;
    pthread_cond_broadcast(&r->work);
    pthread_cond_broadcast(&r->done);
    pthread_cond_broadcast(&r->space);
    pthread_mutex_unlock(&r->mu);
    if (r->producer_started)
        pthread_join(r->producer, NULL);
    if (r->hasher_started)
        pthread_join(r->hasher, NULL);
    for (unsigned i = 0; r->workers && i < r->nthreads; i++)
        pthread_join(r->workers[i], NULL);
}

void cf_archive_reader_free(cf_archive_reader *r)
{
    if (!r)
        return;
    if (r->stream) {
        stop_threads(r);
        free(r->workers);
        for (unsigned i = 0; r->slots && i < r->nslots; i++) {
            free(r->slots[i].stored);
            free(r->slots[i].raw);
        }
        free(r->slots);
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->work);
        pthread_cond_destroy(&r->done);
        pthread_cond_destroy(&r->space);
    }
    cf_hash_free(r->sha);
    free(r->stored);
    free(r->raw);
    free(r);
}

static int check_key_and_table(const cf_archive_read_opts *o, const cf_archive_chunk *chunks, size_t nchunks,
                               uint64_t *max_size, uint64_t *max_raw, cf_err *err)
{
    if (o->params.key && o->key_id && strcmp(o->key_id, o->params.key->key_id) != 0)
        return cf_err_set(err, CF_EAUTH,
                          "wrong key: the archive was encrypted under key id \"%s\", the key "
                          "given has id \"%s\"",
                          o->key_id, o->params.key->key_id);
    return check_table(o, chunks, nchunks, max_size, max_raw, err);
}

/* What both readers start with: the key and the table checked, then a reader made from init
 * (its source: fetch or stream) and the table. */
static int reader_alloc(const cf_archive_read_opts *o, const cf_archive_chunk *chunks, size_t nchunks,
                        const cf_archive_reader *init, uint64_t *max_size, uint64_t *max_raw,
                        cf_archive_reader **r, cf_err *err)
{
    int rc = check_key_and_table(o, chunks, nchunks, max_size, max_raw, err);
    if (rc)
        return rc;
    if (!(*r = malloc(sizeof **r)))
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    **r = *init;
    (*r)->o = o;
    (*r)->chunks = chunks;
    (*r)->nchunks = nchunks;
    return 0;
}

int cf_archive_reader_new(const cf_archive_read_opts *o, const cf_archive_chunk *chunks, size_t nchunks,
                          cf_archive_fetch_fn fetch, void *fetch_ctx, cf_archive_reader **out, cf_err *err)
{
    *out = NULL;
    uint64_t max_size = 0, max_raw = 0;
    cf_archive_reader *r;
    const cf_archive_reader init = {.fetch = fetch, .fetch_ctx = fetch_ctx};
    int rc = reader_alloc(o, chunks, nchunks, &init, &max_size, &max_raw, &r, err);
    if (rc)
        return rc;
    r->stored = malloc(max_size ? max_size : 1);
    r->raw = malloc(max_raw ? max_raw : 1);
    r->sha = cf_hash_new(CF_HASH_SHA256);
    if (!r->stored || !r->raw || !r->sha) {
        cf_archive_reader_free(r);
        return cf_err_set(err, CF_ENOMEM, "out of memory for %llu-byte chunks", (unsigned long long)max_raw);
    }
    *out = r;
    return 0;
}

static int check_digest(const unsigned char *d, const unsigned char *want, cf_err *err)
{
    if (memcmp(d, want, CF_SHA256_LEN) == 0)
        return 0;
    char got[2 * CF_SHA256_LEN + 1], exp[2 * CF_SHA256_LEN + 1];
    cf_hex_encode(d, CF_SHA256_LEN, got);
    cf_hex_encode(want, CF_SHA256_LEN, exp);
    return cf_err_set(err, CF_EDIGEST, "archive sha256 %s does not match the manifest's %s", got, exp);
}

static int stream_next(cf_archive_reader *r, const void **p, size_t *n, cf_err *err);

int cf_archive_reader_next(cf_archive_reader *r, const void **p, size_t *n, cf_err *err)
{
    *p = NULL;
    *n = 0;
    if (r->failed)
        return cf_err_set(err, CF_EINVAL, "archive reader used after an error");
    if (r->stream) {
        int rc = stream_next(r, p, n, err);
        if (rc)
            r->failed = 1;
        return rc;
    }
    int rc = 0;
    while (r->next < r->nchunks) {
        size_t i = r->next++;
        const cf_archive_chunk *c = &r->chunks[i];
        if ((rc = r->fetch(r->fetch_ctx, c->offset, c->size, r->stored, err)) != 0)
            goto fail;
        cf_hash_update(r->sha, r->stored, c->size);
        if ((rc = cf_archive_chunk_decode(&r->o->params, i, r->nchunks, c, r->stored, r->raw, err)) != 0)
            goto fail;
        if (c->raw_size) {
            *p = r->raw;
            *n = c->raw_size;
            return 0;
        }
    }
    if (r->o->sha256 && !r->skipped && r->next == r->nchunks) {
        r->next++; /* check once, even if called again at the end */
        unsigned char d[CF_SHA256_LEN];
        cf_hash_final(r->sha, d);
        if ((rc = check_digest(d, r->o->sha256, err)) != 0)
            goto fail;
    }
    return 0;
fail:
    r->failed = 1;
    return rc;
}

int cf_archive_reader_skip_to(cf_archive_reader *r, size_t chunk, cf_err *err)
{
    if (r->stream || r->next != 0 || chunk >= r->nchunks)
        return cf_err_set(err, CF_EINVAL, "archive reader: cannot start at chunk %zu", chunk);
    r->next = chunk;
    r->skipped = chunk > 0;
    return 0;
}

/* ---- the parallel reader ---- */

static int cancelled(cf_err *err)
{
    return cf_err_set(err, CF_EIO, "archive reader closed before the end of the stream");
}

/* Queues every complete chunk from cur on, then claims the slot of the one to fill next, waiting
 * for the consumer to release it: this wait is what bounds the memory. Producer only. */
static int advance(cf_archive_reader *r, cf_err *err)
{
    while (r->cur < r->nchunks) {
        struct rslot *s = &r->slots[r->cur % r->nslots];
        pthread_mutex_lock(&r->mu);
        if (s->state == RSLOT_FILLING && s->index == r->cur) {
            if (s->filled < r->chunks[r->cur].size) {
                pthread_mutex_unlock(&r->mu);
                return 0;
            }
            s->state = RSLOT_QUEUED;
            r->cur++;
            pthread_cond_signal(&r->work);
            /* The consumer may be waiting for this very chunk, and decodes it when no worker
             * has taken it yet. */
            pthread_cond_broadcast(&r->done);
        } else {
            while (s->state != RSLOT_FREE && !r->cancel)
                pthread_cond_wait(&r->space, &r->mu);
            if (r->cancel) {
                pthread_mutex_unlock(&r->mu);
                return cancelled(err);
            }
            s->state = RSLOT_FILLING;
            s->index = r->cur;
            s->filled = 0;
            s->hashed = s->consumed = 0;
        }
        pthread_mutex_unlock(&r->mu);
    }
    return 0;
}

static int producer_sink(void *ctx, const void *p, size_t n, cf_err *err)
{
    cf_archive_reader *r = ctx;
    const unsigned char *src = p;
    int rc = r->sink_rc;
    if (!rc) {
        pthread_mutex_lock(&r->mu);
        int stop = r->cancel;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            rc = cancelled(&r->sink_err);
    }
    while (!rc && n) {
        if (r->cur == r->nchunks) {
            const cf_archive_chunk *last = &r->chunks[r->nchunks - 1];
            rc = cf_err_set(&r->sink_err, CF_ECORRUPT,
                            "archive is longer than its chunk table: bytes follow the last "
                            "chunk (%zu at offset %llu), which ends at byte %llu",
                            r->nchunks - 1, (unsigned long long)last->offset,
                            (unsigned long long)(last->offset + last->size));
            break;
        }
        struct rslot *s = &r->slots[r->cur % r->nslots];
        uint64_t want = r->chunks[r->cur].size - s->filled;
        size_t take = want < n ? (size_t)want : n;
        memcpy(s->stored + s->filled, src, take);
        s->filled += take;
        r->pos += take;
        src += take;
        n -= take;
        rc = advance(r, &r->sink_err);
    }
    if (rc && !r->sink_rc)
        r->sink_rc = rc;
    if (rc && err)
        *err = r->sink_err;
    return rc;
}

static void *producer_main(void *arg)
{
    cf_archive_reader *r = arg;
    cf_err e;
    cf_err_clear(&e);
    /* Claims slot 0, and queues leading chunks of stored size 0 that no byte will complete. */
    int rc = advance(r, &e);
    if (!rc)
        rc = r->stream(r->stream_ctx, producer_sink, r, &e);
    if (r->sink_rc) {
        /* Ours, not whatever the stream made of the sink's refusal. */
        rc = r->sink_rc;
        e = r->sink_err;
    } else if (!rc && r->cur < r->nchunks) {
        const cf_archive_chunk *c = &r->chunks[r->cur];
        rc = cf_err_set(
            &e, CF_ECORRUPT,
            "archive truncated: it ends at byte %llu, inside chunk %zu at offset "
            "%llu (%llu bytes); the chunk table wants %llu bytes",
            (unsigned long long)r->pos, r->cur, (unsigned long long)c->offset, (unsigned long long)c->size,
            (unsigned long long)(r->chunks[r->nchunks - 1].offset + r->chunks[r->nchunks - 1].size));
    } else if (rc && e.code == 0) {
        cf_err_set(&e, rc, "archive stream failed at byte %llu: %s", (unsigned long long)r->pos,
                   cf_strerror(rc));
    }
    pthread_mutex_lock(&r->mu);
    r->prod_rc = rc;
    r->prod_err = e;
    r->prod_at = r->cur;
    r->prod_finished = 1;
    pthread_cond_broadcast(&r->done);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* A consumed slot goes back to the producer once it is hashed too; called with mu held. */
static void release_slot(cf_archive_reader *r, struct rslot *s)
{
    s->consumed = 1;
    if (s->hashed) {
        s->state = RSLOT_FREE;
        pthread_cond_signal(&r->space);
    }
}

/* The archive's SHA-256, chunk by chunk in order from the slots, on a thread of its own: on the
 * producer's it made the producer (network, copies) the restore's slowest stage. */
static void *hasher_main(void *arg)
{
    cf_archive_reader *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->cancel && r->hash_next < r->nchunks) {
        struct rslot *s = &r->slots[r->hash_next % r->nslots];
        int ready = s->index == r->hash_next && !s->hashed &&
                    (s->state == RSLOT_QUEUED || s->state == RSLOT_RUNNING || s->state == RSLOT_DONE);
        if (!ready) {
            if (r->prod_finished && r->hash_next >= r->prod_at)
                break; /* the stream ended before this chunk: the producer's error says so */
            pthread_cond_wait(&r->done, &r->mu);
            continue;
        }
        pthread_mutex_unlock(&r->mu);
        cf_hash_update(r->sha, s->stored, r->chunks[r->hash_next].size);
        pthread_mutex_lock(&r->mu);
        s->hashed = 1;
        r->hash_next++;
        if (s->consumed) {
            s->state = RSLOT_FREE;
            pthread_cond_signal(&r->space);
        }
    }
    if (r->hash_next == r->nchunks) {
        cf_hash_final(r->sha, r->digest);
        r->hash_finished = 1;
    }
    pthread_cond_broadcast(&r->done);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Decodes a QUEUED slot; called with mu held, which it releases while it works. */
static void decode_slot(cf_archive_reader *r, struct rslot *s)
{
    s->state = RSLOT_RUNNING;
    pthread_mutex_unlock(&r->mu);
    cf_err_clear(&s->err);
    s->rc = cf_archive_chunk_decode(&r->o->params, s->index, r->nchunks, &r->chunks[s->index], s->stored,
                                    s->raw, &s->err);
    pthread_mutex_lock(&r->mu);
    s->state = RSLOT_DONE;
    pthread_cond_broadcast(&r->done);
}

static void *decoder_main(void *arg)
{
    cf_archive_reader *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->cancel) {
        struct rslot *pick = NULL;
        for (unsigned i = 0; i < r->nslots; i++) {
            struct rslot *s = &r->slots[i];
            if (s->state == RSLOT_QUEUED && (!pick || s->index < pick->index))
                pick = s;
        }
        if (pick)
            decode_slot(r, pick);
        else
            pthread_cond_wait(&r->work, &r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int cf_archive_reader_new_stream(const cf_archive_read_opts *o, const cf_archive_chunk *chunks,
                                 size_t nchunks, unsigned threads, cf_archive_stream_fn stream,
                                 void *stream_ctx, cf_archive_reader **out, cf_err *err)
{
    *out = NULL;
    if (threads > 256)
        return cf_err_set(err, CF_EINVAL, "%u decompression threads; at most 256", threads);
    uint64_t max_size = 0, max_raw = 0;
    cf_archive_reader *r;
    const cf_archive_reader init = {.stream = stream, .stream_ctx = stream_ctx};
    int rc = reader_alloc(o, chunks, nchunks, &init, &max_size, &max_raw, &r, err);
    if (rc)
        return rc;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->work, NULL);
    pthread_cond_init(&r->done, NULL);
    pthread_cond_init(&r->space, NULL);
    /* More slots than chunks would never be used. */
    unsigned nslots = 2 * threads + 2;
    if (nslots > nchunks)
        nslots = (unsigned)nchunks;
    r->nslots = nslots;
    r->slots = calloc(r->nslots, sizeof *r->slots);
    r->sha = cf_hash_new(CF_HASH_SHA256);
    if (!r->slots || !r->sha)
        goto nomem;
    for (unsigned i = 0; i < r->nslots; i++) {
        r->slots[i].stored = malloc(max_size ? max_size : 1);
        r->slots[i].raw = malloc(max_raw ? max_raw : 1);
        if (!r->slots[i].stored || !r->slots[i].raw)
            goto nomem;
    }
    if (threads) {
        if (!(r->workers = calloc(threads, sizeof *r->workers)))
            goto nomem;
        for (unsigned i = 0; i < threads; i++) {
            if (pthread_create(&r->workers[i], NULL, decoder_main, r) != 0) {
                r->nthreads = i; /* join only those that started */
                cf_archive_reader_free(r);
                return cf_err_set(err, CF_EAGAIN, "cannot start decompression thread %u", i);
            }
            r->nthreads = i + 1;
        }
    }
    if (pthread_create(&r->hasher, NULL, hasher_main, r) != 0) {
        cf_archive_reader_free(r);
        return cf_err_set(err, CF_EAGAIN, "cannot start the archive hashing thread");
    }
    r->hasher_started = 1;
    if (pthread_create(&r->producer, NULL, producer_main, r) != 0) {
        cf_archive_reader_free(r);
        return cf_err_set(err, CF_EAGAIN, "cannot start the archive reading thread");
    }
    r->producer_started = 1;
    *out = r;
    return 0;
nomem:
    cf_archive_reader_free(r);
    return cf_err_set(err, CF_ENOMEM, "out of memory for %u chunk slots of %llu + %llu bytes", nslots,
                      (unsigned long long)max_size, (unsigned long long)max_raw);
}

static int stream_next(cf_archive_reader *r, const void **p, size_t *n, cf_err *err)
{
    pthread_mutex_lock(&r->mu);
    if (r->held) {
        release_slot(r, r->held);
        r->held = NULL;
    }
    int rc = 0;
    while (r->next < r->nchunks) {
        size_t i = r->next;
        struct rslot *s = &r->slots[i % r->nslots];
        if (s->index == i && s->state == RSLOT_QUEUED) {
            decode_slot(r, s);
            continue;
        }
        if (!(s->index == i && s->state == RSLOT_DONE)) {
            if (r->prod_finished && i >= r->prod_at) {
                rc = r->prod_rc;
                if (err)
                    *err = r->prod_err;
                goto out;
            }
            pthread_cond_wait(&r->done, &r->mu);
            continue;
        }
        if (s->rc) {
            rc = s->rc;
            if (err)
                *err = s->err;
            goto out;
        }
        r->next++;
        if (r->chunks[i].raw_size) {
            r->held = s;
            *p = s->raw;
            *n = r->chunks[i].raw_size;
            goto out;
        }
        release_slot(r, s);
    }
    if (r->next == r->nchunks) {
        while (!r->prod_finished || (!r->prod_rc && !r->hash_finished))
            pthread_cond_wait(&r->done, &r->mu);
        r->next++; /* the end is checked once, even if called again */
        if ((rc = r->prod_rc) != 0) {
            if (err)
                *err = r->prod_err;
        } else if (r->o->sha256) {
            rc = check_digest(r->digest, r->o->sha256, err);
        }
    }
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static int drain(cf_archive_reader *r, cf_archive_sink_fn sink, void *sink_ctx, cf_err *err)
{
    int rc;
    for (;;) {
        const void *p;
        size_t n;
        if ((rc = cf_archive_reader_next(r, &p, &n, err)) != 0 || n == 0)
            break;
        if ((rc = sink(sink_ctx, p, n, err)) != 0)
            break;
    }
    cf_archive_reader_free(r);
    return rc;
}

int cf_archive_read(const cf_archive_read_opts *o, const cf_archive_chunk *chunks, size_t nchunks,
                    cf_archive_fetch_fn fetch, void *fetch_ctx, cf_archive_sink_fn sink, void *sink_ctx,
                    cf_err *err)
{
    cf_archive_reader *r;
    int rc = cf_archive_reader_new(o, chunks, nchunks, fetch, fetch_ctx, &r, err);
    return rc ? rc : drain(r, sink, sink_ctx, err);
}

int cf_archive_read_stream(const cf_archive_read_opts *o, const cf_archive_chunk *chunks, size_t nchunks,
                           unsigned threads, cf_archive_stream_fn stream, void *stream_ctx,
                           cf_archive_sink_fn sink, void *sink_ctx, cf_err *err)
{
    cf_archive_reader *r;
    int rc = cf_archive_reader_new_stream(o, chunks, nchunks, threads, stream, stream_ctx, &r, err);
    return rc ? rc : drain(r, sink, sink_ctx, err);
}
