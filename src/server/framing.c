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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/request.h"

typedef struct framing_scan {
    int content_lengths, transfer_encodings, hosts;
    const char *transfer_encoding;
    int name_not_token;
    const char *folded_name; /* a name that only a folded framing line produces */
    const char *control_in;  /* the name of a header whose value holds a control character */
} framing_scan;

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

static int starts_with_ci(const char *s, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    return n >= p && strncasecmp(s, prefix, p) == 0;
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                   const char *value, size_t value_size)
{
    (void)kind;
    framing_scan *s = cls;
    if (!is_token(key, key_size)) {
        s->name_not_token = 1;
        return MHD_YES;
    }
    if (strcasecmp(key, "content-length") == 0)
        s->content_lengths++;
    else if (strcasecmp(key, "transfer-encoding") == 0) {
        s->transfer_encodings++;
        s->transfer_encoding = value ? value : "";
    } else if (strcasecmp(key, "host") == 0)
        s->hosts++;
    else if (!s->folded_name && (starts_with_ci(key, key_size, "content-length") ||
                                 starts_with_ci(key, key_size, "transfer-encoding")))
        s->folded_name = key;
    for (size_t i = 0; value && i < value_size && !s->control_in; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            s->control_in = key;
    }
    return MHD_YES;
}

/* "chunked" closes the list, after at least one other coding: a coding we do not implement. */
static int chunked_after_other_codings(const char *te)
{
    const char *comma = strrchr(te, ',');
    if (!comma)
        return 0;
    const char *last = comma + 1;
    while (*last == ' ' || *last == '\t')
        last++;
    size_t n = strlen(last);
    while (n && (last[n - 1] == ' ' || last[n - 1] == '\t'))
        n--;
    return n == 7 && strncasecmp(last, "chunked", 7) == 0;
}

/* The fault, or CF_S3_OK; msg and *header (the <Header> AWS names for NotImplemented) set. */
static cf_s3_error find_fault(const framing_scan *s, int http10, const char **header, char *msg,
                              size_t msglen)
{
    *header = NULL;
    if (s->name_not_token) {
        snprintf(msg, msglen, "a header field name is not a token (is there whitespace before its colon?)");
        return CF_S3_InvalidRequest;
    }
    if (s->folded_name) {
        snprintf(msg, msglen,
                 "header '%.64s' is a folded framing header; obsolete line folding is not accepted",
                 s->folded_name);
        return CF_S3_InvalidRequest;
    }
    if (s->control_in) {
        snprintf(msg, msglen, "the value of header '%.64s' holds a control character", s->control_in);
        return CF_S3_InvalidRequest;
    }
    if (s->hosts > 1 || (s->hosts == 0 && !http10)) {
        snprintf(msg, msglen, "an HTTP/1.1 request carries exactly one Host header; this one has %d",
                 s->hosts);
        return CF_S3_InvalidRequest;
    }
    if (s->content_lengths > 1) {
        snprintf(msg, msglen, "the request has %d Content-Length headers; its length is ambiguous",
                 s->content_lengths);
        return CF_S3_InvalidRequest;
    }
    if (!s->transfer_encodings)
        return CF_S3_OK;
    if (s->transfer_encodings > 1 || s->content_lengths || http10) {
        snprintf(msg, msglen, "%s; its length is ambiguous",
                 s->transfer_encodings > 1 ? "the request has more than one Transfer-Encoding header"
                 : s->content_lengths      ? "the request has both Content-Length and Transfer-Encoding"
                                           : "an HTTP/1.0 request cannot use Transfer-Encoding");
        return CF_S3_InvalidRequest;
    }
    if (strcasecmp(s->transfer_encoding, "chunked") == 0)
        return CF_S3_OK;
    if (chunked_after_other_codings(s->transfer_encoding)) {
        *header = "Transfer-Encoding";
        snprintf(msg, msglen, "only the chunked transfer coding is implemented");
        return CF_S3_NotImplemented;
    }
    snprintf(msg, msglen, "Transfer-Encoding must be exactly 'chunked'; its length is ambiguous");
    return CF_S3_InvalidRequest;
}

int cf_framing_check(cf_request *r)
{
    framing_scan s = {0};
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, scan_header, &s);
    int http10 = r->version && strcmp(r->version, MHD_HTTP_VERSION_1_0) == 0;
    const char *header;
    char msg[256];
    cf_s3_error e = find_fault(&s, http10, &header, msg, sizeof msg);
    if (e == CF_S3_OK)
        return 0;
    return cf_respond_error_closing(r, e, msg, header ? "Header" : NULL, header) ? 1 : -1;
}
