/*
 * lib.h - what libcoffer's own files share beyond the public header: a repository's logger, so
 * that the snapshotter and bootstrap log where the application asked that repository to.
 */
#ifndef CF_LIB_LIB_H
#define CF_LIB_LIB_H

#include "coffer/coffer.h"
#include "core/log.h"
#include "storage/repo.h"

/* repo's logger (silent when the application gave no log function); lives as long as repo. */
const cf_logger *cf_lib_logger(const coffer_repo *repo);

/* A handle over a repository the caller opened itself (the command line does, to keep its own
 * S3 target rules and to read the S3 client's last answer for its exit codes): silent, and it
 * owns repo from then on (coffer_repo_close closes it). 0 or CF_ENOMEM (repo not taken). */
int cf_lib_repo_adopt(cf_repo *repo, coffer_repo **out);

/* A writer or snapshotter of repo begins (hold) or ends (release): a coffer_repo_close called before
 * the last release is carried out by it. */
void cf_lib_repo_hold(coffer_repo *repo);
void cf_lib_repo_release(coffer_repo *repo);

/* The caller's options struct (src, NULL: defaults) into ours-sized dst by the struct_size rule
 * of coffer.h; what names the struct in messages. COFFER_OK, COFFER_EINVAL or COFFER_ENOTSUP. */
int cf_lib_copy_options(void *dst, size_t ours, const void *src, const char *what, coffer_error *e);

/* 1 when s can be a manifest's string (a label's key or value): valid UTF-8. */
int cf_lib_text_valid(const char *s);

#endif
