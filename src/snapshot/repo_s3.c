/*
 * repo_s3.c - a repository under a prefix of a bucket, on any S3 endpoint.
 *
 * Writes buffer one part (16 MiB); an object that fits is one PUT, a larger one becomes a
 * multipart upload with 4 parts in flight, completed only at commit: until then nothing is
 * visible, and an abort (or a crash: the server expires the upload) leaves nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3client/s3client.h"
#include "snapshot/repo_int.h"

#define PART_SIZE ((size_t)16 << 20)
#define PARTS_IN_FLIGHT 4

typedef struct s3_repo {
    cf_repo base;
    cf_s3c *client;
    char bucket[64];
    char root[1024];             /* "" or "a/b/" (with the slash) */
    char name[1200];
} s3_repo;

typedef struct s3_writer {
    cf_repo_writer base;
    char key[2048];
    unsigned char *buf;
    size_t len;
    cf_s3c_uploader *up;
} s3_writer;

#define S3_OF(r) ((s3_repo *)(r))

static const cf_repo_ops s3_ops;

int cf_repo_open_s3(cf_s3c *client, const char *bucket, const char *root, cf_repo **out, cf_err *err)
{
    s3_repo *r = calloc(1, sizeof *r);
    if (!r)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    r->client = client;
    snprintf(r->bucket, sizeof r->bucket, "%s", bucket);
    snprintf(r->root, sizeof r->root, "%s%s", root, *root ? "/" : "");
    snprintf(r->name, sizeof r->name, "s3://%s/%s", bucket, r->root);
    r->base.ops = &s3_ops;
    r->base.name = r->name;
    *out = &r->base;
    return 0;
}

static int full_key(const s3_repo *r, const char *key, char *out, size_t n, cf_err *err)
{
    if ((size_t)snprintf(out, n, "%s%s", r->root, key) >= n)
        return cf_err_set(err, CF_ETOOBIG, "key '%.100s' is too long", key);
    return 0;
}

static void s3_close(cf_repo *base)
{
    free(S3_OF(base));
}

static int s3_writer_begin(cf_repo *base, const char *key, cf_repo_writer **out, cf_err *err)
{
    s3_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->buf = malloc(PART_SIZE))) {
        free(w);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    w->base.repo = base;
    int rc = full_key(S3_OF(base), key, w->key, sizeof w->key, err);
    if (rc) {
        free(w->buf);
        free(w);
        return rc;
    }
    *out = &w->base;
    return 0;
}

static int flush_part(s3_writer *w, cf_err *err)
{
    s3_repo *r = S3_OF(w->base.repo);
    int rc = 0;
    if (!w->up)
        rc = cf_s3c_uploader_begin(r->client, r->bucket, w->key, "application/octet-stream", PART_SIZE,
                                   PARTS_IN_FLIGHT, &w->up, err);
    if (!rc)
        rc = cf_s3c_uploader_submit(w->up, w->buf, w->len, err);
    w->len = 0;
    return rc;
}

static int s3_writer_write(cf_repo_writer *base, const void *p, size_t n, cf_err *err)
{
    s3_writer *w = (s3_writer *)base;
    const unsigned char *in = p;
    while (n) {
        /* A part is sent only once more bytes follow it, so the last part is never empty. */
        if (w->len == PART_SIZE) {
            int rc = flush_part(w, err);
            if (rc)
                return rc;
        }
        size_t take = PART_SIZE - w->len < n ? PART_SIZE - w->len : n;
        memcpy(w->buf + w->len, in, take);
        w->len += take;
        in += take;
        n -= take;
    }
    return 0;
}

static void s3_writer_free(s3_writer *w)
{
    free(w->buf);
    free(w);
}

static int s3_writer_commit(cf_repo_writer *base, cf_err *err)
{
    s3_writer *w = (s3_writer *)base;
    s3_repo *r = S3_OF(base->repo);
    int rc;
    if (!w->up) {
        rc = cf_s3c_put_object(r->client, r->bucket, w->key, w->buf, w->len, "application/octet-stream", NULL, err);
    } else {
        rc = w->len ? flush_part(w, err) : 0;
        if (rc) {
            cf_s3c_uploader_abort(w->up);
        } else {
            rc = cf_s3c_uploader_commit(w->up, NULL, err);
        }
    }
    s3_writer_free(w);
    return rc;
}

static void s3_writer_abort(cf_repo_writer *base)
{
    s3_writer *w = (s3_writer *)base;
    cf_s3c_uploader_abort(w->up);
    s3_writer_free(w);
}

typedef struct get_ctx {
    cf_repo_data_fn fn;
    void *ctx;
    cf_err *err;
    int rc;
} get_ctx;

static int deliver(void *p, const char *data, size_t n)
{
    get_ctx *g = p;
    g->rc = g->fn(g->ctx, data, n, g->err);
    return g->rc;
}

static int s3_get(cf_repo *base, const char *key, uint64_t offset, uint64_t len, cf_repo_data_fn fn, void *ctx,
                  cf_err *err)
{
    s3_repo *r = S3_OF(base);
    char k[2048];
    int rc = full_key(r, key, k, sizeof k, err);
    if (rc)
        return rc;
    if (len == 0)
        return 0;
    cf_s3c_range range = {offset, len == UINT64_MAX ? 0 : len};
    get_ctx g = {fn, ctx, err, 0};
    rc = cf_s3c_get_object(r->client, r->bucket, k, (offset || len != UINT64_MAX) ? &range : NULL, deliver, &g,
                           NULL, err);
    return g.rc ? g.rc : rc;
}

static int s3_list(cf_repo *base, const char *prefix, cf_repo_list_fn fn, void *ctx, cf_err *err)
{
    s3_repo *r = S3_OF(base);
    char p[2048];
    int rc = full_key(r, prefix, p, sizeof p, err);
    if (rc)
        return rc;
    cf_s3c_list_opts o = {.prefix = p};
    cf_s3c_list *it;
    if ((rc = cf_s3c_list_open(r->client, r->bucket, &o, &it, err)))
        return rc;
    cf_s3c_list_entry e;
    size_t rl = strlen(r->root);
    while ((rc = cf_s3c_list_next(it, &e, err)) == 1) {
        if (e.is_prefix || strncmp(e.key, r->root, rl) != 0)
            continue;
        cf_repo_entry re = {e.key + rl, e.size, e.last_modified};
        if ((rc = fn(ctx, &re))) {
            cf_err_set(err, rc, "listing of '%s' stopped by its consumer", r->name);
            break;
        }
    }
    cf_s3c_list_close(it);
    return rc < 0 ? rc : 0;
}

static int s3_delete(cf_repo *base, const char *key, cf_err *err)
{
    s3_repo *r = S3_OF(base);
    char k[2048];
    int rc = full_key(r, key, k, sizeof k, err);
    return rc ? rc : cf_s3c_delete_object(r->client, r->bucket, k, err);
}

typedef struct abort_ctx {
    s3_repo *r;
    int64_t before;
    size_t *removed;
    cf_err *err;
} abort_ctx;

static int abort_stale(void *ctx, const cf_s3c_upload_entry *u)
{
    abort_ctx *a = ctx;
    if (u->initiated >= a->before)
        return 0;
    cf_err ignore;
    /* One that cannot be aborted now stays for the next prune. */
    if (cf_s3c_mpu_abort(a->r->client, a->r->bucket, u->key, u->upload_id, &ignore) == 0)
        (*a->removed)++;
    return 0;
}

static int s3_sweep(cf_repo *base, const char *prefix, int64_t before, size_t *removed, cf_err *err)
{
    s3_repo *r = S3_OF(base);
    char p[2048];
    int rc = full_key(r, prefix, p, sizeof p, err);
    if (rc)
        return rc;
    abort_ctx a = {r, before, removed, err};
    return cf_s3c_list_uploads(r->client, r->bucket, p, abort_stale, &a, err);
}

static const cf_repo_ops s3_ops = {
    .close = s3_close,
    .writer_begin = s3_writer_begin,
    .writer_write = s3_writer_write,
    .writer_commit = s3_writer_commit,
    .writer_abort = s3_writer_abort,
    .get = s3_get,
    .list = s3_list,
    .del = s3_delete,
    .sweep = s3_sweep,
};
