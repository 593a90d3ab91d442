/*
 * target.h - which server a client command talks to, and as whom.
 *
 * Resolution, first found wins, each item on its own:
 *   endpoint:   --endpoint, COFFER_ENDPOINT, AWS_ENDPOINT_URL, http://127.0.0.1:9000
 *   region:     --region, COFFER_REGION, AWS_REGION, AWS_DEFAULT_REGION, us-east-1
 *   access key: --access-key, COFFER_ACCESS_KEY, COFFER_ROOT_USER(_FILE), AWS_ACCESS_KEY_ID
 *   secret:     --secret-key-file, COFFER_SECRET_KEY(_FILE), COFFER_ROOT_PASSWORD(_FILE),
 *               AWS_SECRET_ACCESS_KEY
 * A secret is never taken from the command line, where any user could read it in ps.
 */
#ifndef CF_CLI_TARGET_H
#define CF_CLI_TARGET_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

typedef struct cf_cli_target {
    char endpoint[512]; /* without a trailing '/' */
    char region[64];
    char access_key[129];
    char secret_key[129];
} cf_cli_target;

typedef struct cf_cli_target_flags {
    const char *endpoint, *region, *access_key, *secret_key_file;
} cf_cli_target_flags;

int cf_cli_target_resolve(const cf_cli_target_flags *flags, cf_cli_target *out, cf_err *err);

/*
 * One SigV4-signed request to the target (path and query already encoded). Fills *status and
 * the response body (may be NULL). Fails only when no HTTP answer came back.
 */
int cf_cli_request(const cf_cli_target *t, const char *method, const char *path, const char *content_type,
                   const void *body, size_t len, long *status, cf_buf *response, cf_err *err);

#endif
