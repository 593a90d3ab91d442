/*
 * static.h - serving the console's web page (assets.h) over the HTTP layer.
 *
 * The console mounts "/" with a begin handler that calls cf_console_static_respond for every
 * request the longer prefixes (/api, /health, /metrics, /download) do not take.
 */
#ifndef CF_CONSOLE_STATIC_H
#define CF_CONSOLE_STATIC_H

#include "http/http.h"

/* The Content-Security-Policy every console response carries: the page loads only its own
 * script, style and API, and no one may frame it. */
#define CF_CONSOLE_CSP "default-src 'self'; frame-ancestors 'none'"

/*
 * Answers hr from the embedded assets, by hr->url (the query is not part of it):
 *   GET, HEAD  200 with the asset, its ETag and Cache-Control (index.html "no-cache"; an asset
 *              requested with ?v= equal to the hash index.html links it with, cacheable for a
 *              year, as that URL never names other bytes; otherwise "no-cache");
 *              304 when If-None-Match names the ETag (or is "*");
 *              404 NoSuchAsset when no asset has that path;
 *   other      405 MethodNotAllowed with "Allow: GET, HEAD".
 * Errors are the console's JSON error document. Every answer carries the security headers of
 * cf_console_security_headers. Returns cf_http_respond's result: 1 go on, 0 drop the connection.
 * Safe to call from begin (it needs no body) on any thread.
 */
int cf_console_static_respond(cf_http_request *hr);

/* Adds Content-Security-Policy (CF_CONSOLE_CSP), X-Content-Type-Options: nosniff,
 * Referrer-Policy: no-referrer and X-Frame-Options: DENY to resp: for every console response,
 * the API's included. */
void cf_console_security_headers(cf_http_response *resp);

#endif
