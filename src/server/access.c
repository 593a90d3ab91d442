/*
 * access.c - what an authenticated principal may do.
 *
 * Root may do everything. A stored access key has one policy on one bucket (or all) and a key
 * prefix within it:
 *   readonly   read objects and tags, list, bucket information
 *   writeonly  create objects (PUT, multipart, copy into scope, tags), bucket information; no
 *              reads, no deletes and no overwrites, so that a backup job's key cannot destroy
 *              its backups (the overwrite check is the commit's own: cf_access_create_only)
 *   readwrite  all of the above plus deletes
 * Bucket creation and deletion, bucket policies and the admin API are root's alone. Anonymous
 * requests may only read what the bucket's policy makes public (src/s3/policy.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "s3/policy.h"
#include "server/request.h"

typedef enum access_class {
    ACCESS_BUCKET_INFO,   /* HeadBucket, GetBucketLocation, GetBucketVersioning */
    ACCESS_LIST,
    ACCESS_READ,
    ACCESS_WRITE,
    ACCESS_DELETE,
    ACCESS_ROOT,
    ACCESS_ANY,           /* ListBuckets: answered per principal by the handler */
} access_class;

static access_class class_of(cf_s3_op op)
{
    switch (op) {
    case CF_S3_OP_LIST_BUCKETS: return ACCESS_ANY;
    case CF_S3_OP_HEAD_BUCKET:
    case CF_S3_OP_GET_BUCKET_LOCATION:
    case CF_S3_OP_GET_BUCKET_VERSIONING: return ACCESS_BUCKET_INFO;
    case CF_S3_OP_LIST_OBJECTS:
    case CF_S3_OP_LIST_OBJECTS_V2:
    case CF_S3_OP_LIST_OBJECT_VERSIONS:
    case CF_S3_OP_LIST_MULTIPART_UPLOADS: return ACCESS_LIST;
    case CF_S3_OP_GET_OBJECT:
    case CF_S3_OP_HEAD_OBJECT:
    case CF_S3_OP_GET_OBJECT_TAGGING: return ACCESS_READ;
    case CF_S3_OP_PUT_OBJECT:
    case CF_S3_OP_COPY_OBJECT:
    case CF_S3_OP_CREATE_MULTIPART_UPLOAD:
    case CF_S3_OP_UPLOAD_PART:
    case CF_S3_OP_UPLOAD_PART_COPY:
    case CF_S3_OP_COMPLETE_MULTIPART_UPLOAD:
    case CF_S3_OP_ABORT_MULTIPART_UPLOAD:
    case CF_S3_OP_LIST_PARTS:
    case CF_S3_OP_PUT_OBJECT_TAGGING: return ACCESS_WRITE;
    case CF_S3_OP_DELETE_OBJECT:
    case CF_S3_OP_DELETE_OBJECT_TAGGING:
    case CF_S3_OP_DELETE_OBJECTS: return ACCESS_DELETE; /* each key checked by the handler */
    default: return ACCESS_ROOT;
    }
}

static int policy_grants(const char *policy, access_class c)
{
    int ro = strcmp(policy, "readonly") == 0, wo = strcmp(policy, "writeonly") == 0;
    int rw = strcmp(policy, "readwrite") == 0;
    switch (c) {
    case ACCESS_BUCKET_INFO: return ro || wo || rw;
    case ACCESS_LIST:
    case ACCESS_READ: return ro || rw;
    case ACCESS_WRITE: return wo || rw;
    case ACCESS_DELETE: return rw;
    default: return 0;
    }
}

int cf_access_key_in_scope(const cf_request *r, const char *bucket, const char *key, size_t keylen)
{
    if (r->principal == CF_PRINCIPAL_ROOT)
        return 1;
    const cf_store_key *k = &r->grant;
    if (k->bucket[0] && strcmp(k->bucket, bucket) != 0)
        return 0;
    size_t pl = strlen(k->prefix);
    return keylen >= pl && memcmp(key, k->prefix, pl) == 0;
}

int cf_access_allows(const cf_request *r, cf_s3_op op, const char *bucket, const char *key, size_t keylen)
{
    if (r->principal == CF_PRINCIPAL_ROOT)
        return 1;
    access_class c = class_of(op);
    if (c == ACCESS_ANY)
        return r->principal != CF_PRINCIPAL_ANONYMOUS;
    if (r->principal == CF_PRINCIPAL_ANONYMOUS)
        return 0; /* the bucket policy is consulted by cf_access_check */
    if (!policy_grants(r->grant.policy, c))
        return 0;
    if (r->grant.bucket[0] && strcmp(r->grant.bucket, bucket) != 0)
        return 0;
    if (c == ACCESS_BUCKET_INFO)
        return 1;
    if (c == ACCESS_LIST) {
        /* A listing stays inside the prefix when its own prefix starts with it. */
        const char *p = cf_request_param(r, "prefix");
        cf_buf dec;
        cf_buf_init(&dec, 4096);
        int ok = (!p || cf_s3_url_decode(&dec, p, strlen(p)) == 0) &&
                 cf_access_key_in_scope(r, bucket, dec.data ? dec.data : "", dec.len);
        cf_buf_cleanup(&dec);
        return ok;
    }
    if (op == CF_S3_OP_DELETE_OBJECTS)
        return 1;
    return cf_access_key_in_scope(r, bucket, key, keylen);
}

/* Anonymous: only what the bucket policy makes public. */
static int public_allows(cf_request *r)
{
    cf_policy_action action;
    if (r->op == CF_S3_OP_GET_OBJECT || r->op == CF_S3_OP_HEAD_OBJECT)
        action = CF_POLICY_GET_OBJECT;
    else if (r->op == CF_S3_OP_LIST_OBJECTS || r->op == CF_S3_OP_LIST_OBJECTS_V2)
        action = CF_POLICY_LIST_BUCKET;
    else
        return 0;
    char name[80], *json = NULL;
    size_t len = 0;
    cf_err err;
    snprintf(name, sizeof name, "policy/%s", r->bucket);
    if (!*r->bucket || cf_store_meta_get(r->srv->store, name, &json, &len, &err) != 0)
        return 0;
    cf_policy *p = malloc(sizeof *p);
    int ok = p && cf_policy_parse(json, len, r->bucket, p, &err) == 0 &&
             cf_policy_allows(p, action, r->key ? r->key : "", r->keylen);
    free(p);
    free(json);
    return ok;
}

cf_s3_error cf_access_check(cf_request *r)
{
    /* A preflight is unauthenticated, as browsers send it; a form upload is signed inside its
     * body, and handlers_post.c applies this file's rules to its signer once that is known. */
    if (r->op == CF_S3_OP_CORS_PREFLIGHT || r->op == CF_S3_OP_POST_OBJECT)
        return CF_S3_OK;
    if (r->principal == CF_PRINCIPAL_ANONYMOUS)
        return public_allows(r) ? CF_S3_OK : CF_S3_AccessDenied;
    return cf_access_allows(r, r->op, r->bucket, r->key, r->keylen) ? CF_S3_OK : CF_S3_AccessDenied;
}

int cf_access_create_only(const cf_request *r)
{
    return r->principal == CF_PRINCIPAL_KEY && strcmp(r->grant.policy, "writeonly") == 0;
}
