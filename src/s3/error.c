/* error.c - lookups into CF_S3_ERROR_MAP and the <Error> document. */
#include "s3/error.h"

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

/* <name>text</name>, text percent-encoded when it holds bytes XML 1.0 cannot carry (controls,
 * invalid UTF-8: a key or path may), so that the error document always parses. */
static int safe_elem(cf_buf *out, const char *name, const char *text)
{
    int plain = cf_s3_utf8_valid((const unsigned char *)text, strlen(text));
    for (const unsigned char *c = (const unsigned char *)text; plain && *c; c++)
        plain = *c >= 0x20 || *c == '\t' || *c == '\n' || *c == '\r';
    if (plain)
        return cf_xml_elem(out, name, text);
    cf_buf enc;
    cf_buf_init(&enc, 16384);
    int rc = cf_s3_url_encode_key(&enc, text, strlen(text));
    if (!rc)
        rc = cf_xml_elem(out, name, enc.data ? enc.data : "");
    cf_buf_cleanup(&enc);
    return rc;
}

int cf_s3_error_xml_fields(cf_buf *out, cf_s3_error e, const char *message, const char *resource,
                           const cf_s3_error_field *fields, size_t nfields, const char *request_id)
{
    int rc = cf_buf_puts(out, CF_XML_DECL "<Error>");
    if (!rc)
        rc = cf_xml_elem(out, "Code", cf_s3_error_code(e));
    if (!rc)
        rc = cf_xml_elem(out, "Message", message ? message : cf_s3_error_message(e));
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
