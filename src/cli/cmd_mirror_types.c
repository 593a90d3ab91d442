/*
 * cmd_mirror_types.c - `coffer mirror --fix-content-types s3://bucket[/prefix]` (docs/MIRROR.md,
 * "Content types"); the work is src/mirror/fixtypes.c. Output and exit codes follow coffer
 * mirror's: the summary on stdout (or one JSON object with --json), every failed object on stderr.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/target.h"
#include "core/log.h"
#include "mirror/fixtypes.h"
#include "s3client/s3client.h"
#include "storage/repo.h"

/* coffer mirror's exit codes (docs/MIRROR.md) beyond cli.h's. */
enum { EXIT_SOME_FAILED = 3, EXIT_NO_BUCKET = 6, EXIT_DENIED = 7 };

#define EXCLUDE_MAX 256

static const char usage_text[] =
    "usage: coffer mirror --fix-content-types [options] s3://bucket[/prefix]\n"
    "Gives every object stored with a generic or wrong content type the one its bytes and name\n"
    "call for, by a copy onto itself on the server: bytes, metadata and cache headers are kept.\n"
    "  --dry-run                  list what would change, change nothing\n"
    "  --exclude GLOB             leave out keys matching GLOB (repeatable; GLOB/ a subtree)\n"
    "  --jobs N                   objects looked at in parallel (1 to 256, default 8)\n"
    "  --json                     one JSON object on stdout\n"
    "  --endpoint URL, --region R, --profile P, --access-key K, --secret-key-file F\n"
    "  --log-level LEVEL          debug, info, warn or error (default warn)\n";

typedef struct fix_opts {
    cf_cli_target_flags s3;
    const char *exclude[EXCLUDE_MAX];
    size_t nexclude;
    int jobs, dry_run, json;
    cf_log_level level;
    const char *url;
} fix_opts;

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "coffer mirror: %s '%s'\n%s", msg, arg, usage_text);
    return CF_EXIT_USAGE;
}

/* -1 to go on, else the exit code. */
static int parse(int argc, char **argv, fix_opts *o)
{
    static const struct option longopts[] = {
        {"fix-content-types", no_argument, NULL, 'F'},
        {"dry-run", no_argument, NULL, 'n'},
        {"exclude", required_argument, NULL, 'x'},
        {"jobs", required_argument, NULL, 'j'},
        {"json", no_argument, NULL, 'J'},
        {"no-progress", no_argument, NULL, 'P'},
        {"log-level", required_argument, NULL, 'l'},
        {"endpoint", required_argument, NULL, 'e'},
        {"region", required_argument, NULL, 'r'},
        {"profile", required_argument, NULL, 'p'},
        {"access-key", required_argument, NULL, 'a'},
        {"secret-key-file", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'F':
        case 'P': break; /* no progress bar: the run prints nothing until its summary */
        case 'n': o->dry_run = 1; break;
        case 'x':
            if (!*optarg || o->nexclude == EXCLUDE_MAX)
                return usage_error("--exclude takes a non-empty pattern (at most 256), not", optarg);
            o->exclude[o->nexclude++] = optarg;
            break;
        case 'j': {
            long j = strtol(optarg, &end, 10);
            if (*end || end == optarg || j < 1 || j > 256)
                return usage_error("--jobs takes 1 to 256, not", optarg);
            o->jobs = (int)j;
            break;
        }
        case 'J': o->json = 1; break;
        case 'l': {
            int level = cf_log_level_parse(optarg);
            if (level < 0)
                return usage_error("--log-level must be debug, info, warn or error, not", optarg);
            o->level = (cf_log_level)level;
            break;
        }
        case 'e': o->s3.endpoint = optarg; break;
        case 'r': o->s3.region = optarg; break;
        case 'p': o->s3.profile = optarg; break;
        case 'a': o->s3.access_key = optarg; break;
        case 's': o->s3.secret_key_file = optarg; break;
        case 'h': fputs(usage_text, stdout); return CF_EXIT_OK;
        default: fputs(usage_text, stderr); return CF_EXIT_USAGE;
        }
    }
    if (optind != argc - 1)
        return usage_error("--fix-content-types takes one s3://bucket[/prefix], not",
                           optind < argc ? argv[optind] : "");
    o->url = argv[optind];
    return -1;
}

/* s3://bucket[/prefix] into bucket and root (no slash at either end). */
static int split_url(const char *url, char *bucket, size_t bcap, char *root, size_t rcap)
{
    if (strncmp(url, "s3://", 5) != 0)
        return -1;
    const char *b = url + 5, *slash = strchr(b, '/');
    size_t blen = slash ? (size_t)(slash - b) : strlen(b);
    if (!blen || blen >= bcap)
        return -1;
    memcpy(bucket, b, blen);
    bucket[blen] = '\0';
    const char *r = slash ? slash + 1 : "";
    size_t rlen = strlen(r);
    while (rlen && r[rlen - 1] == '/')
        rlen--;
    if (rlen >= rcap)
        return -1;
    memcpy(root, r, rlen);
    root[rlen] = '\0';
    return 0;
}

/* Keys and stored types come from the bucket: a control character in one must not reach the
 * terminal as such (an escape sequence could rewrite what the user sees). */
static void put_escaped(const char *s, FILE *f)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
}

static int exit_code_for(int rc)
{
    if (rc == CF_ENOTFOUND)
        return EXIT_NO_BUCKET;
    if (rc == CF_EDENIED || rc == CF_EAUTH)
        return EXIT_DENIED;
    return CF_EXIT_FAILURE;
}

static int print_json(const fix_opts *o, const cf_fix_summary *s)
{
    json_t *keys = json_array(), *changes = json_array(), *failures = json_array();
    int lost = !keys || !changes || !failures;
    for (size_t i = 0; !lost && i < s->nkeys; i++) {
        lost |= json_array_append_new(keys, json_string(s->keys[i])) != 0;
        lost |= json_array_append_new(changes,
                                      json_pack("{s:s, s:s, s:s}", "key", s->keys[i], "from",
                                                s->changes[i].stored, "to", s->changes[i].detected)) != 0;
    }
    for (size_t i = 0; !lost && i < s->nfailures; i++)
        lost |= json_array_append_new(failures, json_pack("{s:s, s:s}", "key", s->failures[i].key, "error",
                                                          s->failures[i].why)) != 0;
    json_t *j =
        lost ? NULL
             : json_pack("{s:s, s:s, s:b, s:{s:i, s:i, s:i, s:i, s:I}, s:{s:i, s:i, s:i}, s:o, s:f, "
                         "s:{s:I, s:I, s:o, s:o}}",
                         "source", o->url, "destination", o->url, "dry_run", o->dry_run, "files", "copied", 0,
                         "skipped", 0, "linked", 0, "deleted", 0, "failed", (json_int_t)s->nfailures, "bytes",
                         "copied", 0, "skipped", 0, "linked", 0, "failures", failures, "seconds", s->seconds,
                         "fixed", "checked", (json_int_t)s->checked, "fixed", (json_int_t)s->fixed, "keys",
                         keys, "changes", changes);
    if (!j) {
        if (lost) {
            json_decref(keys);
            json_decref(changes);
            json_decref(failures);
        }
        fputs("coffer mirror: out of memory\n", stderr);
        return CF_EXIT_FAILURE;
    }
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!text) {
        fputs("coffer mirror: out of memory\n", stderr);
        return CF_EXIT_FAILURE;
    }
    puts(text);
    free(text);
    return CF_EXIT_OK;
}

int cmd_mirror_fix_types(int argc, char **argv)
{
    fix_opts o = {.level = CF_LOG_WARN};
    int code = parse(argc, argv, &o);
    if (code >= 0)
        return code;
    char bucket[64], root[1024];
    if (split_url(o.url, bucket, sizeof bucket, root, sizeof root) != 0)
        return usage_error("--fix-content-types works on s3://bucket[/prefix], not", o.url);

    cf_logger log = cf_logger_stderr(o.level);
    cf_err err;
    cf_cli_target cfg;
    cf_s3c *client = NULL;
    cf_repo *repo = NULL;
    int rc = cf_cli_target_resolve(&o.s3, &cfg, &err);
    if (!rc)
        rc = cf_s3c_new(&cfg, &client, &err);
    memset(&cfg, 0, sizeof cfg);
    if (!rc)
        rc = cf_repo_open_s3(client, bucket, root, &repo, &err);
    cf_fix_summary s;
    memset(&s, 0, sizeof s);
    if (!rc)
        rc = cf_mirror_fix_content_types(repo, o.exclude, o.nexclude, o.jobs, o.dry_run, &log, &s, &err);
    cf_repo_close(repo);
    cf_s3c_free(client);
    if (rc) {
        fprintf(stderr, "coffer mirror: %s\n", err.msg);
        cf_fix_summary_free(&s);
        return exit_code_for(rc);
    }
    for (size_t i = 0; i < s.nfailures; i++) {
        fputs("coffer mirror: ", stderr);
        put_escaped(s.failures[i].key, stderr);
        fputs(": ", stderr);
        put_escaped(s.failures[i].why, stderr);
        fputc('\n', stderr);
    }
    if (o.json) {
        code = print_json(&o, &s);
    } else {
        for (size_t i = 0; i < s.nkeys; i++) {
            printf("%s ", o.dry_run ? "would fix" : "fixed");
            put_escaped(s.keys[i], stdout);
            fputs(": ", stdout);
            put_escaped(*s.changes[i].stored ? s.changes[i].stored : "(none)", stdout);
            printf(" -> %s\n", s.changes[i].detected);
        }
        printf("checked %llu, %s %llu content types, failed %zu\n", (unsigned long long)s.checked,
               o.dry_run ? "would fix" : "fixed", (unsigned long long)s.fixed, s.nfailures);
        code = CF_EXIT_OK;
    }
    if (code == CF_EXIT_OK && s.nfailures)
        code = EXIT_SOME_FAILED;
    cf_fix_summary_free(&s);
    return code;
}
