#include "snapshot/ref.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"

int64_t cf_snapshot_id_time(const char *id)
{
    struct tm tm = {0};
    if (!cf_snapshot_id_valid(id) || sscanf(id, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    int mon = tm.tm_mon, day = tm.tm_mday;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    struct tm back;
    /* 20261131 normalises to 1 December: not an ID. */
    if (t < 0 || !gmtime_r(&t, &back) || back.tm_mon != mon - 1 || back.tm_mday != day || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 59)
        return -1;
    return (int64_t)t;
}

int cf_snapshot_ns_valid(const char *ns)
{
    if (!*ns || !strcmp(ns, ".") || !strcmp(ns, ".."))
        return 0;
    for (const char *c = ns; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == '\\' || *c == '@')
            return 0;
    return 1;
}

int cf_snapshot_ref_parse(const char *text, int allow_id, cf_snapshot_ref *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    char buf[PATH_MAX + 64];
    if (snprintf(buf, sizeof buf, "%s", text) >= (int)sizeof buf)
        return cf_err_set(err, CF_EINVAL, "repository '%.80s...' is too long", text);
    char *at = strrchr(buf, '@');
    if (at && (strchr(at, '/') == NULL)) {
        if (!allow_id)
            return cf_err_set(err, CF_EINVAL,
                              "'%s': this command takes a repository, not a snapshot (drop '@%s')", text,
                              at + 1);
        *at = '\0';
        const char *id = at + 1;
        if (strcmp(id, "latest") == 0)
            out->latest = 1;
        else if (cf_snapshot_id_valid(id) && cf_snapshot_id_time(id) >= 0)
            snprintf(out->id, sizeof out->id, "%s", id);
        else
            return cf_err_set(err, CF_EINVAL,
                              "'%s' is not a snapshot id (like 20261122T153000Z-7f3a) or 'latest'", id);
    }
    char *path = buf;
    if (strncmp(path, "s3://", 5) == 0) {
        out->is_s3 = 1;
        path += 5;
        char *slash = strchr(path, '/');
        if (!slash || slash == path)
            return cf_err_set(err, CF_EINVAL, "'%s': expected s3://BUCKET/[PREFIX/]NAMESPACE", text);
        size_t bl = (size_t)(slash - path);
        if (bl >= sizeof out->bucket)
            return cf_err_set(err, CF_EINVAL, "'%s': bucket name too long", text);
        memcpy(out->bucket, path, bl);
        path = slash + 1;
    } else if (strncmp(path, "file://", 7) == 0) {
        path += 7;
    } else if (strstr(path, "://")) {
        return cf_err_set(err, CF_EINVAL,
                          "'%s': repositories are s3://BUCKET/PREFIX/NAMESPACE or a directory", text);
    }
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        path[--n] = '\0';
    char *last = strrchr(path, '/');
    const char *ns = last ? last + 1 : path;
    if (!cf_snapshot_ns_valid(ns))
        return cf_err_set(err, CF_EINVAL,
                          "'%s': the last path segment names the namespace, and '%s' cannot be one", text,
                          ns);
    snprintf(out->ns, sizeof out->ns, "%s", ns);
    if (last)
        *last = '\0';
    if (out->is_s3)
        snprintf(out->root, sizeof out->root, "%s", last ? path : "");
    else
        snprintf(out->root, sizeof out->root, "%s", last ? (*path ? path : "/") : ".");
    return 0;
}
