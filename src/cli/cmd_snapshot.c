/*
 * cmd_snapshot.c - `coffer snapshot create|ls|restore|verify|show|rm|prune`: the command line
 * over libcoffer's public API (coffer/coffer.h), so that the command and the library cannot
 * drift apart. Repositories: s3://BUCKET/PREFIX/NAMESPACE or a directory (the S3 endpoint and
 * keys found as for every client command: cli/target.h, then handed to coffer_repo_open).
 * Besides the API this file uses only command-line business: the REPO[@ID] syntax
 * (snapshot/ref.h, whose namespace and id rules are the library's own) and the key file format
 * of --encrypt-key-file (archive/seal.h); scripts/check-layers.sh keeps it so.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "archive/seal.h"
#include "cli/cli.h"
#include "cli/cli_format.h"
#include "cli/target.h"
#include "coffer/coffer.h"
#include "core/duration.h"
#include "core/fs.h"
#include "snapshot/ref.h"

/* After the verbs' usage lines (see verbs[] below). */
static const char snapshot_usage_footer[] =
    "\n"
    "SOURCE is a directory, a file (its bytes, as a stream snapshot: a regular file resumes like a\n"
    "directory, a FIFO does not) or - (standard input); a symlink is followed. REPO is\n"
    "s3://BUCKET/[PREFIX/]NAMESPACE or a directory whose last segment is the namespace.\n"
    "S3 options: --endpoint URL --region R --profile P --access-key K --secret-key-file F\n"
    "(or COFFER_* / AWS_* variables).\n" CF_CLI_NET_USAGE
    "--metrics-file PATH writes Prometheus textfile metrics of the run (for node_exporter).\n"
    "A progress bar goes to standard error when it is a terminal (--no-progress: never).\n"
    "Exit codes: 0 done; 1 failed (I/O, network, a command that failed); 2 bad command line or\n"
    "repository, or a destination that is not empty; 3 no such snapshot; 4 damaged data (checksum,\n"
    "truncated or corrupt archive or manifest); 5 wrong or missing key or passphrase; 6 no such\n"
    "bucket; 7 access denied (bad credentials, no permission); 8 a source file cannot be read.\n";

/* docs/SNAPSHOTS.md lists these; scripts depend on them, so they never change meaning. */
enum {
    EXIT_NOT_FOUND = 3,
    EXIT_DAMAGED = 4,
    EXIT_KEY = 5,
    EXIT_NO_BUCKET = 6,
    EXIT_DENIED = 7,
    EXIT_UNREADABLE = 8
};

typedef struct snap_opts {
    cf_cli_target_flags s3;
    const char *compress, *key_file, *pass_file;
    int level, level_set, jobs, json, force;
    size_t chunk_mib;
    coffer_label labels[64];
    size_t nlabels;
    coffer_retention keep; /* the --keep-* values as given (negative ones too) */
    int64_t grace_s;
    int dry_run, all;
    const char *from_command, *to_command, *metrics_file;
    const char *exclude[256];
    size_t nexclude;
    int one_file_system, allow_unreadable, no_progress, no_resume;
    uint64_t expected_size;
} snap_opts;

/* "500G", "2T", "1048576": bytes, with binary K, M, G, T (an "iB" or "B" after them is fine). */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return CF_EINVAL;
    int shift = 0;
    switch (*end) {
    case 'K':
    case 'k':
        shift = 10;
        end++;
        break;
    case 'M':
    case 'm':
        shift = 20;
        end++;
        break;
    case 'G':
    case 'g':
        shift = 30;
        end++;
        break;
    case 'T':
    case 't':
        shift = 40;
        end++;
        break;
    default: break;
    }
    if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
        end += strlen(end);
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return CF_EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

/* The S3 answer behind an error (libcoffer's, kept in err by from_api) tells a missing bucket
 * from a missing snapshot, and refused credentials from a wrong encryption key (both CF_EAUTH). */
static int exit_for(int rc, const cf_err *err)
{
    int s3_refused = err->answer.status == 401 || err->answer.status == 403;
    switch (rc) {
    case CF_ENOTFOUND: return !strcmp(err->answer.code, "NoSuchBucket") ? EXIT_NO_BUCKET : EXIT_NOT_FOUND;
    case CF_EAUTH: return s3_refused ? EXIT_DENIED : EXIT_KEY;
    case CF_EDENIED: return EXIT_DENIED;
    case CF_EDIGEST:
    case CF_ECORRUPT: return EXIT_DAMAGED;
    case CF_EUNREADABLE: return EXIT_UNREADABLE;
    case CF_EINVAL:
    case CF_EEXISTS: return CF_EXIT_USAGE;
    default: return CF_EXIT_FAILURE;
    }
}

/* ---- progress on a terminal ---- */

typedef struct progress {
    int on;
    double t0, last;
    uint64_t done, total;
    const char *verb;
} progress;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void progress_draw(progress *p, int final)
{
    double t = now_s(), el = t - p->t0;
    char done[32], total[32], rate[32], eta[32] = "";
    cf_cli_human_bytes((double)p->done, 2, done, sizeof done);
    cf_cli_human_bytes(el > 0 ? (double)p->done / el : 0, 2, rate, sizeof rate);
    if (p->total && !final) {
        uint64_t d = p->done < p->total ? p->done : p->total;
        double left = d && el > 0 ? (double)(p->total - d) / ((double)d / el) : 0;
        cf_cli_human_bytes((double)p->total, 2, total, sizeof total);
        if (d)
            snprintf(eta, sizeof eta, "  ETA %d:%02d", (int)left / 60, (int)left % 60);
        fprintf(stderr, "\r\033[K%s %s / %s  %3d%%  %s/s%s", p->verb, done, total,
                (int)(100.0 * (double)d / (double)p->total), rate, eta);
    } else {
        fprintf(stderr, "\r\033[K%s %s  %s/s%s", p->verb, done, rate, final ? "\n" : "");
    }
    fflush(stderr);
    p->last = t;
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    progress *p = ctx;
    p->done = done;
    p->total = total;
    if (p->on && now_s() - p->last >= 0.25)
        progress_draw(p, 0);
}

static void on_skipped(void *ctx, const char *path, const char *why)
{
    progress *p = ctx;
    fprintf(stderr, "%scoffer snapshot create: left out \"%s\" (cannot read: %s)\n", p->on ? "\r\033[K" : "",
            path, why);
}

/* What a create or restore decided about an interrupted run: on standard error, also with --json. */
static void on_notice(void *ctx, const char *msg, const char *unused)
{
    progress *p = ctx;
    (void)unused;
    fprintf(stderr, "%scoffer snapshot: %s\n", p->on ? "\r\033[K" : "", msg);
}

/* What opens or seals encrypted snapshots: the 32 bytes of --encrypt-key-file or the text of
 * --passphrase-file (never taken from the command line); wiped by wipe_secret. */
typedef struct snap_secret {
    cf_master_key key;
    int has_key;
    char *pass;
    size_t pass_len;
} snap_secret;

/* The secret of --encrypt-key-file (32 raw bytes or 64 hex digits) or --passphrase-file. */
static int load_secret(const snap_opts *o, snap_secret *sec, cf_err *err)
{
    memset(sec, 0, sizeof *sec);
    if (o->key_file && o->pass_file)
        return cf_err_set(err, CF_EINVAL, "give --encrypt-key-file or --passphrase-file, not both");
    if (o->key_file) {
        int rc = cf_master_key_from_file(o->key_file, &sec->key, err);
        sec->has_key = !rc;
        return rc;
    }
    if (!o->pass_file)
        return 0;
    size_t len = 0;
    int rc = cf_fs_read_small(o->pass_file, 4096, &sec->pass, &len, err);
    if (rc)
        return rc;
    while (len && (sec->pass[len - 1] == '\n' || sec->pass[len - 1] == '\r'))
        sec->pass[--len] = '\0';
    if (len < 8)
        return cf_err_set(err, CF_EINVAL, "the passphrase in '%s' is shorter than 8 characters",
                          o->pass_file);
    sec->pass_len = len;
    return 0;
}

static void wipe_secret(snap_secret *sec)
{
    cf_master_key_cleanup(&sec->key);
    if (sec->pass)
        explicit_bzero(sec->pass, strlen(sec->pass));
    free(sec->pass);
    memset(sec, 0, sizeof *sec);
}

/* A libcoffer answer as a cf_err, so that exit_for and the messages stay as they were: the code
 * is the CF_E one the status renumbers, the S3 answer goes along, and where the library names an
 * option field (a missing key or passphrase, force) the command line names its option. */
static int from_api(int status, const coffer_error *e, cf_err *err)
{
    if (status == COFFER_OK)
        return 0;
    int code = status <= COFFER_EINVAL && status >= COFFER_EINTERNAL ? CF_ERR_FIRST_ - status : CF_EIO;
    static const struct {
        int status;
        const char *library, *cli;
    } hints[] = {
        {COFFER_EAUTH, "with a key; none was given", "with a key file; give --encrypt-key-file"},
        {COFFER_EAUTH, "with a passphrase; none was given", "with a passphrase; give --passphrase-file"},
        {COFFER_EEXISTS, "; the restore option force replaces it", "; hint: --force replaces it"}};
    size_t len = strlen(e->message), keep = len;
    const char *hint = "";
    for (size_t i = 0; i < sizeof hints / sizeof hints[0]; i++) {
        size_t tail = strlen(hints[i].library);
        if (status == hints[i].status && len >= tail &&
            strcmp(e->message + len - tail, hints[i].library) == 0) {
            keep = len - tail;
            hint = hints[i].cli;
        }
    }
    cf_err_set(err, code, "%.*s%s", (int)keep, e->message, hint);
    if (err) {
        err->answer.status = e->http_status;
        snprintf(err->answer.code, sizeof err->answer.code, "%s", e->s3_code);
    }
    return code;
}

/* The repository of ref through the public API: for s3:// the command line's own target rules
 * (flags, profiles, COFFER_* / AWS_* variables) decide the endpoint and keys, which libcoffer
 * then takes as explicit values. */
static int open_repo(const cf_snapshot_ref *ref, const snap_opts *o, coffer_repo **repo, cf_err *err)
{
    char url[PATH_MAX + 80];
    coffer_repo_options ro = {.struct_size = sizeof ro};
    cf_cli_target t = {0};
    int rc = 0;
    if (ref->is_s3) {
        rc = cf_cli_target_resolve(&o->s3, &t, err);
        ro.endpoint = t.endpoint;
        ro.region = t.region;
        ro.access_key = t.access_key;
        ro.secret_key = t.secret_key;
        ro.session_token = t.session_token[0] ? t.session_token : NULL;
        ro.virtual_host = t.virtual_host == 1; /* otherwise path-style except AWS's, as resolved */
        ro.max_attempts = (unsigned)t.max_attempts;
        ro.retry_budget_ms = (uint64_t)t.retry_budget_ms;
        ro.stall_timeout_ms = (uint64_t)t.stall_timeout_ms;
        /* A '/' after the prefix, which the library takes off: a prefix ending in '/' (from
         * s3://b/a//ns) stays as written. */
        snprintf(url, sizeof url, "s3://%s/%s%s", ref->bucket, ref->root, ref->root[0] ? "/" : "");
    } else {
        /* file:// so that a directory named like a URL stays a directory. */
        snprintf(url, sizeof url, "file://%s", ref->root);
    }
    coffer_error e;
    if (!rc)
        rc = from_api(coffer_repo_open(url, &ro, repo, &e), &e, err);
    explicit_bzero(&t, sizeof t);
    return rc;
}

static int print_entry(const snap_opts *o, const char *ns, const coffer_snapshot_info *m)
{
    char when[32];
    struct tm tm;
    time_t created = (time_t)m->created;
    gmtime_r(&created, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (o->json) {
        json_t *labels = json_object();
        int lost = !labels;
        for (size_t i = 0; i < m->nlabels; i++)
            lost |= json_object_set_new(labels, m->labels[i].key, json_string(m->labels[i].value)) != 0;
        if (lost) {
            json_decref(labels);
            return CF_ENOMEM;
        }
        json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:s, s:o}", "id", m->id, "namespace", ns,
                              "created", when, "size", (json_int_t)m->stored_size, "raw_size",
                              (json_int_t)m->raw_size, "files", (json_int_t)m->files, "encrypted",
                              m->encrypted, "compression", m->compression, "labels", labels);
        char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        if (!text)
            return CF_ENOMEM;
        printf("%s\n", text);
        free(text);
    } else {
        printf("%-21s  %s  %12llu  %12llu  %s", m->id, when, (unsigned long long)m->stored_size,
               (unsigned long long)m->raw_size, m->encrypted ? "enc" : "-");
        for (size_t i = 0; i < m->nlabels; i++)
            printf("  %s=%s", m->labels[i].key, m->labels[i].value);
        printf("\n");
    }
    return 0;
}

/*
 * Prometheus textfile (node_exporter's --collector.textfile.directory): the last run's result,
 * duration and volume; the last success time is carried over from the previous file when this
 * run failed, so an alert on its age fires.
 */
static void write_metrics(const char *path, const char *verb, const char *ns, int rc,
                          const struct timespec *t0, const coffer_result *res)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
    long long now = (long long)time(NULL), last_ok = rc ? 0 : now;
    char *old = NULL;
    if (rc && cf_fs_read_small(path, 1 << 20, &old, NULL, NULL) == 0) {
        const char *p = strstr(old, "coffer_snapshot_last_success_timestamp_seconds{");
        if (p && (p = strchr(p, '}')))
            last_ok = atoll(p + 1);
    }
    free(old);
    char buf[4096], labels[512];
    snprintf(labels, sizeof labels, "command=\"%s\",namespace=\"%s\"", verb, ns);
    int n = snprintf(buf, sizeof buf,
                     "# HELP coffer_snapshot_success 1 when the last run succeeded.\n"
                     "# TYPE coffer_snapshot_success gauge\n"
                     "coffer_snapshot_success{%s} %d\n"
                     "# TYPE coffer_snapshot_last_run_timestamp_seconds gauge\n"
                     "coffer_snapshot_last_run_timestamp_seconds{%s} %lld\n"
                     "# TYPE coffer_snapshot_last_success_timestamp_seconds gauge\n"
                     "coffer_snapshot_last_success_timestamp_seconds{%s} %lld\n"
                     "# TYPE coffer_snapshot_duration_seconds gauge\n"
                     "coffer_snapshot_duration_seconds{%s} %.3f\n"
                     "# TYPE coffer_snapshot_raw_bytes gauge\n"
                     "coffer_snapshot_raw_bytes{%s} %llu\n"
                     "# TYPE coffer_snapshot_stored_bytes gauge\n"
                     "coffer_snapshot_stored_bytes{%s} %llu\n"
                     "# TYPE coffer_snapshot_files gauge\n"
                     "coffer_snapshot_files{%s} %llu\n",
                     labels, rc ? 0 : 1, labels, now, labels, last_ok, labels, secs, labels,
                     (unsigned long long)res->raw_size, labels, (unsigned long long)res->stored_size, labels,
                     (unsigned long long)res->files);
    cf_err err;
    /* Atomic: node_exporter must never read half a file. */
    if (n > 0 && (size_t)n < sizeof buf && cf_fs_write_atomic(path, buf, (size_t)n, 0644, &err) != 0)
        fprintf(stderr, "coffer snapshot: cannot write --metrics-file: %s\n", err.msg);
}

/* The --json answer of create and restore: one object on standard output. */
static void print_result(const char *what, const char *ns, const char *repo, const coffer_result *res,
                         double secs)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:f, s:f}", "result", what, "id", res->id,
                          "namespace", ns, "repository", repo, "raw_bytes", (json_int_t)res->raw_size,
                          "stored_bytes", (json_int_t)res->stored_size, "files", (json_int_t)res->files,
                          "skipped", (json_int_t)res->skipped, "seconds", secs, "raw_bytes_per_second",
                          secs > 0 ? (double)res->raw_size / secs : 0.0);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text)
        printf("%s\n", text);
    free(text);
    json_decref(j);
}

static void print_fate(void *ctx, const char *id, const char *reasons)
{
    const snap_opts *o = ctx;
    if (!reasons)
        printf("%s %s\n", o->dry_run ? "would remove" : "remove", id);
    else if (!*reasons)
        printf("%s %s (archive without a manifest, older than the grace period)\n",
               o->dry_run ? "would remove" : "remove", id);
    else
        printf("keep   %s (%s)\n", id, reasons);
}

/* What every verb works on: the parsed command line, the open repository and the run's
 * results. */
typedef struct snap_run {
    snap_opts *o;
    char **args; /* the operands after the verb */
    const char *repo_text;
    cf_snapshot_ref ref;
    coffer_repo *api;
    const snap_secret *secret;
    progress *bar;
    coffer_result result; /* of create and restore, for --json and --metrics-file */
    cf_err err;           /* with the S3 answer behind it (from_api) */
} snap_run;

/* --compress's names, in libcoffer's terms. */
static int compression_named(const char *name, coffer_compression *out)
{
    static const struct {
        const char *name;
        coffer_compression c;
    } names[] = {{"zstd", COFFER_COMPRESSION_ZSTD},
                 {"lz4", COFFER_COMPRESSION_LZ4},
                 {"gzip", COFFER_COMPRESSION_GZIP},
                 {"none", COFFER_COMPRESSION_NONE}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i].name)) {
            *out = names[i].c;
            return 0;
        }
    return CF_EINVAL;
}

static int run_create(snap_run *r)
{
    const snap_opts *o = r->o;
    coffer_create_options co = {.struct_size = sizeof co,
                                .level = o->level_set ? o->level : 0, /* the library checks it */
                                .chunk_size = o->chunk_mib << 20,
                                .threads = o->jobs > 0 ? (unsigned)o->jobs : 0,
                                .expected_size = o->expected_size,
                                .labels = o->labels,
                                .nlabels = o->nlabels,
                                .exclude = o->exclude,
                                .nexclude = o->nexclude,
                                .one_file_system = o->one_file_system,
                                .allow_unreadable = o->allow_unreadable,
                                .key = r->secret->has_key ? r->secret->key.key : NULL,
                                .passphrase = r->secret->pass,
                                .passphrase_len = r->secret->pass_len,
                                .progress =
                                    r->bar->on ? on_progress : NULL, /* the bar measures the source first */
                                .progress_ctx = r->bar,
                                .skipped = on_skipped,
                                .skipped_ctx = r->bar,
                                .resume = !o->no_resume,
                                .notice = on_notice,
                                .notice_ctx = r->bar};
    coffer_error e;
    int rc = 0;
    if (o->compress && compression_named(o->compress, &co.compression) != 0) {
        fprintf(stderr, "coffer snapshot: --compress must be zstd, lz4, gzip or none, not '%s'\n",
                o->compress);
        rc = CF_EINVAL;
    } else if (o->from_command) {
        rc = from_api(coffer_create_command(r->api, r->ref.ns, o->from_command, &co, &r->result, &e), &e,
                      &r->err);
    } else if (strcmp(r->args[0], "-") == 0) {
        rc = from_api(coffer_create_fd(r->api, r->ref.ns, STDIN_FILENO, &co, &r->result, &e), &e, &r->err);
    } else {
        /* What is not a directory goes to the file create, which names what it refuses; what
         * cannot be looked at, to the directory create, which says why. */
        struct stat st;
        int file = stat(r->args[0], &st) == 0 && !S_ISDIR(st.st_mode);
        rc = from_api(file ? coffer_create_file(r->api, r->ref.ns, r->args[0], &co, &r->result, &e)
                           : coffer_create_dir(r->api, r->ref.ns, r->args[0], &co, &r->result, &e),
                      &e, &r->err);
    }
    if (r->bar->on)
        progress_draw(r->bar, 1);
    if (!rc && o->json)
        print_result("created", r->ref.ns, coffer_repo_name(r->api), &r->result, now_s() - r->bar->t0);
    else if (!rc)
        printf("%s\n", r->result.id);
    return rc;
}

static int run_ls(snap_run *r)
{
    coffer_snapshot_info *list = NULL;
    size_t n = 0;
    coffer_error e;
    int rc = from_api(coffer_list(r->api, r->ref.ns, &list, &n, &e), &e, &r->err);
    for (size_t i = 0; !rc && i < n; i++)
        rc = print_entry(r->o, r->ref.ns, &list[i]);
    coffer_list_free(list, n);
    return rc;
}

static coffer_restore_options restore_options(const snap_run *r);

static int run_restore(snap_run *r)
{
    const snap_opts *o = r->o;
    const char *id = r->ref.id[0] ? r->ref.id : NULL;
    coffer_result *res = &r->result;
    int to_stdout = !o->to_command && !strcmp(r->args[1], "-");
    coffer_restore_options ro = restore_options(r);
    ro.force = o->force;
    ro.progress = r->bar->on ? on_progress : NULL;
    ro.progress_ctx = r->bar;
    ro.resume = !o->no_resume;
    ro.notice = on_notice;
    ro.notice_ctx = r->bar;
    coffer_error e;
    fflush(stdout);
    int st;
    if (o->to_command)
        st = coffer_restore_command(r->api, r->ref.ns, id, o->to_command, &ro, res, &e);
    else if (to_stdout)
        st = coffer_restore_fd(r->api, r->ref.ns, id, STDOUT_FILENO, &ro, res, &e);
    else
        st = coffer_restore_dir(r->api, r->ref.ns, id, r->args[1], &ro, res, &e);
    int rc = from_api(st, &e, &r->err);
    if (r->bar->on)
        progress_draw(r->bar, 1);
    /* With "-" the restored bytes own standard output. */
    if (!rc && o->json && !to_stdout)
        print_result("restored", r->ref.ns, coffer_repo_name(r->api), res, now_s() - r->bar->t0);
    return rc;
}

/* What opens an encrypted snapshot, as libcoffer takes it (the key's 32 bytes, or the passphrase). */
static coffer_restore_options restore_options(const snap_run *r)
{
    coffer_restore_options ro = {.struct_size = sizeof ro};
    ro.key = r->secret->has_key ? r->secret->key.key : NULL;
    ro.passphrase = r->secret->pass;
    ro.passphrase_len = r->secret->pass_len;
    return ro;
}

/* --all checks every snapshot and goes on past a damaged one; the run fails if any did. */
static int verify_all(snap_run *r, const coffer_restore_options *ro)
{
    coffer_snapshot_info *list = NULL;
    size_t n = 0;
    coffer_error e;
    int rc = from_api(coffer_list(r->api, r->ref.ns, &list, &n, &e), &e, &r->err), damaged = 0, unchecked = 0;
    cf_err why = {
        0}; /* the last failure that was not damage: a network that failed says nothing of the data */
    for (size_t i = 0; !rc && i < n; i++) {
        cf_err one = {0};
        int one_rc = from_api(coffer_verify(r->api, r->ref.ns, list[i].id, ro, &e), &e, &one);
        if (one_rc == CF_EDIGEST || one_rc == CF_ECORRUPT) {
            damaged++;
        } else if (one_rc) {
            unchecked++;
            why = one;
        }
        if (one_rc)
            fprintf(stderr, "%s: FAILED: %s\n", list[i].id, one.msg);
        else
            printf("%s: ok\n", list[i].id);
    }
    coffer_list_free(list, n);
    if (!rc && damaged)
        rc = cf_err_set(&r->err, CF_EDIGEST, "%d snapshot(s) failed verification", damaged + unchecked);
    else if (!rc && unchecked) {
        r->err = why;
        rc = cf_err_reword(&r->err, why.code, "%d snapshot(s) could not be verified; the last: %.400s",
                           unchecked, why.msg);
    }
    return rc;
}

static int run_verify(snap_run *r)
{
    coffer_restore_options ro = restore_options(r);
    if (r->o->all)
        return verify_all(r, &ro);
    char id[COFFER_ID_SIZE] = "";
    snprintf(id, sizeof id, "%s", r->ref.id);
    coffer_error e;
    int rc = id[0] ? 0 : from_api(coffer_latest(r->api, r->ref.ns, id, &e), &e, &r->err);
    if (!rc)
        rc = from_api(coffer_verify(r->api, r->ref.ns, id, &ro, &e), &e, &r->err);
    if (!rc)
        printf("%s: ok\n", id);
    return rc;
}

static int run_show(snap_run *r)
{
    char *json = NULL;
    size_t len = 0;
    coffer_error e;
    int rc = from_api(coffer_show(r->api, r->ref.ns, r->ref.id[0] ? r->ref.id : NULL, &json, &len, &e), &e,
                      &r->err);
    if (!rc)
        fwrite(json, 1, len, stdout);
    coffer_free(json);
    return rc;
}

static int run_rm(snap_run *r)
{
    if (!r->ref.id[0]) {
        fprintf(stderr, "coffer snapshot rm: name the snapshot: %.*s@ID (see coffer snapshot ls)\n",
                (int)strcspn(r->repo_text, "@"), r->repo_text);
        return CF_EINVAL;
    }
    coffer_error e;
    int rc = from_api(coffer_remove(r->api, r->ref.ns, r->ref.id, &e), &e, &r->err);
    if (!rc)
        printf("removed %s\n", r->ref.id);
    return rc;
}

/* A negative --keep-* has always counted as absent; libcoffer refuses it, so it becomes 0 here. */
static int count_of(int n)
{
    return n > 0 ? n : 0;
}

static int run_prune(snap_run *r)
{
    const snap_opts *o = r->o;
    size_t swept = 0;
    coffer_retention keep = {.struct_size = sizeof keep,
                             .keep_last = count_of(o->keep.keep_last),
                             .keep_hourly = count_of(o->keep.keep_hourly),
                             .keep_daily = count_of(o->keep.keep_daily),
                             .keep_weekly = count_of(o->keep.keep_weekly),
                             .keep_monthly = count_of(o->keep.keep_monthly),
                             .keep_yearly = count_of(o->keep.keep_yearly),
                             .keep_within_s = o->keep.keep_within_s > 0 ? o->keep.keep_within_s : 0,
                             .grace_s = o->grace_s,
                             .dry_run = o->dry_run,
                             .fn = print_fate,
                             .ctx = r->o,
                             .grace_as_given = 1,
                             .swept = &swept};
    coffer_error e;
    int rc = from_api(coffer_prune(r->api, r->ref.ns, &keep, NULL, &e), &e, &r->err);
    if (rc == CF_ENOTSUP) {
        /* The snapshots are pruned; only the sweep for leftovers (ListMultipartUploads)
         * is something this endpoint does not offer. */
        fprintf(stderr, "coffer snapshot prune: warning: cannot look for interrupted uploads: %s\n",
                r->err.msg);
        rc = 0;
    }
    if (!rc && swept)
        printf("removed %zu leftover(s) of interrupted writes\n", swept);
    return rc;
}

/* Which option, when given, stands in for a verb's local operand (SOURCE or DEST). */
typedef enum { NO_COMMAND, FROM_COMMAND, TO_COMMAND } operand_command;

typedef struct snap_verb {
    const char *name;
    int (*run)(snap_run *r);
    int operands;          /* after the verb, the repository included */
    int repo_last;         /* SOURCE REPO rather than REPO DEST */
    int takes_id;          /* REPO may name a snapshot: REPO@ID or REPO@latest */
    operand_command stand; /* the option that replaces the other operand */
    const char *usage;     /* after "coffer snapshot " */
} snap_verb;

static const snap_verb verbs[] = {
    {"create", run_create, 2, 1, 0, FROM_COMMAND,
     "create SOURCE|--from-command CMD REPO [--compress zstd|lz4|gzip|none] [--level N]\n"
     "                                        [--chunk-size MiB] [--jobs N] [--encrypt-key-file F | "
     "--passphrase-file F]\n"
     "                                        [--label KEY=VALUE]... [--exclude PATTERN]... "
     "[--one-file-system]\n"
     "                                        [--allow-unreadable] [--expected-size SIZE] [--json] "
     "[--no-progress]\n"
     "                                        [--no-resume]\n"},
    {"ls", run_ls, 1, 0, 0, NO_COMMAND, "ls REPO [--json]\n"},
    {"restore", run_restore, 2, 0, 1, TO_COMMAND,
     "restore REPO[@ID|@latest] DEST|-|--to-command CMD [--force] [--encrypt-key-file F]\n"
     "                                        [--json] [--no-progress] [--no-resume]\n"},
    {"verify", run_verify, 1, 0, 1, NO_COMMAND, "verify REPO[@ID|@latest] [--all] [--encrypt-key-file F]\n"},
    {"show", run_show, 1, 0, 1, NO_COMMAND, "show REPO[@ID|@latest]\n"},
    {"rm", run_rm, 1, 0, 1, NO_COMMAND, "rm REPO@ID\n"},
    {"prune", run_prune, 1, 0, 0, NO_COMMAND,
     "prune REPO [--keep-last N] [--keep-within D] [--keep-hourly N]\n"
     "                              [--keep-daily N] [--keep-weekly N] [--keep-monthly N]\n"
     "                              [--keep-yearly N] [--grace D] [--dry-run]\n"},
};

static void print_usage(FILE *f)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(f, "%s coffer snapshot %s", i ? "      " : "usage:", verbs[i].usage);
    fputs(snapshot_usage_footer, f);
}

static const snap_verb *find_verb(const char *name)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(verbs[i].name, name))
            return &verbs[i];
    return NULL;
}

static const char *standing_command(const snap_verb *v, const snap_opts *o)
{
    return v->stand == FROM_COMMAND ? o->from_command : v->stand == TO_COMMAND ? o->to_command : NULL;
}

/* The options into o; returns -1 to go on, else the exit code (--help, a bad option). */
static int parse_options(int argc, char **argv, snap_opts *o)
{
    static const struct option longopts[] = {
        {"compress", required_argument, NULL, 'c'},
        {"level", required_argument, NULL, 'l'},
        {"chunk-size", required_argument, NULL, 'C'},
        {"jobs", required_argument, NULL, 'j'},
        {"encrypt-key-file", required_argument, NULL, 'k'},
        {"label", required_argument, NULL, 'L'},
        {"passphrase-file", required_argument, NULL, 'P'},
        {"json", no_argument, NULL, 'J'},
        {"force", no_argument, NULL, 'f'},
        {"endpoint", required_argument, NULL, 'e'},
        {"region", required_argument, NULL, 'r'},
        {"profile", required_argument, NULL, 'p'},
        {"access-key", required_argument, NULL, 'a'},
        {"secret-key-file", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {"keep-last", required_argument, NULL, 1},
        {"keep-hourly", required_argument, NULL, 2},
        {"keep-daily", required_argument, NULL, 3},
        {"keep-weekly", required_argument, NULL, 4},
        {"keep-monthly", required_argument, NULL, 5},
        {"keep-yearly", required_argument, NULL, 6},
        {"keep-within", required_argument, NULL, 7},
        {"grace", required_argument, NULL, 8},
        {"dry-run", no_argument, NULL, 9},
        {"all", no_argument, NULL, 10},
        {"from-command", required_argument, NULL, 11},
        {"to-command", required_argument, NULL, 12},
        {"metrics-file", required_argument, NULL, 13},
        {"exclude", required_argument, NULL, 14},
        {"one-file-system", no_argument, NULL, 15},
        {"no-resume", no_argument, NULL, 40},
        {"allow-unreadable", no_argument, NULL, 16},
        {"no-progress", no_argument, NULL, 17},
        {"expected-size", required_argument, NULL, 18},
        CF_CLI_NET_OPTIONS(19),
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': o->compress = optarg; break;
        case 'l':
            o->level = atoi(optarg);
            o->level_set = 1;
            break;
        case 'C': o->chunk_mib = (size_t)strtoul(optarg, NULL, 10); break;
        case 'j': o->jobs = atoi(optarg); break;
        case 'k': o->key_file = optarg; break;
        case 'P': o->pass_file = optarg; break;
        case 'L': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || o->nlabels == 64) {
                fprintf(stderr, "coffer snapshot: --label takes KEY=VALUE, not '%s'\n", optarg);
                return CF_EXIT_USAGE;
            }
            *eq = '\0';
            o->labels[o->nlabels++] = (coffer_label){optarg, eq + 1};
            break;
        }
        case 'J': o->json = 1; break;
        case 'f': o->force = 1; break;
        case 'e': o->s3.endpoint = optarg; break;
        case 'r': o->s3.region = optarg; break;
        case 'p': o->s3.profile = optarg; break;
        case 'a': o->s3.access_key = optarg; break;
        case 's': o->s3.secret_key_file = optarg; break;
        case 1: o->keep.keep_last = atoi(optarg); break;
        case 2: o->keep.keep_hourly = atoi(optarg); break;
        case 3: o->keep.keep_daily = atoi(optarg); break;
        case 4: o->keep.keep_weekly = atoi(optarg); break;
        case 5: o->keep.keep_monthly = atoi(optarg); break;
        case 6: o->keep.keep_yearly = atoi(optarg); break;
        case 7:
        case 8:
            if (cf_duration_parse(optarg, c == 7 ? &o->keep.keep_within_s : &o->grace_s) != 0) {
                fprintf(stderr, "coffer snapshot: --%s takes a duration like 36h or 7d, not '%s'\n",
                        c == 7 ? "keep-within" : "grace", optarg);
                return CF_EXIT_USAGE;
            }
            break;
        case 9: o->dry_run = 1; break;
        case 10: o->all = 1; break;
        case 11: o->from_command = optarg; break;
        case 12: o->to_command = optarg; break;
        case 13: o->metrics_file = optarg; break;
        case 14:
            if (!*optarg || o->nexclude == sizeof o->exclude / sizeof o->exclude[0]) {
                fprintf(stderr, "coffer snapshot: --exclude takes a non-empty pattern (at most 256)\n");
                return CF_EXIT_USAGE;
            }
            o->exclude[o->nexclude++] = optarg;
            break;
        case 15: o->one_file_system = 1; break;
        case 40: o->no_resume = 1; break;
        case 16: o->allow_unreadable = 1; break;
        case 17: o->no_progress = 1; break;
        case 19:
        case 20:
        case 21: {
            cf_err e;
            if (cf_cli_net_flag(c - 19, optarg, &o->s3, &e) != 0) {
                fprintf(stderr, "coffer snapshot: %s\n", e.msg);
                return CF_EXIT_USAGE;
            }
            break;
        }
        case 18:
            if (parse_size(optarg, &o->expected_size) != 0) {
                fprintf(stderr, "coffer snapshot: --expected-size takes a size like 500G or 2T, not '%s'\n",
                        optarg);
                return CF_EXIT_USAGE;
            }
            break;
        case 'h': print_usage(stdout); return CF_EXIT_OK;
        default: print_usage(stderr); return CF_EXIT_USAGE;
        }
    }
    return -1;
}

int cf_cmd_snapshot(int argc, char **argv)
{
    snap_opts o = {0};
    o.grace_s = 86400;
    int code = parse_options(argc, argv, &o);
    if (code >= 0)
        return code;
    int nargs = argc - optind;
    const snap_verb *v = nargs ? find_verb(argv[optind]) : NULL;
    const char *stand = v ? standing_command(v, &o) : NULL;
    if (!v || nargs - 1 != v->operands - (stand != NULL)) {
        print_usage(stderr);
        return CF_EXIT_USAGE;
    }
    snap_run r = {.o = &o, .args = argv + optind + 1};
    /* A command standing for the local operand leaves the repository as the only one. */
    r.repo_text = v->repo_last && !stand ? r.args[1] : r.args[0];
    if (cf_snapshot_ref_parse(r.repo_text, v->takes_id, &r.ref, &r.err) != 0) {
        fprintf(stderr, "coffer snapshot: %s\n", r.err.msg);
        return CF_EXIT_USAGE;
    }
    snap_secret secret;
    if (load_secret(&o, &secret, &r.err) != 0) {
        wipe_secret(&secret);
        fprintf(stderr, "coffer snapshot: %s\n", r.err.msg);
        return CF_EXIT_USAGE;
    }
    r.secret = &secret;
    r.result.struct_size = sizeof r.result;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    signal(SIGPIPE, SIG_IGN); /* a --to-command that exits early is an error, not our death */
    progress bar = {.t0 = now_s(), .verb = v->name, .on = !o.no_progress && !o.json && isatty(2)};
    r.bar = &bar;
    int rc = open_repo(&r.ref, &o, &r.api, &r.err);
    if (!rc)
        rc = v->run(&r);
    if (o.metrics_file)
        write_metrics(o.metrics_file, v->name, r.ref.ns, rc, &t0, &r.result);
    wipe_secret(&secret);
    coffer_repo_close(r.api);
    code = rc ? exit_for(rc, &r.err) : CF_EXIT_OK;
    if (rc && r.err.msg[0])
        fprintf(stderr, "coffer snapshot %s: %s\n", v->name, r.err.msg);
    return code;
}
