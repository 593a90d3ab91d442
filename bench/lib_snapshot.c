/*
 * lib_snapshot.c - the library side of bench/lib_vs_cli.sh: one snapshot or one bootstrap of a
 * state file through libcoffer, as an application would make it. Includes only the public
 * header, like any program built against an installed libcoffer.
 *
 * Usage (REPO: "s3://BUCKET/PREFIX/TOPIC"; S3 settings from the environment, as the command
 * line reads them, because the program opens the repository with use_environment):
 *   lib_snapshot snapshotter REPO PARTITION STATE gzip|zstd|lz4|none JOBS
 *       a coffer_snapshotter whose write_state copies the file STATE; triggered once, stopped
 *       once that snapshot is stored (labels index=1, term=1)
 *   lib_snapshot create-fd REPO NS STATE gzip|zstd|lz4|none JOBS
 *       coffer_create_fd of STATE: the work `coffer snapshot create - REPO/NS < STATE` does
 *   lib_snapshot bootstrap REPO PARTITION DEST_DIR
 *       coffer_bootstrap of the partition's newest snapshot into DEST_DIR/state
 * Prints one line "key=value ..." of what was stored or restored; exits 1 on failure (the
 * library's message on standard error).
 */
#define _POSIX_C_SOURCE 200809L

#include <coffer/coffer.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATE_CHUNK (1u << 20)

/* The one place a coffer_result is made, so that a field every caller must set goes here. */
static coffer_result result_init(void)
{
    return (coffer_result){.struct_size = sizeof(coffer_result)};
}

static int fail(const char *what, const coffer_error *e)
{
    fprintf(stderr, "lib_snapshot: %s: %s\n", what, e->message[0] ? e->message : coffer_strerror(e->status));
    return 1;
}

static int compression_of(const char *name, coffer_compression *out)
{
    static const char *const names[] = {[COFFER_COMPRESSION_ZSTD] = "zstd",
                                        [COFFER_COMPRESSION_LZ4] = "lz4",
                                        [COFFER_COMPRESSION_GZIP] = "gzip",
                                        [COFFER_COMPRESSION_NONE] = "none"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(names[i], name)) {
            *out = (coffer_compression)i;
            return 0;
        }
    fprintf(stderr, "lib_snapshot: compression must be gzip, zstd, lz4 or none, not '%s'\n", name);
    return -1;
}

static int jobs_of(const char *s, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v == 0 || v > 256) {
        fprintf(stderr, "lib_snapshot: JOBS must be 1-256, not '%s'\n", s);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static int open_repo(const char *url, coffer_repo **repo)
{
    coffer_repo_options ro = {.struct_size = sizeof ro, .use_environment = 1};
    coffer_error e = {0};
    if (coffer_repo_open(url, &ro, repo, &e))
        return fail("cannot open the repository", &e);
    return 0;
}

/* ---- snapshotter ---- */

typedef struct state_source {
    const char *path;
} state_source;

/* The application's state at index 1: the bytes of the state file, in 1 MiB writes. */
static int write_state(void *ctx, coffer_write_fn write, void *write_ctx, uint64_t *index, uint64_t *term)
{
    const state_source *src = ctx;
    int fd = open(src->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return COFFER_EIO;
    char *buf = malloc(STATE_CHUNK);
    int st = buf ? COFFER_OK : COFFER_ENOMEM;
    while (!st) {
        ssize_t n = read(fd, buf, STATE_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            st = n < 0 ? COFFER_EIO : COFFER_OK;
            break;
        }
        st = write(write_ctx, buf, (size_t)n);
    }
    free(buf);
    close(fd);
    *index = 1;
    *term = 1;
    return st;
}

static int run_snapshotter(coffer_repo *repo, uint32_t partition, const char *state, int compression,
                           unsigned jobs)
{
    state_source src = {state};
    const char *tmp = getenv("TMPDIR");
    coffer_snapshotter_options so = {.struct_size = sizeof so,
                                     /* only the trigger below starts a snapshot */
                                     .log_size_threshold = UINT64_MAX,
                                     .time_threshold_ms = UINT64_MAX,
                                     .max_concurrent_snapshots = jobs,
                                     .compression = compression + 1,
                                     .retention_count = -1,
                                     .topic = "bench",
                                     .partition = partition,
                                     .node_id = "bench",
                                     .tmp_dir = tmp && *tmp ? tmp : NULL,
                                     .write_state = write_state,
                                     .ctx = &src};
    coffer_snapshotter *s;
    coffer_error e = {0};
    if (coffer_snapshotter_new(repo, &so, &s, &e))
        return fail("cannot start the snapshotter", &e);
    coffer_snapshotter_applied(s, 1);
    coffer_snapshotter_trigger(s);
    coffer_snapshotter_stats stats = {.struct_size = sizeof stats};
    /* Polled every 2 ms: the delay it adds is noise against seconds of compression. */
    const struct timespec tick = {0, 2 * 1000 * 1000};
    for (;;) {
        if (coffer_snapshotter_stats_get(s, &stats, &e)) {
            coffer_snapshotter_free(s);
            return fail("cannot read the snapshotter's counters", &e);
        }
        if (stats.taken || stats.failed)
            break;
        nanosleep(&tick, NULL);
    }
    coffer_snapshotter_free(s);
    if (!stats.taken)
        return fail("the snapshot failed", &stats.last_error);
    printf("id=%s index=%" PRIu64 " duration_ms=%" PRIu64 "\n", stats.last_id, stats.last_index,
           stats.last_duration_ms);
    return 0;
}

/* ---- coffer_create_fd ---- */

static int run_create_fd(coffer_repo *repo, const char *ns, const char *state, coffer_compression compression,
                         unsigned jobs)
{
    int fd = open(state, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "lib_snapshot: cannot open %s: %s\n", state, strerror(errno));
        return 1;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        fprintf(stderr, "lib_snapshot: cannot seek %s: %s\n", state, strerror(errno));
        close(fd);
        return 1;
    }
    coffer_create_options co = {.struct_size = sizeof co,
                                .compression = compression,
                                .threads = jobs,
                                .expected_size = (uint64_t)size};
    coffer_result res = result_init();
    coffer_error e = {0};
    int st = coffer_create_fd(repo, ns, fd, &co, &res, &e);
    close(fd);
    if (st)
        return fail("coffer_create_fd", &e);
    printf("id=%s raw=%" PRIu64 " stored=%" PRIu64 "\n", res.id, res.raw_size, res.stored_size);
    return 0;
}

/* ---- coffer_bootstrap ---- */

static int run_bootstrap(coffer_repo *repo, uint32_t partition, const char *dest_dir)
{
    coffer_bootstrap_options bo = {.struct_size = sizeof bo, .dest_dir = dest_dir, .topic = "bench"};
    coffer_bootstrap_result res = {.index = 0};
    coffer_error e = {0};
    if (coffer_bootstrap(repo, partition, &bo, &res, &e))
        return fail("coffer_bootstrap", &e);
    printf("id=%s index=%" PRIu64 " fell_back=%d\n", res.id, res.index, res.fell_back);
    return 0;
}

static int partition_of(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v > UINT32_MAX) {
        fprintf(stderr, "lib_snapshot: PARTITION must be a number, not '%s'\n", s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : "";
    int snapshotter = !strcmp(verb, "snapshotter"), create_fd = !strcmp(verb, "create-fd");
    int bootstrap = !strcmp(verb, "bootstrap");
    if (!(((snapshotter || create_fd) && argc == 7) || (bootstrap && argc == 5))) {
        fprintf(stderr,
                "usage: %s snapshotter REPO PARTITION STATE gzip|zstd|lz4|none JOBS\n"
                "       %s create-fd REPO NS STATE gzip|zstd|lz4|none JOBS\n"
                "       %s bootstrap REPO PARTITION DEST_DIR\n",
                argv[0], argv[0], argv[0]);
        return 2;
    }
    coffer_compression compression = COFFER_COMPRESSION_GZIP;
    unsigned jobs = 0;
    uint32_t partition = 0;
    if (!create_fd && partition_of(argv[3], &partition))
        return 2;
    if (!bootstrap && (compression_of(argv[5], &compression) || jobs_of(argv[6], &jobs)))
        return 2;
    coffer_repo *repo;
    if (open_repo(argv[2], &repo))
        return 1;
    int rc = snapshotter ? run_snapshotter(repo, partition, argv[4], (int)compression, jobs)
             : create_fd ? run_create_fd(repo, argv[3], argv[4], compression, jobs)
                         : run_bootstrap(repo, partition, argv[4]);
    coffer_repo_close(repo);
    return rc;
}
