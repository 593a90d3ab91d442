/*
 * lib.h - what libcoffer's own files share beyond the public header: a repository's logger, so
 * that the snapshotter and bootstrap log where the application asked that repository to.
 */
#ifndef CF_LIB_LIB_H
#define CF_LIB_LIB_H

#include <stdatomic.h>
#include <stddef.h>

#include "coffer/coffer.h"
#include "core/log.h"

/* repo's logger (silent when the application gave no log function); lives as long as repo. */
const cf_logger *cf_lib_logger(const coffer_repo *repo);

/* coffer_create_fd that gives up once *cancel is set (looked at before each read of fd): the
 * upload is aborted, no snapshot is listed, and the status is COFFER_EABORTED. The snapshotter
 * uploads its staged state with it, straight from the file rather than through a writer's pipe. */
int cf_lib_create_fd_cancellable(coffer_repo *repo, const char *ns, int fd,
                                 const coffer_create_options *options, const atomic_int *cancel,
                                 coffer_result *result, coffer_error *err);

/* A failure the library itself finds, with no S3 answer behind it, into e (may be NULL);
 * returns status. COFFER_OK and "" clear e. */
int cf_lib_fail(coffer_error *e, int status, const char *msg);

/* A writer or snapshotter of repo begins (hold) or ends (release): a coffer_repo_close called before
 * the last release is carried out by it. */
void cf_lib_repo_hold(coffer_repo *repo);
void cf_lib_repo_release(coffer_repo *repo);

/* The caller's options struct (src, NULL: defaults) into ours-sized dst by the struct_size rule
 * of coffer.h; what names the struct in messages. COFFER_OK, COFFER_EINVAL or COFFER_ENOTSUP. */
int cf_lib_copy_options(void *dst, size_t ours, const void *src, const char *what, coffer_error *e);

/* The struct_size rule of the structs the caller allocates and the library fills
 * (coffer_result, coffer_bootstrap_result, coffer_snapshotter_stats; what names it in
 * messages): check says COFFER_EINVAL when result is not NULL and its struct_size is below
 * sizeof(size_t) (options structs too, through cf_lib_copy_options); put copies into out the
 * whole fields of what (ours) that end within out's struct_size, given where each field ends
 * (ends, ascending, struct_size excluded: CF_LIB_FIELD_END), never struct_size itself. */
int cf_lib_check_result(const void *result, const char *what, coffer_error *e);
void cf_lib_put_result(void *out, const void *what, const size_t *ends, size_t nends);
#define CF_LIB_FIELD_END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* 1 when s can be a manifest's string (a label's key or value): valid UTF-8. */
int cf_lib_text_valid(const char *s);

#endif
