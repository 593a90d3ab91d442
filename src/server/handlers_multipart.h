/* handlers_multipart.h - multipart uploads (handlers_multipart.c). */
#ifndef CF_SERVER_HANDLERS_MULTIPART_H
#define CF_SERVER_HANDLERS_MULTIPART_H

#include "server/request.h"

/* Stored with an upload: the checksum its parts carry, and how the object's is made. */
#define CF_UPLOAD_CHECKSUM_ALG "x-coffer-checksum-algorithm"
#define CF_UPLOAD_CHECKSUM_TYPE "x-coffer-checksum-type"
const char *cf_upload_header(const cf_store_upload *u, const char *name);
int cf_handle_create_multipart(cf_request *r);
int cf_upload_part_begin(cf_request *r, cf_err *refusal);
int cf_upload_part_end(cf_request *r);
int cf_handle_upload_part_copy(cf_request *r);
int cf_handle_complete_multipart(cf_request *r);
int cf_handle_abort_multipart(cf_request *r);
int cf_handle_list_parts(cf_request *r);
int cf_handle_list_multipart_uploads(cf_request *r);

#endif
