/*
 * mirror.c - cf_mirror_run: both sides listed, the plan (plan.c), then the copies on a pool of
 * worker threads, the deletes, and the summary.
 *
 * A copy is, in this order of preference: a server-side copy (two buckets of one endpoint and
 * account: no byte passes through here), a hard link to link_dest's copy (dated mirrors), or
 * the source's bytes streamed into the destination's writer, which makes the object visible
 * whole or not at all (a directory: a temporary file renamed; S3: one PUT or a completed
 * multipart upload). The writer is opened on the first bytes, once the source told what it holds
 * beside them (content type, standard headers, metadata: one GET or one open file, never a HEAD
 * per object) and, for a directory source, the first bytes gave the content type.
 */
#include "mirror/mirror.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "mirror/plan.h"
#include "mirror/pool.h"

#if defined(__has_include)
#if __has_include("mirror/ctype.h")
#include "mirror/ctype.h"
#define MIRROR_HAVE_CTYPE 1
#endif
#endif
#ifndef MIRROR_HAVE_CTYPE
/* TEMPORARY, until src/mirror/ctype.h (content types from the bytes) is merged: the same three
 * calls, answering application/octet-stream for every upload from a directory. This block goes
 * away by itself once that header exists (the __has_include above). */
typedef struct cf_ctype cf_ctype;
static int cf_ctype_open(cf_ctype **out, cf_err *err)
{
    (void)err;
    *out = NULL;
    return 0;
}
static void cf_ctype_close(cf_ctype *c)
{
    (void)c;
}
static void cf_ctype_detect(cf_ctype *c, const char *key, const void *head, size_t n, char *out, size_t cap)
{
    (void)c, (void)key, (void)head, (void)n;
    snprintf(out, cap, "application/octet-stream");
}
#endif

#define JOBS_DEFAULT 8
#define JOBS_MAX 256
#define HEAD_BYTES 4096 /* what content detection reads of a file */
#define PROGRESS_EVERY_MS 100
/* Streams of objects above one part (16 MiB) at once: each holds up to 96 MiB of parts in an S3
 * writer (storage/repo_s3.c), so --jobs 32 of them would want 3 GiB; four keep the link full. */
#define LARGE_OBJECT ((uint64_t)16 << 20)
#define LARGE_AT_ONCE 4

/* The outcome of one planned item. */
typedef struct item_result {
    int rc;    /* 0, or the code of the failure */
    char *why; /* the failure's message (owned), NULL when none */
    int linked;
    int in_the_way; /* a delete a copy needs done first (a file and a directory of one name) */
} item_result;

typedef struct run {
    const cf_mirror_side *src, *dst;
    cf_side_kind sk, dk;
    const cf_mirror_opts *o;
    cf_plan plan;
    item_result *results;
    size_t *copies; /* indices into plan of the items to copy */
    size_t ncopies;
    size_t ndeleted;    /* by run_deletes, on the calling thread */
    atomic_size_t next; /* the next index into copies for a worker to take */
    atomic_uint_fast64_t bytes_done, files_done;
    atomic_int no_server_copy;         /* copy_from said CF_ENOTSUP once: stream the rest */
    atomic_int meta_dropped;           /* a directory without user xattrs: warned once */
    uint64_t files_total, bytes_total; /* what the plan copies and deletes, for the progress */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a large stream ends */
    int large_streams; /* under mu: large objects being streamed */
} run;

/* One worker's state for one copy. */
typedef struct copy_ctx {
    run *r;
    const cf_plan_entry *e;
    cf_ctype *ctype;
    cf_repo_info *info; /* what the source told (on_info), pointers rebased into it */
    int have_info;
    cf_repo_writer *w;
    char content_type[128];
    char mtime_text[24];
    cf_repo_meta meta[CF_REPO_META_FIELDS];
} copy_ctx;

static const char *side_name(const cf_mirror_side *s)
{
    return s->url ? s->url : cf_repo_name(s->repo);
}

/* Keeps info in the worker's own struct: the source frees its own once on_info returns. */
static int on_info(void *ctx, const cf_repo_info *info, cf_err *err)
{
    (void)err;
    copy_ctx *c = ctx;
    memcpy(c->info, info, sizeof *info);
    for (size_t i = 0; i < c->info->nmeta; i++) {
        c->info->meta[i].name = c->info->buf + (info->meta[i].name - info->buf);
        c->info->meta[i].value = c->info->buf + (info->meta[i].value - info->buf);
    }
    c->have_info = 1;
    return 0;
}

/* The destination's put options for the object, from what the source told and its first n
 * bytes (head). */
static cf_repo_put_opts put_opts(copy_ctx *c, const void *head, size_t n)
{
    run *r = c->r;
    cf_repo_put_opts o = cf_repo_opts_of_info(c->info);
    const char *type = c->info->content_type;
    /* A directory answers application/octet-stream for a file with no stored type. */
    int generic = !*type || !strcmp(type, "application/octet-stream") || !strcmp(type, "binary/octet-stream");
    o.content_type = *type ? type : NULL;
    if (generic && r->sk == CF_SIDE_DIR && r->dk == CF_SIDE_S3) {
        /* An upload: the type from the bytes and the name. */
        cf_ctype_detect(c->ctype, c->e->key, head, n < HEAD_BYTES ? n : HEAD_BYTES, c->content_type,
                        sizeof c->content_type);
        o.content_type = c->content_type;
    } else if (generic && r->sk == CF_SIDE_DIR) {
        o.content_type = NULL; /* directory to directory: store none where none was */
    }
    if (r->dk == CF_SIDE_DIR) {
        o.mtime = c->e->mtime;
        o.no_sync = 1; /* one cf_repo_sync at the end */
        o.mode = 0666; /* a mirror's files are ordinary files: the umask decides */
    }
    if (r->sk == CF_SIDE_DIR && r->dk == CF_SIDE_S3) {
        /* The file's mtime, for information (S3 keeps its own LastModified); replaces a stored one. */
        size_t k = 0;
        for (size_t i = 0; i < c->info->nmeta && k < CF_REPO_META_FIELDS - 1; i++)
            if (strcmp(c->info->meta[i].name, "mtime") != 0)
                c->meta[k++] = c->info->meta[i];
        snprintf(c->mtime_text, sizeof c->mtime_text, "%lld", (long long)c->e->mtime);
        c->meta[k++] = (cf_repo_meta){"mtime", c->mtime_text};
        o.meta = c->meta;
        o.nmeta = k;
    }
    return o;
}

static int begin_writer(copy_ctx *c, const void *head, size_t n, cf_err *err)
{
    run *r = c->r;
    cf_repo_put_opts o = put_opts(c, head, n);
    int rc = cf_repo_writer_begin_opts(r->dst->repo, c->e->key, c->e->size, &o, &c->w, err);
    if (rc == CF_ENOTSUP && r->dk == CF_SIDE_DIR) {
        /* A filesystem without user xattrs (NFS): the bytes and mtime matter, the rest is dropped. */
        if (!atomic_exchange(&r->meta_dropped, 1))
            cf_log(r->o->log, CF_LOG_WARN,
                   "the destination keeps no extended attributes: content types and metadata are not "
                   "stored there",
                   "destination", side_name(r->dst), NULL);
        cf_repo_put_opts bare = {.mtime = o.mtime, .no_sync = o.no_sync, .mode = o.mode};
        rc = cf_repo_writer_begin_opts(r->dst->repo, c->e->key, c->e->size, &bare, &c->w, err);
    }
    return rc;
}

static int on_data(void *ctx, const void *p, size_t n, cf_err *err)
{
    copy_ctx *c = ctx;
    int rc = c->w ? 0 : begin_writer(c, p, n, err);
    if (!rc)
        rc = cf_repo_writer_write(c->w, p, n, err);
    if (!rc)
        atomic_fetch_add(&c->r->bytes_done, n);
    return rc;
}

static int stream_copy(copy_ctx *c, cf_err *err)
{
    run *r = c->r;
    c->w = NULL;
    c->have_info = 0;
    uint64_t before = atomic_load(&r->bytes_done);
    int rc = cf_repo_read(r->src->repo, c->e->key, c->e->size, on_info, on_data, c, err);
    if (!rc && !c->w)
        rc = begin_writer(c, "", 0, err); /* an empty object */
    if (!rc) {
        cf_repo_writer *w = c->w;
        c->w = NULL;
        rc = cf_repo_writer_commit(w, err);
    }
    if (rc) {
        cf_repo_writer_abort(c->w);
        c->w = NULL;
        /* The progress counts what is in place, not what was written and thrown away. */
        uint64_t now = atomic_load(&r->bytes_done);
        if (now > before)
            atomic_fetch_sub(&r->bytes_done, now - before);
    }
    return rc;
}

/* Opens the directory of rel (its path up to the last '/') under the directory at, one
 * component at a time without following a symbolic link; create: make what is missing. */
static int open_parent(int at, const char *rel, int create, const char **leaf)
{
    char part[PATH_MAX];
    int fd = dup(at);
    const char *seg = rel;
    for (const char *slash; fd >= 0 && (slash = strchr(seg, '/'));) {
        size_t n = (size_t)(slash - seg);
        if (n >= sizeof part) {
            close(fd);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(part, seg, n);
        part[n] = '\0';
        int next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT && create && (mkdirat(fd, part, 0777) == 0 || errno == EEXIST))
            next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        errno = e;
        fd = next;
        seg = slash + 1;
    }
    *leaf = seg;
    return fd;
}

/* Whether link_dest holds the source's entry e the same (the rule of a directory destination), as
 * a regular file reached without following a symbolic link: 1 with its directory open in *from
 * (the caller's to close) and its name in *leaf, else 0. */
static int link_source(const run *r, const cf_plan_entry *e, int *from, const char **leaf)
{
    int root = open(r->o->link_dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return 0;
    int fd = open_parent(root, e->key, 0, leaf);
    close(root);
    if (fd < 0)
        return 0;
    struct stat st;
    if (fstatat(fd, *leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
        cf_plan_entry old = {e->key, (uint64_t)st.st_size, (int64_t)st.st_mtime, "", 0};
        if (cf_plan_same(r->sk, CF_SIDE_DIR, e, &old)) {
            *from = fd;
            return 1;
        }
    }
    close(fd);
    return 0;
}

/* link_dest: a file there that is the same as the source's is hard-linked into the destination
 * instead of copied. 1 when linked, 0 when not applicable (no such file, not the same), or a
 * failure code. */
static int try_link(copy_ctx *c, cf_err *err)
{
    run *r = c->r;
    const char *leaf_from, *leaf_to;
    int from;
    if (!link_source(r, c->e, &from, &leaf_from))
        return 0;
    int rc;
    int to_root = open(r->dst->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int to = to_root >= 0 ? open_parent(to_root, c->e->key, 1, &leaf_to) : -1;
    if (to_root >= 0)
        close(to_root);
    char tmp[NAME_MAX + 1];
    unsigned char rnd[8];
    cf_random_bytes(rnd, sizeof rnd);
    snprintf(tmp, sizeof tmp, ".link.tmp-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5], rnd[6], rnd[7]);
    /* Linked under a temporary name and renamed: the name takes the file in one step. */
    if (to < 0 || linkat(from, leaf_from, to, tmp, 0) != 0)
        rc = cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot link '%s' from '%s'", c->e->key,
                        r->o->link_dest);
    else if (renameat(to, tmp, to, leaf_to) != 0) {
        rc = cf_err_sys(err, cf_err_from_errno(errno), errno, "cannot link '%s' into place", c->e->key);
        unlinkat(to, tmp, 0);
    } else {
        rc = 1;
    }
    if (to >= 0)
        close(to);
    close(from);
    return rc;
}

static void copy_item(copy_ctx *c, size_t idx)
{
    run *r = c->r;
    const cf_plan_item *it = &r->plan.v[idx];
    item_result *res = &r->results[idx];
    cf_err err;
    cf_err_clear(&err);
    c->e = it->src;
    int rc = CF_ENOTSUP;
    if (r->sk == CF_SIDE_S3 && r->dk == CF_SIDE_S3 && !atomic_load(&r->no_server_copy)) {
        rc = cf_repo_copy_from(r->dst->repo, c->e->key, r->src->repo, c->e->key, NULL, &err);
        if (rc == CF_ENOTSUP)
            atomic_store(&r->no_server_copy, 1);
        else if (!rc)
            atomic_fetch_add(&r->bytes_done, c->e->size);
    }
    if (rc == CF_ENOTSUP && r->o->link_dest && r->dst->dir) {
        cf_err_clear(&err);
        int linked = try_link(c, &err);
        if (linked == 1) {
            res->linked = 1;
            rc = 0;
        } else if (linked < 0) {
            rc = linked;
        }
    }
    if (rc == CF_ENOTSUP) {
        cf_err_clear(&err);
        int large = c->e->size > LARGE_OBJECT;
        if (large) {
            pthread_mutex_lock(&r->mu);
            while (r->large_streams >= LARGE_AT_ONCE)
                pthread_cond_wait(&r->cv, &r->mu);
            r->large_streams++;
            pthread_mutex_unlock(&r->mu);
        }
        rc = stream_copy(c, &err);
        if (large) {
            pthread_mutex_lock(&r->mu);
            r->large_streams--;
            pthread_cond_broadcast(&r->cv);
            pthread_mutex_unlock(&r->mu);
        }
    }
    res->rc = rc;
    if (rc && !(res->why = strdup(err.msg[0] ? err.msg : cf_strerror(rc))))
        res->rc = CF_ENOMEM;
    atomic_fetch_add(&r->files_done, 1);
}

/* A worker's copy_ctx. One that could not be made whole keeps its failure (rc, err) and fails
 * each item it takes with it: the others go on. */
typedef struct worker {
    copy_ctx c;
    int rc;
    cf_err err;
} worker;

static int worker_start(void *ctx, void **state, cf_err *err)
{
    (void)err;
    run *r = ctx;
    worker *w = calloc(1, sizeof *w);
    *state = w;
    if (!w)
        return 0; /* worker_item fails each item it takes */
    w->c.r = r;
    cf_err_clear(&w->err);
    w->rc =
        (w->c.info = malloc(sizeof *w->c.info)) ? 0 : cf_err_set(&w->err, CF_ENOMEM, "mirror: out of memory");
    /* Only an upload from a directory detects types (one detector per thread: not shareable). */
    if (!w->rc && r->sk == CF_SIDE_DIR && r->dk == CF_SIDE_S3 &&
        (w->rc = cf_ctype_open(&w->c.ctype, &w->err)))
        w->c.ctype = NULL;
    return 0;
}

static int worker_item(void *ctx, void *state, size_t i, cf_err *err)
{
    (void)err;
    run *r = ctx;
    worker *w = state;
    if (w && !w->rc) {
        copy_item(&w->c, r->copies[i]);
        return 0;
    }
    item_result *res = &r->results[r->copies[i]];
    res->rc = w ? w->rc : CF_ENOMEM;
    res->why = strdup(w && w->err.msg[0] ? w->err.msg : cf_strerror(res->rc));
    atomic_fetch_add(&r->files_done, 1);
    return 0;
}

static void worker_stop(void *ctx, void *state)
{
    (void)ctx;
    worker *w = state;
    if (!w)
        return;
    if (w->c.ctype)
        cf_ctype_close(w->c.ctype);
    free(w->c.info);
    free(w);
}

typedef struct list_ctx {
    cf_plan_list *l;
} list_ctx;

static int keep(void *ctx, const cf_repo_entry *e)
{
    list_ctx *lc = ctx;
    return cf_plan_list_add(lc->l, e);
}

static int list_side(const cf_mirror_side *s, cf_plan_list *l, cf_err *err)
{
    list_ctx lc = {l};
    int flags = s->dir ? CF_REPO_LIST_HIDDEN | CF_REPO_LIST_SPECIAL : 0;
    int rc = cf_repo_list_flags(s->repo, "", flags, keep, &lc, err);
    if (rc == CF_ENOMEM)
        cf_err_set(err, rc, "listing '%s': out of memory", side_name(s));
    if (!rc)
        cf_plan_list_sort(l);
    return rc;
}

/* Takes the directory destination for this run alone (an advisory lock on the directory itself,
 * so that nothing is added to it), then removes what interrupted runs left: their temporary
 * files, all of them when the lock is held (no other run can be writing), else only those older
 * than this run (a filesystem without locks: another run's file in flight stays). */
static int lock_destination(const cf_mirror_side *dst, int64_t started, int *lock_fd, cf_err *err)
{
    int fd = open(dst->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int locked = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (fd >= 0 && !locked && errno == EWOULDBLOCK) {
        close(fd);
        return cf_err_set(err, CF_EAGAIN, "'%s': another coffer mirror is writing to it", side_name(dst));
    }
    if (!locked && fd >= 0) {
        close(fd);
        fd = -1;
    }
    *lock_fd = fd;
    size_t swept = 0;
    cf_err ignore;
    cf_repo_sweep(dst->repo, "", locked ? INT64_MAX : started, &swept, &ignore);
    return 0;
}

static void report_progress(run *r)
{
    if (!r->o->progress)
        return;
    cf_mirror_progress p = {atomic_load(&r->files_done), r->files_total, atomic_load(&r->bytes_done),
                            r->bytes_total};
    r->o->progress(r->o->progress_ctx, &p);
}

static void tick(void *ctx)
{
    report_progress(ctx);
}

/* Runs the copies on the workers, reporting progress meanwhile. */
static int run_copies(run *r, cf_err *err)
{
    int jobs = r->o->jobs > 0 ? r->o->jobs : JOBS_DEFAULT;
    cf_pool_job job = {.n = r->ncopies,
                       .threads = jobs > JOBS_MAX ? JOBS_MAX : jobs,
                       .ctx = r,
                       .start = worker_start,
                       .item = worker_item,
                       .stop = worker_stop,
                       .tick = tick,
                       .tick_ms = PROGRESS_EVERY_MS};
    cf_err why;
    cf_err_clear(&why);
    int rc = cf_pool_run(&job, &why);
    return rc ? cf_err_set(err, rc, "mirror: %s", why.msg) : 0;
}

/* Removes the directories above key that its removal left empty, deepest first, so that a file
 * may take a directory's name. Each is reached from the destination's root (root, an open
 * descriptor) one component at a time without following a symbolic link, and removed by name
 * (a link there is not a directory and stays); the root itself is never removed. */
static void prune_dirs(int root, const char *key)
{
    char rel[PATH_MAX];
    if ((size_t)snprintf(rel, sizeof rel, "%s", key) >= sizeof rel)
        return;
    for (char *slash; (slash = strrchr(rel, '/'));) {
        *slash = '\0';
        const char *leaf;
        int parent = open_parent(root, rel, 0, &leaf);
        if (parent < 0)
            return;
        int removed = unlinkat(parent, leaf, AT_REMOVEDIR) == 0;
        close(parent);
        if (!removed)
            return; /* not empty (or not ours to remove): the ones above are not empty either */
    }
}

static void fail_item(run *r, size_t idx, int rc, const char *why)
{
    r->results[idx].rc = rc;
    r->results[idx].why = strdup(why);
}

#define DELETE_BATCH 1000

/* The deletes whose in_the_way is in_the_way. */
static void run_deletes(run *r, int in_the_way)
{
    const char *keys[DELETE_BATCH];
    size_t idx[DELETE_BATCH], n = 0;
    int root = r->dst->dir ? open(r->dst->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    for (size_t i = 0; i <= r->plan.n; i++) {
        if (i < r->plan.n && r->plan.v[i].action == CF_PLAN_DELETE &&
            r->results[i].in_the_way == in_the_way) {
            keys[n] = r->plan.v[i].dst->key;
            idx[n++] = i;
        }
        if (!n || (n < DELETE_BATCH && i < r->plan.n))
            continue;
        cf_err err;
        cf_err_clear(&err);
        if (r->dk == CF_SIDE_S3 && n > 1 && cf_repo_delete_many(r->dst->repo, keys, n, &err) == 0) {
            atomic_fetch_add(&r->files_done, n);
            n = 0;
            continue;
        }
        /* One by one: a directory, or a batch that failed (to name each key that fails). */
        for (size_t k = 0; k < n; k++) {
            cf_err_clear(&err);
            /* A directory's removals (and the emptied directories after them) are made durable
             * by the run's one cf_repo_sync, not one fsync each. */
            int rc = cf_repo_delete_flags(r->dst->repo, keys[k],
                                          r->dk == CF_SIDE_DIR ? CF_REPO_DELETE_NO_SYNC : 0, &err);
            if (rc)
                fail_item(r, idx[k], rc, err.msg[0] ? err.msg : cf_strerror(rc));
            else
                r->ndeleted++;
            if (!rc && root >= 0)
                prune_dirs(root, keys[k]);
            atomic_fetch_add(&r->files_done, 1);
        }
        n = 0;
    }
    if (root >= 0)
        close(root);
}

static const char *item_key(const cf_plan_item *it)
{
    return it->src ? it->src->key : it->dst->key;
}

/* The first item of the plan (in key order) whose key is not below key. */
static size_t plan_lower_bound(const cf_plan *p, const char *key)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(item_key(&p->v[mid]), key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A directory destination cannot hold a file and a directory of one name, so a delete is in the
 * way of a copy when the copy's key is a directory above the deleted file (x/y deleted, x copied:
 * x/ must be emptied and removed first), or when the deleted file is a directory the copy needs
 * (x deleted, x/y copied). Those deletes run before the copies; the others after, so that a file
 * renamed in the source is never missing from the destination meanwhile. */
static void mark_in_the_way(run *r)
{
    const cf_plan *p = &r->plan;
    char name[PATH_MAX + 1];
    for (size_t i = 0; i < p->n; i++) {
        const char *d = p->v[i].dst ? p->v[i].dst->key : "";
        size_t dl = strlen(d);
        if (p->v[i].action != CF_PLAN_DELETE || dl >= PATH_MAX)
            continue;
        int in_the_way = 0;
        for (const char *slash = strchr(d, '/'); slash && !in_the_way; slash = strchr(slash + 1, '/')) {
            memcpy(name, d, (size_t)(slash - d));
            name[slash - d] = '\0';
            size_t at = plan_lower_bound(p, name);
            in_the_way = at < p->n && p->v[at].action == CF_PLAN_COPY && !strcmp(item_key(&p->v[at]), name);
        }
        /* Below d/ (a file here) only the source has keys: those it copies need d to be a directory. */
        memcpy(name, d, dl);
        memcpy(name + dl, "/", 2);
        for (size_t at = plan_lower_bound(p, name); !in_the_way && at < p->n; at++) {
            if (strncmp(item_key(&p->v[at]), name, dl + 1))
                break;
            in_the_way = p->v[at].action == CF_PLAN_COPY;
        }
        r->results[i].in_the_way = in_the_way;
    }
}

static int add_failure(cf_mirror_summary *s, const char *key, const char *why)
{
    cf_mirror_failure *f = realloc(s->failures, (s->nfailures + 1) * sizeof *f);
    if (!f)
        return CF_ENOMEM;
    s->failures = f;
    f[s->nfailures].key = strdup(key);
    f[s->nfailures].why = strdup(why ? why : "out of memory");
    if (!f[s->nfailures].key || !f[s->nfailures].why) {
        free(f[s->nfailures].key);
        free(f[s->nfailures].why);
        return CF_ENOMEM;
    }
    s->nfailures++;
    return 0;
}

/* The counts and failures of the plan as carried out (or, dry run, as planned). */
static int summarize(run *r, cf_mirror_summary *out)
{
    int rc = 0;
    for (size_t i = 0; i < r->plan.n; i++) {
        const cf_plan_item *it = &r->plan.v[i];
        const item_result *res = &r->results[i];
        const char *key = it->src ? it->src->key : it->dst->key;
        if (it->action == CF_PLAN_SKIP) {
            out->files_skipped++;
            out->bytes_skipped += it->src->size;
        } else if (it->action == CF_PLAN_LEAVE) {
            cf_log(r->o->log, CF_LOG_WARN, "left out", "key", key, "why", it->why, NULL);
        } else if (it->action == CF_PLAN_REFUSE || res->rc) {
            out->files_failed++;
            if (!rc)
                rc = add_failure(out, key, it->action == CF_PLAN_REFUSE ? it->why : res->why);
        } else if (it->action == CF_PLAN_DELETE) {
            out->files_deleted++;
        } else if (res->linked) {
            out->files_linked++;
            out->bytes_linked += it->src->size;
        } else {
            out->files_copied++;
            out->bytes_copied += it->src->size;
        }
    }
    return rc;
}

int cf_mirror_run(const cf_mirror_side *src, const cf_mirror_side *dst, const cf_mirror_opts *o,
                  cf_mirror_summary *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    double started = cf_clock_mono();
    int64_t wall_start = (int64_t)cf_clock_now();
    run r = {.src = src, .dst = dst, .o = o};
    r.sk = src->dir ? CF_SIDE_DIR : CF_SIDE_S3;
    r.dk = dst->dir ? CF_SIDE_DIR : CF_SIDE_S3;
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    cf_plan_list sl = {0}, dl = {0};
    int rc = list_side(src, &sl, err);
    if (!rc)
        rc = list_side(dst, &dl, err);
    if (!rc)
        rc = cf_plan_build(&sl, r.sk, &dl, r.dk, o->exclude, o->nexclude, o->delete_extra, &r.plan, err);
    if (!rc && r.plan.n && !(r.results = calloc(r.plan.n, sizeof *r.results)))
        rc = cf_err_set(err, CF_ENOMEM, "mirror: out of memory");
    if (!rc && r.plan.n && !(r.copies = malloc(r.plan.n * sizeof *r.copies)))
        rc = cf_err_set(err, CF_ENOMEM, "mirror: out of memory");
    for (size_t i = 0; !rc && i < r.plan.n; i++) {
        if (r.plan.v[i].action == CF_PLAN_COPY) {
            r.copies[r.ncopies++] = i;
            r.bytes_total += r.plan.v[i].src->size;
        }
        r.files_total += r.plan.v[i].action == CF_PLAN_COPY || r.plan.v[i].action == CF_PLAN_DELETE;
    }
    for (size_t i = 0; !rc && o->dry_run && i < r.plan.n; i++) {
        const cf_plan_item *it = &r.plan.v[i];
        int from;
        const char *leaf;
        /* What the real run would link, the dry run counts as linked. */
        if (it->action == CF_PLAN_COPY && o->link_dest && dst->dir &&
            link_source(&r, it->src, &from, &leaf)) {
            close(from);
            r.results[i].linked = 1;
        }
        if (!o->planned)
            continue;
        if (it->action == CF_PLAN_COPY)
            o->planned(o->planned_ctx, r.results[i].linked ? "link" : "copy", it->src->key, it->src->size);
        else if (it->action == CF_PLAN_DELETE)
            o->planned(o->planned_ctx, "delete", it->dst->key, it->dst->size);
    }
    int lock_fd = -1;
    if (!rc && !o->dry_run && r.dk == CF_SIDE_DIR)
        rc = lock_destination(dst, wall_start, &lock_fd, err);
    if (!rc && !o->dry_run) {
        if (r.dk == CF_SIDE_DIR) {
            mark_in_the_way(&r);
            run_deletes(&r, 1);
        }
        rc = run_copies(&r, err);
        if (!rc)
            run_deletes(&r, 0);
        if (!rc && r.dk == CF_SIDE_DIR && (r.ncopies || r.ndeleted) &&
            (rc = cf_repo_sync(dst->repo, err)) != 0)
            rc = CF_EIO; /* nothing copied or deleted can be trusted to be on disk */
        report_progress(&r);
    }
    if (!rc || r.results)
        if (summarize(&r, out) == CF_ENOMEM && !rc)
            rc = cf_err_set(err, CF_ENOMEM, "mirror: out of memory");
    for (size_t i = 0; r.results && i < r.plan.n; i++)
        free(r.results[i].why);
    if (lock_fd >= 0)
        close(lock_fd); /* the lock goes with it */
    free(r.results);
    free(r.copies);
    cf_plan_free(&r.plan);
    cf_plan_list_free(&sl);
    cf_plan_list_free(&dl);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
    out->seconds = cf_clock_mono() - started;
    return rc;
}

void cf_mirror_summary_free(cf_mirror_summary *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nfailures; i++) {
        free(s->failures[i].key);
        free(s->failures[i].why);
    }
    free(s->failures);
    s->failures = NULL;
    s->nfailures = 0;
}
