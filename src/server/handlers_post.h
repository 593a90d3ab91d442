/* handlers_post.h - POST Object, a browser form upload (handlers_post.c). */
#ifndef CF_SERVER_HANDLERS_POST_H
#define CF_SERVER_HANDLERS_POST_H

#include "server/request.h"

/* The body is a multipart/form-data form, taken piece by piece. */
int cf_post_object_begin(cf_request *r, cf_err *refusal);
void cf_post_object_take(cf_request *r, const char *data, size_t n);
int cf_post_object_end(cf_request *r);
void cf_post_object_cleanup(cf_request *r);

#endif
