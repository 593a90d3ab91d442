/* fuzz_post_policy.c - a POST policy is untrusted JSON (the signature is checked first, but the
 * parser must hold anyway): parse anything; a form of exactly what the policy names passes or
 * fails the same way twice, and a field the policy does not name is always refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3/post_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_post_policy p;
    cf_err err;
    if (cf_post_policy_parse((const char *)data, size, &p, &err) != 0)
        return 0;
    if (p.n > CF_POST_POLICY_MAX_CONDITIONS)
        abort();
    /* The form the policy describes: each named field with the value its condition gives. */
    cf_post_field fields[CF_POST_POLICY_MAX_CONDITIONS + 1];
    size_t n = 0;
    for (size_t i = 0; i < p.n; i++)
        if (p.conds[i].field)
            fields[n++] = (cf_post_field){p.conds[i].field, p.conds[i].value};
    int64_t now = p.expiration;
    int first = cf_post_policy_check(&p, "bucket", fields, n, now, &err);
    if (first != 0 && first != CF_EDENIED)
        abort();
    if (cf_post_policy_check(&p, "bucket", fields, n, now, &err) != first)
        abort();
    if (cf_post_policy_check(&p, "bucket", fields, n, now + 1, &err) != CF_EPRECOND)
        abort();
    fields[n++] = (cf_post_field){"x-unnamed-field-\x01", "v"};
    if (cf_post_policy_check(&p, "bucket", fields, n, now, &err) != CF_EDENIED)
        abort();
    if (p.has_range && (cf_post_policy_size(&p, p.min_size) != 0 || cf_post_policy_size(&p, p.max_size) != 0))
        abort();
    cf_post_policy_cleanup(&p);
    return 0;
}
