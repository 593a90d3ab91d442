/* repo.c - dispatch to the repository's backend (repo_int.h), and the checks every backend shares. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "storage/repo_int.h"

static int key_given(const cf_repo *r, const char *key, cf_err *err)
{
    if (!key || !*key)
        return cf_err_set(err, CF_EINVAL, "'%s': an object needs a non-empty key", r->name);
    return 0;
}

static int meta_name_ok(const char *name)
{
    if (!*name || strlen(name) > 128)
        return 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *p))
            return 0;
    return 1;
}

static int text_ok(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return 0;
    return 1;
}

int cf_repo_check_opts(const cf_repo *r, const char *key, const cf_repo_put_opts *o, cf_err *err)
{
    if (!o)
        return 0;
    if (o->content_type && (!text_ok(o->content_type) || strlen(o->content_type) >= 128))
        return cf_err_set(err, CF_EINVAL,
                          "'%s%.200s': content type longer than 127 bytes or holding a control "
                          "character",
                          r->name, key);
    const char *std[] = {o->cache_control, o->content_disposition, o->content_encoding, o->content_language,
                         o->expires};
    const size_t std_cap[] = {256, 512, 128, 128, 64}; /* cf_repo_info's room for each */
    for (size_t i = 0; i < sizeof std / sizeof *std; i++)
        if (std[i] && (!text_ok(std[i]) || strlen(std[i]) >= std_cap[i]))
            return cf_err_set(err, CF_EINVAL,
                              "'%s%.200s': a standard header longer than %zu bytes or holding a control "
                              "character",
                              r->name, key, std_cap[i] - 1);
    if (o->if_match && (!text_ok(o->if_match) || strlen(o->if_match) >= 132))
        return cf_err_set(err, CF_EINVAL,
                          "'%s%.200s': an ETag to match longer than 131 bytes or holding a control character",
                          r->name, key);
    if (o->nmeta > CF_REPO_META_FIELDS || (o->nmeta && !o->meta))
        return cf_err_set(err, CF_EINVAL, "'%s%.200s': %zu metadata fields, at most %d", r->name, key,
                          o->nmeta, CF_REPO_META_FIELDS);
    size_t total = 0;
    for (size_t i = 0; i < o->nmeta; i++) {
        const cf_repo_meta *m = &o->meta[i];
        if (!m->name || !m->value || !meta_name_ok(m->name))
            return cf_err_set(err, CF_EINVAL,
                              "'%s%.200s': metadata name '%.64s' is not an HTTP token of 1 to 128 bytes",
                              r->name, key, m->name ? m->name : "(null)");
        if (!text_ok(m->value))
            return cf_err_set(err, CF_EINVAL, "'%s%.200s': metadata '%.64s' holds a control character",
                              r->name, key, m->name);
        for (size_t j = 0; j < i; j++)
            if (!strcasecmp(o->meta[j].name, m->name))
                return cf_err_set(err, CF_EINVAL, "'%s%.200s': metadata '%.64s' given twice", r->name, key,
                                  m->name);
        total += strlen(m->name) + strlen(m->value);
    }
    if (total > CF_REPO_META_MAX)
        return cf_err_set(err, CF_EINVAL, "'%s%.200s': %zu bytes of metadata, at most %d", r->name, key,
                          total, CF_REPO_META_MAX);
    return 0;
}

int cf_repo_info_add_meta(cf_repo_info *info, const char *name, size_t name_len, const char *value,
                          size_t value_len)
{
    size_t used = 0;
    if (info->nmeta) {
        const cf_repo_meta *last = &info->meta[info->nmeta - 1];
        used = (size_t)(last->value - info->buf) + strlen(last->value) + 1;
    }
    if (info->nmeta == CF_REPO_META_FIELDS || name_len + value_len + 2 > sizeof info->buf - used)
        return CF_ETOOBIG;
    char *dst = info->buf + used;
    for (size_t i = 0; i < name_len; i++)
        dst[i] = (char)tolower((unsigned char)name[i]);
    dst[name_len] = '\0';
    memcpy(dst + name_len + 1, value, value_len);
    dst[name_len + 1 + value_len] = '\0';
    info->meta[info->nmeta].name = dst;
    info->meta[info->nmeta].value = dst + name_len + 1;
    info->nmeta++;
    return 0;
}

cf_repo_put_opts cf_repo_opts_of_info(const cf_repo_info *info)
{
    return (cf_repo_put_opts){.content_type = info->content_type,
                              .meta = info->meta,
                              .nmeta = info->nmeta,
                              .cache_control = info->cache_control,
                              .content_disposition = info->content_disposition,
                              .content_encoding = info->content_encoding,
                              .content_language = info->content_language,
                              .expires = info->expires};
}

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
    return cf_repo_writer_begin_opts(r, key, size_hint, NULL, out, err);
}

int cf_repo_writer_begin_opts(cf_repo *r, const char *key, uint64_t size_hint, const cf_repo_put_opts *o,
                              cf_repo_writer **out, cf_err *err)
{
    int rc = key_given(r, key, err);
    if (!rc)
        rc = cf_repo_check_opts(r, key, o, err);
    return rc ? rc : r->ops->writer_begin(r, key, size_hint, o, out, err);
}

int cf_repo_writer_begin_resume(cf_repo *r, const char *key, uint64_t size_hint, cf_repo_resume *rs,
                                cf_repo_writer **out, cf_err *err)
{
    int rc = key_given(r, key, err);
    if (!rc && !r->ops->writer_resume)
        rc = cf_err_set(err, CF_ENOTSUP, "%s cannot continue an interrupted write", r->name);
    return rc ? rc : r->ops->writer_resume(r, key, size_hint, rs, out, err);
}

int cf_repo_upload_abort(cf_repo *r, const char *key, const char *upload_id, cf_err *err)
{
    int rc = key_given(r, key, err);
    return rc || !r->ops->upload_abort ? rc : r->ops->upload_abort(r, key, upload_id, err);
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
    int rc = key_given(r, key, err);
    return rc ? rc : r->ops->get(r, key, offset, len, fn, ctx, err);
}

int cf_repo_get_info(cf_repo *r, const char *key, uint64_t offset, uint64_t len, cf_repo_info *info,
                     cf_repo_data_fn fn, void *ctx, cf_err *err)
{
    memset(info, 0, sizeof *info);
    int rc = key_given(r, key, err);
    if (rc)
        return rc;
    if (r->ops->get_info)
        return r->ops->get_info(r, key, offset, len, info, fn, ctx, err);
    rc = r->ops->stat(r, key, info, err);
    /* As S3 answers a range that runs past the end: with the bytes there are. */
    uint64_t there = info->size > offset ? info->size - offset : 0;
    if (len > there)
        len = there;
    return rc || !len ? rc : r->ops->get(r, key, offset, len, fn, ctx, err);
}

int cf_repo_stream(cf_repo *r, const char *key, cf_repo_data_fn fn, void *ctx, cf_err *err)
{
    int rc = key_given(r, key, err);
    if (rc)
        return rc;
    if (r->ops->stream)
        return r->ops->stream(r, key, fn, ctx, err);
    return r->ops->get(r, key, 0, UINT64_MAX, fn, ctx, err);
}

int cf_repo_list(cf_repo *r, const char *prefix, cf_repo_list_fn fn, void *ctx, cf_err *err)
{
    return r->ops->list(r, prefix, 0, fn, ctx, err);
}

int cf_repo_list_flags(cf_repo *r, const char *prefix, int flags, cf_repo_list_fn fn, void *ctx, cf_err *err)
{
    return r->ops->list(r, prefix, flags, fn, ctx, err);
}

int cf_repo_read(cf_repo *r, const char *key, uint64_t size_hint, cf_repo_info_fn on_info, cf_repo_data_fn fn,
                 void *ctx, cf_err *err)
{
    int rc = key_given(r, key, err);
    if (rc)
        return rc;
    if (r->ops->read)
        return r->ops->read(r, key, size_hint, on_info, fn, ctx, err);
    cf_repo_info *info = malloc(sizeof *info);
    if (!info)
        return cf_err_set(err, CF_ENOMEM, "read of '%s%.200s': out of memory", r->name, key);
    rc = cf_repo_stat(r, key, info, err);
    if (!rc)
        rc = on_info(ctx, info, err);
    free(info);
    return rc ? rc : cf_repo_stream(r, key, fn, ctx, err);
}

/* The checks of a copy, within one repository or between two. */
static int copy_checked(cf_repo *dst, const char *dst_key, cf_repo *src, const char *src_key,
                        const cf_repo_put_opts *o, cf_err *err)
{
    int rc = key_given(src, src_key, err);
    if (!rc)
        rc = key_given(dst, dst_key, err);
    return rc ? rc : cf_repo_check_opts(dst, dst_key, o, err);
}

int cf_repo_copy_from(cf_repo *dst, const char *dst_key, cf_repo *src, const char *src_key,
                      const cf_repo_put_opts *o, cf_err *err)
{
    if (dst == src)
        return cf_repo_copy(dst, src_key, dst_key, o, err);
    int rc = copy_checked(dst, dst_key, src, src_key, o, err);
    if (rc)
        return rc;
    if (dst->ops != src->ops || !dst->ops->copy_from)
        return cf_err_set(err, CF_ENOTSUP, "'%s' cannot copy from '%s' by itself", dst->name, src->name);
    return dst->ops->copy_from(dst, dst_key, src, src_key, o, err);
}

int cf_repo_sync(cf_repo *r, cf_err *err)
{
    return r->ops->sync ? r->ops->sync(r, err) : 0;
}

int cf_repo_list_dir(cf_repo *r, const char *prefix, cf_repo_list_fn fn, void *ctx, cf_err *err)
{
    return r->ops->list_dir(r, prefix, fn, ctx, err);
}

int cf_repo_stat(cf_repo *r, const char *key, cf_repo_info *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = key_given(r, key, err);
    return rc ? rc : r->ops->stat(r, key, out, err);
}

int cf_repo_copy(cf_repo *r, const char *src, const char *dst, const cf_repo_put_opts *o, cf_err *err)
{
    int rc = copy_checked(r, dst, r, src, o, err);
    return rc ? rc : r->ops->copy(r, src, dst, o, err);
}

int cf_repo_delete(cf_repo *r, const char *key, cf_err *err)
{
    return cf_repo_delete_flags(r, key, 0, err);
}

int cf_repo_delete_flags(cf_repo *r, const char *key, int flags, cf_err *err)
{
    int rc = key_given(r, key, err);
    return rc ? rc : r->ops->del(r, key, flags, err);
}

int cf_repo_delete_many(cf_repo *r, const char *const *keys, size_t n, cf_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = key_given(r, keys[i], err);
        if (rc)
            return rc;
    }
    if (r->ops->del_many)
        return r->ops->del_many(r, keys, n, err);
    for (size_t i = 0; i < n; i++) {
        int rc = r->ops->del(r, keys[i], 0, err);
        if (rc)
            return rc;
    }
    return 0;
}

int cf_repo_sweep(cf_repo *r, const char *prefix, int64_t before, size_t *removed, cf_err *err)
{
    *removed = 0;
    return r->ops->sweep(r, prefix, before, removed, err);
}
