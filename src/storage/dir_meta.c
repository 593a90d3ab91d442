/*
 * dir_meta.c - a directory repository's content type and user metadata, kept in extended
 * attributes of the object's file (user.coffer.content_type, user.coffer.meta.<name>), so that
 * the file stays byte-identical to the object and a rename replaces bytes and metadata at once
 * (docs/internals/storage.md says why not a sidecar file).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

#include "storage/dir_meta.h"
#include "storage/repo_int.h"

#define XATTR_TYPE "user.coffer.content_type"
#define XATTR_META "user.coffer.meta."
#define XATTR_STD "user.coffer."

/* The standard headers, each in user.coffer.<name>. */
static const char *const std_names[] = {"cache_control", "content_disposition", "content_encoding",
                                        "content_language", "expires"};

/* The object's metadata onto the temporary file fd, before it takes the key. */
int cf_dir_meta_set(int fd, const char *tmp, const cf_repo_put_opts *o, cf_err *err)
{
    if (!o)
        return 0;
    const char *failed = NULL;
    char name[sizeof XATTR_META + 128];
    if (o->content_type && fsetxattr(fd, XATTR_TYPE, o->content_type, strlen(o->content_type), 0) != 0)
        failed = XATTR_TYPE;
    const char *std[] = {o->cache_control, o->content_disposition, o->content_encoding, o->content_language,
                         o->expires};
    for (size_t i = 0; !failed && i < sizeof std / sizeof *std; i++) {
        snprintf(name, sizeof name, XATTR_STD "%s", std_names[i]);
        if (std[i] && *std[i] && fsetxattr(fd, name, std[i], strlen(std[i]), 0) != 0)
            failed = name;
    }
    for (size_t i = 0; !failed && i < o->nmeta; i++) {
        size_t n = (size_t)snprintf(name, sizeof name, XATTR_META "%s", o->meta[i].name);
        for (size_t j = sizeof XATTR_META - 1; j < n; j++)
            name[j] = (char)tolower((unsigned char)name[j]);
        if (fsetxattr(fd, name, o->meta[i].value, strlen(o->meta[i].value), 0) != 0)
            failed = name;
    }
    if (!failed)
        return 0;
    int e = errno;
    if (e == ENOTSUP)
        return cf_err_set(err, CF_ENOTSUP,
                          "'%s': the filesystem keeps no user extended attributes, where a directory "
                          "repository stores content type and metadata",
                          tmp);
    return cf_err_sys(err, cf_err_from_errno(e), e, "cannot set %s on '%s'", failed, tmp);
}

/* Content type and metadata of the open object fd into info. */
int cf_dir_meta_read(int fd, const char *path, cf_repo_info *info, cf_err *err)
{
    char names[4096], value[CF_REPO_META_MAX + 1];
    ssize_t n = flistxattr(fd, names, sizeof names);
    if (n < 0 && (errno == ENOTSUP || errno == ENODATA))
        n = 0;
    if (n < 0)
        return cf_err_sys(err, CF_EIO, errno, "cannot read the metadata of '%s'", path);
    snprintf(info->content_type, sizeof info->content_type, CF_DIR_DEFAULT_TYPE);
    for (const char *name = names; name < names + n; name += strlen(name) + 1) {
        int is_type = !strcmp(name, XATTR_TYPE);
        char *std = NULL;
        size_t std_cap = 0;
        char *std_at[] = {info->cache_control, info->content_disposition, info->content_encoding,
                          info->content_language, info->expires};
        const size_t std_size[] = {sizeof info->cache_control, sizeof info->content_disposition,
                                   sizeof info->content_encoding, sizeof info->content_language,
                                   sizeof info->expires};
        for (size_t i = 0; i < sizeof std_names / sizeof *std_names; i++)
            if (!strncmp(name, XATTR_STD, sizeof XATTR_STD - 1) &&
                !strcmp(name + sizeof XATTR_STD - 1, std_names[i])) {
                std = std_at[i];
                std_cap = std_size[i];
            }
        if (!is_type && !std && strncmp(name, XATTR_META, sizeof XATTR_META - 1) != 0)
            continue;
        ssize_t vl = fgetxattr(fd, name, value, sizeof value - 1);
        if (vl < 0)
            continue; /* removed meanwhile, or longer than any value we write */
        value[vl] = '\0';
        if (is_type)
            snprintf(info->content_type, sizeof info->content_type, "%s", value);
        else if (std)
            snprintf(std, std_cap, "%s", value);
        else if (cf_repo_info_add_meta(info, name + sizeof XATTR_META - 1,
                                       strlen(name) - (sizeof XATTR_META - 1), value, (size_t)vl) != 0)
            return cf_err_set(err, CF_ECORRUPT, "'%s' carries more metadata than an object may", path);
    }
    return 0;
}
