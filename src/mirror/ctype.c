/*
 * ctype.c - content types from bytes and names (ctype.h); the rule is docs/MIRROR.md's.
 */
#include "mirror/ctype.h"

#include <magic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OCTET "application/octet-stream"

struct cf_ctype {
    magic_t magic;
};

/* Checks that decompress (and may fork a decompressor), look into tar, ELF and OLE containers,
 * or guess a program from text cost time and parse structure for nothing a web server serves.
 * The text and encoding checks stay: without them libmagic cannot tell HTML, XML or SVG. */
#define MAGIC_FLAGS                                                                                          \
    (MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS | MAGIC_NO_COMPRESS_FORK | MAGIC_NO_CHECK_TAR | \
     MAGIC_NO_CHECK_ELF | MAGIC_NO_CHECK_CDF | MAGIC_NO_CHECK_APPTYPE | MAGIC_NO_CHECK_TOKENS)

typedef struct ext_type {
    const char *ext, *type;
    int text; /* the bytes of such a file are text: the extension decides over libmagic's guess */
} ext_type;

/* Web formats first; every type is the one docs/MIRROR.md lists. */
static const ext_type ext_table[] = {
    {"css", "text/css", 1},
    {"js", "text/javascript", 1},
    {"mjs", "text/javascript", 1},
    {"cjs", "text/javascript", 1},
    {"json", "application/json", 1},
    {"map", "application/json", 1},
    {"jsonld", "application/ld+json", 1},
    {"webmanifest", "application/manifest+json", 1},
    {"svg", "image/svg+xml", 1},
    {"html", "text/html", 1},
    {"htm", "text/html", 1},
    {"xhtml", "application/xhtml+xml", 1},
    {"xml", "application/xml", 1},
    {"rss", "application/rss+xml", 1},
    {"atom", "application/atom+xml", 1},
    {"txt", "text/plain", 1},
    {"csv", "text/csv", 1},
    {"tsv", "text/tab-separated-values", 1},
    {"md", "text/markdown", 1},
    {"markdown", "text/markdown", 1},
    {"vtt", "text/vtt", 1},
    {"ics", "text/calendar", 1},
    {"yaml", "application/yaml", 1},
    {"yml", "application/yaml", 1},
    {"ico", "image/vnd.microsoft.icon", 0},
    {"png", "image/png", 0},
    {"jpg", "image/jpeg", 0},
    {"jpeg", "image/jpeg", 0},
    {"gif", "image/gif", 0},
    {"webp", "image/webp", 0},
    {"avif", "image/avif", 0},
    {"bmp", "image/bmp", 0},
    {"tif", "image/tiff", 0},
    {"tiff", "image/tiff", 0},
    {"heic", "image/heic", 0},
    {"woff", "font/woff", 0},
    {"woff2", "font/woff2", 0},
    {"ttf", "font/ttf", 0},
    {"otf", "font/otf", 0},
    {"eot", "application/vnd.ms-fontobject", 0},
    {"wasm", "application/wasm", 0},
    {"pdf", "application/pdf", 0},
    {"zip", "application/zip", 0},
    {"gz", "application/gzip", 0},
    {"mp4", "video/mp4", 0},
    {"webm", "video/webm", 0},
    {"mp3", "audio/mpeg", 0},
    {"ogg", "audio/ogg", 0},
    {"wav", "audio/wav", 0},
};

/* One name for each type that goes by several (libmagic's, and those other tools store). */
static const char *const aliases[][2] = {
    {"application/javascript", "text/javascript"},
    {"application/x-javascript", "text/javascript"},
    {"text/x-javascript", "text/javascript"},
    {"application/ecmascript", "text/javascript"},
    {"text/ecmascript", "text/javascript"},
    {"text/xml", "application/xml"},
    {"application/csv", "text/csv"},
    {"image/x-icon", "image/vnd.microsoft.icon"},
    {"image/svg", "image/svg+xml"},
    {"image/jpg", "image/jpeg"},
    {"image/pjpeg", "image/jpeg"},
    {"image/x-ms-bmp", "image/bmp"},
    {"application/font-woff", "font/woff"},
    {"application/x-font-woff", "font/woff"},
    {"application/x-font-ttf", "font/ttf"},
    {"application/vnd.ms-opentype", "font/otf"},
    {"application/x-gzip", "application/gzip"},
    {"audio/x-wav", "audio/wav"},
    {"text/x-markdown", "text/markdown"},
    {"application/x-wasm", "application/wasm"},
};

/* What libmagic may name from text bytes and is worth serving as such; other text/… guesses (C,
 * shell, Python source, …) become text/plain, which a browser shows instead of downloading. */
static const char *const text_kept[] = {
    "text/html", "application/xml", "image/svg+xml", "application/json", "text/csv", "text/javascript",
};

int cf_ctype_open(cf_ctype **out, cf_err *err)
{
    *out = NULL;
    cf_ctype *c = calloc(1, sizeof *c);
    if (!c)
        return cf_err_set(err, CF_ENOMEM, "content types: out of memory");
    c->magic = magic_open(MAGIC_FLAGS);
    if (!c->magic) {
        free(c);
        return cf_err_set(err, CF_ENOMEM, "content types: libmagic cannot start");
    }
    if (magic_load(c->magic, NULL) != 0) {
        int rc = cf_err_set(err, CF_EIO,
                            "content types: libmagic cannot load its database: %s; hint: "
                            "install libmagic-mgc",
                            magic_error(c->magic) ? magic_error(c->magic) : "unknown error");
        magic_close(c->magic);
        free(c);
        return rc;
    }
    /* The callers give the first CF_CTYPE_HEAD bytes; a longer head costs time, not accuracy. */
    size_t bytes_max = CF_CTYPE_HEAD;
    magic_setparam(c->magic, MAGIC_PARAM_BYTES_MAX, &bytes_max);
    *out = c;
    return 0;
}

void cf_ctype_close(cf_ctype *c)
{
    if (!c)
        return;
    magic_close(c->magic);
    free(c);
}

/* The table's entry for key's extension (after the last '.' of the last segment, but not a
 * leading one: ".htaccess" has none), or NULL. */
static const ext_type *ext_lookup(const char *key)
{
    if (!key)
        return NULL;
    const char *name = strrchr(key, '/');
    name = name ? name + 1 : key;
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name || strlen(dot + 1) >= 16)
        return NULL;
    for (size_t i = 0; i < sizeof ext_table / sizeof *ext_table; i++)
        if (!strcasecmp(ext_table[i].ext, dot + 1))
            return &ext_table[i];
    return NULL;
}

static int starts(const unsigned char *p, size_t n, const char *sig, size_t len)
{
    return n >= len && memcmp(p, sig, len) == 0;
}

/* Signatures that prove the format in a few bytes; cheaper than libmagic by two orders of
 * magnitude, and they cover what a web site mostly holds. */
static const char *sniff(const unsigned char *p, size_t n)
{
    if (starts(p, n, "\x89PNG\r\n\x1a\n", 8))
        return "image/png";
    if (starts(p, n, "\xff\xd8\xff", 3))
        return "image/jpeg";
    if (starts(p, n, "GIF87a", 6) || starts(p, n, "GIF89a", 6))
        return "image/gif";
    if (n >= 12 && starts(p, n, "RIFF", 4) && memcmp(p + 8, "WEBP", 4) == 0)
        return "image/webp";
    if (n >= 12 && memcmp(p + 4, "ftyp", 4) == 0 &&
        (memcmp(p + 8, "avif", 4) == 0 || memcmp(p + 8, "avis", 4) == 0))
        return "image/avif";
    if (starts(p, n, "%PDF-", 5))
        return "application/pdf";
    if (starts(p, n, "wOFF", 4))
        return "font/woff";
    if (starts(p, n, "wOF2", 4))
        return "font/woff2";
    if (starts(p, n, "\0asm", 4))
        return "application/wasm";
    return NULL;
}

/* Whether p[0..n) is UTF-8 text (ASCII included) without the control characters binary data
 * holds; *whole gets how many bytes form complete characters: a head cut inside a character still
 * counts as text. */
static int utf8_text(const unsigned char *p, size_t n, size_t *whole)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            /* Eight printable ASCII bytes at once (no high bit, none below 0x20, no DEL): most of
             * a text file, and 8 times fewer steps. */
            uint64_t w, del;
            memcpy(&w, p + i, 8);
            del = w ^ (ones * 0x7f);
            if (!(w & highs) && !((w - ones * 0x20) & ~w & highs) && !((del - ones) & ~del & highs)) {
                i += 8;
                continue;
            }
        }
        unsigned char b = p[i];
        if (b < 0x80) {
            /* BEL, BS, TAB, LF, VT, FF, CR and ESC occur in text; other controls do not. */
            if ((b < 0x07 || (b > 0x0d && b < 0x20 && b != 0x1b)) || b == 0x7f)
                return 0;
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (b >= 0xc2 && b <= 0xdf)
            len = 2, cp = b & 0x1f;
        else if (b >= 0xe0 && b <= 0xef)
            len = 3, cp = b & 0x0f;
        else if (b >= 0xf0 && b <= 0xf4)
            len = 4, cp = b & 0x07;
        else
            return 0;
        if (n - i < len) {
            for (size_t j = i + 1; j < n; j++)
                if ((p[j] & 0xc0) != 0x80)
                    return 0;
            break; /* cut by the end of the head */
        }
        for (size_t j = 1; j < len; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0; /* overlong, a surrogate, or beyond Unicode */
        i += len;
    }
    *whole = i;
    return 1;
}

/* A type in lower case without parameters, in its one name: into buf, returned. */
static const char *canonical(const char *type, char *buf, size_t cap)
{
    while (*type == ' ' || *type == '\t')
        type++;
    size_t n = 0;
    while (type[n] && type[n] != ';' && type[n] != ' ' && type[n] != '\t' && n + 1 < cap) {
        buf[n] = (char)(type[n] >= 'A' && type[n] <= 'Z' ? type[n] + 32 : type[n]);
        n++;
    }
    buf[n] = '\0';
    for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
        if (!strcmp(buf, aliases[i][0]))
            return aliases[i][1];
    return buf;
}

static int major_is(const char *type, const char *major)
{
    size_t n = strlen(major);
    return !strncmp(type, major, n) && type[n] == '/';
}

static int in_list(const char *type, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(type, list[i]))
            return 1;
    return 0;
}

static int well_formed(const char *type)
{
    const char *slash = strchr(type, '/');
    if (!slash || slash == type || !slash[1] || strchr(slash + 1, '/'))
        return 0;
    for (const char *p = type; *p; p++)
        if (p != slash && !((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("!#$&^_.+-", *p)))
            return 0;
    return 1;
}

/* libmagic's type for the bytes, canonical; NULL when it knows nothing better than "binary". */
static const char *magic_type(cf_ctype *c, const void *head, size_t n, char *buf, size_t cap)
{
    const char *m = magic_buffer(c->magic, head, n);
    if (!m)
        return NULL;
    m = canonical(m, buf, cap);
    if (!well_formed(m))
        return NULL; /* it goes into a header: only "token/token" */
    if (!*m || !strcmp(m, OCTET) || !strcmp(m, "application/x-empty") || !strcmp(m, "inode/x-empty"))
        return NULL;
    return m;
}

/* The type, and in *utf8 whether the bytes are UTF-8 text (charset=utf-8 for a text/… type). */
static const char *decide(cf_ctype *c, const ext_type *e, const unsigned char *p, size_t n, int *utf8,
                          char *buf, size_t cap)
{
    *utf8 = 0;
    if (n == 0) {
        *utf8 = 1;
        return e ? e->type : OCTET;
    }
    const char *sig = sniff(p, n);
    if (sig)
        return sig;
    size_t whole = n;
    *utf8 = utf8_text(p, n, &whole);
    if (*utf8 && e && e->text)
        return e->type; /* text cannot contradict the name: CSS, JS, JSON all look alike */
    const char *m = magic_type(c, p, *utf8 ? whole : n, buf, cap);
    if (!m)
        return e ? e->type : OCTET; /* unknown bytes: the name is all there is */
    int texty = major_is(m, "text") || in_list(m, text_kept, sizeof text_kept / sizeof *text_kept);
    if (texty) {
        if (e && e->text)
            return e->type;
        return in_list(m, text_kept, sizeof text_kept / sizeof *text_kept) ? m : "text/plain";
    }
    if (!strcmp(m, "font/sfnt")) /* TrueType and OpenType share the container */
        return e && !strcmp(e->ext, "otf") ? "font/otf" : "font/ttf";
    return m; /* the bytes name a binary format: they win over the name */
}

void cf_ctype_detect(cf_ctype *c, const char *key, const void *head, size_t n, char *out, size_t cap)
{
    if (!cap)
        return;
    if (n > CF_CTYPE_HEAD)
        n = CF_CTYPE_HEAD;
    char buf[CF_CTYPE_MAX];
    int utf8;
    const char *type = decide(c, ext_lookup(key), head, head ? n : 0, &utf8, buf, sizeof buf);
    snprintf(out, cap, "%s%s", type, utf8 && major_is(type, "text") ? "; charset=utf-8" : "");
}

int cf_ctype_needs_fix(const char *stored, const char *detected)
{
    char sb[CF_CTYPE_MAX], db[CF_CTYPE_MAX];
    const char *s = canonical(stored ? stored : "", sb, sizeof sb);
    const char *d = canonical(detected ? detected : "", db, sizeof db);
    if (!*d || !strcmp(d, OCTET))
        return 0;
    if (!*s || !strcmp(s, OCTET) || !strcmp(s, "binary/octet-stream"))
        return 1;
    if (!strcmp(s, d))
        return 0;
    if (!strcmp(s, "text/plain"))
        return 1;
    const char *sslash = strchr(s, '/'), *dslash = strchr(d, '/');
    size_t smaj = sslash ? (size_t)(sslash - s) : strlen(s), dmaj = dslash ? (size_t)(dslash - d) : strlen(d);
    if (smaj != dmaj || strncmp(s, d, smaj) != 0)
        return 1;
    return !strcmp(d, "text/css") || !strcmp(d, "text/javascript");
}
