/*
 * prefetch.c - a few threads that read the next window of a proxied download ahead of need, so
 * that the event thread sending the current window does not wait for the repository (download.c).
 *
 * A job is owned by the reader that submitted it until it waits for it (and takes the bytes) or
 * abandons it (the response went away); an abandoned job frees itself when its read ends. The
 * pool is freed only after every response was destroyed (cf_http_stop), so no job outlives it
 * but abandoned ones, which its threads finish before they exit.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "console/console_int.h"

enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct cf_prefetch_job {
    cf_repo *repo;
    uint64_t offset, len;
    char *buf;
    long got; /* bytes read, or -1 */
    int state, abandoned;
    cf_prefetch_job *next;
    char key[];
};

struct cf_prefetch {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    cf_prefetch_job *head, *tail;
    int stop;
    unsigned nthreads;
    pthread_t threads[];
};

typedef struct sink {
    char *buf;
    uint64_t len, cap;
} sink;

static int take(void *ctx, const void *p, size_t n, cf_err *err)
{
    sink *s = ctx;
    if (n > s->cap - s->len)
        return cf_err_set(err, CF_EIO, "the repository sent more than asked");
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

long cf_prefetch_read(cf_repo *repo, const char *key, uint64_t offset, uint64_t len, char *buf, cf_err *err)
{
    sink s = {buf, 0, len};
    if (cf_repo_get(repo, key, offset, len, take, &s, err) != 0)
        return -1;
    return s.len ? (long)s.len : -1;
}

static void free_job(cf_prefetch_job *j)
{
    free(j->buf);
    free(j);
}

static void *worker(void *arg)
{
    cf_prefetch *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->work, &p->mu);
        cf_prefetch_job *j = p->head;
        if (!j)
            break; /* stopping, nothing queued */
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        j->state = JOB_RUNNING;
        pthread_mutex_unlock(&p->mu);
        cf_err err = {0};
        long got = cf_prefetch_read(j->repo, j->key, j->offset, j->len, j->buf, &err);
        pthread_mutex_lock(&p->mu);
        j->got = got;
        j->state = JOB_DONE;
        if (j->abandoned)
            free_job(j);
        else
            pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int cf_prefetch_new(unsigned threads, cf_prefetch **out)
{
    cf_prefetch *p = calloc(1, sizeof *p + threads * sizeof(pthread_t));
    if (!p)
        return CF_ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    for (; p->nthreads < threads; p->nthreads++)
        if (pthread_create(&p->threads[p->nthreads], NULL, worker, p) != 0)
            break;
    if (!p->nthreads) {
        cf_prefetch_free(p);
        return CF_EIO;
    }
    *out = p;
    return 0;
}

void cf_prefetch_free(cf_prefetch *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

cf_prefetch_job *cf_prefetch_submit(cf_prefetch *p, cf_repo *repo, const char *key, uint64_t offset,
                                    uint64_t len)
{
    size_t klen = strlen(key);
    cf_prefetch_job *j = calloc(1, sizeof *j + klen + 1);
    if (!j || !(j->buf = malloc(len))) {
        free(j);
        return NULL;
    }
    memcpy(j->key, key, klen + 1);
    j->repo = repo;
    j->offset = offset;
    j->len = len;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    return j;
}

long cf_prefetch_wait(cf_prefetch *p, cf_prefetch_job *j, char **buf)
{
    pthread_mutex_lock(&p->mu);
    while (j->state != JOB_DONE)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    long got = j->got;
    *buf = j->buf;
    free(j);
    return got;
}

void cf_prefetch_abandon(cf_prefetch *p, cf_prefetch_job *j)
{
    pthread_mutex_lock(&p->mu);
    if (j->state == JOB_QUEUED) { /* never started: out of the queue, gone */
        cf_prefetch_job **at = &p->head, *prev = NULL;
        while (*at != j) {
            prev = *at;
            at = &(*at)->next;
        }
        *at = j->next;
        if (p->tail == j)
            p->tail = prev;
        free_job(j);
    } else if (j->state == JOB_RUNNING) {
        j->abandoned = 1; /* the worker frees it */
    } else {
        free_job(j);
    }
    pthread_mutex_unlock(&p->mu);
}
