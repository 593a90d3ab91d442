/* store_int.h - what the files of src/store/ share; not for other layers. */
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
    MDB_dbi buckets;    /* name -> bucket_value */
    MDB_dbi objects;    /* "bucket\0key" -> record, or overflow group (record.h) */
    MDB_dbi uploads;    /* upload id -> upload value (upload.c) */
    MDB_dbi parts;      /* upload id + part number -> record of one segment */
    MDB_dbi keys;       /* access key -> key record (keys.c) */
    MDB_dbi meta;       /* name -> bytes: bucket policies and other small settings */
    MDB_dbi garbage;    /* segment id -> "" : data files to unlink after the commit that freed them */
    MDB_dbi completed;  /* upload id -> how it completed, to answer a retried completion (upload.c) */
    size_t head_max;    /* longest composite key stored directly; longer ones go to groups */
    size_t inline_max;  /* bodies up to this size are kept in their record */
    cf_md5_gather *md5; /* the ETags of bodies written at the same time are hashed side by side */

    /* Ids already unlinked whose garbage rows the next write transaction deletes, so that
     * reclaiming costs no commit (and no fsync) of its own. */
    pthread_mutex_t pending_mu;
    unsigned char (*pending)[CF_STORE_ID_LEN];
    size_t npending, cap_pending;
    /* Versions of several segments being read (reader.c), under pending_mu: reclaiming defers
     * their files until the last reader lets go, so a GET sends the version it started. */
    struct cf_store_pin *pins;
    size_t npins, cap_pins;

    atomic_int fail_nth_write;

    /* Group commit (commit.c): changes waiting for the next batch, and whether one runs. */
    pthread_mutex_t commit_mu;
    pthread_cond_t commit_released;
    struct cf_store_change *commit_head, *commit_tail;
    size_t commit_queued;
    int committing;
    int commit_hold; /* tests: queue changes but start no batch */
    atomic_int fail_nth_commit;
};

typedef struct bucket_value {
    int64_t created_ns;
    uint64_t objects;
    uint64_t bytes;
} bucket_value;

/* objects/ab/cd/<hex id> of a segment id; path must hold PATH_MAX bytes. */
void cf_store_data_path(const cf_store *s, const unsigned char id[CF_STORE_ID_LEN], char *path);
int cf_store_lmdb_err(cf_err *err, int mdb_rc, const char *what);

/* A write transaction that first deletes the garbage rows of already-unlinked files. */
int cf_store_txn_begin(cf_store *s, MDB_txn **txn);
/* Lists old's data files in `garbage` inside txn; after the commit, cf_store_reclaim unlinks them. */
int cf_store_mark_garbage(cf_store *s, MDB_txn *txn, const cf_object_info *old);
void cf_store_reclaim(cf_store *s, const cf_object_info *old);
/*
 * Holds the data files of info's version (named by its first segment) until cf_store_unpin:
 * a reclaim meanwhile leaves them in place, and the last unpin unlinks them. CF_ENOTFOUND when
 * the version was already reclaimed (an overwrite won the race: look the key up again).
 * `old` given to cf_store_reclaim must hold a replaced version's segments in order, one run.
 */
int cf_store_pin(cf_store *s, const cf_object_info *info, cf_err *err);
void cf_store_unpin(cf_store *s, const unsigned char first_id[CF_STORE_ID_LEN]);
/* Frees the pin table at close (every reader is gone by then). */
void cf_store_pins_free(cf_store *s);
/* Adds to a bucket's counters; sets *missing (and changes nothing) when it does not exist. */
int cf_store_bucket_account(cf_store *s, MDB_txn *txn, const char *bucket, int64_t dobjects, int64_t dbytes,
                            int *missing);
/*
 * Makes a writer's body durable under its final name objects/ab/cd/<id> (finish, rename, fsync
 * the directory) and describes it in *seg. Nothing references the file yet: the caller commits
 * a record that does, or unlinks final_path (PATH_MAX bytes). The caller still frees w.
 */
int cf_store_writer_publish(cf_store_writer *w, cf_store_segment *seg, unsigned char md5[16],
                            char *final_path, cf_err *err);

cf_store *cf_store_writer_store(const cf_store_writer *w);
/* Checks cond (may be NULL) against what comp holds in txn: 0, or CF_EPRECOND with cond->failed
 * and a message in err. */
int cf_store_check_condition(cf_store *s, MDB_txn *txn, const char *comp, size_t complen,
                             cf_store_condition *cond, cf_err *err);
/* Drops, inside txn, the uploads of bucket (when non-NULL) or those initiated before
 * cutoff_ns, listing their data as garbage and appending it to *freed for cf_store_reclaim. */
int cf_store_uploads_drop_in(cf_store *s, MDB_txn *txn, const char *bucket, int64_t cutoff_ns,
                             cf_object_info *freed, size_t *dropped);

/*
 * One writer's change to the index, committed together with those of the writers that commit at
 * the same time (commit.c). apply makes the change inside txn and returns 0, or an error code
 * with a message in err and *dirty set when it had already changed txn (only an LMDB error
 * should do that: check first, then change). apply may run more than once for one commit, each
 * time from its inputs, in a new transaction that holds the changes queued before it.
 */
typedef struct cf_store_change cf_store_change;
struct cf_store_change {
    int (*apply)(cf_store *s, MDB_txn *txn, cf_store_change *c, int *dirty, cf_err *err);
    /* set by commit.c */
    int rc;
    cf_err err;
    int done;
    pthread_cond_t wake;
    cf_store_change *next;
};

void cf_store_commits_init(cf_store *s);
void cf_store_commits_destroy(cf_store *s);
/* Applies c in the next group commit and returns once that commit is durable (0) or failed
 * (c's error code, and the message in err). */
int cf_store_commit_change(cf_store *s, cf_store_change *c, cf_err *err);

/* Object index operations inside a write transaction (object_index.c). */
int cf_index_get(cf_store *s, MDB_txn *txn, const char *comp, size_t complen, cf_object_info *info);
/* Puts rec under comp. When an older record was there, decodes it into *old and sets *had_old. */
int cf_index_put(cf_store *s, MDB_txn *txn, const char *comp, size_t complen, const void *rec, size_t reclen,
                 cf_object_info *old, int *had_old);
int cf_index_del(cf_store *s, MDB_txn *txn, const char *comp, size_t complen, cf_object_info *old,
                 int *had_old);
/* Builds "bucket\0key" into a heap buffer (caller frees). */
char *cf_index_composite(const char *bucket, const char *key, size_t keylen, size_t *complen);

#endif
