/*
 * handlers_admin.c - bucket policies (Put/Get/DeleteBucketPolicy) and coffer's admin API.
 *
 * The admin API lives under /_admin/v1/ ('_' cannot begin a bucket name, so it never shadows
 * one), speaks JSON, and is signed with SigV4 like any S3 request; only root may call it.
 *   GET    /_admin/v1/keys                 -> {"keys": [{access_key, policy, bucket, prefix, created,
 *                                              rate_group, rate}]}
 *   POST   /_admin/v1/keys  {policy, bucket?, prefix?, access_key?, rate_group?, rate?}
 *                                          -> {access_key, secret_key, policy, bucket, prefix, ...}
 *   DELETE /_admin/v1/keys/ACCESS_KEY      -> 204
 *   GET    /_admin/v1/rate-groups          -> {"rate_groups": [{name, rate, keys}]}
 *   PUT    /_admin/v1/rate-groups/NAME {rate} -> {name, rate}
 * The secret is generated here and returned once; no listing ever shows it. A rate is given as
 * text ("250MB/s", core/rate.h) or a number of bytes/s, and always answered in bytes/s ("rate",
 * null for a key without a group).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/rate.h"
#include "s3/policy.h"
#include "server/request.h"
#include "server/handlers_admin.h"
#include "server/rate_groups.h"
#include "server/response.h"

static int store_failure(cf_request *r, const cf_err *err)
{
    return cf_respond_failure(r, err, CF_S3_ON_BUCKET, 0);
}

static void policy_name(const cf_request *r, char *out, size_t n)
{
    snprintf(out, n, "policy/%s", r->bucket);
}

/* Names in a Principal must be access keys that exist, as AWS refuses unknown principals. */
static int principal_kind(void *ctx, const char *access_key, cf_err *err)
{
    cf_request *r = ctx;
    if (strcmp(access_key, r->srv->root.access_key) == 0)
        return CF_POLICY_PRINCIPAL_ROOT;
    cf_store_key k;
    int rc = cf_store_key_get(r->srv->store, access_key, &k, err);
    memset(&k, 0, sizeof k); /* it holds the secret */
    if (rc == CF_ENOTFOUND)
        return CF_POLICY_PRINCIPAL_UNKNOWN;
    return rc ? rc : CF_POLICY_PRINCIPAL_KEY;
}

int cf_handle_bucket_policy(cf_request *r)
{
    cf_err err;
    if (cf_store_bucket_exists(r->srv->store, r->bucket, &err) != 0)
        return store_failure(r, &err);
    char name[80];
    policy_name(r, name, sizeof name);
    if (r->op == CF_S3_OP_GET_BUCKET_POLICY) {
        char *json;
        size_t len;
        if (cf_store_meta_get(r->srv->store, name, &json, &len, &err) != 0)
            return cf_respond_failure(r, &err, CF_S3_ON_BUCKET_POLICY, 0);
        cf_http_response *resp = cf_http_body_buffer(json, len, 0);
        if (!resp)
            return 0;
        cf_http_add_header(resp, "Content-Type", "application/json");
        r->bytes_out = len;
        return cf_respond(r, 200, resp);
    }
    if (r->op == CF_S3_OP_DELETE_BUCKET_POLICY) {
        if (cf_store_meta_put(r->srv->store, name, NULL, 0, &err) != 0)
            return store_failure(r, &err);
        return cf_respond_empty(r, 204);
    }
    if (r->small.len > CF_POLICY_MAX_BYTES)
        return cf_respond_error(r, CF_S3_MalformedPolicy,
                                "Policy exceeds the maximum allowed document size (20 KB)");
    cf_policy *p;
    int rc = cf_policy_parse(r->small.data ? r->small.data : "", r->small.len, r->bucket, principal_kind, r,
                             &p, &err);
    if (rc)
        return cf_respond_failure(r, &err, CF_S3_ON_POLICY_DOC, 1);
    /* What the owner wrote is what is enforced, anonymous writes included; the log says so. */
    int anyone_writes = cf_policy_may_allow(p, CF_POLICY_PUT_OBJECT, NULL) ||
                        cf_policy_may_allow(p, CF_POLICY_DELETE_OBJECT, NULL);
    cf_policy_free(p);
    if (cf_store_meta_put(r->srv->store, name, r->small.data, r->small.len, &err) != 0)
        return store_failure(r, &err);
    if (anyone_writes)
        cf_log(&r->srv->log, CF_LOG_WARN, "bucket policy lets anonymous requests write or delete objects",
               "id", r->request_id, "bucket", r->bucket, NULL);
    return cf_respond_empty(r, 204);
}

/* ---- admin API ---- */

static int respond_json(cf_request *r, int status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    size_t len = strlen(text);
    cf_http_response *resp = cf_http_body_buffer(text, len, 0);
    if (!resp)
        return 0;
    cf_http_add_header(resp, "Content-Type", "application/json");
    r->bytes_out = len;
    return cf_respond(r, status, resp);
}

static json_t *rate_json(uint64_t rate)
{
    return rate ? json_integer((json_int_t)rate) : json_null();
}

static json_t *key_json(cf_request *r, const cf_store_key *k)
{
    char created[25];
    cf_s3_iso8601(k->created_ns, created);
    uint64_t rate = k->rate_group[0] ? cf_rate_groups_rate(r->srv->rate_groups, k->rate_group) : 0;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "access_key", k->access_key, "policy", k->policy,
                     "bucket", k->bucket, "prefix", k->prefix, "created", created, "rate_group",
                     k->rate_group, "rate", rate_json(rate));
}

/* "rate": "250MB/s" or 250000000. 0 and *rate set, or 1 with msg (cap bytes) saying why not. */
static int rate_of_json(const json_t *v, uint64_t *rate, char *msg, size_t cap)
{
    cf_err err;
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < (json_int_t)CF_RATE_MIN || n > (json_int_t)CF_RATE_MAX) {
            snprintf(msg, cap, "rate %lld B/s: must be between 1KB/s and 1000GB/s", (long long)n);
            return 1;
        }
        *rate = (uint64_t)n;
        return 0;
    }
    if (!json_is_string(v)) {
        snprintf(msg, cap, "rate must be a string such as \"250MB/s\" (units " CF_RATE_UNITS ") or bytes/s");
        return 1;
    }
    if (cf_rate_parse(json_string_value(v), rate, &err) != 0) {
        snprintf(msg, cap, "%s", err.msg);
        return 1;
    }
    return 0;
}

/* A group's name as the request gave it: what is wrong with it in msg, or 0. */
static int bad_group_name(const char *name, char *msg, size_t cap)
{
    if (*name && cf_store_rate_group_name_valid(name))
        return 0;
    snprintf(msg, cap, "rate group '%.40s': a name is 1 to 32 of a-z, 0-9 and '-'", name);
    return 1;
}

static int add_key(cf_request *r)
{
    json_error_t jerr;
    json_t *in = json_loadb(r->small.data ? r->small.data : "", r->small.len, 0, &jerr);
    const char *policy = NULL, *bucket = "", *prefix = "", *access = NULL, *group = NULL;
    json_t *rate_in = NULL;
    if (!in || json_unpack_ex(in, &jerr, 0, "{s:s, s?s, s?s, s?s, s?s, s?o}", "policy", &policy, "bucket",
                              &bucket, "prefix", &prefix, "access_key", &access, "rate_group", &group, "rate",
                              &rate_in) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "the body must be JSON {\"policy\": ..., \"bucket\"?, \"prefix\"?, \"rate_group\"?, "
                 "\"rate\"?}: %s",
                 jerr.text);
        json_decref(in);
        return cf_respond_error(r, CF_S3_InvalidArgument, msg);
    }
    cf_store_key k = {0};
    const char *problem = NULL;
    if (strcmp(policy, "readwrite") && strcmp(policy, "readonly") && strcmp(policy, "writeonly"))
        problem = "policy must be readwrite, readonly or writeonly";
    else if (*bucket && !cf_s3_bucket_name_valid(bucket))
        problem = "bucket is not a valid bucket name";
    else if (strlen(prefix) >= sizeof k.prefix ||
             cf_s3_utf8_valid((const unsigned char *)prefix, strlen(prefix)) == 0)
        problem = "prefix must be UTF-8 of at most 1024 bytes";
    else if (*prefix && !*bucket)
        problem = "a prefix needs a bucket";
    else if (access && (strlen(access) < 3 || strlen(access) > 128 ||
                        strspn(access, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") !=
                            strlen(access)))
        problem = "access_key must be 3 to 128 letters, digits, '-', '_' or '.'";
    else if (access && strcmp(access, r->srv->root.access_key) == 0)
        problem = "access_key is the root user's";
    /* The group and its rate: a new group needs a rate, an existing one keeps its own unless
     * one is given (last set wins). */
    char group_msg[200];
    uint64_t rate = 0;
    if (group && !*group)
        group = NULL;
    if (!problem && rate_in && !json_is_null(rate_in) && !group)
        problem = "rate needs a rate_group: the rate is the group's, shared by all its keys";
    else if (!problem && group && bad_group_name(group, group_msg, sizeof group_msg))
        problem = group_msg;
    else if (!problem && group && rate_in && !json_is_null(rate_in) &&
             rate_of_json(rate_in, &rate, group_msg, sizeof group_msg))
        problem = group_msg;
    else if (!problem && group && !rate && !cf_rate_groups_rate(r->srv->rate_groups, group)) {
        snprintf(group_msg, sizeof group_msg,
                 "rate group '%s' has no rate yet: give one with the key (\"rate\": \"50MB/s\")", group);
        problem = group_msg;
    }
    if (problem) {
        json_decref(in);
        return cf_respond_error(r, CF_S3_InvalidArgument, problem);
    }
    snprintf(k.policy, sizeof k.policy, "%s", policy);
    snprintf(k.bucket, sizeof k.bucket, "%s", bucket);
    snprintf(k.prefix, sizeof k.prefix, "%s", prefix);
    snprintf(k.rate_group, sizeof k.rate_group, "%s", group ? group : "");
    int drawn = 0;
    if (access)
        snprintf(k.access_key, sizeof k.access_key, "%s", access);
    else
        drawn = cf_clock_token(r->srv->clock, k.access_key, 20, CF_ACCESS_KEY_ALPHABET);
    json_decref(in);
    if (!drawn)
        drawn = cf_clock_token(r->srv->clock, k.secret_key, 40, CF_SECRET_KEY_ALPHABET);
    if (drawn)
        return cf_respond_error(r, CF_S3_InternalError, "no randomness for a new key");
    k.created_ns = cf_clock_time_ns(r->srv->clock);
    cf_err err;
    if (cf_store_key_add(r->srv->store, &k, &err) != 0)
        return cf_respond_failure(r, &err, CF_S3_ON_ADMIN_KEY, 1);
    /* After the key, so that a refused key changes no rate; a rate that cannot be stored takes
     * the key back, lest it belong to a group without a rate. */
    if (rate && cf_rate_groups_set(r->srv->rate_groups, r->srv->store, k.rate_group, rate, &err) != 0) {
        cf_err ignored;
        cf_store_key_delete(r->srv->store, k.access_key, &ignored);
        memset(&k, 0, sizeof k);
        return cf_respond_failure(r, &err, CF_S3_ON_ADMIN_KEY, 1);
    }
    cf_log(&r->srv->log, CF_LOG_INFO, "access key added", "access_key", k.access_key, "policy", k.policy,
           "bucket", k.bucket, "prefix", k.prefix, "rate_group", k.rate_group, NULL);
    json_t *out = key_json(r, &k);
    json_object_set_new(out, "secret_key", json_string(k.secret_key));
    memset(&k, 0, sizeof k); /* it holds the secret */
    return respond_json(r, 200, out);
}

typedef struct group_list {
    json_t *arr;
    const cf_store_key *keys;
    size_t nkeys;
} group_list;

static void group_json(void *ctx, const char *name, uint64_t rate)
{
    group_list *l = ctx;
    size_t members = 0;
    for (size_t i = 0; i < l->nkeys; i++)
        members += strcmp(l->keys[i].rate_group, name) == 0;
    json_array_append_new(l->arr, json_pack("{s:s, s:I, s:I}", "name", name, "rate", (json_int_t)rate, "keys",
                                            (json_int_t)members));
}

static int list_rate_groups(cf_request *r)
{
    cf_store_key *keys;
    size_t n;
    cf_err err;
    if (cf_store_key_list(r->srv->store, &keys, &n, &err) != 0)
        return store_failure(r, &err);
    group_list l = {json_array(), keys, n};
    cf_rate_groups_each(r->srv->rate_groups, group_json, &l);
    memset(keys, 0, n * sizeof *keys); /* they hold secrets */
    free(keys);
    return respond_json(r, 200, json_pack("{s:o}", "rate_groups", l.arr));
}

static int set_rate_group(cf_request *r, const char *name)
{
    char msg[256];
    uint64_t rate = 0;
    json_error_t jerr;
    json_t *in = json_loadb(r->small.data ? r->small.data : "", r->small.len, 0, &jerr);
    json_t *rate_in = json_object_get(in, "rate");
    int bad = bad_group_name(name, msg, sizeof msg);
    if (!bad && !rate_in) {
        snprintf(msg, sizeof msg, "the body must be JSON {\"rate\": \"250MB/s\"} (units " CF_RATE_UNITS ")");
        bad = 1;
    }
    if (!bad)
        bad = rate_of_json(rate_in, &rate, msg, sizeof msg);
    json_decref(in);
    if (bad)
        return cf_respond_error(r, CF_S3_InvalidArgument, msg);
    cf_err err;
    if (cf_rate_groups_set(r->srv->rate_groups, r->srv->store, name, rate, &err) != 0)
        return cf_respond_failure(r, &err, CF_S3_ON_ADMIN_KEY, 1);
    char text[CF_RATE_TEXT_MAX];
    cf_rate_format(rate, text);
    cf_log(&r->srv->log, CF_LOG_INFO, "rate group set", "rate_group", name, "rate", text, NULL);
    return respond_json(r, 200, json_pack("{s:s, s:I}", "name", name, "rate", (json_int_t)rate));
}

int cf_handle_admin(cf_request *r)
{
    /* r->key is what follows "/_admin/": "v1/keys" or "v1/keys/NAME". */
    const char *path = r->key;
    cf_err err;
    if (strcmp(path, "v1/keys") == 0 && strcmp(r->method, "GET") == 0) {
        cf_store_key *list;
        size_t n;
        if (cf_store_key_list(r->srv->store, &list, &n, &err) != 0)
            return store_failure(r, &err);
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, key_json(r, &list[i]));
        free(list);
        return respond_json(r, 200, json_pack("{s:o}", "keys", arr));
    }
    if (strcmp(path, "v1/keys") == 0 && strcmp(r->method, "POST") == 0)
        return add_key(r);
    if (strncmp(path, "v1/keys/", 8) == 0 && path[8] && strcmp(r->method, "DELETE") == 0) {
        if (cf_store_key_delete(r->srv->store, path + 8, &err) != 0)
            return cf_respond_failure(r, &err, CF_S3_ON_ADMIN_KEY, 1);
        cf_log(&r->srv->log, CF_LOG_INFO, "access key removed", "access_key", path + 8, NULL);
        return cf_respond_empty(r, 204);
    }
    if (strcmp(path, "v1/rate-groups") == 0 && strcmp(r->method, "GET") == 0)
        return list_rate_groups(r);
    if (strncmp(path, "v1/rate-groups/", 15) == 0 && strcmp(r->method, "PUT") == 0)
        return set_rate_group(r, path + 15);
    return cf_respond_error(r, CF_S3_MethodNotAllowed,
                            "admin API: GET|POST /_admin/v1/keys, DELETE /_admin/v1/keys/KEY, "
                            "GET /_admin/v1/rate-groups, PUT /_admin/v1/rate-groups/NAME");
}
