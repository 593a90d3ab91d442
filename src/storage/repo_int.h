/* repo_int.h - what a repository backend implements (repo_dir.c, repo_s3.c). */
#ifndef CF_STORAGE_REPO_INT_H
#define CF_STORAGE_REPO_INT_H

#include "storage/repo.h"

typedef struct cf_repo_ops {
    void (*close)(cf_repo *r);
    /* o was checked (cf_repo_check_opts) and may be NULL; copy what is kept. */
    int (*writer_begin)(cf_repo *r, const char *key, uint64_t size_hint, const cf_repo_put_opts *o,
                        cf_repo_writer **out, cf_err *err);
    int (*writer_write)(cf_repo_writer *w, const void *p, size_t n, cf_err *err);
    int (*writer_commit)(cf_repo_writer *w, cf_err *err); /* frees w */
    void (*writer_abort)(cf_repo_writer *w);              /* frees w */
    int (*get)(cf_repo *r, const char *key, uint64_t offset, uint64_t len, cf_repo_data_fn fn, void *ctx,
               cf_err *err);
    /* Optional: without it, cf_repo_get_info is a stat, then a get. */
    int (*get_info)(cf_repo *r, const char *key, uint64_t offset, uint64_t len, cf_repo_info *info,
                    cf_repo_data_fn fn, void *ctx, cf_err *err);
    /* Optional: without it, cf_repo_stream is one get of the whole object. */
    int (*stream)(cf_repo *r, const char *key, cf_repo_data_fn fn, void *ctx, cf_err *err);
    int (*list)(cf_repo *r, const char *prefix, int flags, cf_repo_list_fn fn, void *ctx, cf_err *err);
    /* Optional: without it, cf_repo_stat then cf_repo_stream. */
    int (*read)(cf_repo *r, const char *key, uint64_t size_hint, cf_repo_info_fn on_info, cf_repo_data_fn fn,
                void *ctx, cf_err *err);
    /* Optional (CF_ENOTSUP without): src has the same ops; return CF_ENOTSUP when it cannot. */
    int (*copy_from)(cf_repo *dst, const char *dst_key, cf_repo *src, const char *src_key,
                     const cf_repo_put_opts *o, cf_err *err);
    /* Optional: nothing to do without it (S3: a write is durable once it returned). */
    int (*sync)(cf_repo *r, cf_err *err);
    int (*list_dir)(cf_repo *r, const char *prefix, cf_repo_list_fn fn, void *ctx, cf_err *err);
    int (*stat)(cf_repo *r, const char *key, cf_repo_info *out, cf_err *err);
    /* o checked, may be NULL. */
    int (*copy)(cf_repo *r, const char *src, const char *dst, const cf_repo_put_opts *o, cf_err *err);
    /* flags: CF_REPO_DELETE_NO_SYNC or 0. */
    int (*del)(cf_repo *r, const char *key, int flags, cf_err *err);
    /* Optional: without it, one del per key (each made durable). */
    int (*del_many)(cf_repo *r, const char *const *keys, size_t n, cf_err *err);
    /* Optional (CF_ENOTSUP without): cf_repo_writer_begin_resume and cf_repo_upload_abort. */
    int (*writer_resume)(cf_repo *r, const char *key, uint64_t size_hint, cf_repo_resume *rs,
                         cf_repo_writer **out, cf_err *err);
    int (*upload_abort)(cf_repo *r, const char *key, const char *upload_id, cf_err *err);
    int (*sweep)(cf_repo *r, const char *prefix, int64_t before, size_t *removed, cf_err *err);
} cf_repo_ops;

struct cf_repo {
    const cf_repo_ops *ops;
    const char *name;
};

struct cf_repo_writer {
    cf_repo *repo;
};

/* CF_EINVAL with a message naming key when o breaks the rules of repo.h. */
int cf_repo_check_opts(const cf_repo *r, const char *key, const cf_repo_put_opts *o, cf_err *err);
/* Tests' seam: an S3 repository copies objects above single_max bytes in parts of part bytes
 * (UploadPartCopy), instead of above 5 GiB in parts of 512 MiB. */
void cf_repo_s3_set_copy_sizes(cf_repo *r, uint64_t single_max, uint64_t part);
/* Adds name/value to info (name lower-cased); 0, or CF_ETOOBIG when it does not fit. */
int cf_repo_info_add_meta(cf_repo_info *info, const char *name, size_t name_len, const char *value,
                          size_t value_len);

#endif
