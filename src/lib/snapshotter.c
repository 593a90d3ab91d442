/*
 * snapshotter.c - coffer_snapshotter and coffer_bootstrap (include/coffer/coffer.h): the
 * snapshot manager of a replicated log's partition, built on libcoffer's public calls only, so
 * that it behaves exactly as an application using the library would.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coffer/coffer.h"
#include "core/clock.h"
#include "core/log.h"
#include "lib.h"

#define DEFAULT_LOG_THRESHOLD 10000
#define DEFAULT_TIME_THRESHOLD_MS (3600 * 1000ull)
#define DEFAULT_CHECK_INTERVAL_MS (300 * 1000ull)
#define DEFAULT_MAX_CONCURRENT 2
#define DEFAULT_UPLOAD_THREADS 2
#define DEFAULT_RETENTION 3
#define DEFAULT_RETRY_INITIAL_MS 1000ull
#define DEFAULT_RETRY_MAX_MS (300 * 1000ull)

/* A snapshotter waiting for a slot, in the order they asked; lives on the waiter's stack. */
typedef struct slot_waiter {
    struct slot_waiter *next;
    int granted; /* a slot was handed over to it */
} slot_waiter;

struct coffer_snapshot_limit {
    pthread_mutex_t mu;
    pthread_cond_t changed; /* a slot was handed over, or a waiter's snapshotter stops */
    unsigned max, used;
    slot_waiter *head, *tail;
    unsigned holders; /* snapshotters given this limit and not yet freed */
    int freed;        /* coffer_snapshot_limit_free came while holders > 0 */
};

struct coffer_snapshotter {
    coffer_repo *repo;
    coffer_snapshot_limit *limit;
    char ns[16];
    coffer_snapshotter_options o; /* with defaults and the environment applied */
    char *topic, *node_id, *tmp_dir;
    coffer_compression codec;

    pthread_t thread;   /* written under mu before the thread can take it: its callbacks' stop reads
                         * it to tell whether it runs on the thread it would join */
    pthread_mutex_t mu; /* guards what follows it, down to stats */
    pthread_cond_t wake;
    pthread_cond_t joined_cv; /* joined became 2 */
    int joined;               /* 0; 1: a stop is joining the thread; 2: it has ended */
    int triggered;
    uint64_t last_time_ms; /* monotonic: the last snapshot stored, or the start */
    uint64_t retry_at_ms, backoff_ms;
    coffer_snapshotter_stats stats;

    _Atomic uint64_t applied;
    /* The newest snapshot's index: stats.last_index, or at the start the partition's newest
     * listed; readable without the lock. */
    _Atomic uint64_t snapshot_index;
    atomic_int cancel;
    /* stop came: the thread ends, and a wait for the limit's slot gives up. Atomic for that
     * wait, which reads it under the limit's lock only; set under mu, so the thread's own
     * waits on wake cannot miss it. */
    atomic_int stopping;
};

static uint64_t mono_ms(void)
{
    return (uint64_t)(cf_clock_mono() * 1000.0);
}

/* ---- configuration ---- */

/* A decimal number written by this library or an operator: digits only (strtoull alone would
 * also take " -5" as 2^64 - 5, "+5" and leading blanks) and within 64 bits (strtoull would
 * otherwise clamp to 2^64 - 1). Parses environment variables and the labels of listed
 * snapshots alike. 0, or -1 (s NULL, not such a number). */
static int parse_u64(const char *s, uint64_t *v)
{
    if (!s || !*s)
        return -1;
    for (const char *c = s; *c; c++)
        if (*c < '0' || *c > '9')
            return -1;
    errno = 0;
    unsigned long long n = strtoull(s, NULL, 10);
    if (errno)
        return -1;
    *v = n;
    return 0;
}

static int env_u64(const char *name, uint64_t scale, uint64_t *v, coffer_error *e)
{
    const char *s = getenv(name);
    if (!s)
        return COFFER_OK;
    uint64_t n;
    if (parse_u64(s, &n) || n == 0 || n > UINT64_MAX / scale) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s='%.40s' is not a positive whole number", name, s);
        return cf_lib_fail(e, COFFER_EINVAL, msg);
    }
    *v = n * scale;
    return COFFER_OK;
}

static int codec_parse(const char *s)
{
    static const char *const names[] = {"zstd", "lz4", "gzip", "none"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i]))
            return i + 1;
    return -1;
}

static int apply_environment(coffer_snapshotter_options *o, coffer_error *e)
{
    int st;
    /* COFFER_SNAPSHOT_MAX_CONCURRENT is the size of a node's limit: coffer_snapshot_limit_new's. */
    if ((st = env_u64("COFFER_SNAPSHOT_LOG_THRESHOLD", 1, &o->log_size_threshold, e)) ||
        (st = env_u64("COFFER_SNAPSHOT_TIME_THRESHOLD_SECS", 1000, &o->time_threshold_ms, e)) ||
        (st = env_u64("COFFER_SNAPSHOT_CHECK_INTERVAL_SECS", 1000, &o->check_interval_ms, e)))
        return st;
    const char *c = getenv("COFFER_SNAPSHOT_COMPRESSION");
    if (c) {
        if ((o->compression = codec_parse(c)) < 0)
            return cf_lib_fail(e, COFFER_EINVAL, "COFFER_SNAPSHOT_COMPRESSION: gzip, zstd, lz4 or none");
    }
    const char *r = getenv("COFFER_SNAPSHOT_RETENTION_COUNT");
    if (r) {
        uint64_t n;
        if (parse_u64(r, &n) || n > 1000000)
            return cf_lib_fail(e, COFFER_EINVAL,
                               "COFFER_SNAPSHOT_RETENTION_COUNT: a number from 0 (keep all) to 1000000");
        o->retention_count = n ? (int)n : -1;
    }
    return COFFER_OK;
}

static int configure(const coffer_snapshotter_options *given, coffer_snapshotter_options *o, coffer_error *e)
{
    if (!given) {
        memset(o, 0, sizeof *o);
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_snapshotter_new: options with write_state are needed");
    }
    int st = cf_lib_copy_options(o, sizeof *o, given, "coffer_snapshotter_options", e);
    if (st)
        return st;
    if (!o->write_state)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_snapshotter_options: write_state is required");
    if (o->compression < 0 || o->compression > COFFER_COMPRESSION_NONE + 1 || o->retention_count < -1)
        return cf_lib_fail(e, COFFER_EINVAL,
                           "coffer_snapshotter_options: compression or retention_count out of range");
    if ((o->topic && !cf_lib_text_valid(o->topic)) || (o->node_id && !cf_lib_text_valid(o->node_id)))
        return cf_lib_fail(
            e, COFFER_EINVAL,
            "coffer_snapshotter_options: topic and node_id (labels of the manifests) must be valid UTF-8");
    if (o->use_environment && (st = apply_environment(o, e)))
        return st;
    if (!o->log_size_threshold)
        o->log_size_threshold = DEFAULT_LOG_THRESHOLD;
    if (!o->time_threshold_ms)
        o->time_threshold_ms = DEFAULT_TIME_THRESHOLD_MS;
    if (!o->check_interval_ms)
        o->check_interval_ms = DEFAULT_CHECK_INTERVAL_MS;
    if (!o->upload_threads)
        o->upload_threads =
            o->max_concurrent_snapshots ? o->max_concurrent_snapshots : DEFAULT_UPLOAD_THREADS;
    if (!o->retention_count)
        o->retention_count = DEFAULT_RETENTION;
    if (!o->retry_initial_ms)
        o->retry_initial_ms = DEFAULT_RETRY_INITIAL_MS;
    if (!o->retry_max_ms)
        o->retry_max_ms = DEFAULT_RETRY_MAX_MS;
    if (o->retry_max_ms < o->retry_initial_ms)
        o->retry_max_ms = o->retry_initial_ms;
    return COFFER_OK;
}

/* ---- the limit shared by a node's snapshotters ---- */

int coffer_snapshot_limit_new(unsigned max, int use_environment, coffer_snapshot_limit **out, coffer_error *e)
{
    if (!out)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_snapshot_limit_new: out is needed");
    uint64_t v = max ? max : DEFAULT_MAX_CONCURRENT;
    int from_env = use_environment && getenv("COFFER_SNAPSHOT_MAX_CONCURRENT");
    if (from_env) {
        int st = env_u64("COFFER_SNAPSHOT_MAX_CONCURRENT", 1, &v, e);
        if (st)
            return st;
    }
    if (v > COFFER_SNAPSHOT_LIMIT_MAX) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: at most %d",
                 from_env ? "COFFER_SNAPSHOT_MAX_CONCURRENT" : "coffer_snapshot_limit_new: max",
                 COFFER_SNAPSHOT_LIMIT_MAX);
        return cf_lib_fail(e, COFFER_EINVAL, msg);
    }
    coffer_snapshot_limit *l = calloc(1, sizeof *l);
    if (!l)
        return cf_lib_fail(e, COFFER_ENOMEM, "out of memory");
    l->max = (unsigned)v;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->changed, NULL);
    *out = l;
    cf_lib_fail(e, COFFER_OK, "");
    return COFFER_OK;
}

static void limit_destroy(coffer_snapshot_limit *l)
{
    pthread_cond_destroy(&l->changed);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void coffer_snapshot_limit_free(coffer_snapshot_limit *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    int in_use = l->holders > 0;
    l->freed = 1;
    pthread_mutex_unlock(&l->mu);
    if (!in_use)
        limit_destroy(l);
}

static void limit_hold(coffer_snapshot_limit *l)
{
    pthread_mutex_lock(&l->mu);
    l->holders++;
    pthread_mutex_unlock(&l->mu);
}

/* The last snapshotter of a limit the application already freed frees it. */
static void limit_release(coffer_snapshot_limit *l)
{
    pthread_mutex_lock(&l->mu);
    int last = --l->holders == 0 && l->freed;
    pthread_mutex_unlock(&l->mu);
    if (last)
        limit_destroy(l);
}

/* Takes a slot, waiting in line for one; 1 with it, 0 when *give_up was set first (and the
 * limit's condition broadcast: slot_wake_all). */
static int slot_take(coffer_snapshot_limit *l, const atomic_int *give_up)
{
    pthread_mutex_lock(&l->mu);
    if (!l->head && l->used < l->max) {
        l->used++;
        pthread_mutex_unlock(&l->mu);
        return 1;
    }
    slot_waiter me = {NULL, 0};
    if (l->tail)
        l->tail->next = &me;
    else
        l->head = &me;
    l->tail = &me;
    while (!me.granted && !atomic_load(give_up))
        pthread_cond_wait(&l->changed, &l->mu);
    if (!me.granted) {
        slot_waiter **p = &l->head, *prev = NULL;
        while (*p != &me)
            prev = *p, p = &(*p)->next;
        *p = me.next;
        if (l->tail == &me)
            l->tail = prev;
    }
    pthread_mutex_unlock(&l->mu);
    return me.granted;
}

/* Gives a slot back: to the first in line, so that none waits forever behind later arrivals. */
static void slot_give(coffer_snapshot_limit *l)
{
    pthread_mutex_lock(&l->mu);
    slot_waiter *w = l->head;
    if (w) {
        l->head = w->next;
        if (!l->head)
            l->tail = NULL;
        w->granted = 1;
        pthread_cond_broadcast(&l->changed);
    } else {
        l->used--;
    }
    pthread_mutex_unlock(&l->mu);
}

static void slot_wake_all(coffer_snapshot_limit *l)
{
    pthread_mutex_lock(&l->mu);
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->mu);
}

/* ---- one snapshot ---- */

typedef struct stage {
    int fd;
    coffer_snapshotter *s;
    int failed;     /* the status write last failed with (0: none) */
    int failed_err; /* and the system's reason */
} stage;

static int stage_write(void *ctx, const void *p, size_t n)
{
    stage *st = ctx;
    if (atomic_load(&st->s->cancel))
        return COFFER_EABORTED;
    const char *c = p;
    while (n) {
        ssize_t w = write(st->fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            st->failed_err = errno;
            st->failed = errno == ENOSPC || errno == EDQUOT ? COFFER_ENOSPACE : COFFER_EIO;
            return st->failed;
        }
        c += w;
        n -= (size_t)w;
    }
    return COFFER_OK;
}

static int stage_open(const coffer_snapshotter *s, coffer_error *e)
{
    int fd = open(s->tmp_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        /* O_TMPFILE is not on every file system: a named file, unlinked at once. */
        char path[4200];
        snprintf(path, sizeof path, "%s/coffer-state-XXXXXX", s->tmp_dir);
        fd = mkstemp(path);
        if (fd >= 0)
            unlink(path);
    }
    if (fd < 0) {
        char msg[400];
        snprintf(msg, sizeof msg, "cannot stage the state in %.200s: %s", s->tmp_dir, strerror(errno));
        cf_lib_fail(e, COFFER_EIO, msg);
        return -1;
    }
    return fd;
}

/* Uploads what fd holds as a stream snapshot labelled with index and term. Straight from the
 * file: the labels are known once the state is staged, so no writer (a pipe, a thread, a copy
 * of every byte) is needed; stop with cancel ends the upload between two reads. */
static int upload(coffer_snapshotter *s, int fd, uint64_t index, uint64_t term, coffer_result *res,
                  coffer_error *e)
{
    char idx[24], trm[24];
    snprintf(idx, sizeof idx, "%" PRIu64, index);
    snprintf(trm, sizeof trm, "%" PRIu64, term);
    coffer_label labels[] = {
        {"index", idx}, {"term", trm}, {"node_id", s->node_id}, {"topic", s->topic}, {"partition", s->ns}};
    off_t size = lseek(fd, 0, SEEK_END);
    coffer_create_options co = {.struct_size = sizeof co,
                                .compression = s->codec,
                                .threads = s->o.upload_threads,
                                .expected_size = size > 0 ? (uint64_t)size : 0,
                                .labels = labels,
                                .nlabels = sizeof labels / sizeof labels[0]};
    if (lseek(fd, 0, SEEK_SET) < 0)
        return cf_lib_fail(e, COFFER_EIO, "cannot read the staged state back");
    int st = cf_lib_create_fd_cancellable(s->repo, s->ns, fd, &co, &s->cancel, res, e);
    if (st == COFFER_EABORTED)
        cf_lib_fail(e, st, "snapshot cancelled by coffer_snapshotter_stop");
    return st;
}

/* State, upload, truncation, retention; fills the stats, and *stored once the snapshot is. Called
 * without the lock. */
static int take(coffer_snapshotter *s, int *stored, coffer_error *e)
{
    uint64_t t0 = mono_ms();
    stage sg = {stage_open(s, e), s, 0, 0};
    if (sg.fd < 0)
        return COFFER_EIO;
    uint64_t index = 0, term = 0;
    int st = s->o.write_state(s->o.ctx, stage_write, &sg, &index, &term);
    if (st) {
        if (st > 0)
            st = COFFER_ECALLBACK;
        char msg[400];
        if (st == sg.failed) /* what write returned: say why, and where */
            snprintf(msg, sizeof msg,
                     "the application's write_state failed: cannot stage the state in %.200s: %s", s->tmp_dir,
                     strerror(sg.failed_err));
        else
            snprintf(msg, sizeof msg, "the application's write_state failed: %s", coffer_strerror(st));
        cf_lib_fail(e, st, msg);
        close(sg.fd);
        return st;
    }
    uint64_t newest = atomic_load(&s->snapshot_index);
    if (index < newest) {
        /* Stored, it would be listed as the newest, and retention would remove newer states. */
        char msg[200];
        snprintf(msg, sizeof msg,
                 "write_state reported index %" PRIu64 ", below the newest snapshot's %" PRIu64
                 ": not stored",
                 index, newest);
        cf_lib_fail(e, COFFER_EINVAL, msg);
        close(sg.fd);
        return COFFER_EINVAL;
    }
    coffer_result res = {.struct_size = sizeof res};
    st = upload(s, sg.fd, index, term, &res, e);
    close(sg.fd);
    if (st)
        return st;
    char idx[24];
    snprintf(idx, sizeof idx, "%" PRIu64, index);
    const cf_logger *lg = cf_lib_logger(s->repo);
    cf_log(lg, CF_LOG_INFO, "snapshotter: snapshot stored", "namespace", s->ns, "id", res.id, "index", idx,
           (char *)NULL);

    pthread_mutex_lock(&s->mu);
    s->stats.taken++;
    s->stats.last_index = index;
    s->stats.last_term = term;
    snprintf(s->stats.last_id, sizeof s->stats.last_id, "%s", res.id);
    atomic_store(&s->snapshot_index, index);
    pthread_mutex_unlock(&s->mu);
    *stored = 1;

    /* Only now, with the manifest stored, may the entries it covers go. */
    int late = COFFER_OK;
    if (s->o.truncate_log) {
        int tr = s->o.truncate_log(s->o.ctx, index);
        if (tr) {
            late = tr > 0 ? COFFER_ECALLBACK : tr;
            char msg[200];
            snprintf(msg, sizeof msg, "snapshot %s stored, but truncate_log(%" PRIu64 ") failed: %s", res.id,
                     index, coffer_strerror(late));
            cf_lib_fail(e, late, msg);
            cf_log(lg, CF_LOG_WARN, "snapshotter: log not truncated", "namespace", s->ns, "index", idx,
                   "error", coffer_strerror(late), (char *)NULL);
        } else {
            pthread_mutex_lock(&s->mu);
            s->stats.truncated_through = index;
            pthread_mutex_unlock(&s->mu);
        }
    }
    if (s->o.retention_count > 0) {
        coffer_retention keep = {.struct_size = sizeof keep, .keep_last = s->o.retention_count};
        coffer_error pe;
        int pr = coffer_prune(s->repo, s->ns, &keep, NULL, &pe);
        if (pr) {
            cf_log(lg, CF_LOG_WARN, "snapshotter: retention failed", "namespace", s->ns, "error", pe.message,
                   (char *)NULL);
            if (!late) {
                late = pr;
                if (e)
                    *e = pe; /* with the S3 answer behind it */
            }
        }
    }
    pthread_mutex_lock(&s->mu);
    s->stats.last_duration_ms = mono_ms() - t0;
    pthread_mutex_unlock(&s->mu);
    return late ? late : COFFER_OK;
}

/* ---- the thread ---- */

/* Intervals may be near 2^64 ms ("practically never"): a wrapped sum would lie in the past and
 * make the thread spin. */
static uint64_t add_ms(uint64_t a, uint64_t b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

static int due(const coffer_snapshotter *s, uint64_t now)
{
    uint64_t applied = atomic_load(&s->applied), last = atomic_load(&s->snapshot_index);
    if (s->triggered)
        return 1;
    if (applied <= last)
        return 0;
    return applied - last >= s->o.log_size_threshold || now - s->last_time_ms >= s->o.time_threshold_ms;
}

static void wait_until(coffer_snapshotter *s, uint64_t deadline_ms)
{
    uint64_t now = mono_ms();
    if (deadline_ms <= now)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (deadline_ms - now) % 1000 * 1000000ull;
    ts.tv_sec += (time_t)((deadline_ms - now) / 1000 + ns / 1000000000ull);
    ts.tv_nsec = (long)(ns % 1000000000ull);
    pthread_cond_timedwait(&s->wake, &s->mu, &ts);
}

static const char *label_of(const coffer_snapshot_info *si, const char *key)
{
    for (size_t i = 0; i < si->nlabels; i++)
        if (!strcmp(si->labels[i].key, key))
            return si->labels[i].value;
    return NULL;
}

/* A restarted node's entries count from the partition's newest snapshot, not from 0: without
 * this, every restart past the threshold would snapshot at once. */
static void baseline_from_repository(coffer_snapshotter *s)
{
    coffer_snapshot_info *list;
    size_t n;
    coffer_error e;
    if (coffer_list(s->repo, s->ns, &list, &n, &e)) {
        cf_log(cf_lib_logger(s->repo), CF_LOG_WARN, "snapshotter: cannot list the partition's snapshots",
               "namespace", s->ns, "error", e.message, (char *)NULL);
        return;
    }
    for (size_t k = n; k-- > 0;) {
        uint64_t index;
        if (!parse_u64(label_of(&list[k], "index"), &index)) {
            atomic_store(&s->snapshot_index, index);
            break;
        }
    }
    coffer_list_free(list, n);
}

static void *run(void *arg)
{
    coffer_snapshotter *s = arg;
    const cf_logger *lg = cf_lib_logger(s->repo);
    baseline_from_repository(s);
    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->stopping)) {
        uint64_t now = mono_ms();
        if (!due(s, now) || now < s->retry_at_ms) {
            uint64_t next = add_ms(now, s->o.check_interval_ms);
            if (s->retry_at_ms > now && s->retry_at_ms < next)
                next = s->retry_at_ms;
            wait_until(s, next);
            continue;
        }
        if (s->limit) {
            /* Due: wait for the node's slot. What is applied and triggered meanwhile is in the
             * state written once it comes (the trigger is cleared only then). */
            s->stats.waiting_for_slot = 1;
            pthread_mutex_unlock(&s->mu);
            uint64_t asked = mono_ms();
            int got = slot_take(s->limit, &s->stopping);
            uint64_t waited = mono_ms() - asked;
            pthread_mutex_lock(&s->mu);
            s->stats.waiting_for_slot = 0;
            s->stats.slot_wait_ms = add_ms(s->stats.slot_wait_ms, waited);
            if (got && atomic_load(&s->stopping)) { /* stopped as the slot came: not taken after all */
                pthread_mutex_unlock(&s->mu);
                slot_give(s->limit);
                pthread_mutex_lock(&s->mu);
            }
            if (!got || atomic_load(&s->stopping))
                continue;
        }
        s->stats.in_flight = 1;
        /* Cleared now, not once stored: a trigger that comes during this snapshot asks for
         * another one. */
        int was_triggered = s->triggered;
        s->triggered = 0;
        pthread_mutex_unlock(&s->mu);
        coffer_error e = {0};
        int stored = 0;
        int st = take(s, &stored, &e);
        if (s->limit)
            slot_give(s->limit);
        int cancelled = st == COFFER_EABORTED && atomic_load(&s->cancel);
        /* Logged before taking the lock: a log function may call applied, trigger or stats. */
        if (cancelled)
            cf_log(lg, CF_LOG_INFO, "snapshotter: snapshot cancelled", "namespace", s->ns, (char *)NULL);
        else if (st)
            cf_log(lg, CF_LOG_WARN, "snapshotter: snapshot failed", "namespace", s->ns, "error", e.message,
                   (char *)NULL);
        pthread_mutex_lock(&s->mu);
        s->stats.in_flight = 0;
        now = mono_ms();
        if (cancelled)
            continue;
        if (st) {
            s->stats.failed++;
            s->stats.last_error = e;
        }
        if (!stored) {
            s->triggered |= was_triggered;
            s->retry_at_ms = add_ms(now, s->backoff_ms);
            s->backoff_ms = add_ms(s->backoff_ms, s->backoff_ms);
            if (s->backoff_ms > s->o.retry_max_ms)
                s->backoff_ms = s->o.retry_max_ms;
            continue;
        }
        /* Stored (even if truncation or retention then failed): the thresholds start over. */
        s->last_time_ms = now;
        s->retry_at_ms = 0;
        s->backoff_ms = s->o.retry_initial_ms;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- the public calls ---- */

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

int coffer_snapshotter_new(coffer_repo *repo, const coffer_snapshotter_options *options,
                           coffer_snapshotter **out, coffer_error *e)
{
    if (!repo || !out)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_snapshotter_new: a repository and out are needed");
    coffer_snapshotter *s = calloc(1, sizeof *s);
    if (!s)
        return cf_lib_fail(e, COFFER_ENOMEM, "out of memory");
    int st = configure(options, &s->o, e);
    if (st) {
        free(s);
        return st;
    }
    const char *tmp = s->o.tmp_dir ? s->o.tmp_dir : getenv("TMPDIR");
    const char *tmp_from = s->o.tmp_dir ? "coffer_snapshotter_options: tmp_dir" : "TMPDIR";
    if (tmp && *tmp && access(tmp, W_OK | X_OK)) {
        /* Said now, not as the failure of every snapshot to come. */
        char msg[400];
        snprintf(msg, sizeof msg, "%s '%.200s' is not a directory this process can write: %s", tmp_from, tmp,
                 strerror(errno));
        free(s);
        return cf_lib_fail(e, COFFER_EINVAL, msg);
    }
    s->repo = repo;
    s->limit = s->o.limit;
    snprintf(s->ns, sizeof s->ns, "%" PRIu32, s->o.partition);
    s->codec = s->o.compression ? (coffer_compression)(s->o.compression - 1) : COFFER_COMPRESSION_GZIP;
    s->topic = dup_or_empty(s->o.topic);
    s->node_id = dup_or_empty(s->o.node_id);
    s->tmp_dir = strdup(tmp && *tmp ? tmp : "/tmp");
    s->o.topic = s->o.node_id = s->o.tmp_dir = NULL; /* the copies above are what is used */
    s->backoff_ms = s->o.retry_initial_ms;
    s->last_time_ms = mono_ms();
    s->stats.struct_size = sizeof s->stats;
    if (!s->topic || !s->node_id || !s->tmp_dir) {
        st = COFFER_ENOMEM;
        cf_lib_fail(e, st, "out of memory");
        goto fail;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&s->joined_cv, NULL);
    pthread_mutex_init(&s->mu, NULL);
    cf_lib_repo_hold(repo);
    if (s->limit)
        limit_hold(s->limit);
    pthread_mutex_lock(&s->mu);
    int created = pthread_create(&s->thread, NULL, run, s);
    pthread_mutex_unlock(&s->mu);
    if (created) {
        if (s->limit)
            limit_release(s->limit);
        cf_lib_repo_release(repo);
        pthread_cond_destroy(&s->wake);
        pthread_cond_destroy(&s->joined_cv);
        pthread_mutex_destroy(&s->mu);
        st = COFFER_ENOMEM;
        cf_lib_fail(e, st, "cannot start the snapshotter's thread");
        goto fail;
    }
    cf_log(cf_lib_logger(repo), CF_LOG_DEBUG, "snapshotter: started", "namespace", s->ns, "topic", s->topic,
           (char *)NULL);
    *out = s;
    cf_lib_fail(e, COFFER_OK, "");
    return COFFER_OK;
fail:
    free(s->topic);
    free(s->node_id);
    free(s->tmp_dir);
    free(s);
    return st;
}

void coffer_snapshotter_applied(coffer_snapshotter *s, uint64_t index)
{
    if (!s)
        return;
    uint64_t prev = atomic_load(&s->applied);
    while (index > prev && !atomic_compare_exchange_weak(&s->applied, &prev, index))
        ;
    uint64_t last = atomic_load(&s->snapshot_index);
    /* Wake the thread on the crossing only, not on every entry after it. */
    if (index > last && index - last >= s->o.log_size_threshold &&
        (prev <= last || prev - last < s->o.log_size_threshold)) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->mu);
    }
}

void coffer_snapshotter_trigger(coffer_snapshotter *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->triggered = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

#define STATS_END(field) CF_LIB_FIELD_END(coffer_snapshotter_stats, field)
_Static_assert(offsetof(coffer_snapshotter_stats, taken) == sizeof(size_t), "struct_size comes first");
_Static_assert(STATS_END(slot_wait_ms) == sizeof(coffer_snapshotter_stats), "stats_get knows every field");

int coffer_snapshotter_stats_get(coffer_snapshotter *s, coffer_snapshotter_stats *out, coffer_error *e)
{
    if (!s || !out)
        return cf_lib_fail(e, COFFER_EINVAL,
                           "coffer_snapshotter_stats_get: a snapshotter and out are needed");
    int st = cf_lib_check_result(out, "coffer_snapshotter_stats", e);
    if (st)
        return st;
    pthread_mutex_lock(&s->mu);
    coffer_snapshotter_stats copy = s->stats;
    pthread_mutex_unlock(&s->mu);
    copy.applied = atomic_load(&s->applied);
    static const size_t ends[] = {STATS_END(taken),
                                  STATS_END(failed),
                                  STATS_END(last_index),
                                  STATS_END(last_term),
                                  STATS_END(last_duration_ms),
                                  STATS_END(applied),
                                  STATS_END(truncated_through),
                                  STATS_END(in_flight),
                                  STATS_END(last_id),
                                  STATS_END(last_error),
                                  STATS_END(waiting_for_slot),
                                  STATS_END(slot_wait_ms)};
    cf_lib_put_result(out, &copy, ends, sizeof ends / sizeof ends[0]);
    return cf_lib_fail(e, COFFER_OK, "");
}

/* Stops s; 0, or -1 when called on s's own thread (from a callback), which cannot join itself:
 * the thread is told to stop, and a later stop or free from elsewhere joins it. */
static int stop(coffer_snapshotter *s, int cancel)
{
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stopping, 1);
    if (cancel)
        atomic_store(&s->cancel, 1);
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    if (s->limit)
        slot_wake_all(s->limit); /* not under s->mu: the two locks are never held together */
    pthread_mutex_lock(&s->mu);
    if (pthread_equal(pthread_self(), s->thread)) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    if (s->joined == 0) {
        s->joined = 1;
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        pthread_mutex_lock(&s->mu);
        s->joined = 2;
        pthread_cond_broadcast(&s->joined_cv);
    }
    /* A second stop at the same time returns, like the first, only once the thread has ended. */
    while (s->joined != 2)
        pthread_cond_wait(&s->joined_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void coffer_snapshotter_stop(coffer_snapshotter *s, int cancel)
{
    if (s)
        stop(s, cancel);
}

void coffer_snapshotter_free(coffer_snapshotter *s)
{
    if (!s)
        return;
    if (stop(s, 0)) {
        cf_log(cf_lib_logger(s->repo), CF_LOG_ERROR,
               "coffer_snapshotter_free called from the snapshotter's own callback: stopped, not freed",
               "namespace", s->ns, (char *)NULL);
        return;
    }
    coffer_repo *repo = s->repo;
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->joined_cv);
    pthread_mutex_destroy(&s->mu);
    free(s->topic);
    free(s->node_id);
    free(s->tmp_dir);
    if (s->limit)
        limit_release(s->limit);
    free(s);
    cf_lib_repo_release(repo);
}

/* ---- bootstrap ---- */

typedef struct delivery {
    coffer_progress_fn progress; /* the application's */
    void *progress_ctx;
    uint64_t delivered;
} delivery;

/* The engine reports progress as it hands each block over: done > 0 means bytes went out. */
static void count_delivered(void *ctx, uint64_t done, uint64_t total)
{
    delivery *d = ctx;
    d->delivered = done;
    if (d->progress)
        d->progress(d->progress_ctx, done, total);
}

/* Restores id into the destination; COFFER_EDIGEST / COFFER_ECORRUPT when it is damaged;
 * *delivered set when part of it already reached a callback or fd. */
static int restore_one(coffer_repo *repo, const char *ns, const char *id, const coffer_bootstrap_options *o,
                       int *delivered, coffer_error *e)
{
    if (o->dest_dir) {
        char dest[4200];
        snprintf(dest, sizeof dest, "%s/state", o->dest_dir);
        char tmp[4300];
        /* A name nobody can guess and a file made here (O_EXCL): whoever can write dest_dir
         * cannot plant a symlink at it and have the restore write through it. */
        snprintf(tmp, sizeof tmp, "%s/.state.%s.XXXXXX", o->dest_dir, id);
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
            char msg[4400];
            snprintf(msg, sizeof msg, "cannot create %.4000s: %s", tmp, strerror(errno));
            return cf_lib_fail(e, COFFER_EIO, msg);
        }
        int st = coffer_restore_fd(repo, ns, id, fd, o->restore, NULL, e);
        if (!st && fsync(fd))
            st = cf_lib_fail(e, COFFER_EIO, "cannot sync the restored state");
        close(fd);
        if (!st && rename(tmp, dest))
            st = cf_lib_fail(e, COFFER_EIO, "cannot rename the restored state into place");
        if (st)
            unlink(tmp);
        return st;
    }
    int st = coffer_verify(repo, ns, id, o->restore, e);
    if (st)
        return st;
    /* The snapshot can still turn out damaged while it is handed over (it changed since the
     * verification, or the network flipped bits): from the first byte delivered on, the caller
     * holds part of it, and an older snapshot must not follow as if it continued it. */
    coffer_restore_options ro;
    if ((st = cf_lib_copy_options(&ro, sizeof ro, o->restore, "coffer_restore_options", e)))
        return st;
    delivery d = {ro.progress, ro.progress_ctx, 0};
    ro.progress = count_delivered;
    ro.progress_ctx = &d;
    st = o->write ? coffer_restore_cb(repo, ns, id, o->write, o->write_ctx, &ro, NULL, e)
                  : coffer_restore_fd(repo, ns, id, o->fd, &ro, NULL, e);
    if (st && d.delivered) {
        *delivered = 1;
        char msg[sizeof e->message];
        snprintf(msg, sizeof msg, "%.300s (after %" PRIu64 " bytes were delivered: discard them)",
                 e ? e->message : coffer_strerror(st), d.delivered);
        cf_lib_fail(e, st, msg);
    }
    return st;
}

#define BOOT_END(field) CF_LIB_FIELD_END(coffer_bootstrap_result, field)
_Static_assert(offsetof(coffer_bootstrap_result, id) == sizeof(size_t), "struct_size comes first");
_Static_assert(BOOT_END(skipped) == sizeof(coffer_bootstrap_result), "put_boot_result knows every field");

static void put_boot_result(coffer_bootstrap_result *out, const coffer_bootstrap_result *what)
{
    static const size_t ends[] = {BOOT_END(id), BOOT_END(index), BOOT_END(term), BOOT_END(fell_back),
                                  BOOT_END(skipped)};
    cf_lib_put_result(out, what, ends, sizeof ends / sizeof ends[0]);
}

static int bootstrap(coffer_repo *repo, const char *ns, const coffer_bootstrap_options *o,
                     coffer_bootstrap_result *result, coffer_error *e);

int coffer_bootstrap(coffer_repo *repo, uint32_t partition, const coffer_bootstrap_options *options,
                     coffer_bootstrap_result *result, coffer_error *e)
{
    coffer_bootstrap_options o;
    if (!repo || !options || !result)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_bootstrap: a repository, options and result are needed");
    int st = cf_lib_check_result(result, "coffer_bootstrap_result", e);
    if (!st)
        st = cf_lib_copy_options(&o, sizeof o, options, "coffer_bootstrap_options", e);
    if (st)
        return st;
    if (!!o.dest_dir + !!o.write + !!o.use_fd != 1)
        return cf_lib_fail(e, COFFER_EINVAL,
                           "coffer_bootstrap_options: exactly one of dest_dir, write, use_fd");
    /* Before the listing and the download: found at the end, after the download (fd) or in
     * the root directory ("" + "/state"), would be too late. */
    if (o.dest_dir && !*o.dest_dir)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_bootstrap_options: dest_dir is empty");
    if (o.use_fd && o.fd < 0)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_bootstrap_options: fd is negative");
    char ns[16];
    snprintf(ns, sizeof ns, "%" PRIu32, partition);
    coffer_bootstrap_result mine = {.struct_size = sizeof mine};
    st = bootstrap(repo, ns, &o, &mine, e);
    put_boot_result(result, &mine);
    return st;
}

static int bootstrap(coffer_repo *repo, const char *ns, const coffer_bootstrap_options *o,
                     coffer_bootstrap_result *result, coffer_error *e)
{
    const cf_logger *lg = cf_lib_logger(repo);
    coffer_snapshot_info *list;
    size_t n;
    int st = coffer_list(repo, ns, &list, &n, e);
    if (st)
        return st;
    st = COFFER_ENOTFOUND;
    cf_lib_fail(e, st, "no snapshot of this partition: start from an empty state");
    for (size_t k = n; k-- > 0;) {
        const coffer_snapshot_info *si = &list[k];
        const char *topic = label_of(si, "topic");
        uint64_t index, term;
        if (o->topic && (!topic || strcmp(topic, o->topic))) {
            cf_log(lg, CF_LOG_WARN, "bootstrap: snapshot of another topic skipped", "namespace", ns, "id",
                   si->id, (char *)NULL);
            continue;
        }
        if (parse_u64(label_of(si, "index"), &index) || parse_u64(label_of(si, "term"), &term)) {
            cf_log(lg, CF_LOG_WARN, "bootstrap: snapshot without index and term labels skipped", "namespace",
                   ns, "id", si->id, (char *)NULL);
            continue;
        }
        coffer_error re = {0};
        int delivered = 0;
        int rs = restore_one(repo, ns, si->id, o, &delivered, &re);
        if ((rs == COFFER_EDIGEST || rs == COFFER_ECORRUPT) && !delivered) {
            cf_log(lg, CF_LOG_WARN, "bootstrap: snapshot damaged, trying the one before", "namespace", ns,
                   "id", si->id, "error", re.message, (char *)NULL);
            result->fell_back = 1;
            result->skipped++;
            st = rs;
            if (e)
                *e = re;
            continue;
        }
        st = rs;
        if (e)
            *e = re;
        if (!rs) {
            snprintf(result->id, sizeof result->id, "%s", si->id);
            result->index = index;
            result->term = term;
            char idx[24];
            snprintf(idx, sizeof idx, "%" PRIu64, index);
            cf_log(lg, CF_LOG_INFO, "bootstrap: state restored", "namespace", ns, "id", si->id, "index", idx,
                   "fell_back", result->fell_back ? "true" : "false", (char *)NULL);
        }
        break;
    }
    coffer_list_free(list, n);
    return st;
}
