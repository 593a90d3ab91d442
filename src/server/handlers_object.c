/* handlers_object.c - PutObject, GetObject, HeadObject, DeleteObject. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/log.h"
#include "crypto/hash.h"
#include "s3/xml.h"
#include "server/request.h"
#include "server/access.h"
#include "server/body.h"
#include "server/handlers_object.h"
#include "server/handlers_tagging.h"
#include "server/header_list.h"
#include "server/metrics.h"
#include "server/object_version.h"
#include "server/rate_groups.h"
#include "server/response.h"

#define SMALL_RESPONSE (64 << 10)

/* Headers S3 stores with an object and replays on GET and HEAD, besides x-amz-meta-*. */
static const char *const stored_headers[] = {
    "content-type", "content-encoding", "content-disposition", "content-language", "cache-control", "expires",
};

static int collect_meta(void *cls, const char *key, size_t klen, const char *value, size_t vlen)
{
    cf_header_list *h = cls;
    if (klen <= 11 || strncasecmp(key, "x-amz-meta-", 11) != 0)
        return 1;
    /* A field sent twice is one field whose values are joined by commas (RFC 9110 §5.3), which
     * is also how SigV4 signs it and how S3 stores it. */
    for (size_t i = 0; i < h->n; i++) {
        if (strlen(h->kv[i].name) != klen || strncasecmp(h->kv[i].name, key, klen) != 0)
            continue;
        size_t have = strlen(h->kv[i].value);
        char *joined = realloc(h->kv[i].value, have + 1 + vlen + 1);
        if (!joined) {
            h->failed = 1;
            return 1;
        }
        joined[have] = ',';
        memcpy(joined + have + 1, value ? value : "", vlen);
        joined[have + 1 + vlen] = '\0';
        h->kv[i].value = joined;
        h->meta_bytes += 1 + vlen;
        return 1;
    }
    h->meta_bytes += klen - 11 + vlen;
    if (cf_header_add(h, key, klen, value))
        h->failed = 1;
    return 1;
}

int cf_object_headers(cf_request *r, cf_header_list *h)
{
    const char *type = cf_request_header(r, "Content-Type");
    if (cf_header_add(h, "content-type", 12, type && *type ? type : "binary/octet-stream"))
        return CF_ENOMEM;
    for (size_t i = 1; i < sizeof stored_headers / sizeof *stored_headers; i++) {
        const char *v = cf_request_header(r, stored_headers[i]);
        char coding[256];
        if (v && strcmp(stored_headers[i], "content-encoding") == 0) {
            /* aws-chunked describes the upload, not the object: S3 drops it. */
            coding[0] = '\0';
            char copy[256];
            snprintf(copy, sizeof copy, "%s", v);
            for (char *save, *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
                if (strcasecmp(tok, "aws-chunked") != 0)
                    snprintf(coding + strlen(coding), sizeof coding - strlen(coding), "%s%s",
                             coding[0] ? "," : "", tok);
            v = coding[0] ? coding : NULL;
        }
        if (v && cf_header_add(h, stored_headers[i], strlen(stored_headers[i]), v))
            return CF_ENOMEM;
    }
    cf_http_each_header(r->http, collect_meta, h);
    return h->failed ? CF_ENOMEM : 0;
}

int cf_write_protection_refused(const cf_request *r, cf_err *refusal)
{
    /* Objects are stored as sent. SSE-S3 (AES256) is encryption at rest that the client never
     * sees, and is left to the disk; but a client that sends its own key (SSE-C) or names a KMS
     * key expects the object to be unreadable without it, and one that sets a retention or a
     * legal hold expects it to be undeletable: accepting either would betray that. */
    const char *sse = cf_request_header(r, "x-amz-server-side-encryption");
    static const char *const encryption[] = {"x-amz-server-side-encryption-customer-algorithm",
                                             "x-amz-server-side-encryption-customer-key",
                                             "x-amz-server-side-encryption-aws-kms-key-id",
                                             "x-amz-copy-source-server-side-encryption-customer-algorithm"};
    static const char *const object_lock[] = {"x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date",
                                              "x-amz-object-lock-legal-hold"};
    const char *named = sse && strcmp(sse, "AES256") != 0 ? "x-amz-server-side-encryption" : NULL;
    for (size_t i = 0; !named && i < sizeof encryption / sizeof *encryption; i++)
        if (cf_request_header(r, encryption[i]))
            named = encryption[i];
    if (named)
        return cf_s3_err_set(
            refusal, CF_ENOTSUP, CF_S3_NotImplemented,
            "%s: only server-side encryption AES256 is accepted; SSE-C and SSE-KMS are not implemented",
            named);
    for (size_t i = 0; i < sizeof object_lock / sizeof *object_lock; i++)
        if (cf_request_header(r, object_lock[i]))
            /* AWS's answer for a bucket without Object Lock, which every bucket here is. */
            return cf_s3_refuse(refusal, CF_S3_InvalidRequest, "Bucket is missing Object Lock Configuration");
    return 0;
}

int cf_put_object_begin(cf_request *r, cf_err *refusal)
{
    if (cf_s3_key_check(r->key, r->keylen) != 0)
        return cf_s3_refuse(refusal, CF_S3_InvalidArgument, "object keys must be 1 to 1024 bytes of UTF-8");
    int rc = cf_write_protection_refused(r, refusal);
    if (rc)
        return rc;
    if (cf_request_header(r, "x-amz-copy-source")) {
        r->op = CF_S3_OP_COPY_OBJECT;
        r->body = BODY_NONE;
        return 0;
    }
    rc = cf_body_begin(r, refusal);
    if (rc)
        return rc;
    cf_err err;
    if (cf_store_bucket_exists(r->srv->store, r->bucket, &err) != 0)
        return cf_s3_refuse(refusal, cf_s3_error_of(&err, CF_S3_ON_BUCKET), NULL);
    return cf_body_open_writer(r, refusal);
}

int cf_write_condition(cf_request *r, cf_store_condition *c, char *etag, size_t etaglen, cf_err *refusal)
{
    memset(c, 0, sizeof *c);
    const char *none = cf_request_header(r, "If-None-Match");
    const char *match = cf_request_header(r, "If-Match");
    if (none) {
        if (strcmp(none, "*") != 0) /* as S3 */
            return cf_s3_refuse(refusal, CF_S3_NotImplemented,
                                "only If-None-Match: * is supported on writes");
        c->must_not_exist = 1;
    }
    if (match) {
        size_t n = strlen(match);
        if (n >= 2 && match[0] == '"' && match[n - 1] == '"')
            match++, n -= 2;
        snprintf(etag, etaglen, "%.*s", (int)n, match);
        c->etag_match = etag;
    }
    /* Checked by the commit, not here: a HEAD first would let a racing writer slip in. */
    if (cf_access_create_only(r))
        c->must_not_exist = 1;
    return 0;
}

int cf_write_condition_error(cf_request *r, const cf_store_condition *c, cf_err *refusal)
{
    if (c->failed == CF_STORE_COND_EXISTS && cf_access_create_only(r) &&
        !cf_request_header(r, "If-None-Match"))
        return cf_s3_refuse(refusal, CF_S3_AccessDenied,
                            "this access key may only create objects, and the key already exists");
    return cf_s3_refuse(
        refusal, c->failed == CF_STORE_COND_MISSING ? CF_S3_NoSuchKey : CF_S3_PreconditionFailed, NULL);
}

int cf_put_object_end(cf_request *r)
{
    cf_err err;
    cf_header_list h = {0};
    cf_err refusal;
    if (cf_body_finish(r, &refusal) != 0)
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
    if (cf_object_headers(r, &h) != 0) {
        cf_header_list_cleanup(&h);
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    if (h.meta_bytes > CF_MAX_USER_METADATA) {
        cf_header_list_cleanup(&h);
        return cf_respond_metadata_too_large(r, h.meta_bytes);
    }
    if (cf_tagging_from_request(r, &h, &refusal) != 0) {
        cf_header_list_cleanup(&h);
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
    }
    if (cf_body_checksum_header(r, &h) != 0) {
        cf_header_list_cleanup(&h);
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    cf_store_condition cond;
    char cond_etag[80];
    if (cf_write_condition(r, &cond, cond_etag, sizeof cond_etag, &refusal) != 0) {
        cf_header_list_cleanup(&h);
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
    }
    cf_object_info info = {0};
    cf_store_writer *w = r->writer;
    r->writer = NULL; /* commit frees it, success or not */
    cf_store_writer_set_condition(w, &cond);
    int rc = cf_store_writer_commit(w, r->bucket, r->key, r->keylen, h.kv, h.n, &info, &err);
    cf_header_list_cleanup(&h);
    if (rc == CF_EPRECOND) {
        cf_write_condition_error(r, &cond, &refusal);
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
    }
    if (rc)
        return cf_respond_failure(r, &err, CF_S3_ON_BUCKET, 0);
    return cf_respond_written(r, &info);
}

/* The HTTP layer refuses a header with an empty value, and S3 stores and returns empty ones
 * (an empty x-amz-meta-*): a lone space is the same empty field to every HTTP parser, which drop the
 * whitespace around a field value (RFC 9110 §5.5). */
static void add_header_value(cf_http_response *resp, const char *name, const char *value)
{
    cf_http_add_header(resp, name, *value ? value : " ");
}

static const char *const response_overrides[] = {"content-type",  "content-language",    "expires",
                                                 "cache-control", "content-disposition", "content-encoding"};
#define N_RESPONSE_OVERRIDES (sizeof response_overrides / sizeof *response_overrides)

static void add_object_headers(cf_http_response *resp, const cf_object_info *info, cf_request *r, int whole)
{
    char etag[80], date[30];
    snprintf(etag, sizeof etag, "\"%s\"", info->etag);
    cf_s3_http_date((time_t)(info->mtime_ns / 1000000000), date);
    cf_http_add_header(resp, "ETag", etag);
    cf_http_add_header(resp, "Last-Modified", date);
    cf_http_add_header(resp, "Accept-Ranges", "bytes");
    const char *mode = cf_request_header(r, "x-amz-checksum-mode");
    int checksums = mode && strcasecmp(mode, "ENABLED") == 0 && whole;
    size_t tags = cf_tagging_count(cf_object_info_header(info, CF_TAGGING_HEADER));
    if (tags) {
        char n[24];
        snprintf(n, sizeof n, "%zu", tags);
        cf_http_add_header(resp, "x-amz-tagging-count", n);
    }
    for (size_t i = 0; i < info->nheaders; i++) {
        const char *name = info->headers[i].name;
        const char *value = info->headers[i].value;
        if (strncmp(name, CF_INTERNAL_HEADER_PREFIX, strlen(CF_INTERNAL_HEADER_PREFIX)) == 0)
            continue;
        /* Checksums describe the whole object and are sent only when asked for. */
        if (strncmp(name, "x-amz-checksum-", 15) == 0 && !checksums)
            continue;
        /* response-content-type and friends override the stored value (S3 semantics). */
        char param[64];
        if (strncmp(name, "x-amz-meta-", 11) != 0) {
            snprintf(param, sizeof param, "response-%s", name);
            const char *o = cf_request_param(r, param);
            if (o)
                continue;
        }
        add_header_value(resp, name, value);
    }
    for (size_t i = 0; i < N_RESPONSE_OVERRIDES; i++) {
        char param[64];
        snprintf(param, sizeof param, "response-%s", response_overrides[i]);
        const char *o = cf_request_param(r, param);
        if (!o)
            continue;
        /* Query values stay raw (server.c keep_raw): decode, and refuse what would split the
         * header. */
        cf_buf v;
        cf_buf_init(&v, 8192);
        if (cf_s3_url_decode(&v, o, strlen(o)) == 0 && !(v.data && strpbrk(v.data, "\r\n")))
            add_header_value(resp, response_overrides[i], v.data ? v.data : "");
        cf_buf_cleanup(&v);
    }
}

/* A stored object that cannot be read as its record says (store.h: a short or missing data
 * file): an operator must hear of it by name, since the client sees only a 500 or a cut body. */
static void object_read_failed(const cf_logger *log, cf_metrics *m, const char *request_id,
                               const char *bucket, const char *key, const char *why)
{
    cf_metrics_object_read_error(m);
    cf_log(log, CF_LOG_ERROR, "cannot read the object's data", "id", request_id, "bucket", bucket, "key", key,
           "error", why, NULL);
}

/* The reader of a body that spans parts, and where to report a failure half way through it. */
typedef struct segments_body {
    cf_store_reader *rd;
    const cf_logger *log;
    cf_metrics *metrics;
    char request_id[24];
    char *bucket, *key; /* owned: the response outlives the handler */
} segments_body;

static long read_segments(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos; /* bodies are read sequentially from 0 */
    segments_body *body = cls;
    cf_err err;
    long n = cf_store_reader_read(body->rd, buf, max, &err);
    if (n < 0) {
        /* The headers are gone: cutting the connection is the only way left to say so. */
        object_read_failed(body->log, body->metrics, body->request_id, body->bucket, body->key, err.msg);
        return CF_HTTP_READER_ERROR;
    }
    return n == 0 ? CF_HTTP_READER_END : n;
}

static void free_reader(void *cls)
{
    segments_body *body = cls;
    cf_store_reader_free(body->rd);
    free(body->bucket);
    free(body->key);
    free(body);
}

/*
 * The body of a multipart object. A range inside one part is sent from that file with
 * sendfile like a plain object; one that spans parts is read part after part by a reader that
 * holds the version until the response is freed. CF_ENOTFOUND when an overwrite replaced the
 * version since the lookup.
 */
static int segmented_body(cf_request *r, const cf_object_info *info, uint64_t start, uint64_t len,
                          cf_http_response **resp, cf_err *err)
{
    uint64_t off = start;
    size_t i = 0;
    while (i < info->nsegs && off >= info->segs[i].len)
        off -= info->segs[i++].len;
    if (i < info->nsegs && off + len <= info->segs[i].len) {
        int fd;
        int rc = cf_store_part_open(r->srv->store, info, i, &fd, err);
        if (rc)
            return rc;
        if (!(*resp = cf_rate_body_fd(r, fd, off, len)))
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        return 0;
    }
    segments_body *body = calloc(1, sizeof *body);
    if (!body)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    body->log = &r->srv->log;
    body->metrics = r->srv->metrics;
    snprintf(body->request_id, sizeof body->request_id, "%s", r->request_id);
    body->bucket = strdup(r->bucket);
    body->key = strdup(r->key);
    int rc = body->bucket && body->key ? cf_store_reader_open(r->srv->store, info, start, len, &body->rd, err)
                                       : cf_err_set(err, CF_ENOMEM, "out of memory");
    if (rc) {
        free(body->bucket);
        free(body->key);
        free(body);
        return rc;
    }
    if (!(*resp = cf_rate_body_reader(r, len, 256 << 10, read_segments, body, free_reader)))
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    return 0;
}

/* ?partNumber=N: 1 to 10,000, and never with a Range (both as AWS). */
static cf_s3_error parse_part_number(cf_request *r, unsigned *part, const char **msg)
{
    const char *p = cf_request_param(r, "partNumber");
    *part = 0;
    if (!p)
        return CF_S3_OK;
    unsigned long v = 0;
    size_t n = strspn(p, "0123456789");
    if (n == 0 || n > 5 || p[n] || (v = strtoul(p, NULL, 10)) < 1 || v > 10000) {
        *msg = "Part number must be an integer between 1 and 10000, inclusive";
        return CF_S3_InvalidArgument;
    }
    if (cf_request_header(r, "Range")) {
        *msg = "Cannot specify both Range header and partNumber query parameter";
        return CF_S3_InvalidRequest;
    }
    *part = (unsigned)v;
    return CF_S3_OK;
}

/* A multipart object's segment i is its part i + 1 (the completion's order); a plain object
 * is one part. *count is 0 for a plain object, which has no x-amz-mp-parts-count. */
static int part_bounds(const cf_object_info *info, unsigned part, uint64_t *start, uint64_t *len,
                       size_t *count)
{
    int multipart = strchr(info->etag, '-') != NULL;
    *count = multipart ? info->nsegs : 0;
    if (part > (multipart ? info->nsegs : 1))
        return -1;
    *start = 0;
    *len = info->size;
    if (multipart) {
        for (unsigned i = 0; i + 1 < part; i++)
            *start += info->segs[i].len;
        *len = info->segs[part - 1].len;
    }
    return 0;
}

static int respond_not_modified(cf_request *r, const cf_object_info *info)
{
    cf_http_response *resp = cf_http_body_empty();
    if (resp) {
        char etag[80], date[30];
        snprintf(etag, sizeof etag, "\"%s\"", info->etag);
        cf_s3_http_date((time_t)(info->mtime_ns / 1000000000), date);
        cf_http_add_header(resp, "ETag", etag);
        cf_http_add_header(resp, "Last-Modified", date);
    }
    return cf_respond(r, 304, resp);
}

/* AWS answers a missing key with 403 instead of 404 to a caller who may not list the bucket,
 * so that keys cannot be probed for. Root and access keys that may read may also list; an
 * anonymous caller may list only if the bucket policy says so. */
static cf_s3_error missing_key_error(cf_request *r)
{
    if (r->principal != CF_PRINCIPAL_ANONYMOUS)
        return CF_S3_NoSuchKey;
    cf_s3_op op = r->op;
    r->op = CF_S3_OP_LIST_OBJECTS;
    int denied = cf_access_check(r, NULL);
    r->op = op;
    return denied ? CF_S3_AccessDenied : CF_S3_NoSuchKey;
}

/* A value no header can carry: a control character but tab (RFC 9110). */
static int has_control(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
            return 1;
    return 0;
}

int cf_handle_get_object(cf_request *r, int head)
{
    cf_object_info info;
    cf_err err;
    for (size_t i = 0; i < N_RESPONSE_OVERRIDES; i++) {
        char param[64];
        snprintf(param, sizeof param, "response-%s", response_overrides[i]);
        const char *o = cf_request_param(r, param);
        if (!o)
            continue;
        /* AWS: the response-* overrides need a signed request (header or presigned URL), so that
         * a public object cannot be served under another type or disposition by any link. */
        if (r->principal == CF_PRINCIPAL_ANONYMOUS)
            return cf_respond_error(
                r, CF_S3_InvalidRequest,
                "Request specific response headers cannot be used for anonymous GET requests.");
        /* Refused rather than left out: the stored header would be left out with it, and a
         * download meant as an attachment would be shown inline, typeless, for browsers to sniff. */
        cf_buf v;
        cf_buf_init(&v, 8192);
        int bad = cf_s3_url_decode(&v, o, strlen(o)) != 0 || has_control(v.data, v.len);
        cf_buf_cleanup(&v);
        if (bad) {
            char msg[128];
            snprintf(msg, sizeof msg, "%s is not a valid header value", param);
            return cf_respond_error(r, CF_S3_InvalidArgument, msg);
        }
    }
    int refused = cf_refuse_other_version(r);
    if (refused >= 0)
        return refused;
    unsigned part;
    const char *pmsg = NULL;
    cf_s3_error pe = parse_part_number(r, &part, &pmsg);
    if (pe)
        return cf_respond_error(r, pe, pmsg);
    uint64_t start = 0, len = 0;
    size_t parts_count = 0;
    int status = 200;
    cf_http_response *resp = NULL;
    /* An overwrite between the lookup and the first open of a multipart object's data: the
     * old version is gone before a byte was sent, so the new one is looked up and sent. */
    for (int attempt = 0;; attempt++) {
        int fd = -1, missing_bucket = 0;
        int rc = cf_store_object_get(r->srv->store, r->bucket, r->key, r->keylen, &info, &fd, &missing_bucket,
                                     &err);
        cf_s3_error missing = cf_s3_error_for(rc, missing_bucket ? CF_S3_ON_BUCKET : CF_S3_ON_KEY);
        if (missing == CF_S3_NoSuchKey) /* or AccessDenied, lest it tell which keys exist */
            return cf_respond_error(r, missing_key_error(r), NULL);
        if (rc == CF_ECORRUPT) { /* before any header: a 500, not a body that stops short */
            object_read_failed(&r->srv->log, r->srv->metrics, r->request_id, r->bucket, r->key, err.msg);
            return cf_respond_error(r, CF_S3_InternalError, NULL);
        }
        if (rc)
            return cf_respond_failure(r, &err, missing_bucket ? CF_S3_ON_BUCKET : CF_S3_ON_KEY, 0);
        int not_modified;
        cf_err failed;
        int ce = cf_check_conditions(&info, cf_request_header(r, "If-Match"),
                                     cf_request_header(r, "If-None-Match"),
                                     cf_request_header(r, "If-Modified-Since"),
                                     cf_request_header(r, "If-Unmodified-Since"), &not_modified, &failed);
        if (ce || not_modified) {
            if (fd >= 0)
                close(fd);
            /* If-Match decides when it is there (cf_check_conditions): it is the one that failed. */
            cf_s3_error_field cond = {"Condition",
                                      cf_request_header(r, "If-Match") ? "If-Match" : "If-Unmodified-Since"};
            int ok = ce ? cf_respond_error_fields(r, cf_s3_error_of(&failed, CF_S3_ON_REQUEST), NULL, &cond,
                                                  1, NULL, NULL)
                        : respond_not_modified(r, &info);
            cf_object_info_cleanup(&info);
            return ok;
        }
        start = 0, len = info.size, status = 200;
        const char *range = cf_request_header(r, "Range");
        if (part) {
            if (part_bounds(&info, part, &start, &len, &parts_count) != 0) {
                if (fd >= 0)
                    close(fd);
                cf_object_info_cleanup(&info);
                return cf_respond_error(r, CF_S3_InvalidPartNumber, NULL);
            }
            if (len)
                status = 206; /* a part is a range, even when it is the whole object */
        } else if (range) {
            int prc = cf_s3_range_parse(range, info.size, &start, &len);
            if (prc == CF_ERANGE) {
                if (fd >= 0)
                    close(fd);
                char size[24], unsatisfied[40];
                snprintf(size, sizeof size, "%llu", (unsigned long long)info.size);
                snprintf(unsatisfied, sizeof unsatisfied, "bytes */%s", size);
                cf_object_info_cleanup(&info);
                const cf_s3_error_field f[] = {{"RangeRequested", range}, {"ActualObjectSize", size}};
                return cf_respond_error_fields(r, CF_S3_InvalidRange, NULL, f, 2, "Content-Range",
                                               unsatisfied);
            }
            if (prc == 0)
                status = 206;
            else
                start = 0, len = info.size; /* malformed ranges are ignored, as S3 does */
        }
        if (info.data && len) {
            /* A small object kept in its record (store.h, CF_STORE_INLINE_MAX). */
            if (fd >= 0)
                close(fd);
            resp = cf_rate_body_buffer(r, info.data + start, (size_t)len, 1);
        } else if (len == 0 || fd < 0) {
            if (fd >= 0)
                close(fd);
            resp = cf_http_body_empty();
        } else if (info.nsegs > 1) {
            close(fd);
            rc = segmented_body(r, &info, start, len, &resp, &err);
            if (rc == CF_ENOTFOUND && attempt < 8) {
                cf_object_info_cleanup(&info);
                continue;
            }
            if (rc == CF_ECORRUPT)
                object_read_failed(&r->srv->log, r->srv->metrics, r->request_id, r->bucket, r->key, err.msg);
            else if (rc)
                cf_log(&r->srv->log, CF_LOG_ERROR, "read failed", "id", r->request_id, "error", err.msg,
                       NULL);
            if (rc) {
                cf_object_info_cleanup(&info);
                return cf_respond_error(r, CF_S3_InternalError, NULL);
            }
        } else if (len <= SMALL_RESPONSE && !head) {
            /* Headers and body in one send: for small objects a second syscall (sendfile after
             * the header write) and a second TCP segment cost more than the copy. */
            char *body = malloc((size_t)len);
            ssize_t got = body ? pread(fd, body, (size_t)len, (off_t)start) : -1;
            int read_errno = errno;
            close(fd);
            if (got != (ssize_t)len) {
                object_read_failed(&r->srv->log, r->srv->metrics, r->request_id, r->bucket, r->key,
                                   got < 0 ? strerror(read_errno) : "the data file ends before the range");
                free(body);
                cf_object_info_cleanup(&info);
                return cf_respond_error(r, CF_S3_InternalError, NULL);
            }
            resp = cf_rate_body_buffer(r, body, (size_t)len, 0);
        } else {
            /* The response owns fd from here and sends it with sendfile() (unless paced). */
            resp = cf_rate_body_fd(r, fd, start, len);
        }
        break;
    }
    if (!resp) {
        cf_object_info_cleanup(&info);
        return 0;
    }
    add_object_headers(resp, &info, r, status == 200 && !part);
    if (status == 206) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)start,
                 (unsigned long long)(start + len - 1), (unsigned long long)info.size);
        cf_http_add_header(resp, "Content-Range", cr);
    }
    if (parts_count) {
        char n[24];
        snprintf(n, sizeof n, "%zu", parts_count);
        cf_http_add_header(resp, "x-amz-mp-parts-count", n);
    }
    r->bytes_out = head ? 0 : len;
    cf_object_info_cleanup(&info);
    return cf_respond(r, status, resp);
}

int cf_handle_delete_object(cf_request *r)
{
    cf_err err;
    int refused = cf_refuse_other_version(r);
    if (refused >= 0)
        return refused;
    int rc = cf_store_object_delete(r->srv->store, r->bucket, r->key, r->keylen, &err);
    if (rc)
        return cf_respond_failure(r, &err, CF_S3_ON_BUCKET, 0);
    return cf_respond_empty(r, 204);
}

/* ---- conditions and copies ---- */

static int etag_listed(const char *list, const char *etag)
{
    /* "a", "b" or W/"a" or * — compare each entry without quotes. */
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && p[n - 1] == ' ')
            n--;
        const char *v = p;
        if (n >= 2 && v[0] == 'W' && v[1] == '/')
            v += 2, n -= 2;
        if (n == 1 && v[0] == '*')
            return 1;
        if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
            v++, n -= 2;
        if (n == strlen(etag) && strncmp(v, etag, n) == 0)
            return 1;
        p = end ? end + 1 : p + strlen(p);
    }
    return 0;
}

int cf_check_conditions(const cf_object_info *info, const char *if_match, const char *if_none_match,
                        const char *if_modified_since, const char *if_unmodified_since, int *not_modified,
                        cf_err *failed)
{
    time_t mtime = (time_t)(info->mtime_ns / 1000000000), t;
    *not_modified = 0;
    /* RFC 9110 §13.2.2 order: If-Match, then If-Unmodified-Since only without If-Match, ... */
    if (if_match && !etag_listed(if_match, info->etag))
        return cf_s3_refuse(failed, CF_S3_PreconditionFailed, NULL);
    if (!if_match && if_unmodified_since && cf_s3_parse_http_date(if_unmodified_since, &t) == 0 && mtime > t)
        return cf_s3_refuse(failed, CF_S3_PreconditionFailed, NULL);
    if (if_none_match && etag_listed(if_none_match, info->etag)) {
        *not_modified = 1;
        return 0;
    }
    if (!if_none_match && if_modified_since && cf_s3_parse_http_date(if_modified_since, &t) == 0 &&
        mtime <= t)
        *not_modified = 1;
    return 0;
}

void cf_copy_source_cleanup(cf_copy_source *src)
{
    free(src->bucket);
    free(src->key);
    cf_store_reader_free(src->rd);
    cf_object_info_cleanup(&src->info);
    memset(src, 0, sizeof *src);
}

#define BAD_COPY_SOURCE "x-amz-copy-source must be bucket/key, URL-encoded"

/* One attempt of cf_copy_source_open once the source is named; *raced when an overwrite
 * replaced the version found before its reader opened. */
static int open_source_version(cf_request *r, int allow_range, cf_copy_source *src, int *raced,
                               cf_err *refusal)
{
    cf_err err;
    int missing_bucket = 0;
    cf_object_info_cleanup(&src->info);
    int rc = cf_store_object_get(r->srv->store, src->bucket, src->key, src->keylen, &src->info, NULL,
                                 &missing_bucket, &err);
    cf_s3_error e = cf_s3_error_for(rc, missing_bucket ? CF_S3_ON_BUCKET : CF_S3_ON_KEY);
    if (e) {
        if (cf_s3_error_status(e) >= 500)
            cf_log(&r->srv->log, CF_LOG_ERROR, "copy source read failed", "id", r->request_id, "error",
                   err.msg, NULL);
        return cf_s3_refuse(refusal, e, NULL);
    }
    int not_modified;
    rc = cf_check_conditions(&src->info, cf_request_header(r, "x-amz-copy-source-if-match"),
                             cf_request_header(r, "x-amz-copy-source-if-none-match"),
                             cf_request_header(r, "x-amz-copy-source-if-modified-since"),
                             cf_request_header(r, "x-amz-copy-source-if-unmodified-since"), &not_modified,
                             NULL);
    if (rc || not_modified)
        return cf_s3_refuse(refusal, CF_S3_PreconditionFailed, NULL);
    src->start = 0;
    src->len = src->info.size;
    const char *range = allow_range ? cf_request_header(r, "x-amz-copy-source-range") : NULL;
    if (range) {
        unsigned long long first, last;
        int used = 0;
        if (sscanf(range, "bytes=%llu-%llu%n", &first, &last, &used) != 2 || range[used] || first > last ||
            last >= src->info.size)
            return cf_s3_err_set(
                refusal, CF_EINVAL, CF_S3_InvalidArgument,
                "x-amz-copy-source-range must be bytes=first-last within the source object of %llu bytes",
                (unsigned long long)src->info.size);
        src->start = first;
        src->len = last - first + 1;
    }
    if (src->len > CF_MAX_PUT_SIZE)
        return cf_s3_refuse(refusal, CF_S3_InvalidRequest,
                            "a copy is limited to 5 GiB; use UploadPartCopy with ranges");
    rc = cf_store_reader_open(r->srv->store, &src->info, src->start, src->len, &src->rd, &err);
    *raced = rc == CF_ENOTFOUND;
    if (*raced)
        return cf_s3_refuse(refusal, CF_S3_ServiceUnavailable, NULL); /* after as many tries as a GET makes */
    if (rc) {
        cf_log(&r->srv->log, CF_LOG_ERROR, "copy source read failed", "id", r->request_id, "error", err.msg,
               NULL);
        return cf_s3_refuse(refusal, CF_S3_InternalError, NULL);
    }
    return 0;
}

int cf_copy_source_open(cf_request *r, int allow_range, cf_copy_source *src, cf_err *refusal)
{
    memset(src, 0, sizeof *src);
    const char *raw = cf_request_header(r, "x-amz-copy-source");
    const char *q = raw ? strchr(raw, '?') : NULL;
    cf_buf path;
    cf_buf_init(&path, 8192);
    if (!raw || cf_s3_url_decode(&path, raw, q ? (size_t)(q - raw) : strlen(raw)) != 0 || !path.data ||
        memchr(path.data, '\0', path.len)) {
        cf_buf_cleanup(&path);
        return cf_s3_refuse(refusal, CF_S3_InvalidArgument, BAD_COPY_SOURCE);
    }
    if (q && strncmp(q, "?versionId=", 11) == 0 && strcmp(q + 11, "null") != 0) {
        cf_buf_cleanup(&path);
        return cf_s3_refuse(refusal, CF_S3_NoSuchKey,
                            "this server keeps no versions: only versionId=null exists");
    }
    const char *p = path.data[0] == '/' ? path.data + 1 : path.data;
    const char *slash = strchr(p, '/');
    if (!slash || slash == p || !slash[1]) {
        cf_buf_cleanup(&path);
        return cf_s3_refuse(refusal, CF_S3_InvalidArgument, BAD_COPY_SOURCE);
    }
    src->bucket = strndup(p, (size_t)(slash - p));
    src->key = strdup(slash + 1);
    src->keylen = strlen(slash + 1);
    cf_buf_cleanup(&path);
    if (!src->bucket || !src->key)
        return cf_s3_err_set(refusal, CF_ENOMEM, CF_S3_InternalError, "%s",
                             cf_s3_error_message(CF_S3_InternalError));
    if (src->keylen > CF_S3_MAX_KEY_LEN)
        return cf_s3_refuse(refusal, CF_S3_KeyTooLongError, NULL);
    /* Copying reads the source: the principal must be allowed to GET it. */
    if (!cf_access_allows_version(r, CF_S3_OP_GET_OBJECT, src->bucket, src->key, src->keylen,
                                  q && strncmp(q, "?versionId=", 11) == 0))
        return cf_s3_refuse(refusal, CF_S3_AccessDenied, NULL);

    /* The version read is the one checked: an overwrite between the lookup and the reader's
     * open means looking again, as a GET does. */
    for (int attempt = 0;; attempt++) {
        int raced = 0;
        int rc = open_source_version(r, allow_range, src, &raced, refusal);
        if (!raced || attempt == 8)
            return rc;
    }
}

int cf_copy_source_into_writer(cf_request *r, cf_copy_source *src, cf_store_writer **w)
{
    cf_err err;
    char *buf = malloc(256 << 10);
    int rc = buf ? 0 : CF_ENOMEM;
    if (!rc)
        rc = cf_store_writer_begin(r->srv->store, w, &err);
    while (!rc) {
        long n = cf_store_reader_read(src->rd, buf, 256 << 10, &err);
        if (n <= 0) {
            rc = (int)n;
            break;
        }
        rc = cf_store_writer_write(*w, buf, (size_t)n, &err);
    }
    if (!rc)
        rc = cf_store_writer_finish(*w, NULL, NULL, &err);
    if (rc) {
        cf_log(&r->srv->log, CF_LOG_ERROR, "copy failed", "id", r->request_id, "error",
               rc == CF_ENOMEM ? "out of memory" : err.msg, NULL);
        cf_store_writer_abort(*w);
        *w = NULL;
    }
    free(buf);
    return rc;
}

int cf_respond_copied(cf_request *r, const char *root, cf_object_info *info)
{
    char date[25];
    cf_s3_iso8601(info->mtime_ns, date);
    cf_buf b;
    cf_buf_init(&b, 4096);
    cf_buf_printf(&b, CF_XML_DECL "<%s xmlns=\"" CF_S3_XMLNS "\">", root);
    cf_xml_elem(&b, "LastModified", date);
    cf_buf_printf(&b, "<ETag>&quot;%s&quot;</ETag>", info->etag);
    cf_xml_close(&b, root);
    cf_object_info_cleanup(info);
    return cf_respond_xml(r, 200, &b);
}

int cf_handle_copy_object(cf_request *r)
{
    if (cf_s3_key_check(r->key, r->keylen) != 0)
        return cf_respond_error(r, CF_S3_InvalidArgument, "object keys must be 1 to 1024 bytes of UTF-8");
    cf_copy_source src;
    cf_err refusal;
    if (cf_copy_source_open(r, 0, &src, &refusal) != 0) {
        cf_copy_source_cleanup(&src);
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
    }
    const char *directive = cf_request_header(r, "x-amz-metadata-directive");
    int replace = directive && strcasecmp(directive, "REPLACE") == 0;
    if (directive && !replace && strcasecmp(directive, "COPY") != 0) {
        cf_copy_source_cleanup(&src);
        return cf_respond_error(r, CF_S3_InvalidArgument, "x-amz-metadata-directive must be COPY or REPLACE");
    }
    const char *tdir0 = cf_request_header(r, "x-amz-tagging-directive");
    if (!replace && !(tdir0 && strcasecmp(tdir0, "REPLACE") == 0) && strcmp(src.bucket, r->bucket) == 0 &&
        src.keylen == r->keylen && memcmp(src.key, r->key, r->keylen) == 0) {
        cf_copy_source_cleanup(&src);
        return cf_respond_error(
            r, CF_S3_InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself "
            "without changing the object's metadata, storage class, website redirect "
            "location or encryption attributes.");
    }
    cf_err err;
    if (cf_store_bucket_exists(r->srv->store, r->bucket, &err) != 0) {
        cf_copy_source_cleanup(&src);
        return cf_respond_error(r, CF_S3_NoSuchBucket, NULL);
    }
    /* Metadata comes from the source or the request (x-amz-metadata-directive), and so,
     * independently, do tags (x-amz-tagging-directive). */
    const char *tdir = cf_request_header(r, "x-amz-tagging-directive");
    int replace_tags = tdir && strcasecmp(tdir, "REPLACE") == 0;
    cf_header_list h = {0};
    int hrc = 0;
    if (replace) {
        hrc = cf_object_headers(r, &h);
    } else {
        for (size_t i = 0; !hrc && i < src.info.nheaders; i++)
            if (strcmp(src.info.headers[i].name, CF_TAGGING_HEADER) != 0)
                hrc = cf_header_add(&h, src.info.headers[i].name, strlen(src.info.headers[i].name),
                                    src.info.headers[i].value);
    }
    const char *src_tags = cf_object_info_header(&src.info, CF_TAGGING_HEADER);
    if (!hrc && !replace_tags && src_tags)
        hrc = cf_header_add(&h, CF_TAGGING_HEADER, strlen(CF_TAGGING_HEADER), src_tags);
    else if (!hrc && replace_tags && cf_tagging_from_request(r, &h, &refusal) != 0) {
        cf_header_list_cleanup(&h);
        cf_copy_source_cleanup(&src);
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
    }
    if (hrc) {
        cf_header_list_cleanup(&h);
        cf_copy_source_cleanup(&src);
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    if (h.meta_bytes > CF_MAX_USER_METADATA) {
        cf_header_list_cleanup(&h);
        cf_copy_source_cleanup(&src);
        return cf_respond_metadata_too_large(r, h.meta_bytes);
    }
    cf_store_writer *w = NULL;
    cf_object_info info = {0};
    int rc = cf_copy_source_into_writer(r, &src, &w);
    cf_copy_source_cleanup(&src); /* lets go of the source version */
    if (rc) {
        cf_header_list_cleanup(&h);
        return cf_respond_error(r, cf_s3_error_for(rc, CF_S3_ON_REQUEST), NULL);
    }
    cf_store_condition cond = {.must_not_exist = cf_access_create_only(r)};
    cf_store_writer_set_condition(w, &cond);
    rc = cf_store_writer_commit(w, r->bucket, r->key, r->keylen, h.kv, h.n, &info, &err);
    cf_header_list_cleanup(&h);
    if (rc == CF_EPRECOND) {
        cf_write_condition_error(r, &cond, &refusal);
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
    }
    if (rc)
        return cf_respond_failure(r, &err, CF_S3_ON_BUCKET, 0);
    return cf_respond_copied(r, "CopyObjectResult", &info);
}
