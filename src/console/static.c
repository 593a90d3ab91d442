/* static.c - the embedded web page over HTTP: conditional GET, caching, security headers. */
#include <string.h>

#include "console/assets.h"
#include "console/static.h"
#include "core/buf.h"

/* The longest part of a request path quoted back in an error message. */
#define PATH_QUOTE_MAX 200

void cf_console_security_headers(cf_http_response *resp)
{
    cf_http_add_header(resp, "Content-Security-Policy", CF_CONSOLE_CSP);
    cf_http_add_header(resp, "X-Content-Type-Options", "nosniff");
    cf_http_add_header(resp, "Referrer-Policy", "no-referrer");
    cf_http_add_header(resp, "X-Frame-Options", "DENY");
}

void cf_console_json_quote(cf_buf *b, const char *s, size_t max)
{
    size_t i = 0;
    for (; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            cf_buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            cf_buf_printf(b, "\\u%04x", c);
        else
            cf_buf_putc(b, (char)c);
    }
    if (s[i])
        cf_buf_puts(b, "...");
}

static cf_http_response *error_response(const cf_http_request *hr, int status, const char *code,
                                        const char *what, uint64_t *body_bytes)
{
    cf_buf b;
    cf_buf_init(&b, 4096);
    cf_buf_printf(&b, "{\"error\":{\"code\":\"%s\",\"message\":\"", code);
    if (status == 405) {
        cf_buf_printf(&b, "method '%s' is not allowed on '", hr->method);
        cf_console_json_quote(&b, hr->url, PATH_QUOTE_MAX);
        cf_buf_puts(&b, "': the page answers GET and HEAD only");
    } else {
        cf_buf_puts(&b, "no page at '");
        cf_console_json_quote(&b, hr->url, PATH_QUOTE_MAX);
        cf_buf_printf(&b, "'%s", what);
    }
    cf_buf_puts(&b, "\"}}\n");
    if (cf_buf_error(&b)) {
        cf_buf_cleanup(&b);
        return NULL;
    }
    size_t len;
    char *data = cf_buf_steal(&b, &len);
    cf_http_response *resp = cf_http_body_buffer(data, len, 0);
    if (!resp)
        return NULL;
    cf_http_add_header(resp, "Content-Type", "application/json");
    cf_http_add_header(resp, "Cache-Control", "no-store");
    if (status == 405)
        cf_http_add_header(resp, "Allow", "GET, HEAD");
    cf_console_security_headers(resp);
    *body_bytes = len;
    return resp;
}

int cf_console_etag_listed(const char *header, const char *etag)
{
    size_t etag_len = strlen(etag);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p != '"')
            return 0; /* not an entity tag: nothing further can be trusted to match */
        const char *end = strchr(p + 1, '"');
        if (!end)
            return 0;
        if ((size_t)(end + 1 - p) == etag_len && memcmp(p, etag, etag_len) == 0)
            return 1;
        p = end + 1;
    }
    return 0;
}

/* index.html links the other assets as NAME?v=HASH, HASH the first 16 hex digits of the ETag:
 * only that URL may be cached for long, as a reload after an upgrade asks for another v. */
static int versioned_request(const cf_http_request *hr, const cf_asset *a)
{
    const char *v = cf_http_param(hr, "v");
    return v && strlen(v) == 16 && strncmp(v, a->etag + 1, 16) == 0;
}

cf_http_response *cf_console_static_response(const cf_http_request *hr, int *status, uint64_t *body_bytes)
{
    *body_bytes = 0;
    int head = strcmp(hr->method, "HEAD") == 0;
    if (!head && strcmp(hr->method, "GET") != 0) {
        *status = 405;
        return error_response(hr, 405, "MethodNotAllowed", "", body_bytes);
    }
    const cf_asset *a = cf_asset_find(hr->url);
    if (!a) {
        *status = 404;
        return error_response(hr, 404, "NoSuchAsset", ": the console's pages are under '/#/'", body_bytes);
    }

    const char *inm = cf_http_header(hr, "If-None-Match");
    int not_modified = inm && cf_console_etag_listed(inm, a->etag);
    /* Copied: the layer frees a buffer it does not copy, and the asset is static. */
    cf_http_response *resp = not_modified ? cf_http_body_empty() : cf_http_body_buffer(a->data, a->len, 1);
    if (!resp)
        return NULL;
    if (!not_modified)
        cf_http_add_header(resp, "Content-Type", a->content_type);
    cf_http_add_header(resp, "ETag", a->etag);
    int immutable = strcmp(a->path, "/index.html") != 0 && versioned_request(hr, a);
    cf_http_add_header(resp, "Cache-Control", immutable ? "public, max-age=31536000, immutable" : "no-cache");
    cf_console_security_headers(resp);
    *status = not_modified ? 304 : 200;
    *body_bytes = not_modified || head ? 0 : a->len;
    return resp;
}

int cf_console_static_respond(cf_http_request *hr)
{
    int status;
    uint64_t body_bytes;
    cf_http_response *resp = cf_console_static_response(hr, &status, &body_bytes);
    return resp ? cf_http_respond(hr, status, resp) : 0;
}
