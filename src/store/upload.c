/*
 * upload.c - multipart uploads: parts stored as data files of their own, completed into an
 * object whose segments are those very files.
 *
 * Tables (docs/internals/store.md):
 *   uploads  id[16] -> u16 bucket_len, bucket, u16 key_len, key, record (headers, initiated)
 *   parts    id[16] + u32 big-endian part number -> record (size, MD5, checksums, 1 segment)
 *   completed id[16] -> i64 expires_ns, digest[32], u8 bucket_len, bucket, u16 key_len, key,
 *            u8 etag_len, etag, u16 answer_len, answer  (a completion, to answer its retries)
 * A part's data file lives in objects/ from the moment it is committed, so completion renames
 * and copies nothing: one transaction moves the chosen parts' segments into the object record
 * and lists every other part's file as garbage. The orphan scan counts part rows as references.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "crypto/hash.h"
#include "store/record.h"
#include "store/store_int.h"
#include "store/object.h"
#include "store/object_index.h"
#include "store/txn.h"
#include "store/upload.h"

#define PART_KEY_LEN (CF_STORE_ID_LEN + 4)

void cf_store_upload_cleanup(cf_store_upload *u)
{
    if (!u)
        return;
    free(u->key);
    for (size_t i = 0; i < u->nheaders; i++) {
        free(u->headers[i].name);
        free(u->headers[i].value);
    }
    free(u->headers);
    memset(u, 0, sizeof *u);
}

void cf_store_parts_free(cf_store_part *parts, size_t n)
{
    for (size_t i = 0; parts && i < n; i++)
        cf_object_info_cleanup(&parts[i].info);
    free(parts);
}

static int raw_id(const char *hex, unsigned char id[CF_STORE_ID_LEN])
{
    if (!hex || strlen(hex) != CF_STORE_UPLOAD_ID_LEN)
        return CF_ENOTFOUND;
    return cf_hex_decode(hex, CF_STORE_ID_LEN, id) == 0 ? 0 : CF_ENOTFOUND;
}

static void part_key(const unsigned char id[CF_STORE_ID_LEN], uint32_t number,
                     unsigned char out[PART_KEY_LEN])
{
    memcpy(out, id, CF_STORE_ID_LEN);
    /* Big-endian, so that LMDB's byte order is part order. */
    out[CF_STORE_ID_LEN] = (unsigned char)(number >> 24);
    out[CF_STORE_ID_LEN + 1] = (unsigned char)(number >> 16);
    out[CF_STORE_ID_LEN + 2] = (unsigned char)(number >> 8);
    out[CF_STORE_ID_LEN + 3] = (unsigned char)number;
}

static uint32_t part_number(const unsigned char *key)
{
    const unsigned char *p = key + CF_STORE_ID_LEN;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int encode_upload(const char *bucket, const char *key, size_t keylen, const cf_object_info *rec,
                         cf_buf *out)
{
    uint16_t bl = (uint16_t)strlen(bucket), kl = (uint16_t)keylen;
    int rc = cf_buf_append(out, &bl, 2);
    if (!rc)
        rc = cf_buf_append(out, bucket, bl);
    if (!rc)
        rc = cf_buf_append(out, &kl, 2);
    if (!rc)
        rc = cf_buf_append(out, key, keylen);
    if (!rc)
        rc = cf_record_encode(rec, out);
    return rc;
}

static int decode_upload(const unsigned char *id, const MDB_val *v, cf_store_upload *u)
{
    const unsigned char *p = v->mv_data;
    size_t n = v->mv_size;
    uint16_t bl, kl;
    memset(u, 0, sizeof *u);
    if (n < 2 || (memcpy(&bl, p, 2), bl >= sizeof u->bucket) || n < 4u + bl)
        return CF_ECORRUPT;
    memcpy(u->bucket, p + 2, bl);
    memcpy(&kl, p + 2 + bl, 2);
    size_t off = 4u + bl;
    if (n < off + kl || !(u->key = malloc((size_t)kl + 1)))
        return n < off + kl ? CF_ECORRUPT : CF_ENOMEM;
    memcpy(u->key, p + off, kl);
    u->key[kl] = '\0';
    u->keylen = kl;
    cf_object_info rec;
    int rc = cf_record_decode(p + off + kl, n - off - kl, &rec);
    if (rc) {
        cf_store_upload_cleanup(u);
        return rc;
    }
    u->initiated_ns = rec.mtime_ns;
    u->headers = rec.headers;
    u->nheaders = rec.nheaders;
    rec.headers = NULL;
    rec.nheaders = 0;
    cf_object_info_cleanup(&rec);
    cf_hex_encode(id, CF_STORE_ID_LEN, u->id);
    return 0;
}

int cf_store_upload_create(cf_store *s, const char *bucket, const char *key, size_t keylen,
                           const cf_store_kv *headers, size_t nheaders,
                           char id_out[CF_STORE_UPLOAD_ID_LEN + 1], cf_err *err)
{
    unsigned char id[CF_STORE_ID_LEN];
    if (cf_random_bytes(id, sizeof id) != 0)
        return cf_err_set(err, CF_EIO, "no randomness for an upload id");
    cf_object_info rec = {0};
    rec.mtime_ns = cf_clock_now_ns();
    rec.headers = (cf_store_kv *)headers;
    rec.nheaders = nheaders;
    cf_buf enc;
    cf_buf_init(&enc, (size_t)1 << 20);
    int rc = encode_upload(bucket, key, keylen, &rec, &enc);
    if (rc) {
        cf_buf_cleanup(&enc);
        return cf_err_set(err, rc, "metadata of the upload of '%.*s' is too large", (int)keylen, key);
    }
    MDB_txn *txn;
    rc = cf_store_txn_begin(s, &txn, err);
    if (!rc)
        rc = cf_store_bucket_account(s, txn, bucket, 0, 0, err);
    if (!rc) {
        MDB_val k = {sizeof id, id}, v = {enc.len, enc.data};
        int mrc = mdb_put(txn, s->uploads, &k, &v, MDB_NOOVERWRITE);
        if (!mrc)
            mrc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        txn = NULL;
        if (mrc)
            rc = cf_store_lmdb_err(err, mrc, "upload create");
    }
    if (txn)
        mdb_txn_abort(txn);
    cf_buf_cleanup(&enc);
    if (rc)
        return rc;
    cf_hex_encode(id, CF_STORE_ID_LEN, id_out);
    return 0;
}

static int get_upload_in(cf_store *s, MDB_txn *txn, const unsigned char *id, cf_store_upload *u, cf_err *err)
{
    MDB_val k = {CF_STORE_ID_LEN, (void *)id}, v;
    int rc = mdb_get(txn, s->uploads, &k, &v);
    if (rc == MDB_NOTFOUND)
        return cf_err_set(err, CF_ENOTFOUND, "no upload with that id (completed, aborted or never created)");
    if (rc)
        return cf_store_lmdb_err(err, rc, "upload lookup");
    rc = decode_upload(id, &v, u);
    return rc ? cf_err_set(err, rc, "upload record is unreadable: %s", cf_strerror(rc)) : 0;
}

/* Decodes upload_id into id and begins a read transaction (the caller aborts it). */
static int begin_read_of(cf_store *s, const char *upload_id, unsigned char id[CF_STORE_ID_LEN], MDB_txn **txn,
                         cf_err *err)
{
    if (raw_id(upload_id, id))
        return cf_err_set(err, CF_ENOTFOUND, "'%s' is not an upload id", upload_id);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    return rc ? cf_store_lmdb_err(err, rc, "begin") : 0;
}

int cf_store_upload_get(cf_store *s, const char *upload_id, cf_store_upload *out, cf_err *err)
{
    unsigned char id[CF_STORE_ID_LEN];
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    int rc = begin_read_of(s, upload_id, id, &txn, err);
    if (rc)
        return rc;
    rc = get_upload_in(s, txn, id, out, err);
    mdb_txn_abort(txn);
    return rc;
}

static int cmp_upload(const void *a, const void *b)
{
    const cf_store_upload *x = a, *y = b;
    size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    if (x->keylen != y->keylen)
        return x->keylen < y->keylen ? -1 : 1;
    if (x->initiated_ns != y->initiated_ns)
        return x->initiated_ns < y->initiated_ns ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* Uploads in flight are few (each is someone's transfer in progress), so a scan is fine. */
int cf_store_upload_list(cf_store *s, const char *bucket, cf_store_upload **out, size_t *n, cf_err *err)
{
    *out = NULL;
    *n = 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = cf_store_read_cursor(s, s->uploads, &txn, &cur, err);
    if (rc)
        return rc;
    size_t cap = 0, bl = strlen(bucket);
    cf_store_upload *list = NULL;
    for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        uint16_t vbl;
        if (k.mv_size != CF_STORE_ID_LEN || v.mv_size < 2)
            continue;
        memcpy(&vbl, v.mv_data, 2);
        if (vbl != bl || v.mv_size < 2u + bl || memcmp((char *)v.mv_data + 2, bucket, bl) != 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            cf_store_upload *p = realloc(list, cap * sizeof *p);
            if (!p) {
                rc = CF_ENOMEM;
                break;
            }
            list = p;
        }
        if ((rc = decode_upload(k.mv_data, &v, &list[*n])) == 0)
            (*n)++;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            cf_store_upload_cleanup(&list[i]);
        free(list);
        *n = 0;
        return cf_err_set(err, rc, "cannot list the uploads of '%s': %s", bucket, cf_strerror(rc));
    }
    if (*n)
        qsort(list, *n, sizeof *list, cmp_upload);
    *out = list;
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, CF_STORE_ID_LEN);
}

/* The segment ids of rec, sorted for bsearch (caller frees); NULL when rec has none. */
static unsigned char (*sorted_ids(const cf_object_info *rec))[CF_STORE_ID_LEN]
{
    if (!rec || !rec->nsegs)
        return NULL;
    unsigned char(*ids)[CF_STORE_ID_LEN] = malloc(rec->nsegs * CF_STORE_ID_LEN);
    if (!ids)
        return NULL;
    for (size_t i = 0; i < rec->nsegs; i++)
        memcpy(ids[i], rec->segs[i].id, CF_STORE_ID_LEN);
    qsort(ids, rec->nsegs, CF_STORE_ID_LEN, cmp_id);
    return ids;
}

/* Appends a record's segments to acc (to reclaim them after the commit). */
static int collect_segments(cf_object_info *acc, const cf_object_info *rec)
{
    if (!rec->nsegs)
        return 0;
    cf_store_segment *p = realloc(acc->segs, (acc->nsegs + rec->nsegs) * sizeof *p);
    if (!p)
        return CF_ENOMEM;
    memcpy(p + acc->nsegs, rec->segs, rec->nsegs * sizeof *p);
    acc->segs = p;
    acc->nsegs += rec->nsegs;
    return 0;
}

/*
 * Deletes the upload's row and all its part rows inside txn. Every part's segments are listed as
 * garbage and appended to *freed, except those also in keep (the parts that became the object).
 */
static int drop_upload_in(cf_store *s, MDB_txn *txn, const unsigned char *id, const cf_object_info *keep,
                          cf_object_info *freed)
{
    MDB_val k = {CF_STORE_ID_LEN, (void *)id}, v;
    int rc = mdb_del(txn, s->uploads, &k, NULL);
    if (rc)
        return rc == MDB_NOTFOUND ? CF_ENOTFOUND : cf_store_lmdb_err(NULL, rc, "delete");
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, s->parts, &cur))
        return CF_EIO;
    unsigned char first[PART_KEY_LEN];
    part_key(id, 0, first);
    k.mv_data = first;
    k.mv_size = sizeof first;
    unsigned char(*kept_ids)[CF_STORE_ID_LEN] = sorted_ids(keep);
    if (keep && keep->nsegs && !kept_ids) {
        mdb_cursor_close(cur);
        return CF_ENOMEM;
    }
    for (int got = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc && got == 0;
         got = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != PART_KEY_LEN || memcmp(k.mv_data, id, CF_STORE_ID_LEN) != 0)
            break;
        cf_object_info part;
        if ((rc = cf_record_decode(v.mv_data, v.mv_size, &part)))
            break;
        int kept = kept_ids && part.nsegs &&
                   bsearch(part.segs[0].id, kept_ids, keep->nsegs, CF_STORE_ID_LEN, cmp_id);
        if (!kept)
            rc = cf_store_mark_garbage(s, txn, &part, NULL);
        if (!kept && !rc)
            rc = collect_segments(freed, &part);
        cf_object_info_cleanup(&part);
        int mrc = rc ? 0 : mdb_cursor_del(cur, 0);
        if (mrc)
            rc = cf_store_lmdb_err(NULL, mrc, "delete");
    }
    mdb_cursor_close(cur);
    free(kept_ids);
    return rc;
}

static int put_completion_in(cf_store *s, MDB_txn *txn, const unsigned char id[CF_STORE_ID_LEN],
                             const cf_store_completion *c)
{
    size_t bl = strlen(c->bucket), el = strlen(c->etag), al = strlen(c->answer);
    if (bl > UINT8_MAX || el > UINT8_MAX || c->keylen >= sizeof c->key)
        return CF_EINVAL;
    unsigned char
        buf[8 + 32 + 1 + sizeof c->bucket + 2 + sizeof c->key + 1 + sizeof c->etag + 2 + sizeof c->answer];
    size_t n = 0;
    uint16_t kl = (uint16_t)c->keylen, alen = (uint16_t)al;
    memcpy(buf + n, &c->expires_ns, 8), n += 8;
    memcpy(buf + n, c->parts_digest, 32), n += 32;
    buf[n++] = (unsigned char)bl;
    memcpy(buf + n, c->bucket, bl), n += bl;
    memcpy(buf + n, &kl, 2), n += 2;
    memcpy(buf + n, c->key, kl), n += kl;
    buf[n++] = (unsigned char)el;
    memcpy(buf + n, c->etag, el), n += el;
    memcpy(buf + n, &alen, 2), n += 2;
    memcpy(buf + n, c->answer, al), n += al;
    MDB_val k = {CF_STORE_ID_LEN, (void *)id}, v = {n, buf};
    int rc = mdb_put(txn, s->completed, &k, &v, 0);
    return rc ? cf_store_lmdb_err(NULL, rc, "write") : 0;
}

/* Reads a field of n bytes into out (n < outlen, NUL-terminated); advances *p. */
static int take_field(const unsigned char **p, const unsigned char *end, size_t n, char *out, size_t outlen)
{
    if (n >= outlen || (size_t)(end - *p) < n)
        return CF_ECORRUPT;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return 0;
}

static int decode_completion(const MDB_val *v, cf_store_completion *c)
{
    const unsigned char *p = v->mv_data, *end = p + v->mv_size;
    uint16_t kl, al;
    memset(c, 0, sizeof *c);
    if (v->mv_size < 8 + 32 + 1)
        return CF_ECORRUPT;
    memcpy(&c->expires_ns, p, 8), p += 8;
    memcpy(c->parts_digest, p, 32), p += 32;
    size_t bl = *p++;
    if (take_field(&p, end, bl, c->bucket, sizeof c->bucket) || end - p < 2)
        return CF_ECORRUPT;
    memcpy(&kl, p, 2), p += 2;
    if (take_field(&p, end, kl, c->key, sizeof c->key) || end - p < 1)
        return CF_ECORRUPT;
    c->keylen = kl;
    size_t el = *p++;
    if (take_field(&p, end, el, c->etag, sizeof c->etag) || end - p < 2)
        return CF_ECORRUPT;
    memcpy(&al, p, 2), p += 2;
    return take_field(&p, end, al, c->answer, sizeof c->answer);
}

int cf_store_upload_completed(cf_store *s, const char *upload_id, cf_store_completion *out, cf_err *err)
{
    unsigned char id[CF_STORE_ID_LEN];
    MDB_txn *txn;
    int rc = begin_read_of(s, upload_id, id, &txn, err);
    if (rc)
        return rc;
    MDB_val k = {CF_STORE_ID_LEN, id}, v;
    rc = mdb_get(txn, s->completed, &k, &v);
    if (rc == MDB_NOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "upload '%s' did not complete", upload_id);
    else if (rc)
        rc = cf_store_lmdb_err(err, rc, "read");
    else if (decode_completion(&v, out) != 0)
        rc = cf_err_set(err, CF_ECORRUPT, "the completion record of upload '%s' is corrupt", upload_id);
    else if (out->expires_ns < cf_clock_now_ns())
        rc = cf_err_set(err, CF_ENOTFOUND, "upload '%s' completed too long ago", upload_id);
    mdb_txn_abort(txn);
    return rc;
}

/* Deletes, inside txn, the completion records expired at now_ns. */
static int forget_completions_in(cf_store *s, MDB_txn *txn, int64_t now_ns)
{
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, s->completed, &cur))
        return CF_EIO;
    int rc = 0;
    for (int got = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc && got == 0;
         got = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        int64_t expires = 0;
        if (v.mv_size >= 8)
            memcpy(&expires, v.mv_data, 8);
        int mrc = expires < now_ns ? mdb_cursor_del(cur, 0) : 0;
        if (mrc)
            rc = cf_store_lmdb_err(NULL, mrc, "delete");
    }
    mdb_cursor_close(cur);
    return rc;
}

int cf_store_upload_abort(cf_store *s, const char *upload_id, cf_err *err)
{
    unsigned char id[CF_STORE_ID_LEN];
    if (raw_id(upload_id, id))
        return cf_err_set(err, CF_ENOTFOUND, "'%s' is not an upload id", upload_id);
    MDB_txn *txn;
    cf_object_info freed = {0};
    int rc = cf_store_txn_begin(s, &txn, err);
    if (rc)
        return rc;
    rc = drop_upload_in(s, txn, id, NULL, &freed);
    if (rc) {
        mdb_txn_abort(txn);
        cf_object_info_cleanup(&freed);
        return rc == CF_ENOTFOUND
                   ? cf_err_set(err, rc, "no upload '%s'", upload_id)
                   : cf_err_set(err, rc, "cannot abort upload '%s': %s", upload_id, cf_strerror(rc));
    }
    if ((rc = mdb_txn_commit(txn))) {
        cf_object_info_cleanup(&freed);
        return cf_store_lmdb_err(err, rc, "commit");
    }
    cf_store_reclaim(s, &freed);
    cf_object_info_cleanup(&freed);
    return 0;
}

/* Drops, inside txn, every upload that matches: initiated before cutoff_ns, or in bucket. */
int cf_store_uploads_drop_in(cf_store *s, MDB_txn *txn, const char *bucket, int64_t cutoff_ns,
                             cf_object_info *freed, size_t *dropped)
{
    MDB_cursor *cur;
    MDB_val k, v;
    unsigned char(*ids)[CF_STORE_ID_LEN] = NULL;
    size_t n = 0, cap = 0;
    int rc = mdb_cursor_open(txn, s->uploads, &cur);
    if (rc)
        return CF_EIO;
    for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        if (k.mv_size != CF_STORE_ID_LEN)
            continue;
        cf_store_upload u;
        if (decode_upload(k.mv_data, &v, &u) != 0)
            continue;
        int match = bucket ? strcmp(u.bucket, bucket) == 0 : u.initiated_ns < cutoff_ns;
        cf_store_upload_cleanup(&u);
        if (!match)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            void *p = realloc(ids, cap * CF_STORE_ID_LEN);
            if (!p) {
                rc = CF_ENOMEM;
                break;
            }
            ids = p;
        }
        memcpy(ids[n++], k.mv_data, CF_STORE_ID_LEN);
    }
    mdb_cursor_close(cur);
    for (size_t i = 0; !rc && i < n; i++)
        rc = drop_upload_in(s, txn, ids[i], NULL, freed);
    free(ids);
    if (dropped)
        *dropped = rc ? 0 : n;
    return rc;
}

int cf_store_upload_expire(cf_store *s, int64_t cutoff_ns, size_t *aborted, cf_err *err)
{
    MDB_txn *txn;
    cf_object_info freed = {0};
    int rc = cf_store_txn_begin(s, &txn, err);
    if (rc)
        return rc;
    rc = cf_store_uploads_drop_in(s, txn, NULL, cutoff_ns, &freed, aborted);
    if (!rc)
        rc = forget_completions_in(s, txn, cf_clock_now_ns());
    if (rc) {
        mdb_txn_abort(txn);
        cf_object_info_cleanup(&freed);
        return cf_err_set(err, rc, "cannot abort stale uploads: %s", cf_strerror(rc));
    }
    if ((rc = mdb_txn_commit(txn))) {
        cf_object_info_cleanup(&freed);
        return cf_store_lmdb_err(err, rc, "commit");
    }
    cf_store_reclaim(s, &freed);
    cf_object_info_cleanup(&freed);
    return 0;
}

int cf_store_part_commit(cf_store_writer *w, const char *upload_id, uint32_t number,
                         const cf_store_kv *headers, size_t nheaders, cf_object_info *info, cf_err *err)
{
    cf_store *s = cf_store_writer_store(w);
    unsigned char id[CF_STORE_ID_LEN], key[PART_KEY_LEN], md5[CF_MD5_LEN];
    char final_path[PATH_MAX];
    cf_store_segment seg;
    cf_object_info rec = {0}, old = {0};
    cf_buf enc;
    cf_buf_init(&enc, (size_t)1 << 20);
    MDB_txn *txn = NULL;
    int published = 0, had_old = 0;
    int rc = raw_id(upload_id, id);
    if (rc) {
        rc = cf_err_set(err, CF_ENOTFOUND, "'%s' is not an upload id", upload_id);
        goto out;
    }
    if ((rc = cf_store_writer_publish(w, &seg, md5, final_path, err)))
        goto out;
    published = 1;
    rec.size = seg.len;
    rec.mtime_ns = cf_clock_now_ns();
    cf_hex_encode(md5, CF_MD5_LEN, rec.etag);
    rec.headers = (cf_store_kv *)headers;
    rec.nheaders = nheaders;
    rec.segs = &seg;
    rec.nsegs = 1;
    if ((rc = cf_record_encode(&rec, &enc))) {
        rc = cf_err_set(err, rc, "part metadata is too large");
        goto out;
    }
    part_key(id, number, key);
    if ((rc = cf_store_txn_begin(s, &txn, err)))
        goto out;
    /* The upload must still exist in this very transaction: an abort or a completion that
     * committed meanwhile would otherwise leave this part's file referenced by nothing. */
    MDB_val uk = {CF_STORE_ID_LEN, id}, uv;
    int mrc = mdb_get(txn, s->uploads, &uk, &uv);
    if (mrc) {
        rc = mrc == MDB_NOTFOUND ? cf_err_set(err, CF_ENOTFOUND, "no upload '%s'", upload_id)
                                 : cf_store_lmdb_err(err, mrc, "upload lookup");
        goto out;
    }
    MDB_val k = {sizeof key, key}, v;
    if ((mrc = mdb_get(txn, s->parts, &k, &v)) == 0) {
        if ((rc = cf_record_decode(v.mv_data, v.mv_size, &old))) {
            rc = cf_err_set(err, rc, "record of part %u is unreadable", number);
            goto out;
        }
        had_old = 1;
        if ((rc = cf_store_mark_garbage(s, txn, &old, err)))
            goto out;
    } else if (mrc != MDB_NOTFOUND) {
        rc = cf_store_lmdb_err(err, mrc, "part lookup");
        goto out;
    }
    v.mv_data = enc.data;
    v.mv_size = enc.len;
    mrc = mdb_put(txn, s->parts, &k, &v, 0);
    if (!mrc) {
        mrc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (mrc) {
        rc = cf_store_lmdb_err(err, mrc, "part commit");
        goto out;
    }
    published = 0; /* the part row owns the file now */
    if (had_old)
        cf_store_reclaim(s, &old);
    if (info && (rc = cf_object_info_copy(info, &rec)))
        rc = cf_err_set(err, rc, "out of memory");
out:
    if (txn)
        mdb_txn_abort(txn);
    if (published)
        unlink(final_path);
    cf_object_info_cleanup(&old);
    cf_buf_cleanup(&enc);
    cf_store_writer_abort(w);
    return rc;
}

int cf_store_part_list(cf_store *s, const char *upload_id, uint32_t after, size_t max, cf_store_part **out,
                       size_t *n, int *truncated, cf_err *err)
{
    unsigned char id[CF_STORE_ID_LEN], first[PART_KEY_LEN];
    *out = NULL;
    *n = 0;
    if (truncated)
        *truncated = 0;
    if (raw_id(upload_id, id))
        return cf_err_set(err, CF_ENOTFOUND, "'%s' is not an upload id", upload_id);
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return cf_store_lmdb_err(err, rc, "begin");
    MDB_val k = {CF_STORE_ID_LEN, id}, v;
    if ((rc = mdb_get(txn, s->uploads, &k, &v))) {
        mdb_txn_abort(txn);
        return rc == MDB_NOTFOUND ? cf_err_set(err, CF_ENOTFOUND, "no upload '%s'", upload_id)
                                  : cf_store_lmdb_err(err, rc, "upload lookup");
    }
    if ((rc = mdb_cursor_open(txn, s->parts, &cur))) {
        mdb_txn_abort(txn);
        return cf_store_lmdb_err(err, rc, "cursor");
    }
    part_key(id, after == UINT32_MAX ? after : after + 1, first);
    k.mv_data = first;
    k.mv_size = sizeof first;
    size_t cap = 0;
    cf_store_part *list = NULL;
    for (int got = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); got == 0;
         got = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != PART_KEY_LEN || memcmp(k.mv_data, id, CF_STORE_ID_LEN) != 0)
            break;
        if (*n == max) {
            if (truncated)
                *truncated = 1;
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            cf_store_part *p = realloc(list, cap * sizeof *p);
            if (!p) {
                rc = CF_ENOMEM;
                break;
            }
            list = p;
        }
        list[*n].number = part_number(k.mv_data);
        if ((rc = cf_record_decode(v.mv_data, v.mv_size, &list[*n].info)))
            break;
        (*n)++;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc) {
        cf_store_parts_free(list, *n);
        *n = 0;
        return cf_err_set(err, rc, "cannot list the parts of upload '%s': %s", upload_id, cf_strerror(rc));
    }
    *out = list;
    return 0;
}

static int check_segments_current(cf_store *s, MDB_txn *txn, const unsigned char *id,
                                  const cf_object_info *rec)
{
    unsigned char(*want)[CF_STORE_ID_LEN] = sorted_ids(rec);
    if (rec->nsegs && !want)
        return CF_ENOMEM;
    size_t found = 0;
    int rc = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    unsigned char first[PART_KEY_LEN];
    part_key(id, 0, first);
    k.mv_data = first;
    k.mv_size = sizeof first;
    if (mdb_cursor_open(txn, s->parts, &cur)) {
        free(want);
        return CF_EIO;
    }
    for (int got = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); got == 0 && !rc;
         got = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != PART_KEY_LEN || memcmp(k.mv_data, id, CF_STORE_ID_LEN) != 0)
            break;
        cf_object_info part;
        if ((rc = cf_record_decode(v.mv_data, v.mv_size, &part)))
            break;
        if (want && part.nsegs == 1 && bsearch(part.segs[0].id, want, rec->nsegs, CF_STORE_ID_LEN, cmp_id))
            found++;
        cf_object_info_cleanup(&part);
    }
    mdb_cursor_close(cur);
    free(want);
    /* Segment ids are random and unique, so counting matches proves every one is current. */
    return rc ? rc : found == rec->nsegs ? 0 : CF_EINVAL;
}

int cf_store_upload_complete(cf_store *s, const char *upload_id, const cf_object_info *rec,
                             cf_store_condition *cond, const cf_store_completion *done, cf_err *err)
{
    unsigned char id[CF_STORE_ID_LEN];
    if (raw_id(upload_id, id))
        return cf_err_set(err, CF_ENOTFOUND, "'%s' is not an upload id", upload_id);
    cf_store_upload u = {0};
    cf_object_info old = {0}, freed = {0};
    cf_buf enc;
    cf_buf_init(&enc, (size_t)1 << 28);
    char *comp = NULL;
    size_t complen = 0;
    int had_old = 0;
    MDB_txn *txn = NULL;
    int rc = cf_record_encode(rec, &enc);
    if (rc) {
        rc = cf_err_set(err, rc, "object metadata is too large");
        goto out;
    }
    if ((rc = cf_store_txn_begin(s, &txn, err)))
        goto out;
    if ((rc = get_upload_in(s, txn, id, &u, err)))
        goto out;
    /* Each segment must still be the current data of one of this upload's parts: a part
     * uploaded again after the caller read the list would otherwise be lost or leaked. */
    if ((rc = check_segments_current(s, txn, id, rec))) {
        rc =
            rc == CF_EINVAL
                ? cf_err_set(err, rc, "a part of upload '%s' changed while completing", upload_id)
                : cf_err_set(err, rc, "cannot read the parts of upload '%s': %s", upload_id, cf_strerror(rc));
        goto out;
    }
    if (!(comp = cf_index_composite(u.bucket, u.key, u.keylen, &complen))) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = cf_store_bucket_account(s, txn, u.bucket, 0, 0, err)))
        goto out;
    if ((rc = cf_store_check_condition(s, txn, comp, complen, cond, err)))
        goto out;
    if ((rc = drop_upload_in(s, txn, id, rec, &freed))) {
        rc = cf_err_set(err, rc, "cannot remove upload '%s': %s", upload_id, cf_strerror(rc));
        goto out;
    }
    /* In the same transaction: a retry that finds the upload gone finds how it completed. */
    if (done && (rc = put_completion_in(s, txn, id, done))) {
        rc = cf_err_set(err, rc, "cannot record the completion of upload '%s'", upload_id);
        goto out;
    }
    if ((rc = cf_index_put(s, txn, comp, complen, enc.data, enc.len, &old, &had_old))) {
        rc = cf_err_set(err, rc, "cannot index object '%.*s': %s", (int)u.keylen, u.key, cf_strerror(rc));
        goto out;
    }
    if (had_old && (rc = cf_store_mark_garbage(s, txn, &old, err)))
        goto out;
    if (had_old && (rc = collect_segments(&freed, &old))) {
        rc = cf_err_set(err, rc, "out of memory completing upload '%s'", upload_id);
        goto out;
    }
    if ((rc = cf_store_bucket_account(s, txn, u.bucket, had_old ? 0 : 1,
                                      (int64_t)rec->size - (had_old ? (int64_t)old.size : 0), err)))
        goto out;
    int mrc = mdb_txn_commit(txn);
    txn = NULL;
    if (mrc) {
        rc = cf_store_lmdb_err(err, mrc, "commit");
        goto out;
    }
    cf_store_reclaim(s, &freed);
out:
    if (txn)
        mdb_txn_abort(txn);
    cf_object_info_cleanup(&old);
    cf_object_info_cleanup(&freed);
    cf_store_upload_cleanup(&u);
    free(comp);
    cf_buf_cleanup(&enc);
    return rc;
}
