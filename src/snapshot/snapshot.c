#include "snapshot/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "archive/tar.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/grow.h"
#include "snapshot/order.h"
#include "snapshot/ref.h"

/* ---- create ---- */

typedef struct create_ctx {
    cf_archive_writer *aw;
    cf_repo_writer *rw;
    const cf_snapshot_create_opts *o;
    uint64_t done, total;
    cf_manifest_skipped *skipped;
    size_t nskipped, cap_skipped;
} create_ctx;

static int to_repo(void *ctx, const void *p, size_t n, cf_err *err)
{
    return cf_repo_writer_write(((create_ctx *)ctx)->rw, p, n, err);
}

static int to_archive(void *ctx, const void *p, size_t n, cf_err *err)
{
    create_ctx *c = ctx;
    int rc = cf_archive_writer_write(c->aw, p, n, err);
    c->done += n;
    if (!rc && c->o->progress)
        c->o->progress(c->o->cb_ctx, c->done, c->total);
    return rc;
}

static int note_skipped(void *ctx, const char *path, const char *why)
{
    create_ctx *c = ctx;
    cf_manifest_skipped *v = cf_grow(c->skipped, &c->cap_skipped, c->nskipped, sizeof *v, 16);
    if (!v)
        return CF_ENOMEM;
    c->skipped = v;
    cf_manifest_skipped *k = &c->skipped[c->nskipped];
    if (!(k->path = strdup(path)) || !(k->error = strdup(why))) {
        free(k->path);
        return CF_ENOMEM;
    }
    c->nskipped++;
    if (c->o->skipped)
        c->o->skipped(c->o->cb_ctx, path, why);
    return 0;
}

static int copy_fd(create_ctx *c, int fd, const char *what, cf_err *err)
{
    char *buf = malloc(1 << 20);
    if (!buf)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = cf_err_sys(err, CF_EIO, errno, "cannot read %s", what);
            break;
        }
        if (n == 0 || (rc = to_archive(c, buf, (size_t)n, err)))
            break;
    }
    free(buf);
    return rc;
}

static int copy_read(create_ctx *c, cf_err *err)
{
    char *buf = malloc(1 << 20);
    if (!buf)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    int rc = 0;
    for (;;) {
        size_t got = 0;
        if ((rc = c->o->read(c->o->read_ctx, buf, 1 << 20, &got, err)) || got == 0 ||
            (rc = to_archive(c, buf, got, err)))
            break;
    }
    free(buf);
    return rc;
}

/* Runs command with its standard output into the archive; a nonzero exit is an error, so that a
 * failed pg_dump never becomes a snapshot. */
static int copy_command(create_ctx *c, const char *command, cf_err *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return cf_err_sys(err, CF_EIO, errno, "cannot start '%s'", command);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return cf_err_sys(err, CF_EIO, errno, "cannot start '%s'", command);
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    int rc = copy_fd(c, fds[0], "the command's output", err);
    close(fds[0]); /* a command still writing gets SIGPIPE rather than blocking forever */
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!rc && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        rc = cf_err_set(err, CF_EIO, "command '%s' %s %d; no snapshot was created", command,
                        WIFEXITED(status) ? "exited with status" : "was killed by signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return rc;
}

static int note_taken(void *ctx, const cf_repo_entry *e)
{
    (void)e;
    *(int *)ctx = 1;
    return 0;
}

/* An id names its second and 4 random hex digits: it is drawn again while any object of ns
 * (a snapshot, or an archive whose manifest is still to come) starts with it, so that a snapshot
 * made in the same second as another never takes its archive or manifest. What this cannot see:
 * creates into one namespace that run at the same time (their archives appear only whole), and
 * keys without the right to list; those rely on the 1 in 65,536 of the draw. */
static int unused_id(cf_repo *repo, const char *ns, const cf_clock *clock, time_t now,
                     char id[CF_SNAPSHOT_ID_LEN + 1], cf_err *err)
{
    for (int attempt = 0; attempt < 64; attempt++) {
        int rc = cf_snapshot_id_new(clock, now, id, err);
        char prefix[512];
        snprintf(prefix, sizeof prefix, "%s/%s", ns, id);
        int taken = 0;
        if (!rc)
            rc = cf_repo_list(repo, prefix, note_taken, &taken, err);
        if (rc == CF_EDENIED)
            return 0; /* a key that may write but not list (an appliance's) keeps the first draw */
        if (rc || !taken)
            return rc;
    }
    return cf_err_set(err, CF_EEXISTS, "no unused snapshot id left in '%s' for this second", ns);
}

/* One worker per core, as many as fit the default memory budget: the chunk writer holds
 * (2N + 1) x 2 x chunk bytes, and the whole create must stay under 256 MiB by default
 * (docs/SNAPSHOTS.md), the upload's buffers included. */
#define CREATE_COMPRESS_BUDGET ((size_t)128 << 20)

static unsigned default_compress_threads(size_t chunk_size)
{
    size_t chunk = chunk_size ? chunk_size : CF_ARCHIVE_DEFAULT_CHUNK;
    size_t slots = CREATE_COMPRESS_BUDGET / (2 * chunk);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t fit = slots >= 3 ? (slots - 1) / 2 : 1;
    return (unsigned)(cores < 1 ? 1 : (size_t)cores < fit ? (size_t)cores : fit);
}

int cf_snapshot_create(cf_repo *repo, const char *ns, const cf_snapshot_create_opts *o,
                       char id_out[CF_SNAPSHOT_ID_LEN + 1], cf_snapshot_stats *stats, cf_err *err)
{
    int stream = o->command || o->read || strcmp(o->source, "-") == 0;
    struct stat st;
    if (!stream && (stat(o->source, &st) != 0 || !S_ISDIR(st.st_mode)))
        return cf_err_set(err, CF_EINVAL, "source '%s' is not a directory (use - for standard input)",
                          o->source);
    uint64_t total = 0;
    cf_tar_write_opts measure = {o->exclude, o->nexclude, o->one_file_system, 1, NULL, NULL};
    uint64_t entries = 0;
    int rc = stream ? 0 : cf_tar_measure(o->source, &measure, &total, &entries, err);
    if (rc)
        return rc;
    int64_t now_ns = cf_clock_time_ns(o->clock);
    time_t now = (time_t)(now_ns / 1000000000);
    rc = unused_id(repo, ns, o->clock, now, id_out, err);
    if (rc)
        return rc;
    cf_archive_key akey;
    cf_manifest_encryption enc = {0};
    int encrypted = o->secret && (o->secret->key || o->secret->passphrase);
    if (encrypted) {
        cf_master_key from_pass;
        const cf_master_key *master = o->secret->key;
        if (!master) {
            /* A passphrase: its own scrypt salt per snapshot, recorded in the manifest. */
            enc.passphrase = 1;
            if (cf_random_bytes(enc.scrypt.salt, sizeof enc.scrypt.salt) != 0)
                return cf_err_set(err, CF_EIO, "no randomness for the passphrase salt");
            if ((rc = cf_master_key_from_passphrase(o->secret->passphrase, o->secret->passphrase_len,
                                                    &enc.scrypt, &from_pass, err)))
                return rc;
            master = &from_pass;
        }
        if (cf_random_bytes(enc.salt, sizeof enc.salt) != 0)
            rc = cf_err_set(err, CF_EIO, "no randomness for the snapshot key");
        if (!rc)
            rc = cf_archive_key_derive(master, enc.salt, &akey, err);
        snprintf(enc.key_id, sizeof enc.key_id, "%s", master->key_id);
        if (master == &from_pass)
            cf_master_key_cleanup(&from_pass);
        if (rc)
            return rc;
    }
    char akey_name[512], mkey_name[512], host[256] = "";
    snprintf(akey_name, sizeof akey_name, "%s/%s%s%s", ns, id_out, cf_codec_suffix(o->codec),
             encrypted ? ".enc" : "");
    snprintf(mkey_name, sizeof mkey_name, "%s/%s.json", ns, id_out);
    gethostname(host, sizeof host - 1);

    create_ctx c = {.o = o, .total = stream ? o->expected_size : total};
    cf_tar_write_opts to = {o->exclude,          o->nexclude,  o->one_file_system,
                            o->allow_unreadable, note_skipped, &c};
    cf_archive_writer_opts wo = {{o->codec, o->level, encrypted ? &akey : NULL},
                                 o->chunk_size,
                                 o->threads ? o->threads : default_compress_threads(o->chunk_size)};
    cf_archive_result res;
    uint64_t files = 0;
    /* The raw size bounds the archive's, but for a tar header per entry and the codec's frames. */
    uint64_t hint = stream ? o->expected_size : total + entries * 1024;
    rc = cf_repo_writer_begin(repo, akey_name, hint + hint / 64, &c.rw, err);
    if (!rc)
        rc = cf_archive_writer_new(&wo, to_repo, &c, &c.aw, err);
    if (!rc)
        rc = o->command ? copy_command(&c, o->command, err)
             : o->read  ? copy_read(&c, err)
             : stream   ? copy_fd(&c, 0, "standard input", err)
                        : cf_tar_write_dir(o->source, &to, to_archive, &c, &files, err);
    if (!rc)
        rc = cf_archive_writer_finish(c.aw, &res, err);
    if (!rc) {
        rc = cf_repo_writer_commit(c.rw, err);
        c.rw = NULL;
    }
    char *json = NULL;
    size_t jlen = 0;
    if (!rc) {
        cf_manifest m = {0};
        m.format = CF_MANIFEST_FORMAT;
        memcpy(m.id, id_out, sizeof m.id);
        m.ns = (char *)ns;
        m.created = now;
        m.created_ns = (int32_t)(now_ns % 1000000000);
        m.source.kind = stream ? CF_SOURCE_STREAM : CF_SOURCE_DIR;
        m.source.host = host;
        char abs[PATH_MAX];
        m.source.path = stream ? NULL : realpath(o->source, abs) ? abs : (char *)o->source;
        m.source.command = (char *)o->command;
        m.source.exclude = (char **)o->exclude;
        m.source.nexclude = o->nexclude;
        m.source.one_file_system = o->one_file_system;
        m.source.skipped = c.skipped;
        m.source.nskipped = c.nskipped;
        m.labels = (cf_label *)o->labels;
        m.nlabels = o->nlabels;
        m.archive.key = akey_name;
        m.archive.compression = o->codec;
        m.archive.level = o->level;
        m.archive.size = res.size;
        m.archive.raw_size = res.raw_size;
        m.archive.files = files;
        memcpy(m.archive.sha256, res.sha256, sizeof m.archive.sha256);
        m.chunks = (cf_archive_chunk *)res.chunks;
        m.nchunks = res.nchunks;
        m.encryption = encrypted ? &enc : NULL;
        m.tool = "coffer " COFFER_VERSION;
        rc = cf_manifest_write(&m, &json, &jlen, err);
        if (stats)
            *stats = (cf_snapshot_stats){res.raw_size, res.size, files, c.nskipped};
    }
    /* The manifest last: from this write on, the snapshot exists. */
    cf_repo_writer *mw = NULL;
    if (!rc)
        rc = cf_repo_writer_begin(repo, mkey_name, jlen, &mw, err);
    if (!rc)
        rc = cf_repo_writer_write(mw, json, jlen, err);
    if (!rc) {
        rc = cf_repo_writer_commit(mw, err);
        mw = NULL;
    }
    cf_repo_writer_abort(mw);
    cf_archive_writer_free(c.aw); /* first: its output thread may still be writing to c.rw */
    cf_repo_writer_abort(c.rw);
    for (size_t i = 0; i < c.nskipped; i++) {
        free(c.skipped[i].path);
        free(c.skipped[i].error);
    }
    free(c.skipped);
    free(json);
    if (encrypted)
        cf_archive_key_cleanup(&akey);
    return rc;
}

/* ---- list ---- */

typedef struct names {
    char **v;
    size_t n, cap;
} names;

static int names_add(names *m, const char *key)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 32;
        char **v = realloc(m->v, m->cap * sizeof *v);
        if (!v)
            return CF_ENOMEM;
        m->v = v;
    }
    return (m->v[m->n] = strdup(key)) ? (m->n++, 0) : CF_ENOMEM;
}

static int is_manifest(const char *key)
{
    size_t l = strlen(key);
    return l >= 5 && strcmp(key + l - 5, ".json") == 0;
}

/* Manifests are read whole into memory, so one from anywhere is held to a size. */
#define MANIFEST_MAX ((size_t)64 << 20)

static int append_manifest(void *ctx, const void *p, size_t n, cf_err *err)
{
    int rc = cf_buf_append(ctx, p, n);
    if (rc == CF_ETOOBIG)
        return cf_err_set(err, CF_ECORRUPT,
                          "the manifest is larger than %zu MiB; no manifest coffer writes is",
                          MANIFEST_MAX >> 20);
    return rc ? cf_err_set(err, rc, "out of memory reading the manifest") : 0;
}

static int load_manifest(cf_repo *repo, const char *key, cf_manifest *m, cf_err *err)
{
    cf_buf b;
    cf_buf_init(&b, MANIFEST_MAX);
    int rc = cf_repo_get(repo, key, 0, UINT64_MAX, append_manifest, &b, err);
    if (!rc) {
        rc = cf_manifest_parse(b.data ? b.data : "", b.len, m, err);
        if (rc) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            rc = cf_err_set(err, rc, "manifest '%s' in %s: %s", key, cf_repo_name(repo), why);
        }
    }
    cf_buf_cleanup(&b);
    return rc;
}

int cf_snapshot_load_manifest(cf_repo *repo, const char *key, cf_manifest *m, cf_err *err)
{
    return load_manifest(repo, key, m, err);
}

/* "ns/20261122T153000Z-7f3a.tar.zst.enc" → its id, or "" when the name holds none. */
static void id_of(const char *key, const char *ns, char id[CF_SNAPSHOT_ID_LEN + 1])
{
    size_t nl = strlen(ns);
    id[0] = '\0';
    if (strncmp(key, ns, nl) == 0 && key[nl] == '/' && strlen(key + nl + 1) >= CF_SNAPSHOT_ID_LEN) {
        memcpy(id, key + nl + 1, CF_SNAPSHOT_ID_LEN);
        id[CF_SNAPSHOT_ID_LEN] = '\0';
        if (!cf_snapshot_id_valid(id))
            id[0] = '\0';
    }
}

/* ---- order ---- */

/* The snapshots of a namespace, sorted by cf_snapshot_key_cmp (oldest first). */
typedef struct ordered {
    const char *ns;
    cf_snapshot_key *v;
    size_t n, cap;
    cf_repo_list_fn other; /* may be NULL: told every entry listed */
    void *other_ctx;
} ordered;

static cf_snapshot_key *grow_keys(ordered *o)
{
    size_t cap = o->cap ? 2 * o->cap : 32;
    cf_snapshot_key *v = realloc(o->v, cap * sizeof *v);
    if (v) {
        o->v = v;
        o->cap = cap;
    }
    return v;
}

static int note_snapshot(void *ctx, const cf_repo_entry *e)
{
    ordered *o = ctx;
    int rc = o->other ? o->other(o->other_ctx, e) : 0;
    if (rc || !is_manifest(e->key))
        return rc;
    cf_snapshot_key k = {0};
    id_of(e->key, o->ns, k.id);
    /* ns/ID.json exactly, with an id that names a real instant; other .json files are no snapshot. */
    if (!k.id[0] || strcmp(e->key + strlen(o->ns) + 1 + CF_SNAPSHOT_ID_LEN, ".json") ||
        (k.created = cf_snapshot_id_time(k.id)) < 0)
        return 0;
    if (o->n == o->cap && !grow_keys(o))
        return CF_ENOMEM;
    o->v[o->n++] = k;
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    return cf_snapshot_key_cmp(a, b);
}

/* The fraction of a second that only the manifest records. Its second is the one the id names
 * (cf_manifest_parse holds them to it); a manifest stored under another snapshot's name would
 * sort by one time here and by another in ls. */
static int load_created_ns(cf_repo *repo, const char *ns, cf_snapshot_key *k, cf_err *err)
{
    char mkey[512];
    snprintf(mkey, sizeof mkey, "%s/%s.json", ns, k->id);
    cf_manifest m;
    int rc = load_manifest(repo, mkey, &m, err);
    if (rc)
        return rc;
    if (strcmp(m.id, k->id) != 0)
        rc = cf_err_set(err, CF_ECORRUPT, "manifest '%s' in %s names snapshot %s", mkey, cf_repo_name(repo),
                        m.id);
    k->created_ns = m.created_ns;
    cf_manifest_cleanup(&m);
    return rc;
}

/* Lists ns into o, oldest first. The names give each snapshot's second; only snapshots that
 * share their second with another have their manifest read, for the fraction, so that finding
 * the newest of many stays one listing. newest_only: only the newest second's are told apart
 * (all that @latest needs); the others keep the order of their ids within a second. */
static int order_snapshots(cf_repo *repo, const char *ns, int newest_only, ordered *o, cf_err *err)
{
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s/", ns);
    int rc = cf_repo_list(repo, prefix, note_snapshot, o, err);
    if (rc == CF_ENOMEM)
        rc = cf_err_set(err, rc, "out of memory listing '%s'", ns);
    if (rc)
        return rc;
    if (o->n) /* qsort's array must not be NULL, even when empty */
        qsort(o->v, o->n, sizeof *o->v, key_cmp);
    for (size_t i = 0, j; !rc && i < o->n; i = j) {
        for (j = i + 1; j < o->n && o->v[j].created == o->v[i].created; j++)
            ;
        if (j - i < 2 || (newest_only && j < o->n))
            continue;
        for (size_t k = i; !rc && k < j; k++)
            if ((rc = load_created_ns(repo, ns, &o->v[k], err)) == CF_ENOTFOUND) {
                /* Removed since the listing (a prune beside this call): no snapshot any more. */
                o->v[k].created_ns = -1;
                rc = 0;
            }
        qsort(o->v + i, j - i, sizeof *o->v, key_cmp);
    }
    size_t kept = 0;
    for (size_t i = 0; !rc && i < o->n; i++)
        if (o->v[i].created_ns >= 0)
            o->v[kept++] = o->v[i];
    if (!rc)
        o->n = kept;
    return rc;
}

int cf_snapshot_list(cf_repo *repo, const char *ns, cf_snapshot_list_fn fn, void *ctx, cf_err *err)
{
    ordered o = {.ns = ns};
    int rc = order_snapshots(repo, ns, 0, &o, err);
    for (size_t i = 0; !rc && i < o.n; i++) {
        char mkey[512];
        snprintf(mkey, sizeof mkey, "%s/%s.json", ns, o.v[i].id);
        cf_manifest man;
        if ((rc = load_manifest(repo, mkey, &man, err)) == CF_ENOTFOUND) {
            rc = 0; /* removed since the listing: not listed */
            continue;
        }
        if (rc)
            break;
        rc = fn(ctx, &man);
        cf_manifest_cleanup(&man);
    }
    free(o.v);
    return rc;
}

/* ---- restore ---- */

typedef struct archive_stream {
    cf_repo *repo;
    const char *key;
} archive_stream;

static int stream_archive(void *ctx, cf_archive_sink_fn sink, void *sink_ctx, cf_err *err)
{
    archive_stream *a = ctx;
    return cf_repo_stream(a->repo, a->key, sink, sink_ctx, err);
}

/* One decoder per core: decompression is the restore's heaviest stage. */
/* The reader holds 2N + 2 slots of one stored and one raw chunk; restore stays within this
 * (docs/SNAPSHOTS.md, "Memory") whatever the machine. */
#define RESTORE_DECODE_BUDGET ((uint64_t)192 << 20)

static unsigned decode_threads(const cf_manifest *m)
{
    uint64_t chunk = 1;
    for (size_t i = 0; i < m->nchunks; i++) {
        uint64_t c = m->chunks[i].raw_size > m->chunks[i].size ? m->chunks[i].raw_size : m->chunks[i].size;
        chunk = c > chunk ? c : chunk;
    }
    uint64_t slots = RESTORE_DECODE_BUDGET / (2 * chunk), fit = slots >= 4 ? (slots - 2) / 2 : 1;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t cores = n < 1 ? 1 : (uint64_t)n;
    return (unsigned)(cores < fit ? cores : fit);
}

/* Reads what the tar reader left after the end of the tar stream (its zero blocks, padding), so
 * that every chunk and the archive's SHA-256 are checked before a restore counts as done. */
static int read_to_end(cf_archive_reader *rd, cf_err *err)
{
    const void *p;
    size_t n;
    int rc;
    while (!(rc = cf_archive_reader_next(rd, &p, &n, err)) && n)
        ;
    return rc;
}

/* From the names, and the manifests of the newest second only when it holds several. */
int cf_snapshot_latest(cf_repo *repo, const char *ns, char id_out[CF_SNAPSHOT_ID_LEN + 1], cf_err *err)
{
    ordered o = {.ns = ns};
    int rc = order_snapshots(repo, ns, 1, &o, err);
    if (!rc && !o.n)
        rc = cf_err_set(err, CF_ENOTFOUND, "no snapshot of '%s' in %s", ns, cf_repo_name(repo));
    if (!rc)
        memcpy(id_out, o.v[o.n - 1].id, CF_SNAPSHOT_ID_LEN + 1);
    free(o.v);
    return rc;
}

/* *id NULL means the latest snapshot of ns: its id then lives in latest. */
static int resolve_id(cf_repo *repo, const char *ns, const char **id, char latest[CF_SNAPSHOT_ID_LEN + 1],
                      cf_err *err)
{
    if (*id)
        return 0;
    int rc = cf_snapshot_latest(repo, ns, latest, err);
    if (!rc)
        *id = latest;
    return rc;
}

static int dir_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

/* The manifest of ns@id, with a message that names the snapshot when it does not exist. */
static int load_snapshot(cf_repo *repo, const char *ns, const char *id, char mkey[512], cf_manifest *m,
                         cf_err *err)
{
    snprintf(mkey, 512, "%s/%s.json", ns, id);
    int rc = load_manifest(repo, mkey, m, err);
    /* Reworded, not replaced: the S3 answer still tells a missing bucket from a missing id. */
    return rc == CF_ENOTFOUND ? cf_err_reword(err, rc, "no snapshot %s@%s in %s", ns, id, cf_repo_name(repo))
                              : rc;
}

/* The archive key of an encrypted snapshot (nothing to do for a plain one). */
static int snapshot_key(const cf_manifest *m, const cf_snapshot_secret *secret, cf_archive_key *akey,
                        cf_err *err)
{
    if (!m->encryption)
        return 0;
    const cf_manifest_encryption *e = m->encryption;
    if (!secret || (e->passphrase ? !secret->passphrase : !secret->key))
        /* Neutral words: the library's callers give a key or a passphrase in options, the
         * command line in files; each front end adds its own hint. */
        return cf_err_set(err, CF_EAUTH, "snapshot %s is encrypted with a %s; none was given", m->id,
                          e->passphrase ? "passphrase" : "key");
    if (!e->passphrase)
        return cf_archive_key_derive(secret->key, e->salt, akey, err);
    cf_scrypt_params params = e->scrypt;
    cf_master_key master;
    int rc = cf_master_key_from_passphrase(secret->passphrase, secret->passphrase_len, &params, &master, err);
    if (!rc)
        rc = cf_archive_key_derive(&master, e->salt, akey, err);
    cf_master_key_cleanup(&master);
    return rc;
}

static cf_archive_read_opts read_opts(const cf_manifest *m, const cf_archive_key *akey)
{
    cf_archive_read_opts ro = {{m->archive.compression, m->archive.level, m->encryption ? akey : NULL},
                               m->encryption ? m->encryption->key_id : NULL,
                               m->archive.sha256,
                               m->archive.size,
                               m->archive.raw_size};
    return ro;
}

/* Counts what the consumer takes, for progress. */
typedef struct counted_pull {
    cf_archive_reader *rd;
    const cf_snapshot_restore_opts *o;
    uint64_t done, total;
} counted_pull;

static int pull_counted(void *ctx, const void **p, size_t *n, cf_err *err)
{
    counted_pull *c = ctx;
    int rc = cf_archive_reader_next(c->rd, p, n, err);
    c->done += rc ? 0 : *n;
    if (!rc && c->o->progress)
        c->o->progress(c->o->cb_ctx, c->done, c->total);
    return rc;
}

int cf_snapshot_restore(cf_repo *repo, const char *ns, const char *dest, FILE *out,
                        const cf_snapshot_restore_opts *o, char id_out[CF_SNAPSHOT_ID_LEN + 1],
                        cf_snapshot_stats *stats, cf_err *err)
{
    char latest[CF_SNAPSHOT_ID_LEN + 1];
    const char *id = o->id;
    int force = o->force;
    const cf_snapshot_secret *secret = o->secret;
    int rc = resolve_id(repo, ns, &id, latest, err);
    if (rc)
        return rc;
    char mkey[512];
    cf_manifest m;
    if ((rc = load_snapshot(repo, ns, id, mkey, &m, err)))
        return rc;
    int to_stdout = strcmp(dest, "-") == 0;
    struct stat st;
    int exists = !to_stdout && stat(dest, &st) == 0;
    if (exists && !force && !(S_ISDIR(st.st_mode) && dir_empty(dest))) {
        cf_manifest_cleanup(&m);
        return cf_err_set(err, CF_EEXISTS,
                          "destination '%s' is not empty; the restore option force replaces it", dest);
    }
    cf_archive_key akey;
    if ((rc = snapshot_key(&m, secret, &akey, err))) {
        cf_manifest_cleanup(&m);
        return rc;
    }
    cf_archive_read_opts ro = read_opts(&m, &akey);
    archive_stream as = {repo, m.archive.key};
    cf_archive_reader *rd = NULL;
    rc = cf_archive_reader_new_stream(&ro, m.chunks, m.nchunks, decode_threads(&m), stream_archive, &as, &rd,
                                      err);
    counted_pull pull = {rd, o, 0, m.archive.raw_size};
    uint64_t files = 0;
    char tmp[PATH_MAX] = "";
    if (!rc && to_stdout) {
        const void *p;
        size_t n;
        while (!(rc = pull_counted(&pull, &p, &n, err)) && n)
            if (fwrite(p, 1, n, out) != n) {
                rc = cf_err_sys(err, CF_EIO, errno, "cannot write the restored stream");
                break;
            }
        if (!rc && fflush(out) != 0)
            rc = cf_err_sys(err, CF_EIO, errno, "cannot write the restored stream");
    } else if (!rc) {
        if (m.source.kind != CF_SOURCE_DIR) {
            rc = cf_err_set(err, CF_EINVAL,
                            "snapshot %s holds a stream, not a directory; restore it to - (stdout)", id);
        } else {
            unsigned char r[4];
            cf_random_bytes(r, sizeof r);
            /* A sibling, so that the final rename stays on one filesystem. */
            snprintf(tmp, sizeof tmp, "%s.coffer-restore-%02x%02x%02x%02x", dest, r[0], r[1], r[2], r[3]);
            rc = cf_fs_mkdirs(tmp, 0700, err);
            if (!rc)
                rc = cf_tar_extract(tmp, pull_counted, &pull, &files, err);
            if (!rc)
                rc = read_to_end(rd, err);
            /* The old destination moves aside and comes back if the new one cannot take its
             * place, so that there is always a whole tree at dest. */
            char old[PATH_MAX + 16] = "";
            if (!rc && exists) {
                snprintf(old, sizeof old, "%s.old", tmp);
                if (rename(dest, old) != 0)
                    rc = cf_err_sys(err, CF_EIO, errno, "cannot move '%s' aside", dest);
            }
            if (!rc && rename(tmp, dest) != 0) {
                rc = cf_err_sys(err, CF_EIO, errno, "cannot move the restored tree to '%s'", dest);
                if (old[0])
                    rename(old, dest);
                old[0] = '\0';
            }
            if (old[0])
                cf_fs_remove_tree(old, NULL);
            if (rc)
                cf_fs_remove_tree(tmp, NULL); /* the destination stays as it was */
        }
    }
    cf_archive_reader_free(rd);
    if (!rc && id_out)
        snprintf(id_out, CF_SNAPSHOT_ID_LEN + 1, "%s", m.id);
    if (!rc && stats)
        *stats =
            (cf_snapshot_stats){m.archive.raw_size, m.archive.size, to_stdout ? m.archive.files : files, 0};
    if (m.encryption)
        cf_archive_key_cleanup(&akey);
    cf_manifest_cleanup(&m);
    return rc;
}

/* ---- verify, remove, prune ---- */

static int discard(void *ctx, const void *p, size_t n, cf_err *err)
{
    (void)ctx;
    (void)p;
    (void)n;
    (void)err;
    return 0;
}

int cf_snapshot_verify(cf_repo *repo, const char *ns, const char *id, const cf_snapshot_secret *secret,
                       cf_err *err)
{
    char mkey[512];
    cf_manifest m;
    int rc = load_snapshot(repo, ns, id, mkey, &m, err);
    if (rc)
        return rc;
    cf_archive_key akey;
    if (!(rc = snapshot_key(&m, secret, &akey, err))) {
        cf_archive_read_opts ro = read_opts(&m, &akey);
        archive_stream as = {repo, m.archive.key};
        rc = cf_archive_read_stream(&ro, m.chunks, m.nchunks, decode_threads(&m), stream_archive, &as,
                                    discard, NULL, err);
        if (m.encryption)
            cf_archive_key_cleanup(&akey);
    }
    cf_manifest_cleanup(&m);
    return rc;
}

int cf_snapshot_remove(cf_repo *repo, const char *ns, const char *id, cf_err *err)
{
    char mkey[512];
    cf_manifest m;
    int rc = load_snapshot(repo, ns, id, mkey, &m, err);
    if (rc)
        return rc;
    rc = cf_repo_delete(repo, mkey, err);
    if (!rc)
        rc = cf_repo_delete(repo, m.archive.key, err);
    cf_manifest_cleanup(&m);
    return rc;
}

typedef struct prune_scan {
    names manifests; /* "ns/ID.json", also those that are no snapshot of the order */
    names archives;  /* other objects, with their mtimes */
    int64_t *archive_mtime;
    size_t cap_mtime;
} prune_scan;

static int scan_entry(void *ctx, const cf_repo_entry *e)
{
    prune_scan *s = ctx;
    if (is_manifest(e->key))
        return names_add(&s->manifests, e->key);
    if (s->archives.n == s->cap_mtime) {
        s->cap_mtime = s->cap_mtime ? s->cap_mtime * 2 : 32;
        int64_t *t = realloc(s->archive_mtime, s->cap_mtime * sizeof *t);
        if (!t)
            return CF_ENOMEM;
        s->archive_mtime = t;
    }
    s->archive_mtime[s->archives.n] = e->mtime;
    return names_add(&s->archives, e->key);
}

int cf_snapshot_prune(cf_repo *repo, const char *ns, const cf_retention *policy, int64_t grace_s, int dry_run,
                      cf_snapshot_prune_fn fn, void *ctx, size_t *swept, cf_err *err)
{
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%s/", ns);
    prune_scan s = {0};
    ordered o = {.ns = ns, .other = scan_entry, .other_ctx = &s};
    int rc = order_snapshots(repo, ns, 0, &o, err);
    size_t n = o.n;
    cf_retention_item *items = rc ? NULL : calloc(n ? n : 1, sizeof *items);
    if (!rc && !items)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++)
        items[i].key = o.v[i];
    if (!rc)
        rc = cf_retention_apply(policy, items, n, err);
    for (size_t i = 0; !rc && i < n; i++)
        fn(ctx, items[i].key.id, items[i].keep ? items[i].reasons : NULL);
    for (size_t i = 0; !rc && !dry_run && i < n; i++)
        if (!items[i].keep && (rc = cf_snapshot_remove(repo, ns, items[i].key.id, err)) == CF_ENOTFOUND)
            rc = 0; /* gone since the listing (a prune running beside this one): what was wanted */
    /* Archives whose manifest never came: an interrupted create, once past the grace period
     * (a create in progress has no manifest yet either). */
    int64_t now = cf_clock_now();
    for (size_t i = 0; !rc && i < s.archives.n; i++) {
        char id[CF_SNAPSHOT_ID_LEN + 1];
        id_of(s.archives.v[i], ns, id);
        char mkey[512];
        snprintf(mkey, sizeof mkey, "%s/%s.json", ns, id);
        int has_manifest = 0; /* kept, or removed above together with its manifest */
        for (size_t j = 0; id[0] && j < s.manifests.n; j++)
            has_manifest |= strcmp(s.manifests.v[j], mkey) == 0;
        if (has_manifest || !id[0] || now - s.archive_mtime[i] < grace_s)
            continue;
        fn(ctx, id, "");
        if (!dry_run)
            rc = cf_repo_delete(repo, s.archives.v[i], err);
    }
    if (swept)
        *swept = 0;
    if (!rc && !dry_run && swept)
        rc = cf_repo_sweep(repo, prefix, now - grace_s, swept, err);
    for (size_t i = 0; i < s.manifests.n; i++)
        free(s.manifests.v[i]);
    for (size_t i = 0; i < s.archives.n; i++)
        free(s.archives.v[i]);
    free(s.manifests.v);
    free(s.archives.v);
    free(s.archive_mtime);
    free(items);
    free(o.v);
    return rc;
}

int cf_snapshot_restore_to_command(cf_repo *repo, const char *ns, const char *command,
                                   const cf_snapshot_restore_opts *o, char id_out[CF_SNAPSHOT_ID_LEN + 1],
                                   cf_snapshot_stats *stats, cf_err *err)
{
    FILE *p = popen(command, "w");
    if (!p)
        return cf_err_sys(err, CF_EIO, errno, "cannot start '%s'", command);
    int rc = cf_snapshot_restore(repo, ns, "-", p, o, id_out, stats, err);
    int status = pclose(p);
    if (!rc && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        rc = cf_err_set(err, CF_EIO, "command '%s' failed (status %d) while restoring", command,
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return rc;
}

int cf_snapshot_show(cf_repo *repo, const char *ns, const char *id, char **json, size_t *len, cf_err *err)
{
    char latest[CF_SNAPSHOT_ID_LEN + 1];
    int rc = resolve_id(repo, ns, &id, latest, err);
    if (rc)
        return rc;
    char mkey[512];
    cf_manifest m;
    rc = load_snapshot(repo, ns, id, mkey, &m, err); /* parsed first: never show a broken one */
    if (rc)
        return rc;
    cf_manifest_cleanup(&m);
    cf_buf b;
    cf_buf_init(&b, MANIFEST_MAX);
    rc = cf_repo_get(repo, mkey, 0, UINT64_MAX, append_manifest, &b, err);
    if (rc) {
        cf_buf_cleanup(&b);
        return rc;
    }
    *json = cf_buf_steal(&b, len);
    return 0;
}
