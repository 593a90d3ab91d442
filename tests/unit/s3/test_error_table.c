/*
 * test_error_table.c - the one table from coffer's error codes to S3 errors: each code and
 * subject gives the error (HTTP status and Code) that handlers answered with when they mapped
 * codes by hand, and a detail set by an S3-aware function wins over the table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "s3/error.h"

typedef struct row {
    int code;
    cf_s3_subject on;
    const char *s3code;
    int status;
} row;

static const row expected[] = {
    {0, CF_S3_ON_BUCKET, "OK", 200},
    {CF_ENOTFOUND, CF_S3_ON_BUCKET, "NoSuchBucket", 404},
    {CF_EEXISTS, CF_S3_ON_BUCKET, "BucketAlreadyOwnedByYou", 409},
    {CF_ENOTEMPTY, CF_S3_ON_BUCKET, "BucketNotEmpty", 409},
    {CF_ENOTFOUND, CF_S3_ON_KEY, "NoSuchKey", 404},
    {CF_ENOTFOUND, CF_S3_ON_VERSION, "NoSuchVersion", 404},
    {CF_ENOTFOUND, CF_S3_ON_UPLOAD, "NoSuchUpload", 404},
    {CF_ENOTFOUND, CF_S3_ON_UPLOAD_PARTS, "NoSuchUpload", 404},
    {CF_EINVAL, CF_S3_ON_UPLOAD_PARTS, "InvalidPart", 400},
    {CF_ENOTFOUND, CF_S3_ON_BUCKET_POLICY, "NoSuchBucketPolicy", 404},
    {CF_EINVAL, CF_S3_ON_POLICY_DOC, "MalformedPolicy", 400},
    {CF_ENOTFOUND, CF_S3_ON_CORS, "NoSuchCORSConfiguration", 404},
    {CF_EINVAL, CF_S3_ON_CORS_DOC, "MalformedXML", 400},
    {CF_ENOTSUP, CF_S3_ON_CORS_DOC, "InvalidRequest", 400},
    {CF_ETOOBIG, CF_S3_ON_CORS_DOC, "InvalidRequest", 400},
    {CF_ENOTFOUND, CF_S3_ON_CORS_PREFLIGHT, "AccessForbidden", 403},
    {CF_ENOTFOUND, CF_S3_ON_ACCESS_KEY, "InvalidAccessKeyId", 403},
    {CF_EAUTH, CF_S3_ON_SIGNATURE, "SignatureDoesNotMatch", 403},
    {CF_EPRECOND, CF_S3_ON_SIGNATURE, "RequestTimeTooSkewed", 403},
    {CF_EDENIED, CF_S3_ON_SIGNATURE, "AccessDenied", 403},
    {CF_EINVAL, CF_S3_ON_SIGNATURE, "AccessDenied", 403},
    {CF_ENOMEM, CF_S3_ON_SIGNATURE, "InternalError", 500},
    {CF_EAUTH, CF_S3_ON_PRESIGNED_URL, "SignatureDoesNotMatch", 403},
    {CF_EPRECOND, CF_S3_ON_PRESIGNED_URL, "AccessDenied", 403},
    {CF_EDENIED, CF_S3_ON_PRESIGNED_URL, "AccessDenied", 403},
    {CF_EINVAL, CF_S3_ON_PRESIGNED_URL, "AuthorizationQueryParametersError", 400},
    {CF_ENOMEM, CF_S3_ON_PRESIGNED_URL, "InternalError", 500},
    {CF_ENOTFOUND, CF_S3_ON_ADMIN_KEY, "InvalidAccessKeyId", 403},
    {CF_EEXISTS, CF_S3_ON_ADMIN_KEY, "InvalidArgument", 400},
    {CF_EINVAL, CF_S3_ON_POST_POLICY, "InvalidPolicyDocument", 400},
    {CF_EINVAL, CF_S3_ON_POST_FORM, "MalformedPOSTRequest", 400},
    {CF_EPRECOND, CF_S3_ON_CREATE_ONLY, "AccessDenied", 403},
    {CF_ENOTFOUND, CF_S3_ON_CREATE_ONLY, "NoSuchBucket", 404},
    /* Whatever the subject. */
    {CF_EPRECOND, CF_S3_ON_KEY, "PreconditionFailed", 412},
    {CF_ENOSPACE, CF_S3_ON_UPLOAD, "ServiceUnavailable", 503},
    {CF_ENOSPACE, CF_S3_ON_REQUEST, "ServiceUnavailable", 503},
};

static void test_every_row(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        cf_s3_error e = cf_s3_error_for(expected[i].code, expected[i].on);
        assert_string_equal(cf_s3_error_code(e), expected[i].s3code);
        assert_int_equal(cf_s3_error_status(e), expected[i].status);
    }
}

/* The server failed, not the request: never a 4xx that would tell a client to change it. */
static void test_unlisted_codes_are_internal_errors(void **state)
{
    (void)state;
    static const int codes[] = {CF_EIO, CF_ENOMEM, CF_ECORRUPT, CF_EINTERNAL, CF_EAGAIN, -1, 12345};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        for (int on = CF_S3_ON_REQUEST; on <= CF_S3_ON_CREATE_ONLY; on++)
            assert_int_equal(cf_s3_error_for(codes[i], (cf_s3_subject)on), CF_S3_InternalError);
    /* A code that means something for one subject only is not guessed for another. */
    assert_int_equal(cf_s3_error_for(CF_ENOTFOUND, CF_S3_ON_REQUEST), CF_S3_InternalError);
    assert_int_equal(cf_s3_error_for(CF_EEXISTS, CF_S3_ON_KEY), CF_S3_InternalError);
    assert_int_equal(cf_s3_error_for(CF_EINVAL, CF_S3_ON_BUCKET), CF_S3_InternalError);
}

static void test_detail_wins_over_the_table(void **state)
{
    (void)state;
    cf_err err;
    int rc = cf_s3_err_set(&err, CF_EAUTH, CF_S3_SignatureDoesNotMatch, "signature of '%s' differs", "k");
    assert_int_equal(rc, CF_EAUTH);
    assert_int_equal(err.code, CF_EAUTH);
    assert_string_equal(err.msg, "signature of 'k' differs");
    assert_int_equal(cf_s3_error_of(&err, CF_S3_ON_REQUEST), CF_S3_SignatureDoesNotMatch);
    /* The same code without a detail: the table, with what was looked up. */
    cf_err_set(&err, CF_ENOTFOUND, "bucket 'b' does not exist");
    assert_int_equal(err.detail, 0);
    assert_int_equal(cf_s3_error_of(&err, CF_S3_ON_BUCKET), CF_S3_NoSuchBucket);
    assert_int_equal(cf_s3_error_of(&err, CF_S3_ON_KEY), CF_S3_NoSuchKey);
    /* A detail that names no S3 error is ignored, not trusted. */
    err.detail = 100000;
    assert_int_equal(cf_s3_error_of(&err, CF_S3_ON_KEY), CF_S3_NoSuchKey);
    assert_int_equal(cf_s3_err_set(NULL, CF_EDENIED, CF_S3_AccessDenied, "x"), CF_EDENIED);
}

/* cf_err_set and cf_err_sys start a new failure: a detail left from an earlier one must not
 * turn it into that earlier S3 error. */
static void test_a_new_failure_clears_the_detail(void **state)
{
    (void)state;
    cf_err err;
    cf_s3_err_set(&err, CF_EAUTH, CF_S3_SignatureDoesNotMatch, "bad signature");
    cf_err_sys(&err, CF_EIO, 5, "cannot read '%s'", "f");
    assert_int_equal(err.detail, 0);
    assert_int_equal(cf_s3_error_of(&err, CF_S3_ON_REQUEST), CF_S3_InternalError);
    cf_s3_err_set(&err, CF_EAUTH, CF_S3_SignatureDoesNotMatch, "bad signature");
    cf_err_clear(&err);
    assert_int_equal(err.detail, 0);
    assert_int_equal(cf_s3_error_of(&err, CF_S3_ON_REQUEST), CF_S3_OK);
}

/* A verdict that is an S3 error becomes the code of its status, the error in the detail, and
 * AWS's message when none is given: answered with it, the bytes are what a handler sent before. */
static void test_refuse_derives_the_code_from_the_status(void **state)
{
    (void)state;
    static const struct {
        cf_s3_error e;
        int code;
    } cases[] = {
        {CF_S3_InvalidArgument, CF_EINVAL},    {CF_S3_MissingContentLength, CF_EINVAL},
        {CF_S3_AccessDenied, CF_EDENIED},      {CF_S3_NoSuchUpload, CF_ENOTFOUND},
        {CF_S3_BucketNotEmpty, CF_EEXISTS},    {CF_S3_PreconditionFailed, CF_EPRECOND},
        {CF_S3_InvalidRange, CF_ERANGE},       {CF_S3_NotImplemented, CF_ENOTSUP},
        {CF_S3_ServiceUnavailable, CF_EAGAIN}, {CF_S3_InternalError, CF_EINTERNAL},
        {CF_S3_EntityTooLarge, CF_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cf_err err;
        assert_int_equal(cf_s3_refuse(&err, cases[i].e, NULL), cases[i].code);
        assert_int_equal(err.code, cases[i].code);
        assert_int_equal(cf_s3_error_of(&err, CF_S3_ON_KEY), cases[i].e);
        assert_string_equal(err.msg, cf_s3_error_message(cases[i].e));
    }
    cf_err err;
    cf_s3_refuse(&err, CF_S3_InvalidArgument, "Content-Length is not a number");
    assert_string_equal(err.msg, "Content-Length is not a number");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row),
        cmocka_unit_test(test_unlisted_codes_are_internal_errors),
        cmocka_unit_test(test_detail_wins_over_the_table),
        cmocka_unit_test(test_a_new_failure_clears_the_detail),
        cmocka_unit_test(test_refuse_derives_the_code_from_the_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
