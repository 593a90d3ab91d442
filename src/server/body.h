/* body.h - a request body on its way in (body.c: see its comment). */
#ifndef CF_SERVER_BODY_H
#define CF_SERVER_BODY_H

#include "server/request.h"
#include "server/header_list.h"

/* Before any body byte: the aws-chunked decoder and the x-amz-checksum-* to verify. This, the
 * *_begin functions, cf_body_complete and cf_body_finish return 0, or a negative CF_E code with
 * the S3 error in refusal's detail (cf_s3_refuse). */
int cf_body_prepare(cf_request *r, cf_err *refusal);
/* Checks Content-Length and Content-MD5 syntax before an object body streams in. */
int cf_body_begin(cf_request *r, cf_err *refusal);
/* Starts the store writer the body streams into. */
int cf_body_open_writer(cf_request *r, cf_err *refusal);
void cf_body_take(cf_request *r, const char *data, size_t n);
/* After the last byte: chunk signatures, signed SHA-256, length, x-amz-checksum-*. */
int cf_body_complete(cf_request *r, cf_err *refusal);
/* For an object body: data durable, Content-MD5 matches. */
int cf_body_finish(cf_request *r, cf_err *refusal);
/* Adds the verified x-amz-checksum-* (if any) to the headers stored with the object. */
int cf_body_checksum_header(const cf_request *r, cf_header_list *h);
void cf_body_cleanup(cf_request *r);
/* 200 for a stored object or part: its ETag and verified checksum; cleans up info. */
int cf_respond_written(cf_request *r, cf_object_info *info);

#endif
