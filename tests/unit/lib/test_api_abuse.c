/* test_api_abuse.c - libcoffer and its snapshotter used the wrong way, on purpose: NULL and
 * malformed arguments, hostile names and labels, garbage in COFFER_SNAPSHOT_*, absurd intervals,
 * callbacks that fail, lie or call back in, concurrent stops, a repository closed under its
 * writer, planted symlinks and damage found after bytes were handed over in bootstrap, and an
 * unreachable store whose keys must not reach a log line. Each answer is a status and a message,
 * never a crash, a hang, a spinning thread or a silently different outcome. */
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
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "coffer/coffer.h"
#include "core/fs.h"

static char dir[256];

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every line a handle logs, kept for greps. */
typedef struct log_capture {
    pthread_mutex_t mu;
    char *text;
    size_t len;
    /* When set, each line makes the log function call back into this snapshotter. */
    coffer_snapshotter *_Atomic reenter;
    int reentered;
} log_capture;

static void capture(void *ctx, coffer_log_level level, const char *line, size_t len)
{
    (void)level;
    log_capture *c = ctx;
    coffer_snapshotter *s = atomic_load(&c->reenter);
    if (s) {
        coffer_snapshotter_stats st = {.struct_size = sizeof st};
        coffer_snapshotter_stats_get(s, &st, NULL);
        coffer_snapshotter_trigger(s);
        coffer_snapshotter_applied(s, st.applied + 1);
    }
    pthread_mutex_lock(&c->mu);
    c->text = realloc(c->text, c->len + len + 1);
    memcpy(c->text + c->len, line, len);
    c->len += len;
    c->text[c->len] = '\0';
    c->reentered += s != NULL;
    pthread_mutex_unlock(&c->mu);
}

static int logged(log_capture *c, const char *what)
{
    pthread_mutex_lock(&c->mu);
    int found = c->text && strstr(c->text, what);
    pthread_mutex_unlock(&c->mu);
    return found;
}

/* The application's side of a snapshotter: a state of a few bytes per index, and hooks. */
typedef struct app {
    pthread_mutex_t mu;
    uint64_t applied;
    uint64_t report_index; /* when non-zero, write_state claims this index instead */
    int fail_state;
    int write_nothing;
    int fail_truncate;
    int slow_ms;
    int states, states_done;
    uint64_t truncated_through;
    coffer_snapshotter *self;
    int stop_inside; /* write_state calls coffer_snapshotter_stop(self, 1) */
    int stop_returned;
} app;

static int app_state(void *ctx, coffer_write_fn write, void *wctx, uint64_t *index, uint64_t *term)
{
    app *a = ctx;
    pthread_mutex_lock(&a->mu);
    *index = a->report_index ? a->report_index : a->applied;
    *term = 1;
    int fail = a->fail_state, slow = a->slow_ms, stop = a->stop_inside, nothing = a->write_nothing;
    a->states++;
    pthread_mutex_unlock(&a->mu);
    if (stop) {
        coffer_snapshotter_stop(a->self, 1);
        pthread_mutex_lock(&a->mu);
        a->stop_returned = 1;
        pthread_mutex_unlock(&a->mu);
        sleep_ms(300);
    }
    char line[64];
    int n = snprintf(line, sizeof line, "state of %" PRIu64 "\n", *index);
    int st = fail ? COFFER_EIO : nothing ? COFFER_OK : write(wctx, line, (size_t)n);
    if (slow)
        sleep_ms(slow);
    pthread_mutex_lock(&a->mu);
    a->states_done++;
    pthread_mutex_unlock(&a->mu);
    return st;
}

static int app_truncate(void *ctx, uint64_t index)
{
    app *a = ctx;
    pthread_mutex_lock(&a->mu);
    int fail = a->fail_truncate;
    if (!fail)
        a->truncated_through = index;
    pthread_mutex_unlock(&a->mu);
    return fail ? COFFER_EIO : COFFER_OK;
}

typedef struct fixture {
    coffer_repo *repo;
    char repo_path[300];
    log_capture log;
    app app;
} fixture;

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/coffer-test-abuse-XXXXXX");
    assert_non_null(mkdtemp(dir));
    fixture *f = calloc(1, sizeof *f);
    pthread_mutex_init(&f->log.mu, NULL);
    pthread_mutex_init(&f->app.mu, NULL);
    snprintf(f->repo_path, sizeof f->repo_path, "%s/repo", dir);
    coffer_repo_options ro = {.struct_size = sizeof ro, .log = capture, .log_ctx = &f->log};
    assert_int_equal(coffer_repo_open(f->repo_path, &ro, &f->repo, NULL), COFFER_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    coffer_repo_close(f->repo);
    pthread_mutex_destroy(&f->log.mu);
    pthread_mutex_destroy(&f->app.mu);
    free(f->log.text);
    free(f);
    cf_fs_remove_tree(dir, NULL);
    return 0;
}

static coffer_snapshotter_options options_for(app *a)
{
    return (coffer_snapshotter_options){.struct_size = sizeof(coffer_snapshotter_options),
                                        .log_size_threshold = 1000000,
                                        .check_interval_ms = 60000,
                                        .retry_initial_ms = 20,
                                        .retry_max_ms = 100,
                                        .topic = "orders",
                                        .tmp_dir = dir,
                                        .write_state = app_state,
                                        .truncate_log = app_truncate,
                                        .ctx = a};
}

static coffer_snapshotter_stats stats(coffer_snapshotter *s)
{
    coffer_snapshotter_stats st = {.struct_size = sizeof st};
    assert_int_equal(coffer_snapshotter_stats_get(s, &st, NULL), COFFER_OK);
    return st;
}

/* Waits (10 s at most) until taken + failed reaches n. */
static void wait_attempts(coffer_snapshotter *s, uint64_t n)
{
    for (int i = 0; i < 2000; i++) {
        coffer_snapshotter_stats st = stats(s);
        if (st.taken + st.failed >= n && !st.in_flight)
            return;
        sleep_ms(5);
    }
    fail_msg("the snapshotter made fewer than %" PRIu64 " attempts", n);
}

/* A snapshotter with the fixture's defaults, asked for a snapshot at once. */
static coffer_snapshotter *started(fixture *f)
{
    coffer_snapshotter_options so = options_for(&f->app);
    coffer_snapshotter *s;
    assert_int_equal(coffer_snapshotter_new(f->repo, &so, &s, NULL), COFFER_OK);
    coffer_snapshotter_trigger(s);
    return s;
}

static size_t listed(coffer_repo *repo, const char *ns)
{
    coffer_snapshot_info *list;
    size_t n;
    if (coffer_list(repo, ns, &list, &n, NULL))
        return 0;
    coffer_list_free(list, n);
    return n;
}

/* The bytes a newer program's longer struct has past what this library knows. */
static void assert_untouched(const unsigned char *p, size_t n, unsigned char was)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i], was);
}

static void expect_einval(int st, const coffer_error *e)
{
    assert_int_equal(st, COFFER_EINVAL);
    assert_int_equal(e->status, COFFER_EINVAL);
    assert_true(e->message[0] != '\0');
}

static int no_write(void *ctx, const void *p, size_t n)
{
    (void)ctx, (void)p, (void)n;
    return COFFER_OK;
}

/* Every required pointer NULL, one at a time: COFFER_EINVAL and a message, never a crash; the
 * void calls are no-ops. */
static void test_null_arguments(void **state)
{
    fixture *f = *state;
    coffer_repo *r = f->repo;
    coffer_error e;
    coffer_repo *out;
    coffer_writer *w;
    coffer_snapshot_info *list;
    size_t n;
    char *json;
    char id[COFFER_ID_SIZE];
    coffer_snapshotter *s;
    coffer_bootstrap_result br = {.struct_size = sizeof br};
    coffer_retention keep = {.struct_size = sizeof keep, .keep_last = 1};
    coffer_bootstrap_options bo = {.struct_size = sizeof bo, .write = no_write};
    coffer_snapshotter_options so = options_for(&f->app);
    coffer_snapshotter_stats ss = {.struct_size = sizeof ss};

    expect_einval(coffer_repo_open(NULL, NULL, &out, &e), &e);
    expect_einval(coffer_repo_open(f->repo_path, NULL, NULL, &e), &e);
    expect_einval(coffer_create_dir(NULL, "ns", dir, NULL, NULL, &e), &e);
    expect_einval(coffer_create_dir(r, NULL, dir, NULL, NULL, &e), &e);
    expect_einval(coffer_create_dir(r, "ns", NULL, NULL, NULL, &e), &e);
    expect_einval(coffer_create_file(NULL, "ns", dir, NULL, NULL, &e), &e);
    expect_einval(coffer_create_file(r, NULL, dir, NULL, NULL, &e), &e);
    expect_einval(coffer_create_file(r, "ns", NULL, NULL, NULL, &e), &e);
    expect_einval(coffer_create_file(r, "ns", "", NULL, NULL, &e), &e);
    expect_einval(coffer_create_fd(r, NULL, 0, NULL, NULL, &e), &e);
    expect_einval(coffer_create_command(r, "ns", NULL, NULL, NULL, &e), &e);
    expect_einval(coffer_writer_begin(NULL, "ns", NULL, &w, &e), &e);
    expect_einval(coffer_writer_begin(r, "ns", NULL, NULL, &e), &e);
    expect_einval(coffer_writer_write(NULL, "x", 1, &e), &e);
    expect_einval(coffer_writer_commit(NULL, NULL, &e), &e);
    coffer_writer_abort(NULL);
    expect_einval(coffer_list(r, "ns", NULL, &n, &e), &e);
    expect_einval(coffer_list(r, "ns", &list, NULL, &e), &e);
    coffer_list_free(NULL, 7);
    expect_einval(coffer_show(r, "ns", NULL, NULL, NULL, &e), &e);
    expect_einval(coffer_show(NULL, "ns", NULL, &json, NULL, &e), &e);
    expect_einval(coffer_latest(r, "ns", NULL, &e), &e);
    expect_einval(coffer_latest(NULL, "ns", id, &e), &e);
    expect_einval(coffer_restore_dir(r, "ns", NULL, NULL, NULL, NULL, &e), &e);
    expect_einval(coffer_restore_cb(r, "ns", NULL, NULL, NULL, NULL, NULL, &e), &e);
    expect_einval(coffer_restore_command(r, "ns", NULL, NULL, NULL, NULL, &e), &e);
    expect_einval(coffer_verify(NULL, "ns", NULL, NULL, &e), &e);
    expect_einval(coffer_remove(r, "ns", NULL, &e), &e);
    expect_einval(coffer_prune(r, "ns", NULL, NULL, &e), &e);
    expect_einval(coffer_prune(NULL, "ns", &keep, NULL, &e), &e);
    coffer_free(NULL);
    assert_string_equal(coffer_repo_name(NULL), "");
    assert_non_null(coffer_strerror(12345));
    assert_non_null(coffer_strerror(-12345));

    expect_einval(coffer_snapshotter_new(NULL, &so, &s, &e), &e);
    expect_einval(coffer_snapshotter_new(r, NULL, &s, &e), &e);
    expect_einval(coffer_snapshotter_new(r, &so, NULL, &e), &e);
    so.write_state = NULL;
    expect_einval(coffer_snapshotter_new(r, &so, &s, &e), &e);
    expect_einval(coffer_snapshotter_stats_get(NULL, &ss, &e), &e);
    coffer_snapshotter_applied(NULL, 5);
    coffer_snapshotter_trigger(NULL);
    coffer_snapshotter_stop(NULL, 1);
    coffer_snapshotter_free(NULL);
    expect_einval(coffer_snapshot_limit_new(2, 0, NULL, &e), &e);
    coffer_snapshot_limit_free(NULL);

    expect_einval(coffer_bootstrap(NULL, 0, &bo, &br, &e), &e);
    expect_einval(coffer_bootstrap(r, 0, NULL, &br, &e), &e);
    expect_einval(coffer_bootstrap(r, 0, &bo, NULL, &e), &e);
    /* A destination that cannot be used is refused before the partition is even listed (an empty
     * one would otherwise answer ENOTFOUND, a full one only after a download). */
    coffer_bootstrap_options bad_fd = {.struct_size = sizeof bad_fd, .use_fd = 1, .fd = -1};
    expect_einval(coffer_bootstrap(r, 9, &bad_fd, &br, &e), &e);
    assert_non_null(strstr(e.message, "fd"));
    coffer_bootstrap_options no_dir = {.struct_size = sizeof no_dir, .dest_dir = ""};
    expect_einval(coffer_bootstrap(r, 9, &no_dir, &br, &e), &e);
    assert_non_null(strstr(e.message, "dest_dir"));

    /* An exclusion list with a hole in it. */
    const char *holes[] = {"*.tmp", NULL};
    coffer_create_options co = {.struct_size = sizeof co, .exclude = holes, .nexclude = 2};
    expect_einval(coffer_create_dir(r, "ns", dir, &co, NULL, &e), &e);
    /* And without an error struct: the status only. */
    assert_int_equal(coffer_list(r, NULL, &list, &n, NULL), COFFER_EINVAL);
}

/* struct_size: too small for its own field, larger with a set tail, larger with a zero tail. */
static int count_bytes(void *ctx, const void *p, size_t n)
{
    (void)p;
    *(size_t *)ctx += n;
    return COFFER_OK;
}

/* coffer_bootstrap_result's struct_size: unset is refused before anything is delivered; an older
 * program's shorter struct gets whole fields up to its end and not a byte more; a newer
 * program's longer one keeps what this library does not know. */
static void test_bootstrap_result_sizes(fixture *f)
{
    coffer_label labels[] = {{"index", "7"}, {"term", "2"}};
    coffer_create_options co = {.struct_size = sizeof co, .labels = labels, .nlabels = 2};
    coffer_writer *w;
    assert_int_equal(coffer_writer_begin(f->repo, "0", &co, &w, NULL), COFFER_OK);
    assert_int_equal(coffer_writer_write(w, "state", 5, NULL), COFFER_OK);
    assert_int_equal(coffer_writer_commit(w, NULL, NULL), COFFER_OK);
    size_t delivered = 0;
    coffer_bootstrap_options bo = {.struct_size = sizeof bo, .write = count_bytes, .write_ctx = &delivered};
    coffer_error e;

    coffer_bootstrap_result unset = {.index = 99};
    expect_einval(coffer_bootstrap(f->repo, 0, &bo, &unset, &e), &e);
    assert_non_null(strstr(e.message, "coffer_bootstrap_result"));
    assert_int_equal(delivered, 0);
    assert_int_equal(unset.index, 99);

    unsigned char old[sizeof(coffer_bootstrap_result) + 8];
    memset(old, 0xab, sizeof old);
    size_t through_index = offsetof(coffer_bootstrap_result, index) + sizeof(uint64_t);
    ((coffer_bootstrap_result *)old)->struct_size = through_index + 4; /* half of term */
    assert_int_equal(coffer_bootstrap(f->repo, 0, &bo, (coffer_bootstrap_result *)old, &e), COFFER_OK);
    assert_int_equal(delivered, 5);
    uint64_t index;
    memcpy(&index, old + offsetof(coffer_bootstrap_result, index), sizeof index);
    assert_int_equal(index, 7);
    for (size_t i = through_index; i < sizeof old; i++)
        if (old[i] != 0xab)
            fail_msg("byte %zu of the result was written (struct_size %zu)", i, through_index + 4);
    assert_int_equal(((coffer_bootstrap_result *)old)->struct_size, through_index + 4);

    struct {
        coffer_bootstrap_result r;
        unsigned char tail[16];
    } newer;
    memset(&newer, 0xcd, sizeof newer);
    newer.r.struct_size = sizeof newer;
    assert_int_equal(coffer_bootstrap(f->repo, 0, &bo, &newer.r, &e), COFFER_OK);
    assert_int_equal(newer.r.index, 7);
    assert_int_equal(newer.r.term, 2);
    assert_int_equal(newer.r.fell_back, 0);
    assert_int_equal(newer.r.skipped, 0);
    assert_non_null(strchr(newer.r.id, 'Z'));
    assert_int_equal(newer.r.struct_size, sizeof newer);
    assert_untouched(newer.tail, sizeof newer.tail, 0xcd);
}

static void test_struct_sizes(void **state)
{
    fixture *f = *state;
    coffer_error e;
    coffer_snapshotter *s;
    struct {
        coffer_snapshotter_options o;
        unsigned char tail[32];
    } big = {.o = options_for(&f->app)};
    big.o.struct_size = sizeof big;
    assert_int_equal(coffer_snapshotter_new(f->repo, &big.o, &s, &e), COFFER_OK);
    coffer_snapshotter_free(s);
    big.tail[31] = 1;
    assert_int_equal(coffer_snapshotter_new(f->repo, &big.o, &s, &e), COFFER_ENOTSUP);
    assert_non_null(strstr(e.message, "newer"));
    big.o.struct_size = 3;
    expect_einval(coffer_snapshotter_new(f->repo, &big.o, &s, &e), &e);
    /* Options are refused before the repository is listed for the newest snapshot (which, in
     * an empty namespace, would answer ENOTFOUND instead). */
    coffer_restore_options unset_ro = {.struct_size = 0};
    expect_einval(coffer_verify(f->repo, "empty", NULL, &unset_ro, &e), &e);
    assert_non_null(strstr(e.message, "coffer_restore_options"));

    coffer_bootstrap_result br = {.struct_size = sizeof br};
    struct {
        coffer_bootstrap_options o;
        unsigned char tail[16];
    } bb = {.o = {.write = no_write}};
    bb.o.struct_size = 1;
    expect_einval(coffer_bootstrap(f->repo, 0, &bb.o, &br, &e), &e);
    bb.o.struct_size = sizeof bb;
    bb.tail[0] = 9;
    assert_int_equal(coffer_bootstrap(f->repo, 0, &bb.o, &br, &e), COFFER_ENOTSUP);
    test_bootstrap_result_sizes(f);

    coffer_snapshotter_options so = options_for(&f->app);
    assert_int_equal(coffer_snapshotter_new(f->repo, &so, &s, &e), COFFER_OK);
    coffer_snapshotter_stats st = {.struct_size = 2};
    expect_einval(coffer_snapshotter_stats_get(s, &st, &e), &e);
    /* An older program's shorter stats: only its fields are written. */
    unsigned char old[sizeof(coffer_snapshotter_stats) + 8];
    memset(old, 0xab, sizeof old);
    ((coffer_snapshotter_stats *)old)->struct_size = offsetof(coffer_snapshotter_stats, failed);
    assert_int_equal(coffer_snapshotter_stats_get(s, (coffer_snapshotter_stats *)old, &e), COFFER_OK);
    assert_int_equal(old[offsetof(coffer_snapshotter_stats, failed)], 0xab);
    /* A newer program's longer stats: the rule of coffer_result, struct_size and the fields this
     * library does not know left as they were. */
    struct {
        coffer_snapshotter_stats st;
        unsigned char tail[8];
    } newer;
    memset(&newer, 0xcd, sizeof newer);
    newer.st.struct_size = sizeof newer;
    assert_int_equal(coffer_snapshotter_stats_get(s, &newer.st, &e), COFFER_OK);
    assert_int_equal(newer.st.struct_size, sizeof newer);
    assert_int_equal(newer.st.taken, 0);
    assert_int_equal(newer.st.last_error.status, COFFER_OK);
    assert_untouched(newer.tail, sizeof newer.tail, 0xcd);
    coffer_snapshotter_free(s);
}

static int stream_in_with(coffer_repo *r, const char *ns, const coffer_create_options *co, coffer_error *e)
{
    coffer_writer *w;
    int st = coffer_writer_begin(r, ns, co, &w, e);
    if (st)
        return st;
    coffer_writer_write(w, "abc", 3, NULL);
    return coffer_writer_commit(w, NULL, e);
}

static int stream_in(coffer_repo *r, const char *ns, coffer_error *e)
{
    return stream_in_with(r, ns, NULL, e);
}

/* Names from the application: what climbs, splits or hides is refused; what is merely unusual
 * (percent signs, unicode) works and stays itself; what is too long is refused, never cut. */
static void test_names(void **state)
{
    fixture *f = *state;
    coffer_error e;
    const char *bad[] = {"",     ".",   "..",   "/",         "a/b",  "../up",
                         "a\\b", "a@b", "\x01", "tab\there", "nl\n", "del\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_einval(stream_in(f->repo, bad[i], &e), &e);
        assert_non_null(strstr(e.message, "namespace"));
    }
    /* Longer than a path segment can be: refused whole, by every call, and not cut to 255 bytes
     * into another namespace. */
    char longer[300], cut[256], huge[5000];
    memset(longer, 'n', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    memcpy(cut, longer, 255);
    cut[255] = '\0';
    memset(huge, 'h', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    expect_einval(stream_in(f->repo, longer, &e), &e);
    assert_non_null(strstr(e.message, "255"));
    assert_int_equal(listed(f->repo, cut), 0);
    expect_einval(stream_in(f->repo, huge, &e), &e);
    assert_true(strlen(e.message) < 400);
    coffer_snapshot_info *list;
    size_t n;
    expect_einval(coffer_list(f->repo, huge, &list, &n, &e), &e);

    /* Unusual but harmless: stored and listed under exactly that name. */
    const char *odd[] = {"100%", "%2e%2e", "%s%n%x", "r\xc3\xa9sum\xc3\xa9-\xe2\x9c\x93", cut};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        assert_int_equal(stream_in(f->repo, odd[i], &e), COFFER_OK);
        assert_int_equal(listed(f->repo, odd[i]), 1);
    }
    assert_int_equal(listed(f->repo, ".."), 0);

    /* Ids that are not ids. */
    const char *ids[] = {
        "", "..", "../../etc/passwd", "%s%s%s", "20261122T153000Z-7f3a/..", "20261122T153000Z-7f3a\n"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        expect_einval(coffer_verify(f->repo, "100%", ids[i], NULL, &e), &e);
}

static int create_labelled(coffer_repo *r, const coffer_label *labels, size_t n, coffer_error *e)
{
    coffer_create_options co = {.struct_size = sizeof co, .labels = labels, .nlabels = n};
    return stream_in_with(r, "labels", &co, e);
}

/* Labels end up as JSON strings in the manifest: what JSON cannot hold, or holds twice, is
 * refused before anything is uploaded rather than after the archive is. */
static void test_labels(void **state)
{
    fixture *f = *state;
    coffer_error e;
    coffer_label bad_value[] = {{"owner", "\xff\xfe"}};
    expect_einval(create_labelled(f->repo, bad_value, 1, &e), &e);
    assert_non_null(strstr(e.message, "UTF-8"));
    coffer_label bad_key[] = {{"\xc3", "x"}};
    expect_einval(create_labelled(f->repo, bad_key, 1, &e), &e);
    coffer_label twice[] = {{"index", "1"}, {"index", "2"}};
    expect_einval(create_labelled(f->repo, twice, 2, &e), &e);
    assert_non_null(strstr(e.message, "index"));
    assert_int_equal(listed(f->repo, "labels"), 0);

    /* Control characters and unicode in a value are JSON-escaped and come back as given. */
    char big[5000];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    coffer_label odd[] = {{"note", "line1\nline2\t\"q\""}, {"who", "\xe2\x9c\x93"}, {"big", big}};
    assert_int_equal(create_labelled(f->repo, odd, 3, &e), COFFER_OK);
    coffer_snapshot_info *list;
    size_t n;
    assert_int_equal(coffer_list(f->repo, "labels", &list, &n, NULL), COFFER_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].nlabels, 3);
    for (size_t i = 0; i < 3; i++)
        for (size_t k = 0; k < 3; k++)
            if (!strcmp(list[0].labels[i].key, odd[k].key))
                assert_string_equal(list[0].labels[i].value, odd[k].value);
    coffer_list_free(list, n);

    /* The snapshotter's topic and node id become labels: refused at start, not at each try. */
    coffer_snapshotter_options so = options_for(&f->app);
    coffer_snapshotter *s;
    so.topic = "\xff";
    expect_einval(coffer_snapshotter_new(f->repo, &so, &s, &e), &e);
    assert_non_null(strstr(e.message, "topic"));
    so.topic = "orders";
    so.node_id = "n\xc3";
    expect_einval(coffer_snapshotter_new(f->repo, &so, &s, &e), &e);
    assert_non_null(strstr(e.message, "node_id"));
}

/* Garbage in every COFFER_SNAPSHOT_* variable is refused, naming the variable; good values pass. */
static void test_environment_garbage(void **state)
{
    fixture *f = *state;
    static const char *const numeric[] = {
        "COFFER_SNAPSHOT_LOG_THRESHOLD", "COFFER_SNAPSHOT_TIME_THRESHOLD_SECS",
        "COFFER_SNAPSHOT_CHECK_INTERVAL_SECS", "COFFER_SNAPSHOT_RETENTION_COUNT"};
    static const char *const garbage[] = {
        "",      "-1",   " -5", "+5", "18446744073709551616",   "1h", "3600 ",
        " 3600", "0x10", "1e3", "3",  "99999999999999999999999"};
    coffer_snapshotter_options so = options_for(&f->app);
    so.use_environment = 1;
    coffer_snapshotter *s;
    coffer_error e;
    for (size_t v = 0; v < sizeof numeric / sizeof numeric[0]; v++) {
        for (size_t g = 0; g < sizeof garbage / sizeof garbage[0]; g++) {
            if (!strcmp(garbage[g], "3")) /* a good value in the middle of bad ones */
                continue;
            setenv(numeric[v], garbage[g], 1);
            int st = coffer_snapshotter_new(f->repo, &so, &s, &e);
            if (st == COFFER_OK) {
                coffer_snapshotter_free(s);
                fail_msg("%s='%s' was accepted", numeric[v], garbage[g]);
            }
            assert_int_equal(st, COFFER_EINVAL);
            if (!strstr(e.message, numeric[v]))
                fail_msg("%s='%s': message '%s' does not name it", numeric[v], garbage[g], e.message);
        }
        setenv(numeric[v], "3", 1);
        assert_int_equal(coffer_snapshotter_new(f->repo, &so, &s, &e), COFFER_OK);
        coffer_snapshotter_free(s);
        unsetenv(numeric[v]);
    }
    /* The node's limit reads its variable only when asked to, and refuses garbage and zero. */
    coffer_snapshot_limit *l;
    for (size_t g = 0; g < sizeof garbage / sizeof garbage[0]; g++) {
        if (!strcmp(garbage[g], "3"))
            continue;
        setenv("COFFER_SNAPSHOT_MAX_CONCURRENT", garbage[g], 1);
        assert_int_equal(coffer_snapshot_limit_new(0, 0, &l, &e), COFFER_OK);
        coffer_snapshot_limit_free(l);
        int st = coffer_snapshot_limit_new(0, 1, &l, &e);
        if (st == COFFER_OK) {
            coffer_snapshot_limit_free(l);
            fail_msg("COFFER_SNAPSHOT_MAX_CONCURRENT='%s' was accepted", garbage[g]);
        }
        assert_int_equal(st, COFFER_EINVAL);
        assert_non_null(strstr(e.message, "COFFER_SNAPSHOT_MAX_CONCURRENT"));
    }
    static const char *const out_of_range[] = {"0", "1025"};
    for (size_t g = 0; g < 2; g++) {
        setenv("COFFER_SNAPSHOT_MAX_CONCURRENT", out_of_range[g], 1);
        expect_einval(coffer_snapshot_limit_new(0, 1, &l, &e), &e);
        assert_non_null(strstr(e.message, "COFFER_SNAPSHOT_MAX_CONCURRENT"));
    }
    unsetenv("COFFER_SNAPSHOT_MAX_CONCURRENT");
    expect_einval(coffer_snapshot_limit_new(COFFER_SNAPSHOT_LIMIT_MAX + 1, 0, &l, &e), &e);
    assert_non_null(strstr(e.message, "max"));
    expect_einval(coffer_snapshot_limit_new(UINT32_MAX, 0, &l, &e), &e);
    assert_int_equal(coffer_snapshot_limit_new(COFFER_SNAPSHOT_LIMIT_MAX, 0, &l, &e), COFFER_OK);
    coffer_snapshot_limit_free(l);
    /* Where the state is staged: refused at start, naming where the path came from. */
    coffer_snapshotter_options staged = options_for(&f->app);
    staged.tmp_dir = "/nonexistent/stage";
    expect_einval(coffer_snapshotter_new(f->repo, &staged, &s, &e), &e);
    assert_non_null(strstr(e.message, "tmp_dir"));
    staged.tmp_dir = NULL;
    char *saved = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
    setenv("TMPDIR", "/nonexistent/tmp", 1);
    expect_einval(coffer_snapshotter_new(f->repo, &staged, &s, &e), &e);
    assert_non_null(strstr(e.message, "TMPDIR"));
    if (saved)
        setenv("TMPDIR", saved, 1);
    else
        unsetenv("TMPDIR");
    free(saved);
    setenv("COFFER_SNAPSHOT_COMPRESSION", "GZIP ", 1);
    expect_einval(coffer_snapshotter_new(f->repo, &so, &s, &e), &e);
    assert_non_null(strstr(e.message, "COFFER_SNAPSHOT_COMPRESSION"));
    unsetenv("COFFER_SNAPSHOT_COMPRESSION");
}

/* Intervals near 2^64 ms (options, or seconds from the environment) mean "practically never":
 * the thread sleeps, rather than wrapping its deadline into the past and spinning. Same for a
 * backoff that large after a failure. */
static void test_huge_intervals_do_not_spin(void **state)
{
    fixture *f = *state;
    coffer_snapshotter_options so = options_for(&f->app);
    coffer_snapshotter *s;
    so.check_interval_ms = UINT64_MAX;
    so.time_threshold_ms = UINT64_MAX;
    assert_int_equal(coffer_snapshotter_new(f->repo, &so, &s, NULL), COFFER_OK);
    sleep_ms(100);
    double t0 = cpu_seconds();
    sleep_ms(300);
    double used = cpu_seconds() - t0;
    coffer_snapshotter_free(s);
    assert_true(used < 0.1);

    so = options_for(&f->app);
    so.use_environment = 1;
    setenv("COFFER_SNAPSHOT_CHECK_INTERVAL_SECS", "18446744073709551", 1);
    assert_int_equal(coffer_snapshotter_new(f->repo, &so, &s, NULL), COFFER_OK);
    sleep_ms(100);
    t0 = cpu_seconds();
    sleep_ms(300);
    used = cpu_seconds() - t0;
    coffer_snapshotter_free(s);
    unsetenv("COFFER_SNAPSHOT_CHECK_INTERVAL_SECS");
    assert_true(used < 0.1);

    /* A failure with a backoff of ~2^64 ms: one attempt, then quiet. */
    so = options_for(&f->app);
    so.retry_initial_ms = UINT64_MAX - 5;
    so.retry_max_ms = UINT64_MAX;
    f->app.fail_state = 1;
    assert_int_equal(coffer_snapshotter_new(f->repo, &so, &s, NULL), COFFER_OK);
    coffer_snapshotter_trigger(s);
    wait_attempts(s, 1);
    sleep_ms(300);
    assert_int_equal(stats(s).failed, 1);
    coffer_snapshotter_free(s);
}

/* write_state claiming an index below the newest snapshot's would store an older state as the
 * newest, and retention would then remove the newer ones: refused, counted, nothing stored. */
static void test_index_going_back(void **state)
{
    fixture *f = *state;
    coffer_snapshotter_options so = options_for(&f->app);
    coffer_snapshotter *s;
    f->app.applied = 100;
    assert_int_equal(coffer_snapshotter_new(f->repo, &so, &s, NULL), COFFER_OK);
    coffer_snapshotter_applied(s, 100);
    coffer_snapshotter_trigger(s);
    wait_attempts(s, 1);
    assert_int_equal(stats(s).taken, 1);

    pthread_mutex_lock(&f->app.mu);
    f->app.report_index = 50;
    pthread_mutex_unlock(&f->app.mu);
    coffer_snapshotter_trigger(s);
    wait_attempts(s, 2);
    coffer_snapshotter_stats st = stats(s);
    coffer_snapshotter_stop(s, 0);
    assert_int_equal(st.taken, 1);
    assert_true(st.failed >= 1);
    assert_int_equal(st.last_index, 100);
    assert_int_equal(st.truncated_through, 100);
    assert_int_equal(st.last_error.status, COFFER_EINVAL);
    assert_non_null(strstr(st.last_error.message, "50"));
    assert_non_null(strstr(st.last_error.message, "100"));
    assert_int_equal(listed(f->repo, "0"), 1);
    assert_int_equal(f->app.truncated_through, 100);
    coffer_snapshotter_free(s);
}

/* write_state that writes nothing: an empty state at the index it gave (a state machine with
 * nothing in it yet is a state). */
static void test_empty_state(void **state)
{
    fixture *f = *state;
    f->app.applied = 3;
    f->app.write_nothing = 1;
    coffer_snapshotter *s = started(f);
    wait_attempts(s, 1);
    assert_int_equal(stats(s).taken, 1);
    assert_int_equal(stats(s).last_index, 3);
    coffer_snapshotter_free(s);
    coffer_snapshot_info *list;
    size_t n;
    assert_int_equal(coffer_list(f->repo, "0", &list, &n, NULL), COFFER_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].raw_size, 0);
    coffer_list_free(list, n);
}

/* A truncation that fails: the snapshot stays stored and counted; the failure is counted too; the
 * next snapshot truncates. */
static void test_truncate_fails(void **state)
{
    fixture *f = *state;
    f->app.applied = 10;
    f->app.fail_truncate = 1;
    coffer_snapshotter *s = started(f);
    wait_attempts(s, 2); /* taken 1 + failed 1 */
    coffer_snapshotter_stats st = stats(s);
    assert_int_equal(st.taken, 1);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.truncated_through, 0);
    assert_non_null(strstr(st.last_error.message, "truncate_log"));
    pthread_mutex_lock(&f->app.mu);
    f->app.fail_truncate = 0;
    f->app.applied = 20;
    pthread_mutex_unlock(&f->app.mu);
    coffer_snapshotter_applied(s, 20);
    coffer_snapshotter_trigger(s);
    wait_attempts(s, 3);
    st = stats(s);
    assert_int_equal(st.taken, 2);
    assert_int_equal(st.truncated_through, 20);
    coffer_snapshotter_free(s);
}

/* stop from inside write_state (documented as not allowed): it cannot join its own thread, but it
 * must not make a later free return while that thread still runs. */
static void test_stop_from_callback(void **state)
{
    fixture *f = *state;
    coffer_snapshotter_options so = options_for(&f->app);
    coffer_snapshotter *s;
    f->app.applied = 5;
    f->app.stop_inside = 1;
    assert_int_equal(coffer_snapshotter_new(f->repo, &so, &s, NULL), COFFER_OK);
    f->app.self = s;
    coffer_snapshotter_trigger(s);
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&f->app.mu);
        int back = f->app.stop_returned;
        pthread_mutex_unlock(&f->app.mu);
        if (back)
            break;
        sleep_ms(5);
    }
    coffer_snapshotter_free(s); /* joins the thread, which is still in write_state */
    pthread_mutex_lock(&f->app.mu);
    int done = f->app.states_done;
    pthread_mutex_unlock(&f->app.mu);
    assert_int_equal(done, 1);
    assert_int_equal(listed(f->repo, "0"), 0); /* cancelled */
}

/* A log function that calls the snapshotter back (stats, trigger, applied) on the lines the
 * snapshotter's thread writes must not deadlock it. */
static void test_log_callback_calls_back(void **state)
{
    fixture *f = *state;
    coffer_snapshotter_options so = options_for(&f->app);
    coffer_snapshotter *s;
    f->app.applied = 5;
    f->app.fail_state = 1;
    assert_int_equal(coffer_snapshotter_new(f->repo, &so, &s, NULL), COFFER_OK);
    atomic_store(&f->log.reenter, s);
    coffer_snapshotter_trigger(s);
    wait_attempts(s, 2);
    pthread_mutex_lock(&f->app.mu);
    f->app.fail_state = 0;
    pthread_mutex_unlock(&f->app.mu);
    /* Each line triggers another snapshot: one in flight nearly always, so count only. */
    for (int i = 0; i < 2000 && stats(s).taken < 1; i++)
        sleep_ms(5);
    atomic_store(&f->log.reenter, NULL);
    assert_true(stats(s).taken >= 1);
    coffer_snapshotter_free(s);
    assert_true(f->log.reentered >= 2);
    assert_true(logged(&f->log, "snapshot failed"));
}

typedef struct stopper {
    coffer_snapshotter *s;
    int in_flight_after; /* as the stats said when stop returned */
    uint64_t taken_after;
} stopper;

static void *stop_thread(void *arg)
{
    stopper *p = arg;
    coffer_snapshotter_stop(p->s, 0);
    coffer_snapshotter_stats st = {.struct_size = sizeof st};
    coffer_snapshotter_stats_get(p->s, &st, NULL);
    p->in_flight_after = st.in_flight;
    p->taken_after = st.taken;
    return NULL;
}

/* Two threads stop at once while a snapshot is in flight: both return only once it is done. */
static void test_concurrent_stops(void **state)
{
    fixture *f = *state;
    coffer_snapshotter_options so = options_for(&f->app);
    coffer_snapshotter *s;
    f->app.applied = 7;
    f->app.slow_ms = 400;
    assert_int_equal(coffer_snapshotter_new(f->repo, &so, &s, NULL), COFFER_OK);
    coffer_snapshotter_trigger(s);
    for (int i = 0; i < 2000 && !stats(s).in_flight; i++)
        sleep_ms(2);
    stopper a = {s, -1, 0}, b = {s, -1, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, stop_thread, &a);
    sleep_ms(50);
    pthread_create(&tb, NULL, stop_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.in_flight_after, 0);
    assert_int_equal(b.in_flight_after, 0);
    assert_int_equal(a.taken_after, 1);
    assert_int_equal(b.taken_after, 1);
    coffer_snapshotter_trigger(s); /* after stop: nothing happens, nothing breaks */
    coffer_snapshotter_applied(s, 1000000000);
    coffer_snapshotter_free(s);
}

typedef struct applier {
    coffer_snapshotter *s;
    uint64_t from, to;
} applier;

static void *apply_thread(void *arg)
{
    applier *p = arg;
    for (uint64_t i = p->from; i <= p->to; i++)
        coffer_snapshotter_applied(p->s, i);
    return NULL;
}

/* applied() from several threads at once, out of order, while snapshots run: the counter ends at
 * the highest index given, and snapshots are taken. */
static void test_applied_from_many_threads(void **state)
{
    fixture *f = *state;
    coffer_snapshotter_options so = options_for(&f->app);
    so.log_size_threshold = 5000;
    coffer_snapshotter *s;
    f->app.applied = 40000;
    assert_int_equal(coffer_snapshotter_new(f->repo, &so, &s, NULL), COFFER_OK);
    applier ap[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        ap[i] = (applier){s, (uint64_t)i * 10000 + 1, (uint64_t)(i + 1) * 10000};
        pthread_create(&t[i], NULL, apply_thread, &ap[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    wait_attempts(s, 1);
    assert_int_equal(stats(s).applied, 40000);
    coffer_snapshotter_free(s);
    assert_true(listed(f->repo, "0") >= 1);
}

/* Two snapshotters for one partition in one process (a misconfiguration: two nodes of a group
 * snapshotting into one namespace): their snapshots interleave, none fails, and retention, run
 * by each, keeps the newest retention_count of all of them (never a half-uploaded one). */
static void test_two_snapshotters_one_partition(void **state)
{
    fixture *f = *state;
    app other = {.applied = 0};
    pthread_mutex_init(&other.mu, NULL);
    f->app.applied = 10;
    other.applied = 10;
    coffer_snapshotter_options so = options_for(&f->app), so2 = options_for(&other);
    so2.node_id = "node-2";
    coffer_snapshotter *a, *b;
    assert_int_equal(coffer_snapshotter_new(f->repo, &so, &a, NULL), COFFER_OK);
    assert_int_equal(coffer_snapshotter_new(f->repo, &so2, &b, NULL), COFFER_OK);
    for (uint64_t round = 1; round <= 3; round++) {
        coffer_snapshotter_trigger(a);
        coffer_snapshotter_trigger(b);
        wait_attempts(a, round);
        wait_attempts(b, round);
    }
    coffer_snapshotter_stats sa = stats(a), sb = stats(b);
    coffer_snapshotter_free(a);
    coffer_snapshotter_free(b);
    if (sa.failed + sb.failed)
        fail_msg("failed: %s | %s", sa.last_error.message, sb.last_error.message);
    assert_int_equal(sa.taken + sb.taken, 6);
    assert_int_equal(listed(f->repo, "0"), 3);
    pthread_mutex_destroy(&other.mu);
}

typedef struct writer_job {
    coffer_writer *w;
    int commit; /* 1: commit, 0: abort */
    int st;
} writer_job;

static void *writer_thread(void *arg)
{
    writer_job *j = arg;
    if (j->commit < 0) {
        j->st = coffer_writer_write(j->w, "payload", 7, NULL);
        return NULL;
    }
    if (j->commit)
        j->st = coffer_writer_commit(j->w, NULL, NULL);
    else
        coffer_writer_abort(j->w);
    return NULL;
}

static void run_on_thread(writer_job *j)
{
    pthread_t t;
    pthread_create(&t, NULL, writer_thread, j);
    pthread_join(t, NULL);
}

/* A writer handed from thread to thread (begin, write, commit or abort on three of them). */
static void test_writer_across_threads(void **state)
{
    fixture *f = *state;
    coffer_writer *w;
    assert_int_equal(coffer_writer_begin(f->repo, "handed", NULL, &w, NULL), COFFER_OK);
    writer_job j = {w, -1, -1};
    run_on_thread(&j);
    assert_int_equal(j.st, COFFER_OK);
    j.commit = 1;
    run_on_thread(&j);
    assert_int_equal(j.st, COFFER_OK);
    assert_int_equal(coffer_writer_begin(f->repo, "handed", NULL, &w, NULL), COFFER_OK);
    j = (writer_job){w, -1, -1};
    run_on_thread(&j);
    j.commit = 0;
    run_on_thread(&j);
    assert_int_equal(listed(f->repo, "handed"), 1);
}

/* Closing a repository while a writer or a snapshotter of it lives is the caller's bug; it is
 * said in the log, and the close happens when the last of them is done instead of freeing what
 * they still use. */
static void test_close_under_a_writer(void **state)
{
    fixture *f = *state;
    log_capture cap = {.text = NULL};
    pthread_mutex_init(&cap.mu, NULL);
    coffer_repo_options ro = {.struct_size = sizeof ro, .log = capture, .log_ctx = &cap};
    coffer_repo *r;
    assert_int_equal(coffer_repo_open(f->repo_path, &ro, &r, NULL), COFFER_OK);
    coffer_writer *w;
    assert_int_equal(coffer_writer_begin(r, "late", NULL, &w, NULL), COFFER_OK);
    coffer_snapshotter_options so = options_for(&f->app);
    coffer_snapshotter *s;
    assert_int_equal(coffer_snapshotter_new(r, &so, &s, NULL), COFFER_OK);
    coffer_repo_close(r);
    assert_true(logged(&cap, "still open"));
    assert_int_equal(coffer_writer_write(w, "xyz", 3, NULL), COFFER_OK);
    assert_int_equal(coffer_writer_commit(w, NULL, NULL), COFFER_OK);
    coffer_snapshotter_trigger(s);
    wait_attempts(s, 1);
    coffer_snapshotter_free(s); /* the last user: the repository is closed now */
    assert_int_equal(listed(f->repo, "late"), 1);
    free(cap.text);
    pthread_mutex_destroy(&cap.mu);
}

/* A stream snapshot of partition 0 labelled as the snapshotter labels them. */
static void snapshot_state(coffer_repo *r, uint64_t index, const void *p, size_t n, size_t chunk)
{
    char idx[24];
    snprintf(idx, sizeof idx, "%" PRIu64, index);
    coffer_label labels[] = {{"index", idx}, {"term", "1"}, {"topic", "orders"}};
    coffer_create_options co = {.struct_size = sizeof co,
                                .compression = COFFER_COMPRESSION_NONE,
                                .chunk_size = chunk,
                                .labels = labels,
                                .nlabels = 3};
    coffer_writer *w;
    assert_int_equal(coffer_writer_begin(r, "0", &co, &w, NULL), COFFER_OK);
    assert_int_equal(coffer_writer_write(w, p, n, NULL), COFFER_OK);
    assert_int_equal(coffer_writer_commit(w, NULL, NULL), COFFER_OK);
}

static void archive_path(const char *repo_path, const char *id, char *out, size_t cap)
{
    char ns_dir[400];
    snprintf(ns_dir, sizeof ns_dir, "%s/0", repo_path);
    DIR *d = opendir(ns_dir);
    assert_non_null(d);
    struct dirent *de;
    out[0] = '\0';
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, id, strlen(id)) && !strstr(de->d_name, ".json"))
            snprintf(out, cap, "%s/%s", ns_dir, de->d_name);
    closedir(d);
    assert_true(out[0] != '\0');
}

static void flip_at(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char b[4];
    assert_int_equal(pread(fd, b, sizeof b, at), (ssize_t)sizeof b);
    for (size_t i = 0; i < sizeof b; i++)
        b[i] ^= 0xa5;
    assert_int_equal(pwrite(fd, b, sizeof b, at), (ssize_t)sizeof b);
    close(fd);
}

static char *read_all(const char *path, size_t *n)
{
    char *p = NULL;
    if (cf_fs_read_small(path, 1 << 24, &p, n, NULL))
        return NULL;
    return p;
}

/* Bootstrap into a directory: a missing directory is said, a planted symlink at the staging name
 * is not followed, a failure leaves an existing state as it was and nothing beside it. */
static void test_bootstrap_directory(void **state)
{
    fixture *f = *state;
    snapshot_state(f->repo, 10, "state ten\n", 10, 0);
    char newest[COFFER_ID_SIZE];
    assert_int_equal(coffer_latest(f->repo, "0", newest, NULL), COFFER_OK);
    coffer_bootstrap_result br = {.struct_size = sizeof br};
    coffer_error e;

    char missing[400];
    snprintf(missing, sizeof missing, "%s/no/such/dir", dir);
    coffer_bootstrap_options bo = {.struct_size = sizeof bo, .dest_dir = missing};
    assert_int_equal(coffer_bootstrap(f->repo, 0, &bo, &br, &e), COFFER_EIO);
    assert_non_null(strstr(e.message, missing));

    /* Someone who can write the node's directory plants .state.ID -> a file of the victim's. */
    char node[400], victim[400], planted[500], statef[500];
    snprintf(node, sizeof node, "%s/node", dir);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    snprintf(planted, sizeof planted, "%s/.state.%s", node, newest);
    snprintf(statef, sizeof statef, "%s/state", node);
    assert_int_equal(mkdir(node, 0700), 0);
    assert_int_equal(cf_fs_write_atomic(victim, "precious", 8, 0600, NULL), 0);
    assert_int_equal(symlink(victim, planted), 0);
    bo.dest_dir = node;
    assert_int_equal(coffer_bootstrap(f->repo, 0, &bo, &br, &e), COFFER_OK);
    size_t n;
    char *got = read_all(victim, &n);
    assert_non_null(got);
    assert_int_equal(n, 8);
    assert_memory_equal(got, "precious", 8);
    free(got);
    got = read_all(statef, &n);
    assert_non_null(got);
    assert_int_equal(n, 10);
    assert_memory_equal(got, "state ten\n", 10);
    free(got);

    /* The only snapshot damaged: the state already there stays, nothing is left beside it. */
    char arch[600];
    archive_path(f->repo_path, newest, arch, sizeof arch);
    flip_at(arch, 0);
    int st = coffer_bootstrap(f->repo, 0, &bo, &br, &e);
    assert_true(st == COFFER_EDIGEST || st == COFFER_ECORRUPT);
    got = read_all(statef, &n);
    assert_non_null(got);
    assert_memory_equal(got, "state ten\n", 10);
    free(got);
    DIR *d = opendir(node);
    struct dirent *de;
    int entries = 0;
    while ((de = readdir(d)))
        entries += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    assert_int_equal(entries, 2); /* state, and the planted link (the attacker's, left alone) */
}

typedef struct damaging_sink {
    char arch[600];
    off_t at;
    size_t got;
    int calls;
} damaging_sink;

/* On the first bytes handed over, damages a later part of the archive being read. */
static int damage_after_first(void *ctx, const void *p, size_t n)
{
    (void)p;
    damaging_sink *d = ctx;
    if (d->calls++ == 0)
        flip_at(d->arch, d->at);
    d->got += n;
    return COFFER_OK;
}

/* The newest snapshot verifies, then turns out damaged while it is being handed over (it changed
 * between the two downloads, or the network flipped bits): bootstrap must not then append an
 * older snapshot's bytes behind the part already delivered, as if that were one state. */
static void test_bootstrap_damage_after_delivery(void **state)
{
    fixture *f = *state;
    size_t big = 32u << 20;
    unsigned char *p = malloc(big);
    uint32_t x = 12345;
    for (size_t i = 0; i < big; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    snapshot_state(f->repo, 10, "older\n", 6, 0);
    sleep_ms(1100); /* ids are per second: keep the order plain */
    snapshot_state(f->repo, 20, p, big, 256 << 10);
    free(p);
    char newest[COFFER_ID_SIZE];
    assert_int_equal(coffer_latest(f->repo, "0", newest, NULL), COFFER_OK);
    damaging_sink d = {.at = 0};
    archive_path(f->repo_path, newest, d.arch, sizeof d.arch);
    struct stat sb;
    assert_int_equal(stat(d.arch, &sb), 0);
    d.at = sb.st_size - 4096;
    coffer_bootstrap_options bo = {.struct_size = sizeof bo, .write = damage_after_first, .write_ctx = &d};
    coffer_bootstrap_result br = {.struct_size = sizeof br};
    coffer_error e;
    int st = coffer_bootstrap(f->repo, 0, &bo, &br, &e);
    if (d.calls == 0)
        fail_msg("nothing delivered: %d %s (%s)", st, e.message, d.arch);
    assert_true(st == COFFER_EDIGEST || st == COFFER_ECORRUPT);
    assert_non_null(strstr(e.message, "discard"));
    assert_int_equal(br.index, 0);
    assert_true(d.got < big); /* nothing of the older one after it */
}

/* coffer_restore_dir's destination: not empty (kept as it was), a symlink (replaced, not
 * followed), under a missing parent (made). */
static void test_restore_destinations(void **state)
{
    fixture *f = *state;
    char src[400], path[500];
    snprintf(src, sizeof src, "%s/src", dir);
    assert_int_equal(mkdir(src, 0700), 0);
    snprintf(path, sizeof path, "%s/file", src);
    assert_int_equal(cf_fs_write_atomic(path, "content", 7, 0600, NULL), 0);
    assert_int_equal(coffer_create_dir(f->repo, "tree", src, NULL, NULL, NULL), COFFER_OK);
    coffer_error e;

    char full[400];
    snprintf(full, sizeof full, "%s/full", dir);
    assert_int_equal(mkdir(full, 0700), 0);
    snprintf(path, sizeof path, "%s/mine", full);
    assert_int_equal(cf_fs_write_atomic(path, "mine", 4, 0600, NULL), 0);
    assert_int_equal(coffer_restore_dir(f->repo, "tree", NULL, full, NULL, NULL, &e), COFFER_EEXISTS);
    size_t n;
    char *got = read_all(path, &n);
    assert_non_null(got);
    assert_memory_equal(got, "mine", 4);
    free(got);

    char target[400], link[400];
    snprintf(target, sizeof target, "%s/target", dir);
    snprintf(link, sizeof link, "%s/link", dir);
    assert_int_equal(mkdir(target, 0700), 0);
    assert_int_equal(symlink(target, link), 0);
    /* A symlink at the destination is replaced by the restored tree, never written through. */
    assert_int_equal(coffer_restore_dir(f->repo, "tree", NULL, link, NULL, NULL, &e), COFFER_OK);
    struct stat sb;
    assert_int_equal(lstat(link, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    snprintf(path, sizeof path, "%s/file", target);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/file", link);
    assert_int_equal(access(path, F_OK), 0);

    char orphan[400];
    snprintf(orphan, sizeof orphan, "%s/no/parent/dest", dir);
    /* Missing parents are made, as `coffer snapshot restore` makes them. */
    assert_int_equal(coffer_restore_dir(f->repo, "tree", NULL, orphan, NULL, NULL, &e), COFFER_OK);
    snprintf(path, sizeof path, "%s/file", orphan);
    assert_int_equal(access(path, F_OK), 0);
}

/* An S3 store nobody answers, keys and a passphrase given: every failure is said, and neither
 * the keys nor the passphrase appear in any log line or message. */
static void test_secrets_stay_out_of_logs(void **state)
{
    (void)state;
    log_capture cap = {.text = NULL};
    pthread_mutex_init(&cap.mu, NULL);
    const char *access = "AKIDLEAKCANARY0001", *secret = "sEcReTcAnArY/0002+xyz", *token = "TOKENCANARY0003",
               *pass = "passphrase-canary-0004";
    coffer_repo_options ro = {.struct_size = sizeof ro,
                              .endpoint = "http://127.0.0.1:1",
                              .access_key = access,
                              .secret_key = secret,
                              .session_token = token,
                              .log = capture,
                              .log_ctx = &cap};
    coffer_repo *r;
    coffer_error e;
    assert_int_equal(coffer_repo_open("s3://bucket/apps", &ro, &r, &e), COFFER_OK);
    char messages[4096] = "";
    coffer_create_options co = {.struct_size = sizeof co, .passphrase = pass, .passphrase_len = strlen(pass)};
    coffer_writer *w;
    if (coffer_writer_begin(r, "ns", &co, &w, &e) == COFFER_OK) {
        coffer_writer_write(w, "secret data", 11, NULL);
        assert_int_not_equal(coffer_writer_commit(w, NULL, &e), COFFER_OK);
    }
    strncat(messages, e.message, sizeof messages - strlen(messages) - 1);
    coffer_snapshot_info *list;
    size_t n;
    assert_int_not_equal(coffer_list(r, "ns", &list, &n, &e), COFFER_OK);
    strncat(messages, e.message, sizeof messages - strlen(messages) - 1);
    coffer_restore_options rs = {
        .struct_size = sizeof rs, .passphrase = pass, .passphrase_len = strlen(pass)};
    assert_int_not_equal(coffer_verify(r, "ns", NULL, &rs, &e), COFFER_OK);
    strncat(messages, e.message, sizeof messages - strlen(messages) - 1);
    coffer_repo_close(r);
    assert_true(cap.len > 0);
    const char *canaries[] = {access, secret, token, pass};
    for (size_t i = 0; i < 4; i++) {
        assert_null(strstr(cap.text, canaries[i]));
        assert_null(strstr(messages, canaries[i]));
    }
    free(cap.text);
    pthread_mutex_destroy(&cap.mu);
}

static void on_signal(int sig)
{
    (void)sig;
}

typedef struct committer {
    coffer_writer *w;
    atomic_int done;
    int st;
} committer;

static void *commit_thread(void *arg)
{
    committer *c = arg;
    c->st = coffer_writer_commit(c->w, NULL, NULL);
    atomic_store(&c->done, 1);
    return NULL;
}

/* A signal (a handler without SA_RESTART: the application's choice) interrupts the writer's
 * thread while it drains the pipe after the engine failed: commit must still return, not leave
 * that thread spinning on the pipe's end as if every read were interrupted. */
static void test_writer_drain_survives_a_signal(void **state)
{
    fixture *f = *state;
    char blocker[400];
    snprintf(blocker, sizeof blocker, "%s/blocked", f->repo_path);
    assert_int_equal(cf_fs_write_atomic(blocker, "x", 1, 0600, NULL), 0);
    struct sigaction sa = {.sa_handler = on_signal}, old;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    coffer_writer *w;
    assert_int_equal(coffer_writer_begin(f->repo, "blocked", NULL, &w, NULL), COFFER_OK);
    /* From here only the writer's thread (made before) takes SIGUSR1. */
    sigset_t usr1, prev;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, &prev);
    static char chunk[1 << 16];
    int failed = COFFER_OK;
    for (int i = 0; i < 65536 && !failed; i++)
        failed = coffer_writer_write(w, chunk, sizeof chunk, NULL);
    assert_int_not_equal(failed, COFFER_OK); /* the engine stopped: its thread now drains */
    sleep_ms(50);
    kill(getpid(), SIGUSR1);
    sleep_ms(50);
    committer c = {.w = w};
    pthread_t t;
    pthread_create(&t, NULL, commit_thread, &c);
    for (int i = 0; i < 1000 && !atomic_load(&c.done); i++)
        sleep_ms(5);
    int done = atomic_load(&c.done);
    if (done)
        pthread_join(t, NULL);
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
    sigaction(SIGUSR1, &old, NULL);
    assert_true(done);
    assert_int_equal(c.st, failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_null_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_struct_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_intervals_do_not_spin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_going_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_callback_calls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_applied_from_many_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_snapshotters_one_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_across_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_under_a_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_damage_after_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_destinations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_stay_out_of_logs, setup, teardown),
        /* Last: before its fix, it leaves a thread spinning. */
        cmocka_unit_test_setup_teardown(test_writer_drain_survives_a_signal, setup, teardown),
    };
    /* A deadlock fails the run instead of hanging it. */
    alarm(300);
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
