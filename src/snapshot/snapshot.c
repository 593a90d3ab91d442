#include "snapshot/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
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
#include "snapshot/resume.h"

/* ---- create ---- */

typedef struct create_ctx {
    cf_archive_writer *aw;
    cf_repo_writer *rw;
    const cf_snapshot_create_opts *o;
    uint64_t done, total;
    cf_manifest_skipped *skipped;
    size_t nskipped, cap_skipped;
    void *resume_recorded[2]; /* the interrupted run's part sizes and CRCs, freed at the end */
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

static const char *file_kind(mode_t mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISSOCK(mode) ? "a socket"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
                            : "neither a regular file nor a FIFO";
}

/* The source named by path, as stat sees it (a symlink followed): a directory, or with o->file a
 * regular file or a FIFO. A device is not opened at all (opening a tape rewinds it). */
static int stat_source(const cf_snapshot_create_opts *o, struct stat *st, cf_err *err)
{
    if (stat(o->source, st) != 0)
        return cf_err_sys(err, errno == EACCES ? CF_EUNREADABLE : CF_EINVAL, errno, "cannot use source '%s'",
                          o->source);
    if (!o->file && !S_ISDIR(st->st_mode))
        return cf_err_set(err, CF_EINVAL, "source '%s' is not a directory (use - for standard input)",
                          o->source);
    if (o->file && !S_ISREG(st->st_mode) && !S_ISFIFO(st->st_mode))
        return cf_err_set(err, CF_EINVAL, "source '%s' is %s; a file source is a regular file or a FIFO",
                          o->source, file_kind(st->st_mode));
    return 0;
}

static int same_file(int fd, const struct stat *seen)
{
    struct stat now;
    unsigned char a[CF_SHA256_LEN], b[CF_SHA256_LEN];
    if (fstat(fd, &now) != 0)
        return 0;
    cf_resume_file_fingerprint(seen, a);
    cf_resume_file_fingerprint(&now, b);
    return memcmp(a, b, sizeof a) == 0;
}

/* A regular file must be the one stat_source saw (its fingerprint is what a resumed run trusts)
 * and still be it once read, or the snapshot would mix two versions of it; a FIFO is read until
 * its writers close it. */
static int copy_file(create_ctx *c, const char *path, const struct stat *seen, cf_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cf_err_sys(err, errno == EACCES || errno == EPERM ? CF_EUNREADABLE : CF_EIO, errno,
                          "cannot open source '%s'", path);
    char what[PATH_MAX + 16];
    snprintf(what, sizeof what, "source '%s'", path);
    int regular = S_ISREG(seen->st_mode), rc = 0;
    if (regular && !same_file(fd, seen))
        rc = cf_err_set(err, CF_EIO, "source '%s' changed before it was read; no snapshot was created", path);
    if (!rc)
        rc = copy_fd(c, fd, what, err);
    if (!rc && regular && !same_file(fd, seen))
        rc = cf_err_set(err, CF_EIO,
                        "source '%s' changed while it was read (its size, modification or change time "
                        "moved); no snapshot was created",
                        path);
    close(fd);
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

static void notice(const cf_snapshot_create_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void notice(const cf_snapshot_create_opts *o, const char *fmt, ...)
{
    if (!o->notice)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    o->notice(o->cb_ctx, msg);
}

static void format_started(int64_t created_ns, char out[32])
{
    time_t t = (time_t)(created_ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* The per-snapshot key: fresh salts, or (resuming) those of the interrupted run, which must give
 * the same key id, or the secret is not the one that run used (CF_EAUTH). */
static int snapshot_secret(const cf_snapshot_create_opts *o, int fresh, cf_manifest_encryption *enc,
                           cf_archive_key *akey, cf_err *err)
{
    cf_master_key from_pass;
    const cf_master_key *master = o->secret->key;
    char want[sizeof enc->key_id];
    snprintf(want, sizeof want, "%s", enc->key_id);
    int rc = 0;
    if (!master) {
        /* A passphrase: its own scrypt salt per snapshot, recorded in the manifest. */
        enc->passphrase = 1;
        if (fresh && cf_random_bytes(enc->scrypt.salt, sizeof enc->scrypt.salt) != 0)
            return cf_err_set(err, CF_EIO, "no randomness for the passphrase salt");
        if ((rc = cf_master_key_from_passphrase(o->secret->passphrase, o->secret->passphrase_len,
                                                &enc->scrypt, &from_pass, err)))
            return rc;
        master = &from_pass;
    }
    if (fresh && cf_random_bytes(enc->salt, sizeof enc->salt) != 0)
        rc = cf_err_set(err, CF_EIO, "no randomness for the snapshot key");
    if (!rc && !fresh && strcmp(want, master->key_id) != 0)
        rc = cf_err_set(err, CF_EAUTH, "not the key or passphrase of the interrupted run");
    if (!rc)
        rc = cf_archive_key_derive(master, enc->salt, akey, err);
    snprintf(enc->key_id, sizeof enc->key_id, "%s", master->key_id);
    if (master == &from_pass)
        cf_master_key_cleanup(&from_pass);
    return rc;
}

/* What a resumable create carries from its start to its parts. */
typedef struct resume_run {
    cf_repo *repo;
    cf_resume_state st;
    cf_repo_resume up;
    int disabled; /* the key cannot read the state back: not resumable */
    int active;   /* the state is kept in the repository */
    int resuming; /* continuing an interrupted run */
} resume_run;

static int on_part(void *ctx, unsigned number, uint64_t size, uint32_t crc32c, int kept, cf_err *err)
{
    resume_run *r = ctx;
    if (cf_resume_note_part(&r->st, number, size, crc32c) != 0)
        return cf_err_set(err, CF_ENOMEM, "out of memory for the resume state");
    /* A kept part is recorded already (or proven by its MD5): no new state to write for it. */
    return kept ? 0 : cf_resume_save(r->repo, &r->st, err);
}

/* Looks for the state of an interrupted run of this create and decides whether to continue it:
 * r->resuming set when the source is the same; otherwise whatever it left is aborted and said
 * (file: the regular file's path, named when it is what changed). */
/* A stream's runs each keep a state of their own (NAME-RANDOM.json), since runs of one command
 * may overlap: the next run only says what earlier ones left, and prune removes it. */
typedef struct earlier_streams {
    cf_repo *repo;
    const char *ns;
    const cf_snapshot_create_opts *o;
} earlier_streams;

static int tell_earlier_stream(void *ctx, const cf_repo_entry *e)
{
    earlier_streams *s = ctx;
    cf_resume_state st = {0};
    snprintf(st.key, sizeof st.key, "%s", e->key);
    cf_err ignore;
    char mkey[512], started[32];
    if (cf_resume_load(s->repo, &st, &ignore) != 0)
        return 0;
    format_started(st.created_ns, started);
    snprintf(mkey, sizeof mkey, "%s/%s.json", s->ns, st.id);
    cf_repo_info info;
    if (cf_repo_stat(s->repo, mkey, &info, &ignore) != 0)
        notice(s->o,
               "an earlier run of this stream snapshot (%s@%s, started %s) did not finish: interrupted, or "
               "still "
               "running; a stream cannot be replayed, so this run makes a new snapshot, and prune removes "
               "what an "
               "interrupted run left after its grace period",
               s->ns, st.id, started);
    cf_resume_reset(&st);
    return 0;
}

static int find_interrupted(cf_repo *repo, const char *ns, const cf_snapshot_create_opts *o, int stream,
                            const char *file, const unsigned char fingerprint[CF_SHA256_LEN],
                            const char *suffix, resume_run *r, cf_err *err)
{
    if (stream) {
        char prefix[512];
        size_t l = strlen(r->st.key) - 5; /* without ".json" */
        snprintf(prefix, sizeof prefix, "%.*s-", (int)l, r->st.key);
        earlier_streams es = {repo, ns, o};
        int rc = cf_repo_list(repo, prefix, tell_earlier_stream, &es, err);
        unsigned char rnd[4] = {0};
        cf_random_bytes(rnd, sizeof rnd);
        snprintf(r->st.key + l, sizeof r->st.key - l, "-%02x%02x%02x%02x.json", rnd[0], rnd[1], rnd[2],
                 rnd[3]);
        if (rc == CF_EDENIED)
            r->disabled = 1; /* as below */
        return rc == CF_EDENIED ? 0 : rc;
    }
    int rc = cf_resume_load(repo, &r->st, err);
    if (rc == CF_ENOTFOUND)
        return 0;
    if (rc == CF_EDENIED) {
        /* A key that may write but not read (a backup job's): a state it could never read back
         * would only be left behind, so such a create is not resumable. */
        r->disabled = 1;
        return 0;
    }
    if (rc == CF_ECORRUPT) {
        notice(o, "%s; starting a new snapshot", err->msg);
        return 0;
    }
    if (rc)
        return rc;
    char started[32], mkey[512];
    format_started(r->st.created_ns, started);
    snprintf(mkey, sizeof mkey, "%s/%s.json", ns, r->st.id);
    cf_repo_info info;
    cf_err ignore;
    int done = cf_repo_stat(repo, mkey, &info, &ignore) == 0;
    if (!done && memcmp(fingerprint, r->st.fingerprint, CF_SHA256_LEN) != 0)
        notice(o,
               "the source changed since the interrupted run of %s (%s@%s)%s%s%s: starting a new snapshot "
               "and aborting the interrupted upload",
               started, ns, r->st.id, file ? ": file '" : "", file ? file : "",
               file ? "' has another size, modification or change time, or inode" : "");
    else if (!done)
        r->resuming = 1;
    if (!r->resuming) {
        /* Codec and encryption are the state's name's: the interrupted upload's key is this. */
        char akey[512];
        snprintf(akey, sizeof akey, "%s/%s%s", ns, r->st.id, suffix);
        if (!done && cf_repo_upload_abort(repo, akey, r->st.upload_id, &ignore) != 0)
            notice(o, "cannot abort the interrupted upload (%s); prune removes it after its grace period",
                   ignore.msg);
        cf_resume_reset(&r->st);
    }
    return 0;
}

int cf_snapshot_create(cf_repo *repo, const char *ns, const cf_snapshot_create_opts *o,
                       char id_out[CF_SNAPSHOT_ID_LEN + 1], cf_snapshot_stats *stats, cf_err *err)
{
    int piped = o->command || o->read || strcmp(o->source, "-") == 0;
    struct stat st = {0};
    int rc = piped ? 0 : stat_source(o, &st, err);
    if (rc)
        return rc;
    /* A file's bytes are stored as they are, like a stream's; but a regular file can be read
     * again, so only a FIFO (and what is piped) is a stream that is never resumed. */
    int raw = piped || !S_ISDIR(st.st_mode), stream = piped || S_ISFIFO(st.st_mode);
    char host[256] = "", abs[PATH_MAX];
    gethostname(host, sizeof host - 1);
    /* A symlink named as the source is followed: the walk, the manifest and the resume state's
     * name all take its target. */
    const char *source_path = piped ? NULL : realpath(o->source, abs) ? abs : o->source;
    uint64_t total = 0;
    cf_tar_write_opts measure = {o->exclude, o->nexclude, o->one_file_system, 1, NULL, NULL};
    uint64_t entries = 0;
    unsigned char fingerprint[CF_SHA256_LEN] = {0};
    if (!raw)
        rc = o->resume ? cf_tar_fingerprint(source_path, &measure, &total, &entries, fingerprint, err)
                       : cf_tar_measure(source_path, &measure, &total, &entries, err);
    else if (!stream) {
        total = (uint64_t)st.st_size; /* plans the upload's parts, as a directory's measure does */
        cf_resume_file_fingerprint(&st, fingerprint);
    }
    if (rc)
        return rc;
    int encrypted = o->secret && (o->secret->key || o->secret->passphrase);
    resume_run rr = {.repo = repo};
    if (o->resume) {
        cf_resume_key(ns, host, piped ? (o->command ? o->command : "-") : source_path, stream, o->codec,
                      o->level, o->chunk_size,
                      !encrypted       ? ""
                      : o->secret->key ? o->secret->key->key_id
                                       : "passphrase",
                      o->exclude, o->nexclude, o->one_file_system, o->allow_unreadable, o->labels, o->nlabels,
                      rr.st.key);
        char suffix[32];
        snprintf(suffix, sizeof suffix, "%s%s", cf_codec_suffix(o->codec), encrypted ? ".enc" : "");
        if ((rc = find_interrupted(repo, ns, o, stream, raw && !stream ? source_path : NULL, fingerprint,
                                   suffix, &rr, err)))
            return rc;
    }
    int64_t now_ns = rr.resuming ? rr.st.created_ns : cf_clock_time_ns(o->clock);
    time_t now = (time_t)(now_ns / 1000000000);
    if (rr.resuming)
        memcpy(id_out, rr.st.id, CF_SNAPSHOT_ID_LEN + 1);
    else
        rc = unused_id(repo, ns, o->clock, now, id_out, err);
    cf_archive_key akey;
    cf_manifest_encryption enc = {0};
    if (!rc && encrypted) {
        if (rr.resuming)
            enc = rr.st.enc;
        rc = snapshot_secret(o, !rr.resuming, &enc, &akey, err);
        if (rc == CF_EAUTH && rr.resuming) {
            /* Another passphrase than the interrupted run's: its parts are of no use. */
            notice(o, "the passphrase differs from the interrupted run's (%s@%s): starting a new snapshot",
                   ns, rr.st.id);
            rr.resuming = 0;
            cf_resume_reset(&rr.st);
            memset(&enc, 0, sizeof enc);
            now_ns = cf_clock_time_ns(o->clock);
            now = (time_t)(now_ns / 1000000000);
            rc = unused_id(repo, ns, o->clock, now, id_out, err);
            if (!rc)
                rc = snapshot_secret(o, 1, &enc, &akey, err);
        }
    }
    if (rc) {
        cf_resume_reset(&rr.st);
        return rc;
    }
    char akey_name[512], mkey_name[512];
    snprintf(akey_name, sizeof akey_name, "%s/%s%s%s", ns, id_out, cf_codec_suffix(o->codec),
             encrypted ? ".enc" : "");
    snprintf(mkey_name, sizeof mkey_name, "%s/%s.json", ns, id_out);

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
    if (o->resume && !rr.disabled) {
        cf_repo_resume *up = &rr.up;
        snprintf(up->upload_id, sizeof up->upload_id, "%s", rr.resuming ? rr.st.upload_id : "");
        up->part_size = rr.resuming ? rr.st.part_size : 0;
        up->recorded_size = rr.st.sizes;
        up->recorded_crc = rr.st.crcs;
        up->nrecorded = rr.st.nparts;
        up->keep_on_abort = !stream;
        up->on_part = on_part;
        up->ctx = &rr;
        rc = cf_repo_writer_begin_resume(repo, akey_name, hint + hint / 64, up, &c.rw, err);
        if (rc == CF_ENOTFOUND && rr.resuming) {
            notice(
                o,
                "the interrupted upload of %s@%s is gone (completed, aborted or expired): sending it again",
                ns, id_out);
            up->upload_id[0] = '\0';
            up->nrecorded = 0;
            rc = cf_repo_writer_begin_resume(repo, akey_name, hint + hint / 64, up, &c.rw, err);
        }
        if (!rc) {
            /* Its parts are recorded afresh, in order, as this run hands them over. */
            size_t held = rr.st.nparts;
            uint64_t *sizes = rr.st.sizes;
            uint32_t *crcs = rr.st.crcs;
            rr.st.sizes = NULL, rr.st.crcs = NULL, rr.st.nparts = rr.st.cap = 0;
            up->recorded_size = sizes, up->recorded_crc = crcs, up->nrecorded = held;
            memcpy(rr.st.id, id_out, sizeof rr.st.id);
            rr.st.created_ns = now_ns;
            rr.st.stream = stream;
            memcpy(rr.st.fingerprint, fingerprint, sizeof fingerprint);
            rr.st.encrypted = encrypted;
            rr.st.enc = enc;
            snprintf(rr.st.upload_id, sizeof rr.st.upload_id, "%s", up->upload_id);
            rr.st.part_size = up->part_size;
            rr.active = 1;
            rc = cf_resume_save(repo, &rr.st, err);
            if (!rc && rr.resuming) {
                char started[32];
                format_started(now_ns, started);
                notice(
                    o,
                    "resuming %s@%s, interrupted after it started at %s: the store holds %u part(s) of it, "
                    "each checked against the source before it is kept",
                    ns, id_out, started, up->parts_held);
            }
            c.resume_recorded[0] = sizes, c.resume_recorded[1] = crcs;
        } else if (rc == CF_ENOTSUP) {
            rr.resuming = 0; /* a directory repository: a write starts over (docs/SNAPSHOTS.md) */
            rc = cf_repo_writer_begin(repo, akey_name, hint + hint / 64, &c.rw, err);
        }
    } else {
        rc = cf_repo_writer_begin(repo, akey_name, hint + hint / 64, &c.rw, err);
    }
    if (!rc)
        rc = cf_archive_writer_new(&wo, to_repo, &c, &c.aw, err);
    if (!rc)
        rc = o->command ? copy_command(&c, o->command, err)
             : o->read  ? copy_read(&c, err)
             : piped    ? copy_fd(&c, 0, "standard input", err)
             : raw      ? copy_file(&c, o->source, &st, err)
                        : cf_tar_write_dir(source_path, &to, to_archive, &c, &files, err);
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
        m.source.kind = raw ? CF_SOURCE_STREAM : CF_SOURCE_DIR;
        m.source.host = host;
        m.source.path = (char *)source_path;
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
            *stats = (cf_snapshot_stats){res.raw_size,     res.size,        files,
                                         c.nskipped,       rr.resuming,     rr.up.parts_kept,
                                         rr.up.parts_sent, rr.up.bytes_kept};
    }
    /* The manifest last: from this write on, the snapshot exists. */
    if (!rc)
        rc = cf_snapshot_put_small(repo, mkey_name, json, jlen, err);
    cf_archive_writer_free(c.aw); /* first: its output thread may still be writing to c.rw */
    cf_repo_writer_abort(c.rw);   /* a resumable write keeps its upload for the next run */
    if (rr.active) {
        cf_err ignore;
        if (!rc || stream)
            cf_repo_delete(repo, rr.st.key, &ignore); /* a stream's upload was aborted with its writer */
        if (!rc && rr.resuming)
            notice(o, "resumed %s@%s: %u part(s) (%llu MiB) the store held were kept, %u sent", ns, id_out,
                   rr.up.parts_kept, (unsigned long long)(rr.up.bytes_kept >> 20), rr.up.parts_sent);
        else if (rc && !stream)
            notice(
                o,
                "%s@%s stopped before it was complete; the store keeps what was sent, and running the same "
                "command again continues it",
                ns, id_out);
    }
    for (size_t i = 0; i < c.nskipped; i++) {
        free(c.skipped[i].path);
        free(c.skipped[i].error);
    }
    free(c.skipped);
    free(c.resume_recorded[0]);
    free(c.resume_recorded[1]);
    cf_resume_reset(&rr.st);
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

/* ---- resumable restore ---- */

#define RESTORE_CHECKPOINT ((uint64_t)32 << 20)

typedef struct restore_run {
    const char *tmp;
    cf_restore_state st; /* what the next checkpoint writes: id, digest, the directories so far */
    char state_path[PATH_MAX + 16];
    uint64_t last; /* offset of the last checkpoint */
} restore_run;

/* Before each entry: every entry before it is on disk; every 32 MiB it is made durable and the
 * state written, so that a run that stops continues from there. */
static int restore_checkpoint(void *ctx, const cf_tar_entry_info *e, cf_err *err)
{
    restore_run *r = ctx;
    if (e->offset >= r->last + RESTORE_CHECKPOINT) {
        int fd = open(r->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || syncfs(fd) != 0) {
            int e_no = errno;
            if (fd >= 0)
                close(fd);
            return cf_err_sys(err, CF_EIO, e_no, "cannot make the restore in '%s' durable", r->tmp);
        }
        close(fd);
        r->st.offset = e->offset;
        r->st.done = e->done;
        int rc = cf_restore_state_save(r->state_path, &r->st, err);
        if (rc)
            return rc;
        r->last = e->offset;
    }
    if (e->is_dir && cf_restore_state_add_dir(&r->st, e) != 0)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    return 0;
}

/* The staging directory of a resumable restore of m into dest, and its state; an interrupted
 * restore of another snapshot into dest is removed (said); *resumed tells whether this one's
 * state was found, loaded into r->st. */
static void restore_staging(const char *dest, const cf_manifest *m, const cf_snapshot_restore_opts *o,
                            char tmp[PATH_MAX], restore_run *r, int *resumed)
{
    unsigned char d[CF_SHA256_LEN];
    char both[CF_SNAPSHOT_ID_LEN + 2 * CF_SHA256_LEN + 2], hex[2 * CF_SHA256_LEN + 1];
    cf_hex_encode(m->archive.sha256, CF_SHA256_LEN, hex);
    snprintf(both, sizeof both, "%s %s", m->id, hex);
    cf_sha256(both, strlen(both), d);
    cf_hex_encode(d, 8, hex);
    snprintf(tmp, PATH_MAX, "%s.coffer-restore-%s", dest, hex);
    snprintf(r->state_path, sizeof r->state_path, "%s.state", tmp);
    /* Others: DEST.coffer-restore-*.state in dest's parent. */
    char parent[PATH_MAX], base[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", dest);
    for (size_t l = strlen(parent); l > 1 && parent[l - 1] == '/'; l--)
        parent[l - 1] = '\0';
    char *slash = strrchr(parent, '/');
    snprintf(base, sizeof base, "%s.coffer-restore-", slash ? slash + 1 : dest);
    if (slash)
        slash[slash == parent ? 1 : 0] = '\0';
    DIR *dir = opendir(slash ? parent : ".");
    struct dirent *de;
    while (dir && (de = readdir(dir))) {
        size_t l = strlen(de->d_name), bl = strlen(base);
        if (l <= bl + 6 || strncmp(de->d_name, base, bl) != 0 || strcmp(de->d_name + l - 6, ".state") != 0)
            continue;
        char path[PATH_MAX * 2], staged[PATH_MAX * 2];
        const char *pdir = slash ? parent : ".";
        snprintf(path, sizeof path, "%s%s%s", pdir, pdir[strlen(pdir) - 1] == '/' ? "" : "/", de->d_name);
        if (strcmp(path, r->state_path) == 0 || (!slash && strcmp(path + 2, r->state_path) == 0))
            continue;
        cf_restore_state other;
        cf_err ignore;
        int known = cf_restore_state_load(path, &other, &ignore) == 0;
        if (o->notice) {
            char msg[1024];
            snprintf(
                msg, sizeof msg,
                "an interrupted restore of %s into '%s' is removed: this one restores %s and starts over",
                known ? other.id : "another snapshot", dest, m->id);
            o->notice(o->cb_ctx, msg);
        }
        if (known)
            cf_restore_state_free(&other);
        snprintf(staged, sizeof staged, "%.*s", (int)(strlen(path) - 6), path);
        cf_fs_remove_tree(staged, NULL);
        unlink(path);
    }
    if (dir)
        closedir(dir);
    cf_err ignore;
    struct stat st;
    *resumed = cf_restore_state_load(r->state_path, &r->st, &ignore) == 0 && !strcmp(r->st.id, m->id) &&
               !memcmp(r->st.sha256, m->archive.sha256, CF_SHA256_LEN) &&
               r->st.offset < m->archive.raw_size && stat(tmp, &st) == 0 && S_ISDIR(st.st_mode);
    if (!*resumed) {
        cf_restore_state_free(&r->st);
        cf_fs_remove_tree(tmp, NULL); /* a run that stopped before its first checkpoint */
        unlink(r->state_path);
        memcpy(r->st.id, m->id, sizeof r->st.id);
        memcpy(r->st.sha256, m->archive.sha256, CF_SHA256_LEN);
    }
}

typedef struct fetch_ctx {
    cf_repo *repo;
    const char *key;
} fetch_ctx;

typedef struct into_buf {
    unsigned char *p;
    uint64_t len, cap;
} into_buf;

static int copy_into(void *ctx, const void *p, size_t n, cf_err *err)
{
    into_buf *b = ctx;
    if (n > b->cap - b->len)
        return cf_err_set(err, CF_ECORRUPT, "the archive sent more bytes than a chunk holds");
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static int fetch_range(void *ctx, uint64_t offset, uint64_t size, void *out, cf_err *err)
{
    fetch_ctx *f = ctx;
    into_buf b = {out, 0, size};
    int rc = cf_repo_get(f->repo, f->key, offset, size, copy_into, &b, err);
    if (!rc && b.len != size)
        rc = cf_err_set(err, CF_ECORRUPT, "the archive ends inside the chunk at offset %llu",
                        (unsigned long long)offset);
    return rc;
}

/* The pull of a resumed restore: the first chunk's bytes before the checkpoint are skipped. */
typedef struct skipping_pull {
    counted_pull *inner;
    uint64_t skip;
} skipping_pull;

static int pull_skipping(void *ctx, const void **p, size_t *n, cf_err *err)
{
    skipping_pull *s = ctx;
    for (;;) {
        int rc = pull_counted(s->inner, p, n, err);
        if (rc || !*n || !s->skip)
            return rc;
        uint64_t drop = s->skip < *n ? s->skip : *n;
        s->skip -= drop;
        *p = (const char *)*p + drop;
        *n -= (size_t)drop;
        if (*n)
            return 0;
    }
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
    fetch_ctx fc = {repo, m.archive.key};
    cf_archive_reader *rd = NULL;
    char tmp[PATH_MAX] = "";
    restore_run run = {.tmp = tmp};
    int resumed = 0, resumable = !to_stdout && o->resume && m.source.kind == CF_SOURCE_DIR;
    cf_tar_extract_opts xo = {.on_entry = resumable ? restore_checkpoint : NULL, .ctx = &run};
    size_t first = 0;
    uint64_t skip = 0;
    if (resumable)
        restore_staging(dest, &m, o, tmp, &run, &resumed);
    if (resumed) {
        /* The chunk holding the checkpoint's offset, read chunk by chunk from there. */
        uint64_t raw = 0;
        while (first + 1 < m.nchunks && raw + m.chunks[first].raw_size <= run.st.offset)
            raw += m.chunks[first++].raw_size;
        skip = run.st.offset - raw;
        xo.base = run.last = run.st.offset;
        xo.done_before = run.st.done;
        rc = cf_archive_reader_new(&ro, m.chunks, m.nchunks, fetch_range, &fc, &rd, err);
        if (!rc)
            rc = cf_archive_reader_skip_to(rd, first, err);
        if (!rc && o->notice) {
            char msg[1024];
            snprintf(
                msg, sizeof msg,
                "resuming the restore of %s@%s into '%s' at %llu MiB of %llu: %llu entries are extracted "
                "already",
                ns, m.id, dest, (unsigned long long)(run.st.offset >> 20),
                (unsigned long long)(m.archive.raw_size >> 20), (unsigned long long)run.st.done);
            o->notice(o->cb_ctx, msg);
        }
    } else {
        rc = cf_archive_reader_new_stream(&ro, m.chunks, m.nchunks, decode_threads(&m), stream_archive, &as,
                                          &rd, err);
    }
    counted_pull pull = {rd, o, run.st.offset - skip, m.archive.raw_size};
    skipping_pull spull = {&pull, skip};
    uint64_t files = 0;
    /* What the interrupted run made before its checkpoint: kept by this run, its directories'
     * modes and times set at the end (extraction sets them last). */
    cf_restore_state before = {0};
    if (resumed) {
        before = run.st;
        run.st = (cf_restore_state){0};
        memcpy(run.st.id, before.id, sizeof run.st.id);
        memcpy(run.st.sha256, before.sha256, CF_SHA256_LEN);
        for (size_t i = 0; i < before.ndirs && !rc; i++)
            if (cf_restore_state_add_dir(&run.st, &before.dirs[i]) != 0)
                rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
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
            if (!resumable)
                snprintf(tmp, sizeof tmp, "%s.coffer-restore-%02x%02x%02x%02x", dest, r[0], r[1], r[2], r[3]);
            rc = cf_fs_mkdirs(tmp, 0700, err);
            if (!rc)
                rc = cf_tar_extract_ex(tmp, pull_skipping, &spull, &xo, &files, err);
            for (size_t i = before.ndirs; !rc && i > 0; i--) /* children before their parents */
                rc = cf_tar_restore_dir(tmp, &before.dirs[i - 1], err);
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
            /* Damage, a refused entry or a wrong key will not go away by running again. */
            int keep = resumable && rc && rc != CF_EDIGEST && rc != CF_ECORRUPT && rc != CF_EAUTH &&
                       rc != CF_EDENIED && rc != CF_EINVAL && access(run.state_path, F_OK) == 0;
            if (rc && !keep)
                cf_fs_remove_tree(tmp, NULL); /* the destination stays as it was */
            if (resumable && (!rc || !keep))
                unlink(run.state_path);
            if (keep && o->notice) {
                char msg[1024];
                snprintf(
                    msg, sizeof msg,
                    "the restore stopped; what it extracted and checked is kept in '%s', and running the "
                    "same command again continues it",
                    tmp);
                o->notice(o->cb_ctx, msg);
            }
        }
    }
    cf_archive_reader_free(rd);
    cf_restore_state_free(&before);
    cf_restore_state_free(&run.st);
    if (!rc && id_out)
        snprintf(id_out, CF_SNAPSHOT_ID_LEN + 1, "%s", m.id);
    if (!rc && stats)
        *stats = (cf_snapshot_stats){.raw_bytes = m.archive.raw_size,
                                     .stored_bytes = m.archive.size,
                                     .files = to_stdout ? m.archive.files : files};
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
    /* Resume states (snapshot/resume.h) not written since states_before: their run is over. */
    char states_prefix[512];
    int64_t states_before;
    names stale_states;
} prune_scan;

static int scan_entry(void *ctx, const cf_repo_entry *e)
{
    prune_scan *s = ctx;
    if (strncmp(e->key, s->states_prefix, strlen(s->states_prefix)) == 0)
        return e->mtime < s->states_before ? names_add(&s->stale_states, e->key) : 0;
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
    prune_scan s = {.states_before = cf_clock_now() - grace_s};
    snprintf(s.states_prefix, sizeof s.states_prefix, "%s/.resume/", ns);
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
    /* After the sweep, which aborted the uploads they name: an interrupted create's state left
     * alone would only tell its next run that the upload is gone. */
    if (!rc && !dry_run && s.stale_states.n) {
        rc = cf_repo_delete_many(repo, (const char *const *)s.stale_states.v, s.stale_states.n, err);
        if (!rc && swept)
            *swept += s.stale_states.n;
    }
    for (size_t i = 0; i < s.stale_states.n; i++)
        free(s.stale_states.v[i]);
    free(s.stale_states.v);
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
