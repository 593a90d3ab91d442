/* response.c - responses: queuing (or holding, on the blocking pool) and the kinds of body. */
#include <stdlib.h>
#include <unistd.h>

#include "http/internal.h"

int cf_http_respond(cf_http_request *hr, int status, cf_http_response *resp)
{
    if (!resp)
        return 0;
    hr->status = status;
    hr->responded = 1;
    if (hr->hold_response) { /* on a blocking-pool worker: the event thread queues it (daemon.c) */
        hr->held_response = resp;
        hr->held_status = (unsigned)status;
        return 1;
    }
    enum MHD_Result ok = MHD_queue_response(hr->conn, (unsigned)status, cf_mhd_response(resp));
    MHD_destroy_response(cf_mhd_response(resp));
    return ok == MHD_YES;
}

cf_http_response *cf_http_body_buffer(const void *data, size_t len, int copy)
{
    if (!len) {
        if (!copy)
            free((void *)data);
        return cf_http_body_empty();
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, (void *)data, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_MUST_FREE);
    if (!resp && !copy)
        free((void *)data);
    return cf_http_response_of(resp);
}

cf_http_response *cf_http_body_empty(void)
{
    return cf_http_response_of(MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT));
}

cf_http_response *cf_http_body_fd(int fd, uint64_t offset, uint64_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, offset);
    if (!resp)
        close(fd);
    return cf_http_response_of(resp);
}

typedef struct reader_body {
    cf_http_reader read;
    void *cls;
    void (*free_cls)(void *cls);
} reader_body;

static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    reader_body *rb = cls;
    long n = rb->read(rb->cls, pos, buf, max);
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n == CF_HTTP_READER_END ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

static void free_body(void *cls)
{
    reader_body *rb = cls;
    if (rb->free_cls)
        rb->free_cls(rb->cls);
    free(rb);
}

cf_http_response *cf_http_body_reader(uint64_t len, size_t block, cf_http_reader read, void *cls,
                                      void (*free_cls)(void *cls))
{
    reader_body *rb = malloc(sizeof *rb);
    struct MHD_Response *resp = NULL;
    if (rb) {
        *rb = (reader_body){read, cls, free_cls};
        resp = MHD_create_response_from_callback(len, block, read_body, rb, free_body);
    }
    if (!resp) {
        free(rb);
        if (free_cls)
            free_cls(cls);
    }
    return cf_http_response_of(resp);
}

void cf_http_add_header(cf_http_response *resp, const char *name, const char *value)
{
    MHD_add_response_header(cf_mhd_response(resp), name, value);
}
