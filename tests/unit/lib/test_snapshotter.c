/* test_snapshotter.c - coffer_snapshotter and coffer_bootstrap on a directory repository, driven
 * by a fake state machine: the entry threshold fires at the crossing and truncation follows a
 * stored manifest; the time threshold fires with few entries; retention keeps the newest; a
 * repository that cannot be written truncates nothing and recovers; stop finishes or cancels an
 * in-flight snapshot; two partitions in one process; bootstrap falls back past a damaged newest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "coffer/coffer.h"
#include "core/fs.h"

#define STATE_BYTES 65536

/* Shared by the state callbacks of a node's partitions: how many run at once (and the most seen),
 * and a door they wait at once inside, until the test opens it. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t opened;
    int open;
    int inside, most_inside, entered;
} gate;

/* The application's side: an applied index, a state derived from it, a log's truncations. */
typedef struct fake_sm {
    pthread_mutex_t mu;
    uint64_t applied, term;
    uint64_t truncated[16];
    int ntruncated;
    int listed_before_truncate; /* each truncate saw its snapshot listed */
    coffer_repo *repo;
    const char *ns;
    int fail_state;    /* write_state fails */
    int slow_ms;       /* write_state writes in 100 pieces with this pause between */
    int in_state;      /* write_state is running */
    int state_aborted; /* write returned COFFER_EABORTED */
    int repeat;        /* write_state writes its state this many times over (0: once) */
    int state_written; /* write_state returned, all written */
    gate *gate;        /* write_state counts itself in and waits there until it opens */
    int states;        /* write_state calls */
} fake_sm;

static char dir[256];

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The state of index: a header, then bytes that depend on index and compress poorly. */
static unsigned char *state_of(uint64_t index, uint64_t term, size_t *n)
{
    unsigned char *p = malloc(STATE_BYTES);
    int h = snprintf((char *)p, 64, "index=%" PRIu64 " term=%" PRIu64 "\n", index, term);
    uint32_t x = (uint32_t)(index * 2654435761u + 7);
    for (size_t i = (size_t)h; i < STATE_BYTES; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    *n = STATE_BYTES;
    return p;
}

static int sm_write_state(void *ctx, coffer_write_fn write, void *wctx, uint64_t *index, uint64_t *term)
{
    fake_sm *sm = ctx;
    pthread_mutex_lock(&sm->mu);
    *index = sm->applied;
    *term = sm->term;
    int fail = sm->fail_state, slow = sm->slow_ms;
    sm->in_state = 1;
    sm->states++;
    pthread_mutex_unlock(&sm->mu);
    gate *g = sm->gate;
    if (g) {
        pthread_mutex_lock(&g->mu);
        g->entered++;
        if (++g->inside > g->most_inside)
            g->most_inside = g->inside;
        while (!g->open)
            pthread_cond_wait(&g->opened, &g->mu);
        pthread_mutex_unlock(&g->mu);
        sleep_ms(20); /* still inside: the next one in line must still be waiting */
    }
    size_t n;
    unsigned char *p = state_of(*index, *term, &n);
    int st = COFFER_OK;
    if (fail)
        st = COFFER_EIO;
    for (int r = 0; r < (sm->repeat ? sm->repeat : 1); r++)
        for (size_t off = 0; !st && off < n; off += n / 100) {
            size_t len = n - off < n / 100 ? n - off : n / 100;
            st = write(wctx, p + off, len);
            if (slow)
                sleep_ms(slow);
        }
    free(p);
    if (g) {
        pthread_mutex_lock(&g->mu);
        g->inside--;
        pthread_mutex_unlock(&g->mu);
    }
    pthread_mutex_lock(&sm->mu);
    sm->in_state = 0;
    sm->state_written = !st;
    if (st == COFFER_EABORTED)
        sm->state_aborted = 1;
    pthread_mutex_unlock(&sm->mu);
    return st;
}

static const char *label(const coffer_snapshot_info *si, const char *key)
{
    for (size_t i = 0; i < si->nlabels; i++)
        if (!strcmp(si->labels[i].key, key))
            return si->labels[i].value;
    return NULL;
}

static int sm_truncate(void *ctx, uint64_t index)
{
    fake_sm *sm = ctx;
    /* The snapshot holding index must already be listed, i.e. its manifest stored. */
    coffer_snapshot_info *list;
    size_t n;
    int listed = 0;
    assert_int_equal(coffer_list(sm->repo, sm->ns, &list, &n, NULL), COFFER_OK);
    char want[24];
    snprintf(want, sizeof want, "%" PRIu64, index);
    for (size_t i = 0; i < n; i++)
        if (label(&list[i], "index") && !strcmp(label(&list[i], "index"), want))
            listed = 1;
    coffer_list_free(list, n);
    pthread_mutex_lock(&sm->mu);
    if (sm->ntruncated == 0)
        sm->listed_before_truncate = 1;
    sm->listed_before_truncate &= listed;
    if (sm->ntruncated < 16)
        sm->truncated[sm->ntruncated++] = index;
    pthread_mutex_unlock(&sm->mu);
    return COFFER_OK;
}

static void sm_apply(fake_sm *sm, coffer_snapshotter *s, uint64_t through)
{
    for (;;) {
        pthread_mutex_lock(&sm->mu);
        uint64_t i = sm->applied < through ? ++sm->applied : 0;
        pthread_mutex_unlock(&sm->mu);
        if (!i)
            return;
        coffer_snapshotter_applied(s, i);
    }
}

static coffer_snapshotter_stats stats(coffer_snapshotter *s)
{
    coffer_snapshotter_stats st = {.struct_size = sizeof st};
    assert_int_equal(coffer_snapshotter_stats_get(s, &st, NULL), COFFER_OK);
    return st;
}

/* Waits (10 s at most) until the snapshotter has stored `taken` snapshots. */
static void wait_taken(coffer_snapshotter *s, uint64_t taken)
{
    for (int i = 0; i < 2000 && stats(s).taken < taken; i++)
        sleep_ms(5);
    assert_int_equal(stats(s).taken, taken);
}

typedef struct fixture {
    coffer_repo *repo;
    char repo_path[300];
    fake_sm sm;
} fixture;

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/coffer-test-snapshotter-XXXXXX");
    assert_non_null(mkdtemp(dir));
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->repo_path, sizeof f->repo_path, "%s/snapshots/orders", dir);
    assert_int_equal(coffer_repo_open(f->repo_path, NULL, &f->repo, NULL), COFFER_OK);
    pthread_mutex_init(&f->sm.mu, NULL);
    f->sm.repo = f->repo;
    f->sm.ns = "0";
    f->sm.term = 3;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    coffer_repo_close(f->repo);
    pthread_mutex_destroy(&f->sm.mu);
    free(f);
    cf_fs_remove_tree(dir, NULL);
    return 0;
}

static coffer_snapshotter_options options_for(fake_sm *sm, uint32_t partition)
{
    return (coffer_snapshotter_options){.struct_size = sizeof(coffer_snapshotter_options),
                                        .log_size_threshold = 10000,
                                        .check_interval_ms = 60000,
                                        .retry_initial_ms = 20,
                                        .retry_max_ms = 100,
                                        .topic = "orders",
                                        .partition = partition,
                                        .node_id = "node-1",
                                        .tmp_dir = dir,
                                        .write_state = sm_write_state,
                                        .truncate_log = sm_truncate,
                                        .ctx = sm};
}

static size_t listed(coffer_repo *repo, const char *ns, coffer_snapshot_info **out)
{
    coffer_snapshot_info *list;
    size_t n;
    assert_int_equal(coffer_list(repo, ns, &list, &n, NULL), COFFER_OK);
    if (out)
        *out = list;
    else
        coffer_list_free(list, n);
    return n;
}

static void test_entry_threshold(void **state)
{
    fixture *f = *state;
    coffer_snapshotter_options o = options_for(&f->sm, 0);
    coffer_snapshotter *s;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, NULL), COFFER_OK);

    sm_apply(&f->sm, s, 9999);
    sleep_ms(200);
    assert_int_equal(stats(s).taken, 0); /* one short of the threshold */
    sm_apply(&f->sm, s, 10000);
    wait_taken(s, 1);
    sm_apply(&f->sm, s, 20000);
    wait_taken(s, 2);
    coffer_snapshotter_stop(s, 0); /* the second's truncation may still be running: let it end */
    coffer_snapshotter_stats st = stats(s);
    assert_int_equal(st.last_index, 20000);
    assert_int_equal(st.last_term, 3);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.applied, 20000);
    assert_int_equal(st.truncated_through, 20000);
    assert_int_equal(st.last_error.status, COFFER_OK);
    coffer_snapshotter_free(s);

    assert_int_equal(f->sm.ntruncated, 2);
    assert_int_equal(f->sm.truncated[0], 10000);
    assert_int_equal(f->sm.truncated[1], 20000);
    assert_true(f->sm.listed_before_truncate);

    coffer_snapshot_info *list;
    assert_int_equal(listed(f->repo, "0", &list), 2);
    assert_string_equal(label(&list[0], "index"), "10000");
    assert_string_equal(label(&list[1], "index"), "20000");
    assert_string_equal(label(&list[1], "term"), "3");
    assert_string_equal(label(&list[1], "node_id"), "node-1");
    assert_string_equal(label(&list[1], "topic"), "orders");
    assert_string_equal(label(&list[1], "partition"), "0");
    assert_string_equal(list[1].compression, "gzip");
    assert_true(list[1].is_stream);
    assert_int_equal(list[1].raw_size, STATE_BYTES);
    coffer_list_free(list, 2);
    /* Laid out as {prefix}/{topic}/{partition}/{id}. */
    char path[600];
    snprintf(path, sizeof path, "%s/0/%s.json", f->repo_path, st.last_id);
    assert_int_equal(access(path, F_OK), 0);

    /* A restarted node counts from the newest snapshot's index, not from 0. */
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, NULL), COFFER_OK);
    sm_apply(&f->sm, s, 29999);
    sleep_ms(200);
    assert_int_equal(stats(s).taken, 0);
    sm_apply(&f->sm, s, 30000);
    wait_taken(s, 1);
    assert_int_equal(stats(s).last_index, 30000);
    coffer_snapshotter_free(s);
}

static void test_time_threshold(void **state)
{
    fixture *f = *state;
    coffer_snapshotter_options o = options_for(&f->sm, 0);
    o.time_threshold_ms = 300;
    o.check_interval_ms = 50;
    coffer_snapshotter *s;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, NULL), COFFER_OK);
    sleep_ms(500);
    assert_int_equal(stats(s).taken, 0); /* time passed, but nothing new was applied */
    sm_apply(&f->sm, s, 5);
    wait_taken(s, 1);
    assert_int_equal(stats(s).last_index, 5);
    sleep_ms(600);
    assert_int_equal(stats(s).taken, 1); /* nothing applied since */
    coffer_snapshotter_free(s);
    assert_int_equal(f->sm.ntruncated, 1);
    assert_int_equal(f->sm.truncated[0], 5);
}

static void test_retention(void **state)
{
    fixture *f = *state;
    coffer_snapshotter_options o = options_for(&f->sm, 0);
    coffer_snapshotter *s;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, NULL), COFFER_OK);
    for (uint64_t k = 1; k <= 5; k++) {
        sm_apply(&f->sm, s, k);
        coffer_snapshotter_trigger(s);
        wait_taken(s, k);
    }
    coffer_snapshotter_free(s);
    coffer_snapshot_info *list;
    assert_int_equal(listed(f->repo, "0", &list), 3);
    assert_string_equal(label(&list[0], "index"), "3");
    assert_string_equal(label(&list[2], "index"), "5");
    coffer_list_free(list, 3);
}

static void test_failing_repository(void **state)
{
    fixture *f = *state;
    /* The partition's directory is a file: every write under it fails (as root, too). */
    char blocker[400];
    snprintf(blocker, sizeof blocker, "%s/0", f->repo_path);
    int fd = open(blocker, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    coffer_snapshotter_options o = options_for(&f->sm, 0);
    coffer_snapshotter *s;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, NULL), COFFER_OK);
    sm_apply(&f->sm, s, 10000);
    for (int i = 0; i < 2000 && stats(s).failed < 3; i++)
        sleep_ms(5);
    coffer_snapshotter_stats st = stats(s);
    assert_true(st.failed >= 3); /* retried */
    assert_int_equal(st.taken, 0);
    assert_int_not_equal(st.last_error.status, COFFER_OK);
    assert_true(st.last_error.message[0] != '\0');
    pthread_mutex_lock(&f->sm.mu);
    assert_int_equal(f->sm.ntruncated, 0);
    pthread_mutex_unlock(&f->sm.mu);

    assert_int_equal(unlink(blocker), 0); /* the store is back */
    wait_taken(s, 1);
    coffer_snapshotter_free(s);
    assert_int_equal(f->sm.ntruncated, 1);
    assert_int_equal(f->sm.truncated[0], 10000);
    assert_int_equal(listed(f->repo, "0", NULL), 1);
}

static void test_failing_state(void **state)
{
    fixture *f = *state;
    f->sm.fail_state = 1;
    coffer_snapshotter_options o = options_for(&f->sm, 0);
    coffer_snapshotter *s;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, NULL), COFFER_OK);
    sm_apply(&f->sm, s, 10000);
    for (int i = 0; i < 2000 && stats(s).failed < 2; i++)
        sleep_ms(5);
    coffer_snapshotter_stats st = stats(s);
    assert_true(st.failed >= 2);
    assert_int_equal(st.last_error.status, COFFER_EIO);
    assert_non_null(strstr(st.last_error.message, "write_state"));
    coffer_snapshotter_free(s);
    assert_int_equal(f->sm.ntruncated, 0);
    assert_int_equal(listed(f->repo, "0", NULL), 0);
}

/* The staging file cannot grow (a full disk, here a file size limit): write returns the failure
 * to write_state, which returns it; the error names the staging directory and the system's
 * reason, nothing is stored or truncated, and the retry stores it once the file can grow. */
static void test_staging_fails(void **state)
{
    fixture *f = *state;
    struct rlimit was, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
    small = was;
    small.rlim_cur = STATE_BYTES / 4;
    signal(SIGXFSZ, SIG_IGN); /* a write past the limit fails with EFBIG instead */
    coffer_snapshotter_options o = options_for(&f->sm, 0);
    coffer_snapshotter *s;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, NULL), COFFER_OK);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    sm_apply(&f->sm, s, 10000);
    for (int i = 0; i < 2000 && stats(s).failed < 1; i++)
        sleep_ms(5);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
    coffer_snapshotter_stats st = stats(s);
    assert_true(st.failed >= 1);
    assert_int_equal(st.taken, 0);
    assert_int_equal(st.last_error.status, COFFER_EIO);
    char want[400];
    snprintf(want, sizeof want, "cannot stage the state in %s: %s", dir, strerror(EFBIG));
    if (!strstr(st.last_error.message, want))
        fail_msg("'%s' does not say '%s'", st.last_error.message, want);
    wait_taken(s, 1);
    coffer_snapshotter_free(s);
    assert_int_equal(f->sm.ntruncated, 1);
    assert_int_equal(listed(f->repo, "0", NULL), 1);
    signal(SIGXFSZ, SIG_DFL);
}

static void wait_in_state(fake_sm *sm)
{
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&sm->mu);
        int in = sm->in_state;
        pthread_mutex_unlock(&sm->mu);
        if (in)
            return;
        sleep_ms(5);
    }
    fail_msg("write_state never ran");
}

static void test_stop(void **state)
{
    fixture *f = *state;
    coffer_snapshotter_options o = options_for(&f->sm, 0);
    coffer_snapshotter *s;

    /* Idle: stop returns at once, nothing stored. */
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, NULL), COFFER_OK);
    sm_apply(&f->sm, s, 10);
    coffer_snapshotter_stop(s, 0);
    coffer_snapshotter_stop(s, 0);
    assert_int_equal(stats(s).taken, 0);
    coffer_snapshotter_free(s);

    /* In flight, stop 0: the snapshot is finished, stored and the log truncated. */
    f->sm.slow_ms = 3;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, NULL), COFFER_OK);
    coffer_snapshotter_trigger(s);
    wait_in_state(&f->sm);
    coffer_snapshotter_stop(s, 0);
    assert_int_equal(stats(s).taken, 1);
    assert_int_equal(stats(s).in_flight, 0);
    coffer_snapshotter_free(s);
    assert_int_equal(listed(f->repo, "0", NULL), 1);
    assert_int_equal(f->sm.ntruncated, 1);

    /* In flight, stop 1: cancelled, nothing more listed, nothing truncated, not a failure. */
    f->sm.slow_ms = 20;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, NULL), COFFER_OK);
    coffer_snapshotter_trigger(s);
    wait_in_state(&f->sm);
    coffer_snapshotter_stop(s, 1);
    assert_int_equal(stats(s).taken, 0);
    assert_int_equal(stats(s).failed, 0);
    coffer_snapshotter_free(s);
    assert_true(f->sm.state_aborted);
    assert_int_equal(listed(f->repo, "0", NULL), 1);
    assert_int_equal(f->sm.ntruncated, 1);
}

/* Stop with cancel once the state is staged, while it is uploaded: the upload stops, nothing is
 * listed, nothing truncated, and it is not a failure. */
static void test_cancel_during_upload(void **state)
{
    fixture *f = *state;
    coffer_snapshotter_options o = options_for(&f->sm, 0);
    /* 64 MiB that gzip cannot shrink (the state repeats past deflate's window): its upload takes
     * far longer than stop's call after write_state returned. */
    f->sm.repeat = 1024;
    coffer_snapshotter *s;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, NULL), COFFER_OK);
    sm_apply(&f->sm, s, 10);
    coffer_snapshotter_trigger(s);
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&f->sm.mu);
        int written = f->sm.state_written;
        pthread_mutex_unlock(&f->sm.mu);
        if (written)
            break;
        sleep_ms(1);
    }
    assert_true(f->sm.state_written);
    coffer_snapshotter_stop(s, 1);
    coffer_snapshotter_stats st = stats(s);
    assert_int_equal(st.taken, 0);
    assert_int_equal(st.failed, 0);
    coffer_snapshotter_free(s);
    assert_false(f->sm.state_aborted);
    assert_int_equal(listed(f->repo, "0", NULL), 0);
    assert_int_equal(f->sm.ntruncated, 0);
}

typedef struct partition_run {
    fake_sm sm;
    coffer_snapshotter *s;
} partition_run;

static void *apply_thread(void *arg)
{
    partition_run *p = arg;
    sm_apply(&p->sm, p->s, 10000);
    return NULL;
}

static void test_two_partitions(void **state)
{
    fixture *f = *state;
    partition_run p[2];
    const char *ns[2] = {"0", "1"};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        memset(&p[i].sm, 0, sizeof p[i].sm);
        pthread_mutex_init(&p[i].sm.mu, NULL);
        p[i].sm.repo = f->repo;
        p[i].sm.ns = ns[i];
        p[i].sm.term = 10 + (uint64_t)i;
        coffer_snapshotter_options o = options_for(&p[i].sm, (uint32_t)i);
        assert_int_equal(coffer_snapshotter_new(f->repo, &o, &p[i].s, NULL), COFFER_OK);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, apply_thread, &p[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        wait_taken(p[i].s, 1);
        coffer_snapshotter_free(p[i].s);
        assert_int_equal(p[i].sm.ntruncated, 1);
        assert_int_equal(p[i].sm.truncated[0], 10000);
        coffer_snapshot_info *list;
        assert_int_equal(listed(f->repo, ns[i], &list), 1);
        assert_string_equal(label(&list[0], "partition"), ns[i]);
        assert_string_equal(label(&list[0], "term"), i ? "11" : "10");
        coffer_list_free(list, 1);
        pthread_mutex_destroy(&p[i].sm.mu);
    }
}

static int sm_states(fake_sm *sm)
{
    pthread_mutex_lock(&sm->mu);
    int n = sm->states;
    pthread_mutex_unlock(&sm->mu);
    return n;
}

static void gate_init(gate *g)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->opened, NULL);
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->opened);
    pthread_mutex_unlock(&g->mu);
}

static void gate_destroy(gate *g)
{
    pthread_cond_destroy(&g->opened);
    pthread_mutex_destroy(&g->mu);
}

static int gate_get(gate *g, const int *field)
{
    pthread_mutex_lock(&g->mu);
    int v = *field;
    pthread_mutex_unlock(&g->mu);
    return v;
}

/* Waits (10 s at most) until `entered` state callbacks have come to the gate and `waiting`
 * snapshotters of s[0..n) say they wait for a slot. */
static void wait_entered_and_waiting(gate *g, int entered, coffer_snapshotter **s, int n, int waiting)
{
    for (int i = 0; i < 2000; i++) {
        int w = 0;
        for (int k = 0; k < n; k++)
            w += stats(s[k]).waiting_for_slot;
        if (gate_get(g, &g->entered) == entered && w == waiting)
            return;
        sleep_ms(5);
    }
    fail_msg("never %d in write_state and %d waiting for a slot (%d in)", entered, waiting,
             gate_get(g, &g->entered));
}

typedef struct node_partition {
    fake_sm sm;
    coffer_snapshotter *s;
    char ns[8];
} node_partition;

static void partition_start(node_partition *p, fixture *f, uint32_t partition, gate *g,
                            coffer_snapshot_limit *limit)
{
    memset(&p->sm, 0, sizeof p->sm);
    pthread_mutex_init(&p->sm.mu, NULL);
    snprintf(p->ns, sizeof p->ns, "%" PRIu32, partition);
    p->sm.repo = f->repo;
    p->sm.ns = p->ns;
    p->sm.term = 1;
    p->sm.gate = g;
    coffer_snapshotter_options o = options_for(&p->sm, partition);
    o.limit = limit;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &p->s, NULL), COFFER_OK);
}

static void partition_end(node_partition *p)
{
    coffer_snapshotter_free(p->s);
    pthread_mutex_destroy(&p->sm.mu);
}

/* Four partitions of one node sharing a limit of 2: never more than 2 states written at once,
 * the other 2 wait (and say so), and all 4 are stored. */
static void test_limit_shared_by_partitions(void **state)
{
    fixture *f = *state;
    gate g;
    gate_init(&g);
    coffer_snapshot_limit *limit;
    assert_int_equal(coffer_snapshot_limit_new(2, 0, &limit, NULL), COFFER_OK);
    node_partition p[4];
    coffer_snapshotter *s[4];
    for (int i = 0; i < 4; i++) {
        partition_start(&p[i], f, (uint32_t)i, &g, limit);
        s[i] = p[i].s;
    }
    for (int i = 0; i < 4; i++)
        sm_apply(&p[i].sm, s[i], 10000); /* the threshold: each is due */
    wait_entered_and_waiting(&g, 2, s, 4, 2);
    sleep_ms(100);
    assert_int_equal(gate_get(&g, &g.entered), 2); /* the two in line stay in line */
    assert_int_equal(gate_get(&g, &g.inside), 2);
    gate_open(&g);
    uint64_t waited = 0;
    int waiters = 0;
    for (int i = 0; i < 4; i++) {
        wait_taken(s[i], 1);
        coffer_snapshotter_stats st = stats(s[i]);
        assert_int_equal(st.last_index, 10000);
        assert_int_equal(st.waiting_for_slot, 0);
        waited += st.slot_wait_ms;
        waiters += st.slot_wait_ms >= 100;
    }
    assert_int_equal(gate_get(&g, &g.most_inside), 2);
    assert_int_equal(gate_get(&g, &g.entered), 4);
    assert_true(waiters >= 2); /* the two that waited at least the test's 100 ms */
    assert_true(waited >= 200);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(listed(f->repo, p[i].ns, NULL), 1);
        partition_end(&p[i]);
        assert_int_equal(p[i].sm.ntruncated, 1);
    }
    coffer_snapshot_limit_free(limit);
    gate_destroy(&g);
}

typedef struct stop_call {
    coffer_snapshotter *s;
    int cancel;
    atomic_int returned;
} stop_call;

static void *stop_on_thread(void *arg)
{
    stop_call *c = arg;
    coffer_snapshotter_stop(c->s, c->cancel);
    atomic_store(&c->returned, 1);
    return NULL;
}

/* With the one slot taken: a stop (finishing or cancelling) of a snapshotter waiting for it
 * returns at once and stores nothing; what is applied and triggered during the wait is in the
 * snapshot taken once the slot comes, and taken once. */
static void test_limit_wait_stop_and_trigger(void **state)
{
    fixture *f = *state;
    gate g;
    gate_init(&g);
    coffer_snapshot_limit *limit;
    assert_int_equal(coffer_snapshot_limit_new(1, 0, &limit, NULL), COFFER_OK);
    node_partition holder, stopped, cancelled, triggered;
    partition_start(&holder, f, 0, &g, limit);
    sm_apply(&holder.sm, holder.s, 1);
    coffer_snapshotter_trigger(holder.s);
    wait_entered_and_waiting(&g, 1, &holder.s, 1, 0);

    partition_start(&stopped, f, 1, NULL, limit);
    partition_start(&cancelled, f, 2, NULL, limit);
    partition_start(&triggered, f, 3, NULL, limit);
    coffer_snapshotter *waiting[] = {stopped.s, cancelled.s, triggered.s};
    sm_apply(&stopped.sm, stopped.s, 10000);
    sm_apply(&cancelled.sm, cancelled.s, 5);
    coffer_snapshotter_trigger(cancelled.s);
    sm_apply(&triggered.sm, triggered.s, 5);
    coffer_snapshotter_trigger(triggered.s);
    wait_entered_and_waiting(&g, 1, waiting, 3, 3);
    sleep_ms(20);

    for (int cancel = 0; cancel < 2; cancel++) {
        coffer_snapshotter *s = cancel ? cancelled.s : stopped.s;
        /* The holder keeps the one slot until the gate opens: a stop that waited for the slot
         * would never return, so returning at all (while the holder is still inside) is what
         * "at once" means here, whatever the machine's load. */
        stop_call call = {.s = s, .cancel = cancel};
        pthread_t t;
        pthread_create(&t, NULL, stop_on_thread, &call);
        for (int i = 0; i < 6000 && !atomic_load(&call.returned); i++)
            sleep_ms(5);
        int returned = atomic_load(&call.returned);
        if (!returned)
            gate_open(&g); /* frees the slot, so the thread can be joined before failing */
        pthread_join(t, NULL);
        if (!returned)
            fail_msg("stop(%d) of a snapshotter waiting for a slot waited for the slot", cancel);
        assert_int_equal(gate_get(&g, &g.inside), 1);
        coffer_snapshotter_stats st = stats(s);
        assert_int_equal(st.taken, 0);
        assert_int_equal(st.failed, 0);
        assert_int_equal(st.waiting_for_slot, 0);
        assert_true(st.slot_wait_ms > 0);
    }
    assert_int_equal(sm_states(&stopped.sm), 0);
    assert_int_equal(sm_states(&cancelled.sm), 0);

    /* Still in line: more entries and another trigger. */
    sm_apply(&triggered.sm, triggered.s, 7);
    coffer_snapshotter_trigger(triggered.s);
    assert_int_equal(stats(triggered.s).waiting_for_slot, 1);
    gate_open(&g);
    wait_taken(holder.s, 1);
    wait_taken(triggered.s, 1);
    assert_int_equal(stats(triggered.s).last_index, 7);
    sleep_ms(200);
    assert_int_equal(stats(triggered.s).taken, 1); /* both triggers answered by that one */
    assert_int_equal(sm_states(&triggered.sm), 1);

    partition_end(&stopped);
    partition_end(&cancelled);
    assert_int_equal(listed(f->repo, "1", NULL), 0);
    assert_int_equal(listed(f->repo, "2", NULL), 0);
    assert_int_equal(listed(f->repo, "3", NULL), 1);
    /* Freed before its last snapshotters: it lives until they are freed. */
    coffer_snapshot_limit_free(limit);
    sm_apply(&triggered.sm, triggered.s, 8);
    coffer_snapshotter_trigger(triggered.s);
    wait_taken(triggered.s, 2);
    partition_end(&triggered);
    partition_end(&holder);
    gate_destroy(&g);
}

/* Two nodes' limits of one slot each: one node's slot taken does not hold the other back. */
static void test_two_limits_are_independent(void **state)
{
    fixture *f = *state;
    gate g;
    gate_init(&g);
    coffer_snapshot_limit *first, *second;
    assert_int_equal(coffer_snapshot_limit_new(1, 0, &first, NULL), COFFER_OK);
    assert_int_equal(coffer_snapshot_limit_new(1, 0, &second, NULL), COFFER_OK);
    node_partition a, b;
    partition_start(&a, f, 0, &g, first);
    partition_start(&b, f, 1, NULL, second);
    sm_apply(&a.sm, a.s, 1);
    coffer_snapshotter_trigger(a.s);
    wait_entered_and_waiting(&g, 1, &a.s, 1, 0);
    sm_apply(&b.sm, b.s, 1);
    coffer_snapshotter_trigger(b.s);
    wait_taken(b.s, 1); /* while a holds its node's only slot */
    assert_int_equal(gate_get(&g, &g.inside), 1);
    assert_int_equal(stats(a.s).taken, 0);
    gate_open(&g);
    wait_taken(a.s, 1);
    partition_end(&a);
    partition_end(&b);
    coffer_snapshot_limit_free(first);
    coffer_snapshot_limit_free(second);
    gate_destroy(&g);
}

/* n partitions of a node (from partition first) due at once under limit: waits until `entered`
 * write their state and the rest wait for a slot, lets them through; the most seen at once. */
static int node_round(fixture *f, coffer_snapshot_limit *limit, uint32_t first, int n, int entered)
{
    gate g;
    gate_init(&g);
    node_partition p[4];
    coffer_snapshotter *s[4];
    assert_true(n <= 4);
    for (int i = 0; i < n; i++) {
        partition_start(&p[i], f, first + (uint32_t)i, &g, limit);
        s[i] = p[i].s;
        sm_apply(&p[i].sm, s[i], 10000);
    }
    wait_entered_and_waiting(&g, entered, s, n, n - entered);
    gate_open(&g);
    for (int i = 0; i < n; i++) {
        wait_taken(s[i], 1);
        partition_end(&p[i]);
    }
    int most = gate_get(&g, &g.most_inside);
    gate_destroy(&g);
    return most;
}

/* The limit's size from the environment only when asked; the deprecated max_concurrent_snapshots
 * still runs an upload (as its threads). */
static void test_limit_environment(void **state)
{
    fixture *f = *state;
    setenv("COFFER_SNAPSHOT_MAX_CONCURRENT", "1", 1);
    coffer_snapshot_limit *limit;
    assert_int_equal(coffer_snapshot_limit_new(0, 0, &limit, NULL), COFFER_OK); /* 2 */
    assert_int_equal(node_round(f, limit, 0, 3, 2), 2);
    coffer_snapshot_limit_free(limit);

    assert_int_equal(coffer_snapshot_limit_new(5, 1, &limit, NULL), COFFER_OK); /* 1, from it */
    unsetenv("COFFER_SNAPSHOT_MAX_CONCURRENT");
    assert_int_equal(node_round(f, limit, 10, 2, 1), 1);
    coffer_snapshot_limit_free(limit);

    coffer_snapshotter_options o = options_for(&f->sm, 20);
    o.max_concurrent_snapshots = 3; /* a program of the first cut: its upload's threads */
    coffer_snapshotter *one;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &one, NULL), COFFER_OK);
    sm_apply(&f->sm, one, 10000);
    wait_taken(one, 1);
    coffer_snapshotter_free(one);
}

static void test_environment(void **state)
{
    fixture *f = *state;
    setenv("COFFER_SNAPSHOT_LOG_THRESHOLD", "5", 1);
    setenv("COFFER_SNAPSHOT_COMPRESSION", "none", 1);
    coffer_snapshotter_options o = options_for(&f->sm, 0);
    coffer_snapshotter *s;
    /* Without use_environment the variables change nothing. */
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, NULL), COFFER_OK);
    sm_apply(&f->sm, s, 5);
    sleep_ms(200);
    assert_int_equal(stats(s).taken, 0);
    coffer_snapshotter_free(s);

    o.use_environment = 1;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, NULL), COFFER_OK);
    sm_apply(&f->sm, s, 10);
    wait_taken(s, 1);
    coffer_snapshotter_free(s);
    coffer_snapshot_info *list;
    assert_int_equal(listed(f->repo, "0", &list), 1);
    assert_string_equal(list[0].compression, "none");
    coffer_list_free(list, 1);

    coffer_error e;
    setenv("COFFER_SNAPSHOT_LOG_THRESHOLD", "ten", 1);
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, &e), COFFER_EINVAL);
    assert_non_null(strstr(e.message, "COFFER_SNAPSHOT_LOG_THRESHOLD"));
    /* Past 64 bits, signed or padded: refused, not clamped or read leniently. */
    const char *not_counts[] = {"18446744073709551616", "-5", "+5", " 5", "5 ", "0x10", ""};
    for (size_t i = 0; i < sizeof not_counts / sizeof *not_counts; i++) {
        setenv("COFFER_SNAPSHOT_LOG_THRESHOLD", not_counts[i], 1);
        assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, &e), COFFER_EINVAL);
        assert_non_null(strstr(e.message, "COFFER_SNAPSHOT_LOG_THRESHOLD"));
    }
    setenv("COFFER_SNAPSHOT_LOG_THRESHOLD", "5", 1);
    setenv("COFFER_SNAPSHOT_RETENTION_COUNT", "1000001", 1);
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, &e), COFFER_EINVAL);
    assert_non_null(strstr(e.message, "COFFER_SNAPSHOT_RETENTION_COUNT"));
    unsetenv("COFFER_SNAPSHOT_RETENTION_COUNT");
    setenv("COFFER_SNAPSHOT_COMPRESSION", "brotli", 1);
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, &e), COFFER_EINVAL);
    unsetenv("COFFER_SNAPSHOT_LOG_THRESHOLD");
    unsetenv("COFFER_SNAPSHOT_COMPRESSION");

    /* Misuse. */
    o.use_environment = 0;
    o.write_state = NULL;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, &e), COFFER_EINVAL);
    assert_int_equal(coffer_snapshotter_new(f->repo, NULL, &s, &e), COFFER_EINVAL);
    o = options_for(&f->sm, 0);
    o.struct_size = 0;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, &e), COFFER_EINVAL);
}

/* The restart baseline comes from a listing, which anyone who can write the repository can
 * shape: an index label past 64 bits is not a snapshot's index (clamped to 2^64 - 1 it would stop
 * every snapshot to come); the newest label that is one counts. */
static void test_baseline_ignores_bad_index(void **state)
{
    fixture *f = *state;
    const char *indexes[] = {"40", "18446744073709551616", "+90"};
    for (size_t i = 0; i < sizeof indexes / sizeof *indexes; i++) {
        coffer_label l = {"index", indexes[i]};
        coffer_create_options co = {.struct_size = sizeof co, .labels = &l, .nlabels = 1};
        int fd = open("/dev/null", O_RDONLY);
        assert_int_equal(coffer_create_fd(f->repo, "0", fd, &co, NULL, NULL), COFFER_OK);
        close(fd);
    }
    coffer_snapshotter_options o = options_for(&f->sm, 0);
    o.log_size_threshold = 100;
    coffer_snapshotter *s;
    assert_int_equal(coffer_snapshotter_new(f->repo, &o, &s, NULL), COFFER_OK);
    sm_apply(&f->sm, s, 139);
    sleep_ms(200);
    assert_int_equal(stats(s).taken, 0); /* counted from 40 */
    sm_apply(&f->sm, s, 140);
    wait_taken(s, 1);
    assert_int_equal(stats(s).last_index, 140);
    coffer_snapshotter_free(s);
}

typedef struct buffer {
    unsigned char *p;
    size_t n;
} buffer;

static int to_buffer(void *ctx, const void *p, size_t n)
{
    buffer *b = ctx;
    b->p = realloc(b->p, b->n + n);
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return COFFER_OK;
}

typedef struct log_capture {
    pthread_mutex_t mu;
    int damaged_warnings;
} log_capture;

static void capture(void *ctx, coffer_log_level level, const char *line, size_t len)
{
    (void)len;
    log_capture *c = ctx;
    pthread_mutex_lock(&c->mu);
    if (level == COFFER_LOG_WARN && strstr(line, "damaged"))
        c->damaged_warnings++;
    pthread_mutex_unlock(&c->mu);
}

/* Flips bytes in the middle of id's archive (whatever its suffix). */
static void damage(const char *ns_dir, const char *id)
{
    DIR *d = opendir(ns_dir);
    assert_non_null(d);
    struct dirent *de;
    int done = 0;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, id, strlen(id)) || strstr(de->d_name, ".json"))
            continue;
        char path[800];
        snprintf(path, sizeof path, "%s/%s", ns_dir, de->d_name);
        int fd = open(path, O_RDWR);
        assert_true(fd >= 0);
        struct stat sb;
        assert_int_equal(fstat(fd, &sb), 0);
        unsigned char b[8];
        assert_int_equal(pread(fd, b, sizeof b, sb.st_size / 2), (ssize_t)sizeof b);
        for (int i = 0; i < 8; i++)
            b[i] ^= 0x5a;
        assert_int_equal(pwrite(fd, b, sizeof b, sb.st_size / 2), (ssize_t)sizeof b);
        close(fd);
        done = 1;
    }
    closedir(d);
    assert_true(done);
}

static void test_bootstrap(void **state)
{
    fixture *f = *state;
    log_capture cap = {.damaged_warnings = 0};
    pthread_mutex_init(&cap.mu, NULL);
    coffer_repo *repo;
    coffer_repo_options ro = {.struct_size = sizeof ro, .log = capture, .log_ctx = &cap};
    assert_int_equal(coffer_repo_open(f->repo_path, &ro, &repo, NULL), COFFER_OK);

    buffer b = {0};
    coffer_bootstrap_options bo = {
        .struct_size = sizeof bo, .write = to_buffer, .write_ctx = &b, .topic = "orders"};
    coffer_bootstrap_result r = {.struct_size = sizeof r};
    coffer_error e;
    assert_int_equal(coffer_bootstrap(repo, 0, &bo, &r, &e), COFFER_ENOTFOUND); /* a new cluster */

    coffer_snapshotter_options o = options_for(&f->sm, 0);
    coffer_snapshotter *s;
    assert_int_equal(coffer_snapshotter_new(repo, &o, &s, NULL), COFFER_OK);
    sm_apply(&f->sm, s, 100);
    coffer_snapshotter_trigger(s);
    wait_taken(s, 1);
    sm_apply(&f->sm, s, 200);
    coffer_snapshotter_trigger(s);
    wait_taken(s, 2);
    char newest[COFFER_ID_SIZE];
    snprintf(newest, sizeof newest, "%s", stats(s).last_id);
    coffer_snapshotter_free(s);

    /* The newest. */
    size_t n;
    unsigned char *want = state_of(200, 3, &n);
    assert_int_equal(coffer_bootstrap(repo, 0, &bo, &r, &e), COFFER_OK);
    assert_int_equal(r.index, 200);
    assert_int_equal(r.term, 3);
    assert_int_equal(r.fell_back, 0);
    assert_string_equal(r.id, newest);
    assert_int_equal(b.n, n);
    assert_memory_equal(b.p, want, n);
    free(want);

    /* Another topic's repository is not taken for this one. */
    bo.topic = "payments";
    assert_int_equal(coffer_bootstrap(repo, 0, &bo, &r, &e), COFFER_ENOTFOUND);
    bo.topic = "orders";

    /* The newest damaged: the one before, said in the log and the result. */
    char ns_dir[400];
    snprintf(ns_dir, sizeof ns_dir, "%s/0", f->repo_path);
    damage(ns_dir, newest);
    free(b.p);
    b = (buffer){0};
    assert_int_equal(coffer_bootstrap(repo, 0, &bo, &r, &e), COFFER_OK);
    assert_int_equal(r.index, 100);
    assert_int_equal(r.fell_back, 1);
    assert_int_equal(r.skipped, 1);
    want = state_of(100, 3, &n);
    assert_int_equal(b.n, n); /* nothing of the damaged one was handed over */
    assert_memory_equal(b.p, want, n);
    assert_int_equal(cap.damaged_warnings, 1);
    free(b.p);

    /* Into a directory: DIR/state. */
    char dest[400];
    snprintf(dest, sizeof dest, "%s/node2", dir);
    assert_int_equal(mkdir(dest, 0700), 0);
    coffer_bootstrap_options bd = {.struct_size = sizeof bd, .dest_dir = dest};
    assert_int_equal(coffer_bootstrap(repo, 0, &bd, &r, &e), COFFER_OK);
    assert_int_equal(r.index, 100);
    char path[500];
    snprintf(path, sizeof path, "%s/state", dest);
    char *got;
    size_t got_n;
    assert_int_equal(cf_fs_read_small(path, 1 << 20, &got, &got_n, NULL), 0);
    assert_int_equal(got_n, n);
    assert_memory_equal(got, want, n);
    free(got);
    free(want);

    /* Every snapshot damaged: the damage's status, nothing restored. */
    coffer_snapshot_info *list;
    assert_int_equal(listed(repo, "0", &list), 2);
    damage(ns_dir, list[0].id);
    coffer_list_free(list, 2);
    b = (buffer){0};
    int st = coffer_bootstrap(repo, 0, &bo, &r, &e);
    assert_true(st == COFFER_EDIGEST || st == COFFER_ECORRUPT);
    assert_int_equal(b.n, 0);
    assert_int_equal(r.skipped, 2);

    /* Misuse: no destination, two destinations. */
    coffer_bootstrap_options none = {.struct_size = sizeof none};
    assert_int_equal(coffer_bootstrap(repo, 0, &none, &r, &e), COFFER_EINVAL);
    bd.write = to_buffer;
    assert_int_equal(coffer_bootstrap(repo, 0, &bd, &r, &e), COFFER_EINVAL);
    coffer_repo_close(repo);
    pthread_mutex_destroy(&cap.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_entry_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_repository, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_staging_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_during_upload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit_shared_by_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit_wait_stop_and_trigger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_limits_are_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_baseline_ignores_bad_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap, setup, teardown),
    };
    alarm(300); /* a stop that hangs fails the run instead of hanging it */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
