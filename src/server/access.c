/*
 * access.c - what a principal may do.
 *
 * Root may do everything, and no bucket policy binds it (so a policy can always be repaired;
 * AWS likewise lets the account's root user manage a policy that denies it). A stored access
 * key has one key policy on one bucket (or all) and a key prefix within it:
 *   readonly   read objects and tags, list, bucket information
 *   writeonly  create objects (PUT, multipart, copy into scope, tags), bucket information; no
 *              reads, no deletes and no overwrites, so that a backup job's key cannot destroy
 *              its backups (the overwrite check is the commit's own: cf_access_create_only)
 *   readwrite  all of the above plus deletes
 * Bucket creation and deletion, bucket policies and the admin API are root's alone.
 *
 * A bucket's policy (src/s3/policy.h) combines with that as AWS combines a bucket policy with
 * the identity policy of a user of the bucket owner's account: an applicable Deny refuses the
 * request whatever the key policy grants; an applicable Allow grants it even beyond the key
 * policy; otherwise the key policy decides. An anonymous request has no key policy, so it
 * needs an Allow. A bucket policy grants only the operations on objects, listings and bucket
 * information; the root-only operations stay root's whatever a wildcard action says.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "s3/policy.h"
#include "server/request.h"
#include "server/access.h"
#include "server/handlers_tagging.h"

typedef enum access_class {
    ACCESS_BUCKET_INFO, /* HeadBucket, GetBucketLocation, GetBucketVersioning */
    ACCESS_LIST,
    ACCESS_READ,
    ACCESS_WRITE,
    ACCESS_DELETE,
    ACCESS_ROOT,
    ACCESS_ANY, /* ListBuckets: answered per principal by the handler */
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
    case CF_S3_OP_LIST_PARTS: return ACCESS_WRITE;
    /* Retagging changes an existing object, and tags decide access (s3:ExistingObjectTag): a
     * writeonly key tags what it creates, in its PUT, and nothing else. */
    case CF_S3_OP_PUT_OBJECT_TAGGING:
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

/* What the principal's own grant allows, bucket policies aside: everything for root, the key
 * policy for a key, nothing for an anonymous request. */
static int key_policy_allows(const cf_request *r, cf_s3_op op, const char *bucket, const char *key,
                             size_t keylen)
{
    if (r->principal == CF_PRINCIPAL_ROOT)
        return 1;
    if (r->principal != CF_PRINCIPAL_KEY)
        return 0;
    access_class c = class_of(op);
    if (c == ACCESS_ANY)
        return 1;
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

/* ---- bucket policies ---- */

/* The IAM action op needs, when a bucket policy has a say in it (AWS's "Required permissions
 * for Amazon S3 API operations"). */
static int policy_action_of(cf_s3_op op, int versioned, cf_policy_action *a)
{
    /* Naming a version, even "null", asks for the *Version action instead (AWS: GetObject
     * with versionId needs s3:GetObjectVersion), so that a grant of the current object does not
     * reach its versions. */
    if (versioned) {
        switch (op) {
        case CF_S3_OP_GET_OBJECT:
        case CF_S3_OP_HEAD_OBJECT: *a = CF_POLICY_GET_OBJECT_VERSION; return 1;
        case CF_S3_OP_DELETE_OBJECT:
        case CF_S3_OP_DELETE_OBJECTS: *a = CF_POLICY_DELETE_OBJECT_VERSION; return 1;
        case CF_S3_OP_GET_OBJECT_TAGGING: *a = CF_POLICY_GET_OBJECT_VERSION_TAGGING; return 1;
        case CF_S3_OP_PUT_OBJECT_TAGGING: *a = CF_POLICY_PUT_OBJECT_VERSION_TAGGING; return 1;
        case CF_S3_OP_DELETE_OBJECT_TAGGING: *a = CF_POLICY_DELETE_OBJECT_VERSION_TAGGING; return 1;
        default: break;
        }
    }
    switch (op) {
    case CF_S3_OP_HEAD_BUCKET:
    case CF_S3_OP_LIST_OBJECTS:
    case CF_S3_OP_LIST_OBJECTS_V2: *a = CF_POLICY_LIST_BUCKET; return 1;
    case CF_S3_OP_LIST_OBJECT_VERSIONS: *a = CF_POLICY_LIST_BUCKET_VERSIONS; return 1;
    case CF_S3_OP_LIST_MULTIPART_UPLOADS: *a = CF_POLICY_LIST_BUCKET_MULTIPART_UPLOADS; return 1;
    case CF_S3_OP_GET_BUCKET_LOCATION: *a = CF_POLICY_GET_BUCKET_LOCATION; return 1;
    case CF_S3_OP_GET_BUCKET_VERSIONING: *a = CF_POLICY_GET_BUCKET_VERSIONING; return 1;
    case CF_S3_OP_GET_OBJECT:
    case CF_S3_OP_HEAD_OBJECT: *a = CF_POLICY_GET_OBJECT; return 1;
    case CF_S3_OP_PUT_OBJECT:
    case CF_S3_OP_COPY_OBJECT:
    case CF_S3_OP_CREATE_MULTIPART_UPLOAD:
    case CF_S3_OP_UPLOAD_PART:
    case CF_S3_OP_UPLOAD_PART_COPY:
    case CF_S3_OP_COMPLETE_MULTIPART_UPLOAD: *a = CF_POLICY_PUT_OBJECT; return 1;
    case CF_S3_OP_ABORT_MULTIPART_UPLOAD: *a = CF_POLICY_ABORT_MULTIPART_UPLOAD; return 1;
    case CF_S3_OP_LIST_PARTS: *a = CF_POLICY_LIST_MULTIPART_UPLOAD_PARTS; return 1;
    case CF_S3_OP_DELETE_OBJECT:
    case CF_S3_OP_DELETE_OBJECTS: *a = CF_POLICY_DELETE_OBJECT; return 1;
    case CF_S3_OP_GET_OBJECT_TAGGING: *a = CF_POLICY_GET_OBJECT_TAGGING; return 1;
    case CF_S3_OP_PUT_OBJECT_TAGGING: *a = CF_POLICY_PUT_OBJECT_TAGGING; return 1;
    case CF_S3_OP_DELETE_OBJECT_TAGGING: *a = CF_POLICY_DELETE_OBJECT_TAGGING; return 1;
    default: return 0;
    }
}

/* Parsed policies shared by all requests. Parsing costs about 0.7 ms for a 20 KB policy
 * (jansson builds a table per object), reading the stored bytes about a microsecond; so each
 * request reads the bytes, which stay the truth, and parses them only when they differ from
 * the slot's. A few slots bound the memory: a bucket beyond them is parsed per request. */
#define POLICY_CACHE_SLOTS 16

typedef struct shared_policy {
    int refs; /* the slot's and each request's; under the cache's mutex */
    char bucket[64];
    char *json;
    size_t len;
    cf_policy *policy;
} shared_policy;

struct cf_policy_cache {
    pthread_mutex_t mu;
    shared_policy *slots[POLICY_CACHE_SLOTS];
    size_t next; /* the slot the next new bucket takes */
};

static void shared_release(shared_policy *s)
{
    if (s && --s->refs == 0) {
        cf_policy_free(s->policy);
        free(s->json);
        free(s);
    }
}

void cf_policy_cache_free(struct cf_policy_cache *pc)
{
    if (!pc)
        return;
    for (size_t i = 0; i < POLICY_CACHE_SLOTS; i++)
        shared_release(pc->slots[i]);
    pthread_mutex_destroy(&pc->mu);
    free(pc);
}

static struct cf_policy_cache *policy_cache(cf_server *srv)
{
    _Atomic(struct cf_policy_cache *) *slot = (_Atomic(struct cf_policy_cache *) *)&srv->policy_cache;
    struct cf_policy_cache *pc = atomic_load(slot), *none = NULL;
    if (pc)
        return pc;
    if (!(pc = calloc(1, sizeof *pc)))
        return NULL;
    pthread_mutex_init(&pc->mu, NULL);
    if (atomic_compare_exchange_strong(slot, &none, pc))
        return pc;
    cf_policy_cache_free(pc); /* another request made it first */
    return none;
}

/* The policy stored as json (len bytes, taken) for bucket, shared; NULL with err when it cannot
 * be parsed. */
static shared_policy *share_policy(cf_server *srv, const char *bucket, char *json, size_t len, cf_err *err)
{
    struct cf_policy_cache *pc = policy_cache(srv);
    if (pc) {
        pthread_mutex_lock(&pc->mu);
        for (size_t i = 0; i < POLICY_CACHE_SLOTS; i++) {
            shared_policy *s = pc->slots[i];
            if (s && strcmp(s->bucket, bucket) == 0 && s->len == len && memcmp(s->json, json, len) == 0) {
                s->refs++;
                pthread_mutex_unlock(&pc->mu);
                free(json);
                return s;
            }
        }
        pthread_mutex_unlock(&pc->mu);
    }
    shared_policy *s = calloc(1, sizeof *s);
    if (!s || cf_policy_parse(json, len, bucket, NULL, NULL, &s->policy, err) != 0) {
        if (!s)
            cf_err_set(err, CF_ENOMEM, "out of memory");
        free(s);
        free(json);
        return NULL;
    }
    snprintf(s->bucket, sizeof s->bucket, "%s", bucket);
    s->json = json;
    s->len = len;
    s->refs = 1;
    if (pc) {
        pthread_mutex_lock(&pc->mu);
        size_t i = 0;
        while (i < POLICY_CACHE_SLOTS && !(pc->slots[i] && strcmp(pc->slots[i]->bucket, bucket) == 0))
            i++;
        if (i == POLICY_CACHE_SLOTS)
            i = pc->next++ % POLICY_CACHE_SLOTS;
        shared_release(pc->slots[i]);
        pc->slots[i] = s;
        s->refs++;
        pthread_mutex_unlock(&pc->mu);
    }
    return s;
}

/* The last bucket policy a request read: DeleteObjects decides up to 1,000 keys against it. */
struct cf_access_cache {
    char bucket[64];
    shared_policy *shared; /* NULL: the bucket has none */
    int unreadable;        /* the stored policy cannot be read: refuse all but root */
};

static void forget_policy(cf_request *r)
{
    struct cf_access_cache *c = r->access_cache;
    if (!c || !c->shared)
        return;
    struct cf_policy_cache *pc = policy_cache(r->srv);
    if (pc)
        pthread_mutex_lock(&pc->mu);
    shared_release(c->shared);
    if (pc)
        pthread_mutex_unlock(&pc->mu);
    c->shared = NULL;
}

void cf_access_cleanup(cf_request *r)
{
    forget_policy(r);
    free(r->access_cache);
    r->access_cache = NULL;
}

static const cf_policy *bucket_policy(cf_request *r, const char *bucket, int *unreadable)
{
    struct cf_access_cache *c = r->access_cache;
    *unreadable = 1;
    if (!c && !(c = r->access_cache = calloc(1, sizeof *c)))
        return NULL;
    if (strcmp(c->bucket, bucket) != 0 || !c->bucket[0]) {
        forget_policy(r);
        c->unreadable = 0;
        snprintf(c->bucket, sizeof c->bucket, "%s", bucket);
        char name[80], *json = NULL;
        size_t len = 0;
        cf_err err;
        snprintf(name, sizeof name, "policy/%s", bucket);
        /* Not a bucket name (empty, too long): no bucket, so no policy. */
        int rc = *bucket && strlen(bucket) < sizeof c->bucket
                     ? cf_store_meta_get(r->srv->store, name, &json, &len, &err)
                     : CF_ENOTFOUND;
        if (rc == 0 && !(c->shared = share_policy(r->srv, bucket, json, len, &err)))
            rc = err.code ? err.code : CF_EINVAL;
        if (rc && rc != CF_ENOTFOUND) {
            cf_log(&r->srv->log, CF_LOG_ERROR, "bucket policy unreadable; refusing all but root", "id",
                   r->request_id, "bucket", bucket, "error", err.msg, NULL);
            c->unreadable = 1;
        }
    }
    *unreadable = c->unreadable;
    return c->shared ? c->shared->policy : NULL;
}

/* The request's condition keys (policy.h). aws:SourceIp is the TCP peer: an X-Forwarded-For
 * header is the client's word, and anyone can send one. */
/* The object's tags, read when a condition first asks (s3:ExistingObjectTag/TAG). */
typedef struct object_tags {
    cf_server *srv;
    const char *bucket, *key;
    size_t keylen;
    int loaded, failed;
    char *stored; /* CF_TAGGING_HEADER: "k1=v1&k2=v2", each part percent-encoded */
    cf_buf value;
} object_tags;

typedef struct policy_context {
    cf_policy_request q;
    char ip[INET6_ADDRSTRLEN];
    char now[24], epoch[24];
    cf_buf prefix, delimiter;
    object_tags tags;
} policy_context;

static const char *object_tag(void *ctx, const char *tag)
{
    object_tags *t = ctx;
    if (!t->loaded) {
        t->loaded = 1;
        cf_object_info info = {0};
        cf_err err;
        int rc = cf_store_object_get(t->srv->store, t->bucket, t->key, t->keylen, &info, NULL, NULL, &err);
        const char *h = rc == 0 ? cf_object_info_header(&info, CF_TAGGING_HEADER) : NULL;
        t->stored = h ? strdup(h) : NULL;
        /* No object, no tags; a store that cannot say must not pass for "no such tag", which a
         * Deny on StringEquals would read as leave to proceed. */
        t->failed = (rc && rc != CF_ENOTFOUND) || (h && !t->stored);
        cf_object_info_cleanup(&info);
    }
    cf_buf name;
    cf_buf_init(&name, 1024);
    const char *found = NULL;
    for (const char *p = t->stored; p && *p && !found;) {
        const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        name.len = 0;
        if (cf_s3_url_decode(&name, p, (size_t)((eq ? eq : end) - p)) == 0 && cf_buf_putc(&name, '\0') == 0 &&
            strcmp(name.data, tag) == 0) {
            t->value.len = 0;
            if (cf_s3_url_decode(&t->value, eq ? eq + 1 : end, (size_t)(end - (eq ? eq + 1 : end))) == 0 &&
                cf_buf_putc(&t->value, '\0') == 0)
                found = t->value.data;
            else
                t->failed = 1;
        }
        p = amp ? amp + 1 : end;
    }
    cf_buf_cleanup(&name);
    return found;
}

/* A listing parameter, percent-decoded as the handler reads it; -1 when it cannot be a string
 * (bad escape, or a NUL that would hide what follows it from the conditions). */
static int decoded_param(const cf_request *r, const char *name, cf_buf *b, const char **out)
{
    const char *v = cf_request_param(r, name);
    *out = NULL;
    if (!v)
        return 0;
    if (cf_s3_url_decode(b, v, strlen(v)) != 0 || (b->len && memchr(b->data, '\0', b->len)) ||
        cf_buf_putc(b, '\0') != 0)
        return -1;
    *out = b->data;
    return 0;
}

static int context_init(policy_context *x, const cf_request *r, cf_s3_op op, cf_policy_action action,
                        const char *key, size_t keylen)
{
    memset(&x->q, 0, sizeof x->q);
    memset(&x->tags, 0, sizeof x->tags);
    cf_buf_init(&x->tags.value, 1024);
    x->q.action = action;
    x->q.principal = r->principal == CF_PRINCIPAL_KEY ? r->grant.access_key : NULL;
    x->q.key = key ? key : "";
    x->q.keylen = key ? keylen : 0;
    const char **v = x->q.values;

    const struct sockaddr *sa = r->http ? cf_http_client_address(r->http) : NULL;
    if (sa && sa->sa_family == AF_INET &&
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, x->ip, sizeof x->ip))
        v[CF_POLICY_KEY_SOURCE_IP] = x->ip;
    else if (sa && sa->sa_family == AF_INET6 &&
             inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, x->ip, sizeof x->ip))
        v[CF_POLICY_KEY_SOURCE_IP] = x->ip;

    time_t now = cf_clock_time(r->srv->clock);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(x->now, sizeof x->now, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    snprintf(x->epoch, sizeof x->epoch, "%lld", (long long)now);
    v[CF_POLICY_KEY_CURRENT_TIME] = x->now;
    v[CF_POLICY_KEY_EPOCH_TIME] = x->epoch;
    v[CF_POLICY_KEY_USER_AGENT] = cf_request_header(r, "User-Agent");
    v[CF_POLICY_KEY_REFERER] = cf_request_header(r, "Referer");
    v[CF_POLICY_KEY_ACL] = cf_request_header(r, "x-amz-acl");
    if (r->principal != CF_PRINCIPAL_ANONYMOUS)
        v[CF_POLICY_KEY_SIGNATURE_VERSION] = "AWS4-HMAC-SHA256";

    cf_buf_init(&x->prefix, CF_S3_MAX_KEY_LEN * 3 + 1);
    cf_buf_init(&x->delimiter, CF_S3_MAX_KEY_LEN * 3 + 1);
    if (op != CF_S3_OP_LIST_OBJECTS && op != CF_S3_OP_LIST_OBJECTS_V2 &&
        op != CF_S3_OP_LIST_OBJECT_VERSIONS && op != CF_S3_OP_LIST_MULTIPART_UPLOADS)
        return 0;
    v[CF_POLICY_KEY_MAX_KEYS] = cf_request_param(r, "max-keys");
    if (decoded_param(r, "prefix", &x->prefix, &v[CF_POLICY_KEY_PREFIX]) != 0 ||
        decoded_param(r, "delimiter", &x->delimiter, &v[CF_POLICY_KEY_DELIMITER]) != 0)
        return -1;
    return 0;
}

static void context_cleanup(policy_context *x)
{
    cf_buf_cleanup(&x->prefix);
    cf_buf_cleanup(&x->delimiter);
    cf_buf_cleanup(&x->tags.value);
    free(x->tags.stored);
}

/* The bucket policy combined with the principal's own grant (see the top of the file). */
static int decide(cf_request *r, cf_s3_op op, cf_policy_action action, const char *bucket, const char *key,
                  size_t keylen)
{
    int own = key_policy_allows(r, op, bucket, key, keylen);
    if (r->principal == CF_PRINCIPAL_ROOT)
        return 1;
    int unreadable;
    const cf_policy *policy = bucket_policy(r, bucket, &unreadable);
    if (unreadable)
        return 0;
    /* A key too long to store fails with KeyTooLongError next; it is never matched against
     * patterns, which keeps the matching cost at 1,024 bytes times the pattern. */
    if (!policy || keylen > CF_S3_MAX_KEY_LEN)
        return own;
    policy_context x;
    int ok = context_init(&x, r, op, action, key, keylen) == 0;
    /* AWS sets s3:ExistingObjectTag for the actions on an existing object's data and tags. */
    if (cf_policy_uses_object_tags(policy) &&
        (action == CF_POLICY_GET_OBJECT || action == CF_POLICY_GET_OBJECT_TAGGING ||
         action == CF_POLICY_PUT_OBJECT_TAGGING || action == CF_POLICY_DELETE_OBJECT_TAGGING ||
         action == CF_POLICY_GET_OBJECT_VERSION || action == CF_POLICY_GET_OBJECT_VERSION_TAGGING ||
         action == CF_POLICY_PUT_OBJECT_VERSION_TAGGING ||
         action == CF_POLICY_DELETE_OBJECT_VERSION_TAGGING)) {
        x.tags = (object_tags){r->srv, bucket, key ? key : "", key ? keylen : 0, 0, 0, NULL, x.tags.value};
        x.q.object_tag = object_tag;
        x.q.object_tag_ctx = &x.tags;
    }
    cf_policy_effect e = ok ? cf_policy_evaluate(policy, &x.q) : CF_POLICY_DENIED;
    if (x.tags.failed)
        e = CF_POLICY_DENIED;
    context_cleanup(&x);
    return e != CF_POLICY_DENIED && (own || e == CF_POLICY_ALLOWED);
}

int cf_access_allows_version(cf_request *r, cf_s3_op op, const char *bucket, const char *key, size_t keylen,
                             int versioned)
{
    cf_policy_action action;
    if (!policy_action_of(op, versioned, &action))
        return key_policy_allows(r, op, bucket, key, keylen);
    return decide(r, op, action, bucket, key, keylen);
}

int cf_access_allows(cf_request *r, cf_s3_op op, const char *bucket, const char *key, size_t keylen)
{
    return cf_access_allows_version(r, op, bucket, key, keylen, 0);
}

int cf_access_check(cf_request *r, cf_err *refusal)
{
    /* A preflight is unauthenticated, as browsers send it; a form upload is signed inside its
     * body, and handlers_post.c applies this file's rules to its signer once that is known. */
    if (r->principal == CF_PRINCIPAL_ROOT || r->op == CF_S3_OP_CORS_PREFLIGHT ||
        r->op == CF_S3_OP_POST_OBJECT)
        return 0;
    if (r->op == CF_S3_OP_DELETE_OBJECTS) {
        /* Each key is decided by the handler; let in whoever some key could be deleted for. */
        if (key_policy_allows(r, r->op, r->bucket, NULL, 0))
            return 0;
        int unreadable;
        const cf_policy *policy = bucket_policy(r, r->bucket, &unreadable);
        const char *principal = r->principal == CF_PRINCIPAL_KEY ? r->grant.access_key : NULL;
        if (policy && !unreadable &&
            (cf_policy_may_allow(policy, CF_POLICY_DELETE_OBJECT, principal) ||
             cf_policy_may_allow(policy, CF_POLICY_DELETE_OBJECT_VERSION, principal)))
            return 0;
        return cf_s3_refuse(refusal, CF_S3_AccessDenied, NULL);
    }
    if (!cf_access_allows_version(r, r->op, r->bucket, r->key, r->keylen,
                                  cf_request_param(r, "versionId") != NULL))
        return cf_s3_refuse(refusal, CF_S3_AccessDenied, NULL);
    /* Tags set along with the object need s3:PutObjectTagging as well (as on AWS), or a Deny
     * of tagging would be side-stepped by a PUT with x-amz-tagging. */
    int writes_tags = r->op == CF_S3_OP_PUT_OBJECT || r->op == CF_S3_OP_COPY_OBJECT ||
                      r->op == CF_S3_OP_CREATE_MULTIPART_UPLOAD;
    if (writes_tags && cf_request_header(r, "x-amz-tagging") &&
        !cf_access_allows_tags_on_write(r, r->op, r->bucket, r->key, r->keylen))
        return cf_s3_refuse(refusal, CF_S3_AccessDenied, NULL);
    return 0;
}

int cf_access_allows_tags_on_write(cf_request *r, cf_s3_op write_op, const char *bucket, const char *key,
                                   size_t keylen)
{
    return decide(r, write_op, CF_POLICY_PUT_OBJECT_TAGGING, bucket, key, keylen);
}

int cf_access_create_only(const cf_request *r)
{
    return r->principal == CF_PRINCIPAL_KEY && strcmp(r->grant.policy, "writeonly") == 0;
}
