/* handlers_bucket.c - ListBuckets, Create/Head/DeleteBucket, ListObjects v1 and v2, location. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "crypto/hash.h"
#include "s3/xml.h"
#include "server/request.h"
#include "server/access.h"
#include "server/body.h"
#include "server/handlers_bucket.h"
#include "server/response.h"

#define LIST_MAX_KEYS 1000
#define LIST_MAX_BUCKETS 10000 /* AWS's page size for ListBuckets */

static int store_error(cf_request *r, const cf_err *err)
{
    return cf_respond_failure(r, err, CF_S3_ON_BUCKET, 0);
}

void cf_owner_xml(cf_request *r, cf_buf *b, const char *elem)
{
    cf_xml_open(b, elem);
    cf_xml_elem(b, "ID", r->srv->root.access_key);
    cf_xml_elem(b, "DisplayName", r->srv->root.access_key);
    cf_xml_close(b, elem);
}

static int decode_token(const char *token, cf_buf *out);

/* ListBuckets with the 2024 paging parameters (max-buckets, continuation-token, prefix,
 * bucket-region); without them, every bucket in one answer, as before. */
int cf_handle_list_buckets(cf_request *r)
{
    const char *prefix = cf_request_param(r, "prefix");
    const char *region = cf_request_param(r, "bucket-region");
    const char *max_s = cf_request_param(r, "max-buckets");
    const char *token = cf_request_param(r, "continuation-token");
    long max = LIST_MAX_BUCKETS;
    if (max_s) {
        char *end;
        max = strtol(max_s, &end, 10);
        if (!*max_s || *end || max < 1 || max > LIST_MAX_BUCKETS) {
            return cf_respond_invalid_argument(r, "max-buckets must be 1 to 10000", "max-buckets", max_s);
        }
    }
    cf_buf dec_prefix, after, tok;
    cf_buf_init(&dec_prefix, 4096);
    cf_buf_init(&after, 4096);
    cf_buf_init(&tok, 4096);
    if ((prefix && cf_s3_url_decode(&dec_prefix, prefix, strlen(prefix)) != 0) ||
        (token && (cf_s3_url_decode(&tok, token, strlen(token)) != 0 || !tok.data ||
                   decode_token(tok.data, &after) != 0))) {
        cf_buf_cleanup(&dec_prefix);
        cf_buf_cleanup(&after);
        cf_buf_cleanup(&tok);
        return cf_respond_error(r, CF_S3_InvalidArgument, "the prefix or continuation token is not valid");
    }
    const char *want_prefix = dec_prefix.data ? dec_prefix.data : "";
    const char *from = after.data ? after.data : "";
    cf_store_bucket *list = NULL;
    size_t n = 0;
    cf_err err;
    if (cf_store_bucket_list(r->srv->store, &list, &n, &err) != 0) {
        cf_buf_cleanup(&dec_prefix);
        cf_buf_cleanup(&after);
        cf_buf_cleanup(&tok);
        return store_error(r, &err);
    }
    cf_buf b;
    cf_buf_init(&b, (size_t)64 << 20);
    cf_buf_puts(&b, CF_XML_DECL "<ListAllMyBucketsResult xmlns=\"" CF_S3_XMLNS "\">");
    cf_owner_xml(r, &b, "Owner");
    cf_xml_open(&b, "Buckets");
    long listed = 0;
    const char *last = NULL;
    int more = 0;
    for (size_t i = 0; i < n; i++) {
        char date[25];
        /* A key scoped to one bucket sees only that one. */
        if (r->principal == CF_PRINCIPAL_KEY && r->grant.bucket[0] &&
            strcmp(r->grant.bucket, list[i].name) != 0)
            continue;
        if (strncmp(list[i].name, want_prefix, strlen(want_prefix)) != 0 || strcmp(list[i].name, from) <= 0 ||
            (region && strcmp(region, r->srv->region) != 0))
            continue;
        if (listed == max) {
            more = 1;
            break;
        }
        cf_s3_iso8601(list[i].created_ns, date);
        cf_xml_open(&b, "Bucket");
        cf_xml_elem(&b, "Name", list[i].name);
        cf_xml_elem(&b, "CreationDate", date);
        cf_xml_elem(&b, "BucketRegion", r->srv->region);
        cf_xml_close(&b, "Bucket");
        last = list[i].name;
        listed++;
    }
    cf_xml_close(&b, "Buckets");
    if (more && last) {
        char next[4 * ((sizeof list[0].name + 2) / 3) + 1];
        cf_base64_encode((const unsigned char *)last, strlen(last), next);
        cf_xml_elem(&b, "ContinuationToken", next);
    }
    if (prefix)
        cf_xml_elem(&b, "Prefix", want_prefix);
    cf_xml_close(&b, "ListAllMyBucketsResult");
    free(list);
    cf_buf_cleanup(&dec_prefix);
    cf_buf_cleanup(&after);
    cf_buf_cleanup(&tok);
    return cf_respond_xml(r, 200, &b);
}

int cf_handle_create_bucket(cf_request *r)
{
    if (!cf_s3_bucket_name_valid(r->bucket))
        return cf_respond_error(r, CF_S3_InvalidBucketName, NULL);
    /* A backup tool that asks for Object Lock relies on it to keep its backups undeletable:
     * a bucket made without it must not look like the answer. */
    const char *lock = cf_request_header(r, "x-amz-bucket-object-lock-enabled");
    if (lock && strcasecmp(lock, "true") == 0)
        return cf_respond_error(r, CF_S3_NotImplemented, "Object Lock is not implemented by coffer server");
    if (r->small.len) {
        cf_xml_node *root = NULL;
        cf_err err;
        if (cf_xml_parse(r->small.data, r->small.len, &root, &err) != 0 ||
            strcmp(root->name, "CreateBucketConfiguration") != 0) {
            cf_xml_free(root);
            return cf_respond_error(r, CF_S3_MalformedXML, NULL);
        }
        /* A bucket asked for in another region would not be there: AWS refuses it. (AWS also
         * refuses an explicit us-east-1 at us-east-1, which clients trip over; we take it.) */
        const cf_xml_node *where = cf_xml_child(root, "LocationConstraint");
        if (where && where->text[0] && strcmp(where->text, r->srv->region) != 0) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "The %.64s location constraint is incompatible for the region specific endpoint this "
                     "request was sent to.",
                     where->text);
            const cf_s3_error_field f[] = {{"BucketName", r->bucket}};
            int rc =
                cf_respond_error_fields(r, CF_S3_IllegalLocationConstraintException, msg, f, 1, NULL, NULL);
            cf_xml_free(root);
            return rc;
        }
        cf_xml_free(root);
    }
    cf_err err;
    if (cf_store_bucket_create(r->srv->store, r->bucket, &err) != 0)
        return store_error(r, &err);
    cf_http_response *resp = cf_http_body_empty();
    if (resp) {
        char loc[80];
        snprintf(loc, sizeof loc, "/%s", r->bucket);
        cf_http_add_header(resp, "Location", loc);
    }
    return cf_respond(r, 200, resp);
}

int cf_handle_head_bucket(cf_request *r)
{
    cf_err err;
    if (cf_store_bucket_exists(r->srv->store, r->bucket, &err) != 0)
        return store_error(r, &err);
    cf_http_response *resp = cf_http_body_empty();
    if (resp)
        cf_http_add_header(resp, "x-amz-bucket-region", r->srv->region);
    return cf_respond(r, 200, resp);
}

int cf_handle_delete_bucket(cf_request *r)
{
    cf_err err;
    if (cf_store_bucket_delete(r->srv->store, r->bucket, &err) != 0)
        return store_error(r, &err);
    return cf_respond_empty(r, 204);
}

int cf_handle_bucket_location(cf_request *r)
{
    cf_err err;
    if (cf_store_bucket_exists(r->srv->store, r->bucket, &err) != 0)
        return store_error(r, &err);
    cf_buf b;
    cf_buf_init(&b, 4096);
    cf_buf_puts(&b, CF_XML_DECL "<LocationConstraint xmlns=\"" CF_S3_XMLNS "\">");
    /* AWS answers us-east-1 with an empty constraint; clients map that back themselves. */
    if (strcmp(r->srv->region, "us-east-1") != 0)
        cf_xml_escape(&b, r->srv->region, strlen(r->srv->region));
    cf_buf_puts(&b, "</LocationConstraint>");
    return cf_respond_xml(r, 200, &b);
}

static int list_objects(cf_request *r, int v2, int versions);

typedef struct listing {
    cf_request *r;
    cf_buf contents;
    cf_buf prefixes;
    int url_encode;
    int v2;
    int versions; /* ListObjectVersions: every object is its own "null" version */
    int fetch_owner;
    size_t keys;
    size_t prefixes_count;
    int failed;
} listing;

/* Appends text, URL-encoded when the client asked for encoding-type=url. */
static int put_name(listing *l, cf_buf *b, const char *name, const char *text, size_t len)
{
    if (!l->url_encode) {
        cf_xml_open(b, name);
        cf_xml_escape(b, text, len);
        return cf_xml_close(b, name);
    }
    cf_buf enc;
    cf_buf_init(&enc, 16384);
    int rc = cf_s3_url_encode_key(&enc, text, len);
    cf_xml_open(b, name);
    if (!rc && enc.data)
        cf_xml_escape(b, enc.data, enc.len);
    cf_xml_close(b, name);
    cf_buf_cleanup(&enc);
    return rc;
}

static int list_entry(void *ctx, const cf_store_list_entry *e)
{
    listing *l = ctx;
    if (e->is_prefix) {
        l->prefixes_count++;
        cf_xml_open(&l->prefixes, "CommonPrefixes");
        put_name(l, &l->prefixes, "Prefix", e->key, e->keylen);
        return cf_xml_close(&l->prefixes, "CommonPrefixes");
    }
    char date[25];
    cf_s3_iso8601(e->info->mtime_ns, date);
    cf_buf *b = &l->contents;
    l->keys++;
    cf_xml_open(b, l->versions ? "Version" : "Contents");
    put_name(l, b, "Key", e->key, e->keylen);
    if (l->versions) {
        cf_xml_elem(b, "VersionId", "null");
        cf_xml_elem(b, "IsLatest", "true");
    }
    cf_xml_elem(b, "LastModified", date);
    cf_buf_printf(b, "<ETag>&quot;%s&quot;</ETag>", e->info->etag);
    cf_xml_elem_u64(b, "Size", e->info->size);
    if (!l->v2 || l->fetch_owner)
        cf_owner_xml(l->r, b, "Owner");
    cf_xml_elem(b, "StorageClass", "STANDARD");
    return cf_xml_close(b, l->versions ? "Version" : "Contents");
}

/* Continuation tokens are the base64 of the last key returned: opaque to clients, and
 * stateless for us (any server restart keeps them valid). */
static int decode_token(const char *token, cf_buf *out)
{
    size_t len = strlen(token);
    unsigned char *raw = malloc(len + 1);
    if (!raw)
        return CF_ENOMEM;
    long n = cf_base64_decode(token, len, raw, len);
    int rc = n < 0 ? CF_EINVAL : cf_buf_append(out, raw, (size_t)n);
    free(raw);
    return rc;
}

int cf_handle_list_objects(cf_request *r, int v2)
{
    return list_objects(r, v2, 0);
}

/* An unversioned bucket answers with each object as its only, "null", version. */
int cf_handle_list_object_versions(cf_request *r)
{
    return list_objects(r, 0, 1);
}

static int list_objects(cf_request *r, int v2, int versions)
{
    const char *prefix = cf_request_param(r, "prefix");
    const char *delim = cf_request_param(r, "delimiter");
    const char *max_s = cf_request_param(r, "max-keys");
    const char *enc = cf_request_param(r, "encoding-type");
    const char *token = v2 ? cf_request_param(r, "continuation-token") : NULL;
    const char *start_after =
        v2 ? cf_request_param(r, "start-after") : cf_request_param(r, versions ? "key-marker" : "marker");
    const char *fetch_owner = cf_request_param(r, "fetch-owner");
    cf_buf dec_prefix, dec_delim, dec_after, tok;
    cf_buf_init(&tok, 8192);
    cf_buf_init(&dec_prefix, 4096);
    cf_buf_init(&dec_delim, 4096);
    cf_buf_init(&dec_after, 4096);
    listing l = {.r = r,
                 .v2 = v2,
                 .versions = versions,
                 .fetch_owner = fetch_owner && strcmp(fetch_owner, "true") == 0};
    cf_buf_init(&l.contents, (size_t)64 << 20);
    cf_buf_init(&l.prefixes, (size_t)64 << 20);
    char *next = NULL;
    size_t nextlen = 0;
    int truncated = 0, rc;

    long max_keys = LIST_MAX_KEYS;
    if (max_s) {
        char *end;
        max_keys = strtol(max_s, &end, 10);
        if (!*max_s || *end || max_keys < 0) {
            rc = cf_respond_invalid_argument(r, "max-keys must be a non-negative integer", "max-keys", max_s);
            goto out;
        }
        if (max_keys > LIST_MAX_KEYS)
            max_keys = LIST_MAX_KEYS;
    }
    if (enc && strcmp(enc, "url") != 0) {
        rc = cf_respond_invalid_argument(r, "Invalid Encoding Method specified in Request", "encoding-type",
                                         enc);
        goto out;
    }
    l.url_encode = enc != NULL;
    /* MHD leaves query values raw (see keep_raw in server.c): decode them here. */
    if ((prefix && cf_s3_url_decode(&dec_prefix, prefix, strlen(prefix))) ||
        (delim && cf_s3_url_decode(&dec_delim, delim, strlen(delim))) ||
        (start_after && cf_s3_url_decode(&dec_after, start_after, strlen(start_after)))) {
        rc = cf_respond_error(r, CF_S3_InvalidArgument, "a listing parameter is not valid percent-encoding");
        goto out;
    }
    cf_buf after;
    cf_buf_init(&after, 8192);
    if (token) {
        int bad =
            cf_s3_url_decode(&tok, token, strlen(token)) || !tok.data || decode_token(tok.data, &after) != 0;
        if (bad) {
            cf_buf_cleanup(&after);
            rc = cf_respond_invalid_argument(r, "The continuation token provided is incorrect",
                                             "continuation-token", token);
            goto out;
        }
    }
    /* v2: the token wins over start-after, which only applies to the first page. */
    const char *from = token ? after.data : dec_after.data;
    size_t fromlen = token ? after.len : dec_after.len;

    cf_err err;
    if (max_keys > 0) {
        if (cf_store_list(r->srv->store, r->bucket, dec_prefix.data ? dec_prefix.data : "", dec_prefix.len,
                          dec_delim.data, dec_delim.len, from, fromlen, (size_t)max_keys, list_entry, &l,
                          &truncated, &next, &nextlen, &err) != 0) {
            cf_buf_cleanup(&after);
            rc = store_error(r, &err);
            goto out;
        }
    } else if (cf_store_bucket_exists(r->srv->store, r->bucket, &err) != 0) {
        cf_buf_cleanup(&after);
        rc = store_error(r, &err);
        goto out;
    }

    cf_buf b;
    cf_buf_init(&b, (size_t)128 << 20);
    const char *root = versions ? "ListVersionsResult" : "ListBucketResult";
    cf_buf_printf(&b, CF_XML_DECL "<%s xmlns=\"" CF_S3_XMLNS "\">", root);
    cf_xml_elem(&b, "Name", r->bucket);
    put_name(&l, &b, "Prefix", dec_prefix.data ? dec_prefix.data : "", dec_prefix.len);
    if (v2) {
        if (token)
            cf_xml_elem(&b, "ContinuationToken", tok.data);
        if (start_after)
            put_name(&l, &b, "StartAfter", dec_after.data ? dec_after.data : "", dec_after.len);
        cf_xml_elem_u64(&b, "KeyCount", l.keys + l.prefixes_count);
    } else if (versions) {
        put_name(&l, &b, "KeyMarker", dec_after.data ? dec_after.data : "", dec_after.len);
        cf_xml_elem(&b, "VersionIdMarker", "");
    } else {
        put_name(&l, &b, "Marker", dec_after.data ? dec_after.data : "", dec_after.len);
    }
    cf_xml_elem_u64(&b, "MaxKeys", (unsigned long long)max_keys);
    if (delim)
        put_name(&l, &b, "Delimiter", dec_delim.data ? dec_delim.data : "", dec_delim.len);
    if (l.url_encode)
        cf_xml_elem(&b, "EncodingType", "url");
    cf_xml_elem(&b, "IsTruncated", truncated ? "true" : "false");
    if (truncated && next) {
        if (v2) {
            char *next_token = malloc(4 * ((nextlen + 2) / 3) + 1);
            if (next_token) {
                cf_base64_encode((const unsigned char *)next, nextlen, next_token);
                cf_xml_elem(&b, "NextContinuationToken", next_token);
                free(next_token);
            }
        } else if (versions) {
            put_name(&l, &b, "NextKeyMarker", next, nextlen);
            cf_xml_elem(&b, "NextVersionIdMarker", "null");
        } else if (delim) {
            /* v1 names the next marker only with a delimiter; without one, clients use the
             * last key, which is the same thing. */
            put_name(&l, &b, "NextMarker", next, nextlen);
        }
    }
    if (l.contents.data)
        cf_buf_append(&b, l.contents.data, l.contents.len);
    if (l.prefixes.data)
        cf_buf_append(&b, l.prefixes.data, l.prefixes.len);
    cf_xml_close(&b, root);
    cf_buf_cleanup(&after);
    rc = cf_respond_xml(r, 200, &b);
out:
    free(next);
    cf_buf_cleanup(&l.contents);
    cf_buf_cleanup(&l.prefixes);
    cf_buf_cleanup(&dec_prefix);
    cf_buf_cleanup(&dec_delim);
    cf_buf_cleanup(&dec_after);
    cf_buf_cleanup(&tok);
    return rc;
}

int cf_handle_bucket_versioning(cf_request *r)
{
    cf_err err;
    if (cf_store_bucket_exists(r->srv->store, r->bucket, &err) != 0)
        return store_error(r, &err);
    /* Never enabled: S3 then answers with an empty configuration (no <Status>). */
    cf_buf b;
    cf_buf_init(&b, 4096);
    cf_buf_puts(&b, CF_XML_DECL "<VersioningConfiguration xmlns=\"" CF_S3_XMLNS "\"/>");
    return cf_respond_xml(r, 200, &b);
}

#define DELETE_MAX_KEYS 1000

int cf_handle_delete_objects(cf_request *r)
{
    cf_xml_node *root = NULL;
    cf_err err;
    /* S3 requires an integrity check on this body: a flipped bit could delete the wrong key.
     * Both kinds were verified against the body before this handler runs (cf_body_complete);
     * x-amz-sdk-checksum-algorithm alone names an algorithm but carries no value to verify. */
    if (!cf_request_header(r, "Content-MD5") && !r->ck)
        return cf_respond_error(r, CF_S3_InvalidRequest,
                                "Missing required header for this request: Content-MD5");
    if (!r->small.len || cf_xml_parse(r->small.data, r->small.len, &root, &err) != 0 ||
        strcmp(root->name, "Delete") != 0) {
        cf_xml_free(root);
        return cf_respond_error(r, CF_S3_MalformedXML, NULL);
    }
    const cf_xml_node *quiet_n = cf_xml_child(root, "Quiet");
    int quiet = quiet_n && strcmp(quiet_n->text, "true") == 0;
    size_t count = 0;
    for (const cf_xml_node *c = root->child; c; c = c->next)
        if (strcmp(c->name, "Object") == 0) {
            const cf_xml_node *k = cf_xml_child(c, "Key");
            if (!k) {
                cf_xml_free(root);
                return cf_respond_error(r, CF_S3_MalformedXML, NULL);
            }
            count++;
        }
    if (count == 0 || count > DELETE_MAX_KEYS) {
        cf_xml_free(root);
        return cf_respond_error(r, CF_S3_MalformedXML, "Delete takes 1 to 1000 objects");
    }
    if (cf_store_bucket_exists(r->srv->store, r->bucket, &err) != 0) {
        cf_xml_free(root);
        return store_error(r, &err);
    }
    cf_buf b;
    cf_buf_init(&b, (size_t)16 << 20);
    cf_buf_puts(&b, CF_XML_DECL "<DeleteResult xmlns=\"" CF_S3_XMLNS "\">");
    for (const cf_xml_node *c = root->child; c; c = c->next) {
        if (strcmp(c->name, "Object") != 0)
            continue;
        const char *key = cf_xml_child(c, "Key")->text;
        size_t keylen = strlen(key);
        const cf_xml_node *vid = cf_xml_child(c, "VersionId");
        const char *code = NULL, *message = NULL;
        if (cf_s3_key_check(key, keylen) != 0 || keylen > CF_S3_MAX_KEY_LEN)
            code = "InvalidArgument", message = "object keys must be 1 to 1024 bytes of UTF-8";
        else if (!cf_access_allows_version(r, CF_S3_OP_DELETE_OBJECT, r->bucket, key, keylen, vid != NULL))
            code = "AccessDenied", message = "Access Denied.";
        else if (vid && strcmp(vid->text, "null") != 0)
            code = "NoSuchVersion", message = "The specified version does not exist.";
        else if (cf_store_object_delete(r->srv->store, r->bucket, key, keylen, &err) != 0) {
            cf_log(&r->srv->log, CF_LOG_ERROR, "delete failed", "id", r->request_id, "error", err.msg, NULL);
            code = "InternalError", message = "We encountered an internal error. Please try again.";
        }
        /* Each entry names the version the request named, as AWS does. */
        if (code) {
            cf_xml_open(&b, "Error");
            cf_xml_elem(&b, "Key", key);
            if (vid)
                cf_xml_elem(&b, "VersionId", vid->text);
            cf_xml_elem(&b, "Code", code);
            cf_xml_elem(&b, "Message", message);
            cf_xml_close(&b, "Error");
        } else if (!quiet) {
            cf_xml_open(&b, "Deleted");
            cf_xml_elem(&b, "Key", key);
            if (vid)
                cf_xml_elem(&b, "VersionId", vid->text);
            cf_xml_close(&b, "Deleted");
        }
    }
    cf_xml_close(&b, "DeleteResult");
    cf_xml_free(root);
    return cf_respond_xml(r, 200, &b);
}
