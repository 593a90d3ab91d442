/*
 * repo_s3.c - a repository under a prefix of a bucket, on any S3 endpoint.
 *
 * Writes buffer one part (16 MiB); an object that fits is one PUT at commit, a larger one
 * becomes a multipart upload with 4 parts in flight, completed only at commit: until then
 * nothing is visible, and an abort (or a crash: the server expires the upload) leaves nothing.
 * S3 allows 10,000 parts, so 16 MiB parts end at 156 GiB: a writer told a larger size hint
 * uses parts of hint / 9,000 (rounded up to a MiB, at most 5 GiB), with fewer of them in
 * flight, so that the memory below holds for parts up to 32 MiB (objects up to about 280 GiB);
 * beyond, a writer holds 3 parts (2 in the pool, 1 in flight).
 *
 * The multipart upload runs on a thread of its own, started by the first full part, so that
 * parts travel while the caller walks the tree, reads files and waits for compression: the
 * caller fills parts from a pool of POOL_PARTS and queues full ones; the thread hands each to
 * the uploader, buffer and all, and takes back a buffer the uploader is done with. From then until commit or
 * abort return (both join the thread) the thread alone uses the repository's client, so nothing else may use
 * that client meanwhile (cf_snapshot_create writes the manifest after the archive's commit). An upload error
 * is returned by the next write or by commit.
 *
 * Memory of one writer: at most (POOL_PARTS + in flight) x part size = (2 + 4) x 16 MiB
 * = 96 MiB (UPLOAD_BUDGET) by default, whatever the object's size. With the archive writer's (2N+1) x 2 x
 * chunk bytes for N compression threads, at most 128 MiB by default (snapshot.c), a create stays within 256
 * MiB.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/checksum.h"
#include "s3client/s3client.h"
#include "storage/repo_int.h"

#define PART_SIZE ((size_t)16 << 20)
#define PARTS_IN_FLIGHT 4
#define UPLOAD_BUDGET ((size_t)96 << 20)
#define PARTS_PLANNED 9000 /* of S3's 10,000: room for a size hint that was low */
#define PART_SIZE_MAX ((size_t)5 << 30)
#define POOL_PARTS 2 /* one being filled, one queued or being copied */

typedef struct s3_repo {
    cf_repo base;
    cf_s3c *client;
    char bucket[64];
    char root[1024]; /* "" or "a/b/" (with the slash) */
    char name[1200];
} s3_repo;

typedef struct s3_writer {
    cf_repo_writer base;
    char key[2048];
    size_t part_size; /* PART_SIZE unless a large size hint asks for more */
    int in_flight_max;
    unsigned char *pool[POOL_PARTS]; /* allocated when first needed */
    size_t plen[POOL_PARTS];
    uint32_t pcrc[POOL_PARTS]; /* CRC32C of each part's bytes, computed as they are copied in */
    int cur;                   /* the part being filled, or -1 after a failed hand-over */
    int wrc;                   /* a failed write's code, returned by every later call */
    cf_err werr;
    int started; /* the upload thread runs: the client is its alone */
    pthread_t thread;

    /* Shared with the upload thread, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t to_thread, to_caller;
    int queue[POOL_PARTS]; /* full parts, oldest first */
    int qhead, qlen;
    int spare[POOL_PARTS]; /* parts free for filling */
    int nspare;
    int finishing, cancel;
    int done, rc; /* the thread has ended, with this code and message */
    cf_err terr;
} s3_writer;

#define S3_OF(r) ((s3_repo *)(r))

static const cf_repo_ops s3_ops;

int cf_repo_open_s3(cf_s3c *client, const char *bucket, const char *root, cf_repo **out, cf_err *err)
{
    s3_repo *r = calloc(1, sizeof *r);
    if (!r)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    r->client = client;
    snprintf(r->bucket, sizeof r->bucket, "%s", bucket);
    snprintf(r->root, sizeof r->root, "%s%s", root, *root ? "/" : "");
    snprintf(r->name, sizeof r->name, "s3://%s/%s", bucket, r->root);
    r->base.ops = &s3_ops;
    r->base.name = r->name;
    *out = &r->base;
    return 0;
}

static int full_key(const s3_repo *r, const char *key, char *out, size_t n, cf_err *err)
{
    if ((size_t)snprintf(out, n, "%s%s", r->root, key) >= n)
        return cf_err_set(err, CF_ETOOBIG, "key '%.100s' is too long", key);
    return 0;
}

static void s3_close(cf_repo *base)
{
    free(S3_OF(base));
}

static void s3_writer_free(s3_writer *w)
{
    for (int i = 0; i < POOL_PARTS; i++)
        free(w->pool[i]);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->to_thread);
    pthread_cond_destroy(&w->to_caller);
    free(w);
}

static int s3_writer_begin(cf_repo *base, const char *key, uint64_t size_hint, cf_repo_writer **out,
                           cf_err *err)
{
    size_t part = PART_SIZE;
    if (size_hint / PARTS_PLANNED >= PART_SIZE) {
        uint64_t want = (size_hint / PARTS_PLANNED + ((uint64_t)1 << 20)) & ~(((uint64_t)1 << 20) - 1);
        part = want > PART_SIZE_MAX ? PART_SIZE_MAX : (size_t)want;
    }
    size_t fit = UPLOAD_BUDGET / part;
    s3_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->pool[0] = malloc(part))) {
        free(w);
        return cf_err_set(err, CF_ENOMEM, "out of memory for a part of %zu MiB", part >> 20);
    }
    w->part_size = part;
    w->in_flight_max = fit > POOL_PARTS ? (int)(fit - POOL_PARTS) : 1;
    if (w->in_flight_max > PARTS_IN_FLIGHT)
        w->in_flight_max = PARTS_IN_FLIGHT;
    w->base.repo = base;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->to_thread, NULL);
    pthread_cond_init(&w->to_caller, NULL);
    for (int i = POOL_PARTS - 1; i > 0; i--)
        w->spare[w->nspare++] = i;
    int rc = full_key(S3_OF(base), key, w->key, sizeof w->key, err);
    if (rc) {
        s3_writer_free(w);
        return rc;
    }
    *out = &w->base;
    return 0;
}

/* The upload thread: the multipart upload's whole life, so that parts travel while the caller
 * reads and compresses. It sleeps only in libcurl (parts in flight; cf_s3c_wake interrupts) or
 * on to_thread (nothing in flight), so a queued part or a cancel is seen at once. */
static void *upload_main(void *arg)
{
    s3_writer *w = arg;
    s3_repo *r = S3_OF(w->base.repo);
    cf_err e;
    cf_err_clear(&e);
    cf_s3c_uploader *up = NULL;
    int rc = cf_s3c_uploader_begin(r->client, r->bucket, w->key, "application/octet-stream", w->part_size,
                                   w->in_flight_max, &up, &e);
    int in_flight = 0;
    int pair_open = 0; /* the first part of a pair is sent; the second follows at once */
    while (!rc) {
        pthread_mutex_lock(&w->mu);
        while (!w->cancel && !w->finishing && !in_flight && (!w->qlen || (w->qlen == 1 && !pair_open)))
            pthread_cond_wait(&w->to_thread, &w->mu);
        int cancel = w->cancel, finish = w->finishing && !w->qlen;
        /* Parts go out two at a time: a server that hashes each body for its ETag, as every S3
         * server does, can then hash the two side by side for less CPU (coffer server does,
         * crypto/md5.c). On a slow link parts queue up anyway and this changes nothing. */
        int paired = w->qlen >= 2 || pair_open || w->finishing;
        int next = w->qlen && paired && in_flight < w->in_flight_max ? w->queue[w->qhead] : -1;
        if (next >= 0)
            pair_open = !pair_open && w->qlen >= 2;
        pthread_mutex_unlock(&w->mu);
        if (cancel)
            break;
        if (finish) {
            rc = cf_s3c_uploader_commit(up, NULL, &e);
            up = NULL;
            break;
        }
        if (next >= 0) {
            /* The part's buffer goes to the uploader as it is, and the pool gets back one the
             * uploader no longer needs (or none yet: flush_part allocates it). */
            rc = cf_s3c_uploader_submit_buffer(up, &w->pool[next], w->plen[next], &w->pcrc[next], &e);
            pthread_mutex_lock(&w->mu);
            w->qhead = (w->qhead + 1) % POOL_PARTS;
            w->qlen--;
            w->spare[w->nspare++] = next;
            pthread_cond_signal(&w->to_caller);
            pthread_mutex_unlock(&w->mu);
            if (rc)
                break;
        }
        int n = cf_s3c_uploader_poll(up, next < 0, &e);
        if (n < 0)
            rc = n;
        else
            in_flight = n;
    }
    cf_s3c_uploader_abort(up);
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->rc = rc;
    w->terr = e;
    pthread_cond_broadcast(&w->to_caller);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* The thread's failure, for the caller; called under mu once done is set. */
static int thread_error(s3_writer *w, cf_err *err)
{
    int rc = w->rc ? w->rc : CF_EINTERNAL;
    if (err)
        *err = w->rc ? w->terr : (cf_err){CF_EINTERNAL, "upload ended early"};
    return rc;
}

/* Queues the full part being filled for the upload thread (started here for the first one)
 * and takes an empty part, waiting while every part of the pool is queued or being copied. */
static int flush_part(s3_writer *w, cf_err *err)
{
    s3_repo *r = S3_OF(w->base.repo);
    if (!w->started) {
        int e = pthread_create(&w->thread, NULL, upload_main, w);
        if (e)
            return cf_err_sys(err, CF_EAGAIN, e, "upload of '%s': cannot start its thread", w->key);
        w->started = 1;
    }
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    if (w->done) {
        rc = thread_error(w, err);
    } else {
        w->queue[(w->qhead + w->qlen) % POOL_PARTS] = w->cur;
        w->qlen++;
        w->cur = -1;
        pthread_cond_signal(&w->to_thread);
    }
    pthread_mutex_unlock(&w->mu);
    if (rc)
        return rc;
    cf_s3c_wake(r->client);
    pthread_mutex_lock(&w->mu);
    while (!w->nspare && !w->done)
        pthread_cond_wait(&w->to_caller, &w->mu);
    if (w->done)
        rc = thread_error(w, err);
    else
        w->cur = w->spare[--w->nspare];
    pthread_mutex_unlock(&w->mu);
    if (rc)
        return rc;
    if (!w->pool[w->cur] && !(w->pool[w->cur] = malloc(w->part_size))) {
        w->cur = -1;
        return cf_err_set(err, CF_ENOMEM, "upload of '%s': out of memory for a part", w->key);
    }
    w->plen[w->cur] = 0;
    w->pcrc[w->cur] = 0;
    return 0;
}

static int s3_writer_write(cf_repo_writer *base, const void *p, size_t n, cf_err *err)
{
    s3_writer *w = (s3_writer *)base;
    const unsigned char *in = p;
    if (w->wrc) {
        if (err)
            *err = w->werr;
        return w->wrc;
    }
    if (w->started) {
        /* A failed upload stops the caller at its next write, not only at commit. */
        int rc = 0;
        pthread_mutex_lock(&w->mu);
        if (w->done)
            rc = thread_error(w, &w->werr);
        pthread_mutex_unlock(&w->mu);
        if (rc) {
            w->wrc = rc;
            if (err)
                *err = w->werr;
            return rc;
        }
    }
    while (n) {
        /* A part is sent only once more bytes follow it, so the last part is never empty. */
        if (w->plen[w->cur] == w->part_size) {
            int rc = flush_part(w, &w->werr);
            if (rc) {
                w->wrc = rc;
                if (err)
                    *err = w->werr;
                return rc;
            }
        }
        size_t len = w->plen[w->cur];
        size_t take = w->part_size - len < n ? w->part_size - len : n;
        memcpy(w->pool[w->cur] + len, in, take);
        /* While the bytes are in cache: sending the part needs its CRC32C. */
        w->pcrc[w->cur] = cf_crc32c(w->pcrc[w->cur], in, take);
        w->plen[w->cur] += take;
        in += take;
        n -= take;
    }
    return 0;
}

/* Ends the upload thread (cancel: promptly, aborting the upload) and returns its code. */
static int join_thread(s3_writer *w, int cancel, cf_err *err)
{
    s3_repo *r = S3_OF(w->base.repo);
    pthread_mutex_lock(&w->mu);
    if (cancel)
        w->cancel = 1;
    else
        w->finishing = 1;
    pthread_cond_signal(&w->to_thread);
    pthread_mutex_unlock(&w->mu);
    cf_s3c_wake(r->client);
    pthread_join(w->thread, NULL);
    w->started = 0;
    if (w->rc && err)
        *err = w->terr;
    return w->rc;
}

static void s3_writer_abort(cf_repo_writer *base)
{
    s3_writer *w = (s3_writer *)base;
    if (w->started)
        join_thread(w, 1, NULL);
    s3_writer_free(w);
}

static int s3_writer_commit(cf_repo_writer *base, cf_err *err)
{
    s3_writer *w = (s3_writer *)base;
    s3_repo *r = S3_OF(base->repo);
    int rc = w->wrc;
    if (rc) {
        if (err)
            *err = w->werr;
        s3_writer_abort(base);
        return rc;
    }
    if (!w->started) {
        rc = cf_s3c_put_object(r->client, r->bucket, w->key, w->pool[w->cur], w->plen[w->cur],
                               "application/octet-stream", NULL, err);
        s3_writer_free(w);
        return rc;
    }
    pthread_mutex_lock(&w->mu);
    if (!w->done) {
        /* The queue has room: it never holds the part being filled. */
        w->queue[(w->qhead + w->qlen) % POOL_PARTS] = w->cur;
        w->qlen++;
        w->cur = -1;
    }
    pthread_mutex_unlock(&w->mu);
    rc = join_thread(w, 0, err);
    s3_writer_free(w);
    return rc;
}

/* The caller's data callback, whose failure and message are kept apart: the transfer it stops
 * then fails too, with its own "stopped by the caller", which must not replace them. */
typedef struct get_ctx {
    cf_repo_data_fn fn;
    void *ctx;
    cf_err err;
    int rc;
} get_ctx;

static int deliver(void *p, const char *data, size_t n)
{
    get_ctx *g = p;
    g->rc = g->fn(g->ctx, data, n, &g->err);
    return g->rc;
}

/* The result of a transfer that fed g: the callback's failure first. */
static int get_result(const get_ctx *g, int rc, cf_err *err)
{
    if (!g->rc)
        return rc;
    if (err)
        *err = g->err;
    return g->rc;
}

static int s3_get(cf_repo *base, const char *key, uint64_t offset, uint64_t len, cf_repo_data_fn fn,
                  void *ctx, cf_err *err)
{
    s3_repo *r = S3_OF(base);
    char k[2048];
    int rc = full_key(r, key, k, sizeof k, err);
    if (rc)
        return rc;
    if (len == 0)
        return 0;
    cf_s3c_range range = {offset, len == UINT64_MAX ? 0 : len};
    get_ctx g = {.fn = fn, .ctx = ctx};
    rc = cf_s3c_get_object(r->client, r->bucket, k, (offset || len != UINT64_MAX) ? &range : NULL, deliver,
                           &g, NULL, err);
    return get_result(&g, rc, err);
}

/* A restore reads the archive once, front to back: ranges large enough that a request costs
 * little beside its bytes, and enough of them in flight to fill the link. */
#define STREAM_RANGE ((size_t)8 << 20)
#define STREAM_RANGES_IN_FLIGHT 4

static int s3_stream(cf_repo *base, const char *key, cf_repo_data_fn fn, void *ctx, cf_err *err)
{
    s3_repo *r = S3_OF(base);
    char k[2048];
    int rc = full_key(r, key, k, sizeof k, err);
    if (rc)
        return rc;
    get_ctx g = {.fn = fn, .ctx = ctx};
    rc = cf_s3c_download(r->client, r->bucket, k, STREAM_RANGE, STREAM_RANGES_IN_FLIGHT, deliver, &g, NULL,
                         err);
    return get_result(&g, rc, err);
}

static int s3_list(cf_repo *base, const char *prefix, cf_repo_list_fn fn, void *ctx, cf_err *err)
{
    s3_repo *r = S3_OF(base);
    char p[2048];
    int rc = full_key(r, prefix, p, sizeof p, err);
    if (rc)
        return rc;
    cf_s3c_list_opts o = {.prefix = p};
    cf_s3c_list *it;
    if ((rc = cf_s3c_list_open(r->client, r->bucket, &o, &it, err)))
        return rc;
    cf_s3c_list_entry e;
    size_t rl = strlen(r->root);
    while ((rc = cf_s3c_list_next(it, &e, err)) == 1) {
        if (e.is_prefix || strncmp(e.key, r->root, rl) != 0)
            continue;
        cf_repo_entry re = {e.key + rl, e.size, e.last_modified};
        if ((rc = fn(ctx, &re))) {
            cf_err_set(err, rc, "listing of '%s' stopped by its consumer", r->name);
            break;
        }
    }
    cf_s3c_list_close(it);
    return rc < 0 ? rc : 0;
}

static int s3_delete(cf_repo *base, const char *key, cf_err *err)
{
    s3_repo *r = S3_OF(base);
    char k[2048];
    int rc = full_key(r, key, k, sizeof k, err);
    return rc ? rc : cf_s3c_delete_object(r->client, r->bucket, k, err);
}

typedef struct abort_ctx {
    s3_repo *r;
    int64_t before;
    size_t *removed;
    cf_err *err;
} abort_ctx;

static int abort_stale(void *ctx, const cf_s3c_upload_entry *u)
{
    abort_ctx *a = ctx;
    if (u->initiated >= a->before)
        return 0;
    cf_err ignore;
    /* One that cannot be aborted now stays for the next prune. */
    if (cf_s3c_mpu_abort(a->r->client, a->r->bucket, u->key, u->upload_id, &ignore) == 0)
        (*a->removed)++;
    return 0;
}

static int s3_sweep(cf_repo *base, const char *prefix, int64_t before, size_t *removed, cf_err *err)
{
    s3_repo *r = S3_OF(base);
    char p[2048];
    int rc = full_key(r, prefix, p, sizeof p, err);
    if (rc)
        return rc;
    abort_ctx a = {r, before, removed, err};
    return cf_s3c_list_uploads(r->client, r->bucket, p, abort_stale, &a, err);
}

static const cf_repo_ops s3_ops = {
    .close = s3_close,
    .writer_begin = s3_writer_begin,
    .writer_write = s3_writer_write,
    .writer_commit = s3_writer_commit,
    .writer_abort = s3_writer_abort,
    .get = s3_get,
    .stream = s3_stream,
    .list = s3_list,
    .del = s3_delete,
    .sweep = s3_sweep,
};
