/*
 * target.h - which server a client command talks to, and as whom. One rule for every command
 * that talks S3 or to the admin API (snapshot, admin, presign): the S3 client's
 * (cf_s3c_config_resolve in s3client/s3client.h) with the local server as the default endpoint.
 * First found wins:
 *   endpoint: --endpoint, COFFER_ENDPOINT, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the AWS
 *             profile's endpoint_url, http://127.0.0.1:9000
 *   region:   --region, COFFER_REGION, AWS_REGION, AWS_DEFAULT_REGION, the profile's region,
 *             us-east-1
 *   keys, as pairs: --access-key with --secret-key-file; COFFER_ACCESS_KEY with
 *             COFFER_SECRET_KEY; COFFER_ROOT_USER with COFFER_ROOT_PASSWORD; AWS_ACCESS_KEY_ID
 *             with AWS_SECRET_ACCESS_KEY; the AWS profile (--profile, AWS_PROFILE, "default")
 *             in ~/.aws/credentials and ~/.aws/config. The secret comes from the access key's
 *             source or one further down the list, never from one above it.
 * Every COFFER_* variable may instead be NAME_FILE naming a file that holds the value.
 * Requests are path-style (ENDPOINT/BUCKET/KEY) unless the endpoint is AWS's (*.amazonaws.com).
 * A secret is never taken from the command line, where any user could read it in ps.
 */
#ifndef CF_CLI_TARGET_H
#define CF_CLI_TARGET_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"
#include "s3client/s3client.h"

#define CF_CLI_DEFAULT_ENDPOINT "http://127.0.0.1:9000"

typedef cf_s3c_config cf_cli_target;

/* The command-line flags (NULL when not given). */
typedef struct cf_cli_target_flags {
    const char *endpoint, *region, *profile, *access_key, *secret_key_file;
    /* --retries (as tries), --retry-budget, --stall-timeout; 0: the S3 client's default. */
    int max_attempts;
    long retry_budget_ms, stall_timeout_ms;
} cf_cli_target_flags;

/* How a command that talks S3 rides out a bad network: getopt_long entries for --retries N,
 * --retry-budget DURATION and --stall-timeout DURATION, as option values base, base + 1 and
 * base + 2, and their help. */
#define CF_CLI_NET_OPTIONS(base)                                                                             \
    {"retries", required_argument, NULL, (base)}, {"retry-budget", required_argument, NULL, (base) + 1},     \
    {                                                                                                        \
        "stall-timeout", required_argument, NULL, (base) + 2                                                 \
    }
#define CF_CLI_NET_USAGE                                                                                     \
    "Network: --retries N retries of a failed request (0 to 99, default 4); --retry-budget D how\n"          \
    "long to keep retrying while every request fails (default 2m); --stall-timeout D cuts and\n"             \
    "retries a transfer that moves no byte for that long (default 30s). A store's Retry-After is\n"          \
    "honoured up to 30s.\n"
/* Stores the value of option base + which (see CF_CLI_NET_OPTIONS) into f; CF_EINVAL with a
 * message naming the option. */
int cf_cli_net_flag(int which, const char *value, cf_cli_target_flags *f, cf_err *err);

/*
 * Fills out by the rule above. Without credentials for a server on this machine, the error
 * names the credentials file of a local server when one is readable (the file is not read: the
 * user decides which keys to use).
 */
int cf_cli_target_resolve(const cf_cli_target_flags *flags, cf_cli_target *out, cf_err *err);

/*
 * One SigV4-signed request to the target (path and query already encoded). Fills *status and
 * the response body (may be NULL). Fails only when no HTTP answer came back.
 */
int cf_cli_request(const cf_cli_target *t, const char *method, const char *path, const char *content_type,
                   const void *body, size_t len, long *status, cf_buf *response, cf_err *err);

#endif
