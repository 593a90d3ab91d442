/*
 * cmd_server.c - `coffer server`: options, root credentials, signals.
 *
 * Credentials come from COFFER_ROOT_USER / COFFER_ROOT_PASSWORD, or from the files named by
 * COFFER_ROOT_USER_FILE / COFFER_ROOT_PASSWORD_FILE (Kubernetes secret mounts), never from
 * argv. With none given, the first start generates a pair, keeps it in DATA/credentials
 * (mode 0600) and prints the file's path and the access key (never the secret); later starts
 * reuse it.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/target.h"
#include "core/clock.h"
#include "core/duration.h"
#include "core/fs.h"
#include "core/log.h"
#include "server/server.h"

static const char server_usage[] =
    "usage: coffer server [--address HOST:PORT] [--data DIR] [--region REGION]\n"
    "\n"
    "  --address HOST:PORT  where to listen (default 127.0.0.1:9000; :9000 for all addresses)\n"
    "  --data DIR           data directory (default ./var/data)\n"
    "  --region REGION      region the server answers for (default us-east-1)\n"
    "  --log-level LEVEL    debug, info, warn or error (default info)\n"
    "  --domain DOMAIN      also accept virtual-host style requests to BUCKET.DOMAIN\n"
    "  --multipart-expiry D abort multipart uploads older than D (90s, 15m, 1h, 7d; default 7d)\n"
    "\n"
    "connection limits (see README):\n"
    "  --max-connections N        open connections in all (default 10000)\n"
    "  --max-connections-per-ip N open connections from one client address (default 256)\n"
    "  --idle-timeout D           close a connection idle for D (default 60s)\n"
    "  --header-timeout D         a request's line and headers must arrive within D of its\n"
    "                             first byte (default 10s; 0 = no limit)\n"
    "  --min-body-rate BYTES      a body must arrive at BYTES/s or more (default 1024; 0 = no limit)\n"
    "  --body-rate-window D       ... measured over each D (default 10s)\n"
    "  --http-threads N           event-loop threads (default: one per core)\n"
    "  --blocking-threads N       threads for requests that wait for the disk (default 16)\n"
    "\n"
    "environment:\n"
    "  COFFER_ROOT_USER, COFFER_ROOT_PASSWORD            root access key and secret key\n"
    "  COFFER_ROOT_USER_FILE, COFFER_ROOT_PASSWORD_FILE  files holding them instead\n";

/* Value of NAME, or the trimmed contents of the file named by NAME_FILE; NULL when neither. */
static int load_credentials(const char *data_dir, cf_credential *cred, cf_err *err)
{
    int have_user = cf_fs_env_or_file("COFFER_ROOT_USER", cred->access_key, sizeof cred->access_key, err);
    if (have_user < 0)
        return have_user;
    int have_pass = cf_fs_env_or_file("COFFER_ROOT_PASSWORD", cred->secret_key, sizeof cred->secret_key, err);
    if (have_pass < 0)
        return have_pass;
    if (have_user && have_pass) {
        if (strlen(cred->secret_key) < 8)
            return cf_err_set(err, CF_EINVAL, "COFFER_ROOT_PASSWORD must be at least 8 characters");
        return 0;
    }
    if (have_user != have_pass)
        return cf_err_set(err, CF_EINVAL, "set both COFFER_ROOT_USER and COFFER_ROOT_PASSWORD, or neither");

    char path[4096];
    snprintf(path, sizeof path, "%s/credentials", data_dir);
    char *data = NULL;
    int rc = cf_fs_read_small(path, 1024, &data, NULL, err);
    if (rc == 0) {
        int ok = sscanf(data, "access_key=%128s\nsecret_key=%128s", cred->access_key, cred->secret_key) == 2;
        free(data);
        if (!ok)
            return cf_err_set(
                err, CF_ECORRUPT,
                "credentials file '%s' is malformed; hint: delete it to generate new credentials", path);
        return 0;
    }
    if (rc != CF_ENOTFOUND)
        return rc;
    cf_random_token(cred->access_key, 20, CF_ACCESS_KEY_ALPHABET);
    cf_random_token(cred->secret_key, 40, CF_SECRET_KEY_ALPHABET);
    char buf[512];
    int len = snprintf(buf, sizeof buf, "access_key=%s\nsecret_key=%s\n", cred->access_key, cred->secret_key);
    rc = cf_fs_write_atomic(path, buf, (size_t)len, 0600, err);
    if (rc)
        return rc;
    /* Where the secret is, never the secret itself: stdout often ends up in a captured log. */
    printf("generated root credentials in %s (mode 0600)\n"
           "  access key: %s\n  secret key: the secret_key= line of that file\n",
           path, cred->access_key);
    fflush(stdout);
    return 0;
}

/* A whole number for a count option: 1..1000000, or 0..UINT64_MAX/2 when zero_ok (a rate). */
static int parse_count(const char *text, int zero_ok, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || !*text || text[0] == '-' || text[0] == '+')
        return CF_EINVAL;
    if (zero_ok ? v > UINT64_MAX / 2 : (v < 1 || v > 1000000))
        return CF_EINVAL;
    *out = v;
    return 0;
}

static const char *option_name(const struct option *opts, int val)
{
    for (; opts->name; opts++)
        if (opts->val == val)
            return opts->name;
    return "?";
}

int cf_cmd_server(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"address", required_argument, NULL, 'a'},
        {"data", required_argument, NULL, 'd'},
        {"region", required_argument, NULL, 'r'},
        {"log-level", required_argument, NULL, 'l'},
        {"domain", required_argument, NULL, 'D'},
        {"multipart-expiry", required_argument, NULL, 'E'},
        {"max-connections", required_argument, NULL, 'C'},
        {"max-connections-per-ip", required_argument, NULL, 'P'},
        {"idle-timeout", required_argument, NULL, 'I'},
        {"header-timeout", required_argument, NULL, 'H'},
        {"min-body-rate", required_argument, NULL, 'R'},
        {"body-rate-window", required_argument, NULL, 'W'},
        {"http-threads", required_argument, NULL, 'T'},
        {"blocking-threads", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cf_logger log = cf_logger_stderr(CF_LOG_INFO);
    cf_server_options opts = {.http.address = "127.0.0.1:9000", .region = "us-east-1", .log = &log};
    const char *data_dir = "var/data";
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a': opts.http.address = optarg; break;
        case 'd': data_dir = optarg; break;
        case 'r': opts.region = optarg; break;
        case 'D': opts.domain = optarg; break;
        case 'E':
            if (cf_duration_parse(optarg, &opts.multipart_expiry_s) != 0) {
                fprintf(stderr,
                        "coffer server: --multipart-expiry must be a duration like 90s, 15m, 1h or 7d, not "
                        "'%s'\n",
                        optarg);
                return CF_EXIT_USAGE;
            }
            break;
        case 'C':
        case 'P':
        case 'R':
        case 'T':
        case 'B': {
            uint64_t n;
            if (parse_count(optarg, c == 'R', &n) != 0) {
                fprintf(stderr, "coffer server: --%s must be a whole number%s, not '%s'\n",
                        option_name(longopts, c), c == 'R' ? "" : " from 1 to 1000000", optarg);
                return CF_EXIT_USAGE;
            }
            if (c == 'C')
                opts.http.max_connections = (size_t)n;
            else if (c == 'P')
                opts.http.max_connections_per_ip = (unsigned)n;
            else if (c == 'R')
                opts.http.min_body_rate = n ? n : UINT64_MAX;
            else if (c == 'T')
                opts.http.threads = (unsigned)n;
            else
                opts.http.blocking_threads = (unsigned)n;
            break;
        }
        case 'I':
        case 'H':
        case 'W': {
            int64_t secs = 0;
            int off = c == 'H' && strcmp(optarg, "0") == 0;
            if (!off && (cf_duration_parse(optarg, &secs) != 0 || secs > 86400)) {
                fprintf(stderr, "coffer server: --%s must be a duration like 5s, 2m or 1h%s, not '%s'\n",
                        option_name(longopts, c), c == 'H' ? " (or 0)" : "", optarg);
                return CF_EXIT_USAGE;
            }
            if (c == 'I')
                opts.http.connection_timeout_s = (unsigned)secs;
            else if (c == 'H')
                opts.http.header_timeout_s = off ? -1 : (double)secs;
            else
                opts.http.body_rate_window_s = (double)secs;
            break;
        }
        case 'l':
            if (cf_log_level_parse(optarg) >= 0)
                log.min = (cf_log_level)cf_log_level_parse(optarg);
            else {
                fprintf(stderr, "coffer server: --log-level must be debug, info, warn or error, not '%s'\n",
                        optarg);
                return CF_EXIT_USAGE;
            }
            break;
        case 'h': fputs(server_usage, stdout); return CF_EXIT_OK;
        default: fputs(server_usage, stderr); return CF_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "coffer server: unexpected argument '%s'\n%s", argv[optind], server_usage);
        return CF_EXIT_USAGE;
    }

    /* Block the stop signals before any thread exists, so that every thread inherits the mask
     * and only sigwait below receives them: a handler could run on any thread and leave the
     * main thread asleep. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    cf_err err = {0};
    cf_store *store = NULL;
    cf_server *srv = NULL;
    int rc = cf_fs_mkdirs(data_dir, 0700, &err);
    if (!rc)
        rc = load_credentials(data_dir, &opts.root, &err);
    if (!rc)
        rc = cf_store_open(data_dir, &log, &store, &err);
    if (!rc)
        rc = cf_server_start(store, &opts, &srv, &err);
    if (rc) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        cf_store_close(store);
        return CF_EXIT_FAILURE;
    }

    char port[8];
    snprintf(port, sizeof port, "%u", cf_server_port(srv));
    cf_log(&log, CF_LOG_INFO, "coffer server ready", "address", opts.http.address, "port", port, "data",
           data_dir, "region", opts.region, "access_key", opts.root.access_key, NULL);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    cf_log(&log, CF_LOG_INFO, "shutting down", NULL);
    cf_server_stop(srv);
    cf_store_close(store);
    return CF_EXIT_OK;
}
