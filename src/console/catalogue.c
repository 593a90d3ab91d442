#include "console/catalogue.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive/codec.h"
#include "snapshot/order.h"
#include "snapshot/ref.h"
#include "snapshot/snapshot.h"

#define DEFAULT_INTERVAL_S 60.0
/* Manifests are read in parallel on the first refresh: over S3 each is one round trip, and
 * 10,000 of them one after another would keep the console unready for many seconds. */
#define READ_WORKERS 8
/* "<chain>/" + ID + ".json": no key the catalogue reads is longer than this. */
#define KEY_MAX 1024

/* One snapshot as read from its manifest. Entries are immutable and shared by every view that
 * lists them, so a refresh that finds a manifest unchanged carries the entry over (a reference)
 * instead of reading or copying it. */
typedef struct entry {
    atomic_size_t refs;
    cf_cat_snapshot snap; /* owns its strings; height points into labels */
    char *etag;           /* of the manifest, as listed */
    uint64_t manifest_size;
} entry;

/* A view and its reference count. A chain's snaps array carries two private arrays after its
 * nsnaps entries: the entries they were copied from (released with the view), and the indices
 * of the snapshots in id order (cf_cat_find_snapshot's binary search), so that both are reached
 * from the chain alone. */
typedef struct view_impl {
    cf_cat_view pub;
    atomic_size_t refs;
} view_impl;

/* A manifest that failed to parse, remembered (with its ETag and size) so that it is neither
 * read nor warned about again until it changes. */
typedef struct bad_manifest {
    size_t repo;
    char *key, *etag;
    uint64_t size;
} bad_manifest;

typedef struct bad_set {
    bad_manifest *v;
    size_t n, cap;
} bad_set;

typedef struct name_set {
    char **v;
    size_t n, cap;
} name_set;

struct cf_catalogue {
    cf_cat_repo *repos; /* urls copied */
    size_t nrepos;
    double interval_s;
    const cf_logger *log;
    const cf_clock *clock;

    pthread_mutex_t view_mu; /* current and the figures below: held for a swap or a copy only */
    view_impl *current;
    uint64_t refreshes_ok, refreshes_failed, manifest_reads;
    double last_seconds;
    size_t snapshots, invalid;

    pthread_mutex_t refresh_mu; /* one refresh at a time; guards bad and dup_warned */
    bad_set bad;
    name_set dup_warned; /* chain names found in two repositories, already warned about */

    pthread_mutex_t thread_mu; /* with thread_cv: stop, requested */
    pthread_cond_t thread_cv;
    int stop, requested, started;
    atomic_int stopping; /* read by a refresh in progress, to give up early */
    pthread_t thread;
};

/* ---- entries and views ---- */

static void entry_release(entry *e)
{
    if (!e || atomic_fetch_sub(&e->refs, 1) != 1)
        return;
    cf_cat_snapshot *s = &e->snap;
    free(s->chain);
    free(s->archive_key);
    free(s->manifest_key);
    for (size_t i = 0; i < s->nlabels; i++) {
        free(s->labels[i].key);
        free(s->labels[i].value);
    }
    free(s->labels);
    free(e->etag);
    free(e);
}

static entry *entry_retain(entry *e)
{
    atomic_fetch_add(&e->refs, 1);
    return e;
}

static entry **chain_entries(const cf_cat_chain *ch)
{
    return (entry **)(ch->snaps + ch->nsnaps);
}

static uint32_t *chain_by_id(const cf_cat_chain *ch)
{
    return (uint32_t *)(chain_entries(ch) + ch->nsnaps);
}

/* Room for n snapshots and the two private arrays after them (NULL for none). */
static cf_cat_snapshot *snaps_alloc(size_t n, int *failed)
{
    if (!n)
        return NULL;
    cf_cat_snapshot *s = malloc(n * (sizeof(cf_cat_snapshot) + sizeof(entry *) + sizeof(uint32_t)));
    if (!s)
        *failed = 1;
    return s;
}

static void chain_cleanup(cf_cat_chain *ch)
{
    for (size_t i = 0; ch->snaps && i < ch->nsnaps; i++)
        entry_release(chain_entries(ch)[i]);
    free(ch->snaps);
    free(ch->name);
}

static void view_free(view_impl *v)
{
    for (size_t i = 0; i < v->pub.nchains; i++)
        chain_cleanup(&v->pub.chains[i]);
    free(v->pub.chains);
    free(v);
}

static void view_release(view_impl *v)
{
    if (v && atomic_fetch_sub(&v->refs, 1) == 1)
        view_free(v);
}

static view_impl *view_of(const cf_cat_view *v)
{
    return (view_impl *)((char *)v - offsetof(view_impl, pub));
}

const cf_cat_view *cf_catalogue_acquire(cf_catalogue *c)
{
    pthread_mutex_lock(&c->view_mu);
    view_impl *v = c->current;
    atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&c->view_mu);
    return &v->pub;
}

void cf_catalogue_release(cf_catalogue *c, const cf_cat_view *v)
{
    (void)c;
    if (v)
        view_release(view_of(v));
}

static int chain_name_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const cf_cat_chain *)elem)->name);
}

const cf_cat_chain *cf_cat_find_chain(const cf_cat_view *v, const char *name)
{
    if (!v || !name || !v->nchains)
        return NULL;
    return bsearch(name, v->chains, v->nchains, sizeof *v->chains, chain_name_cmp);
}

const cf_cat_snapshot *cf_cat_find_snapshot(const cf_cat_chain *ch, const char *id)
{
    if (!ch || !id)
        return NULL;
    const uint32_t *by_id = chain_by_id(ch);
    size_t lo = 0, hi = ch->nsnaps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = strcmp(id, ch->snaps[by_id[mid]].id);
        if (!d)
            return &ch->snaps[by_id[mid]];
        if (d < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Room for one more element in the array at *(void **)array, n used of *cap elements of size
 * bytes: 0 or CF_ENOMEM (the array as it was). */
static int make_room(void *array, size_t n, size_t *cap, size_t size)
{
    void **v = array;
    if (n < *cap)
        return 0;
    size_t more = *cap ? 2 * *cap : 16;
    void *nv = realloc(*v, more * size);
    if (!nv)
        return CF_ENOMEM;
    *v = nv;
    *cap = more;
    return 0;
}

/* ---- the sets a refresh keeps between refreshes ---- */

static void bad_set_cleanup(bad_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].key);
        free(s->v[i].etag);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int bad_cmp(const void *a, const void *b)
{
    const bad_manifest *x = a, *y = b;
    if (x->repo != y->repo)
        return x->repo < y->repo ? -1 : 1;
    return strcmp(x->key, y->key);
}

static const bad_manifest *bad_find(const bad_set *s, size_t repo, const char *key)
{
    bad_manifest k = {.repo = repo, .key = (char *)key};
    return s->n ? bsearch(&k, s->v, s->n, sizeof *s->v, bad_cmp) : NULL;
}

static int bad_add(bad_set *s, size_t repo, const char *key, const char *etag, uint64_t size)
{
    if (make_room(&s->v, s->n, &s->cap, sizeof *s->v))
        return CF_ENOMEM;
    bad_manifest *b = &s->v[s->n];
    b->repo = repo;
    b->size = size;
    b->key = strdup(key);
    b->etag = strdup(etag);
    if (!b->key || !b->etag) {
        free(b->key);
        free(b->etag);
        return CF_ENOMEM;
    }
    s->n++;
    return 0;
}

static void name_set_cleanup(name_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int name_set_has(const name_set *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], name))
            return 1;
    return 0;
}

static int name_set_add(name_set *s, const char *name)
{
    if (make_room(&s->v, s->n, &s->cap, sizeof *s->v))
        return CF_ENOMEM;
    return (s->v[s->n] = strdup(name)) ? (s->n++, 0) : CF_ENOMEM;
}

/* ---- one refresh ---- */

/* A manifest the listing found, and what became of it. */
typedef struct found {
    char id[CF_SNAPSHOT_ID_LEN + 1];
    char *key, *etag;
    uint64_t size;
    entry *e;          /* carried over or read; NULL: left out */
    int rc;            /* of the read: CF_ECORRUPT bad manifest, CF_ENOTFOUND gone, other: try again */
    char *why;         /* the read's message */
    int read;          /* to be read */
    const char *chain; /* set with read: where it is, for the thread reading it */
    size_t repo;
} found;

typedef struct pending_chain {
    char *name;
    size_t repo;
    found *v;
    size_t n, cap;
    const cf_cat_chain *stale; /* its listing failed: the previous view's chain, carried over */
    int unlisted;              /* its listing failed */
} pending_chain;

typedef struct refresh {
    cf_catalogue *c;
    const cf_cat_view *prev;
    pending_chain *chains;
    size_t n, cap;
    size_t repo;     /* the repository being listed */
    found **to_read; /* the manifests this refresh must read (new or changed) */
    size_t nto_read;
    atomic_size_t next;
    atomic_size_t reads;
    int failed;       /* a listing or a read failed: counted, logged, retried next time */
    size_t listed_ok; /* repositories whose root was listed */
    char first_error[sizeof(((cf_err *)0)->msg)];
    int first_rc;
} refresh;

static void note_failure(refresh *r, int rc, const char *msg)
{
    if (!r->failed) {
        r->first_rc = rc;
        snprintf(r->first_error, sizeof r->first_error, "%s", msg);
    }
    r->failed = 1;
}

static void found_cleanup(found *f)
{
    free(f->key);
    free(f->etag);
    free(f->why);
    entry_release(f->e);
}

static void pending_cleanup(refresh *r)
{
    for (size_t i = 0; i < r->n; i++) {
        pending_chain *p = &r->chains[i];
        for (size_t j = 0; j < p->n; j++)
            found_cleanup(&p->v[j]);
        free(p->v);
        free(p->name);
    }
    free(r->chains);
    free(r->to_read);
}

static pending_chain *add_chain(refresh *r, const char *name, size_t len, size_t repo)
{
    if (make_room(&r->chains, r->n, &r->cap, sizeof *r->chains))
        return NULL;
    pending_chain *p = &r->chains[r->n];
    memset(p, 0, sizeof *p);
    if (!(p->name = strndup(name, len)))
        return NULL;
    p->repo = repo;
    r->n++;
    return p;
}

static int note_chain(void *ctx, const cf_repo_entry *e)
{
    refresh *r = ctx;
    size_t len = strlen(e->key);
    /* Objects at the root are no chain, nor is a name `coffer snapshot` could not have given a
     * namespace: control characters from a bucket's listing never reach the API or the log. */
    char name[256];
    if (!e->is_prefix || len < 2 || len > sizeof name)
        return 0;
    memcpy(name, e->key, len - 1);
    name[len - 1] = '\0';
    if (!cf_snapshot_ns_valid(name))
        return 0;
    return add_chain(r, name, len - 1, r->repo) ? 0 : CF_ENOMEM;
}

static int note_manifest(void *ctx, const cf_repo_entry *e)
{
    pending_chain *p = ctx;
    size_t nl = strlen(p->name), kl = strlen(e->key);
    /* <chain>/ID.json exactly, an id that names a real instant: anything else is no snapshot. */
    if (e->is_prefix || kl != nl + 1 + CF_SNAPSHOT_ID_LEN + 5 || strcmp(e->key + kl - 5, ".json"))
        return 0;
    char id[CF_SNAPSHOT_ID_LEN + 1];
    memcpy(id, e->key + nl + 1, CF_SNAPSHOT_ID_LEN);
    id[CF_SNAPSHOT_ID_LEN] = '\0';
    if (!cf_snapshot_id_valid(id) || cf_snapshot_id_time(id) < 0)
        return 0;
    if (make_room(&p->v, p->n, &p->cap, sizeof *p->v))
        return CF_ENOMEM;
    found *f = &p->v[p->n];
    memset(f, 0, sizeof *f);
    memcpy(f->id, id, sizeof id);
    f->size = e->size;
    f->key = strdup(e->key);
    f->etag = strdup(e->etag ? e->etag : "");
    if (!f->key || !f->etag) {
        found_cleanup(f);
        return CF_ENOMEM;
    }
    p->n++;
    return 0;
}

static const cf_cat_chain *prev_chain(const refresh *r, const char *name, size_t repo)
{
    const cf_cat_chain *ch = cf_cat_find_chain(r->prev, name);
    return ch && ch->repo_index == repo ? ch : NULL;
}

/* Lists repository i: its chains, and each chain's manifests. What cannot be listed is carried
 * over from the previous view. */
static int list_repo(refresh *r, size_t i)
{
    cf_catalogue *c = r->c;
    cf_err err = {0};
    size_t first = r->n;
    r->repo = i;
    int rc = cf_repo_list_dir(c->repos[i].repo, "", note_chain, r, &err);
    if (rc == CF_ENOMEM)
        return rc;
    if (rc) {
        cf_log(c->log, CF_LOG_WARN, "cannot list a repository; its chains stay as the last refresh saw them",
               "repository", c->repos[i].url, "error", err.msg, NULL);
        note_failure(r, rc, err.msg);
        for (size_t k = first; k < r->n; k++)
            free(r->chains[k].name);
        r->n = first;
        for (size_t k = 0; k < r->prev->nchains; k++) {
            const cf_cat_chain *ch = &r->prev->chains[k];
            if (ch->repo_index != i)
                continue;
            pending_chain *p = add_chain(r, ch->name, strlen(ch->name), i);
            if (!p)
                return CF_ENOMEM;
            p->stale = ch;
            p->unlisted = 1;
        }
        return 0;
    }
    r->listed_ok++;
    for (size_t k = first; k < r->n; k++) {
        pending_chain *p = &r->chains[k];
        char prefix[KEY_MAX];
        snprintf(prefix, sizeof prefix, "%s/", p->name);
        cf_err_clear(&err);
        rc = cf_repo_list_dir(c->repos[i].repo, prefix, note_manifest, p, &err);
        if (rc == CF_ENOMEM)
            return rc;
        if (rc) {
            cf_log(c->log, CF_LOG_WARN,
                   "cannot list a chain; its snapshots stay as the last refresh saw them", "repository",
                   c->repos[i].url, "chain", p->name, "error", err.msg, NULL);
            note_failure(r, rc, err.msg);
            for (size_t j = 0; j < p->n; j++)
                found_cleanup(&p->v[j]);
            p->n = 0;
            p->unlisted = 1;
            p->stale = prev_chain(r, p->name, i);
        }
        if (atomic_load(&c->stopping))
            return CF_EAGAIN;
    }
    return 0;
}

static int pending_cmp(const void *a, const void *b)
{
    const pending_chain *x = a, *y = b;
    int d = strcmp(x->name, y->name);
    if (d)
        return d;
    return x->repo < y->repo ? -1 : x->repo > y->repo;
}

/* A chain name in two repositories: the first repository's chain is the one served. */
static void drop_shadowed(refresh *r, name_set *dups)
{
    cf_catalogue *c = r->c;
    if (r->n)
        qsort(r->chains, r->n, sizeof *r->chains, pending_cmp);
    size_t out = 0;
    for (size_t i = 0; i < r->n; i++) {
        pending_chain *p = &r->chains[i];
        if (out && !strcmp(r->chains[out - 1].name, p->name)) {
            if (!name_set_has(dups, p->name)) {
                /* Out of memory here only means the warning comes again next time. */
                (void)name_set_add(dups, p->name);
                if (!name_set_has(&c->dup_warned, p->name))
                    cf_log(c->log, CF_LOG_WARN,
                           "a chain of this name is in two repositories; the first one's is served", "chain",
                           p->name, "served", c->repos[r->chains[out - 1].repo].url, "hidden",
                           c->repos[p->repo].url, NULL);
            }
            for (size_t j = 0; j < p->n; j++)
                found_cleanup(&p->v[j]);
            free(p->v);
            free(p->name);
            continue;
        }
        r->chains[out++] = *p;
    }
    r->n = out;
}

/* Each manifest found: the previous view's entry when key, ETag and size are the same; nothing
 * when it is a known bad manifest (kept in new_bad); else to be read. */
static int plan_reads(refresh *r, bad_set *new_bad)
{
    cf_catalogue *c = r->c;
    size_t total = 0;
    for (size_t i = 0; i < r->n; i++)
        total += r->chains[i].n;
    if (total && !(r->to_read = malloc(total * sizeof *r->to_read)))
        return CF_ENOMEM;
    for (size_t i = 0; i < r->n; i++) {
        pending_chain *p = &r->chains[i];
        const cf_cat_chain *old = prev_chain(r, p->name, p->repo);
        if (p->unlisted) {
            /* Keep its known bad manifests known: the chain was not listed, nothing changed. */
            size_t nl = strlen(p->name);
            for (size_t k = 0; k < c->bad.n; k++) {
                const bad_manifest *b = &c->bad.v[k];
                if (b->repo == p->repo && !strncmp(b->key, p->name, nl) && b->key[nl] == '/' &&
                    bad_add(new_bad, b->repo, b->key, b->etag, b->size))
                    return CF_ENOMEM;
            }
            continue;
        }
        for (size_t j = 0; j < p->n; j++) {
            found *f = &p->v[j];
            const cf_cat_snapshot *s = cf_cat_find_snapshot(old, f->id);
            if (s) {
                entry *e = chain_entries(old)[s - old->snaps];
                if (!strcmp(e->etag, f->etag) && e->manifest_size == f->size) {
                    f->e = entry_retain(e);
                    continue;
                }
            }
            const bad_manifest *b = bad_find(&c->bad, p->repo, f->key);
            if (b && !strcmp(b->etag, f->etag) && b->size == f->size) {
                if (bad_add(new_bad, p->repo, f->key, f->etag, f->size))
                    return CF_ENOMEM;
                continue;
            }
            f->read = 1;
            f->chain = p->name;
            f->repo = p->repo;
            r->to_read[r->nto_read++] = f;
        }
    }
    return 0;
}

static char *dup_str(const char *s, int *failed)
{
    char *d = strdup(s ? s : "");
    if (!d)
        *failed = 1;
    return d;
}

static int entry_from_manifest(const cf_manifest *m, const char *chain, size_t repo, const found *f,
                               entry **out)
{
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return CF_ENOMEM;
    atomic_init(&e->refs, 1);
    cf_cat_snapshot *s = &e->snap;
    int failed = 0;
    memcpy(s->id, m->id, sizeof s->id);
    s->created = (int64_t)m->created;
    s->created_ns = m->created_ns;
    s->size = m->archive.size;
    s->raw_size = m->archive.raw_size;
    s->files = m->archive.files;
    snprintf(s->compression, sizeof s->compression, "%s", cf_codec_name(m->archive.compression));
    s->level = m->archive.level;
    s->encrypted = m->encryption != NULL;
    for (size_t i = 0; i < sizeof m->archive.sha256; i++)
        snprintf(s->sha256 + 2 * i, 3, "%02x", m->archive.sha256[i]);
    s->repo_index = repo;
    s->chain = dup_str(chain, &failed);
    s->archive_key = dup_str(m->archive.key, &failed);
    s->manifest_key = dup_str(f->key, &failed);
    e->etag = dup_str(f->etag, &failed);
    e->manifest_size = f->size;
    if (m->nlabels && !(s->labels = calloc(m->nlabels, sizeof *s->labels)))
        failed = 1;
    s->nlabels = s->labels ? m->nlabels : 0;
    for (size_t i = 0; i < s->nlabels; i++) {
        s->labels[i].key = dup_str(m->labels[i].key, &failed);
        s->labels[i].value = dup_str(m->labels[i].value, &failed);
        if (!s->height && s->labels[i].value && !strcmp(m->labels[i].key, "height"))
            s->height = s->labels[i].value;
    }
    if (failed) {
        entry_release(e);
        return CF_ENOMEM;
    }
    *out = e;
    return 0;
}

/*
 * A manifest's chunk list is what makes it large: a line per 2 MiB of archive, 50 MB for a 1 TB
 * snapshot, which a first refresh would download and parse (jansson: ten times that in memory)
 * for each of thousands of snapshots only to drop it. In a manifest as coffer writes it, every
 * field the catalogue shows comes before "chunks" but "encryption" and "tool", which come after.
 * So a large manifest is read as two ranges, its head and its tail, joined into the manifest of
 * one chunk that the whole would be but for the chunks; cf_manifest_parse checks the result as
 * strictly as any manifest. Whatever does not fit that shape (a head too long, another writer's
 * layout, a damaged file) is read whole instead, which also names what is wrong with it.
 */
#define SPLIT_ABOVE ((uint64_t)128 << 10)
#define HEAD_BYTES ((uint64_t)64 << 10)
#define TAIL_BYTES ((uint64_t)4 << 10)

static int append_range(void *ctx, const void *p, size_t n, cf_err *err)
{
    int rc = cf_buf_append(ctx, p, n);
    return rc ? cf_err_set(err, rc, "reading a manifest's range: %s", cf_strerror(rc)) : 0;
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* head's text up to the end of the first chunk, "]," and tail's from its last "encryption" key,
 * into out; 0, or -1 when either is not where coffer puts it. */
static int join_head_and_tail(const char *head, size_t hn, const char *tail, size_t tn, cf_buf *out)
{
    const char *hend = head + hn, *tend = tail + tn, *at = memmem(head, hn, "\"chunks\"", 8);
    const char *open = at ? skip_space(at + 8, hend) : NULL;
    if (!open || open == hend || *open != ':' || (open = skip_space(open + 1, hend)) == hend || *open != '[')
        return -1;
    const char *first_end = memchr(open, '}', (size_t)(hend - open)); /* chunks hold numbers only */
    const char *enc = NULL;
    for (const char *s = tail; (s = memmem(s, (size_t)(tend - s), "\"encryption\"", 12)); s++)
        enc = s;
    const char *before = enc;
    while (before && before > tail && strchr(" \n\r\t", before[-1]))
        before--;
    if (!first_end || !before || before == tail || before[-1] != ',')
        return -1;
    for (before--; before > tail && strchr(" \n\r\t", before[-1]);)
        before--;
    if (before == tail || before[-1] != ']')
        return -1;
    cf_buf_append(out, head, (size_t)(first_end + 1 - head));
    cf_buf_puts(out, "],\n  ");
    cf_buf_append(out, enc, (size_t)(tend - enc));
    return cf_buf_error(out) ? -1 : 0;
}

/* The manifest of f, in two ranges when it is large (above); 0 or the whole read's error. */
static int load_summary(cf_repo *repo, const found *f, cf_manifest *m, cf_err *err)
{
    if (f->size > SPLIT_ABOVE) {
        cf_buf head, tail, joined;
        cf_buf_init(&head, HEAD_BYTES);
        cf_buf_init(&tail, TAIL_BYTES);
        cf_buf_init(&joined, HEAD_BYTES + TAIL_BYTES + 16);
        cf_err ignored;
        int ok =
            !cf_repo_get(repo, f->key, 0, HEAD_BYTES, append_range, &head, &ignored) &&
            !cf_repo_get(repo, f->key, f->size - TAIL_BYTES, TAIL_BYTES, append_range, &tail, &ignored) &&
            head.len == HEAD_BYTES && tail.len == TAIL_BYTES &&
            !join_head_and_tail(head.data, head.len, tail.data, tail.len, &joined) &&
            !cf_manifest_parse(joined.data, joined.len, m, &ignored);
        cf_buf_cleanup(&head);
        cf_buf_cleanup(&tail);
        cf_buf_cleanup(&joined);
        if (ok)
            return 0;
    }
    return cf_snapshot_load_manifest(repo, f->key, m, err);
}

static void read_one(refresh *r, found *f)
{
    const char *chain = f->chain;
    size_t repo = f->repo;
    cf_catalogue *c = r->c;
    cf_err err = {0};
    cf_manifest m;
    int rc = load_summary(c->repos[repo].repo, f, &m, &err);
    atomic_fetch_add(&r->reads, 1);
    if (!rc) {
        if (strcmp(m.id, f->id))
            rc = cf_err_set(&err, CF_ECORRUPT, "manifest '%s' in %s names snapshot %s", f->key,
                            c->repos[repo].url, m.id);
        else
            rc = entry_from_manifest(&m, chain, repo, f, &f->e);
        cf_manifest_cleanup(&m);
    }
    f->rc = rc;
    if (rc)
        f->why = strdup(err.msg[0] ? err.msg : cf_strerror(rc));
}

static void *read_worker(void *arg)
{
    refresh *r = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&r->next, 1);
        if (i >= r->nto_read || atomic_load(&r->c->stopping))
            break;
        read_one(r, r->to_read[i]);
    }
    return NULL;
}

static void read_all(refresh *r)
{
    pthread_t t[READ_WORKERS - 1];
    size_t want = r->nto_read / 4, started = 0;
    want = want > READ_WORKERS - 1 ? READ_WORKERS - 1 : want;
    while (started < want && pthread_create(&t[started], NULL, read_worker, r) == 0)
        started++;
    read_worker(r); /* this thread works too, so that no thread is needed to make progress */
    for (size_t i = 0; i < started; i++)
        pthread_join(t[i], NULL);
}

static int newest_first(const void *a, const void *b)
{
    const cf_cat_snapshot *x = &(*(entry *const *)a)->snap, *y = &(*(entry *const *)b)->snap;
    cf_snapshot_key kx = {.created = x->created, .created_ns = x->created_ns},
                    ky = {.created = y->created, .created_ns = y->created_ns};
    memcpy(kx.id, x->id, sizeof kx.id);
    memcpy(ky.id, y->id, sizeof ky.id);
    return cf_snapshot_key_cmp(&ky, &kx);
}

typedef struct id_index {
    const char *id;
    uint32_t i;
} id_index;

static int id_index_cmp(const void *a, const void *b)
{
    return strcmp(((const id_index *)a)->id, ((const id_index *)b)->id);
}

/* ch->snaps and its private arrays from n entries (the references pass to ch). */
static int fill_chain(cf_cat_chain *ch, entry **ents, size_t n)
{
    int failed = 0;
    ch->snaps = snaps_alloc(n, &failed);
    id_index *ix = n ? malloc(n * sizeof *ix) : NULL;
    if (failed || (n && !ix)) {
        free(ch->snaps);
        ch->snaps = NULL;
        free(ix);
        return CF_ENOMEM;
    }
    ch->nsnaps = n;
    if (n)
        qsort(ents, n, sizeof *ents, newest_first);
    for (size_t i = 0; i < n; i++) {
        ch->snaps[i] = ents[i]->snap;
        chain_entries(ch)[i] = ents[i];
        ix[i] = (id_index){ch->snaps[i].id, (uint32_t)i};
    }
    if (n)
        qsort(ix, n, sizeof *ix, id_index_cmp);
    for (size_t i = 0; i < n; i++)
        chain_by_id(ch)[i] = ix[i].i;
    free(ix);
    return 0;
}

/* The new view from the pending chains; logs each manifest newly found bad. */
static int build_view(refresh *r, bad_set *new_bad, view_impl **out, size_t *nsnaps)
{
    cf_catalogue *c = r->c;
    view_impl *v = calloc(1, sizeof *v);
    if (!v || (r->n && !(v->pub.chains = calloc(r->n, sizeof *v->pub.chains)))) {
        free(v);
        return CF_ENOMEM;
    }
    atomic_init(&v->refs, 1);
    *nsnaps = 0;
    entry **ents = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; !rc && i < r->n; i++) {
        pending_chain *p = &r->chains[i];
        if (p->unlisted && !p->stale)
            continue; /* a chain first seen now that could not be listed: none yet */
        cf_cat_chain *ch = &v->pub.chains[v->pub.nchains];
        if (!(ch->name = strdup(p->name))) {
            rc = CF_ENOMEM;
            break;
        }
        ch->repo_index = p->repo;
        v->pub.nchains++;
        size_t want = p->stale ? p->stale->nsnaps : p->n;
        if (want > cap) {
            entry **ne = realloc(ents, want * sizeof *ents);
            if (!ne) {
                rc = CF_ENOMEM;
                break;
            }
            ents = ne;
            cap = want;
        }
        size_t n = 0;
        if (p->stale) {
            for (size_t j = 0; j < p->stale->nsnaps; j++)
                ents[n++] = entry_retain(chain_entries(p->stale)[j]);
        }
        for (size_t j = 0; !p->stale && j < p->n; j++) {
            found *f = &p->v[j];
            if (f->read && f->rc == CF_ECORRUPT) {
                cf_log(c->log, CF_LOG_WARN, "skipping a manifest that does not parse", "repository",
                       c->repos[p->repo].url, "key", f->key, "error", f->why ? f->why : "out of memory",
                       NULL);
                if ((rc = bad_add(new_bad, p->repo, f->key, f->etag, f->size)))
                    break;
            } else if (f->read && f->rc && f->rc != CF_ENOTFOUND) {
                /* A read that failed for another reason (the network, the store) is tried again
                 * next time; meanwhile the previous view's entry, if any, stands. */
                cf_log(c->log, CF_LOG_WARN, "cannot read a manifest; trying again at the next refresh",
                       "repository", c->repos[p->repo].url, "key", f->key, "error",
                       f->why ? f->why : "out of memory", NULL);
                note_failure(r, f->rc, f->why ? f->why : "out of memory");
                const cf_cat_chain *old = prev_chain(r, p->name, p->repo);
                const cf_cat_snapshot *s = cf_cat_find_snapshot(old, f->id);
                if (s)
                    ents[n++] = entry_retain(chain_entries(old)[s - old->snaps]);
            }
            if (f->e) {
                ents[n++] = f->e;
                f->e = NULL;
            }
        }
        if (rc || (rc = fill_chain(ch, ents, n))) {
            for (size_t j = 0; j < n; j++)
                entry_release(ents[j]);
            break;
        }
        *nsnaps += n;
    }
    free(ents);
    if (rc) {
        view_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

static int refresh_locked(cf_catalogue *c, cf_err *err)
{
    double t0 = cf_clock_mono();
    refresh r = {.c = c};
    atomic_init(&r.next, 0);
    atomic_init(&r.reads, 0);
    r.prev = cf_catalogue_acquire(c);
    bad_set new_bad = {0};
    name_set dups = {0};
    view_impl *v = NULL;
    size_t nsnaps = 0;
    int rc = 0;
    for (size_t i = 0; !rc && i < c->nrepos; i++)
        rc = list_repo(&r, i);
    if (!rc) {
        drop_shadowed(&r, &dups);
        rc = plan_reads(&r, &new_bad);
    }
    if (!rc) {
        read_all(&r);
        rc = atomic_load(&c->stopping) ? CF_EAGAIN : 0;
    }
    /* Nothing listed at all: the previous view is as good as a copy of it. */
    if (!rc && (r.listed_ok || !c->nrepos))
        rc = build_view(&r, &new_bad, &v, &nsnaps);
    double took = cf_clock_mono() - t0;
    if (v) {
        v->pub.ready = 1;
        v->pub.refreshed_at = (int64_t)cf_clock_time(c->clock);
        if (new_bad.n) /* gathered chain by chain; looked up by repository and key */
            qsort(new_bad.v, new_bad.n, sizeof *new_bad.v, bad_cmp);
        bad_set_cleanup(&c->bad);
        c->bad = new_bad;
        memset(&new_bad, 0, sizeof new_bad);
        name_set_cleanup(&c->dup_warned);
        c->dup_warned = dups;
        memset(&dups, 0, sizeof dups);
    }
    if (rc != CF_EAGAIN) {
        pthread_mutex_lock(&c->view_mu);
        view_impl *old = NULL;
        if (v) {
            old = c->current;
            c->current = v;
            c->snapshots = nsnaps;
            c->invalid = c->bad.n;
        }
        c->manifest_reads += atomic_load(&r.reads);
        c->last_seconds = took;
        if (rc || r.failed)
            c->refreshes_failed++;
        else
            c->refreshes_ok++;
        pthread_mutex_unlock(&c->view_mu);
        view_release(old);
    }
    cf_catalogue_release(c, r.prev);
    pending_cleanup(&r);
    bad_set_cleanup(&new_bad);
    name_set_cleanup(&dups);
    if (rc == CF_EAGAIN)
        return cf_err_set(err, rc, "the catalogue is stopping; refresh abandoned");
    if (rc)
        return cf_err_set(err, rc, "catalogue refresh: %s", cf_strerror(rc));
    if (r.failed)
        return cf_err_set(err, r.first_rc ? r.first_rc : CF_EIO, "catalogue refresh: %s", r.first_error);
    return 0;
}

int cf_catalogue_refresh(cf_catalogue *c, cf_err *err)
{
    pthread_mutex_lock(&c->refresh_mu);
    int rc = refresh_locked(c, err);
    pthread_mutex_unlock(&c->refresh_mu);
    return rc;
}

/* ---- the background thread ---- */

static void deadline_in(struct timespec *ts, double s)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    time_t whole = (time_t)s;
    long ns = ts->tv_nsec + (long)((s - (double)whole) * 1e9);
    ts->tv_sec += whole + ns / 1000000000L;
    ts->tv_nsec = ns % 1000000000L;
}

static void *refresher(void *arg)
{
    cf_catalogue *c = arg;
    const cf_cat_view *v = cf_catalogue_acquire(c);
    int due = !v->ready; /* not loaded yet: load now; else wait an interval */
    cf_catalogue_release(c, v);
    struct timespec until;
    deadline_in(&until, due ? 0 : c->interval_s);
    pthread_mutex_lock(&c->thread_mu);
    for (;;) {
        while (!c->stop && !c->requested &&
               pthread_cond_timedwait(&c->thread_cv, &c->thread_mu, &until) != ETIMEDOUT)
            ;
        if (c->stop)
            break;
        c->requested = 0; /* requests made from here on make one more refresh */
        pthread_mutex_unlock(&c->thread_mu);
        cf_err err = {0};
        if (cf_catalogue_refresh(c, &err) && err.code != CF_EAGAIN)
            cf_log(c->log, CF_LOG_WARN, "catalogue refresh failed", "error", err.msg, NULL);
        deadline_in(&until, c->interval_s);
        pthread_mutex_lock(&c->thread_mu);
    }
    pthread_mutex_unlock(&c->thread_mu);
    return NULL;
}

int cf_catalogue_start(cf_catalogue *c, cf_err *err)
{
    pthread_mutex_lock(&c->thread_mu);
    int rc = 0;
    if (c->started)
        rc = cf_err_set(err, CF_EINVAL, "the catalogue's refresh thread is already running");
    else if ((rc = pthread_create(&c->thread, NULL, refresher, c)) != 0)
        rc = cf_err_sys(err, CF_EIO, rc, "cannot start the catalogue's refresh thread");
    else
        c->started = 1;
    pthread_mutex_unlock(&c->thread_mu);
    return rc;
}

void cf_catalogue_request_refresh(cf_catalogue *c)
{
    pthread_mutex_lock(&c->thread_mu);
    c->requested = 1;
    pthread_cond_signal(&c->thread_cv);
    pthread_mutex_unlock(&c->thread_mu);
}

/* ---- life ---- */

int cf_catalogue_new(const cf_catalogue_opts *o, cf_catalogue **out, cf_err *err)
{
    *out = NULL;
    if (!o || (o->nrepos && !o->repos))
        return cf_err_set(err, CF_EINVAL, "catalogue: no repository list");
    if (o->refresh_interval_s < 0 || o->refresh_interval_s > 86400.0 * 365)
        return cf_err_set(err, CF_EINVAL, "catalogue: refresh interval %g s is out of range",
                          o->refresh_interval_s);
    for (size_t i = 0; i < o->nrepos; i++)
        if (!o->repos[i].repo)
            return cf_err_set(err, CF_EINVAL, "catalogue: repository %zu ('%s') is not open", i,
                              o->repos[i].url ? o->repos[i].url : "");
    cf_catalogue *c = calloc(1, sizeof *c);
    view_impl *v = calloc(1, sizeof *v);
    if (!c || !v || (o->nrepos && !(c->repos = calloc(o->nrepos, sizeof *c->repos)))) {
        free(c);
        free(v);
        return cf_err_set(err, CF_ENOMEM, "catalogue: out of memory");
    }
    for (size_t i = 0; i < o->nrepos; i++, c->nrepos++) {
        c->repos[i].repo = o->repos[i].repo;
        const char *url = o->repos[i].url ? o->repos[i].url : cf_repo_name(o->repos[i].repo);
        if (!(c->repos[i].url = strdup(url))) {
            for (size_t k = 0; k < c->nrepos; k++)
                free((char *)c->repos[k].url);
            free(c->repos);
            free(c);
            free(v);
            return cf_err_set(err, CF_ENOMEM, "catalogue: out of memory");
        }
    }
    atomic_init(&v->refs, 1);
    c->current = v;
    c->interval_s = o->refresh_interval_s > 0 ? o->refresh_interval_s : DEFAULT_INTERVAL_S;
    c->log = o->log;
    c->clock = o->clock;
    atomic_init(&c->stopping, 0);
    pthread_mutex_init(&c->view_mu, NULL);
    pthread_mutex_init(&c->refresh_mu, NULL);
    pthread_mutex_init(&c->thread_mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->thread_cv, &attr);
    pthread_condattr_destroy(&attr);
    *out = c;
    return 0;
}

void cf_catalogue_free(cf_catalogue *c)
{
    if (!c)
        return;
    atomic_store(&c->stopping, 1);
    pthread_mutex_lock(&c->thread_mu);
    c->stop = 1;
    int started = c->started;
    pthread_cond_signal(&c->thread_cv);
    pthread_mutex_unlock(&c->thread_mu);
    if (started)
        pthread_join(c->thread, NULL);
    view_release(c->current);
    bad_set_cleanup(&c->bad);
    name_set_cleanup(&c->dup_warned);
    for (size_t i = 0; i < c->nrepos; i++)
        free((char *)c->repos[i].url);
    free(c->repos);
    pthread_cond_destroy(&c->thread_cv);
    pthread_mutex_destroy(&c->thread_mu);
    pthread_mutex_destroy(&c->refresh_mu);
    pthread_mutex_destroy(&c->view_mu);
    free(c);
}

/* ---- metrics ---- */

int cf_catalogue_render_metrics(cf_catalogue *c, cf_buf *b)
{
    pthread_mutex_lock(&c->view_mu);
    uint64_t ok = c->refreshes_ok, failed = c->refreshes_failed, reads = c->manifest_reads;
    double seconds = c->last_seconds;
    size_t snapshots = c->snapshots, invalid = c->invalid, chains = c->current->pub.nchains;
    int64_t at = c->current->pub.refreshed_at;
    pthread_mutex_unlock(&c->view_mu);
    cf_buf_printf(
        b,
        "# HELP coffer_console_catalogue_refreshes_total Catalogue refreshes, by result (error: a "
        "repository, chain or manifest could not be read).\n"
        "# TYPE coffer_console_catalogue_refreshes_total counter\n"
        "coffer_console_catalogue_refreshes_total{result=\"ok\"} %llu\n"
        "coffer_console_catalogue_refreshes_total{result=\"error\"} %llu\n"
        "# HELP coffer_console_catalogue_refresh_seconds How long the last refresh took.\n"
        "# TYPE coffer_console_catalogue_refresh_seconds gauge\n"
        "coffer_console_catalogue_refresh_seconds %.6f\n"
        "# HELP coffer_console_catalogue_snapshots Snapshots in the catalogue.\n"
        "# TYPE coffer_console_catalogue_snapshots gauge\n"
        "coffer_console_catalogue_snapshots %zu\n"
        "# HELP coffer_console_catalogue_chains Chains in the catalogue.\n"
        "# TYPE coffer_console_catalogue_chains gauge\n"
        "coffer_console_catalogue_chains %zu\n"
        "# HELP coffer_console_catalogue_last_refresh_timestamp_seconds When the catalogue last took "
        "in a listing (0: never).\n"
        "# TYPE coffer_console_catalogue_last_refresh_timestamp_seconds gauge\n"
        "coffer_console_catalogue_last_refresh_timestamp_seconds %lld\n"
        "# HELP coffer_console_catalogue_manifest_reads_total Manifests read (a refresh reads only new "
        "and changed ones).\n"
        "# TYPE coffer_console_catalogue_manifest_reads_total counter\n"
        "coffer_console_catalogue_manifest_reads_total %llu\n"
        "# HELP coffer_console_catalogue_invalid_manifests Manifests left out because they do not parse.\n"
        "# TYPE coffer_console_catalogue_invalid_manifests gauge\n"
        "coffer_console_catalogue_invalid_manifests %zu\n",
        (unsigned long long)ok, (unsigned long long)failed, seconds, snapshots, chains, (long long)at,
        (unsigned long long)reads, invalid);
    return cf_buf_error(b);
}
