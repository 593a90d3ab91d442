/*
 * assets.h - the console's web page (web/), built into the binary.
 *
 * The table is generated at build time by cmake/embed_assets.cmake from every file under web/:
 * nothing is read from disk at run time. Every pointer is static: valid for the life of the
 * process, never freed. src/console/static.c serves the assets over HTTP.
 */
#ifndef CF_CONSOLE_ASSETS_H
#define CF_CONSOLE_ASSETS_H

#include <stddef.h>

typedef struct cf_asset {
    const char *path;          /* "/index.html", "/app.js": the request path that finds it */
    const unsigned char *data; /* len bytes (index.html: with its links carrying ?v=HASH) */
    size_t len;
    const char *content_type; /* by extension: "text/html; charset=utf-8", … */
    const char *etag;         /* strong, quoted: "\"<32 hex digits of the SHA-256 of data>\"" */
} cf_asset;

/* The asset at a request path (no query): "/" is index.html. NULL when there is none. */
const cf_asset *cf_asset_find(const char *path);

#endif
