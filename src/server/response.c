/* response.c - queuing responses with the headers every S3 response carries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "s3/xml.h"
#include "server/request.h"
#include "server/cors_rules.h"
#include "server/rate_groups.h"
#include "server/response.h"

int cf_respond(cf_request *r, int status, cf_http_response *resp)
{
    if (!resp)
        return 0;
    cf_http_add_header(resp, "x-amz-request-id", r->request_id);
    /* AWS's host id, which SDKs report with the request id (boto3's HostId): one per boot here,
     * as there is one host; about 50 ns per response. */
    cf_http_add_header(resp, "x-amz-id-2", r->srv->boot_id);
    cf_http_add_header(resp, "Server", "coffer");
    cf_cors_response_headers(r, resp);
    return cf_http_respond(r->http, status, resp);
}

static cf_http_response *xml_response(cf_request *r, cf_buf *body)
{
    size_t len;
    char *data = cf_buf_steal(body, &len);
    const char *type = len && data[0] == '<' ? "application/xml" : "text/plain";
    cf_http_response *resp = cf_rate_body_buffer(r, data, len, 0);
    if (!resp)
        return NULL;
    r->bytes_out = len;
    cf_http_add_header(resp, "Content-Type", type);
    return resp;
}

int cf_respond_xml(cf_request *r, int status, cf_buf *body)
{
    if (cf_buf_error(body)) { /* an append failed: the document lacks a part */
        cf_buf_cleanup(body);
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    return cf_respond(r, status, xml_response(r, body));
}

int cf_respond_empty(cf_request *r, int status)
{
    cf_http_response *resp = cf_http_body_empty();
    return cf_respond(r, status, resp);
}

static int respond_error(cf_request *r, cf_s3_error e, const char *message, const cf_s3_error_field *fields,
                         size_t nfields, const char *header, const char *value, int close_connection)
{
    cf_buf b;
    /* Room for SignatureDoesNotMatch's canonical request, given as text and as bytes. */
    cf_buf_init(&b, 4 * CF_ERROR_DETAIL_MAX + 64 * 1024);
    /* AWS's HostId element, the x-amz-id-2 header's value. */
    cf_s3_error_field all[2 + CF_ERROR_DETAIL_FIELDS + 1];
    size_t n = 0;
    for (size_t i = 0; i < nfields && n + 1 < sizeof all / sizeof all[0]; i++)
        all[n++] = fields[i];
    all[n++] = (cf_s3_error_field){"HostId", r->srv->boot_id};
    cf_s3_error_xml_fields(&b, e, message, r->resource ? r->resource : "/", all, n, r->request_id);
    if (cf_s3_error_status(e) >= 500)
        cf_log(&r->srv->log, CF_LOG_ERROR, "request failed", "id", r->request_id, "code", cf_s3_error_code(e),
               "message", message ? message : cf_s3_error_message(e), NULL);
    /* A client that sent Expect: 100-continue never sends the body after an early error;
     * one that did not may still be sending it, so the connection cannot be reused. */
    cf_http_response *resp = xml_response(r, &b);
    if (resp && header)
        cf_http_add_header(resp, header, value);
    if (resp && close_connection)
        cf_http_add_header(resp, "Connection", "close");
    return cf_respond(r, cf_s3_error_status(e), resp);
}

int cf_respond_error_fields(cf_request *r, cf_s3_error e, const char *message,
                            const cf_s3_error_field *fields, size_t nfields, const char *header,
                            const char *value)
{
    return respond_error(r, e, message, fields, nfields, header, value, 0);
}

int cf_respond_error_closing(cf_request *r, cf_s3_error e, const char *message, const char *elem,
                             const char *value)
{
    const cf_s3_error_field f = {elem, value};
    return respond_error(r, e, message, &f, elem ? 1 : 0, NULL, NULL, 1);
}

void cf_error_detail(cf_request *r, cf_s3_error e, const char *name, const char *value)
{
    if (r->error_detail_for != e || !r->error_detail.max) {
        cf_buf_cleanup(&r->error_detail);
        cf_buf_init(&r->error_detail, CF_ERROR_DETAIL_MAX);
        r->error_detail_for = e;
    }
    size_t start = r->error_detail.len;
    /* All of the pair or none of it: a value cut short would mislead whoever debugs with it. */
    if (cf_buf_append(&r->error_detail, name, strlen(name) + 1) ||
        cf_buf_append(&r->error_detail, value, strlen(value) + 1)) {
        r->error_detail.len = start;
        if (r->error_detail.data)
            r->error_detail.data[start] = '\0';
    }
}

void cf_error_detail_u64(cf_request *r, cf_s3_error e, const char *name, uint64_t value)
{
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long)value);
    cf_error_detail(r, e, name, v);
}

/* Appends the recorded elements of error e to f (n used of cap); returns the new count. */
static size_t recorded_detail(const cf_request *r, cf_s3_error e, cf_s3_error_field *f, size_t n, size_t cap)
{
    if (r->error_detail_for != e || !r->error_detail.data)
        return n;
    const char *p = r->error_detail.data, *end = p + r->error_detail.len;
    while (p < end && n < cap) {
        const char *name = p;
        const char *value = name + strlen(name) + 1;
        if (value >= end)
            break;
        f[n++] = (cf_s3_error_field){name, value};
        p = value + strlen(value) + 1;
    }
    return n;
}

int cf_respond_error(cf_request *r, cf_s3_error e, const char *message)
{
    /* The elements AWS adds to these errors, named after the request (SDKs expose them:
     * boto3's Error dict, minio-go's BucketName and Key). A copy's missing source is another
     * bucket and key than the request's, so copies get none. */
    int copy = r->op == CF_S3_OP_COPY_OBJECT || r->op == CF_S3_OP_UPLOAD_PART_COPY;
    const char *key = !copy && r->key && *r->key ? r->key : NULL;
    const char *bucket = !copy && r->bucket && *r->bucket ? r->bucket : NULL;
    cf_s3_error_field f[2 + CF_ERROR_DETAIL_FIELDS] = {{NULL, NULL}, {NULL, NULL}};
    char size[24], max[24];
    switch (e) {
    case CF_S3_NoSuchKey:
        /* AWS names the key; MinIO, whose client restic uses, also the bucket. */
        f[0] = (cf_s3_error_field){"BucketName", bucket};
        f[1] = (cf_s3_error_field){"Key", key};
        break;
    case CF_S3_NoSuchVersion:
        f[0] = (cf_s3_error_field){"Key", key};
        f[1] = (cf_s3_error_field){"VersionId", cf_request_param(r, "versionId")};
        break;
    case CF_S3_NoSuchBucket:
    case CF_S3_NoSuchBucketPolicy:
    case CF_S3_BucketAlreadyOwnedByYou:
    case CF_S3_BucketNotEmpty:
    case CF_S3_InvalidBucketName: f[0] = (cf_s3_error_field){"BucketName", bucket}; break;
    case CF_S3_NoSuchUpload: f[0] = (cf_s3_error_field){"UploadId", cf_request_param(r, "uploadId")}; break;
    case CF_S3_MethodNotAllowed:
        f[0] = (cf_s3_error_field){"Method", r->method};
        f[1] = (cf_s3_error_field){"ResourceType", key ? "OBJECT" : bucket ? "BUCKET" : "SERVICE"};
        break;
    case CF_S3_PreconditionFailed:
        /* A conditional write (GET names its own condition): If-None-Match: * decides first. */
        if (r->op == CF_S3_OP_PUT_OBJECT || r->op == CF_S3_OP_COMPLETE_MULTIPART_UPLOAD)
            f[0] = (cf_s3_error_field){"Condition", cf_request_header(r, "If-None-Match") ? "If-None-Match"
                                                    : cf_request_header(r, "If-Match")    ? "If-Match"
                                                                                          : NULL};
        break;
    case CF_S3_KeyTooLongError:
        snprintf(size, sizeof size, "%zu", r->keylen);
        snprintf(max, sizeof max, "%d", CF_S3_MAX_KEY_LEN);
        f[0] = (cf_s3_error_field){"Size", size};
        f[1] = (cf_s3_error_field){"MaxSizeAllowed", max};
        break;
    case CF_S3_InvalidDigest:
        /* AWS echoes the value it could not use. */
        f[0] = (cf_s3_error_field){"Content-MD5", cf_request_header(r, "Content-MD5")};
        break;
    case CF_S3_AccessDenied:
        /* AWS lists the x-amz-* headers a signed request carried without signing them. */
        if (r->headers_not_signed[0])
            f[0] = (cf_s3_error_field){"HeadersNotSigned", r->headers_not_signed};
        break;
    default: break;
    }
    size_t n = recorded_detail(r, e, f, f[0].name ? (f[1].name ? 2 : 1) : 0, sizeof f / sizeof f[0]);
    return cf_respond_error_fields(r, e, message, f, n, NULL, NULL);
}

int cf_respond_metadata_too_large(cf_request *r, size_t size)
{
    cf_error_detail_u64(r, CF_S3_MetadataTooLarge, "Size", size);
    cf_error_detail_u64(r, CF_S3_MetadataTooLarge, "MaxSizeAllowed", CF_MAX_USER_METADATA);
    return cf_respond_error(r, CF_S3_MetadataTooLarge, NULL);
}

int cf_respond_invalid_argument(cf_request *r, const char *message, const char *name, const char *value)
{
    const cf_s3_error_field f[] = {{"ArgumentName", name}, {"ArgumentValue", value}};
    return cf_respond_error_fields(r, CF_S3_InvalidArgument, message, f, 2, NULL, NULL);
}
