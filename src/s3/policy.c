/*
 * policy.c - bucket policies: validation at PutBucketPolicy, evaluation per request.
 *
 * The parsed policy keeps the jansson tree alive and points into it; every list a statement
 * holds is allocated once, at parse time, so evaluation allocates nothing but the resource
 * string it matches.
 *
 * Condition operators: String(Not)Equals, String(Not)EqualsIgnoreCase, String(Not)Like,
 * Numeric(Not)Equals, NumericLessThan(Equals), NumericGreaterThan(Equals), the same six for
 * Date, Bool, IpAddress, NotIpAddress, Null, and the IfExists form of each but Null. Refused:
 * Arn* and Binary* (coffer has no such keys) and the ForAllValues:/ForAnyValue: set operators
 * (coffer has no multivalued keys). Condition keys: see `keys` below.
 */
#include "s3/policy.h"
#include "s3/request.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ARN_PREFIX "arn:aws:s3:::"
#define IAM_PREFIX "arn:aws:iam::"

/* ---- actions ---- */

/* Every action of Amazon S3's service authorization reference, so that a policy written for
 * AWS validates here, and a misspelt action is refused rather than silently matching nothing. */
/* clang-format off */
static const char *const s3_actions[] = {
    "AbortMultipartUpload", "AssociateAccessGrantsIdentityCenter", "BypassGovernanceRetention",
    "CreateAccessGrant", "CreateAccessGrantsInstance", "CreateAccessGrantsLocation", "CreateAccessPoint",
    "CreateAccessPointForObjectLambda", "CreateBucket", "CreateBucketMetadataTableConfiguration", "CreateJob",
    "CreateMultiRegionAccessPoint", "CreateStorageLensGroup", "DeleteAccessGrant",
    "DeleteAccessGrantsInstance", "DeleteAccessGrantsInstanceResourcePolicy", "DeleteAccessGrantsLocation",
    "DeleteAccessPoint", "DeleteAccessPointForObjectLambda", "DeleteAccessPointPolicy",
    "DeleteAccessPointPolicyForObjectLambda", "DeleteBucket", "DeleteBucketMetadataTableConfiguration",
    "DeleteBucketOwnershipControls", "DeleteBucketPolicy", "DeleteBucketWebsite", "DeleteJobTagging",
    "DeleteMultiRegionAccessPoint", "DeleteObject", "DeleteObjectTagging", "DeleteObjectVersion",
    "DeleteObjectVersionTagging", "DeleteStorageLensConfiguration", "DeleteStorageLensConfigurationTagging",
    "DeleteStorageLensGroup", "DescribeJob", "DescribeMultiRegionAccessPointOperation",
    "DissociateAccessGrantsIdentityCenter", "GetAccelerateConfiguration", "GetAccessGrant",
    "GetAccessGrantsInstance", "GetAccessGrantsInstanceForPrefix", "GetAccessGrantsInstanceResourcePolicy",
    "GetAccessGrantsLocation", "GetAccessPoint", "GetAccessPointConfigurationForObjectLambda",
    "GetAccessPointForObjectLambda", "GetAccessPointPolicy", "GetAccessPointPolicyForObjectLambda",
    "GetAccessPointPolicyStatus", "GetAccessPointPolicyStatusForObjectLambda", "GetAccountPublicAccessBlock",
    "GetAnalyticsConfiguration", "GetBucketAcl", "GetBucketCORS", "GetBucketLocation", "GetBucketLogging",
    "GetBucketMetadataTableConfiguration", "GetBucketNotification", "GetBucketObjectLockConfiguration",
    "GetBucketOwnershipControls", "GetBucketPolicy", "GetBucketPolicyStatus", "GetBucketPublicAccessBlock",
    "GetBucketRequestPayment", "GetBucketTagging", "GetBucketVersioning", "GetBucketWebsite", "GetDataAccess",
    "GetEncryptionConfiguration", "GetIntelligentTieringConfiguration", "GetInventoryConfiguration",
    "GetJobTagging", "GetLifecycleConfiguration", "GetMetricsConfiguration", "GetMultiRegionAccessPoint",
    "GetMultiRegionAccessPointPolicy", "GetMultiRegionAccessPointPolicyStatus",
    "GetMultiRegionAccessPointRoutes", "GetObject", "GetObjectAcl", "GetObjectAttributes",
    "GetObjectLegalHold", "GetObjectRetention", "GetObjectTagging", "GetObjectTorrent", "GetObjectVersion",
    "GetObjectVersionAcl", "GetObjectVersionAttributes", "GetObjectVersionForReplication",
    "GetObjectVersionTagging", "GetObjectVersionTorrent", "GetReplicationConfiguration",
    "GetStorageLensConfiguration", "GetStorageLensConfigurationTagging", "GetStorageLensDashboard",
    "GetStorageLensGroup", "InitiateReplication", "ListAccessGrants", "ListAccessGrantsInstances",
    "ListAccessGrantsLocations", "ListAccessPoints", "ListAccessPointsForObjectLambda", "ListAllMyBuckets",
    "ListBucket", "ListBucketMultipartUploads", "ListBucketVersions", "ListJobs",
    "ListMultiRegionAccessPoints", "ListMultipartUploadParts", "ListStorageLensConfigurations",
    "ListStorageLensGroups", "ListTagsForResource", "ObjectOwnerOverrideToBucketOwner", "PauseReplication",
    "PutAccelerateConfiguration", "PutAccessGrantsInstanceResourcePolicy",
    "PutAccessPointConfigurationForObjectLambda", "PutAccessPointPolicy",
    "PutAccessPointPolicyForObjectLambda", "PutAccessPointPublicAccessBlock", "PutAccountPublicAccessBlock",
    "PutAnalyticsConfiguration", "PutBucketAcl", "PutBucketCORS", "PutBucketLogging", "PutBucketNotification",
    "PutBucketObjectLockConfiguration", "PutBucketOwnershipControls", "PutBucketPolicy",
    "PutBucketPublicAccessBlock", "PutBucketRequestPayment", "PutBucketTagging", "PutBucketVersioning",
    "PutBucketWebsite", "PutEncryptionConfiguration", "PutIntelligentTieringConfiguration",
    "PutInventoryConfiguration", "PutJobTagging", "PutLifecycleConfiguration", "PutMetricsConfiguration",
    "PutMultiRegionAccessPointPolicy", "PutObject", "PutObjectAcl", "PutObjectLegalHold",
    "PutObjectRetention", "PutObjectTagging", "PutObjectVersionAcl", "PutObjectVersionTagging",
    "PutReplicationConfiguration", "PutStorageLensConfiguration", "PutStorageLensConfigurationTagging",
    "ReplicateDelete", "ReplicateObject", "ReplicateTags", "RestoreObject",
    "SubmitMultiRegionAccessPointRoutes", "TagResource", "UntagResource", "UpdateAccessGrantsLocation",
    "UpdateBucketMetadataInventoryTableConfiguration", "UpdateBucketMetadataJournalTableConfiguration",
    "UpdateJobPriority", "UpdateJobStatus", "UpdateStorageLensGroup",
};
/* clang-format on */

static const char *const coffer_action_names[CF_POLICY_ACTION_COUNT_] = {
    [CF_POLICY_GET_OBJECT] = "s3:GetObject",
    [CF_POLICY_PUT_OBJECT] = "s3:PutObject",
    [CF_POLICY_DELETE_OBJECT] = "s3:DeleteObject",
    [CF_POLICY_GET_OBJECT_TAGGING] = "s3:GetObjectTagging",
    [CF_POLICY_PUT_OBJECT_TAGGING] = "s3:PutObjectTagging",
    [CF_POLICY_DELETE_OBJECT_TAGGING] = "s3:DeleteObjectTagging",
    [CF_POLICY_ABORT_MULTIPART_UPLOAD] = "s3:AbortMultipartUpload",
    [CF_POLICY_LIST_MULTIPART_UPLOAD_PARTS] = "s3:ListMultipartUploadParts",
    [CF_POLICY_GET_OBJECT_VERSION] = "s3:GetObjectVersion",
    [CF_POLICY_DELETE_OBJECT_VERSION] = "s3:DeleteObjectVersion",
    [CF_POLICY_GET_OBJECT_VERSION_TAGGING] = "s3:GetObjectVersionTagging",
    [CF_POLICY_PUT_OBJECT_VERSION_TAGGING] = "s3:PutObjectVersionTagging",
    [CF_POLICY_DELETE_OBJECT_VERSION_TAGGING] = "s3:DeleteObjectVersionTagging",
    [CF_POLICY_LIST_BUCKET] = "s3:ListBucket",
    [CF_POLICY_LIST_BUCKET_VERSIONS] = "s3:ListBucketVersions",
    [CF_POLICY_LIST_BUCKET_MULTIPART_UPLOADS] = "s3:ListBucketMultipartUploads",
    [CF_POLICY_GET_BUCKET_LOCATION] = "s3:GetBucketLocation",
    [CF_POLICY_GET_BUCKET_VERSIONING] = "s3:GetBucketVersioning",
};

#define OBJECT_ACTIONS ((1u << CF_POLICY_LIST_BUCKET) - 1u)
#define ALL_ACTIONS ((1u << CF_POLICY_ACTION_COUNT_) - 1u)
#define BUCKET_ACTIONS (ALL_ACTIONS & ~OBJECT_ACTIONS)

/* Operations coffer implements for its root user alone (bucket management, policies, CORS
 * configuration, the bucket list): a policy that names one in an Allow would not be obeyed. */
static const char *const root_only_actions[] = {
    "CreateBucket",    "DeleteBucket",       "ListAllMyBuckets", "GetBucketPolicy",
    "PutBucketPolicy", "DeleteBucketPolicy", "GetBucketCORS",    "PutBucketCORS",
};

const char *cf_policy_action_name(cf_policy_action a)
{
    return (unsigned)a < CF_POLICY_ACTION_COUNT_ ? coffer_action_names[a] : "s3:?";
}

/* ---- glob ---- */

static size_t utf8_char_len(const char *s, size_t n)
{
    size_t i = 1;
    while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
        i++;
    return i;
}

static int same_char(char a, char b, int ignore_case)
{
    return a == b || (ignore_case && tolower((unsigned char)a) == tolower((unsigned char)b));
}

/* One backtracking point (the last '*') is enough for '*' and '?' patterns, which bounds the
 * work at pattern length times subject length however the pattern is written. With
 * prefix_only, a subject that runs out first matches: some continuation of it would. */
static int glob_run(const char *p, size_t pn, const char *s, size_t sn, int ignore_case, int prefix_only)
{
    size_t pi = 0, si = 0, star_p = 0, star_s = 0;
    int star = 0;
    while (si < sn) {
        if (pi < pn && p[pi] == '*') {
            star = 1;
            star_p = ++pi;
            star_s = si;
        } else if (pi < pn && p[pi] == '?') {
            pi++;
            si += utf8_char_len(s + si, sn - si);
        } else if (pi < pn && same_char(p[pi], s[si], ignore_case)) {
            pi++;
            si++;
        } else if (star) {
            star_s += utf8_char_len(s + star_s, sn - star_s);
            pi = star_p;
            si = star_s;
        } else {
            return 0;
        }
    }
    if (prefix_only)
        return 1;
    while (pi < pn && p[pi] == '*')
        pi++;
    return pi == pn;
}

int cf_policy_glob(const char *pattern, size_t plen, const char *s, size_t slen, int ignore_case)
{
    return glob_run(pattern, plen, s, slen, ignore_case, 0);
}

static int has_wildcard(const char *s)
{
    return strpbrk(s, "*?") != NULL;
}

/* ---- condition values ---- */

typedef struct ip_net {
    int v6;
    unsigned char addr[16];
    int bits;
} ip_net;

/* "192.0.2.0/24", "2001:db8::/32", or an address alone (all its bits). An IPv4-mapped IPv6
 * address is its IPv4 address, so that a dual-stack listener's peers match IPv4 ranges. */
static int parse_ip(const char *s, int allow_prefix, ip_net *out)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    if (hl == 0 || hl >= sizeof host || (slash && !allow_prefix))
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->bits = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        out->v6 = 1;
        out->bits = 128;
        if (!slash && memcmp(out->addr, mapped, sizeof mapped) == 0) {
            memmove(out->addr, out->addr + 12, 4);
            memset(out->addr + 4, 0, 12);
            out->v6 = 0;
            out->bits = 32;
        }
    } else {
        return -1;
    }
    if (slash) {
        const char *d = slash + 1;
        int bits = 0;
        if (!*d || strlen(d) > 3)
            return -1;
        for (; *d; d++) {
            if (!isdigit((unsigned char)*d))
                return -1;
            bits = bits * 10 + (*d - '0');
        }
        if (bits > out->bits)
            return -1;
        out->bits = bits;
    }
    return 0;
}

static int ip_in(const ip_net *net, const ip_net *addr)
{
    if (net->v6 != addr->v6)
        return 0;
    int full = net->bits / 8, rest = net->bits % 8;
    if (memcmp(net->addr, addr->addr, (size_t)full) != 0)
        return 0;
    if (!rest)
        return 1;
    unsigned char mask = (unsigned char)(0xFF00u >> rest);
    return (net->addr[full] & mask) == (addr->addr[full] & mask);
}

/* A decimal number ("10", "-2.5", "1e3"): no hex, infinities, NaN or surrounding blanks. */
static int parse_number(const char *s, double *out)
{
    if (!*s || strspn(s, "0123456789.eE+-") != strlen(s))
        return -1;
    char *end;
    *out = strtod(s, &end);
    return *end || !isfinite(*out) ? -1 : 0;
}

static int digits(const char *s, int n, int *out)
{
    *out = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        *out = *out * 10 + (s[i] - '0');
    }
    return 0;
}

/* ISO 8601 as AWS documents for date conditions ("2026-12-31", "2026-12-31T23:59:59Z", with
 * fractions or a ±hh:mm offset), or seconds since the epoch; to milliseconds since the epoch. */
static int parse_date(const char *s, int64_t *ms)
{
    size_t n = strlen(s);
    if (n > 0 && n <= 12 && strspn(s, "0123456789") == n) {
        *ms = (int64_t)strtoll(s, NULL, 10) * 1000;
        return 0;
    }
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0, offset_min = 0;
    if (n < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d))
        return -1;
    const char *p = s + 10;
    if (*p == 'T') {
        if (strlen(p) < 9 || digits(p + 1, 2, &h) || p[3] != ':' || digits(p + 4, 2, &mi) || p[6] != ':' ||
            digits(p + 7, 2, &sec))
            return -1;
        p += 9;
        if (*p == '.') {
            int nd = 0;
            for (p++; isdigit((unsigned char)*p); p++, nd++)
                if (nd < 3)
                    frac_ms = frac_ms * 10 + (*p - '0');
            if (nd == 0)
                return -1;
            for (; nd < 3; nd++)
                frac_ms *= 10;
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om;
            if (strlen(p) != 6 || digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 ||
                om > 59)
                return -1;
            offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
            p += 6;
        }
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (tm.tm_mday != d || tm.tm_mon != mo - 1) /* 2026-02-30 normalised into March */
        return -1;
    *ms = ((int64_t)t - (int64_t)offset_min * 60) * 1000 + frac_ms;
    return 0;
}

/* ---- operators and keys ---- */

typedef enum family { F_STRING = 1, F_NUMERIC = 2, F_DATE = 4, F_BOOL = 8, F_IP = 16, F_NULL = 32 } family;
typedef enum compare { C_EQ, C_EQ_ICASE, C_LIKE, C_LT, C_LE, C_GT, C_GE } compare;

static const struct {
    const char *name;
    family fam;
    compare cmp;
    int negated;
} operators[] = {
    {"StringEquals", F_STRING, C_EQ, 0},
    {"StringNotEquals", F_STRING, C_EQ, 1},
    {"StringEqualsIgnoreCase", F_STRING, C_EQ_ICASE, 0},
    {"StringNotEqualsIgnoreCase", F_STRING, C_EQ_ICASE, 1},
    {"StringLike", F_STRING, C_LIKE, 0},
    {"StringNotLike", F_STRING, C_LIKE, 1},
    {"NumericEquals", F_NUMERIC, C_EQ, 0},
    {"NumericNotEquals", F_NUMERIC, C_EQ, 1},
    {"NumericLessThan", F_NUMERIC, C_LT, 0},
    {"NumericLessThanEquals", F_NUMERIC, C_LE, 0},
    {"NumericGreaterThan", F_NUMERIC, C_GT, 0},
    {"NumericGreaterThanEquals", F_NUMERIC, C_GE, 0},
    {"DateEquals", F_DATE, C_EQ, 0},
    {"DateNotEquals", F_DATE, C_EQ, 1},
    {"DateLessThan", F_DATE, C_LT, 0},
    {"DateLessThanEquals", F_DATE, C_LE, 0},
    {"DateGreaterThan", F_DATE, C_GT, 0},
    {"DateGreaterThanEquals", F_DATE, C_GE, 0},
    {"Bool", F_BOOL, C_EQ, 0},
    {"IpAddress", F_IP, C_EQ, 0},
    {"NotIpAddress", F_IP, C_EQ, 1},
    {"Null", F_NULL, C_EQ, 0},
};

static const struct {
    const char *name;
    cf_policy_key key;
    unsigned families; /* the operator families that apply to it (Null applies to all) */
} keys[] = {
    {"aws:SourceIp", CF_POLICY_KEY_SOURCE_IP, F_IP},
    {"aws:CurrentTime", CF_POLICY_KEY_CURRENT_TIME, F_DATE},
    {"aws:EpochTime", CF_POLICY_KEY_EPOCH_TIME, F_DATE | F_NUMERIC},
    {"aws:UserAgent", CF_POLICY_KEY_USER_AGENT, F_STRING},
    {"aws:Referer", CF_POLICY_KEY_REFERER, F_STRING},
    {"s3:prefix", CF_POLICY_KEY_PREFIX, F_STRING},
    {"s3:delimiter", CF_POLICY_KEY_DELIMITER, F_STRING},
    {"s3:max-keys", CF_POLICY_KEY_MAX_KEYS, F_NUMERIC},
    {"s3:x-amz-acl", CF_POLICY_KEY_ACL, F_STRING},
    {"s3:signatureversion", CF_POLICY_KEY_SIGNATURE_VERSION, F_STRING},
    /* AWS leaves it out of requests signed with access keys, which are all coffer has; so the
     * usual "BoolIfExists false -> Deny" denies them here as it does there. */
    {"aws:MultiFactorAuthPresent", CF_POLICY_KEY_MFA_PRESENT, F_BOOL},
};

#define SUPPORTED_KEYS                                                                                       \
    "aws:SourceIp, aws:CurrentTime, aws:EpochTime, aws:UserAgent, aws:Referer, s3:prefix, s3:delimiter, "    \
    "s3:max-keys, s3:x-amz-acl, s3:signatureversion, aws:MultiFactorAuthPresent, s3:ExistingObjectTag/TAG"

/* Keys users paste that coffer cannot honour, and why: refusing with the reason beats a
 * condition that never matches, or always does. */
static const struct {
    const char *prefix;
    const char *why;
} unsupported_keys[] = {
    {"aws:SecureTransport",
     "coffer speaks plain HTTP and cannot see whether a TLS proxy in front of it was used; require HTTPS at "
     "the proxy"},
    {"s3:x-amz-server-side-encryption", "coffer does not encrypt objects at rest"},
    {"s3:RequestObjectTag", "conditions on the tags a request sets are not supported"},
    {"s3:VersionId", "coffer keeps no object versions"},
    {"aws:SourceVpc", "coffer has no VPC endpoints"},
    {"aws:VpcSourceIp", "coffer has no VPC endpoints"},
    {"aws:Principal", "name access keys in Principal instead"},
    {"aws:user", "name access keys in Principal instead"},
};

/* ---- the parsed policy ---- */

typedef struct policy_value {
    const char *s; /* as written (numbers and booleans as their JSON text) */
    double num;
    int64_t ms;
    ip_net net;
    int boolean;
} policy_value;

typedef struct policy_condition {
    int op; /* index into operators[] */
    int if_exists;
    cf_policy_key key;
    const char *tag; /* s3:ExistingObjectTag/TAG: TAG (case-sensitive, as tag keys are) */
    policy_value *values;
    size_t nvalues;
} policy_condition;

typedef struct policy_statement {
    const char *sid;
    int deny;
    int not_principal, any_principal;
    const char **principals; /* access key ids */
    size_t nprincipals;
    int not_action;
    unsigned actions; /* bit per cf_policy_action */
    int not_resource;
    const char **resources; /* patterns for "BUCKET" or "BUCKET/KEY"; "*" for any */
    size_t nresources;
    policy_condition *conds;
    size_t nconds;
} policy_statement;

typedef struct alloc_block {
    struct alloc_block *next;
} alloc_block;

struct cf_policy {
    json_t *root; /* owns the strings the statements point to */
    char bucket[64];
    policy_statement *statements;
    size_t n;
    int uses_object_tags;
    alloc_block *blocks;
};

/* Zeroed memory that lives as long as the policy. */
static void *policy_alloc(cf_policy *p, size_t n)
{
    alloc_block *b = calloc(1, sizeof(max_align_t) + n);
    if (!b)
        return NULL;
    b->next = p->blocks;
    p->blocks = b;
    return (char *)b + sizeof(max_align_t);
}

void cf_policy_free(cf_policy *p)
{
    if (!p)
        return;
    while (p->blocks) {
        alloc_block *next = p->blocks->next;
        free(p->blocks);
        p->blocks = next;
    }
    json_decref(p->root);
    free(p);
}

/* ---- parsing ---- */

typedef struct parser {
    cf_policy *p;
    int variables; /* Version 2012-10-17: "${...}" is a policy variable, which coffer does not expand */
    cf_policy_principal_fn principal_fn;
    void *ctx;
    cf_err *err;
} parser;

static int nomem(parser *ps)
{
    return cf_err_set(ps->err, CF_ENOMEM, "out of memory");
}

static int refuse_variable(parser *ps, const char *field, const char *s)
{
    if (ps->variables && strstr(s, "${"))
        return cf_err_set(ps->err, CF_EINVAL, "%s '%.200s': policy variables (${...}) are not supported",
                          field, s);
    return 0;
}

/* A string or a non-empty array of strings, as a list borrowed from the tree. */
static int string_list(parser *ps, json_t *v, const char *field, const char ***out, size_t *n)
{
    size_t count = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_string(v) && (!json_is_array(v) || count == 0))
        return cf_err_set(ps->err, CF_EINVAL, "%s must be a string or a non-empty array of strings", field);
    const char **list = policy_alloc(ps->p, count * sizeof *list);
    if (!list)
        return nomem(ps);
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_string(e))
            return cf_err_set(ps->err, CF_EINVAL, "%s must hold strings only", field);
        list[i] = json_string_value(e);
    }
    *out = list;
    *n = count;
    return 0;
}

static int valid_key_id(const char *s)
{
    size_t n = strlen(s);
    return n >= 3 && n <= 128 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == n;
}

/* "ACCESS_KEY" or arn:aws:iam::ACCOUNT:user/[PATH/]ACCESS_KEY: coffer is one account, whose
 * users are its access keys. */
static int principal_key_id(parser *ps, const char *s, const char **id)
{
    *id = s;
    if (strncmp(s, IAM_PREFIX, strlen(IAM_PREFIX)) == 0) {
        const char *account = s + strlen(IAM_PREFIX), *colon = strchr(account, ':');
        const char *res = colon ? colon + 1 : "";
        if (colon && colon != account && strncmp(res, "user/", 5) == 0)
            *id = strrchr(res, '/') + 1;
        else if (colon && strcmp(res, "root") == 0)
            return cf_err_set(ps->err, CF_EINVAL,
                              "Invalid principal in policy: '%.200s' names an account; coffer's principals "
                              "are its access keys (the key id, or arn:aws:iam::ACCOUNT:user/KEY_ID)",
                              s);
        else
            *id = NULL;
    }
    if (!*id || !valid_key_id(*id))
        return cf_err_set(
            ps->err, CF_EINVAL,
            "Invalid principal in policy: '%.200s'; coffer's principals are \"*\" and its access "
            "keys (the key id, or arn:aws:iam::ACCOUNT:user/KEY_ID)",
            s);
    if (!ps->principal_fn)
        return 0;
    int kind = ps->principal_fn(ps->ctx, *id, ps->err);
    if (kind < 0)
        return kind;
    if (kind == CF_POLICY_PRINCIPAL_ROOT)
        return cf_err_set(
            ps->err, CF_EINVAL,
            "Invalid principal in policy: '%.200s' is the root user, whom bucket policies do not "
            "bind",
            s);
    if (kind != CF_POLICY_PRINCIPAL_KEY)
        return cf_err_set(ps->err, CF_EINVAL, "Invalid principal in policy: there is no access key '%.128s'",
                          *id);
    return 0;
}

static int parse_principal(parser *ps, json_t *v, const char *field, policy_statement *st)
{
    const char **names = NULL;
    size_t n = 0;
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), "*") != 0)
            return cf_err_set(
                ps->err, CF_EINVAL,
                "Invalid principal in policy: %s must be \"*\" or {\"AWS\": [...]}, not '%.200s'", field,
                json_string_value(v));
        st->any_principal = 1;
        return 0;
    }
    if (!json_is_object(v) || json_object_size(v) == 0)
        return cf_err_set(ps->err, CF_EINVAL,
                          "Invalid principal in policy: %s must be \"*\" or {\"AWS\": [...]}", field);
    const char *type;
    json_t *list;
    json_object_foreach(v, type, list)
    {
        if (strcmp(type, "AWS") != 0)
            return cf_err_set(ps->err, CF_EINVAL,
                              "Invalid principal in policy: principal type '%.64s' is not supported; name "
                              "access keys with {\"AWS\": [...]}",
                              type);
    }
    int rc = string_list(ps, json_object_get(v, "AWS"), field, &names, &n);
    if (rc)
        return rc;
    st->principals = policy_alloc(ps->p, n * sizeof *st->principals);
    if (!st->principals)
        return nomem(ps);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], "*") == 0) {
            st->any_principal = 1;
            continue;
        }
        const char *id;
        if ((rc = principal_key_id(ps, names[i], &id)))
            return rc;
        st->principals[st->nprincipals++] = id;
    }
    return 0;
}

static int is_root_only(const char *name)
{
    for (size_t i = 0; i < sizeof root_only_actions / sizeof *root_only_actions; i++)
        if (strcasecmp(name, root_only_actions[i]) == 0)
            return 1;
    return 0;
}

static int parse_actions(parser *ps, json_t *v, const char *field, policy_statement *st)
{
    const char **list;
    size_t n;
    int rc = string_list(ps, v, field, &list, &n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const char *a = list[i];
        if (strcmp(a, "*") == 0) {
            st->actions = ALL_ACTIONS;
            continue;
        }
        if (strncasecmp(a, "s3:", 3) != 0)
            return cf_err_set(ps->err, CF_EINVAL,
                              "Policy has invalid action: '%.200s' (a bucket policy names s3: actions)", a);
        const char *name = a + 3;
        size_t nl = strlen(name);
        int known = 0;
        for (size_t k = 0; k < sizeof s3_actions / sizeof *s3_actions && !known; k++)
            known = cf_policy_glob(name, nl, s3_actions[k], strlen(s3_actions[k]), 1);
        if (!known)
            return cf_err_set(ps->err, CF_EINVAL, "Policy has invalid action: '%.200s'", a);
        if (!st->deny && !st->not_action && !has_wildcard(name) && is_root_only(name))
            return cf_err_set(
                ps->err, CF_EINVAL,
                "action '%.200s' is reserved to coffer's root user; a bucket policy cannot grant it", a);
        for (int k = 0; k < CF_POLICY_ACTION_COUNT_; k++) {
            const char *ours = coffer_action_names[k] + 3; /* past "s3:" */
            if (cf_policy_glob(name, nl, ours, strlen(ours), 1))
                st->actions |= 1u << k;
        }
    }
    return 0;
}

/* The resources a statement covers must lie in the policy's bucket (AWS: "Policy has invalid
 * resource"); *covers says whether some pattern reaches the bucket itself (bit 0) or objects
 * in it (bit 1), for the action/resource check. */
static int parse_resources(parser *ps, json_t *v, const char *field, policy_statement *st, unsigned *covers)
{
    const char **list;
    size_t n;
    int rc = string_list(ps, v, field, &list, &n);
    if (rc)
        return rc;
    const char *bucket = ps->p->bucket;
    size_t bl = strlen(bucket);
    char bucket_slash[72];
    snprintf(bucket_slash, sizeof bucket_slash, "%s/", bucket);
    *covers = 0;
    for (size_t i = 0; i < n; i++) {
        const char *r = list[i], *pat = r;
        if ((rc = refuse_variable(ps, field, r)))
            return rc;
        if (strcmp(r, "*") != 0) {
            if (strncmp(r, ARN_PREFIX, strlen(ARN_PREFIX)) != 0 || !r[strlen(ARN_PREFIX)])
                return cf_err_set(ps->err, CF_EINVAL,
                                  "Policy has invalid resource: '%.200s' (arn:aws:s3:::%s or "
                                  "arn:aws:s3:::%s/KEY)",
                                  r, bucket, bucket);
            pat = r + strlen(ARN_PREFIX);
        }
        size_t pl = strlen(pat);
        unsigned c = (unsigned)cf_policy_glob(pat, pl, bucket, bl, 0) |
                     (unsigned)glob_run(pat, pl, bucket_slash, bl + 1, 0, 1) << 1;
        if (!c)
            return cf_err_set(ps->err, CF_EINVAL,
                              "Policy has invalid resource: '%.200s' is not in bucket '%s'", r, bucket);
        *covers |= c;
        list[i] = pat;
    }
    st->resources = list;
    st->nresources = n;
    return 0;
}

/* A condition value as text: AWS takes numbers and booleans for their JSON spelling. */
static const char *value_text(parser *ps, json_t *v)
{
    if (json_is_string(v))
        return json_string_value(v);
    char buf[64];
    if (json_is_integer(v))
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, sizeof buf, "%s", json_is_true(v) ? "true" : "false");
    else
        return NULL;
    char *s = policy_alloc(ps->p, strlen(buf) + 1);
    if (s)
        memcpy(s, buf, strlen(buf) + 1);
    return s;
}

static int parse_value(parser *ps, family fam, const char *key, policy_value *out)
{
    const char *s = out->s;
    int rc = refuse_variable(ps, key, s);
    if (rc)
        return rc;
    const char *what = NULL;
    switch (fam) {
    case F_NUMERIC:
        if (parse_number(s, &out->num))
            what = "a number";
        break;
    case F_DATE:
        if (parse_date(s, &out->ms))
            what = "a date (ISO 8601 or epoch seconds)";
        break;
    case F_IP:
        if (parse_ip(s, 1, &out->net))
            what = "an IP address or CIDR range";
        break;
    case F_BOOL:
    case F_NULL:
        if (strcasecmp(s, "true") != 0 && strcasecmp(s, "false") != 0)
            what = "true or false";
        out->boolean = strcasecmp(s, "true") == 0;
        break;
    default: break;
    }
    if (what)
        return cf_err_set(ps->err, CF_EINVAL, "Invalid Condition: value '%.100s' of '%.100s' is not %s", s,
                          key, what);
    return 0;
}

#define EXISTING_OBJECT_TAG "s3:ExistingObjectTag/"

static int find_key(parser *ps, const char *name, policy_condition *c, unsigned *families)
{
    cf_policy_key *key = &c->key;
    size_t tl = strlen(EXISTING_OBJECT_TAG);
    if (strncasecmp(name, EXISTING_OBJECT_TAG, tl) == 0 && name[tl]) {
        *key = CF_POLICY_KEY_EXISTING_OBJECT_TAG;
        *families = F_STRING;
        c->tag = name + tl;
        ps->p->uses_object_tags = 1;
        return 0;
    }
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strcasecmp(name, keys[i].name) == 0) {
            *key = keys[i].key;
            *families = keys[i].families;
            return 0;
        }
    for (size_t i = 0; i < sizeof unsupported_keys / sizeof *unsupported_keys; i++)
        if (strncasecmp(name, unsupported_keys[i].prefix, strlen(unsupported_keys[i].prefix)) == 0)
            return cf_err_set(ps->err, CF_EINVAL, "Policy has an unsupported condition key '%.100s': %s",
                              name, unsupported_keys[i].why);
    return cf_err_set(ps->err, CF_EINVAL,
                      "Policy has an unsupported condition key '%.100s' (coffer supports %s)", name,
                      SUPPORTED_KEYS);
}

static int find_operator(parser *ps, const char *name, int *op, int *if_exists)
{
    if (strncmp(name, "ForAllValues:", 13) == 0 || strncmp(name, "ForAnyValue:", 12) == 0)
        return cf_err_set(
            ps->err, CF_EINVAL,
            "condition operator '%.100s': ForAllValues and ForAnyValue are for multivalued keys, "
            "and coffer has none",
            name);
    size_t n = strlen(name), sl = strlen("IfExists");
    *if_exists = n > sl && strcmp(name + n - sl, "IfExists") == 0;
    if (*if_exists)
        n -= sl;
    for (size_t i = 0; i < sizeof operators / sizeof *operators; i++)
        if (strlen(operators[i].name) == n && strncmp(name, operators[i].name, n) == 0) {
            if (operators[i].fam == F_NULL && *if_exists)
                break;
            *op = (int)i;
            return 0;
        }
    return cf_err_set(
        ps->err, CF_EINVAL,
        "condition operator '%.100s' is not supported (String*, Numeric*, Date*, Bool, IpAddress, "
        "NotIpAddress, Null, and their IfExists forms are)",
        name);
}

static int parse_condition_values(parser *ps, json_t *v, family fam, const char *key, policy_condition *c)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (json_is_array(v) && n == 0)
        return cf_err_set(ps->err, CF_EINVAL, "Invalid Condition: '%.100s' has no values", key);
    c->values = policy_alloc(ps->p, n * sizeof *c->values);
    if (!c->values)
        return nomem(ps);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        if (json_is_object(e) || json_is_array(e) || json_is_null(e))
            return cf_err_set(ps->err, CF_EINVAL, "Invalid Condition: the values of '%.100s' must be strings",
                              key);
        if (!(c->values[i].s = value_text(ps, e)))
            return nomem(ps);
        int rc = parse_value(ps, fam, key, &c->values[i]);
        if (rc)
            return rc;
    }
    c->nvalues = n;
    return 0;
}

static int parse_condition(parser *ps, json_t *v, policy_statement *st)
{
    if (!json_is_object(v))
        return cf_err_set(ps->err, CF_EINVAL, "Condition must be an object of operators");
    const char *opname, *keyname;
    json_t *block, *values;
    size_t count = 0;
    json_object_foreach(v, opname, block)
    {
        if (!json_is_object(block) || json_object_size(block) == 0)
            return cf_err_set(ps->err, CF_EINVAL,
                              "Invalid Condition: '%.100s' must map condition keys to values", opname);
        count += json_object_size(block);
    }
    if (!count)
        return 0;
    st->conds = policy_alloc(ps->p, count * sizeof *st->conds);
    if (!st->conds)
        return nomem(ps);
    json_object_foreach(v, opname, block)
    {
        int op = 0, if_exists = 0, rc;
        if ((rc = find_operator(ps, opname, &op, &if_exists)))
            return rc;
        json_object_foreach(block, keyname, values)
        {
            policy_condition *c = &st->conds[st->nconds];
            unsigned families = 0;
            if ((rc = find_key(ps, keyname, c, &families)))
                return rc;
            family fam = operators[op].fam;
            if (fam != F_NULL && !(families & fam))
                return cf_err_set(ps->err, CF_EINVAL,
                                  "condition operator '%.100s' does not apply to key '%.100s'", opname,
                                  keyname);
            c->op = op;
            c->if_exists = if_exists;
            if ((rc = parse_condition_values(ps, values, fam, keyname, c)))
                return rc;
            st->nconds++;
        }
    }
    return 0;
}

/* Exactly one of an element and its Not form. */
static int one_of(parser *ps, json_t *s, const char *name, const char *not_name, json_t **v, int *negated)
{
    json_t *a = json_object_get(s, name), *b = json_object_get(s, not_name);
    if (a && b)
        return cf_err_set(ps->err, CF_EINVAL, "a statement has %s or %s, not both", name, not_name);
    if (!a && !b)
        return cf_err_set(ps->err, CF_EINVAL, "Missing required field %s", name);
    *v = a ? a : b;
    *negated = b != NULL;
    return 0;
}

static int parse_statement(parser *ps, json_t *s, policy_statement *st)
{
    if (!json_is_object(s))
        return cf_err_set(ps->err, CF_EINVAL, "each Statement must be an object");
    static const char *const fields[] = {"Sid",       "Effect",   "Principal",   "NotPrincipal", "Action",
                                         "NotAction", "Resource", "NotResource", "Condition"};
    const char *key;
    json_t *v;
    json_object_foreach(s, key, v)
    {
        size_t i = 0;
        while (i < sizeof fields / sizeof *fields && strcmp(key, fields[i]) != 0)
            i++;
        if (i == sizeof fields / sizeof *fields)
            return cf_err_set(ps->err, CF_EINVAL, "Unknown field %.64s", key);
    }
    json_t *sid = json_object_get(s, "Sid"), *effect = json_object_get(s, "Effect");
    if (sid && !json_is_string(sid))
        return cf_err_set(ps->err, CF_EINVAL, "Sid must be a string");
    st->sid = sid ? json_string_value(sid) : NULL;
    if (!effect)
        return cf_err_set(ps->err, CF_EINVAL, "Missing required field Effect");
    if (!json_is_string(effect) ||
        (strcmp(json_string_value(effect), "Allow") != 0 && strcmp(json_string_value(effect), "Deny") != 0))
        return cf_err_set(ps->err, CF_EINVAL, "Invalid effect: Effect must be \"Allow\" or \"Deny\"");
    st->deny = strcmp(json_string_value(effect), "Deny") == 0;

    json_t *principal, *action, *resource;
    unsigned covers;
    int rc;
    if ((rc = one_of(ps, s, "Principal", "NotPrincipal", &principal, &st->not_principal)) ||
        (rc = parse_principal(ps, principal, st->not_principal ? "NotPrincipal" : "Principal", st)) ||
        (rc = one_of(ps, s, "Action", "NotAction", &action, &st->not_action)) ||
        (rc = parse_actions(ps, action, st->not_action ? "NotAction" : "Action", st)) ||
        (rc = one_of(ps, s, "Resource", "NotResource", &resource, &st->not_resource)) ||
        (rc = parse_resources(ps, resource, st->not_resource ? "NotResource" : "Resource", st, &covers)))
        return rc;
    /* AWS refuses a statement whose actions reach none of its resources, the classic being
     * s3:GetObject on arn:aws:s3:::bucket (without /...). */
    if (!st->not_action && !st->not_resource && st->actions &&
        !(((st->actions & OBJECT_ACTIONS) && (covers & 2)) ||
          ((st->actions & BUCKET_ACTIONS) && (covers & 1))))
        return cf_err_set(ps->err, CF_EINVAL,
                          "Action does not apply to any resource(s) in statement (object actions need "
                          "arn:aws:s3:::%s/..., bucket actions arn:aws:s3:::%s)",
                          ps->p->bucket, ps->p->bucket);
    json_t *cond = json_object_get(s, "Condition");
    return cond ? parse_condition(ps, cond, st) : 0;
}

/* Nesting is checked before jansson sees the text, so its recursion stays shallow. */
static int nesting_within(const char *s, size_t n, int max)
{
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return 0;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 1;
}

static int parse_root(parser *ps, json_t *root)
{
    cf_err *err = ps->err;
    if (!json_is_object(root))
        return cf_err_set(err, CF_EINVAL, "Policies must be valid JSON and the first byte must be '{'");
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "Version") && strcmp(key, "Statement") && strcmp(key, "Id"))
            return cf_err_set(err, CF_EINVAL, "Unknown field %.64s", key);
    }
    json_t *version = json_object_get(root, "Version"), *id = json_object_get(root, "Id");
    json_t *stmts = json_object_get(root, "Statement");
    if (version && (!json_is_string(version) || (strcmp(json_string_value(version), "2012-10-17") != 0 &&
                                                 strcmp(json_string_value(version), "2008-10-17") != 0)))
        return cf_err_set(err, CF_EINVAL, "Version must be \"2012-10-17\" or \"2008-10-17\"");
    ps->variables = version && strcmp(json_string_value(version), "2012-10-17") == 0;
    if (id && !json_is_string(id))
        return cf_err_set(err, CF_EINVAL, "Id must be a string");
    size_t n = json_is_array(stmts) ? json_array_size(stmts) : 1;
    if (!json_is_object(stmts) && (!json_is_array(stmts) || n == 0))
        return cf_err_set(err, CF_EINVAL, "Statement must be an object or a non-empty array");
    if (n > CF_POLICY_MAX_STATEMENTS)
        return cf_err_set(err, CF_EINVAL, "a policy holds at most %d statements", CF_POLICY_MAX_STATEMENTS);
    ps->p->statements = policy_alloc(ps->p, n * sizeof *ps->p->statements);
    if (!ps->p->statements)
        return nomem(ps);
    for (size_t i = 0; i < n; i++) {
        policy_statement *st = &ps->p->statements[i];
        int rc = parse_statement(ps, json_is_array(stmts) ? json_array_get(stmts, i) : stmts, st);
        if (rc)
            return rc;
        for (size_t j = 0; st->sid && j < i; j++)
            if (ps->p->statements[j].sid && strcmp(ps->p->statements[j].sid, st->sid) == 0)
                return cf_err_set(err, CF_EINVAL,
                                  "Statement IDs (SID) in a single policy must be unique: '%.64s'", st->sid);
        ps->p->n++;
    }
    return 0;
}

static int parse_policy(const char *json, size_t len, const char *bucket, cf_policy_principal_fn principal_fn,
                        void *ctx, cf_policy **out, cf_err *err)
{
    *out = NULL;
    if (len > CF_POLICY_MAX_BYTES)
        return cf_err_set(err, CF_EINVAL, "Policy exceeds the maximum allowed document size (%d bytes)",
                          CF_POLICY_MAX_BYTES);
    if (strlen(bucket) >= sizeof((cf_policy *)0)->bucket)
        return cf_err_set(err, CF_EINVAL, "bucket name '%.64s' is too long", bucket);
    if (!nesting_within(json, len, CF_POLICY_MAX_DEPTH))
        return cf_err_set(err, CF_EINVAL, "Policies must be valid JSON: nested deeper than %d levels",
                          CF_POLICY_MAX_DEPTH);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return cf_err_set(err, CF_EINVAL, "Policies must be valid JSON: %s (line %d)", jerr.text, jerr.line);
    cf_policy *p = calloc(1, sizeof *p);
    if (!p) {
        json_decref(root);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    p->root = root;
    snprintf(p->bucket, sizeof p->bucket, "%s", bucket);
    parser ps = {p, 0, principal_fn, ctx, err};
    int rc = parse_root(&ps, root);
    if (rc) {
        cf_policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* A refusal quotes the policy, whose strings may hold controls, or be cut inside a UTF-8
 * character by the quoting's length limit; the message travels in an XML error document,
 * which can carry neither. Each offending byte becomes '?'. */
static void make_printable(char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (c < 0x20 || c == 0x7F ||
            (c >= 0x80 && (i + len > n || !cf_s3_utf8_valid((unsigned char *)s + i, len)))) {
            s[i++] = '?';
            continue;
        }
        i += len;
    }
}

int cf_policy_parse(const char *json, size_t len, const char *bucket, cf_policy_principal_fn principal_fn,
                    void *ctx, cf_policy **out, cf_err *err)
{
    int rc = parse_policy(json, len, bucket, principal_fn, ctx, out, err);
    if (rc && err)
        make_printable(err->msg);
    return rc;
}

/* ---- evaluation ---- */

static int value_matches(const policy_condition *c, const policy_value *want, const char *have)
{
    compare cmp = operators[c->op].cmp;
    double num;
    int64_t ms;
    ip_net addr;
    switch (operators[c->op].fam) {
    case F_STRING:
        if (cmp == C_LIKE)
            return cf_policy_glob(want->s, strlen(want->s), have, strlen(have), 0);
        return cmp == C_EQ_ICASE ? strcasecmp(want->s, have) == 0 : strcmp(want->s, have) == 0;
    case F_NUMERIC:
    case F_DATE:
        if (operators[c->op].fam == F_NUMERIC) {
            if (parse_number(have, &num))
                return 0;
        } else {
            if (parse_date(have, &ms))
                return 0;
            num = (double)ms;
        }
        {
            double w = operators[c->op].fam == F_NUMERIC ? want->num : (double)want->ms;
            switch (cmp) {
            case C_LT: return num < w;
            case C_LE: return num <= w;
            case C_GT: return num > w;
            case C_GE: return num >= w;
            default: return num == w;
            }
        }
    case F_BOOL: return strcasecmp(have, want->boolean ? "true" : "false") == 0;
    case F_IP: return parse_ip(have, 0, &addr) == 0 && ip_in(&want->net, &addr);
    default: return 0;
    }
}

/* Values are ORed; a negated operator holds when none matches (AWS: "logical NOR"). An absent
 * key fails a plain operator and satisfies a negated one, unless IfExists says it holds. */
static int condition_holds(const policy_condition *c, const cf_policy_request *q)
{
    const char *have = NULL;
    if (c->key == CF_POLICY_KEY_EXISTING_OBJECT_TAG)
        have = q->object_tag ? q->object_tag(q->object_tag_ctx, c->tag) : NULL;
    else if ((unsigned)c->key < CF_POLICY_KEY_COUNT_)
        have = q->values[c->key];
    if (operators[c->op].fam == F_NULL) {
        for (size_t i = 0; i < c->nvalues; i++)
            if ((have == NULL) == c->values[i].boolean)
                return 1;
        return 0;
    }
    if (!have)
        return c->if_exists || operators[c->op].negated;
    int any = 0;
    for (size_t i = 0; i < c->nvalues && !any; i++)
        any = value_matches(c, &c->values[i], have);
    return operators[c->op].negated ? !any : any;
}

static int principal_matches(const policy_statement *st, const char *principal)
{
    int named = st->any_principal;
    for (size_t i = 0; !named && principal && i < st->nprincipals; i++)
        named = strcmp(st->principals[i], principal) == 0;
    return st->not_principal ? !named : named;
}

static int action_matches(const policy_statement *st, cf_policy_action a)
{
    int named = (st->actions >> a) & 1u;
    return st->not_action ? !named : named;
}

static int resource_matches(const policy_statement *st, const char *resource, size_t len)
{
    int named = 0;
    for (size_t i = 0; !named && i < st->nresources; i++)
        named = cf_policy_glob(st->resources[i], strlen(st->resources[i]), resource, len, 0);
    return st->not_resource ? !named : named;
}

cf_policy_effect cf_policy_evaluate(const cf_policy *p, const cf_policy_request *q)
{
    if ((unsigned)q->action >= CF_POLICY_ACTION_COUNT_)
        return CF_POLICY_DENIED;
    size_t bl = strlen(p->bucket), len = bl;
    int object = ((OBJECT_ACTIONS >> q->action) & 1u) != 0;
    if (object)
        len += 1 + q->keylen;
    char *resource = malloc(len + 1);
    if (!resource)
        return CF_POLICY_DENIED; /* fail closed */
    memcpy(resource, p->bucket, bl);
    if (object) {
        resource[bl] = '/';
        if (q->keylen)
            memcpy(resource + bl + 1, q->key, q->keylen);
    }
    resource[len] = '\0';
    cf_policy_effect effect = CF_POLICY_NO_MATCH;
    for (size_t i = 0; i < p->n; i++) {
        const policy_statement *st = &p->statements[i];
        if (!principal_matches(st, q->principal) || !action_matches(st, q->action) ||
            !resource_matches(st, resource, len))
            continue;
        size_t c = 0;
        while (c < st->nconds && condition_holds(&st->conds[c], q))
            c++;
        if (c < st->nconds)
            continue;
        if (st->deny) {
            effect = CF_POLICY_DENIED;
            break;
        }
        effect = CF_POLICY_ALLOWED;
    }
    free(resource);
    return effect;
}

int cf_policy_uses_object_tags(const cf_policy *p)
{
    return p->uses_object_tags;
}

int cf_policy_may_allow(const cf_policy *p, cf_policy_action action, const char *principal)
{
    if ((unsigned)action >= CF_POLICY_ACTION_COUNT_)
        return 0;
    for (size_t i = 0; i < p->n; i++) {
        const policy_statement *st = &p->statements[i];
        if (!st->deny && principal_matches(st, principal) && action_matches(st, action))
            return 1;
    }
    return 0;
}
