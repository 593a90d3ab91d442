/*
 * handlers_tagging.c - object tags: Put/Get/DeleteObjectTagging and x-amz-tagging on writes.
 *
 * Tags are kept with the object as one internal stored header, CF_TAGGING_HEADER, holding the
 * canonical query form "k1=v1&k2=v2" (each part percent-encoded), which is also the form of
 * the x-amz-tagging request header. Internal headers (x-coffer-*) are never replayed on GET.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "s3/xml.h"
#include "server/request.h"
#include "server/handlers_tagging.h"
#include "server/header_list.h"
#include "server/object_version.h"
#include "server/response.h"

#define MAX_TAGS 10
#define MAX_TAG_KEY 128 /* characters, as AWS counts them (we count UTF-8 code points) */
#define MAX_TAG_VALUE 256

typedef struct tag {
    char *key;
    char *value;
} tag;

typedef struct tag_set {
    tag tags[MAX_TAGS];
    size_t n;
} tag_set;

static void tag_set_cleanup(tag_set *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->tags[i].key);
        free(t->tags[i].value);
    }
    t->n = 0;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* GetObjectTagging answers in XML 1.0, which has no way to carry the other control characters
 * (not even as character references): a tag holding one made the tag set unreadable. */
static int xml_cannot_carry(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 1;
    return 0;
}

/* Adds one tag after checking AWS's rules; InvalidTag in refusal's detail, with the reason,
 * otherwise. */
static int tag_add(tag_set *t, const char *key, size_t klen, const char *value, size_t vlen, cf_err *refusal)
{
    if (t->n == MAX_TAGS)
        return cf_s3_err_set(refusal, CF_EINVAL, CF_S3_InvalidTag, "an object can have at most %d tags",
                             MAX_TAGS);
    char *k = strndup(key, klen), *v = strndup(value, vlen);
    if (!k || !v) {
        free(k);
        free(v);
        return cf_s3_refuse(refusal, CF_S3_InternalError, NULL);
    }
    int rc = 0;
    if (!*k || utf8_chars(k) > MAX_TAG_KEY || cf_s3_key_check(k, klen) != 0)
        rc = cf_s3_err_set(refusal, CF_EINVAL, CF_S3_InvalidTag,
                           "a tag key must be 1 to %d characters of UTF-8", MAX_TAG_KEY);
    else if (strncasecmp(k, "aws:", 4) == 0)
        rc = cf_s3_refuse(refusal, CF_S3_InvalidTag, "Your TagKey cannot be prefixed with aws:");
    else if (utf8_chars(v) > MAX_TAG_VALUE || (vlen && cf_s3_key_check(v, vlen) != 0))
        rc = cf_s3_err_set(refusal, CF_EINVAL, CF_S3_InvalidTag,
                           "a tag value must be at most %d characters of UTF-8", MAX_TAG_VALUE);
    else if (xml_cannot_carry(k, klen) || xml_cannot_carry(v, vlen))
        rc = cf_s3_refuse(refusal, CF_S3_InvalidTag, "a tag key or value holds a control character");
    for (size_t i = 0; !rc && i < t->n; i++)
        if (strcmp(t->tags[i].key, k) == 0)
            rc = cf_s3_err_set(refusal, CF_EINVAL, CF_S3_InvalidTag, "tag key '%.128s' appears twice", k);
    if (rc) {
        free(k);
        free(v);
        return rc;
    }
    t->tags[t->n++] = (tag){k, v};
    return 0;
}

/* Parses the query form of x-amz-tagging ("a=1&b=two%20words"; '+' is a space). */
static int parse_query(const char *q, tag_set *t, cf_err *refusal)
{
    int rc = 0;
    while (*q && !rc) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        if (n) {
            char *pair = strndup(q, n);
            if (!pair)
                return cf_s3_refuse(refusal, CF_S3_InternalError, NULL);
            for (char *c = pair; *c; c++)
                if (*c == '+')
                    *c = ' ';
            char *eq = strchr(pair, '=');
            cf_buf k, v;
            cf_buf_init(&k, 4096);
            cf_buf_init(&v, 4096);
            if (cf_s3_url_decode(&k, pair, eq ? (size_t)(eq - pair) : strlen(pair)) != 0 ||
                (eq && cf_s3_url_decode(&v, eq + 1, strlen(eq + 1)) != 0))
                rc = cf_s3_refuse(refusal, CF_S3_InvalidArgument,
                                  "x-amz-tagging is not valid percent-encoding");
            else
                rc = tag_add(t, k.data ? k.data : "", k.len, v.data ? v.data : "", v.len, refusal);
            cf_buf_cleanup(&k);
            cf_buf_cleanup(&v);
            free(pair);
        }
        q = amp ? amp + 1 : q + n;
    }
    return rc;
}

/* The canonical stored form; "" for no tags. Caller frees. */
static char *encode_tags(const tag_set *t)
{
    cf_buf b;
    cf_buf_init(&b, 64 << 10);
    int rc = cf_buf_puts(&b, "");
    for (size_t i = 0; !rc && i < t->n; i++) {
        if (i)
            rc = cf_buf_puts(&b, "&");
        if (!rc)
            rc = cf_s3_url_encode_key(&b, t->tags[i].key, strlen(t->tags[i].key));
        if (!rc)
            rc = cf_buf_puts(&b, "=");
        if (!rc)
            rc = cf_s3_url_encode_key(&b, t->tags[i].value, strlen(t->tags[i].value));
    }
    char *s = rc ? NULL : cf_buf_steal(&b, NULL);
    cf_buf_cleanup(&b);
    return s;
}

int cf_tagging_from_request(cf_request *r, cf_header_list *h, cf_err *refusal)
{
    const char *q = cf_request_header(r, "x-amz-tagging");
    if (!q)
        return 0;
    tag_set t = {0};
    int bad = parse_query(q, &t, refusal);
    char *enc = bad ? NULL : encode_tags(&t);
    tag_set_cleanup(&t);
    if (bad)
        return bad;
    int rc = enc ? cf_header_add(h, CF_TAGGING_HEADER, strlen(CF_TAGGING_HEADER), enc) : CF_ENOMEM;
    free(enc);
    return rc ? cf_s3_refuse(refusal, CF_S3_InternalError, NULL) : 0;
}

size_t cf_tagging_count(const char *stored)
{
    if (!stored || !*stored)
        return 0;
    size_t n = 1;
    for (; *stored; stored++)
        n += *stored == '&';
    return n;
}

static int store_failure(cf_request *r, const cf_err *err)
{
    cf_err e2;
    /* What is missing, the bucket or the key: the store's answer does not say. */
    int missing_bucket = cf_s3_error_of(err, CF_S3_ON_KEY) == CF_S3_NoSuchKey &&
                         cf_s3_error_for(cf_store_bucket_exists(r->srv->store, r->bucket, &e2),
                                         CF_S3_ON_BUCKET) == CF_S3_NoSuchBucket;
    return cf_respond_failure(r, err, missing_bucket ? CF_S3_ON_BUCKET : CF_S3_ON_KEY, 0);
}

int cf_handle_get_object_tagging(cf_request *r)
{
    int refused = cf_refuse_other_version(r);
    if (refused >= 0)
        return refused;
    cf_object_info info;
    cf_err err;
    int missing_bucket = 0;
    int rc =
        cf_store_object_get(r->srv->store, r->bucket, r->key, r->keylen, &info, NULL, &missing_bucket, &err);
    if (rc)
        return cf_respond_failure(r, &err, missing_bucket ? CF_S3_ON_BUCKET : CF_S3_ON_KEY, 0);
    tag_set t = {0};
    const char *stored = cf_object_info_header(&info, CF_TAGGING_HEADER);
    int bad = stored ? parse_query(stored, &t, NULL) : 0;
    cf_object_info_cleanup(&info);
    if (bad) {
        tag_set_cleanup(&t);
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    cf_buf b;
    cf_buf_init(&b, 64 << 10);
    cf_buf_puts(&b, CF_XML_DECL "<Tagging xmlns=\"" CF_S3_XMLNS "\"><TagSet>");
    for (size_t i = 0; i < t.n; i++) {
        cf_xml_open(&b, "Tag");
        cf_xml_elem(&b, "Key", t.tags[i].key);
        cf_xml_elem(&b, "Value", t.tags[i].value);
        cf_xml_close(&b, "Tag");
    }
    cf_buf_puts(&b, "</TagSet></Tagging>");
    tag_set_cleanup(&t);
    return cf_respond_xml(r, 200, &b);
}

int cf_tagging_from_xml(const char *xml, size_t len, char **enc, cf_err *refusal)
{
    cf_xml_node *root = NULL;
    cf_err err;
    *enc = NULL;
    if (!len || cf_xml_parse(xml, len, &root, &err) != 0 || strcmp(root->name, "Tagging") != 0) {
        cf_xml_free(root);
        return cf_s3_refuse(refusal, CF_S3_MalformedXML, NULL);
    }
    const cf_xml_node *set = cf_xml_child(root, "TagSet");
    tag_set t = {0};
    int rc = set ? 0 : cf_s3_refuse(refusal, CF_S3_MalformedXML, NULL);
    for (const cf_xml_node *c = set ? set->child : NULL; c && !rc; c = c->next) {
        if (strcmp(c->name, "Tag") != 0)
            continue;
        const cf_xml_node *k = cf_xml_child(c, "Key"), *v = cf_xml_child(c, "Value");
        if (!k || !v) {
            rc = cf_s3_refuse(refusal, CF_S3_MalformedXML, NULL);
            break;
        }
        rc = tag_add(&t, k->text, strlen(k->text), v->text, strlen(v->text), refusal);
    }
    cf_xml_free(root);
    if (!rc && !(*enc = encode_tags(&t)))
        rc = cf_s3_refuse(refusal, CF_S3_InternalError, NULL);
    tag_set_cleanup(&t);
    return rc;
}

int cf_handle_put_object_tagging(cf_request *r)
{
    int refused = cf_refuse_other_version(r);
    if (refused >= 0)
        return refused;
    char *enc;
    cf_err refusal;
    if (cf_tagging_from_xml(r->small.data, r->small.len, &enc, &refusal) != 0)
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
    cf_err err;
    int rc = cf_store_object_set_header(r->srv->store, r->bucket, r->key, r->keylen, CF_TAGGING_HEADER,
                                        *enc ? enc : NULL, &err);
    free(enc);
    return rc ? store_failure(r, &err) : cf_respond_empty(r, 200);
}

int cf_handle_delete_object_tagging(cf_request *r)
{
    int refused = cf_refuse_other_version(r);
    if (refused >= 0)
        return refused;
    cf_err err;
    int rc = cf_store_object_set_header(r->srv->store, r->bucket, r->key, r->keylen, CF_TAGGING_HEADER, NULL,
                                        &err);
    return rc ? store_failure(r, &err) : cf_respond_empty(r, 204);
}
