#include "s3/policy.h"

#include <jansson.h>
#include <string.h>

#define ARN_PREFIX "arn:aws:s3:::"

/* A string or an array of strings, visited one by one. */
typedef int (*string_fn)(const char *s, void *ctx, cf_err *err);

static int each_string(json_t *v, const char *field, string_fn fn, void *ctx, cf_err *err)
{
    if (json_is_string(v))
        return fn(json_string_value(v), ctx, err);
    if (!json_is_array(v) || json_array_size(v) == 0)
        return cf_err_set(err, CF_EINVAL, "%s must be a string or a non-empty array of strings", field);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e))
            return cf_err_set(err, CF_EINVAL, "%s must hold strings only", field);
        int rc = fn(json_string_value(e), ctx, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_principal_star(const char *s, void *ctx, cf_err *err)
{
    (void)ctx;
    return strcmp(s, "*") == 0 ? 0 : cf_err_set(err, CF_EINVAL, "only the anonymous principal \"*\" is supported, not '%.100s'", s);
}

typedef struct statement {
    unsigned actions;            /* bit per cf_policy_action */
    const char *bucket;
    cf_policy *out;
} statement;

static int add_action(const char *s, void *ctx, cf_err *err)
{
    statement *st = ctx;
    if (strcmp(s, "s3:GetObject") == 0)
        st->actions |= 1u << CF_POLICY_GET_OBJECT;
    else if (strcmp(s, "s3:ListBucket") == 0)
        st->actions |= 1u << CF_POLICY_LIST_BUCKET;
    else if (strcmp(s, "s3:GetBucketLocation") != 0) /* harmless, and in many published examples */
        return cf_err_set(err, CF_EINVAL, "action '%.100s' is not supported (s3:GetObject, s3:ListBucket)", s);
    return 0;
}

static int add_resource(const char *s, void *ctx, cf_err *err)
{
    statement *st = ctx;
    size_t pl = strlen(ARN_PREFIX), bl = strlen(st->bucket);
    if (strncmp(s, ARN_PREFIX, pl) != 0 || strncmp(s + pl, st->bucket, bl) != 0 ||
        (s[pl + bl] != '\0' && s[pl + bl] != '/'))
        return cf_err_set(err, CF_EINVAL, "resource '%.200s' is not this bucket (arn:aws:s3:::%s or arn:aws:s3:::%s/...)",
                          s, st->bucket, st->bucket);
    const char *rest = s + pl + bl;
    int object = *rest == '/';
    for (int a = 0; a <= CF_POLICY_LIST_BUCKET; a++) {
        if (!(st->actions & (1u << a)))
            continue;
        /* GetObject applies to object ARNs, ListBucket to the bucket ARN; AWS ignores the
         * other pairings, so we do too. */
        if ((a == CF_POLICY_GET_OBJECT) != object)
            continue;
        if (st->out->n == CF_POLICY_MAX_RULES)
            return cf_err_set(err, CF_EINVAL, "a policy may hold at most %d rules", CF_POLICY_MAX_RULES);
        cf_policy_rule *r = &st->out->rules[st->out->n];
        const char *pat = object ? rest + 1 : "";
        size_t n = strlen(pat);
        const char *star = strchr(pat, '*');
        if (star && star != pat + n - 1)
            return cf_err_set(err, CF_EINVAL, "resource '%.200s': '*' is supported only at the end", s);
        if (n >= sizeof r->pattern)
            return cf_err_set(err, CF_EINVAL, "resource '%.200s' is too long", s);
        r->action = (cf_policy_action)a;
        r->wildcard = star != NULL;
        memcpy(r->pattern, pat, n - (star ? 1 : 0));
        r->pattern[n - (star ? 1 : 0)] = '\0';
        st->out->n++;
    }
    return 0;
}

static int parse_statement(json_t *s, const char *bucket, cf_policy *out, cf_err *err)
{
    if (!json_is_object(s))
        return cf_err_set(err, CF_EINVAL, "each Statement must be an object");
    const char *key;
    json_t *v;
    json_object_foreach(s, key, v) {
        if (strcmp(key, "Sid") && strcmp(key, "Effect") && strcmp(key, "Principal") &&
            strcmp(key, "Action") && strcmp(key, "Resource"))
            return cf_err_set(err, CF_EINVAL, "statement field '%.64s' is not supported", key);
    }
    json_t *effect = json_object_get(s, "Effect");
    if (!json_is_string(effect) || strcmp(json_string_value(effect), "Allow") != 0)
        return cf_err_set(err, CF_EINVAL, "only \"Effect\": \"Allow\" is supported");
    json_t *principal = json_object_get(s, "Principal");
    int rc;
    if (json_is_string(principal))
        rc = check_principal_star(json_string_value(principal), NULL, err);
    else if (json_is_object(principal) && json_object_size(principal) == 1 && json_object_get(principal, "AWS"))
        rc = each_string(json_object_get(principal, "AWS"), "Principal.AWS", check_principal_star, NULL, err);
    else
        rc = cf_err_set(err, CF_EINVAL, "Principal must be \"*\" or {\"AWS\": \"*\"}");
    if (rc)
        return rc;
    statement st = {0, bucket, out};
    json_t *action = json_object_get(s, "Action"), *resource = json_object_get(s, "Resource");
    if (!action || !resource)
        return cf_err_set(err, CF_EINVAL, "a statement needs Action and Resource");
    if ((rc = each_string(action, "Action", add_action, &st, err)))
        return rc;
    return each_string(resource, "Resource", add_resource, &st, err);
}

int cf_policy_parse(const char *json, size_t len, const char *bucket, cf_policy *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return cf_err_set(err, CF_EINVAL, "policy is not valid JSON: %s (line %d)", jerr.text, jerr.line);
    int rc = 0;
    json_t *version = json_object_get(root, "Version"), *stmts = json_object_get(root, "Statement");
    const char *key;
    json_t *v;
    if (!json_is_object(root)) {
        rc = cf_err_set(err, CF_EINVAL, "a policy is a JSON object");
    } else {
        json_object_foreach(root, key, v) {
            if (strcmp(key, "Version") && strcmp(key, "Statement") && strcmp(key, "Id")) {
                rc = cf_err_set(err, CF_EINVAL, "policy field '%.64s' is not supported", key);
                break;
            }
        }
    }
    if (!rc && version && (!json_is_string(version) || (strcmp(json_string_value(version), "2012-10-17") &&
                                                        strcmp(json_string_value(version), "2008-10-17"))))
        rc = cf_err_set(err, CF_EINVAL, "Version must be \"2012-10-17\"");
    if (!rc && json_is_object(stmts)) {
        rc = parse_statement(stmts, bucket, out, err);
    } else if (!rc && json_is_array(stmts) && json_array_size(stmts) > 0) {
        size_t i;
        json_array_foreach(stmts, i, v) {
            if ((rc = parse_statement(v, bucket, out, err)))
                break;
        }
    } else if (!rc) {
        rc = cf_err_set(err, CF_EINVAL, "Statement must be an object or a non-empty array");
    }
    json_decref(root);
    return rc;
}

int cf_policy_allows(const cf_policy *p, cf_policy_action action, const char *key, size_t keylen)
{
    for (size_t i = 0; i < p->n; i++) {
        const cf_policy_rule *r = &p->rules[i];
        if (r->action != action)
            continue;
        if (action == CF_POLICY_LIST_BUCKET)
            return 1;
        size_t pl = strlen(r->pattern);
        if (r->wildcard ? keylen >= pl && memcmp(key, r->pattern, pl) == 0
                        : keylen == pl && memcmp(key, r->pattern, pl) == 0)
            return 1;
    }
    return 0;
}
