/* request.c - what a handler reads of its request: headers and query parameters. */
#include <string.h>

#include "server/request.h"

const char *cf_request_header(const cf_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *cf_request_param(const cf_request *r, const char *name)
{
    const char *v = NULL;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v, NULL) !=
        MHD_YES)
        return NULL;
    return v ? v : "";
}
