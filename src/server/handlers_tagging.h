/* handlers_tagging.h - object tags: the tagging operations and x-amz-tagging (handlers_tagging.c). */
#ifndef CF_SERVER_HANDLERS_TAGGING_H
#define CF_SERVER_HANDLERS_TAGGING_H

#include "server/request.h"
#include "server/header_list.h"

#define CF_TAGGING_HEADER "x-coffer-tagging" /* stored, never replayed: see handlers_tagging.c */
#define CF_INTERNAL_HEADER_PREFIX "x-coffer-"
/* Adds the tags of an x-amz-tagging request header to h (0), or refuses (CF_E code, S3 error in
 * refusal's detail). */
int cf_tagging_from_request(cf_request *r, cf_header_list *h, cf_err *refusal);
/* A <Tagging> document (PutObjectTagging's body, a form's tagging field) checked as
 * PutObjectTagging does, into the stored form of CF_TAGGING_HEADER ("" when it has no tags;
 * the caller frees *stored). Or a CF_E code with MalformedXML, InvalidTag (the message says
 * why) or InternalError in refusal's detail. */
int cf_tagging_from_xml(const char *xml, size_t len, char **stored, cf_err *refusal);
size_t cf_tagging_count(const char *stored);
int cf_handle_get_object_tagging(cf_request *r);
int cf_handle_put_object_tagging(cf_request *r);
int cf_handle_delete_object_tagging(cf_request *r);

#endif
