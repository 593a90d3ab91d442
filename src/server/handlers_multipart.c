/*
 * handlers_multipart.c - CreateMultipartUpload, UploadPart, UploadPartCopy,
 * CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.
 *
 * The store keeps parts as data files and turns the chosen ones into the object's segments;
 * S3's rules live here: part numbers 1-10,000, parts of at least 5 MiB but the last, ascending
 * order in the completion list, ETags that match, and the multipart ETag (MD5 of the parts'
 * binary MD5s, then "-N").
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/log.h"
#include "crypto/hash.h"
#include "s3/xml.h"
#include "server/request.h"
#include "server/body.h"
#include "server/handlers_bucket.h"
#include "server/handlers_multipart.h"
#include "server/handlers_object.h"
#include "server/handlers_tagging.h"
#include "server/header_list.h"
#include "server/rate_groups.h"
#include "server/response.h"

#define MAX_PART_NUMBER 10000
#define MIN_PART_SIZE ((uint64_t)5 << 20)
#define LIST_MAX 1000
/* How long a completed upload's id still answers a retried completion: an SDK retries within
 * seconds to minutes of losing the first answer. */
#define COMPLETION_KEPT_NS ((int64_t)3600 * 1000000000)

const char *cf_upload_header(const cf_store_upload *u, const char *name)
{
    for (size_t i = 0; i < u->nheaders; i++)
        if (strcmp(u->headers[i].name, name) == 0)
            return u->headers[i].value;
    return NULL;
}

/* The upload named by ?uploadId, which must be for this very bucket and key. */
static cf_s3_error find_upload(cf_request *r, cf_store_upload *u)
{
    cf_err err;
    const char *id = cf_request_param(r, "uploadId");
    int rc = cf_store_upload_get(r->srv->store, id ? id : "", u, &err);
    cf_s3_error e = cf_s3_error_for(rc, CF_S3_ON_UPLOAD);
    if (e) {
        if (cf_s3_error_status(e) >= 500)
            cf_log(&r->srv->log, CF_LOG_ERROR, "upload lookup failed", "id", r->request_id, "error", err.msg,
                   NULL);
        return e;
    }
    if (strcmp(u->bucket, r->bucket) != 0 || u->keylen != r->keylen ||
        memcmp(u->key, r->key, r->keylen) != 0) {
        cf_store_upload_cleanup(u);
        return CF_S3_NoSuchUpload;
    }
    return CF_S3_OK;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

int cf_handle_create_multipart(cf_request *r)
{
    if (cf_s3_key_check(r->key, r->keylen) != 0)
        return cf_respond_error(r, CF_S3_InvalidArgument, "object keys must be 1 to 1024 bytes of UTF-8");
    cf_err refusal;
    if (cf_write_protection_refused(r, &refusal) != 0)
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
    cf_header_list h = {0};
    if (cf_object_headers(r, &h) != 0) {
        cf_header_list_cleanup(&h);
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    if (h.meta_bytes > CF_MAX_USER_METADATA) {
        cf_header_list_cleanup(&h);
        return cf_respond_metadata_too_large(r, h.meta_bytes);
    }
    if (cf_tagging_from_request(r, &h, &refusal) != 0) {
        cf_header_list_cleanup(&h);
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
    }
    const char *alg_name = cf_request_header(r, "x-amz-checksum-algorithm");
    const char *type = cf_request_header(r, "x-amz-checksum-type");
    cf_checksum_alg alg = CF_CK_CRC32;
    if (alg_name && cf_checksum_alg_from_name(alg_name, &alg) != 0) {
        cf_header_list_cleanup(&h);
        return cf_respond_error(r, CF_S3_InvalidRequest,
                                "x-amz-checksum-algorithm must be CRC32, CRC32C, CRC64NVME, SHA1 or SHA256");
    }
    /* CRC64NVME exists only as a checksum of the whole object; SHA digests cannot be
     * combined, so for them only the checksum of the part checksums (COMPOSITE) exists. */
    int full = alg == CF_CK_CRC64NVME || (type && strcasecmp(type, "FULL_OBJECT") == 0);
    if (type && strcasecmp(type, "FULL_OBJECT") != 0 && strcasecmp(type, "COMPOSITE") != 0) {
        cf_header_list_cleanup(&h);
        return cf_respond_error(r, CF_S3_InvalidRequest,
                                "x-amz-checksum-type must be COMPOSITE or FULL_OBJECT");
    }
    if ((type && !alg_name) || (full && !cf_checksum_is_crc(alg)) ||
        (alg == CF_CK_CRC64NVME && type && strcasecmp(type, "COMPOSITE") == 0)) {
        cf_header_list_cleanup(&h);
        return cf_respond_error(r, CF_S3_InvalidRequest,
                                "this checksum type is not available for this algorithm");
    }
    if (alg_name &&
        (cf_header_add(&h, CF_UPLOAD_CHECKSUM_ALG, strlen(CF_UPLOAD_CHECKSUM_ALG), cf_checksum_name(alg)) ||
         cf_header_add(&h, CF_UPLOAD_CHECKSUM_TYPE, strlen(CF_UPLOAD_CHECKSUM_TYPE),
                       full ? "FULL_OBJECT" : "COMPOSITE"))) {
        cf_header_list_cleanup(&h);
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    }
    char id[CF_STORE_UPLOAD_ID_LEN + 1];
    cf_err err;
    int rc = cf_store_upload_create(r->srv->store, r->bucket, r->key, r->keylen, h.kv, h.n, id, &err);
    cf_header_list_cleanup(&h);
    if (rc)
        return cf_respond_failure(r, &err, CF_S3_ON_BUCKET, 0);
    cf_buf b;
    cf_buf_init(&b, 64 << 10);
    cf_buf_puts(&b, CF_XML_DECL "<InitiateMultipartUploadResult xmlns=\"" CF_S3_XMLNS "\">");
    cf_xml_elem(&b, "Bucket", r->bucket);
    cf_xml_open(&b, "Key");
    cf_xml_escape(&b, r->key, r->keylen);
    cf_xml_close(&b, "Key");
    cf_xml_elem(&b, "UploadId", id);
    cf_xml_close(&b, "InitiateMultipartUploadResult");
    if (!alg_name || cf_buf_error(&b)) /* cf_respond_xml refuses a document that lost a part */
        return cf_respond_xml(r, 200, &b);
    size_t len;
    char *data = cf_buf_steal(&b, &len);
    cf_http_response *resp = cf_rate_body_buffer(r, data, len, 0);
    if (!resp)
        return 0;
    cf_http_add_header(resp, "Content-Type", "application/xml");
    cf_http_add_header(resp, "x-amz-checksum-algorithm", cf_checksum_name(alg));
    cf_http_add_header(resp, "x-amz-checksum-type", full ? "FULL_OBJECT" : "COMPOSITE");
    r->bytes_out = len;
    return cf_respond(r, 200, resp);
}

int cf_upload_part_begin(cf_request *r, cf_err *refusal)
{
    unsigned long number;
    if (parse_uint(cf_request_param(r, "partNumber"), MAX_PART_NUMBER, &number) != 0 || number == 0)
        return cf_s3_refuse(refusal, CF_S3_InvalidArgument,
                            "Part number must be an integer between 1 and 10000, inclusive");
    r->part_number = (uint32_t)number;
    cf_store_upload u;
    cf_s3_error e = find_upload(r, &u);
    if (e)
        return cf_s3_refuse(refusal, e, NULL);
    /* An upload that promised a checksum gets one for every part, sent or not, so that the
     * object's checksum can be computed at completion. */
    cf_checksum_alg alg;
    const char *want = cf_upload_header(&u, CF_UPLOAD_CHECKSUM_ALG);
    if (want && !r->ck && cf_checksum_alg_from_name(want, &alg) == 0) {
        r->ck_alg = alg;
        if (!(r->ck = cf_checksum_new(alg))) {
            cf_store_upload_cleanup(&u);
            return cf_s3_refuse(refusal, CF_S3_InternalError, NULL);
        }
    } else if (want && r->ck && cf_checksum_alg_from_name(want, &alg) == 0 && alg != r->ck_alg) {
        int rc = cf_s3_err_set(refusal, CF_EINVAL, CF_S3_InvalidRequest,
                               "this upload's parts carry %s checksums, not %s", want,
                               cf_checksum_name(r->ck_alg));
        cf_store_upload_cleanup(&u);
        return rc;
    }
    cf_store_upload_cleanup(&u);
    if (cf_request_header(r, "x-amz-copy-source")) {
        r->op = CF_S3_OP_UPLOAD_PART_COPY;
        r->body = BODY_NONE;
        return 0;
    }
    int rc = cf_body_begin(r, refusal);
    return rc ? rc : cf_body_open_writer(r, refusal);
}

int cf_upload_part_end(cf_request *r)
{
    cf_err refusal;
    if (cf_body_finish(r, &refusal) != 0)
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
    cf_object_info info = {0};
    cf_err err;
    cf_header_list h = {0};
    if (cf_body_checksum_header(r, &h) != 0)
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    cf_store_writer *w = r->writer;
    r->writer = NULL; /* part commit frees it, success or not */
    int rc = cf_store_part_commit(w, cf_request_param(r, "uploadId"), r->part_number, h.kv, h.n, &info, &err);
    cf_header_list_cleanup(&h);
    if (rc)
        return cf_respond_failure(r, &err, CF_S3_ON_UPLOAD, 0);
    return cf_respond_written(r, &info);
}

int cf_handle_upload_part_copy(cf_request *r)
{
    cf_copy_source src;
    cf_err refusal;
    if (cf_copy_source_open(r, 1, &src, &refusal) != 0) {
        cf_copy_source_cleanup(&src);
        return cf_respond_failure(r, &refusal, CF_S3_ON_REQUEST, 1);
    }
    cf_object_info info = {0};
    cf_err err;
    int rc = cf_copy_source_into_writer(r, &src, &r->writer);
    if (rc == 0) {
        cf_store_writer *w = r->writer;
        r->writer = NULL;
        rc = cf_store_part_commit(w, cf_request_param(r, "uploadId"), r->part_number, NULL, 0, &info, &err);
        if (rc) {
            cf_copy_source_cleanup(&src);
            return cf_respond_failure(r, &err, CF_S3_ON_UPLOAD, 0);
        }
    }
    cf_copy_source_cleanup(&src);
    if (rc)
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    return cf_respond_copied(r, "CopyPartResult", &info);
}

/* One <Part> of a CompleteMultipartUpload body. */
typedef struct wanted_part {
    uint32_t number;
    char etag[72];
    char checksum[CF_CHECKSUM_B64_MAX]; /* the <ChecksumALG> the client sent, or "" */
} wanted_part;

static void strip_etag(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in);
    while (n && (in[0] == '"' || in[0] == ' ')) {
        in++;
        n--;
    }
    while (n && (in[n - 1] == '"' || in[n - 1] == ' '))
        n--;
    snprintf(out, outlen, "%.*s", (int)n, in);
}

/* Parses the completion body; CF_S3_OK, or MalformedXML / InvalidPartOrder / InvalidArgument. */
static cf_s3_error parse_completion(cf_request *r, wanted_part **out, size_t *n)
{
    cf_xml_node *root = NULL;
    cf_err err;
    *out = NULL;
    *n = 0;
    if (!r->small.len || cf_xml_parse(r->small.data, r->small.len, &root, &err) != 0 ||
        strcmp(root->name, "CompleteMultipartUpload") != 0) {
        cf_xml_free(root);
        return CF_S3_MalformedXML;
    }
    size_t count = 0;
    for (const cf_xml_node *c = root->child; c; c = c->next)
        count += strcmp(c->name, "Part") == 0;
    if (count == 0 || count > MAX_PART_NUMBER) {
        cf_xml_free(root);
        return CF_S3_MalformedXML;
    }
    wanted_part *parts = calloc(count, sizeof *parts);
    if (!parts) {
        cf_xml_free(root);
        return CF_S3_InternalError;
    }
    cf_s3_error e = CF_S3_OK;
    for (const cf_xml_node *c = root->child; c && !e; c = c->next) {
        if (strcmp(c->name, "Part") != 0)
            continue;
        const cf_xml_node *num = cf_xml_child(c, "PartNumber"), *etag = cf_xml_child(c, "ETag");
        unsigned long v;
        if (!num || !etag || parse_uint(num->text, MAX_PART_NUMBER, &v) != 0 || v == 0) {
            e = CF_S3_MalformedXML;
            break;
        }
        if (*n && v <= parts[*n - 1].number)
            e = CF_S3_InvalidPartOrder;
        parts[*n].number = (uint32_t)v;
        strip_etag(etag->text, parts[*n].etag, sizeof parts[*n].etag);
        for (int a = 0; a < CF_CK_COUNT; a++) {
            char elem[32];
            snprintf(elem, sizeof elem, "Checksum%s", cf_checksum_name((cf_checksum_alg)a));
            const cf_xml_node *ck = cf_xml_child(c, elem);
            if (ck)
                snprintf(parts[*n].checksum, sizeof parts[*n].checksum, "%s", ck->text);
        }
        (*n)++;
    }
    cf_xml_free(root);
    if (e) {
        free(parts);
        *n = 0;
        return e;
    }
    *out = parts;
    return CF_S3_OK;
}

/* SHA-256 of the completion's part list (numbers, ETags, checksums): a retry must name the
 * same parts to get the first completion's answer. */
/* InvalidPart's elements, as AWS names the part it could not use. */
static void invalid_part_detail(cf_request *r, unsigned number, const char *etag)
{
    const char *upload_id = cf_request_param(r, "uploadId");
    cf_error_detail(r, CF_S3_InvalidPart, "UploadId", upload_id ? upload_id : "");
    cf_error_detail_u64(r, CF_S3_InvalidPart, "PartNumber", number);
    cf_error_detail(r, CF_S3_InvalidPart, "ETag", etag);
}

static int parts_digest(const wanted_part *want, size_t n, unsigned char out[32])
{
    cf_hash *h = cf_hash_new(CF_HASH_SHA256);
    if (!h)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char etag[sizeof want->etag], line[32 + sizeof want->etag + sizeof want->checksum];
        size_t e = 0;
        for (; want[i].etag[e]; e++) /* ETags compare without case, checksums (base64) with */
            etag[e] = (char)tolower((unsigned char)want[i].etag[e]);
        etag[e] = '\0';
        int len = snprintf(line, sizeof line, "%u %s %s\n", want[i].number, etag, want[i].checksum);
        cf_hash_update(h, line, (size_t)len);
    }
    int rc = cf_hash_final(h, out);
    cf_hash_free(h);
    return rc;
}

/* The 200 of a completion. checksum (may be NULL) is "<ALG> <value> <type>" as recorded. */
static int respond_completed(cf_request *r, const char *etag, const char *checksum)
{
    cf_buf b;
    cf_buf_init(&b, 64 << 10);
    const char *host = cf_request_header(r, "Host");
    cf_buf_puts(&b, CF_XML_DECL "<CompleteMultipartUploadResult xmlns=\"" CF_S3_XMLNS "\">");
    cf_xml_open(&b, "Location");
    cf_buf_printf(&b, "http://%s", host ? host : "localhost");
    cf_xml_escape(&b, r->resource, strlen(r->resource));
    cf_xml_close(&b, "Location");
    cf_xml_elem(&b, "Bucket", r->bucket);
    cf_xml_open(&b, "Key");
    cf_xml_escape(&b, r->key, r->keylen);
    cf_xml_close(&b, "Key");
    cf_buf_printf(&b, "<ETag>&quot;%s&quot;</ETag>", etag);
    char alg[16], value[64], type[16];
    if (checksum && sscanf(checksum, "%15s %63s %15s", alg, value, type) == 3) {
        char elem[32];
        snprintf(elem, sizeof elem, "Checksum%s", alg);
        cf_xml_elem(&b, elem, value);
        cf_xml_elem(&b, "ChecksumType", type);
    }
    cf_xml_close(&b, "CompleteMultipartUploadResult");
    return cf_respond_xml(r, 200, &b);
}

/*
 * A completion of an upload that no longer exists: when it completed lately with the same
 * parts, the client lost the first answer (a timeout, a dropped connection) and gets it again,
 * as AWS answers; otherwise NoSuchUpload.
 */
static int respond_retried_completion(cf_request *r)
{
    wanted_part *want = NULL;
    size_t nwant = 0;
    cf_store_completion *done = malloc(sizeof *done);
    if (!done) /* not NoSuchUpload: the upload may well have completed */
        return cf_respond_error(r, CF_S3_InternalError, NULL);
    unsigned char digest[32];
    cf_err err;
    const char *id = cf_request_param(r, "uploadId");
    int found = cf_store_upload_completed(r->srv->store, id ? id : "", done, &err) == 0 &&
                strcmp(done->bucket, r->bucket) == 0 && done->keylen == r->keylen &&
                memcmp(done->key, r->key, r->keylen) == 0;
    int same = found && parse_completion(r, &want, &nwant) == CF_S3_OK &&
               parts_digest(want, nwant, digest) == 0 && memcmp(digest, done->parts_digest, 32) == 0;
    free(want);
    int ok = same    ? respond_completed(r, done->etag, done->answer[0] ? done->answer : NULL)
             : found ? cf_respond_error(r, CF_S3_NoSuchUpload,
                                        "this upload was completed with another list of parts")
                     : cf_respond_error(r, CF_S3_NoSuchUpload, NULL);
    free(done);
    return ok;
}

/* The S3 error a refusal names, its message into msg: the completion, with its many checks,
 * answers once at its end with an S3 error and a message. */
static cf_s3_error refused(const cf_err *refusal, char *msg, size_t msglen)
{
    snprintf(msg, msglen, "%s", refusal->msg);
    return cf_s3_error_of(refusal, CF_S3_ON_REQUEST);
}

int cf_handle_complete_multipart(cf_request *r)
{
    wanted_part *want = NULL;
    size_t nwant = 0;
    cf_store_upload u = {0};
    cf_store_part *parts = NULL;
    size_t nparts = 0;
    cf_object_info rec = {0};
    cf_err err;
    char msg[160] = "";
    int rc, ok = 0;
    cf_s3_error e = find_upload(r, &u);
    if (e == CF_S3_NoSuchUpload)
        return respond_retried_completion(r);
    if (!e)
        e = parse_completion(r, &want, &nwant);
    if (!e &&
        cf_store_part_list(r->srv->store, u.id, 0, MAX_PART_NUMBER + 1, &parts, &nparts, NULL, &err) != 0)
        e = cf_s3_error_of(&err, CF_S3_ON_UPLOAD);
    if (!e && !(rec.segs = calloc(nwant, sizeof *rec.segs)))
        e = CF_S3_InternalError;

    /* The object's checksum, when the upload promised one: from the parts' checksums. */
    const char *alg_name = e ? NULL : cf_upload_header(&u, CF_UPLOAD_CHECKSUM_ALG);
    const char *ck_type = e ? NULL : cf_upload_header(&u, CF_UPLOAD_CHECKSUM_TYPE);
    cf_checksum_alg alg = CF_CK_CRC32;
    int with_ck = alg_name && cf_checksum_alg_from_name(alg_name, &alg) == 0;
    int full = with_ck && ck_type && strcmp(ck_type, "FULL_OBJECT") == 0;
    size_t cklen = with_ck ? cf_checksum_len(alg) : 0;
    unsigned char *raw_cks = with_ck ? calloc(nwant ? nwant : 1, cklen) : NULL;
    unsigned char full_acc[CF_CHECKSUM_MAX_LEN] = {0};
    char object_ck[CF_CHECKSUM_COMPOSITE_MAX] = "";
    if (!e && with_ck && !raw_cks)
        e = CF_S3_InternalError;

    cf_hash *md5 = e ? NULL : cf_hash_new(CF_HASH_MD5);
    if (!e && !md5)
        e = CF_S3_InternalError;
    /* Both lists ascend by part number: one merge finds every wanted part. */
    size_t j = 0;
    const cf_store_part *too_small = NULL;
    for (size_t i = 0; !e && i < nwant; i++) {
        while (j < nparts && parts[j].number < want[i].number)
            j++;
        if (j == nparts || parts[j].number != want[i].number ||
            strcasecmp(parts[j].info.etag, want[i].etag) != 0) {
            e = CF_S3_InvalidPart;
            snprintf(msg, sizeof msg, "part %u was not uploaded, or its ETag is not \"%s\"", want[i].number,
                     want[i].etag);
            invalid_part_detail(r, want[i].number, want[i].etag);
            break;
        }
        /* Reported only once every part is known to exist, as S3 does. */
        if (i + 1 < nwant && parts[j].info.size < MIN_PART_SIZE && !too_small)
            too_small = &parts[j];
        unsigned char d[CF_MD5_LEN];
        if (cf_hex_decode(parts[j].info.etag, CF_MD5_LEN, d) != 0) {
            e = CF_S3_InternalError;
            break;
        }
        cf_hash_update(md5, d, sizeof d);
        if (with_ck) {
            const char *have = cf_object_info_header(&parts[j].info, cf_checksum_header(alg));
            cf_err ckerr;
            if (!have || cf_checksum_decode(alg, have, strlen(have), raw_cks + i * cklen, &ckerr) != 0 ||
                (want[i].checksum[0] && strcmp(want[i].checksum, have) != 0)) {
                e = CF_S3_InvalidPart;
                snprintf(msg, sizeof msg, "part %u: its %s is missing or is not the one given",
                         want[i].number, cf_checksum_header(alg));
                invalid_part_detail(r, want[i].number, want[i].etag);
                break;
            }
            if (full && cf_checksum_combine(alg, full_acc, raw_cks + i * cklen, parts[j].info.size) != 0) {
                e = CF_S3_InternalError;
                break;
            }
        }
        rec.segs[i] = parts[j].info.segs[0];
        rec.size += parts[j].info.size;
    }
    if (!e && too_small) {
        e = CF_S3_EntityTooSmall;
        snprintf(msg, sizeof msg, "part %u is %llu bytes; every part but the last must be at least 5 MiB",
                 too_small->number, (unsigned long long)too_small->info.size);
        cf_error_detail_u64(r, e, "ProposedSize", too_small->info.size);
        cf_error_detail_u64(r, e, "MinSizeAllowed", MIN_PART_SIZE);
        cf_error_detail_u64(r, e, "PartNumber", too_small->number);
        cf_error_detail(r, e, "ETag", too_small->info.etag);
    }
    if (!e && with_ck) {
        cf_err ckerr;
        if (full) {
            cf_base64_encode(full_acc, cklen, object_ck);
            /* A client may state the whole object's checksum; it must be the one we built. */
            const char *stated = cf_request_header(r, cf_checksum_header(alg));
            if (stated && strcmp(stated, object_ck) != 0) {
                e = CF_S3_BadDigest;
                snprintf(msg, sizeof msg, "the %s you specified did not match the checksum of the parts",
                         cf_checksum_header(alg));
            }
        } else if (cf_checksum_composite(alg, raw_cks, nwant, object_ck, &ckerr) < 0) {
            e = CF_S3_InternalError;
        }
    }
    cf_header_list oh = {0};
    for (size_t i = 0; !e && i < u.nheaders; i++)
        if (strncmp(u.headers[i].name, CF_INTERNAL_HEADER_PREFIX "checksum-",
                    strlen(CF_INTERNAL_HEADER_PREFIX) + 9) != 0 &&
            cf_header_add(&oh, u.headers[i].name, strlen(u.headers[i].name), u.headers[i].value) != 0)
            e = CF_S3_InternalError;
    if (!e && with_ck &&
        (cf_header_add(&oh, cf_checksum_header(alg), strlen(cf_checksum_header(alg)), object_ck) != 0 ||
         cf_header_add(&oh, "x-amz-checksum-type", 19, full ? "FULL_OBJECT" : "COMPOSITE") != 0))
        e = CF_S3_InternalError;
    unsigned char d[CF_MD5_LEN];
    if (!e && cf_hash_final(md5, d) != 0)
        e = CF_S3_InternalError;
    if (!e) {
        cf_hex_encode(d, sizeof d, rec.etag);
        snprintf(rec.etag + 32, sizeof rec.etag - 32, "-%zu", nwant);
        rec.nsegs = nwant;
        rec.mtime_ns = cf_clock_now_ns();
        rec.headers = oh.kv;
        rec.nheaders = oh.n;
        cf_store_condition cond;
        char cond_etag[80];
        cf_store_completion *done = calloc(1, sizeof *done);
        if (done && with_ck)
            snprintf(done->answer, sizeof done->answer, "%s %s %s", cf_checksum_name(alg), object_ck,
                     full ? "FULL_OBJECT" : "COMPOSITE");
        cf_err refusal;
        if (cf_write_condition(r, &cond, cond_etag, sizeof cond_etag, &refusal) != 0)
            e = refused(&refusal, msg, sizeof msg);
        else if (!done || parts_digest(want, nwant, done->parts_digest) != 0)
            e = CF_S3_InternalError;
        if (!e) {
            snprintf(done->bucket, sizeof done->bucket, "%s", u.bucket);
            memcpy(done->key, u.key, u.keylen);
            done->keylen = u.keylen;
            snprintf(done->etag, sizeof done->etag, "%s", rec.etag);
            done->expires_ns = rec.mtime_ns + COMPLETION_KEPT_NS;
            rc = cf_store_upload_complete(r->srv->store, u.id, &rec, &cond, done, &err);
            if (rc == CF_EPRECOND) { /* the request's own conditions say which error */
                cf_write_condition_error(r, &cond, &refusal);
                e = refused(&refusal, msg, sizeof msg);
            } else if ((e = cf_s3_error_for(rc, CF_S3_ON_UPLOAD_PARTS)) == CF_S3_InvalidPart)
                snprintf(msg, sizeof msg, "a part was uploaded again while the upload completed");
            else if (e && cf_s3_error_status(e) >= 500)
                cf_log(&r->srv->log, CF_LOG_ERROR, "complete failed", "id", r->request_id, "error", err.msg,
                       NULL);
        }
        if (!e)
            ok = respond_completed(r, rec.etag, done->answer[0] ? done->answer : NULL);
        free(done);
    }
    cf_hash_free(md5);
    cf_header_list_cleanup(&oh);
    free(raw_cks);
    free(want);
    cf_store_parts_free(parts, nparts);
    free(rec.segs);
    cf_store_upload_cleanup(&u);
    if (e == CF_S3_NoSuchUpload)
        return respond_retried_completion(r);
    if (e)
        return cf_respond_error(r, e, msg[0] ? msg : NULL);
    return ok;
}

int cf_handle_abort_multipart(cf_request *r)
{
    cf_store_upload u;
    cf_s3_error e = find_upload(r, &u);
    if (e)
        return cf_respond_error(r, e, NULL);
    cf_err err;
    int rc = cf_store_upload_abort(r->srv->store, u.id, &err);
    cf_store_upload_cleanup(&u);
    if (rc)
        return cf_respond_failure(r, &err, CF_S3_ON_UPLOAD, 0);
    return cf_respond_empty(r, 204);
}

int cf_handle_list_parts(cf_request *r)
{
    cf_store_upload u;
    cf_s3_error e = find_upload(r, &u);
    if (e)
        return cf_respond_error(r, e, NULL);
    unsigned long max = LIST_MAX, marker = 0;
    const char *max_s = cf_request_param(r, "max-parts"),
               *marker_s = cf_request_param(r, "part-number-marker");
    if ((max_s && parse_uint(max_s, ULONG_MAX, &max) != 0) ||
        (marker_s && parse_uint(marker_s, UINT32_MAX, &marker) != 0)) {
        cf_store_upload_cleanup(&u);
        return cf_respond_error(r, CF_S3_InvalidArgument,
                                "max-parts and part-number-marker must be non-negative integers");
    }
    if (max > LIST_MAX)
        max = LIST_MAX;
    cf_store_part *parts;
    size_t n;
    int truncated;
    cf_err err;
    if (cf_store_part_list(r->srv->store, u.id, (uint32_t)marker, max, &parts, &n, &truncated, &err) != 0) {
        cf_store_upload_cleanup(&u);
        return cf_respond_failure(r, &err, CF_S3_ON_UPLOAD, 0);
    }
    cf_buf b;
    cf_buf_init(&b, (size_t)16 << 20);
    cf_buf_puts(&b, CF_XML_DECL "<ListPartsResult xmlns=\"" CF_S3_XMLNS "\">");
    cf_xml_elem(&b, "Bucket", r->bucket);
    cf_xml_open(&b, "Key");
    cf_xml_escape(&b, r->key, r->keylen);
    cf_xml_close(&b, "Key");
    cf_xml_elem(&b, "UploadId", u.id);
    cf_owner_xml(r, &b, "Initiator");
    cf_owner_xml(r, &b, "Owner");
    cf_xml_elem(&b, "StorageClass", "STANDARD");
    cf_xml_elem_u64(&b, "PartNumberMarker", marker);
    if (n)
        cf_xml_elem_u64(&b, "NextPartNumberMarker", parts[n - 1].number);
    cf_xml_elem_u64(&b, "MaxParts", max);
    cf_xml_elem(&b, "IsTruncated", truncated ? "true" : "false");
    for (size_t i = 0; i < n; i++) {
        char date[25];
        cf_s3_iso8601(parts[i].info.mtime_ns, date);
        cf_xml_open(&b, "Part");
        cf_xml_elem_u64(&b, "PartNumber", parts[i].number);
        cf_xml_elem(&b, "LastModified", date);
        cf_buf_printf(&b, "<ETag>&quot;%s&quot;</ETag>", parts[i].info.etag);
        cf_xml_elem_u64(&b, "Size", parts[i].info.size);
        for (int a = 0; a < CF_CK_COUNT; a++) {
            const char *v = cf_object_info_header(&parts[i].info, cf_checksum_header((cf_checksum_alg)a));
            char elem[32];
            snprintf(elem, sizeof elem, "Checksum%s", cf_checksum_name((cf_checksum_alg)a));
            if (v)
                cf_xml_elem(&b, elem, v);
        }
        cf_xml_close(&b, "Part");
    }
    cf_xml_close(&b, "ListPartsResult");
    cf_store_parts_free(parts, n);
    cf_store_upload_cleanup(&u);
    return cf_respond_xml(r, 200, &b);
}

/* A key or prefix, URL-encoded when the client asked for encoding-type=url. */
static void put_key(cf_buf *b, const char *elem, const char *key, size_t len, int url)
{
    cf_xml_open(b, elem);
    if (url) {
        cf_buf enc;
        cf_buf_init(&enc, 16384);
        if (cf_s3_url_encode_key(&enc, key, len) == 0 && enc.data)
            cf_xml_escape(b, enc.data, enc.len);
        cf_buf_cleanup(&enc);
    } else {
        cf_xml_escape(b, key, len);
    }
    cf_xml_close(b, elem);
}

static int key_before_or_at(const cf_store_upload *u, const char *key, size_t keylen)
{
    size_t n = u->keylen < keylen ? u->keylen : keylen;
    int c = memcmp(u->key, key, n);
    return c < 0 || (c == 0 && u->keylen <= keylen);
}

int cf_handle_list_multipart_uploads(cf_request *r)
{
    cf_buf prefix, delim, key_marker;
    cf_buf_init(&prefix, 4096);
    cf_buf_init(&delim, 4096);
    cf_buf_init(&key_marker, 4096);
    const char *p = cf_request_param(r, "prefix"), *d = cf_request_param(r, "delimiter");
    const char *km = cf_request_param(r, "key-marker"), *uim = cf_request_param(r, "upload-id-marker");
    const char *max_s = cf_request_param(r, "max-uploads"), *enc = cf_request_param(r, "encoding-type");
    unsigned long max = LIST_MAX;
    if ((p && cf_s3_url_decode(&prefix, p, strlen(p))) || (d && cf_s3_url_decode(&delim, d, strlen(d))) ||
        (km && cf_s3_url_decode(&key_marker, km, strlen(km))) ||
        (max_s && parse_uint(max_s, ULONG_MAX, &max) != 0) || (enc && strcmp(enc, "url") != 0)) {
        cf_buf_cleanup(&prefix);
        cf_buf_cleanup(&delim);
        cf_buf_cleanup(&key_marker);
        return cf_respond_error(r, CF_S3_InvalidArgument, "a listing parameter is not valid");
    }
    if (max > LIST_MAX)
        max = LIST_MAX;
    cf_err err;
    cf_store_upload *list = NULL;
    size_t n = 0;
    if (cf_store_bucket_exists(r->srv->store, r->bucket, &err) != 0 ||
        cf_store_upload_list(r->srv->store, r->bucket, &list, &n, &err) != 0) {
        cf_buf_cleanup(&prefix);
        cf_buf_cleanup(&delim);
        cf_buf_cleanup(&key_marker);
        return cf_respond_failure(r, &err, CF_S3_ON_BUCKET, 0);
    }
    cf_buf uploads, prefixes, b;
    cf_buf_init(&uploads, (size_t)64 << 20);
    cf_buf_init(&prefixes, (size_t)64 << 20);
    cf_buf_init(&b, (size_t)128 << 20);
    size_t emitted = 0;
    int truncated = 0, url = enc != NULL;
    const cf_store_upload *last = NULL;
    const char *last_prefix = NULL;
    size_t last_prefix_len = 0;
    for (size_t i = 0; i < n; i++) {
        const cf_store_upload *u = &list[i];
        if (prefix.len && (u->keylen < prefix.len || memcmp(u->key, prefix.data, prefix.len) != 0))
            continue;
        if (km && key_marker.len) {
            /* After the marker key; with upload-id-marker, later uploads of that key too. */
            int same = u->keylen == key_marker.len && memcmp(u->key, key_marker.data, key_marker.len) == 0;
            if (same ? !(uim && strcmp(u->id, uim) > 0)
                     : key_before_or_at(u, key_marker.data, key_marker.len))
                continue;
        }
        const char *cp = NULL;
        size_t cplen = 0;
        if (delim.len) {
            const char *rest = u->key + prefix.len;
            const char *hit = memmem(rest, u->keylen - prefix.len, delim.data, delim.len);
            if (hit) {
                cp = u->key;
                cplen = (size_t)(hit - u->key) + delim.len;
            }
        }
        if (cp && last_prefix && cplen == last_prefix_len && memcmp(cp, last_prefix, cplen) == 0)
            continue; /* rolled up into the common prefix already emitted */
        if (emitted == max) {
            truncated = 1;
            break;
        }
        emitted++;
        if (cp) {
            last_prefix = cp;
            last_prefix_len = cplen;
            cf_xml_open(&prefixes, "CommonPrefixes");
            put_key(&prefixes, "Prefix", cp, cplen, url);
            cf_xml_close(&prefixes, "CommonPrefixes");
            continue;
        }
        last = u;
        char date[25];
        cf_s3_iso8601(u->initiated_ns, date);
        cf_xml_open(&uploads, "Upload");
        put_key(&uploads, "Key", u->key, u->keylen, url);
        cf_xml_elem(&uploads, "UploadId", u->id);
        cf_owner_xml(r, &uploads, "Initiator");
        cf_owner_xml(r, &uploads, "Owner");
        cf_xml_elem(&uploads, "StorageClass", "STANDARD");
        cf_xml_elem(&uploads, "Initiated", date);
        cf_xml_close(&uploads, "Upload");
    }
    cf_buf_puts(&b, CF_XML_DECL "<ListMultipartUploadsResult xmlns=\"" CF_S3_XMLNS "\">");
    cf_xml_elem(&b, "Bucket", r->bucket);
    put_key(&b, "KeyMarker", key_marker.data ? key_marker.data : "", key_marker.len, url);
    cf_xml_elem(&b, "UploadIdMarker", uim ? uim : "");
    if (truncated && last) {
        put_key(&b, "NextKeyMarker", last->key, last->keylen, url);
        cf_xml_elem(&b, "NextUploadIdMarker", last->id);
    } else if (truncated && last_prefix) {
        put_key(&b, "NextKeyMarker", last_prefix, last_prefix_len, url);
    }
    put_key(&b, "Prefix", prefix.data ? prefix.data : "", prefix.len, url);
    if (delim.len)
        put_key(&b, "Delimiter", delim.data, delim.len, url);
    if (url)
        cf_xml_elem(&b, "EncodingType", "url");
    cf_xml_elem_u64(&b, "MaxUploads", max);
    cf_xml_elem(&b, "IsTruncated", truncated ? "true" : "false");
    if (uploads.data)
        cf_buf_append(&b, uploads.data, uploads.len);
    if (prefixes.data)
        cf_buf_append(&b, prefixes.data, prefixes.len);
    cf_xml_close(&b, "ListMultipartUploadsResult");
    for (size_t i = 0; i < n; i++)
        cf_store_upload_cleanup(&list[i]);
    free(list);
    cf_buf_cleanup(&uploads);
    cf_buf_cleanup(&prefixes);
    cf_buf_cleanup(&prefix);
    cf_buf_cleanup(&delim);
    cf_buf_cleanup(&key_marker);
    return cf_respond_xml(r, 200, &b);
}
