/* kvstore: a replicated key-value store's node, driven from the command line.
 *
 *   kvstore [-d DIR] [--sync always|batch|none] [--term T] COMMAND [ARGS]
 *
 * Each command opens the node in DIR (the log, and the checkpoint when there is one), does its
 * work and closes it; `serve` keeps the node open and reads commands, one a line, from stdin.
 * Replication is a pipe: `kvstore -d A tail-from I | kvstore -d B append-entries` ships the entries
 * after I from node A to node B, which started from A's state at I (`save-state`, `load-state`). */
#include "kv_record.h"
#include "kv_snap.h"
#include "kv_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USAGE                                                                                                \
    "usage: kvstore [-d DIR] [--sync always|batch|none] [--term T] [SNAPSHOTS] COMMAND [ARGS]\n"             \
    "  put KEY VALUE        append and apply SET; prints the entry's index\n"                                \
    "  del KEY              append and apply DEL; prints the entry's index\n"                                \
    "  get KEY              print the value (exit 1 when the key is absent)\n"                               \
    "  bench-fill N [KEYS]  append and apply N SETs over KEYS keys (default 1000; sync batch)\n"             \
    "  digest               print index=, term=, keys= and digest= of the state\n"                           \
    "  status               the log's base, last and size, the state's point, the durable index\n"           \
    "  dump                 every KEY<tab>VALUE in key order\n"                                              \
    "  save-state FILE      write the state file at the applied index (- for stdout)\n"                      \
    "  checkpoint           write DIR/checkpoint, the state a reopened node starts from\n"                   \
    "  truncate-before I    remove the log's entries up to I (a checkpoint must cover I)\n"                  \
    "  sync                 make every append durable\n"                                                     \
    "  load-state FILE      make DIR a new node from a state file (- for stdin)\n"                           \
    "  tail-from I          write the records of the entries after I to stdout\n"                            \
    "  append-entries       append and apply the records read from stdin\n"                                  \
    "  serve                read the commands above (not the last three) from stdin, one a line;\n"          \
    "                       each answer ends with a line 'ok' or 'error: ...'; with --repo, snapshots\n"     \
    "                       are taken by libcoffer's snapshotter, and serve also reads snapshot-now,\n"      \
    "                       snapshot-wait N (until N are stored) and snapshot-stats\n"                       \
    "  bootstrap            make DIR a new node from the newest good snapshot in --repo\n"                   \
    "SNAPSHOTS: --repo DIR|s3://BUCKET/PREFIX (snapshots in REPO/TOPIC/PARTITION) [--topic T (kv)]\n"        \
    "  [--partition P (0)] [--node-id ID] [--snapshot-env (COFFER_SNAPSHOT_*, AWS_* are read)]\n"

typedef struct {
    const char *dir;
    kv_sync_policy sync;
    int sync_given;
    uint64_t term;       /* 0: the log's last term, at least 1 */
    kv_snap_config snap; /* snap.repo NULL: no snapshots */
} options;

/* The topic is appended to --repo as a path segment: one that climbs ("..") or splits ("a/b")
 * would put the snapshots in another repository. */
static int topic_valid(const char *t)
{
    if (!*t || !strcmp(t, ".") || !strcmp(t, ".."))
        return 0;
    for (const unsigned char *c = (const unsigned char *)t; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == '/' || *c == '\\')
            return 0;
    return 1;
}

static int fail(const char *what, kv_err err)
{
    if (err == KV_EIO)
        fprintf(stderr, "kvstore: %s: %s: %s\n", what, kv_strerror(err), strerror(errno));
    else
        fprintf(stderr, "kvstore: %s: %s\n", what, kv_strerror(err));
    return 1;
}

static uint64_t term_of(kv_store *store, const options *opts)
{
    if (opts->term)
        return opts->term;
    kv_store_status st;
    kv_store_get_status(store, &st);
    return st.last_term ? st.last_term : 1;
}

static kv_err print_pair(void *ctx, const char *key, uint32_t key_len, const char *value, uint32_t value_len)
{
    printf("%.*s\t%.*s\n", (int)key_len, key, (int)value_len, value);
    return KV_OK;
}

static int file_sink(void *ctx, const void *buf, size_t len)
{
    return fwrite(buf, 1, len, ctx) == len ? 0 : -1;
}

static int save_state(kv_store *store, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "kvstore: cannot create '%s': %s\n", path, strerror(errno));
        return 1;
    }
    uint64_t index, term;
    kv_err err = kv_store_write_state(store, file_sink, f, &index, &term);
    if (!err && fflush(f) != 0)
        err = KV_EIO;
    if (!err && f != stdout && fsync(fileno(f)) != 0)
        err = KV_EIO;
    if (f != stdout && fclose(f) != 0 && !err)
        err = KV_EIO;
    if (err)
        return fail("save-state", err);
    fprintf(f == stdout ? stderr : stdout, "index=%" PRIu64 " term=%" PRIu64 "\n", index, term);
    return 0;
}

static int bench_fill(kv_store *store, const options *opts, uint64_t count, uint64_t keys)
{
    char key[32], value[64];
    uint64_t term = term_of(store, opts), index = 0;
    for (uint64_t i = 0; i < count; i++) {
        kv_store_status st;
        kv_store_get_status(store, &st);
        int key_len = snprintf(key, sizeof key, "key-%06" PRIu64, (st.last_index + 1) % keys);
        int value_len = snprintf(value, sizeof value, "value-%" PRIu64, st.last_index + 1);
        kv_err err = kv_store_set(store, term, key, (uint32_t)key_len, value, (uint32_t)value_len, &index);
        if (err)
            return fail("bench-fill", err);
    }
    kv_err err = kv_store_sync(store);
    if (err)
        return fail("bench-fill", err);
    printf("%" PRIu64 "\n", index);
    return 0;
}

/* The commands that work on an open node, shared by the one-shot form and serve. */
static int dispatch(kv_store *store, const options *opts, int argc, char **argv)
{
    const char *cmd = argv[0];
    uint64_t n = 0, keys = 1000, index = 0;
    kv_err err;
    if (strcmp(cmd, "put") == 0 && argc == 3) {
        err = kv_store_set(store, term_of(store, opts), argv[1], (uint32_t)strlen(argv[1]), argv[2],
                           (uint32_t)strlen(argv[2]), &index);
        if (err)
            return fail("put", err);
        printf("%" PRIu64 "\n", index);
    } else if (strcmp(cmd, "del") == 0 && argc == 2) {
        err = kv_store_del(store, term_of(store, opts), argv[1], (uint32_t)strlen(argv[1]), &index);
        if (err)
            return fail("del", err);
        printf("%" PRIu64 "\n", index);
    } else if (strcmp(cmd, "get") == 0 && argc == 2) {
        const char *value;
        uint32_t value_len;
        err = kv_store_get(store, argv[1], (uint32_t)strlen(argv[1]), &value, &value_len);
        if (err)
            return fail(argv[1], err);
        printf("%.*s\n", (int)value_len, value);
    } else if (strcmp(cmd, "bench-fill") == 0 && (argc == 2 || argc == 3)) {
        if (kv_parse_u64(argv[1], &n) || (argc == 3 && (kv_parse_u64(argv[2], &keys) || keys == 0))) {
            fprintf(stderr, "kvstore: bench-fill: N and KEYS are whole numbers (KEYS > 0)\n");
            return 2;
        }
        return bench_fill(store, opts, n, keys);
    } else if (strcmp(cmd, "digest") == 0 && argc == 1) {
        uint64_t digest;
        kv_store_status st;
        err = kv_store_digest(store, &digest);
        if (err)
            return fail("digest", err);
        kv_store_get_status(store, &st);
        printf("index=%" PRIu64 " term=%" PRIu64 " keys=%" PRIu64 " digest=%016" PRIx64 "\n",
               st.applied_index, st.applied_term, st.keys, digest);
    } else if (strcmp(cmd, "status") == 0 && argc == 1) {
        kv_store_status st;
        kv_store_get_status(store, &st);
        printf("base_index=%" PRIu64 "\nbase_term=%" PRIu64 "\nlast_index=%" PRIu64 "\nlast_term=%" PRIu64
               "\nlog_bytes=%" PRIu64 "\napplied_index=%" PRIu64 "\napplied_term=%" PRIu64 "\nkeys=%" PRIu64
               "\ndurable_index=%" PRIu64 "\n",
               st.base_index, st.base_term, st.last_index, st.last_term, st.log_bytes, st.applied_index,
               st.applied_term, st.keys, st.durable_index);
    } else if (strcmp(cmd, "dump") == 0 && argc == 1) {
        err = kv_store_each_sorted(store, print_pair, NULL);
        if (err)
            return fail("dump", err);
    } else if (strcmp(cmd, "save-state") == 0 && argc == 2) {
        return save_state(store, argv[1]);
    } else if (strcmp(cmd, "checkpoint") == 0 && argc == 1) {
        err = kv_store_checkpoint(store);
        if (err)
            return fail("checkpoint", err);
    } else if (strcmp(cmd, "truncate-before") == 0 && argc == 2) {
        if (kv_parse_u64(argv[1], &index)) {
            fprintf(stderr, "kvstore: truncate-before: I is a whole number\n");
            return 2;
        }
        err = kv_store_truncate_before(store, index);
        if (err == KV_ERANGE) {
            kv_store_status st;
            kv_store_get_status(store, &st);
            fprintf(stderr,
                    "kvstore: truncate-before %" PRIu64 ": only entries up to %" PRIu64
                    " (the durable state's index, and at most the last entry %" PRIu64 ") may go\n",
                    index, st.durable_index < st.last_index ? st.durable_index : st.last_index,
                    st.last_index);
            return 1;
        }
        if (err)
            return fail("truncate-before", err);
    } else if (strcmp(cmd, "sync") == 0 && argc == 1) {
        err = kv_store_sync(store);
        if (err)
            return fail("sync", err);
    } else {
        fprintf(stderr, "kvstore: unknown command or wrong arguments: %s\n%s", cmd, USAGE);
        return 2;
    }
    return 0;
}

static kv_err write_record(void *ctx, const kv_entry *entry)
{
    unsigned char stack_buf[4096], *buf = stack_buf;
    size_t size = kv_record_size(entry);
    if (size > sizeof stack_buf && !(buf = malloc(size)))
        return KV_ENOMEM;
    kv_err err = kv_record_encode(entry, buf);
    if (!err && fwrite(buf, 1, size, ctx) != size)
        err = KV_EIO;
    if (buf != stack_buf)
        free(buf);
    return err;
}

static int append_entries(kv_store *store)
{
    int fd = STDIN_FILENO;
    kv_record_reader reader;
    kv_record_reader_init(&reader, kv_fd_read, &fd);
    kv_entry entry;
    kv_err err;
    uint64_t count = 0;
    while ((err = kv_record_next(&reader, &entry, NULL)) == KV_OK) {
        err = kv_store_append(store, &entry);
        if (err) {
            fprintf(stderr, "kvstore: append-entries: entry %" PRIu64 ": %s\n", entry.index,
                    kv_strerror(err));
            break;
        }
        count++;
    }
    kv_record_reader_cleanup(&reader);
    if (err == KV_ENOENT)
        err = kv_store_sync(store);
    else if (err != KV_ERANGE)
        fail("append-entries", err);
    if (err)
        return 1;
    kv_store_status st;
    kv_store_get_status(store, &st);
    printf("appended=%" PRIu64 " last_index=%" PRIu64 "\n", count, st.last_index);
    return 0;
}

static int serve(kv_store *store, const options *opts)
{
    kv_snap *snap = NULL;
    char why[600];
    if (opts->snap.repo && kv_snap_start(store, &opts->snap, &snap, why, sizeof why)) {
        fprintf(stderr, "kvstore: %s\n", why);
        return 1;
    }
    char line[8192];
    while (fgets(line, sizeof line, stdin)) {
        char *argv[8];
        int argc = 0;
        for (char *tok = strtok(line, " \t\r\n"); tok && argc < 8; tok = strtok(NULL, " \t\r\n"))
            argv[argc++] = tok;
        if (argc == 0)
            continue;
        if (strcmp(argv[0], "quit") == 0)
            break;
        int rc = snap ? kv_snap_command(snap, argc, argv) : 1;
        if (rc == 1) {
            rc = dispatch(store, opts, argc, argv);
            if (snap)
                kv_snap_applied(snap);
        }
        printf(rc ? "error: %s failed\n" : "ok\n", argv[0]);
        fflush(stdout);
    }
    kv_snap_stop(snap);
    return 0;
}

static int open_new_node(const options *opts, const char *path, kv_store **store)
{
    char why[512] = "";
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "kvstore: cannot open '%s': %s\n", path, strerror(errno));
        return 1;
    }
    kv_err err = kv_store_open_from_state(opts->dir, opts->sync, kv_fd_read, &fd, store, why, sizeof why);
    if (fd != STDIN_FILENO)
        close(fd);
    if (err) {
        fprintf(stderr, "kvstore: load-state: %s\n", why[0] ? why : kv_strerror(err));
        return 1;
    }
    kv_store_status st;
    kv_store_get_status(*store, &st);
    printf("index=%" PRIu64 " term=%" PRIu64 "\n", st.applied_index, st.applied_term);
    return 0;
}

int main(int argc, char **argv)
{
    options opts = {.dir = getenv("KVSTORE_DIR") ? getenv("KVSTORE_DIR") : "kvdata", .sync = KV_SYNC_ALWAYS};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) {
            opts.dir = argv[++i];
        } else if (strcmp(argv[i], "--sync") == 0 && i + 1 < argc) {
            const char *s = argv[++i];
            opts.sync_given = 1;
            if (strcmp(s, "always") == 0)
                opts.sync = KV_SYNC_ALWAYS;
            else if (strcmp(s, "batch") == 0)
                opts.sync = KV_SYNC_BATCH;
            else if (strcmp(s, "none") == 0)
                opts.sync = KV_SYNC_NONE;
            else
                opts.sync_given = -1;
        } else if (strcmp(argv[i], "--repo") == 0 && i + 1 < argc) {
            opts.snap.repo = argv[++i];
        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
            opts.snap.topic = argv[++i];
            if (!topic_valid(opts.snap.topic)) {
                fprintf(stderr,
                        "kvstore: --topic '%s' must be one path segment (not '.' or '..', without "
                        "'/', '\\' or control characters)\n",
                        opts.snap.topic);
                return 2;
            }
        } else if (strcmp(argv[i], "--node-id") == 0 && i + 1 < argc) {
            opts.snap.node_id = argv[++i];
        } else if (strcmp(argv[i], "--snapshot-env") == 0) {
            opts.snap.use_environment = 1;
        } else if (strcmp(argv[i], "--partition") == 0 && i + 1 < argc) {
            uint64_t p;
            if (kv_parse_u64(argv[++i], &p) || p > UINT32_MAX)
                opts.sync_given = -1;
            opts.snap.partition = (uint32_t)p;
        } else if (strcmp(argv[i], "--term") == 0 && i + 1 < argc) {
            if (kv_parse_u64(argv[++i], &opts.term) || opts.term == 0)
                opts.sync_given = -1;
        } else {
            break;
        }
    }
    if (i >= argc || opts.sync_given < 0 || strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
        fputs(USAGE, i >= argc || opts.sync_given < 0 ? stderr : stdout);
        return i >= argc || opts.sync_given < 0 ? 2 : 0;
    }
    const char *cmd = argv[i];
    /* Filling appends many entries: one sync at the end unless told otherwise. */
    if (!opts.sync_given && (strcmp(cmd, "bench-fill") == 0 || strcmp(cmd, "append-entries") == 0))
        opts.sync = KV_SYNC_BATCH;

    kv_store *store = NULL;
    int rc;
    if (strcmp(cmd, "load-state") == 0) {
        if (argc - i != 2) {
            fputs(USAGE, stderr);
            return 2;
        }
        rc = open_new_node(&opts, argv[i + 1], &store);
        if (rc)
            return rc;
    } else if (strcmp(cmd, "bootstrap") == 0) {
        if (argc - i != 1 || !opts.snap.repo) {
            fputs(USAGE, stderr);
            return 2;
        }
        if (kv_snap_bootstrap(&opts.snap, opts.dir, opts.sync, &store))
            return 1;
        rc = 0;
    } else {
        char why[512] = "";
        kv_err err = kv_store_open(opts.dir, opts.sync, &store, why, sizeof why);
        if (err) {
            fprintf(stderr, "kvstore: %s\n", why[0] ? why : kv_strerror(err));
            return 1;
        }
        if (strcmp(cmd, "tail-from") == 0) {
            uint64_t after;
            if (argc - i != 2 || kv_parse_u64(argv[i + 1], &after)) {
                fputs(USAGE, stderr);
                rc = 2;
            } else {
                err = kv_store_tail_after(store, after, write_record, stdout);
                if (!err && fflush(stdout) != 0)
                    err = KV_EIO;
                rc = err ? fail("tail-from", err) : 0;
            }
        } else if (strcmp(cmd, "append-entries") == 0) {
            rc = argc - i == 1 ? append_entries(store) : 2;
        } else if (strcmp(cmd, "serve") == 0) {
            rc = serve(store, &opts);
        } else {
            rc = dispatch(store, &opts, argc - i, argv + i);
        }
    }
    kv_err err = kv_store_close(store);
    if (err && !rc)
        rc = fail("close", err);
    if (fflush(stdout) != 0 && !rc)
        rc = 1;
    return rc;
}
