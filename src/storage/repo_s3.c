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
 * Threads: the repository keeps a pool of clients (repo.h). Each call takes one for its
 * duration, a writer from its first network request to its end, so calls on several threads run
 * side by side, each on its own libcurl multi handle and connection cache; one thread alone
 * always gets the client it used last, with its warm connections (the caller's, at first).
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

#include "core/grow.h"
#include "crypto/checksum.h"
#include "crypto/hash.h"
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
    cf_s3c *client; /* the caller's, first of the pool; never freed here */
    cf_s3c *owned;  /* cf_repo_open_s3_conn's client (also client), freed at close */
    pthread_mutex_t mu;
    cf_s3c **idle; /* clients free for a call, the last given back on top */
    size_t nidle;
    cf_s3c **made; /* made by the pool, freed at close */
    size_t nmade, cap;
    uint64_t copy_max, copy_part; /* CopyObject up to copy_max bytes, else UploadPartCopy */
    char bucket[64];
    char root[1024]; /* "" or "a/b/" (with the slash) */
    char name[1200];
} s3_repo;

/* A writer's content type and metadata, its own copy. */
typedef struct owned_opts {
    cf_s3c_put_opts o;
    cf_s3c_meta meta[CF_REPO_META_FIELDS];
    char content_type[128];
    char cache_control[256], content_disposition[512], content_encoding[128], content_language[128],
        expires[64];
    char buf[CF_REPO_META_MAX + 2 * CF_REPO_META_FIELDS];
} owned_opts;

typedef struct s3_writer {
    cf_repo_writer base;
    cf_s3c *client; /* taken from the pool by the first request, NULL before */
    owned_opts opts;
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
    /* A resumable write (cf_repo_writer_begin_resume), NULL otherwise: the parts the store held
     * at begin (indexed by number - 1; size 0: none), and the etag of each queued part that is
     * one of them, kept rather than sent ("" : sent). */
    cf_repo_resume *rs;
    struct held_part {
        uint64_t size;
        char etag[132];
    } * held;
    size_t nheld;
    unsigned numbered; /* parts queued so far */
    char pkept[POOL_PARTS][132];

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

/* S3's limit for CopyObject; larger objects are copied in parts of COPY_PART. */
#define COPY_MAX ((uint64_t)5 << 30)
#define COPY_PART ((uint64_t)512 << 20)

void cf_repo_s3_set_copy_sizes(cf_repo *base, uint64_t single_max, uint64_t part)
{
    s3_repo *r = S3_OF(base);
    r->copy_max = single_max;
    r->copy_part = part;
}

int cf_repo_open_s3(cf_s3c *client, const char *bucket, const char *root, cf_repo **out, cf_err *err)
{
    if (!client || !bucket || !*bucket || strlen(bucket) >= sizeof((s3_repo *)0)->bucket)
        return cf_err_set(err, CF_EINVAL,
                          "s3://%.100s: a bucket name of 1 to 63 bytes and a client are needed",
                          bucket ? bucket : "");
    if (!root || strlen(root) + 1 >= sizeof((s3_repo *)0)->root)
        return cf_err_set(err, CF_ETOOBIG, "s3://%s/%.100s...: the prefix is longer than 1022 bytes", bucket,
                          root ? root : "");
    s3_repo *r = calloc(1, sizeof *r);
    if (!r)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    r->client = client;
    r->cap = 8;
    r->idle = calloc(r->cap + 1, sizeof *r->idle);
    r->made = calloc(r->cap, sizeof *r->made);
    if (!r->idle || !r->made) {
        free(r->idle);
        free(r->made);
        free(r);
        return cf_err_set(err, CF_ENOMEM, "s3://%s: out of memory", bucket);
    }
    r->idle[r->nidle++] = client;
    r->copy_max = COPY_MAX;
    r->copy_part = COPY_PART;
    pthread_mutex_init(&r->mu, NULL);
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

int cf_repo_open_s3_conn(const cf_repo_s3_conn *c, const char *bucket, const char *root, cf_repo **out,
                         cf_err *err)
{
    cf_s3c_config cfg;
    int rc = 0;
    int has_keys = c->access_key && *c->access_key && c->secret_key && *c->secret_key;
    if (c->use_environment) {
        cf_s3c_flags flags = {.endpoint = c->endpoint,
                              .region = c->region,
                              .access_key = has_keys ? c->access_key : NULL,
                              .secret_key = has_keys ? c->secret_key : NULL,
                              .session_token = c->session_token,
                              .virtual_host = c->virtual_host ? 1 : -1};
        rc = cf_s3c_config_resolve(&flags, &cfg, err);
    } else if (!has_keys) {
        return cf_err_set(err, CF_EINVAL, "s3://%.100s: an access key and a secret key are needed",
                          bucket ? bucket : "");
    } else {
        memset(&cfg, 0, sizeof cfg);
        const char *region = c->region && *c->region ? c->region : "us-east-1";
        if (c->endpoint && *c->endpoint)
            snprintf(cfg.endpoint, sizeof cfg.endpoint, "%s", c->endpoint);
        else
            snprintf(cfg.endpoint, sizeof cfg.endpoint, "https://s3.%s.amazonaws.com", region);
        size_t el = strlen(cfg.endpoint);
        while (el && cfg.endpoint[el - 1] == '/')
            cfg.endpoint[--el] = '\0';
        if ((size_t)snprintf(cfg.region, sizeof cfg.region, "%s", region) >= sizeof cfg.region ||
            (size_t)snprintf(cfg.access_key, sizeof cfg.access_key, "%s", c->access_key) >=
                sizeof cfg.access_key ||
            (size_t)snprintf(cfg.secret_key, sizeof cfg.secret_key, "%s", c->secret_key) >=
                sizeof cfg.secret_key ||
            (size_t)snprintf(cfg.session_token, sizeof cfg.session_token, "%s",
                             c->session_token ? c->session_token : "") >= sizeof cfg.session_token)
            rc = cf_err_set(err, CF_EINVAL, "s3://%.100s: a region, key or token is too long",
                            bucket ? bucket : "");
        cfg.virtual_host = c->virtual_host ? 1 : -1;
    }
    if (c->max_attempts > 0)
        cfg.max_attempts = c->max_attempts;
    cfg.stall_timeout_ms = c->stall_timeout_ms;
    cfg.retry_budget_ms = c->retry_budget_ms;
    cf_s3c *client = NULL;
    if (!rc)
        rc = cf_s3c_new(&cfg, &client, err);
    memset(&cfg, 0, sizeof cfg);
    if (!rc)
        rc = cf_repo_open_s3(client, bucket, root, out, err);
    if (rc) {
        cf_s3c_free(client);
        return rc;
    }
    S3_OF(*out)->owned = client;
    return 0;
}

static void s3_close(cf_repo *base)
{
    s3_repo *r = S3_OF(base);
    cf_s3c_free(r->owned);
    for (size_t i = 0; i < r->nmade; i++)
        cf_s3c_free(r->made[i]);
    free(r->made);
    free(r->idle);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* A client for one call: the one given back last, or a new one like the caller's. */
static int take_client(s3_repo *r, cf_s3c **out, cf_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    if (r->nidle) {
        *out = r->idle[--r->nidle];
    } else if (r->nmade == r->cap) {
        size_t cap = r->cap * 2;
        cf_s3c **made = realloc(r->made, cap * sizeof *made);
        if (made)
            r->made = made;
        cf_s3c **idle = made ? realloc(r->idle, (cap + 1) * sizeof *idle) : NULL;
        if (idle) {
            r->idle = idle;
            r->cap = cap;
        }
        rc = idle ? 1 : cf_err_set(err, CF_ENOMEM, "'%s': out of memory for one more client", r->name);
    } else {
        rc = 1;
    }
    if (rc == 1) {
        rc = cf_s3c_new_like(r->client, out, err);
        if (!rc)
            r->made[r->nmade++] = *out;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static void give_client(s3_repo *r, cf_s3c *c)
{
    pthread_mutex_lock(&r->mu);
    r->idle[r->nidle++] = c;
    pthread_mutex_unlock(&r->mu);
}

static void own_opts(owned_opts *d, const cf_repo_put_opts *o)
{
    snprintf(d->content_type, sizeof d->content_type, "%s",
             o && o->content_type && *o->content_type ? o->content_type : "application/octet-stream");
    d->o.content_type = d->content_type;
    d->o.meta = d->meta;
    d->o.nmeta = o ? o->nmeta : 0;
    /* Checked by cf_repo_check_opts: each fits its buffer. */
    struct {
        const char *from;
        char *to;
        size_t cap;
        const char **set;
    } std[] = {
        {o ? o->cache_control : NULL, d->cache_control, sizeof d->cache_control, &d->o.cache_control},
        {o ? o->content_disposition : NULL, d->content_disposition, sizeof d->content_disposition,
         &d->o.content_disposition},
        {o ? o->content_encoding : NULL, d->content_encoding, sizeof d->content_encoding,
         &d->o.content_encoding},
        {o ? o->content_language : NULL, d->content_language, sizeof d->content_language,
         &d->o.content_language},
        {o ? o->expires : NULL, d->expires, sizeof d->expires, &d->o.expires},
    };
    for (size_t i = 0; i < sizeof std / sizeof *std; i++) {
        snprintf(std[i].to, std[i].cap, "%s", std[i].from ? std[i].from : "");
        *std[i].set = std[i].from && *std[i].from ? std[i].to : NULL;
    }
    size_t used = 0;
    for (size_t i = 0; i < d->o.nmeta; i++) {
        /* Checked by cf_repo_check_opts: every name and value fits. */
        size_t nl = strlen(o->meta[i].name) + 1, vl = strlen(o->meta[i].value) + 1;
        memcpy(d->buf + used, o->meta[i].name, nl);
        memcpy(d->buf + used + nl, o->meta[i].value, vl);
        d->meta[i].name = d->buf + used;
        d->meta[i].value = d->buf + used + nl;
        used += nl + vl;
    }
}

static void s3_writer_free(s3_writer *w)
{
    if (w->client)
        give_client(S3_OF(w->base.repo), w->client);
    for (int i = 0; i < POOL_PARTS; i++)
        free(w->pool[i]);
    free(w->held);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->to_thread);
    pthread_cond_destroy(&w->to_caller);
    free(w);
}

/* A writer with parts of part bytes (0: from size_hint). */
static int writer_new(cf_repo *base, const char *key, uint64_t size_hint, size_t part,
                      const cf_repo_put_opts *o, s3_writer **out, cf_err *err)
{
    if (!part) {
        part = PART_SIZE;
        if (size_hint / PARTS_PLANNED >= PART_SIZE) {
            uint64_t want = (size_hint / PARTS_PLANNED + ((uint64_t)1 << 20)) & ~(((uint64_t)1 << 20) - 1);
            part = want > PART_SIZE_MAX ? PART_SIZE_MAX : (size_t)want;
        }
    }
    if (part > PART_SIZE_MAX)
        return cf_err_set(err, CF_EINVAL, "upload of '%s': parts of %zu bytes are too large", key, part);
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
    own_opts(&w->opts, o);
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
    *out = w;
    return 0;
}

static int s3_writer_begin(cf_repo *base, const char *key, uint64_t size_hint, const cf_repo_put_opts *o,
                           cf_repo_writer **out, cf_err *err)
{
    s3_writer *w;
    int rc = writer_new(base, key, size_hint, 0, o, &w, err);
    if (!rc)
        *out = &w->base;
    return rc;
}

static int note_held(void *ctx, const cf_s3c_part_entry *p)
{
    s3_writer *w = ctx;
    if ((size_t)p->number > w->nheld) {
        size_t n = (size_t)p->number + 64;
        struct held_part *v = realloc(w->held, n * sizeof *v);
        if (!v)
            return CF_ENOMEM;
        memset(v + w->nheld, 0, (n - w->nheld) * sizeof *v);
        w->held = v;
        w->nheld = n;
    }
    w->held[p->number - 1].size = p->size;
    snprintf(w->held[p->number - 1].etag, sizeof w->held[p->number - 1].etag, "%s", p->etag);
    w->rs->parts_held++;
    return 0;
}

static int s3_writer_resume(cf_repo *base, const char *key, uint64_t size_hint, cf_repo_resume *rs,
                            cf_repo_writer **out, cf_err *err)
{
    s3_repo *r = S3_OF(base);
    s3_writer *w;
    int rc = writer_new(base, key, size_hint, rs->part_size, NULL, &w, err);
    if (rc)
        return rc;
    w->rs = rs;
    rs->parts_held = rs->parts_kept = rs->parts_sent = 0;
    rs->bytes_kept = 0;
    rc = take_client(r, &w->client, err);
    if (!rc && !rs->upload_id[0]) {
        char id[CF_S3C_UPLOAD_ID_MAX];
        rc = cf_s3c_mpu_create_opts(w->client, r->bucket, w->key, &w->opts.o, id, err);
        if (!rc && strlen(id) >= sizeof rs->upload_id) {
            cf_s3c_mpu_abort(w->client, r->bucket, w->key, id, NULL);
            rc = cf_err_set(err, CF_EIO, "upload of '%s': the server's upload id is too long", w->key);
        }
        if (!rc)
            snprintf(rs->upload_id, sizeof rs->upload_id, "%s", id);
    } else if (!rc) {
        rc = cf_s3c_mpu_list_parts(w->client, r->bucket, w->key, rs->upload_id, note_held, w, err);
        if (rc == CF_ENOMEM)
            rc = cf_err_set(err, rc, "out of memory listing the parts of '%s'", w->key);
    }
    if (rc) {
        s3_writer_free(w);
        return rc;
    }
    rs->part_size = w->part_size;
    *out = &w->base;
    return 0;
}

static int s3_upload_abort(cf_repo *base, const char *key, const char *upload_id, cf_err *err)
{
    s3_repo *r = S3_OF(base);
    char k[2048];
    cf_s3c *c;
    int rc = full_key(r, key, k, sizeof k, err);
    if (!rc && !(rc = take_client(r, &c, err))) {
        rc = cf_s3c_mpu_abort(c, r->bucket, k, upload_id, err);
        give_client(r, c);
    }
    return rc == CF_ENOTFOUND ? 0 : rc;
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
    int rc = w->rs ? cf_s3c_uploader_resume(w->client, r->bucket, w->key, w->rs->upload_id, w->part_size,
                                            w->in_flight_max, &up, &e)
                   : cf_s3c_uploader_begin_opts(w->client, r->bucket, w->key, &w->opts.o, w->part_size,
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
            rc = w->pkept[next][0]
                     ? cf_s3c_uploader_keep(up, w->plen[next], w->pkept[next], &e)
                     : cf_s3c_uploader_submit_buffer(up, &w->pool[next], w->plen[next], &w->pcrc[next], &e);
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
    if (w->rs && w->rs->keep_on_abort)
        cf_s3c_uploader_release(up); /* for the next process to continue */
    else
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
        *err = w->rc ? w->terr : (cf_err){.code = CF_EINTERNAL, .msg = "upload ended early"};
    return rc;
}

/* Starts the upload thread, which uses the writer's client from then on. */
static int start_thread(s3_writer *w, cf_err *err)
{
    int rc = w->client ? 0 : take_client(S3_OF(w->base.repo), &w->client, err);
    if (rc)
        return rc;
    int e = pthread_create(&w->thread, NULL, upload_main, w);
    if (e)
        return cf_err_sys(err, CF_EAGAIN, e, "upload of '%s': cannot start its thread", w->key);
    w->started = 1;
    return 0;
}

static int is_md5_etag(const char *etag, char hex[33])
{
    size_t n = strlen(etag);
    if (n == 34 && etag[0] == '"' && etag[33] == '"')
        etag++, n = 32;
    if (n != 32 || strspn(etag, "0123456789abcdefABCDEF") != 32)
        return 0;
    for (int i = 0; i < 32; i++)
        hex[i] = (char)(etag[i] | 0x20);
    hex[32] = '\0';
    return 1;
}

/* Whether the store's part `number` is the part being queued, byte for byte as far as can be
 * told: same size, and the MD5 its ETag is, or else the CRC32C recorded when it was sent. */
static int held_is_same(s3_writer *w, unsigned number)
{
    const cf_repo_resume *rs = w->rs;
    if (number > w->nheld || w->held[number - 1].size != w->plen[w->cur] || !w->plen[w->cur])
        return 0;
    char want[33], got[33];
    unsigned char md5[CF_MD5_LEN];
    if (is_md5_etag(w->held[number - 1].etag, want)) {
        if (cf_md5(w->pool[w->cur], w->plen[w->cur], md5) != 0)
            return 0;
        cf_hex_encode(md5, sizeof md5, got);
        return memcmp(want, got, 32) == 0;
    }
    return rs->recorded_size && rs->recorded_crc && number <= rs->nrecorded &&
           rs->recorded_size[number - 1] == w->plen[w->cur] &&
           rs->recorded_crc[number - 1] == w->pcrc[w->cur];
}

/* Numbers the part being filled; a resumable write decides whether the store's copy is kept. */
static int number_part(s3_writer *w, cf_err *err)
{
    unsigned number = ++w->numbered;
    w->pkept[w->cur][0] = '\0';
    if (!w->rs)
        return 0;
    int kept = held_is_same(w, number);
    if (kept) {
        snprintf(w->pkept[w->cur], sizeof w->pkept[w->cur], "%s", w->held[number - 1].etag);
        w->rs->parts_kept++;
        w->rs->bytes_kept += w->plen[w->cur];
    } else {
        w->rs->parts_sent++;
    }
    return w->rs->on_part ? w->rs->on_part(w->rs->ctx, number, w->plen[w->cur], w->pcrc[w->cur], kept, err)
                          : 0;
}

/* Queues the full part being filled for the upload thread (started here for the first one)
 * and takes an empty part, waiting while every part of the pool is queued or being copied. */
static int flush_part(s3_writer *w, cf_err *err)
{
    int rc = w->started ? 0 : start_thread(w, err);
    if (!rc)
        rc = number_part(w, err);
    if (rc)
        return rc;
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
    cf_s3c_wake(w->client);
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
    pthread_mutex_lock(&w->mu);
    if (cancel)
        w->cancel = 1;
    else
        w->finishing = 1;
    pthread_cond_signal(&w->to_thread);
    pthread_mutex_unlock(&w->mu);
    cf_s3c_wake(w->client);
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
    else if (w->rs && !w->rs->keep_on_abort) /* begin made it; no thread took it over */
        cf_s3c_mpu_abort(w->client, S3_OF(base->repo)->bucket, w->key, w->rs->upload_id, NULL);
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
    if (!w->started && !w->rs) {
        rc = w->client ? 0 : take_client(r, &w->client, err);
        if (!rc)
            rc = cf_s3c_put_object_opts(w->client, r->bucket, w->key, w->pool[w->cur], w->plen[w->cur],
                                        &w->opts.o, NULL, err);
        s3_writer_free(w);
        return rc;
    }
    /* A resumable write stays a multipart upload even when one part holds it all. */
    rc = w->started ? 0 : start_thread(w, err);
    if (!rc)
        rc = number_part(w, err);
    if (rc) {
        s3_writer_abort(base);
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

/* One GET of [offset, offset+len) (len UINT64_MAX: to the end); head (may be NULL) gets the
 * answer's headers. */
static int get_range(s3_repo *r, const char *key, uint64_t offset, uint64_t len, cf_repo_data_fn fn,
                     void *ctx, cf_s3c_object_info *head, cf_err *err)
{
    char k[2048];
    int rc = full_key(r, key, k, sizeof k, err);
    if (rc)
        return rc;
    if (len == 0)
        return 0;
    cf_s3c_range range = {offset, len == UINT64_MAX ? 0 : len};
    get_ctx g = {.fn = fn, .ctx = ctx};
    cf_s3c *c;
    if ((rc = take_client(r, &c, err)))
        return rc;
    rc = cf_s3c_get_object(c, r->bucket, k, (offset || len != UINT64_MAX) ? &range : NULL, deliver, &g, head,
                           err);
    give_client(r, c);
    return get_result(&g, rc, err);
}

static int s3_get(cf_repo *base, const char *key, uint64_t offset, uint64_t len, cf_repo_data_fn fn,
                  void *ctx, cf_err *err)
{
    return get_range(S3_OF(base), key, offset, len, fn, ctx, NULL, err);
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
    cf_s3c *c;
    if ((rc = take_client(r, &c, err)))
        return rc;
    rc = cf_s3c_download(c, r->bucket, k, STREAM_RANGE, STREAM_RANGES_IN_FLIGHT, deliver, &g, NULL, err);
    give_client(r, c);
    return get_result(&g, rc, err);
}

/* Objects (and with delimiter, common prefixes) under prefix. */
static int list_with(cf_repo *base, const char *prefix, const char *delimiter, cf_repo_list_fn fn, void *ctx,
                     cf_err *err)
{
    s3_repo *r = S3_OF(base);
    char p[2048];
    int rc = full_key(r, prefix, p, sizeof p, err);
    if (rc)
        return rc;
    cf_s3c_list_opts o = {.prefix = p, .delimiter = delimiter};
    cf_s3c_list *it;
    cf_s3c *c;
    if ((rc = take_client(r, &c, err)))
        return rc;
    if ((rc = cf_s3c_list_open(c, r->bucket, &o, &it, err))) {
        give_client(r, c);
        return rc;
    }
    cf_s3c_list_entry e;
    size_t rl = strlen(r->root);
    while ((rc = cf_s3c_list_next(it, &e, err)) == 1) {
        if ((e.is_prefix && !delimiter) || strncmp(e.key, r->root, rl) != 0)
            continue;
        cf_repo_entry re = {e.key + rl, e.size, e.last_modified, e.etag ? e.etag : "", e.is_prefix, 0};
        if ((rc = fn(ctx, &re))) {
            cf_err_set(err, rc, "listing of '%s' stopped by its consumer", r->name);
            break;
        }
    }
    cf_s3c_list_close(it);
    give_client(r, c);
    return rc < 0 ? rc : 0;
}

static int s3_list(cf_repo *base, const char *prefix, int flags, cf_repo_list_fn fn, void *ctx, cf_err *err)
{
    (void)flags; /* a bucket has neither hidden names nor special files */
    return list_with(base, prefix, NULL, fn, ctx, err);
}

typedef struct level {
    cf_repo_entry *v; /* keys and etags owned */
    size_t n, cap;
} level;

static int keep_entry(void *ctx, const cf_repo_entry *e)
{
    level *l = ctx;
    cf_repo_entry *v = cf_grow(l->v, &l->cap, l->n, sizeof *v, 256);
    if (!v)
        return CF_ENOMEM;
    l->v = v;
    cf_repo_entry *d = &l->v[l->n];
    *d = *e;
    d->key = strdup(e->key);
    d->etag = strdup(e->etag);
    if (!d->key || !d->etag) {
        free((char *)d->key);
        free((char *)d->etag);
        return CF_ENOMEM;
    }
    l->n++;
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const cf_repo_entry *)a)->key, ((const cf_repo_entry *)b)->key);
}

/* Within each page S3 sends the objects, then the prefixes: the level is gathered and sorted, so
 * that the caller sees one key order. */
static int s3_list_dir(cf_repo *base, const char *prefix, cf_repo_list_fn fn, void *ctx, cf_err *err)
{
    level l = {0};
    int rc = list_with(base, prefix, "/", keep_entry, &l, err);
    if (!rc && l.n)
        qsort(l.v, l.n, sizeof *l.v, cmp_entry);
    for (size_t i = 0; !rc && i < l.n; i++)
        if ((rc = fn(ctx, &l.v[i])))
            cf_err_set(err, rc, "listing of '%s%s' stopped by its consumer", base->name, prefix);
    for (size_t i = 0; i < l.n; i++) {
        free((char *)l.v[i].key);
        free((char *)l.v[i].etag);
    }
    free(l.v);
    return rc < 0 ? rc : 0;
}

/* The bucket's key for key, and a client for one call on it. */
static int begin_call(s3_repo *r, const char *key, char k[2048], cf_s3c **c, cf_err *err)
{
    int rc = full_key(r, key, k, 2048, err);
    return rc ? rc : take_client(r, c, err);
}

/* What a HEAD or GET answered, as cf_repo_stat tells it; out was zeroed. */
static void info_from_s3(cf_repo_info *out, const cf_s3c_object_info *info)
{
    out->size = info->size;
    out->mtime = info->last_modified;
    snprintf(out->etag, sizeof out->etag, "%s", info->etag);
    snprintf(out->content_type, sizeof out->content_type, "%s", info->content_type);
    snprintf(out->cache_control, sizeof out->cache_control, "%s", info->cache_control);
    snprintf(out->content_disposition, sizeof out->content_disposition, "%s", info->content_disposition);
    snprintf(out->content_encoding, sizeof out->content_encoding, "%s", info->content_encoding);
    snprintf(out->content_language, sizeof out->content_language, "%s", info->content_language);
    snprintf(out->expires, sizeof out->expires, "%s", info->expires);
    for (const char *m = info->meta; m < info->meta + info->meta_len;) {
        const char *v = m + strlen(m) + 1;
        if (cf_repo_info_add_meta(out, m, strlen(m), v, strlen(v)) != 0)
            break; /* as many as the struct holds: the server's limit is S3's */
        m = v + strlen(v) + 1;
    }
}

static int s3_stat(cf_repo *base, const char *key, cf_repo_info *out, cf_err *err)
{
    s3_repo *r = S3_OF(base);
    char k[2048];
    cf_s3c *c;
    int rc = begin_call(r, key, k, &c, err);
    if (rc)
        return rc;
    cf_s3c_object_info *info = malloc(sizeof *info);
    rc = info ? cf_s3c_head_object(c, r->bucket, k, info, err)
              : cf_err_set(err, CF_ENOMEM, "stat of '%s%s': out of memory", r->name, key);
    give_client(r, c);
    if (rc == CF_ENOTFOUND)
        cf_err_reword(err, rc, "'%s%s' not found", r->name, key);
    if (!rc)
        info_from_s3(out, info);
    free(info);
    return rc;
}

static int s3_get_info(cf_repo *base, const char *key, uint64_t offset, uint64_t len, cf_repo_info *info,
                       cf_repo_data_fn fn, void *ctx, cf_err *err)
{
    if (len == 0)
        return s3_stat(base, key, info, err);
    cf_s3c_object_info *head = malloc(sizeof *head);
    if (!head)
        return cf_err_set(err, CF_ENOMEM, "read of '%s%s': out of memory", base->name, key);
    int rc = get_range(S3_OF(base), key, offset, len, fn, ctx, head, err);
    if (!rc)
        info_from_s3(info, head);
    free(head);
    /* A range from an empty object (or past its end) cannot be satisfied: the HEAD tells what
     * it holds, and there is no byte to give. */
    return rc == CF_ERANGE ? s3_stat(base, key, info, err) : rc;
}

/* The server copies the object in parts of r->copy_part bytes (more for objects so large that
 * 9,000 parts would not do), each pinned to the source's ETag, so that a source overwritten
 * meanwhile fails the copy instead of mixing versions. */
static int copy_in_parts(s3_repo *r, cf_s3c *c, const char *from_bucket, const char *from, const char *to,
                         const cf_repo_info *src, owned_opts *own, cf_err *err)
{
    uint64_t part = r->copy_part;
    if (src->size / PARTS_PLANNED >= part) {
        part = (src->size / PARTS_PLANNED + ((uint64_t)1 << 20)) & ~(((uint64_t)1 << 20) - 1);
        part = part > PART_SIZE_MAX ? PART_SIZE_MAX : part;
    }
    size_t nparts = (size_t)((src->size + part - 1) / part);
    cf_s3c_part *parts = calloc(nparts, sizeof *parts);
    if (!parts)
        return cf_err_set(err, CF_ENOMEM, "copy onto '%s%s': out of memory", r->name, to + strlen(r->root));
    char upload_id[CF_S3C_UPLOAD_ID_MAX];
    int rc = cf_s3c_mpu_create_opts(c, r->bucket, to, &own->o, upload_id, err);
    int created = !rc;
    for (size_t i = 0; !rc && i < nparts; i++) {
        uint64_t off = (uint64_t)i * part, len = src->size - off < part ? src->size - off : part;
        parts[i].number = (int)i + 1;
        rc = cf_s3c_mpu_upload_part_copy(c, r->bucket, to, upload_id, parts[i].number, from_bucket, from,
                                         src->etag, off, len, parts[i].etag, err);
    }
    if (!rc)
        rc = cf_s3c_mpu_complete(c, r->bucket, to, upload_id, parts, nparts, NULL, err);
    if (rc && created) {
        cf_err ignore;
        cf_s3c_mpu_abort(c, r->bucket, to, upload_id, &ignore); /* else the sweep removes it */
    }
    free(parts);
    return rc;
}

/* Copies from (a key of src's bucket) onto to (of r's) by the server. */
static int server_copy(s3_repo *r, s3_repo *src, const char *from, const char *to, const char *src_key,
                       const cf_repo_put_opts *o, cf_err *err)
{
    cf_repo_info *info = malloc(sizeof *info);
    owned_opts *own = malloc(sizeof *own);
    cf_s3c *c = NULL;
    int rc = 0;
    if (!info || !own)
        rc = cf_err_set(err, CF_ENOMEM, "copy of '%s%s': out of memory", src->name, src_key);
    if (!rc)
        rc = cf_repo_stat(&src->base, src_key, info, err);
    /* The HEAD above already tells a source rewritten since the caller read it; the copy itself is
     * pinned too, for one rewritten between this HEAD and the copy. */
    const char *if_match = o && o->if_match ? o->if_match : NULL;
    if (!rc && if_match && strcmp(info->etag, if_match) != 0)
        rc = cf_err_set(err, CF_EPRECOND, "'%s%s' changed since it was read (ETag %s, no longer %s)",
                        src->name, src_key, info->etag, if_match);
    if (!rc)
        rc = take_client(r, &c, err);
    if (!rc && info->size > r->copy_max) {
        /* Beyond CopyObject's limit, the server copies in parts; the metadata must then be sent
         * again, the source's unless o replaces it. */
        cf_repo_put_opts keep = cf_repo_opts_of_info(info);
        own_opts(own, o ? o : &keep);
        rc = copy_in_parts(r, c, src->bucket, from, to, info, own, err);
    } else if (!rc) {
        if (o)
            own_opts(own, o);
        rc = cf_s3c_copy_object(c, src->bucket, from, r->bucket, to, o ? &own->o : NULL, if_match, NULL, err);
    }
    if (c)
        give_client(r, c);
    free(own);
    free(info);
    return rc;
}

static int s3_copy(cf_repo *base, const char *src, const char *dst, const cf_repo_put_opts *o, cf_err *err)
{
    s3_repo *r = S3_OF(base);
    char from[2048], to[2048];
    int rc = full_key(r, src, from, sizeof from, err);
    if (!rc)
        rc = full_key(r, dst, to, sizeof to, err);
    return rc ? rc : server_copy(r, r, from, to, src, o, err);
}

static int s3_copy_from(cf_repo *dst, const char *dst_key, cf_repo *src, const char *src_key,
                        const cf_repo_put_opts *o, cf_err *err)
{
    s3_repo *d = S3_OF(dst), *s = S3_OF(src);
    if (!cf_s3c_same_principal(d->client, s->client))
        return cf_err_set(err, CF_ENOTSUP, "'%s' and '%s' are on different endpoints or accounts", d->name,
                          s->name);
    char from[2048], to[2048];
    int rc = full_key(s, src_key, from, sizeof from, err);
    if (!rc)
        rc = full_key(d, dst_key, to, sizeof to, err);
    return rc ? rc : server_copy(d, s, from, to, src_key, o, err);
}

/* An object at most this large is read in one GET: for small objects the HEAD and ranged GETs of
 * cf_s3c_download would double the requests. */
#define READ_WHOLE_MAX ((uint64_t)8 << 20)

typedef struct whole_buf {
    unsigned char *p;
    size_t len, cap;
} whole_buf;

static int to_whole(void *ctx, const char *data, size_t n)
{
    whole_buf *b = ctx;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64 << 10;
        while (cap - b->len < n && cap <= READ_WHOLE_MAX * 2)
            cap *= 2;
        unsigned char *p = cap - b->len >= n ? realloc(b->p, cap) : NULL;
        if (!p)
            return 1; /* larger than the listing said by far, or out of memory */
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

typedef struct read_ctx {
    get_ctx g;
    cf_repo_info_fn on_info;
    const cf_s3c_object_info *head;
    cf_repo_info *info;
    int told;
} read_ctx;

static int tell_info(read_ctx *rc)
{
    if (rc->told)
        return 0;
    rc->told = 1;
    memset(rc->info, 0, sizeof *rc->info);
    info_from_s3(rc->info, rc->head);
    rc->g.rc = rc->on_info(rc->g.ctx, rc->info, &rc->g.err);
    return rc->g.rc;
}

static int deliver_after_info(void *p, const char *data, size_t n)
{
    read_ctx *rc = p;
    return tell_info(rc) ? 1 : deliver(&rc->g, data, n);
}

static int s3_read(cf_repo *base, const char *key, uint64_t size_hint, cf_repo_info_fn on_info,
                   cf_repo_data_fn fn, void *ctx, cf_err *err)
{
    s3_repo *r = S3_OF(base);
    char k[2048];
    int rc = full_key(r, key, k, sizeof k, err);
    if (rc)
        return rc;
    cf_s3c_object_info *head = malloc(sizeof *head);
    cf_repo_info *info = malloc(sizeof *info);
    read_ctx rx = {.g = {.fn = fn, .ctx = ctx}, .on_info = on_info, .head = head, .info = info};
    whole_buf b = {0};
    cf_s3c *c = NULL;
    if (!head || !info)
        rc = cf_err_set(err, CF_ENOMEM, "read of '%s%s': out of memory", r->name, key);
    if (!rc)
        rc = take_client(r, &c, err);
    if (!rc && size_hint <= READ_WHOLE_MAX) {
        rc = cf_s3c_get_object(c, r->bucket, k, NULL, to_whole, &b, head, err);
        give_client(r, c);
        if (!rc && !tell_info(&rx) && b.len)
            deliver(&rx.g, (const char *)b.p, b.len);
    } else if (!rc) {
        rc = cf_s3c_download(c, r->bucket, k, STREAM_RANGE, STREAM_RANGES_IN_FLIGHT, deliver_after_info, &rx,
                             head, err);
        give_client(r, c);
        if (!rc)
            tell_info(&rx); /* an empty object delivers no byte */
    }
    free(b.p);
    free(head);
    free(info);
    return get_result(&rx.g, rc, err);
}

static int s3_sync(cf_repo *base, cf_err *err)
{
    (void)base;
    (void)err;
    return 0; /* an S3 write is durable once it returned */
}

static int s3_delete(cf_repo *base, const char *key, int flags, cf_err *err)
{
    (void)flags; /* a DELETE is durable when it returns */
    s3_repo *r = S3_OF(base);
    char k[2048];
    cf_s3c *c;
    int rc = begin_call(r, key, k, &c, err);
    if (!rc) {
        rc = cf_s3c_delete_object(c, r->bucket, k, err);
        give_client(r, c);
    }
    return rc;
}

/* DeleteObjects, CF_S3C_DELETE_MAX keys a request. */
static int s3_delete_many(cf_repo *base, const char *const *keys, size_t n, cf_err *err)
{
    s3_repo *r = S3_OF(base);
    size_t batch = n < CF_S3C_DELETE_MAX ? n : CF_S3C_DELETE_MAX;
    char **full = calloc(batch ? batch : 1, sizeof *full);
    cf_s3c *c = NULL;
    int rc = full ? take_client(r, &c, err) : cf_err_set(err, CF_ENOMEM, "'%s': out of memory", r->name);
    for (size_t done = 0; !rc && done < n; done += batch) {
        size_t m = n - done < batch ? n - done : batch;
        for (size_t i = 0; !rc && i < m; i++) {
            char k[2048];
            if (!(rc = full_key(r, keys[done + i], k, sizeof k, err)) && !(full[i] = strdup(k)))
                rc = cf_err_set(err, CF_ENOMEM, "'%s': out of memory", r->name);
        }
        if (!rc)
            rc = cf_s3c_delete_objects(c, r->bucket, (const char *const *)full, m, err);
        for (size_t i = 0; i < m; i++) {
            free(full[i]);
            full[i] = NULL;
        }
    }
    if (c)
        give_client(r, c);
    free(full);
    return rc;
}

typedef struct abort_ctx {
    s3_repo *r;
    cf_s3c *c;
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
    if (cf_s3c_mpu_abort(a->c, a->r->bucket, u->key, u->upload_id, &ignore) == 0)
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
    cf_s3c *c;
    if ((rc = take_client(r, &c, err)))
        return rc;
    abort_ctx a = {r, c, before, removed, err};
    rc = cf_s3c_list_uploads(c, r->bucket, p, abort_stale, &a, err);
    give_client(r, c);
    return rc;
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
    .read = s3_read,
    .get_info = s3_get_info,
    .copy_from = s3_copy_from,
    .sync = s3_sync,
    .list_dir = s3_list_dir,
    .stat = s3_stat,
    .copy = s3_copy,
    .del = s3_delete,
    .del_many = s3_delete_many,
    .sweep = s3_sweep,
    .writer_resume = s3_writer_resume,
    .upload_abort = s3_upload_abort,
};
