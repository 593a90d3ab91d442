/* error.c - lookups into CF_S3_ERROR_MAP and the <Error> document. */
#include "s3/error.h"

#include <string.h>

#include "s3/request.h"
#include "s3/xml.h"

static const struct {
    const char *code;
    int status;
    const char *message;
} table[CF_S3_ERROR_COUNT_] = {
    [CF_S3_OK] = {"OK", 200, ""},
#define CF_S3_ERR_ROW_(c, s, m) [CF_S3_##c] = {#c, s, m},
    CF_S3_ERROR_MAP(CF_S3_ERR_ROW_)
#undef CF_S3_ERR_ROW_
};

static cf_s3_error valid(cf_s3_error e)
{
    return (unsigned)e < CF_S3_ERROR_COUNT_ ? e : CF_S3_InternalError;
}

const char *cf_s3_error_code(cf_s3_error e) { return table[valid(e)].code; }
int cf_s3_error_status(cf_s3_error e) { return table[valid(e)].status; }
const char *cf_s3_error_message(cf_s3_error e) { return table[valid(e)].message; }

int cf_s3_error_xml(cf_buf *out, cf_s3_error e, const char *message, const char *resource,
                    const char *request_id)
{
    return cf_s3_error_xml_with(out, e, message, NULL, NULL, resource, request_id);
}

int cf_s3_error_xml_with(cf_buf *out, cf_s3_error e, const char *message, const char *elem,
                         const char *value, const char *resource, const char *request_id)
{
    int rc = cf_buf_puts(out, CF_XML_DECL "<Error>");
    if (!rc) rc = cf_xml_elem(out, "Code", cf_s3_error_code(e));
    if (!rc) rc = cf_xml_elem(out, "Message", message ? message : cf_s3_error_message(e));
    if (!rc && elem) rc = cf_xml_elem(out, elem, value ? value : "");
    if (!rc && resource) {
        /* A path may hold bytes XML 1.0 cannot carry (controls, invalid UTF-8): such a
         * resource is given percent-encoded, so that the error document always parses. */
        int plain = cf_s3_utf8_valid((const unsigned char *)resource, strlen(resource));
        for (const unsigned char *c = (const unsigned char *)resource; plain && *c; c++)
            plain = *c >= 0x20 || *c == '\t' || *c == '\n' || *c == '\r';
        if (plain) {
            rc = cf_xml_elem(out, "Resource", resource);
        } else {
            cf_buf enc;
            cf_buf_init(&enc, 16384);
            rc = cf_s3_url_encode_key(&enc, resource, strlen(resource));
            if (!rc) rc = cf_xml_elem(out, "Resource", enc.data ? enc.data : "");
            cf_buf_cleanup(&enc);
        }
    }
    if (!rc && request_id) rc = cf_xml_elem(out, "RequestId", request_id);
    if (!rc) rc = cf_buf_puts(out, "</Error>");
    return rc;
}
