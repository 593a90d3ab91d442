/* repo_int.h - what a repository backend implements (repo_dir.c, repo_s3.c). */
#ifndef CF_STORAGE_REPO_INT_H
#define CF_STORAGE_REPO_INT_H

#include "storage/repo.h"

typedef struct cf_repo_ops {
    void (*close)(cf_repo *r);
    int (*writer_begin)(cf_repo *r, const char *key, uint64_t size_hint, cf_repo_writer **out, cf_err *err);
    int (*writer_write)(cf_repo_writer *w, const void *p, size_t n, cf_err *err);
    int (*writer_commit)(cf_repo_writer *w, cf_err *err); /* frees w */
    void (*writer_abort)(cf_repo_writer *w);              /* frees w */
    int (*get)(cf_repo *r, const char *key, uint64_t offset, uint64_t len, cf_repo_data_fn fn, void *ctx,
               cf_err *err);
    /* Optional: without it, cf_repo_stream is one get of the whole object. */
    int (*stream)(cf_repo *r, const char *key, cf_repo_data_fn fn, void *ctx, cf_err *err);
    int (*list)(cf_repo *r, const char *prefix, cf_repo_list_fn fn, void *ctx, cf_err *err);
    int (*del)(cf_repo *r, const char *key, cf_err *err);
    int (*sweep)(cf_repo *r, const char *prefix, int64_t before, size_t *removed, cf_err *err);
} cf_repo_ops;

struct cf_repo {
    const cf_repo_ops *ops;
    const char *name;
};

struct cf_repo_writer {
    cf_repo *repo;
};

#endif
