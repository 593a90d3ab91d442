/*
 * cors.h - a bucket's CORS configuration as S3 defines it (PutBucketCors), and the pure decision
 * of which rule, if any, lets a cross-origin request through.
 *
 * A configuration is a list of CORSRule: AllowedOrigin (one '*' wildcard each), AllowedMethod
 * (GET PUT POST DELETE HEAD), AllowedHeader (one '*' wildcard each, case-insensitive),
 * ExposeHeader, MaxAgeSeconds and an ID. The first rule that matches wins, as in S3. No I/O.
 */
#ifndef CF_S3_CORS_H
#define CF_S3_CORS_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

#define CF_CORS_MAX_RULES 100
#define CF_CORS_MAX_BYTES (64 << 10) /* AWS's limit for the configuration document */

enum {
    CF_CORS_GET = 1,
    CF_CORS_PUT = 2,
    CF_CORS_POST = 4,
    CF_CORS_DELETE = 8,
    CF_CORS_HEAD = 16,
};

typedef struct cf_cors_list {
    char **items; /* owned */
    size_t n;
} cf_cors_list;

typedef struct cf_cors_rule {
    char *id;         /* owned; NULL when the rule has none */
    unsigned methods; /* CF_CORS_* bits */
    cf_cors_list origins;
    cf_cors_list headers; /* AllowedHeader */
    cf_cors_list expose;  /* ExposeHeader */
    long max_age;         /* -1 when not set */
} cf_cors_rule;

typedef struct cf_cors_config {
    cf_cors_rule *rules; /* owned */
    size_t n;
} cf_cors_config;

/*
 * Parses a CORSConfiguration document. CF_EINVAL: not well-formed or not the schema (S3:
 * MalformedXML); CF_ENOTSUP: an AllowedMethod S3 does not know, or an origin or header with more
 * than one '*' (S3: InvalidRequest); CF_ETOOBIG: over CF_CORS_MAX_BYTES or CF_CORS_MAX_RULES.
 * err's message says which. On success the caller frees out with cf_cors_config_cleanup.
 */
int cf_cors_parse(const char *xml, size_t len, cf_cors_config *out, cf_err *err);
void cf_cors_config_cleanup(cf_cors_config *c);

/* Appends the configuration as GetBucketCors returns it. */
int cf_cors_to_xml(const cf_cors_config *c, cf_buf *out);

/* The CF_CORS_* bit of an HTTP method, or 0 for one CORS rules cannot name. */
unsigned cf_cors_method_bit(const char *method);

/* s matches pattern, which may hold one '*' standing for any run of characters. */
int cf_cors_wildcard_match(const char *pattern, const char *s, int ignore_case);

/*
 * The first rule allowing origin to use method, with every header of request_headers (the
 * comma-separated Access-Control-Request-Headers of a preflight; NULL or "" for none) among its
 * AllowedHeader. NULL when none does. The rule is borrowed from c.
 */
const cf_cors_rule *cf_cors_match(const cf_cors_config *c, const char *origin, const char *method,
                                  const char *request_headers);

/* The rule allows every origin ("*"): S3 then answers Access-Control-Allow-Origin: *. */
int cf_cors_rule_any_origin(const cf_cors_rule *rule, const char *origin);

/* Joins a list with ", " (ExposeHeader and AllowedMethod as response headers). */
int cf_cors_join(const cf_cors_list *l, cf_buf *out);
int cf_cors_methods_join(unsigned methods, cf_buf *out);

#endif
