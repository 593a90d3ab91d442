/*
 * cmd_mirror.c - `coffer mirror SRC DST` and `coffer mirror --fix-content-types s3://BUCKET`
 * (docs/MIRROR.md). The work is src/mirror/; this file reads the command line, opens the two
 * sides (each its own endpoint and keys), draws the progress bar, and says how the run went:
 * a human summary or one JSON object on stdout, the failed files on stderr, a node_exporter
 * textfile, and an exit code per outcome.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_format.h"
#include "cli/target.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/log.h"
#include "mirror/mirror.h"
#include "s3client/s3client.h"
#include "storage/repo.h"

#include "mirror/verify.h"
#include "mirror/dated.h"
#include "mirror/fixtypes.h"

enum {
    EXIT_FILES_FAILED = 3,
    EXIT_VERIFY_MISMATCH = 4,
    EXIT_NO_BUCKET = 6,
    EXIT_DENIED = 7,
};

static const char usage[] =
    "usage: coffer mirror [options] SRC DST\n"
    "       coffer mirror --fix-content-types [options] s3://BUCKET[/PREFIX]\n"
    "\n"
    "Makes DST hold what SRC holds, copying only what is new or changed. SRC and DST are each a\n"
    "directory (or file://PATH) or s3://BUCKET[/PREFIX]; the two may be different servers.\n"
    "\n"
    "  --delete              remove from DST what SRC lacks\n"
    "  --dry-run             plan and print, change nothing\n"
    "  --exclude GLOB        leave keys matching GLOB alone on both sides (repeatable; '*' matches\n"
    "                        '/' too; a pattern ending in '/' is a whole directory)\n"
    "  --jobs N              transfers in parallel, 1 to 256 (default 8)\n"
    "  --verify              re-read both sides and compare checksums (with --dry-run: only that)\n"
    "  --dated               mirror into DST/YYYY-MM-DD, hard-linking what the previous copy has\n"
    "  --as-of YYYY-MM-DD    the dated copy's name (default: today, UTC)\n"
    "  --keep-daily N, --keep-weekly N, --keep-monthly N\n"
    "                        retention of the dated copies (as coffer snapshot prune)\n"
    "  --fix-content-types   correct the stored content types of a bucket's objects in place\n"
    "  --json                one JSON object on stdout instead of the summary\n"
    "  --metrics-file PATH   write node_exporter textfile metrics of the run\n"
    "  --no-progress         no progress bar (there is none unless stderr is a terminal)\n"
    "  --log-level LEVEL     debug, info, warn (default), error\n"
    "\n"
    "Server and keys, for both sides: --endpoint URL, --region R, --profile P, --access-key ID,\n"
    "--secret-key-file PATH (see coffer snapshot --help for the order of lookup). For one side\n"
    "only: the same with --src- or --dst- (--src-endpoint, --dst-secret-key-file, ...).\n"
    "\n" CF_CLI_NET_USAGE "\n"
    "Exit codes: 0 done; 1 the run failed; 2 bad command line; 3 some files failed (the others\n"
    "were done); 4 --verify found files missing or different; 6 a bucket does not exist; 7 access\n"
    "denied.\n";

typedef struct mirror_cli {
    cf_cli_target_flags common, side[2]; /* side[0]: --src-*, side[1]: --dst-* */
    int delete_extra, dry_run, jobs, verify, dated, fix_types, json, no_progress;
    const char *as_of, *metrics_file;
    int keep_daily, keep_weekly, keep_monthly;
    const char **exclude;
    size_t nexclude;
    cf_log_level level;
} mirror_cli;

/* One side as given on the command line, and what was opened for it. */
typedef struct side {
    const char *arg;
    int is_s3;
    char bucket[64];
    char prefix[1024];
    char *dir;
    char endpoint[512]; /* an S3 side's, as resolved */
    cf_s3c *client;
    cf_repo *repo;
    cf_mirror_side m;
} side;

/* ---- command line ---- */

static int parse_count(const char *flag, const char *v, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi) {
        fprintf(stderr, "coffer mirror: %s takes a number from %d to %d, not '%s'\n", flag, lo, hi, v);
        return -1;
    }
    *out = (int)n;
    return 0;
}

/* Options into c; -1 to go on, else the exit code. */
static int parse_options(int argc, char **argv, mirror_cli *c)
{
    enum {
        O_DELETE = 256,
        O_DRY,
        O_EXCLUDE,
        O_JOBS,
        O_VERIFY,
        O_DATED,
        O_ASOF,
        O_KD,
        O_KW,
        O_KM,
        O_FIX,
        O_JSON,
        O_METRICS,
        O_NOPROG,
        O_LOG,
        /* --endpoint … for both sides, then --src-… and --dst-…: 5 each, in cf_cli_target_flags order */
        O_TARGET = 512,
        O_NET = 600,
    };
    static const struct option longopts[] = {
        {"delete", no_argument, NULL, O_DELETE},
        {"dry-run", no_argument, NULL, O_DRY},
        {"exclude", required_argument, NULL, O_EXCLUDE},
        {"jobs", required_argument, NULL, O_JOBS},
        {"verify", no_argument, NULL, O_VERIFY},
        {"dated", no_argument, NULL, O_DATED},
        {"as-of", required_argument, NULL, O_ASOF},
        {"keep-daily", required_argument, NULL, O_KD},
        {"keep-weekly", required_argument, NULL, O_KW},
        {"keep-monthly", required_argument, NULL, O_KM},
        {"fix-content-types", no_argument, NULL, O_FIX},
        {"json", no_argument, NULL, O_JSON},
        {"metrics-file", required_argument, NULL, O_METRICS},
        {"no-progress", no_argument, NULL, O_NOPROG},
        {"log-level", required_argument, NULL, O_LOG},
        {"help", no_argument, NULL, 'h'},
        {"endpoint", required_argument, NULL, O_TARGET + 0},
        {"region", required_argument, NULL, O_TARGET + 1},
        {"profile", required_argument, NULL, O_TARGET + 2},
        {"access-key", required_argument, NULL, O_TARGET + 3},
        {"secret-key-file", required_argument, NULL, O_TARGET + 4},
        {"src-endpoint", required_argument, NULL, O_TARGET + 5},
        {"src-region", required_argument, NULL, O_TARGET + 6},
        {"src-profile", required_argument, NULL, O_TARGET + 7},
        {"src-access-key", required_argument, NULL, O_TARGET + 8},
        {"src-secret-key-file", required_argument, NULL, O_TARGET + 9},
        {"dst-endpoint", required_argument, NULL, O_TARGET + 10},
        {"dst-region", required_argument, NULL, O_TARGET + 11},
        {"dst-profile", required_argument, NULL, O_TARGET + 12},
        {"dst-access-key", required_argument, NULL, O_TARGET + 13},
        {"dst-secret-key-file", required_argument, NULL, O_TARGET + 14},
        CF_CLI_NET_OPTIONS(O_NET),
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt >= O_TARGET && opt < O_TARGET + 15) {
            int k = opt - O_TARGET;
            cf_cli_target_flags *f = k < 5 ? &c->common : &c->side[k / 5 - 1];
            const char **field[] = {&f->endpoint, &f->region, &f->profile, &f->access_key,
                                    &f->secret_key_file};
            *field[k % 5] = optarg;
            continue;
        }
        if (opt >= O_NET && opt < O_NET + 3) {
            cf_err e;
            if (cf_cli_net_flag(opt - O_NET, optarg, &c->common, &e) != 0) {
                fprintf(stderr, "coffer mirror: %s\n", e.msg);
                return CF_EXIT_USAGE;
            }
            continue;
        }
        switch (opt) {
        case O_DELETE: c->delete_extra = 1; break;
        case O_DRY: c->dry_run = 1; break;
        case O_EXCLUDE: {
            const char **v = realloc(c->exclude, (c->nexclude + 1) * sizeof *v);
            if (!v) {
                fputs("coffer mirror: out of memory\n", stderr);
                return CF_EXIT_FAILURE;
            }
            c->exclude = v;
            c->exclude[c->nexclude++] = optarg;
            break;
        }
        case O_JOBS:
            if (parse_count("--jobs", optarg, 1, 256, &c->jobs))
                return CF_EXIT_USAGE;
            break;
        case O_VERIFY: c->verify = 1; break;
        case O_DATED: c->dated = 1; break;
        case O_ASOF: {
            int64_t day;
            if (cf_dated_parse(optarg, &day)) {
                fprintf(stderr, "coffer mirror: --as-of takes a calendar date YYYY-MM-DD, not '%s'\n",
                        optarg);
                return CF_EXIT_USAGE;
            }
            c->as_of = optarg;
            break;
        }
        case O_KD:
        case O_KW:
        case O_KM: {
            const char *names[] = {"--keep-daily", "--keep-weekly", "--keep-monthly"};
            int *to[] = {&c->keep_daily, &c->keep_weekly, &c->keep_monthly};
            if (parse_count(names[opt - O_KD], optarg, 0, 100000, to[opt - O_KD]))
                return CF_EXIT_USAGE;
            break;
        }
        case O_FIX: c->fix_types = 1; break;
        case O_JSON: c->json = 1; break;
        case O_METRICS: c->metrics_file = optarg; break;
        case O_NOPROG: c->no_progress = 1; break;
        case O_LOG: {
            int l = cf_log_level_parse(optarg);
            if (l < 0) {
                fprintf(stderr, "coffer mirror: --log-level takes debug, info, warn or error, not '%s'\n",
                        optarg);
                return CF_EXIT_USAGE;
            }
            c->level = (cf_log_level)l;
            break;
        }
        case 'h': fputs(usage, stdout); return CF_EXIT_OK;
        default: fputs(usage, stderr); return CF_EXIT_USAGE;
        }
    }
    return -1;
}

/* The command line's checks that need no server; an exit code, or -1. */
static int check_usage(const mirror_cli *c, int npos)
{
    const char *why = NULL;
    if (c->fix_types && npos != 1)
        why = "--fix-content-types takes one s3://BUCKET[/PREFIX]";
    else if (!c->fix_types && npos != 2)
        why = "give a source and a destination";
    else if (c->fix_types && (c->dated || c->verify || c->delete_extra))
        why = "--fix-content-types goes alone (with --dry-run, --exclude, --jobs)";
    else if (c->dated && c->delete_extra)
        why = "--delete cannot go with --dated: each dated copy is whole, and old ones go by retention";
    else if (!c->dated && (c->as_of || c->keep_daily || c->keep_weekly || c->keep_monthly))
        why = "--as-of and --keep-* go with --dated";
    if (!why)
        return -1;
    fprintf(stderr, "coffer mirror: %s\n%s", why, usage);
    return CF_EXIT_USAGE;
}

/* "s3://bucket/prefix", "file://path" or a path into s. */
static int parse_side(const char *arg, side *s, cf_err *err)
{
    memset(s, 0, sizeof *s);
    s->arg = arg;
    if (!strncmp(arg, "s3://", 5)) {
        const char *b = arg + 5, *slash = strchr(b, '/');
        size_t bl = slash ? (size_t)(slash - b) : strlen(b);
        if (bl == 0 || bl >= sizeof s->bucket)
            return cf_err_set(err, CF_EINVAL, "'%s': a bucket name of 1 to 63 characters is needed", arg);
        s->is_s3 = 1;
        memcpy(s->bucket, b, bl);
        s->bucket[bl] = '\0';
        const char *p = slash ? slash + 1 : "";
        while (*p == '/')
            p++;
        if (strlen(p) >= sizeof s->prefix)
            return cf_err_set(err, CF_EINVAL, "'%s': the prefix is too long", arg);
        snprintf(s->prefix, sizeof s->prefix, "%s", p);
        size_t n = strlen(s->prefix);
        while (n && s->prefix[n - 1] == '/')
            s->prefix[--n] = '\0';
        return 0;
    }
    const char *path = !strncmp(arg, "file://", 7) ? arg + 7 : arg;
    if (!*path)
        return cf_err_set(err, CF_EINVAL, "'%s': an empty path", arg);
    if (!(s->dir = strdup(path)))
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    size_t n = strlen(s->dir);
    while (n > 1 && s->dir[n - 1] == '/')
        s->dir[--n] = '\0';
    return 0;
}

/* The side's flags: its own where given, else the common ones. */
static cf_cli_target_flags side_flags(const mirror_cli *c, int which)
{
    const cf_cli_target_flags *o = &c->side[which], *d = &c->common;
    cf_cli_target_flags f = {
        o->endpoint ? o->endpoint : d->endpoint,
        o->region ? o->region : d->region,
        o->profile ? o->profile : d->profile,
        o->access_key ? o->access_key : d->access_key,
        o->secret_key_file ? o->secret_key_file : d->secret_key_file,
        d->max_attempts,
        d->retry_budget_ms,
        d->stall_timeout_ms,
    };
    /* Keys come in pairs: a side's own access key never borrows the common secret, and the other way. */
    if (o->access_key && !o->secret_key_file)
        f.secret_key_file = NULL;
    if (o->secret_key_file && !o->access_key)
        f.access_key = NULL;
    return f;
}

static int open_side(const mirror_cli *c, int which, side *s, cf_err *err)
{
    int rc = 0;
    if (!s->is_s3) {
        struct stat st;
        if (which == 0 && (stat(s->dir, &st) != 0 || !S_ISDIR(st.st_mode)))
            /* Never made: an empty source would mean "delete everything" to --delete. */
            return cf_err_set(err, CF_EINVAL, "source '%s' is not a directory", s->dir);
        /* A dry run leaves a missing destination missing: it lists empty. */
        if (which == 1 && c->dry_run)
            rc = cf_repo_open_dir_as_is(s->dir, &s->repo, err);
        else if (which == 0 || (rc = cf_fs_mkdirs(s->dir, 0777, err)) == 0)
            rc = cf_repo_open_dir(s->dir, &s->repo, err);
    } else {
        cf_cli_target_flags f = side_flags(c, which);
        cf_cli_target cfg;
        rc = cf_cli_target_resolve(&f, &cfg, err);
        if (!rc)
            rc = cf_s3c_new(&cfg, &s->client, err);
        snprintf(s->endpoint, sizeof s->endpoint, "%s", cfg.endpoint);
        memset(&cfg, 0, sizeof cfg); /* the secret */
        if (!rc)
            rc = cf_repo_open_s3(s->client, s->bucket, s->prefix, &s->repo, err);
    }
    s->m = (cf_mirror_side){s->repo, s->arg, s->dir};
    return rc;
}

/* 1 when one of the two paths (or prefixes) is the other or lies under it. */
static int nested(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;
    if (!la || !lb)
        return 1; /* a whole bucket holds every prefix */
    return !strncmp(a, b, n) && (la == lb || (la < lb ? b[la] : a[lb]) == '/');
}

/* path without symbolic links, "." or "..", also when its last components do not exist yet (a
 * destination is made only after this check). NULL when it cannot be told. */
static char *canonical(const char *path, char out[PATH_MAX])
{
    if (realpath(path, out))
        return out;
    if (errno != ENOENT)
        return NULL;
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    const char *last = slash ? slash + 1 : parent;
    char name[NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", last);
    if (slash == parent)
        parent[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(parent, sizeof parent, ".");
    char up[PATH_MAX];
    if (!*name || !strcmp(name, ".") || !strcmp(name, "..") || !canonical(parent, up))
        return NULL;
    if ((size_t)snprintf(out, PATH_MAX, "%s%s%s", up, strcmp(up, "/") ? "/" : "", name) >= PATH_MAX)
        return NULL;
    return out;
}

/* A mirror into itself, or into (or out of) a part of itself, would copy its own output again on
 * every run, or delete its own source. */
static int sides_overlap(const side *src, const side *dst)
{
    if (src->is_s3 != dst->is_s3)
        return 0;
    if (src->is_s3)
        return !strcmp(src->endpoint, dst->endpoint) && !strcmp(src->bucket, dst->bucket) &&
               nested(src->prefix, dst->prefix);
    char a[PATH_MAX], b[PATH_MAX];
    if (!canonical(src->dir, a) || !canonical(dst->dir, b))
        return 0;
    return nested(a, b) || !strcmp(a, "/") || !strcmp(b, "/");
}

static void close_side(side *s)
{
    cf_repo_close(s->repo);
    cf_s3c_free(s->client);
    free(s->dir);
}

/* ---- progress bar ---- */

typedef struct bar {
    int on;
    double t0;
} bar;

static void draw_progress(void *ctx, const cf_mirror_progress *p)
{
    bar *b = ctx;
    if (!b->on)
        return;
    double el = cf_clock_mono() - b->t0;
    char done[32], total[32], rate[32], eta[32] = "";
    cf_cli_human_bytes((double)p->bytes_done, 1, done, sizeof done);
    cf_cli_human_bytes((double)p->bytes_total, 1, total, sizeof total);
    cf_cli_human_bytes(el > 0 ? (double)p->bytes_done / el : 0, 1, rate, sizeof rate);
    if (p->bytes_done && p->bytes_total > p->bytes_done && el > 0) {
        double left = (double)(p->bytes_total - p->bytes_done) / ((double)p->bytes_done / el);
        snprintf(eta, sizeof eta, "  ETA %d:%02d", (int)left / 60, (int)left % 60);
    }
    fprintf(stderr, "\r\033[Kmirror %llu/%llu files  %s / %s  %s/s%s", (unsigned long long)p->files_done,
            (unsigned long long)p->files_total, done, total, rate, eta);
    fflush(stderr);
}

/* ---- the parts built elsewhere ---- */

typedef struct outcome {
    int ran;
    cf_mirror_summary sum;
    int verified;
    cf_verify_summary vs;
    int dated;
    char dated_name[16];
    char **removed;
    size_t nremoved;
    int fixed;
    cf_fix_summary fs;
} outcome;

static void today(char out[16])
{
    time_t now = cf_clock_now();
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

static int run_dated(const mirror_cli *c, side *src, side *dst, const cf_mirror_opts *o, outcome *out,
                     cf_err *err)
{
    snprintf(out->dated_name, sizeof out->dated_name, "%s", c->as_of ? c->as_of : "");
    if (!c->as_of)
        today(out->dated_name);
    if (!dst->dir)
        return cf_err_set(err, CF_EINVAL, "--dated needs a directory destination, not '%s'", dst->arg);
    cf_dated_opts d = {c->as_of, c->keep_daily, c->keep_weekly, c->keep_monthly};
    out->dated = 1;
    out->ran = 1;
    return cf_mirror_dated(&src->m, dst->dir, o, &d, &out->sum, &out->removed, &out->nremoved, err);
}

static int run_verify(const mirror_cli *c, side *src, side *dst, const cf_logger *log, outcome *out,
                      cf_err *err)
{
    out->verified = 1;
    int rc = cf_mirror_verify(&src->m, &dst->m, c->exclude, c->nexclude, c->jobs ? c->jobs : 8, log, &out->vs,
                              err);
    /* The run's time (summary line, JSON, metrics) includes the reading of both sides. */
    out->sum.seconds += out->vs.seconds;
    return rc;
}

static int run_fix(const mirror_cli *c, side *bucket, const cf_logger *log, outcome *out, cf_err *err)
{
    out->fixed = 1;
    return cf_mirror_fix_content_types(bucket->repo, c->exclude, c->nexclude, c->jobs ? c->jobs : 8,
                                       c->dry_run, log, &out->fs, err);
}

static uint64_t verify_mismatches(const outcome *out)
{
    if (out->verified && !cf_verify_summary_ok(&out->vs))
        return (uint64_t)(out->vs.nmissing + out->vs.ndifferent);
    return 0;
}

static size_t fix_failures(const outcome *out)
{
    if (out->fixed)
        return out->fs.nfailures;
    return 0;
}

/* ---- output ---- */

/* s with its control characters as \xNN: a key comes from a listing anyone may have filled, and
 * an escape sequence in it must not reach the terminal. */
static void put_visible(const char *s, FILE *f)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
}

static void print_failures(const cf_mirror_failure *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fputs("coffer mirror: ", stderr);
        put_visible(f[i].key, stderr);
        fputs(": ", stderr);
        put_visible(f[i].why, stderr);
        fputc('\n', stderr);
    }
}

static json_t *string_array(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* Where the dated copy of this run is (or, dry run, would be) published. */
static void dated_path(const side *dst, const outcome *out, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", dst->dir, out->dated_name);
}

static void print_json(const mirror_cli *c, const side *src, const side *dst, const outcome *out, int rc,
                       const cf_err *err)
{
    const cf_mirror_summary *s = &out->sum;
    json_t *failures = json_array();
    for (size_t i = 0; i < s->nfailures; i++)
        json_array_append_new(
            failures, json_pack("{s:s, s:s}", "key", s->failures[i].key, "error", s->failures[i].why));
    json_t *j = json_pack("{s:s, s:s?, s:b, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I}, s:o, s:f}",
                          "source", src->arg, "destination", dst ? dst->arg : NULL, "dry_run", c->dry_run,
                          "files", "copied", (json_int_t)s->files_copied, "skipped",
                          (json_int_t)s->files_skipped, "linked", (json_int_t)s->files_linked, "deleted",
                          (json_int_t)s->files_deleted, "failed", (json_int_t)s->files_failed, "bytes",
                          "copied", (json_int_t)s->bytes_copied, "skipped", (json_int_t)s->bytes_skipped,
                          "linked", (json_int_t)s->bytes_linked, "failures", failures, "seconds", s->seconds);
    if (j && rc)
        json_object_set_new(j, "error", json_string(err->msg[0] ? err->msg : cf_strerror(rc)));
    if (j && out->verified)
        cf_verify_summary_json(&out->vs, j);
    if (j && out->dated) {
        char path[PATH_MAX + 16];
        dated_path(dst, out, path, sizeof path);
        json_object_set_new(j, "dated",
                            json_pack("{s:s, s:s, s:o}", "name", out->dated_name, "path", path, "removed",
                                      string_array(out->removed, out->nremoved)));
    }
    if (j && out->fixed) {
        json_t *keys = json_array(), *changes = json_array();
        for (size_t i = 0; i < out->fs.nkeys; i++) {
            const cf_fix_change *ch = &out->fs.changes[i];
            json_array_append_new(keys, json_string(out->fs.keys[i]));
            json_array_append_new(changes, json_pack("{s:s, s:s, s:s}", "key", out->fs.keys[i], "from",
                                                     ch->stored, "to", ch->detected));
        }
        json_object_set_new(j, "fixed",
                            json_pack("{s:I, s:I, s:o, s:o}", "checked", (json_int_t)out->fs.checked, "fixed",
                                      (json_int_t)out->fs.fixed, "keys", keys, "changes", changes));
        for (size_t i = 0; i < out->fs.nfailures; i++)
            json_array_append_new(
                json_object_get(j, "failures"),
                json_pack("{s:s, s:s}", "key", out->fs.failures[i].key, "error", out->fs.failures[i].why));
    }
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text)
        printf("%s\n", text);
    else
        fputs("coffer mirror: out of memory for the JSON summary\n", stderr);
    free(text);
    json_decref(j);
}

/* The dated copy made and the copies the retention removed, as --json's "dated" says them. */
static void print_dated(const mirror_cli *c, const side *dst, const outcome *out, int rc)
{
    char path[PATH_MAX + 16];
    dated_path(dst, out, path, sizeof path);
    if (!rc) {
        fputs(c->dry_run ? "would publish " : "dated copy ", stdout);
        put_visible(path, stdout);
        fputc('\n', stdout);
    }
    if (rc && !out->nremoved)
        return; /* a failed night removes nothing */
    printf("%s by retention:", c->dry_run ? "would remove" : "removed");
    for (size_t i = 0; i < out->nremoved; i++)
        printf("%s %s", i ? "," : "", out->removed[i]); /* dated names: YYYY-MM-DD, nothing to escape */
    puts(out->nremoved ? "" : " none");
}

static void print_human(const mirror_cli *c, const side *dst, const outcome *out, int rc)
{
    const cf_mirror_summary *s = &out->sum;
    if (rc && !s->files_copied && !s->files_deleted && !s->files_failed)
        return; /* nothing was done: the error on stderr says it all */
    if (out->ran)
        printf("%scopied %llu files (%llu bytes), skipped %llu, deleted %llu, failed %llu",
               c->dry_run ? "would have " : "", (unsigned long long)s->files_copied,
               (unsigned long long)s->bytes_copied, (unsigned long long)s->files_skipped,
               (unsigned long long)s->files_deleted, (unsigned long long)s->files_failed);
    if (out->dated)
        printf(", linked %llu", (unsigned long long)s->files_linked);
    if (out->verified) {
        char line[256];
        cf_verify_summary_line(&out->vs, line, sizeof line);
        printf("%s%s", out->ran ? ", " : "", line);
        cf_verify_summary_report(&out->vs, stderr);
    }
    if (out->fixed) {
        for (size_t i = 0; c->dry_run && i < out->fs.nkeys; i++) {
            fputs("would fix ", stdout);
            put_visible(out->fs.keys[i], stdout);
            printf(": %s -> %s\n", out->fs.changes[i].stored, out->fs.changes[i].detected);
        }
        printf("checked %llu, fixed %llu content types, failed %zu", (unsigned long long)out->fs.checked,
               (unsigned long long)out->fs.fixed, out->fs.nfailures);
    }
    if (out->ran || out->verified || out->fixed)
        printf(" in %.1f s\n", s->seconds);
    if (out->dated)
        print_dated(c, dst, out, rc);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void label_value(const char *in, char *out, size_t n)
{
    size_t k = 0;
    for (; *in && k + 3 < n; in++) {
        if (*in == '\\' || *in == '"' || *in == '\n') {
            out[k++] = '\\';
            out[k++] = *in == '\n' ? 'n' : *in;
        } else {
            out[k++] = *in;
        }
    }
    out[k] = '\0';
}

static void write_metrics(const char *path, const side *src, const side *dst, const outcome *out, int success)
{
    char s[1024], d[1024], labels[2200];
    label_value(src->arg, s, sizeof s);
    label_value(dst ? dst->arg : "", d, sizeof d);
    snprintf(labels, sizeof labels, "source=\"%s\",destination=\"%s\"", s, d);
    long long now = (long long)cf_clock_now(), last_ok = success ? now : 0;
    char *old = NULL;
    if (!success && cf_fs_read_small(path, 1 << 20, &old, NULL, NULL) == 0) {
        /* A failed run keeps the last success's time, so an alert can say how long it has been.
         * Found by its whole label set: a path may hold a '}' of its own. */
        char sample[2300];
        snprintf(sample, sizeof sample, "coffer_mirror_last_success_timestamp_seconds{%s} ", labels);
        const char *p = strstr(old, sample);
        if (p)
            last_ok = atoll(p + strlen(sample));
    }
    free(old);
    const cf_mirror_summary *m = &out->sum;
    char buf[32768]; /* twelve samples with labels[] at its longest, and the help lines */
    int n = snprintf(
        buf, sizeof buf,
        "# HELP coffer_mirror_last_run_timestamp_seconds When the last coffer mirror run ended.\n"
        "# TYPE coffer_mirror_last_run_timestamp_seconds gauge\n"
        "coffer_mirror_last_run_timestamp_seconds{%s} %lld\n"
        "# HELP coffer_mirror_last_success_timestamp_seconds When the last run without a failure ended.\n"
        "# TYPE coffer_mirror_last_success_timestamp_seconds gauge\n"
        "coffer_mirror_last_success_timestamp_seconds{%s} %lld\n"
        "# HELP coffer_mirror_files Files of the last run, by what was done with them.\n"
        "# TYPE coffer_mirror_files gauge\n"
        "coffer_mirror_files{%s,result=\"copied\"} %llu\n"
        "coffer_mirror_files{%s,result=\"skipped\"} %llu\n"
        "coffer_mirror_files{%s,result=\"linked\"} %llu\n"
        "coffer_mirror_files{%s,result=\"deleted\"} %llu\n"
        "coffer_mirror_files{%s,result=\"failed\"} %llu\n"
        "# HELP coffer_mirror_bytes Bytes of the last run, by what was done with them.\n"
        "# TYPE coffer_mirror_bytes gauge\n"
        "coffer_mirror_bytes{%s,result=\"copied\"} %llu\n"
        "coffer_mirror_bytes{%s,result=\"skipped\"} %llu\n"
        "coffer_mirror_bytes{%s,result=\"linked\"} %llu\n"
        "# HELP coffer_mirror_duration_seconds How long the last run took.\n"
        "# TYPE coffer_mirror_duration_seconds gauge\n"
        "coffer_mirror_duration_seconds{%s} %.3f\n"
        "# HELP coffer_mirror_verify_mismatches Files --verify found missing or different in the last run.\n"
        "# TYPE coffer_mirror_verify_mismatches gauge\n"
        "coffer_mirror_verify_mismatches{%s} %llu\n",
        labels, now, labels, last_ok, labels, (unsigned long long)m->files_copied, labels,
        (unsigned long long)m->files_skipped, labels, (unsigned long long)m->files_linked, labels,
        (unsigned long long)m->files_deleted, labels, (unsigned long long)m->files_failed, labels,
        (unsigned long long)m->bytes_copied, labels, (unsigned long long)m->bytes_skipped, labels,
        (unsigned long long)m->bytes_linked, labels, m->seconds, labels,
        (unsigned long long)verify_mismatches(out));
    cf_err err;
    /* Atomic: node_exporter must never read half a file. */
    if (n < 0 || (size_t)n >= sizeof buf)
        fprintf(stderr, "coffer mirror: cannot write --metrics-file: the paths' labels do not fit\n");
    else if (cf_fs_write_atomic(path, buf, (size_t)n, 0644, &err) != 0)
        fprintf(stderr, "coffer mirror: cannot write --metrics-file: %s\n", err.msg);
}

static void print_planned(void *ctx, const char *action, const char *key, uint64_t size)
{
    (void)ctx;
    printf("would %s ", action);
    put_visible(key, stdout);
    printf(" (%llu bytes)\n", (unsigned long long)size);
}

/* The exit code of a failed run, by its cause. */
static int exit_for(int rc)
{
    switch (rc) {
    case CF_ENOTFOUND: return EXIT_NO_BUCKET;
    case CF_EAUTH:
    case CF_EDENIED: return EXIT_DENIED;
    default: return CF_EXIT_FAILURE;
    }
}

static void free_outcome(outcome *out)
{
    cf_mirror_summary_free(&out->sum);
    if (out->verified)
        cf_verify_summary_free(&out->vs);
    if (out->fixed)
        cf_fix_summary_free(&out->fs);
    for (size_t i = 0; i < out->nremoved; i++)
        free(out->removed[i]);
    free(out->removed);
}

int cf_cmd_mirror(int argc, char **argv)
{
    mirror_cli c = {.level = CF_LOG_WARN};
    int code = parse_options(argc, argv, &c);
    if (code < 0)
        code = check_usage(&c, argc - optind);
    if (code >= 0) {
        free(c.exclude);
        return code;
    }
    cf_logger log = cf_logger_stderr(c.level);
    side sides[2];
    int nsides = c.fix_types ? 1 : 2;
    cf_err err;
    cf_err_clear(&err);
    memset(sides, 0, sizeof sides);
    int rc = 0;
    for (int i = 0; !rc && i < nsides; i++)
        rc = parse_side(argv[optind + i], &sides[i], &err);
    if (rc) {
        fprintf(stderr, "coffer mirror: %s\n", err.msg);
        for (int i = 0; i < nsides; i++)
            free(sides[i].dir);
        free(c.exclude);
        return CF_EXIT_USAGE;
    }
    if (c.fix_types && !sides[0].is_s3) {
        fprintf(stderr, "coffer mirror: --fix-content-types takes s3://BUCKET[/PREFIX], not '%s'\n%s",
                sides[0].arg, usage);
        free(sides[0].dir);
        free(c.exclude);
        return CF_EXIT_USAGE;
    }
    if (c.dated && sides[1].is_s3) {
        /* Dated copies are directories hard-linked to each other: a bucket has neither. */
        fprintf(stderr, "coffer mirror: --dated needs a directory destination, not '%s'\n%s", sides[1].arg,
                usage);
        free(sides[0].dir);
        free(c.exclude);
        return CF_EXIT_USAGE;
    }
    side *src = &sides[0], *dst = c.fix_types ? NULL : &sides[1];
    int overlap = dst && !src->is_s3 && !dst->is_s3 && sides_overlap(src, dst);
    for (int i = 0; !rc && !overlap && i < nsides; i++)
        rc = open_side(&c, i, &sides[i], &err);
    if (!rc && (overlap || (dst && src->is_s3 && sides_overlap(src, dst)))) {
        fprintf(stderr, "coffer mirror: '%s' and '%s' overlap: one is, or lies within, the other\n", src->arg,
                dst->arg);
        for (int i = 0; i < nsides; i++)
            close_side(&sides[i]);
        free(c.exclude);
        return CF_EXIT_USAGE;
    }

    bar b = {.on = !c.no_progress && !c.json && isatty(2), .t0 = cf_clock_mono()};
    cf_mirror_opts o = {.delete_extra = c.delete_extra,
                        .dry_run = c.dry_run,
                        .jobs = c.jobs,
                        .exclude = c.exclude,
                        .nexclude = c.nexclude,
                        .log = &log,
                        .progress = draw_progress,
                        .progress_ctx = &b,
                        .planned = c.json ? NULL : print_planned};
    outcome out;
    memset(&out, 0, sizeof out);
    if (!rc && c.fix_types) {
        rc = run_fix(&c, src, &log, &out, &err);
    } else if (!rc && c.dated) {
        rc = run_dated(&c, src, dst, &o, &out, &err);
    } else if (!rc && !(c.verify && c.dry_run)) {
        out.ran = 1;
        rc = cf_mirror_run(&src->m, &dst->m, &o, &out.sum, &err);
    }
    if (b.on && out.ran)
        fputs("\r\033[K", stderr);
    if (!rc && c.verify && !c.fix_types)
        rc = run_verify(&c, src, dst, &log, &out, &err);

    print_failures(out.sum.failures, out.sum.nfailures);
    if (out.fixed)
        print_failures(out.fs.failures, out.fs.nfailures);
    if (rc)
        fprintf(stderr, "coffer mirror: %s\n", err.msg[0] ? err.msg : cf_strerror(rc));
    if (c.json)
        print_json(&c, src, dst, &out, rc, &err);
    else
        print_human(&c, dst, &out, rc);

    /* A failed run's cause decides; then a proof that failed; then files that failed. */
    code = rc                                           ? exit_for(rc)
           : verify_mismatches(&out)                    ? EXIT_VERIFY_MISMATCH
           : out.sum.files_failed || fix_failures(&out) ? EXIT_FILES_FAILED
                                                        : CF_EXIT_OK;
    if (c.metrics_file && (!c.dry_run || c.verify)) /* a verification is a real run */
        write_metrics(c.metrics_file, src, dst, &out, code == CF_EXIT_OK);
    free_outcome(&out);
    for (int i = 0; i < nsides; i++)
        close_side(&sides[i]);
    free(c.exclude);
    return code;
}
