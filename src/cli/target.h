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
} cf_cli_target_flags;

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
