/*
 * static.h - serving the console's web page (assets.h) over the HTTP layer.
 *
 * The console mounts "/" with a begin handler that answers, with cf_console_static_response (to
 * add its own headers and log the bytes) or cf_console_static_respond, every request the longer
 * prefixes (/api, /health, /metrics, /download) do not take.
 */
#ifndef CF_CONSOLE_STATIC_H
#define CF_CONSOLE_STATIC_H

#include <stdint.h>

#include "core/buf.h"
#include "http/http.h"

/* The Content-Security-Policy every console response carries: the page loads only its own
 * script, style and API, and no one may frame it. */
#define CF_CONSOLE_CSP "default-src 'self'; frame-ancestors 'none'"

/*
 * The answer to hr from the embedded assets, by hr->url (the query is not part of it):
 *   GET, HEAD  200 with the asset, its ETag and Cache-Control (index.html "no-cache"; an asset
 *              requested with ?v= equal to the hash index.html links it with, cacheable for a
 *              year, as that URL never names other bytes; otherwise "no-cache");
 *              304 when If-None-Match names the ETag (or is "*");
 *              404 NoSuchAsset when no asset has that path;
 *   other      405 MethodNotAllowed with "Allow: GET, HEAD".
 * Errors are the console's JSON error document. Every answer carries the security headers of
 * cf_console_security_headers. Sets *status and *body_bytes (what the body sends: 0 for HEAD and
 * 304, for the access log); the caller may add headers (Set-Cookie) and gives the response to
 * cf_http_respond. NULL when out of memory (drop the connection). Needs no body: call it from
 * begin, on any thread.
 */
cf_http_response *cf_console_static_response(const cf_http_request *hr, int *status, uint64_t *body_bytes);

/* cf_console_static_response and cf_http_respond: 1 go on, 0 drop the connection. */
int cf_console_static_respond(cf_http_request *hr);

/* Adds Content-Security-Policy (CF_CONSOLE_CSP), X-Content-Type-Options: nosniff,
 * Referrer-Policy: no-referrer and X-Frame-Options: DENY to resp: for every console response,
 * the API's included. */
void cf_console_security_headers(cf_http_response *resp);

/* The two readers of client input above, for the tests and tests/fuzz/fuzz_static.c. */

/* 1 when an If-None-Match value (RFC 9110, 13.1.2) names etag (a quoted strong tag): "*", or a
 * comma-separated list of entity tags compared weakly ("W/" ignored). Reading stops at the first
 * element that is not an entity tag. */
int cf_console_etag_listed(const char *if_none_match, const char *etag);
/* Appends s as the inside of a JSON string: printable ASCII as it is ('"' and '\\' escaped),
 * every other byte as \u00XX, so any bytes make valid JSON; at most max bytes of s, then "...". */
void cf_console_json_quote(cf_buf *b, const char *s, size_t max);

#endif
