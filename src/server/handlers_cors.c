/*
 * handlers_cors.c - Put/Get/DeleteBucketCors and the preflight OPTIONS request. The rules
 * themselves, as stored and as every response with an Origin applies them, are cors_rules.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "s3/cors.h"
#include "server/request.h"
#include "server/cors_rules.h"
#include "server/handlers_cors.h"
#include "server/response.h"

#define NOT_ENABLED "CORSResponse: CORS is not enabled for this bucket."
/* AWS's wording, its spelling included: clients and people search for it. */
#define NOT_ALLOWED                                                                                          \
    "CORSResponse: This CORS request is not allowed. This is usually because the evalution of "              \
    "Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers "              \
    "are not whitelisted by the resource's CORS spec."

static int store_failure(cf_request *r, const cf_err *err)
{
    return cf_respond_failure(r, err, CF_S3_ON_BUCKET, 0);
}

/* PutBucketCors carries Content-MD5 (AWS requires it); when present it must hold. */
static cf_s3_error check_content_md5(cf_request *r)
{
    const char *want = cf_request_header(r, "Content-MD5");
    if (!want)
        return CF_S3_OK;
    unsigned char d[32], md5[CF_MD5_LEN];
    if (cf_base64_decode(want, strlen(want), d, sizeof d) != CF_MD5_LEN)
        return CF_S3_InvalidDigest;
    cf_md5(r->small.data ? r->small.data : "", r->small.len, md5);
    return memcmp(d, md5, CF_MD5_LEN) == 0 ? CF_S3_OK : CF_S3_BadDigest;
}

static int put_cors(cf_request *r, const char *name)
{
    cf_s3_error e = check_content_md5(r);
    if (e)
        return cf_respond_error(r, e, NULL);
    cf_cors_config cfg;
    cf_err err;
    int rc = cf_cors_parse(r->small.data ? r->small.data : "", r->small.len, &cfg, &err);
    if (rc)
        return cf_respond_failure(r, &err, CF_S3_ON_CORS_DOC, 1);
    cf_cors_config_cleanup(&cfg);
    if (cf_store_meta_put(r->srv->store, name, r->small.data, r->small.len, &err) != 0)
        return store_failure(r, &err);
    return cf_respond_empty(r, 200);
}

int cf_handle_bucket_cors(cf_request *r)
{
    cf_err err;
    if (cf_store_bucket_exists(r->srv->store, r->bucket, &err) != 0)
        return store_failure(r, &err);
    char name[80];
    cf_cors_setting_name(r->bucket, name, sizeof name);
    if (r->op == CF_S3_OP_PUT_BUCKET_CORS)
        return put_cors(r, name);
    if (r->op == CF_S3_OP_DELETE_BUCKET_CORS) {
        if (cf_store_meta_put(r->srv->store, name, NULL, 0, &err) != 0)
            return store_failure(r, &err);
        return cf_respond_empty(r, 204);
    }
    int rc;
    const cf_cors_config *cfg = cf_cors_config_hold(r, &rc);
    if (rc)
        return cf_respond_error(r, cf_s3_error_for(rc, CF_S3_ON_CORS), NULL);
    cf_buf b;
    cf_buf_init(&b, 2 * CF_CORS_MAX_BYTES);
    rc = cf_cors_to_xml(cfg, &b);
    cf_cors_config_release(r);
    if (rc) {
        cf_buf_cleanup(&b);
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    return cf_respond_xml(r, 200, &b);
}

/* A preflight is unauthenticated, and matching costs its header names times the rules' header
 * patterns: 20,000 names against 100 rules of 13 patterns took 261 ms of CPU. A browser lists
 * the headers a page sets, a handful. */
#define MAX_REQUEST_HEADERS 200

static size_t list_length(const char *list)
{
    size_t n = 1;
    for (const char *c = list; *c; c++)
        n += *c == ',';
    return n;
}

int cf_handle_cors_preflight(cf_request *r)
{
    const char *origin = cf_request_header(r, "Origin");
    const char *method = cf_request_header(r, "Access-Control-Request-Method");
    const char *headers = cf_request_header(r, "Access-Control-Request-Headers");
    if (!origin)
        return cf_respond_error(r, CF_S3_BadRequest,
                                "Insufficient information. Origin request header needed.");
    if (!method || !cf_cors_method_bit(method)) {
        char msg[128];
        snprintf(msg, sizeof msg, "Invalid Access-Control-Request-Method: %.64s", method ? method : "null");
        return cf_respond_error(r, CF_S3_BadRequest, msg);
    }
    if (headers && list_length(headers) > MAX_REQUEST_HEADERS) {
        char msg[128];
        snprintf(msg, sizeof msg, "Access-Control-Request-Headers names more than %d headers",
                 MAX_REQUEST_HEADERS);
        return cf_respond_error(r, CF_S3_BadRequest, msg);
    }
    cf_err err;
    int rc = cf_store_bucket_exists(r->srv->store, r->bucket, &err);
    /* Anyone may send a preflight: a missing bucket answers as one without CORS, as an
     * anonymous request to either is AccessDenied, lest preflights list the bucket names. */
    if (rc && rc != CF_ENOTFOUND)
        return store_failure(r, &err);
    const cf_cors_config *cfg = cf_cors_config_hold(r, &rc);
    cf_s3_error e = cf_s3_error_for(rc, CF_S3_ON_CORS_PREFLIGHT);
    if (e)
        return cf_respond_error(r, e, e == CF_S3_AccessForbidden ? NOT_ENABLED : NULL);
    const cf_cors_rule *rule = cf_cors_match(cfg, origin, method, headers);
    if (!rule) {
        cf_cors_config_release(r);
        return cf_respond_error(r, CF_S3_AccessForbidden, NOT_ALLOWED);
    }
    cf_http_response *resp = cf_http_body_empty();
    if (resp)
        cf_cors_add_rule_headers(resp, rule, origin, headers);
    cf_cors_config_release(r);
    return cf_respond(r, 200, resp);
}
