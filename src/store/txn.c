/*
 * txn.c - the commit protocol of the index: every write transaction, what it checks, what it
 * frees, and the group commit that shares one flush between writers.
 *
 * The steps before the commit (a body made durable under its final name) are the writers'
 * (object.c, upload.c); from the commit on, this file is the one place that orders them:
 *   - cf_store_txn_begin opens every write transaction, and first deletes the garbage rows of
 *     files already unlinked, so that reclaiming costs no commit of its own;
 *   - inside the transaction a writer checks its condition (cf_store_check_condition), points
 *     keys at new records, lists the replaced segments in `garbage` (cf_store_mark_garbage)
 *     and updates the bucket's counters (cf_store_bucket_account);
 *   - a PUT's change is committed together with those of the PUTs committing at the same time
 *     (cf_store_commit_change, below);
 *   - after the commit, cf_store_reclaim unlinks the replaced files, except those of a version
 *     a reader has pinned (cf_store_pin): the last reader to let go unlinks them.
 * A crash before the commit leaves files nothing references (removed at start-up, open.c); a
 * crash after it leaves garbage rows (unlinked at start-up). docs/internals/store.md tells why.
 *
 * Group commit: the index changes of writers that commit at the same time share one LMDB
 * transaction, and so one flush.
 *
 * An LMDB commit flushes twice (the data pages, then the meta page) while holding the writer
 * lock, so writers committing one after another are bounded by the disk's flush latency: about
 * 1,400 small PUTs a second on the machine of docs/BENCHMARKS.md, whatever the number of
 * clients. Here a writer queues its change; the first one to find no commit running becomes
 * the leader, takes every change queued so far, applies them in order in one transaction and
 * commits it; the changes that queued meanwhile form the next batch, whose first writer leads
 * it. Every change is answered only after the commit that holds it returned: an acknowledged
 * write is as durable as before, and a failed commit fails every change of its batch, none of
 * which is then visible (the previous versions stay, as with any aborted transaction).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_int.h"
#include "store/object_index.h"
#include "store/txn.h"

/* A version being read (cf_store_pin), in s->pins. */
struct cf_store_pin {
    cf_store_segment *segs; /* the version's segments, in order */
    size_t nsegs;
    size_t refs;
    int replaced; /* reclaimed while pinned: the last unpin unlinks the files */
};

void cf_store_txn_init(cf_store *s)
{
    pthread_mutex_init(&s->pending_mu, NULL);
    pthread_mutex_init(&s->commit_mu, NULL);
    pthread_cond_init(&s->commit_released, NULL);
}

void cf_store_txn_cleanup(cf_store *s)
{
    pthread_cond_destroy(&s->commit_released);
    pthread_mutex_destroy(&s->commit_mu);
    pthread_mutex_destroy(&s->pending_mu);
    free(s->pending);
    s->pending = NULL;
    s->npending = s->cap_pending = 0;
    for (size_t i = 0; i < s->npins; i++)
        free(s->pins[i].segs);
    free(s->pins);
    s->pins = NULL;
    s->npins = s->cap_pins = 0;
}

/* ---- write transactions ---- */

/* Deletes the garbage rows of files unlinked after earlier commits (see cf_store_txn_begin). */
static int drain_pending(cf_store *s, MDB_txn *txn, cf_err *err)
{
    pthread_mutex_lock(&s->pending_mu);
    int rc = 0;
    for (size_t i = 0; i < s->npending && !rc; i++) {
        MDB_val k = {CF_STORE_ID_LEN, s->pending[i]};
        rc = mdb_del(txn, s->garbage, &k, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    if (!rc)
        s->npending = 0;
    pthread_mutex_unlock(&s->pending_mu);
    return rc ? cf_store_lmdb_err(err, rc, "garbage delete") : 0;
}

int cf_store_txn_begin(cf_store *s, MDB_txn **txn, cf_err *err)
{
    int rc = mdb_txn_begin(s->env, NULL, 0, txn);
    if (rc) {
        *txn = NULL;
        return cf_store_lmdb_err(err, rc, "begin");
    }
    if ((rc = drain_pending(s, *txn, err))) {
        mdb_txn_abort(*txn);
        *txn = NULL;
    }
    return rc;
}

/* ---- conditions and accounting ---- */

int cf_store_check_condition(cf_store *s, MDB_txn *txn, const char *comp, size_t complen,
                             cf_store_condition *cond, cf_err *err)
{
    if (!cond || (!cond->must_not_exist && !cond->etag_match))
        return 0;
    cf_object_info cur;
    int rc = cf_index_get(s, txn, comp, complen, &cur);
    if (rc && rc != CF_ENOTFOUND)
        return cf_err_set(err, rc, "cannot read the current object: %s", cf_strerror(rc));
    int exists = rc == 0;
    cond->failed = CF_STORE_COND_OK;
    if (cond->must_not_exist && exists)
        cond->failed = CF_STORE_COND_EXISTS;
    else if (cond->etag_match && !exists)
        cond->failed = CF_STORE_COND_MISSING;
    else if (cond->etag_match && strcmp(cur.etag, cond->etag_match) != 0)
        cond->failed = CF_STORE_COND_MISMATCH;
    if (exists)
        cf_object_info_cleanup(&cur);
    return cond->failed ? cf_err_set(err, CF_EPRECOND, "the object's condition does not hold") : 0;
}

int cf_store_bucket_account(cf_store *s, MDB_txn *txn, const char *bucket, int64_t dobjects, int64_t dbytes,
                            cf_err *err)
{
    MDB_val k = {strlen(bucket), (void *)bucket}, v;
    int rc = mdb_get(txn, s->buckets, &k, &v);
    if (rc == MDB_NOTFOUND)
        return cf_err_set(err, CF_ENOTFOUND, "bucket '%s' does not exist", bucket);
    if (rc)
        return cf_store_lmdb_err(err, rc, "bucket read");
    bucket_value bv = {0};
    memcpy(&bv, v.mv_data, v.mv_size < sizeof bv ? v.mv_size : sizeof bv);
    bv.objects += (uint64_t)dobjects;
    bv.bytes += (uint64_t)dbytes;
    v.mv_data = &bv;
    v.mv_size = sizeof bv;
    rc = mdb_put(txn, s->buckets, &k, &v, 0);
    return rc ? cf_store_lmdb_err(err, rc, "bucket write") : 0;
}

/* ---- garbage, reclaiming and pins ---- */

int cf_store_mark_garbage(cf_store *s, MDB_txn *txn, const cf_object_info *old, cf_err *err)
{
    for (size_t i = 0; i < old->nsegs; i++) {
        MDB_val k = {CF_STORE_ID_LEN, (void *)old->segs[i].id}, v = {0, ""};
        int rc = mdb_put(txn, s->garbage, &k, &v, 0);
        if (rc)
            return cf_store_lmdb_err(err, rc, "garbage write");
    }
    return 0;
}

/* Unlinks one data file and queues its garbage row for deletion; pending_mu held. */
static void unlink_segment(cf_store *s, const unsigned char id[CF_STORE_ID_LEN])
{
    char path[PATH_MAX];
    cf_store_data_path(s, id, path);
    if (unlink(path) != 0 && errno != ENOENT)
        return; /* keep the garbage row: start-up retries */
    if (s->npending == s->cap_pending) {
        size_t cap = s->cap_pending ? s->cap_pending * 2 : 64;
        void *p = realloc(s->pending, cap * CF_STORE_ID_LEN);
        if (!p)
            return; /* the row outlives its file, harmless: start-up deletes every garbage row */
        s->pending = p;
        s->cap_pending = cap;
    }
    memcpy(s->pending[s->npending++], id, CF_STORE_ID_LEN);
}

static struct cf_store_pin *find_pin(cf_store *s, const unsigned char first_id[CF_STORE_ID_LEN])
{
    for (size_t i = 0; i < s->npins; i++)
        if (memcmp(s->pins[i].segs[0].id, first_id, CF_STORE_ID_LEN) == 0)
            return &s->pins[i];
    return NULL;
}

/* How many of old's segments from i on are a pinned version (0 when none); marks it replaced. */
static size_t pinned_run(cf_store *s, const cf_object_info *old, size_t i)
{
    struct cf_store_pin *p = find_pin(s, old->segs[i].id);
    if (!p || p->nsegs > old->nsegs - i)
        return 0;
    for (size_t k = 1; k < p->nsegs; k++)
        if (memcmp(p->segs[k].id, old->segs[i + k].id, CF_STORE_ID_LEN) != 0)
            return 0;
    p->replaced = 1;
    return p->nsegs;
}

void cf_store_reclaim(cf_store *s, const cf_object_info *old)
{
    pthread_mutex_lock(&s->pending_mu);
    for (size_t i = 0; i < old->nsegs; i++) {
        size_t held = s->npins ? pinned_run(s, old, i) : 0;
        if (held)
            i += held - 1; /* a reader still sends them; cf_store_unpin unlinks */
        else
            unlink_segment(s, old->segs[i].id);
    }
    pthread_mutex_unlock(&s->pending_mu);
}

int cf_store_pin(cf_store *s, const cf_object_info *info, cf_err *err)
{
    if (!info->nsegs)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&s->pending_mu);
    struct cf_store_pin *p = find_pin(s, info->segs[0].id);
    if (p) {
        p->refs++; /* already held, so nothing of it is gone */
        goto out;
    }
    /* Under pending_mu a reclaim either ran whole, unlinking the first segment first, or will
     * run after this and see the pin: the first file still there means the version is whole. */
    char path[PATH_MAX];
    cf_store_data_path(s, info->segs[0].id, path);
    if (access(path, F_OK) != 0) {
        rc = cf_err_set(err, CF_ENOTFOUND, "the object was replaced before its read began");
        goto out;
    }
    if (s->npins == s->cap_pins) {
        size_t cap = s->cap_pins ? s->cap_pins * 2 : 16;
        void *np = realloc(s->pins, cap * sizeof *s->pins);
        if (!np) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        s->pins = np;
        s->cap_pins = cap;
    }
    cf_store_segment *segs = malloc(info->nsegs * sizeof *segs);
    if (!segs) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(segs, info->segs, info->nsegs * sizeof *segs);
    s->pins[s->npins++] = (struct cf_store_pin){segs, info->nsegs, 1, 0};
out:
    pthread_mutex_unlock(&s->pending_mu);
    return rc;
}

void cf_store_unpin(cf_store *s, const unsigned char first_id[CF_STORE_ID_LEN])
{
    pthread_mutex_lock(&s->pending_mu);
    struct cf_store_pin *p = find_pin(s, first_id);
    if (p && --p->refs == 0) {
        for (size_t k = 0; p->replaced && k < p->nsegs; k++)
            unlink_segment(s, p->segs[k].id);
        free(p->segs);
        *p = s->pins[--s->npins];
    }
    pthread_mutex_unlock(&s->pending_mu);
}

/* ---- group commit ---- */

/* A batch applies its changes one after another inside the writer lock: the cap bounds how long
 * a leader keeps the others (and itself) waiting. */
#define BATCH_MAX 128

/*
 * Applies batch[0..n) in one transaction and commits it; sets each change's rc (and err). A
 * change that fails without touching the transaction just drops out. One that fails after
 * changing it (only an LMDB error does) leaves the transaction unusable: it is started again
 * without that change, and the others are applied again from their inputs.
 */
static void run_batch(cf_store *s, cf_store_change **batch, size_t n)
{
    for (size_t i = 0; i < n; i++)
        batch[i]->rc = 0;
    for (;;) {
        MDB_txn *txn;
        cf_err begin_err;
        int rc = cf_store_txn_begin(s, &txn, &begin_err);
        if (rc) {
            for (size_t i = 0; i < n; i++)
                if (!batch[i]->rc) {
                    batch[i]->rc = rc;
                    batch[i]->err = begin_err;
                }
            return;
        }
        int again = 0;
        for (size_t i = 0; i < n && !again; i++) {
            cf_store_change *c = batch[i];
            if (c->rc)
                continue;
            int dirty = 0;
            c->rc = c->apply(s, txn, c, &dirty, &c->err);
            again = c->rc && dirty;
        }
        if (again) {
            mdb_txn_abort(txn);
            continue;
        }
        int mrc, nth = atomic_load(&s->fail_nth_commit);
        if (nth > 0 && atomic_fetch_sub(&s->fail_nth_commit, 1) == 1) {
            mdb_txn_abort(txn);
            mrc = EIO; /* as a failed flush: nothing of the batch reached the disk */
        } else {
            mrc = mdb_txn_commit(txn);
        }
        for (size_t i = 0; mrc && i < n; i++)
            if (!batch[i]->rc)
                batch[i]->rc = cf_store_lmdb_err(&batch[i]->err, mrc, "commit");
        return;
    }
}

int cf_store_commit_change(cf_store *s, cf_store_change *c, cf_err *err)
{
    c->next = NULL;
    c->done = 0;
    c->rc = 0;
    c->err.msg[0] = '\0';
    pthread_cond_init(&c->wake, NULL);
    pthread_mutex_lock(&s->commit_mu);
    if (s->commit_tail)
        s->commit_tail->next = c;
    else
        s->commit_head = c;
    s->commit_tail = c;
    s->commit_queued++;
    while (!c->done) {
        if (s->committing || s->commit_hold) {
            pthread_cond_wait(s->commit_hold ? &s->commit_released : &c->wake, &s->commit_mu);
            continue;
        }
        /* Lead: take what is queued (this change among it: nothing ahead of it is left
         * undone while no commit runs). */
        cf_store_change *batch[BATCH_MAX];
        size_t n = 0;
        while (s->commit_head && n < BATCH_MAX) {
            batch[n++] = s->commit_head;
            s->commit_head = s->commit_head->next;
        }
        if (!s->commit_head)
            s->commit_tail = NULL;
        s->commit_queued -= n;
        s->committing = 1;
        pthread_mutex_unlock(&s->commit_mu);
        run_batch(s, batch, n);
        pthread_mutex_lock(&s->commit_mu);
        s->committing = 0;
        for (size_t i = 0; i < n; i++) {
            batch[i]->done = 1;
            if (batch[i] != c)
                pthread_cond_signal(&batch[i]->wake);
        }
        /* The first change queued during this commit leads the next one. */
        if (s->commit_head)
            pthread_cond_signal(&s->commit_head->wake);
    }
    pthread_mutex_unlock(&s->commit_mu);
    pthread_cond_destroy(&c->wake);
    if (c->rc && err)
        *err = c->err;
    return c->rc;
}

void cf_store_hold_commits(cf_store *s, int hold)
{
    pthread_mutex_lock(&s->commit_mu);
    s->commit_hold = hold;
    if (!hold) {
        pthread_cond_broadcast(&s->commit_released);
        if (s->commit_head && !s->committing)
            pthread_cond_signal(&s->commit_head->wake);
    }
    pthread_mutex_unlock(&s->commit_mu);
}

size_t cf_store_commits_queued(cf_store *s)
{
    pthread_mutex_lock(&s->commit_mu);
    size_t n = s->commit_queued;
    pthread_mutex_unlock(&s->commit_mu);
    return n;
}

void cf_store_fail_nth_commit(cf_store *s, int n)
{
    atomic_store(&s->fail_nth_commit, n);
}
