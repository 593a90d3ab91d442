/* test_policy.c - bucket policies: what is refused at PutBucketPolicy and why, and the decision
 * (allow, deny, no say) for requests, table by table. Policies are written with ' for " so
 * that they read like the JSON users paste. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "s3/policy.h"
#include "s3/request.h"

#define BUCKET "site"

static char *json_of(const char *quoted)
{
    char *s = strdup(quoted);
    for (char *c = s; *c; c++)
        if (*c == '\'')
            *c = '"';
    return s;
}

/* Keys "ci-key" and "admin-key" exist; "itest-root" is root. */
static int principal_kind(void *ctx, const char *access_key, cf_err *err)
{
    (void)ctx;
    (void)err;
    if (strcmp(access_key, "itest-root") == 0)
        return CF_POLICY_PRINCIPAL_ROOT;
    if (strcmp(access_key, "ci-key") == 0 || strcmp(access_key, "admin-key") == 0)
        return CF_POLICY_PRINCIPAL_KEY;
    return CF_POLICY_PRINCIPAL_UNKNOWN;
}

static int parse(const char *quoted, cf_policy **p, cf_err *err)
{
    char *json = json_of(quoted);
    int rc = cf_policy_parse(json, strlen(json), BUCKET, principal_kind, NULL, p, err);
    free(json);
    return rc;
}

#define ALLOW ((cf_policy_effect)CF_POLICY_ALLOWED)
#define DENY ((cf_policy_effect)CF_POLICY_DENIED)
#define NONE ((cf_policy_effect)CF_POLICY_NO_MATCH)

typedef struct ctx_value {
    cf_policy_key key;
    const char *value;
} ctx_value;

typedef struct eval_case {
    const char *policy;
    cf_policy_action action;
    const char *principal; /* NULL: anonymous */
    const char *key;
    ctx_value ctx[3]; /* the request's condition keys; unlisted ones are absent */
    cf_policy_effect want;
} eval_case;

#define IP(v)                                                                                                \
    {                                                                                                        \
        CF_POLICY_KEY_SOURCE_IP, v                                                                           \
    }
#define UA(v)                                                                                                \
    {                                                                                                        \
        CF_POLICY_KEY_USER_AGENT, v                                                                          \
    }
#define REF(v)                                                                                               \
    {                                                                                                        \
        CF_POLICY_KEY_REFERER, v                                                                             \
    }
#define PREFIX(v)                                                                                            \
    {                                                                                                        \
        CF_POLICY_KEY_PREFIX, v                                                                              \
    }
#define MAXKEYS(v)                                                                                           \
    {                                                                                                        \
        CF_POLICY_KEY_MAX_KEYS, v                                                                            \
    }
#define NOW(v)                                                                                               \
    {                                                                                                        \
        CF_POLICY_KEY_CURRENT_TIME, v                                                                        \
    }
#define EPOCH(v)                                                                                             \
    {                                                                                                        \
        CF_POLICY_KEY_EPOCH_TIME, v                                                                          \
    }
#define ACL(v)                                                                                               \
    {                                                                                                        \
        CF_POLICY_KEY_ACL, v                                                                                 \
    }
#define SIGV(v)                                                                                              \
    {                                                                                                        \
        CF_POLICY_KEY_SIGNATURE_VERSION, v                                                                   \
    }

#define PUBLIC_READ                                                                                          \
    "{'Version':'2012-10-17','Statement':[{'Sid':'pub','Effect':'Allow','Principal':{'AWS':['*']},"          \
    "'Action':['s3:GetObject'],'Resource':['arn:aws:s3:::site/public/*']}]}"
#define ANYONE_ANYTHING                                                                                      \
    "{'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:*',"                \
    "'Resource':'arn:aws:s3:::site/*'}]}"
#define GET_STAR                                                                                             \
    "{'Statement':{'Effect':'Allow','Principal':'*','Action':'s3:Get*','Resource':['arn:aws:s3:::site',"     \
    "'arn:aws:s3:::site/*']}}"
#define DENY_WINS                                                                                            \
    "{'Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:*','Resource':'arn:aws:s3:::site/*'},"     \
    "{'Effect':'Deny','Principal':'*','Action':'s3:DeleteObject','Resource':'arn:aws:s3:::site/*'}]}"
#define DENY_KEY                                                                                             \
    "{'Statement':[{'Effect':'Deny','Principal':{'AWS':'arn:aws:iam::123456789012:user/ci-key'},"            \
    "'Action':['s3:DeleteObject','s3:PutObject'],'Resource':'arn:aws:s3:::site/*'}]}"
#define NOT_PRINCIPAL                                                                                        \
    "{'Statement':[{'Effect':'Deny','NotPrincipal':{'AWS':['admin-key']},'Action':'s3:*','Resource':'*'}]}"
#define NOT_ACTION                                                                                           \
    "{'Statement':[{'Effect':'Allow','Principal':'*','NotAction':'s3:DeleteObject',"                         \
    "'Resource':'arn:aws:s3:::site/*'}]}"
#define NOT_RESOURCE                                                                                         \
    "{'Statement':[{'Effect':'Deny','Principal':'*','Action':'s3:GetObject',"                                \
    "'NotResource':'arn:aws:s3:::site/public/*'}]}"
#define QUESTION                                                                                             \
    "{'Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:GetObject',"                               \
    "'Resource':['arn:aws:s3:::site/img-?.png','arn:aws:s3:::site/*.pdf']}]}"
#define FROM_LOOPBACK                                                                                        \
    "{'Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::site/" \
    "*',"                                                                                                    \
    "'Condition':{'IpAddress':{'aws:SourceIp':['127.0.0.0/8','2001:db8::/32']}}}]}"
#define DENY_NOT_FROM                                                                                        \
    "{'Statement':[{'Effect':'Deny','Principal':'*','Action':'s3:*','Resource':'arn:aws:s3:::site/*',"       \
    "'Condition':{'NotIpAddress':{'aws:SourceIp':'127.0.0.1'}}}]}"
#define AGENTS                                                                                               \
    "{'Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::site/" \
    "*',"                                                                                                    \
    "'Condition':{'StringEquals':{'aws:UserAgent':['curl/8','wget']}}}]}"
#define REFERERS                                                                                             \
    "{'Statement':[{'Effect':'Deny','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::site/"  \
    "*',"                                                                                                    \
    "'Condition':{'StringNotLike':{'aws:Referer':['https://shop.example/*','https://www.shop.example/"       \
    "*']}}}]}"
#define IF_EXISTS                                                                                            \
    "{'Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::site/" \
    "*',"                                                                                                    \
    "'Condition':{'StringEqualsIfExists':{'aws:UserAgent':'good'}}}]}"
#define LIST_HOME                                                                                            \
    "{'Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:ListBucket','Resource':'arn:aws:s3:::"     \
    "site',"                                                                                                 \
    "'Condition':{'StringLike':{'s3:prefix':['home/*','']},'NumericLessThanEquals':{'s3:max-keys':10}}}]}"
#define IGNORE_CASE                                                                                          \
    "{'Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::site/" \
    "*',"                                                                                                    \
    "'Condition':{'StringEqualsIgnoreCase':{'aws:useragent':'Mozilla'}}}]}"
#define UNTIL_2030                                                                                           \
    "{'Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::site/" \
    "*',"                                                                                                    \
    "'Condition':{'DateLessThan':{'aws:CurrentTime':'2030-01-01T00:00:00Z'},"                                \
    "'NumericGreaterThanEquals':{'aws:EpochTime':1700000000}}}]}"
#define NO_ACL                                                                                               \
    "{'Statement':[{'Effect':'Deny','Principal':'*','Action':'s3:PutObject','Resource':'arn:aws:s3:::site/"  \
    "*',"                                                                                                    \
    "'Condition':{'Null':{'s3:x-amz-acl':'false'}}}]}"
#define TWO_KEYS                                                                                             \
    "{'Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::site/" \
    "*',"                                                                                                    \
    "'Condition':{'IpAddress':{'aws:SourceIp':'10.0.0.0/8'},'StringEquals':{'aws:UserAgent':'app',"          \
    "'aws:Referer':'https://app.example/'}}}]}"
#define SIGNED_ONLY                                                                                          \
    "{'Statement':[{'Effect':'Deny','Principal':'*','Action':'s3:*','Resource':'*',"                         \
    "'Condition':{'StringNotEquals':{'s3:signatureversion':'AWS4-HMAC-SHA256'}}}]}"
#define NO_MFA                                                                                               \
    "{'Statement':[{'Effect':'Deny','Principal':'*','Action':'s3:DeleteObject','Resource':'arn:aws:s3:::"    \
    "site/*',"                                                                                               \
    "'Condition':{'BoolIfExists':{'aws:MultiFactorAuthPresent':false}}}]}"
#define MFA_ONLY                                                                                             \
    "{'Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::site/" \
    "*',"                                                                                                    \
    "'Condition':{'Bool':{'aws:MultiFactorAuthPresent':'true'}}}]}"
#define OLD_VERSION                                                                                          \
    "{'Version':'2008-10-17','Statement':{'Effect':'Allow','Principal':{'AWS':'*'},"                         \
    "'Action':'s3:GetObject','Resource':'arn:aws:s3:::site/${literal}'}}"

static const eval_case eval_cases[] = {
    {PUBLIC_READ, CF_POLICY_GET_OBJECT, NULL, "public/a.png", {{0}}, ALLOW},
    {PUBLIC_READ, CF_POLICY_GET_OBJECT, "ci-key", "public/a.png", {{0}}, ALLOW},
    {PUBLIC_READ, CF_POLICY_GET_OBJECT, NULL, "public/", {{0}}, ALLOW},
    {PUBLIC_READ, CF_POLICY_GET_OBJECT, NULL, "private/a.png", {{0}}, NONE},
    {PUBLIC_READ, CF_POLICY_GET_OBJECT, NULL, "publi", {{0}}, NONE},
    {PUBLIC_READ, CF_POLICY_PUT_OBJECT, NULL, "public/a.png", {{0}}, NONE},
    {PUBLIC_READ, CF_POLICY_LIST_BUCKET, NULL, NULL, {{0}}, NONE},
    /* s3:* means what it says, on the resources it names */
    {ANYONE_ANYTHING, CF_POLICY_PUT_OBJECT, NULL, "x", {{0}}, ALLOW},
    {ANYONE_ANYTHING, CF_POLICY_DELETE_OBJECT, NULL, "x", {{0}}, ALLOW},
    {ANYONE_ANYTHING, CF_POLICY_PUT_OBJECT_TAGGING, NULL, "x", {{0}}, ALLOW},
    {ANYONE_ANYTHING, CF_POLICY_LIST_BUCKET, NULL, NULL, {{0}}, NONE},
    {GET_STAR, CF_POLICY_GET_OBJECT, NULL, "a", {{0}}, ALLOW},
    {GET_STAR, CF_POLICY_GET_OBJECT_TAGGING, NULL, "a", {{0}}, ALLOW},
    {GET_STAR, CF_POLICY_GET_BUCKET_LOCATION, NULL, NULL, {{0}}, ALLOW},
    {GET_STAR, CF_POLICY_PUT_OBJECT, NULL, "a", {{0}}, NONE},
    {GET_STAR, CF_POLICY_LIST_BUCKET, NULL, NULL, {{0}}, NONE},
    {DENY_WINS, CF_POLICY_DELETE_OBJECT, NULL, "a", {{0}}, DENY},
    {DENY_WINS, CF_POLICY_DELETE_OBJECT, "ci-key", "a", {{0}}, DENY},
    {DENY_WINS, CF_POLICY_GET_OBJECT, NULL, "a", {{0}}, ALLOW},
    {DENY_KEY, CF_POLICY_DELETE_OBJECT, "ci-key", "a", {{0}}, DENY},
    {DENY_KEY, CF_POLICY_PUT_OBJECT, "ci-key", "a", {{0}}, DENY},
    {DENY_KEY, CF_POLICY_GET_OBJECT, "ci-key", "a", {{0}}, NONE},
    {DENY_KEY, CF_POLICY_DELETE_OBJECT, "admin-key", "a", {{0}}, NONE},
    {DENY_KEY, CF_POLICY_DELETE_OBJECT, NULL, "a", {{0}}, NONE},
    {NOT_PRINCIPAL, CF_POLICY_GET_OBJECT, NULL, "a", {{0}}, DENY},
    {NOT_PRINCIPAL, CF_POLICY_LIST_BUCKET, "ci-key", NULL, {{0}}, DENY},
    {NOT_PRINCIPAL, CF_POLICY_GET_OBJECT, "admin-key", "a", {{0}}, NONE},
    {NOT_ACTION, CF_POLICY_PUT_OBJECT, NULL, "a", {{0}}, ALLOW},
    {NOT_ACTION, CF_POLICY_DELETE_OBJECT, NULL, "a", {{0}}, NONE},
    {NOT_RESOURCE, CF_POLICY_GET_OBJECT, NULL, "private/x", {{0}}, DENY},
    {NOT_RESOURCE, CF_POLICY_GET_OBJECT, NULL, "public/x", {{0}}, NONE},
    /* '?' is one character (UTF-8, not one byte); '*' crosses '/' */
    {QUESTION, CF_POLICY_GET_OBJECT, NULL, "img-1.png", {{0}}, ALLOW},
    {QUESTION, CF_POLICY_GET_OBJECT, NULL, "img-\xc3\xa9.png", {{0}}, ALLOW},
    {QUESTION, CF_POLICY_GET_OBJECT, NULL, "img-10.png", {{0}}, NONE},
    {QUESTION, CF_POLICY_GET_OBJECT, NULL, "img-.png", {{0}}, NONE},
    {QUESTION, CF_POLICY_GET_OBJECT, NULL, "a/b/c.pdf", {{0}}, ALLOW},
    {QUESTION, CF_POLICY_GET_OBJECT, NULL, "a/b/c.pdf.exe", {{0}}, NONE},
    /* IpAddress: IPv4 and IPv6 ranges, IPv4-mapped peers, absent address */
    {FROM_LOOPBACK, CF_POLICY_GET_OBJECT, NULL, "a", {IP("127.0.0.2")}, ALLOW},
    {FROM_LOOPBACK, CF_POLICY_GET_OBJECT, NULL, "a", {IP("::ffff:127.0.0.2")}, ALLOW},
    {FROM_LOOPBACK, CF_POLICY_GET_OBJECT, NULL, "a", {IP("2001:db8:0:1::5")}, ALLOW},
    {FROM_LOOPBACK, CF_POLICY_GET_OBJECT, NULL, "a", {IP("10.1.2.3")}, NONE},
    {FROM_LOOPBACK, CF_POLICY_GET_OBJECT, NULL, "a", {IP("::1")}, NONE},
    {FROM_LOOPBACK, CF_POLICY_GET_OBJECT, NULL, "a", {IP("2001:db9::1")}, NONE},
    {FROM_LOOPBACK, CF_POLICY_GET_OBJECT, NULL, "a", {{0}}, NONE},
    {DENY_NOT_FROM, CF_POLICY_PUT_OBJECT, "ci-key", "a", {IP("127.0.0.2")}, DENY},
    {DENY_NOT_FROM, CF_POLICY_PUT_OBJECT, "ci-key", "a", {IP("127.0.0.1")}, NONE},
    {DENY_NOT_FROM, CF_POLICY_PUT_OBJECT, "ci-key", "a", {{0}}, DENY}, /* negated: absent matches */
    /* values are ORed; a negated operator's values NORed */
    {AGENTS, CF_POLICY_GET_OBJECT, NULL, "a", {UA("wget")}, ALLOW},
    {AGENTS, CF_POLICY_GET_OBJECT, NULL, "a", {UA("curl/8")}, ALLOW},
    {AGENTS, CF_POLICY_GET_OBJECT, NULL, "a", {UA("curl/7")}, NONE},
    {AGENTS, CF_POLICY_GET_OBJECT, NULL, "a", {{0}}, NONE},
    {REFERERS, CF_POLICY_GET_OBJECT, NULL, "a", {REF("https://shop.example/cart")}, NONE},
    {REFERERS, CF_POLICY_GET_OBJECT, NULL, "a", {REF("https://www.shop.example/")}, NONE},
    {REFERERS, CF_POLICY_GET_OBJECT, NULL, "a", {REF("https://evil.example/")}, DENY},
    {REFERERS, CF_POLICY_GET_OBJECT, NULL, "a", {{0}}, DENY},
    {IF_EXISTS, CF_POLICY_GET_OBJECT, NULL, "a", {{0}}, ALLOW},
    {IF_EXISTS, CF_POLICY_GET_OBJECT, NULL, "a", {UA("good")}, ALLOW},
    {IF_EXISTS, CF_POLICY_GET_OBJECT, NULL, "a", {UA("bad")}, NONE},
    {LIST_HOME, CF_POLICY_LIST_BUCKET, NULL, NULL, {PREFIX("home/ann/"), MAXKEYS("10")}, ALLOW},
    {LIST_HOME, CF_POLICY_LIST_BUCKET, NULL, NULL, {PREFIX(""), MAXKEYS("1")}, ALLOW},
    {LIST_HOME, CF_POLICY_LIST_BUCKET, NULL, NULL, {PREFIX("home/ann/"), MAXKEYS("11")}, NONE},
    {LIST_HOME, CF_POLICY_LIST_BUCKET, NULL, NULL, {PREFIX("etc/"), MAXKEYS("5")}, NONE},
    {LIST_HOME, CF_POLICY_LIST_BUCKET, NULL, NULL, {PREFIX("home/"), MAXKEYS("ten")}, NONE},
    {LIST_HOME, CF_POLICY_LIST_BUCKET, NULL, NULL, {MAXKEYS("5")}, NONE}, /* no prefix: key absent */
    {IGNORE_CASE, CF_POLICY_GET_OBJECT, NULL, "a", {UA("MOZILLA")}, ALLOW},
    {IGNORE_CASE, CF_POLICY_GET_OBJECT, NULL, "a", {UA("Mozilla/5")}, NONE},
    {UNTIL_2030, CF_POLICY_GET_OBJECT, NULL, "a", {NOW("2026-12-05T21:49:43Z"), EPOCH("1796507383")}, ALLOW},
    {UNTIL_2030, CF_POLICY_GET_OBJECT, NULL, "a", {NOW("2030-01-01T00:00:00Z"), EPOCH("1893456000")}, NONE},
    {UNTIL_2030, CF_POLICY_GET_OBJECT, NULL, "a", {NOW("2026-12-05T21:49:43Z"), EPOCH("1600000000")}, NONE},
    {NO_ACL, CF_POLICY_PUT_OBJECT, NULL, "a", {ACL("public-read")}, DENY},
    {NO_ACL, CF_POLICY_PUT_OBJECT, NULL, "a", {{0}}, NONE},
    /* keys and operators are ANDed */
    {TWO_KEYS,
     CF_POLICY_GET_OBJECT,
     NULL,
     "a",
     {IP("10.0.0.1"), UA("app"), REF("https://app.example/")},
     ALLOW},
    {TWO_KEYS, CF_POLICY_GET_OBJECT, NULL, "a", {IP("10.0.0.1"), UA("app"), REF("https://x.example/")}, NONE},
    {TWO_KEYS,
     CF_POLICY_GET_OBJECT,
     NULL,
     "a",
     {IP("11.0.0.1"), UA("app"), REF("https://app.example/")},
     NONE},
    {SIGNED_ONLY, CF_POLICY_GET_OBJECT, NULL, "a", {{0}}, DENY},
    {SIGNED_ONLY, CF_POLICY_GET_OBJECT, "ci-key", "a", {SIGV("AWS4-HMAC-SHA256")}, NONE},
    {SIGNED_ONLY, CF_POLICY_LIST_BUCKET, NULL, NULL, {{0}}, DENY},
    /* coffer's requests, like AWS's signed with access keys, carry no MFA key */
    {NO_MFA, CF_POLICY_DELETE_OBJECT, "ci-key", "a", {SIGV("AWS4-HMAC-SHA256")}, DENY},
    {NO_MFA, CF_POLICY_GET_OBJECT, "ci-key", "a", {{0}}, NONE},
    {MFA_ONLY, CF_POLICY_GET_OBJECT, NULL, "a", {{0}}, NONE},
    {MFA_ONLY, CF_POLICY_GET_OBJECT, NULL, "a", {{CF_POLICY_KEY_MFA_PRESENT, "TRUE"}}, ALLOW},
    /* 2008-10-17 has no policy variables: "${literal}" is text */
    {OLD_VERSION, CF_POLICY_GET_OBJECT, NULL, "${literal}", {{0}}, ALLOW},
    {OLD_VERSION, CF_POLICY_GET_OBJECT, NULL, "x", {{0}}, NONE},
    /* a version is its own action: s3:GetObject does not reach it, s3:Get* does */
    {UNTIL_2030,
     CF_POLICY_GET_OBJECT_VERSION,
     NULL,
     "a",
     {NOW("2026-12-05T21:49:43Z"), EPOCH("1796507383")},
     NONE},
    {GET_STAR, CF_POLICY_GET_OBJECT_VERSION, NULL, "a", {{0}}, ALLOW},
    {GET_STAR, CF_POLICY_GET_OBJECT_VERSION_TAGGING, NULL, "a", {{0}}, ALLOW},
    {GET_STAR, CF_POLICY_DELETE_OBJECT_VERSION, NULL, "a", {{0}}, NONE},
    {NO_ACL, CF_POLICY_PUT_OBJECT_VERSION_TAGGING, NULL, "a", {ACL("public-read")}, NONE},
};

static void test_decisions(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof eval_cases / sizeof *eval_cases; i++) {
        const eval_case *c = &eval_cases[i];
        cf_policy *p;
        cf_err err = {0};
        if (parse(c->policy, &p, &err) != 0)
            fail_msg("case %zu: %s", i, err.msg);
        cf_policy_request q = {.action = c->action,
                               .principal = c->principal,
                               .key = c->key,
                               .keylen = c->key ? strlen(c->key) : 0};
        for (size_t k = 0; k < 3; k++)
            if (c->ctx[k].value)
                q.values[c->ctx[k].key] = c->ctx[k].value;
        cf_policy_effect got = cf_policy_evaluate(p, &q);
        if (got != c->want)
            fail_msg("case %zu (%s on '%s' by %s): got %d, want %d", i, cf_policy_action_name(c->action),
                     c->key ? c->key : "", c->principal ? c->principal : "anonymous", got, c->want);
        cf_policy_free(p);
    }
}

/* A fake object whose tags are "class=secret" and "owner=ann smith". */
static const char *fake_tag(void *ctx, const char *tag)
{
    (*(int *)ctx)++;
    if (strcmp(tag, "class") == 0)
        return "secret";
    return strcmp(tag, "owner") == 0 ? "ann smith" : NULL;
}

static void test_existing_object_tag(void **state)
{
    (void)state;
    cf_policy *p;
    cf_err err;
    assert_int_equal(
        parse("{'Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:GetObject',"
              "'Resource':'arn:aws:s3:::site/*','Condition':{'StringLike':"
              "{'s3:ExistingObjectTag/owner':'ann *'}}},"
              "{'Effect':'Deny','Principal':'*','Action':'s3:*','Resource':'arn:aws:s3:::site/*',"
              "'Condition':{'StringEquals':{'s3:existingobjecttag/class':['secret','top']}}}]}",
              &p, &err),
        0);
    assert_true(cf_policy_uses_object_tags(p));
    int calls = 0;
    cf_policy_request q = {.action = CF_POLICY_GET_OBJECT,
                           .key = "a",
                           .keylen = 1,
                           .object_tag = fake_tag,
                           .object_tag_ctx = &calls};
    assert_int_equal(cf_policy_evaluate(p, &q), CF_POLICY_DENIED);
    assert_true(calls > 0);
    q.object_tag = NULL; /* an action that carries no object tags: the key is absent */
    assert_int_equal(cf_policy_evaluate(p, &q), CF_POLICY_NO_MATCH);
    cf_policy_free(p);
    assert_int_equal(parse(PUBLIC_READ, &p, &err), 0);
    assert_false(cf_policy_uses_object_tags(p));
    cf_policy_free(p);
    /* the tag key is case-sensitive, as S3's tag keys are */
    assert_int_equal(parse("{'Statement':[{'Effect':'Allow','Principal':'*','Action':'s3:GetObject',"
                           "'Resource':'arn:aws:s3:::site/*','Condition':{'StringEquals':"
                           "{'s3:ExistingObjectTag/Owner':'ann smith'}}}]}",
                           &p, &err),
                     0);
    q.object_tag = fake_tag;
    assert_int_equal(cf_policy_evaluate(p, &q), CF_POLICY_NO_MATCH);
    cf_policy_free(p);
}

static void test_may_allow(void **state)
{
    (void)state;
    cf_policy *p;
    cf_err err;
    assert_int_equal(parse(ANYONE_ANYTHING, &p, &err), 0);
    assert_true(cf_policy_may_allow(p, CF_POLICY_PUT_OBJECT, NULL));
    assert_true(cf_policy_may_allow(p, CF_POLICY_DELETE_OBJECT, "ci-key"));
    cf_policy_free(p);
    assert_int_equal(parse(PUBLIC_READ, &p, &err), 0);
    assert_false(cf_policy_may_allow(p, CF_POLICY_PUT_OBJECT, NULL));
    assert_false(cf_policy_may_allow(p, CF_POLICY_DELETE_OBJECT, NULL));
    assert_true(cf_policy_may_allow(p, CF_POLICY_GET_OBJECT, NULL));
    cf_policy_free(p);
    assert_int_equal(parse(DENY_WINS, &p, &err), 0);
    assert_true(
        cf_policy_may_allow(p, CF_POLICY_DELETE_OBJECT, NULL)); /* the Allow could; the Deny decides */
    cf_policy_free(p);
}

#define STMT(inner) "{'Version':'2012-10-17','Statement':[{" inner "}]}"
#define GET_ALL "'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::site/*'"
#define WITH_COND(cond) STMT(GET_ALL ",'Condition':" cond)

static const struct {
    const char *policy, *reason;
} refused[] = {
    {"not json", "valid JSON"},
    {"[]", "first byte must be '{'"},
    {"{'Statement':[]}", "non-empty"},
    {"{'Statement':[{}]}", "Missing required field Effect"},
    {"{'Version':'2099-01-01','Statement':[{" GET_ALL "}]}", "Version"},
    {"{'Statement':[{" GET_ALL "}],'Extra':1}", "Unknown field Extra"},
    {STMT(GET_ALL ",'Colour':'blue'"), "Unknown field Colour"},
    {"{'Statement':[{'Sid':'a'," GET_ALL "},{'Sid':'a'," GET_ALL "}]}", "unique"},
    {"{'Statement':[{'Effect':'Allow','Effect':'Deny','Principal':'*','Action':'s3:GetObject',"
     "'Resource':'arn:aws:s3:::site/*'}]}",
     "valid JSON"},
    {STMT("'Effect':'Maybe','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::site/*'"),
     "Invalid effect"},
    {STMT("'Effect':'Allow','Action':'s3:GetObject','Resource':'arn:aws:s3:::site/*'"),
     "Missing required field Principal"},
    {STMT("'Effect':'Allow','Principal':'*','NotPrincipal':'*','Action':'s3:GetObject',"
          "'Resource':'arn:aws:s3:::site/*'"),
     "not both"},
    {STMT("'Effect':'Allow','Principal':'*','Resource':'arn:aws:s3:::site/*'"),
     "Missing required field Action"},
    {STMT("'Effect':'Allow','Principal':'*','Action':'s3:GetObject'"), "Missing required field Resource"},
    /* principals */
    {STMT("'Effect':'Allow','Principal':'someone','Action':'s3:GetObject','Resource':'arn:aws:s3:::site/*'"),
     "Invalid principal"},
    {STMT("'Effect':'Allow','Principal':{'CanonicalUser':'abc'},'Action':'s3:GetObject',"
          "'Resource':'arn:aws:s3:::site/*'"),
     "CanonicalUser"},
    {STMT("'Effect':'Allow','Principal':{'AWS':'arn:aws:iam::123456789012:root'},'Action':'s3:GetObject',"
          "'Resource':'arn:aws:s3:::site/*'"),
     "names an account"},
    {STMT("'Effect':'Allow','Principal':{'AWS':'arn:aws:iam::123456789012:role/r'},'Action':'s3:GetObject',"
          "'Resource':'arn:aws:s3:::site/*'"),
     "Invalid principal"},
    {STMT("'Effect':'Allow','Principal':{'AWS':'ci*'},'Action':'s3:GetObject','Resource':'arn:aws:s3:::site/"
          "*'"),
     "Invalid principal"},
    {STMT("'Effect':'Allow','Principal':{'AWS':'nobody'},'Action':'s3:GetObject',"
          "'Resource':'arn:aws:s3:::site/*'"),
     "no access key 'nobody'"},
    {STMT("'Effect':'Deny','Principal':{'AWS':['ci-key','itest-root']},'Action':'s3:GetObject',"
          "'Resource':'arn:aws:s3:::site/*'"),
     "root user"},
    {STMT("'Effect':'Allow','Principal':{'AWS':[]},'Action':'s3:GetObject','Resource':'arn:aws:s3:::site/*'"),
     "non-empty array"},
    /* actions */
    {STMT("'Effect':'Allow','Principal':'*','Action':'iam:*','Resource':'arn:aws:s3:::site/*'"),
     "invalid action"},
    {STMT("'Effect':'Allow','Principal':'*','Action':'s3:GetObjekt','Resource':'arn:aws:s3:::site/*'"),
     "invalid action: 's3:GetObjekt'"},
    {STMT("'Effect':'Allow','Principal':'*','Action':'s3:Foo*','Resource':'arn:aws:s3:::site/*'"),
     "invalid action"},
    {STMT("'Effect':'Allow','Principal':'*','Action':'s3:DeleteBucket','Resource':'arn:aws:s3:::site'"),
     "reserved"},
    {STMT("'Effect':'Allow','Principal':'*','Action':['s3:GetObject','s3:PutBucketPolicy'],"
          "'Resource':'arn:aws:s3:::site'"),
     "reserved"},
    {STMT("'Effect':'Allow','Principal':'*','Action':[1],'Resource':'arn:aws:s3:::site/*'"), "strings only"},
    /* resources */
    {STMT("'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::other/*'"),
     "Policy has invalid resource"},
    {STMT("'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::site2/*'"),
     "not in bucket"},
    {STMT("'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::'"),
     "invalid resource"},
    {STMT("'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:iam::1:user/x'"),
     "invalid resource"},
    {STMT("'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::site'"),
     "Action does not apply to any resource"},
    {STMT("'Effect':'Allow','Principal':'*','Action':'s3:ListBucket','Resource':'arn:aws:s3:::site/*'"),
     "Action does not apply to any resource"},
    {STMT("'Effect':'Allow','Principal':'*','Action':'s3:GetObject','Resource':'arn:aws:s3:::site/"
          "${aws:username}/*'"),
     "policy variables"},
    /* conditions */
    {WITH_COND("'yes'"), "Condition must be an object"},
    {WITH_COND("{'StringEqualz':{'aws:UserAgent':'x'}}"), "'StringEqualz' is not supported"},
    {WITH_COND("{'ForAnyValue:StringEquals':{'aws:UserAgent':'x'}}"), "multivalued"},
    {WITH_COND("{'ForAllValues:StringLike':{'aws:UserAgent':'x'}}"), "multivalued"},
    {WITH_COND("{'ArnLike':{'aws:SourceArn':'arn:*'}}"), "'ArnLike' is not supported"},
    {WITH_COND("{'BinaryEquals':{'aws:UserAgent':'eA=='}}"), "'BinaryEquals' is not supported"},
    {WITH_COND("{'NullIfExists':{'aws:UserAgent':'true'}}"), "'NullIfExists' is not supported"},
    {WITH_COND("{'Bool':{'aws:SecureTransport':'false'}}"), "TLS proxy"},
    {WITH_COND("{'StringEquals':{'s3:x-amz-server-side-encryption':'AES256'}}"), "encrypt"},
    {WITH_COND("{'StringEquals':{'s3:RequestObjectTag/class':'public'}}"), "tags a request sets"},
    {WITH_COND("{'StringEquals':{'s3:ExistingObjectTag/':'public'}}"), "unsupported condition key"},
    {WITH_COND("{'StringEquals':{'aws:SourceVpce':'vpce-1'}}"), "VPC"},
    {WITH_COND("{'StringEquals':{'aws:PrincipalArn':'x'}}"), "Principal"},
    {WITH_COND("{'StringEquals':{'aws:FooBar':'x'}}"), "unsupported condition key 'aws:FooBar'"},
    {WITH_COND("{'IpAddress':{'aws:UserAgent':'10.0.0.0/8'}}"), "does not apply to key"},
    {WITH_COND("{'StringEquals':{'aws:SourceIp':'10.0.0.1'}}"), "does not apply to key"},
    {WITH_COND("{'IpAddress':{'aws:SourceIp':'300.1.1.1'}}"), "IP address"},
    {WITH_COND("{'IpAddress':{'aws:SourceIp':'10.0.0.0/33'}}"), "IP address"},
    {WITH_COND("{'NotIpAddress':{'aws:SourceIp':'2001:db8::/129'}}"), "IP address"},
    {WITH_COND("{'NumericLessThan':{'s3:max-keys':'ten'}}"), "a number"},
    {WITH_COND("{'NumericLessThan':{'s3:max-keys':'0x10'}}"), "a number"},
    {WITH_COND("{'DateLessThan':{'aws:CurrentTime':'yesterday'}}"), "a date"},
    {WITH_COND("{'DateLessThan':{'aws:CurrentTime':'2026-02-30T00:00:00Z'}}"), "a date"},
    {WITH_COND("{'Null':{'aws:UserAgent':'maybe'}}"), "true or false"},
    {WITH_COND("{'Bool':{'aws:MultiFactorAuthPresent':'yes'}}"), "true or false"},
    {WITH_COND("{'Bool':{'aws:UserAgent':'true'}}"), "does not apply to key"},
    {WITH_COND("{'StringEquals':{'aws:UserAgent':{'a':'b'}}}"), "must be strings"},
    {WITH_COND("{'StringEquals':{'aws:UserAgent':[]}}"), "no values"},
    {WITH_COND("{'StringEquals':{}}"), "must map condition keys"},
    {WITH_COND("{'StringLike':{'aws:UserAgent':'${aws:username}'}}"), "policy variables"},
};

static void test_refused_with_a_reason(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        cf_policy *p = (cf_policy *)&p;
        cf_err err = {0};
        if (parse(refused[i].policy, &p, &err) != CF_EINVAL)
            fail_msg("case %zu accepted: %s", i, refused[i].policy);
        assert_null(p);
        if (!strstr(err.msg, refused[i].reason))
            fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg, refused[i].reason);
    }
}

static void test_accepted_shapes(void **state)
{
    (void)state;
    static const char *const ok[] = {
        /* a Deny may name what only root may do: it binds no one who could */
        STMT("'Effect':'Deny','Principal':'*','Action':['s3:DeleteBucket','s3:PutBucketPolicy'],"
             "'Resource':'arn:aws:s3:::site'"),
        /* actions of features coffer lacks are valid AWS, and grant nothing here */
        STMT("'Effect':'Allow','Principal':'*','Action':['s3:GetObjectAcl','s3:GetObject'],"
             "'Resource':'arn:aws:s3:::site/*'"),
        STMT("'Effect':'Allow','Principal':'*','Action':'*','Resource':'*'"),
        STMT("'Effect':'Allow','Principal':'*','Action':'s3:*','Resource':'arn:aws:s3:::si?e*'"),
        /* the older published shape: ListBucket beside GetObject on objects only */
        STMT("'Effect':'Allow','Principal':'*','Action':['s3:GetObject','s3:ListBucket'],"
             "'Resource':'arn:aws:s3:::site/*'"),
        WITH_COND("{'DateGreaterThan':{'aws:CurrentTime':['2026-01-01','2026-01-01T00:00:00.5+02:00',"
                  "1700000000]}}"),
        WITH_COND("{'NumericEquals':{'s3:max-keys':[1,2.5,'1e3']},'Null':{'s3:prefix':true}}"),
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        cf_policy *p;
        cf_err err = {0};
        if (parse(ok[i], &p, &err) != 0)
            fail_msg("case %zu refused: %s", i, err.msg);
        cf_policy_free(p);
    }
}

static void test_limits(void **state)
{
    (void)state;
    cf_policy *p;
    cf_err err;
    /* 20 KB */
    size_t big = CF_POLICY_MAX_BYTES + 1;
    char *s = malloc(big + 1);
    memset(s, ' ', big);
    memcpy(s, "{\"Statement\":{}}", 16);
    s[big] = '\0';
    assert_int_equal(cf_policy_parse(s, big, BUCKET, NULL, NULL, &p, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "maximum allowed document size"));
    free(s);
    /* nesting, refused before the JSON parser recurses */
    char deep[64] = "{\"Statement\":";
    for (int i = 0; i < 20; i++)
        strcat(deep, "[");
    assert_int_equal(cf_policy_parse(deep, strlen(deep), BUCKET, NULL, NULL, &p, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "nested deeper"));
    /* statements */
    const char *one = "{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\"}";
    for (int n = CF_POLICY_MAX_STATEMENTS; n <= CF_POLICY_MAX_STATEMENTS + 1; n++) {
        size_t cap = 64 + (size_t)n * (strlen(one) + 1);
        char *j = malloc(cap);
        strcpy(j, "{\"Statement\":[");
        for (int i = 0; i < n; i++) {
            strcat(j, one);
            strcat(j, i + 1 < n ? "," : "]}");
        }
        int rc = cf_policy_parse(j, strlen(j), BUCKET, NULL, NULL, &p, &err);
        free(j);
        if (n == CF_POLICY_MAX_STATEMENTS) {
            assert_int_equal(rc, 0);
            cf_policy_free(p);
        } else {
            assert_int_equal(rc, CF_EINVAL);
            assert_non_null(strstr(err.msg, "at most"));
        }
    }
}

/* Refusals quote the policy, and travel in an XML document: no controls, no cut characters. */
static void test_refusal_messages_are_printable(void **state)
{
    (void)state;
    char json[2048] = "{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\","
                      "\"Resource\":\"arn:aws:s3:::other/\\u0001\\u001b[31m";
    for (int i = 0; i < 150; i++)
        strcat(json, "\xc3\xa9"); /* the 200-byte quote cuts one of these in two */
    strcat(json, "\"}]}");
    cf_policy *p;
    cf_err err = {0};
    assert_int_equal(cf_policy_parse(json, strlen(json), BUCKET, NULL, NULL, &p, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "Policy has invalid resource"));
    assert_true(cf_s3_utf8_valid((const unsigned char *)err.msg, strlen(err.msg)));
    for (const char *c = err.msg; *c; c++)
        assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
}

static void test_glob(void **state)
{
    (void)state;
    struct {
        const char *pattern, *s;
        int ignore_case, want;
    } cases[] = {
        {"*", "", 0, 1},
        {"*", "a/b", 0, 1},
        {"a*", "a", 0, 1},
        {"a*b", "axxb", 0, 1},
        {"a*b", "axxbc", 0, 0},
        {"a?c", "abc", 0, 1},
        {"a?c", "ac", 0, 0},
        {"*.png", "x.png.png", 0, 1},
        {"GetObject", "getobject", 1, 1},
        {"GetObject", "getobject", 0, 0},
        {"Get*", "GETOBJECTTAGGING", 1, 1},
        {"?", "\xe2\x82\xac", 0, 1},
        {"??", "\xe2\x82\xac", 0, 0},
        {"a**b", "ab", 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (cf_policy_glob(cases[i].pattern, strlen(cases[i].pattern), cases[i].s, strlen(cases[i].s),
                           cases[i].ignore_case) != cases[i].want)
            fail_msg("'%s' vs '%s'", cases[i].pattern, cases[i].s);
    /* A pattern built to backtrack stays linear in each star: well under a second for 1 KiB. */
    char pattern[4096] = "", subject[1025];
    for (int i = 0; i < 400; i++)
        strcat(pattern, "*a");
    strcat(pattern, "b");
    memset(subject, 'a', 1024);
    subject[1024] = '\0';
    clock_t t0 = clock();
    assert_false(cf_policy_glob(pattern, strlen(pattern), subject, 1024, 0));
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_may_allow),
        cmocka_unit_test(test_refused_with_a_reason),
        cmocka_unit_test(test_accepted_shapes),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_existing_object_tag),
        cmocka_unit_test(test_refusal_messages_are_printable),
        cmocka_unit_test(test_glob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
