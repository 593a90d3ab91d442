/*
 * framing.c - refuses a request head whose body length two HTTP parsers could read two ways.
 *
 * Behind a proxy, such a head lets one request hide another (request smuggling): the proxy
 * takes one length, we take another, and the bytes in between become a request the proxy never
 * saw. RFC 9112 requires a server to refuse these shapes; libmicrohttpd 0.9.75 accepts them:
 *
 *   - two Content-Length headers: it uses the first (RFC 9112 section 6.3: 400);
 *   - Content-Length with Transfer-Encoding, or Transfer-Encoding twice: it decodes chunked
 *     (section 6.1: a server may refuse, and must close the connection either way);
 *   - a Transfer-Encoding other than exactly "chunked" ("gzip, chunked", " chunked "): it takes
 *     the body as unframed, while a proxy may decode it (section 6.1: 501 for a coding not
 *     understood, 400 when chunked is not the final one);
 *   - Transfer-Encoding in an HTTP/1.0 request (section 6.1: the framing is faulty);
 *   - whitespace between a field name and its colon: "Content-Length : 3" is stored under the
 *     name "Content-Length " and the body is left unread (section 5.1: 400);
 *   - obsolete line folding: the continuation is glued to the field *name*, so
 *     "Content-Length: 3\r\n 5" becomes a header "Content-Length5" and the body again goes
 *     unread (section 5.2: 400). A folded line cannot be told from a legitimate header in
 *     general, but a name that merely starts with Content-Length or Transfer-Encoding is one;
 *   - a bare CR inside a field value, which another parser may end the line at (section 5.5);
 *   - a second Host header, or none in HTTP/1.1 (section 3.2: 400).
 *
 * What libmicrohttpd already refuses with its own 400 never reaches us: a Content-Length that is
 * not a decimal number (a sign, a trailing space, "0x3", an empty value), a line without a colon,
 * an empty field name. Every refusal here closes the connection, since what follows the head on
 * it cannot be trusted to start a request.
 */
#include "http/framing.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_token(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return 0;
    return 1;
}

static int equal_ci(const char *s, size_t n, const char *lower)
{
    return n == strlen(lower) && strncasecmp(s, lower, n) == 0;
}

static int starts_with_ci(const char *s, size_t n, const char *lower_prefix)
{
    size_t p = strlen(lower_prefix);
    return n >= p && strncasecmp(s, lower_prefix, p) == 0;
}

void cf_framing_scan_field(cf_framing_scan *s, const char *name, size_t name_len, const char *value,
                           size_t value_len)
{
    if (!is_token(name, name_len)) {
        s->name_not_token = 1;
        return;
    }
    if (equal_ci(name, name_len, "content-length")) {
        s->content_lengths++;
    } else if (equal_ci(name, name_len, "transfer-encoding")) {
        s->transfer_encodings++;
        s->transfer_encoding = value;
        s->transfer_encoding_len = value_len;
    } else if (equal_ci(name, name_len, "host")) {
        s->hosts++;
    } else if (!s->folded_name && (starts_with_ci(name, name_len, "content-length") ||
                                   starts_with_ci(name, name_len, "transfer-encoding"))) {
        s->folded_name = name;
        s->folded_name_len = name_len;
    }
    for (size_t i = 0; i < value_len && !s->control_in; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            s->control_in = name;
            s->control_in_len = name_len;
        }
    }
}

static void trim_ows(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* "chunked" closes the list, after at least one other coding: a coding we do not implement. */
static int chunked_after_other_codings(const char *te, size_t n)
{
    size_t comma = n;
    while (comma && te[comma - 1] != ',')
        comma--;
    if (!comma)
        return 0;
    const char *last = te + comma;
    size_t len = n - comma;
    trim_ows(&last, &len);
    return equal_ci(last, len, "chunked");
}

static int shown_len(size_t n)
{
    return n > 64 ? 64 : (int)n;
}

int cf_framing_verdict(const cf_framing_scan *s, int http10, const char **header, cf_err *err)
{
    *header = NULL;
    if (s->name_not_token)
        return cf_err_set(err, CF_EINVAL,
                          "a header field name is not a token (is there whitespace before its colon?)");
    if (s->folded_name)
        return cf_err_set(err, CF_EINVAL,
                          "header '%.*s' is a folded framing header; obsolete line folding is not accepted",
                          shown_len(s->folded_name_len), s->folded_name);
    if (s->control_in)
        return cf_err_set(err, CF_EINVAL, "the value of header '%.*s' holds a control character",
                          shown_len(s->control_in_len), s->control_in);
    if (s->hosts > 1 || (s->hosts == 0 && !http10))
        return cf_err_set(err, CF_EINVAL,
                          "an HTTP/1.1 request carries exactly one Host header; this one has %d", s->hosts);
    if (s->content_lengths > 1)
        return cf_err_set(err, CF_EINVAL,
                          "the request has %d Content-Length headers; its length is ambiguous",
                          s->content_lengths);
    if (!s->transfer_encodings)
        return 0;
    if (s->transfer_encodings > 1 || s->content_lengths || http10)
        return cf_err_set(err, CF_EINVAL, "%s; its length is ambiguous",
                          s->transfer_encodings > 1 ? "the request has more than one Transfer-Encoding header"
                          : s->content_lengths ? "the request has both Content-Length and Transfer-Encoding"
                                               : "an HTTP/1.0 request cannot use Transfer-Encoding");
    /* Exactly: libmicrohttpd decodes chunked only for this value, and takes " chunked " as no
     * framing at all. */
    if (equal_ci(s->transfer_encoding, s->transfer_encoding_len, "chunked"))
        return 0;
    if (chunked_after_other_codings(s->transfer_encoding, s->transfer_encoding_len)) {
        *header = "Transfer-Encoding";
        return cf_err_set(err, CF_ENOTSUP, "only the chunked transfer coding is implemented");
    }
    return cf_err_set(err, CF_EINVAL, "Transfer-Encoding must be exactly 'chunked'; its length is ambiguous");
}

int cf_framing_status(int code)
{
    return code == 0 ? 0 : code == CF_ENOTSUP ? 501 : 400;
}
