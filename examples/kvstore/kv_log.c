#include "kv_log.h"

#include "kv_crc.h"
#include "kv_record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEADER_SIZE 32
static const char LOG_MAGIC[8] = {'C', 'F', 'K', 'V', 'L', 'O', 'G', '1'};

struct kv_log {
    char *path;
    int fd;
    kv_sync_policy sync;
    int dirty; /* appends not yet synced */
    uint64_t base_index, base_term, last_index, last_term, size;
    unsigned char *encode_buf;
    size_t encode_cap;
};

/* A read source over a file from an offset, leaving the descriptor's own offset alone. */
typedef struct {
    int fd;
    uint64_t offset;
} file_source;

static long file_read(void *ctx, void *buf, size_t len)
{
    file_source *src = ctx;
    for (;;) {
        ssize_t n = pread(src->fd, buf, len, (off_t)src->offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            src->offset += (uint64_t)n;
        return (long)n;
    }
}

static void encode_header(unsigned char *h, uint64_t base_index, uint64_t base_term)
{
    memset(h, 0, HEADER_SIZE);
    memcpy(h, LOG_MAGIC, 8);
    for (int i = 0; i < 8; i++) {
        h[8 + i] = (unsigned char)(base_index >> (8 * i));
        h[16 + i] = (unsigned char)(base_term >> (8 * i));
    }
    uint32_t crc = kv_crc32c(0, h, 24);
    for (int i = 0; i < 4; i++)
        h[24 + i] = (unsigned char)(crc >> (8 * i));
}

static kv_err decode_header(const unsigned char *h, uint64_t *base_index, uint64_t *base_term)
{
    if (memcmp(h, LOG_MAGIC, 8) != 0)
        return KV_ECORRUPT;
    uint32_t crc = 0;
    *base_index = *base_term = 0;
    for (int i = 0; i < 8; i++) {
        *base_index |= (uint64_t)h[8 + i] << (8 * i);
        *base_term |= (uint64_t)h[16 + i] << (8 * i);
    }
    for (int i = 0; i < 4; i++)
        crc |= (uint32_t)h[24 + i] << (8 * i);
    return crc == kv_crc32c(0, h, 24) ? KV_OK : KV_ECORRUPT;
}

static char *tmp_path_of(const char *path)
{
    size_t len = strlen(path);
    char *tmp = malloc(len + 5);
    if (tmp)
        memcpy(tmp, path, len), memcpy(tmp + len, ".tmp", 5);
    return tmp;
}

/* A buffered writer into a new file, for the rewrites of truncation and creation. */
typedef struct {
    int fd;
    unsigned char buf[256 * 1024];
    size_t used;
} file_sink;

static kv_err sink_flush(file_sink *sink)
{
    int fd = sink->fd;
    if (sink->used && kv_fd_write(&fd, sink->buf, sink->used) != 0)
        return KV_EIO;
    sink->used = 0;
    return KV_OK;
}

static kv_err sink_put(file_sink *sink, const void *data, size_t len)
{
    if (sink->used + len > sizeof sink->buf) {
        kv_err err = sink_flush(sink);
        if (err)
            return err;
        if (len > sizeof sink->buf) {
            int fd = sink->fd;
            return kv_fd_write(&fd, data, len) == 0 ? KV_OK : KV_EIO;
        }
    }
    memcpy(sink->buf + sink->used, data, len);
    sink->used += len;
    return KV_OK;
}

typedef struct {
    file_sink *sink;
    uint64_t keep_after;
    unsigned char *encoded;
    size_t encoded_cap;
} rewrite_ctx;

static kv_err rewrite_entry(void *ctx, const kv_entry *entry)
{
    rewrite_ctx *rw = ctx;
    if (entry->index <= rw->keep_after)
        return KV_OK;
    size_t need = kv_record_size(entry);
    if (need > rw->encoded_cap) {
        unsigned char *grown = realloc(rw->encoded, need);
        if (!grown)
            return KV_ENOMEM;
        rw->encoded = grown;
        rw->encoded_cap = need;
    }
    kv_err err = kv_record_encode(entry, rw->encoded);
    return err ? err : sink_put(rw->sink, rw->encoded, need);
}

/* Writes PATH.tmp holding a header for (base_index, base_term) and, when from is not NULL, the
 * entries of from after base_index; syncs it and renames it over path. On success *fd_out is the
 * new file opened for reading and writing and *size_out its size. */
static kv_err write_replacement(const char *path, kv_log *from, uint64_t base_index, uint64_t base_term,
                                int *fd_out, uint64_t *size_out)
{
    kv_err err = KV_OK;
    char *tmp = tmp_path_of(path);
    file_sink *sink = malloc(sizeof *sink);
    rewrite_ctx rw = {.sink = sink, .keep_after = base_index};
    int fd = -1;
    if (!tmp || !sink) {
        err = KV_ENOMEM;
        goto out;
    }
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        err = KV_EIO;
        goto out;
    }
    sink->fd = fd;
    sink->used = 0;
    unsigned char header[HEADER_SIZE];
    encode_header(header, base_index, base_term);
    err = sink_put(sink, header, sizeof header);
    if (!err && from)
        err = kv_log_read_after(from, from->base_index, rewrite_entry, &rw);
    if (!err)
        err = sink_flush(sink);
    if (!err && fsync(fd) != 0)
        err = KV_EIO;
    if (!err && rename(tmp, path) != 0)
        err = KV_EIO;
    if (!err)
        err = kv_fsync_parent(path);
    if (!err) {
        off_t end = lseek(fd, 0, SEEK_END);
        if (end < 0)
            err = KV_EIO;
        *size_out = (uint64_t)end;
    }
out:
    if (err && fd >= 0) {
        int saved = errno;
        close(fd);
        unlink(tmp);
        errno = saved;
        fd = -1;
    }
    *fd_out = fd;
    free(rw.encoded);
    free(sink);
    free(tmp);
    return err;
}

/* Whether every byte of the file from offset on is zero: what a crash can leave after an
 * extension whose data never reached the disk. */
static int zeros_from(int fd, uint64_t offset)
{
    unsigned char buf[4096];
    file_source src = {fd, offset};
    long n;
    while ((n = file_read(&src, buf, sizeof buf)) > 0)
        for (long i = 0; i < n; i++)
            if (buf[i])
                return 0;
    return n == 0;
}

/* Reads the records after the header, checks that they follow each other, and cuts off a torn
 * tail. */
static kv_err recover(kv_log *log, uint64_t file_size, kv_log_recovery *recovery)
{
    file_source src = {log->fd, HEADER_SIZE};
    kv_record_reader reader;
    kv_record_reader_init(&reader, file_read, &src);
    kv_entry entry;
    size_t bad_size = 0;
    kv_err err;
    uint64_t entries = 0;
    while ((err = kv_record_next(&reader, &entry, &bad_size)) == KV_OK) {
        if (entry.index != log->last_index + 1 || entry.term < log->last_term) {
            err = KV_ECORRUPT;
            break;
        }
        log->last_index = entry.index;
        log->last_term = entry.term;
        entries++;
    }
    uint64_t good_end = HEADER_SIZE + reader.offset;
    kv_record_reader_cleanup(&reader);
    if (err == KV_ENOENT)
        err = KV_OK;
    else if (err == KV_ETRUNCATED || (err == KV_ECORRUPT && ((bad_size && good_end + bad_size == file_size) ||
                                                             zeros_from(log->fd, good_end)))) {
        if (ftruncate(log->fd, (off_t)good_end) != 0 || fsync(log->fd) != 0)
            return KV_EIO;
        err = KV_OK;
    }
    if (err)
        return err;
    log->size = good_end;
    if (recovery) {
        recovery->entries = entries;
        recovery->dropped_bytes = file_size - good_end;
    }
    return KV_OK;
}

kv_err kv_log_open(const char *path, const kv_log_options *opts, kv_log **out, kv_log_recovery *recovery)
{
    kv_log_options defaults = {.sync = KV_SYNC_ALWAYS};
    if (!opts)
        opts = &defaults;
    kv_err err = KV_OK;
    kv_log *log = calloc(1, sizeof *log);
    char *tmp = tmp_path_of(path);
    if (!log || !tmp || !(log->path = strdup(path))) {
        err = KV_ENOMEM;
        goto fail;
    }
    log->fd = -1;
    log->sync = opts->sync;
    /* A rewrite a crash interrupted before its rename: the log itself is whole. */
    unlink(tmp);
    log->fd = open(path, O_RDWR | O_CLOEXEC);
    if (log->fd < 0 && errno == ENOENT) {
        uint64_t size;
        err = write_replacement(path, NULL, opts->create_base_index, opts->create_base_term, &log->fd, &size);
        if (err)
            goto fail;
    } else if (log->fd < 0) {
        err = KV_EIO;
        goto fail;
    }
    off_t file_size = lseek(log->fd, 0, SEEK_END);
    unsigned char header[HEADER_SIZE];
    file_source src = {log->fd, 0};
    if (file_size < 0) {
        err = KV_EIO;
        goto fail;
    }
    if (file_size < HEADER_SIZE || file_read(&src, header, HEADER_SIZE) != HEADER_SIZE) {
        err = KV_ECORRUPT;
        goto fail;
    }
    err = decode_header(header, &log->base_index, &log->base_term);
    if (err)
        goto fail;
    log->last_index = log->base_index;
    log->last_term = log->base_term;
    err = recover(log, (uint64_t)file_size, recovery);
    if (err)
        goto fail;
    free(tmp);
    *out = log;
    return KV_OK;
fail:
    free(tmp);
    if (log) {
        int saved = errno;
        if (log->fd >= 0)
            close(log->fd);
        free(log->path);
        free(log);
        errno = saved;
    }
    return err;
}

kv_err kv_log_sync(kv_log *log)
{
    if (!log->dirty)
        return KV_OK;
    if (fdatasync(log->fd) != 0)
        return KV_EIO;
    log->dirty = 0;
    return KV_OK;
}

kv_err kv_log_close(kv_log *log)
{
    if (!log)
        return KV_OK;
    kv_err err = log->sync == KV_SYNC_NONE ? KV_OK : kv_log_sync(log);
    if (close(log->fd) != 0 && !err)
        err = KV_EIO;
    free(log->encode_buf);
    free(log->path);
    free(log);
    return err;
}

kv_err kv_log_append(kv_log *log, const kv_entry *entry)
{
    if (entry->index != log->last_index + 1 || entry->term < log->last_term)
        return KV_ERANGE;
    size_t need = kv_record_size(entry);
    if (need > log->encode_cap) {
        unsigned char *grown = realloc(log->encode_buf, need);
        if (!grown)
            return KV_ENOMEM;
        log->encode_buf = grown;
        log->encode_cap = need;
    }
    kv_err err = kv_record_encode(entry, log->encode_buf);
    if (err)
        return err;
    size_t done = 0;
    while (done < need) {
        ssize_t n = pwrite(log->fd, log->encode_buf + done, need - done, (off_t)(log->size + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int saved = errno;
            /* Half a record would be taken for a torn tail only if it stays the last one. */
            if (ftruncate(log->fd, (off_t)log->size) != 0) {
                /* Nothing more can be done here; recovery drops it on the next open. */
            }
            errno = saved;
            return KV_EIO;
        }
        done += (size_t)n;
    }
    log->size += need;
    log->last_index = entry->index;
    log->last_term = entry->term;
    log->dirty = 1;
    return log->sync == KV_SYNC_ALWAYS ? kv_log_sync(log) : KV_OK;
}

uint64_t kv_log_base_index(const kv_log *log)
{
    return log->base_index;
}

uint64_t kv_log_base_term(const kv_log *log)
{
    return log->base_term;
}

uint64_t kv_log_last_index(const kv_log *log)
{
    return log->last_index;
}

uint64_t kv_log_last_term(const kv_log *log)
{
    return log->last_term;
}

uint64_t kv_log_size(const kv_log *log)
{
    return log->size;
}

kv_err kv_log_read_after(kv_log *log, uint64_t after, kv_entry_fn fn, void *ctx)
{
    if (after < log->base_index)
        return KV_ERANGE;
    file_source src = {log->fd, HEADER_SIZE};
    kv_record_reader reader;
    kv_record_reader_init(&reader, file_read, &src);
    kv_entry entry;
    kv_err err = KV_OK;
    /* Bounded by the size the log knows, not by the end of the file: a walk never sees the
     * half of a record an append is still writing. */
    while (!err && reader.offset + HEADER_SIZE < log->size) {
        err = kv_record_next(&reader, &entry, NULL);
        if (!err && entry.index > after)
            err = fn(ctx, &entry);
    }
    kv_record_reader_cleanup(&reader);
    return err;
}

/* Stops a walk at the entry whose term it wants. */
typedef struct {
    uint64_t index, term;
    int found;
} term_lookup;

static kv_err take_term(void *ctx, const kv_entry *entry)
{
    term_lookup *lookup = ctx;
    lookup->term = entry->term;
    lookup->found = entry->index == lookup->index;
    return KV_ENOENT; /* the first entry after index - 1 is the one */
}

kv_err kv_log_truncate_before(kv_log *log, uint64_t index)
{
    if (index <= log->base_index)
        return KV_OK;
    if (index > log->last_index)
        return KV_ERANGE;
    kv_err err = kv_log_sync(log);
    if (err)
        return err;
    /* The new header holds the term of entry index, and the header is written first. */
    term_lookup lookup = {.index = index};
    err = kv_log_read_after(log, index - 1, take_term, &lookup);
    if (err != KV_ENOENT || !lookup.found)
        return err ? err : KV_ECORRUPT;
    int fd;
    uint64_t size;
    err = write_replacement(log->path, log, index, lookup.term, &fd, &size);
    if (err)
        return err;
    close(log->fd);
    log->fd = fd;
    log->base_index = index;
    log->base_term = lookup.term;
    log->size = size;
    log->dirty = 0;
    return KV_OK;
}
