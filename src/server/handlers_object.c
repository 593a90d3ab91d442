/* handlers_object.c - PutObject, GetObject, HeadObject, DeleteObject. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/log.h"
#include "crypto/hash.h"
#include "server/request.h"

/* Headers S3 stores with an object and replays on GET and HEAD, besides x-amz-meta-*. */
static const char *const stored_headers[] = {
    "content-type", "content-encoding", "content-disposition", "content-language",
    "cache-control", "expires",
};

typedef struct header_list {
    cf_store_kv *kv;
    size_t n, cap;
    size_t meta_bytes;
    int failed;
} header_list;

static int header_add(header_list *h, const char *name, size_t nlen, const char *value)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        cf_store_kv *kv = realloc(h->kv, cap * sizeof *kv);
        if (!kv)
            return CF_ENOMEM;
        h->kv = kv;
        h->cap = cap;
    }
    char *n = strndup(name, nlen), *v = strdup(value ? value : "");
    if (!n || !v) {
        free(n);
        free(v);
        return CF_ENOMEM;
    }
    for (char *c = n; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    h->kv[h->n++] = (cf_store_kv){n, v};
    return 0;
}

static void header_list_cleanup(header_list *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->kv[i].name);
        free(h->kv[i].value);
    }
    free(h->kv);
}

static enum MHD_Result collect_meta(void *cls, enum MHD_ValueKind kind, const char *key, size_t klen,
                                    const char *value, size_t vlen)
{
    (void)kind;
    header_list *h = cls;
    if (klen > 11 && strncasecmp(key, "x-amz-meta-", 11) == 0) {
        h->meta_bytes += klen - 11 + vlen;
        if (header_add(h, key, klen, value))
            h->failed = 1;
    }
    return MHD_YES;
}

/* The headers to store with a new object, in a stable order. */
static int object_headers(cf_request *r, header_list *h)
{
    const char *type = cf_request_header(r, "Content-Type");
    if (header_add(h, "content-type", 12, type && *type ? type : "binary/octet-stream"))
        return CF_ENOMEM;
    for (size_t i = 1; i < sizeof stored_headers / sizeof *stored_headers; i++) {
        const char *v = cf_request_header(r, stored_headers[i]);
        if (v && header_add(h, stored_headers[i], strlen(stored_headers[i]), v))
            return CF_ENOMEM;
    }
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, collect_meta, h);
    return h->failed ? CF_ENOMEM : 0;
}

int cf_put_object_begin(cf_request *r, cf_s3_error *e, char *msg, size_t msglen)
{
    if (cf_s3_key_check(r->key, r->keylen) != 0) {
        *e = CF_S3_InvalidArgument;
        snprintf(msg, msglen, "object keys must be 1 to 1024 bytes of UTF-8");
        return -1;
    }
    if (cf_request_header(r, "x-amz-copy-source")) {
        *e = CF_S3_NotImplemented;
        snprintf(msg, msglen, "CopyObject is not implemented by this server yet");
        return -1;
    }
    const char *len = cf_request_header(r, "Content-Length");
    if (len) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(len, &end, 10);
        if (errno || *end || !*len) {
            *e = CF_S3_InvalidArgument;
            snprintf(msg, msglen, "Content-Length is not a number");
            return -1;
        }
        if (v > CF_MAX_PUT_SIZE) {
            *e = CF_S3_EntityTooLarge;
            return -1;
        }
        r->expected_len = v;
        r->has_length = 1;
    } else if (!cf_request_header(r, "Transfer-Encoding")) {
        *e = CF_S3_MissingContentLength;
        return -1;
    }
    const char *md5 = cf_request_header(r, "Content-MD5");
    if (md5) {
        unsigned char d[32];
        if (cf_base64_decode(md5, strlen(md5), d, sizeof d) != CF_MD5_LEN) {
            *e = CF_S3_InvalidDigest;
            return -1;
        }
    }
    cf_err err;
    if (cf_store_bucket_exists(r->srv->store, r->bucket, &err) != 0) {
        *e = err.code == CF_ENOTFOUND ? CF_S3_NoSuchBucket : CF_S3_InternalError;
        return -1;
    }
    if (cf_store_writer_begin(r->srv->store, &r->writer, &err) != 0) {
        cf_log(CF_LOG_ERROR, "cannot start a write", "id", r->request_id, "error", err.msg, NULL);
        *e = CF_S3_InternalError;
        return -1;
    }
    return 0;
}

int cf_put_object_end(cf_request *r)
{
    unsigned char md5[CF_MD5_LEN];
    uint64_t size;
    cf_err err;
    header_list h = {0};
    if (r->has_length && r->bytes_in != r->expected_len)
        return cf_respond_error(r, CF_S3_IncompleteBody, NULL);
    if (cf_store_writer_finish(r->writer, md5, &size, &err) != 0) {
        cf_log(CF_LOG_ERROR, "write failed", "id", r->request_id, "error", err.msg, NULL);
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    const char *want = cf_request_header(r, "Content-MD5");
    if (want) {
        unsigned char d[32];
        if (cf_base64_decode(want, strlen(want), d, sizeof d) != CF_MD5_LEN ||
            memcmp(d, md5, CF_MD5_LEN) != 0)
            return cf_respond_error(r, CF_S3_BadDigest, NULL);
    }
    if (object_headers(r, &h) != 0) {
        header_list_cleanup(&h);
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    if (h.meta_bytes > CF_MAX_USER_METADATA) {
        header_list_cleanup(&h);
        return cf_respond_error(r, CF_S3_MetadataTooLarge, NULL);
    }
    cf_object_info info = {0};
    cf_store_writer *w = r->writer;
    r->writer = NULL; /* commit frees it, success or not */
    int rc = cf_store_writer_commit(w, r->bucket, r->key, r->keylen, h.kv, h.n, &info, &err);
    header_list_cleanup(&h);
    if (rc == CF_ENOTFOUND)
        return cf_respond_error(r, CF_S3_NoSuchBucket, NULL);
    if (rc) {
        cf_log(CF_LOG_ERROR, "commit failed", "id", r->request_id, "error", err.msg, NULL);
        return cf_respond_error(r, rc == CF_ENOSPACE ? CF_S3_ServiceUnavailable : CF_S3_InternalError, NULL);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (resp) {
        char etag[80];
        snprintf(etag, sizeof etag, "\"%s\"", info.etag);
        MHD_add_response_header(resp, "ETag", etag);
    }
    cf_object_info_cleanup(&info);
    return cf_respond(r, 200, resp);
}

static void add_object_headers(struct MHD_Response *resp, const cf_object_info *info,
                               cf_request *r)
{
    char etag[80], date[30];
    snprintf(etag, sizeof etag, "\"%s\"", info->etag);
    cf_s3_http_date((time_t)(info->mtime_ns / 1000000000), date);
    MHD_add_response_header(resp, "ETag", etag);
    MHD_add_response_header(resp, "Last-Modified", date);
    MHD_add_response_header(resp, "Accept-Ranges", "bytes");
    for (size_t i = 0; i < info->nheaders; i++) {
        const char *name = info->headers[i].name;
        const char *value = info->headers[i].value;
        /* response-content-type and friends override the stored value (S3 semantics). */
        char param[64];
        if (strncmp(name, "x-amz-meta-", 11) != 0) {
            snprintf(param, sizeof param, "response-%s", name);
            const char *o = cf_request_param(r, param);
            if (o)
                continue;
        }
        MHD_add_response_header(resp, name, value);
    }
    static const char *const overrides[] = {"content-type", "content-language", "expires",
                                            "cache-control", "content-disposition", "content-encoding"};
    for (size_t i = 0; i < sizeof overrides / sizeof *overrides; i++) {
        char param[64];
        snprintf(param, sizeof param, "response-%s", overrides[i]);
        const char *o = cf_request_param(r, param);
        if (o)
            MHD_add_response_header(resp, overrides[i], o);
    }
}

int cf_handle_get_object(cf_request *r, int head)
{
    cf_object_info info;
    cf_err err;
    int fd = -1, missing_bucket = 0;
    int rc = cf_store_object_get(r->srv->store, r->bucket, r->key, r->keylen, &info, &fd,
                                 &missing_bucket, &err);
    if (rc == CF_ENOTFOUND)
        return cf_respond_error(r, missing_bucket ? CF_S3_NoSuchBucket : CF_S3_NoSuchKey, NULL);
    if (rc) {
        cf_log(CF_LOG_ERROR, "read failed", "id", r->request_id, "error", err.msg, NULL);
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    uint64_t start = 0, len = info.size;
    int status = 200;
    const char *range = cf_request_header(r, "Range");
    if (range) {
        int prc = cf_s3_range_parse(range, info.size, &start, &len);
        if (prc == CF_ERANGE) {
            if (fd >= 0)
                close(fd);
            cf_object_info_cleanup(&info);
            return cf_respond_error(r, CF_S3_InvalidRange, NULL);
        }
        if (prc == 0)
            status = 206;
        else
            start = 0, len = info.size; /* malformed ranges are ignored, as S3 does */
    }
    struct MHD_Response *resp;
    if (len == 0 || fd < 0) {
        if (fd >= 0)
            close(fd);
        resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    } else {
        /* MHD owns fd from here and sends it with sendfile(). */
        resp = MHD_create_response_from_fd_at_offset64(len, fd, start);
        if (!resp)
            close(fd);
    }
    if (!resp) {
        cf_object_info_cleanup(&info);
        return 0;
    }
    add_object_headers(resp, &info, r);
    if (status == 206) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)start,
                 (unsigned long long)(start + len - 1), (unsigned long long)info.size);
        MHD_add_response_header(resp, "Content-Range", cr);
    }
    r->bytes_out = head ? 0 : len;
    cf_object_info_cleanup(&info);
    return cf_respond(r, status, resp);
}

int cf_handle_delete_object(cf_request *r)
{
    cf_err err;
    int rc = cf_store_object_delete(r->srv->store, r->bucket, r->key, r->keylen, &err);
    if (rc == CF_ENOTFOUND)
        return cf_respond_error(r, CF_S3_NoSuchBucket, NULL);
    if (rc) {
        cf_log(CF_LOG_ERROR, "delete failed", "id", r->request_id, "error", err.msg, NULL);
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    return cf_respond_empty(r, 204);
}
