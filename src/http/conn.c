/*
 * conn.c - deadlines libmicrohttpd does not have: the whole request header section within a
 * time limit, and a request body at a minimum rate.
 *
 * libmicrohttpd only closes a connection that has been idle for its timeout, so a client that
 * sends one header byte every few seconds holds a connection forever. Every connection is
 * tracked here from libmicrohttpd's "started" notification to its "closed" one, and a reaper
 * thread looks at them twice a second:
 *
 * - waiting for a request: once bytes of it have arrived (the kernel's count of bytes received
 *   on the socket, TCP_INFO, has grown since the previous request ended), the header section
 *   must be complete within header_timeout. A connection that sends nothing is left to the
 *   idle timeout.
 * - receiving a body: over each window of body_window seconds at least min_body_rate bytes per
 *   second must arrive.
 * - otherwise (the handler runs, the response is being sent): no deadline here.
 *
 * A late connection's socket is shut down (not closed): libmicrohttpd sees the end of the
 * stream and closes it as any other. The table's lock makes that safe: libmicrohttpd reports a
 * connection closed (and it leaves the table under the lock) before it close()s the socket, so
 * a socket found in the table cannot have been closed and its number reused for another.
 */
#include <errno.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received (glibc's lacks it) */
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "http/internal.h"

#define REAPER_TICK_MS 500
#define TCP_STATE_ESTABLISHED 1 /* tcpi_state; the kernel's include/net/tcp_states.h */

enum { PHASE_AWAITING, PHASE_BODY, PHASE_BUSY };

struct cf_http_conn {
    cf_conn *prev, *next;
    int fd;
    /* Written by the connection's event thread, read by the reaper. */
    _Atomic int phase;
    _Atomic unsigned gen;        /* bumped at each phase change */
    _Atomic uint64_t body_bytes; /* bytes of the body received so far */
    /* The reaper's own view, reset whenever gen moved. */
    unsigned seen_gen;
    int have_mark;
    uint64_t tcp_mark; /* bytes received on the socket when the request was awaited */
    double since;      /* header clock start, or body window start; 0 = not started */
    uint64_t window_bytes;
    uint64_t last_body; /* body bytes at the previous look */
    int stale_ticks;    /* looks in a row with the peer gone and no progress */
    int shut;
};

struct cf_conns {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cf_conn *head;
    size_t count;
    int stop;
    pthread_t reaper;
    int reaper_running;
    double header_timeout;
    double body_window;
    uint64_t min_body_rate;
    cf_logger log;
    _Atomic uint64_t closed_headers, closed_slow_body;
};

static int tcp_state(int fd, struct tcp_info *ti)
{
    socklen_t len = sizeof *ti;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti->tcpi_bytes_received)
        return -1;
    return 0;
}

static void shut(cf_conns *t, cf_conn *c, const char *why, _Atomic uint64_t *counter)
{
    c->shut = 1;
    shutdown(c->fd, SHUT_RDWR);
    if (counter) {
        cf_log(&t->log, CF_LOG_WARN, "connection closed", "reason", why, NULL);
        atomic_fetch_add(counter, 1);
    }
}

static void inspect(cf_conns *t, cf_conn *c, double now)
{
    unsigned gen = atomic_load(&c->gen);
    int phase = atomic_load(&c->phase);
    uint64_t body = atomic_load(&c->body_bytes);
    struct tcp_info ti;
    if (phase == PHASE_BUSY || tcp_state(c->fd, &ti) != 0)
        return;
    /* A peer that sent its last bytes and FIN together can leave libmicrohttpd's
     * edge-triggered epoll loop without a wake-up for the end of the stream (it reads the data
     * in a short read and never reads again): a connection whose peer is gone and that made no
     * progress since the last look is shut down so that the loop notices. */
    if (ti.tcpi_state != TCP_STATE_ESTABLISHED && gen == c->seen_gen && body == c->last_body) {
        if (++c->stale_ticks >= 2) {
            shut(t, c, "peer closed", NULL);
            return;
        }
    } else {
        c->stale_ticks = 0;
    }
    c->last_body = body;
    if (gen != c->seen_gen) {
        c->seen_gen = gen;
        c->since = 0;
        c->have_mark = 0;
        c->window_bytes = 0;
    }
    switch (phase) {
    case PHASE_AWAITING:
        if (t->header_timeout <= 0)
            return;
        if (!c->have_mark) {
            /* A new connection has received nothing yet; after a keep-alive request what
             * arrived up to now counts as that request's (pipelined bytes start no clock). */
            c->tcp_mark = gen == 0 ? 0 : ti.tcpi_bytes_received;
            c->have_mark = 1;
        }
        if (!c->since && ti.tcpi_bytes_received > c->tcp_mark)
            c->since = now;
        if (c->since && now - c->since >= t->header_timeout)
            shut(t, c, "headers not complete in time", &t->closed_headers);
        return;
    case PHASE_BODY:
        if (!t->min_body_rate || t->body_window <= 0)
            return;
        if (!c->since) {
            c->since = now;
            c->window_bytes = body;
            return;
        }
        if (now - c->since >= t->body_window) {
            if ((double)(body - c->window_bytes) < (double)t->min_body_rate * (now - c->since)) {
                shut(t, c, "body slower than the minimum rate", &t->closed_slow_body);
                return;
            }
            c->since = now;
            c->window_bytes = body;
        }
        return;
    default: return;
    }
}

static void *reaper_main(void *arg)
{
    cf_conns *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)REAPER_TICK_MS * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &until) != ETIMEDOUT)
            ;
        if (t->stop)
            break;
        double now = cf_clock_mono();
        for (cf_conn *c = t->head; c; c = c->next)
            if (!c->shut)
                inspect(t, c, now);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int cf_conns_start(double header_timeout, uint64_t min_body_rate, double body_window, const cf_logger *log,
                   cf_conns **out)
{
    cf_conns *t = calloc(1, sizeof *t);
    if (!t)
        return CF_ENOMEM;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&t->mu, NULL);
    t->header_timeout = header_timeout;
    if (log)
        t->log = *log;
    t->min_body_rate = min_body_rate;
    t->body_window = body_window;
    if (pthread_create(&t->reaper, NULL, reaper_main, t) != 0) {
        cf_conns_stop(t);
        return CF_EIO;
    }
    t->reaper_running = 1;
    *out = t;
    return 0;
}

void cf_conns_stop(cf_conns *t)
{
    if (!t)
        return;
    if (t->reaper_running) {
        pthread_mutex_lock(&t->mu);
        t->stop = 1;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->reaper, NULL);
    }
    /* Connections still listed were never reported closed: the daemon is gone, free them. */
    for (cf_conn *c = t->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

void cf_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
    cf_conns *t = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        cf_conn *c = fd ? calloc(1, sizeof *c) : NULL;
        *socket_context = c;
        if (!c)
            return; /* untracked: only the idle timeout applies to it */
        c->fd = fd->connect_fd;
        pthread_mutex_lock(&t->mu);
        c->next = t->head;
        if (t->head)
            t->head->prev = c;
        t->head = c;
        t->count++;
        pthread_mutex_unlock(&t->mu);
        return;
    }
    cf_conn *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&t->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        t->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    t->count--;
    pthread_mutex_unlock(&t->mu);
    free(c);
    *socket_context = NULL;
}

cf_conn *cf_conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

static void set_phase(cf_conn *c, int phase)
{
    if (!c)
        return;
    atomic_store(&c->phase, phase);
    atomic_fetch_add(&c->gen, 1);
}

void cf_conn_headers_received(cf_conn *c)
{
    if (c)
        atomic_store(&c->body_bytes, 0);
    set_phase(c, PHASE_BODY);
}

void cf_conn_body_received(cf_conn *c, size_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->body_bytes, n, memory_order_relaxed);
}

void cf_conn_body_complete(cf_conn *c)
{
    set_phase(c, PHASE_BUSY);
}

void cf_conn_request_done(cf_conn *c)
{
    set_phase(c, PHASE_AWAITING);
}

int cf_conns_render(cf_conns *t, cf_buf *b)
{
    pthread_mutex_lock(&t->mu);
    size_t open = t->count;
    pthread_mutex_unlock(&t->mu);
    return cf_buf_printf(
        b,
        "# HELP coffer_http_connections Open HTTP connections.\n"
        "# TYPE coffer_http_connections gauge\n"
        "coffer_http_connections %zu\n"
        "# HELP coffer_http_connections_closed_total Connections the server closed for a limit.\n"
        "# TYPE coffer_http_connections_closed_total counter\n"
        "coffer_http_connections_closed_total{reason=\"header_timeout\"} %llu\n"
        "coffer_http_connections_closed_total{reason=\"slow_body\"} %llu\n",
        open, (unsigned long long)atomic_load(&t->closed_headers),
        (unsigned long long)atomic_load(&t->closed_slow_body));
}
