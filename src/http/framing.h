/*
 * framing.h - the part of framing.c that judges a request head from its header fields alone,
 * with no connection: what the HTTP layer applies to every request head (daemon.c), and what the
 * fuzz target drives.
 *
 * Feed every header field as received (a repeated one once per instance) to
 * cf_framing_scan_field, then ask cf_framing_verdict. Names and values are byte ranges, borrowed
 * until the verdict has been given; they need not be NUL-terminated.
 */
#ifndef CF_HTTP_FRAMING_H
#define CF_HTTP_FRAMING_H

#include <stddef.h>

#include "core/err.h"

typedef struct cf_framing_scan {
    int content_lengths, transfer_encodings, hosts;
    const char *transfer_encoding; /* the (last) Transfer-Encoding value */
    size_t transfer_encoding_len;
    int name_not_token;      /* whitespace before a colon ends up in the name */
    const char *folded_name; /* a name that only a folded framing line produces */
    size_t folded_name_len;
    const char *control_in; /* the name of a header whose value holds a control character */
    size_t control_in_len;
} cf_framing_scan;

/* s starts zeroed. */
void cf_framing_scan_field(cf_framing_scan *s, const char *name, size_t name_len, const char *value,
                           size_t value_len);

/* 0, or the reason to refuse the request: CF_EINVAL for an ambiguous length or a malformed
 * field, CF_ENOTSUP for a transfer coding other than chunked, in which case *header is
 * "Transfer-Encoding" (the front end may name it in its error), else NULL. err says why; it
 * quotes at most 64 bytes of a header name. http10: an HTTP/1.0 request. */
int cf_framing_verdict(const cf_framing_scan *s, int http10, const char **header, cf_err *err);
/* The HTTP status to refuse with for cf_framing_verdict's code: 400, 501 for CF_ENOTSUP (0 for 0). */
int cf_framing_status(int code);

#endif
