/*
 * store_int.h - the inside of store.h, for the files of src/store/ alone: the state of an open
 * store, and the ground functions of store.c. What the other files lend each other is declared
 * in one header per file (object_index.h, txn.h, object.h, upload.h), so that an include says
 * which layer a file uses.
 */
#ifndef CF_STORE_STORE_INT_H
#define CF_STORE_STORE_INT_H

#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

#include "crypto/md5.h"
#include "store/store.h"

struct cf_store {
    char *dir;
    cf_logger log; /* a copy of the opener's; .sink NULL = silent */
    char objects_dir[PATH_MAX];
    char tmp_dir[PATH_MAX];
    MDB_env *env;
    MDB_dbi buckets;           /* name -> bucket_value */
    MDB_dbi objects;           /* "bucket\0key" -> record, or overflow group (record.h) */
    MDB_dbi uploads;           /* upload id -> upload value (upload.c) */
    MDB_dbi parts;             /* upload id + part number -> record of one segment */
    MDB_dbi keys;              /* access key -> key record (keys.c) */
    MDB_dbi meta;              /* name -> bytes: bucket policies and other small settings */
    MDB_dbi garbage;           /* segment id -> "" : data files to unlink after the commit that freed them */
    MDB_dbi completed;         /* upload id -> how it completed, to answer a retried completion (upload.c) */
    size_t head_max;           /* longest composite key stored directly; longer ones go to groups */
    size_t inline_max;         /* bodies up to this size are kept in their record */
    cf_md5_gather *md5;        /* the ETags of bodies written at the same time are hashed side by side */
    atomic_int fail_nth_write; /* tests: the n-th body write fails (object.c) */

    /* The rest belongs to txn.c (cf_store_txn_init / cf_store_txn_cleanup).
     * Ids already unlinked whose garbage rows the next write transaction deletes, so that
     * reclaiming costs no commit (and no fsync) of its own. */
    pthread_mutex_t pending_mu;
    unsigned char (*pending)[CF_STORE_ID_LEN];
    size_t npending, cap_pending;
    /* Versions of several segments being read (reader.c), under pending_mu: reclaiming defers
     * their files until the last reader lets go, so a GET sends the version it started. */
    struct cf_store_pin *pins;
    size_t npins, cap_pins;

    /* Group commit: changes waiting for the next batch, and whether one runs. */
    pthread_mutex_t commit_mu;
    pthread_cond_t commit_released;
    struct cf_store_change *commit_head, *commit_tail;
    size_t commit_queued;
    int committing;
    int commit_hold; /* tests: queue changes but start no batch */
    atomic_int fail_nth_commit;
};

/* The value of a row of `buckets`. */
typedef struct bucket_value {
    int64_t created_ns;
    uint64_t objects;
    uint64_t bytes;
} bucket_value;

/* Fills err (may be NULL) from an LMDB error and returns its CF_E… code: CF_ENOSPACE for a full
 * map or disk, CF_EIO otherwise (store.c). */
int cf_store_lmdb_err(cf_err *err, int mdb_rc, const char *what);
/* A read-only transaction and a cursor on dbi, for a walk over one table; the caller closes
 * the cursor and aborts the transaction. */
int cf_store_read_cursor(cf_store *s, MDB_dbi dbi, MDB_txn **txn, MDB_cursor **cur, cf_err *err);
/* objects/ab/cd/<hex id> of a segment id; path must hold PATH_MAX bytes (store.c). */
void cf_store_data_path(const cf_store *s, const unsigned char id[CF_STORE_ID_LEN], char *path);

#endif
