/*
 * policy.h - S3 bucket policies: the JSON that PutBucketPolicy stores, validated against what
 * coffer can enforce, and the decision it gives for one request.
 *
 * The language is AWS's access policy language (Version "2012-10-17" or "2008-10-17"):
 * statements with Sid, Effect Allow|Deny, Principal|NotPrincipal ("*", {"AWS": "*"} or
 * {"AWS": [access key ids, or arn:aws:iam::ACCOUNT:user/ACCESS_KEY_ID]}), Action|NotAction
 * (s3:NAME with '*' and '?', case-insensitive), Resource|NotResource (arn:aws:s3:::BUCKET and
 * arn:aws:s3:::BUCKET/KEY, '*' and '?' anywhere, or "*") and Condition (the operators and keys
 * listed in policy.c). Whatever coffer cannot enforce exactly is refused at parse time with a
 * message naming it, so a stored policy never means more, or less, than what is enforced.
 *
 * Decision (AWS's order): an applicable Deny wins; otherwise an applicable Allow allows;
 * otherwise the policy has no say (CF_POLICY_NO_MATCH), and the caller falls back to its own
 * authorisation (src/server/access.c says how the two combine).
 */
#ifndef CF_S3_POLICY_H
#define CF_S3_POLICY_H

#include <stddef.h>

#include "core/err.h"

#define CF_POLICY_MAX_BYTES (20 << 10) /* AWS's limit for a bucket policy */
#define CF_POLICY_MAX_STATEMENTS 256   /* more than fit in 20 KB of sensible statements */
#define CF_POLICY_MAX_DEPTH 8          /* the grammar nests 6 deep; anything deeper is malformed */

/* The IAM actions coffer's S3 operations need (src/server/access.c maps operations to them). */
typedef enum cf_policy_action {
    /* on an object: arn:aws:s3:::BUCKET/KEY */
    CF_POLICY_GET_OBJECT,
    CF_POLICY_PUT_OBJECT,
    CF_POLICY_DELETE_OBJECT,
    CF_POLICY_GET_OBJECT_TAGGING,
    CF_POLICY_PUT_OBJECT_TAGGING,
    CF_POLICY_DELETE_OBJECT_TAGGING,
    CF_POLICY_ABORT_MULTIPART_UPLOAD,
    CF_POLICY_LIST_MULTIPART_UPLOAD_PARTS,
    /* the same on a version the request names (versionId, even "null"), as AWS requires */
    CF_POLICY_GET_OBJECT_VERSION,
    CF_POLICY_DELETE_OBJECT_VERSION,
    CF_POLICY_GET_OBJECT_VERSION_TAGGING,
    CF_POLICY_PUT_OBJECT_VERSION_TAGGING,
    CF_POLICY_DELETE_OBJECT_VERSION_TAGGING,
    /* on the bucket: arn:aws:s3:::BUCKET */
    CF_POLICY_LIST_BUCKET,
    CF_POLICY_LIST_BUCKET_VERSIONS,
    CF_POLICY_LIST_BUCKET_MULTIPART_UPLOADS,
    CF_POLICY_GET_BUCKET_LOCATION,
    CF_POLICY_GET_BUCKET_VERSIONING,
    CF_POLICY_ACTION_COUNT_
} cf_policy_action;

/* "s3:GetObject" */
const char *cf_policy_action_name(cf_policy_action a);

/* The condition keys a request can carry; a NULL value is a key absent from the request. */
typedef enum cf_policy_key {
    CF_POLICY_KEY_SOURCE_IP,           /* aws:SourceIp: "192.0.2.7", "2001:db8::1" */
    CF_POLICY_KEY_CURRENT_TIME,        /* aws:CurrentTime: "2026-12-05T21:49:43Z" */
    CF_POLICY_KEY_EPOCH_TIME,          /* aws:EpochTime: "1796507383" */
    CF_POLICY_KEY_USER_AGENT,          /* aws:UserAgent */
    CF_POLICY_KEY_REFERER,             /* aws:Referer */
    CF_POLICY_KEY_PREFIX,              /* s3:prefix (listings, decoded) */
    CF_POLICY_KEY_DELIMITER,           /* s3:delimiter (listings, decoded) */
    CF_POLICY_KEY_MAX_KEYS,            /* s3:max-keys (listings) */
    CF_POLICY_KEY_ACL,                 /* s3:x-amz-acl */
    CF_POLICY_KEY_SIGNATURE_VERSION,   /* s3:signatureversion: "AWS4-HMAC-SHA256" when signed */
    CF_POLICY_KEY_MFA_PRESENT,         /* aws:MultiFactorAuthPresent: absent, as for AWS access keys */
    CF_POLICY_KEY_EXISTING_OBJECT_TAG, /* s3:ExistingObjectTag/TAG: through object_tag, not values[] */
    CF_POLICY_KEY_COUNT_
} cf_policy_key;

typedef struct cf_policy_request {
    cf_policy_action action;
    const char *principal; /* access key id; NULL for an anonymous request */
    const char *key;       /* object actions: the object key (keylen bytes); else unused */
    size_t keylen;
    const char *values[CF_POLICY_KEY_COUNT_]; /* borrowed for the call; NULL = absent */
    /* s3:ExistingObjectTag/TAG: the value of the object's tag TAG, NULL when it has none.
     * A NULL function leaves the key absent (AWS sets it only for actions on an existing
     * object: GetObject and the object tagging actions). The value is borrowed until the next
     * call or the end of the evaluation. */
    const char *(*object_tag)(void *ctx, const char *tag);
    void *object_tag_ctx;
} cf_policy_request;

typedef enum cf_policy_effect {
    CF_POLICY_NO_MATCH = 0, /* no statement applies */
    CF_POLICY_ALLOWED,
    CF_POLICY_DENIED,
} cf_policy_effect;

typedef struct cf_policy cf_policy;

/* Whether a name in a Principal is one coffer knows, for PutBucketPolicy to refuse typos. */
typedef enum cf_policy_principal_kind {
    CF_POLICY_PRINCIPAL_UNKNOWN = 0,
    CF_POLICY_PRINCIPAL_KEY,  /* a stored access key */
    CF_POLICY_PRINCIPAL_ROOT, /* the root user, whom bucket policies never bind */
} cf_policy_principal_kind;
/* Returns a kind, or a negative CF_E code (with err filled) when the lookup itself failed. */
typedef int (*cf_policy_principal_fn)(void *ctx, const char *access_key, cf_err *err);

/*
 * Parses and validates len bytes of json as the policy of bucket. principal_fn (may be NULL:
 * names are then taken on trust, as when a stored policy is read back) checks each access key
 * named in a Principal. On success *out is the policy (caller frees with cf_policy_free).
 * CF_EINVAL with a message naming the malformed or unsupported element; CF_ENOMEM; or the
 * principal_fn's error.
 */
int cf_policy_parse(const char *json, size_t len, const char *bucket, cf_policy_principal_fn principal_fn,
                    void *ctx, cf_policy **out, cf_err *err);
void cf_policy_free(cf_policy *p);

/* The policy's decision for one request. */
cf_policy_effect cf_policy_evaluate(const cf_policy *p, const cf_policy_request *req);

/* Some Allow statement could grant action to principal (NULL: anonymous) on some resource
 * under some conditions: whether a request that names many objects (DeleteObjects) is worth
 * reading, and whether a policy makes the bucket writable by anyone. */
int cf_policy_may_allow(const cf_policy *p, cf_policy_action action, const char *principal);

/* Some condition reads s3:ExistingObjectTag/...: the object's tags are worth loading. */
int cf_policy_uses_object_tags(const cf_policy *p);

/* Glob matching as policies use it: '*' any run of characters, '?' one UTF-8 character. */
int cf_policy_glob(const char *pattern, size_t plen, const char *s, size_t slen, int ignore_case);

#endif
