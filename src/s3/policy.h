/*
 * policy.h - the subset of S3 bucket policy JSON that coffer enforces: anonymous read.
 *
 * Accepted: {"Version": "2012-10-17" | "2008-10-17", "Statement": [ {"Sid"?, "Effect": "Allow",
 * "Principal": "*" | {"AWS": "*" | ["*"]}, "Action": "s3:GetObject" | "s3:ListBucket" | [...],
 * "Resource": ARN | [ARN...]} ... ]} where an object ARN is arn:aws:s3:::BUCKET/PATTERN and a
 * bucket ARN is arn:aws:s3:::BUCKET; PATTERN may end in '*'. Anything else (Deny, named
 * principals, conditions, other actions, other buckets) is refused with a message, so that a
 * policy is never stored meaning more, or less, than coffer enforces.
 */
#ifndef CF_S3_POLICY_H
#define CF_S3_POLICY_H

#include <stddef.h>

#include "core/err.h"

#define CF_POLICY_MAX_RULES 64

typedef enum cf_policy_action { CF_POLICY_GET_OBJECT, CF_POLICY_LIST_BUCKET } cf_policy_action;

typedef struct cf_policy_rule {
    cf_policy_action action;
    char pattern[1100];          /* key pattern for GetObject ("" with wildcard = all) */
    int wildcard;                /* pattern ends in '*' (stripped) */
} cf_policy_rule;

typedef struct cf_policy {
    cf_policy_rule rules[CF_POLICY_MAX_RULES];
    size_t n;
} cf_policy;

/* Parses and validates a policy for bucket. CF_EINVAL with a message naming what is not
 * supported or malformed. */
int cf_policy_parse(const char *json, size_t len, const char *bucket, cf_policy *out, cf_err *err);
/* Anonymous GetObject of key, or ListBucket (key ignored)? */
int cf_policy_allows(const cf_policy *p, cf_policy_action action, const char *key, size_t keylen);

#endif
