/*
 * error.h - the S3 error table: each S3 error code once, with the HTTP status AWS sends and
 * AWS's default message. Generates the enum, the lookups and the <Error> XML body.
 */
#ifndef CF_S3_ERROR_H
#define CF_S3_ERROR_H

#include "core/buf.h"

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
