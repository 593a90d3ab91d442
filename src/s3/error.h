/*
 * error.h - the S3 error table: each S3 error code once, with the HTTP status AWS sends and
 * AWS's default message. Generates the enum, the lookups and the <Error> XML body.
 *
 * And the one table from coffer's error convention (core/err.h) to S3 errors. A function that
 * produces an S3 error returns a negative CF_E code like any other and names the S3 error in
 * its cf_err's `detail` (cf_s3_err_set). A function that knows nothing of S3 (the store) leaves
 * detail 0; then the code and what the request looked up (cf_s3_subject) decide, in
 * cf_s3_error_for's table: CF_ENOTFOUND is NoSuchBucket for a bucket, NoSuchKey for a key,
 * NoSuchUpload for an upload id. Handlers answer with cf_s3_error_of(&err, subject), never by
 * comparing codes themselves.
 */
#ifndef CF_S3_ERROR_H
#define CF_S3_ERROR_H

#include "core/buf.h"
#include "core/err.h"

#define CF_S3_ERROR_MAP(XX)                                                                                  \
    XX(AccessDenied, 403, "Access Denied.")                                                                  \
    XX(AccessForbidden, 403, "CORSResponse: This CORS request is not allowed.")                              \
    XX(AuthorizationHeaderMalformed, 400, "The authorization header you provided is invalid.")               \
    XX(AuthorizationQueryParametersError, 400,                                                               \
       "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "              \
       "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")                    \
    XX(BadRequest, 400, "Bad Request.")                                                                      \
    XX(BadDigest, 400, "The Content-MD5 or checksum you specified did not match what we received.")          \
    XX(BucketAlreadyExists, 409, "The requested bucket name is not available.")                              \
    XX(BucketAlreadyOwnedByYou, 409,                                                                         \
       "Your previous request to create the named bucket succeeded and you already own it.")                 \
    XX(BucketNotEmpty, 409, "The bucket you tried to delete is not empty.")                                  \
    XX(EntityTooLarge, 400, "Your proposed upload exceeds the maximum allowed object size.")                 \
    XX(EntityTooSmall, 400, "Your proposed upload is smaller than the minimum allowed object size.")         \
    XX(IllegalLocationConstraintException, 400,                                                              \
       "The location constraint you specified is not the region of this endpoint.")                          \
    XX(IncompleteBody, 400,                                                                                  \
       "You did not provide the number of bytes specified by the Content-Length HTTP header.")               \
    XX(InternalError, 500, "We encountered an internal error. Please try again.")                            \
    XX(InvalidAccessKeyId, 403, "The AWS access key ID you provided does not exist in our records.")         \
    XX(InvalidArgument, 400, "Invalid Argument.")                                                            \
    XX(InvalidBucketName, 400, "The specified bucket is not valid.")                                         \
    XX(InvalidDigest, 400, "The Content-MD5 you specified is not valid.")                                    \
    XX(InvalidPart, 400,                                                                                     \
       "One or more of the specified parts could not be found. The part might not have been uploaded, or "   \
       "the specified entity tag might not have matched the part's entity tag.")                             \
    XX(InvalidPartNumber, 416, "The requested partnumber is not satisfiable.")                               \
    XX(InvalidPartOrder, 400,                                                                                \
       "The list of parts was not in ascending order. The parts list must be specified in order by part "    \
       "number.")                                                                                            \
    XX(InvalidTag, 400, "The TagSet you provided is not valid.")                                             \
    XX(InvalidPolicyDocument, 400,                                                                           \
       "The content of the form does not meet the conditions specified in the policy document.")             \
    XX(InvalidRange, 416, "The requested range is not satisfiable.")                                         \
    XX(InvalidRequest, 400, "Invalid Request.")                                                              \
    XX(KeyTooLongError, 400, "Your key is too long.")                                                        \
    XX(MalformedXML, 400,                                                                                    \
       "The XML you provided was not well-formed or did not validate against our published schema.")         \
    XX(MalformedPOSTRequest, 400, "The body of your POST request is not well-formed multipart/form-data.")   \
    XX(MalformedPolicy, 400, "Policies must be valid JSON and the first byte must be '{'.")                  \
    XX(MaxPostPreDataLengthExceededError, 400,                                                               \
       "Your POST request fields preceding the upload file were too large.")                                 \
    XX(MetadataTooLarge, 400, "Your metadata headers exceed the maximum allowed metadata size.")             \
    XX(MethodNotAllowed, 405, "The specified method is not allowed against this resource.")                  \
    XX(MissingContentLength, 411, "You must provide the Content-Length HTTP header.")                        \
    XX(MissingSecurityHeader, 400, "Your request is missing a required header.")                             \
    XX(NoSuchBucket, 404, "The specified bucket does not exist.")                                            \
    XX(NoSuchBucketPolicy, 404, "The bucket policy does not exist.")                                         \
    XX(NoSuchCORSConfiguration, 404, "The CORS configuration does not exist.")                               \
    XX(NoSuchKey, 404, "The specified key does not exist.")                                                  \
    XX(NoSuchVersion, 404, "The specified version does not exist.")                                          \
    XX(NoSuchUpload, 404,                                                                                    \
       "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart "    \
       "upload might have been aborted or completed.")                                                       \
    XX(NotImplemented, 501, "A header you provided implies functionality that is not implemented.")          \
    XX(PreconditionFailed, 412, "At least one of the preconditions you specified did not hold.")             \
    XX(RequestHeaderSectionTooLarge, 400, "Your request header section exceeds the maximum allowed size.")   \
    XX(RequestTimeTooSkewed, 403,                                                                            \
       "The difference between the request time and the server's time is too large.")                        \
    XX(RequestTimeout, 400,                                                                                  \
       "Your socket connection to the server was not read from or written to within the timeout period.")    \
    XX(ServiceUnavailable, 503, "Reduce your request rate.")                                                 \
    XX(SignatureDoesNotMatch, 403,                                                                           \
       "The request signature we calculated does not match the signature you provided. Check your key and "  \
       "signing method.")                                                                                    \
    XX(XAmzContentSHA256Mismatch, 400,                                                                       \
       "The provided 'x-amz-content-sha256' header does not match what was computed.")

typedef enum cf_s3_error {
    CF_S3_OK = 0,
#define CF_S3_ERR_ENUM_(code, status, msg) CF_S3_##code,
    CF_S3_ERROR_MAP(CF_S3_ERR_ENUM_)
#undef CF_S3_ERR_ENUM_
        CF_S3_ERROR_COUNT_
} cf_s3_error;

/* What the failed call looked up or acted on: it decides among the S3 errors that one CF_E
 * code can become. */
typedef enum cf_s3_subject {
    CF_S3_ON_REQUEST = 0,    /* nothing in particular: the code alone decides */
    CF_S3_ON_BUCKET,         /* the bucket (create, delete, exists; a write into it) */
    CF_S3_ON_KEY,            /* an object by key, its bucket known to exist */
    CF_S3_ON_VERSION,        /* an object by ?versionId */
    CF_S3_ON_UPLOAD,         /* a multipart upload by ?uploadId */
    CF_S3_ON_UPLOAD_PARTS,   /* completing an upload with the parts its request lists */
    CF_S3_ON_BUCKET_POLICY,  /* the bucket's stored policy */
    CF_S3_ON_POLICY_DOC,     /* a bucket policy document sent to be stored */
    CF_S3_ON_CORS,           /* the bucket's stored CORS configuration */
    CF_S3_ON_CORS_DOC,       /* a CORS configuration sent to be stored */
    CF_S3_ON_CORS_PREFLIGHT, /* the stored CORS configuration, for an OPTIONS request */
    CF_S3_ON_ACCESS_KEY,     /* the access key that signed the request */
    CF_S3_ON_SIGNATURE,      /* a request's Authorization header (cf_sigv4_verify's codes) */
    CF_S3_ON_PRESIGNED_URL,  /* a presigned URL's query (cf_sigv4_verify_query's codes) */
    CF_S3_ON_ADMIN_KEY,      /* an access key added or removed through the admin API */
    CF_S3_ON_POST_POLICY,    /* a browser form's policy document */
    CF_S3_ON_POST_FORM,      /* a browser form's multipart/form-data body */
    CF_S3_ON_CREATE_ONLY,    /* a write by a key that may only create objects (access.c) */
} cf_s3_subject;

/* The S3 error for a code (0: CF_S3_OK) and a subject: the single table. A code the table does
 * not name for the subject is InternalError: the server failed, not the request. */
cf_s3_error cf_s3_error_for(int code, cf_s3_subject on);
/* err->detail when a function set one (cf_s3_err_set), else cf_s3_error_for(err->code, on). */
cf_s3_error cf_s3_error_of(const cf_err *err, cf_s3_subject on);
/* cf_err_set that also names the S3 error to answer with; returns code (negative). */
int cf_s3_err_set(cf_err *err, int code, cf_s3_error e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* For a function whose verdict is an S3 error: fills err with e and message (NULL: AWS's own)
 * and returns the CF_E code of e's HTTP status (400 CF_EINVAL, 403 CF_EDENIED, 404 CF_ENOTFOUND,
 * 409 CF_EEXISTS, 412 CF_EPRECOND, 416 CF_ERANGE, 501 CF_ENOTSUP, 503 CF_EAGAIN, other 5xx
 * CF_EINTERNAL). */
int cf_s3_refuse(cf_err *err, cf_s3_error e, const char *message);

const char *cf_s3_error_code(cf_s3_error e);    /* "NoSuchKey" */
int cf_s3_error_status(cf_s3_error e);          /* 404 */
const char *cf_s3_error_message(cf_s3_error e); /* AWS's default message */

/* Appends the XML error document (with the <?xml?> declaration); message NULL means the default;
 * resource and request_id may be NULL. Text is XML-escaped. */
int cf_s3_error_xml(cf_buf *out, cf_s3_error e, const char *message, const char *resource,
                    const char *request_id);

/* An element AWS adds to some errors' documents: <Key>, <BucketName>, <Condition>,
 * <RangeRequested>, <ArgumentName>... (SDKs expose them as fields of the error). */
typedef struct cf_s3_error_field {
    const char *name;
    const char *value;
} cf_s3_error_field;

/* cf_s3_error_xml with nfields extra elements after Message and Resource, in order; a field
 * with a NULL value is left out. */
int cf_s3_error_xml_fields(cf_buf *out, cf_s3_error e, const char *message, const char *resource,
                           const cf_s3_error_field *fields, size_t nfields, const char *request_id);

#endif
