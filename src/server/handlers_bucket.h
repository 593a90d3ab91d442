/* handlers_bucket.h - the bucket operations (handlers_bucket.c). */
#ifndef CF_SERVER_HANDLERS_BUCKET_H
#define CF_SERVER_HANDLERS_BUCKET_H

#include "server/request.h"

int cf_handle_list_buckets(cf_request *r);
int cf_handle_create_bucket(cf_request *r);
int cf_handle_head_bucket(cf_request *r);
int cf_handle_delete_bucket(cf_request *r);
int cf_handle_list_objects(cf_request *r, int v2);
int cf_handle_bucket_location(cf_request *r);
int cf_handle_bucket_versioning(cf_request *r);
int cf_handle_list_object_versions(cf_request *r);
int cf_handle_delete_objects(cf_request *r);
/* <elem><ID>…</ID><DisplayName>…</DisplayName></elem> for Owner and Initiator. */
void cf_owner_xml(cf_request *r, cf_buf *b, const char *elem);

#endif
