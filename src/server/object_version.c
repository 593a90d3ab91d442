/* object_version.c - objects are unversioned: what a versionId names. */
#include "server/object_version.h"

#include <string.h>

#include "server/response.h"

int cf_refuse_other_version(cf_request *r)
{
    /* Every object is its own "null" version (unversioned bucket): another id names nothing
     * here, and must not fall through to the current object (a DELETE would remove it). */
    const char *v = cf_request_param(r, "versionId");
    if (!v || strcmp(v, "null") == 0)
        return -1;
    if (!*v)
        return cf_respond_invalid_argument(r, "Version id cannot be the empty string", "versionId", v);
    return cf_respond_error(r, CF_S3_NoSuchVersion, NULL);
}
