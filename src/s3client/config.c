/*
 * config.c - where the client's endpoint, region and credentials come from: explicit values,
 * COFFER_* variables, AWS_* variables, then the AWS shared credentials and config files.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs.h"
#include "s3client/s3client.h"

#define INI_MAX (1u << 20)

static char *trim(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int cf_s3c_ini_get(const char *path, const char *section, const char *key, char *out, size_t outlen,
                   cf_err *err)
{
    char *data = NULL;
    size_t len;
    cf_err e;
    int rc = cf_fs_read_small(path, INI_MAX, &data, &len, &e);
    if (rc == CF_ENOTFOUND)
        return 0;
    if (rc)
        return cf_err_set(err, rc, "%s", e.msg);
    int in_section = 0, found = 0;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end)
                continue;
            *end = '\0';
            in_section = strcmp(trim(s + 1), section) == 0;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in_section || !eq)
            continue;
        *eq = '\0';
        if (strcmp(trim(s), key) != 0)
            continue;
        char *v = trim(eq + 1);
        if (strlen(v) >= outlen) {
            free(data);
            return cf_err_set(err, CF_EINVAL, "'%s': [%s] %s is longer than %zu characters", path, section,
                              key, outlen - 1);
        }
        snprintf(out, outlen, "%s", v); /* keep going: a later duplicate wins */
        found = 1;
    }
    free(data);
    return found;
}

static int put(const char *what, const char *v, char *out, size_t outlen, cf_err *err)
{
    if (strlen(v) >= outlen)
        return cf_err_set(err, CF_EINVAL, "%s is longer than %zu characters", what, outlen - 1);
    snprintf(out, outlen, "%s", v);
    return 1;
}

static int set(const char *s)
{
    return s && *s;
}

typedef struct files {
    char profile[128];
    char cred_path[1024], conf_path[1024];
    char conf_section[160];
} files;

static void find_files(const cf_s3c_flags *f, files *fs)
{
    const char *p = set(f->profile) ? f->profile : getenv("AWS_PROFILE");
    if (!set(p))
        p = getenv("AWS_DEFAULT_PROFILE");
    snprintf(fs->profile, sizeof fs->profile, "%s", set(p) ? p : "default");
    const char *home = getenv("HOME");
    const char *c = getenv("AWS_SHARED_CREDENTIALS_FILE");
    if (set(c))
        snprintf(fs->cred_path, sizeof fs->cred_path, "%s", c);
    else
        snprintf(fs->cred_path, sizeof fs->cred_path, "%s/.aws/credentials", set(home) ? home : "");
    c = getenv("AWS_CONFIG_FILE");
    if (set(c))
        snprintf(fs->conf_path, sizeof fs->conf_path, "%s", c);
    else
        snprintf(fs->conf_path, sizeof fs->conf_path, "%s/.aws/config", set(home) ? home : "");
    if (strcmp(fs->profile, "default") == 0)
        snprintf(fs->conf_section, sizeof fs->conf_section, "default");
    else
        snprintf(fs->conf_section, sizeof fs->conf_section, "profile %s", fs->profile);
}

/* A key from the profile: the credentials file first, then the config file. */
static int profile_get(const files *fs, const char *key, char *out, size_t outlen, cf_err *err)
{
    int rc = cf_s3c_ini_get(fs->cred_path, fs->profile, key, out, outlen, err);
    if (rc)
        return rc;
    return cf_s3c_ini_get(fs->conf_path, fs->conf_section, key, out, outlen, err);
}

enum { SRC_FLAG, SRC_COFFER, SRC_COFFER_ROOT, SRC_AWS_ENV, SRC_PROFILE, SRC_NONE };

static int resolve_keys(const cf_s3c_flags *f, const files *fs, cf_s3c_config *out, cf_err *err)
{
    int rc, src = SRC_NONE;
    if (set(f->access_key)) {
        if ((rc = put("--access-key", f->access_key, out->access_key, sizeof out->access_key, err)) < 0)
            return rc;
        src = SRC_FLAG;
    } else if ((rc = cf_fs_env_or_file("COFFER_ACCESS_KEY", out->access_key, sizeof out->access_key, err))) {
        if (rc < 0)
            return rc;
        src = SRC_COFFER;
    } else if ((rc = cf_fs_env_or_file("COFFER_ROOT_USER", out->access_key, sizeof out->access_key, err))) {
        if (rc < 0)
            return rc;
        src = SRC_COFFER_ROOT;
    } else if ((rc = cf_fs_env_or_file("AWS_ACCESS_KEY_ID", out->access_key, sizeof out->access_key, err))) {
        if (rc < 0)
            return rc;
        src = SRC_AWS_ENV;
    } else if ((rc = profile_get(fs, "aws_access_key_id", out->access_key, sizeof out->access_key, err))) {
        if (rc < 0)
            return rc;
        src = SRC_PROFILE;
    } else {
        return cf_err_set(err, CF_EINVAL,
                          "no access key: hint: set COFFER_ACCESS_KEY and COFFER_SECRET_KEY (or "
                          "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in '%s'), or pass "
                          "--access-key and --secret-key-file",
                          fs->cred_path);
    }

    /* The secret comes from the access key's level or below, never from above it. */
    rc = 0;
    if (set(f->secret_key))
        rc = put("secret key", f->secret_key, out->secret_key, sizeof out->secret_key, err);
    else if (set(f->secret_key_file)) {
        char *data = NULL;
        size_t len;
        cf_err e;
        if ((rc = cf_fs_read_small(f->secret_key_file, sizeof out->secret_key + 2, &data, &len, &e)))
            return cf_err_set(err, rc, "--secret-key-file: %s", e.msg);
        while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
            data[--len] = '\0';
        /* A file named on purpose that holds no usable key is a mistake, not a reason to look
         * elsewhere. */
        rc = len && len < sizeof out->secret_key
                 ? put("--secret-key-file", data, out->secret_key, sizeof out->secret_key, err)
                 : cf_err_set(err, CF_EINVAL, "--secret-key-file '%s' must hold 1 to %zu characters",
                              f->secret_key_file, sizeof out->secret_key - 1);
        free(data);
        if (rc < 0)
            return rc;
    }
    if (!rc && src <= SRC_COFFER)
        rc = cf_fs_env_or_file("COFFER_SECRET_KEY", out->secret_key, sizeof out->secret_key, err);
    if (!rc && src <= SRC_COFFER_ROOT)
        rc = cf_fs_env_or_file("COFFER_ROOT_PASSWORD", out->secret_key, sizeof out->secret_key, err);
    if (!rc && src <= SRC_AWS_ENV)
        rc = cf_fs_env_or_file("AWS_SECRET_ACCESS_KEY", out->secret_key, sizeof out->secret_key, err);
    if (!rc)
        rc = profile_get(fs, "aws_secret_access_key", out->secret_key, sizeof out->secret_key, err);
    if (rc < 0)
        return rc;
    if (!rc)
        return cf_err_set(err, CF_EINVAL,
                          "no secret key for access key '%s': hint: set "
                          "COFFER_SECRET_KEY or COFFER_SECRET_KEY_FILE (or AWS_SECRET_ACCESS_KEY), "
                          "or pass --secret-key-file",
                          out->access_key);

    /* A session token belongs to the keys it was issued with. */
    char *tok = out->session_token;
    size_t toklen = sizeof out->session_token;
    switch (src) {
    case SRC_FLAG:
        rc = set(f->session_token) ? put("session token", f->session_token, tok, toklen, err) : 0;
        break;
    case SRC_COFFER: rc = cf_fs_env_or_file("COFFER_SESSION_TOKEN", tok, toklen, err); break;
    case SRC_COFFER_ROOT: rc = 0; break; /* root keys are the server's own: no token */
    case SRC_AWS_ENV: rc = cf_fs_env_or_file("AWS_SESSION_TOKEN", tok, toklen, err); break;
    default: rc = profile_get(fs, "aws_session_token", tok, toklen, err);
    }
    return rc < 0 ? rc : 0;
}

int cf_s3c_config_resolve(const cf_s3c_flags *flags, cf_s3c_config *out, cf_err *err)
{
    static const cf_s3c_flags none = {.virtual_host = -1};
    const cf_s3c_flags *f = flags ? flags : &none;
    files fs;
    int rc = 0;
    memset(out, 0, sizeof *out);
    find_files(f, &fs);

    if (set(f->region))
        rc = put("--region", f->region, out->region, sizeof out->region, err);
    static const char *const region_vars[] = {"COFFER_REGION", "AWS_REGION", "AWS_DEFAULT_REGION", NULL};
    for (const char *const *v = region_vars; !rc && *v; v++)
        rc = cf_fs_env_or_file(*v, out->region, sizeof out->region, err);
    if (!rc)
        rc = cf_s3c_ini_get(fs.conf_path, fs.conf_section, "region", out->region, sizeof out->region, err);
    if (rc < 0)
        return rc;
    if (!rc)
        snprintf(out->region, sizeof out->region, "us-east-1");

    rc = 0;
    if (set(f->endpoint))
        rc = put("--endpoint", f->endpoint, out->endpoint, sizeof out->endpoint, err);
    static const char *const ep_vars[] = {"COFFER_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", NULL};
    for (const char *const *v = ep_vars; !rc && *v; v++)
        rc = cf_fs_env_or_file(*v, out->endpoint, sizeof out->endpoint, err);
    if (!rc)
        rc = cf_s3c_ini_get(fs.conf_path, fs.conf_section, "endpoint_url", out->endpoint,
                            sizeof out->endpoint, err);
    if (rc < 0)
        return rc;
    if (!rc && set(f->default_endpoint))
        rc = put("the default endpoint", f->default_endpoint, out->endpoint, sizeof out->endpoint, err);
    if (rc < 0)
        return rc;
    if (!rc)
        snprintf(out->endpoint, sizeof out->endpoint, "https://s3.%s.amazonaws.com", out->region);
    size_t n = strlen(out->endpoint);
    while (n && out->endpoint[n - 1] == '/')
        out->endpoint[--n] = '\0';
    if (strncmp(out->endpoint, "http://", 7) != 0 && strncmp(out->endpoint, "https://", 8) != 0)
        return cf_err_set(err, CF_EINVAL, "endpoint '%s' must start with http:// or https://", out->endpoint);

    if ((rc = resolve_keys(f, &fs, out, err)))
        return rc;
    out->virtual_host = f->virtual_host;
    out->max_attempts = CF_S3C_MAX_ATTEMPTS_DEFAULT;
    return 0;
}
