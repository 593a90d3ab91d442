/*
 * fuzz_mirror_ctype.c - content-type detection reads the first bytes of files and objects nobody
 * vetted, through libmagic and our own signature and UTF-8 checks.
 *
 * The input is KEY NUL BYTES (no NUL: all of it is the key and there are no bytes). BYTES are
 * given from a heap copy of exactly their length, so that ASan reports any read past the head.
 *
 * Postconditions: the answer is one "major/minor" type of token characters, with
 * "; charset=utf-8" only on a text/… type; the same input gives the same answer; a smaller output
 * buffer gets a prefix of it; no type asks to be fixed into itself, and a generic stored type is
 * fixed unless nothing better was found; a PNG signature in front of any bytes is image/png
 * whatever the name; without bytes, the name alone decides.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "mirror/ctype.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$&^_.+-", c);
}

static void check_type(const char *t)
{
    const char *slash = strchr(t, '/');
    check(slash && slash > t && slash[1]);
    const char *end = strchr(t, ';');
    size_t n = end ? (size_t)(end - t) : strlen(t);
    for (size_t i = 0; i < n; i++)
        check(t + i == slash || (token_char(t[i]) && t[i] != '/'));
    if (end)
        check(!strcmp(end, "; charset=utf-8") && !strncmp(t, "text/", 5));
}

static char *dup_bytes(const uint8_t *p, size_t n)
{
    char *d = malloc(n ? n : 1);
    check(d);
    if (n)
        memcpy(d, p, n);
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cf_ctype *ct;
    if (!ct) {
        cf_err err;
        check(cf_ctype_open(&ct, &err) == 0);
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t klen = nul ? (size_t)(nul - data) : size;
    if (klen > 1024)
        return 0;
    char key[1025];
    memcpy(key, data, klen);
    key[klen] = '\0';
    size_t n = nul ? size - klen - 1 : 0;
    char *head = dup_bytes(nul ? nul + 1 : data, n);

    char out[CF_CTYPE_MAX], again[CF_CTYPE_MAX], small[12];
    cf_ctype_detect(ct, key, head, n, out, sizeof out);
    check_type(out);
    cf_ctype_detect(ct, key, head, n, again, sizeof again);
    check(!strcmp(out, again));
    cf_ctype_detect(ct, key, head, n, small, sizeof small);
    check(strlen(small) < sizeof small && !strncmp(small, out, strlen(small)));

    check(!cf_ctype_needs_fix(out, out));
    int unknown = !strcmp(out, "application/octet-stream");
    check(cf_ctype_needs_fix("", out) == !unknown);
    check(cf_ctype_needs_fix("binary/octet-stream", out) == !unknown);

    char *png = malloc(n + 8);
    check(png);
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    if (n)
        memcpy(png + 8, head, n);
    cf_ctype_detect(ct, key, png, n + 8, again, sizeof again);
    check(!strcmp(again, "image/png"));
    free(png);

    char by_name[CF_CTYPE_MAX];
    cf_ctype_detect(ct, key, NULL, 0, by_name, sizeof by_name);
    check_type(by_name);
    free(head);
    return 0;
}
