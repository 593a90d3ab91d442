/* fuzz_policy.c - bucket policies are untrusted JSON: parse anything; a refusal says why, in
 * text an XML error document can carry; whatever parses decides every request the same way
 * each time, within the three answers, granting nothing that no Allow statement could grant,
 * and deciding the same once re-read from its stored bytes (the server re-parses them). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3/policy.h"
#include "s3/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const principals[] = {NULL, "ci-key", "admin-key"};
static const char *const keys[] = {"", "a", "public/x.png", "img-\xc3\xa9.png", "a/b/c.pdf", "${literal}"};
static const char *const ips[] = {NULL, "127.0.0.2", "::1", "2001:db8::7", "10.1.2.3"};

/* An object tagged "class=secret&owner=ann smith". */
static const char *object_tag(void *ctx, const char *tag)
{
    (void)ctx;
    if (strcmp(tag, "class") == 0)
        return "secret";
    return strcmp(tag, "owner") == 0 ? "ann smith" : NULL;
}

static void context(cf_policy_request *q, size_t variant, const uint8_t *data, size_t size)
{
    memset(q->values, 0, sizeof q->values);
    q->object_tag = variant == 3 ? object_tag : NULL;
    q->object_tag_ctx = NULL;
    if (variant == 0)
        return; /* every condition key absent */
    static char text[64];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    q->values[CF_POLICY_KEY_SOURCE_IP] = ips[variant % (sizeof ips / sizeof *ips)];
    q->values[CF_POLICY_KEY_CURRENT_TIME] = variant & 1 ? "2026-12-05T21:49:43Z" : "2031-01-01T00:00:00Z";
    q->values[CF_POLICY_KEY_EPOCH_TIME] = variant & 1 ? "1796507383" : "1924992000";
    q->values[CF_POLICY_KEY_USER_AGENT] = text; /* whatever the input starts with */
    q->values[CF_POLICY_KEY_REFERER] = variant & 2 ? "https://shop.example/" : NULL;
    q->values[CF_POLICY_KEY_PREFIX] = variant & 2 ? "home/" : "";
    q->values[CF_POLICY_KEY_DELIMITER] = "/";
    q->values[CF_POLICY_KEY_MAX_KEYS] = variant & 1 ? "10" : "1000";
    q->values[CF_POLICY_KEY_ACL] = variant & 2 ? "public-read" : NULL;
    q->values[CF_POLICY_KEY_SIGNATURE_VERSION] = variant & 1 ? "AWS4-HMAC-SHA256" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_policy *p = (cf_policy *)&p, *again = NULL;
    cf_err err = {0};
    int rc = cf_policy_parse((const char *)data, size, "fuzz", NULL, NULL, &p, &err);
    if (rc != 0) {
        if ((rc != CF_EINVAL && rc != CF_ENOMEM) || p != NULL || !err.msg[0])
            abort();
        /* The reason goes into an XML error document: UTF-8 without controls. */
        if (!cf_s3_utf8_valid((const unsigned char *)err.msg, strlen(err.msg)))
            abort();
        for (const char *c = err.msg; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                abort();
        return 0;
    }
    if (size > CF_POLICY_MAX_BYTES)
        abort();
    if (cf_policy_parse((const char *)data, size, "fuzz", NULL, NULL, &again, &err) != 0)
        abort();
    cf_policy_request q;
    for (int a = 0; a < CF_POLICY_ACTION_COUNT_; a++)
        for (size_t pr = 0; pr < sizeof principals / sizeof *principals; pr++) {
            int may = cf_policy_may_allow(p, (cf_policy_action)a, principals[pr]);
            for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
                for (size_t v = 0; v < 4; v++) {
                    q.action = (cf_policy_action)a;
                    q.principal = principals[pr];
                    q.key = keys[k];
                    q.keylen = strlen(keys[k]);
                    context(&q, v, data, size);
                    cf_policy_effect e = cf_policy_evaluate(p, &q);
                    if (e != CF_POLICY_NO_MATCH && e != CF_POLICY_ALLOWED && e != CF_POLICY_DENIED)
                        abort();
                    if (e == CF_POLICY_ALLOWED && !may)
                        abort();
                    if (cf_policy_evaluate(p, &q) != e || cf_policy_evaluate(again, &q) != e)
                        abort();
                }
        }
    cf_policy_free(again);
    cf_policy_free(p);
    return 0;
}
