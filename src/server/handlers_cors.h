/* handlers_cors.h - the bucket CORS operations and preflight requests (handlers_cors.c). */
#ifndef CF_SERVER_HANDLERS_CORS_H
#define CF_SERVER_HANDLERS_CORS_H

#include "server/request.h"

int cf_handle_bucket_cors(cf_request *r);
int cf_handle_cors_preflight(cf_request *r);

#endif
