/*
 * pool.c - cf_pool_run (pool.h).
 *
 * The next item is handed out under a mutex: an item is a whole object's I/O, so one lock per
 * item costs nothing beside it, and the same lock keeps the first failure.
 */
#include "mirror/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct pool_run {
    const cf_pool_job *job;
    pthread_mutex_t mu;
    pthread_cond_t ended; /* a thread ended (the ticking caller waits on it) */
    size_t next;          /* under mu */
    int running;          /* threads started and not yet ended, under mu */
    int rc;               /* the first failure, under mu */
    cf_err err;
} pool_run;

/* Records a failure (the first one wins) and hands out the next item: n when there is none. */
static size_t take(pool_run *p, int rc, const cf_err *err)
{
    pthread_mutex_lock(&p->mu);
    if (rc && !p->rc) {
        p->rc = rc;
        p->err = *err;
    }
    size_t i = p->rc || p->next >= p->job->n ? p->job->n : p->next++;
    pthread_mutex_unlock(&p->mu);
    return i;
}

static void work(pool_run *p)
{
    const cf_pool_job *j = p->job;
    void *state = NULL;
    cf_err err;
    cf_err_clear(&err);
    int rc = j->start ? j->start(j->ctx, &state, &err) : 0;
    int started = !rc;
    for (size_t i; (i = take(p, rc, &err)) < j->n;)
        rc = j->item(j->ctx, state, i, &err);
    if (started && j->stop)
        j->stop(j->ctx, state);
}

static void *thread_main(void *arg)
{
    pool_run *p = arg;
    work(p);
    pthread_mutex_lock(&p->mu);
    p->running--;
    pthread_cond_broadcast(&p->ended);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Waits for the threads, ticking about every tick_ms meanwhile. */
static void wait_ticking(pool_run *p)
{
    const cf_pool_job *j = p->job;
    long step_ns = (long)(j->tick_ms > 0 ? j->tick_ms : 100) * 1000000L;
    pthread_mutex_lock(&p->mu);
    while (p->running > 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += step_ns / 1000000000L;
        until.tv_nsec += step_ns % 1000000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->ended, &p->mu, &until);
        pthread_mutex_unlock(&p->mu);
        j->tick(j->ctx);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
}

int cf_pool_run(const cf_pool_job *job, cf_err *err)
{
    if (!job->n)
        return 0;
    size_t threads = job->threads > 0 ? (size_t)job->threads : 1;
    if (threads > job->n)
        threads = job->n;
    /* Without a tick the calling thread is one of the workers. */
    size_t to_start = job->tick ? threads : threads - 1;
    pthread_t *t = to_start ? calloc(to_start, sizeof *t) : NULL;
    if (to_start && !t)
        return cf_err_set(err, CF_ENOMEM, "out of memory for %zu threads", to_start);
    pool_run p = {.job = job};
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.ended, NULL);
    size_t started = 0;
    pthread_mutex_lock(&p.mu);
    for (; started < to_start; started++, p.running++)
        if (pthread_create(&t[started], NULL, thread_main, &p) != 0)
            break;
    pthread_mutex_unlock(&p.mu);
    int rc = 0;
    if (!job->tick)
        work(&p);
    else if (started)
        wait_ticking(&p);
    else
        rc = cf_err_set(err, CF_EAGAIN, "cannot start a worker thread");
    for (size_t i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    free(t);
    if (!rc && p.rc) {
        rc = p.rc;
        if (err)
            *err = p.err;
    }
    pthread_cond_destroy(&p.ended);
    pthread_mutex_destroy(&p.mu);
    return rc;
}
