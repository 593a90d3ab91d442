/*
 * handlers_cors.c - Put/Get/DeleteBucketCors, the preflight OPTIONS request, and the CORS
 * headers of every other response.
 *
 * The configuration is kept as the document the client sent, under the setting "cors/<bucket>"
 * (dropped with the bucket), and parsed again where it is used: a request that carries an
 * Origin is the browser's, and costs one small read and parse more.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "s3/cors.h"
#include "server/request.h"

#define NOT_ENABLED "CORSResponse: CORS is not enabled for this bucket."
/* AWS's wording, its spelling included: clients and people search for it. */
#define NOT_ALLOWED                                                                                          \
    "CORSResponse: This CORS request is not allowed. This is usually because the evalution of "              \
    "Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers "              \
    "are not whitelisted by the resource's CORS spec."
#define VARY "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"

static void setting_name(const char *bucket, char *out, size_t n)
{
    snprintf(out, n, "cors/%s", bucket);
}

/* Parsed configurations shared by all requests. Any request that carries an Origin, refused
 * ones included, needs the bucket's rules: parsing a 64 KB document of 100 rules per request
 * made such a request cost nearly 4 times the CPU of the same one without Origin. The stored
 * bytes stay the truth: each request reads them (about a microsecond) and parses them only when
 * they differ from the slot's. A slot is used under the mutex, which matching holds only for
 * the few microseconds it takes. */
#define CORS_CACHE_SLOTS 16

typedef struct cors_slot {
    char bucket[64];
    char *xml; /* NULL: the slot is free */
    size_t len;
    cf_cors_config cfg;
} cors_slot;

struct cf_cors_cache {
    pthread_mutex_t mu;
    cors_slot slots[CORS_CACHE_SLOTS];
    size_t next; /* the slot the next new bucket takes */
};

void cf_cors_cache_free(struct cf_cors_cache *cc)
{
    if (!cc)
        return;
    for (size_t i = 0; i < CORS_CACHE_SLOTS; i++) {
        free(cc->slots[i].xml);
        if (cc->slots[i].xml)
            cf_cors_config_cleanup(&cc->slots[i].cfg);
    }
    pthread_mutex_destroy(&cc->mu);
    free(cc);
}

static struct cf_cors_cache *cors_cache(cf_server *srv)
{
    _Atomic(struct cf_cors_cache *) *at = (_Atomic(struct cf_cors_cache *) *)&srv->cors_cache;
    struct cf_cors_cache *made, *seen = atomic_load(at);
    if (seen || !(made = calloc(1, sizeof *made)))
        return seen;
    pthread_mutex_init(&made->mu, NULL);
    if (atomic_compare_exchange_strong(at, &seen, made))
        return made;
    cf_cors_cache_free(made); /* another request made it first */
    return seen;
}

/* The slot holding bucket's configuration parsed from xml (len bytes, taken), with the cache's
 * mutex held until release_config; NULL with err when it cannot be parsed or kept. */
static const cf_cors_config *share_config(cf_request *r, char *xml, size_t len, cf_err *err)
{
    struct cf_cors_cache *cc = cors_cache(r->srv);
    if (!cc) {
        free(xml);
        cf_err_set(err, CF_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&cc->mu);
    size_t i = 0;
    while (i < CORS_CACHE_SLOTS && !(cc->slots[i].xml && strcmp(cc->slots[i].bucket, r->bucket) == 0))
        i++;
    if (i < CORS_CACHE_SLOTS && cc->slots[i].len == len && memcmp(cc->slots[i].xml, xml, len) == 0) {
        free(xml);
        return &cc->slots[i].cfg;
    }
    pthread_mutex_unlock(&cc->mu);
    cf_cors_config cfg;
    if (cf_cors_parse(xml, len, &cfg, err) != 0) {
        free(xml);
        return NULL;
    }
    pthread_mutex_lock(&cc->mu);
    i = 0;
    while (i < CORS_CACHE_SLOTS && !(cc->slots[i].xml && strcmp(cc->slots[i].bucket, r->bucket) == 0))
        i++;
    if (i == CORS_CACHE_SLOTS)
        i = cc->next++ % CORS_CACHE_SLOTS;
    cors_slot *s = &cc->slots[i];
    if (s->xml)
        cf_cors_config_cleanup(&s->cfg);
    free(s->xml);
    snprintf(s->bucket, sizeof s->bucket, "%s", r->bucket);
    s->xml = xml;
    s->len = len;
    s->cfg = cfg;
    return &s->cfg;
}

/* The bucket's configuration, held until release_config: NULL with *rc CF_ENOTFOUND when it has
 * none, or another CF_E code. */
static const cf_cors_config *load_config(cf_request *r, int *rc)
{
    char name[80], *xml = NULL;
    size_t len = 0;
    cf_err err;
    const cf_cors_config *cfg = NULL;
    setting_name(r->bucket, name, sizeof name);
    *rc = strlen(r->bucket) < sizeof((cors_slot *)0)->bucket
              ? cf_store_meta_get(r->srv->store, name, &xml, &len, &err)
              : CF_ENOTFOUND;
    if (*rc == 0 && !(cfg = share_config(r, xml, len, &err))) {
        *rc = err.code ? err.code : CF_EINVAL;
        cf_log(CF_LOG_ERROR, "stored CORS configuration unreadable", "bucket", r->bucket, "error", err.msg,
               NULL);
    } else if (*rc && *rc != CF_ENOTFOUND) {
        cf_log(CF_LOG_ERROR, "store error", "id", r->request_id, "error", err.msg, NULL);
    }
    return cfg;
}

static void release_config(cf_request *r)
{
    pthread_mutex_unlock(&r->srv->cors_cache->mu);
}

static int store_failure(cf_request *r, const cf_err *err)
{
    if (err->code == CF_ENOTFOUND)
        return cf_respond_error(r, CF_S3_NoSuchBucket, NULL);
    cf_log(CF_LOG_ERROR, "store error", "id", r->request_id, "error", err->msg, NULL);
    return cf_respond_error(r, CF_S3_InternalError, NULL);
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
    if (rc == CF_ENOMEM)
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    if (rc)
        return cf_respond_error(r, rc == CF_EINVAL ? CF_S3_MalformedXML : CF_S3_InvalidRequest, err.msg);
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
    setting_name(r->bucket, name, sizeof name);
    if (r->op == CF_S3_OP_PUT_BUCKET_CORS)
        return put_cors(r, name);
    if (r->op == CF_S3_OP_DELETE_BUCKET_CORS) {
        if (cf_store_meta_put(r->srv->store, name, NULL, 0, &err) != 0)
            return store_failure(r, &err);
        return cf_respond_empty(r, 204);
    }
    int rc;
    const cf_cors_config *cfg = load_config(r, &rc);
    if (rc == CF_ENOTFOUND)
        return cf_respond_error(r, CF_S3_NoSuchCORSConfiguration, NULL);
    if (rc)
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    cf_buf b;
    cf_buf_init(&b, 2 * CF_CORS_MAX_BYTES);
    rc = cf_cors_to_xml(cfg, &b);
    release_config(r);
    if (rc) {
        cf_buf_cleanup(&b);
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    return cf_respond_xml(r, 200, &b);
}

/* The headers a matching rule grants, for a preflight (request_headers set) or the request itself. */
static void add_rule_headers(struct MHD_Response *resp, const cf_cors_rule *rule, const char *origin,
                             const char *request_headers)
{
    int any = cf_cors_rule_any_origin(rule, origin);
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", any ? "*" : origin);
    cf_buf b;
    cf_buf_init(&b, CF_CORS_MAX_BYTES);
    if (cf_cors_methods_join(rule->methods, &b) == 0 && b.data)
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", b.data);
    cf_buf_reset(&b);
    if (rule->expose.n && cf_cors_join(&rule->expose, &b) == 0 && b.data)
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", b.data);
    cf_buf_cleanup(&b);
    if (request_headers && *request_headers)
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", request_headers);
    if (rule->max_age >= 0) {
        char age[24];
        snprintf(age, sizeof age, "%ld", rule->max_age);
        MHD_add_response_header(resp, "Access-Control-Max-Age", age);
    }
    if (!any)
        MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
    MHD_add_response_header(resp, "Vary", VARY);
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
    const cf_cors_config *cfg = load_config(r, &rc);
    if (rc == CF_ENOTFOUND)
        return cf_respond_error(r, CF_S3_AccessForbidden, NOT_ENABLED);
    if (rc)
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    const cf_cors_rule *rule = cf_cors_match(cfg, origin, method, headers);
    if (!rule) {
        release_config(r);
        return cf_respond_error(r, CF_S3_AccessForbidden, NOT_ALLOWED);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (resp)
        add_rule_headers(resp, rule, origin, headers);
    release_config(r);
    return cf_respond(r, 200, resp);
}

void cf_cors_response_headers(cf_request *r, struct MHD_Response *resp)
{
    const char *origin = cf_request_header(r, "Origin");
    if (!origin || !r->bucket || !*r->bucket || r->op == CF_S3_OP_CORS_PREFLIGHT || r->op == CF_S3_OP_ADMIN)
        return;
    int rc;
    const cf_cors_config *cfg = load_config(r, &rc);
    if (!cfg)
        return;
    const cf_cors_rule *rule = cf_cors_match(cfg, origin, r->method, NULL);
    if (rule)
        add_rule_headers(resp, rule, origin, NULL);
    else /* the answer differs by Origin even when this one gets none: caches must key on it */
        MHD_add_response_header(resp, "Vary", VARY);
    release_config(r);
}
