/*
 * test_route.c - cf_s3_route over the request lines of the S3 API reference, and the S3 error
 * table with its <Error> document.
 *
 * Routing cases are written as the reference shows them ("GET /bucket?list-type=2&prefix=p"),
 * split here into method, decoded bucket and key, and query. Statuses in the error table are
 * checked against the "List of error codes" of the S3 API reference, written out below
 * independently of CF_S3_ERROR_MAP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "s3/error.h"
#include "s3/request.h"
#include "s3/xml.h"

/* ---- routing ---- */

#define MAX_PARAMS 8

typedef struct query {
    char buf[256];
    const char *name[MAX_PARAMS], *value[MAX_PARAMS];
    int n;
} query;

/* "a=1&b&c=" as the server sees it: a bare name is present with an empty value. */
static void query_parse(query *q, const char *s)
{
    q->n = 0;
    snprintf(q->buf, sizeof q->buf, "%s", s);
    for (char *tok = q->buf; tok && *tok && q->n < MAX_PARAMS;) {
        char *amp = strchr(tok, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = '\0';
        q->name[q->n] = tok;
        q->value[q->n] = eq ? eq + 1 : "";
        q->n++;
        tok = amp ? amp + 1 : NULL;
    }
}

static const char *get_param(void *ctx, const char *name)
{
    const query *q = ctx;
    for (int i = 0; i < q->n; i++)
        if (strcmp(q->name[i], name) == 0)
            return q->value[i];
    return NULL;
}

typedef struct route_case {
    const char *method, *bucket, *key, *query;
    cf_s3_op op;
} route_case;

static void check_routes(const route_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        query q;
        query_parse(&q, c[i].query);
        cf_s3_op op = cf_s3_route(c[i].method, c[i].bucket, c[i].key, get_param, &q);
        if (op != c[i].op)
            fail_msg("%s /%s/%s?%s: %s, want %s", c[i].method, c[i].bucket, c[i].key, c[i].query,
                     cf_s3_op_name(op), cf_s3_op_name(c[i].op));
    }
}

#define CHECK_ROUTES(cases) check_routes(cases, sizeof cases / sizeof *cases)

static void test_service_level(void **state)
{
    /* clang-format off */
    static const route_case cases[] = {
        {"GET", "", "", "", CF_S3_OP_LIST_BUCKETS},
        /* ListBuckets takes parameters of its own (max-buckets, continuation-token, prefix). */
        {"GET", "", "", "max-buckets=10&prefix=a", CF_S3_OP_LIST_BUCKETS},
        {"PUT", "", "", "", CF_S3_OP_METHOD_NOT_ALLOWED},
        {"HEAD", "", "", "", CF_S3_OP_METHOD_NOT_ALLOWED},
        {"DELETE", "", "", "", CF_S3_OP_METHOD_NOT_ALLOWED},
        {"POST", "", "", "", CF_S3_OP_METHOD_NOT_ALLOWED},
    };
    /* clang-format on */
    CHECK_ROUTES(cases);
}

static void test_bucket_level(void **state)
{
    /* clang-format off */
    static const route_case cases[] = {
        {"PUT", "examplebucket", "", "", CF_S3_OP_CREATE_BUCKET},
        {"HEAD", "examplebucket", "", "", CF_S3_OP_HEAD_BUCKET},
        {"DELETE", "examplebucket", "", "", CF_S3_OP_DELETE_BUCKET},
        {"GET", "examplebucket", "", "", CF_S3_OP_LIST_OBJECTS},
        {"GET", "examplebucket", "", "prefix=photos/&delimiter=/&marker=a&max-keys=50", CF_S3_OP_LIST_OBJECTS},
        {"GET", "examplebucket", "", "list-type=2", CF_S3_OP_LIST_OBJECTS_V2},
        {"GET", "examplebucket", "", "list-type=2&prefix=photos&start-after=x&fetch-owner=true",
         CF_S3_OP_LIST_OBJECTS_V2},
        {"GET", "examplebucket", "", "encoding-type=url&list-type=2", CF_S3_OP_LIST_OBJECTS_V2},
        /* Only "2" selects V2; anything else is the original listing. */
        {"GET", "examplebucket", "", "list-type=1", CF_S3_OP_LIST_OBJECTS},
        {"GET", "examplebucket", "", "list-type=", CF_S3_OP_LIST_OBJECTS},
        {"GET", "examplebucket", "", "list-type=22", CF_S3_OP_LIST_OBJECTS},
        {"GET", "examplebucket", "", "location", CF_S3_OP_GET_BUCKET_LOCATION},
        {"GET", "examplebucket", "", "location=", CF_S3_OP_GET_BUCKET_LOCATION},
        {"GET", "examplebucket", "", "location&list-type=2", CF_S3_OP_GET_BUCKET_LOCATION},
        /* POST /bucket is a browser form upload (RESTObjectPOST). */
        {"POST", "examplebucket", "", "", CF_S3_OP_POST_OBJECT},
        /* OPTIONS is a CORS preflight on a bucket or an object, never on the service. */
        {"OPTIONS", "examplebucket", "", "", CF_S3_OP_CORS_PREFLIGHT},
        {"OPTIONS", "examplebucket", "photos/a.jpg", "", CF_S3_OP_CORS_PREFLIGHT},
        {"OPTIONS", "", "", "", CF_S3_OP_METHOD_NOT_ALLOWED},
        /* Parameter names are case-sensitive: "Location" is not the sub-resource. */
        {"GET", "examplebucket", "", "Location", CF_S3_OP_LIST_OBJECTS},
    };
    /* clang-format on */
    CHECK_ROUTES(cases);
}

/* Bucket sub-resources of the S3 API reference, each selecting an operation coffer lacks. */
/* clang-format off */
static const char *const bucket_subresources[] = {
    "acl", "lifecycle", "website", "tagging",
    "encryption", "replication", "logging", "notification", "object-lock", "accelerate",
    "requestPayment", "ownershipControls", "publicAccessBlock", "intelligent-tiering", "inventory",
    "metrics", "analytics", "policyStatus",
};
/* clang-format on */

/* Every method, since e.g. "DELETE /bucket?cors" must not delete the bucket. */
static void test_bucket_subresources_are_not_implemented(void **state)
{
    static const char *const methods[] = {"GET", "PUT", "HEAD", "DELETE", "POST"};
    for (size_t i = 0; i < sizeof bucket_subresources / sizeof *bucket_subresources; i++) {
        for (size_t m = 0; m < sizeof methods / sizeof *methods; m++) {
            char qs[128];
            snprintf(qs, sizeof qs, "%s", bucket_subresources[i]);
            route_case c = {methods[m], "examplebucket", "", qs, CF_S3_OP_UNSUPPORTED};
            check_routes(&c, 1);
            /* With a value, and among other parameters, it still selects the sub-resource. */
            snprintf(qs, sizeof qs, "list-type=2&%s=x", bucket_subresources[i]);
            check_routes(&c, 1);
        }
    }
    /* clang-format off */
    static const route_case cases[] = {
        {"PUT", "examplebucket", "", "versioning", CF_S3_OP_UNSUPPORTED},     /* PutBucketVersioning */
        {"GET", "examplebucket", "", "location&acl", CF_S3_OP_UNSUPPORTED},
    };
    /* clang-format on */
    CHECK_ROUTES(cases);
}

/* The bucket sub-resources coffer serves, and every other method on them, which must never
 * reach the plain bucket operation ("DELETE /bucket?uploads" deleting the bucket). */
static void test_implemented_bucket_subresources(void **state)
{
    /* clang-format off */
    static const route_case cases[] = {
        {"GET", "examplebucket", "", "uploads", CF_S3_OP_LIST_MULTIPART_UPLOADS},
        {"GET", "examplebucket", "", "uploads&prefix=a&delimiter=/", CF_S3_OP_LIST_MULTIPART_UPLOADS},
        {"GET", "examplebucket", "", "versioning", CF_S3_OP_GET_BUCKET_VERSIONING},
        {"GET", "examplebucket", "", "versions&prefix=a", CF_S3_OP_LIST_OBJECT_VERSIONS},
        {"POST", "examplebucket", "", "delete", CF_S3_OP_DELETE_OBJECTS},
        {"GET", "examplebucket", "", "policy", CF_S3_OP_GET_BUCKET_POLICY},
        {"PUT", "examplebucket", "", "policy", CF_S3_OP_PUT_BUCKET_POLICY},
        {"DELETE", "examplebucket", "", "policy", CF_S3_OP_DELETE_BUCKET_POLICY},
        {"POST", "examplebucket", "", "policy", CF_S3_OP_METHOD_NOT_ALLOWED},
        {"GET", "examplebucket", "", "cors", CF_S3_OP_GET_BUCKET_CORS},
        {"PUT", "examplebucket", "", "cors", CF_S3_OP_PUT_BUCKET_CORS},
        {"DELETE", "examplebucket", "", "cors", CF_S3_OP_DELETE_BUCKET_CORS},
        /* "POST /bucket?cors" is neither a form upload nor a CORS operation. */
        {"POST", "examplebucket", "", "cors", CF_S3_OP_METHOD_NOT_ALLOWED},
        {"HEAD", "examplebucket", "", "cors", CF_S3_OP_METHOD_NOT_ALLOWED},
    };
    /* clang-format on */
    CHECK_ROUTES(cases);
    static const char *const names[] = {"uploads", "versioning", "versions", "delete", "location"};
    static const char *const methods[] = {"GET", "PUT", "HEAD", "DELETE", "POST"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        for (size_t m = 0; m < sizeof methods / sizeof *methods; m++) {
            int served = (strcmp(names[i], "delete") == 0) ? strcmp(methods[m], "POST") == 0
                                                           : strcmp(methods[m], "GET") == 0;
            if (served)
                continue;
            /* PutBucketVersioning exists in S3 (not here); the rest are wrong methods. */
            int put_versioning = strcmp(names[i], "versioning") == 0 && strcmp(methods[m], "PUT") == 0;
            route_case c = {methods[m], "examplebucket", "", names[i],
                            put_versioning ? CF_S3_OP_UNSUPPORTED : CF_S3_OP_METHOD_NOT_ALLOWED};
            check_routes(&c, 1);
        }
}

static void test_tagging_routes(void **state)
{
    /* clang-format off */
    static const route_case cases[] = {
        {"GET", "examplebucket", "a", "tagging", CF_S3_OP_GET_OBJECT_TAGGING},
        {"PUT", "examplebucket", "a", "tagging", CF_S3_OP_PUT_OBJECT_TAGGING},
        {"DELETE", "examplebucket", "a", "tagging", CF_S3_OP_DELETE_OBJECT_TAGGING},
        {"POST", "examplebucket", "a", "tagging", CF_S3_OP_METHOD_NOT_ALLOWED},
    };
    /* clang-format on */
    CHECK_ROUTES(cases);
}

static void test_object_level(void **state)
{
    /* clang-format off */
    static const route_case cases[] = {
        {"PUT", "examplebucket", "my-image.jpg", "", CF_S3_OP_PUT_OBJECT},
        {"GET", "examplebucket", "my-image.jpg", "", CF_S3_OP_GET_OBJECT},
        {"HEAD", "examplebucket", "my-image.jpg", "", CF_S3_OP_HEAD_OBJECT},
        {"DELETE", "examplebucket", "my-image.jpg", "", CF_S3_OP_DELETE_OBJECT},
        {"GET", "examplebucket", "photos/2006/February/sample.jpg", "", CF_S3_OP_GET_OBJECT},
        /* Response overrides do not change the operation. */
        {"GET", "examplebucket", "a", "response-content-type=text/plain&response-cache-control=no-cache",
         CF_S3_OP_GET_OBJECT},
        /* Bucket sub-resources mean nothing on an object. */
        {"GET", "examplebucket", "a", "location", CF_S3_OP_GET_OBJECT},
        {"GET", "examplebucket", "a", "list-type=2", CF_S3_OP_GET_OBJECT},
        {"PUT", "examplebucket", "a", "cors", CF_S3_OP_PUT_OBJECT},
        /* A key may look like anything, including a sub-resource name or a trailing slash. */
        {"GET", "examplebucket", "acl", "", CF_S3_OP_GET_OBJECT},
        {"PUT", "examplebucket", "dir/", "", CF_S3_OP_PUT_OBJECT},
        {"POST", "examplebucket", "a", "", CF_S3_OP_METHOD_NOT_ALLOWED},
    };
    /* clang-format on */
    CHECK_ROUTES(cases);
}

static void test_object_subresources_are_not_implemented(void **state)
{
    /* clang-format off */
    static const route_case cases[] = {
        {"GET", "examplebucket", "a", "acl", CF_S3_OP_UNSUPPORTED},
        {"PUT", "examplebucket", "a", "acl", CF_S3_OP_UNSUPPORTED},
        {"GET", "examplebucket", "a", "retention", CF_S3_OP_UNSUPPORTED},
        {"PUT", "examplebucket", "a", "legal-hold", CF_S3_OP_UNSUPPORTED},
        {"GET", "examplebucket", "a", "attributes", CF_S3_OP_UNSUPPORTED},
        {"GET", "examplebucket", "a", "torrent", CF_S3_OP_UNSUPPORTED},
        {"POST", "examplebucket", "a", "restore", CF_S3_OP_UNSUPPORTED},
        {"POST", "examplebucket", "a", "select&select-type=2", CF_S3_OP_UNSUPPORTED},
        /* HEAD and DELETE of a sub-resource are still the sub-resource, not Head/DeleteObject. */
        {"HEAD", "examplebucket", "a", "acl", CF_S3_OP_UNSUPPORTED},
        {"DELETE", "examplebucket", "a", "acl", CF_S3_OP_UNSUPPORTED},
        /* An unimplemented sub-resource wins over the parameters of implemented ones. */
        {"PUT", "examplebucket", "a", "acl&uploadId=u&partNumber=1", CF_S3_OP_UNSUPPORTED},
        {"GET", "examplebucket", "a", "tagging&retention", CF_S3_OP_UNSUPPORTED},
    };
    /* clang-format on */
    CHECK_ROUTES(cases);
}

static void test_object_tagging(void **state)
{
    /* clang-format off */
    static const route_case cases[] = {
        {"GET", "examplebucket", "example-object", "tagging", CF_S3_OP_GET_OBJECT_TAGGING},
        {"PUT", "examplebucket", "example-object", "tagging", CF_S3_OP_PUT_OBJECT_TAGGING},
        {"DELETE", "examplebucket", "example-object", "tagging", CF_S3_OP_DELETE_OBJECT_TAGGING},
        {"GET", "examplebucket", "example-object", "tagging&versionId=null", CF_S3_OP_GET_OBJECT_TAGGING},
        /* Not PutObject or DeleteObject, which would replace or remove the object itself. */
        {"HEAD", "examplebucket", "example-object", "tagging", CF_S3_OP_METHOD_NOT_ALLOWED},
        {"POST", "examplebucket", "example-object", "tagging", CF_S3_OP_METHOD_NOT_ALLOWED},
        /* Bucket tagging is another operation, not implemented. */
        {"GET", "examplebucket", "", "tagging", CF_S3_OP_UNSUPPORTED},
        {"DELETE", "examplebucket", "", "tagging", CF_S3_OP_UNSUPPORTED},
    };
    /* clang-format on */
    CHECK_ROUTES(cases);
}

/* The request lines of the multipart operations in the S3 API reference. */
static void test_multipart(void **state)
{
    /* clang-format off */
    static const route_case cases[] = {
        {"POST", "examplebucket", "example-object", "uploads", CF_S3_OP_CREATE_MULTIPART_UPLOAD},
        {"PUT", "examplebucket", "example-object", "partNumber=1&uploadId=VXBsb2FkIElE", CF_S3_OP_UPLOAD_PART},
        {"PUT", "examplebucket", "example-object", "uploadId=VXBsb2FkIElE&partNumber=10000",
         CF_S3_OP_UPLOAD_PART},
        {"POST", "examplebucket", "example-object", "uploadId=VXBsb2FkIElE",
         CF_S3_OP_COMPLETE_MULTIPART_UPLOAD},
        {"DELETE", "examplebucket", "example-object", "uploadId=VXBsb2FkIElE", CF_S3_OP_ABORT_MULTIPART_UPLOAD},
        {"GET", "examplebucket", "example-object", "uploadId=VXBsb2FkIElE", CF_S3_OP_LIST_PARTS},
        {"GET", "examplebucket", "example-object", "max-parts=2&part-number-marker=1&uploadId=U",
         CF_S3_OP_LIST_PARTS},
        {"GET", "examplebucket", "", "uploads", CF_S3_OP_LIST_MULTIPART_UPLOADS},
        {"GET", "examplebucket", "", "uploads&max-uploads=3&prefix=a&key-marker=k", CF_S3_OP_LIST_MULTIPART_UPLOADS},
        /* A method the sub-resource does not define is refused, never taken as a plain object op. */
        {"PUT", "examplebucket", "example-object", "uploadId=U", CF_S3_OP_METHOD_NOT_ALLOWED},
        {"HEAD", "examplebucket", "example-object", "uploadId=U", CF_S3_OP_METHOD_NOT_ALLOWED},
        {"GET", "examplebucket", "example-object", "uploads", CF_S3_OP_METHOD_NOT_ALLOWED},
        {"PUT", "examplebucket", "example-object", "uploads", CF_S3_OP_METHOD_NOT_ALLOWED},
        {"DELETE", "examplebucket", "example-object", "uploads", CF_S3_OP_METHOD_NOT_ALLOWED},
        {"HEAD", "examplebucket", "example-object", "uploads", CF_S3_OP_METHOD_NOT_ALLOWED},
        {"POST", "examplebucket", "", "uploads", CF_S3_OP_METHOD_NOT_ALLOWED},
        /* GetObject takes partNumber of its own, to read one part of a completed upload. */
        {"GET", "examplebucket", "example-object", "partNumber=2", CF_S3_OP_GET_OBJECT},
        {"HEAD", "examplebucket", "example-object", "partNumber=2", CF_S3_OP_HEAD_OBJECT},
    };
    /* clang-format on */
    CHECK_ROUTES(cases);
}

/* HTTP methods are case-sensitive tokens (RFC 9110 9.1); unknown ones get 405. */
static void test_other_methods(void **state)
{
    static const char *const methods[] = {"PATCH", "TRACE", "CONNECT", "get", "Put", "", "GET "};
    for (size_t m = 0; m < sizeof methods / sizeof *methods; m++) {
        /* clang-format off */
        const route_case cases[] = {
            {methods[m], "", "", "", CF_S3_OP_METHOD_NOT_ALLOWED},
            {methods[m], "examplebucket", "", "", CF_S3_OP_METHOD_NOT_ALLOWED},
            {methods[m], "examplebucket", "", "acl", CF_S3_OP_METHOD_NOT_ALLOWED},
            {methods[m], "examplebucket", "a", "", CF_S3_OP_METHOD_NOT_ALLOWED},
        };
        /* clang-format on */
        CHECK_ROUTES(cases);
    }
}

static void test_op_names(void **state)
{
    static const struct {
        cf_s3_op op;
        const char *name;
    } names[] = {
        {CF_S3_OP_LIST_BUCKETS, "ListBuckets"},
        {CF_S3_OP_CREATE_BUCKET, "CreateBucket"},
        {CF_S3_OP_HEAD_BUCKET, "HeadBucket"},
        {CF_S3_OP_DELETE_BUCKET, "DeleteBucket"},
        {CF_S3_OP_LIST_OBJECTS, "ListObjects"},
        {CF_S3_OP_LIST_OBJECTS_V2, "ListObjectsV2"},
        {CF_S3_OP_GET_BUCKET_LOCATION, "GetBucketLocation"},
        {CF_S3_OP_PUT_OBJECT, "PutObject"},
        {CF_S3_OP_GET_OBJECT, "GetObject"},
        {CF_S3_OP_HEAD_OBJECT, "HeadObject"},
        {CF_S3_OP_DELETE_OBJECT, "DeleteObject"},
        {CF_S3_OP_COPY_OBJECT, "CopyObject"},
        {CF_S3_OP_CREATE_MULTIPART_UPLOAD, "CreateMultipartUpload"},
        {CF_S3_OP_UPLOAD_PART, "UploadPart"},
        {CF_S3_OP_UPLOAD_PART_COPY, "UploadPartCopy"},
        {CF_S3_OP_COMPLETE_MULTIPART_UPLOAD, "CompleteMultipartUpload"},
        {CF_S3_OP_ABORT_MULTIPART_UPLOAD, "AbortMultipartUpload"},
        {CF_S3_OP_LIST_PARTS, "ListParts"},
        {CF_S3_OP_LIST_MULTIPART_UPLOADS, "ListMultipartUploads"},
        {CF_S3_OP_GET_OBJECT_TAGGING, "GetObjectTagging"},
        {CF_S3_OP_PUT_OBJECT_TAGGING, "PutObjectTagging"},
        {CF_S3_OP_DELETE_OBJECT_TAGGING, "DeleteObjectTagging"},
        {CF_S3_OP_GET_BUCKET_VERSIONING, "GetBucketVersioning"},
        {CF_S3_OP_LIST_OBJECT_VERSIONS, "ListObjectVersions"},
        {CF_S3_OP_DELETE_OBJECTS, "DeleteObjects"},
        {CF_S3_OP_GET_BUCKET_POLICY, "GetBucketPolicy"},
        {CF_S3_OP_PUT_BUCKET_POLICY, "PutBucketPolicy"},
        {CF_S3_OP_DELETE_BUCKET_POLICY, "DeleteBucketPolicy"},
        {CF_S3_OP_ADMIN, "Admin"},
        {CF_S3_OP_UNSUPPORTED, "Unsupported"},
        {CF_S3_OP_METHOD_NOT_ALLOWED, "MethodNotAllowed"},
        {CF_S3_OP_UNKNOWN, "Unknown"},
        {(cf_s3_op)-1, "Unknown"},
        {CF_S3_OP_COUNT_, "Unknown"},
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        assert_string_equal(cf_s3_op_name(names[i].op), names[i].name);
}

/* ---- the error table ---- */

/* From the S3 API reference, "List of error codes": code and HTTP status. */
static const struct {
    const char *code;
    int status;
} aws_errors[] = {
    {"AccessDenied", 403},
    {"AccessForbidden", 403}, /* not in the list, but what S3 answers a refused CORS preflight */
    {"BadRequest", 400},      /* the same: a preflight without Origin */
    {"AuthorizationHeaderMalformed", 400},
    {"AuthorizationQueryParametersError", 400},
    {"BadDigest", 400},
    {"BucketAlreadyExists", 409},
    {"BucketAlreadyOwnedByYou", 409},
    {"BucketNotEmpty", 409},
    {"EntityTooLarge", 400},
    {"EntityTooSmall", 400},
    {"IllegalLocationConstraintException", 400},
    {"IncompleteBody", 400},
    {"InternalError", 500},
    {"InvalidAccessKeyId", 403},
    {"InvalidArgument", 400},
    {"InvalidBucketName", 400},
    {"InvalidDigest", 400},
    {"InvalidPart", 400},
    {"InvalidPartNumber", 416},
    {"InvalidPartOrder", 400},
    {"InvalidTag", 400},
    {"InvalidPolicyDocument", 400},
    {"InvalidRange", 416},
    {"InvalidRequest", 400},
    {"KeyTooLongError", 400},
    {"MalformedPOSTRequest", 400},
    {"MalformedPolicy", 400},
    {"MalformedXML", 400},
    {"MaxPostPreDataLengthExceededError", 400},
    {"MetadataTooLarge", 400},
    {"MethodNotAllowed", 405},
    {"MissingContentLength", 411},
    {"MissingSecurityHeader", 400},
    {"NoSuchBucket", 404},
    {"NoSuchBucketPolicy", 404},
    {"NoSuchCORSConfiguration", 404},
    {"NoSuchKey", 404},
    {"NoSuchUpload", 404},
    {"NoSuchVersion", 404},
    {"NotImplemented", 501},
    {"PreconditionFailed", 412},
    {"RequestHeaderSectionTooLarge", 400},
    {"RequestTimeTooSkewed", 403},
    {"RequestTimeout", 400},
    {"ServiceUnavailable", 503},
    {"SignatureDoesNotMatch", 403},
    {"XAmzContentSHA256Mismatch", 400},
};

#define N_AWS_ERRORS (sizeof aws_errors / sizeof *aws_errors)

/* Every entry of the table, and nothing the reference does not list. */
static void test_error_table_matches_aws(void **state)
{
    int seen[N_AWS_ERRORS] = {0};
    assert_int_equal(CF_S3_ERROR_COUNT_ - 1, N_AWS_ERRORS);
    for (int e = 1; e < CF_S3_ERROR_COUNT_; e++) {
        const char *code = cf_s3_error_code((cf_s3_error)e);
        size_t i = 0;
        while (i < N_AWS_ERRORS && strcmp(aws_errors[i].code, code) != 0)
            i++;
        if (i == N_AWS_ERRORS)
            fail_msg("'%s' is not an S3 error code", code);
        if (seen[i]++)
            fail_msg("'%s' is in the table twice", code);
        if (cf_s3_error_status((cf_s3_error)e) != aws_errors[i].status)
            fail_msg("%s: status %d, AWS sends %d", code, cf_s3_error_status((cf_s3_error)e),
                     aws_errors[i].status);
        const char *msg = cf_s3_error_message((cf_s3_error)e);
        assert_non_null(msg);
        assert_true(msg[0] >= 'A' && msg[0] <= 'Z');
        assert_true(strchr(".!", msg[strlen(msg) - 1]) != NULL);
    }
}

/* The enum names and the strings come from one table: spot-check that they line up. */
static void test_error_enum_lines_up(void **state)
{
    assert_string_equal(cf_s3_error_code(CF_S3_NoSuchKey), "NoSuchKey");
    assert_int_equal(cf_s3_error_status(CF_S3_NoSuchKey), 404);
    assert_string_equal(cf_s3_error_message(CF_S3_NoSuchKey), "The specified key does not exist.");
    assert_string_equal(cf_s3_error_code(CF_S3_AccessDenied), "AccessDenied");
    assert_int_equal(cf_s3_error_status(CF_S3_AccessDenied), 403);
    assert_string_equal(cf_s3_error_code(CF_S3_InvalidRange), "InvalidRange");
    assert_int_equal(cf_s3_error_status(CF_S3_InvalidRange), 416);
    assert_string_equal(cf_s3_error_code(CF_S3_XAmzContentSHA256Mismatch), "XAmzContentSHA256Mismatch");
    assert_int_equal(cf_s3_error_status(CF_S3_OK), 200);
}

/* A value outside the enum (a bug elsewhere) must still produce a valid 500, not a crash. */
static void test_error_out_of_range(void **state)
{
    static const int bad[] = {-1, CF_S3_ERROR_COUNT_, CF_S3_ERROR_COUNT_ + 100, 1 << 30};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_string_equal(cf_s3_error_code((cf_s3_error)bad[i]), "InternalError");
        assert_int_equal(cf_s3_error_status((cf_s3_error)bad[i]), 500);
        assert_string_equal(cf_s3_error_message((cf_s3_error)bad[i]),
                            cf_s3_error_message(CF_S3_InternalError));
    }
}

/* ---- the <Error> document ---- */

static int count_children_of(const cf_xml_node *n)
{
    int k = 0;
    for (const cf_xml_node *c = n->child; c; c = c->next)
        k++;
    return k;
}

static cf_xml_node *error_doc(cf_buf *b, cf_s3_error e, const char *message, const char *resource,
                              const char *request_id)
{
    cf_xml_node *root = NULL;
    cf_err err;
    cf_buf_init(b, 64 * 1024);
    assert_int_equal(cf_s3_error_xml(b, e, message, resource, request_id), 0);
    assert_true(strncmp(b->data, CF_XML_DECL, strlen(CF_XML_DECL)) == 0);
    if (cf_xml_parse(b->data, b->len, &root, &err) != 0)
        fail_msg("error document does not parse: %s\n%s", err.msg, b->data);
    assert_string_equal(root->name, "Error");
    return root;
}

/* The layout of the API reference's sample error response. */
static void test_error_xml_layout(void **state)
{
    cf_buf b;
    cf_xml_node *root = error_doc(&b, CF_S3_NoSuchKey, NULL, "/mybucket/myfoto.jpg", "4442587FB7D0A2F9");
    assert_string_equal(b.data, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                "<Error><Code>NoSuchKey</Code>"
                                "<Message>The specified key does not exist.</Message>"
                                "<Resource>/mybucket/myfoto.jpg</Resource>"
                                "<RequestId>4442587FB7D0A2F9</RequestId></Error>");
    cf_xml_free(root);
    cf_buf_cleanup(&b);
}

static void test_error_xml_every_code_parses(void **state)
{
    for (int e = 0; e < CF_S3_ERROR_COUNT_; e++) {
        cf_buf b;
        cf_xml_node *root = error_doc(&b, (cf_s3_error)e, NULL, "/b/k", "RID");
        assert_string_equal(cf_xml_child(root, "Code")->text, cf_s3_error_code((cf_s3_error)e));
        /* Messages such as XAmzContentSHA256Mismatch's quote with ': they must survive. */
        assert_string_equal(cf_xml_child(root, "Message")->text, cf_s3_error_message((cf_s3_error)e));
        assert_string_equal(cf_xml_child(root, "Resource")->text, "/b/k");
        assert_string_equal(cf_xml_child(root, "RequestId")->text, "RID");
        assert_int_equal(count_children_of(root), 4);
        cf_xml_free(root);
        cf_buf_cleanup(&b);
    }
}

/* The resource is the decoded request path: a key may hold any markup character. */
static void test_error_xml_escapes_resource(void **state)
{
    /* clang-format off */
    static const char *const resources[] = {
        "/b/<script>alert(1)</script>",
        "/b/a&b",
        "/b/\"quoted\" and 'single'",
        "/b/]]>",
        "/b/</Resource><Code>AccessDenied</Code>",
        "/b/&amp;",
        "/b/tab\there\r\nnewline",
        "/b/\xe2\x82\xac\xf0\x9f\x98\x80",
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof resources / sizeof *resources; i++) {
        cf_buf b;
        cf_xml_node *root = error_doc(&b, CF_S3_NoSuchKey, NULL, resources[i], "RID");
        assert_string_equal(cf_xml_child(root, "Resource")->text, resources[i]);
        assert_string_equal(cf_xml_child(root, "Code")->text, "NoSuchKey");
        assert_int_equal(count_children_of(root), 4);
        cf_xml_free(root);
        cf_buf_cleanup(&b);
    }
}

static void test_error_xml_message_and_optional_fields(void **state)
{
    cf_buf b;
    cf_xml_node *root =
        error_doc(&b, CF_S3_InvalidArgument, "encoding-type must be 'url' & <not> \"x\"", NULL, NULL);
    assert_string_equal(cf_xml_child(root, "Message")->text, "encoding-type must be 'url' & <not> \"x\"");
    assert_null(cf_xml_child(root, "Resource"));
    assert_null(cf_xml_child(root, "RequestId"));
    assert_int_equal(count_children_of(root), 2);
    cf_xml_free(root);
    cf_buf_cleanup(&b);

    root = error_doc(&b, CF_S3_InternalError, "", "", "");
    assert_string_equal(cf_xml_child(root, "Message")->text, "");
    assert_string_equal(cf_xml_child(root, "Resource")->text, "");
    assert_string_equal(cf_xml_child(root, "RequestId")->text, "");
    cf_xml_free(root);
    cf_buf_cleanup(&b);
}

/* The elements AWS adds to some errors come after Message and Resource, before RequestId, in
 * the order given; a key that XML 1.0 cannot carry is percent-encoded like the resource. */
static void test_error_xml_fields(void **state)
{
    const cf_s3_error_field fields[] = {{"Key", "a<b>\x01"
                                                "c"},
                                        {"Missing", NULL},
                                        {"BucketName", "bkt"}};
    cf_buf b;
    cf_buf_init(&b, 64 * 1024);
    assert_int_equal(cf_s3_error_xml_fields(&b, CF_S3_NoSuchKey, NULL, "/bkt/k", fields, 3, "RID"), 0);
    cf_xml_node *root = NULL;
    cf_err err;
    if (cf_xml_parse(b.data, b.len, &root, &err) != 0)
        fail_msg("error document does not parse: %s\n%s", err.msg, b.data);
    static const char *const order[] = {"Code", "Message", "Resource", "Key", "BucketName", "RequestId"};
    const cf_xml_node *c = root->child;
    for (size_t i = 0; i < sizeof order / sizeof *order; i++, c = c->next) {
        assert_non_null(c);
        assert_string_equal(c->name, order[i]);
    }
    assert_null(c);
    assert_string_equal(cf_xml_child(root, "Key")->text, "a%3Cb%3E%01c");
    assert_string_equal(cf_xml_child(root, "BucketName")->text, "bkt");
    cf_xml_free(root);
    cf_buf_cleanup(&b);
}

/* Appends after what the buffer holds, and fails cleanly when the buffer is full. */
static void test_error_xml_buffer(void **state)
{
    cf_buf b;
    cf_buf_init(&b, 4096);
    assert_int_equal(cf_buf_puts(&b, "prefix"), 0);
    assert_int_equal(cf_s3_error_xml(&b, CF_S3_NoSuchBucket, NULL, "/nb", NULL), 0);
    const char *want = "prefix" CF_XML_DECL "<Error><Code>NoSuchBucket</Code>";
    assert_true(strncmp(b.data, want, strlen(want)) == 0);
    cf_buf_cleanup(&b);

    cf_buf_init(&b, 100);
    char big[200];
    memset(big, 'r', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(cf_s3_error_xml(&b, CF_S3_NoSuchKey, NULL, big, NULL), CF_ETOOBIG);
    assert_true(b.len <= 100);
    cf_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_level),
        cmocka_unit_test(test_bucket_level),
        cmocka_unit_test(test_bucket_subresources_are_not_implemented),
        cmocka_unit_test(test_implemented_bucket_subresources),
        cmocka_unit_test(test_tagging_routes),
        cmocka_unit_test(test_object_level),
        cmocka_unit_test(test_object_subresources_are_not_implemented),
        cmocka_unit_test(test_object_tagging),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_other_methods),
        cmocka_unit_test(test_op_names),
        cmocka_unit_test(test_error_table_matches_aws),
        cmocka_unit_test(test_error_enum_lines_up),
        cmocka_unit_test(test_error_out_of_range),
        cmocka_unit_test(test_error_xml_layout),
        cmocka_unit_test(test_error_xml_every_code_parses),
        cmocka_unit_test(test_error_xml_escapes_resource),
        cmocka_unit_test(test_error_xml_message_and_optional_fields),
        cmocka_unit_test(test_error_xml_fields),
        cmocka_unit_test(test_error_xml_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
