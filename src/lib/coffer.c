/*
 * coffer.c - libcoffer's public API (include/coffer/coffer.h) over the snapshot engine
 * (snapshot/snapshot.h) and the repositories (storage/repo.h). This file translates: options
 * structs into the engine's, CF_E… codes into coffer_status, a handle's log function into a
 * cf_logger; it holds no state outside the handles.
 */
#include "coffer/coffer.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive/codec.h"
#include "core/err.h"
#include "core/grow.h"
#include "core/log.h"
#include "snapshot/ref.h"
#include "snapshot/snapshot.h"
#include "storage/repo.h"
#include "lib.h"

/* coffer_status is CF_E… renumbered from -1, in the order of CF_ERRNO_MAP; these keep both in
 * step when a code is added to one of them. */
_Static_assert(CF_EINVAL - CF_ERR_FIRST_ == -COFFER_EINVAL, "coffer_status follows CF_ERRNO_MAP");
_Static_assert(CF_EINTERNAL - CF_ERR_FIRST_ == -COFFER_EINTERNAL, "coffer_status follows CF_ERRNO_MAP");
_Static_assert(CF_ERR_LAST_ == CF_EINTERNAL + 1, "a CF_E code without a coffer_status");
_Static_assert((int)CF_LOG_DEBUG == (int)COFFER_LOG_DEBUG && (int)CF_LOG_ERROR == (int)COFFER_LOG_ERROR,
               "log levels match");
_Static_assert(COFFER_ID_SIZE > CF_SNAPSHOT_ID_LEN, "an id fits");

struct coffer_repo {
    cf_repo *repo;
    cf_logger log; /* sink NULL when the application gave no log function: silent */
    coffer_log_fn log_fn;
    void *log_ctx;
    /* Writers and snapshotters use the handle after the call that made them returned; a close
     * while any lives (the caller's bug) is deferred to the last one's end rather than freeing
     * what their threads still read. */
    pthread_mutex_t users_mu;
    unsigned users;
    int close_pending;
};

const cf_logger *cf_lib_logger(const coffer_repo *r)
{
    return &r->log;
}

static void repo_free(coffer_repo *r)
{
    cf_repo_close(r->repo);
    pthread_mutex_destroy(&r->users_mu);
    free(r);
}

void cf_lib_repo_hold(coffer_repo *r)
{
    pthread_mutex_lock(&r->users_mu);
    r->users++;
    pthread_mutex_unlock(&r->users_mu);
}

void cf_lib_repo_release(coffer_repo *r)
{
    pthread_mutex_lock(&r->users_mu);
    int last = --r->users == 0 && r->close_pending;
    pthread_mutex_unlock(&r->users_mu);
    if (last)
        repo_free(r);
}

int cf_lib_text_valid(const char *s)
{
    /* The manifest is JSON: what jansson refuses as a string (invalid UTF-8) would fail the
     * manifest's encoding only after the archive was uploaded. */
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

const char *coffer_version(void)
{
    return COFFER_VERSION;
}

static int status_of(int code)
{
    if (code >= 0)
        return COFFER_OK;
    if (code > CF_ERR_FIRST_ && code < CF_ERR_LAST_)
        return -(code - CF_ERR_FIRST_);
    if (code >= COFFER_ECALLBACK)
        return code; /* already a coffer_status (an application callback's) */
    return COFFER_EINTERNAL;
}

const char *coffer_strerror(int status)
{
    switch (status) {
    case COFFER_OK: return "success";
    case COFFER_EABORTED: return "aborted by the application";
    case COFFER_ECALLBACK: return "an application callback failed";
    }
    if (status < 0 && status >= COFFER_EINTERNAL)
        return cf_strerror(CF_ERR_FIRST_ - status);
    return "unknown status";
}

/* Fills e from the engine's error, the S3 answer behind it included, and returns the status. */
static int fail(coffer_error *e, int code, const cf_err *ce)
{
    int st = status_of(code);
    if (e) {
        e->status = st;
        snprintf(e->message, sizeof e->message, "%s", ce && ce->msg[0] ? ce->msg : coffer_strerror(st));
        e->http_status = ce ? (int)ce->answer.status : 0;
        snprintf(e->s3_code, sizeof e->s3_code, "%s", ce ? ce->answer.code : "");
    }
    return st;
}

int cf_lib_fail(coffer_error *e, int status, const char *msg)
{
    if (e) {
        e->status = status;
        snprintf(e->message, sizeof e->message, "%s", msg);
        e->http_status = 0;
        e->s3_code[0] = '\0';
    }
    return status;
}

static int ok(coffer_error *e)
{
    return cf_lib_fail(e, COFFER_OK, "");
}

/* The caller's options (struct_size bytes of them) into a zeroed dst of ours: an older program's
 * shorter struct leaves the newer fields 0, a newer program's longer one is accepted when what it
 * adds is 0 (its default), since this library could not honour anything else. */
int cf_lib_copy_options(void *dst, size_t ours, const void *src, const char *what, coffer_error *e)
{
    memset(dst, 0, ours);
    *(size_t *)dst = ours; /* dst may be handed on to another call */
    if (!src)
        return COFFER_OK;
    int st = cf_lib_check_result(src, what, e);
    if (st)
        return st;
    size_t theirs = *(const size_t *)src;
    for (size_t i = ours; i < theirs; i++)
        if (((const unsigned char *)src)[i]) {
            char msg[160];
            snprintf(msg, sizeof msg, "%s: fields newer than this libcoffer (%s) are set", what,
                     COFFER_VERSION);
            return cf_lib_fail(e, COFFER_ENOTSUP, msg);
        }
    memcpy(dst, src, theirs < ours ? theirs : ours);
    *(size_t *)dst = ours;
    return COFFER_OK;
}

static void log_sink(void *ctx, cf_log_level level, const char *line, size_t len)
{
    const coffer_repo *r = ctx;
    r->log_fn(r->log_ctx, (coffer_log_level)level, line, len);
}

/* ---- repositories ---- */

int coffer_repo_open(const char *url, const coffer_repo_options *options, coffer_repo **out, coffer_error *e)
{
    coffer_repo_options o;
    int st = cf_lib_copy_options(&o, sizeof o, options, "coffer_repo_options", e);
    if (st)
        return st;
    if (!url || !*url || !out)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_repo_open: a repository URL or path and out are needed");
    if (o.log_level < COFFER_LOG_DEBUG || o.log_level > COFFER_LOG_ERROR)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_repo_options: log_level is not a coffer_log_level");
    if (o.max_attempts > COFFER_MAX_ATTEMPTS_MAX || o.stall_timeout_ms > COFFER_NET_TIMEOUT_MAX_MS ||
        o.retry_budget_ms > COFFER_NET_TIMEOUT_MAX_MS)
        return cf_lib_fail(e, COFFER_EINVAL,
                           "coffer_repo_options: max_attempts is at most 100, stall_timeout_ms and "
                           "retry_budget_ms at most a day");
    coffer_repo *r = calloc(1, sizeof *r);
    if (!r)
        return cf_lib_fail(e, COFFER_ENOMEM, "out of memory");
    r->log_fn = o.log;
    r->log_ctx = o.log_ctx;
    r->log = (cf_logger){(cf_log_level)o.log_level, o.log ? log_sink : NULL, r};
    pthread_mutex_init(&r->users_mu, NULL);
    cf_err err = {0};
    int rc;
    if (strncmp(url, "s3://", 5) == 0) {
        const char *b = url + 5, *slash = strchr(b, '/');
        char bucket[64], root[PATH_MAX]; /* the repository says how long a prefix may be */
        size_t blen = slash ? (size_t)(slash - b) : strlen(b);
        const char *prefix = slash ? slash + 1 : "";
        size_t plen = strlen(prefix);
        /* One '/' ends a prefix; more belong to it ("s3://b/a//" keeps its keys under "a//"). */
        if (plen && prefix[plen - 1] == '/')
            plen--;
        if (blen == 0 || blen >= sizeof bucket || plen >= sizeof root) {
            rc = cf_err_set(&err, CF_EINVAL,
                            "'%.200s' is not s3://BUCKET[/PREFIX] (a bucket of 1 to 63 bytes)", url);
        } else {
            memcpy(bucket, b, blen);
            bucket[blen] = '\0';
            memcpy(root, prefix, plen);
            root[plen] = '\0';
            cf_repo_s3_conn conn = {o.endpoint,
                                    o.region,
                                    o.access_key,
                                    o.secret_key,
                                    o.session_token,
                                    o.virtual_host,
                                    o.use_environment,
                                    (int)o.max_attempts,
                                    (long)o.stall_timeout_ms,
                                    (long)o.retry_budget_ms};
            rc = cf_repo_open_s3_conn(&conn, bucket, root, &r->repo, &err);
        }
    } else {
        rc = cf_repo_open_dir(strncmp(url, "file://", 7) == 0 ? url + 7 : url, &r->repo, &err);
    }
    if (rc) {
        pthread_mutex_destroy(&r->users_mu);
        free(r);
        return fail(e, rc, &err);
    }
    cf_log(&r->log, CF_LOG_DEBUG, "repository opened", "repo", cf_repo_name(r->repo), NULL);
    *out = r;
    return ok(e);
}

const char *coffer_repo_name(const coffer_repo *r)
{
    return r ? cf_repo_name(r->repo) : "";
}

void coffer_repo_close(coffer_repo *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->users_mu);
    unsigned users = r->users;
    r->close_pending = users > 0;
    pthread_mutex_unlock(&r->users_mu);
    if (users) {
        char n[16];
        snprintf(n, sizeof n, "%u", users);
        cf_log(&r->log, CF_LOG_ERROR,
               "coffer_repo_close: writers or snapshotters of the repository are still open; it is closed "
               "when the last ends",
               "open", n, NULL);
        return;
    }
    repo_free(r);
}

/* ---- arguments every operation checks ---- */

/* A namespace is one path segment of the repository: no '/', nothing that climbs out, and no
 * longer than a file name may be (a longer one would be cut, naming another namespace). */
#define NS_MAX 255

static int check_ns(const coffer_repo *r, const char *ns, coffer_error *e)
{
    if (!r)
        return cf_lib_fail(e, COFFER_EINVAL, "no repository (NULL handle)");
    size_t len = ns ? strnlen(ns, NS_MAX + 1) : 0;
    if (len > NS_MAX) {
        char msg[200];
        snprintf(msg, sizeof msg, "namespace '%.40s...' is too long: at most %d bytes (one path segment)", ns,
                 NS_MAX);
        return cf_lib_fail(e, COFFER_EINVAL, msg);
    }
    if (!ns || !cf_snapshot_ns_valid(ns) || strchr(ns, '/') || strchr(ns, 0x7f)) {
        char msg[400];
        snprintf(
            msg, sizeof msg,
            "namespace '%.200s' is invalid: one path segment, not '.' or '..', without '/', '\\', '@' or "
            "control characters",
            ns ? ns : "(null)");
        return cf_lib_fail(e, COFFER_EINVAL, msg);
    }
    return COFFER_OK;
}

static int check_id(const char *id, int may_be_null, coffer_error *e)
{
    if (!id && may_be_null)
        return COFFER_OK;
    if (!id || !cf_snapshot_id_valid(id)) {
        char msg[200];
        snprintf(msg, sizeof msg, "'%.60s' is not a snapshot id (like 20261122T153000Z-7f3a)",
                 id ? id : "(null)");
        return cf_lib_fail(e, COFFER_EINVAL, msg);
    }
    return COFFER_OK;
}

/* ---- encryption ---- */

/* The engine's secret from an options struct's key or passphrase. sec points into the box: set
 * one up where it stays (a writer's, or the caller's stack) and wipe it with secret_wipe. */
typedef struct secret_box {
    cf_master_key mk;
    cf_snapshot_secret sec;
    char *pass; /* a writer's own copy of the passphrase */
    size_t pass_len;
} secret_box;

static int secret_from(const unsigned char *key, const char *pass, size_t pass_len, int copy, secret_box *b,
                       coffer_error *e)
{
    memset(b, 0, sizeof *b);
    if (key && pass)
        return cf_lib_fail(e, COFFER_EINVAL, "give an encryption key or a passphrase, not both");
    if (key) {
        cf_err err = {0};
        int rc = cf_master_key_from_bytes(key, COFFER_KEY_SIZE, &b->mk, &err);
        if (rc)
            return fail(e, rc, &err);
        b->sec.key = &b->mk;
    } else if (pass) {
        if (pass_len < 8)
            return cf_lib_fail(e, COFFER_EINVAL, "the passphrase is shorter than 8 bytes");
        if (copy) {
            if (!(b->pass = malloc(pass_len + 1)))
                return cf_lib_fail(e, COFFER_ENOMEM, "out of memory");
            memcpy(b->pass, pass, pass_len);
            b->pass[pass_len] = '\0';
            b->pass_len = pass_len;
        }
        b->sec.passphrase = copy ? b->pass : pass;
        b->sec.passphrase_len = pass_len;
    }
    return COFFER_OK;
}

static const cf_snapshot_secret *secret_of(const secret_box *b)
{
    return b->sec.key || b->sec.passphrase ? &b->sec : NULL;
}

static void secret_wipe(secret_box *b)
{
    cf_master_key_cleanup(&b->mk);
    if (b->pass) {
        explicit_bzero(b->pass, b->pass_len);
        free(b->pass);
    }
    memset(b, 0, sizeof *b);
}

/* ---- create ---- */

/* A directory's create hands the engine one context for its two callbacks; the application gave
 * each its own. */
typedef struct dir_callbacks {
    coffer_progress_fn progress;
    void *progress_ctx;
    coffer_skipped_fn skipped;
    void *skipped_ctx;
    coffer_skipped_fn notice;
    void *notice_ctx;
} dir_callbacks;

static void dir_progress(void *ctx, uint64_t done, uint64_t total)
{
    const dir_callbacks *cb = ctx;
    if (cb->progress)
        cb->progress(cb->progress_ctx, done, total);
}

static void dir_skipped(void *ctx, const char *path, const char *why)
{
    const dir_callbacks *cb = ctx;
    if (cb->skipped)
        cb->skipped(cb->skipped_ctx, path, why);
}

static void create_notice(void *ctx, const char *msg)
{
    const dir_callbacks *cb = ctx;
    if (cb->notice)
        cb->notice(cb->notice_ctx, msg, NULL);
}

/* cb (a directory's create: NULL otherwise) receives the application's callbacks and must live
 * as long as co. */
static int engine_create_opts(const coffer_create_options *options, cf_snapshot_create_opts *co,
                              secret_box *box, int copy_secret, dir_callbacks *cb, coffer_error *e)
{
    coffer_create_options o;
    int st = cf_lib_copy_options(&o, sizeof o, options, "coffer_create_options", e);
    if (st)
        return st;
    static const cf_codec codecs[] = {CF_CODEC_ZSTD, CF_CODEC_LZ4, CF_CODEC_GZIP, CF_CODEC_NONE};
    if ((unsigned)o.compression >= sizeof codecs / sizeof codecs[0])
        return cf_lib_fail(e, COFFER_EINVAL,
                           "coffer_create_options: compression is not a coffer_compression");
    if (o.nlabels > 64 || (o.nlabels && !o.labels))
        return cf_lib_fail(e, COFFER_EINVAL,
                           "coffer_create_options: at most 64 labels, and labels for nlabels");
    for (size_t i = 0; i < o.nlabels; i++) {
        const coffer_label *l = &o.labels[i];
        if (!l->key || !*l->key || strchr(l->key, '=') || !l->value)
            return cf_lib_fail(e, COFFER_EINVAL,
                               "coffer_create_options: a label needs a key (without '=') and a value");
        if (!cf_lib_text_valid(l->key) || !cf_lib_text_valid(l->value))
            return cf_lib_fail(e, COFFER_EINVAL, "coffer_create_options: labels must be valid UTF-8");
        for (size_t k = 0; k < i; k++)
            if (!strcmp(o.labels[k].key, l->key)) {
                char msg[200];
                snprintf(msg, sizeof msg, "coffer_create_options: label '%.60s' is given twice", l->key);
                return cf_lib_fail(e, COFFER_EINVAL, msg);
            }
    }
    if (o.nexclude && !o.exclude)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_create_options: exclude is NULL but nexclude is not 0");
    for (size_t i = 0; i < o.nexclude; i++)
        if (!o.exclude[i])
            return cf_lib_fail(e, COFFER_EINVAL, "coffer_create_options: an exclude pattern is NULL");
    memset(co, 0, sizeof *co);
    co->codec = codecs[o.compression];
    co->level = o.level ? o.level : cf_codec_default_level(co->codec);
    cf_err err = {0};
    int rc = cf_codec_check_level(co->codec, co->level, &err);
    if (rc)
        return fail(e, rc, &err);
    co->chunk_size = o.chunk_size;
    co->threads = o.threads;
    co->expected_size = o.expected_size;
    /* cf_label's strings are not const only because parsed manifests own theirs; the engine
     * only reads these. */
    co->labels = (const cf_label *)o.labels;
    co->nlabels = o.nlabels;
    co->exclude = o.exclude;
    co->nexclude = o.nexclude;
    co->one_file_system = o.one_file_system;
    co->allow_unreadable = o.allow_unreadable;
    co->progress = o.progress;
    co->cb_ctx = o.progress_ctx;
    co->resume = o.resume != 0;
    if (cb && (o.skipped || o.notice)) {
        *cb = (dir_callbacks){o.progress, o.progress_ctx, o.skipped, o.skipped_ctx, o.notice, o.notice_ctx};
        co->progress = o.progress ? dir_progress : NULL;
        co->skipped = o.skipped ? dir_skipped : NULL;
        co->notice = o.notice ? create_notice : NULL;
        co->cb_ctx = cb;
    }
    if ((st = secret_from(o.key, o.passphrase, o.passphrase_len, copy_secret, box, e)))
        return st;
    co->secret = secret_of(box);
    return COFFER_OK;
}
_Static_assert(sizeof(cf_label) == sizeof(coffer_label), "coffer_label is laid out as cf_label");

/* A struct the caller gave (NULL: none) must say how long it is: its leading struct_size. */
int cf_lib_check_result(const void *result, const char *what, coffer_error *e)
{
    size_t theirs = result ? *(const size_t *)result : sizeof(size_t);
    if (theirs >= sizeof(size_t))
        return COFFER_OK;
    char msg[120];
    snprintf(msg, sizeof msg, "%s: struct_size is %zu; set it to sizeof(%s)", what, theirs, what);
    return cf_lib_fail(e, COFFER_EINVAL, msg);
}

/* Writes into out the fields of what that fit in out's struct_size (ends: where each field after
 * struct_size ends, in order): an older program's shorter struct gets its prefix, nothing past
 * it, not part of a field; a newer program's longer one keeps what this library does not know. */
void cf_lib_put_result(void *out, const void *what, const size_t *ends, size_t nends)
{
    size_t theirs = *(const size_t *)out, fit = sizeof(size_t);
    for (size_t i = 0; i < nends && ends[i] <= theirs; i++)
        fit = ends[i];
    memcpy((char *)out + sizeof(size_t), (const char *)what + sizeof(size_t), fit - sizeof(size_t));
}

static int check_result(const coffer_result *result, coffer_error *e)
{
    return cf_lib_check_result(result, "coffer_result", e);
}

#define RESULT_END(field) CF_LIB_FIELD_END(coffer_result, field)

static void put_result(coffer_result *out, const coffer_result *what)
{
    static const size_t ends[] = {RESULT_END(id), RESULT_END(raw_size), RESULT_END(stored_size),
                                  RESULT_END(files), RESULT_END(skipped)};
    cf_lib_put_result(out, what, ends, sizeof ends / sizeof ends[0]);
}
_Static_assert(offsetof(coffer_result, id) == sizeof(size_t), "struct_size comes first");
_Static_assert(RESULT_END(skipped) == sizeof(coffer_result), "put_result knows every field");

/* Logs how a create or restore ended (verb: "created", "restored"; where: "source" or "to") and
 * fills result on success. */
static int finished(coffer_repo *r, const char *verb, const char *ns, const char *where, const char *what,
                    int rc, const cf_err *err, const char *made, const cf_snapshot_stats *stats,
                    coffer_result *result, coffer_error *e)
{
    char msg[64];
    if (rc) {
        snprintf(msg, sizeof msg, "snapshot not %s", verb);
        cf_log(&r->log, CF_LOG_WARN, msg, "namespace", ns, where, what, "error", err->msg, NULL);
        return fail(e, rc, err);
    }
    char raw[24], stored[24];
    snprintf(msg, sizeof msg, "snapshot %s", verb);
    snprintf(raw, sizeof raw, "%llu", (unsigned long long)stats->raw_bytes);
    snprintf(stored, sizeof stored, "%llu", (unsigned long long)stats->stored_bytes);
    cf_log(&r->log, CF_LOG_INFO, msg, "namespace", ns, "id", made, where, what, "raw_bytes", raw,
           "stored_bytes", stored, NULL);
    if (result) {
        coffer_result mine = {.struct_size = sizeof mine,
                              .raw_size = stats->raw_bytes,
                              .stored_size = stats->stored_bytes,
                              .files = stats->files,
                              .skipped = stats->skipped};
        snprintf(mine.id, sizeof mine.id, "%s", made);
        put_result(result, &mine);
    }
    return ok(e);
}

static int run_create(coffer_repo *r, const char *ns, cf_snapshot_create_opts *co, const char *what,
                      coffer_result *result, coffer_error *e)
{
    char made[CF_SNAPSHOT_ID_LEN + 1] = "";
    cf_snapshot_stats stats = {0};
    cf_err err = {0};
    int rc = cf_snapshot_create(r->repo, ns, co, made, &stats, &err);
    return finished(r, "created", ns, "source", what, rc, &err, made, &stats, result, e);
}

/* A snapshot of what path names: a directory (file 0), or a regular file or FIFO (file 1). */
static int create_path(coffer_repo *r, const char *ns, const char *path, int file,
                       const coffer_create_options *options, coffer_result *result, coffer_error *e)
{
    cf_snapshot_create_opts co;
    int st = check_ns(r, ns, e);
    if (!st && (!path || !*path || strcmp(path, "-") == 0))
        st = cf_lib_fail(e, COFFER_EINVAL,
                         file ? "coffer_create_file: a file path is needed"
                              : "coffer_create_dir: a directory path is needed");
    if (!st)
        st = check_result(result, e);
    secret_box box;
    dir_callbacks cb;
    if (!st)
        st = engine_create_opts(options, &co, &box, 0, &cb, e);
    if (st)
        return st;
    co.source = path;
    co.file = file;
    st = run_create(r, ns, &co, file ? "file" : "directory", result, e);
    secret_wipe(&box);
    return st;
}

int coffer_create_dir(coffer_repo *r, const char *ns, const char *path, const coffer_create_options *options,
                      coffer_result *result, coffer_error *e)
{
    return create_path(r, ns, path, 0, options, result, e);
}

int coffer_create_file(coffer_repo *r, const char *ns, const char *path, const coffer_create_options *options,
                       coffer_result *result, coffer_error *e)
{
    return create_path(r, ns, path, 1, options, result, e);
}

static int read_fd(void *ctx, void *buf, size_t cap, size_t *got, cf_err *err)
{
    int fd = *(const int *)ctx;
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n >= 0) {
            *got = (size_t)n;
            return 0;
        }
        if (errno != EINTR)
            return cf_err_sys(err, CF_EIO, errno, "cannot read the source file descriptor %d", fd);
    }
}

/* A stream's source descriptor, and what stops reading it (NULL: nothing). */
typedef struct fd_source {
    int fd;
    const atomic_int *cancel;
} fd_source;

static int read_source(void *ctx, void *buf, size_t cap, size_t *got, cf_err *err)
{
    fd_source *src = ctx;
    if (src->cancel && atomic_load(src->cancel))
        return cf_err_set(err, CF_EIO, "the snapshot was cancelled; no snapshot was created");
    return read_fd(&src->fd, buf, cap, got, err);
}

/* A stream snapshot read from fd (command NULL), or from a shell command's output. */
static int create_stream(coffer_repo *r, const char *ns, int fd, const char *command,
                         const atomic_int *cancel, const coffer_create_options *options,
                         coffer_result *result, coffer_error *e)
{
    cf_snapshot_create_opts co;
    int st = check_ns(r, ns, e);
    if (!st && !command && fd < 0)
        st = cf_lib_fail(e, COFFER_EINVAL, "coffer_create_fd: the file descriptor is negative");
    if (!st)
        st = check_result(result, e);
    secret_box box;
    dir_callbacks cb;
    if (!st)
        st = engine_create_opts(options, &co, &box, 0, &cb, e);
    if (st)
        return st;
    co.source = "-";
    co.command = command;
    fd_source src = {fd, cancel};
    if (!command) {
        co.read = read_source;
        co.read_ctx = &src;
    }
    st = run_create(r, ns, &co, command ? "command" : "fd", result, e);
    secret_wipe(&box);
    if (st && cancel && atomic_load(cancel))
        st = cf_lib_fail(e, COFFER_EABORTED, "the snapshot was cancelled; no snapshot was created");
    return st;
}

int cf_lib_create_fd_cancellable(coffer_repo *r, const char *ns, int fd, const coffer_create_options *options,
                                 const atomic_int *cancel, coffer_result *result, coffer_error *e)
{
    return create_stream(r, ns, fd, NULL, cancel, options, result, e);
}

int coffer_create_fd(coffer_repo *r, const char *ns, int fd, const coffer_create_options *options,
                     coffer_result *result, coffer_error *e)
{
    return create_stream(r, ns, fd, NULL, NULL, options, result, e);
}

int coffer_create_command(coffer_repo *r, const char *ns, const char *command,
                          const coffer_create_options *options, coffer_result *result, coffer_error *e)
{
    if (!command)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_create_command: a command is needed");
    return create_stream(r, ns, -1, command, NULL, options, result, e);
}

/* ---- a stream the application writes ---- */

/* The engine pulls its source, the application pushes: the engine runs cf_snapshot_create on a
 * thread of the writer reading the pipe's end that write() fills. When the engine stops early (a
 * failure), the thread drains the pipe until the application commits or aborts, so that write
 * never blocks on a reader that is gone nor raises SIGPIPE (changing its disposition would be
 * process-wide state). */
struct coffer_writer {
    coffer_repo *repo;
    char ns[256];
    cf_snapshot_create_opts co;
    cf_label *labels;  /* the writer's copies, one allocation with their strings */
    secret_box secret; /* co.secret points here */
    int pipe_rd, pipe_wr;
    pthread_t thread;
    atomic_int aborted;
    pthread_mutex_t mu;
    int finished, rc; /* under mu: the engine has returned rc */
    cf_err err;       /* under mu once finished */
    char id[CF_SNAPSHOT_ID_LEN + 1];
    cf_snapshot_stats stats;
};

static int read_pushed(void *ctx, void *buf, size_t cap, size_t *got, cf_err *err)
{
    coffer_writer *w = ctx;
    int rc = read_fd(&w->pipe_rd, buf, cap, got, err);
    if (!rc && *got == 0 && atomic_load(&w->aborted))
        return cf_err_set(err, CF_EIO, "the stream was aborted by the application; no snapshot was created");
    return rc;
}

static void *writer_main(void *arg)
{
    coffer_writer *w = arg;
    cf_err err = {0};
    int rc = cf_snapshot_create(w->repo->repo, w->ns, &w->co, w->id, &w->stats, &err);
    pthread_mutex_lock(&w->mu);
    w->finished = 1;
    w->rc = rc;
    w->err = err;
    pthread_mutex_unlock(&w->mu);
    char buf[65536];
    for (;;) {
        ssize_t n = read(w->pipe_rd, buf, sizeof buf);
        /* errno only speaks for a failed read: after an interrupted one, a 0 (the end) would
         * otherwise look interrupted too and the loop would spin. */
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        break;
    }
    return NULL;
}

/* Frees what a writer owns besides its pipe and thread; its secret is wiped. */
static void writer_discard(coffer_writer *w)
{
    secret_wipe(&w->secret);
    free(w->labels);
    free(w);
}

/* n labels and their strings in one allocation (one free), or NULL when out of memory. */
static cf_label *labels_dup(const cf_label *src, size_t n)
{
    size_t bytes = n * sizeof(cf_label);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(src[i].key) + strlen(src[i].value) + 2;
    cf_label *l = malloc(bytes ? bytes : 1);
    if (!l)
        return NULL;
    char *s = (char *)(l + n);
    for (size_t i = 0; i < n; i++) {
        l[i].key = strcpy(s, src[i].key);
        s += strlen(s) + 1;
        l[i].value = strcpy(s, src[i].value);
        s += strlen(s) + 1;
    }
    return l;
}

static int copy_labels(coffer_writer *w, coffer_error *e)
{
    if (!w->co.nlabels)
        return COFFER_OK;
    if (!(w->labels = labels_dup(w->co.labels, w->co.nlabels)))
        return cf_lib_fail(e, COFFER_ENOMEM, "out of memory");
    w->co.labels = w->labels;
    return COFFER_OK;
}

int coffer_writer_begin(coffer_repo *r, const char *ns, const coffer_create_options *options,
                        coffer_writer **out, coffer_error *e)
{
    int st = check_ns(r, ns, e);
    if (!st && !out)
        st = cf_lib_fail(e, COFFER_EINVAL, "coffer_writer_begin: out is NULL");
    if (st)
        return st;
    coffer_writer *w = calloc(1, sizeof *w);
    if (!w)
        return cf_lib_fail(e, COFFER_ENOMEM, "out of memory");
    w->repo = r;
    snprintf(w->ns, sizeof w->ns, "%s", ns);
    if ((st = engine_create_opts(options, &w->co, &w->secret, 1, NULL, e)) || (st = copy_labels(w, e))) {
        writer_discard(w);
        return st;
    }
    /* The engine's exclusions apply to directories only: a stream keeps none of the caller's
     * pointers past this call. */
    w->co.exclude = NULL;
    w->co.nexclude = 0;
    w->co.resume = 0; /* nothing in the repository to clean after an application's own stream */
    w->co.source = "-";
    w->co.read = read_pushed;
    w->co.read_ctx = w;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "coffer_writer_begin: cannot make a pipe: %s", strerror(errno));
        writer_discard(w);
        return cf_lib_fail(e, COFFER_EIO, msg);
    }
    w->pipe_rd = fds[0];
    w->pipe_wr = fds[1];
    pthread_mutex_init(&w->mu, NULL);
    cf_lib_repo_hold(r);
    int prc = pthread_create(&w->thread, NULL, writer_main, w);
    if (prc) {
        close(fds[0]);
        close(fds[1]);
        pthread_mutex_destroy(&w->mu);
        writer_discard(w);
        cf_lib_repo_release(r);
        return cf_lib_fail(e, prc == EAGAIN ? COFFER_EAGAIN : COFFER_EIO,
                           "coffer_writer_begin: cannot start a thread");
    }
    *out = w;
    return ok(e);
}

/* The engine's failure while it runs, or 0. */
static int engine_failed(coffer_writer *w, coffer_error *e)
{
    pthread_mutex_lock(&w->mu);
    int st = w->finished && w->rc ? fail(e, w->rc, &w->err) : COFFER_OK;
    pthread_mutex_unlock(&w->mu);
    return st;
}

int coffer_writer_write(coffer_writer *w, const void *p, size_t n, coffer_error *e)
{
    if (!w || (n && !p))
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_writer_write: no writer, or no bytes for n");
    int st = engine_failed(w, e);
    if (st)
        return st;
    const char *c = p;
    while (n) {
        ssize_t k = write(w->pipe_wr, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "coffer_writer_write: cannot hand the bytes over: %s", strerror(errno));
            return cf_lib_fail(e, COFFER_EIO, msg);
        }
        c += k;
        n -= (size_t)k;
    }
    return ok(e);
}

static void writer_free(coffer_writer *w)
{
    coffer_repo *r = w->repo;
    close(w->pipe_rd);
    pthread_mutex_destroy(&w->mu);
    writer_discard(w);
    cf_lib_repo_release(r);
}

int coffer_writer_commit(coffer_writer *w, coffer_result *result, coffer_error *e)
{
    if (!w)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_writer_commit: no writer");
    int st = check_result(result, e);
    if (st) {
        /* Freed whatever the outcome, as promised; what it held is not stored. */
        coffer_writer_abort(w);
        return st;
    }
    close(w->pipe_wr);
    pthread_join(w->thread, NULL);
    st = finished(w->repo, "created", w->ns, "source", "writer", w->rc, &w->err, w->id, &w->stats, result, e);
    writer_free(w);
    return st;
}

void coffer_writer_abort(coffer_writer *w)
{
    if (!w)
        return;
    atomic_store(&w->aborted, 1);
    close(w->pipe_wr);
    pthread_join(w->thread, NULL);
    cf_log(&w->repo->log, CF_LOG_INFO, "snapshot aborted", "namespace", w->ns, NULL);
    writer_free(w);
}

/* ---- list, show ---- */

static int resolve_id(coffer_repo *r, const char *ns, const char *id, char buf[CF_SNAPSHOT_ID_LEN + 1],
                      coffer_error *e);

typedef struct listing {
    coffer_snapshot_info *v;
    size_t n, cap;
} listing;

static int collect(void *ctx, const cf_manifest *m)
{
    listing *l = ctx;
    coffer_snapshot_info *v = cf_grow(l->v, &l->cap, l->n, sizeof *v, 16);
    if (!v)
        return CF_ENOMEM;
    l->v = v;
    coffer_snapshot_info *s = &l->v[l->n];
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", m->id);
    s->created = (int64_t)m->created;
    s->created_ns = m->created_ns;
    s->is_stream = m->source.kind == CF_SOURCE_STREAM;
    s->raw_size = m->archive.raw_size;
    s->stored_size = m->archive.size;
    s->files = m->archive.files;
    s->compression = cf_codec_name(m->archive.compression);
    s->encrypted = m->encryption != NULL;
    if (m->nlabels) {
        cf_label *lab = labels_dup(m->labels, m->nlabels);
        if (!lab)
            return CF_ENOMEM;
        s->labels = (const coffer_label *)lab;
        s->nlabels = m->nlabels;
    }
    l->n++;
    return 0;
}

void coffer_list_free(coffer_snapshot_info *list, size_t count)
{
    for (size_t i = 0; list && i < count; i++)
        free((void *)list[i].labels);
    free(list);
}

int coffer_list(coffer_repo *r, const char *ns, coffer_snapshot_info **out, size_t *count, coffer_error *e)
{
    int st = check_ns(r, ns, e);
    if (!st && (!out || !count))
        st = cf_lib_fail(e, COFFER_EINVAL, "coffer_list: out and count are needed");
    if (st)
        return st;
    listing l = {0};
    cf_err err = {0};
    int rc = cf_snapshot_list(r->repo, ns, collect, &l, &err);
    if (rc) {
        coffer_list_free(l.v, l.n);
        return rc == CF_ENOMEM && !err.msg[0] ? cf_lib_fail(e, COFFER_ENOMEM, "out of memory")
                                              : fail(e, rc, &err);
    }
    *out = l.v;
    *count = l.n;
    return ok(e);
}

int coffer_latest(coffer_repo *r, const char *ns, char id[COFFER_ID_SIZE], coffer_error *e)
{
    int st = check_ns(r, ns, e);
    if (!st && !id)
        st = cf_lib_fail(e, COFFER_EINVAL, "coffer_latest: id is NULL");
    if (!st)
        st = resolve_id(r, ns, NULL, id, e);
    return st ? st : ok(e);
}

void coffer_free(void *p)
{
    free(p);
}

int coffer_show(coffer_repo *r, const char *ns, const char *id, char **json, size_t *len, coffer_error *e)
{
    int st = check_ns(r, ns, e);
    if (!st)
        st = check_id(id, 1, e);
    if (!st && !json)
        st = cf_lib_fail(e, COFFER_EINVAL, "coffer_show: json is NULL");
    if (st)
        return st;
    size_t n = 0;
    cf_err err = {0};
    int rc = cf_snapshot_show(r->repo, ns, id, json, &n, &err);
    if (rc)
        return fail(e, rc, &err);
    if (len)
        *len = n;
    return ok(e);
}

/* ---- restore, verify ---- */

/* cb receives the application's callbacks and must live as long as ro. */
static int restore_opts(const coffer_restore_options *options, const char *id, cf_snapshot_restore_opts *ro,
                        secret_box *box, dir_callbacks *cb, coffer_error *e)
{
    coffer_restore_options o;
    int st = cf_lib_copy_options(&o, sizeof o, options, "coffer_restore_options", e);
    if (!st)
        st = secret_from(o.key, o.passphrase, o.passphrase_len, 0, box, e);
    if (st)
        return st;
    memset(ro, 0, sizeof *ro);
    ro->id = id;
    ro->force = o.force;
    ro->progress = o.progress;
    ro->cb_ctx = o.progress_ctx;
    ro->resume = o.resume != 0;
    if (o.notice) {
        *cb = (dir_callbacks){o.progress, o.progress_ctx, NULL, NULL, o.notice, o.notice_ctx};
        ro->progress = o.progress ? dir_progress : NULL;
        ro->notice = create_notice;
        ro->cb_ctx = cb;
    }
    ro->secret = secret_of(box);
    return COFFER_OK;
}

/* A restore into a directory, or into a shell command's standard input (command non-NULL). */
static int restore_to(coffer_repo *r, const char *ns, const char *id, const char *dest, const char *command,
                      const coffer_restore_options *options, coffer_result *result, coffer_error *e)
{
    cf_snapshot_restore_opts ro;
    int st = check_ns(r, ns, e);
    if (!st)
        st = check_id(id, 1, e);
    if (!st && !command && (!dest || !*dest || strcmp(dest, "-") == 0))
        st = cf_lib_fail(e, COFFER_EINVAL, "coffer_restore_dir: a destination directory is needed");
    if (!st)
        st = check_result(result, e);
    secret_box box;
    dir_callbacks cb;
    if (!st)
        st = restore_opts(options, id, &ro, &box, &cb, e);
    if (st)
        return st;
    char made[CF_SNAPSHOT_ID_LEN + 1] = "";
    cf_err err = {0};
    cf_snapshot_stats stats = {0};
    int rc = dest ? cf_snapshot_restore(r->repo, ns, dest, NULL, &ro, made, &stats, &err)
                  : cf_snapshot_restore_to_command(r->repo, ns, command, &ro, made, &stats, &err);
    secret_wipe(&box);
    return finished(r, "restored", ns, "to", dest ? "directory" : "command", rc, &err, made, &stats, result,
                    e);
}

int coffer_restore_dir(coffer_repo *r, const char *ns, const char *id, const char *dest,
                       const coffer_restore_options *options, coffer_result *result, coffer_error *e)
{
    return restore_to(r, ns, id, dest ? dest : "", NULL, options, result, e);
}

int coffer_restore_command(coffer_repo *r, const char *ns, const char *id, const char *command,
                           const coffer_restore_options *options, coffer_result *result, coffer_error *e)
{
    if (!command)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_restore_command: a command is needed");
    return restore_to(r, ns, id, NULL, command, options, result, e);
}

/* The restored stream goes to a FILE (the engine's interface for "-"): a cookie stream whose
 * writes call the application's function, unbuffered so that each of the engine's blocks reaches
 * it without a copy. */
typedef struct sink {
    coffer_write_fn fn;
    void *ctx;
    int fd;
    int status;    /* the first failure: a negative coffer_status */
    int sys_errno; /* an fd's: the engine's message then names the system's reason */
} sink;

static ssize_t sink_write(void *cookie, const char *p, size_t n)
{
    sink *s = cookie;
    int st = s->fn(s->ctx, p, n);
    if (st == COFFER_OK)
        return (ssize_t)n;
    s->status = st < 0 ? st : COFFER_ECALLBACK;
    errno = s->sys_errno ? s->sys_errno : EIO;
    return -1;
}

static int to_fd(void *ctx, const void *p, size_t n)
{
    sink *s = ctx;
    const char *c = p;
    while (n) {
        ssize_t k = write(s->fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            s->sys_errno = errno;
            return COFFER_EIO;
        }
        c += k;
        n -= (size_t)k;
    }
    return COFFER_OK;
}

static int restore_stream(coffer_repo *r, const char *ns, const char *id, sink *s, const char *to,
                          const coffer_restore_options *options, coffer_result *result, coffer_error *e)
{
    cf_snapshot_restore_opts ro;
    int st = check_ns(r, ns, e);
    if (!st)
        st = check_id(id, 1, e);
    if (!st)
        st = check_result(result, e);
    secret_box box;
    dir_callbacks cb;
    if (!st)
        st = restore_opts(options, id, &ro, &box, &cb, e);
    if (st)
        return st;
    FILE *f = fopencookie(s, "w", (cookie_io_functions_t){.write = sink_write});
    if (!f) {
        secret_wipe(&box);
        return cf_lib_fail(e, COFFER_ENOMEM, "out of memory");
    }
    setvbuf(f, NULL, _IONBF, 0);
    char made[CF_SNAPSHOT_ID_LEN + 1] = "";
    cf_err err = {0};
    cf_snapshot_stats stats = {0};
    int rc = cf_snapshot_restore(r->repo, ns, "-", f, &ro, made, &stats, &err);
    secret_wipe(&box);
    fclose(f);
    if (s->sys_errno) {
        /* The engine's own words for "-" (the command line's restore to standard output). */
        rc = cf_err_sys(&err, CF_EIO, s->sys_errno, "cannot write the restored stream");
    } else if (s->status) {
        char msg[200];
        snprintf(msg, sizeof msg, "the restored stream's %s failed: %s",
                 s->fd >= 0 ? "file descriptor" : "callback", coffer_strerror(s->status));
        cf_log(&r->log, CF_LOG_WARN, "snapshot not restored", "namespace", ns, "to", to, "error", msg, NULL);
        return cf_lib_fail(e, s->status, msg);
    }
    return finished(r, "restored", ns, "to", to, rc, &err, made, &stats, result, e);
}

int coffer_restore_fd(coffer_repo *r, const char *ns, const char *id, int fd,
                      const coffer_restore_options *options, coffer_result *result, coffer_error *e)
{
    if (fd < 0)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_restore_fd: the file descriptor is negative");
    sink s = {to_fd, NULL, fd, 0, 0};
    s.ctx = &s;
    return restore_stream(r, ns, id, &s, "fd", options, result, e);
}

int coffer_restore_cb(coffer_repo *r, const char *ns, const char *id, coffer_write_fn fn, void *ctx,
                      const coffer_restore_options *options, coffer_result *result, coffer_error *e)
{
    if (!fn)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_restore_cb: the write function is NULL");
    sink s = {fn, ctx, -1, 0, 0};
    return restore_stream(r, ns, id, &s, "callback", options, result, e);
}

/* id, or the newest snapshot's when NULL, into buf. */
static int resolve_id(coffer_repo *r, const char *ns, const char *id, char buf[CF_SNAPSHOT_ID_LEN + 1],
                      coffer_error *e)
{
    if (id) {
        snprintf(buf, CF_SNAPSHOT_ID_LEN + 1, "%s", id);
        return COFFER_OK;
    }
    cf_err err = {0};
    int rc = cf_snapshot_latest(r->repo, ns, buf, &err);
    return rc ? fail(e, rc, &err) : COFFER_OK;
}

int coffer_verify(coffer_repo *r, const char *ns, const char *id, const coffer_restore_options *options,
                  coffer_error *e)
{
    char which[CF_SNAPSHOT_ID_LEN + 1];
    cf_snapshot_restore_opts ro;
    secret_box box;
    dir_callbacks cb;
    int st = check_ns(r, ns, e);
    if (!st)
        st = check_id(id, 1, e);
    if (!st)
        st = restore_opts(options, id, &ro, &box, &cb, e);
    if (st)
        return st;
    /* After the options are accepted: the newest is found by listing the repository. */
    if ((st = resolve_id(r, ns, id, which, e))) {
        secret_wipe(&box);
        return st;
    }
    cf_err err = {0};
    int rc = cf_snapshot_verify(r->repo, ns, which, ro.secret, &err);
    secret_wipe(&box);
    if (rc) {
        cf_log(&r->log, CF_LOG_WARN, "snapshot failed verification", "namespace", ns, "id", which, "error",
               err.msg, NULL);
        return fail(e, rc, &err);
    }
    cf_log(&r->log, CF_LOG_INFO, "snapshot verified", "namespace", ns, "id", which, NULL);
    return ok(e);
}

/* ---- remove, prune ---- */

int coffer_remove(coffer_repo *r, const char *ns, const char *id, coffer_error *e)
{
    int st = check_ns(r, ns, e);
    if (!st)
        st = check_id(id, 0, e);
    if (st)
        return st;
    cf_err err = {0};
    int rc = cf_snapshot_remove(r->repo, ns, id, &err);
    if (rc)
        return fail(e, rc, &err);
    cf_log(&r->log, CF_LOG_INFO, "snapshot removed", "namespace", ns, "id", id, NULL);
    return ok(e);
}

typedef struct prune_ctx {
    coffer_repo *r;
    const char *ns;
    const coffer_retention *policy;
    size_t removed;
} prune_ctx;

static void on_fate(void *ctx, const char *id, const char *reasons)
{
    prune_ctx *p = ctx;
    if (!reasons) {
        p->removed++;
        cf_log(&p->r->log, CF_LOG_INFO, p->policy->dry_run ? "snapshot would be pruned" : "snapshot pruned",
               "namespace", p->ns, "id", id, NULL);
    }
    if (p->policy->fn)
        p->policy->fn(p->policy->ctx, id, reasons);
}

int coffer_prune(coffer_repo *r, const char *ns, const coffer_retention *policy, size_t *removed,
                 coffer_error *e)
{
    coffer_retention o;
    int st = check_ns(r, ns, e);
    if (!st && !policy)
        st = cf_lib_fail(e, COFFER_EINVAL, "coffer_prune: a retention policy is needed");
    if (!st)
        st = cf_lib_copy_options(&o, sizeof o, policy, "coffer_retention", e);
    if (st)
        return st;
    if (o.keep_last < 0 || o.keep_hourly < 0 || o.keep_daily < 0 || o.keep_weekly < 0 || o.keep_monthly < 0 ||
        o.keep_yearly < 0 || o.keep_within_s < 0 || o.grace_s < 0)
        return cf_lib_fail(e, COFFER_EINVAL, "coffer_retention: counts and durations cannot be negative");
    cf_retention keep = {o.keep_last,    o.keep_hourly, o.keep_daily,   o.keep_weekly,
                         o.keep_monthly, o.keep_yearly, o.keep_within_s};
    prune_ctx p = {r, ns, &o, 0};
    size_t swept = 0;
    cf_err err = {0};
    int64_t grace_s = o.grace_s || o.grace_as_given ? o.grace_s : 86400;
    int rc = cf_snapshot_prune(r->repo, ns, &keep, grace_s, o.dry_run, on_fate, &p, &swept, &err);
    if (removed)
        *removed = p.removed;
    if (o.swept)
        *o.swept = swept;
    return rc ? fail(e, rc, &err) : ok(e);
}
