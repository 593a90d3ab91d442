/*
 * offload.c - the pool of threads that run the blocking part of a request.
 *
 * The HTTP front is a few event-loop threads, each serving thousands of connections. A request
 * that must wait for the disk (the fdatasync, directory fsync and LMDB commit that end every
 * write) would stall every connection of its event thread, so its connection is suspended, the
 * handler runs here, and the connection is resumed with the response held for it
 * (docs/internals/http.md). The pool is bounded: with all its threads waiting for the disk,
 * further writes queue, reads go on.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/log.h"
#include "http/internal.h"

struct cf_offload {
    pthread_mutex_t mu;
    pthread_cond_t has_work;      /* the queue is not empty, or the pool stops */
    pthread_cond_t settled;       /* a request left the pool */
    cf_http_request *head, *tail; /* queued, in order */
    unsigned in_pool;             /* queued or running */
    int stopping;
    cf_offload_fn run;
    pthread_t *threads;
    unsigned nthreads;
};

static void *worker_main(void *arg)
{
    cf_offload *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stopping)
            pthread_cond_wait(&p->has_work, &p->mu);
        cf_http_request *r = p->head;
        if (!r)
            break; /* stopping, and nothing left to run */
        p->head = r->offload_next;
        if (!p->head)
            p->tail = NULL;
        r->offload_next = NULL;
        pthread_mutex_unlock(&p->mu);

        p->run(r);
        /* The connection is still suspended, so MHD cannot close it (and on_completed cannot
         * free r) before this returns. */
        MHD_resume_connection(r->conn);

        pthread_mutex_lock(&p->mu);
        r->offload_state = CF_OFFLOAD_NONE;
        p->in_pool--;
        pthread_cond_broadcast(&p->settled);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int cf_offload_start(unsigned nthreads, cf_offload_fn run, cf_offload **out)
{
    cf_offload *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc(nthreads ? nthreads : 1, sizeof *p->threads))) {
        free(p);
        return CF_ENOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->has_work, NULL);
    pthread_cond_init(&p->settled, NULL);
    p->run = run;
    for (unsigned i = 0; i < (nthreads ? nthreads : 1); i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0)
            break;
        p->nthreads++;
    }
    if (!p->nthreads) {
        cf_offload_stop(p);
        return CF_EIO;
    }
    *out = p;
    return 0;
}

int cf_offload_submit(cf_offload *p, cf_http_request *r)
{
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    /* Suspended before a worker can see it, so its resume cannot come first. */
    MHD_suspend_connection(r->conn);
    r->offload_state = CF_OFFLOAD_QUEUED;
    r->offload_next = NULL;
    if (p->tail)
        p->tail->offload_next = r;
    else
        p->head = r;
    p->tail = r;
    p->in_pool++;
    pthread_cond_signal(&p->has_work);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void cf_offload_forget(cf_offload *p, cf_http_request *r)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    while (r->offload_state != CF_OFFLOAD_NONE)
        pthread_cond_wait(&p->settled, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void cf_offload_drain(cf_offload *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->has_work);
    while (p->in_pool)
        pthread_cond_wait(&p->settled, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void cf_offload_stop(cf_offload *p)
{
    if (!p)
        return;
    cf_offload_drain(p);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->has_work);
    pthread_cond_destroy(&p->settled);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}
