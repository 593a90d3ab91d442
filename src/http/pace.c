/*
 * pace.c - responses whose bytes go out at the pace a meter allows, and a token bucket meter.
 *
 * libmicrohttpd asks a callback response for its next piece whenever the socket can take
 * more; a callback that returns 0 bytes is asked again at once, so with internal epoll threads
 * "nothing yet" would spin a core. Instead, when the meter grants nothing, the content callback
 * suspends its connection (allowed from a content callback) and parks it on this daemon's
 * timer, which resumes it when the meter said bytes would be available. A parked connection
 * costs no CPU and no thread.
 *
 * A meter with reserve (the token bucket's) is fair between the connections sharing it: each
 * takes one piece at a time from the budget, going into debt when it is short, and waits until
 * the debt up to its piece is paid. Pieces are thus served in the order they were reserved,
 * round-robin between connections, instead of by whichever connection a timer resumes first
 * (all waiters of a bare grant meter compute the same instant and race for the same bytes).
 *
 * Lock order: the timer's lock, then libmicrohttpd's (suspend and resume are called under the
 * timer's lock, so that cf_pace_timer_drain cannot miss a connection being parked: after it, no
 * connection is suspended here and none will be, as MHD_stop_daemon requires).
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "http/internal.h"

/* The least a bucket grants at once: 16 KiB, or what its rate earns in 1/PACE_MAX_WAKEUPS s if
 * more, so that a waiting response is resumed at most about that often a second (a suspend and
 * resume cost some microseconds each) and a slow rate is not served a few bytes at a time. */
#define PACE_MIN_PIECE (16 << 10)
#define PACE_MAX_WAKEUPS 200
/* A reservation: what the rate earns in 1/PACE_MAX_WAKEUPS s, within these bounds. The upper
 * one is the unit of fairness (connections interleave every 64 KiB); the lower one keeps a slow
 * rate from costing a wakeup per few bytes. */
#define PACE_MIN_RESERVE (4 << 10)
#define PACE_MAX_RESERVE (64 << 10)

typedef struct paced {
    cf_http_reader read;
    void *cls;
    void (*free_cls)(void *cls);
    cf_http_meter meter;
    struct MHD_Connection *conn;
    cf_pace_timer *timer;
    double due;         /* cf_clock_mono() at which to resume */
    size_t paid;        /* bytes reserved (meter.reserve) and not yet sent */
    struct paced *next; /* in the timer's list while parked */
} paced;

struct cf_pace_timer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    paced *head; /* parked, earliest due first */
    int draining, stop;
    pthread_t thread;
    int running;
};

static struct timespec mono_timespec(double t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

static void *timer_main(void *arg)
{
    cf_pace_timer *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        double now = cf_clock_mono();
        while (t->head && t->head->due <= now) {
            paced *p = t->head;
            t->head = p->next;
            p->next = NULL;
            MHD_resume_connection(p->conn);
        }
        if (t->head) {
            struct timespec until = mono_timespec(t->head->due);
            pthread_cond_timedwait(&t->cv, &t->mu, &until);
        } else {
            pthread_cond_wait(&t->cv, &t->mu);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int cf_pace_timer_start(cf_pace_timer **out)
{
    cf_pace_timer *t = calloc(1, sizeof *t);
    if (!t)
        return CF_ENOMEM;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* cf_clock_mono's clock */
    pthread_cond_init(&t->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&t->mu, NULL);
    if (pthread_create(&t->thread, NULL, timer_main, t) != 0) {
        cf_pace_timer_stop(t);
        return CF_EIO;
    }
    t->running = 1;
    *out = t;
    return 0;
}

void cf_pace_timer_drain(cf_pace_timer *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->draining = 1;
    while (t->head) {
        paced *p = t->head;
        t->head = p->next;
        p->next = NULL;
        MHD_resume_connection(p->conn);
    }
    pthread_mutex_unlock(&t->mu);
}

void cf_pace_timer_stop(cf_pace_timer *t)
{
    if (!t)
        return;
    if (t->running) {
        pthread_mutex_lock(&t->mu);
        t->stop = 1;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
    }
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* Suspends p's connection until wait_s from now (1), or refuses when the daemon stops (0). */
static int park(paced *p, double wait_s)
{
    cf_pace_timer *t = p->timer;
    pthread_mutex_lock(&t->mu);
    if (t->draining) {
        pthread_mutex_unlock(&t->mu);
        return 0;
    }
    MHD_suspend_connection(p->conn);
    p->due = cf_clock_mono() + wait_s;
    paced **at = &t->head;
    while (*at && (*at)->due <= p->due)
        at = &(*at)->next;
    p->next = *at;
    *at = p;
    if (t->head == p) /* the timer sleeps until a later time */
        pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return 1;
}

static ssize_t read_paced(void *cls, uint64_t pos, char *buf, size_t max)
{
    paced *p = cls;
    double wait_s = 0;
    size_t n = 0;
    if (!p->meter.reserve) {
        n = p->meter.grant(p->meter.ctx, max, &wait_s);
    } else {
        /* A piece reserved earlier was paid for by the time its connection is resumed. */
        if (!p->paid)
            p->paid = p->meter.reserve(p->meter.ctx, max, &wait_s);
        if (wait_s <= 0) {
            n = p->paid < max ? p->paid : max;
            p->paid -= n;
        }
    }
    if (!n) {
        if (wait_s < 0.001)
            wait_s = 0.001;
        /* When the daemon stops, a paced response is cut rather than sent unmetered. */
        return park(p, wait_s) ? 0 : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    long got = p->read(p->cls, pos, buf, n < max ? n : max);
    if (got < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return got == 0 ? MHD_CONTENT_READER_END_OF_STREAM : got;
}

static void free_paced(void *cls)
{
    paced *p = cls;
    if (p->free_cls)
        p->free_cls(p->cls);
    free(p);
}

cf_http_response *cf_http_body_paced(cf_http_request *hr, uint64_t len, size_t block, cf_http_reader read,
                                     void *cls, void (*free_cls)(void *cls), const cf_http_meter *meter)
{
    paced *p = calloc(1, sizeof *p);
    struct MHD_Response *resp = NULL;
    if (p) {
        *p = (paced){read, cls, free_cls, *meter, hr->conn, hr->http->pacing, 0, 0, NULL};
        resp = MHD_create_response_from_callback(len, block, read_paced, p, free_paced);
    }
    if (!resp) {
        free(p);
        if (free_cls)
            free_cls(cls);
    }
    return cf_http_response_of(resp);
}

typedef struct fd_source {
    int fd;
    uint64_t offset;
} fd_source;

static long read_fd(void *cls, uint64_t pos, char *buf, size_t max)
{
    fd_source *s = cls;
    for (;;) {
        ssize_t n = pread(s->fd, buf, max, (off_t)(s->offset + pos));
        if (n >= 0 || errno != EINTR)
            return n < 0 ? -1 : (long)n;
    }
}

static void free_fd_source(void *cls)
{
    fd_source *s = cls;
    close(s->fd);
    free(s);
}

cf_http_response *cf_http_body_fd_paced(cf_http_request *hr, int fd, uint64_t offset, uint64_t len,
                                        const cf_http_meter *meter)
{
    fd_source *s = malloc(sizeof *s);
    if (!s) {
        close(fd);
        return NULL;
    }
    *s = (fd_source){fd, offset};
    return cf_http_body_paced(hr, len, 64 << 10, read_fd, s, free_fd_source, meter);
}

/* The token bucket. */
struct cf_http_bucket {
    pthread_mutex_t mu;
    double rate, burst; /* bytes/s, bytes */
    double tokens;      /* bytes that may go now */
    double last;        /* cf_clock_mono() of the last refill; 0 until the first request */
};

int cf_http_bucket_new(uint64_t rate, uint64_t burst, cf_http_bucket **out)
{
    if (!rate || !burst)
        return CF_EINVAL;
    cf_http_bucket *b = calloc(1, sizeof *b);
    if (!b)
        return CF_ENOMEM;
    pthread_mutex_init(&b->mu, NULL);
    b->rate = (double)rate;
    b->burst = (double)burst;
    *out = b;
    return 0;
}

void cf_http_bucket_free(cf_http_bucket *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b);
}

void cf_http_bucket_set_rate(cf_http_bucket *b, uint64_t rate, uint64_t burst)
{
    if (!rate || !burst)
        return;
    pthread_mutex_lock(&b->mu);
    /* What the old rate earned so far is kept, so a change applies from now on only. */
    double now = cf_clock_mono();
    if (b->last != 0) {
        b->tokens += (now - b->last) * b->rate;
        b->last = now;
    }
    b->rate = (double)rate;
    b->burst = (double)burst;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
    pthread_mutex_unlock(&b->mu);
}

static size_t bucket_grant(void *ctx, size_t want, double *wait_s)
{
    cf_http_bucket *b = ctx;
    /* Wait for a useful piece at least, but never for more than asked or the bucket can hold. */
    double need = b->rate / PACE_MAX_WAKEUPS > PACE_MIN_PIECE ? b->rate / PACE_MAX_WAKEUPS : PACE_MIN_PIECE;
    if (need > (double)want)
        need = (double)want;
    if (need > b->burst)
        need = b->burst;
    pthread_mutex_lock(&b->mu);
    double now = cf_clock_mono();
    if (b->last == 0) /* the bucket fills from its first request, not from its creation */
        b->last = now;
    b->tokens += (now - b->last) * b->rate;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
    b->last = now;
    size_t n = 0;
    if (b->tokens >= need && need > 0) {
        n = b->tokens < (double)want ? (size_t)b->tokens : want;
        b->tokens -= (double)n;
    } else {
        *wait_s = (need - b->tokens) / b->rate;
    }
    pthread_mutex_unlock(&b->mu);
    return n;
}

static size_t bucket_reserve(void *ctx, size_t want, double *wait_s)
{
    cf_http_bucket *b = ctx;
    double piece = b->rate / PACE_MAX_WAKEUPS;
    if (piece < PACE_MIN_RESERVE)
        piece = PACE_MIN_RESERVE;
    if (piece > PACE_MAX_RESERVE)
        piece = PACE_MAX_RESERVE;
    if (piece > (double)want)
        piece = (double)want;
    if (piece > b->burst)
        piece = b->burst;
    size_t n = (size_t)piece;
    pthread_mutex_lock(&b->mu);
    double now = cf_clock_mono();
    if (b->last == 0)
        b->last = now;
    b->tokens += (now - b->last) * b->rate;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
    b->last = now;
    b->tokens -= (double)n; /* below 0: the debt the reservations ahead of this one left */
    *wait_s = b->tokens < 0 ? -b->tokens / b->rate : 0;
    pthread_mutex_unlock(&b->mu);
    return n;
}

cf_http_meter cf_http_bucket_meter(cf_http_bucket *b)
{
    return (cf_http_meter){bucket_grant, b, bucket_reserve};
}
