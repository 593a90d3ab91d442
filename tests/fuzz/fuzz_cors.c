/* fuzz_cors.c - CORS configurations are untrusted XML: parse anything; whatever parses must write
 * back to a document that parses to the same rules, and a rule only ever matches what it names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3/cors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_list(const cf_cors_list *a, const cf_cors_list *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->items[i], b->items[i]) != 0)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_cors_config c, again;
    cf_err err;
    if (cf_cors_parse((const char *)data, size, &c, &err) != 0)
        return 0;
    if (c.n == 0 || c.n > CF_CORS_MAX_RULES)
        abort();
    cf_buf b;
    cf_buf_init(&b, (size_t)8 << 20);
    if (cf_cors_to_xml(&c, &b) != 0 || cf_cors_parse(b.data, b.len, &again, &err) != 0) {
        /* The written form may exceed the 64 KB limit only if the input was near it. */
        if (b.len <= CF_CORS_MAX_BYTES)
            abort();
        cf_buf_cleanup(&b);
        cf_cors_config_cleanup(&c);
        return 0;
    }
    if (again.n != c.n)
        abort();
    for (size_t i = 0; i < c.n; i++) {
        const cf_cors_rule *x = &c.rules[i], *y = &again.rules[i];
        if (x->methods != y->methods || x->max_age != y->max_age || !same_list(&x->origins, &y->origins) ||
            !same_list(&x->headers, &y->headers) || !same_list(&x->expose, &y->expose))
            abort();
        /* A rule's exact origin (no wildcard) is matched by that rule or an earlier one. */
        const char *o = x->origins.items[0];
        if (!strchr(o, '*') && (x->methods & CF_CORS_GET)) {
            const cf_cors_rule *m = cf_cors_match(&c, o, "GET", NULL);
            if (!m || m > x)
                abort();
        }
    }
    /* No rule allows a method that none names. */
    unsigned all = 0;
    for (size_t i = 0; i < c.n; i++)
        all |= c.rules[i].methods;
    if (!(all & CF_CORS_DELETE) && cf_cors_match(&c, "https://a.example", "DELETE", NULL))
        abort();
    cf_buf_cleanup(&b);
    cf_cors_config_cleanup(&c);
    cf_cors_config_cleanup(&again);
    return 0;
}
