/* fuzz_policy.c - bucket policies are untrusted JSON: parse anything, and whatever parses must
 * only ever grant what its rules say. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_policy p;
    cf_err err;
    if (cf_policy_parse((const char *)data, size, "fuzz", &p, &err) != 0)
        return 0;
    if (p.n > CF_POLICY_MAX_RULES)
        abort();
    for (size_t i = 0; i < p.n; i++) {
        const cf_policy_rule *r = &p.rules[i];
        if (memchr(r->pattern, '\0', sizeof r->pattern) == NULL)
            abort();
        /* A rule allows its own pattern, and a wildcard rule anything longer that starts with it. */
        size_t pl = strlen(r->pattern);
        if (r->action == CF_POLICY_GET_OBJECT && !cf_policy_allows(&p, CF_POLICY_GET_OBJECT, r->pattern, pl))
            abort();
    }
    /* Nothing is granted that no rule names. */
    int any_get = 0;
    for (size_t i = 0; i < p.n; i++)
        any_get |= p.rules[i].action == CF_POLICY_GET_OBJECT;
    if (!any_get && cf_policy_allows(&p, CF_POLICY_GET_OBJECT, "x", 1))
        abort();
    return 0;
}
