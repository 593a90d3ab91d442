/*
 * sigv4.h - AWS Signature Version 4 for S3: parse the Authorization header, build the canonical
 * request and string to sign, derive the signing key, sign and verify.
 *
 * The module does no I/O and keeps no state: the caller supplies every input (including the
 * request time), so that AWS's published vectors can be checked byte for byte. The one thing worth
 * keeping between calls, derived signing keys, lives in a cf_sigv4_key_cache that its owner (the
 * server, an S3 client) creates and passes in; without one every key is derived again.
 *
 * Two ways to carry a signature: the Authorization header (cf_sigv4_parse_auth, cf_sigv4_verify)
 * and the query string of a presigned URL (cf_sigv4_parse_query_auth, cf_sigv4_verify_query;
 * cf_sigv4_presign builds one). Both sign the same canonical request; a presigned one leaves
 * X-Amz-Signature out of the canonical query string and always signs UNSIGNED-PAYLOAD.
 *
 * S3 rules (which differ from the generic SigV4 suite): the canonical URI is the *decoded* path
 * URI-encoded once (unreserved A-Za-z0-9-._~ kept, '/' kept, everything else %XX uppercase), with
 * no dot-segment normalisation and no double encoding.
 */
#ifndef CF_CRYPTO_SIGV4_H
#define CF_CRYPTO_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define CF_SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define CF_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define CF_SIGV4_MAX_SIGNED_HEADERS 64
#define CF_SIGV4_MAX_EXPIRES 604800 /* seven days: AWS's limit for X-Amz-Expires */

/* The parts of "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,
 * SignedHeaders=host;range;x-amz-date, Signature=<64 hex>". */
typedef struct cf_sigv4_auth {
    char access_key[129];
    char date[9]; /* YYYYMMDD from the credential scope */
    char region[64];
    char service[32];
    char signed_headers[2048]; /* as sent: lowercase names joined by ';', sorted */
    char signature[65];        /* 64 lowercase hex digits */
} cf_sigv4_auth;

/* Parses an Authorization header value. Tolerates spaces after commas, any order of the three
 * components. Fails with CF_EINVAL and a message naming the bad part (the message never contains
 * the signature). */
int cf_sigv4_parse_auth(const char *header, cf_sigv4_auth *out, cf_err *err);

/* A decoded query parameter: name and value as the client meant them ("" for a bare name). */
typedef struct cf_sigv4_param {
    const char *name;
    const char *value;
} cf_sigv4_param;

/* Returns the value of a request header by lowercase name (several instances joined by ',', as
 * SigV4 signs them: a second instance added to a signed header then breaks the signature), or
 * NULL when absent. The pointer must stay valid until the function is called again or the sigv4
 * call returns. */
typedef const char *(*cf_sigv4_header_fn)(void *ctx, const char *lowercase_name);

/* Called with the name of one request header, as received (any case); a nonzero return stops
 * the walk. */
typedef int (*cf_sigv4_header_visit_fn)(void *arg, const char *name);
/* Calls visit for every header of the request, a repeated header once per instance, until visit
 * returns nonzero; returns 0 when every header was visited, else visit's value. */
typedef int (*cf_sigv4_each_header_fn)(void *ctx, cf_sigv4_header_visit_fn visit, void *arg);

typedef struct cf_sigv4_request {
    const char *method;           /* "GET" */
    const char *path;             /* decoded path, e.g. "/bucket/my key" */
    const cf_sigv4_param *params; /* decoded query parameters, any order */
    size_t nparams;
    cf_sigv4_header_fn header;
    void *header_ctx;
    const char *payload_hash; /* hex SHA-256, UNSIGNED-PAYLOAD or a STREAMING-… value */
    /* Every header name, with header_ctx. Required by the verify functions (which refuse
     * unsigned x-amz-* headers); signing does not use it. */
    cf_sigv4_each_header_fn each_header;
} cf_sigv4_request;

/*
 * Which headers a request must sign beyond those it chose to: every x-amz-* header it carries
 * (AWS refuses the rest with AccessDenied, "There were headers present in the request which were
 * not signed", listing them in <HeadersNotSigned>), for header authentication and presigned URLs
 * alike. An unsigned x-amz-copy-source would turn a presigned PUT into a copy of another object,
 * an unsigned x-amz-meta-* or x-amz-tagging would be stored with a replayed one.
 *
 * The one exception is x-amz-content-sha256: its value is the canonical request's payload line,
 * so it is covered whether listed or not (and a presigned URL signs UNSIGNED-PAYLOAD and never
 * reads the header). Names are compared without regard to case; "x-amzn-trace-id" is not an
 * x-amz- header.
 */
#define CF_SIGV4_UNSIGNED_HEADERS_MESSAGE "There were headers present in the request which were not signed"

/* 1 when a header of this name (any case) must be listed in SignedHeaders, else 0. */
int cf_sigv4_header_must_be_signed(const char *name);

/* Appends to out (when non-NULL) the lowercase names of the request's headers that must be signed
 * but are not in signed_headers, joined by ", ", each name once, as far as out's maximum allows.
 * Returns how many header instances are missing from the list (0: the request is fine), or
 * CF_EINVAL when req->each_header is NULL. */
int cf_sigv4_unsigned_headers(const cf_sigv4_request *req, const char *signed_headers, cf_buf *out);

/* URI-encodes n bytes of s (S3 rules above) onto out; '/' is kept when keep_slash. */
int cf_sigv4_uri_encode(cf_buf *out, const char *s, size_t n, int keep_slash);

/* Appends the canonical request to out. signed_headers is the ';'-joined lowercase list; a
 * signed header that the request lacks is CF_EINVAL (named in the message). Header values are
 * trimmed and inner runs of spaces collapsed to one. */
int cf_sigv4_canonical_request(const cf_sigv4_request *req, const char *signed_headers, cf_buf *out,
                               cf_err *err);

/* Appends "AWS4-HMAC-SHA256\n<amz_date>\n<date>/<region>/<service>/aws4_request\n<hex sha256
 * of canonical request>" to out. */
int cf_sigv4_string_to_sign(const char *amz_date, const char *date, const char *region, const char *service,
                            const char *canonical_request, size_t len, cf_buf *out);

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
 * 0, or CF_ENOMEM (OpenSSL could not allocate; key is then zeroed and must not be used). */
int cf_sigv4_signing_key(const char *secret, const char *date, const char *region, const char *service,
                         unsigned char key[32]);

/*
 * The last few derived signing keys. A key changes once a day per access key, yet deriving one
 * costs four HMACs, most of a small request's signature check. Entries are found by a SHA-256
 * of the secret, so a cache never holds a secret. Thread-safe. Wherever a cache is taken, NULL
 * means none: the key is derived each time.
 */
typedef struct cf_sigv4_key_cache cf_sigv4_key_cache;
/* 0 or CF_ENOMEM; freed (and its keys wiped) with cf_sigv4_key_cache_free; NULL is a no-op. */
int cf_sigv4_key_cache_new(cf_sigv4_key_cache **out);
void cf_sigv4_key_cache_free(cf_sigv4_key_cache *cache);
/* As cf_sigv4_signing_key, through cache. */
int cf_sigv4_cached_signing_key(cf_sigv4_key_cache *cache, const char *secret, const char *date,
                                const char *region, const char *service, unsigned char key[32]);

/* hex(HMAC(key, string_to_sign)) into hex (65 bytes, NUL-terminated). 0, or CF_ENOMEM (hex then
 * holds random digits, which match nothing, and must not be sent). */
int cf_sigv4_sign(const unsigned char key[32], const char *string_to_sign, size_t len, char hex[65]);

/* Parses "YYYYMMDDTHHMMSSZ" into seconds since the epoch; CF_EINVAL when malformed. */
int cf_sigv4_parse_amz_date(const char *s, int64_t *out);

/* Formats t as "YYYYMMDDTHHMMSSZ" (out: 17 bytes). */
void cf_sigv4_format_amz_date(int64_t t, char out[17]);

/*
 * Full server-side check of a header-signed request, keys the verifier's cache (or NULL). secret
 * is the secret key of
 * auth->access_key (the caller looked it up). amz_date is the x-amz-date header (or Date).
 * now is the server's clock; the request is refused when |now - amz_date| > 15 minutes.
 * Returns 0 when the signature matches and every header that must be signed is; CF_EAUTH
 * (signature mismatch), CF_EDENIED (signature matches, but an x-amz-* header is not signed: see
 * cf_sigv4_unsigned_headers; the message is CF_SIGV4_UNSIGNED_HEADERS_MESSAGE), CF_EINVAL
 * (malformed: bad date, scope date not matching amz_date, missing signed header, service not
 * "s3", "host" not signed, req->each_header NULL), CF_EPRECOND (clock skew) or CF_ENOMEM with a
 * message that never contains the secret.
 * When signing_key_out is non-NULL, the derived signing key is copied there (for verifying
 * aws-chunked chunk signatures later).
 */
int cf_sigv4_verify(cf_sigv4_key_cache *keys, const cf_sigv4_request *req, const cf_sigv4_auth *auth,
                    const char *secret, const char *amz_date, int64_t now, unsigned char *signing_key_out,
                    cf_err *err);

/* ---- Presigned URLs (query-string authentication) ---- */

/* The X-Amz-* parameters of a presigned URL, checked for form (not yet for the signature). */
typedef struct cf_sigv4_query_auth {
    cf_sigv4_auth auth; /* from X-Amz-Credential, X-Amz-SignedHeaders, X-Amz-Signature */
    char amz_date[17];  /* X-Amz-Date, YYYYMMDDTHHMMSSZ; its date is auth.date */
    int64_t time;       /* the same, in seconds since the epoch */
    int64_t expires;    /* X-Amz-Expires, 1..CF_SIGV4_MAX_EXPIRES */
} cf_sigv4_query_auth;

/* 1 when the decoded parameters ask for query-string authentication (X-Amz-Algorithm,
 * X-Amz-Credential or X-Amz-Signature is present), else 0. Names are case-sensitive, as in S3. */
int cf_sigv4_has_query_auth(const cf_sigv4_param *params, size_t n);

/* Reads the six X-Amz-* parameters from the decoded parameters. CF_EINVAL (S3's
 * AuthorizationQueryParametersError) when one is missing or repeated, the algorithm is not
 * AWS4-HMAC-SHA256, the credential, signed headers, signature or date is malformed, the
 * credential's date is not X-Amz-Date's, or X-Amz-Expires is not a number in 1..604800. The
 * message names the parameter and never contains the signature. */
int cf_sigv4_parse_query_auth(const cf_sigv4_param *params, size_t n, cf_sigv4_query_auth *out, cf_err *err);

/*
 * Server-side check of a presigned request, keys the verifier's cache (or NULL). req holds every decoded
 * query parameter, the X-Amz-* ones included (X-Amz-Signature is left out of the canonical query string
 * here); req->payload_hash is ignored, since a presigned URL always signs UNSIGNED-PAYLOAD. q comes from
 * cf_sigv4_parse_query_auth; secret is the secret key of q->auth.access_key. Returns 0 when the signature
 * matches and every header that must be signed is; CF_EINVAL (service not "s3", "host" not signed, a signed
 * header missing, req->each_header NULL), CF_EPRECOND when now is outside the URL's validity (q->time more
 * than 15 minutes ahead of now: not valid yet; now past q->time + q->expires: expired — compare now with
 * q->time to tell which), CF_EAUTH (signature mismatch), CF_EDENIED (an x-amz-* header not signed, as for
 * cf_sigv4_verify) or CF_ENOMEM. Messages never contain the secret.
 */
int cf_sigv4_verify_query(cf_sigv4_key_cache *keys, const cf_sigv4_request *req, const cf_sigv4_query_auth *q,
                          const char *secret, int64_t now, cf_err *err);

/*
 * For a request that cf_sigv4_verify or cf_sigv4_verify_query refused with CF_EAUTH: appends the
 * canonical request and the string to sign the server computed (presigned: the URL's, with
 * X-Amz-Signature left out and UNSIGNED-PAYLOAD). AWS returns both in SignatureDoesNotMatch so
 * that a client can find where its signing differs; neither holds the secret nor anything derived
 * from it, only what the client sent. amz_date is as for cf_sigv4_verify (X-Amz-Date for a URL).
 */
int cf_sigv4_explain_mismatch(const cf_sigv4_request *req, const cf_sigv4_auth *auth, const char *amz_date,
                              int presigned, cf_buf *canonical_request, cf_buf *string_to_sign, cf_err *err);

/* What to presign. Every pointer is borrowed for the duration of the call. */
typedef struct cf_sigv4_presign_opts {
    const char *method;           /* "GET", "HEAD", "PUT" */
    const char *host;             /* the Host header the client will send: "127.0.0.1:9000",
                                   * without the port when it is the scheme's default */
    const char *path;             /* decoded, starting with '/': "/bucket/my key" */
    const cf_sigv4_param *params; /* extra decoded query parameters to sign (may be NULL) */
    size_t nparams;
    const char *access_key;
    const char *secret;
    const char *region;
    int64_t now;              /* becomes X-Amz-Date */
    int64_t expires;          /* seconds, 1..CF_SIGV4_MAX_EXPIRES */
    cf_sigv4_key_cache *keys; /* the signer's cache; NULL = derive the key */
} cf_sigv4_presign_opts;

/* Appends the path and query of a presigned URL to out: the path URI-encoded (slashes kept),
 * then '?', the canonical query string and "&X-Amz-Signature=<64 hex>". The caller puts
 * "scheme://host" in front. Signs only the host header and UNSIGNED-PAYLOAD. CF_EINVAL (message
 * names the bad option) or CF_ENOMEM/CF_ETOOBIG; on failure out is left as it was. */
int cf_sigv4_presign(const cf_sigv4_presign_opts *o, cf_buf *out, cf_err *err);

#endif
