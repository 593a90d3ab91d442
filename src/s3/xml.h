/*
 * xml.h - writing S3 XML responses, and parsing the small XML bodies S3 requests carry.
 *
 * Writing is append-only into a cf_buf; names are trusted literals, text is escaped. Parsing
 * uses expat with entity expansion off (no billion-laughs, no external entities), and builds a
 * tiny element tree bounded in depth, element count and text size.
 */
#ifndef CF_S3_XML_H
#define CF_S3_XML_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

#define CF_XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define CF_S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"

/* Escapes & < > " ' and control characters (as &#xN;) of n bytes of text. */
int cf_xml_escape(cf_buf *out, const char *text, size_t n);
/* <name>escaped text</name> */
int cf_xml_elem(cf_buf *out, const char *name, const char *text);
int cf_xml_elem_u64(cf_buf *out, const char *name, unsigned long long v);
int cf_xml_open(cf_buf *out, const char *name);  /* <name> */
int cf_xml_close(cf_buf *out, const char *name); /* </name> */

/* A parsed element: name without namespace prefix, its concatenated text, its children. */
typedef struct cf_xml_node {
    char *name;
    char *text;                /* "" when none */
    struct cf_xml_node *child; /* first child */
    struct cf_xml_node *next;  /* next sibling */
} cf_xml_node;

/* Parses len bytes. Limits: depth 16, 60,000 elements, 4 MiB text in all. On malformed input
 * returns CF_EINVAL with the parser's message and position. Caller frees *root with
 * cf_xml_free. */
int cf_xml_parse(const char *data, size_t len, cf_xml_node **root, cf_err *err);
void cf_xml_free(cf_xml_node *root);
/* First child named name, or NULL. */
const cf_xml_node *cf_xml_child(const cf_xml_node *n, const char *name);

#endif
