/*
 * xml.c - writing S3 XML and parsing request bodies with expat.
 *
 * Request bodies come from the network: the parser refuses any DOCTYPE (so no entity can be
 * declared, expanded or fetched) and bounds depth, element count and text.
 */
#include "s3/xml.h"

#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 16
#define MAX_ELEMENTS 60000 /* CompleteMultipartUpload: 10,000 parts of up to 5 elements */
#define MAX_TEXT (4 << 20)

int cf_xml_escape(cf_buf *out, const char *text, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)text[i];
        switch (c) {
        case '&': rc = cf_buf_puts(out, "&amp;"); break;
        case '<': rc = cf_buf_puts(out, "&lt;"); break;
        case '>': rc = cf_buf_puts(out, "&gt;"); break;
        case '"': rc = cf_buf_puts(out, "&quot;"); break;
        case '\'': rc = cf_buf_puts(out, "&apos;"); break;
        default:
            if (c < 0x20 || c == 0x7f)
                rc = cf_buf_printf(out, "&#x%X;", c);
            else
                rc = cf_buf_putc(out, (char)c);
        }
    }
    return rc;
}

int cf_xml_open(cf_buf *out, const char *name)
{
    return cf_buf_printf(out, "<%s>", name);
}
int cf_xml_close(cf_buf *out, const char *name)
{
    return cf_buf_printf(out, "</%s>", name);
}

int cf_xml_elem(cf_buf *out, const char *name, const char *text)
{
    int rc = cf_xml_open(out, name);
    if (!rc)
        rc = cf_xml_escape(out, text, strlen(text));
    if (!rc)
        rc = cf_xml_close(out, name);
    return rc;
}

int cf_xml_elem_u64(cf_buf *out, const char *name, unsigned long long v)
{
    return cf_buf_printf(out, "<%s>%llu</%s>", name, v, name);
}

typedef struct parse_state {
    XML_Parser parser;
    cf_xml_node *root;
    cf_xml_node *stack[MAX_DEPTH];
    cf_buf text[MAX_DEPTH];
    int depth;
    size_t elements, text_total;
    const char *error;
} parse_state;

static void fail(parse_state *st, const char *why)
{
    if (!st->error)
        st->error = why;
    XML_StopParser(st->parser, XML_FALSE);
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    (void)attrs;
    parse_state *st = ud;
    if (st->depth >= MAX_DEPTH)
        return fail(st, "elements nested too deeply");
    if (++st->elements > MAX_ELEMENTS)
        return fail(st, "too many elements");
    /* Namespaced names arrive as "uri|local" (see XML_ParserCreateNS below). */
    const char *local = strrchr(name, '|');
    local = local ? local + 1 : name;
    cf_xml_node *n = calloc(1, sizeof *n);
    if (!n || !(n->name = strdup(local))) {
        free(n);
        return fail(st, "out of memory");
    }
    if (st->depth == 0) {
        if (st->root) {
            cf_xml_free(n);
            return fail(st, "more than one root element");
        }
        st->root = n;
    } else {
        cf_xml_node *parent = st->stack[st->depth - 1];
        cf_xml_node **tail = &parent->child;
        while (*tail)
            tail = &(*tail)->next;
        *tail = n;
    }
    cf_buf_init(&st->text[st->depth], MAX_TEXT);
    st->stack[st->depth++] = n;
}

static void on_end(void *ud, const XML_Char *name)
{
    (void)name;
    parse_state *st = ud;
    /* Expat still ends an empty element whose start handler failed and stopped the parser. */
    if (st->error || st->depth == 0)
        return;
    st->depth--;
    cf_buf *t = &st->text[st->depth];
    st->stack[st->depth]->text = t->data ? cf_buf_steal(t, NULL) : strdup("");
    if (!st->stack[st->depth]->text)
        fail(st, "out of memory");
}

static void on_text(void *ud, const XML_Char *s, int len)
{
    parse_state *st = ud;
    if (st->depth == 0)
        return;
    st->text_total += (size_t)len;
    if (st->text_total > MAX_TEXT || cf_buf_append(&st->text[st->depth - 1], s, (size_t)len) != 0)
        fail(st, "too much text");
}

static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                       int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    fail(ud, "DOCTYPE is not allowed");
}

int cf_xml_parse(const char *data, size_t len, cf_xml_node **root, cf_err *err)
{
    parse_state st = {0};
    *root = NULL;
    st.parser = XML_ParserCreateNS("UTF-8", '|');
    if (!st.parser)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    XML_SetUserData(st.parser, &st);
    XML_SetElementHandler(st.parser, on_start, on_end);
    XML_SetCharacterDataHandler(st.parser, on_text);
    XML_SetStartDoctypeDeclHandler(st.parser, on_doctype);
    XML_SetParamEntityParsing(st.parser, XML_PARAM_ENTITY_PARSING_NEVER);
    int ok = XML_Parse(st.parser, data, (int)len, XML_TRUE) == XML_STATUS_OK && !st.error && st.root;
    int rc = 0;
    if (!ok) {
        const char *why = st.error ? st.error
                          : !st.root && XML_GetErrorCode(st.parser) == XML_ERROR_NONE
                              ? "no root element"
                              : XML_ErrorString(XML_GetErrorCode(st.parser));
        rc = cf_err_set(err, CF_EINVAL, "malformed XML at line %lu, column %lu: %s",
                        (unsigned long)XML_GetCurrentLineNumber(st.parser),
                        (unsigned long)XML_GetCurrentColumnNumber(st.parser), why);
        for (int i = 0; i < st.depth; i++)
            cf_buf_cleanup(&st.text[i]);
        cf_xml_free(st.root);
    } else {
        *root = st.root;
    }
    XML_ParserFree(st.parser);
    return rc;
}

void cf_xml_free(cf_xml_node *n)
{
    while (n) {
        cf_xml_node *next = n->next;
        cf_xml_free(n->child);
        free(n->name);
        free(n->text);
        free(n);
        n = next;
    }
}

const cf_xml_node *cf_xml_child(const cf_xml_node *n, const char *name)
{
    for (const cf_xml_node *c = n ? n->child : NULL; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}
