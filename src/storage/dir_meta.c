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

/* The object's metadata onto the temporary file fd, before it takes the key. */
int cf_dir_meta_set(int fd, const char *tmp, const cf_repo_put_opts *o, cf_err *err)
{
    if (!o)
        return 0;
    const char *failed = NULL;
    char name[sizeof XATTR_META + 128];
    if (o->content_type && fsetxattr(fd, XATTR_TYPE, o->content_type, strlen(o->content_type), 0) != 0)
        failed = XATTR_TYPE;
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
        if (!is_type && strncmp(name, XATTR_META, sizeof XATTR_META - 1) != 0)
            continue;
        ssize_t vl = fgetxattr(fd, name, value, sizeof value - 1);
        if (vl < 0)
            continue; /* removed meanwhile, or longer than any value we write */
        value[vl] = '\0';
        if (is_type)
            snprintf(info->content_type, sizeof info->content_type, "%s", value);
        else if (cf_repo_info_add_meta(info, name + sizeof XATTR_META - 1,
                                       strlen(name) - (sizeof XATTR_META - 1), value, (size_t)vl) != 0)
            return cf_err_set(err, CF_ECORRUPT, "'%s' carries more metadata than an object may", path);
    }
    return 0;
}
