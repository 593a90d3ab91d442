/*
 * txn.h - the commit protocol of the index (txn.c): write transactions, the checks and changes
 * made inside them, group commit, and what happens to replaced data after the commit. Internal
 * to src/store/; docs/internals/store.md tells the protocol whole.
 */
#ifndef CF_STORE_TXN_H
#define CF_STORE_TXN_H

#include "store/store_int.h"

/* The protocol's part of cf_store: set up at open, torn down at close (every reader is gone by
 * then). */
void cf_store_txn_init(cf_store *s);
void cf_store_txn_cleanup(cf_store *s);

/*
 * Every function here returns 0 or a CF_E… code with a message in err (may be NULL), LMDB's
 * errors mapped by cf_store_lmdb_err.
 *
 * A write transaction that first deletes the garbage rows of already-unlinked files. *txn is
 * NULL when it fails.
 */
int cf_store_txn_begin(cf_store *s, MDB_txn **txn, cf_err *err);
/* Checks cond (may be NULL) against what comp holds in txn: 0, or CF_EPRECOND with cond->failed
 * and a message in err. */
int cf_store_check_condition(cf_store *s, MDB_txn *txn, const char *comp, size_t complen,
                             cf_store_condition *cond, cf_err *err);
/* Adds to a bucket's counters; CF_ENOTFOUND (and nothing changed) when it does not exist, so
 * that adding 0, 0 checks that it does. */
int cf_store_bucket_account(cf_store *s, MDB_txn *txn, const char *bucket, int64_t dobjects, int64_t dbytes,
                            cf_err *err);
/* Lists old's data files in `garbage` inside txn; after the commit, cf_store_reclaim unlinks them. */
int cf_store_mark_garbage(cf_store *s, MDB_txn *txn, const cf_object_info *old, cf_err *err);
void cf_store_reclaim(cf_store *s, const cf_object_info *old);
/*
 * Holds the data files of info's version (named by its first segment) until cf_store_unpin:
 * a reclaim meanwhile leaves them in place, and the last unpin unlinks them. CF_ENOTFOUND when
 * the version was already reclaimed (an overwrite won the race: look the key up again).
 * `old` given to cf_store_reclaim must hold a replaced version's segments in order, one run.
 */
int cf_store_pin(cf_store *s, const cf_object_info *info, cf_err *err);
void cf_store_unpin(cf_store *s, const unsigned char first_id[CF_STORE_ID_LEN]);

/*
 * One writer's change to the index, committed together with those of the writers that commit at
 * the same time. apply makes the change inside txn and returns 0, or an error code with a
 * message in err and *dirty set when it had already changed txn (only an LMDB error should do
 * that: check first, then change). apply may run more than once for one commit, each time from
 * its inputs, in a new transaction that holds the changes queued before it.
 */
typedef struct cf_store_change cf_store_change;
struct cf_store_change {
    int (*apply)(cf_store *s, MDB_txn *txn, cf_store_change *c, int *dirty, cf_err *err);
    /* set by txn.c */
    int rc;
    cf_err err;
    int done;
    pthread_cond_t wake;
    cf_store_change *next;
};

/* Applies c in the next group commit and returns once that commit is durable (0) or failed
 * (c's error code, and the message in err). */
int cf_store_commit_change(cf_store *s, cf_store_change *c, cf_err *err);

#endif
