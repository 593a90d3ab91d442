/*
 * object.c - writing, reading and deleting objects.
 *
 * The commit protocol, in the order this file enforces it (steps 4 and 5 through txn.c):
 *   1. the body streams into tmp/<id> while MD5 is computed;
 *   2. fsync(file)                               - the bytes are durable
 *   3. rename into objects/ab/cd/<id>, fsync(dir) - the name is durable
 *   4. one LMDB transaction points the key at <id> and lists the replaced segments in
 *      `garbage`; mdb_txn_commit fsyncs                  - the object exists from here on
 *   5. unlink the replaced data files; their garbage rows go with the next transaction.
 * A crash before 4 leaves a file nothing references (removed at start-up); a crash between 4
 * and 5 leaves garbage rows (unlinked at start-up). Readers never see a partial object.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/bgwrite.h"
#include "core/fs.h"
#include "crypto/hash.h"
#include "crypto/md5.h"
#include "store/record.h"
#include "store/store_int.h"
#include "store/object.h"
#include "store/object_index.h"
#include "store/txn.h"

#define WRITEBACK_STEP ((uint64_t)8 << 20)
/* Bodies beyond this are written by a helper thread while this one computes MD5: on one core
 * MD5 alone runs at about the speed of the disk, so doing both in turn halves the rate. */
#define PIPELINE_AFTER ((uint64_t)1 << 20)
#define PIPELINE_SLOT ((size_t)512 << 10)
#define PIPELINE_SLOTS 4

struct cf_store_writer {
    cf_store *s;
    int fd;              /* -1 while the body is held in memory */
    unsigned char *held; /* the body while it fits in an index record (inline_max) */
    size_t held_cap;
    unsigned char id[CF_STORE_ID_LEN];
    char tmp_path[PATH_MAX]; /* "" until the data file exists */
    cf_md5_ctx md5;
    cf_bgwrite *bg; /* set once the body passes, or is declared to pass, PIPELINE_AFTER */
    uint64_t size;
    uint64_t expected; /* the declared size, 0 when unknown */
    unsigned char digest[CF_MD5_LEN];
    int finished;
    cf_store_condition *cond;
};

void cf_store_writer_set_condition(cf_store_writer *w, cf_store_condition *cond)
{
    w->cond = cond;
}

int cf_store_writer_begin(cf_store *s, cf_store_writer **out, cf_err *err)
{
    cf_store_writer *w = calloc(1, sizeof *w);
    if (!w)
        return cf_err_set(err, CF_ENOMEM, "out of memory starting a write");
    cf_md5_init(&w->md5, s->md5);
    w->s = s;
    w->fd = -1;
    *out = w;
    return 0;
}

/* Gives the body its data file in tmp/, with what was held in memory so far. */
static int open_data_file(cf_store_writer *w, cf_err *err)
{
    char hex[CF_STORE_ID_LEN * 2 + 1];
    if (cf_random_bytes(w->id, sizeof w->id) != 0)
        return cf_err_set(err, CF_EIO, "no randomness for a data file id");
    cf_hex_encode(w->id, sizeof w->id, hex);
    snprintf(w->tmp_path, sizeof w->tmp_path, "%s/%s", w->s->tmp_dir, hex);
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        int e = errno;
        w->tmp_path[0] = '\0';
        return cf_err_sys(err, cf_err_from_errno(e), e, "cannot create data file in '%s'", w->s->tmp_dir);
    }
    int rc = w->size ? cf_fs_write_all(w->fd, w->held, (size_t)w->size, w->tmp_path, err) : 0;
    if (rc)
        return rc;
    free(w->held);
    w->held = NULL;
    return 0;
}

void cf_store_writer_expect(cf_store_writer *w, uint64_t size)
{
    w->expected = size;
}

cf_store *cf_store_writer_store(const cf_store_writer *w)
{
    return w->s;
}

static void md5_slot(void *ctx, const void *p, size_t n)
{
    cf_md5_update(ctx, p, n);
}

int cf_store_writer_write(cf_store_writer *w, const void *p, size_t n, cf_err *err)
{
    int nth = atomic_load(&w->s->fail_nth_write);
    if (nth > 0 && atomic_fetch_sub(&w->s->fail_nth_write, 1) == 1)
        return cf_err_set(err, CF_EIO, "cannot write the body: injected fault");
    if (w->fd < 0) {
        size_t max = w->s->inline_max;
        if (w->size + n <= max && w->expected <= max) {
            if (w->size + n > w->held_cap) {
                /* The declared size when there is one, else room for any body that fits. */
                size_t cap = w->expected >= w->size + n ? (size_t)w->expected : max;
                unsigned char *h = realloc(w->held, cap ? cap : 1);
                if (!h)
                    return cf_err_set(err, CF_ENOMEM, "out of memory holding a body");
                w->held = h;
                w->held_cap = cap;
            }
            if (n)
                memcpy(w->held + w->size, p, n);
            cf_md5_update(&w->md5, p, n);
            w->size += n;
            return 0;
        }
        int rc = open_data_file(w, err);
        if (rc)
            return rc;
    }
    if (!w->bg && (w->size + n > PIPELINE_AFTER || w->expected > PIPELINE_AFTER)) {
        int rc = cf_bgwrite_new(w->fd, w->tmp_path, w->size, PIPELINE_SLOT, PIPELINE_SLOTS, WRITEBACK_STEP,
                                &w->bg, err);
        if (rc)
            return rc;
        /* From here on MD5 takes whole slots: bodies received at the same time are then hashed
         * side by side in passes of equal length (crypto/md5.c). */
        cf_bgwrite_set_hook(w->bg, md5_slot, &w->md5);
    }
    if (w->bg) {
        int rc = cf_bgwrite_write(w->bg, p, n, err);
        if (rc)
            return rc;
    } else {
        int rc = cf_fs_write_all(w->fd, p, n, w->tmp_path, err);
        if (rc)
            return rc;
        cf_md5_update(&w->md5, p, n);
    }
    w->size += n;
    return 0;
}

int cf_store_writer_finish(cf_store_writer *w, unsigned char md5[16], uint64_t *size, cf_err *err)
{
    if (!w->finished) {
        int rc = w->bg ? cf_bgwrite_finish(w->bg, err) : 0;
        if (rc)
            return rc;
        /* A body held in memory becomes durable with the commit of its record. */
        if (w->fd >= 0 && fdatasync(w->fd) != 0)
            return cf_err_sys(err, CF_EIO, errno, "cannot flush data file '%s'", w->tmp_path);
        cf_md5_final(&w->md5, w->digest);
        w->finished = 1;
    }
    if (md5)
        memcpy(md5, w->digest, CF_MD5_LEN);
    if (size)
        *size = w->size;
    return 0;
}

void cf_store_writer_abort(cf_store_writer *w)
{
    if (!w)
        return;
    cf_bgwrite_free(w->bg); /* before close: its thread may still be writing to fd */
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp_path[0])
        unlink(w->tmp_path);
    cf_md5_done(&w->md5);
    free(w->held);
    free(w);
}

static int ensure_data_dir(cf_store *s, const unsigned char *id, char *path, cf_err *err)
{
    cf_store_data_path(s, id, path);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    struct stat st;
    if (stat(dir, &st) == 0)
        return 0;
    return cf_fs_mkdirs(dir, 0700, err);
}

int cf_store_writer_publish(cf_store_writer *w, cf_store_segment *seg, unsigned char md5[16],
                            char *final_path, cf_err *err)
{
    char dir[PATH_MAX];
    int rc = cf_store_writer_finish(w, md5, &seg->len, err);
    if (rc)
        return rc;
    if (w->fd < 0) {
        if ((rc = open_data_file(w, err)))
            return rc;
        if (fdatasync(w->fd) != 0)
            return cf_err_sys(err, CF_EIO, errno, "cannot flush data file '%s'", w->tmp_path);
    }
    close(w->fd);
    w->fd = -1;
    if ((rc = ensure_data_dir(w->s, w->id, final_path, err)))
        return rc;
    if (rename(w->tmp_path, final_path) != 0)
        return cf_err_sys(err, CF_EIO, errno, "cannot move data file to '%s'", final_path);
    memcpy(seg->id, w->id, CF_STORE_ID_LEN);
    snprintf(dir, sizeof dir, "%s", final_path);
    *strrchr(dir, '/') = '\0';
    if ((rc = cf_fs_fsync_dir(dir, err))) {
        unlink(final_path);
        return rc;
    }
    return 0;
}

/* An object record to put under a key, as a change of a group commit (txn.c). */
typedef struct object_put {
    cf_store_change change; /* first: txn.c hands back a pointer to it */
    const char *bucket;
    const char *comp;
    size_t complen;
    const cf_buf *rec;
    uint64_t size;
    cf_store_condition *cond;
    cf_object_info old; /* the version replaced, once applied */
    int had_old;
} object_put;

static int apply_object_put(cf_store *s, MDB_txn *txn, cf_store_change *change, int *dirty, cf_err *err)
{
    object_put *p = (object_put *)change;
    if (p->had_old)
        cf_object_info_cleanup(&p->old);
    p->had_old = 0;
    /* Checks first: a refused change leaves the batch's transaction untouched. */
    MDB_val bk = {strlen(p->bucket), (void *)p->bucket}, bv;
    int mrc = mdb_get(txn, s->buckets, &bk, &bv);
    if (mrc == MDB_NOTFOUND)
        return cf_err_set(err, CF_ENOTFOUND, "bucket '%s' does not exist", p->bucket);
    if (mrc)
        return cf_store_lmdb_err(err, mrc, "write");
    int rc = cf_store_check_condition(s, txn, p->comp, p->complen, p->cond, err);
    if (rc)
        return rc;
    *dirty = 1;
    if ((rc = cf_index_put(s, txn, p->comp, p->complen, p->rec->data, p->rec->len, &p->old, &p->had_old)))
        return cf_err_set(err, rc, "cannot index object '%s': %s", p->comp + strlen(p->bucket) + 1,
                          cf_strerror(rc));
    rc = p->had_old ? cf_store_mark_garbage(s, txn, &p->old, err) : 0;
    if (!rc)
        rc = cf_store_bucket_account(s, txn, p->bucket, p->had_old ? 0 : 1,
                                     (int64_t)p->size - (p->had_old ? (int64_t)p->old.size : 0), err);
    return rc;
}

int cf_store_writer_commit(cf_store_writer *w, const char *bucket, const char *key, size_t keylen,
                           const cf_store_kv *headers, size_t nheaders, cf_object_info *info, cf_err *err)
{
    cf_store *s = w->s;
    char final_path[PATH_MAX];
    object_put put = {.change.apply = apply_object_put, .bucket = bucket, .cond = w->cond};
    char *comp = NULL;
    cf_object_info rec = {0};
    cf_buf enc;
    cf_buf_init(&enc, (size_t)1 << 24);
    int renamed = 0;
    cf_store_segment seg;
    int rc = cf_store_writer_finish(w, NULL, NULL, err);
    if (rc)
        goto out;
    if (w->fd >= 0) {
        if ((rc = cf_store_writer_publish(w, &seg, NULL, final_path, err)))
            goto out;
        renamed = 1;
        rec.segs = &seg;
        rec.nsegs = 1;
    } else {
        /* Small enough to live in its record: no data file, no flush of its own. */
        rec.data = w->held;
    }
    rec.size = w->size;
    rec.mtime_ns = cf_clock_now_ns();
    cf_hex_encode(w->digest, CF_MD5_LEN, rec.etag);
    rec.headers = (cf_store_kv *)headers;
    rec.nheaders = nheaders;
    if ((rc = cf_record_encode(&rec, &enc))) {
        rc = cf_err_set(err, rc, "object metadata of '%.*s' is too large", (int)keylen, key);
        goto out;
    }
    if (!(comp = cf_index_composite(bucket, key, keylen, &put.complen))) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    put.comp = comp;
    put.rec = &enc;
    put.size = rec.size;
    if ((rc = cf_store_commit_change(s, &put.change, err)))
        goto out;
    renamed = 0; /* the index owns the file now */
    if (put.had_old)
        cf_store_reclaim(s, &put.old);
    if (info) {
        rc = cf_object_info_copy(info, &rec);
        if (rc)
            rc = cf_err_set(err, rc, "out of memory");
    }
out:
    if (renamed)
        unlink(final_path);
    if (put.had_old)
        cf_object_info_cleanup(&put.old);
    free(comp);
    cf_buf_cleanup(&enc);
    cf_store_writer_abort(w);
    return rc;
}

int cf_store_segment_open(cf_store *s, const cf_store_segment *seg, int *fd, cf_err *err)
{
    char path[PATH_MAX];
    cf_store_data_path(s, seg->id, path);
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return cf_err_sys(err, errno == ENOENT ? CF_ENOTFOUND : CF_EIO, errno, "cannot open data file '%s'",
                          path);
    /* A data file is never shortened in place, so a short one is damage (a truncation, a lost
     * write-back); sent as it is, its response would promise bytes it never delivers. */
    struct stat st;
    int rc = fstat(*fd, &st) != 0 ? cf_err_sys(err, CF_EIO, errno, "cannot stat data file '%s'", path) : 0;
    if (!rc && (uint64_t)st.st_size < seg->len)
        rc = cf_err_set(err, CF_ECORRUPT, "data file '%s' holds %llu bytes, its record says %llu", path,
                        (unsigned long long)st.st_size, (unsigned long long)seg->len);
    if (rc) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

static int lookup(cf_store *s, const char *bucket, const char *comp, size_t complen, cf_object_info *info,
                  int *missing_bucket, cf_err *err)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return cf_store_lmdb_err(err, rc, "begin");
    rc = cf_index_get(s, txn, comp, complen, info);
    if (rc == CF_ENOTFOUND) {
        MDB_val k = {strlen(bucket), (void *)bucket}, v;
        int gone = mdb_get(txn, s->buckets, &k, &v) == MDB_NOTFOUND;
        if (missing_bucket)
            *missing_bucket = gone;
        rc = gone ? cf_err_set(err, CF_ENOTFOUND, "bucket '%s' does not exist", bucket)
                  : cf_err_set(err, CF_ENOTFOUND, "key does not exist in bucket '%s'", bucket);
    } else if (rc) {
        rc = cf_err_set(err, rc, "cannot read the record of an object in '%s': %s", bucket, cf_strerror(rc));
    }
    mdb_txn_abort(txn);
    return rc;
}

int cf_store_object_get(cf_store *s, const char *bucket, const char *key, size_t keylen, cf_object_info *info,
                        int *fd, int *missing_bucket, cf_err *err)
{
    size_t complen;
    char *comp = cf_index_composite(bucket, key, keylen, &complen);
    if (!comp)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    if (missing_bucket)
        *missing_bucket = 0;
    int rc;
    unsigned char missing[CF_STORE_ID_LEN];
    /* An overwrite may unlink the data between our lookup and our open: look again. */
    for (int attempt = 0;; attempt++) {
        memset(info, 0, sizeof *info);
        rc = lookup(s, bucket, comp, complen, info, missing_bucket, err);
        if (rc || !fd || info->nsegs == 0)
            break;
        /* The same record twice with no file: nothing replaced it, the file is lost. */
        if (attempt && !memcmp(missing, info->segs[0].id, sizeof missing)) {
            char path[PATH_MAX];
            cf_store_data_path(s, missing, path);
            rc = cf_err_set(err, CF_ECORRUPT, "data file '%s' of the record is missing", path);
            break;
        }
        rc = cf_store_segment_open(s, &info->segs[0], fd, err);
        if (rc != CF_ENOTFOUND || attempt == 8)
            break;
        memcpy(missing, info->segs[0].id, sizeof missing);
        cf_object_info_cleanup(info);
    }
    if (rc)
        cf_object_info_cleanup(info);
    free(comp);
    return rc;
}

int cf_store_object_delete(cf_store *s, const char *bucket, const char *key, size_t keylen, cf_err *err)
{
    size_t complen;
    char *comp = cf_index_composite(bucket, key, keylen, &complen);
    if (!comp)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    MDB_txn *txn;
    cf_object_info old = {0};
    int had_old = 0;
    int rc = cf_store_txn_begin(s, &txn, err);
    if (rc) {
        free(comp);
        return rc;
    }
    if ((rc = cf_store_bucket_account(s, txn, bucket, 0, 0, err))) {
        mdb_txn_abort(txn);
        free(comp);
        return rc;
    }
    int irc = cf_index_del(s, txn, comp, complen, &old, &had_old);
    if (irc)
        rc = cf_err_set(err, irc, "cannot delete from '%s': %s", bucket, cf_strerror(irc));
    else if (had_old && !(rc = cf_store_mark_garbage(s, txn, &old, err)))
        rc = cf_store_bucket_account(s, txn, bucket, -1, -(int64_t)old.size, err);
    if (rc) {
        mdb_txn_abort(txn);
    } else if ((rc = mdb_txn_commit(txn))) {
        rc = cf_store_lmdb_err(err, rc, "commit");
    } else if (had_old) {
        cf_store_reclaim(s, &old);
    }
    cf_object_info_cleanup(&old);
    free(comp);
    return rc;
}

int cf_store_object_set_header(cf_store *s, const char *bucket, const char *key, size_t keylen,
                               const char *name, const char *value, cf_err *err)
{
    size_t complen;
    char *comp = cf_index_composite(bucket, key, keylen, &complen);
    if (!comp)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    MDB_txn *txn = NULL;
    cf_object_info info = {0}, old = {0};
    cf_buf enc;
    cf_buf_init(&enc, (size_t)1 << 24);
    int had_old = 0, mrc;
    int rc = cf_store_txn_begin(s, &txn, err);
    if (!rc)
        rc = cf_store_bucket_account(s, txn, bucket, 0, 0, err);
    if (rc)
        goto out;
    if ((rc = cf_index_get(s, txn, comp, complen, &info))) {
        rc = rc == CF_ENOTFOUND ? cf_err_set(err, rc, "key does not exist in bucket '%s'", bucket)
                                : cf_err_set(err, rc, "cannot read an object record: %s", cf_strerror(rc));
        goto out;
    }
    /* Drop the old value, then append the new one: the record's header order is irrelevant. */
    size_t w = 0;
    for (size_t i = 0; i < info.nheaders; i++) {
        if (strcmp(info.headers[i].name, name) == 0) {
            free(info.headers[i].name);
            free(info.headers[i].value);
        } else {
            info.headers[w++] = info.headers[i];
        }
    }
    info.nheaders = w;
    if (value) {
        cf_store_kv *h = realloc(info.headers, (info.nheaders + 1) * sizeof *h);
        char *n = strdup(name), *v = strdup(value);
        if (h)
            info.headers = h;
        if (!h || !n || !v) {
            free(n);
            free(v);
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        info.headers[info.nheaders++] = (cf_store_kv){n, v};
    }
    if ((rc = cf_record_encode(&info, &enc))) {
        rc = cf_err_set(err, rc, "object metadata is too large");
        goto out;
    }
    /* Same segments as before: nothing becomes garbage. */
    if ((rc = cf_index_put(s, txn, comp, complen, enc.data, enc.len, &old, &had_old))) {
        rc = cf_err_set(err, rc, "cannot update an object record: %s", cf_strerror(rc));
        goto out;
    }
    mrc = mdb_txn_commit(txn);
    txn = NULL;
    if (mrc)
        rc = cf_store_lmdb_err(err, mrc, "commit");
out:
    if (txn)
        mdb_txn_abort(txn);
    cf_object_info_cleanup(&info);
    cf_object_info_cleanup(&old);
    cf_buf_cleanup(&enc);
    free(comp);
    return rc;
}
