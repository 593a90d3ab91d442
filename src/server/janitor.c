/*
 * janitor.c - the server's housekeeping thread: aborts multipart uploads older than the
 * configured age (S3 leaves that to a lifecycle rule; a self-hosted store must not fill its
 * disk with parts of uploads whose clients died).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "server/request.h"
#include "server/janitor.h"

static void sweep(cf_server *srv)
{
    cf_err err;
    size_t aborted = 0;
    int64_t cutoff = cf_clock_now_ns() - srv->multipart_expiry_s * (int64_t)1000000000;
    if (cf_store_upload_expire(srv->store, cutoff, &aborted, &err) != 0) {
        cf_log(&srv->log, CF_LOG_ERROR, "aborting stale multipart uploads failed", "error", err.msg, NULL);
        return;
    }
    if (aborted) {
        char n[24];
        snprintf(n, sizeof n, "%zu", aborted);
        cf_log(&srv->log, CF_LOG_INFO, "aborted stale multipart uploads", "count", n, NULL);
    }
}

static void *janitor_main(void *arg)
{
    cf_server *srv = arg;
    /* Sweep at a tenth of the age (at most hourly), so an upload outlives it by 10% at most. */
    int64_t interval = srv->multipart_expiry_s / 10;
    if (interval < 1)
        interval = 1;
    if (interval > 3600)
        interval = 3600;
    pthread_mutex_lock(&srv->janitor_mu);
    while (!srv->janitor_stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += interval;
        while (!srv->janitor_stop &&
               pthread_cond_timedwait(&srv->janitor_cv, &srv->janitor_mu, &until) != ETIMEDOUT)
            ;
        if (srv->janitor_stop)
            break;
        pthread_mutex_unlock(&srv->janitor_mu);
        sweep(srv);
        pthread_mutex_lock(&srv->janitor_mu);
    }
    pthread_mutex_unlock(&srv->janitor_mu);
    return NULL;
}

int cf_janitor_start(cf_server *srv)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->janitor_cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&srv->janitor_mu, NULL);
    srv->janitor_stop = 0;
    sweep(srv); /* uploads that went stale while the server was down */
    int e = pthread_create(&srv->janitor, NULL, janitor_main, srv);
    srv->janitor_running = e == 0;
    return e ? CF_EIO : 0;
}

void cf_janitor_stop(cf_server *srv)
{
    if (!srv->janitor_running)
        return;
    pthread_mutex_lock(&srv->janitor_mu);
    srv->janitor_stop = 1;
    pthread_cond_signal(&srv->janitor_cv);
    pthread_mutex_unlock(&srv->janitor_mu);
    pthread_join(srv->janitor, NULL);
    srv->janitor_running = 0;
    pthread_cond_destroy(&srv->janitor_cv);
    pthread_mutex_destroy(&srv->janitor_mu);
}
