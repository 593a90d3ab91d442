/*
 * keys.c - access keys besides root, and small named settings (bucket policies).
 *
 * Tables:
 *   keys  access key -> u8 version | i64 created_ns | u16 len, secret | u16 len, policy |
 *                       u16 len, bucket | u16 len, prefix | u16 len, rate group (version 2 on)
 *   meta  name -> bytes   ("policy/<bucket>": the bucket's policy document; "cors/<bucket>": its
 *                          CORSConfiguration XML as PutBucketCors received it;
 *                          "rategroup/<name>": the group's rate, decimal bytes/s)
 * The secret is kept as is: SigV4 verification needs it, not a hash of it. The index files
 * are mode 0600, like the generated root credentials.
 */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "store/store_int.h"
#include "store/txn.h"

/* Version 1 records (before rate groups) are still read: their key has no group. */
#define KEY_RECORD_VERSION 2
#define KEY_RECORD_VERSION_NO_GROUP 1

static int put_str(cf_buf *b, const char *s)
{
    uint16_t n = (uint16_t)strlen(s);
    int rc = cf_buf_append(b, &n, 2);
    return rc ? rc : cf_buf_append(b, s, n);
}

static int take_str(const unsigned char **p, size_t *left, char *out, size_t cap)
{
    uint16_t n;
    if (*left < 2)
        return CF_ECORRUPT;
    memcpy(&n, *p, 2);
    if (*left < 2u + n || n >= cap)
        return CF_ECORRUPT;
    memcpy(out, *p + 2, n);
    out[n] = '\0';
    *p += 2u + n;
    *left -= 2u + n;
    return 0;
}

static int decode_key(const MDB_val *k, const MDB_val *v, cf_store_key *out)
{
    memset(out, 0, sizeof *out);
    if (k->mv_size >= sizeof out->access_key || v->mv_size < 9)
        return CF_ECORRUPT;
    memcpy(out->access_key, k->mv_data, k->mv_size);
    const unsigned char *p = v->mv_data;
    size_t left = v->mv_size;
    unsigned version = p[0];
    if (version != KEY_RECORD_VERSION && version != KEY_RECORD_VERSION_NO_GROUP)
        return CF_ECORRUPT;
    memcpy(&out->created_ns, p + 1, 8);
    p += 9;
    left -= 9;
    int rc = take_str(&p, &left, out->secret_key, sizeof out->secret_key);
    if (!rc)
        rc = take_str(&p, &left, out->policy, sizeof out->policy);
    if (!rc)
        rc = take_str(&p, &left, out->bucket, sizeof out->bucket);
    if (!rc)
        rc = take_str(&p, &left, out->prefix, sizeof out->prefix);
    if (!rc && version >= KEY_RECORD_VERSION)
        rc = take_str(&p, &left, out->rate_group, sizeof out->rate_group);
    return rc;
}

int cf_store_rate_group_name_valid(const char *name)
{
    size_t n = strlen(name);
    return n <= CF_STORE_RATE_GROUP_MAX && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

int cf_store_key_add(cf_store *s, const cf_store_key *key, cf_err *err)
{
    size_t kl = strlen(key->access_key);
    if (kl == 0 || kl >= sizeof key->access_key)
        return cf_err_set(err, CF_EINVAL, "an access key must be 1 to 128 characters");
    if (!cf_store_rate_group_name_valid(key->rate_group))
        return cf_err_set(err, CF_EINVAL, "a rate group name must be 1 to 32 of a-z, 0-9 and '-'");
    cf_buf b;
    cf_buf_init(&b, 8192);
    unsigned char version = KEY_RECORD_VERSION;
    int rc = cf_buf_append(&b, &version, 1);
    if (!rc)
        rc = cf_buf_append(&b, &key->created_ns, 8);
    if (!rc)
        rc = put_str(&b, key->secret_key);
    if (!rc)
        rc = put_str(&b, key->policy);
    if (!rc)
        rc = put_str(&b, key->bucket);
    if (!rc)
        rc = put_str(&b, key->prefix);
    if (!rc)
        rc = put_str(&b, key->rate_group);
    if (rc) {
        cf_buf_cleanup(&b);
        return cf_err_set(err, rc, "out of memory");
    }
    MDB_txn *txn;
    MDB_val k = {kl, (void *)key->access_key}, v = {b.len, b.data};
    if ((rc = cf_store_txn_begin(s, &txn, err))) {
        cf_buf_cleanup(&b);
        return rc;
    }
    int mrc = mdb_put(txn, s->keys, &k, &v, MDB_NOOVERWRITE);
    if (!mrc)
        mrc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    cf_buf_cleanup(&b);
    if (mrc == MDB_KEYEXIST)
        return cf_err_set(err, CF_EEXISTS, "access key '%s' already exists", key->access_key);
    return mrc ? cf_store_lmdb_err(err, mrc, "key add") : 0;
}

int cf_store_key_get(cf_store *s, const char *access_key, cf_store_key *out, cf_err *err)
{
    MDB_txn *txn;
    MDB_val k = {strlen(access_key), (void *)access_key}, v;
    if (k.mv_size == 0 || k.mv_size >= sizeof out->access_key)
        return cf_err_set(err, CF_ENOTFOUND, "no such access key");
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return cf_store_lmdb_err(err, rc, "begin");
    rc = mdb_get(txn, s->keys, &k, &v);
    if (rc == MDB_NOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "no such access key");
    else if (rc)
        rc = cf_store_lmdb_err(err, rc, "key lookup");
    else if ((rc = decode_key(&k, &v, out)))
        rc = cf_err_set(err, rc, "the record of an access key is unreadable");
    mdb_txn_abort(txn);
    return rc;
}

int cf_store_key_list(cf_store *s, cf_store_key **out, size_t *n, cf_err *err)
{
    *out = NULL;
    *n = 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = cf_store_read_cursor(s, s->keys, &txn, &cur, err);
    if (rc)
        return rc;
    size_t cap = 0;
    cf_store_key *list = NULL;
    for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            cf_store_key *p = realloc(list, cap * sizeof *p);
            if (!p) {
                rc = CF_ENOMEM;
                break;
            }
            list = p;
        }
        if ((rc = decode_key(&k, &v, &list[*n])) == 0)
            (*n)++;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc) {
        free(list);
        *n = 0;
        return cf_err_set(err, rc, "cannot list access keys: %s", cf_strerror(rc));
    }
    *out = list;
    return 0;
}

int cf_store_key_delete(cf_store *s, const char *access_key, cf_err *err)
{
    MDB_txn *txn;
    MDB_val k = {strlen(access_key), (void *)access_key};
    int rc = cf_store_txn_begin(s, &txn, err);
    if (rc)
        return rc;
    rc = k.mv_size ? mdb_del(txn, s->keys, &k, NULL) : MDB_NOTFOUND;
    if (rc) {
        mdb_txn_abort(txn);
        return rc == MDB_NOTFOUND ? cf_err_set(err, CF_ENOTFOUND, "no access key '%s'", access_key)
                                  : cf_store_lmdb_err(err, rc, "key delete");
    }
    rc = mdb_txn_commit(txn);
    return rc ? cf_store_lmdb_err(err, rc, "commit") : 0;
}

int cf_store_meta_get(cf_store *s, const char *name, char **value, size_t *len, cf_err *err)
{
    MDB_txn *txn;
    MDB_val k = {strlen(name), (void *)name}, v;
    *value = NULL;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return cf_store_lmdb_err(err, rc, "begin");
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rc = cf_err_set(err, CF_ENOTFOUND, "no setting '%s'", name);
    } else if (rc) {
        rc = cf_store_lmdb_err(err, rc, "read");
    } else if (!(*value = malloc(v.mv_size + 1))) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    } else {
        memcpy(*value, v.mv_data, v.mv_size);
        (*value)[v.mv_size] = '\0';
        if (len)
            *len = v.mv_size;
    }
    mdb_txn_abort(txn);
    return rc;
}

int cf_store_meta_put(cf_store *s, const char *name, const void *value, size_t len, cf_err *err)
{
    MDB_txn *txn;
    MDB_val k = {strlen(name), (void *)name}, v = {len, (void *)value};
    int rc = cf_store_txn_begin(s, &txn, err);
    if (rc)
        return rc;
    rc = value ? mdb_put(txn, s->meta, &k, &v, 0) : mdb_del(txn, s->meta, &k, NULL);
    if (rc == MDB_NOTFOUND && !value)
        rc = 0;
    if (rc) {
        mdb_txn_abort(txn);
        return cf_store_lmdb_err(err, rc, "write");
    }
    rc = mdb_txn_commit(txn);
    return rc ? cf_store_lmdb_err(err, rc, "commit") : 0;
}

int cf_store_meta_list(cf_store *s, const char *prefix, cf_store_meta_visitor visit, void *ctx, cf_err *err)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    size_t pl = strlen(prefix);
    MDB_val k = {pl, (void *)prefix}, v;
    int rc = cf_store_read_cursor(s, s->meta, &txn, &cur, err);
    if (rc)
        return rc;
    char name[512];
    int mrc = pl ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (; !rc && mrc == 0 && k.mv_size >= pl && memcmp(k.mv_data, prefix, pl) == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size >= sizeof name) /* longer than any name a visitor looks for */
            continue;
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = '\0';
        rc = visit(ctx, name, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc < 0)
        return cf_err_set(err, rc, "cannot list the settings '%s*': %s", prefix, cf_strerror(rc));
    return 0;
}
