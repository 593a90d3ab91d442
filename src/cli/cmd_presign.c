/*
 * cmd_presign.c - `coffer presign s3://BUCKET/KEY`: print a presigned URL (SigV4 query-string
 * authentication) that lets whoever holds it GET, HEAD or PUT one object until it expires.
 *
 * Nothing is sent to the server: the URL is computed from the credentials alone, which come
 * from the environment as for every client command (cli/target.h). The URL is path-style
 * (ENDPOINT/BUCKET/KEY), and signs only the Host header, so any HTTP client can use it as is.
 *
 * With --post it prints instead the URL and fields of a browser form upload (POST Object), as
 * boto3's generate_presigned_post does: a policy document naming the bucket, the key (a prefix
 * when the key holds ${filename}), the signing fields and an optional size range, signed with
 * the same key derivation.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cli/target.h"
#include "core/clock.h"
#include "core/duration.h"
#include "crypto/hash.h"
#include "crypto/sigv4.h"
#include "s3/request.h"

/* Not in cli.h (yet): cli.c declares it beside its dispatch. */

static const char presign_usage[] =
    "usage: coffer presign s3://BUCKET/KEY [--expires DURATION] [--method GET|HEAD|PUT]\n"
    "                      [--post [--max-size BYTES]]\n"
    "                      [--endpoint URL] [--region R] [--profile P] [--access-key K]\n"
    "                      [--secret-key-file F]\n"
    "\n"
    "Prints a URL that allows one request on the object, without credentials, until it expires.\n"
    "\n"
    "  --expires DURATION  how long the URL works: 90s, 15m, 1h, 7d (default 1h, at most 7d)\n"
    "  --method METHOD     GET (default), HEAD or PUT\n"
    "  --post              print instead {\"url\", \"fields\"} of an HTML form upload (POST Object);\n"
    "                      a KEY with ${filename} allows any name after its prefix\n"
    "  --max-size BYTES    with --post: refuse files larger than this\n"
    "  --endpoint URL      the server as clients reach it (default http://127.0.0.1:9000)\n"
    "  --region R          the server's region (default us-east-1)\n"
    "\n"
    "  --profile P         the AWS profile whose keys, region and endpoint_url to use\n"
    "\n"
    "environment, as for every coffer command (see README):\n"
    "  COFFER_ENDPOINT, COFFER_REGION, COFFER_ACCESS_KEY, COFFER_SECRET_KEY (or _FILE), then\n"
    "  COFFER_ROOT_USER, COFFER_ROOT_PASSWORD, then AWS_ENDPOINT_URL, AWS_REGION/AWS_DEFAULT_REGION,\n"
    "  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, then the AWS profile (AWS_PROFILE, ~/.aws).\n"
    "  The secret key is never taken from the command line; use --secret-key-file instead.\n";

#define DEFAULT_EXPIRES 3600

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("coffer presign: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    return CF_EXIT_USAGE;
}

/* "s3://BUCKET/KEY" into "/BUCKET/KEY" (decoded, as S3 paths are signed). */
static int object_path(const char *uri, char *path, size_t pathlen)
{
    if (strncmp(uri, "s3://", 5) != 0)
        return -1;
    const char *bucket = uri + 5, *slash = strchr(bucket, '/');
    if (!slash || slash == bucket || slash[1] == '\0')
        return -1;
    return snprintf(path, pathlen, "/%s", bucket) >= (int)pathlen ? -1 : 0;
}

/*
 * Splits the endpoint into the URL base to print and the Host header clients will send: the
 * authority lowercased, without the scheme's default port (HTTP clients leave it out of Host,
 * and the server checks the signature against the Host it receives).
 */
static int endpoint_host(const char *endpoint, char *base, size_t baselen, char *host, size_t hostlen)
{
    int https = strncmp(endpoint, "https://", 8) == 0;
    const char *auth = endpoint + (https ? 8 : 7);
    size_t n = strcspn(auth, "/?#");
    /* A path would be signed as part of the object's path, which a proxy in front then rewrites. */
    if (n == 0 || auth[n] != '\0' || memchr(auth, '@', n) || n >= hostlen)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = auth[i];
        host[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    host[n] = '\0';
    char *bracket = strrchr(host, ']'), *colon = strrchr(host, ':');
    if (colon && (!bracket || colon > bracket)) {
        const char *deflt = https ? ":443" : ":80";
        if (strcmp(colon, deflt) == 0)
            *colon = '\0';
        else if (colon[1] == '\0')
            return -1;
    }
    return snprintf(base, baselen, "%s%s", https ? "https://" : "http://", host) >= (int)baselen ? -1 : 0;
}

/* The policy and fields of a form upload, printed as JSON {"url", "fields"}. */
static int print_post_form(const char *base, const char *path, const cf_cli_target *t, int64_t expires,
                           long long max_size)
{
    const char *bucket_key = path + 1, *slash = strchr(bucket_key, '/');
    char bucket[64], credential[512], amz_date[17], expiration[25];
    if ((size_t)(slash - bucket_key) >= sizeof bucket)
        return CF_EINVAL;
    snprintf(bucket, sizeof bucket, "%.*s", (int)(slash - bucket_key), bucket_key);
    const char *key = slash + 1, *var = strstr(key, "${filename}");
    int64_t now = (int64_t)cf_clock_now();
    cf_sigv4_format_amz_date(now, amz_date);
    cf_s3_iso8601((now + expires) * 1000000000, expiration);
    snprintf(credential, sizeof credential, "%s/%.8s/%s/s3/aws4_request", t->access_key, amz_date, t->region);
    json_t *conds = json_pack("[{s:s}]", "bucket", bucket);
    json_array_append_new(conds,
                          var ? json_pack("[s, s, s%]", "starts-with", "$key", key, (size_t)(var - key))
                              : json_pack("{s:s}", "key", key));
    json_array_append_new(conds, json_pack("{s:s}", "x-amz-algorithm", "AWS4-HMAC-SHA256"));
    json_array_append_new(conds, json_pack("{s:s}", "x-amz-credential", credential));
    json_array_append_new(conds, json_pack("{s:s}", "x-amz-date", amz_date));
    if (max_size >= 0)
        json_array_append_new(conds, json_pack("[s, i, I]", "content-length-range", 0, (json_int_t)max_size));
    json_t *policy = json_pack("{s:s, s:o}", "expiration", expiration, "conditions", conds);
    char *text = policy ? json_dumps(policy, JSON_COMPACT) : NULL;
    json_decref(policy);
    if (!text)
        return CF_ENOMEM;
    size_t tl = strlen(text);
    char *b64 = malloc(4 * ((tl + 2) / 3) + 1);
    if (!b64) {
        free(text);
        return CF_ENOMEM;
    }
    cf_base64_encode((const unsigned char *)text, tl, b64);
    free(text);
    unsigned char signing_key[32];
    char signature[65], day[9];
    snprintf(day, sizeof day, "%.8s", amz_date);
    int signed_rc = cf_sigv4_signing_key(t->secret_key, day, t->region, "s3", signing_key);
    if (!signed_rc)
        signed_rc = cf_sigv4_sign(signing_key, b64, strlen(b64), signature);
    memset(signing_key, 0, sizeof signing_key);
    if (signed_rc) {
        free(b64);
        return signed_rc;
    }
    char url[700];
    snprintf(url, sizeof url, "%s/%s", base, bucket);
    json_t *out = json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s}}", "url", url, "fields", "key", key,
                            "x-amz-algorithm", "AWS4-HMAC-SHA256", "x-amz-credential", credential,
                            "x-amz-date", amz_date, "policy", b64, "x-amz-signature", signature);
    free(b64);
    int rc = out && json_dumpf(out, stdout, JSON_INDENT(2)) == 0 ? 0 : CF_ENOMEM;
    json_decref(out);
    printf("\n");
    return rc;
}

int cf_cmd_presign(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"expires", required_argument, NULL, 'x'},
        {"method", required_argument, NULL, 'm'},
        {"endpoint", required_argument, NULL, 'e'},
        {"region", required_argument, NULL, 'r'},
        {"access-key", required_argument, NULL, 'a'},
        {"secret-key-file", required_argument, NULL, 's'},
        {"secret-key", required_argument, NULL, 'S'},
        {"profile", required_argument, NULL, 'P'},
        {"post", no_argument, NULL, 'p'},
        {"max-size", required_argument, NULL, 'z'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cf_cli_target_flags flags = {0};
    const char *method = "GET";
    int64_t expires = DEFAULT_EXPIRES;
    int post = 0;
    long long max_size = -1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'x':
            if (cf_duration_parse(optarg, &expires) != 0 || expires > CF_SIGV4_MAX_EXPIRES)
                return usage_error(
                    "--expires must be a duration from 1s to 7d, like 90s, 15m, 1h or 7d, not '%s'", optarg);
            break;
        case 'm':
            if (strcasecmp(optarg, "GET") == 0)
                method = "GET";
            else if (strcasecmp(optarg, "HEAD") == 0)
                method = "HEAD";
            else if (strcasecmp(optarg, "PUT") == 0)
                method = "PUT";
            else
                return usage_error("--method must be GET, HEAD or PUT, not '%s'", optarg);
            break;
        case 'p': post = 1; break;
        case 'z': {
            char *end;
            max_size = strtoll(optarg, &end, 10);
            if (*end || !*optarg || max_size < 0 || max_size > (5LL << 30))
                return usage_error("--max-size must be a number of bytes up to 5 GiB, not '%s'", optarg);
            break;
        }
        case 'e': flags.endpoint = optarg; break;
        case 'r': flags.region = optarg; break;
        case 'a': flags.access_key = optarg; break;
        case 's': flags.secret_key_file = optarg; break;
        case 'P': flags.profile = optarg; break;
        case 'S':
            /* The value is not echoed: it is a secret, already exposed in argv. */
            return usage_error("--secret-key is not accepted: any user can read the command line; "
                               "set COFFER_SECRET_KEY or pass --secret-key-file");
        case 'h': fputs(presign_usage, stdout); return CF_EXIT_OK;
        default: fputs(presign_usage, stderr); return CF_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        if (argc - optind == 0)
            fprintf(stderr, "coffer presign: which object? give s3://BUCKET/KEY\n%s", presign_usage);
        else
            fprintf(stderr, "coffer presign: unexpected argument '%s'\n%s", argv[optind + 1], presign_usage);
        return CF_EXIT_USAGE;
    }
    char path[4096];
    if (object_path(argv[optind], path, sizeof path) != 0)
        return usage_error("'%s' is not an object: expected s3://BUCKET/KEY", argv[optind]);

    cf_cli_target t;
    cf_err err = {0};
    int rc = cf_cli_target_resolve(&flags, &t, &err);
    if (rc) {
        fprintf(stderr, "coffer presign: %s\n", err.msg);
        memset(&t, 0, sizeof t);
        return rc == CF_EINVAL ? CF_EXIT_USAGE : CF_EXIT_FAILURE;
    }
    char base[600], host[512];
    if (endpoint_host(t.endpoint, base, sizeof base, host, sizeof host) != 0) {
        fprintf(stderr, "coffer presign: endpoint '%s' must be http(s)://HOST[:PORT], without a path\n",
                t.endpoint);
        memset(&t, 0, sizeof t);
        return CF_EXIT_USAGE;
    }
    if (max_size >= 0 && !post) {
        memset(&t, 0, sizeof t);
        return usage_error("--max-size goes with --post");
    }
    if (post) {
        rc = print_post_form(base, path, &t, expires, max_size);
        memset(&t, 0, sizeof t);
        if (rc)
            fprintf(stderr, "coffer presign: cannot build the form: %s\n", cf_strerror(rc));
        return rc ? CF_EXIT_FAILURE : fflush(stdout) == 0 ? CF_EXIT_OK : CF_EXIT_FAILURE;
    }
    cf_sigv4_presign_opts o = {.method = method,
                               .host = host,
                               .path = path,
                               .access_key = t.access_key,
                               .secret = t.secret_key,
                               .region = t.region,
                               .now = (int64_t)cf_clock_now(),
                               .expires = expires};
    cf_buf url;
    cf_buf_init(&url, 64 * 1024);
    rc = cf_sigv4_presign(&o, &url, &err);
    memset(&t, 0, sizeof t);
    if (rc) {
        fprintf(stderr, "coffer presign: %s\n", err.msg);
        cf_buf_cleanup(&url);
        return rc == CF_EINVAL ? CF_EXIT_USAGE : CF_EXIT_FAILURE;
    }
    printf("%s%s\n", base, url.data);
    cf_buf_cleanup(&url);
    return fflush(stdout) == 0 ? CF_EXIT_OK : CF_EXIT_FAILURE;
}
