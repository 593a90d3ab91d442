/*
 * handlers_admin.c - bucket policies (Put/Get/DeleteBucketPolicy) and coffer's admin API.
 *
 * The admin API lives under /_admin/v1/ ('_' cannot begin a bucket name, so it never shadows
 * one), speaks JSON, and is signed with SigV4 like any S3 request; only root may call it.
 *   GET    /_admin/v1/keys                 -> {"keys": [{access_key, policy, bucket, prefix, created}]}
 *   POST   /_admin/v1/keys  {policy, bucket?, prefix?, access_key?}
 *                                          -> {access_key, secret_key, policy, bucket, prefix}
 *   DELETE /_admin/v1/keys/ACCESS_KEY      -> 204
 * The secret is generated here and returned once; no listing ever shows it.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "s3/policy.h"
#include "server/request.h"
#include "server/handlers_admin.h"
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

static json_t *key_json(const cf_store_key *k)
{
    char created[25];
    cf_s3_iso8601(k->created_ns, created);
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "access_key", k->access_key, "policy", k->policy, "bucket",
                     k->bucket, "prefix", k->prefix, "created", created);
}

static int add_key(cf_request *r)
{
    json_error_t jerr;
    json_t *in = json_loadb(r->small.data ? r->small.data : "", r->small.len, 0, &jerr);
    const char *policy = NULL, *bucket = "", *prefix = "", *access = NULL;
    if (!in || json_unpack_ex(in, &jerr, 0, "{s:s, s?s, s?s, s?s}", "policy", &policy, "bucket", &bucket,
                              "prefix", &prefix, "access_key", &access) != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "the body must be JSON {\"policy\": ..., \"bucket\"?, \"prefix\"?}: %s",
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
    if (problem) {
        json_decref(in);
        return cf_respond_error(r, CF_S3_InvalidArgument, problem);
    }
    snprintf(k.policy, sizeof k.policy, "%s", policy);
    snprintf(k.bucket, sizeof k.bucket, "%s", bucket);
    snprintf(k.prefix, sizeof k.prefix, "%s", prefix);
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
    cf_log(&r->srv->log, CF_LOG_INFO, "access key added", "access_key", k.access_key, "policy", k.policy,
           "bucket", k.bucket, "prefix", k.prefix, NULL);
    json_t *out = key_json(&k);
    json_object_set_new(out, "secret_key", json_string(k.secret_key));
    return respond_json(r, 200, out);
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
            json_array_append_new(arr, key_json(&list[i]));
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
    return cf_respond_error(r, CF_S3_MethodNotAllowed,
                            "admin API: GET|POST /_admin/v1/keys, DELETE /_admin/v1/keys/KEY");
}
