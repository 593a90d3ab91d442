/*
 * object_index.c - mapping composite keys "bucket\0key" to LMDB rows, hiding the overflow
 * groups that hold composites longer than LMDB's key limit (see record.h).
 */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "store/record.h"
#include "store/store_int.h"
#include "store/object_index.h"

/* A group holds keys sharing head_max bytes; S3 keys are at most 1024 bytes, but nothing stops
 * millions of keys from sharing a 500-byte head, so the cap is the value size we accept. */
#define GROUP_MAX_ENTRIES 100000

char *cf_index_composite(const char *bucket, const char *key, size_t keylen, size_t *complen)
{
    size_t bl = strlen(bucket);
    char *c = malloc(bl + 1 + keylen + 1);
    if (!c)
        return NULL;
    memcpy(c, bucket, bl + 1);
    memcpy(c + bl + 1, key, keylen);
    c[bl + 1 + keylen] = '\0';
    *complen = bl + 1 + keylen;
    return c;
}

static int is_long(const cf_store *s, size_t complen)
{
    return complen > s->head_max;
}

/* The row key of a long composite: its head plus 0xFF (never a UTF-8 byte). */
static void group_key(const cf_store *s, const char *comp, char *out, MDB_val *k)
{
    memcpy(out, comp, s->head_max);
    out[s->head_max] = (char)0xFF;
    k->mv_data = out;
    k->mv_size = s->head_max + 1;
}

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

typedef struct group {
    cf_group_entry *e;
    long n;
} group;

static int group_load(cf_store *s, MDB_txn *txn, const char *comp, char *gk, MDB_val *k, group *g)
{
    MDB_val v;
    group_key(s, comp, gk, k);
    g->e = NULL;
    g->n = 0;
    int rc = mdb_get(txn, s->objects, k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return cf_store_lmdb_err(NULL, rc, "read");
    uint32_t count = 0;
    if (v.mv_size >= 5)
        memcpy(&count, (const char *)v.mv_data + 1, 4);
    if (count > GROUP_MAX_ENTRIES)
        return CF_ECORRUPT;
    /* One spare slot for an insertion. */
    g->e = malloc(sizeof *g->e * (count + 1));
    if (!g->e)
        return CF_ENOMEM;
    g->n = cf_group_parse(v.mv_data, v.mv_size, g->e, count);
    return g->n < 0 ? (int)g->n : 0;
}

static long group_find(const group *g, const char *comp, size_t complen, int *found)
{
    long i = 0;
    while (i < g->n && cmp_bytes(g->e[i].key, g->e[i].keylen, comp, complen) < 0)
        i++;
    *found = i < g->n && cmp_bytes(g->e[i].key, g->e[i].keylen, comp, complen) == 0;
    return i;
}

static int group_store(cf_store *s, MDB_txn *txn, MDB_val *k, const group *g)
{
    if (g->n == 0) {
        int rc = mdb_del(txn, s->objects, k, NULL);
        return rc && rc != MDB_NOTFOUND ? cf_store_lmdb_err(NULL, rc, "delete") : 0;
    }
    cf_buf b;
    cf_buf_init(&b, (size_t)1 << 31);
    int rc = cf_group_encode(g->e, (size_t)g->n, &b);
    if (!rc) {
        MDB_val v = {b.len, b.data};
        int mrc = mdb_put(txn, s->objects, k, &v, 0);
        if (mrc)
            rc = cf_store_lmdb_err(NULL, mrc, "write");
    }
    cf_buf_cleanup(&b);
    return rc;
}

int cf_index_get(cf_store *s, MDB_txn *txn, const char *comp, size_t complen, cf_object_info *info)
{
    if (!is_long(s, complen)) {
        MDB_val k = {complen, (void *)comp}, v;
        int rc = mdb_get(txn, s->objects, &k, &v);
        if (rc == MDB_NOTFOUND)
            return CF_ENOTFOUND;
        if (rc)
            return cf_store_lmdb_err(NULL, rc, "read");
        return cf_record_decode(v.mv_data, v.mv_size, info);
    }
    char gk[1024];
    MDB_val k;
    group g;
    int rc = group_load(s, txn, comp, gk, &k, &g);
    if (!rc) {
        int found;
        long i = group_find(&g, comp, complen, &found);
        rc = found ? cf_record_decode(g.e[i].rec, g.e[i].reclen, info) : CF_ENOTFOUND;
    }
    free(g.e);
    return rc;
}

int cf_index_put(cf_store *s, MDB_txn *txn, const char *comp, size_t complen, const void *rec, size_t reclen,
                 cf_object_info *old, int *had_old)
{
    *had_old = 0;
    if (!is_long(s, complen)) {
        MDB_val k = {complen, (void *)comp}, v;
        int rc = mdb_get(txn, s->objects, &k, &v);
        if (rc == 0) {
            rc = cf_record_decode_meta(v.mv_data, v.mv_size, old);
            if (rc)
                return rc;
            *had_old = 1;
        } else if (rc != MDB_NOTFOUND) {
            return cf_store_lmdb_err(NULL, rc, "read");
        }
        v.mv_data = (void *)rec;
        v.mv_size = reclen;
        rc = mdb_put(txn, s->objects, &k, &v, 0);
        return rc ? cf_store_lmdb_err(NULL, rc, "write") : 0;
    }
    char gk[1024];
    MDB_val k;
    group g;
    int rc = group_load(s, txn, comp, gk, &k, &g);
    if (!rc && !g.e && !(g.e = malloc(sizeof *g.e)))
        rc = CF_ENOMEM;
    if (!rc) {
        int found;
        long i = group_find(&g, comp, complen, &found);
        if (found) {
            rc = cf_record_decode_meta(g.e[i].rec, g.e[i].reclen, old);
            *had_old = rc == 0;
        } else if (g.n >= GROUP_MAX_ENTRIES) {
            rc = CF_ETOOBIG;
        } else {
            memmove(&g.e[i + 1], &g.e[i], sizeof *g.e * (size_t)(g.n - i));
            g.n++;
        }
        if (!rc) {
            g.e[i] = (cf_group_entry){comp, complen, rec, reclen};
            rc = group_store(s, txn, &k, &g);
        }
    }
    free(g.e);
    return rc;
}

int cf_index_del(cf_store *s, MDB_txn *txn, const char *comp, size_t complen, cf_object_info *old,
                 int *had_old)
{
    *had_old = 0;
    if (!is_long(s, complen)) {
        MDB_val k = {complen, (void *)comp}, v;
        int rc = mdb_get(txn, s->objects, &k, &v);
        if (rc == MDB_NOTFOUND)
            return 0;
        if (rc)
            return cf_store_lmdb_err(NULL, rc, "read");
        rc = cf_record_decode_meta(v.mv_data, v.mv_size, old);
        if (rc)
            return rc;
        *had_old = 1;
        rc = mdb_del(txn, s->objects, &k, NULL);
        return rc ? cf_store_lmdb_err(NULL, rc, "delete") : 0;
    }
    char gk[1024];
    MDB_val k;
    group g;
    int rc = group_load(s, txn, comp, gk, &k, &g);
    if (!rc && g.n > 0) {
        int found;
        long i = group_find(&g, comp, complen, &found);
        if (found) {
            rc = cf_record_decode_meta(g.e[i].rec, g.e[i].reclen, old);
            *had_old = rc == 0;
            if (!rc) {
                memmove(&g.e[i], &g.e[i + 1], sizeof *g.e * (size_t)(g.n - i - 1));
                g.n--;
                rc = group_store(s, txn, &k, &g);
            }
        }
    }
    free(g.e);
    return rc;
}
