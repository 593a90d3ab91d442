/* response.h - S3 responses: the common headers, error documents and their elements (response.c). */
#ifndef CF_SERVER_RESPONSE_H
#define CF_SERVER_RESPONSE_H

#include "server/request.h"

int cf_respond_error(cf_request *r, cf_s3_error e, const char *message);
/* failure.c: answers a failed call (err, about `on`) with the S3 error of the one table, or the
 * one err's detail names. Its message is err->msg when show_message, else AWS's default; but when
 * the server failed (5xx from the table) always the default, and err->msg goes to the log. */
int cf_respond_failure(cf_request *r, const cf_err *err, cf_s3_subject on, int show_message);
/* The error with one more element after Message (NULL: none), and the connection closed after
 * it: for a request whose end cannot be found, so that nothing after it is read as a request. */
int cf_respond_error_closing(cf_request *r, cf_s3_error e, const char *message, const char *elem,
                             const char *value);
/* Records an element for error e, which the request is about to report (replacing any recorded
 * for another error); a value too large for the document is left out. */
void cf_error_detail(cf_request *r, cf_s3_error e, const char *name, const char *value);
void cf_error_detail_u64(cf_request *r, cf_s3_error e, const char *name, uint64_t value);
/* MetadataTooLarge for size bytes of x-amz-meta-* (Size, MaxSizeAllowed). */
int cf_respond_metadata_too_large(cf_request *r, size_t size);
/* InvalidArgument naming the parameter at fault (ArgumentName, ArgumentValue), as AWS. */
int cf_respond_invalid_argument(cf_request *r, const char *message, const char *name, const char *value);
/* The error with the extra elements given instead of those cf_respond_error derives; header,
 * when not NULL, is added to the response with value (416's Content-Range). */
int cf_respond_error_fields(cf_request *r, cf_s3_error e, const char *message,
                            const cf_s3_error_field *fields, size_t nfields, const char *header,
                            const char *value);
int cf_respond_xml(cf_request *r, int status, cf_buf *body);
int cf_respond_empty(cf_request *r, int status);
/* Queues resp with the common headers (request id, server); destroys resp. */
int cf_respond(cf_request *r, int status, cf_http_response *resp);

#endif
