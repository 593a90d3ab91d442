/* auth.h - SigV4 authentication of a request (auth.c). */
#ifndef CF_SERVER_AUTH_H
#define CF_SERVER_AUTH_H

#include "server/request.h"

/* Checks the request's signature. 0, or a negative CF_E code with the S3 error to answer in
 * refusal's detail (cf_s3_error_of) and its message. */
int cf_auth_check(cf_request *r, cf_err *refusal);

#endif
