/*
 * parallel.c - many requests of one operation in flight on the client's multi handle: the
 * multipart uploader and the ranged downloader. Both hold at most K buffers, so peak memory is
 * K times the part or range size whatever the object's size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3client/internal.h"

#define MAX_IN_FLIGHT 64
#define MAX_PARTS 10000

typedef struct slot {
    cf_s3c_xfer x;
    char *buf;
    size_t len, cap;
    int busy;       /* a request is (or was) under way and not yet consumed */
    uint64_t index; /* part number, or range index */
    char num[16];
} slot;

static void slots_free(slot *s, int n)
{
    for (int i = 0; s && i < n; i++) {
        if (s[i].busy)
            cf_s3c_xfer_cleanup(&s[i].x);
        free(s[i].buf);
    }
    free(s);
}

/* ---- uploader ---- */

struct cf_s3c_uploader {
    cf_s3c *c;
    char *bucket, *key;
    char upload_id[CF_S3C_UPLOAD_ID_MAX];
    size_t part_max;
    int k;
    slot *slots;
    cf_s3c_part *parts;
    int nparts; /* parts submitted */
    int rc;
    cf_err err;
};

int cf_s3c_uploader_begin(cf_s3c *c, const char *bucket, const char *key, const char *content_type,
                          size_t part_max, int max_in_flight, cf_s3c_uploader **out, cf_err *err)
{
    cf_s3c_put_opts o = {.content_type = content_type};
    return cf_s3c_uploader_begin_opts(c, bucket, key, &o, part_max, max_in_flight, out, err);
}

int cf_s3c_uploader_begin_opts(cf_s3c *c, const char *bucket, const char *key, const cf_s3c_put_opts *o,
                               size_t part_max, int max_in_flight, cf_s3c_uploader **out, cf_err *err)
{
    *out = NULL;
    if (max_in_flight < 1 || max_in_flight > MAX_IN_FLIGHT || part_max == 0)
        return cf_err_set(err, CF_EINVAL, "s3 upload '%s/%s': want 1..%d parts in flight and a part size",
                          bucket, key, MAX_IN_FLIGHT);
    char id[CF_S3C_UPLOAD_ID_MAX];
    int rc = cf_s3c_mpu_create_opts(c, bucket, key, o, id, err);
    if (!rc && (rc = cf_s3c_uploader_resume(c, bucket, key, id, part_max, max_in_flight, out, err)))
        cf_s3c_mpu_abort(c, bucket, key, id, NULL);
    return rc;
}

int cf_s3c_uploader_resume(cf_s3c *c, const char *bucket, const char *key, const char *upload_id,
                           size_t part_max, int max_in_flight, cf_s3c_uploader **out, cf_err *err)
{
    *out = NULL;
    if (max_in_flight < 1 || max_in_flight > MAX_IN_FLIGHT || part_max == 0 ||
        strlen(upload_id) >= CF_S3C_UPLOAD_ID_MAX)
        return cf_err_set(err, CF_EINVAL,
                          "s3 upload '%s/%s': want 1..%d parts in flight, a part size and an id", bucket, key,
                          MAX_IN_FLIGHT);
    cf_s3c_uploader *u = calloc(1, sizeof *u);
    if (!u)
        return cf_err_set(err, CF_ENOMEM, "s3 upload '%s/%s': out of memory", bucket, key);
    u->c = c;
    u->part_max = part_max;
    u->k = max_in_flight;
    u->bucket = strdup(bucket);
    u->key = strdup(key);
    u->slots = calloc((size_t)max_in_flight, sizeof *u->slots);
    u->parts = calloc(MAX_PARTS, sizeof *u->parts);
    if (!u->bucket || !u->key || !u->slots || !u->parts) {
        cf_s3c_uploader_release(u);
        return cf_err_set(err, CF_ENOMEM, "s3 upload '%s/%s': out of memory", bucket, key);
    }
    snprintf(u->upload_id, sizeof u->upload_id, "%s", upload_id);
    *out = u;
    return 0;
}

/* Collects finished parts; remembers the first failure. */
static void reap_parts(cf_s3c_uploader *u)
{
    for (int i = 0; i < u->k; i++) {
        slot *s = &u->slots[i];
        if (!s->busy || s->x.state != XF_DONE)
            continue;
        if (s->x.rc && !u->rc) {
            u->rc = s->x.rc;
            u->err = s->x.err;
        } else if (!s->x.rc) {
            cf_s3c_part *p = &u->parts[s->index - 1];
            p->number = (int)s->index;
            snprintf(p->etag, sizeof p->etag, "%s", s->x.info.etag);
        }
        cf_s3c_xfer_cleanup(&s->x);
        s->busy = 0;
    }
}

static int busy_count(const slot *s, int k)
{
    int n = 0;
    for (int i = 0; i < k; i++)
        n += s[i].busy;
    return n;
}

/* Waits for a slot that is not busy, after checking the part's size and number. */
static int free_slot(cf_s3c_uploader *u, size_t len, slot **out, cf_err *err)
{
    if (len == 0 || len > u->part_max)
        return cf_err_set(err, CF_EINVAL, "s3 upload '%s/%s': part of %zu bytes (want 1..%zu)", u->bucket,
                          u->key, len, u->part_max);
    if (u->nparts == MAX_PARTS)
        return cf_err_set(err, CF_ETOOBIG,
                          "s3 upload '%s/%s': more than %d parts of %zu MiB; give the expected size "
                          "(coffer snapshot create --expected-size) so that parts are planned larger",
                          u->bucket, u->key, MAX_PARTS, u->part_max >> 20);
    slot *s = NULL;
    *out = NULL;
    for (;;) {
        reap_parts(u);
        if (u->rc)
            break;
        for (int i = 0; !s && i < u->k; i++)
            if (!u->slots[i].busy)
                s = &u->slots[i];
        if (s)
            break;
        int rc = cf_s3c_pump(u->c, err);
        if (rc)
            return rc;
    }
    if (u->rc) {
        if (err)
            *err = u->err;
        return u->rc;
    }
    *out = s;
    return 0;
}

/* Sends slot s, whose buffer holds the part's len bytes. */
static int send_part(cf_s3c_uploader *u, slot *s, size_t len, const uint32_t *crc32c, cf_err *err)
{
    s->len = len;
    s->index = (uint64_t)++u->nparts;
    snprintf(s->num, sizeof s->num, "%d", u->nparts);
    cf_s3c_xfer_init(&s->x, u->c, "PUT", u->bucket, u->key);
    cf_s3c_xfer_param(&s->x, "partNumber", s->num);
    cf_s3c_xfer_param(&s->x, "uploadId", u->upload_id);
    /* Parts are bulk: a SHA-256 of each costs both ends more CPU than anything else but the
     * compression, and a snapshot's bytes are checked end to end by its manifest anyway. */
    if (crc32c)
        cf_s3c_xfer_body_crc32c_known(&s->x, s->buf, len, *crc32c);
    else
        cf_s3c_xfer_body_crc32c(&s->x, s->buf, len);
    s->busy = 1;
    int rc = cf_s3c_xfer_start(&s->x, err);
    if (rc) {
        cf_s3c_xfer_cleanup(&s->x);
        s->busy = 0;
        u->rc = rc;
        if (err)
            u->err = *err;
    }
    return rc;
}

int cf_s3c_uploader_submit(cf_s3c_uploader *u, const void *data, size_t len, cf_err *err)
{
    slot *s;
    int rc = free_slot(u, len, &s, err);
    if (rc)
        return rc;
    if (!s->buf && !(s->buf = malloc(u->part_max)))
        return cf_err_set(err, CF_ENOMEM, "s3 upload '%s/%s': out of memory for a part", u->bucket, u->key);
    memcpy(s->buf, data, len);
    return send_part(u, s, len, NULL, err);
}

int cf_s3c_uploader_submit_buffer(cf_s3c_uploader *u, unsigned char **buf, size_t len, const uint32_t *crc32c,
                                  cf_err *err)
{
    slot *s;
    int rc = free_slot(u, len, &s, err);
    if (rc)
        return rc;
    unsigned char *spare = (unsigned char *)s->buf;
    s->buf = (char *)*buf;
    *buf = spare;
    return send_part(u, s, len, crc32c, err);
}

int cf_s3c_uploader_keep(cf_s3c_uploader *u, size_t len, const char *etag, cf_err *err)
{
    if (u->rc) {
        if (err)
            *err = u->err;
        return u->rc;
    }
    if (len == 0 || len > u->part_max || u->nparts == MAX_PARTS)
        return cf_err_set(err, CF_EINVAL, "s3 upload '%s/%s': cannot keep part %d of %zu bytes", u->bucket,
                          u->key, u->nparts + 1, len);
    cf_s3c_part *p = &u->parts[u->nparts];
    p->number = ++u->nparts;
    snprintf(p->etag, sizeof p->etag, "%s", etag);
    return 0;
}

int cf_s3c_uploader_poll(cf_s3c_uploader *u, int wait, cf_err *err)
{
    reap_parts(u);
    if (wait && !u->rc && busy_count(u->slots, u->k)) {
        int rc = cf_s3c_pump(u->c, err);
        if (rc)
            return rc;
        reap_parts(u);
    }
    if (u->rc) {
        if (err)
            *err = u->err;
        return u->rc;
    }
    return busy_count(u->slots, u->k);
}

void cf_s3c_wake(cf_s3c *c)
{
    /* curl_multi_wakeup is the one multi call libcurl allows from any thread. */
    curl_multi_wakeup(c->multi);
}

static void uploader_free(cf_s3c_uploader *u)
{
    slots_free(u->slots, u->k);
    free(u->parts);
    free(u->bucket);
    free(u->key);
    free(u);
}

int cf_s3c_uploader_commit(cf_s3c_uploader *u, cf_s3c_object_info *info, cf_err *err)
{
    int rc = 0;
    while (!rc && !u->rc && busy_count(u->slots, u->k)) {
        reap_parts(u);
        if (!u->rc && busy_count(u->slots, u->k))
            rc = cf_s3c_pump(u->c, err);
    }
    if (!rc && u->rc) {
        rc = u->rc;
        if (err)
            *err = u->err;
    }
    if (!rc && u->nparts == 0)
        rc = cf_err_set(err, CF_EINVAL, "s3 upload '%s/%s': no parts", u->bucket, u->key);
    if (!rc)
        rc = cf_s3c_mpu_complete(u->c, u->bucket, u->key, u->upload_id, u->parts, (size_t)u->nparts, info,
                                 err);
    if (rc) {
        cf_s3c_uploader_abort(u);
        return rc;
    }
    uploader_free(u);
    return 0;
}

static void uploader_stop(cf_s3c_uploader *u, int abort_upload)
{
    if (!u)
        return;
    for (int i = 0; u->slots && i < u->k; i++)
        if (u->slots[i].busy)
            cf_s3c_xfer_cancel(&u->slots[i].x);
    if (abort_upload && u->upload_id[0])
        cf_s3c_mpu_abort(u->c, u->bucket, u->key, u->upload_id, NULL);
    uploader_free(u);
}

void cf_s3c_uploader_abort(cf_s3c_uploader *u)
{
    uploader_stop(u, 1);
}

void cf_s3c_uploader_release(cf_s3c_uploader *u)
{
    uploader_stop(u, 0);
}

/* ---- downloader ---- */

static int to_slot(void *ctx, const char *data, size_t n)
{
    slot *s = ctx;
    if (n > s->cap - s->len)
        return 1; /* the server sent more than the range asked for */
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    return 0;
}

int cf_s3c_download(cf_s3c *c, const char *bucket, const char *key, size_t range_size, int max_in_flight,
                    cf_s3c_write_fn write, void *ctx, cf_s3c_object_info *info, cf_err *err)
{
    if (max_in_flight < 1 || max_in_flight > MAX_IN_FLIGHT || range_size == 0)
        return cf_err_set(err, CF_EINVAL, "s3 download '%s/%s': want 1..%d ranges in flight and a range size",
                          bucket, key, MAX_IN_FLIGHT);
    cf_s3c_object_info head;
    int rc = cf_s3c_head_object(c, bucket, key, &head, err);
    if (rc)
        return rc;
    if (info)
        *info = head;
    uint64_t size = head.size;
    uint64_t n = (size + range_size - 1) / range_size;
    int k = n < (uint64_t)max_in_flight ? (int)n : max_in_flight;
    slot *slots = k ? calloc((size_t)k, sizeof *slots) : NULL;
    if (k && !slots)
        return cf_err_set(err, CF_ENOMEM, "s3 download '%s/%s': out of memory", bucket, key);
    uint64_t next_start = 0, next_deliver = 0;
    while (!rc && next_deliver < n) {
        for (int i = 0; !rc && i < k && next_start < n; i++) {
            slot *s = &slots[i];
            if (s->busy)
                continue;
            if (!s->buf && !(s->buf = malloc(range_size))) {
                rc = cf_err_set(err, CF_ENOMEM, "s3 download '%s/%s': out of memory", bucket, key);
                break;
            }
            s->cap = range_size;
            s->len = 0;
            s->index = next_start++;
            cf_s3c_xfer_init(&s->x, c, "GET", bucket, key);
            s->x.has_range = 1;
            s->x.range_off = s->index * range_size;
            s->x.range_len = size - s->x.range_off < range_size ? size - s->x.range_off : range_size;
            /* Every range from the same version, or a clean failure. */
            snprintf(s->x.if_match, sizeof s->x.if_match, "%s", head.etag);
            s->x.write = to_slot;
            s->x.wctx = s;
            s->busy = 1;
            if ((rc = cf_s3c_xfer_start(&s->x, err))) {
                cf_s3c_xfer_cleanup(&s->x);
                s->busy = 0;
            }
        }
        if (rc)
            break;
        /* Deliver what is ready, in order; a finished range waits in its slot until its turn. */
        int progress = 1, delivered = 0;
        while (!rc && progress) {
            progress = 0;
            for (int i = 0; i < k; i++) {
                slot *s = &slots[i];
                if (!s->busy || s->x.state != XF_DONE)
                    continue;
                if (s->x.rc) {
                    rc = s->x.rc;
                    if (err)
                        *err = s->x.err;
                    break;
                }
                if (s->index != next_deliver)
                    continue;
                if (s->len != s->x.range_len)
                    rc = cf_err_set(
                        err, CF_EIO, "s3 download '%s/%s': range %llu brought %zu bytes, want %llu", bucket,
                        key, (unsigned long long)s->index, s->len, (unsigned long long)s->x.range_len);
                else if (write(ctx, s->buf, s->len) != 0)
                    rc = cf_err_set(err, CF_EIO, "s3 download '%s/%s': stopped by the caller", bucket, key);
                cf_s3c_xfer_cleanup(&s->x);
                s->busy = 0;
                next_deliver++;
                progress = delivered = 1;
                break;
            }
        }
        /* Freed slots start their next range first: when a slow consumer let every range in
         * flight finish, pumping now would wait out the poll timeout with nothing to wait for. */
        if (!rc && next_deliver < n && !delivered)
            rc = cf_s3c_pump(c, err);
    }
    for (int i = 0; i < k; i++)
        if (slots[i].busy)
            cf_s3c_xfer_cancel(&slots[i].x);
    slots_free(slots, k);
    return rc;
}
