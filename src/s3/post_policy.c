/* post_policy.c - POST Object policy documents: parsing and checking a form against one. */
#include "s3/post_policy.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "s3/request.h"

#define DENIED "Invalid according to Policy: "

void cf_post_policy_cleanup(cf_post_policy *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->conds[i].field);
        free(p->conds[i].value);
        free(p->conds[i].text);
    }
    free(p->conds);
    memset(p, 0, sizeof *p);
}

static int size_value(const json_t *v, uint64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        unsigned long long x = strtoull(s, &end, 10);
        if (*s >= '0' && *s <= '9' && !*end) {
            *out = x;
            return 0;
        }
    }
    return CF_EINVAL;
}

static int set_field(cf_post_condition *c, const char *field, const char *value)
{
    c->field = strdup(field);
    c->value = strdup(value);
    return c->field && c->value ? 0 : CF_ENOMEM;
}

static int parse_condition(const json_t *j, cf_post_policy *p, cf_post_condition *c, cf_err *err)
{
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        if (json_object_size(j) != 1)
            return cf_err_set(err, CF_EINVAL, "an object condition names one field");
        json_object_foreach((json_t *)j, k, v)
        {
            if (!json_is_string(v))
                return cf_err_set(err, CF_EINVAL, "the value of condition '%s' must be a string", k);
            c->kind = CF_POST_EQ;
            if (set_field(c, k[0] == '$' ? k + 1 : k, json_string_value(v)))
                return cf_err_set(err, CF_ENOMEM, "out of memory");
        }
        return 0;
    }
    if (!json_is_array(j) || json_array_size(j) != 3 || !json_is_string(json_array_get(j, 0)))
        return cf_err_set(err, CF_EINVAL, "a condition is an object or an array of three");
    const char *op = json_string_value(json_array_get(j, 0));
    const json_t *a = json_array_get(j, 1), *b = json_array_get(j, 2);
    if (strcasecmp(op, "content-length-range") == 0) {
        c->kind = CF_POST_LENGTH_RANGE;
        if (size_value(a, &c->min) || size_value(b, &c->max) || c->min > c->max)
            return cf_err_set(err, CF_EINVAL,
                              "content-length-range needs two sizes, the first not above the second");
        if (p->has_range++)
            return cf_err_set(err, CF_EINVAL, "content-length-range appears twice");
        p->min_size = c->min;
        p->max_size = c->max;
        return 0;
    }
    if (strcasecmp(op, "eq") == 0)
        c->kind = CF_POST_EQ;
    else if (strcasecmp(op, "starts-with") == 0)
        c->kind = CF_POST_STARTS_WITH;
    else
        return cf_err_set(err, CF_EINVAL, "unknown condition '%s'", op);
    if (!json_is_string(a) || !json_is_string(b) || json_string_value(a)[0] != '$' ||
        !json_string_value(a)[1])
        return cf_err_set(err, CF_EINVAL, "condition '%s' needs \"$field\" and a string", op);
    if (set_field(c, json_string_value(a) + 1, json_string_value(b)))
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    return 0;
}

int cf_post_policy_parse(const char *json, size_t len, cf_post_policy *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = 0;
    if (!doc || !json_is_object(doc)) {
        json_decref(doc);
        return cf_err_set(err, CF_EINVAL, "Invalid Policy: Invalid JSON.");
    }
    const json_t *exp = json_object_get(doc, "expiration");
    const json_t *conds = json_object_get(doc, "conditions");
    if (!json_is_string(exp) || cf_s3_parse_iso8601(json_string_value(exp), &out->expiration) != 0) {
        rc = cf_err_set(err, CF_EINVAL,
                        "Invalid Policy: Invalid 'expiration' value: an ISO 8601 UTC date is needed.");
        goto out;
    }
    if (!json_is_array(conds)) {
        rc = cf_err_set(err, CF_EINVAL, "Invalid Policy: Policy missing conditions.");
        goto out;
    }
    size_t n = json_array_size(conds);
    if (n > CF_POST_POLICY_MAX_CONDITIONS) {
        rc = cf_err_set(err, CF_EINVAL, "Invalid Policy: more than %d conditions.",
                        CF_POST_POLICY_MAX_CONDITIONS);
        goto out;
    }
    if (n && !(out->conds = calloc(n, sizeof *out->conds))) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        cf_post_condition *c = &out->conds[out->n++];
        const json_t *j = json_array_get(conds, i);
        rc = parse_condition(j, out, c, err);
        if (!rc && !(c->text = json_dumps(j, JSON_ENCODE_ANY)))
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    if (rc == CF_EINVAL) {
        char why[200];
        snprintf(why, sizeof why, "%s", err->msg);
        cf_err_set(err, CF_EINVAL, "Invalid Policy: %s", why);
    }
out:
    json_decref(doc);
    if (rc)
        cf_post_policy_cleanup(out);
    return rc;
}

int cf_post_field_exempt(const char *name)
{
    return strcasecmp(name, "x-amz-signature") == 0 || strcasecmp(name, "file") == 0 ||
           strcasecmp(name, "policy") == 0 || strncasecmp(name, "x-ignore-", 9) == 0;
}

/* Content-Type may list several types; starts-with must hold for each of them (as S3 does). */
static int starts_with_each(const char *value, const char *prefix, int comma_list)
{
    size_t pl = strlen(prefix);
    if (!comma_list)
        return strncmp(value, prefix, pl) == 0;
    const char *p = value;
    for (;;) {
        while (*p == ' ')
            p++;
        if (strncmp(p, prefix, pl) != 0)
            return 0;
        const char *comma = strchr(p, ',');
        if (!comma)
            return 1;
        p = comma + 1;
    }
}

static const char *field_value(const cf_post_field *fields, size_t n, const char *bucket, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(fields[i].name, name) == 0)
            return fields[i].value;
    return strcasecmp(name, "bucket") == 0 ? bucket : NULL;
}

int cf_post_policy_check(const cf_post_policy *p, const char *bucket, const cf_post_field *fields, size_t n,
                         int64_t now, cf_err *err)
{
    if (now > p->expiration)
        return cf_err_set(err, CF_EPRECOND, DENIED "Policy expired.");
    for (size_t i = 0; i < p->n; i++) {
        const cf_post_condition *c = &p->conds[i];
        if (c->kind == CF_POST_LENGTH_RANGE)
            continue;
        const char *v = field_value(fields, n, bucket, c->field);
        int ok = v && (c->kind == CF_POST_EQ
                           ? strcmp(v, c->value) == 0
                           : starts_with_each(v, c->value, strcasecmp(c->field, "Content-Type") == 0));
        if (!ok)
            return cf_err_set(err, CF_EDENIED, DENIED "Policy Condition failed: %.400s", c->text);
    }
    for (size_t i = 0; i < n; i++) {
        if (cf_post_field_exempt(fields[i].name))
            continue;
        size_t k = 0;
        while (k < p->n && !(p->conds[k].field && strcasecmp(p->conds[k].field, fields[i].name) == 0))
            k++;
        if (k == p->n)
            return cf_err_set(err, CF_EDENIED, DENIED "Extra input fields: %.200s", fields[i].name);
    }
    return 0;
}

int cf_post_policy_size(const cf_post_policy *p, uint64_t size)
{
    if (!p->has_range)
        return 0;
    return size < p->min_size ? -1 : size > p->max_size ? 1 : 0;
}
