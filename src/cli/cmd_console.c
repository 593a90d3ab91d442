/*
 * cmd_console.c - `coffer console`: the snapshot download site (src/console/), its options,
 * the repositories it reads, the tiers' signing keys and the signals; `coffer console user ...`
 * goes to the account commands (cmd_console_user.c).
 *
 * Secrets never come from argv: the session secret from COFFER_CONSOLE_SESSION_SECRET(_FILE),
 * each tier's signing key from COFFER_CONSOLE_TIER_<NAME>_ACCESS_KEY with _SECRET_KEY or
 * _SECRET_KEY_FILE, the catalogue's read credentials as for every client command (cli/target.h).
 */
#include <ctype.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/target.h"
#include "console/console.h"
#include "console/session.h"
#include "console/users.h"
#include "core/duration.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/rate.h"
#include "s3client/s3client.h"
#include "storage/repo.h"

#define MAX_REPOS 32

static const char console_usage[] =
    "usage: coffer console --repository s3://BUCKET[/PREFIX] [--repository ...] [options]\n"
    "       coffer console user add|ls|rm|passwd ...   (coffer console user --help)\n"
    "\n"
    "Serves the snapshot download site: a JSON API (/api/v1), the web page (/), /health and\n"
    "/metrics. Each namespace directly below a repository is a chain.\n"
    "\n"
    "  --address HOST:PORT        where to listen (default 127.0.0.1:8080)\n"
    "  --repository URL           s3://BUCKET[/PREFIX] to list chains from (repeatable)\n"
    "  --users-file FILE          the accounts (coffer console user add); else the environment\n"
    "                             COFFER_CONSOLE_USERS_FILE or COFFER_CONSOLE_USERS; none: anonymous only\n"
    "  --refresh-interval D       re-read the repositories every D (default 60s; SIGHUP: now)\n"
    "  --url-expiry D             how long a download URL works (default 1h, at most 7d)\n"
    "  --tier NAME=RATE           a bandwidth tier and its shared rate, e.g. premium=250MB/s\n"
    "                             (repeatable; defaults free=50MB/s premium=250MB/s)\n"
    "  --proxy-downloads          stream archives through this console at the tier's rate\n"
    "                             (for stores that cannot pace: AWS S3, Ceph RGW)\n"
    "  --max-proxy-downloads N    proxied downloads at once, each up to 2 MiB of memory (default 128)\n"
    "  --max-proxy-downloads-per-client N  of them from one client address (default 8)\n"
    "  --public-url URL           the site's address as browsers see it (proxy download links)\n"
    "  --download-endpoint URL    the S3 endpoint presigned URLs name (default: --endpoint)\n"
    "  --secure-cookies MODE      auto (behind TLS per X-Forwarded-Proto), always or never\n"
    "  --session-ttl D            how long a login lasts (default 12h)\n"
    "  --trusted-proxy CIDR       peers whose X-Forwarded-For/-Proto are believed (repeatable;\n"
    "                             default loopback and private addresses; 'none': nobody)\n"
    "  --http-threads N           event-loop threads (default: one per core)\n"
    "  --log-level LEVEL          debug, info, warn or error (default info)\n"
    "\n"
    "  --endpoint URL --region R --profile P --access-key K --secret-key-file F\n"
    "                             the S3 endpoint and the credentials that read the repositories\n"
    "\n"
    "environment (secrets never on the command line):\n"
    "  COFFER_CONSOLE_SESSION_SECRET_FILE or COFFER_CONSOLE_SESSION_SECRET  >= 32 bytes, shared\n"
    "      by every replica; required when users exist\n"
    "  COFFER_CONSOLE_TIER_<NAME>_ACCESS_KEY with _SECRET_KEY or _SECRET_KEY_FILE  the key that\n"
    "      signs the tier's URLs (NAME upper-cased, '-' as '_')\n"
    "  COFFER_ENDPOINT, COFFER_ACCESS_KEY, COFFER_SECRET_KEY, AWS_* ...  as for every command\n"
    "\n"
    "Signals: SIGTERM or SIGINT stop; SIGHUP re-reads the repositories now.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("coffer console: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    return CF_EXIT_USAGE;
}

typedef struct tier_arg {
    char name[40];
    uint64_t rate;
    char env_prefix[96];
    char access_key[129], secret_key[129], missing[256];
    int has_key;
} tier_arg;

/* COFFER_CONSOLE_TIER_<NAME>_... for a tier name. */
static void tier_env_prefix(const char *name, char *out, size_t n)
{
    size_t o = (size_t)snprintf(out, n, "COFFER_CONSOLE_TIER_");
    for (; *name && o + 1 < n; name++)
        out[o++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
    out[o] = '\0';
}

/* The tier's signing key from the environment: both halves or neither. */
static int load_tier_key(tier_arg *t, cf_err *err)
{
    char var[160];
    tier_env_prefix(t->name, t->env_prefix, sizeof t->env_prefix);
    snprintf(var, sizeof var, "%s_ACCESS_KEY", t->env_prefix);
    int have_access = cf_fs_env_or_file(var, t->access_key, sizeof t->access_key, err);
    if (have_access < 0)
        return have_access;
    snprintf(var, sizeof var, "%s_SECRET_KEY", t->env_prefix);
    int have_secret = cf_fs_env_or_file(var, t->secret_key, sizeof t->secret_key, err);
    if (have_secret < 0)
        return have_secret;
    if (have_access != have_secret)
        return cf_err_set(err, CF_EINVAL,
                          "tier '%s': set both %s_ACCESS_KEY and %s_SECRET_KEY (or _FILE), not one", t->name,
                          t->env_prefix, t->env_prefix);
    t->has_key = have_access;
    snprintf(t->missing, sizeof t->missing, "%s_ACCESS_KEY and %s_SECRET_KEY (or %s_SECRET_KEY_FILE)",
             t->env_prefix, t->env_prefix, t->env_prefix);
    return 0;
}

static int add_tier(tier_arg *tiers, size_t *n, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || (size_t)(eq - spec) > 32)
        return usage_error("--tier must be NAME=RATE, like premium=250MB/s, not '%s'", spec);
    char name[40];
    snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
    if (!cf_users_valid_tier(name))
        return usage_error("tier name '%s' must be 1 to 32 of a-z, 0-9 and '-'", name);
    uint64_t rate;
    cf_err err = {0};
    if (cf_rate_parse(eq + 1, &rate, &err) != 0)
        return usage_error("--tier %s: %s", name, err.msg);
    size_t i = 0;
    while (i < *n && strcmp(tiers[i].name, name) != 0)
        i++;
    if (i == *n) {
        if (*n == CF_CONSOLE_MAX_TIERS)
            return usage_error("at most %d tiers", CF_CONSOLE_MAX_TIERS);
        memset(&tiers[i], 0, sizeof tiers[i]);
        snprintf(tiers[i].name, sizeof tiers[i].name, "%s", name);
        (*n)++;
    }
    tiers[i].rate = rate;
    return 0;
}

typedef struct opened_repo {
    cf_s3c *client;
    cf_repo *repo;
} opened_repo;

static int open_repos(const cf_cli_target *t, char **urls, size_t n, opened_repo *out, cf_cat_repo *cat,
                      cf_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *u = urls[i];
        if (strncmp(u, "s3://", 5) != 0 || !u[5] || u[5] == '/')
            return cf_err_set(err, CF_EINVAL, "--repository '%s' must be s3://BUCKET[/PREFIX]", u);
        const char *b = u + 5, *slash = strchr(b, '/');
        char bucket[64], root[1024];
        size_t blen = slash ? (size_t)(slash - b) : strlen(b);
        if (blen >= sizeof bucket)
            return cf_err_set(err, CF_EINVAL, "--repository '%s': bucket name too long", u);
        snprintf(bucket, sizeof bucket, "%.*s", (int)blen, b);
        snprintf(root, sizeof root, "%s", slash ? slash + 1 : "");
        size_t rlen = strlen(root);
        while (rlen && root[rlen - 1] == '/')
            root[--rlen] = '\0';
        int rc = cf_s3c_new(t, &out[i].client, err);
        if (!rc)
            rc = cf_repo_open_s3(out[i].client, bucket, root, &out[i].repo, err);
        if (rc)
            return rc;
        cat[i].url = u;
        cat[i].repo = out[i].repo;
    }
    return 0;
}

int cf_cmd_console(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "user") == 0)
        return cf_cmd_console_user(argc - 1, argv + 1);
    static const struct option longopts[] = {
        {"address", required_argument, NULL, 'A'},
        {"repository", required_argument, NULL, 'R'},
        {"users-file", required_argument, NULL, 'u'},
        {"refresh-interval", required_argument, NULL, 'i'},
        {"url-expiry", required_argument, NULL, 'x'},
        {"tier", required_argument, NULL, 't'},
        {"proxy-downloads", no_argument, NULL, 'p'},
        {"max-proxy-downloads", required_argument, NULL, 'M'},
        {"max-proxy-downloads-per-client", required_argument, NULL, 'm'},
        {"public-url", required_argument, NULL, 'U'},
        {"download-endpoint", required_argument, NULL, 'D'},
        {"secure-cookies", required_argument, NULL, 'c'},
        {"session-ttl", required_argument, NULL, 'T'},
        {"log-level", required_argument, NULL, 'l'},
        {"http-threads", required_argument, NULL, 'H'},
        {"trusted-proxy", required_argument, NULL, 'X'},
        {"endpoint", required_argument, NULL, 'e'},
        {"region", required_argument, NULL, 'r'},
        {"access-key", required_argument, NULL, 'a'},
        {"secret-key-file", required_argument, NULL, 's'},
        {"secret-key", required_argument, NULL, 'S'},
        {"profile", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cf_cli_target_flags flags = {0};
    const char *address = "127.0.0.1:8080", *users_file = NULL, *public_url = NULL, *download_endpoint = NULL;
    char *repo_urls[MAX_REPOS];
    size_t nrepos = 0;
    tier_arg tiers[CF_CONSOLE_MAX_TIERS];
    size_t ntiers = 0;
    add_tier(tiers, &ntiers, "free=50MB/s");
    add_tier(tiers, &ntiers, "premium=250MB/s");
    int64_t refresh_s = 60, url_expiry_s = CF_CONSOLE_DEFAULT_URL_EXPIRY_S,
            session_ttl_s = CF_CONSOLE_DEFAULT_SESSION_TTL_S;
    int proxy = 0, level = CF_LOG_INFO;
    unsigned threads = 0, max_proxy = 0, max_per_client = 0;
    const char *trusted[CF_CONSOLE_MAX_TRUSTED_PROXIES];
    size_t ntrusted = 0;
    cf_console_secure secure = CF_CONSOLE_SECURE_AUTO;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'A': address = optarg; break;
        case 'R':
            if (nrepos == MAX_REPOS)
                return usage_error("at most %d --repository", MAX_REPOS);
            repo_urls[nrepos++] = optarg;
            break;
        case 'u': users_file = optarg; break;
        case 'i':
            if (cf_duration_parse(optarg, &refresh_s) != 0 || refresh_s > 86400)
                return usage_error(
                    "--refresh-interval must be a duration from 1s to 1d, like 30s or 5m, not '%s'", optarg);
            break;
        case 'x':
            if (cf_duration_parse(optarg, &url_expiry_s) != 0 || url_expiry_s > CF_CONSOLE_MAX_URL_EXPIRY_S)
                return usage_error(
                    "--url-expiry must be a duration from 1s to 7d, like 15m, 1h or 7d, not '%s'", optarg);
            break;
        case 'T':
            if (cf_duration_parse(optarg, &session_ttl_s) != 0 || session_ttl_s > 30 * 86400)
                return usage_error(
                    "--session-ttl must be a duration from 1s to 30d, like 1h or 12h, not '%s'", optarg);
            break;
        case 't':
            if (add_tier(tiers, &ntiers, optarg) != 0)
                return CF_EXIT_USAGE;
            break;
        case 'p': proxy = 1; break;
        case 'X':
            if (ntrusted == CF_CONSOLE_MAX_TRUSTED_PROXIES)
                return usage_error("at most %d --trusted-proxy", CF_CONSOLE_MAX_TRUSTED_PROXIES);
            trusted[ntrusted++] = optarg;
            break;
        case 'M': {
            char *end;
            unsigned long n = strtoul(optarg, &end, 10);
            if (!*optarg || *end || optarg[0] == '-' || n < 1 || n > 100000)
                return usage_error("--max-proxy-downloads must be a number from 1 to 100000, not '%s'",
                                   optarg);
            max_proxy = (unsigned)n;
            break;
        }
        case 'm': {
            char *end;
            unsigned long n = strtoul(optarg, &end, 10);
            if (!*optarg || *end || optarg[0] == '-' || n < 1 || n > 100000)
                return usage_error(
                    "--max-proxy-downloads-per-client must be a number from 1 to 100000, not '%s'", optarg);
            max_per_client = (unsigned)n;
            break;
        }
        case 'U': public_url = optarg; break;
        case 'D': download_endpoint = optarg; break;
        case 'c':
            if (strcmp(optarg, "auto") == 0)
                secure = CF_CONSOLE_SECURE_AUTO;
            else if (strcmp(optarg, "always") == 0)
                secure = CF_CONSOLE_SECURE_ALWAYS;
            else if (strcmp(optarg, "never") == 0)
                secure = CF_CONSOLE_SECURE_NEVER;
            else
                return usage_error("--secure-cookies must be auto, always or never, not '%s'", optarg);
            break;
        case 'H': {
            char *end;
            unsigned long n = strtoul(optarg, &end, 10);
            if (!*optarg || *end || optarg[0] == '-' || n < 1 || n > 256)
                return usage_error("--http-threads must be a number from 1 to 256, not '%s'", optarg);
            threads = (unsigned)n;
            break;
        }
        case 'l':
            if ((level = cf_log_level_parse(optarg)) < 0)
                return usage_error("--log-level must be debug, info, warn or error, not '%s'", optarg);
            break;
        case 'e': flags.endpoint = optarg; break;
        case 'r': flags.region = optarg; break;
        case 'a': flags.access_key = optarg; break;
        case 's': flags.secret_key_file = optarg; break;
        case 'P': flags.profile = optarg; break;
        case 'S':
            return usage_error("--secret-key is not accepted: any user can read the command line; "
                               "set COFFER_SECRET_KEY or pass --secret-key-file");
        case 'h': fputs(console_usage, stdout); return CF_EXIT_OK;
        default: fputs(console_usage, stderr); return CF_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s' (see coffer console --help)", argv[optind]);
    if (nrepos == 0)
        return usage_error("which snapshots? give --repository s3://BUCKET[/PREFIX]");

    cf_logger log = cf_logger_stderr((cf_log_level)level);
    cf_err err = {0};
    cf_cli_target target;
    memset(&target, 0, sizeof target);
    opened_repo opened[MAX_REPOS] = {{0}};
    cf_cat_repo cat[MAX_REPOS];
    cf_console_tier ctiers[CF_CONSOLE_MAX_TIERS];
    cf_users *users = NULL;
    char *secret = NULL;
    size_t secret_len = 0;
    cf_console *console = NULL;
    int code = CF_EXIT_FAILURE, rc;

    for (size_t i = 0; i < ntiers; i++) {
        if ((rc = load_tier_key(&tiers[i], &err)) != 0) {
            code = CF_EXIT_USAGE;
            goto out;
        }
        ctiers[i] =
            (cf_console_tier){tiers[i].name, tiers[i].rate, tiers[i].has_key ? tiers[i].access_key : NULL,
                              tiers[i].has_key ? tiers[i].secret_key : NULL, tiers[i].missing};
    }
    if ((rc = cf_users_from_env_or_file_log(users_file, &log, &users, &err)) != 0) {
        code = CF_EXIT_USAGE;
        goto out;
    }
    rc = cf_session_secret_from_env_log(&log, &secret, &secret_len, &err);
    if (rc == CF_ENOTFOUND) {
        rc = 0;
        cf_err_clear(&err);
    } else if (rc) {
        code = CF_EXIT_USAGE;
        goto out;
    }
    if ((rc = cf_cli_target_resolve(&flags, &target, &err)) != 0) {
        code = rc == CF_EINVAL ? CF_EXIT_USAGE : CF_EXIT_FAILURE;
        goto out;
    }
    if ((rc = open_repos(&target, repo_urls, nrepos, opened, cat, &err)) != 0) {
        code = rc == CF_EINVAL ? CF_EXIT_USAGE : CF_EXIT_FAILURE;
        goto out;
    }
    cf_console_options o = {.http = {.address = address, .threads = threads},
                            .repos = cat,
                            .nrepos = nrepos,
                            .users = users,
                            .session_secret = secret,
                            .session_secret_len = secret_len,
                            .session_ttl_s = session_ttl_s,
                            .tiers = ctiers,
                            .ntiers = ntiers,
                            .proxy_downloads = proxy,
                            .max_proxy_downloads = max_proxy,
                            .max_proxy_per_client = max_per_client,
                            .public_url = public_url,
                            .download_endpoint = download_endpoint ? download_endpoint : target.endpoint,
                            .region = target.region,
                            .url_expiry_s = url_expiry_s,
                            .refresh_interval_s = (double)refresh_s,
                            .secure_cookies = secure,
                            .trusted_proxies = trusted,
                            .ntrusted_proxies = ntrusted,
                            .log = &log};
    if ((rc = cf_console_new(&o, &console, &err)) != 0) {
        code = rc == CF_EINVAL ? CF_EXIT_USAGE : CF_EXIT_FAILURE;
        goto out;
    }
    /* Blocked before any thread starts, so every thread inherits the mask and only sigwait
     * below receives them. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    if ((rc = cf_console_start(console, &err)) != 0)
        goto out;
    char port[16];
    snprintf(port, sizeof port, "%u", cf_console_port(console));
    cf_log(&log, CF_LOG_INFO, "coffer console listening", "address", address, "port", port, "mode",
           proxy ? "proxy-downloads" : "presigned", NULL);
    for (;;) {
        int sig = 0;
        sigwait(&signals, &sig);
        if (sig == SIGHUP) {
            cf_log(&log, CF_LOG_INFO, "SIGHUP: refreshing the catalogue", NULL);
            cf_console_request_refresh(console);
            continue;
        }
        cf_log(&log, CF_LOG_INFO, "stopping", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
        break;
    }
    code = CF_EXIT_OK;
out:
    if (code != CF_EXIT_OK)
        fprintf(stderr, "coffer console: %s\n", err.msg[0] ? err.msg : cf_strerror(rc));
    cf_console_stop(console);
    for (size_t i = 0; i < nrepos; i++) {
        cf_repo_close(opened[i].repo);
        cf_s3c_free(opened[i].client);
    }
    cf_users_free(users);
    if (secret) {
        memset(secret, 0, secret_len);
        free(secret);
    }
    memset(tiers, 0, sizeof tiers);
    memset(&target, 0, sizeof target);
    return code;
}
