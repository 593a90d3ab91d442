/*
 * bucket.c - buckets: their rows, their counters, and deleting one with what hangs on it
 * (uploads in progress, policy, CORS configuration).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "store/store_int.h"
#include "store/txn.h"
#include "store/upload.h"

int cf_store_bucket_create(cf_store *s, const char *name, cf_err *err)
{
    MDB_txn *txn;
    bucket_value bv = {cf_clock_now_ns(), 0, 0};
    MDB_val k = {strlen(name), (void *)name}, v = {sizeof bv, &bv};
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return cf_store_lmdb_err(err, rc, "begin");
    rc = mdb_put(txn, s->buckets, &k, &v, MDB_NOOVERWRITE);
    if (rc) {
        mdb_txn_abort(txn);
        if (rc == MDB_KEYEXIST)
            return cf_err_set(err, CF_EEXISTS, "bucket '%s' already exists", name);
        return cf_store_lmdb_err(err, rc, "bucket create");
    }
    rc = mdb_txn_commit(txn);
    return rc ? cf_store_lmdb_err(err, rc, "commit") : 0;
}

int cf_store_bucket_delete(cf_store *s, const char *name, cf_err *err)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    size_t nl = strlen(name);
    MDB_val k = {nl, (void *)name}, ok, ov;
    cf_object_info freed = {0};
    int rc = cf_store_txn_begin(s, &txn, err);
    if (rc)
        return rc;
    rc = mdb_del(txn, s->buckets, &k, NULL);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return cf_err_set(err, CF_ENOTFOUND, "bucket '%s' does not exist", name);
    }
    if (!rc)
        rc = mdb_cursor_open(txn, s->objects, &cur);
    if (!rc) {
        ok.mv_size = nl + 1;
        ok.mv_data = (void *)name; /* name's NUL terminator is the separator */
        int grc = mdb_cursor_get(cur, &ok, &ov, MDB_SET_RANGE);
        int empty = grc != 0 || ok.mv_size < nl + 1 || memcmp(ok.mv_data, name, nl + 1) != 0;
        mdb_cursor_close(cur);
        if (!empty) {
            mdb_txn_abort(txn);
            return cf_err_set(err, CF_ENOTEMPTY, "bucket '%s' is not empty", name);
        }
    }
    /* Uploads in progress die with their bucket (S3 does the same), parts and all; so does
     * its policy and CORS configuration, lest a new bucket of the same name inherit them. */
    int drc = rc ? 0 : cf_store_uploads_drop_in(s, txn, name, 0, &freed, NULL);
    static const char *const settings[] = {"policy", "cors"};
    for (size_t i = 0; !rc && !drc && i < sizeof settings / sizeof *settings; i++) {
        char pname[80];
        snprintf(pname, sizeof pname, "%s/%s", settings[i], name);
        MDB_val pk = {strlen(pname), pname};
        rc = mdb_del(txn, s->meta, &pk, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    if (!rc && !drc)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (!rc && !drc)
        cf_store_reclaim(s, &freed);
    cf_object_info_cleanup(&freed);
    if (drc)
        return cf_err_set(err, drc, "cannot drop the uploads of bucket '%s': %s", name, cf_strerror(drc));
    return rc ? cf_store_lmdb_err(err, rc, "bucket delete") : 0;
}

int cf_store_bucket_exists(cf_store *s, const char *name, cf_err *err)
{
    MDB_txn *txn;
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return cf_store_lmdb_err(err, rc, "begin");
    rc = mdb_get(txn, s->buckets, &k, &v);
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND)
        return cf_err_set(err, CF_ENOTFOUND, "bucket '%s' does not exist", name);
    return rc ? cf_store_lmdb_err(err, rc, "read") : 0;
}

static int walk_buckets(cf_store *s, cf_store_bucket **out, size_t *n, cf_store_stats *stats, cf_err *err)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = cf_store_read_cursor(s, s->buckets, &txn, &cur, err);
    if (rc)
        return rc;
    cf_store_bucket *list = NULL;
    size_t count = 0;
    for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        bucket_value bv = {0};
        memcpy(&bv, v.mv_data, v.mv_size < sizeof bv ? v.mv_size : sizeof bv);
        if (stats) {
            stats->buckets++;
            stats->objects += bv.objects;
            stats->bytes += bv.bytes;
        }
        if (!out)
            continue;
        cf_store_bucket *p = realloc(list, (count + 1) * sizeof *list);
        if (!p) {
            rc = CF_ENOMEM;
            break;
        }
        list = p;
        size_t len = k.mv_size < sizeof list->name - 1 ? k.mv_size : sizeof list->name - 1;
        memcpy(list[count].name, k.mv_data, len);
        list[count].name[len] = '\0';
        list[count].created_ns = bv.created_ns;
        list[count].objects = bv.objects;
        list[count].bytes = bv.bytes;
        count++;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc) {
        free(list);
        return cf_err_set(err, rc, "out of memory listing buckets");
    }
    if (out) {
        *out = list;
        *n = count;
    }
    return 0;
}

int cf_store_bucket_list(cf_store *s, cf_store_bucket **out, size_t *n, cf_err *err)
{
    return walk_buckets(s, out, n, NULL, err);
}

int cf_store_stats_get(cf_store *s, cf_store_stats *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    return walk_buckets(s, NULL, NULL, out, err);
}
