#include "cli/target.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "crypto/hash.h"

/* The first of flag and the environment variables that is set. */
static int first_of(const char *flag, const char *const *vars, char *out, size_t outlen, cf_err *err)
{
    if (flag && *flag) {
        if (strlen(flag) >= outlen)
            return cf_err_set(err, CF_EINVAL, "'%.40s...' is longer than %zu characters", flag, outlen - 1);
        snprintf(out, outlen, "%s", flag);
        return 1;
    }
    for (; *vars; vars++) {
        int rc = cf_fs_env_or_file(*vars, out, outlen, err);
        if (rc)
            return rc;
    }
    return 0;
}

int cf_cli_target_resolve(const cf_cli_target_flags *flags, cf_cli_target *out, cf_err *err)
{
    static const char *const endpoint_vars[] = {"COFFER_ENDPOINT", "AWS_ENDPOINT_URL", NULL};
    static const char *const region_vars[] = {"COFFER_REGION", "AWS_REGION", "AWS_DEFAULT_REGION", NULL};
    static const char *const access_vars[] = {"COFFER_ACCESS_KEY", "COFFER_ROOT_USER", "AWS_ACCESS_KEY_ID",
                                              NULL};
    static const char *const secret_vars[] = {"COFFER_SECRET_KEY", "COFFER_ROOT_PASSWORD",
                                              "AWS_SECRET_ACCESS_KEY", NULL};
    memset(out, 0, sizeof *out);
    int rc = first_of(flags->endpoint, endpoint_vars, out->endpoint, sizeof out->endpoint, err);
    if (rc < 0)
        return rc;
    if (!rc)
        snprintf(out->endpoint, sizeof out->endpoint, "http://127.0.0.1:9000");
    size_t n = strlen(out->endpoint);
    while (n && out->endpoint[n - 1] == '/')
        out->endpoint[--n] = '\0';
    if (strncmp(out->endpoint, "http://", 7) != 0 && strncmp(out->endpoint, "https://", 8) != 0)
        return cf_err_set(err, CF_EINVAL, "endpoint '%s' must start with http:// or https://", out->endpoint);
    if ((rc = first_of(flags->region, region_vars, out->region, sizeof out->region, err)) < 0)
        return rc;
    if (!rc)
        snprintf(out->region, sizeof out->region, "us-east-1");
    if ((rc = first_of(flags->access_key, access_vars, out->access_key, sizeof out->access_key, err)) < 0)
        return rc;
    if (!rc)
        return cf_err_set(
            err, CF_EINVAL,
            "no access key: set COFFER_ACCESS_KEY (or AWS_ACCESS_KEY_ID), or pass --access-key");
    if (flags->secret_key_file) {
        char *data = NULL;
        size_t len;
        if ((rc = cf_fs_read_small(flags->secret_key_file, sizeof out->secret_key + 1, &data, &len, err))) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            return cf_err_set(err, rc, "--secret-key-file: %s", why);
        }
        while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
            data[--len] = '\0';
        if (len == 0 || len >= sizeof out->secret_key) {
            free(data);
            return cf_err_set(err, CF_EINVAL, "--secret-key-file '%s' must hold 1 to 128 characters",
                              flags->secret_key_file);
        }
        memcpy(out->secret_key, data, len + 1);
        free(data);
        return 0;
    }
    if ((rc = first_of(NULL, secret_vars, out->secret_key, sizeof out->secret_key, err)) < 0)
        return rc;
    if (!rc)
        return cf_err_set(err, CF_EINVAL,
                          "no secret key: set COFFER_SECRET_KEY or COFFER_SECRET_KEY_FILE (or "
                          "AWS_SECRET_ACCESS_KEY), or pass --secret-key-file");
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
    cf_sha256(body ? body : "", len, digest);
    cf_hex_encode(digest, sizeof digest, hex);
    /* Sign the body itself: the server then checks it arrived intact. */
    snprintf(hash_header, sizeof hash_header, "x-amz-content-sha256: %s", hex);
    struct curl_slist *headers = curl_slist_append(NULL, hash_header);
    if (content_type) {
        snprintf(type_header, sizeof type_header, "Content-Type: %s", content_type);
        headers = curl_slist_append(headers, type_header);
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
