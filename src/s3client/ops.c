/*
 * ops.c - the one-request S3 operations, list iteration, and presigned URLs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/clock.h"
#include "s3/request.h"
#include "s3/xml.h"
#include "s3client/internal.h"

static int check_name(const char *bucket, const char *key, cf_err *err)
{
    if (!bucket || !*bucket)
        return cf_err_set(err, CF_EINVAL, "s3: no bucket name");
    if (key && !*key)
        return cf_err_set(err, CF_EINVAL, "s3 '%s': empty object key", bucket);
    return 0;
}

static int is_token_char(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", ch);
}

static int header_text_ok(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return 0;
    return 1;
}

/* Refuses what S3 would refuse, or what would break the request (a CR/LF in a value would end
 * the header and start another), before anything is sent. */
static int check_put_opts(const cf_s3c_put_opts *o, const char *bucket, const char *key, cf_err *err)
{
    if (!o)
        return 0;
    if (o->content_type && !header_text_ok(o->content_type))
        return cf_err_set(err, CF_EINVAL, "s3 '%s/%s': content type holds a control character", bucket, key);
    const char *std[] = {o->cache_control, o->content_disposition, o->content_encoding, o->content_language,
                         o->expires};
    for (size_t i = 0; i < sizeof std / sizeof *std; i++)
        if (std[i] && !header_text_ok(std[i]))
            return cf_err_set(err, CF_EINVAL, "s3 '%s/%s': a standard header holds a control character",
                              bucket, key);
    if (o->nmeta > CF_S3C_META_FIELDS)
        return cf_err_set(err, CF_EINVAL, "s3 '%s/%s': %zu metadata fields, at most %d", bucket, key,
                          o->nmeta, CF_S3C_META_FIELDS);
    size_t total = 0;
    for (size_t i = 0; i < o->nmeta; i++) {
        const char *name = o->meta[i].name, *value = o->meta[i].value;
        if (!name || !*name || !value)
            return cf_err_set(err, CF_EINVAL, "s3 '%s/%s': metadata field %zu has no name or value", bucket,
                              key, i);
        for (const char *p = name; *p; p++)
            if (!is_token_char((unsigned char)*p))
                return cf_err_set(err, CF_EINVAL, "s3 '%s/%s': metadata name '%.64s' is not an HTTP token",
                                  bucket, key, name);
        if (!header_text_ok(value))
            return cf_err_set(err, CF_EINVAL, "s3 '%s/%s': metadata '%.64s' holds a control character",
                              bucket, key, name);
        for (size_t j = 0; j < i; j++)
            if (!strcasecmp(o->meta[j].name, name))
                return cf_err_set(err, CF_EINVAL, "s3 '%s/%s': metadata '%.64s' given twice", bucket, key,
                                  name);
        total += strlen(name) + strlen(value);
    }
    if (total > CF_S3C_META_MAX)
        return cf_err_set(err, CF_EINVAL, "s3 '%s/%s': %zu bytes of metadata, at most %d", bucket, key, total,
                          CF_S3C_META_MAX);
    return 0;
}

/* o's content type and metadata onto x; o was checked, so everything fits. */
static void apply_put_opts(cf_s3c_xfer *x, const cf_s3c_put_opts *o)
{
    if (!o)
        return;
    x->content_type = o->content_type;
    const char *names[] = {"cache-control", "content-disposition", "content-encoding", "content-language",
                           "expires"};
    const char *values[] = {o->cache_control, o->content_disposition, o->content_encoding,
                            o->content_language, o->expires};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (values[i] && *values[i])
            cf_s3c_xfer_header(x, "", names[i], values[i]);
    for (size_t i = 0; i < o->nmeta; i++)
        cf_s3c_xfer_header(x, "x-amz-meta-", o->meta[i].name, o->meta[i].value);
}

static int simple(cf_s3c *c, const char *method, const char *bucket, const char *key,
                  cf_s3c_object_info *info, cf_err *err)
{
    int rc = check_name(bucket, key, err);
    if (rc)
        return rc;
    cf_s3c_xfer x;
    cf_s3c_xfer_init(&x, c, method, bucket, key);
    rc = cf_s3c_xfer_run(&x, err);
    if (!rc && info)
        *info = x.info;
    cf_s3c_xfer_cleanup(&x);
    return rc;
}

int cf_s3c_create_bucket(cf_s3c *c, const char *bucket, cf_err *err)
{
    return simple(c, "PUT", bucket, NULL, NULL, err);
}

int cf_s3c_delete_bucket(cf_s3c *c, const char *bucket, cf_err *err)
{
    return simple(c, "DELETE", bucket, NULL, NULL, err);
}

int cf_s3c_head_bucket(cf_s3c *c, const char *bucket, cf_err *err)
{
    return simple(c, "HEAD", bucket, NULL, NULL, err);
}

int cf_s3c_head_object(cf_s3c *c, const char *bucket, const char *key, cf_s3c_object_info *info, cf_err *err)
{
    return simple(c, "HEAD", bucket, key, info, err);
}

int cf_s3c_delete_object(cf_s3c *c, const char *bucket, const char *key, cf_err *err)
{
    return simple(c, "DELETE", bucket, key, NULL, err);
}

int cf_s3c_put_object(cf_s3c *c, const char *bucket, const char *key, const void *data, size_t len,
                      const char *content_type, cf_s3c_object_info *info, cf_err *err)
{
    cf_s3c_put_opts o = {.content_type = content_type};
    return cf_s3c_put_object_opts(c, bucket, key, data, len, &o, info, err);
}

int cf_s3c_put_object_opts(cf_s3c *c, const char *bucket, const char *key, const void *data, size_t len,
                           const cf_s3c_put_opts *o, cf_s3c_object_info *info, cf_err *err)
{
    int rc = check_name(bucket, key, err);
    if (!rc)
        rc = check_put_opts(o, bucket, key, err);
    if (rc)
        return rc;
    cf_s3c_xfer x;
    cf_s3c_xfer_init(&x, c, "PUT", bucket, key);
    cf_s3c_xfer_body(&x, data, len);
    apply_put_opts(&x, o);
    rc = cf_s3c_xfer_run(&x, err);
    if (!rc && info)
        *info = x.info;
    cf_s3c_xfer_cleanup(&x);
    return rc;
}

int cf_s3c_put_object_stream(cf_s3c *c, const char *bucket, const char *key, uint64_t len,
                             cf_s3c_read_fn read, cf_s3c_seek_fn seek, void *ctx, const char *content_type,
                             cf_s3c_object_info *info, cf_err *err)
{
    int rc = check_name(bucket, key, err);
    if (rc)
        return rc;
    cf_s3c_xfer x;
    cf_s3c_xfer_init(&x, c, "PUT", bucket, key);
    x.read = read;
    x.seek = seek;
    x.rctx = ctx;
    x.stream_len = len;
    snprintf(x.payload_hash, sizeof x.payload_hash, "%s", CF_SIGV4_UNSIGNED_PAYLOAD);
    x.content_type = content_type;
    rc = cf_s3c_xfer_run(&x, err);
    if (!rc && info)
        *info = x.info;
    cf_s3c_xfer_cleanup(&x);
    return rc;
}

int cf_s3c_get_object(cf_s3c *c, const char *bucket, const char *key, const cf_s3c_range *range,
                      cf_s3c_write_fn write, void *ctx, cf_s3c_object_info *info, cf_err *err)
{
    int rc = check_name(bucket, key, err);
    if (rc)
        return rc;
    cf_s3c_xfer x;
    cf_s3c_xfer_init(&x, c, "GET", bucket, key);
    x.write = write;
    x.wctx = ctx;
    if (range) {
        x.has_range = 1;
        x.range_off = range->offset;
        x.range_len = range->length;
    }
    rc = cf_s3c_xfer_run(&x, err);
    if (!rc && info) {
        *info = x.info;
        info->size = x.total_size;
    }
    cf_s3c_xfer_cleanup(&x);
    return rc;
}

/* Runs x, which answers with XML, and parses the answer into *root (caller frees). */
static int run_xml(cf_s3c_xfer *x, cf_xml_node **root, cf_err *err)
{
    *root = NULL;
    int rc = cf_s3c_xfer_run(x, err);
    if (rc)
        return rc;
    if ((rc = cf_xml_parse(x->resp.data ? x->resp.data : "", x->resp.len, root, err))) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err ? err->msg : "");
        return cf_err_set(err, CF_EIO, "s3 %s '%s': malformed XML answer: %s", x->method, x->bucket, why);
    }
    if (!strcmp((*root)->name, "Error")) {
        /* CompleteMultipartUpload may fail after the 200 status line went out. */
        x->status = 200;
        rc = cf_s3c_fail_from_body(x);
        if (err)
            *err = x->err;
        cf_xml_free(*root);
        *root = NULL;
    }
    return rc;
}

static const char *text(const cf_xml_node *n, const char *name)
{
    const cf_xml_node *c = cf_xml_child(n, name);
    return c ? c->text : "";
}

static int64_t iso_time(const char *s)
{
    /* S3's XML dates are ISO 8601 (2009-10-12T17:50:30.000Z), which curl_getdate does not read
     * (it answered -1, so every listed LastModified was 0); HTTP dates are left to it. */
    int64_t iso;
    if (cf_s3_parse_iso8601(s, &iso) == 0)
        return iso > 0 ? iso : 0;
    time_t t = curl_getdate(s, NULL);
    return t > 0 ? (int64_t)t : 0;
}

/* ---- CopyObject ---- */

/* The x-amz-copy-source value for src_bucket/src_key into src (caller cleans it up). */
static int copy_source(cf_buf *src, const char *src_bucket, const char *src_key, cf_err *err)
{
    int rc = check_name(src_bucket, src_key, err);
    if (rc)
        return rc;
    cf_buf_init(src, 8192);
    rc = cf_buf_printf(src, "/%s/", src_bucket);
    if (!rc)
        rc = cf_sigv4_uri_encode(src, src_key, strlen(src_key), 1);
    if (rc)
        return cf_err_set(err, CF_ETOOBIG, "s3 copy of '%s/%.200s': source name too long", src_bucket,
                          src_key);
    return 0;
}

int cf_s3c_copy_object(cf_s3c *c, const char *src_bucket, const char *src_key, const char *bucket,
                       const char *key, const cf_s3c_put_opts *o, const char *src_etag,
                       cf_s3c_object_info *info, cf_err *err)
{
    cf_buf src = {0};
    int rc = check_name(bucket, key, err);
    if (!rc)
        rc = check_put_opts(o, bucket, key, err);
    if (!rc)
        rc = copy_source(&src, src_bucket, src_key, err);
    if (rc) {
        cf_buf_cleanup(&src);
        return rc;
    }
    cf_s3c_xfer x;
    cf_s3c_xfer_init(&x, c, "PUT", bucket, key);
    cf_s3c_xfer_body(&x, "", 0);
    cf_s3c_xfer_header(&x, "x-amz-copy-source", "", src.data);
    if (src_etag && *src_etag)
        cf_s3c_xfer_header(&x, "x-amz-copy-source-if-match", "", src_etag);
    if (o) {
        cf_s3c_xfer_header(&x, "x-amz-metadata-directive", "", "REPLACE");
        apply_put_opts(&x, o);
    }
    cf_xml_node *root = NULL;
    rc = run_xml(&x, &root, err);
    if (!rc && info) {
        *info = x.info;
        snprintf(info->etag, sizeof info->etag, "%s", text(root, "ETag"));
        info->last_modified = iso_time(text(root, "LastModified"));
        info->size = 0; /* the answer's Content-Length is the XML's */
    }
    cf_xml_free(root);
    cf_s3c_xfer_cleanup(&x);
    cf_buf_cleanup(&src);
    return rc;
}

/* ---- DeleteObjects ---- */

int cf_s3c_delete_objects(cf_s3c *c, const char *bucket, const char *const *keys, size_t n, cf_err *err)
{
    int rc = check_name(bucket, NULL, err);
    for (size_t i = 0; !rc && i < n; i++)
        rc = check_name(bucket, keys[i], err);
    if (rc || n == 0)
        return rc;
    if (n > CF_S3C_DELETE_MAX)
        return cf_err_set(err, CF_EINVAL, "s3 delete in '%s': %zu keys, at most %d a request", bucket, n,
                          CF_S3C_DELETE_MAX);
    cf_buf body;
    cf_buf_init(&body, (size_t)16 << 20);
    rc = cf_buf_printf(&body, "<Delete><Quiet>true</Quiet>");
    for (size_t i = 0; !rc && i < n; i++) {
        rc = cf_buf_printf(&body, "<Object><Key>");
        if (!rc)
            rc = cf_xml_escape(&body, keys[i], strlen(keys[i]));
        if (!rc)
            rc = cf_buf_printf(&body, "</Key></Object>");
    }
    if (!rc)
        rc = cf_buf_printf(&body, "</Delete>");
    if (rc) {
        cf_buf_cleanup(&body);
        return cf_err_set(err, CF_ENOMEM, "s3 delete in '%s': out of memory", bucket);
    }
    cf_s3c_xfer x;
    cf_s3c_xfer_init(&x, c, "POST", bucket, NULL);
    cf_s3c_xfer_param(&x, "delete", "");
    /* S3 wants an integrity header on DeleteObjects: the CRC32C does. */
    cf_s3c_xfer_body_crc32c(&x, body.data, body.len);
    cf_xml_node *root = NULL;
    rc = run_xml(&x, &root, err);
    /* Quiet: the answer lists only the keys that could not be deleted. */
    for (const cf_xml_node *e = root ? root->child : NULL; !rc && e; e = e->next) {
        if (strcmp(e->name, "Error") != 0)
            continue;
        const char *code = text(e, "Code");
        rc = cf_err_set(err, !strcmp(code, "AccessDenied") ? CF_EDENIED : CF_EIO,
                        "s3 delete of '%s/%.200s': %s: %s", bucket, text(e, "Key"), code, text(e, "Message"));
    }
    cf_xml_free(root);
    cf_s3c_xfer_cleanup(&x);
    cf_buf_cleanup(&body);
    return rc;
}

/* ---- ListObjectsV2 ---- */

struct cf_s3c_list {
    cf_s3c *c;
    char *bucket, *prefix, *delimiter, *start_after;
    int max_keys;
    char *token; /* continuation token of the next page; NULL before the first */
    int last_page;
    cf_xml_node *page;
    const cf_xml_node *cur;
    int in_prefixes;
};

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

int cf_s3c_list_open(cf_s3c *c, const char *bucket, const cf_s3c_list_opts *o, cf_s3c_list **out, cf_err *err)
{
    static const cf_s3c_list_opts none;
    int rc = check_name(bucket, NULL, err);
    if (rc)
        return rc;
    if (!o)
        o = &none;
    cf_s3c_list *it = calloc(1, sizeof *it);
    if (!it)
        return cf_err_set(err, CF_ENOMEM, "s3 list '%s': out of memory", bucket);
    it->c = c;
    it->bucket = strdup(bucket);
    it->prefix = dup_or_null(o->prefix);
    it->delimiter = dup_or_null(o->delimiter);
    it->start_after = dup_or_null(o->start_after);
    it->max_keys = o->max_keys;
    if (!it->bucket || (o->prefix && *o->prefix && !it->prefix) ||
        (o->delimiter && *o->delimiter && !it->delimiter) ||
        (o->start_after && *o->start_after && !it->start_after)) {
        cf_s3c_list_close(it);
        return cf_err_set(err, CF_ENOMEM, "s3 list '%s': out of memory", bucket);
    }
    *out = it;
    return 0;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decodes a key of an encoding-type=url listing in place, as botocore does (urllib's
 * unquote_plus: a literal '+' comes as %2B). A key that decodes to a NUL byte cannot be named in
 * C: it becomes "", which cf_s3c_list_next skips. */
static void url_decode_key(char *s)
{
    char *out = s;
    for (const char *p = s; *p; p++) {
        int h = *p == '%' ? hex_digit(p[1]) : -1, l = h >= 0 ? hex_digit(p[2]) : -1;
        if (l >= 0 && !(h | l)) {
            *s = '\0';
            return;
        }
        if (l >= 0)
            p += 2;
        *out++ = l >= 0 ? (char)(h << 4 | l) : *p == '+' ? ' ' : *p;
    }
    *out = '\0';
}

static void decode_page(cf_xml_node *root)
{
    for (cf_xml_node *n = root->child; n; n = n->next) {
        const char *field = !strcmp(n->name, "Contents")         ? "Key"
                            : !strcmp(n->name, "CommonPrefixes") ? "Prefix"
                                                                 : NULL;
        cf_xml_node *k = field ? (cf_xml_node *)cf_xml_child(n, field) : NULL;
        if (k)
            url_decode_key(k->text);
    }
}

static int fetch_page(cf_s3c_list *it, cf_err *err)
{
    cf_s3c_xfer x;
    char maxk[16];
    cf_s3c_xfer_init(&x, it->c, "GET", it->bucket, NULL);
    cf_s3c_xfer_param(&x, "list-type", "2");
    /* XML 1.0 cannot carry a control character: a server that answers with one in a key writes
     * XML no parser accepts, so one such key would stop every listing of its prefix. */
    cf_s3c_xfer_param(&x, "encoding-type", "url");
    if (it->prefix)
        cf_s3c_xfer_param(&x, "prefix", it->prefix);
    if (it->delimiter)
        cf_s3c_xfer_param(&x, "delimiter", it->delimiter);
    if (it->token)
        cf_s3c_xfer_param(&x, "continuation-token", it->token);
    else if (it->start_after)
        cf_s3c_xfer_param(&x, "start-after", it->start_after);
    if (it->max_keys > 0) {
        snprintf(maxk, sizeof maxk, "%d", it->max_keys);
        cf_s3c_xfer_param(&x, "max-keys", maxk);
    }
    cf_xml_node *root = NULL;
    int rc = run_xml(&x, &root, err);
    cf_s3c_xfer_cleanup(&x);
    if (rc)
        return rc;
    if (!strcmp(text(root, "EncodingType"), "url")) /* a server may not know encoding-type */
        decode_page(root);
    cf_xml_free(it->page);
    it->page = root;
    it->cur = root->child;
    it->in_prefixes = 0;
    const char *next = text(root, "NextContinuationToken");
    it->last_page = strcmp(text(root, "IsTruncated"), "true") != 0 || !*next;
    free(it->token);
    it->token = *next ? strdup(next) : NULL;
    if (*next && !it->token)
        return cf_err_set(err, CF_ENOMEM, "s3 list '%s': out of memory", it->bucket);
    return 0;
}

int cf_s3c_list_next(cf_s3c_list *it, cf_s3c_list_entry *e, cf_err *err)
{
    for (;;) {
        if (!it->page) {
            int rc = fetch_page(it, err);
            if (rc)
                return rc;
        }
        /* Objects first, then common prefixes: two passes over the page's children. */
        for (; it->cur; it->cur = it->cur->next) {
            const cf_xml_node *n = it->cur;
            if (!*text(n, !strcmp(n->name, "Contents") ? "Key" : "Prefix"))
                continue; /* decoded to a NUL byte: no name in C */
            if (!it->in_prefixes && !strcmp(n->name, "Contents")) {
                memset(e, 0, sizeof *e);
                e->key = text(n, "Key");
                e->size = strtoull(text(n, "Size"), NULL, 10);
                e->etag = text(n, "ETag");
                e->last_modified = iso_time(text(n, "LastModified"));
                it->cur = n->next;
                return 1;
            }
            if (it->in_prefixes && !strcmp(n->name, "CommonPrefixes")) {
                memset(e, 0, sizeof *e);
                e->key = text(n, "Prefix");
                e->is_prefix = 1;
                e->etag = "";
                it->cur = n->next;
                return 1;
            }
        }
        if (!it->in_prefixes) {
            it->in_prefixes = 1;
            it->cur = it->page->child;
            continue;
        }
        if (it->last_page)
            return 0;
        /* Keep the old page until the new one arrives: *e of the caller points into it. */
        int rc = fetch_page(it, err);
        if (rc)
            return rc;
    }
}

void cf_s3c_list_close(cf_s3c_list *it)
{
    if (!it)
        return;
    cf_xml_free(it->page);
    free(it->bucket);
    free(it->prefix);
    free(it->delimiter);
    free(it->start_after);
    free(it->token);
    free(it);
}

/* ---- multipart ---- */

int cf_s3c_mpu_create(cf_s3c *c, const char *bucket, const char *key, const char *content_type,
                      char upload_id[CF_S3C_UPLOAD_ID_MAX], cf_err *err)
{
    cf_s3c_put_opts o = {.content_type = content_type};
    return cf_s3c_mpu_create_opts(c, bucket, key, &o, upload_id, err);
}

int cf_s3c_mpu_create_opts(cf_s3c *c, const char *bucket, const char *key, const cf_s3c_put_opts *o,
                           char upload_id[CF_S3C_UPLOAD_ID_MAX], cf_err *err)
{
    int rc = check_name(bucket, key, err);
    if (!rc)
        rc = check_put_opts(o, bucket, key, err);
    if (rc)
        return rc;
    cf_s3c_xfer x;
    cf_s3c_xfer_init(&x, c, "POST", bucket, key);
    cf_s3c_xfer_param(&x, "uploads", "");
    cf_s3c_xfer_body(&x, "", 0);
    apply_put_opts(&x, o);
    cf_xml_node *root = NULL;
    rc = run_xml(&x, &root, err);
    if (!rc) {
        const char *id = text(root, "UploadId");
        if (!*id || strlen(id) >= CF_S3C_UPLOAD_ID_MAX)
            rc = cf_err_set(err, CF_EIO, "s3 POST '%s/%s?uploads': no usable UploadId in the answer", bucket,
                            key);
        else
            snprintf(upload_id, CF_S3C_UPLOAD_ID_MAX, "%s", id);
    }
    cf_xml_free(root);
    cf_s3c_xfer_cleanup(&x);
    return rc;
}

int cf_s3c_mpu_upload_part(cf_s3c *c, const char *bucket, const char *key, const char *upload_id, int number,
                           const void *data, size_t len, char etag[132], cf_err *err)
{
    int rc = check_name(bucket, key, err);
    if (rc)
        return rc;
    char num[16];
    snprintf(num, sizeof num, "%d", number);
    cf_s3c_xfer x;
    cf_s3c_xfer_init(&x, c, "PUT", bucket, key);
    cf_s3c_xfer_param(&x, "partNumber", num);
    cf_s3c_xfer_param(&x, "uploadId", upload_id);
    cf_s3c_xfer_body(&x, data, len);
    rc = cf_s3c_xfer_run(&x, err);
    if (!rc)
        snprintf(etag, 132, "%s", x.info.etag);
    cf_s3c_xfer_cleanup(&x);
    return rc;
}

int cf_s3c_mpu_upload_part_copy(cf_s3c *c, const char *bucket, const char *key, const char *upload_id,
                                int number, const char *src_bucket, const char *src_key, const char *src_etag,
                                uint64_t offset, uint64_t len, char etag[132], cf_err *err)
{
    cf_buf src = {0};
    int rc = check_name(bucket, key, err);
    if (!rc && len == 0)
        rc = cf_err_set(err, CF_EINVAL, "s3 part copy onto '%s/%s': empty range", bucket, key);
    if (!rc)
        rc = copy_source(&src, src_bucket, src_key, err);
    if (rc) {
        cf_buf_cleanup(&src);
        return rc;
    }
    char num[16], range[64];
    snprintf(num, sizeof num, "%d", number);
    snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)offset,
             (unsigned long long)(offset + len - 1));
    cf_s3c_xfer x;
    cf_s3c_xfer_init(&x, c, "PUT", bucket, key);
    cf_s3c_xfer_param(&x, "partNumber", num);
    cf_s3c_xfer_param(&x, "uploadId", upload_id);
    cf_s3c_xfer_body(&x, "", 0);
    cf_s3c_xfer_header(&x, "x-amz-copy-source", "", src.data);
    cf_s3c_xfer_header(&x, "x-amz-copy-source-range", "", range);
    if (src_etag && *src_etag)
        cf_s3c_xfer_header(&x, "x-amz-copy-source-if-match", "", src_etag);
    cf_xml_node *root = NULL;
    rc = run_xml(&x, &root, err);
    if (!rc)
        snprintf(etag, 132, "%s", text(root, "ETag"));
    cf_xml_free(root);
    cf_s3c_xfer_cleanup(&x);
    cf_buf_cleanup(&src);
    return rc;
}

int cf_s3c_mpu_complete(cf_s3c *c, const char *bucket, const char *key, const char *upload_id,
                        const cf_s3c_part *parts, size_t nparts, cf_s3c_object_info *info, cf_err *err)
{
    int rc = check_name(bucket, key, err);
    if (rc)
        return rc;
    cf_buf body;
    cf_buf_init(&body, 4 << 20);
    rc = cf_buf_puts(&body, "<CompleteMultipartUpload xmlns=\"" CF_S3_XMLNS "\">");
    for (size_t i = 0; !rc && i < nparts; i++) {
        rc = cf_xml_open(&body, "Part");
        if (!rc)
            rc = cf_xml_elem_u64(&body, "PartNumber", (unsigned long long)parts[i].number);
        if (!rc)
            rc = cf_xml_elem(&body, "ETag", parts[i].etag);
        if (!rc)
            rc = cf_xml_close(&body, "Part");
    }
    if (!rc)
        rc = cf_buf_puts(&body, "</CompleteMultipartUpload>");
    if (rc) {
        cf_buf_cleanup(&body);
        return cf_err_set(err, rc, "s3 complete '%s/%s': request too large", bucket, key);
    }
    cf_s3c_xfer x;
    cf_s3c_xfer_init(&x, c, "POST", bucket, key);
    cf_s3c_xfer_param(&x, "uploadId", upload_id);
    cf_s3c_xfer_body(&x, body.data, body.len);
    x.content_type = "application/xml";
    cf_xml_node *root = NULL;
    rc = run_xml(&x, &root, err);
    if (!rc && info) {
        memset(info, 0, sizeof *info);
        snprintf(info->etag, sizeof info->etag, "%s", text(root, "ETag"));
    }
    cf_xml_free(root);
    cf_s3c_xfer_cleanup(&x);
    cf_buf_cleanup(&body);
    return rc;
}

int cf_s3c_mpu_abort(cf_s3c *c, const char *bucket, const char *key, const char *upload_id, cf_err *err)
{
    int rc = check_name(bucket, key, err);
    if (rc)
        return rc;
    cf_s3c_xfer x;
    cf_s3c_xfer_init(&x, c, "DELETE", bucket, key);
    cf_s3c_xfer_param(&x, "uploadId", upload_id);
    rc = cf_s3c_xfer_run(&x, err);
    cf_s3c_xfer_cleanup(&x);
    return rc;
}

int cf_s3c_list_uploads(cf_s3c *c, const char *bucket, const char *prefix,
                        int (*fn)(void *ctx, const cf_s3c_upload_entry *u), void *ctx, cf_err *err)
{
    int rc = check_name(bucket, NULL, err);
    char *key_marker = NULL, *id_marker = NULL;
    while (!rc) {
        cf_s3c_xfer x;
        cf_s3c_xfer_init(&x, c, "GET", bucket, NULL);
        cf_s3c_xfer_param(&x, "uploads", "");
        if (prefix && *prefix)
            cf_s3c_xfer_param(&x, "prefix", prefix);
        if (key_marker)
            cf_s3c_xfer_param(&x, "key-marker", key_marker);
        if (id_marker)
            cf_s3c_xfer_param(&x, "upload-id-marker", id_marker);
        cf_xml_node *root = NULL;
        rc = run_xml(&x, &root, err);
        cf_s3c_xfer_cleanup(&x);
        if (rc)
            break;
        for (const cf_xml_node *n = root->child; !rc && n; n = n->next) {
            if (strcmp(n->name, "Upload") != 0)
                continue;
            cf_s3c_upload_entry u = {text(n, "Key"), text(n, "UploadId"), iso_time(text(n, "Initiated"))};
            rc = fn(ctx, &u);
        }
        int more = !strcmp(text(root, "IsTruncated"), "true");
        free(key_marker);
        free(id_marker);
        key_marker = strdup(text(root, "NextKeyMarker"));
        id_marker = strdup(text(root, "NextUploadIdMarker"));
        cf_xml_free(root);
        if (!key_marker || !id_marker) {
            rc = cf_err_set(err, CF_ENOMEM, "s3 list uploads '%s': out of memory", bucket);
            break;
        }
        if (!more || (!*key_marker && !*id_marker))
            break;
    }
    free(key_marker);
    free(id_marker);
    return rc;
}

int cf_s3c_mpu_list_parts(cf_s3c *c, const char *bucket, const char *key, const char *upload_id,
                          int (*fn)(void *ctx, const cf_s3c_part_entry *p), void *ctx, cf_err *err)
{
    int rc = check_name(bucket, key, err);
    char marker[16] = "";
    while (!rc) {
        cf_s3c_xfer x;
        cf_s3c_xfer_init(&x, c, "GET", bucket, key);
        cf_s3c_xfer_param(&x, "uploadId", upload_id);
        if (marker[0])
            cf_s3c_xfer_param(&x, "part-number-marker", marker);
        cf_xml_node *root = NULL;
        rc = run_xml(&x, &root, err);
        cf_s3c_xfer_cleanup(&x);
        if (rc)
            break;
        for (const cf_xml_node *n = root->child; !rc && n; n = n->next) {
            if (strcmp(n->name, "Part") != 0)
                continue;
            cf_s3c_part_entry e = {atoi(text(n, "PartNumber")), strtoull(text(n, "Size"), NULL, 10),
                                   text(n, "ETag")};
            if (e.number < 1 || e.number > 10000)
                rc = cf_err_set(err, CF_EIO, "s3 list parts '%s/%s': part number '%s' out of range", bucket,
                                key, text(n, "PartNumber"));
            else
                rc = fn(ctx, &e);
        }
        int more = !strcmp(text(root, "IsTruncated"), "true");
        int next = atoi(text(root, "NextPartNumberMarker"));
        cf_xml_free(root);
        /* A marker that does not move on would page forever. */
        if (!more || next <= atoi(marker[0] ? marker : "0"))
            break;
        snprintf(marker, sizeof marker, "%d", next);
    }
    return rc;
}

/* ---- presign ---- */

int cf_s3c_presign(cf_s3c *c, const char *method, const char *bucket, const char *key, int64_t expires,
                   cf_buf *out, cf_err *err)
{
    int rc = check_name(bucket, key, err);
    if (rc)
        return rc;
    char host[600];
    cf_s3c_host(c, bucket, host, sizeof host);
    cf_buf path;
    cf_buf_init(&path, 8192);
    if ((rc = cf_s3c_path(c, bucket, key, &path))) {
        cf_buf_cleanup(&path);
        return cf_err_set(err, rc, "s3 presign '%s': key too long", bucket);
    }
    cf_sigv4_param tok = {"X-Amz-Security-Token", c->cfg.session_token};
    cf_sigv4_presign_opts o = {
        .method = method,
        .host = host,
        .path = path.data,
        .params = c->cfg.session_token[0] ? &tok : NULL,
        .nparams = c->cfg.session_token[0] ? 1 : 0,
        .access_key = c->cfg.access_key,
        .secret = c->cfg.secret_key,
        .region = c->cfg.region,
        .now = (int64_t)cf_clock_time(c->cfg.clock),
        .expires = expires,
        .keys = c->keys,
    };
    size_t mark = out->len;
    rc = cf_buf_printf(out, "%s://%s", c->scheme, host);
    if (!rc && (rc = cf_sigv4_presign(&o, out, err)))
        out->len = mark, out->data[mark] = '\0';
    else if (rc)
        cf_err_set(err, rc, "s3 presign '%s': URL too long", bucket);
    cf_buf_cleanup(&path);
    return rc;
}
