/* cors.c - parsing a CORSConfiguration and matching requests against its rules. */
#include "s3/cors.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "s3/xml.h"

#define MAX_ID_LEN 255

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {
    {"GET", CF_CORS_GET},       {"PUT", CF_CORS_PUT},   {"POST", CF_CORS_POST},
    {"DELETE", CF_CORS_DELETE}, {"HEAD", CF_CORS_HEAD},
};

unsigned cf_cors_method_bit(const char *method)
{
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
        if (strcmp(method, methods[i].name) == 0)
            return methods[i].bit;
    return 0;
}

static void list_cleanup(cf_cors_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
}

void cf_cors_config_cleanup(cf_cors_config *c)
{
    for (size_t i = 0; i < c->n; i++) {
        cf_cors_rule *r = &c->rules[i];
        free(r->id);
        list_cleanup(&r->origins);
        list_cleanup(&r->headers);
        list_cleanup(&r->expose);
    }
    free(c->rules);
    c->rules = NULL;
    c->n = 0;
}

static int list_add(cf_cors_list *l, const char *s)
{
    char **items = realloc(l->items, (l->n + 1) * sizeof *items);
    if (!items)
        return CF_ENOMEM;
    l->items = items;
    if (!(l->items[l->n] = strdup(s)))
        return CF_ENOMEM;
    l->n++;
    return 0;
}

static int one_wildcard_at_most(const char *s)
{
    const char *star = strchr(s, '*');
    return !star || !strchr(star + 1, '*');
}

/* Origins and header names end up in response headers: nothing that could split one. */
static int header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

static int parse_rule(const cf_xml_node *node, cf_cors_rule *rule, cf_err *err)
{
    rule->max_age = -1;
    for (const cf_xml_node *c = node->child; c; c = c->next) {
        int rc = 0;
        if (c->child)
            return cf_err_set(err, CF_EINVAL, "<%s> in CORSRule holds elements", c->name);
        if (strcmp(c->name, "ID") != 0 && !header_safe(c->text))
            return cf_err_set(err, CF_ENOTSUP, "%s holds characters a header cannot carry", c->name);
        if (strcmp(c->name, "AllowedOrigin") == 0 || strcmp(c->name, "AllowedHeader") == 0) {
            if (!one_wildcard_at_most(c->text))
                return cf_err_set(err, CF_ENOTSUP, "%s \"%s\" can not have more than one wildcard.", c->name,
                                  c->text);
            rc = list_add(c->name[7] == 'O' ? &rule->origins : &rule->headers, c->text);
        } else if (strcmp(c->name, "AllowedMethod") == 0) {
            unsigned bit = cf_cors_method_bit(c->text);
            if (!bit)
                return cf_err_set(err, CF_ENOTSUP,
                                  "Found unsupported HTTP method in CORS config. Unsupported method is %s",
                                  c->text);
            rule->methods |= bit;
        } else if (strcmp(c->name, "ExposeHeader") == 0) {
            rc = list_add(&rule->expose, c->text);
        } else if (strcmp(c->name, "MaxAgeSeconds") == 0) {
            char *end;
            errno = 0;
            long v = strtol(c->text, &end, 10);
            if (!*c->text || *end || errno || v < 0 || rule->max_age >= 0)
                return cf_err_set(err, CF_EINVAL, "MaxAgeSeconds must be one non-negative integer");
            rule->max_age = v;
        } else if (strcmp(c->name, "ID") == 0) {
            if (rule->id || strlen(c->text) > MAX_ID_LEN)
                return cf_err_set(err, rule->id ? CF_EINVAL : CF_ENOTSUP,
                                  "a rule has one ID of at most 255 characters");
            if (!(rule->id = strdup(c->text)))
                rc = CF_ENOMEM;
        } else {
            return cf_err_set(err, CF_EINVAL, "unknown element <%s> in CORSRule", c->name);
        }
        if (rc)
            return cf_err_set(err, rc, "out of memory");
    }
    if (!rule->origins.n || !rule->methods)
        return cf_err_set(err, CF_EINVAL, "every CORSRule needs an AllowedOrigin and an AllowedMethod");
    return 0;
}

int cf_cors_parse(const char *xml, size_t len, cf_cors_config *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    if (len > CF_CORS_MAX_BYTES)
        return cf_err_set(err, CF_ETOOBIG, "the CORS configuration is over 64 KB");
    cf_xml_node *root = NULL;
    int rc = cf_xml_parse(xml, len, &root, err);
    if (rc)
        return CF_EINVAL;
    if (strcmp(root->name, "CORSConfiguration") != 0) {
        rc = cf_err_set(err, CF_EINVAL, "the root element must be CORSConfiguration");
        goto out;
    }
    size_t n = 0;
    for (const cf_xml_node *c = root->child; c; c = c->next) {
        if (strcmp(c->name, "CORSRule") != 0) {
            rc = cf_err_set(err, CF_EINVAL, "unknown element <%s> in CORSConfiguration", c->name);
            goto out;
        }
        n++;
    }
    if (n == 0) {
        rc = cf_err_set(err, CF_EINVAL, "a CORS configuration needs at least one CORSRule");
        goto out;
    }
    if (n > CF_CORS_MAX_RULES) {
        rc = cf_err_set(err, CF_ETOOBIG, "a CORS configuration has at most 100 rules");
        goto out;
    }
    if (!(out->rules = calloc(n, sizeof *out->rules))) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (const cf_xml_node *c = root->child; c && !rc; c = c->next)
        rc = parse_rule(c, &out->rules[out->n++], err);
out:
    cf_xml_free(root);
    if (rc)
        cf_cors_config_cleanup(out);
    return rc;
}

static int list_xml(const cf_cors_list *l, const char *elem, cf_buf *out)
{
    int rc = 0;
    for (size_t i = 0; i < l->n && !rc; i++)
        rc = cf_xml_elem(out, elem, l->items[i]);
    return rc;
}

int cf_cors_to_xml(const cf_cors_config *c, cf_buf *out)
{
    int rc = cf_buf_puts(out, CF_XML_DECL "<CORSConfiguration xmlns=\"" CF_S3_XMLNS "\">");
    for (size_t i = 0; i < c->n && !rc; i++) {
        const cf_cors_rule *r = &c->rules[i];
        rc = cf_xml_open(out, "CORSRule");
        if (!rc && r->id)
            rc = cf_xml_elem(out, "ID", r->id);
        if (!rc)
            rc = list_xml(&r->headers, "AllowedHeader", out);
        for (size_t m = 0; m < sizeof methods / sizeof *methods && !rc; m++)
            if (r->methods & methods[m].bit)
                rc = cf_xml_elem(out, "AllowedMethod", methods[m].name);
        if (!rc)
            rc = list_xml(&r->origins, "AllowedOrigin", out);
        if (!rc)
            rc = list_xml(&r->expose, "ExposeHeader", out);
        if (!rc && r->max_age >= 0)
            rc = cf_xml_elem_u64(out, "MaxAgeSeconds", (unsigned long long)r->max_age);
        if (!rc)
            rc = cf_xml_close(out, "CORSRule");
    }
    if (!rc)
        rc = cf_xml_close(out, "CORSConfiguration");
    return rc;
}

static int prefix_eq(const char *a, const char *b, size_t n, int ignore_case)
{
    return ignore_case ? strncasecmp(a, b, n) == 0 : strncmp(a, b, n) == 0;
}

int cf_cors_wildcard_match(const char *pattern, const char *s, int ignore_case)
{
    const char *star = strchr(pattern, '*');
    size_t sl = strlen(s);
    if (!star)
        return ignore_case ? strcasecmp(pattern, s) == 0 : strcmp(pattern, s) == 0;
    size_t before = (size_t)(star - pattern), after = strlen(star + 1);
    return sl >= before + after && prefix_eq(pattern, s, before, ignore_case) &&
           prefix_eq(star + 1, s + sl - after, after, ignore_case);
}

static int list_matches(const cf_cors_list *l, const char *s, int ignore_case)
{
    for (size_t i = 0; i < l->n; i++)
        if (cf_cors_wildcard_match(l->items[i], s, ignore_case))
            return 1;
    return 0;
}

/* Every name of the comma-separated list is an AllowedHeader of the rule. */
static int headers_allowed(const cf_cors_rule *r, const char *request_headers)
{
    const char *p = request_headers ? request_headers : "";
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if (last > p) {
            char name[256];
            if ((size_t)(last - p) >= sizeof name)
                return 0;
            memcpy(name, p, (size_t)(last - p));
            name[last - p] = '\0';
            if (!list_matches(&r->headers, name, 1))
                return 0;
        }
        p = end;
    }
    return 1;
}

const cf_cors_rule *cf_cors_match(const cf_cors_config *c, const char *origin, const char *method,
                                  const char *request_headers)
{
    unsigned bit = cf_cors_method_bit(method);
    if (!bit || !origin)
        return NULL;
    for (size_t i = 0; i < c->n; i++) {
        const cf_cors_rule *r = &c->rules[i];
        if ((r->methods & bit) && list_matches(&r->origins, origin, 0) && headers_allowed(r, request_headers))
            return r;
    }
    return NULL;
}

int cf_cors_rule_any_origin(const cf_cors_rule *rule, const char *origin)
{
    for (size_t i = 0; i < rule->origins.n; i++)
        if (cf_cors_wildcard_match(rule->origins.items[i], origin, 0))
            return strcmp(rule->origins.items[i], "*") == 0;
    return 0;
}

int cf_cors_join(const cf_cors_list *l, cf_buf *out)
{
    int rc = 0;
    for (size_t i = 0; i < l->n && !rc; i++)
        rc = cf_buf_printf(out, "%s%s", i ? ", " : "", l->items[i]);
    return rc;
}

int cf_cors_methods_join(unsigned bits, cf_buf *out)
{
    int rc = 0, first = 1;
    for (size_t i = 0; i < sizeof methods / sizeof *methods && !rc; i++)
        if (bits & methods[i].bit) {
            rc = cf_buf_printf(out, "%s%s", first ? "" : ", ", methods[i].name);
            first = 0;
        }
    return rc;
}
