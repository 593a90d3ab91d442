/*
 * handlers_post.c - POST Object: an upload from an HTML form, signed by a policy document
 * instead of by the request (AWS: RESTObjectPOST, sigv4-HTTPPOSTConstructPolicy).
 *
 * The form streams through the parser (s3/form.h). Fields before the file are kept, up to
 * FIELDS_MAX_BYTES in all; when the file part begins, everything is decided before its first
 * byte is stored: the signature over the policy, the policy's expiry and conditions, the key,
 * and the signer's own rights on that key (access.c, as for a PUT). The file then streams into
 * a store writer; parts after it are ignored, as S3 does. Nothing is committed unless the form
 * ends well and the size lies in content-length-range.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/log.h"
#include "crypto/sigv4.h"
#include "s3/form.h"
#include "s3/post_policy.h"
#include "s3/xml.h"
#include "server/request.h"
#include "server/access.h"
#include "server/handlers_post.h"
#include "server/handlers_tagging.h"
#include "server/header_list.h"
#include "server/rate_groups.h"
#include "server/response.h"

#define FIELDS_MAX_BYTES (20 << 10) /* AWS: the form's fields before the file, 20 KB */
#define MAX_FIELDS 64

struct cf_post_upload {
    cf_form *form;
    cf_post_field fields[MAX_FIELDS]; /* names and values owned */
    size_t nfields;
    size_t field_bytes;
    cf_buf value; /* the field being read */
    char *name;   /* its name */
    int in_file, file_done, skipping;
    cf_post_policy policy;
    uint64_t size;
    char *tags; /* the tagging field in CF_TAGGING_HEADER's form */
};

static const char *field(const struct cf_post_upload *u, const char *name)
{
    for (size_t i = 0; i < u->nfields; i++)
        if (strcasecmp(u->fields[i].name, name) == 0)
            return u->fields[i].value;
    return NULL;
}

static int refuse(cf_request *r, cf_s3_error e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(cf_request *r, cf_s3_error e, const char *fmt, ...)
{
    if (!r->deferred) {
        r->deferred = e;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->deferred_msg, sizeof r->deferred_msg, fmt, ap);
        va_end(ap);
    }
    return CF_EDENIED;
}

#define MISSING                                                                                              \
    "Bucket POST must contain a field named '%s'.  If it is specified, please check the order of the "       \
    "fields."

/* The signer named by x-amz-credential ("AKID/20261205/region/s3/aws4_request"), with its signing key. */
static int check_signature(cf_request *r, struct cf_post_upload *u, const char *policy_b64)
{
    const char *alg = field(u, "x-amz-algorithm"), *cred = field(u, "x-amz-credential");
    const char *date = field(u, "x-amz-date"), *sig = field(u, "x-amz-signature");
    if (!alg && (field(u, "AWSAccessKeyId") || field(u, "signature")))
        return refuse(
            r, CF_S3_InvalidArgument,
            "POST uploads signed with Signature Version 2 are not supported; sign with AWS4-HMAC-SHA256");
    static const char *const required[] = {"x-amz-algorithm", "x-amz-credential", "x-amz-date",
                                           "x-amz-signature"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (!field(u, required[i]))
            return refuse(r, CF_S3_InvalidArgument, MISSING, required[i]);
    if (strcmp(alg, "AWS4-HMAC-SHA256") != 0)
        return refuse(r, CF_S3_InvalidArgument, "x-amz-algorithm must be AWS4-HMAC-SHA256");
    char access_key[129], cdate[9], region[64], service[8], term[16];
    int used = 0;
    if (sscanf(cred, "%128[^/]/%8[0-9]/%63[^/]/%7[^/]/%15[^/]%n", access_key, cdate, region, service, term,
               &used) != 5 ||
        cred[used] || strlen(cdate) != 8 || strcmp(service, "s3") != 0 || strcmp(term, "aws4_request") != 0)
        return refuse(r, CF_S3_InvalidArgument,
                      "x-amz-credential must be ACCESS_KEY/YYYYMMDD/REGION/s3/aws4_request");
    if (strcmp(region, r->srv->region) != 0)
        return refuse(r, CF_S3_InvalidArgument, "the region '%s' is wrong; expecting '%s'", region,
                      r->srv->region);
    if (strncmp(date, cdate, 8) != 0)
        return refuse(r, CF_S3_InvalidArgument, "x-amz-date is not on the day of x-amz-credential");
    const char *secret;
    cf_principal principal;
    cf_err err;
    if (strcmp(access_key, r->srv->root.access_key) == 0) {
        secret = r->srv->root.secret_key;
        principal = CF_PRINCIPAL_ROOT;
    } else {
        int rc = cf_store_key_get(r->srv->store, access_key, &r->grant, &err);
        cf_s3_error e = cf_s3_error_for(rc, CF_S3_ON_ACCESS_KEY);
        if (e == CF_S3_InvalidAccessKeyId && !r->deferred)
            cf_error_detail(r, e, "AWSAccessKeyId", access_key);
        if (e)
            return refuse(r, e, "%s", cf_s3_error_status(e) < 500 ? cf_s3_error_message(e) : "");
        secret = r->grant.secret_key;
        principal = CF_PRINCIPAL_KEY;
    }
    snprintf(r->access_key, sizeof r->access_key, "%s", access_key);
    unsigned char key[32], mac[32];
    char want[65], got[65];
    int mac_rc = cf_sigv4_cached_signing_key(r->srv->keys, secret, cdate, region, "s3", key);
    if (!mac_rc)
        mac_rc = cf_hmac_sha256(key, sizeof key, policy_b64, strlen(policy_b64), mac);
    memset(key, 0, sizeof key);
    if (mac_rc)
        return refuse(r, CF_S3_InternalError, "out of memory checking the signature");
    cf_hex_encode(mac, sizeof mac, want);
    snprintf(got, sizeof got, "%s", sig);
    for (char *c = got; *c; c++)
        if (*c >= 'A' && *c <= 'F')
            *c = (char)(*c - 'A' + 'a');
    if (strlen(sig) != 64 || !cf_consttime_eq(want, got, 64)) {
        /* A form signs its policy document: that is the string to sign AWS names. */
        if (!r->deferred) {
            cf_error_detail(r, CF_S3_SignatureDoesNotMatch, "AWSAccessKeyId", access_key);
            cf_error_detail(r, CF_S3_SignatureDoesNotMatch, "StringToSign", policy_b64);
            cf_error_detail(r, CF_S3_SignatureDoesNotMatch, "SignatureProvided", sig);
        }
        return refuse(r, CF_S3_SignatureDoesNotMatch, "%s", cf_s3_error_message(CF_S3_SignatureDoesNotMatch));
    }
    r->principal = principal;
    return 0;
}

static int check_policy(cf_request *r, struct cf_post_upload *u, const char *policy_b64)
{
    size_t bl = strlen(policy_b64);
    unsigned char *json = malloc(bl + 1);
    if (!json)
        return refuse(r, CF_S3_InternalError, "out of memory");
    long jl = cf_base64_decode(policy_b64, bl, json, bl);
    cf_err err;
    int rc = jl < 0 ? cf_err_set(&err, CF_EINVAL, "Invalid Policy: Invalid Base64 Encoding.")
                    : cf_post_policy_parse((const char *)json, (size_t)jl, &u->policy, &err);
    free(json);
    if (rc)
        return refuse(r, cf_s3_error_of(&err, CF_S3_ON_POST_POLICY), "%s", err.msg);
    rc = cf_post_policy_check(&u->policy, r->bucket, u->fields, u->nfields,
                              (int64_t)cf_clock_time(r->srv->clock), &err);
    if (rc)
        return refuse(r, CF_S3_AccessDenied, "%s", err.msg);
    return 0;
}

/* key with ${filename} replaced by the file's name (S3 replaces the first one). */
static int resolve_key(cf_request *r, const char *key, const char *filename)
{
    const char *var = strstr(key, "${filename}");
    cf_buf b;
    cf_buf_init(&b, 2 * CF_S3_MAX_KEY_LEN + CF_FORM_MAX_NAME);
    int rc = var ? cf_buf_append(&b, key, (size_t)(var - key)) : cf_buf_puts(&b, key);
    if (!rc && var)
        rc = cf_buf_puts(&b, filename ? filename : "");
    if (!rc && var)
        rc = cf_buf_puts(&b, var + 11);
    if (rc == CF_ENOMEM) {
        cf_buf_cleanup(&b);
        return refuse(r, CF_S3_InternalError, "%s", "");
    }
    if (rc || !b.data) {
        cf_buf_cleanup(&b);
        return refuse(r, CF_S3_InvalidArgument, "User key must have a length greater than 0.");
    }
    free(r->key);
    r->key = cf_buf_steal(&b, &r->keylen);
    if (r->keylen > CF_S3_MAX_KEY_LEN)
        return refuse(r, CF_S3_KeyTooLongError, "%s", cf_s3_error_message(CF_S3_KeyTooLongError));
    if (cf_s3_key_check(r->key, r->keylen) != 0)
        return refuse(r, CF_S3_InvalidArgument, "object keys must be 1 to 1024 bytes of UTF-8");
    return 0;
}

/* The fields stored with the object and sent back as headers on every GET. */
static int becomes_header(const char *name)
{
    static const char *const stored[] = {"content-type", "cache-control", "content-disposition",
                                         "content-encoding", "expires"};
    for (size_t i = 0; i < sizeof stored / sizeof *stored; i++)
        if (strcasecmp(name, stored[i]) == 0)
            return 1;
    return strlen(name) > 11 && strncasecmp(name, "x-amz-meta-", 11) == 0;
}

/* A form field may hold any byte, a header value no control but tab (RFC 9110). Such a value
 * would be stored and then left out of every response (the HTTP library refuses it): a
 * Content-Type of "image/png" CR LF ... meets starts-with "image/" and the GET goes out with no
 * Content-Type at all, for browsers to sniff. */
static int check_header_fields(cf_request *r, const struct cf_post_upload *u)
{
    for (size_t i = 0; i < u->nfields; i++) {
        if (!becomes_header(u->fields[i].name))
            continue;
        for (const unsigned char *c = (const unsigned char *)u->fields[i].value; *c; c++)
            if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
                return refuse(r, CF_S3_InvalidArgument, "the field '%.200s' holds a control character",
                              u->fields[i].name);
    }
    return 0;
}

/* The file part begins: decide everything before its first byte is kept. */
static int begin_file(cf_request *r, struct cf_post_upload *u, const char *filename)
{
    const char *policy = field(u, "policy"), *key = field(u, "key");
    /* A form with no policy and no signature is anonymous, as on AWS: it may write only where
     * the bucket policy lets anyone PutObject, which a PUT could do as well. */
    int signing = field(u, "x-amz-algorithm") || field(u, "x-amz-credential") ||
                  field(u, "x-amz-signature") || field(u, "AWSAccessKeyId") || field(u, "signature");
    if (!policy && signing)
        return refuse(r, CF_S3_InvalidArgument, MISSING, "policy");
    if (!key)
        return refuse(r, CF_S3_InvalidArgument, MISSING, "key");
    const char *bucket = field(u, "bucket");
    if (bucket && strcmp(bucket, r->bucket) != 0)
        return refuse(r, CF_S3_InvalidArgument, "the bucket field names another bucket than the request");
    if (policy && (check_signature(r, u, policy) || check_policy(r, u, policy)))
        return CF_EDENIED;
    if (check_header_fields(r, u) || resolve_key(r, key, filename))
        return CF_EDENIED;
    if (!cf_access_allows(r, CF_S3_OP_PUT_OBJECT, r->bucket, r->key, r->keylen))
        return refuse(r, CF_S3_AccessDenied, "%s", cf_s3_error_message(CF_S3_AccessDenied));
    const char *tagging = field(u, "tagging");
    if (tagging) {
        /* As a PUT with x-amz-tagging: the same tag rules, and s3:PutObjectTagging as well. */
        cf_err refusal;
        if (cf_tagging_from_xml(tagging, strlen(tagging), &u->tags, &refusal) != 0)
            return refuse(r, cf_s3_error_of(&refusal, CF_S3_ON_REQUEST), "%s", refusal.msg);
        if (!cf_access_allows_tags_on_write(r, CF_S3_OP_PUT_OBJECT, r->bucket, r->key, r->keylen))
            return refuse(r, CF_S3_AccessDenied, "%s", cf_s3_error_message(CF_S3_AccessDenied));
    }
    cf_err err;
    if (cf_store_writer_begin(r->srv->store, &r->writer, &err) != 0) {
        cf_log(&r->srv->log, CF_LOG_ERROR, "cannot start a write", "id", r->request_id, "error", err.msg,
               NULL);
        return refuse(r, CF_S3_InternalError, "%s", "");
    }
    u->in_file = 1;
    return 0;
}

static int on_part(void *ctx, const char *name, const char *filename, const char *content_type)
{
    (void)content_type; /* S3 takes the object's type from the Content-Type field */
    cf_request *r = ctx;
    struct cf_post_upload *u = r->post;
    if (u->file_done) {
        u->skipping = 1;
        return 0;
    }
    if (strcasecmp(name, "file") == 0)
        return begin_file(r, u, filename);
    if (field(u, name))
        return refuse(r, CF_S3_InvalidArgument, "the field '%.200s' appears more than once", name);
    if (u->nfields == MAX_FIELDS)
        return refuse(r, CF_S3_MaxPostPreDataLengthExceededError, "%s",
                      cf_s3_error_message(CF_S3_MaxPostPreDataLengthExceededError));
    u->field_bytes += strlen(name);
    if (u->field_bytes > FIELDS_MAX_BYTES || !(u->name = strdup(name)))
        return refuse(r, CF_S3_MaxPostPreDataLengthExceededError, "%s",
                      cf_s3_error_message(CF_S3_MaxPostPreDataLengthExceededError));
    cf_buf_init(&u->value, FIELDS_MAX_BYTES);
    return 0;
}

static int on_data(void *ctx, const char *data, size_t n)
{
    cf_request *r = ctx;
    struct cf_post_upload *u = r->post;
    if (u->skipping)
        return 0;
    if (!u->in_file) {
        u->field_bytes += n;
        if (u->field_bytes > FIELDS_MAX_BYTES || cf_buf_append(&u->value, data, n) != 0)
            return refuse(r, CF_S3_MaxPostPreDataLengthExceededError, "%s",
                          cf_s3_error_message(CF_S3_MaxPostPreDataLengthExceededError));
        return 0;
    }
    u->size += n;
    /* Refused as soon as it is too large, rather than after storing all of it. */
    if (u->size > CF_MAX_PUT_SIZE || cf_post_policy_size(&u->policy, u->size) > 0) {
        /* The file's whole size is not known yet: only the limit is named. */
        if (!r->deferred)
            cf_error_detail_u64(r, CF_S3_EntityTooLarge, "MaxSizeAllowed",
                                u->size > CF_MAX_PUT_SIZE ? CF_MAX_PUT_SIZE : u->policy.max_size);
        return refuse(r, CF_S3_EntityTooLarge, "%s", cf_s3_error_message(CF_S3_EntityTooLarge));
    }
    cf_err err;
    if (cf_store_writer_write(r->writer, data, n, &err) != 0) {
        cf_log(&r->srv->log, CF_LOG_ERROR, "write failed", "id", r->request_id, "error", err.msg, NULL);
        return refuse(r, CF_S3_InternalError, "%s", "");
    }
    return 0;
}

static int on_part_end(void *ctx)
{
    cf_request *r = ctx;
    struct cf_post_upload *u = r->post;
    if (u->skipping)
        return 0;
    if (u->in_file) {
        u->in_file = 0;
        u->file_done = 1;
        return 0;
    }
    u->fields[u->nfields].name = u->name;
    u->fields[u->nfields].value = u->value.data ? cf_buf_steal(&u->value, NULL) : strdup("");
    u->name = NULL;
    if (!u->fields[u->nfields].value) {
        free((char *)u->fields[u->nfields].name);
        return refuse(r, CF_S3_InternalError, "%s", "");
    }
    u->nfields++;
    return 0;
}

static const cf_form_events form_events = {on_part, on_data, on_part_end};

int cf_post_object_begin(cf_request *r, cf_err *refusal)
{
    char boundary[CF_FORM_MAX_BOUNDARY + 1];
    if (cf_form_boundary(cf_request_header(r, "Content-Type"), boundary) != 0)
        return cf_s3_refuse(refusal, CF_S3_PreconditionFailed,
                            "Bucket POST must be of the enclosure-type multipart/form-data");
    cf_err err;
    if (cf_store_bucket_exists(r->srv->store, r->bucket, &err) != 0)
        return cf_s3_refuse(refusal, cf_s3_error_of(&err, CF_S3_ON_BUCKET), NULL);
    struct cf_post_upload *u = calloc(1, sizeof *u);
    if (!u || !(u->form = cf_form_new(boundary, &form_events, r))) {
        free(u);
        return cf_s3_refuse(refusal, CF_S3_InternalError, NULL);
    }
    r->post = u;
    r->body = BODY_NONE;
    return 0;
}

void cf_post_object_take(cf_request *r, const char *data, size_t n)
{
    r->bytes_in += n;
    if (r->deferred)
        return; /* already refused: drain the rest so that the error can be sent */
    cf_err err;
    int rc = cf_form_feed(r->post->form, data, n, &err);
    cf_s3_error e = rc ? cf_s3_error_of(&err, CF_S3_ON_POST_FORM) : CF_S3_OK;
    if (e && !r->deferred)
        refuse(r, e, "%s", cf_s3_error_status(e) < 500 ? err.msg : "");
}

void cf_post_object_cleanup(cf_request *r)
{
    struct cf_post_upload *u = r->post;
    if (!u)
        return;
    cf_form_free(u->form);
    for (size_t i = 0; i < u->nfields; i++) {
        free((char *)u->fields[i].name);
        free((char *)u->fields[i].value);
    }
    free(u->name);
    free(u->tags);
    cf_buf_cleanup(&u->value);
    cf_post_policy_cleanup(&u->policy);
    free(u);
    r->post = NULL;
}

/* Headers S3 takes from the form's fields and stores with the object; CF_ETOOBIG past the
 * 2 KB of user metadata. */
static int object_headers(const struct cf_post_upload *u, cf_header_list *h)
{
    static const char *const stored[] = {"cache-control", "content-disposition", "content-encoding",
                                         "expires"};
    const char *type = field(u, "Content-Type");
    int rc = cf_header_add(h, "content-type", 12, type && *type ? type : "binary/octet-stream");
    for (size_t i = 0; i < sizeof stored / sizeof *stored && !rc; i++) {
        const char *v = field(u, stored[i]);
        if (v)
            rc = cf_header_add(h, stored[i], strlen(stored[i]), v);
    }
    for (size_t i = 0; i < u->nfields && !rc; i++) {
        const char *name = u->fields[i].name;
        size_t nl = strlen(name);
        if (nl > 11 && strncasecmp(name, "x-amz-meta-", 11) == 0) {
            h->meta_bytes += nl - 11 + strlen(u->fields[i].value);
            rc = cf_header_add(h, name, nl, u->fields[i].value);
        }
    }
    if (!rc && u->tags && *u->tags)
        rc = cf_header_add(h, CF_TAGGING_HEADER, strlen(CF_TAGGING_HEADER), u->tags);
    return rc ? rc : h->meta_bytes > CF_MAX_USER_METADATA ? CF_ETOOBIG : 0;
}

static int encode_param(cf_buf *b, const char *name, const char *value)
{
    int rc = cf_buf_printf(b, "%s=", name);
    return rc ? rc : cf_sigv4_uri_encode(b, value, strlen(value), 0);
}

/* success_action_redirect: 303 to it, with bucket, key and etag in its query. */
static int respond_redirect(cf_request *r, const char *url, const char *etag)
{
    cf_buf b;
    cf_buf_init(&b, 16 << 10);
    int rc = cf_buf_puts(&b, url);
    if (!rc)
        rc = cf_buf_putc(&b, strchr(url, '?') ? '&' : '?');
    if (!rc)
        rc = encode_param(&b, "bucket", r->bucket);
    if (!rc)
        rc = cf_buf_putc(&b, '&');
    if (!rc)
        rc = encode_param(&b, "key", r->key);
    if (!rc)
        rc = cf_buf_putc(&b, '&');
    if (!rc)
        rc = encode_param(&b, "etag", etag);
    cf_http_response *resp = rc ? NULL : cf_http_body_empty();
    if (resp) {
        cf_http_add_header(resp, "Location", b.data);
        cf_http_add_header(resp, "ETag", etag);
    }
    cf_buf_cleanup(&b);
    return resp ? cf_respond(r, 303, resp) : cf_respond_error(r, CF_S3_InternalError, NULL);
}

/* A redirect S3 follows: an absolute http(s) URL without characters that could split a header. */
static int usable_redirect(const char *url)
{
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return 0;
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c < 0x21 || (unsigned char)*c == 0x7f)
            return 0;
    return 1;
}

static int respond_stored(cf_request *r, const struct cf_post_upload *u, const cf_object_info *info)
{
    char etag[80];
    snprintf(etag, sizeof etag, "\"%s\"", info->etag);
    const char *redirect = field(u, "success_action_redirect");
    if (!redirect)
        redirect = field(u, "redirect");
    if (usable_redirect(redirect))
        return respond_redirect(r, redirect, etag);
    const char *status = field(u, "success_action_status");
    int code = status && strcmp(status, "200") == 0 ? 200 : status && strcmp(status, "201") == 0 ? 201 : 204;
    cf_buf b, loc;
    cf_buf_init(&b, 16 << 10);
    cf_buf_init(&loc, 8 << 10);
    const char *host = cf_request_header(r, "Host");
    int rc = cf_buf_printf(&loc, "http://%s/%s/", host ? host : "localhost", r->bucket);
    if (!rc)
        rc = cf_sigv4_uri_encode(&loc, r->key, r->keylen, 1);
    /* Only 201 has a body, the PostResponse document. */
    if (!rc && code == 201) {
        rc = cf_buf_puts(&b, CF_XML_DECL "<PostResponse>");
        if (!rc)
            rc = cf_xml_elem(&b, "Location", loc.data);
        if (!rc)
            rc = cf_xml_elem(&b, "Bucket", r->bucket);
        if (!rc)
            rc = cf_xml_elem(&b, "Key", r->key);
        if (!rc)
            rc = cf_xml_elem(&b, "ETag", etag);
        if (!rc)
            rc = cf_xml_close(&b, "PostResponse");
    }
    size_t len = 0;
    char *body = rc ? NULL : cf_buf_steal(&b, &len);
    cf_http_response *resp = rc ? NULL : cf_rate_body_buffer(r, body, len, 0);
    if (resp) {
        cf_http_add_header(resp, "ETag", etag);
        cf_http_add_header(resp, "Location", loc.data);
        if (len)
            cf_http_add_header(resp, "Content-Type", "application/xml");
        r->bytes_out = len; /* body belongs to resp, or was freed with a failed one */
    }
    cf_buf_cleanup(&b);
    cf_buf_cleanup(&loc);
    return resp ? cf_respond(r, code, resp) : cf_respond_error(r, CF_S3_InternalError, NULL);
}

int cf_post_object_end(cf_request *r)
{
    struct cf_post_upload *u = r->post;
    cf_err err;
    if (cf_form_finish(u->form, &err) != 0 && !u->file_done)
        return cf_respond_failure(r, &err, CF_S3_ON_POST_FORM, 1);
    if (!u->file_done)
        return cf_respond_error(r, CF_S3_InvalidArgument,
                                "POST requires exactly one file upload per request.");
    if (cf_post_policy_size(&u->policy, u->size) < 0) {
        cf_error_detail_u64(r, CF_S3_EntityTooSmall, "ProposedSize", u->size);
        cf_error_detail_u64(r, CF_S3_EntityTooSmall, "MinSizeAllowed", u->policy.min_size);
        return cf_respond_error(r, CF_S3_EntityTooSmall, NULL);
    }
    unsigned char md5[CF_MD5_LEN];
    if (cf_store_writer_finish(r->writer, md5, NULL, &err) != 0) {
        cf_log(&r->srv->log, CF_LOG_ERROR, "write failed", "id", r->request_id, "error", err.msg, NULL);
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    cf_header_list h = {0};
    int hrc = object_headers(u, &h);
    if (hrc) {
        size_t meta_bytes = h.meta_bytes;
        cf_header_list_cleanup(&h);
        return hrc == CF_ETOOBIG ? cf_respond_metadata_too_large(r, meta_bytes)
                                 : cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    /* A writeonly key only creates, so that it cannot destroy what it stored before (access.c). */
    cf_store_condition cond = {.must_not_exist = cf_access_create_only(r)};
    cf_object_info info = {0};
    cf_store_writer *w = r->writer;
    r->writer = NULL; /* commit frees it, success or not */
    cf_store_writer_set_condition(w, &cond);
    int rc = cf_store_writer_commit(w, r->bucket, r->key, r->keylen, h.kv, h.n, &info, &err);
    cf_header_list_cleanup(&h);
    if (rc)
        return cf_respond_failure(r, &err, CF_S3_ON_CREATE_ONLY, 0);
    rc = respond_stored(r, u, &info);
    cf_object_info_cleanup(&info);
    return rc;
}
