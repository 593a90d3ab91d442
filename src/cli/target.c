#include "cli/target.h"

#include <curl/curl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/duration.h"
#include "core/fs.h"
#include "crypto/hash.h"

/* The host and port of an http(s) endpoint; the port is the scheme's when none is written. */
static void endpoint_host_port(const char *endpoint, char *host, size_t hostlen, unsigned *port)
{
    int tls = strncmp(endpoint, "https://", 8) == 0;
    const char *h = endpoint + (tls ? 8 : 7);
    size_t n = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/");
    snprintf(host, hostlen, "%.*s", (int)n, h);
    *port = h[n] == ':' ? (unsigned)strtoul(h + n + 1, NULL, 10) : tls ? 443 : 80;
}

static int is_loopback(const char *host)
{
    return !strcmp(host, "127.0.0.1") || !strcmp(host, "localhost") || !strcmp(host, "[::1]");
}

/* The port of a `coffer server --address` value (HOST:PORT or :PORT); 9000 when not given. */
static unsigned address_port(const char *address)
{
    const char *colon = address ? strrchr(address, ':') : NULL;
    return colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 9000;
}

static int shell_safe(const char *s)
{
    return s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-+")] == '\0';
}

/*
 * The readable credentials file of a running `coffer server` listening on port, found through
 * /proc: its --data directory (default var/data, relative to its working directory).
 */
static int running_server_credentials(unsigned port, char *out, size_t outlen)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    int found = 0;
    struct dirent *d;
    while (!found && (d = readdir(proc))) {
        if (d->d_name[0] < '1' || d->d_name[0] > '9')
            continue;
        char path[300], *cmdline = NULL;
        size_t len = 0;
        struct stat st;
        snprintf(path, sizeof path, "/proc/%s", d->d_name);
        /* Only the user's own servers: another user's process could name any path. */
        if (stat(path, &st) != 0 || st.st_uid != getuid())
            continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", d->d_name);
        if (cf_fs_read_small(path, 1 << 16, &cmdline, &len, NULL) != 0)
            continue;
        const char *argv[64];
        size_t argc = 0;
        for (size_t i = 0; i < len && argc < 64; i += strlen(cmdline + i) + 1)
            argv[argc++] = cmdline + i;
        const char *name = argc ? strrchr(argv[0], '/') : NULL;
        name = name ? name + 1 : argc ? argv[0] : "";
        if (argc >= 2 && !strcmp(name, "coffer") && !strcmp(argv[1], "server")) {
            const char *data = "var/data", *address = NULL;
            for (size_t i = 2; i < argc; i++) {
                if (!strcmp(argv[i], "--data") && i + 1 < argc)
                    data = argv[++i];
                else if (!strncmp(argv[i], "--data=", 7))
                    data = argv[i] + 7;
                else if (!strcmp(argv[i], "--address") && i + 1 < argc)
                    address = argv[++i];
                else if (!strncmp(argv[i], "--address=", 10))
                    address = argv[i] + 10;
            }
            char cwd[4096] = "";
            snprintf(path, sizeof path, "/proc/%s/cwd", d->d_name);
            ssize_t n = data[0] == '/' ? 0 : readlink(path, cwd, sizeof cwd - 1);
            if (n >= 0 && address_port(address) == port) {
                cwd[n] = '\0';
                snprintf(out, outlen, "%s%s%s/credentials", cwd, n ? "/" : "", data);
                /* Printed to a terminal: no control characters, no quoting to get wrong. */
                found = shell_safe(out) && access(out, R_OK) == 0;
            }
        }
        free(cmdline);
    }
    closedir(proc);
    return found;
}

/*
 * No keys, and the endpoint is on this machine: the likely case is a user of a local server who
 * has not exported its keys yet. Name the file that holds them rather than read it: which keys
 * a command uses stays the user's choice.
 */
static void hint_local_credentials(const char *endpoint, cf_err *err)
{
    char host[300], file[4200] = "";
    unsigned port;
    endpoint_host_port(endpoint, host, sizeof host, &port);
    if (!is_loopback(host))
        return;
    if (!running_server_credentials(port, file, sizeof file) && access("var/data/credentials", R_OK) == 0)
        snprintf(file, sizeof file, "var/data/credentials");
    if (!file[0]) {
        cf_err_set(err, CF_EINVAL,
                   "no access key for %s: hint: set COFFER_ACCESS_KEY and COFFER_SECRET_KEY (or "
                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) to the server's keys; a server started "
                   "with `coffer server --data DIR` keeps its root keys in DIR/credentials",
                   endpoint);
    } else if (strlen(file) < 80) { /* the command fits in the message three times over */
        cf_err_set(err, CF_EINVAL,
                   "no access key for %s: hint: set COFFER_ACCESS_KEY and COFFER_SECRET_KEY (or "
                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); the local server's root keys are in "
                   "'%s': export COFFER_ACCESS_KEY=$(sed -n 's/^access_key=//p' %s) "
                   "COFFER_SECRET_KEY=$(sed -n 's/^secret_key=//p' %s)",
                   endpoint, file, file, file);
    } else {
        cf_err_set(err, CF_EINVAL,
                   "no access key for %s: hint: set COFFER_ACCESS_KEY and COFFER_SECRET_KEY (or "
                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); the local server's root keys are the "
                   "access_key= and secret_key= lines of '%s'",
                   endpoint, file);
    }
}

int cf_cli_net_flag(int which, const char *value, cf_cli_target_flags *f, cf_err *err)
{
    if (which == 0) {
        char *end;
        long n = strtol(value, &end, 10);
        if (end == value || *end || n < 0 || n > 99)
            return cf_err_set(err, CF_EINVAL, "--retries takes a number from 0 to 99, not '%s'", value);
        f->max_attempts = (int)n + 1;
        return 0;
    }
    int64_t s;
    const char *name = which == 1 ? "--retry-budget" : "--stall-timeout";
    if (cf_duration_parse(value, &s) != 0 || s > 86400)
        return cf_err_set(err, CF_EINVAL, "%s takes a duration from 1s to 1d like 90s or 5m, not '%s'", name,
                          value);
    *(which == 1 ? &f->retry_budget_ms : &f->stall_timeout_ms) = (long)s * 1000;
    return 0;
}

int cf_cli_target_resolve(const cf_cli_target_flags *flags, cf_cli_target *out, cf_err *err)
{
    cf_s3c_flags f = {.endpoint = flags->endpoint,
                      .region = flags->region,
                      .profile = flags->profile,
                      .access_key = flags->access_key,
                      .secret_key_file = flags->secret_key_file,
                      .virtual_host = -1,
                      .default_endpoint = CF_CLI_DEFAULT_ENDPOINT};
    cf_err e = {0};
    int rc = cf_s3c_config_resolve(&f, out, &e);
    if (rc == CF_EINVAL && !out->access_key[0] && !strncmp(e.msg, "no access key", 13))
        hint_local_credentials(out->endpoint, &e);
    if (rc) {
        memset(out, 0, sizeof *out);
        if (err)
            *err = e;
        return rc;
    }
    if (flags->max_attempts)
        out->max_attempts = flags->max_attempts;
    out->retry_budget_ms = flags->retry_budget_ms;
    out->stall_timeout_ms = flags->stall_timeout_ms;
    return 0;
}

static size_t collect(char *p, size_t size, size_t n, void *ctx)
{
    cf_buf *b = ctx;
    return b && cf_buf_append(b, p, size * n) != 0 ? 0 : size * n;
}

int cf_cli_request(const cf_cli_target *t, const char *method, const char *path, const char *content_type,
                   const void *body, size_t len, long *status, cf_buf *response, cf_err *err)
{
    CURL *c = curl_easy_init();
    if (!c)
        return cf_err_set(err, CF_ENOMEM, "cannot start an HTTP client");
    char url[4096], sigv4[128], userpwd[300], hash_header[128], type_header[160];
    unsigned char digest[CF_SHA256_LEN];
    char hex[65];
    snprintf(url, sizeof url, "%s%s", t->endpoint, path);
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", t->region);
    snprintf(userpwd, sizeof userpwd, "%s:%s", t->access_key, t->secret_key);
    if (cf_sha256(body ? body : "", len, digest) != 0) {
        memset(userpwd, 0, sizeof userpwd);
        curl_easy_cleanup(c);
        return cf_err_set(err, CF_ENOMEM, "out of memory hashing a request to %s", t->endpoint);
    }
    cf_hex_encode(digest, sizeof digest, hex);
    /* Sign the body itself: the server then checks it arrived intact. */
    snprintf(hash_header, sizeof hash_header, "x-amz-content-sha256: %s", hex);
    struct curl_slist *headers = curl_slist_append(NULL, hash_header), *all = headers;
    if (headers && content_type) {
        snprintf(type_header, sizeof type_header, "Content-Type: %s", content_type);
        all = curl_slist_append(headers, type_header);
    }
    if (!all) { /* a request without its headers would be another request */
        curl_slist_free_all(headers);
        memset(userpwd, 0, sizeof userpwd);
        curl_easy_cleanup(c);
        return cf_err_set(err, CF_ENOMEM, "out of memory building a request to %s", t->endpoint);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, response);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode cc = curl_easy_perform(c);
    int rc = 0;
    if (cc != CURLE_OK)
        rc = cf_err_set(err, CF_EIO, "cannot reach %s: %s", t->endpoint, curl_easy_strerror(cc));
    else
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(headers);
    memset(userpwd, 0, sizeof userpwd);
    curl_easy_cleanup(c);
    return rc;
}
