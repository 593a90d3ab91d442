/* access.h - access control: root, stored keys and their scopes, bucket policies (access.c). */
#ifndef CF_SERVER_ACCESS_H
#define CF_SERVER_ACCESS_H

#include "server/request.h"

/* May the request's principal perform op on bucket/key, that bucket's policy included? */
int cf_access_allows(cf_request *r, cf_s3_op op, const char *bucket, const char *key, size_t keylen);
/* May the principal set tags along with write_op (x-amz-tagging, a form's tagging field)? The
 * bucket policy must allow s3:PutObjectTagging as well, as on AWS. */
int cf_access_allows_tags_on_write(cf_request *r, cf_s3_op write_op, const char *bucket, const char *key,
                                   size_t keylen);
/* The same for a request naming a version of the object (versioned: a versionId was given). */
int cf_access_allows_version(cf_request *r, cf_s3_op op, const char *bucket, const char *key, size_t keylen,
                             int versioned);
/* Frees the bucket policy the request read (access_cache). */
void cf_access_cleanup(cf_request *r);
/* At server stop, when no request runs any more. */
void cf_policy_cache_free(struct cf_policy_cache *pc);
/* The key lies in the principal's bucket and prefix (always, for root). */
int cf_access_key_in_scope(const cf_request *r, const char *bucket, const char *key, size_t keylen);
/* The whole decision for the request as routed, bucket policies included: 0, or CF_EDENIED with
 * AccessDenied in refusal's detail (refusal may be NULL). */
int cf_access_check(cf_request *r, cf_err *refusal);
/* May the principal only create objects, never replace one (a writeonly key)? Writes then
 * commit on the condition that the key is absent (cf_write_condition). */
int cf_access_create_only(const cf_request *r);

#endif
