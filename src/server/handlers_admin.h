/* handlers_admin.h - bucket policies and the /_admin API (handlers_admin.c). */
#ifndef CF_SERVER_HANDLERS_ADMIN_H
#define CF_SERVER_HANDLERS_ADMIN_H

#include "server/request.h"

int cf_handle_bucket_policy(cf_request *r);
int cf_handle_admin(cf_request *r);

#endif
