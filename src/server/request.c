/* request.c - what a handler reads of its request: headers and query parameters. */
#include "server/request.h"

const char *cf_request_header(const cf_request *r, const char *name)
{
    return cf_http_header(r->http, name);
}

const char *cf_request_param(const cf_request *r, const char *name)
{
    return cf_http_param(r->http, name);
}
