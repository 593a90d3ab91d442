/* cors_rules.h - a bucket's CORS rules, cached, and the headers they grant (cors_rules.c). */
#ifndef CF_SERVER_CORS_RULES_H
#define CF_SERVER_CORS_RULES_H

#include "server/request.h"

struct cf_cors_config;
struct cf_cors_rule;
/* The setting name a bucket's CORS document is stored under ("cors/<bucket>"). */
void cf_cors_setting_name(const char *bucket, char *out, size_t n);
/* The bucket's rules, shared with other requests and held (a mutex) until
 * cf_cors_config_release; NULL with *rc CF_ENOTFOUND when it has none, or another CF_E code. */
const struct cf_cors_config *cf_cors_config_hold(cf_request *r, int *rc);
void cf_cors_config_release(cf_request *r);
/* The headers a matching rule grants, for a preflight (request_headers set) or the request itself. */
void cf_cors_add_rule_headers(cf_http_response *resp, const struct cf_cors_rule *rule, const char *origin,
                              const char *request_headers);
/* Adds the CORS headers a rule of the bucket grants the request's Origin, if any (cf_respond). */
void cf_cors_response_headers(cf_request *r, cf_http_response *resp);
/* At server stop, when no request runs any more. */
void cf_cors_cache_free(struct cf_cors_cache *cc);

#endif
