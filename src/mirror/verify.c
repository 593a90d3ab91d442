/*
 * verify.c - cf_mirror_verify: list both sides, pair the keys, read each pair on a pool of
 * workers, and judge each pair from its SHA-256s and ETag verdicts (verify.h).
 *
 * A worker reads the source's copy of a key, then the destination's, so that at most `jobs`
 * streams run at once whatever the sides; each stream is hashed as it arrives (SHA-256 always,
 * the ETag matcher on an S3 side) and never held. The findings are kept per pair and gathered in
 * key order at the end, so the lists do not depend on which worker finished first.
 */
#include "mirror/verify.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/grow.h"
#include "crypto/hash.h"
#include "mirror/etag.h"
#include "mirror/plan.h"
#include "mirror/pool.h"

#define JOBS_DEFAULT 8
#define JOBS_MAX 256

typedef struct listed {
    char *key;
    uint64_t size;
    char *etag;
} listed;

typedef struct listing {
    listed *v;
    size_t n, cap;
    const char *const *exclude; /* the mirror's patterns and rule (plan.h) */
    size_t nexclude;
} listing;

/* What reading one side's copy of a key gave. */
typedef struct side_read {
    int rc;
    cf_err err;
    unsigned char sha[CF_SHA256_LEN];
    uint64_t bytes;
    cf_etag_match *match; /* NULL: no S3 MD5 ETag */
    cf_etag_verdict verdict;
    uint64_t part; /* the part size that matched */
} side_read;

typedef enum pair_state { PAIR_SAME, PAIR_DIFFERENT, PAIR_MISSING } pair_state;

typedef struct pair {
    const listed *src, *dst; /* dst NULL: missing from the listing */
    pair_state state;
    char *why;
    cf_verify_side side;
    uint64_t bytes_src, bytes_dst;
    int etag_unexplained; /* PAIR_SAME, but an ETag the bytes do not give (why says where) */
} pair;

typedef struct verify_run {
    const cf_mirror_side *src, *dst;
    pair *pairs;
    const cf_logger *log;
} verify_run;

static int on_entry(void *ctx, const cf_repo_entry *e)
{
    listing *l = ctx;
    if (e->is_prefix || cf_plan_excluded(e->key, l->exclude, l->nexclude))
        return 0;
    listed *grown = cf_grow(l->v, &l->cap, l->n, sizeof *grown, 256);
    if (!grown)
        return CF_ENOMEM;
    l->v = grown;
    listed *x = &l->v[l->n];
    x->key = strdup(e->key);
    x->etag = strdup(e->etag ? e->etag : "");
    x->size = e->size;
    if (!x->key || !x->etag) {
        free(x->key);
        free(x->etag);
        return CF_ENOMEM;
    }
    l->n++;
    return 0;
}

static void listing_free(listing *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].key);
        free(l->v[i].etag);
    }
    free(l->v);
}

static int cmp_listed(const void *a, const void *b)
{
    return strcmp(((const listed *)a)->key, ((const listed *)b)->key);
}

/* A directory's hidden files too, as the mirror copies them; what is not a regular file is not
 * listed, as the mirror skips it. */
static int list_side(const cf_mirror_side *s, listing *l, cf_err *err)
{
    int rc = cf_repo_list_flags(s->repo, "", s->dir ? CF_REPO_LIST_HIDDEN : 0, on_entry, l, err);
    if (rc == CF_ENOMEM)
        cf_err_set(err, CF_ENOMEM, "verify: out of memory listing '%s'", s->url);
    if (!rc && l->n)
        qsort(l->v, l->n, sizeof *l->v, cmp_listed);
    return rc;
}

typedef struct stream_ctx {
    cf_hash *sha;
    cf_etag_match *match;
    uint64_t bytes;
} stream_ctx;

static int on_data(void *ctx, const void *p, size_t n, cf_err *err)
{
    (void)err;
    stream_ctx *s = ctx;
    cf_hash_update(s->sha, p, n);
    if (s->match)
        cf_etag_match_update(s->match, p, n);
    s->bytes += n;
    return 0;
}

/* Reads one side's copy whole. Only a failure to allocate is returned; a failed read is in r. */
static int read_side(const cf_mirror_side *side, const listed *x, cf_hash *sha, side_read *r, cf_err *err)
{
    memset(r, 0, sizeof *r);
    r->verdict = CF_ETAG_UNKNOWN;
    /* A directory's ETag is made of inode, size and mtime: only an S3 side's says anything. */
    if (!side->dir) {
        int rc = cf_etag_match_new(x->etag, x->size, &r->match, err);
        if (rc == CF_ENOMEM)
            return rc;
    }
    cf_hash_reset(sha);
    stream_ctx ctx = {sha, r->match, 0};
    r->rc = cf_repo_stream(side->repo, x->key, on_data, &ctx, &r->err);
    r->bytes = ctx.bytes;
    if (!r->rc) {
        if (cf_hash_final(sha, r->sha))
            return cf_err_set(err, CF_ENOMEM, "verify: out of memory for SHA-256");
        if (r->match)
            r->verdict = cf_etag_match_final(r->match, &r->part);
    }
    return 0;
}

static int set_why(pair *p, cf_verify_side side, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int set_why(pair *p, cf_verify_side side, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    p->state = PAIR_DIFFERENT;
    p->side = side;
    free(p->why);
    p->why = strdup(buf);
    return p->why ? 0 : CF_ENOMEM;
}

static const char *side_word(cf_verify_side s)
{
    switch (s) {
    case CF_VERIFY_SIDE_SOURCE: return "source";
    case CF_VERIFY_SIDE_DESTINATION: return "destination";
    case CF_VERIFY_SIDE_BOTH: return "both";
    default: return NULL;
    }
}

/* b's bytes do not give the ETag a's bytes gave with the part size a's matched: b changed. */
static int contradicts(const side_read *a, const listed *ax, const side_read *b, const listed *bx)
{
    if (a->verdict != CF_ETAG_MATCH || !b->match)
        return 0;
    unsigned char ma[16], mb[16];
    unsigned na, nb;
    if (cf_etag_parse(ax->etag, ma, &na) || cf_etag_parse(bx->etag, mb, &nb) || na != nb ||
        memcmp(ma, mb, 16))
        return 0;
    return b->verdict == CF_ETAG_MISMATCH || cf_etag_match_tried(b->match, a->part) == 0;
}

static int judge(pair *p, const side_read *s, const side_read *d)
{
    const listed *sx = p->src, *dx = p->dst;
    if (s->bytes != sx->size || d->bytes != dx->size) {
        int both = s->bytes != sx->size && d->bytes != dx->size;
        const side_read *r = s->bytes != sx->size ? s : d;
        const listed *x = r == s ? sx : dx;
        return set_why(p,
                       both     ? CF_VERIFY_SIDE_BOTH
                       : r == s ? CF_VERIFY_SIDE_SOURCE
                                : CF_VERIFY_SIDE_DESTINATION,
                       "the %s gave %llu bytes, listed as %llu", r == s ? "source" : "destination",
                       (unsigned long long)r->bytes, (unsigned long long)x->size);
    }
    int bad_s = s->verdict == CF_ETAG_MISMATCH || contradicts(d, dx, s, sx);
    int bad_d = d->verdict == CF_ETAG_MISMATCH || contradicts(s, sx, d, dx);
    cf_verify_side side = bad_s && bad_d ? CF_VERIFY_SIDE_BOTH
                          : bad_s        ? CF_VERIFY_SIDE_SOURCE
                          : bad_d        ? CF_VERIFY_SIDE_DESTINATION
                                         : CF_VERIFY_SIDE_UNKNOWN;
    const char *where = side == CF_VERIFY_SIDE_BOTH ? "on both sides"
                        : bad_s                     ? "in the source"
                                                    : "in the destination";
    if (!memcmp(s->sha, d->sha, sizeof s->sha)) {
        if (side == CF_VERIFY_SIDE_UNKNOWN) {
            p->state = PAIR_SAME;
            return 0;
        }
        /* The bytes agree: the copy is proven. An ETag that is not their MD5 is worth a warning
         * (storage corrupted identically on both sides is far less likely than an ETag that is
         * not an MD5, as SSE-KMS gives), not a failed verification. */
        int rc = set_why(p, side, "ETag does not match bytes %s (the bytes agree)", where);
        p->state = PAIR_SAME;
        p->etag_unexplained = 1;
        return rc;
    }
    if (side == CF_VERIFY_SIDE_UNKNOWN)
        return set_why(p, side, "content differs (SHA-256)");
    return set_why(
        p, side, "content differs (SHA-256); ETag does not match bytes %s: changed behind the server's back",
        where);
}

/* What the ETag told, for --log-level debug (and the tests that check the part size found). */
static void log_etag(const cf_logger *log, const char *key, const char *side, const side_read *r)
{
    if (!r->match)
        return;
    char part[24] = "";
    if (r->verdict == CF_ETAG_MATCH)
        snprintf(part, sizeof part, "%llu",
                 r->part == CF_ETAG_WHOLE ? (unsigned long long)r->bytes : (unsigned long long)r->part);
    cf_log(log, CF_LOG_DEBUG, "verify: etag", "key", key, "side", side, "verdict",
           r->verdict == CF_ETAG_MATCH      ? "matches"
           : r->verdict == CF_ETAG_MISMATCH ? "does not match"
                                            : "unknown",
           "part_size", part, NULL);
}

static int check_pair(verify_run *run, pair *p, cf_hash *sha, cf_err *err)
{
    if (!p->dst)
        return 0;
    if (p->src->size != p->dst->size)
        return set_why(p, CF_VERIFY_SIDE_UNKNOWN,
                       "size differs: %llu bytes in the source, %llu in the destination",
                       (unsigned long long)p->src->size, (unsigned long long)p->dst->size);
    side_read s, d;
    int rc = read_side(run->src, p->src, sha, &s, err);
    memset(&d, 0, sizeof d);
    if (!rc && !s.rc)
        rc = read_side(run->dst, p->dst, sha, &d, err);
    p->bytes_src = s.bytes;
    p->bytes_dst = d.bytes;
    if (rc) {
    } else if (s.rc == CF_ENOTFOUND) {
        rc = set_why(p, CF_VERIFY_SIDE_SOURCE, "gone from the source while verifying");
    } else if (s.rc) {
        rc = set_why(p, CF_VERIFY_SIDE_SOURCE, "cannot read the source: %s", s.err.msg);
    } else if (d.rc == CF_ENOTFOUND) {
        p->state = PAIR_MISSING;
    } else if (d.rc) {
        rc = set_why(p, CF_VERIFY_SIDE_DESTINATION, "cannot read the destination: %s", d.err.msg);
    } else {
        log_etag(run->log, p->src->key, "source", &s);
        log_etag(run->log, p->src->key, "destination", &d);
        rc = judge(p, &s, &d);
        if (!rc && p->etag_unexplained)
            cf_log(run->log, CF_LOG_WARN, "verify: bytes agree, ETag does not", "key", p->src->key, "why",
                   p->why, NULL);
    }
    cf_etag_match_free(s.match);
    cf_etag_match_free(d.match);
    if (rc == CF_ENOMEM)
        cf_err_set(err, CF_ENOMEM, "verify: out of memory");
    return rc;
}

static int worker_start(void *ctx, void **state, cf_err *err)
{
    (void)ctx;
    cf_hash *sha = cf_hash_new(CF_HASH_SHA256);
    if (!sha)
        return cf_err_set(err, CF_ENOMEM, "verify: out of memory for SHA-256");
    *state = sha;
    return 0;
}

static int worker_item(void *ctx, void *state, size_t i, cf_err *err)
{
    verify_run *run = ctx;
    pair *p = &run->pairs[i];
    int rc = check_pair(run, p, state, err);
    if (!rc && p->state != PAIR_SAME)
        cf_log(run->log, CF_LOG_DEBUG, "verify: finding", "key", p->src->key, "why",
               p->state == PAIR_MISSING ? "missing from the destination" : p->why, NULL);
    return rc;
}

static void worker_stop(void *ctx, void *state)
{
    (void)ctx;
    cf_hash_free(state);
}

/* A copy of key at the end of v, which has room for it. */
static int push(char **v, size_t *n, const char *key)
{
    if (!(v[*n] = strdup(key)))
        return CF_ENOMEM;
    (*n)++;
    return 0;
}

/* The findings, in key order within each list; each list allocated once, at its final length. */
static int gather(const pair *pairs, size_t npairs, const char *const *extra_keys, size_t nextra,
                  cf_verify_summary *out)
{
    size_t ndiff = 0, nmiss = 0;
    for (size_t i = 0; i < npairs; i++) {
        ndiff += pairs[i].state == PAIR_DIFFERENT;
        nmiss += pairs[i].state == PAIR_MISSING;
    }
    if ((ndiff && (!(out->different = calloc(ndiff, sizeof *out->different)) ||
                   !(out->why = calloc(ndiff, sizeof *out->why)) ||
                   !(out->side = calloc(ndiff, sizeof *out->side)))) ||
        (nmiss && !(out->missing = calloc(nmiss, sizeof *out->missing))) ||
        (nextra && !(out->extra = calloc(nextra, sizeof *out->extra))))
        return CF_ENOMEM;
    for (size_t i = 0; i < npairs; i++) {
        const pair *p = &pairs[i];
        out->files_checked++;
        out->bytes_checked += p->bytes_src;
        out->bytes_read += p->bytes_src + p->bytes_dst;
        out->etag_unexplained += (uint64_t)p->etag_unexplained;
        if (p->state == PAIR_MISSING && push(out->missing, &out->nmissing, p->src->key))
            return CF_ENOMEM;
        if (p->state == PAIR_DIFFERENT) {
            size_t k = out->ndifferent;
            if (push(out->different, &out->ndifferent, p->src->key) || !(out->why[k] = strdup(p->why)))
                return CF_ENOMEM;
            out->side[k] = p->side;
        }
    }
    for (size_t i = 0; i < nextra; i++)
        if (push(out->extra, &out->nextra, extra_keys[i]))
            return CF_ENOMEM;
    return 0;
}

int cf_mirror_verify(const cf_mirror_side *src, const cf_mirror_side *dst, const char *const *exclude,
                     size_t nexclude, int jobs, const cf_logger *log, cf_verify_summary *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    if (jobs == 0)
        jobs = JOBS_DEFAULT;
    if (jobs < 1 || jobs > JOBS_MAX)
        return cf_err_set(err, CF_EINVAL, "verify: --jobs %d: give 1 to %d", jobs, JOBS_MAX);
    double t0 = cf_clock_mono();
    listing ls = {.exclude = exclude, .nexclude = nexclude}, ld = {.exclude = exclude, .nexclude = nexclude};
    pair *pairs = NULL;
    const char **extra = NULL;
    size_t npairs = 0, nextra = 0;
    int rc = list_side(src, &ls, err);
    if (!rc)
        rc = list_side(dst, &ld, err);
    if (!rc && ((ls.n && !(pairs = calloc(ls.n, sizeof *pairs))) ||
                (ld.n && !(extra = calloc(ld.n, sizeof *extra)))))
        rc = cf_err_set(err, CF_ENOMEM, "verify: out of memory");
    /* Both listings sorted: one merge pairs them. */
    for (size_t i = 0, j = 0; !rc && (i < ls.n || j < ld.n);) {
        int c = i == ls.n ? 1 : j == ld.n ? -1 : strcmp(ls.v[i].key, ld.v[j].key);
        if (c > 0) {
            extra[nextra++] = ld.v[j++].key;
            continue;
        }
        pair *p = &pairs[npairs++];
        p->src = &ls.v[i++];
        p->dst = c == 0 ? &ld.v[j++] : NULL;
        p->state = c == 0 ? PAIR_SAME : PAIR_MISSING;
    }
    /* Only keys on both sides are read (check_pair passes over the others). */
    if (!rc) {
        verify_run run = {.src = src, .dst = dst, .log = log, .pairs = pairs};
        /* The calling thread works too: a single job needs no thread at all. */
        cf_pool_job job = {.n = npairs,
                           .threads = jobs,
                           .ctx = &run,
                           .start = worker_start,
                           .item = worker_item,
                           .stop = worker_stop};
        rc = cf_pool_run(&job, err);
    }
    if (!rc && gather(pairs, npairs, extra, nextra, out))
        rc = cf_err_set(err, CF_ENOMEM, "verify: out of memory");
    for (size_t i = 0; i < npairs; i++)
        free(pairs[i].why);
    free(pairs);
    free(extra);
    listing_free(&ls);
    listing_free(&ld);
    if (rc) {
        cf_verify_summary_free(out);
        return rc;
    }
    out->seconds = cf_clock_mono() - t0;
    char line[160];
    cf_verify_summary_line(out, line, sizeof line);
    cf_log(log, CF_LOG_INFO, line, NULL);
    return 0;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void cf_verify_summary_free(cf_verify_summary *s)
{
    if (!s)
        return;
    free_list(s->missing, s->nmissing);
    free_list(s->extra, s->nextra);
    /* why[] may be shorter than different[] after a failure half-way through gather. */
    for (size_t i = 0; s->why && i < s->ndifferent; i++)
        free(s->why[i]);
    free(s->why);
    free(s->side);
    free_list(s->different, s->ndifferent);
    memset(s, 0, sizeof *s);
}

int cf_verify_summary_ok(const cf_verify_summary *s)
{
    return s->nmissing == 0 && s->ndifferent == 0;
}

void cf_verify_summary_line(const cf_verify_summary *s, char *out, size_t cap)
{
    int n = snprintf(out, cap, "verified %llu: %zu missing, %zu different",
                     (unsigned long long)s->files_checked, s->nmissing, s->ndifferent);
    if (s->etag_unexplained && n >= 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, " (%llu with an ETag their bytes do not give)",
                 (unsigned long long)s->etag_unexplained);
}

static void put_key(FILE *f, const char *key)
{
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
}

void cf_verify_summary_report(const cf_verify_summary *s, FILE *f)
{
    for (size_t i = 0; i < s->nmissing; i++) {
        fputs("coffer mirror: ", f);
        put_key(f, s->missing[i]);
        fputs(": missing from the destination\n", f);
    }
    for (size_t i = 0; i < s->ndifferent; i++) {
        fputs("coffer mirror: ", f);
        put_key(f, s->different[i]);
        fputs(": ", f);
        /* A read's error names the key it failed on: escaped as the key is. */
        put_key(f, s->why ? s->why[i] : "different");
        fputc('\n', f);
    }
    for (size_t i = 0; i < s->nextra; i++) {
        fputs("coffer mirror: ", f);
        put_key(f, s->extra[i]);
        fputs(": only in the destination\n", f);
    }
}

/* A key (or a message naming one) as a JSON string: as is when UTF-8, else with every byte above
 * 0x7f as \xNN. */
static json_t *json_text(const char *key)
{
    json_t *j = json_string(key);
    if (j)
        return j;
    size_t n = strlen(key);
    char *buf = malloc(4 * n + 1);
    if (!buf)
        return NULL;
    char *q = buf;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        if (*p >= 0x80)
            q += sprintf(q, "\\x%02x", *p);
        else
            *q++ = (char)*p;
    }
    *q = '\0';
    j = json_string(buf);
    free(buf);
    return j;
}

static json_t *key_array(char *const *keys, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_text(keys[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

int cf_verify_summary_json(const cf_verify_summary *s, json_t *obj)
{
    json_t *v = json_object(), *findings = json_array();
    int bad = !v || !findings;
    bad |= json_object_set_new(v, "checked", json_integer((json_int_t)s->files_checked));
    bad |= json_object_set_new(v, "bytes", json_integer((json_int_t)s->bytes_checked));
    bad |= json_object_set_new(v, "missing", key_array(s->missing, s->nmissing));
    bad |= json_object_set_new(v, "different", key_array(s->different, s->ndifferent));
    bad |= json_object_set_new(v, "extra", key_array(s->extra, s->nextra));
    bad |= json_object_set_new(v, "etag_unexplained", json_integer((json_int_t)s->etag_unexplained));
    for (size_t i = 0; !bad && i < s->ndifferent; i++) {
        const char *side = s->side ? side_word(s->side[i]) : NULL;
        json_t *f = json_object();
        bad |= !f;
        bad |= json_object_set_new(f, "key", json_text(s->different[i]));
        bad |= json_object_set_new(f, "why", json_text(s->why ? s->why[i] : "different"));
        bad |= json_object_set_new(f, "side", side ? json_string(side) : json_null());
        bad |= json_array_append_new(findings, f);
    }
    if (!bad) {
        bad = json_object_set_new(v, "findings", findings);
        findings = NULL;
    }
    if (!bad) {
        bad = json_object_set_new(obj, "verify", v);
        v = NULL;
    }
    json_decref(findings);
    json_decref(v);
    return bad ? CF_ENOMEM : 0;
}
