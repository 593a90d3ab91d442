/* failure.c - the answer to a call that failed: the S3 error the one table gives (s3/error.h). */
#include "core/log.h"
#include "server/response.h"

int cf_respond_failure(cf_request *r, const cf_err *err, cf_s3_subject on, int show_message)
{
    cf_s3_error e = cf_s3_error_of(err, on);
    if (!err->detail && cf_s3_error_status(e) >= 500) {
        /* The server failed (the table's answer to a code, not an S3 error a function chose, such
         * as NotImplemented): the cause may name paths, and is for the log, not the client. */
        cf_log(&r->srv->log, CF_LOG_ERROR, "request failed", "id", r->request_id, "error", err->msg, NULL);
        return cf_respond_error(r, e, NULL);
    }
    return cf_respond_error(r, e, show_message && err->msg[0] ? err->msg : NULL);
}
