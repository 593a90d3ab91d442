/* response.c - queuing responses with the headers every S3 response carries. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "s3/xml.h"
#include "server/request.h"

const char *cf_request_header(const cf_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *cf_request_param(const cf_request *r, const char *name)
{
    const char *v = NULL;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
                                      NULL) != MHD_YES)
        return NULL;
    return v ? v : "";
}

int cf_respond(cf_request *r, int status, struct MHD_Response *resp)
{
    if (!resp)
        return 0;
    MHD_add_response_header(resp, "x-amz-request-id", r->request_id);
    MHD_add_response_header(resp, "Server", "coffer");
    r->status = status;
    r->responded = 1;
    if (r->hold_response) { /* on an offload worker: the event thread queues it (offload.c) */
        r->held_response = resp;
        r->held_status = (unsigned)status;
        return 1;
    }
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ok == MHD_YES;
}

int cf_respond_xml(cf_request *r, int status, cf_buf *body)
{
    size_t len;
    char *data = cf_buf_steal(body, &len);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, data ? data : "", data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(data);
        return 0;
    }
    r->bytes_out = len;
    const char *type = len && data[0] == '<' ? "application/xml" : "text/plain";
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    return cf_respond(r, status, resp);
}

int cf_respond_empty(cf_request *r, int status)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    return cf_respond(r, status, resp);
}

int cf_respond_error(cf_request *r, cf_s3_error e, const char *message)
{
    cf_buf b;
    cf_buf_init(&b, 64 * 1024);
    cf_s3_error_xml(&b, e, message, r->resource ? r->resource : "/", r->request_id);
    if (cf_s3_error_status(e) >= 500)
        cf_log(CF_LOG_ERROR, "request failed", "id", r->request_id, "code", cf_s3_error_code(e),
               "message", message ? message : cf_s3_error_message(e), NULL);
    /* A client that sent Expect: 100-continue never sends the body after an early error;
     * one that did not may still be sending it, so the connection cannot be reused. */
    return cf_respond_xml(r, cf_s3_error_status(e), &b);
}
