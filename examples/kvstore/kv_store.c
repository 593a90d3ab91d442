#include "kv_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct kv_store {
    pthread_mutex_t lock;
    char *log_path, *checkpoint_path;
    kv_log *log;
    kv_state *state;
    uint64_t durable_index; /* the newest state known durable: the checkpoint or a snapshot */
};

static void say(char *why, size_t why_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t why_len, const char *fmt, ...)
{
    if (!why || !why_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

static char *join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *path = malloc(len);
    if (path)
        snprintf(path, len, "%s/%s", dir, name);
    return path;
}

static kv_err apply_entry(void *ctx, const kv_entry *entry)
{
    return kv_state_apply(ctx, entry);
}

static kv_err make_dir(const char *dir, char *why, size_t why_len)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        say(why, why_len, "cannot create '%s': %s", dir, strerror(errno));
        return KV_EIO;
    }
    return KV_OK;
}

/* DIR (created when missing) and a store for it without its state and log yet. */
static kv_err store_new(const char *dir, kv_store **out, char *why, size_t why_len)
{
    kv_err err = make_dir(dir, why, why_len);
    if (err)
        return err;
    kv_store *store = calloc(1, sizeof *store);
    if (!store)
        return KV_ENOMEM;
    store->log_path = join(dir, "log");
    store->checkpoint_path = join(dir, "checkpoint");
    if (!store->log_path || !store->checkpoint_path || pthread_mutex_init(&store->lock, NULL) != 0) {
        free(store->log_path);
        free(store->checkpoint_path);
        free(store);
        return KV_ENOMEM;
    }
    *out = store;
    return KV_OK;
}

static void store_free(kv_store *store)
{
    kv_log_close(store->log);
    kv_state_free(store->state);
    pthread_mutex_destroy(&store->lock);
    free(store->log_path);
    free(store->checkpoint_path);
    free(store);
}

static kv_err read_state_file(const char *path, kv_state **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? KV_ENOENT : KV_EIO;
    kv_err err = kv_state_read(out, kv_fd_read, &fd);
    close(fd);
    return err;
}

/* Opens the log, creating it after the state's point, and replays what follows the state. */
static kv_err open_log(kv_store *store, kv_sync_policy sync, char *why, size_t why_len)
{
    uint64_t applied = kv_state_applied_index(store->state);
    kv_log_options opts = {
        .sync = sync, .create_base_index = applied, .create_base_term = kv_state_applied_term(store->state)};
    kv_log_recovery recovery;
    kv_err err = kv_log_open(store->log_path, &opts, &store->log, &recovery);
    if (err) {
        say(why, why_len, "cannot open the log '%s': %s%s%s", store->log_path, kv_strerror(err),
            err == KV_EIO ? ": " : "", err == KV_EIO ? strerror(errno) : "");
        return err;
    }
    if (recovery.dropped_bytes)
        fprintf(stderr, "kvstore: the log's last record was torn: %" PRIu64 " bytes dropped\n",
                recovery.dropped_bytes);
    uint64_t base = kv_log_base_index(store->log), last = kv_log_last_index(store->log);
    if (base > applied) {
        say(why, why_len,
            "the log starts after entry %" PRIu64 " but the state is at %" PRIu64
            ": start this node from a state file (load-state)",
            base, applied);
        return KV_ERANGE;
    }
    if (last < applied) {
        say(why, why_len, "the checkpoint is at entry %" PRIu64 " but the log ends at %" PRIu64, applied,
            last);
        return KV_ERANGE;
    }
    err = kv_log_read_after(store->log, applied, apply_entry, store->state);
    if (err)
        say(why, why_len, "replaying the log after entry %" PRIu64 ": %s", applied, kv_strerror(err));
    return err;
}

/* The last step of both opens: the log, once the state it follows is there. */
static kv_err finish_open(kv_store *store, kv_err err, kv_sync_policy sync, kv_store **out, char *why,
                          size_t why_len)
{
    if (!err)
        err = open_log(store, sync, why, why_len);
    if (err) {
        store_free(store);
        return err;
    }
    *out = store;
    return KV_OK;
}

kv_err kv_store_open(const char *dir, kv_sync_policy sync, kv_store **out, char *why, size_t why_len)
{
    kv_store *store;
    kv_err err = store_new(dir, &store, why, why_len);
    if (err)
        return err;
    err = read_state_file(store->checkpoint_path, &store->state);
    if (err == KV_ENOENT) {
        store->state = kv_state_new();
        err = store->state ? KV_OK : KV_ENOMEM;
    } else if (err) {
        say(why, why_len, "cannot read the checkpoint '%s': %s", store->checkpoint_path, kv_strerror(err));
    } else {
        store->durable_index = kv_state_applied_index(store->state);
    }
    return finish_open(store, err, sync, out, why, why_len);
}

static kv_err write_checkpoint(kv_store *store)
{
    size_t len = strlen(store->checkpoint_path) + 5;
    char *tmp = malloc(len);
    if (!tmp)
        return KV_ENOMEM;
    snprintf(tmp, len, "%s.tmp", store->checkpoint_path);
    kv_err err = KV_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        err = KV_EIO;
    if (!err)
        err = kv_state_write(store->state, kv_fd_write, &fd);
    if (!err && fsync(fd) != 0)
        err = KV_EIO;
    if (fd >= 0 && close(fd) != 0 && !err)
        err = KV_EIO;
    if (!err && rename(tmp, store->checkpoint_path) != 0)
        err = KV_EIO;
    if (!err)
        err = kv_fsync_parent(store->checkpoint_path);
    if (err)
        unlink(tmp);
    else if (kv_state_applied_index(store->state) > store->durable_index)
        store->durable_index = kv_state_applied_index(store->state);
    free(tmp);
    return err;
}

kv_err kv_store_open_from_state(const char *dir, kv_sync_policy sync, kv_read_fn source, void *ctx,
                                kv_store **out, char *why, size_t why_len)
{
    kv_store *store;
    kv_err err = store_new(dir, &store, why, why_len);
    if (err)
        return err;
    if (access(store->log_path, F_OK) == 0) {
        say(why, why_len, "'%s' already holds a log: a new node starts from an empty directory", dir);
        err = KV_EEXIST;
    }
    if (!err) {
        err = kv_state_read(&store->state, source, ctx);
        if (err)
            say(why, why_len, "cannot read the state: %s", kv_strerror(err));
    }
    if (!err) {
        /* Durable first: a node whose log starts after entry N cannot reopen without it. */
        err = write_checkpoint(store);
        if (err)
            say(why, why_len, "cannot write the checkpoint '%s': %s", store->checkpoint_path,
                strerror(errno));
    }
    return finish_open(store, err, sync, out, why, why_len);
}

kv_err kv_store_close(kv_store *store)
{
    if (!store)
        return KV_OK;
    kv_err err = kv_log_close(store->log);
    store->log = NULL;
    store_free(store);
    return err;
}

/* Appends then applies: an entry is applied only once the log holds it (as durably as the sync
 * policy says), so a state written later never gets ahead of the log. */
static kv_err append_locked(kv_store *store, const kv_entry *entry)
{
    kv_err err = kv_log_append(store->log, entry);
    if (!err)
        err = kv_state_apply(store->state, entry);
    return err;
}

kv_err kv_store_append(kv_store *store, const kv_entry *entry)
{
    pthread_mutex_lock(&store->lock);
    kv_err err = append_locked(store, entry);
    pthread_mutex_unlock(&store->lock);
    return err;
}

static kv_err propose(kv_store *store, kv_entry *entry, uint64_t *index)
{
    pthread_mutex_lock(&store->lock);
    entry->index = kv_log_last_index(store->log) + 1;
    kv_err err = append_locked(store, entry);
    pthread_mutex_unlock(&store->lock);
    if (!err && index)
        *index = entry->index;
    return err;
}

kv_err kv_store_set(kv_store *store, uint64_t term, const char *key, uint32_t key_len, const char *value,
                    uint32_t value_len, uint64_t *index)
{
    kv_entry entry = {.term = term,
                      .op = KV_OP_SET,
                      .key = key,
                      .key_len = key_len,
                      .value = value,
                      .value_len = value_len};
    return propose(store, &entry, index);
}

kv_err kv_store_del(kv_store *store, uint64_t term, const char *key, uint32_t key_len, uint64_t *index)
{
    kv_entry entry = {.term = term, .op = KV_OP_DEL, .key = key, .key_len = key_len};
    return propose(store, &entry, index);
}

kv_err kv_store_sync(kv_store *store)
{
    pthread_mutex_lock(&store->lock);
    kv_err err = kv_log_sync(store->log);
    pthread_mutex_unlock(&store->lock);
    return err;
}

kv_err kv_store_get(kv_store *store, const char *key, uint32_t key_len, const char **value,
                    uint32_t *value_len)
{
    pthread_mutex_lock(&store->lock);
    kv_err err = kv_state_get(store->state, key, key_len, value, value_len);
    pthread_mutex_unlock(&store->lock);
    return err;
}

kv_err kv_store_write_state(kv_store *store, kv_write_fn sink, void *ctx, uint64_t *index, uint64_t *term)
{
    pthread_mutex_lock(&store->lock);
    if (index)
        *index = kv_state_applied_index(store->state);
    if (term)
        *term = kv_state_applied_term(store->state);
    kv_err err = kv_state_write(store->state, sink, ctx);
    pthread_mutex_unlock(&store->lock);
    return err;
}

kv_err kv_store_checkpoint(kv_store *store)
{
    pthread_mutex_lock(&store->lock);
    /* The checkpoint must not hold entries the log could still lose in a crash. */
    kv_err err = kv_log_sync(store->log);
    if (!err)
        err = write_checkpoint(store);
    pthread_mutex_unlock(&store->lock);
    return err;
}

void kv_store_note_durable_state(kv_store *store, uint64_t index)
{
    pthread_mutex_lock(&store->lock);
    if (index > store->durable_index)
        store->durable_index = index;
    pthread_mutex_unlock(&store->lock);
}

kv_err kv_store_truncate_before(kv_store *store, uint64_t index)
{
    pthread_mutex_lock(&store->lock);
    kv_err err = index > store->durable_index ? KV_ERANGE : kv_log_truncate_before(store->log, index);
    pthread_mutex_unlock(&store->lock);
    return err;
}

kv_err kv_store_tail_after(kv_store *store, uint64_t after, kv_entry_fn fn, void *ctx)
{
    pthread_mutex_lock(&store->lock);
    kv_err err = kv_log_read_after(store->log, after, fn, ctx);
    pthread_mutex_unlock(&store->lock);
    return err;
}

void kv_store_get_status(kv_store *store, kv_store_status *status)
{
    pthread_mutex_lock(&store->lock);
    status->base_index = kv_log_base_index(store->log);
    status->base_term = kv_log_base_term(store->log);
    status->last_index = kv_log_last_index(store->log);
    status->last_term = kv_log_last_term(store->log);
    status->log_bytes = kv_log_size(store->log);
    status->applied_index = kv_state_applied_index(store->state);
    status->applied_term = kv_state_applied_term(store->state);
    status->keys = kv_state_count(store->state);
    status->durable_index = store->durable_index;
    pthread_mutex_unlock(&store->lock);
}

kv_err kv_store_digest(kv_store *store, uint64_t *digest)
{
    pthread_mutex_lock(&store->lock);
    kv_err err = kv_state_digest(store->state, digest);
    pthread_mutex_unlock(&store->lock);
    return err;
}

kv_err kv_store_each_sorted(kv_store *store, kv_pair_fn fn, void *ctx)
{
    pthread_mutex_lock(&store->lock);
    kv_err err = kv_state_each_sorted(store->state, fn, ctx);
    pthread_mutex_unlock(&store->lock);
    return err;
}
