/*
 * cmd_admin.c - `coffer admin`: access keys and public buckets on a running server, through
 * its admin API and the S3 bucket-policy calls (src/server/handlers_admin.c). Runs as root:
 * the credentials come from the environment as for every client command (cli/target.h).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/target.h"
#include "core/rate.h"
#include "s3/request.h"
#include "store/store.h"

static const char admin_usage[] =
    "usage: coffer admin key add --policy readwrite|readonly|writeonly [--bucket B [--prefix P]] [--name "
    "KEY]\n"
    "                            [--rate-group G [--rate R]]\n"
    "       coffer admin key ls\n"
    "       coffer admin key rm ACCESS_KEY\n"
    "       coffer admin bucket set-public BUCKET [--prefix P]\n"
    "       coffer admin bucket set-private BUCKET\n"
    "       coffer admin rate-group set G --rate R\n"
    "       coffer admin rate-group ls\n"
    "\n"
    "Rate groups: every response to the keys of group G shares one budget of R (50MB/s = 50,000,000\n"
    "bytes/s; units " CF_RATE_UNITS "), fairly between connections, on each server\n"
    "process. A new group needs --rate; an existing one keeps its rate unless --rate is given.\n"
    "\n"
    "common options: --endpoint URL  --region R  --profile P  --access-key K  --secret-key-file F\n"
    "                --json\n"
    "Credentials (root's): COFFER_ACCESS_KEY/COFFER_SECRET_KEY, COFFER_ROOT_USER/COFFER_ROOT_PASSWORD\n"
    "(or _FILE), AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an AWS profile; the endpoint:\n"
    "COFFER_ENDPOINT or AWS_ENDPOINT_URL (default http://127.0.0.1:9000), as for every coffer command.\n";

typedef struct admin_opts {
    cf_cli_target_flags target;
    const char *policy, *bucket, *prefix, *name, *rate_group, *rate;
    int json;
} admin_opts;

/* XML text as written: the messages quote names ('free', "rate"). */
static void print_xml_text(const char *p, size_t n)
{
    static const struct {
        const char *entity;
        char c;
    } entities[] = {{"&apos;", '\''}, {"&quot;", '"'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}};
    for (size_t i = 0; i < n; i++) {
        size_t e = 0;
        while (e < 5 && strncmp(p + i, entities[e].entity, strlen(entities[e].entity)) != 0)
            e++;
        if (e < 5 && i + strlen(entities[e].entity) <= n) {
            fputc(entities[e].c, stderr);
            i += strlen(entities[e].entity) - 1;
        } else {
            fputc(p[i], stderr);
        }
    }
}

/* The server's error document, or the body, as a one-line reason. */
static void print_failure(const char *what, long status, const cf_buf *body)
{
    const char *text = body->data ? body->data : "";
    const char *code = strstr(text, "<Code>"), *msg = strstr(text, "<Message>");
    if (code && msg) {
        const char *ce = strstr(code, "</Code>"), *me = strstr(msg, "</Message>");
        fprintf(stderr, "coffer admin: %s failed: %.*s: ", what, ce ? (int)(ce - code - 6) : 0, code + 6);
        print_xml_text(msg + 9, me ? (size_t)(me - msg - 9) : 0);
        fprintf(stderr, " (HTTP %ld)\n", status);
    } else {
        fprintf(stderr, "coffer admin: %s failed: HTTP %ld %.200s\n", what, status, text);
    }
}

static int call(const cf_cli_target *t, const char *what, const char *method, const char *path,
                const char *type, const char *body, long want, cf_buf *out)
{
    cf_err err;
    long status = 0;
    cf_buf_cleanup(out);
    cf_buf_init(out, (size_t)16 << 20);
    if (cf_cli_request(t, method, path, type, body, body ? strlen(body) : 0, &status, out, &err) != 0) {
        fprintf(stderr, "coffer admin: %s\n", err.msg);
        return CF_EXIT_FAILURE;
    }
    if (status != want) {
        print_failure(what, status, out);
        return CF_EXIT_FAILURE;
    }
    return CF_EXIT_OK;
}

/* --rate and --rate-group as given, checked here so that a typo costs no request (the server
 * checks them again). */
static int bad_rate_flags(const char *cmd, const admin_opts *o)
{
    cf_err err;
    uint64_t rate;
    if (o->rate && !o->rate_group) {
        fprintf(stderr, "coffer admin %s: --rate needs --rate-group (the rate is the group's)\n", cmd);
        return 1;
    }
    if (o->rate_group && (!*o->rate_group || !cf_store_rate_group_name_valid(o->rate_group))) {
        fprintf(stderr, "coffer admin %s: --rate-group '%.40s': a name is 1 to 32 of a-z, 0-9 and '-'\n", cmd,
                o->rate_group);
        return 1;
    }
    if (o->rate && cf_rate_parse(o->rate, &rate, &err) != 0) {
        fprintf(stderr, "coffer admin %s: --rate: %s\n", cmd, err.msg);
        return 1;
    }
    return 0;
}

static int key_add(const cf_cli_target *t, const admin_opts *o)
{
    if (!o->policy) {
        fprintf(stderr, "coffer admin key add: --policy is required (readwrite, readonly or writeonly)\n");
        return CF_EXIT_USAGE;
    }
    if (bad_rate_flags("key add", o))
        return CF_EXIT_USAGE;
    json_t *req = json_pack("{s:s, s:s, s:s}", "policy", o->policy, "bucket", o->bucket ? o->bucket : "",
                            "prefix", o->prefix ? o->prefix : "");
    /* Without the name (or the group) the server would make up a key, or make one unpaced:
     * better no request than that one. */
    int lost = !req || (o->name && json_object_set_new(req, "access_key", json_string(o->name)) != 0) ||
               (o->rate_group && json_object_set_new(req, "rate_group", json_string(o->rate_group)) != 0) ||
               (o->rate && json_object_set_new(req, "rate", json_string(o->rate)) != 0);
    char *body = lost ? NULL : json_dumps(req, JSON_COMPACT);
    json_decref(req);
    cf_buf out;
    cf_buf_init(&out, 1);
    int rc = body ? call(t, "adding the key", "POST", "/_admin/v1/keys", "application/json", body, 200, &out)
                  : CF_EXIT_FAILURE;
    free(body);
    if (rc == CF_EXIT_OK) {
        json_t *res = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
        const char *ak = NULL, *sk = NULL;
        if (o->json) {
            printf("%s\n", out.data);
        } else if (res && json_unpack(res, "{s:s, s:s}", "access_key", &ak, "secret_key", &sk) == 0) {
            /* Shown once: the server keeps no way to show the secret again. */
            printf("access key: %s\nsecret key: %s\npolicy:     %s on %s%s%s\n", ak, sk, o->policy,
                   o->bucket ? o->bucket : "every bucket", o->prefix && *o->prefix ? "/" : "",
                   o->prefix ? o->prefix : "");
            json_t *rate = json_object_get(res, "rate");
            if (o->rate_group && json_is_integer(rate)) {
                char text[CF_RATE_TEXT_MAX];
                cf_rate_format((uint64_t)json_integer_value(rate), text);
                printf("rate group: %s (%s shared by the group)\n", o->rate_group, text);
            }
        } else {
            fprintf(stderr, "coffer admin: the server's answer is not the expected JSON\n");
            rc = CF_EXIT_FAILURE;
        }
        json_decref(res);
    }
    cf_buf_cleanup(&out);
    return rc;
}

static int key_ls(const cf_cli_target *t, const admin_opts *o)
{
    cf_buf out;
    cf_buf_init(&out, 1);
    int rc = call(t, "listing keys", "GET", "/_admin/v1/keys", NULL, NULL, 200, &out);
    if (rc == CF_EXIT_OK && o->json) {
        printf("%s\n", out.data);
    } else if (rc == CF_EXIT_OK) {
        json_t *res = json_loadb(out.data ? out.data : "", out.len, 0, NULL),
               *keys = json_object_get(res, "keys");
        size_t i;
        json_t *k;
        printf("%-24s %-10s %-24s %-16s %-12s %s\n", "ACCESS KEY", "POLICY", "BUCKET", "RATE GROUP", "RATE",
               "PREFIX");
        json_array_foreach(keys, i, k)
        {
            const char *bucket = json_string_value(json_object_get(k, "bucket"));
            const char *group = json_string_value(json_object_get(k, "rate_group"));
            json_t *rate = json_object_get(k, "rate");
            char text[CF_RATE_TEXT_MAX] = "-";
            if (json_is_integer(rate))
                cf_rate_format((uint64_t)json_integer_value(rate), text);
            printf("%-24s %-10s %-24s %-16s %-12s %s\n", json_string_value(json_object_get(k, "access_key")),
                   json_string_value(json_object_get(k, "policy")), bucket && *bucket ? bucket : "*",
                   group && *group ? group : "-", text, json_string_value(json_object_get(k, "prefix")));
        }
        json_decref(res);
    }
    cf_buf_cleanup(&out);
    return rc;
}

static int key_rm(const cf_cli_target *t, const char *name)
{
    cf_buf out, path;
    cf_buf_init(&out, 1);
    cf_buf_init(&path, 1024);
    cf_buf_puts(&path, "/_admin/v1/keys/");
    cf_s3_url_encode_key(&path, name, strlen(name));
    /* A name cut short would remove another key, or none. */
    int rc = CF_EXIT_FAILURE;
    if (cf_buf_error(&path))
        fprintf(stderr, "coffer admin key rm: key name '%.64s': %s\n", name,
                cf_strerror(cf_buf_error(&path)));
    else
        rc = call(t, "removing the key", "DELETE", path.data, NULL, NULL, 204, &out);
    cf_buf_cleanup(&out);
    cf_buf_cleanup(&path);
    return rc;
}

static int rate_group_set(const cf_cli_target *t, const admin_opts *o, const char *group)
{
    admin_opts with_group = *o;
    with_group.rate_group = group;
    if (!o->rate) {
        fprintf(stderr, "coffer admin rate-group set: --rate is required (e.g. --rate 250MB/s)\n");
        return CF_EXIT_USAGE;
    }
    if (bad_rate_flags("rate-group set", &with_group))
        return CF_EXIT_USAGE;
    char path[96], body[96];
    snprintf(path, sizeof path, "/_admin/v1/rate-groups/%s", group);
    json_t *req = json_pack("{s:s}", "rate", o->rate);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    snprintf(body, sizeof body, "%s", text ? text : "");
    free(text);
    cf_buf out;
    cf_buf_init(&out, 1);
    int rc = *body ? call(t, "setting the rate", "PUT", path, "application/json", body, 200, &out)
                   : CF_EXIT_FAILURE;
    if (rc == CF_EXIT_OK && o->json) {
        printf("%s\n", out.data);
    } else if (rc == CF_EXIT_OK) {
        json_t *res = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
        char rate[CF_RATE_TEXT_MAX];
        cf_rate_format((uint64_t)json_integer_value(json_object_get(res, "rate")), rate);
        printf("%s: %s shared by every response to the group's keys (from now on)\n", group, rate);
        json_decref(res);
    }
    cf_buf_cleanup(&out);
    return rc;
}

static int rate_group_ls(const cf_cli_target *t, const admin_opts *o)
{
    cf_buf out;
    cf_buf_init(&out, 1);
    int rc = call(t, "listing rate groups", "GET", "/_admin/v1/rate-groups", NULL, NULL, 200, &out);
    if (rc == CF_EXIT_OK && o->json) {
        printf("%s\n", out.data);
    } else if (rc == CF_EXIT_OK) {
        json_t *res = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
        size_t i;
        json_t *g;
        printf("%-32s %-14s %s\n", "RATE GROUP", "RATE", "KEYS");
        json_array_foreach(json_object_get(res, "rate_groups"), i, g)
        {
            char rate[CF_RATE_TEXT_MAX];
            cf_rate_format((uint64_t)json_integer_value(json_object_get(g, "rate")), rate);
            printf("%-32s %-14s %lld\n", json_string_value(json_object_get(g, "name")), rate,
                   (long long)json_integer_value(json_object_get(g, "keys")));
        }
        json_decref(res);
    }
    cf_buf_cleanup(&out);
    return rc;
}

static int bucket_public(const cf_cli_target *t, const char *bucket, const char *prefix, int make_public)
{
    if (!cf_s3_bucket_name_valid(bucket)) {
        fprintf(stderr, "coffer admin: '%s' is not a valid bucket name\n", bucket);
        return CF_EXIT_USAGE;
    }
    /* In a policy's Resource '*' and '?' are wildcards: such a prefix would open more keys
     * than the ones it names, and more than the message below promises. */
    if (prefix && strpbrk(prefix, "*?")) {
        fprintf(stderr,
                "coffer admin: --prefix must not contain '*' or '?' (wildcards in a bucket policy)\n");
        return CF_EXIT_USAGE;
    }
    char path[128];
    snprintf(path, sizeof path, "/%s?policy=", bucket);
    cf_buf out;
    cf_buf_init(&out, 1);
    int rc;
    if (!make_public) {
        rc = call(t, "making the bucket private", "DELETE", path, NULL, NULL, 204, &out);
    } else {
        char resource[1200];
        snprintf(resource, sizeof resource, "arn:aws:s3:::%s/%s*", bucket, prefix ? prefix : "");
        json_t *doc = json_pack("{s:s, s:[{s:s, s:s, s:{s:s}, s:s, s:s}]}", "Version", "2012-10-17",
                                "Statement", "Sid", "coffer-public-read", "Effect", "Allow", "Principal",
                                "AWS", "*", "Action", "s3:GetObject", "Resource", resource);
        char *body = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        rc = body ? call(t, "making the bucket public", "PUT", path, "application/json", body, 204, &out)
                  : CF_EXIT_FAILURE;
        free(body);
    }
    /* Say exactly what the policy grants (s3:GetObject on one ARN, nothing else), and that it
     * replaced whatever policy the bucket had. */
    if (rc == CF_EXIT_OK && !make_public) {
        printf("%s: private: bucket policy removed; every request needs credentials\n", bucket);
    } else if (rc == CF_EXIT_OK) {
        const char *p = prefix ? prefix : "";
        printf("%s: public read of arn:aws:s3:::%s/%s*\n", bucket, bucket, p);
        if (*p)
            printf("  granted to anyone, without credentials: GET and HEAD of the objects whose keys begin "
                   "with \"%s\"\n  not granted: listing the bucket, the other keys, any write\n",
                   p);
        else
            printf("  granted to anyone, without credentials: GET and HEAD of every object in the bucket\n"
                   "  not granted: listing the bucket, any write\n");
        printf("  this replaced the bucket's earlier policy, if any\n");
    }
    cf_buf_cleanup(&out);
    return rc;
}

int cf_cmd_admin(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"region", required_argument, NULL, 'r'},
        {"access-key", required_argument, NULL, 'a'},
        {"secret-key-file", required_argument, NULL, 's'},
        {"profile", required_argument, NULL, 'P'},
        {"policy", required_argument, NULL, 'p'},
        {"bucket", required_argument, NULL, 'b'},
        {"prefix", required_argument, NULL, 'x'},
        {"name", required_argument, NULL, 'n'},
        {"rate-group", required_argument, NULL, 'g'},
        {"rate", required_argument, NULL, 'R'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    admin_opts o = {0};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'e': o.target.endpoint = optarg; break;
        case 'r': o.target.region = optarg; break;
        case 'a': o.target.access_key = optarg; break;
        case 's': o.target.secret_key_file = optarg; break;
        case 'P': o.target.profile = optarg; break;
        case 'p': o.policy = optarg; break;
        case 'b': o.bucket = optarg; break;
        case 'x': o.prefix = optarg; break;
        case 'n': o.name = optarg; break;
        case 'g': o.rate_group = optarg; break;
        case 'R': o.rate = optarg; break;
        case 'j': o.json = 1; break;
        case 'h': fputs(admin_usage, stdout); return CF_EXIT_OK;
        default: fputs(admin_usage, stderr); return CF_EXIT_USAGE;
        }
    }
    int nargs = argc - optind;
    char **args = argv + optind;
    if (nargs < 2) {
        fputs(admin_usage, stderr);
        return CF_EXIT_USAGE;
    }
    cf_cli_target t;
    cf_err err;
    if (cf_cli_target_resolve(&o.target, &t, &err) != 0) {
        fprintf(stderr, "coffer admin: %s\n", err.msg);
        return CF_EXIT_USAGE;
    }
    int rc = -1;
    if (strcmp(args[0], "key") == 0 && strcmp(args[1], "add") == 0 && nargs == 2)
        rc = key_add(&t, &o);
    else if (strcmp(args[0], "key") == 0 && strcmp(args[1], "ls") == 0 && nargs == 2)
        rc = key_ls(&t, &o);
    else if (strcmp(args[0], "key") == 0 && strcmp(args[1], "rm") == 0 && nargs == 3)
        rc = key_rm(&t, args[2]);
    else if (strcmp(args[0], "bucket") == 0 && strcmp(args[1], "set-public") == 0 && nargs == 3)
        rc = bucket_public(&t, args[2], o.prefix, 1);
    else if (strcmp(args[0], "bucket") == 0 && strcmp(args[1], "set-private") == 0 && nargs == 3)
        rc = bucket_public(&t, args[2], NULL, 0);
    else if (strcmp(args[0], "rate-group") == 0 && strcmp(args[1], "set") == 0 && nargs == 3)
        rc = rate_group_set(&t, &o, args[2]);
    else if (strcmp(args[0], "rate-group") == 0 && strcmp(args[1], "ls") == 0 && nargs == 2)
        rc = rate_group_ls(&t, &o);
    memset(&t, 0, sizeof t);
    if (rc < 0) {
        fprintf(stderr, "coffer admin: unknown command '%s %s'\n%s", args[0], args[1], admin_usage);
        return CF_EXIT_USAGE;
    }
    return rc;
}
