/*
 * etag.c - S3 ETags of a byte stream for several part sizes in one read.
 *
 * Each part size is a lane with the MD5 state of its current part and the MD5 of the digests of
 * its finished parts. A lane whose parts are a whole number of 64-byte blocks ("aligned") starts
 * every part on a block boundary of the stream, so all aligned lanes consume the same blocks at
 * the same time: the stream's bytes not yet making a block wait once, in the calculator's tail,
 * and every full block goes to up to CF_MD5_LANES lanes at once (cf_md5_blocks_lanes with the
 * same block for each). A lane closes its part lazily, when the next block arrives, so a part
 * ending with the stream stays the last part. Part sizes that are not whole blocks (an SDK's even
 * split of an odd size) have their own cf_md5_ctx and see the bytes on their own.
 */
#include "mirror/etag.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/hash.h"
#include "crypto/md5.h"

#define MIB ((uint64_t)1 << 20)
#define S3_PART_MAX ((uint64_t)5 << 30)

typedef struct lane {
    uint64_t part; /* bytes per part; CF_ETAG_SINGLE and CF_ETAG_WHOLE: the whole stream */
    int aligned;
    uint64_t part_start; /* stream offset where the current part began */
    uint32_t st[4];      /* aligned: the current part's MD5 state over whole blocks */
    cf_md5_ctx part_md5; /* not aligned: the current part's MD5 */
    cf_md5_ctx outer;    /* MD5 of the finished parts' digests */
    unsigned nparts;     /* finished parts */
    char etag[CF_ETAG_MAX];
} lane;

struct cf_etag_calc {
    lane lanes[CF_ETAG_SIZES_MAX];
    size_t n;
    size_t aligned[CF_ETAG_SIZES_MAX]; /* indices of the aligned lanes */
    size_t naligned;
    uint64_t hashed; /* bytes the aligned lanes have consumed, a multiple of 64 */
    uint64_t total;  /* bytes given */
    unsigned char tail[64];
    size_t ntail;
    int ended;
};

static int one_part(uint64_t part)
{
    return part == CF_ETAG_SINGLE || part == CF_ETAG_WHOLE;
}

/* The digest of a part whose whole blocks are in st and whose last ntail bytes are tail. */
static void md5_finish(const uint32_t st[4], const unsigned char *tail, size_t ntail, uint64_t len,
                       unsigned char out[16])
{
    cf_md5_ctx m;
    cf_md5_resume(&m, st, len - ntail);
    if (ntail) /* tail is NULL for a whole part */
        cf_md5_update(&m, tail, ntail);
    cf_md5_final(&m, out);
}

static void close_part(lane *l, const unsigned char digest[16], uint64_t at)
{
    cf_md5_update(&l->outer, digest, 16);
    l->nparts++;
    l->part_start = at;
}

/* Full blocks of the stream at p to every aligned lane, closing parts on the way. */
static void aligned_blocks(cf_etag_calc *c, const unsigned char *p, size_t nblocks)
{
    while (nblocks) {
        size_t k = nblocks;
        for (size_t i = 0; i < c->naligned; i++) {
            lane *l = &c->lanes[c->aligned[i]];
            if (!one_part(l->part) && c->hashed - l->part_start == l->part) {
                unsigned char d[16];
                md5_finish(l->st, NULL, 0, l->part, d);
                close_part(l, d, c->hashed);
                cf_md5_state_init(l->st);
            }
            if (!one_part(l->part)) {
                uint64_t left = (l->part - (c->hashed - l->part_start)) / 64;
                if (left < k)
                    k = (size_t)left;
            }
        }
        for (size_t i = 0; i < c->naligned; i += CF_MD5_LANES) {
            unsigned n = c->naligned - i < CF_MD5_LANES ? (unsigned)(c->naligned - i) : CF_MD5_LANES;
            uint32_t *st[CF_MD5_LANES];
            const unsigned char *src[CF_MD5_LANES];
            for (unsigned j = 0; j < n; j++) {
                st[j] = c->lanes[c->aligned[i + j]].st;
                src[j] = p;
            }
            if (n == 1)
                cf_md5_blocks(st[0], p, k);
            else
                cf_md5_blocks_lanes(n, st, src, k);
        }
        c->hashed += (uint64_t)k * 64;
        p += k * 64;
        nblocks -= k;
    }
}

static void unaligned_bytes(lane *l, uint64_t off, const unsigned char *p, size_t n)
{
    while (n) {
        if (off - l->part_start == l->part) {
            unsigned char d[16];
            cf_md5_final(&l->part_md5, d);
            close_part(l, d, off);
            cf_md5_init(&l->part_md5, NULL);
        }
        uint64_t room = l->part - (off - l->part_start);
        size_t take = room < n ? (size_t)room : n;
        cf_md5_update(&l->part_md5, p, take);
        off += take;
        p += take;
        n -= take;
    }
}

int cf_etag_calc_new(const uint64_t *part_sizes, size_t n, cf_etag_calc **out, cf_err *err)
{
    if (n == 0 || n > CF_ETAG_SIZES_MAX)
        return cf_err_set(err, CF_EINVAL, "etag: %zu part sizes at once (1 to %d)", n, CF_ETAG_SIZES_MAX);
    cf_etag_calc *c = calloc(1, sizeof *c);
    if (!c)
        return cf_err_set(err, CF_ENOMEM, "etag: out of memory");
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        lane *l = &c->lanes[i];
        l->part = part_sizes[i];
        l->aligned = one_part(l->part) || l->part % 64 == 0;
        cf_md5_state_init(l->st);
        cf_md5_init(&l->outer, NULL);
        if (l->aligned)
            c->aligned[c->naligned++] = i;
        else
            cf_md5_init(&l->part_md5, NULL);
    }
    *out = c;
    return 0;
}

void cf_etag_calc_update(cf_etag_calc *c, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < c->n; i++)
        if (!c->lanes[i].aligned)
            unaligned_bytes(&c->lanes[i], c->total, p, n);
    c->total += n;
    if (!c->naligned)
        return;
    if (c->ntail) {
        size_t take = 64 - c->ntail < n ? 64 - c->ntail : n;
        memcpy(c->tail + c->ntail, p, take);
        c->ntail += take;
        p += take;
        n -= take;
        if (c->ntail < 64)
            return;
        aligned_blocks(c, c->tail, 1);
        c->ntail = 0;
    }
    size_t nb = n / 64;
    aligned_blocks(c, p, nb);
    memcpy(c->tail, p + nb * 64, n - nb * 64);
    c->ntail = n - nb * 64;
}

void cf_etag_calc_final(cf_etag_calc *c)
{
    if (c->ended)
        return;
    c->ended = 1;
    for (size_t i = 0; i < c->n; i++) {
        lane *l = &c->lanes[i];
        unsigned char d[16];
        if (l->aligned) {
            if (c->ntail && !one_part(l->part) && c->hashed - l->part_start == l->part) {
                md5_finish(l->st, NULL, 0, l->part, d);
                close_part(l, d, c->hashed);
                cf_md5_state_init(l->st);
            }
            md5_finish(l->st, c->tail, c->ntail, c->hashed - l->part_start + c->ntail, d);
        } else {
            cf_md5_final(&l->part_md5, d);
        }
        if (l->part == CF_ETAG_SINGLE) {
            cf_md5_done(&l->outer);
            cf_hex_encode(d, 16, l->etag);
            continue;
        }
        close_part(l, d, c->total);
        unsigned char all[16];
        cf_md5_final(&l->outer, all);
        cf_hex_encode(all, 16, l->etag);
        snprintf(l->etag + 32, CF_ETAG_MAX - 32, "-%u", l->nparts);
    }
}

const char *cf_etag_calc_etag(const cf_etag_calc *c, size_t i)
{
    return i < c->n ? c->lanes[i].etag : "";
}

void cf_etag_calc_free(cf_etag_calc *c)
{
    if (!c)
        return;
    if (!c->ended)
        for (size_t i = 0; i < c->n; i++) {
            cf_md5_done(&c->lanes[i].outer);
            if (!c->lanes[i].aligned)
                cf_md5_done(&c->lanes[i].part_md5);
        }
    free(c);
}

int cf_etag_of(const void *p, size_t n, uint64_t part_size, char out[CF_ETAG_MAX], cf_err *err)
{
    cf_etag_calc *c;
    int rc = cf_etag_calc_new(&part_size, 1, &c, err);
    if (rc)
        return rc;
    cf_etag_calc_update(c, p, n);
    cf_etag_calc_final(c);
    memcpy(out, cf_etag_calc_etag(c, 0), CF_ETAG_MAX);
    cf_etag_calc_free(c);
    return 0;
}

int cf_etag_parse(const char *etag, unsigned char md5[16], unsigned *nparts)
{
    size_t len = strlen(etag);
    if (len >= 2 && etag[0] == '"' && etag[len - 1] == '"') {
        etag++;
        len -= 2;
    }
    if (len < 32 || cf_hex_decode(etag, 16, md5))
        return CF_EINVAL;
    *nparts = 0;
    if (len == 32)
        return 0;
    if (etag[32] != '-' || len < 34 || len > 32 + 6)
        return CF_EINVAL;
    unsigned count = 0;
    for (size_t i = 33; i < len; i++) {
        if (etag[i] < '0' || etag[i] > '9')
            return CF_EINVAL;
        count = count * 10 + (unsigned)(etag[i] - '0');
    }
    if (count == 0 || count > CF_ETAG_PARTS_MAX || etag[33] == '0')
        return CF_EINVAL;
    *nparts = count;
    return 0;
}

static uint64_t parts_for(uint64_t size, uint64_t part)
{
    return size / part + (size % part != 0);
}

static void add_size(uint64_t *out, size_t *n, uint64_t size, unsigned nparts, uint64_t part)
{
    if (*n >= CF_ETAG_SIZES_MAX || part == 0 || part >= size || parts_for(size, part) != nparts)
        return;
    for (size_t i = 0; i < *n; i++)
        if (out[i] == part)
            return;
    out[(*n)++] = part;
}

/* coffer's rule (storage/repo_s3.c) for objects too large for 9,000 parts of base bytes. */
static uint64_t coffer_part(uint64_t size, uint64_t base)
{
    if (size / 9000 < base)
        return base;
    uint64_t want = (size / 9000 + MIB) & ~(MIB - 1);
    return want > S3_PART_MAX ? S3_PART_MAX : want;
}

size_t cf_etag_part_sizes(uint64_t size, unsigned nparts, uint64_t out[CF_ETAG_SIZES_MAX])
{
    if (nparts == 0) {
        out[0] = CF_ETAG_SINGLE;
        return 1;
    }
    if (nparts == 1) {
        out[0] = CF_ETAG_WHOLE;
        return 1;
    }
    size_t n = 0;
    /* awscli and boto3 (s3transfer): 8 MiB, doubled until 10,000 parts hold the object. */
    for (uint64_t p = 8 * MIB; p <= S3_PART_MAX; p *= 2)
        add_size(out, &n, size, nparts, p);
    /* rclone, the Go/JS/Java SDKs' minimum; s3cmd; mc and coffer; older mc. */
    add_size(out, &n, size, nparts, 5 * MIB);
    add_size(out, &n, size, nparts, 15 * MIB);
    add_size(out, &n, size, nparts, 16 * MIB);
    add_size(out, &n, size, nparts, 64 * MIB);
    /* coffer: uploads (16 MiB) and server-side copies (512 MiB) of very large objects. */
    add_size(out, &n, size, nparts, coffer_part(size, 16 * MIB));
    add_size(out, &n, size, nparts, coffer_part(size, 512 * MIB));
    /* rclone for files beyond 10,000 chunks: size / 10,000 rounded up to the next MiB. */
    add_size(out, &n, size, nparts, ((size / CF_ETAG_PARTS_MAX >> 20) + 1) << 20);
    /* minio-go (mc): size / 10,000 rounded up to a multiple of its minimum part size. */
    static const uint64_t minio_min[] = {5 * MIB, 16 * MIB, 64 * MIB};
    for (size_t i = 0; i < sizeof minio_min / sizeof *minio_min; i++) {
        uint64_t q = size / CF_ETAG_PARTS_MAX;
        add_size(out, &n, size, nparts, (q + minio_min[i] - 1) / minio_min[i] * minio_min[i]);
    }
    /* Objects too large for 10,000 parts of their minimum: the JS and Java SDKs split them evenly
     * (ceil(size / 10,000)), the Go SDK takes size / 10,000 + 1. No whole number of blocks, so
     * each costs a pass of its own: only for that count. */
    if (nparts == CF_ETAG_PARTS_MAX) {
        add_size(out, &n, size, nparts, parts_for(size, nparts));
        add_size(out, &n, size, nparts, size / nparts + 1);
    }
    /* Any other whole number of MiB, smallest first. */
    for (uint64_t p = parts_for(parts_for(size, nparts), MIB) * MIB;
         n < CF_ETAG_SIZES_MAX && p < size && parts_for(size, p) == nparts; p += MIB)
        add_size(out, &n, size, nparts, p);
    return n;
}

struct cf_etag_match {
    cf_etag_calc *calc; /* NULL when no part size gives the ETag's count */
    char want[CF_ETAG_MAX];
    unsigned nparts;
    uint64_t size;
    uint64_t sizes[CF_ETAG_SIZES_MAX];
    size_t nsizes;
    signed char result[CF_ETAG_SIZES_MAX];
    int ended;
};

int cf_etag_match_new(const char *etag, uint64_t size, cf_etag_match **out, cf_err *err)
{
    unsigned char md5[16];
    unsigned nparts;
    if (cf_etag_parse(etag, md5, &nparts))
        return cf_err_set(err, CF_EINVAL, "etag: not an S3 MD5 ETag");
    cf_etag_match *m = calloc(1, sizeof *m);
    if (!m)
        return cf_err_set(err, CF_ENOMEM, "etag: out of memory");
    m->nparts = nparts;
    m->size = size;
    cf_hex_encode(md5, 16, m->want);
    if (nparts)
        snprintf(m->want + 32, sizeof m->want - 32, "-%u", nparts);
    m->nsizes = cf_etag_part_sizes(size, nparts, m->sizes);
    if (m->nsizes) {
        int rc = cf_etag_calc_new(m->sizes, m->nsizes, &m->calc, err);
        if (rc) {
            free(m);
            return rc;
        }
    }
    *out = m;
    return 0;
}

void cf_etag_match_update(cf_etag_match *m, const void *p, size_t n)
{
    if (m->calc)
        cf_etag_calc_update(m->calc, p, n);
}

cf_etag_verdict cf_etag_match_final(cf_etag_match *m, uint64_t *part_size)
{
    if (part_size)
        *part_size = 0;
    cf_etag_verdict v = CF_ETAG_MISMATCH;
    if (m->calc) {
        cf_etag_calc_final(m->calc);
        int whole = m->calc->total == m->size;
        for (size_t i = 0; i < m->nsizes; i++) {
            m->result[i] = whole && !strcmp(cf_etag_calc_etag(m->calc, i), m->want);
            if (m->result[i] && v != CF_ETAG_MATCH) {
                v = CF_ETAG_MATCH;
                if (part_size)
                    *part_size = m->sizes[i];
            }
        }
        /* Several parts: the uploader may have used a part size we did not try. */
        if (v != CF_ETAG_MATCH && whole && m->nparts > 1)
            v = CF_ETAG_UNKNOWN;
    }
    m->ended = 1;
    return v;
}

int cf_etag_match_tried(const cf_etag_match *m, uint64_t part_size)
{
    for (size_t i = 0; m->ended && i < m->nsizes; i++)
        if (m->sizes[i] == part_size)
            return m->result[i];
    return -1;
}

void cf_etag_match_free(cf_etag_match *m)
{
    if (!m)
        return;
    cf_etag_calc_free(m->calc);
    free(m);
}
