/*
 * fs.h - file system helpers whose point is durability: what they report as done survives a
 * crash of the process or the machine.
 */
#ifndef CF_CORE_FS_H
#define CF_CORE_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"

/* fsync() of a directory, so that a rename or create inside it is durable. */
int cf_fs_fsync_dir(const char *path, cf_err *err);
/* mkdir -p with the given mode; creating a directory also fsyncs its parent. */
int cf_fs_mkdirs(const char *path, mode_t mode, cf_err *err);
/* Removes a tree (rm -rf); a missing path is not an error. */
int cf_fs_remove_tree(const char *path, cf_err *err);
/* Writes data to path atomically (temp file, fsync, rename, fsync dir) with the given mode. */
int cf_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, cf_err *err);
/* Reads a whole small file (at most max bytes) into a NUL-terminated heap string (caller frees). */
int cf_fs_read_small(const char *path, size_t max, char **out, size_t *len, cf_err *err);
/* write() all of it, retrying on EINTR and short writes. Returns 0 or the CF_E code of the
 * failure, with a message naming `path` (the file behind fd). */
int cf_fs_write_all(int fd, const void *p, size_t n, const char *path, cf_err *err);
/* NAME from the environment, or the contents of the file named by NAME_FILE (trailing
 * newlines and spaces dropped): how secrets reach us from Kubernetes secret mounts. 1 when
 * found, 0 when neither is set, or a negative CF_E code. */
int cf_fs_env_or_file(const char *name, char *out, size_t outlen, cf_err *err);

#endif
