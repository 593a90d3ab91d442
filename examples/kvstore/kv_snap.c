/* kv_snap.c - the kvstore node on libcoffer's snapshotter and bootstrap (see kv_snap.h). Only
 * <coffer/coffer.h>: this is what an application outside coffer's tree writes. */
#include "kv_snap.h"

#include <coffer/coffer.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct kv_snap {
    kv_store *store;
    coffer_repo *repo;
    coffer_snapshotter *snapshotter;
};

static void log_to_stderr(void *ctx, coffer_log_level level, const char *line, size_t len)
{
    (void)ctx;
    if (level >= COFFER_LOG_INFO)
        fprintf(stderr, "kvstore: %.*s", (int)len, line);
}

static int open_repo(const kv_snap_config *cfg, coffer_repo **repo, coffer_error *e)
{
    char url[4096];
    snprintf(url, sizeof url, "%s/%s", cfg->repo, cfg->topic ? cfg->topic : "kv");
    coffer_repo_options o = {.struct_size = sizeof o,
                             .use_environment = cfg->use_environment,
                             .log = log_to_stderr,
                             .log_level = COFFER_LOG_INFO};
    return coffer_repo_open(url, &o, repo, e);
}

/* The snapshotter's write, remembering how it failed: the store's own error (KV_EIO for any
 * sink) would lose whether the staging disk was full or the snapshot cancelled. */
typedef struct relay {
    coffer_write_fn write;
    void *ctx;
    int status; /* the first failure write returned */
} relay;

static int relay_write(void *ctx, const void *p, size_t n)
{
    relay *r = ctx;
    int st = r->write(r->ctx, p, n);
    if (st && !r->status)
        r->status = st;
    return st;
}

/* The state at the node's applied index: kv_store_write_state holds the node's lock throughout. */
static int write_state(void *ctx, coffer_write_fn write, void *wctx, uint64_t *index, uint64_t *term)
{
    kv_snap *snap = ctx;
    relay r = {write, wctx, COFFER_OK};
    kv_err err = kv_store_write_state(snap->store, relay_write, &r, index, term);
    if (!err)
        return COFFER_OK;
    if (r.status)
        return r.status; /* the snapshotter then says why (full disk, cancelled) */
    return err == KV_ENOMEM ? COFFER_ENOMEM : COFFER_ECALLBACK;
}

/* The snapshot holding every entry up to index is stored: those entries may go. The node writes
 * its own checkpoint first (at its applied index, so at index or later), so that it restarts from
 * its directory alone; the repository's snapshot is what a new node starts from. */
static int truncate_log(void *ctx, uint64_t index)
{
    kv_snap *snap = ctx;
    if (kv_store_checkpoint(snap->store))
        return COFFER_EIO;
    kv_store_note_durable_state(snap->store, index);
    return kv_store_truncate_before(snap->store, index) ? COFFER_ECALLBACK : COFFER_OK;
}

int kv_snap_start(kv_store *store, const kv_snap_config *cfg, kv_snap **out, char *why, size_t why_len)
{
    coffer_error e = {0};
    kv_snap *snap = calloc(1, sizeof *snap);
    if (!snap) {
        snprintf(why, why_len, "out of memory");
        return -1;
    }
    snap->store = store;
    int st = open_repo(cfg, &snap->repo, &e);
    if (!st) {
        coffer_snapshotter_options o = {.struct_size = sizeof o,
                                        .use_environment = cfg->use_environment,
                                        .topic = cfg->topic ? cfg->topic : "kv",
                                        .partition = cfg->partition,
                                        .node_id = cfg->node_id,
                                        .write_state = write_state,
                                        .truncate_log = truncate_log,
                                        .ctx = snap};
        st = coffer_snapshotter_new(snap->repo, &o, &snap->snapshotter, &e);
    }
    if (st) {
        snprintf(why, why_len, "snapshots: %s", e.message);
        coffer_repo_close(snap->repo);
        free(snap);
        return -1;
    }
    *out = snap;
    kv_snap_applied(snap);
    return 0;
}

void kv_snap_applied(kv_snap *snap)
{
    kv_store_status st;
    kv_store_get_status(snap->store, &st);
    coffer_snapshotter_applied(snap->snapshotter, st.applied_index);
}

static coffer_snapshotter_stats stats_of(kv_snap *snap)
{
    coffer_snapshotter_stats st = {.struct_size = sizeof st};
    coffer_snapshotter_stats_get(snap->snapshotter, &st, NULL);
    return st;
}

/* Until taken reaches want, or a failure after failed_before, 30 s at most. */
static int wait_taken(kv_snap *snap, uint64_t want, uint64_t failed_before)
{
    struct timespec pause = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 3000; i++) {
        coffer_snapshotter_stats st = stats_of(snap);
        if (st.taken >= want && !st.in_flight)
            return 0;
        if (st.failed > failed_before) {
            fprintf(stderr, "kvstore: snapshot failed: %s\n", st.last_error.message);
            return -1;
        }
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "kvstore: no snapshot within 30 s\n");
    return -1;
}

int kv_snap_command(kv_snap *snap, int argc, char **argv)
{
    if (strcmp(argv[0], "snapshot-now") == 0 && argc == 1) {
        coffer_snapshotter_stats st = stats_of(snap);
        coffer_snapshotter_trigger(snap->snapshotter);
        return wait_taken(snap, st.taken + 1, st.failed);
    }
    if (strcmp(argv[0], "snapshot-wait") == 0 && argc == 2) {
        uint64_t n;
        if (kv_parse_u64(argv[1], &n))
            return -1;
        return wait_taken(snap, n, UINT64_MAX);
    }
    if (strcmp(argv[0], "snapshot-stats") == 0 && argc == 1) {
        coffer_snapshotter_stats st = stats_of(snap);
        printf("taken=%" PRIu64 " failed=%" PRIu64 " last_index=%" PRIu64 " last_term=%" PRIu64
               " truncated_through=%" PRIu64 " last_duration_ms=%" PRIu64 " last_id=%s last_error=%s\n",
               st.taken, st.failed, st.last_index, st.last_term, st.truncated_through, st.last_duration_ms,
               st.last_id, st.last_error.status ? coffer_strerror(st.last_error.status) : "none");
        return 0;
    }
    return 1;
}

void kv_snap_stop(kv_snap *snap)
{
    if (!snap)
        return;
    coffer_snapshotter_free(snap->snapshotter);
    coffer_repo_close(snap->repo);
    free(snap);
}

int kv_snap_bootstrap(const kv_snap_config *cfg, const char *dir, kv_sync_policy sync, kv_store **out)
{
    coffer_error e = {0};
    coffer_repo *repo;
    if (open_repo(cfg, &repo, &e)) {
        fprintf(stderr, "kvstore: bootstrap: %s\n", e.message);
        return -1;
    }
    /* The state is only known good once whole: it goes to an unlinked file, then into the node. */
    char tmpl[4200];
    snprintf(tmpl, sizeof tmpl, "%s.bootstrap-XXXXXX", dir);
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        fprintf(stderr, "kvstore: bootstrap: cannot create %s: %s\n", tmpl, strerror(errno));
        coffer_repo_close(repo);
        return -1;
    }
    unlink(tmpl);
    coffer_bootstrap_options o = {
        .struct_size = sizeof o, .use_fd = 1, .fd = fd, .topic = cfg->topic ? cfg->topic : "kv"};
    coffer_bootstrap_result r = {.struct_size = sizeof r};
    int st = coffer_bootstrap(repo, cfg->partition, &o, &r, &e);
    coffer_repo_close(repo);
    if (st) {
        fprintf(stderr, "kvstore: bootstrap: %s\n", e.message);
        close(fd);
        return -1;
    }
    char why[512] = "";
    kv_err err = lseek(fd, 0, SEEK_SET)
                     ? KV_EIO
                     : kv_store_open_from_state(dir, sync, kv_fd_read, &fd, out, why, sizeof why);
    close(fd);
    if (err) {
        fprintf(stderr, "kvstore: bootstrap: %s\n", why[0] ? why : kv_strerror(err));
        return -1;
    }
    printf("index=%" PRIu64 " term=%" PRIu64 " id=%s fell_back=%d\n", r.index, r.term, r.id, r.fell_back);
    return 0;
}
