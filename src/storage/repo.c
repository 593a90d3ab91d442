/* repo.c - dispatch to the repository's backend (repo_int.h). */
#include "storage/repo_int.h"

void cf_repo_close(cf_repo *r)
{
    if (r)
        r->ops->close(r);
}

const char *cf_repo_name(const cf_repo *r)
{
    return r->name;
}

int cf_repo_writer_begin(cf_repo *r, const char *key, uint64_t size_hint, cf_repo_writer **out, cf_err *err)
{
    return r->ops->writer_begin(r, key, size_hint, out, err);
}

int cf_repo_writer_write(cf_repo_writer *w, const void *p, size_t n, cf_err *err)
{
    return w->repo->ops->writer_write(w, p, n, err);
}

int cf_repo_writer_commit(cf_repo_writer *w, cf_err *err)
{
    return w->repo->ops->writer_commit(w, err);
}

void cf_repo_writer_abort(cf_repo_writer *w)
{
    if (w)
        w->repo->ops->writer_abort(w);
}

int cf_repo_get(cf_repo *r, const char *key, uint64_t offset, uint64_t len, cf_repo_data_fn fn, void *ctx,
                cf_err *err)
{
    return r->ops->get(r, key, offset, len, fn, ctx, err);
}

int cf_repo_stream(cf_repo *r, const char *key, cf_repo_data_fn fn, void *ctx, cf_err *err)
{
    if (r->ops->stream)
        return r->ops->stream(r, key, fn, ctx, err);
    return r->ops->get(r, key, 0, UINT64_MAX, fn, ctx, err);
}

int cf_repo_list(cf_repo *r, const char *prefix, cf_repo_list_fn fn, void *ctx, cf_err *err)
{
    return r->ops->list(r, prefix, fn, ctx, err);
}

int cf_repo_delete(cf_repo *r, const char *key, cf_err *err)
{
    return r->ops->del(r, key, err);
}

int cf_repo_sweep(cf_repo *r, const char *prefix, int64_t before, size_t *removed, cf_err *err)
{
    *removed = 0;
    return r->ops->sweep(r, prefix, before, removed, err);
}
