/*
 * cors_rules.c - a bucket's CORS rules as stored (the setting "cors/<bucket>", the document the
 * client sent, dropped with the bucket), shared parsed between requests, and the headers a
 * matching rule adds to a response: to every response whose request carries an Origin
 * (cf_respond), and to a preflight's (handlers_cors.c).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "s3/cors.h"
#include "server/request.h"
#include "server/cors_rules.h"
#include "server/response.h"

#define VARY "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"

void cf_cors_setting_name(const char *bucket, char *out, size_t n)
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
const cf_cors_config *cf_cors_config_hold(cf_request *r, int *rc)
{
    char name[80], *xml = NULL;
    size_t len = 0;
    cf_err err;
    const cf_cors_config *cfg = NULL;
    cf_cors_setting_name(r->bucket, name, sizeof name);
    *rc = strlen(r->bucket) < sizeof((cors_slot *)0)->bucket
              ? cf_store_meta_get(r->srv->store, name, &xml, &len, &err)
              : CF_ENOTFOUND;
    if (*rc == 0 && !(cfg = share_config(r, xml, len, &err))) {
        *rc = err.code ? err.code : CF_EINVAL;
        cf_log(&r->srv->log, CF_LOG_ERROR, "stored CORS configuration unreadable", "bucket", r->bucket,
               "error", err.msg, NULL);
    } else if (*rc && *rc != CF_ENOTFOUND) {
        cf_log(&r->srv->log, CF_LOG_ERROR, "store error", "id", r->request_id, "error", err.msg, NULL);
    }
    return cfg;
}

void cf_cors_config_release(cf_request *r)
{
    pthread_mutex_unlock(&r->srv->cors_cache->mu);
}

/* The headers a matching rule grants, for a preflight (request_headers set) or the request itself. */
void cf_cors_add_rule_headers(cf_http_response *resp, const cf_cors_rule *rule, const char *origin,
                              const char *request_headers)
{
    int any = cf_cors_rule_any_origin(rule, origin);
    cf_http_add_header(resp, "Access-Control-Allow-Origin", any ? "*" : origin);
    cf_buf b;
    cf_buf_init(&b, CF_CORS_MAX_BYTES);
    if (cf_cors_methods_join(rule->methods, &b) == 0 && b.data)
        cf_http_add_header(resp, "Access-Control-Allow-Methods", b.data);
    cf_buf_reset(&b);
    if (rule->expose.n && cf_cors_join(&rule->expose, &b) == 0 && b.data)
        cf_http_add_header(resp, "Access-Control-Expose-Headers", b.data);
    cf_buf_cleanup(&b);
    if (request_headers && *request_headers)
        cf_http_add_header(resp, "Access-Control-Allow-Headers", request_headers);
    if (rule->max_age >= 0) {
        char age[24];
        snprintf(age, sizeof age, "%ld", rule->max_age);
        cf_http_add_header(resp, "Access-Control-Max-Age", age);
    }
    if (!any)
        cf_http_add_header(resp, "Access-Control-Allow-Credentials", "true");
    cf_http_add_header(resp, "Vary", VARY);
}

void cf_cors_response_headers(cf_request *r, cf_http_response *resp)
{
    const char *origin = cf_request_header(r, "Origin");
    if (!origin || !r->bucket || !*r->bucket || r->op == CF_S3_OP_CORS_PREFLIGHT || r->op == CF_S3_OP_ADMIN)
        return;
    int rc;
    const cf_cors_config *cfg = cf_cors_config_hold(r, &rc);
    if (!cfg)
        return;
    const cf_cors_rule *rule = cf_cors_match(cfg, origin, r->method, NULL);
    if (rule)
        cf_cors_add_rule_headers(resp, rule, origin, NULL);
    else /* the answer differs by Origin even when this one gets none: caches must key on it */
        cf_http_add_header(resp, "Vary", VARY);
    cf_cors_config_release(r);
}
