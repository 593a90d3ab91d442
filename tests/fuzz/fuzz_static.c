/*
 * fuzz_static.c - what the console's page serving reads from a client: an If-None-Match value,
 * and the request path it quotes back in a JSON error (console/static.h).
 *
 * Input byte 0 picks the part; the rest is the client's text (cut at its first NUL).
 *  - If-None-Match, raw: a match is only ever for a value holding the ETag or a "*".
 *  - If-None-Match, built: the input becomes a well-formed list of entity tags (some weak); the
 *    list matches exactly when one of its tags is the ETag, and always once the ETag is appended.
 *  - The path: quoted into {"message":"..."}, the document parses (jansson), and the string it
 *    holds is the path's bytes read as Latin-1, cut at the limit and followed by "..." when longer.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "console/static.h"
#include "core/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ETAG "\"0123456789abcdef0123456789abcdef\""
#define QUOTE_MAX 64

static void raw_header(const char *text)
{
    if (cf_console_etag_listed(text, ETAG))
        check(strstr(text, ETAG) || strchr(text, '*'));
}

/* Each input byte adds a character to the current tag, ends it (0x00-0x1f), or starts a weak
 * one (0x7f); a byte naming the ETag's digit '0'..'f' keeps the chance of building it. */
static void built_list(const uint8_t *p, size_t n)
{
    cf_buf list;
    cf_buf_init(&list, 1 << 20);
    char tag[256];
    size_t len = 0;
    int has_etag = 0, weak = 0;
    for (size_t i = 0; i <= n; i++) {
        int end = i == n || p[i] < 0x20;
        if (!end && p[i] == 0x7f) {
            weak = 1;
            continue;
        }
        if (!end) {
            char c = (char)(0x21 + p[i] % 0x5e); /* etagc without DQUOTE: %x21 / %x23-7E */
            if (c == '"')
                c = '#';
            if (len < sizeof tag - 1)
                tag[len++] = c;
            continue;
        }
        tag[len] = '\0';
        cf_buf_printf(&list, "%s%s\"%s\"", list.len ? ", " : "", weak ? "W/" : "", tag);
        if (strcmp(tag, "0123456789abcdef0123456789abcdef") == 0)
            has_etag = 1;
        len = 0;
        weak = 0;
    }
    check(!cf_buf_error(&list));
    /* (A cf_buf's data is always NUL-terminated.) */
    check(cf_console_etag_listed(list.data ? list.data : "", ETAG) == has_etag);
    cf_buf_puts(&list, " ,\t" ETAG);
    check(cf_console_etag_listed(list.data, ETAG) == 1);
    cf_buf_cleanup(&list);
}

static void quoted_path(const char *path)
{
    cf_buf doc;
    cf_buf_init(&doc, 1 << 20);
    cf_buf_puts(&doc, "{\"message\":\"");
    cf_console_json_quote(&doc, path, QUOTE_MAX);
    cf_buf_puts(&doc, "\"}");
    check(!cf_buf_error(&doc));

    /* What it must say: each byte as the code point of the same value, in UTF-8. */
    cf_buf want;
    cf_buf_init(&want, 1 << 20);
    size_t n = strlen(path);
    for (size_t i = 0; i < n && i < QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c < 0x80) {
            cf_buf_putc(&want, (char)c);
        } else {
            cf_buf_putc(&want, (char)(0xc0 | c >> 6));
            cf_buf_putc(&want, (char)(0x80 | (c & 0x3f)));
        }
    }
    if (n > QUOTE_MAX)
        cf_buf_puts(&want, "...");

    json_error_t jerr;
    json_t *parsed = json_loadb(doc.data, doc.len, JSON_ALLOW_NUL, &jerr);
    check(parsed != NULL);
    json_t *message = json_object_get(parsed, "message");
    check(json_is_string(message));
    check(json_string_length(message) == want.len);
    /* An empty buffer has no storage (data is NULL), and memcmp must not see a NULL even for 0 bytes. */
    check(want.len == 0 || memcmp(json_string_value(message), want.data, want.len) == 0);
    json_decref(parsed);
    cf_buf_cleanup(&want);
    cf_buf_cleanup(&doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size);
    check(text != NULL);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] % 3) {
    case 0: raw_header(text); break;
    case 1: built_list(data + 1, size - 1); break;
    default: quoted_path(text); break;
    }
    free(text);
    return 0;
}
