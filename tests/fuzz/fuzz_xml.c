/*
 * fuzz_xml.c - request bodies (CreateBucketConfiguration, Delete, CompleteMultipartUpload,
 * Tagging) are parsed from the network, and names and keys from the network are written back
 * into responses.
 *
 * The input is used twice. As a document: a parse either fails with CF_EINVAL, no tree and a
 * positioned message, or yields a tree within the limits xml.h states, whose names carry no
 * namespace and whose text is XML characters only; that tree, written back with the writer,
 * parses to the same tree. As text: escaping leaves no markup character or control byte raw and
 * unescapes to the input; and "<a>escaped</a>", or an <Error> document naming the input as its
 * resource, parses back to the input exactly when the input is UTF-8 made of characters XML 1.0
 * allows (the writer cannot do better: XML 1.0 has no form at all for U+0001..U+001F other than
 * tab, LF and CR, nor for invalid UTF-8).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "core/buf.h"
#include "core/err.h"
#include "s3/error.h"
#include "s3/request.h"
#include "s3/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* As xml.h states them. */
#define LIMIT_DEPTH 16
#define LIMIT_ELEMENTS 60000
#define LIMIT_TEXT (4u << 20)

/* Decodes one UTF-8 character; 0 when the bytes are not well-formed UTF-8. */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t c = s[0], min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, c &= 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, c &= 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* XML 1.0 section 2.2, Char. */
static int xml_char(uint32_t c)
{
    return c == 0x9 || c == 0xa || c == 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) ||
           (c >= 0x10000 && c <= 0x10ffff);
}

static int xml_clean(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_next(s + i, n - i, &cp);
        if (!len || !xml_char(cp))
            return 0;
        i += len;
    }
    return 1;
}

/* ---- the input as a document ---- */

typedef struct stats {
    size_t elements, text;
} stats;

static void check_tree(const cf_xml_node *n, int depth, stats *st)
{
    for (; n; n = n->next) {
        check(depth <= LIMIT_DEPTH);
        check(n->name && n->name[0] && !strchr(n->name, '|'));
        check(n->text);
        size_t tl = strlen(n->text);
        check(xml_clean((const uint8_t *)n->text, tl));
        st->elements++;
        st->text += tl;
        check_tree(n->child, depth + 1, st);
    }
}

static void write_tree(cf_buf *b, const cf_xml_node *n)
{
    for (; n; n = n->next) {
        check(cf_xml_open(b, n->name) == 0);
        check(cf_xml_escape(b, n->text, strlen(n->text)) == 0);
        write_tree(b, n->child);
        check(cf_xml_close(b, n->name) == 0);
    }
}

static int same_tree(const cf_xml_node *a, const cf_xml_node *b)
{
    for (; a && b; a = a->next, b = b->next)
        if (strcmp(a->name, b->name) != 0 || strcmp(a->text, b->text) != 0 || !same_tree(a->child, b->child))
            return 0;
    return !a && !b;
}

static void check_parse(const uint8_t *data, size_t size)
{
    cf_xml_node *root = (cf_xml_node *)(uintptr_t)1;
    cf_err err = {0};
    int rc = cf_xml_parse((const char *)data, size, &root, &err);
    if (rc != 0) {
        check(rc == CF_EINVAL && err.code == CF_EINVAL && root == NULL);
        check(strncmp(err.msg, "malformed XML at line ", 22) == 0);
        return;
    }
    check(root && !root->next);
    stats st = {0, 0};
    check_tree(root, 1, &st);
    check(st.elements <= LIMIT_ELEMENTS && st.text <= LIMIT_TEXT);

    /* Names came through a namespace-aware parser, so a written-back one needs no declaration. */
    cf_buf b;
    cf_buf_init(&b, 8 * size + 64);
    write_tree(&b, root);
    cf_xml_node *again = NULL;
    check(cf_xml_parse(b.data, b.len, &again, &err) == 0);
    check(same_tree(root, again));
    cf_xml_free(again);
    cf_buf_cleanup(&b);
    cf_xml_free(root);
}

/* ---- the input as text ---- */

/* Undoes exactly the forms the writer produces; anything else is a writer bug. */
static void unescape_checked(const char *e, size_t n, cf_buf *out)
{
    static const struct {
        const char *ref;
        char c;
    } named[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)e[i];
        check(c != '<' && c != '>' && c != '"' && c != '\'' && c >= 0x20 && c != 0x7f);
        if (c != '&') {
            check(cf_buf_putc(out, (char)c) == 0);
            i++;
            continue;
        }
        size_t k = 0;
        while (k < 5 && strncmp(e + i, named[k].ref, strlen(named[k].ref)) != 0)
            k++;
        if (k < 5) {
            check(cf_buf_putc(out, named[k].c) == 0);
            i += strlen(named[k].ref);
            continue;
        }
        /* &#xH; or &#xHH; for a control byte, hex in uppercase. */
        check(i + 4 < n && e[i + 1] == '#' && e[i + 2] == 'x');
        unsigned v = 0;
        size_t j = i + 3, digits = 0;
        for (; j < n && e[j] != ';'; j++, digits++) {
            char h = e[j];
            check((h >= '0' && h <= '9') || (h >= 'A' && h <= 'F'));
            v = v << 4 | (unsigned)(h <= '9' ? h - '0' : h - 'A' + 10);
        }
        check(j < n && digits >= 1 && digits <= 2 && (v < 0x20 || v == 0x7f));
        check(!(digits == 2 && e[i + 3] == '0')); /* shortest form */
        check(cf_buf_putc(out, (char)v) == 0);
        i = j + 1;
    }
}

static void check_escape(const uint8_t *data, size_t size)
{
    cf_buf esc, back, doc;
    cf_buf_init(&esc, 6 * size + 16);
    cf_buf_init(&back, size + 16);
    cf_buf_init(&doc, 12 * size + 1024); /* also holds the <Error> documents (message and a field) */
    check(cf_xml_escape(&esc, (const char *)data, size) == 0);
    unescape_checked(esc.data ? esc.data : "", esc.len, &back);
    check(back.len == size && (size == 0 || memcmp(back.data, data, size) == 0));

    int clean = xml_clean(data, size);
    check(cf_buf_puts(&doc, "<a>") == 0 && cf_buf_append(&doc, esc.data, esc.len) == 0 &&
          cf_buf_puts(&doc, "</a>") == 0);
    cf_xml_node *root = NULL;
    int rc = cf_xml_parse(doc.data, doc.len, &root, NULL);
    check((rc == 0) == clean);
    if (rc == 0) {
        check(strlen(root->text) == size && memcmp(root->text, data, size) == 0);
        cf_xml_free(root);
    }

    /* The <Error> document echoes the request path, which the client chose. */
    if (!memchr(data, '\0', size)) {
        char *resource = malloc(size + 1);
        check(resource);
        memcpy(resource, data, size);
        resource[size] = '\0';
        cf_buf_reset(&doc);
        check(cf_s3_error_xml(&doc, CF_S3_NoSuchKey, NULL, resource, "RID") == 0);
        /* It must always parse: a path XML cannot carry is sent percent-encoded instead. */
        rc = cf_xml_parse(doc.data, doc.len, &root, NULL);
        check(rc == 0);
        const cf_xml_node *r = cf_xml_child(root, "Resource");
        check(r != NULL);
        if (clean) {
            check(strcmp(r->text, resource) == 0);
        } else {
            cf_buf enc;
            cf_buf_init(&enc, 3 * size + 16);
            check(cf_s3_url_encode_key(&enc, resource, size) == 0);
            check(strcmp(r->text, enc.data ? enc.data : "") == 0);
            cf_buf_cleanup(&enc);
        }
        check(strcmp(cf_xml_child(root, "Code")->text, "NoSuchKey") == 0);
        cf_xml_free(root);

        /* A message may quote the request too (a header, a tag key cut at a byte limit), and
         * the elements AWS adds carry its values: the document still parses, the message with
         * U+FFFD in place of each byte XML cannot carry. */
        cf_buf_reset(&doc);
        const cf_s3_error_field f = {"ArgumentValue", resource};
        check(cf_s3_error_xml_fields(&doc, CF_S3_InvalidArgument, resource, "/", &f, 1, "RID") == 0);
        check(cf_xml_parse(doc.data, doc.len, &root, NULL) == 0);
        const char *m = cf_xml_child(root, "Message")->text;
        check(xml_clean((const uint8_t *)m, strlen(m)));
        if (clean)
            check(strcmp(m, resource) == 0 &&
                  strcmp(cf_xml_child(root, "ArgumentValue")->text, resource) == 0);
        cf_xml_free(root);
        free(resource);
    }
    cf_buf_cleanup(&esc);
    cf_buf_cleanup(&back);
    cf_buf_cleanup(&doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    check_parse(data, size);
    check_escape(data, size);
    return 0;
}
