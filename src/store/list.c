/*
 * list.c - ordered listing with prefix, delimiter and start-after, at O(page) cost.
 *
 * The cursor walks composite keys "bucket\0key" from the first one that can be visible. With a
 * delimiter, the first key of a common prefix emits it, then the cursor seeks straight to the
 * successor of that prefix, so ten million keys under "logs/" cost one seek, not ten million
 * steps. Overflow groups (record.h) are expanded in place: their entries sort exactly where a
 * plain row of the same key would.
 */
#include <stdlib.h>
#include <string.h>

#include "store/record.h"
#include "store/store_int.h"
#include "store/object_index.h"

typedef struct lister {
    cf_store *s;
    MDB_cursor *cur;
    const char *base; /* "bucket\0prefix" */
    size_t baselen;
    size_t bucketlen; /* bytes before the key inside a composite, incl. the NUL */
    const char *delim;
    size_t delimlen;
    char *floor; /* composites below this are skipped (after / seek target) */
    size_t floorlen;
    int floor_inclusive;
    size_t max, count;
    int truncated, done;
    cf_store_list_fn fn;
    void *ctx;
    char *last; /* last visited key or prefix (key part only) */
    size_t lastlen;
    int rc;
} lister;

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

static int set_floor(lister *l, const char *comp, size_t len, int inclusive)
{
    char *f = malloc(len + 1);
    if (!f)
        return CF_ENOMEM;
    memcpy(f, comp, len);
    free(l->floor);
    l->floor = f;
    l->floorlen = len;
    l->floor_inclusive = inclusive;
    return 0;
}

/* Positions the cursor on the first row that can hold composites >= floor. */
static int seek_floor(lister *l, MDB_val *k, MDB_val *v)
{
    char gk[1024];
    k->mv_data = l->floor;
    k->mv_size = l->floorlen;
    if (l->floorlen > l->s->head_max) {
        memcpy(gk, l->floor, l->s->head_max);
        gk[l->s->head_max] = (char)0xFF;
        k->mv_data = gk;
        k->mv_size = l->s->head_max + 1;
    }
    return mdb_cursor_get(l->cur, k, v, MDB_SET_RANGE);
}

static int remember(lister *l, const char *key, size_t len)
{
    char *p = realloc(l->last, len + 1);
    if (!p)
        return CF_ENOMEM;
    memcpy(p, key, len);
    p[len] = '\0';
    l->last = p;
    l->lastlen = len;
    return 0;
}

/* The least composite greater than every composite that starts with comp[0..len). */
static size_t successor(char *comp, size_t len)
{
    while (len > 0 && (unsigned char)comp[len - 1] == 0xFF)
        len--;
    if (len > 0)
        comp[len - 1]++;
    return len;
}

/* Handles one composite. Returns 1 when the cursor must be re-seeked to l->floor. */
static int visit(lister *l, const char *comp, size_t complen, const void *rec, size_t reclen)
{
    /* Floor first: inside an overflow group, entries before the floor precede the prefix. */
    int c = cmp_bytes(comp, complen, l->floor, l->floorlen);
    if (c < 0 || (c == 0 && !l->floor_inclusive))
        return 0;
    if (complen < l->baselen || memcmp(comp, l->base, l->baselen) != 0) {
        l->done = 1; /* past every key with this bucket and prefix */
        return 0;
    }

    const char *key = comp + l->bucketlen;
    size_t keylen = complen - l->bucketlen;
    size_t prefixlen = l->baselen - l->bucketlen;
    const char *d = NULL;
    if (l->delimlen)
        d = memmem(key + prefixlen, keylen - prefixlen, l->delim, l->delimlen);

    if (l->count == l->max) {
        l->truncated = 1;
        l->done = 1;
        return 0;
    }
    cf_store_list_entry e = {key, keylen, 0, NULL};
    cf_object_info info = {0};
    if (d) {
        e.keylen = (size_t)(d - key) + l->delimlen;
        e.is_prefix = 1;
    } else if ((l->rc = cf_record_decode_meta(rec, reclen, &info))) {
        l->done = 1;
        return 0;
    } else {
        e.info = &info;
    }
    l->count++;
    l->rc = l->fn(l->ctx, &e);
    if (!l->rc)
        l->rc = remember(l, e.key, e.keylen);
    cf_object_info_cleanup(&info);
    if (l->rc) {
        l->done = 1;
        return 0;
    }
    if (!e.is_prefix)
        return 0;
    /* Skip every key rolled up into this prefix. */
    size_t plen = l->bucketlen + e.keylen;
    char *succ = malloc(plen);
    if (!succ) {
        l->rc = CF_ENOMEM;
        l->done = 1;
        return 0;
    }
    memcpy(succ, comp, plen);
    size_t slen = successor(succ, plen);
    l->rc = set_floor(l, succ, slen, 1);
    free(succ);
    if (l->rc)
        l->done = 1;
    return !l->done;
}

int cf_store_list(cf_store *s, const char *bucket, const char *prefix, size_t prefixlen,
                  const char *delimiter, size_t delimlen, const char *after, size_t afterlen, size_t max,
                  cf_store_list_fn fn, void *ctx, int *truncated, char **next, size_t *nextlen, cf_err *err)
{
    lister l = {
        .s = s, .delim = delimiter, .delimlen = delimiter ? delimlen : 0, .max = max, .fn = fn, .ctx = ctx};
    size_t baselen;
    char *base = cf_index_composite(bucket, prefix, prefixlen, &baselen);
    MDB_txn *txn = NULL;
    MDB_val k, v;
    *truncated = 0;
    if (next)
        *next = NULL;
    if (!base)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    l.base = base;
    l.baselen = baselen;
    l.bucketlen = strlen(bucket) + 1;

    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (!rc)
        rc = mdb_cursor_open(txn, s->objects, &l.cur);
    if (rc) {
        rc = cf_store_lmdb_err(err, rc, "list");
        goto out;
    }
    MDB_val bk = {strlen(bucket), (void *)bucket};
    if (mdb_get(txn, s->buckets, &bk, &v) == MDB_NOTFOUND) {
        rc = cf_err_set(err, CF_ENOTFOUND, "bucket '%s' does not exist", bucket);
        goto out;
    }

    /* Start at max(prefix, after) and never revisit `after` itself. */
    size_t afterc_len;
    char *afterc = cf_index_composite(bucket, after ? after : "", after ? afterlen : 0, &afterc_len);
    if (!afterc) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    if (after && afterlen && cmp_bytes(afterc, afterc_len, base, baselen) >= 0)
        rc = set_floor(&l, afterc, afterc_len, 0);
    else
        rc = set_floor(&l, base, baselen, 1);
    free(afterc);
    if (rc)
        goto out;
    /* A common prefix at or before `after` was already returned on an earlier page. */
    if (l.delimlen && after && afterlen && !l.floor_inclusive) {
        const char *ak = l.floor + l.bucketlen;
        size_t akl = l.floorlen - l.bucketlen;
        if (akl >= prefixlen) {
            const char *d = memmem(ak + prefixlen, akl - prefixlen, delimiter, delimlen);
            if (d) {
                size_t plen = l.bucketlen + (size_t)(d - ak) + delimlen;
                char *succ = malloc(plen);
                if (!succ) {
                    rc = CF_ENOMEM;
                    goto out;
                }
                memcpy(succ, l.floor, plen);
                rc = set_floor(&l, succ, successor(succ, plen), 1);
                free(succ);
                if (rc)
                    goto out;
            }
        }
    }

    int mrc = seek_floor(&l, &k, &v);
    while (mrc == 0 && !l.done) {
        int reseek = 0;
        const unsigned char *kb = k.mv_data;
        if (k.mv_size == s->head_max + 1 && kb[k.mv_size - 1] == 0xFF) {
            uint32_t count = 0;
            if (v.mv_size >= 5)
                memcpy(&count, (const char *)v.mv_data + 1, 4);
            cf_group_entry *g = malloc(sizeof *g * (count + 1));
            long n = g ? cf_group_parse(v.mv_data, v.mv_size, g, count) : CF_ENOMEM;
            if (n < 0) {
                l.rc = (int)n;
                l.done = 1;
            }
            for (long i = 0; i < n && !l.done && !reseek; i++)
                reseek = visit(&l, g[i].key, g[i].keylen, g[i].rec, g[i].reclen);
            free(g);
        } else {
            reseek = visit(&l, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        }
        if (l.done)
            break;
        mrc = reseek ? seek_floor(&l, &k, &v) : mdb_cursor_get(l.cur, &k, &v, MDB_NEXT);
    }
    if (l.rc) {
        rc = cf_err_set(err, l.rc, "listing bucket '%s' failed: %s", bucket, cf_strerror(l.rc));
        goto out;
    }
    *truncated = l.truncated;
    if (l.truncated && next) {
        *next = l.last;
        *nextlen = l.lastlen;
        l.last = NULL;
    }
out:
    if (l.cur)
        mdb_cursor_close(l.cur);
    if (txn)
        mdb_txn_abort(txn);
    free(l.floor);
    free(l.last);
    free(base);
    return rc;
}
