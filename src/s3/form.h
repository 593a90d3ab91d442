/*
 * form.h - a streaming multipart/form-data parser (RFC 7578) for browser form uploads.
 *
 * Bytes go in as they arrive, in pieces of any size; parts come out as events: a part begins
 * (its field name, and its filename when it is a file), its data in pieces, its end. Nothing
 * but one part's header block and a delimiter's length is ever held, so a part's data may be of
 * any size at a bounded memory cost. What to keep of a part is the consumer's business.
 */
#ifndef CF_S3_FORM_H
#define CF_S3_FORM_H

#include <stddef.h>

#include "core/err.h"

#define CF_FORM_MAX_BOUNDARY 70 /* RFC 2046 */
#define CF_FORM_MAX_HEADERS (8 << 10)
#define CF_FORM_MAX_NAME 1024

/* Each returns 0 to go on, or a CF_E code that stops the parser and is returned by cf_form_feed. */
typedef struct cf_form_events {
    /* name: the field's name; filename: NULL unless the part is a file; content_type: the part's
     * Content-Type or NULL. All three are borrowed for the call. */
    int (*on_part)(void *ctx, const char *name, const char *filename, const char *content_type);
    int (*on_data)(void *ctx, const char *data, size_t n);
    int (*on_part_end)(void *ctx);
} cf_form_events;

typedef struct cf_form cf_form;

/* Boundary of a "multipart/form-data; boundary=…" Content-Type into out (CF_FORM_MAX_BOUNDARY
 * + 1 bytes). CF_EINVAL when the type is another one or the boundary is missing or malformed. */
int cf_form_boundary(const char *content_type, char out[CF_FORM_MAX_BOUNDARY + 1]);

/* NULL when out of memory. ev and ctx are borrowed for the parser's life. */
cf_form *cf_form_new(const char *boundary, const cf_form_events *ev, void *ctx);
void cf_form_free(cf_form *f);

/* CF_EINVAL with err's message when the body is not well-formed; an event's code when one
 * stopped it. After a failure the parser takes nothing more. */
int cf_form_feed(cf_form *f, const char *data, size_t n, cf_err *err);
/* The body ended: CF_EINVAL unless the closing delimiter was seen. */
int cf_form_finish(cf_form *f, cf_err *err);

#endif
