/* janitor.h - the housekeeping thread: stale multipart uploads (janitor.c). */
#ifndef CF_SERVER_JANITOR_H
#define CF_SERVER_JANITOR_H

#include "server/request.h"

/* the housekeeping thread (stale multipart uploads). */
int cf_janitor_start(cf_server *srv);
void cf_janitor_stop(cf_server *srv);

#endif
