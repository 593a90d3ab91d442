/*
 * post_policy.h - the policy document of a browser form upload (POST Object, SigV4), and the
 * pure check of a form's fields against it.
 *
 * The document is JSON: {"expiration": "2026-12-31T12:00:00.000Z", "conditions": [...]}, each
 * condition one of
 *   {"field": "value"}                          exact match
 *   ["eq", "$field", "value"]                   exact match
 *   ["starts-with", "$field", "prefix"]         ("" allows any value)
 *   ["content-length-range", min, max]          bytes of the file, inclusive
 * Field names compare without case. Every condition must hold, and every form field but
 * x-amz-signature, file, policy and x-ignore-* must be named by a condition.
 */
#ifndef CF_S3_POST_POLICY_H
#define CF_S3_POST_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define CF_POST_POLICY_MAX_CONDITIONS 64

typedef enum cf_post_cond_kind {
    CF_POST_EQ,
    CF_POST_STARTS_WITH,
    CF_POST_LENGTH_RANGE,
} cf_post_cond_kind;

typedef struct cf_post_condition {
    cf_post_cond_kind kind;
    char *field; /* owned, without '$'; NULL for content-length-range */
    char *value; /* owned; NULL for content-length-range */
    uint64_t min, max;
    char *text; /* owned: the condition as JSON, for the error message */
} cf_post_condition;

typedef struct cf_post_policy {
    int64_t expiration;       /* seconds since the epoch */
    cf_post_condition *conds; /* owned */
    size_t n;
    int has_range;
    uint64_t min_size, max_size;
} cf_post_policy;

typedef struct cf_post_field {
    const char *name;
    const char *value;
} cf_post_field;

/* Parses the decoded document. CF_EINVAL with the reason when it is not one. On success the
 * caller frees out with cf_post_policy_cleanup. */
int cf_post_policy_parse(const char *json, size_t len, cf_post_policy *out, cf_err *err);
void cf_post_policy_cleanup(cf_post_policy *p);

/*
 * The form's fields (bucket: the bucket the form is posted to, which a "bucket" condition
 * names even when no field carries it) against the policy at time now. 0 when they pass;
 * CF_EPRECOND when the policy has expired; CF_EDENIED when a condition fails or a field is
 * not covered, with AWS's message ("Invalid according to Policy: …") in err.
 */
int cf_post_policy_check(const cf_post_policy *p, const char *bucket, const cf_post_field *fields, size_t n,
                         int64_t now, cf_err *err);

/* A file of size bytes against content-length-range: 0 within (or no range), -1 below, 1 above. */
int cf_post_policy_size(const cf_post_policy *p, uint64_t size);

/* A field the policy never has to name (x-amz-signature, file, policy, x-ignore-*). */
int cf_post_field_exempt(const char *name);

#endif
