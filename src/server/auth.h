/* auth.h - SigV4 authentication of a request (auth.c). */
#ifndef CF_SERVER_AUTH_H
#define CF_SERVER_AUTH_H

#include "server/request.h"

/* Checks the request's signature; on failure fills *e and msg. */
int cf_auth_check(cf_request *r, cf_s3_error *e, char *msg, size_t msglen);

#endif
