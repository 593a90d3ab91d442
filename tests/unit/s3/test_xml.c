/*
 * test_xml.c - the XML writer's escaping and the request-body parser of src/s3/xml.c.
 *
 * Text written is read back with the parser wherever that is possible, so the two halves check
 * each other. The parser is fed what S3 request bodies look like (namespaced or not), every
 * kind of DOCTYPE an attacker would send, malformed documents, and inputs at and just past
 * each limit xml.h documents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/err.h"
#include "s3/xml.h"

#define MIB (1 << 20)
/* The limits of cf_xml_parse as xml.h states them. */
#define LIMIT_DEPTH 16
#define LIMIT_ELEMENTS 60000
#define LIMIT_TEXT (4 * MIB)

static cf_xml_node *parse_ok(const char *doc, size_t len)
{
    cf_xml_node *root = NULL;
    cf_err err = {0};
    int rc = cf_xml_parse(doc, len, &root, &err);
    if (rc != 0)
        fail_msg("parse failed: %s", err.msg);
    assert_non_null(root);
    return root;
}

#define PARSE_OK(s) parse_ok(s, strlen(s))

/* Returns the message so callers can check why. */
static const char *parse_fails(const char *doc, size_t len, cf_err *err)
{
    cf_xml_node *root = (cf_xml_node *)(uintptr_t)1;
    int rc = cf_xml_parse(doc, len, &root, err);
    if (rc != CF_EINVAL)
        fail_msg("rc %d for '%.60s'", rc, doc);
    assert_null(root);
    assert_int_equal(err->code, CF_EINVAL);
    assert_true(strncmp(err->msg, "malformed XML at line ", 22) == 0);
    return err->msg;
}

static int count_children(const cf_xml_node *n)
{
    int k = 0;
    for (const cf_xml_node *c = n->child; c; c = c->next)
        k++;
    return k;
}

/* ---- writer ---- */

static void expect_escape(const char *in, size_t n, const char *want)
{
    cf_buf b;
    cf_buf_init(&b, 4096);
    assert_int_equal(cf_xml_escape(&b, in, n), 0);
    assert_string_equal(b.data ? b.data : "", want);
    cf_buf_cleanup(&b);
}

static void test_escape_markup_characters(void **state)
{
    expect_escape("&", 1, "&amp;");
    expect_escape("<", 1, "&lt;");
    expect_escape(">", 1, "&gt;"); /* "]]>" in text is not well-formed unless '>' is escaped */
    expect_escape("\"", 1, "&quot;");
    expect_escape("'", 1, "&apos;");
    expect_escape("a<b>&c\"d'e", 10, "a&lt;b&gt;&amp;c&quot;d&apos;e");
    /* Already-escaped text is escaped again: the writer never guesses. */
    expect_escape("&amp;", 5, "&amp;amp;");
    expect_escape("", 0, "");
}

static void test_escape_control_characters(void **state)
{
    /* Escaped so that XML end-of-line handling cannot turn "\r\n" or "\r" into "\n". */
    expect_escape("\r", 1, "&#xD;");
    expect_escape("\n", 1, "&#xA;");
    expect_escape("\t", 1, "&#x9;");
    expect_escape("\x7f", 1, "&#x7F;");
    expect_escape("\x01\x1f", 2, "&#x1;&#x1F;");
    expect_escape("a\0b", 3, "a&#x0;b"); /* n, not a NUL, ends the text */
}

/* Bytes from 0x80 up are left alone: UTF-8 goes out as UTF-8. */
static void test_escape_passes_utf8_through(void **state)
{
    expect_escape("\xe2\x82\xac \xf0\x9f\x98\x80", 8, "\xe2\x82\xac \xf0\x9f\x98\x80");
}

static void test_elements(void **state)
{
    cf_buf b;
    cf_buf_init(&b, 4096);
    assert_int_equal(cf_xml_open(&b, "ListBucketResult"), 0);
    assert_int_equal(cf_xml_elem(&b, "Key", "a&b<c>"), 0);
    assert_int_equal(cf_xml_elem(&b, "Prefix", ""), 0);
    assert_int_equal(cf_xml_elem_u64(&b, "Size", 18446744073709551615ULL), 0);
    assert_int_equal(cf_xml_elem_u64(&b, "MaxKeys", 0), 0);
    assert_int_equal(cf_xml_close(&b, "ListBucketResult"), 0);
    assert_string_equal(b.data, "<ListBucketResult><Key>a&amp;b&lt;c&gt;</Key><Prefix></Prefix>"
                                "<Size>18446744073709551615</Size><MaxKeys>0</MaxKeys></ListBucketResult>");
    cf_buf_cleanup(&b);
}

static void test_writer_respects_buffer_max(void **state)
{
    cf_buf b;
    cf_buf_init(&b, 8);
    assert_int_equal(cf_xml_escape(&b, "&&&", 3), CF_ETOOBIG);
    assert_true(b.len <= 8);
    cf_buf_reset(&b);
    assert_int_equal(cf_xml_elem(&b, "Key", "toolong"), CF_ETOOBIG);
    assert_true(b.len <= 8);
    cf_buf_cleanup(&b);
}

/* Every character XML 1.0 can carry comes back from the parser as it was written. */
static void test_written_text_parses_back(void **state)
{
    cf_buf text, doc;
    cf_buf_init(&text, 4096);
    cf_buf_init(&doc, 16384);
    assert_int_equal(cf_buf_puts(&text, "\t\n\r\r\n"), 0);
    for (int c = 0x20; c < 0x80; c++)
        assert_int_equal(cf_buf_putc(&text, (char)c), 0);
    assert_int_equal(cf_buf_puts(&text, "]]> \xc3\xa9\xe2\x82\xac\xef\xbf\xbd\xf0\x9f\x98\x80 "), 0);

    assert_int_equal(cf_buf_puts(&doc, CF_XML_DECL), 0);
    assert_int_equal(cf_xml_open(&doc, "Key"), 0);
    assert_int_equal(cf_xml_escape(&doc, text.data, text.len), 0);
    assert_int_equal(cf_xml_close(&doc, "Key"), 0);

    cf_xml_node *root = parse_ok(doc.data, doc.len);
    assert_string_equal(root->name, "Key");
    assert_int_equal(strlen(root->text), text.len);
    assert_memory_equal(root->text, text.data, text.len);
    cf_xml_free(root);
    cf_buf_cleanup(&text);
    cf_buf_cleanup(&doc);
}

/*
 * XML 1.0 has no way to carry U+0001..U+0008, U+000B, U+000C, U+000E..U+001F, not even as a
 * character reference, so "&#x1;" from the writer is refused by a conforming parser (expat
 * here, and most clients'). This pins the parser side; the writer side is in the report.
 */
static void test_control_character_references_are_not_xml(void **state)
{
    cf_err err;
    parse_fails("<a>&#x1;</a>", 12, &err);
    parse_fails("<a>&#x1F;</a>", 13, &err);
    parse_fails("<a>&#0;</a>", 11, &err);
    cf_xml_node *root = PARSE_OK("<a>&#x9;&#xA;&#xD;&#x7F;</a>");
    assert_string_equal(root->text, "\t\n\r\x7f");
    cf_xml_free(root);
}

/* ---- parser: documents S3 clients send ---- */

static void test_parse_delete_objects_body(void **state)
{
    const char *doc = CF_XML_DECL "<Delete xmlns=\"" CF_S3_XMLNS "\">\n"
                                  "  <Object><Key>sample1.txt</Key></Object>\n"
                                  "  <Object><Key>sample2.txt</Key><VersionId>v2</VersionId></Object>\n"
                                  "  <Quiet>true</Quiet>\n"
                                  "</Delete>";
    cf_xml_node *root = PARSE_OK(doc);
    assert_string_equal(root->name, "Delete"); /* namespace stripped */
    assert_int_equal(count_children(root), 3);
    const cf_xml_node *obj = cf_xml_child(root, "Object");
    assert_non_null(obj);
    assert_string_equal(cf_xml_child(obj, "Key")->text, "sample1.txt");
    assert_null(cf_xml_child(obj, "VersionId"));
    /* cf_xml_child finds the first; the rest are reached through next. */
    assert_non_null(obj->next);
    assert_string_equal(obj->next->name, "Object");
    assert_string_equal(cf_xml_child(obj->next, "Key")->text, "sample2.txt");
    assert_string_equal(cf_xml_child(obj->next, "VersionId")->text, "v2");
    assert_string_equal(cf_xml_child(root, "Quiet")->text, "true");
    /* Whitespace between elements is the parent's text, kept verbatim. */
    assert_string_equal(root->text, "\n  \n  \n  \n");
    cf_xml_free(root);
}

static void test_parse_prefixed_namespace(void **state)
{
    cf_xml_node *root = PARSE_OK("<s3:CreateBucketConfiguration xmlns:s3=\"" CF_S3_XMLNS "\">"
                                 "<s3:LocationConstraint>eu-west-1</s3:LocationConstraint>"
                                 "</s3:CreateBucketConfiguration>");
    assert_string_equal(root->name, "CreateBucketConfiguration");
    assert_string_equal(cf_xml_child(root, "LocationConstraint")->text, "eu-west-1");
    cf_xml_free(root);
    /* A URI holding the namespace separator: expat >= 2.4.5 refuses it (CVE-2022-25236);
     * older ones pass "urn:x|y|z|a", whose local name is still what follows the last '|'. */
    cf_err err;
    const char *doc = "<a xmlns=\"urn:x|y|z\"><b/></a>";
    if (cf_xml_parse(doc, strlen(doc), &root, &err) == 0) {
        assert_string_equal(root->name, "a");
        assert_string_equal(root->child->name, "b");
        cf_xml_free(root);
    } else {
        assert_int_equal(err.code, CF_EINVAL);
        assert_null(root);
    }
    parse_fails("<x:a/>", 6, &err); /* unbound prefix */
}

static void test_parse_text_forms(void **state)
{
    cf_xml_node *root = PARSE_OK("<a>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#x20AC;</a>");
    assert_string_equal(root->text, "<>&\"'AB\xe2\x82\xac");
    cf_xml_free(root);
    root = PARSE_OK("<a><![CDATA[<not>&markup;]]></a>");
    assert_string_equal(root->text, "<not>&markup;");
    cf_xml_free(root);
    root = PARSE_OK("<?xml version=\"1.0\"?><!-- c --><a><?pi x?>t<!-- c2 -->u</a><!-- after -->");
    assert_string_equal(root->text, "tu");
    assert_null(root->child);
    cf_xml_free(root);
    /* XML end-of-line handling: a raw CR never survives, which is why the writer escapes it. */
    root = PARSE_OK("<a>x\r\ny\rz</a>");
    assert_string_equal(root->text, "x\ny\nz");
    cf_xml_free(root);
    /* Attributes are accepted and ignored. */
    root = PARSE_OK("<a x=\"1\" y='2'/>");
    assert_string_equal(root->name, "a");
    assert_string_equal(root->text, "");
    assert_null(root->child);
    cf_xml_free(root);
}

/* An element's text is all of its own character data, around and between its children. */
static void test_parse_mixed_content(void **state)
{
    cf_xml_node *root = PARSE_OK("<a>one<b>two<c>three</c></b>four<b>five</b>six</a>");
    assert_string_equal(root->text, "onefoursix");
    const cf_xml_node *b = cf_xml_child(root, "b");
    assert_string_equal(b->text, "two");
    assert_string_equal(cf_xml_child(b, "c")->text, "three");
    assert_string_equal(b->next->text, "five");
    assert_null(b->next->next);
    cf_xml_free(root);
}

static void test_child_lookup(void **state)
{
    cf_xml_node *root = PARSE_OK("<a><b><c/></b><B/><bb/></a>");
    assert_null(cf_xml_child(root, "c")); /* direct children only */
    assert_null(cf_xml_child(root, "x"));
    assert_string_equal(cf_xml_child(root, "B")->name, "B"); /* names are case-sensitive */
    assert_ptr_equal(cf_xml_child(root, "b"), root->child);
    assert_string_equal(cf_xml_child(root, "bb")->name, "bb");
    assert_null(cf_xml_child(NULL, "b"));
    cf_xml_free(root);
    cf_xml_free(NULL);
}

/* ---- parser: hostile and malformed input ---- */

static void test_doctype_is_refused(void **state)
{
    static const char *const docs[] = {
        /* billion laughs */
        "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n"
        " <!ENTITY lol \"lol\">\n"
        " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
        " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
        " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
        " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
        " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
        " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
        " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
        " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
        " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
        "]>\n<lolz>&lol9;</lolz>",
        /* external entity (XXE) */
        "<!DOCTYPE a [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><a>&xxe;</a>",
        /* parameter entity fetching a remote DTD */
        "<!DOCTYPE a [<!ENTITY % p SYSTEM \"http://example.com/evil.dtd\"> %p;]><a/>",
        /* external DTD subset */
        "<!DOCTYPE a SYSTEM \"http://example.com/a.dtd\"><a/>",
        "<!DOCTYPE a PUBLIC \"-//x//y\" \"http://example.com/a.dtd\"><a/>",
        /* even an empty, harmless one */
        "<!DOCTYPE a><a/>",
        "<!DOCTYPE a []><a/>",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        cf_err err;
        const char *msg = parse_fails(docs[i], strlen(docs[i]), &err);
        if (!strstr(msg, "DOCTYPE"))
            fail_msg("doc %zu: '%s' does not name the DOCTYPE", i, msg);
    }
}

static void test_undeclared_entity_is_an_error(void **state)
{
    cf_err err;
    parse_fails("<a>&lol;</a>", 12, &err);
    parse_fails("<a>&xxe;</a>", 12, &err);
}

static void test_malformed_documents(void **state)
{
    static const char *const docs[] = {
        "",
        "   ",
        "text",
        "<",
        "<a>",
        "<a></b>",
        "<a><b></a></b>",
        "<a/><b/>", /* two roots */
        "<a/>junk",
        "<a>&</a>",
        "<a>&amp</a>",
        "<a><</a>",
        "<a x=1/>",
        "<a x=\"1\" x=\"2\"/>",
        "<1a/>",
        "<a><!-- unterminated </a>",
        "<a><![CDATA[ unterminated </a>",
        "<a>\xff</a>",         /* not UTF-8 */
        "<a>\xc0\x80</a>",     /* overlong */
        "<a>\xef\xbf\xbe</a>", /* U+FFFE is not an XML character */
        "<?xml version=\"1.0\"?>",
        "<!-- only a comment -->",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        cf_err err;
        parse_fails(docs[i], strlen(docs[i]), &err);
    }
    /* len, not a NUL, ends the input: a NUL inside a document is not XML. */
    cf_err err;
    parse_fails("<a>\0</a>", 8, &err);
    parse_fails("<a></a>", 3, &err);
}

static void test_error_message_has_position(void **state)
{
    cf_err err;
    const char *msg = parse_fails("<a>\n<b>\n</a>", 12, &err);
    if (!strstr(msg, "line 3,"))
        fail_msg("'%s' does not point at line 3", msg);
}

/* ---- parser: limits ---- */

static char *nested(int depth, const char *inner)
{
    cf_buf b;
    cf_buf_init(&b, 1 << 16);
    for (int i = 0; i < depth; i++)
        assert_int_equal(cf_buf_puts(&b, "<d>"), 0);
    assert_int_equal(cf_buf_puts(&b, inner), 0);
    for (int i = 0; i < depth; i++)
        assert_int_equal(cf_buf_puts(&b, "</d>"), 0);
    return cf_buf_steal(&b, NULL);
}

static void test_depth_limit(void **state)
{
    char *doc = nested(LIMIT_DEPTH, "x");
    cf_xml_node *root = PARSE_OK(doc);
    const cf_xml_node *n = root;
    for (int i = 1; i < LIMIT_DEPTH; i++)
        n = n->child;
    assert_string_equal(n->text, "x");
    assert_null(n->child);
    cf_xml_free(root);
    free(doc);

    cf_err err;
    static const char *const inner[] = {"<d>x</d>", "<d/>", "<d><e/></d>"};
    for (size_t i = 0; i < sizeof inner / sizeof *inner; i++) {
        doc = nested(LIMIT_DEPTH, inner[i]);
        if (!strstr(parse_fails(doc, strlen(doc), &err), "nested too deeply"))
            fail_msg("'%s'", err.msg);
        free(doc);
    }
    doc = nested(1000, "");
    parse_fails(doc, strlen(doc), &err);
    free(doc);
}

static char *many(int count, const char *elem)
{
    cf_buf b;
    cf_buf_init(&b, 1 << 22);
    assert_int_equal(cf_buf_puts(&b, "<r>"), 0);
    for (int i = 0; i < count; i++)
        assert_int_equal(cf_buf_puts(&b, elem), 0);
    assert_int_equal(cf_buf_puts(&b, "</r>"), 0);
    return cf_buf_steal(&b, NULL);
}

static void test_element_limit(void **state)
{
    char *doc = many(LIMIT_ELEMENTS - 1, "<e/>"); /* and the root */
    cf_xml_node *root = PARSE_OK(doc);
    assert_int_equal(count_children(root), LIMIT_ELEMENTS - 1);
    cf_xml_free(root);
    free(doc);

    cf_err err;
    static const char *const elems[] = {"<e/>", "<e>t</e>"};
    for (size_t i = 0; i < sizeof elems / sizeof *elems; i++) {
        doc = many(LIMIT_ELEMENTS, elems[i]);
        if (!strstr(parse_fails(doc, strlen(doc), &err), "too many elements"))
            fail_msg("'%s'", err.msg);
        free(doc);
    }
}

static void test_text_limit(void **state)
{
    const size_t T = LIMIT_TEXT;
    char *doc = malloc(T + 64);
    assert_non_null(doc);
    memcpy(doc, "<a>", 3);
    memset(doc + 3, 'x', T);
    memcpy(doc + 3 + T, "</a>", 4);
    cf_xml_node *root = parse_ok(doc, T + 7);
    assert_int_equal(strlen(root->text), T);
    cf_xml_free(root);

    cf_err err;
    memset(doc + 3, 'x', T + 1);
    memcpy(doc + 4 + T, "</a>", 4);
    if (!strstr(parse_fails(doc, T + 8, &err), "too much text"))
        fail_msg("'%s'", err.msg);

    /* The limit is on all text, not per element. */
    memcpy(doc, "<r><a>", 6);
    memset(doc + 6, 'x', T / 2);
    memcpy(doc + 6 + T / 2, "</a><b>", 7);
    memset(doc + 13 + T / 2, 'y', T / 2 + 1);
    memcpy(doc + 14 + T, "</b></r>", 8);
    if (!strstr(parse_fails(doc, T + 22, &err), "too much text"))
        fail_msg("'%s'", err.msg);
    free(doc);
}

/* DeleteObjects allows 1000 keys, each up to 1024 bytes: the largest body S3 defines here. */
static void test_big_delete_body(void **state)
{
    cf_buf b;
    char key[1025];
    cf_buf_init(&b, 4 * MIB);
    assert_int_equal(cf_buf_puts(&b, CF_XML_DECL "<Delete xmlns=\"" CF_S3_XMLNS "\">"), 0);
    for (int i = 0; i < 1000; i++) {
        memset(key, 'a' + i % 26, 1024);
        snprintf(key, 8, "%06d/", i);
        key[7] = 'k';
        key[1024] = '\0';
        assert_int_equal(cf_xml_open(&b, "Object"), 0);
        assert_int_equal(cf_xml_elem(&b, "Key", key), 0);
        assert_int_equal(cf_xml_close(&b, "Object"), 0);
    }
    assert_int_equal(cf_buf_puts(&b, "<Quiet>false</Quiet></Delete>"), 0);

    cf_xml_node *root = parse_ok(b.data, b.len);
    int i = 0;
    for (const cf_xml_node *o = root->child; o; o = o->next) {
        if (strcmp(o->name, "Object") != 0)
            continue;
        const char *k = cf_xml_child(o, "Key")->text;
        assert_int_equal(strlen(k), 1024);
        assert_int_equal(atoi(k), i);
        assert_int_equal(k[1023], 'a' + i % 26);
        i++;
    }
    assert_int_equal(i, 1000);
    assert_string_equal(cf_xml_child(root, "Quiet")->text, "false");
    cf_xml_free(root);
    cf_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_markup_characters),
        cmocka_unit_test(test_escape_control_characters),
        cmocka_unit_test(test_escape_passes_utf8_through),
        cmocka_unit_test(test_elements),
        cmocka_unit_test(test_writer_respects_buffer_max),
        cmocka_unit_test(test_written_text_parses_back),
        cmocka_unit_test(test_control_character_references_are_not_xml),
        cmocka_unit_test(test_parse_delete_objects_body),
        cmocka_unit_test(test_parse_prefixed_namespace),
        cmocka_unit_test(test_parse_text_forms),
        cmocka_unit_test(test_parse_mixed_content),
        cmocka_unit_test(test_child_lookup),
        cmocka_unit_test(test_doctype_is_refused),
        cmocka_unit_test(test_undeclared_entity_is_an_error),
        cmocka_unit_test(test_malformed_documents),
        cmocka_unit_test(test_error_message_has_position),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_element_limit),
        cmocka_unit_test(test_text_limit),
        cmocka_unit_test(test_big_delete_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
