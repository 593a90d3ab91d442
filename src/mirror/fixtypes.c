/*
 * fixtypes.c - coffer mirror --fix-content-types (fixtypes.h).
 *
 * The listing is taken whole first, then workers take objects from it in turn, each with its own
 * libmagic cookie (ctype.h); every object's outcome lands in its own slot, so that the summary
 * comes out in key order whatever the order of the work.
 */
#include "mirror/fixtypes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/grow.h"
#include "mirror/ctype.h"
#include "mirror/plan.h"
#include "mirror/pool.h"

#define JOBS_DEFAULT 8
#define JOBS_MAX 256

typedef enum outcome { LEFT_ALONE, FIXED, FAILED, GONE } outcome;

typedef struct item {
    char *key;
    uint64_t listed_size;
    outcome result;
    char stored[128];
    char detected[CF_CTYPE_MAX];
    char *why; /* FAILED: the message */
} item;

typedef struct run {
    cf_repo *repo;
    int dry_run;
    const cf_logger *log;
    item *items;
    size_t n, cap;
    const char *const *exclude;
    size_t nexclude;
} run;

static int on_entry(void *ctx, const cf_repo_entry *e)
{
    run *r = ctx;
    if (e->is_prefix || cf_plan_excluded(e->key, r->exclude, r->nexclude))
        return 0;
    item *grown = cf_grow(r->items, &r->cap, r->n, sizeof *grown, 1024);
    if (!grown)
        return CF_ENOMEM;
    r->items = grown;
    item *it = &r->items[r->n];
    memset(it, 0, sizeof *it);
    it->key = strdup(e->key);
    it->listed_size = e->size;
    if (!it->key)
        return CF_ENOMEM;
    r->n++;
    return 0;
}

typedef struct head_buf {
    unsigned char p[CF_CTYPE_HEAD];
    size_t n;
} head_buf;

static int to_head(void *ctx, const void *p, size_t n, cf_err *err)
{
    head_buf *h = ctx;
    size_t room = sizeof h->p - h->n;
    memcpy(h->p + h->n, p, n < room ? n : room);
    h->n += n < room ? n : room;
    return 0;
}

/* Whether the bytes as stored are the content itself: Content-Encoding absent or identity. */
static int plain_bytes(const cf_repo_info *info)
{
    return !info->content_encoding[0] || !strcasecmp(info->content_encoding, "identity");
}

/* What a copy onto itself must send again would not fit in cf_repo_info (so stat cut it): NULL
 * when everything was kept whole, else what was not. */
static const char *not_kept_whole(const cf_repo_info *info)
{
    if (info->nmeta == CF_REPO_META_FIELDS)
        return "more user metadata fields than a copy can carry";
    const struct {
        const char *v;
        size_t cap;
    } std[] = {{info->cache_control, sizeof info->cache_control},
               {info->content_disposition, sizeof info->content_disposition},
               {info->content_encoding, sizeof info->content_encoding},
               {info->content_language, sizeof info->content_language},
               {info->expires, sizeof info->expires}};
    for (size_t i = 0; i < sizeof std / sizeof *std; i++)
        if (strlen(std[i].v) + 1 >= std[i].cap)
            return "a standard header too long to be kept by a copy";
    return NULL;
}

static void fail_item(item *it, const char *why)
{
    it->result = FAILED;
    it->why = strdup(why);
}

/* Looks at one object and fixes it when it needs it. CF_EPRECOND when the copy found the object
 * rewritten since it was read (nothing written, it->result not set): the caller reads it again. */
static int check_once(run *r, cf_ctype *ct, item *it, cf_repo_info *info, head_buf *head)
{
    cf_err err;
    head->n = 0;
    /* A range of an empty object cannot be satisfied (AWS answers 416, s3rver a broken answer):
     * no byte is asked of one listed empty, which makes the read a HEAD. */
    uint64_t want = it->listed_size ? CF_CTYPE_HEAD : 0;
    int rc = cf_repo_get_info(r->repo, it->key, 0, want, info, to_head, head, &err);
    if (!rc && !want && info->size) /* written since the listing */
        rc = cf_repo_get_info(r->repo, it->key, 0, CF_CTYPE_HEAD, info, to_head, head, &err);
    if (!rc && !plain_bytes(info))
        head->n = 0; /* encoded bytes say nothing of what they hold: the name decides */
    if (rc == CF_ENOTFOUND) {
        it->result = GONE;
        return 0;
    }
    if (rc) {
        fail_item(it, err.msg);
        return 0;
    }
    snprintf(it->stored, sizeof it->stored, "%s", info->content_type);
    cf_ctype_detect(ct, it->key, head->p, head->n, it->detected, sizeof it->detected);
    if (!cf_ctype_needs_fix(it->stored, it->detected))
        return 0;
    const char *lost = not_kept_whole(info);
    if (lost) {
        fail_item(it, lost);
        return 0;
    }
    if (r->dry_run) {
        it->result = FIXED;
        return 0;
    }
    cf_repo_put_opts o = cf_repo_opts_of_info(info);
    o.content_type = it->detected;
    /* What was read decided the type and is what is sent again: only onto the same bytes. */
    o.if_match = info->etag;
    rc = cf_repo_copy(r->repo, it->key, it->key, &o, &err);
    if (rc == CF_EPRECOND)
        return rc;
    if (rc == CF_ENOTFOUND)
        it->result = GONE;
    else if (rc)
        fail_item(it, err.msg);
    else {
        it->result = FIXED;
        cf_log(r->log, CF_LOG_INFO, "content type fixed", "key", it->key, "was", it->stored, "now",
               it->detected, NULL);
    }
    return 0;
}

/* An object rewritten between its read and the copy is read and decided again, once: its new
 * bytes and metadata may need no fix, or another one. Rewritten again, it is left as its writer
 * made it and reported, for the next run. */
static void check_one(run *r, cf_ctype *ct, item *it, cf_repo_info *info, head_buf *head)
{
    if (check_once(r, ct, it, info, head) == CF_EPRECOND && check_once(r, ct, it, info, head) == CF_EPRECOND)
        fail_item(it, "rewritten while its content type was being fixed, twice: left as its writer made it");
}

/* A thread's own: a libmagic cookie is for one thread, and the buffers are too large for its stack. */
typedef struct worker_state {
    cf_ctype *ct;
    cf_repo_info info;
    head_buf head;
} worker_state;

static int worker_start(void *ctx, void **state, cf_err *err)
{
    (void)ctx;
    worker_state *w = malloc(sizeof *w);
    if (!w)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    int rc = cf_ctype_open(&w->ct, err);
    if (rc) {
        free(w);
        return rc;
    }
    *state = w;
    return 0;
}

static int worker_item(void *ctx, void *state, size_t i, cf_err *err)
{
    (void)err; /* an object's failure is its item's outcome, not the run's */
    run *r = ctx;
    worker_state *w = state;
    check_one(r, w->ct, &r->items[i], &w->info, &w->head);
    return 0;
}

static void worker_stop(void *ctx, void *state)
{
    (void)ctx;
    worker_state *w = state;
    cf_ctype_close(w->ct);
    free(w);
}

/* The outcomes into the summary, in key order (the listing's). */
static int summarise(run *r, cf_fix_summary *out, cf_err *err)
{
    size_t nfixed = 0, nfailed = 0;
    for (size_t i = 0; i < r->n; i++) {
        nfixed += r->items[i].result == FIXED;
        nfailed += r->items[i].result == FAILED;
    }
    out->keys = calloc(nfixed ? nfixed : 1, sizeof *out->keys);
    out->changes = calloc(nfixed ? nfixed : 1, sizeof *out->changes);
    out->failures = calloc(nfailed ? nfailed : 1, sizeof *out->failures);
    if (!out->keys || !out->changes || !out->failures)
        return cf_err_set(err, CF_ENOMEM, "content types of '%s': out of memory", cf_repo_name(r->repo));
    for (size_t i = 0; i < r->n; i++) {
        item *it = &r->items[i];
        out->checked += it->result != GONE;
        if (it->result == FIXED) {
            cf_fix_change *c = &out->changes[out->nkeys];
            out->keys[out->nkeys++] = it->key;
            c->stored = strdup(it->stored);
            c->detected = strdup(it->detected);
            it->key = NULL;
            if (!c->stored || !c->detected)
                return cf_err_set(err, CF_ENOMEM, "content types of '%s': out of memory",
                                  cf_repo_name(r->repo));
        } else if (it->result == FAILED) {
            cf_mirror_failure *f = &out->failures[out->nfailures++];
            f->key = it->key;
            f->why = it->why ? it->why : strdup("out of memory");
            it->key = it->why = NULL;
            if (!f->why)
                return cf_err_set(err, CF_ENOMEM, "content types of '%s': out of memory",
                                  cf_repo_name(r->repo));
        }
    }
    out->fixed = out->nkeys;
    return 0;
}

int cf_mirror_fix_content_types(cf_repo *bucket, const char *const *exclude, size_t nexclude, int jobs,
                                int dry_run, const cf_logger *log, cf_fix_summary *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    double start = cf_clock_mono();
    if (jobs < 0 || jobs > JOBS_MAX)
        return cf_err_set(err, CF_EINVAL, "--jobs takes 1 to %d, not %d", JOBS_MAX, jobs);
    run r = {.repo = bucket, .dry_run = dry_run, .log = log, .exclude = exclude, .nexclude = nexclude};
    int rc = cf_repo_list(bucket, "", on_entry, &r, err);
    if (rc == CF_ENOMEM)
        cf_err_set(err, rc, "listing '%s': out of memory", cf_repo_name(bucket));
    if (!rc) {
        cf_pool_job job = {.n = r.n,
                           .threads = jobs ? jobs : JOBS_DEFAULT,
                           .ctx = &r,
                           .start = worker_start,
                           .item = worker_item,
                           .stop = worker_stop};
        rc = cf_pool_run(&job, err);
    }
    if (!rc)
        rc = summarise(&r, out, err);
    for (size_t i = 0; i < r.n; i++) {
        free(r.items[i].key);
        free(r.items[i].why);
    }
    free(r.items);
    out->seconds = cf_clock_mono() - start;
    return rc;
}

void cf_fix_summary_free(cf_fix_summary *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nkeys; i++) {
        free(s->keys[i]);
        free(s->changes[i].stored);
        free(s->changes[i].detected);
    }
    for (size_t i = 0; i < s->nfailures; i++) {
        free(s->failures[i].key);
        free(s->failures[i].why);
    }
    free(s->keys);
    free(s->changes);
    free(s->failures);
    memset(s, 0, sizeof *s);
}
