/* object_version.h - objects are unversioned: what a versionId names (object_version.c). */
#ifndef CF_SERVER_OBJECT_VERSION_H
#define CF_SERVER_OBJECT_VERSION_H

#include "server/request.h"

/* Objects are unversioned: a versionId other than "null" is answered here (NoSuchVersion, or
 * InvalidArgument when empty), returning the respond result; -1 when the request may go on. */
int cf_refuse_other_version(cf_request *r);

#endif
