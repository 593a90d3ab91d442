/*
 * body.c - a request body on its way in: its length, aws-chunked decoding, the digests that
 * guard it (signed SHA-256, Content-MD5, x-amz-checksum-*), and where the bytes go (the store
 * writer or a small buffer).
 *
 * Order of trust: bytes reach the store writer as they arrive, before an aws-chunked chunk's
 * signature or a trailing checksum can be checked; nothing is committed before
 * cf_body_complete has checked them all, and the writer is discarded otherwise.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "crypto/sigv4.h"
#include "server/request.h"
#include "server/body.h"
#include "server/header_list.h"
#include "server/response.h"

/* EntityTooLarge for a declared size, with the elements AWS adds. */
static int too_large(cf_request *r, uint64_t proposed, cf_err *refusal)
{
    cf_error_detail_u64(r, CF_S3_EntityTooLarge, "ProposedSize", proposed);
    cf_error_detail_u64(r, CF_S3_EntityTooLarge, "MaxSizeAllowed", CF_MAX_PUT_SIZE);
    return cf_s3_refuse(refusal, CF_S3_EntityTooLarge, NULL);
}

/* A digest or checksum state that could not be allocated: the client sees InternalError. */
static int out_of_memory(cf_err *refusal)
{
    return cf_s3_err_set(refusal, CF_ENOMEM, CF_S3_InternalError, "%s",
                         cf_s3_error_message(CF_S3_InternalError));
}

/* The decoded bytes, wherever they came from. */
static int consume(void *ctx, const char *data, size_t n, cf_err *err)
{
    cf_request *r = ctx;
    r->body_bytes += n;
    if (r->ck)
        cf_checksum_update(r->ck, data, n);
    switch (r->body) {
    case BODY_OBJECT:
        if (r->body_bytes > CF_MAX_PUT_SIZE) {
            r->deferred = CF_S3_EntityTooLarge;
            return cf_err_set(err, CF_ETOOBIG, "body over 5 GiB");
        }
        if (cf_store_writer_write(r->writer, data, n, err) != 0) {
            r->deferred = cf_s3_error_of(err, CF_S3_ON_REQUEST);
            cf_log(&r->srv->log, CF_LOG_ERROR, "write failed", "request", r->request_id, "error", err->msg,
                   NULL);
            return err->code;
        }
        return 0;
    case BODY_SMALL:
        if (cf_buf_append(&r->small, data, n) != 0) {
            r->deferred = CF_S3_EntityTooLarge;
            return cf_err_set(err, CF_ETOOBIG, "body too large for this request");
        }
        return 0;
    case BODY_NONE: return 0;
    }
    return 0;
}

void cf_body_take(cf_request *r, const char *data, size_t n)
{
    r->bytes_in += n;
    if (r->sha256)
        cf_hash_update(r->sha256, data, n);
    if (r->deferred)
        return; /* already failed: drain the rest so that the error can be sent */
    cf_err err;
    if (!r->chunked) {
        if (consume(r, data, n, &err) != 0 && !r->deferred)
            r->deferred = CF_S3_InternalError;
        return;
    }
    if (cf_chunked_feed(r->chunked, data, n, &err) != 0 && !r->deferred) {
        r->deferred = cf_s3_error_of(&err, CF_S3_ON_REQUEST);
        snprintf(r->deferred_msg, sizeof r->deferred_msg, "%s", err.msg);
    }
}

#define ONE_CHECKSUM "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."

/* One x-amz-checksum-* header, or the one x-amz-trailer announces.
 *
 * Only headers: x-amz-checksum-* and x-amz-sdk-checksum-algorithm in a presigned URL's query are
 * ignored, as AWS ignores them (presigned URLs do not support these checksums, and the object is
 * stored without one). The JavaScript SDK's presigner puts the CRC32 of the body it had at signing
 * time there, usually of no body at all (AAAAAA==); checking it would fail every upload. */
static int setup_checksum(cf_request *r, cf_err *refusal)
{
    int found = 0;
    for (int a = 0; a < CF_CK_COUNT; a++) {
        const char *name = cf_checksum_header((cf_checksum_alg)a);
        const char *v = cf_request_header(r, name);
        if (!v)
            continue;
        if (found && r->ck_have_expected) {
            return cf_s3_refuse(refusal, CF_S3_InvalidRequest, ONE_CHECKSUM);
        }
        found++;
        cf_err err;
        int bad = cf_checksum_decode((cf_checksum_alg)a, v, strlen(v), r->ck_expected, &err) != 0;
        if (bad)
            return cf_s3_err_set(refusal, CF_EINVAL, CF_S3_InvalidRequest, "Value for %s header is invalid.",
                                 name);
        r->ck_alg = (cf_checksum_alg)a;
        r->ck_have_expected = 1;
    }
    const char *trailer = cf_request_header(r, "x-amz-trailer");
    if (trailer) {
        cf_checksum_alg a;
        if (!r->chunked || cf_checksum_alg_from_name(trailer, &a) != 0 ||
            strncasecmp(trailer, "x-amz-checksum-", 15)) {
            return cf_s3_refuse(refusal, CF_S3_InvalidRequest,
                                "x-amz-trailer must name one x-amz-checksum-* header of an aws-chunked body");
        }
        if (found++) {
            return cf_s3_refuse(refusal, CF_S3_InvalidRequest, ONE_CHECKSUM);
        }
        r->ck_alg = a;
        r->ck_in_trailer = 1;
    }
    if (found && !(r->ck = cf_checksum_new(r->ck_alg)))
        return out_of_memory(refusal);
    return 0;
}

/* A bucket policy can let an anonymous request write. Its x-amz-content-sha256 is signed by
 * no one, yet it still says what the body is: an unsigned aws-chunked body is decoded as a
 * signed request's is (never stored with its framing), a hex digest is checked, and a signed
 * framing without a signature is refused. */
static int anonymous_payload(cf_request *r, cf_err *refusal)
{
    const char *payload = cf_request_header(r, "x-amz-content-sha256");
    if (!payload || strcmp(payload, CF_SIGV4_UNSIGNED_PAYLOAD) == 0)
        return 0;
    if (strncmp(payload, "STREAMING-", 10) == 0) {
        if (cf_chunked_mode_from_payload(payload, &r->stream_mode) != 0 ||
            r->stream_mode != CF_CHUNKED_UNSIGNED_TRAILER)
            return cf_s3_err_set(refusal, CF_EINVAL, CF_S3_InvalidRequest,
                                 "x-amz-content-sha256 '%.64s' needs a signed request", payload);
        r->stream_mode_set = 1;
        return 0;
    }
    unsigned char digest[32];
    if (strlen(payload) != 64 || cf_hex_decode(payload, sizeof digest, digest) != 0)
        return cf_s3_refuse(refusal, CF_S3_InvalidArgument,
                            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or 64 hex digits");
    for (size_t i = 0; i < 64; i++)
        r->payload_hash[i] = (char)tolower((unsigned char)payload[i]);
    r->payload_hash[64] = '\0';
    return (r->sha256 = cf_hash_new(CF_HASH_SHA256)) ? 0 : out_of_memory(refusal);
}

int cf_body_prepare(cf_request *r, cf_err *refusal)
{
    if (r->principal == CF_PRINCIPAL_ANONYMOUS) {
        int rc = anonymous_payload(r, refusal);
        if (rc)
            return rc;
    }
    if (r->stream_mode_set) {
        /* Content-Length counts the framing; the object's size is declared apart. */
        const char *decoded = cf_request_header(r, "x-amz-decoded-content-length");
        char *end;
        errno = 0;
        unsigned long long v = decoded ? strtoull(decoded, &end, 10) : 0;
        if (!decoded || errno || *end || !*decoded)
            return cf_s3_refuse(refusal, CF_S3_MissingContentLength,
                                "aws-chunked bodies need x-amz-decoded-content-length");
        if (v > CF_MAX_PUT_SIZE)
            return too_large(r, v, refusal);
        r->expected_len = v;
        r->has_length = 1;
        r->decoded_length_set = 1;
        const char *trailer = cf_request_header(r, "x-amz-trailer");
        cf_chunked_config cfg = {
            .mode = r->stream_mode,
            .amz_date = r->stream_date,
            .scope = r->stream_scope,
            .seed_signature = r->stream_seed,
            .decoded_length = v,
            .trailer_name = trailer,
            .on_data = consume,
            .ctx = r,
        };
        memcpy(cfg.signing_key, r->stream_key, sizeof cfg.signing_key);
        cf_err err;
        int rc = cf_chunked_new(&cfg, &r->chunked, &err);
        memset(cfg.signing_key, 0, sizeof cfg.signing_key);
        memset(r->stream_key, 0, sizeof r->stream_key);
        if (rc)
            return cf_s3_err_set(refusal, rc, CF_S3_InvalidRequest, "%s", err.msg);
    }
    /* CompleteMultipartUpload's x-amz-checksum-* is the whole object's checksum, which the
     * handler checks against the parts' (and may be a composite "<base64>-N"), not the part
     * list's: verifying the XML against it refused every such completion. */
    if (r->op == CF_S3_OP_COMPLETE_MULTIPART_UPLOAD)
        return 0;
    return setup_checksum(r, refusal);
}

/* Content-MD5 against the digest of the bytes received (actual), or only its syntax when actual
 * is NULL: InvalidDigest when it is not the base64 of 16 bytes, BadDigest when it differs. */
static int content_md5_verdict(cf_request *r, const unsigned char *actual, cf_err *refusal)
{
    const char *want = cf_request_header(r, "Content-MD5");
    if (!want)
        return 0;
    unsigned char d[32];
    if (cf_base64_decode(want, strlen(want), d, sizeof d) != CF_MD5_LEN)
        return cf_s3_refuse(refusal, CF_S3_InvalidDigest, NULL);
    if (!actual || memcmp(d, actual, CF_MD5_LEN) == 0)
        return 0;
    /* As AWS spells them: the client's digest in hex, the server's in base64. */
    char hex[2 * CF_MD5_LEN + 1], b64[32];
    cf_hex_encode(d, CF_MD5_LEN, hex);
    cf_base64_encode(actual, CF_MD5_LEN, b64);
    cf_error_detail(r, CF_S3_BadDigest, "CalculatedDigest", b64);
    cf_error_detail(r, CF_S3_BadDigest, "ExpectedDigest", hex);
    return cf_s3_refuse(refusal, CF_S3_BadDigest, NULL);
}

int cf_body_begin(cf_request *r, cf_err *refusal)
{
    if (!r->decoded_length_set) {
        const char *len = cf_request_header(r, "Content-Length");
        if (len) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(len, &end, 10);
            if (errno || *end || !*len)
                return cf_s3_refuse(refusal, CF_S3_InvalidArgument, "Content-Length is not a number");
            if (v > CF_MAX_PUT_SIZE)
                return too_large(r, v, refusal);
            r->expected_len = v;
            r->has_length = 1;
        } else if (!cf_request_header(r, "Transfer-Encoding")) {
            return cf_s3_refuse(refusal, CF_S3_MissingContentLength, NULL);
        }
    }
    return content_md5_verdict(r, NULL, refusal);
}

int cf_body_open_writer(cf_request *r, cf_err *refusal)
{
    cf_err err;
    if (cf_store_writer_begin(r->srv->store, &r->writer, &err) != 0) {
        cf_log(&r->srv->log, CF_LOG_ERROR, "cannot start a write", "id", r->request_id, "error", err.msg,
               NULL);
        return cf_s3_refuse(refusal, CF_S3_InternalError, NULL);
    }
    if (r->has_length)
        cf_store_writer_expect(r->writer, r->expected_len);
    r->body = BODY_OBJECT;
    return 0;
}

int cf_body_complete(cf_request *r, cf_err *refusal)
{
    if (r->deferred)
        return cf_s3_refuse(refusal, r->deferred, r->deferred_msg[0] ? r->deferred_msg : NULL);
    if (r->sha256) {
        unsigned char d[CF_SHA256_LEN];
        char hex[65];
        cf_hash_final(r->sha256, d);
        cf_hex_encode(d, sizeof d, hex);
        if (strcmp(hex, r->payload_hash) != 0) {
            cf_error_detail(r, CF_S3_XAmzContentSHA256Mismatch, "ClientComputedContentSHA256",
                            r->payload_hash);
            cf_error_detail(r, CF_S3_XAmzContentSHA256Mismatch, "S3ComputedContentSHA256", hex);
            return cf_s3_refuse(refusal, CF_S3_XAmzContentSHA256Mismatch, NULL);
        }
    }
    cf_err err;
    if (r->chunked && cf_chunked_finish(r->chunked, &err) != 0) {
        /* The decoder's message goes to the client whatever the error, as it names what was wrong
         * with the framing. */
        cf_s3_error e = cf_s3_error_of(&err, CF_S3_ON_REQUEST);
        return err.msg[0] ? cf_s3_err_set(refusal, err.code, e, "%s", err.msg)
                          : cf_s3_refuse(refusal, e, NULL);
    }
    if (r->has_length && r->body_bytes != r->expected_len)
        return cf_s3_refuse(refusal, CF_S3_IncompleteBody, NULL);
    if (r->ck_in_trailer) {
        const char *v = cf_chunked_trailer_value(r->chunked);
        if (!v || cf_checksum_decode(r->ck_alg, v, strlen(v), r->ck_expected, &err) != 0)
            return cf_s3_err_set(refusal, CF_EINVAL, CF_S3_InvalidRequest,
                                 "the trailing %s is not a valid checksum", cf_checksum_header(r->ck_alg));
        r->ck_have_expected = 1;
    }
    if (r->ck) {
        size_t n;
        if (cf_checksum_final(r->ck, r->ck_actual, &n) != 0)
            return out_of_memory(refusal);
        if (r->ck_have_expected && memcmp(r->ck_actual, r->ck_expected, n) != 0)
            /* AWS's words, naming the algorithm: "The CRC32 you specified did not match ...". */
            return cf_s3_err_set(refusal, CF_EINVAL, CF_S3_BadDigest,
                                 "The %s you specified did not match the calculated checksum.",
                                 cf_checksum_name(r->ck_alg));
        cf_base64_encode(r->ck_actual, n, r->ck_b64);
    }
    /* An XML body (DeleteObjects, tags, a policy, a part list) is acted on as soon as this
     * returns, so its Content-MD5 is checked here; an object body's is checked against the
     * digest its store writer computes (cf_body_finish). */
    if (r->body == BODY_SMALL && cf_request_header(r, "Content-MD5")) {
        unsigned char md5[CF_MD5_LEN];
        cf_md5(r->small.data ? r->small.data : "", r->small.len, md5);
        return content_md5_verdict(r, md5, refusal);
    }
    return 0;
}

int cf_body_finish(cf_request *r, cf_err *refusal)
{
    unsigned char md5[CF_MD5_LEN];
    cf_err err;
    if (cf_store_writer_finish(r->writer, md5, NULL, &err) != 0) {
        cf_log(&r->srv->log, CF_LOG_ERROR, "write failed", "id", r->request_id, "error", err.msg, NULL);
        return cf_s3_refuse(refusal, CF_S3_InternalError, NULL);
    }
    return content_md5_verdict(r, md5, refusal);
}

int cf_body_checksum_header(const cf_request *r, cf_header_list *h)
{
    if (!r->ck)
        return 0;
    const char *name = cf_checksum_header(r->ck_alg);
    return cf_header_add(h, name, strlen(name), r->ck_b64);
}

void cf_body_cleanup(cf_request *r)
{
    cf_chunked_free(r->chunked);
    r->chunked = NULL;
    cf_checksum_free(r->ck);
    r->ck = NULL;
    memset(r->stream_key, 0, sizeof r->stream_key);
}

int cf_respond_written(cf_request *r, cf_object_info *info)
{
    cf_http_response *resp = cf_http_body_empty();
    if (resp) {
        char etag[80];
        snprintf(etag, sizeof etag, "\"%s\"", info->etag);
        cf_http_add_header(resp, "ETag", etag);
        if (r->ck)
            cf_http_add_header(resp, cf_checksum_header(r->ck_alg), r->ck_b64);
    }
    cf_object_info_cleanup(info);
    return cf_respond(r, 200, resp);
}
