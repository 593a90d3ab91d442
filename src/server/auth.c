/*
 * auth.c - who sent the request: AWS Signature Version 4, in the Authorization header or in the
 * query string of a presigned URL. The signer is root or a stored access key; a request with
 * neither is anonymous. Authentication only names the principal: what it may do is decided
 * afterwards by access.c (anonymous: what a bucket policy makes public).
 *
 * A signed request must sign every x-amz-* header it carries (sigv4.h says which and why), so
 * that holding a presigned URL or replaying a captured request changes nothing its signer did not
 * sign. An anonymous request signs nothing and is not held to this: its headers can ask only for
 * what the anonymous principal may do anyway, and access.c checks each operation they lead to
 * (an x-amz-copy-source makes a PUT a CopyObject, which is checked as one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "crypto/sigv4.h"
#include "server/request.h"
#include "server/access.h"
#include "server/auth.h"
#include "server/response.h"

/* The request's headers as SigV4 sees them. */
typedef struct signed_view {
    cf_request *r;
    cf_buf joined; /* the last repeated header looked up, its instances joined by ',' */
} signed_view;

typedef struct header_join {
    const char *name;
    cf_buf *out;
    int count, failed;
} header_join;

static int join_instance(void *cls, const char *key, size_t key_size, const char *value, size_t value_size)
{
    (void)key_size;
    header_join *j = cls;
    if (strcasecmp(key, j->name) != 0)
        return 1;
    if ((j->count++ && cf_buf_putc(j->out, ',')) ||
        cf_buf_append(j->out, value ? value : "", value ? value_size : 0))
        j->failed = 1;
    return 1;
}

/* cf_request_header returns the first instance only; signing that one alone would let a copy of a
 * signed header with another value ride along unsigned. */
static const char *header_cb(void *ctx, const char *name)
{
    signed_view *v = ctx;
    const char *first = cf_request_header(v->r, name);
    if (!first)
        return NULL;
    v->joined.len = 0;
    if (v->joined.data)
        v->joined.data[0] = '\0';
    header_join j = {name, &v->joined, 0, 0};
    cf_http_each_header(v->r->http, join_instance, &j);
    if (j.count <= 1)
        return first;
    /* Too long to join: a value that cannot match any signature. */
    return j.failed ? "" : v->joined.data;
}

typedef struct header_walk {
    cf_sigv4_header_visit_fn visit;
    void *arg;
    int stopped;
} header_walk;

static int visit_header(void *cls, const char *key, size_t key_size, const char *value, size_t value_size)
{
    (void)key_size;
    (void)value;
    (void)value_size;
    header_walk *w = cls;
    w->stopped = w->visit(w->arg, key);
    return w->stopped ? 0 : 1;
}

static int each_header_cb(void *ctx, cf_sigv4_header_visit_fn visit, void *arg)
{
    signed_view *v = ctx;
    header_walk w = {visit, arg, 0};
    cf_http_each_header(v->r->http, visit_header, &w);
    return w.stopped;
}

static void signed_view_init(signed_view *v, cf_request *r)
{
    v->r = r;
    cf_buf_init(&v->joined, 64 * 1024); /* no header section is larger */
}

/* AccessDenied for x-amz-* headers left out of the signature, naming them as AWS does. */
static int refuse_unsigned(cf_request *r, const cf_sigv4_request *req, const char *signed_headers,
                           cf_err *refusal)
{
    cf_buf names;
    cf_buf_init(&names, sizeof r->headers_not_signed - 1);
    cf_sigv4_unsigned_headers(req, signed_headers, &names);
    snprintf(r->headers_not_signed, sizeof r->headers_not_signed, "%s", names.data ? names.data : "");
    cf_buf_cleanup(&names);
    cf_log(&r->srv->log, CF_LOG_INFO, "headers not signed", "id", r->request_id, "headers",
           r->headers_not_signed, NULL);
    return cf_s3_err_set(refusal, CF_EDENIED, CF_S3_AccessDenied, "%s", CF_SIGV4_UNSIGNED_HEADERS_MESSAGE);
}

/* The refusal with AWS's own message for e. */
static int refuse(cf_err *refusal, int code, cf_s3_error e)
{
    return cf_s3_err_set(refusal, code, e, "%s", cf_s3_error_message(e));
}

/* "41 57 53 34": how AWS spells out StringToSignBytes and CanonicalRequestBytes. */
static void detail_bytes(cf_request *r, const char *name, const cf_buf *text)
{
    static const char hex[] = "0123456789abcdef";
    cf_buf b;
    cf_buf_init(&b, CF_ERROR_DETAIL_MAX);
    for (size_t i = 0; i < text->len; i++) {
        unsigned char c = (unsigned char)text->data[i];
        char three[3] = {hex[c >> 4], hex[c & 15], ' '};
        if (cf_buf_append(&b, three, i + 1 < text->len ? 3 : 2))
            break;
    }
    if (b.len + 1 >= 3 * text->len)
        cf_error_detail(r, CF_S3_SignatureDoesNotMatch, name, b.data ? b.data : "");
    cf_buf_cleanup(&b);
}

/* SignatureDoesNotMatch's elements, as AWS returns them: what the server signed, so that the
 * client can compare it with what it signed. Only the client's own request is echoed back; the
 * secret and the signing key derived from it are never part of it. */
static void explain_mismatch(cf_request *r, const cf_sigv4_request *req, const cf_sigv4_auth *auth,
                             const char *amz_date, int presigned)
{
    const cf_s3_error e = CF_S3_SignatureDoesNotMatch;
    cf_buf creq, sts;
    cf_err err;
    cf_buf_init(&creq, CF_ERROR_DETAIL_MAX / 8);
    cf_buf_init(&sts, 4096);
    cf_error_detail(r, e, "AWSAccessKeyId", auth->access_key);
    if (cf_sigv4_explain_mismatch(req, auth, amz_date, presigned, &creq, &sts, &err) == 0) {
        cf_error_detail(r, e, "StringToSign", sts.data);
        cf_error_detail(r, e, "SignatureProvided", auth->signature);
        detail_bytes(r, "StringToSignBytes", &sts);
        cf_error_detail(r, e, "CanonicalRequest", creq.data);
        detail_bytes(r, "CanonicalRequestBytes", &creq);
    } else {
        cf_error_detail(r, e, "SignatureProvided", auth->signature);
    }
    cf_buf_cleanup(&creq);
    cf_buf_cleanup(&sts);
}

/* RequestTimeTooSkewed's elements: the time as sent, the server's, and the tolerance. */
static void explain_skew(cf_request *r, const char *amz_date)
{
    const cf_s3_error e = CF_S3_RequestTimeTooSkewed;
    char now[32];
    time_t t = cf_clock_time(r->srv->clock);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cf_error_detail(r, e, "RequestTime", amz_date);
    cf_error_detail(r, e, "ServerTime", now);
    cf_error_detail(r, e, "MaxAllowedSkewMilliseconds", "900000");
}

typedef struct params {
    cf_sigv4_param *list;
    size_t n, cap;
    cf_buf decoded; /* storage of the decoded names and values */
    int bad;
} params;

static int collect_param(void *cls, const char *key, size_t key_size, const char *value, size_t value_size)
{
    params *p = cls;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        cf_sigv4_param *l = realloc(p->list, cap * sizeof *l);
        if (!l) {
            p->bad = 1;
            return 0;
        }
        p->list = l;
        p->cap = cap;
    }
    /* Offsets, not pointers: the buffer may move while it grows. */
    size_t koff = p->decoded.len;
    if (cf_s3_url_decode(&p->decoded, key, key_size) || cf_buf_putc(&p->decoded, '\0')) {
        p->bad = 1;
        return 0;
    }
    size_t voff = p->decoded.len;
    if (cf_s3_url_decode(&p->decoded, value ? value : "", value ? value_size : 0) ||
        cf_buf_putc(&p->decoded, '\0')) {
        p->bad = 1;
        return 0;
    }
    p->list[p->n].name = (const char *)(uintptr_t)koff;
    p->list[p->n].value = (const char *)(uintptr_t)voff;
    p->n++;
    return 1;
}

/* The decoded query parameters into p (pointers into p->decoded); -1 when they are not valid
 * percent-encoding or memory ran out. */
static int load_params(cf_request *r, params *p)
{
    cf_buf_init(&p->decoded, 64 * 1024);
    cf_http_each_param(r->http, collect_param, p);
    if (p->bad)
        return -1;
    for (size_t i = 0; i < p->n; i++) {
        p->list[i].name = p->decoded.data + (uintptr_t)p->list[i].name;
        p->list[i].value = p->decoded.data + (uintptr_t)p->list[i].value;
    }
    return 0;
}

static void params_cleanup(params *p)
{
    free(p->list);
    cf_buf_cleanup(&p->decoded);
}

/* Looks up the signer: root, or a stored key (copied into r->grant, which then also holds its
 * secret). *principal is what the request becomes once the signature is verified; the access
 * key is recorded already, so that the access log names who tried even when it fails. */
static int find_signer(cf_request *r, const char *access_key, const char **secret, cf_principal *principal,
                       cf_err *refusal)
{
    if (strcmp(access_key, r->srv->root.access_key) == 0) {
        snprintf(r->access_key, sizeof r->access_key, "%s", access_key);
        *secret = r->srv->root.secret_key;
        *principal = CF_PRINCIPAL_ROOT;
        return 0;
    }
    cf_err err;
    int rc = cf_store_key_get(r->srv->store, access_key, &r->grant, &err);
    cf_s3_error e = cf_s3_error_for(rc, CF_S3_ON_ACCESS_KEY);
    if (e == CF_S3_InvalidAccessKeyId)
        cf_error_detail(r, e, "AWSAccessKeyId", access_key);
    else if (e)
        cf_log(&r->srv->log, CF_LOG_ERROR, "access key lookup failed", "id", r->request_id, "error", err.msg,
               NULL);
    if (e)
        return refuse(refusal, rc, e);
    snprintf(r->access_key, sizeof r->access_key, "%s", access_key);
    *secret = r->grant.secret_key;
    *principal = CF_PRINCIPAL_KEY;
    return 0;
}

/* The path the client signed: for virtual-host style, the one before the bucket moved in. */
static const char *signed_path(const cf_request *r)
{
    return r->signed_path ? r->signed_path : r->resource ? r->resource : "/";
}

static int check_header_auth(cf_request *r, const char *authz, params *p, cf_err *refusal)
{
    if (strncmp(authz, "AWS4-HMAC-SHA256", 16) != 0)
        return cf_s3_err_set(
            refusal, CF_ENOTSUP, CF_S3_InvalidArgument,
            "Unsupported Authorization Type: only AWS Signature Version 4 (AWS4-HMAC-SHA256) is supported");
    cf_sigv4_auth auth;
    cf_err err;
    if (cf_sigv4_parse_auth(authz, &auth, &err) != 0)
        return cf_s3_err_set(refusal, err.code, CF_S3_AuthorizationHeaderMalformed,
                             "malformed Authorization header: %s", err.msg);
    if (strcmp(auth.region, r->srv->region) != 0) {
        /* SDKs read <Region> to sign again for the right region (botocore's region redirector). */
        cf_error_detail(r, CF_S3_AuthorizationHeaderMalformed, "Region", r->srv->region);
        return cf_s3_err_set(
            refusal, CF_EINVAL, CF_S3_AuthorizationHeaderMalformed,
            "The authorization header is malformed; the region '%s' is wrong; expecting '%s'", auth.region,
            r->srv->region);
    }
    const char *secret;
    cf_principal principal;
    int rc = find_signer(r, auth.access_key, &secret, &principal, refusal);
    if (rc)
        return rc;

    const char *amz_date = cf_request_header(r, "x-amz-date");
    if (!amz_date)
        return cf_s3_err_set(refusal, CF_EAUTH, CF_S3_AccessDenied,
                             "AWS authentication requires a valid x-amz-date header");
    const char *payload = cf_request_header(r, "x-amz-content-sha256");
    /* AWS requires the header; curl --aws-sigv4 omits it and signs the hash of an empty
     * body. Accept that, and the body check below still holds the request to it. */
    if (!payload)
        payload = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    /* aws-chunked: the literal STREAMING-… value is what the seed signature covers; the
     * chunks are checked one by one as they arrive (body.c, s3/chunked.h). */
    int streaming = strncmp(payload, "STREAMING-", 10) == 0;
    if (streaming) {
        int mrc = cf_chunked_mode_from_payload(payload, &r->stream_mode);
        if (mrc == CF_ENOTSUP)
            return cf_s3_err_set(
                refusal, mrc, CF_S3_NotImplemented,
                "%.64s bodies (SigV4a) are not supported; use STREAMING-AWS4-HMAC-SHA256-PAYLOAD", payload);
        if (mrc)
            return cf_s3_err_set(refusal, mrc, CF_S3_InvalidArgument,
                                 "x-amz-content-sha256 '%.64s' is not a known payload type", payload);
        r->stream_mode_set = 1;
    }
    int unsigned_payload = streaming || strcmp(payload, CF_SIGV4_UNSIGNED_PAYLOAD) == 0;
    if (!unsigned_payload) {
        unsigned char tmp[32];
        if (strlen(payload) != 64 || cf_hex_decode(payload, 32, tmp) != 0)
            return cf_s3_err_set(refusal, CF_EINVAL, CF_S3_InvalidArgument,
                                 "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or 64 hex digits");
    }

    signed_view view;
    signed_view_init(&view, r);
    cf_sigv4_request req = {r->method, signed_path(r), p->list, p->n,
                            header_cb, &view,          payload, each_header_cb};
    int vrc = cf_sigv4_verify(r->srv->keys, &req, &auth, secret, amz_date,
                              (int64_t)cf_clock_time(r->srv->clock), streaming ? r->stream_key : NULL, &err);
    if (vrc == CF_EDENIED)
        refuse_unsigned(r, &req, auth.signed_headers, refusal);
    if (vrc == CF_EAUTH)
        explain_mismatch(r, &req, &auth, amz_date, 0);
    cf_buf_cleanup(&view.joined);
    if (vrc == CF_EDENIED)
        return vrc;
    cf_s3_error e = cf_s3_error_for(vrc, CF_S3_ON_SIGNATURE);
    if (e == CF_S3_RequestTimeTooSkewed)
        explain_skew(r, amz_date);
    if (e) /* a malformed request's AccessDenied says what is wrong with it */
        return cf_s3_err_set(refusal, vrc, e, "%s", vrc == CF_EINVAL ? err.msg : cf_s3_error_message(e));
    r->principal = principal;
    if (streaming) {
        snprintf(r->stream_date, sizeof r->stream_date, "%s", amz_date);
        snprintf(r->stream_scope, sizeof r->stream_scope, "%s/%s/%s/aws4_request", auth.date, auth.region,
                 auth.service);
        snprintf(r->stream_seed, sizeof r->stream_seed, "%s", auth.signature);
    }
    if (!unsigned_payload) {
        snprintf(r->payload_hash, sizeof r->payload_hash, "%s", payload);
        for (char *c = r->payload_hash; *c; c++)
            if (*c >= 'A' && *c <= 'F')
                *c = (char)(*c - 'A' + 'a');
        r->sha256 = cf_hash_new(CF_HASH_SHA256);
        if (!r->sha256)
            return refuse(refusal, CF_ENOMEM, CF_S3_InternalError);
    }
    return 0;
}

/* A presigned URL. Its payload is never signed (UNSIGNED-PAYLOAD), so r->sha256 stays NULL and
 * a PUT's body is checked only against Content-MD5, when the client sends one. */
static int check_query_auth(cf_request *r, params *p, cf_err *refusal)
{
    cf_sigv4_query_auth q;
    cf_err err;
    if (cf_sigv4_parse_query_auth(p->list, p->n, &q, &err) != 0)
        return cf_s3_err_set(refusal, err.code, CF_S3_AuthorizationQueryParametersError, "%s", err.msg);
    if (strcmp(q.auth.region, r->srv->region) != 0) {
        cf_error_detail(r, CF_S3_AuthorizationQueryParametersError, "Region", r->srv->region);
        return cf_s3_err_set(
            refusal, CF_EINVAL, CF_S3_AuthorizationQueryParametersError,
            "Error parsing the X-Amz-Credential parameter; the region '%s' is wrong; expecting '%s'",
            q.auth.region, r->srv->region);
    }
    const char *secret;
    cf_principal principal;
    int rc = find_signer(r, q.auth.access_key, &secret, &principal, refusal);
    if (rc)
        return rc;
    signed_view view;
    signed_view_init(&view, r);
    cf_sigv4_request req = {r->method, signed_path(r), p->list, p->n, header_cb, &view, NULL, each_header_cb};
    int64_t now = (int64_t)cf_clock_time(r->srv->clock);
    int vrc = cf_sigv4_verify_query(r->srv->keys, &req, &q, secret, now, &err);
    if (vrc == CF_EDENIED)
        refuse_unsigned(r, &req, q.auth.signed_headers, refusal);
    if (vrc == CF_EAUTH)
        explain_mismatch(r, &req, &q.auth, q.amz_date, 1);
    cf_buf_cleanup(&view.joined);
    if (vrc == CF_EDENIED)
        return vrc;
    cf_s3_error e = cf_s3_error_for(vrc, CF_S3_ON_PRESIGNED_URL);
    if (!e) {
        r->principal = principal;
        return 0;
    }
    /* AWS's exact messages for a URL used out of its time: clients and people search for them. */
    const char *msg = vrc == CF_EPRECOND ? (now > q.time ? "Request has expired" : "Request is not yet valid")
                      : vrc == CF_EINVAL ? err.msg
                                         : cf_s3_error_message(e);
    return cf_s3_err_set(refusal, vrc, e, "%s", msg);
}

int cf_auth_check(cf_request *r, cf_err *refusal)
{
    r->principal = CF_PRINCIPAL_ANONYMOUS;
    /* Browsers send a preflight without credentials, to the very URL (presigned query and all)
     * of the request to come; S3 does not check that query against OPTIONS. */
    if (r->op == CF_S3_OP_CORS_PREFLIGHT)
        return 0;
    params p = {0};
    int rc;
    if (load_params(r, &p) != 0) {
        rc = cf_s3_err_set(refusal, CF_EINVAL, CF_S3_InvalidArgument,
                           "the query string is not valid percent-encoding");
        goto out;
    }
    const char *authz = cf_request_header(r, "Authorization");
    int presigned = cf_sigv4_has_query_auth(p.list, p.n);
    if (authz && presigned) {
        /* Two signatures could name two different signers; AWS refuses the pair too. */
        rc =
            cf_s3_err_set(refusal, CF_EINVAL, CF_S3_InvalidArgument,
                          "only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                          "Signature query string parameter or the Authorization header should be specified");
    } else if (authz) {
        rc = check_header_auth(r, authz, &p, refusal);
    } else if (presigned) {
        rc = check_query_auth(r, &p, refusal);
    } else {
        rc = 0; /* anonymous: cf_access_check decides */
    }
out:
    params_cleanup(&p);
    return rc;
}
