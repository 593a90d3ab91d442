/*
 * md5.c - MD5 for the ETags of uploads, several bodies at a time.
 *
 * S3 makes a body's ETag its MD5, and MD5 is one long chain of dependent steps: a core hashes
 * one body at about 700 MB/s, with most of its execution units idle, waiting on the previous
 * step. On the server that was 60 % of an upload's CPU. Two or four independent bodies' steps,
 * interleaved in one instruction stream, fill those idle units: measured on the machine of
 * docs/BENCHMARKS.md, two bodies hash at 1.8 times, three at 2 times the bytes per CPU second
 * of one, and four at 1.9 times (the compiler runs short of registers). Plain C does this: the
 * compiler schedules the independent chains. Eight lanes in AVX2 registers did no better with
 * four bodies (1.8 times the speed of one) and are not kept. One body alone hashes at 1.1
 * times OpenSSL's speed (the G steps below).
 *
 * Combining happens among the bodies of one cf_md5_gather, which its owner creates (the store,
 * one for all the bodies it writes), so two stores in one process, or a library beside a
 * server, never wait for each other's blocks; a body without a gather is always hashed alone.
 * Within a gather: a thread with blocks to hash queues them and, if no thread is hashing, becomes
 * the one that does, taking up to CF_MD5_LANES queued jobs (its own among them) per pass,
 * until its own are done; then it wakes the others, one of which takes over if jobs are left.
 * Each caller waits for its own blocks, so the bytes it passed stay valid and its digest state
 * is written by one thread at a time. While only one body is being hashed it hashes alone,
 * with no queueing.
 *
 * Combining trades time for CPU: two bodies on two idle cores finish about 12 % later hashed
 * together than hashed each on its own core, for about 45 % less CPU. The server shares its cores
 * with the work that feeds it (or runs under a CPU quota), so CPU is what we save.
 */
#include "crypto/md5.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"

/* Below this many blocks (64 KiB) a caller hashes on its own: queueing costs more than it
 * saves. */
#define SHARE_MIN_BLOCKS 1024
/* How long the hashing thread waits for the other bodies' next blocks before a pass: about as
 * long as hashing its own blocks alone would take (64 bytes at ~700 MB/s), so waiting at most
 * doubles a pass's time and costs no CPU; and at most GATHER_WAIT_MAX_NS. A body that queued
 * no blocks in the last RECENT_NS is not waited for: its sender has paused. */
#define WAIT_NS_PER_BLOCK 90u
#define GATHER_WAIT_MAX_NS 2000000u
#define RECENT_NS 10000000u

static const uint32_t md5_init[4] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};

static uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The 64 steps of RFC 1321, each STEP(round function, a, b, c, d, message word, constant,
 * rotation); STEP runs one step in every lane of a pass (STEPS_n below). */
#define MD5_STEPS(STEP)                                                                                      \
    STEP(F, a, b, c, d, 0, 0xd76aa478u, 7);                                                                  \
    STEP(F, d, a, b, c, 1, 0xe8c7b756u, 12);                                                                 \
    STEP(F, c, d, a, b, 2, 0x242070dbu, 17);                                                                 \
    STEP(F, b, c, d, a, 3, 0xc1bdceeeu, 22);                                                                 \
    STEP(F, a, b, c, d, 4, 0xf57c0fafu, 7);                                                                  \
    STEP(F, d, a, b, c, 5, 0x4787c62au, 12);                                                                 \
    STEP(F, c, d, a, b, 6, 0xa8304613u, 17);                                                                 \
    STEP(F, b, c, d, a, 7, 0xfd469501u, 22);                                                                 \
    STEP(F, a, b, c, d, 8, 0x698098d8u, 7);                                                                  \
    STEP(F, d, a, b, c, 9, 0x8b44f7afu, 12);                                                                 \
    STEP(F, c, d, a, b, 10, 0xffff5bb1u, 17);                                                                \
    STEP(F, b, c, d, a, 11, 0x895cd7beu, 22);                                                                \
    STEP(F, a, b, c, d, 12, 0x6b901122u, 7);                                                                 \
    STEP(F, d, a, b, c, 13, 0xfd987193u, 12);                                                                \
    STEP(F, c, d, a, b, 14, 0xa679438eu, 17);                                                                \
    STEP(F, b, c, d, a, 15, 0x49b40821u, 22);                                                                \
    STEP(G, a, b, c, d, 1, 0xf61e2562u, 5);                                                                  \
    STEP(G, d, a, b, c, 6, 0xc040b340u, 9);                                                                  \
    STEP(G, c, d, a, b, 11, 0x265e5a51u, 14);                                                                \
    STEP(G, b, c, d, a, 0, 0xe9b6c7aau, 20);                                                                 \
    STEP(G, a, b, c, d, 5, 0xd62f105du, 5);                                                                  \
    STEP(G, d, a, b, c, 10, 0x02441453u, 9);                                                                 \
    STEP(G, c, d, a, b, 15, 0xd8a1e681u, 14);                                                                \
    STEP(G, b, c, d, a, 4, 0xe7d3fbc8u, 20);                                                                 \
    STEP(G, a, b, c, d, 9, 0x21e1cde6u, 5);                                                                  \
    STEP(G, d, a, b, c, 14, 0xc33707d6u, 9);                                                                 \
    STEP(G, c, d, a, b, 3, 0xf4d50d87u, 14);                                                                 \
    STEP(G, b, c, d, a, 8, 0x455a14edu, 20);                                                                 \
    STEP(G, a, b, c, d, 13, 0xa9e3e905u, 5);                                                                 \
    STEP(G, d, a, b, c, 2, 0xfcefa3f8u, 9);                                                                  \
    STEP(G, c, d, a, b, 7, 0x676f02d9u, 14);                                                                 \
    STEP(G, b, c, d, a, 12, 0x8d2a4c8au, 20);                                                                \
    STEP(H, a, b, c, d, 5, 0xfffa3942u, 4);                                                                  \
    STEP(H, d, a, b, c, 8, 0x8771f681u, 11);                                                                 \
    STEP(H, c, d, a, b, 11, 0x6d9d6122u, 16);                                                                \
    STEP(H, b, c, d, a, 14, 0xfde5380cu, 23);                                                                \
    STEP(H, a, b, c, d, 1, 0xa4beea44u, 4);                                                                  \
    STEP(H, d, a, b, c, 4, 0x4bdecfa9u, 11);                                                                 \
    STEP(H, c, d, a, b, 7, 0xf6bb4b60u, 16);                                                                 \
    STEP(H, b, c, d, a, 10, 0xbebfbc70u, 23);                                                                \
    STEP(H, a, b, c, d, 13, 0x289b7ec6u, 4);                                                                 \
    STEP(H, d, a, b, c, 0, 0xeaa127fau, 11);                                                                 \
    STEP(H, c, d, a, b, 3, 0xd4ef3085u, 16);                                                                 \
    STEP(H, b, c, d, a, 6, 0x04881d05u, 23);                                                                 \
    STEP(H, a, b, c, d, 9, 0xd9d4d039u, 4);                                                                  \
    STEP(H, d, a, b, c, 12, 0xe6db99e5u, 11);                                                                \
    STEP(H, c, d, a, b, 15, 0x1fa27cf8u, 16);                                                                \
    STEP(H, b, c, d, a, 2, 0xc4ac5665u, 23);                                                                 \
    STEP(I, a, b, c, d, 0, 0xf4292244u, 6);                                                                  \
    STEP(I, d, a, b, c, 7, 0x432aff97u, 10);                                                                 \
    STEP(I, c, d, a, b, 14, 0xab9423a7u, 15);                                                                \
    STEP(I, b, c, d, a, 5, 0xfc93a039u, 21);                                                                 \
    STEP(I, a, b, c, d, 12, 0x655b59c3u, 6);                                                                 \
    STEP(I, d, a, b, c, 3, 0x8f0ccc92u, 10);                                                                 \
    STEP(I, c, d, a, b, 10, 0xffeff47du, 15);                                                                \
    STEP(I, b, c, d, a, 1, 0x85845dd1u, 21);                                                                 \
    STEP(I, a, b, c, d, 8, 0x6fa87e4fu, 6);                                                                  \
    STEP(I, d, a, b, c, 15, 0xfe2ce6e0u, 10);                                                                \
    STEP(I, c, d, a, b, 6, 0xa3014314u, 15);                                                                 \
    STEP(I, b, c, d, a, 13, 0x4e0811a1u, 21);                                                                \
    STEP(I, a, b, c, d, 4, 0xf7537e82u, 6);                                                                  \
    STEP(I, d, a, b, c, 11, 0xbd3af235u, 10);                                                                \
    STEP(I, c, d, a, b, 2, 0x2ad7d2bbu, 15);                                                                 \
    STEP(I, b, c, d, a, 9, 0xeb86d391u, 21);

#define F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define H(x, y, z) ((x) ^ (y) ^ (z))
#define I(x, y, z) ((y) ^ ((x) | ~(z)))
#define ROTL(x, s) ((x) << (s) | (x) >> (32 - (s)))
/* One lane's part of a step: lane L's registers are a##L ..., its message words m##L. A step
 * is bound by its chain of dependent instructions from b, the previous step's result. G's two
 * terms never overlap, so they can be added apart, and the one without b before b is known:
 * one instruction fewer on the chain in 16 of the 64 steps (1.1 times the speed alone, 1.1 to
 * 1.15 side by side). */
#define LANE_STEP(f, a, b, c, d, k, t, s, L) LANE_STEP_##f(a##L, b##L, c##L, d##L, m##L[k], t, s)
#define LANE_STEP_ANY(f, a, b, c, d, m, t, s)                                                                \
    a += f(b, c, d) + (m) + (t);                                                                             \
    a = ROTL(a, s) + b
#define LANE_STEP_F(a, b, c, d, m, t, s) LANE_STEP_ANY(F, a, b, c, d, m, t, s)
#define LANE_STEP_H(a, b, c, d, m, t, s) LANE_STEP_ANY(H, a, b, c, d, m, t, s)
#define LANE_STEP_I(a, b, c, d, m, t, s) LANE_STEP_ANY(I, a, b, c, d, m, t, s)
#define LANE_STEP_G(a, b, c, d, m, t, s)                                                                     \
    a += (c & ~d) + (m) + (t);                                                                               \
    a += b & d;                                                                                              \
    a = ROTL(a, s) + b

#define LANE_LOAD(L)                                                                                         \
    uint32_t a##L = st[L][0], b##L = st[L][1], c##L = st[L][2], d##L = st[L][3];                             \
    const unsigned char *p##L = p[L]
#define LANE_BLOCK_START(L)                                                                                  \
    uint32_t m##L[16];                                                                                       \
    for (int i = 0; i < 16; i++)                                                                             \
        m##L[i] = load_le32(p##L + 4 * i);                                                                   \
    p##L += 64;                                                                                              \
    uint32_t a0##L = a##L, b0##L = b##L, c0##L = c##L, d0##L = d##L
#define LANE_BLOCK_END(L)                                                                                    \
    a##L += a0##L;                                                                                           \
    b##L += b0##L;                                                                                           \
    c##L += c0##L;                                                                                           \
    d##L += d0##L
#define LANE_STORE(L)                                                                                        \
    st[L][0] = a##L;                                                                                         \
    st[L][1] = b##L;                                                                                         \
    st[L][2] = c##L;                                                                                         \
    st[L][3] = d##L

/* The lanes an n-lane pass runs X for, and its steps: each step once for every lane. */
#define EACH_LANE_1(X) X(0)
#define EACH_LANE_2(X)                                                                                       \
    EACH_LANE_1(X);                                                                                          \
    X(1)
#define EACH_LANE_3(X)                                                                                       \
    EACH_LANE_2(X);                                                                                          \
    X(2)
#define EACH_LANE_4(X)                                                                                       \
    EACH_LANE_3(X);                                                                                          \
    X(3)
#define STEPS_1(...) LANE_STEP(__VA_ARGS__, 0)
#define STEPS_2(...)                                                                                         \
    STEPS_1(__VA_ARGS__);                                                                                    \
    LANE_STEP(__VA_ARGS__, 1)
#define STEPS_3(...)                                                                                         \
    STEPS_2(__VA_ARGS__);                                                                                    \
    LANE_STEP(__VA_ARGS__, 2)
#define STEPS_4(...)                                                                                         \
    STEPS_3(__VA_ARGS__);                                                                                    \
    LANE_STEP(__VA_ARGS__, 3)

/* md5_xN: nblocks blocks of each of N bodies, lane i reading p[i] and updating st[i]. */
#define DEFINE_MD5_LANES(n)                                                                                  \
    static void md5_x##n(uint32_t *const st[], const unsigned char *const p[], size_t nblocks)               \
    {                                                                                                        \
        EACH_LANE_##n(LANE_LOAD);                                                                            \
        for (; nblocks; nblocks--) {                                                                         \
            EACH_LANE_##n(LANE_BLOCK_START);                                                                 \
            MD5_STEPS(STEPS_##n)                                                                             \
            EACH_LANE_##n(LANE_BLOCK_END);                                                                   \
        }                                                                                                    \
        EACH_LANE_##n(LANE_STORE);                                                                           \
    }
DEFINE_MD5_LANES(1)
DEFINE_MD5_LANES(2)
DEFINE_MD5_LANES(3)
DEFINE_MD5_LANES(4)

void cf_md5_blocks(uint32_t st[4], const unsigned char *p, size_t nblocks)
{
    uint32_t *const sts[1] = {st};
    const unsigned char *const ps[1] = {p};
    md5_x1(sts, ps, nblocks);
}

void cf_md5_blocks_lanes(unsigned n, uint32_t *const st[], const unsigned char *const p[], size_t nblocks)
{
    switch (n) {
    case 1: md5_x1(st, p, nblocks); break;
    case 2: md5_x2(st, p, nblocks); break;
    case 3: md5_x3(st, p, nblocks); break;
    default: md5_x4(st, p, nblocks); break;
    }
}

/* ---- combining ---- */

typedef struct job {
    cf_md5_ctx *body;
    const unsigned char *p;
    size_t nblocks;
    int done;
    struct job *next;
} job;

struct cf_md5_gather {
    pthread_mutex_t mu;
    pthread_cond_t cv, arrived;
    job *head, *tail;
    unsigned queued;
    unsigned streams;                         /* bodies that have queued blocks and are not finished */
    cf_md5_ctx *bodies;                       /* those bodies, for their last_queued */
    unsigned running;                         /* threads hashing queued blocks: one per CF_MD5_LANES bodies */
    uint64_t bytes_alone, bytes_side_by_side; /* atomic */
};

int cf_md5_gather_new(cf_md5_gather **out)
{
    cf_md5_gather *g = calloc(1, sizeof *g);
    if (!g)
        return CF_ENOMEM;
    /* The gather wait's deadline is on the monotonic clock: a step of the wall clock must not
     * stretch it (a signal would then be the only way out). */
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc) {
        free(g);
        return CF_ENOMEM;
    }
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    int mu = pthread_mutex_init(&g->mu, NULL), cv = pthread_cond_init(&g->cv, NULL),
        arrived = pthread_cond_init(&g->arrived, &a);
    pthread_condattr_destroy(&a);
    if (mu || cv || arrived) {
        if (!mu)
            pthread_mutex_destroy(&g->mu);
        if (!cv)
            pthread_cond_destroy(&g->cv);
        if (!arrived)
            pthread_cond_destroy(&g->arrived);
        free(g);
        return CF_ENOMEM;
    }
    *out = g;
    return 0;
}

void cf_md5_gather_free(cf_md5_gather *g)
{
    if (!g)
        return;
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    pthread_cond_destroy(&g->arrived);
    free(g);
}

void cf_md5_gather_stats(cf_md5_gather *g, uint64_t *alone, uint64_t *side_by_side)
{
    *alone = __atomic_load_n(&g->bytes_alone, __ATOMIC_RELAXED);
    *side_by_side = __atomic_load_n(&g->bytes_side_by_side, __ATOMIC_RELAXED);
}

static void count(uint64_t *counter, size_t nblocks)
{
    __atomic_fetch_add(counter, (uint64_t)nblocks * 64, __ATOMIC_RELAXED);
}

static void hash_alone(cf_md5_ctx *m, const unsigned char *p, size_t nblocks)
{
    cf_md5_blocks(m->st, p, nblocks);
    if (m->gather)
        count(&m->gather->bytes_alone, nblocks);
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* How many jobs a pass should wait for: one from each body that queued blocks lately (or
 * since `since`), up to CF_MD5_LANES. A body whose sender has paused is not waited for, nor one
 * whose blocks are in another thread's pass: its thread cannot queue more until that ends. Nor
 * one fed by the waiting thread itself that has nothing queued: an event-loop thread serves
 * several uploads, and while it waits here none of its other bodies can queue anything.
 * Under g->mu. */
static unsigned jobs_wanted(const cf_md5_gather *g, uint64_t since)
{
    unsigned n = 0;
    pthread_t self = pthread_self();
    for (const cf_md5_ctx *b = g->bodies; b && n < CF_MD5_LANES; b = b->next_body)
        n += !b->in_pass && (int64_t)(since - b->last_queued) <= (int64_t)RECENT_NS &&
             (b->has_queued || !pthread_equal(b->producer, self));
    return n;
}

/* Hashes every block of jobs[0..n) side by side while two or more have blocks left, in passes
 * as long as the shortest; the last one left finishes alone. */
static void hash_batch(cf_md5_gather *g, job *const *jobs, unsigned n)
{
    uint32_t *st[CF_MD5_LANES];
    const unsigned char *p[CF_MD5_LANES];
    size_t left[CF_MD5_LANES];
    for (unsigned i = 0; i < n; i++) {
        st[i] = jobs[i]->body->st;
        p[i] = jobs[i]->p;
        left[i] = jobs[i]->nblocks;
    }
    while (n) {
        size_t step = left[0];
        for (unsigned i = 1; i < n; i++)
            if (left[i] < step)
                step = left[i];
        cf_md5_blocks_lanes(n, st, p, step);
        count(n > 1 ? &g->bytes_side_by_side : &g->bytes_alone, step * n);
        unsigned kept = 0;
        for (unsigned i = 0; i < n; i++) {
            if (left[i] == step)
                continue;
            st[kept] = st[i];
            p[kept] = p[i] + 64 * step;
            left[kept] = left[i] - step;
            kept++;
        }
        n = kept;
    }
}

/* Full blocks of one body: alone when short or when no other body is being hashed, else
 * queued. */
static void hash_blocks(cf_md5_ctx *m, const unsigned char *p, size_t nblocks)
{
    cf_md5_gather *g = m->gather;
    if (!g || nblocks < SHARE_MIN_BLOCKS) {
        hash_alone(m, p, nblocks);
        return;
    }
    job me = {m, p, nblocks, 0, NULL};
    pthread_mutex_lock(&g->mu);
    if (!m->sharing) {
        m->sharing = 1;
        g->streams++;
        m->prev_body = NULL;
        m->next_body = g->bodies;
        if (g->bodies)
            g->bodies->prev_body = m;
        g->bodies = m;
    }
    if (g->streams < 2) {
        pthread_mutex_unlock(&g->mu);
        hash_alone(m, p, nblocks);
        return;
    }
    if (g->tail)
        g->tail->next = &me;
    else
        g->head = &me;
    g->tail = &me;
    g->queued++;
    m->has_queued = 1;
    m->producer = pthread_self();
    m->last_queued = now_ns();
    pthread_cond_signal(&g->arrived);
    while (!me.done) {
        unsigned runners = (g->streams + CF_MD5_LANES - 1) / CF_MD5_LANES;
        /* With the queue empty and me not done, my blocks are in another thread's pass,
         * which wakes me when it ends. */
        if (!g->head || g->running >= (runners ? runners : 1)) {
            pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        /* Hashes passes until my blocks are done, by this thread or by another one. */
        g->running++;
        while (!me.done && g->head) {
            /* The other bodies' threads queue their next blocks as soon as they are
             * scheduled; a moment's wait for them turns one-lane passes into full ones. */
            uint64_t start = now_ns();
            if (g->queued < jobs_wanted(g, start)) {
                uint64_t wait = (uint64_t)g->head->nblocks * WAIT_NS_PER_BLOCK;
                if (wait > GATHER_WAIT_MAX_NS)
                    wait = GATHER_WAIT_MAX_NS;
                uint64_t end_ns = start + wait;
                struct timespec until;
                clock_gettime(CLOCK_MONOTONIC, &until);
                until.tv_nsec += (long)wait;
                if (until.tv_nsec >= 1000000000L) {
                    until.tv_sec++;
                    until.tv_nsec -= 1000000000L;
                }
                /* Measured against the start, so bodies that have paused meanwhile are not
                 * waited for; one that is done stops counting at once. */
                while (g->queued < jobs_wanted(g, start) && now_ns() < end_ns &&
                       pthread_cond_timedwait(&g->arrived, &g->mu, &until) == 0)
                    ;
            }
            job *batch[CF_MD5_LANES];
            unsigned n = 0;
            while (g->head && n < CF_MD5_LANES) {
                g->head->body->in_pass = 1;
                g->head->body->has_queued = 0;
                batch[n++] = g->head;
                g->head = g->head->next;
                g->queued--;
            }
            if (!g->head)
                g->tail = NULL;
            pthread_mutex_unlock(&g->mu);
            hash_batch(g, batch, n);
            pthread_mutex_lock(&g->mu);
            for (unsigned i = 0; i < n; i++) {
                batch[i]->body->in_pass = 0;
                batch[i]->done = 1;
            }
            pthread_cond_broadcast(&g->cv);
        }
        g->running--;
        /* Whoever still waits with blocks queued takes over. */
        pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
}

/* ---- the digest ---- */

void cf_md5_init(cf_md5_ctx *m, cf_md5_gather *gather)
{
    m->gather = gather;
    memcpy(m->st, md5_init, sizeof m->st);
    m->len = 0;
    m->nbuf = 0;
    m->sharing = 0;
    m->in_pass = 0;
    m->has_queued = 0;
    m->last_queued = 0;
}

void cf_md5_state_init(uint32_t st[4])
{
    memcpy(st, md5_init, sizeof md5_init);
}

void cf_md5_resume(cf_md5_ctx *m, const uint32_t st[4], uint64_t len)
{
    cf_md5_init(m, NULL);
    memcpy(m->st, st, sizeof m->st);
    m->len = len;
}

void cf_md5_done(cf_md5_ctx *m)
{
    if (!m->sharing)
        return;
    cf_md5_gather *g = m->gather;
    pthread_mutex_lock(&g->mu);
    g->streams--;
    if (m->prev_body)
        m->prev_body->next_body = m->next_body;
    else
        g->bodies = m->next_body;
    if (m->next_body)
        m->next_body->prev_body = m->prev_body;
    /* A hashing thread may be waiting for this body's next blocks. */
    pthread_cond_signal(&g->arrived);
    pthread_mutex_unlock(&g->mu);
    m->sharing = 0;
}

void cf_md5_update(cf_md5_ctx *m, const void *data, size_t n)
{
    const unsigned char *p = data;
    m->len += n;
    if (m->nbuf) {
        size_t take = 64 - m->nbuf < n ? 64 - m->nbuf : n;
        memcpy(m->buf + m->nbuf, p, take);
        m->nbuf += take;
        p += take;
        n -= take;
        if (m->nbuf < 64)
            return;
        hash_alone(m, m->buf, 1);
        m->nbuf = 0;
    }
    if (n >= 64) {
        hash_blocks(m, p, n / 64);
        p += n / 64 * 64;
        n %= 64;
    }
    memcpy(m->buf, p, n);
    m->nbuf = n;
}

void cf_md5_final(cf_md5_ctx *m, unsigned char out[16])
{
    uint64_t bits = m->len * 8;
    unsigned char pad[72] = {0x80};
    size_t padlen = (m->nbuf < 56 ? 56 : 120) - m->nbuf;
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (unsigned char)(bits >> (8 * i));
    cf_md5_update(m, pad, padlen);
    cf_md5_update(m, lenb, 8);
    cf_md5_done(m);
    for (int i = 0; i < 4; i++) {
        out[4 * i] = (unsigned char)m->st[i];
        out[4 * i + 1] = (unsigned char)(m->st[i] >> 8);
        out[4 * i + 2] = (unsigned char)(m->st[i] >> 16);
        out[4 * i + 3] = (unsigned char)(m->st[i] >> 24);
    }
}
