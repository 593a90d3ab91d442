/*
 * commit.c - group commit: the index changes of writers that commit at the same time share one
 * LMDB transaction, and so one flush.
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
#include <string.h>

#include "store/store_int.h"

/* A batch applies its changes one after another inside the writer lock: the cap bounds how long
 * a leader keeps the others (and itself) waiting. */
#define BATCH_MAX 128

void cf_store_commits_init(cf_store *s)
{
    pthread_mutex_init(&s->commit_mu, NULL);
    pthread_cond_init(&s->commit_released, NULL);
}

void cf_store_commits_destroy(cf_store *s)
{
    pthread_cond_destroy(&s->commit_released);
    pthread_mutex_destroy(&s->commit_mu);
}

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
        int mrc = cf_store_txn_begin(s, &txn);
        if (mrc) {
            for (size_t i = 0; i < n; i++)
                if (!batch[i]->rc)
                    batch[i]->rc = cf_store_lmdb_err(&batch[i]->err, mrc, "begin");
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
        int nth = atomic_load(&s->fail_nth_commit);
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
