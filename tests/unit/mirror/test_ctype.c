/* test_ctype.c - content types from the first bytes and the name; which stored types to fix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "mirror/ctype.h"

typedef struct bytes {
    unsigned char p[8192];
    size_t n;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    assert_true(b->n + n <= sizeof b->p);
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put_str(bytes *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_be32(bytes *b, uint32_t v)
{
    unsigned char x[4] = {v >> 24, v >> 16, v >> 8, v};
    put(b, x, 4);
}

static void put_le32(bytes *b, uint32_t v)
{
    unsigned char x[4] = {v, v >> 8, v >> 16, v >> 24};
    put(b, x, 4);
}

static void png_chunk(bytes *b, const char *type, const unsigned char *data, size_t n)
{
    put_be32(b, (uint32_t)n);
    size_t at = b->n;
    put(b, type, 4);
    put(b, data, n);
    put_be32(b, (uint32_t)crc32(0, b->p + at, (uInt)(n + 4)));
}

/* A 2×2 RGB PNG that any decoder accepts: signature, IHDR, one zlib IDAT, IEND. */
static bytes png(void)
{
    bytes b = {.n = 0};
    put(&b, "\x89PNG\r\n\x1a\n", 8);
    unsigned char ihdr[13] = {0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0};
    png_chunk(&b, "IHDR", ihdr, sizeof ihdr);
    unsigned char raw[2 * (1 + 2 * 3)] = {0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 255};
    unsigned char z[128];
    uLongf zn = sizeof z;
    assert_int_equal(compress(z, &zn, raw, sizeof raw), Z_OK);
    png_chunk(&b, "IDAT", z, zn);
    png_chunk(&b, "IEND", NULL, 0);
    return b;
}

/* A baseline JFIF header as cameras and encoders write it: SOI, APP0 JFIF, a quantisation table. */
static bytes jpeg(void)
{
    bytes b = {.n = 0};
    put(&b, "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00", 20);
    put(&b, "\xff\xdb\x00\x43\x00", 5);
    for (int i = 0; i < 64; i++)
        put(&b, "\x10", 1);
    put(&b, "\xff\xd9", 2);
    return b;
}

static bytes gif(void)
{
    bytes b = {.n = 0};
    put(&b,
        "GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
        "\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
        43);
    return b;
}

/* A lossless 1×1 WebP: RIFF header, WEBP, one VP8L chunk. */
static bytes webp(void)
{
    static const unsigned char vp8l[] = {0x2f, 0x00, 0x00, 0x00, 0x00, 0x88, 0x88, 0x08};
    bytes b = {.n = 0};
    put_str(&b, "RIFF");
    put_le32(&b, 4 + 8 + sizeof vp8l);
    put_str(&b, "WEBPVP8L");
    put_le32(&b, sizeof vp8l);
    put(&b, vp8l, sizeof vp8l);
    return b;
}

static bytes avif(void)
{
    bytes b = {.n = 0};
    put_be32(&b, 28);
    put_str(&b, "ftypavif");
    put_be32(&b, 0);
    put_str(&b, "avifmif1miaf");
    put_be32(&b, 0);
    return b;
}

static bytes text(const char *s)
{
    bytes b = {.n = 0};
    put_str(&b, s);
    return b;
}

/* Bytes no format claims (a fixed pseudo-random sequence, so a run is repeatable). */
static bytes noise(void)
{
    bytes b = {.n = 4096};
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < b.n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b.p[i] = (unsigned char)(x >> 24);
    }
    return b;
}

static const char *const SVG = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\">"
                               "<rect width=\"10\" height=\"10\" fill=\"red\"/></svg>\n";
static const char *const SVG_BARE = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\">\n"
                                    "  <circle cx=\"5\" cy=\"5\" r=\"4\"/>\n</svg>\n";
static const char *const CSS = "body { margin: 0; font-family: sans-serif; }\n.a > .b { display: flex; }\n";
static const char *const JS = "import { x } from \"./x.js\";\nexport function f(a) { return a + x; }\n"
                              "console.log(f(1));\n";
static const char *const JSON = "{\"name\": \"shop\", \"sizes\": [1, 2, 3], \"ok\": true}\n";
static const char *const HTML = "<!DOCTYPE html>\n<html><head><title>Shop</title></head>\n"
                                "<body><p>hello</p></body></html>\n";
static const char *const PDF = "%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
                               "trailer\n<< /Root 1 0 R >>\n%%EOF\n";

static cf_ctype *ct;

static int setup(void **state)
{
    (void)state;
    cf_err err;
    int rc = cf_ctype_open(&ct, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    cf_ctype_close(ct);
    return 0;
}

/* The type of key with bytes b, from a copy of exactly b.n bytes on the heap: ASan and the fuzz
 * target then see any read past the head. */
static void expect(const char *key, const bytes *b, const char *want)
{
    unsigned char *p = malloc(b->n ? b->n : 1);
    assert_non_null(p);
    memcpy(p, b->p, b->n);
    char out[CF_CTYPE_MAX];
    cf_ctype_detect(ct, key, b->n ? p : NULL, b->n, out, sizeof out);
    free(p);
    if (strcmp(out, want) != 0)
        fail_msg("'%s': got '%s', want '%s'", key, out, want);
}

static void test_images_by_their_bytes(void **state)
{
    (void)state;
    bytes p = png(), j = jpeg(), g = gif(), w = webp(), a = avif();
    expect("img/a.png", &p, "image/png");
    expect("img/a.jpg", &j, "image/jpeg");
    expect("img/a.jpeg", &j, "image/jpeg");
    expect("img/a.gif", &g, "image/gif");
    expect("img/a.webp", &w, "image/webp");
    expect("img/a.avif", &a, "image/avif");
    /* The bytes win over the name for binary formats. */
    expect("img/really-a-png.jpg", &p, "image/png");
    expect("img/photo.PNG", &j, "image/jpeg");
    expect("img/no-extension", &g, "image/gif");
    expect("img/a.css", &w, "image/webp");
}

static void test_text_formats_by_their_name(void **state)
{
    (void)state;
    bytes css = text(CSS), js = text(JS), json = text(JSON), svg = text(SVG), bare = text(SVG_BARE);
    bytes html = text(HTML);
    expect("static/site.css", &css, "text/css; charset=utf-8");
    expect("static/app.js", &js, "text/javascript; charset=utf-8");
    expect("static/app.mjs", &js, "text/javascript; charset=utf-8");
    expect("static/app.js.map", &json, "application/json");
    expect("data/sizes.json", &json, "application/json");
    expect("site.webmanifest", &json, "application/manifest+json");
    expect("logo.svg", &svg, "image/svg+xml");
    expect("logo.svg", &bare, "image/svg+xml");
    expect("index.html", &html, "text/html; charset=utf-8");
    expect("INDEX.HTM", &html, "text/html; charset=utf-8");
    /* Text cannot contradict its name: JS in a .css file is the site's mistake to keep. */
    expect("odd.css", &js, "text/css; charset=utf-8");
    expect("notes.txt", &svg, "text/plain; charset=utf-8");
}

static void test_text_without_a_known_name(void **state)
{
    (void)state;
    bytes svg = text(SVG), bare = text(SVG_BARE), html = text(HTML), json = text(JSON), js = text(JS);
    bytes plain = text("just some words\nand a second line\n");
    expect("logo", &svg, "image/svg+xml");
    expect("logo", &bare, "image/svg+xml");
    expect("page", &html, "text/html; charset=utf-8");
    expect("data.bin", &json, "application/json");
    expect("README", &plain, "text/plain; charset=utf-8");
    expect("script", &js, "text/javascript; charset=utf-8");
    /* Text with a misleading binary extension: the bytes are not an image. */
    expect("photo.png", &plain, "text/plain; charset=utf-8");
    expect("photo.jpg", &svg, "image/svg+xml");
    /* Program source is shown, not downloaded. */
    bytes c = text("#include <stdio.h>\nint main(void) { return 0; }\n");
    expect("main", &c, "text/plain; charset=utf-8");
}

static void test_binaries_and_empty(void **state)
{
    (void)state;
    bytes pdf = text(PDF), n = noise(), empty = {.n = 0};
    expect("doc/manual.pdf", &pdf, "application/pdf");
    expect("doc/manual", &pdf, "application/pdf");
    expect("blob", &n, "application/octet-stream");
    expect("blob.css", &n, "text/css"); /* unknown bytes: the name is all there is, no charset */
    expect("font.woff2", &n, "font/woff2");
    expect("empty", &empty, "application/octet-stream");
    expect("empty.css", &empty, "text/css; charset=utf-8");
    expect("empty.png", &empty, "image/png");
    expect(".htaccess", &empty, "application/octet-stream");
    expect("dir.css/file", &empty, "application/octet-stream");
    bytes woff = text("wOF2\x00\x01\x00\x00"), wasm = {.n = 8};
    memcpy(wasm.p, "\0asm\1\0\0\0", 8);
    expect("f", &woff, "font/woff2");
    expect("m.bin", &wasm, "application/wasm");
    bytes gz = {.n = 24};
    memcpy(gz.p, "\x1f\x8b\x08\x00", 4);
    expect("site.css", &gz, "application/gzip");
}

static void test_charset_follows_the_bytes(void **state)
{
    (void)state;
    bytes latin1 = text("body::after { content: \"caf\xe9\"; }\n");
    expect("latin1.css", &latin1, "text/css");
    /* A head cut inside a two-byte character is still UTF-8 text. */
    bytes cut = text("a");
    while (cut.n + 2 <= CF_CTYPE_HEAD - 1)
        put_str(&cut, "\xc3\xa9");
    put(&cut, "\xc3", 1);
    assert_int_equal(cut.n, CF_CTYPE_HEAD);
    expect("notes.txt", &cut, "text/plain; charset=utf-8");
    expect("notes", &cut, "text/plain; charset=utf-8");
    /* Only the first CF_CTYPE_HEAD bytes count: binary beyond them does not change text. */
    bytes longer = {.n = 0};
    while (longer.n < CF_CTYPE_HEAD)
        put_str(&longer, "a line of text\n");
    longer.n = CF_CTYPE_HEAD;
    memset(longer.p + CF_CTYPE_HEAD, 0, 100);
    longer.n += 100;
    expect("log", &longer, "text/plain; charset=utf-8");
    /* A control character or DEL anywhere, even amid printable ASCII, makes bytes binary. */
    bytes ctrl = text("body { margin: 0 }\n.a { color: red }\n"), del = ctrl;
    ctrl.p[13] = 0x01;
    del.p[21] = 0x7f;
    expect("ctrl.css", &ctrl, "text/css");
    expect("del.css", &del, "text/css");
    /* Overlong encodings and surrogates are not UTF-8. */
    bytes overlong = text("a = \"\xc0\xaf\";\n"), surrogate = text("a = \"\xed\xa0\x80\";\n");
    expect("a.js", &overlong, "text/javascript");
    expect("a.js", &surrogate, "text/javascript");
}

static void test_output_is_bounded(void **state)
{
    (void)state;
    bytes css = text(CSS);
    char out[9];
    memset(out, 'x', sizeof out);
    cf_ctype_detect(ct, "a.css", css.p, css.n, out, sizeof out);
    assert_string_equal(out, "text/css");
    cf_ctype_detect(ct, "a.css", css.p, css.n, out, 0); /* nothing written, no crash */
    cf_ctype_detect(ct, NULL, NULL, 0, out, sizeof out);
    assert_string_equal(out, "applicat");
}

/* Without its database libmagic cannot work: the error says so and what to install. */
static void test_open_without_the_database(void **state)
{
    (void)state;
    setenv("MAGIC", "/nonexistent/magic.mgc", 1);
    cf_ctype *c = (cf_ctype *)1;
    cf_err err;
    int rc = cf_ctype_open(&c, &err);
    unsetenv("MAGIC");
    assert_int_equal(rc, CF_EIO);
    assert_null(c);
    assert_non_null(strstr(err.msg, "libmagic-mgc"));
    cf_ctype_close(NULL);
}

static void test_needs_fix(void **state)
{
    (void)state;
    static const struct {
        const char *stored, *detected;
        int fix;
    } rows[] = {
        /* generic stored types */
        {"", "image/png", 1},
        {"application/octet-stream", "image/png", 1},
        {"binary/octet-stream", "text/css; charset=utf-8", 1},
        {"Application/Octet-Stream", "image/jpeg", 1},
        /* text/plain where something more precise was found */
        {"text/plain", "image/png", 1},
        {"text/plain", "text/css; charset=utf-8", 1},
        {"text/plain; charset=utf-8", "text/javascript; charset=utf-8", 1},
        {"text/plain", "application/json", 1},
        {"text/plain", "text/plain; charset=utf-8", 0},
        /* a different major type */
        {"image/jpeg", "text/css; charset=utf-8", 1},
        {"text/html", "image/svg+xml", 1},
        {"application/xml", "image/svg+xml", 1},
        /* CSS and JavaScript, which browsers enforce */
        {"text/html", "text/css; charset=utf-8", 1},
        {"text/css", "text/javascript; charset=utf-8", 1},
        /* right already, up to parameters, case and aliases */
        {"image/png", "image/png", 0},
        {"text/css", "text/css; charset=utf-8", 0},
        {"TEXT/CSS; charset=UTF-8", "text/css; charset=utf-8", 0},
        {"application/javascript", "text/javascript; charset=utf-8", 0},
        {"application/x-javascript; charset=utf-8", "text/javascript; charset=utf-8", 0},
        {"image/x-icon", "image/vnd.microsoft.icon", 0},
        {"image/jpg", "image/jpeg", 0},
        /* same major type, a deliberate or harmless choice: browsers sniff images */
        {"image/jpeg", "image/png", 0},
        {"text/html", "text/plain; charset=utf-8", 0},
        {"application/json", "application/manifest+json", 0},
        /* nothing better known */
        {"image/png", "application/octet-stream", 0},
        {"", "application/octet-stream", 0},
        {"binary/octet-stream", "application/octet-stream", 0},
        {NULL, "image/png", 1},
        {"image/png", NULL, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        if (cf_ctype_needs_fix(rows[i].stored, rows[i].detected) != rows[i].fix)
            fail_msg("needs_fix('%s', '%s') should be %d", rows[i].stored ? rows[i].stored : "(null)",
                     rows[i].detected ? rows[i].detected : "(null)", rows[i].fix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_images_by_their_bytes),
        cmocka_unit_test(test_text_formats_by_their_name),
        cmocka_unit_test(test_text_without_a_known_name),
        cmocka_unit_test(test_binaries_and_empty),
        cmocka_unit_test(test_charset_follows_the_bytes),
        cmocka_unit_test(test_output_is_bounded),
        cmocka_unit_test(test_needs_fix),
        cmocka_unit_test(test_open_without_the_database),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
