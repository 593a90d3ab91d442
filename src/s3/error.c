/* error.c - lookups into CF_S3_ERROR_MAP and the <Error> document. */
#include "s3/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "s3/request.h"
#include "s3/xml.h"

static const struct {
    const char *code;
    int status;
    const char *message;
} table[CF_S3_ERROR_COUNT_] = {[CF_S3_OK] = {"OK", 200, ""},
#define CF_S3_ERR_ROW_(c, s, m) [CF_S3_##c] = {#c, s, m},
                               CF_S3_ERROR_MAP(CF_S3_ERR_ROW_)
#undef CF_S3_ERR_ROW_
};

static cf_s3_error valid(cf_s3_error e)
{
    return (unsigned)e < CF_S3_ERROR_COUNT_ ? e : CF_S3_InternalError;
}

/* From coffer's codes to S3's: the first row with the code and the subject (or
 * CF_S3_ON_REQUEST, any subject) wins. */
static const struct {
    int code;
    cf_s3_subject on;
    cf_s3_error e;
} code_table[] = {
    {CF_ENOTFOUND, CF_S3_ON_BUCKET, CF_S3_NoSuchBucket},
    {CF_EEXISTS, CF_S3_ON_BUCKET, CF_S3_BucketAlreadyOwnedByYou},
    {CF_ENOTEMPTY, CF_S3_ON_BUCKET, CF_S3_BucketNotEmpty},
    {CF_ENOTFOUND, CF_S3_ON_KEY, CF_S3_NoSuchKey},
    {CF_ENOTFOUND, CF_S3_ON_VERSION, CF_S3_NoSuchVersion},
    {CF_ENOTFOUND, CF_S3_ON_UPLOAD, CF_S3_NoSuchUpload},
    /* The upload went away while it completed: perhaps a racing completion. */
    {CF_ENOTFOUND, CF_S3_ON_UPLOAD_PARTS, CF_S3_NoSuchUpload},
    /* A listed part was uploaded again while the upload completed. */
    {CF_EINVAL, CF_S3_ON_UPLOAD_PARTS, CF_S3_InvalidPart},
    {CF_ENOTFOUND, CF_S3_ON_BUCKET_POLICY, CF_S3_NoSuchBucketPolicy},
    {CF_EINVAL, CF_S3_ON_POLICY_DOC, CF_S3_MalformedPolicy},
    {CF_ENOTFOUND, CF_S3_ON_CORS, CF_S3_NoSuchCORSConfiguration},
    /* A browser's preflight to a bucket without CORS. */
    {CF_ENOTFOUND, CF_S3_ON_CORS_PREFLIGHT, CF_S3_AccessForbidden},
    {CF_EINVAL, CF_S3_ON_CORS_DOC, CF_S3_MalformedXML},
    /* Well-formed, but beyond what S3 accepts: too many rules, an unknown method. */
    {CF_ENOTSUP, CF_S3_ON_CORS_DOC, CF_S3_InvalidRequest},
    {CF_ETOOBIG, CF_S3_ON_CORS_DOC, CF_S3_InvalidRequest},
    {CF_ENOTFOUND, CF_S3_ON_ACCESS_KEY, CF_S3_InvalidAccessKeyId},
    /* Signatures (crypto/sigv4.h says which code means what). A malformed request and an
     * x-amz-* header left unsigned are AccessDenied, as at AWS. */
    {CF_EAUTH, CF_S3_ON_SIGNATURE, CF_S3_SignatureDoesNotMatch},
    {CF_EPRECOND, CF_S3_ON_SIGNATURE, CF_S3_RequestTimeTooSkewed},
    {CF_EDENIED, CF_S3_ON_SIGNATURE, CF_S3_AccessDenied},
    {CF_EINVAL, CF_S3_ON_SIGNATURE, CF_S3_AccessDenied},
    {CF_EAUTH, CF_S3_ON_PRESIGNED_URL, CF_S3_SignatureDoesNotMatch},
    /* Expired, or not valid yet. */
    {CF_EPRECOND, CF_S3_ON_PRESIGNED_URL, CF_S3_AccessDenied},
    {CF_EDENIED, CF_S3_ON_PRESIGNED_URL, CF_S3_AccessDenied},
    {CF_EINVAL, CF_S3_ON_PRESIGNED_URL, CF_S3_AuthorizationQueryParametersError},
    {CF_ENOTFOUND, CF_S3_ON_ADMIN_KEY, CF_S3_InvalidAccessKeyId},
    {CF_EEXISTS, CF_S3_ON_ADMIN_KEY, CF_S3_InvalidArgument},
    {CF_EINVAL, CF_S3_ON_POST_POLICY, CF_S3_InvalidPolicyDocument},
    {CF_EINVAL, CF_S3_ON_POST_FORM, CF_S3_MalformedPOSTRequest},
    /* The object exists and the key may not overwrite it: no condition of the request failed. */
    {CF_EPRECOND, CF_S3_ON_CREATE_ONLY, CF_S3_AccessDenied},
    {CF_ENOTFOUND, CF_S3_ON_CREATE_ONLY, CF_S3_NoSuchBucket},
    /* Whatever the subject. */
    {CF_EPRECOND, CF_S3_ON_REQUEST, CF_S3_PreconditionFailed},
    {CF_ENOSPACE, CF_S3_ON_REQUEST, CF_S3_ServiceUnavailable},
};

cf_s3_error cf_s3_error_for(int code, cf_s3_subject on)
{
    if (!code)
        return CF_S3_OK;
    for (size_t i = 0; i < sizeof code_table / sizeof code_table[0]; i++)
        if (code_table[i].code == code && (code_table[i].on == on || code_table[i].on == CF_S3_ON_REQUEST))
            return code_table[i].e;
    return CF_S3_InternalError;
}

cf_s3_error cf_s3_error_of(const cf_err *err, cf_s3_subject on)
{
    if (err->detail > CF_S3_OK && err->detail < CF_S3_ERROR_COUNT_)
        return (cf_s3_error)err->detail;
    return cf_s3_error_for(err->code, on);
}

int cf_s3_err_set(cf_err *err, int code, cf_s3_error e, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->detail = (int)e;
    }
    return code;
}

int cf_s3_refuse(cf_err *err, cf_s3_error e, const char *message)
{
    int code;
    switch (cf_s3_error_status(e)) {
    case 403: code = CF_EDENIED; break;
    case 404: code = CF_ENOTFOUND; break;
    case 409: code = CF_EEXISTS; break;
    case 412: code = CF_EPRECOND; break;
    case 416: code = CF_ERANGE; break;
    case 501: code = CF_ENOTSUP; break;
    case 503: code = CF_EAGAIN; break;
    default: code = cf_s3_error_status(e) >= 500 ? CF_EINTERNAL : CF_EINVAL;
    }
    return cf_s3_err_set(err, code, e, "%s", message ? message : cf_s3_error_message(e));
}

const char *cf_s3_error_code(cf_s3_error e)
{
    return table[valid(e)].code;
}
int cf_s3_error_status(cf_s3_error e)
{
    return table[valid(e)].status;
}
const char *cf_s3_error_message(cf_s3_error e)
{
    return table[valid(e)].message;
}

/* The length of the XML 1.0 character at s (n > 0 bytes left), 0 when there is none there: a
 * control, invalid UTF-8, U+FFFE or U+FFFF, which no parser accepts. */
static size_t xml_char_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return c >= 0x20 || c == '\t' || c == '\n' || c == '\r' ? 1 : 0;
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (len > n || !cf_s3_utf8_valid(s, len))
        return 0;
    if (len == 3 && c == 0xEF && s[1] == 0xBF && (s[2] == 0xBE || s[2] == 0xBF))
        return 0;
    return len;
}

static int xml_text_ok(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t n = strlen(text), len; n; s += len, n -= len)
        if (!(len = xml_char_len(s, n)))
            return 0;
    return 1;
}

/* <name>text</name>, text percent-encoded when it holds bytes XML 1.0 cannot carry (controls,
 * invalid UTF-8: a key or path may), so that the error document always parses and the value can
 * still be told apart from others. */
static int safe_elem(cf_buf *out, const char *name, const char *text)
{
    if (xml_text_ok(text))
        return cf_xml_elem(out, name, text);
    cf_buf enc;
    cf_buf_init(&enc, 3 * strlen(text) + 1);
    int rc = cf_s3_url_encode_key(&enc, text, strlen(text));
    if (!rc)
        rc = cf_xml_elem(out, name, enc.data ? enc.data : "");
    cf_buf_cleanup(&enc);
    return rc;
}

/* <Message>: a sentence for people, which may quote what the request sent (a header, a key, a
 * parameter). Each byte XML cannot carry becomes U+FFFD, so that the document parses and the
 * sentence stays readable. */
static int message_elem(cf_buf *out, const char *text)
{
    if (xml_text_ok(text))
        return cf_xml_elem(out, "Message", text);
    cf_buf clean;
    cf_buf_init(&clean, 3 * strlen(text) + 1);
    const unsigned char *s = (const unsigned char *)text;
    int rc = 0;
    for (size_t n = strlen(text), len; !rc && n; s += len, n -= len) {
        len = xml_char_len(s, n);
        rc = len ? cf_buf_append(&clean, (const char *)s, len) : cf_buf_puts(&clean, "\xEF\xBF\xBD");
        len = len ? len : 1;
    }
    if (!rc)
        rc = cf_xml_elem(out, "Message", clean.data ? clean.data : "");
    cf_buf_cleanup(&clean);
    return rc;
}

int cf_s3_error_xml_fields(cf_buf *out, cf_s3_error e, const char *message, const char *resource,
                           const cf_s3_error_field *fields, size_t nfields, const char *request_id)
{
    int rc = cf_buf_puts(out, CF_XML_DECL "<Error>");
    if (!rc)
        rc = cf_xml_elem(out, "Code", cf_s3_error_code(e));
    if (!rc)
        rc = message_elem(out, message ? message : cf_s3_error_message(e));
    if (!rc && resource)
        rc = safe_elem(out, "Resource", resource);
    for (size_t i = 0; !rc && i < nfields; i++)
        if (fields[i].value)
            rc = safe_elem(out, fields[i].name, fields[i].value);
    if (!rc && request_id)
        rc = cf_xml_elem(out, "RequestId", request_id);
    if (!rc)
        rc = cf_buf_puts(out, "</Error>");
    return rc;
}

int cf_s3_error_xml(cf_buf *out, cf_s3_error e, const char *message, const char *resource,
                    const char *request_id)
{
    return cf_s3_error_xml_fields(out, e, message, resource, NULL, 0, request_id);
}
