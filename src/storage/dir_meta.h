/* dir_meta.h - content type and user metadata of a directory repository's objects (dir_meta.c). */
#ifndef CF_STORAGE_DIR_META_H
#define CF_STORAGE_DIR_META_H

#include "core/err.h"
#include "storage/repo.h"

/* What an object without a stored content type is. */
#define CF_DIR_DEFAULT_TYPE "application/octet-stream"

/* Sets o's content type and metadata (checked by cf_repo_check_opts; o may be NULL) on fd, the
 * temporary file tmp that is about to take the key. CF_ENOTSUP when the filesystem keeps no user
 * extended attributes. */
int cf_dir_meta_set(int fd, const char *tmp, const cf_repo_put_opts *o, cf_err *err);
/* The content type (CF_DIR_DEFAULT_TYPE when none is stored) and metadata of the open object fd
 * at path into info. */
int cf_dir_meta_read(int fd, const char *path, cf_repo_info *info, cf_err *err);

#endif
