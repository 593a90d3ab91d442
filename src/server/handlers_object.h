/* handlers_object.h - PutObject, GetObject, HeadObject, DeleteObject, CopyObject and what other
 * writes share with them: write conditions, copy sources, stored headers (handlers_object.c). */
#ifndef CF_SERVER_HANDLERS_OBJECT_H
#define CF_SERVER_HANDLERS_OBJECT_H

#include "server/request.h"
#include "server/header_list.h"

/* Content-Type (defaulted), the other stored headers and x-amz-meta-* of the request. */
int cf_object_headers(cf_request *r, cf_header_list *h);

/* Refuses headers on a write that ask for a protection this server does not give (0, or a CF_E
 * code with the S3 error and the reason in refusal): SSE-C and SSE-KMS (NotImplemented: the object would be
 * stored in clear), Object Lock retention and legal hold (InvalidRequest, as AWS for a bucket without Object
 * Lock). SSE-S3 (AES256) is accepted and left to the disk. */
int cf_write_protection_refused(const cf_request *r, cf_err *refusal);
int cf_put_object_begin(cf_request *r, cf_err *refusal);
int cf_put_object_end(cf_request *r);
int cf_handle_get_object(cf_request *r, int head);
int cf_handle_delete_object(cf_request *r);
/* The source of CopyObject and UploadPartCopy (x-amz-copy-source, its range and conditions). */
typedef struct cf_copy_source {
    char *bucket;
    char *key;
    size_t keylen;
    cf_object_info info;
    uint64_t start, len;
    cf_store_reader *rd; /* the range of that very version, held until cleanup */
} cf_copy_source;
/* Opens the source (0), or refuses with the S3 error in refusal's detail; the caller cleans src
 * up either way. */
int cf_copy_source_open(cf_request *r, int allow_range, cf_copy_source *src, cf_err *refusal);
/* Copies the source range into a new writer (*w, finished), or returns a CF_E code. */
int cf_copy_source_into_writer(cf_request *r, cf_copy_source *src, cf_store_writer **w);
void cf_copy_source_cleanup(cf_copy_source *src);
int cf_handle_copy_object(cf_request *r);
/* 200 for CopyObject (root "CopyObjectResult") or UploadPartCopy ("CopyPartResult"); cleans up info. */
int cf_respond_copied(cf_request *r, const char *root, cf_object_info *info);
/* If-None-Match: * and If-Match on a write, and create-only for a writeonly key, as a store
 * condition (etag is its buffer). 0, or NotImplemented in refusal's detail for another
 * If-None-Match. */
int cf_write_condition(cf_request *r, cf_store_condition *c, char *etag, size_t etaglen, cf_err *refusal);
/* Fills refusal with the S3 error for a condition the store found false; returns its CF_E code. */
int cf_write_condition_error(cf_request *r, const cf_store_condition *c, cf_err *refusal);
/* If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since against an object, in RFC
 * 9110's order: CF_EPRECOND with PreconditionFailed in failed's detail (failed may be NULL), or 0
 * with *not_modified set when a GET should get 304. */
int cf_check_conditions(const cf_object_info *info, const char *if_match, const char *if_none_match,
                        const char *if_modified_since, const char *if_unmodified_since, int *not_modified,
                        cf_err *failed);

#endif
