/* route.c - which S3 operation a path-style request is: a pure function of its parts. */
#include <string.h>

#include "s3/request.h"

const char *cf_s3_op_name(cf_s3_op op)
{
    switch (op) {
    case CF_S3_OP_LIST_BUCKETS: return "ListBuckets";
    case CF_S3_OP_CREATE_BUCKET: return "CreateBucket";
    case CF_S3_OP_HEAD_BUCKET: return "HeadBucket";
    case CF_S3_OP_DELETE_BUCKET: return "DeleteBucket";
    case CF_S3_OP_LIST_OBJECTS: return "ListObjects";
    case CF_S3_OP_LIST_OBJECTS_V2: return "ListObjectsV2";
    case CF_S3_OP_GET_BUCKET_LOCATION: return "GetBucketLocation";
    case CF_S3_OP_GET_BUCKET_VERSIONING: return "GetBucketVersioning";
    case CF_S3_OP_LIST_OBJECT_VERSIONS: return "ListObjectVersions";
    case CF_S3_OP_DELETE_OBJECTS: return "DeleteObjects";
    case CF_S3_OP_GET_BUCKET_POLICY: return "GetBucketPolicy";
    case CF_S3_OP_PUT_BUCKET_POLICY: return "PutBucketPolicy";
    case CF_S3_OP_DELETE_BUCKET_POLICY: return "DeleteBucketPolicy";
    case CF_S3_OP_GET_BUCKET_CORS: return "GetBucketCors";
    case CF_S3_OP_PUT_BUCKET_CORS: return "PutBucketCors";
    case CF_S3_OP_DELETE_BUCKET_CORS: return "DeleteBucketCors";
    case CF_S3_OP_CORS_PREFLIGHT: return "PreflightRequest";
    case CF_S3_OP_POST_OBJECT: return "PostObject";
    case CF_S3_OP_ADMIN: return "Admin";
    case CF_S3_OP_PUT_OBJECT: return "PutObject";
    case CF_S3_OP_GET_OBJECT: return "GetObject";
    case CF_S3_OP_HEAD_OBJECT: return "HeadObject";
    case CF_S3_OP_DELETE_OBJECT: return "DeleteObject";
    case CF_S3_OP_COPY_OBJECT: return "CopyObject";
    case CF_S3_OP_CREATE_MULTIPART_UPLOAD: return "CreateMultipartUpload";
    case CF_S3_OP_UPLOAD_PART: return "UploadPart";
    case CF_S3_OP_UPLOAD_PART_COPY: return "UploadPartCopy";
    case CF_S3_OP_COMPLETE_MULTIPART_UPLOAD: return "CompleteMultipartUpload";
    case CF_S3_OP_ABORT_MULTIPART_UPLOAD: return "AbortMultipartUpload";
    case CF_S3_OP_LIST_PARTS: return "ListParts";
    case CF_S3_OP_LIST_MULTIPART_UPLOADS: return "ListMultipartUploads";
    case CF_S3_OP_GET_OBJECT_TAGGING: return "GetObjectTagging";
    case CF_S3_OP_PUT_OBJECT_TAGGING: return "PutObjectTagging";
    case CF_S3_OP_DELETE_OBJECT_TAGGING: return "DeleteObjectTagging";
    case CF_S3_OP_UNSUPPORTED: return "Unsupported";
    case CF_S3_OP_METHOD_NOT_ALLOWED: return "MethodNotAllowed";
    case CF_S3_OP_UNKNOWN:
    case CF_S3_OP_COUNT_: break;
    }
    return "Unknown";
}

/* Sub-resources that select another operation, which this server does not implement yet. */
static const char *const bucket_subresources[] = {
    "acl",
    "lifecycle",
    "website",
    "tagging",
    "encryption",
    "replication",
    "logging",
    "notification",
    "object-lock",
    "accelerate",
    "requestPayment",
    "ownershipControls",
    "publicAccessBlock",
    "intelligent-tiering",
    "inventory",
    "metrics",
    "analytics",
    "policyStatus",
};
static const char *const object_subresources[] = {
    "acl", "retention", "legal-hold", "attributes", "torrent", "restore", "select",
};

static int has_any(cf_s3_get_param_fn get, void *ctx, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (get(ctx, names[i]))
            return 1;
    return 0;
}

#define HAS_ANY(list) has_any(get_param, ctx, list, sizeof list / sizeof *list)

cf_s3_op cf_s3_route(const char *method, const char *bucket, const char *key, cf_s3_get_param_fn get_param,
                     void *ctx)
{
    int get = strcmp(method, "GET") == 0, put = strcmp(method, "PUT") == 0;
    int head = strcmp(method, "HEAD") == 0, del = strcmp(method, "DELETE") == 0;
    int post = strcmp(method, "POST") == 0;
    if (strcmp(method, "OPTIONS") == 0)
        return *bucket ? CF_S3_OP_CORS_PREFLIGHT : CF_S3_OP_METHOD_NOT_ALLOWED;
    if (!get && !put && !head && !del && !post)
        return CF_S3_OP_METHOD_NOT_ALLOWED;
    if (!*bucket)
        return get ? CF_S3_OP_LIST_BUCKETS : CF_S3_OP_METHOD_NOT_ALLOWED;
    if (!*key) {
        /* A sub-resource with the wrong method must never fall through to the plain bucket
         * operation: "DELETE /bucket?uploads" is not DeleteBucket. */
        if (get_param(ctx, "uploads"))
            return get ? CF_S3_OP_LIST_MULTIPART_UPLOADS : CF_S3_OP_METHOD_NOT_ALLOWED;
        if (get_param(ctx, "versioning"))
            return get   ? CF_S3_OP_GET_BUCKET_VERSIONING
                   : put ? CF_S3_OP_UNSUPPORTED
                         : CF_S3_OP_METHOD_NOT_ALLOWED;
        if (get_param(ctx, "versions"))
            return get ? CF_S3_OP_LIST_OBJECT_VERSIONS : CF_S3_OP_METHOD_NOT_ALLOWED;
        if (get_param(ctx, "delete"))
            return post ? CF_S3_OP_DELETE_OBJECTS : CF_S3_OP_METHOD_NOT_ALLOWED;
        if (get_param(ctx, "policy"))
            return get   ? CF_S3_OP_GET_BUCKET_POLICY
                   : put ? CF_S3_OP_PUT_BUCKET_POLICY
                   : del ? CF_S3_OP_DELETE_BUCKET_POLICY
                         : CF_S3_OP_METHOD_NOT_ALLOWED;
        if (get_param(ctx, "cors"))
            return get   ? CF_S3_OP_GET_BUCKET_CORS
                   : put ? CF_S3_OP_PUT_BUCKET_CORS
                   : del ? CF_S3_OP_DELETE_BUCKET_CORS
                         : CF_S3_OP_METHOD_NOT_ALLOWED;
        if (HAS_ANY(bucket_subresources))
            return CF_S3_OP_UNSUPPORTED;
        if (get_param(ctx, "location"))
            return get ? CF_S3_OP_GET_BUCKET_LOCATION : CF_S3_OP_METHOD_NOT_ALLOWED;
        if (get) {
            const char *lt = get_param(ctx, "list-type");
            return lt && strcmp(lt, "2") == 0 ? CF_S3_OP_LIST_OBJECTS_V2 : CF_S3_OP_LIST_OBJECTS;
        }
        if (put)
            return CF_S3_OP_CREATE_BUCKET;
        if (head)
            return CF_S3_OP_HEAD_BUCKET;
        if (del)
            return CF_S3_OP_DELETE_BUCKET;
        if (post)
            return CF_S3_OP_POST_OBJECT; /* the form's Content-Type is checked by its handler */
        return CF_S3_OP_METHOD_NOT_ALLOWED;
    }
    if (HAS_ANY(object_subresources))
        return CF_S3_OP_UNSUPPORTED;
    if (get_param(ctx, "tagging")) {
        if (get)
            return CF_S3_OP_GET_OBJECT_TAGGING;
        if (put)
            return CF_S3_OP_PUT_OBJECT_TAGGING;
        if (del)
            return CF_S3_OP_DELETE_OBJECT_TAGGING;
        return CF_S3_OP_METHOD_NOT_ALLOWED;
    }
    if (get_param(ctx, "uploads"))
        return post ? CF_S3_OP_CREATE_MULTIPART_UPLOAD : CF_S3_OP_METHOD_NOT_ALLOWED;
    if (get_param(ctx, "uploadId")) {
        if (put)
            return get_param(ctx, "partNumber") ? CF_S3_OP_UPLOAD_PART : CF_S3_OP_METHOD_NOT_ALLOWED;
        if (post)
            return CF_S3_OP_COMPLETE_MULTIPART_UPLOAD;
        if (del)
            return CF_S3_OP_ABORT_MULTIPART_UPLOAD;
        if (get)
            return CF_S3_OP_LIST_PARTS;
        return CF_S3_OP_METHOD_NOT_ALLOWED;
    }
    if (put)
        return CF_S3_OP_PUT_OBJECT;
    if (get)
        return CF_S3_OP_GET_OBJECT;
    if (head)
        return CF_S3_OP_HEAD_OBJECT;
    if (del)
        return CF_S3_OP_DELETE_OBJECT;
    return CF_S3_OP_METHOD_NOT_ALLOWED;
}
