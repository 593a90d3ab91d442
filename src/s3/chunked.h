/*
 * chunked.h - streaming decoder for "Content-Encoding: aws-chunked" request bodies (SigV4
 * streaming uploads), the three modes that x-amz-content-sha256 names:
 *
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD          signed chunks, no trailer
 *   STREAMING-UNSIGNED-PAYLOAD-TRAILER          plain chunks, then trailer lines
 *   STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER  signed chunks, trailer lines, trailer signature
 *
 * Wire format (RFC 9112 chunked coding with AWS's chunk extension and trailers):
 *
 *   chunk    = hex-size *( BWS ";" BWS name [ BWS "=" BWS value ] ) CRLF  data  CRLF
 *   last     = "0" *( extensions ) CRLF
 *   body     = *chunk last trailers CRLF
 *   trailers = *( name ":" OWS value OWS CRLF )             (trailer modes only)
 *
 * In the signed modes every chunk header, the last one included, carries
 * ";chunk-signature=<64 hex>", the chain of signatures of the AWS documentation
 * (sigv4-streaming): for each chunk, string to sign =
 *   "AWS4-HMAC-SHA256-PAYLOAD\n" amz-date "\n" scope "\n" previous-signature "\n"
 *   hex(sha256("")) "\n" hex(sha256(chunk data))
 * seeded with the request's own signature; and, in the signed trailer mode, after the trailers
 * "x-amz-trailer-signature:<64 hex>" over (sigv4-streaming-trailers)
 *   "AWS4-HMAC-SHA256-TRAILER\n" amz-date "\n" scope "\n" last-chunk-signature "\n"
 *   hex(sha256(trailers, each as lowercase-name ":" trimmed-value "\n"))
 *
 * Lenient where real SDKs differ (as MinIO is): hex digits of either case and leading zeros,
 * optional whitespace around extensions, unknown chunk extensions ignored (also in the unsigned
 * mode), trailer names of any case, whitespace around trailer values. Strict where it matters:
 * CRLF line ends (a bare LF is malformed), every signature checked, no bytes after the end, at
 * most CF_CHUNKED_MAX_LINE bytes in any header or trailer line, the decoded length equal to the
 * declared one, exactly the declared trailer.
 *
 * Memory is bounded and does not depend on chunk sizes: one line buffer, one SHA-256 context.
 * Decoded bytes go to the callback as soon as they arrive, in the pieces they arrived in, which
 * means BEFORE the signature of their chunk has been checked: a consumer must treat everything
 * it receives as unverified until cf_chunked_finish returns 0 (the store writer is only
 * committed after that), and it must not look at the trailer value before then either.
 *
 * Usage: cf_chunked_new, cf_chunked_feed for each piece of the body (any sizes, one byte at a
 * time works), cf_chunked_finish when the body has ended, cf_chunked_free. Not thread-safe; one
 * decoder per request.
 */
#ifndef CF_S3_CHUNKED_H
#define CF_S3_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "s3/error.h"

/* Longest chunk header or trailer line accepted, counting its CRLF (MinIO's limit). A signed
 * chunk header is about 90 bytes. */
#define CF_CHUNKED_MAX_LINE 4096
/* x-amz-decoded-content-length not given: no length check. */
#define CF_CHUNKED_LENGTH_UNKNOWN UINT64_MAX

typedef enum cf_chunked_mode {
    CF_CHUNKED_SIGNED,           /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD */
    CF_CHUNKED_UNSIGNED_TRAILER, /* STREAMING-UNSIGNED-PAYLOAD-TRAILER */
    CF_CHUNKED_SIGNED_TRAILER,   /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER */
} cf_chunked_mode;

/* Maps an x-amz-content-sha256 value to a mode. CF_ENOTSUP for the SigV4a (ECDSA) streaming
 * modes and STREAMING-UNSIGNED-PAYLOAD without trailer, CF_EINVAL for anything else (a hex hash,
 * UNSIGNED-PAYLOAD): then the body is not aws-chunked. */
int cf_chunked_mode_from_payload(const char *x_amz_content_sha256, cf_chunked_mode *out);

/*
 * Why a decoder failed; the function that failed also returned a CF_E code (in brackets) and
 * filled its cf_err with a message naming the fault and, in its detail, the S3 error to answer
 * with (after the arrow; cf_s3_error_of reads it).
 */
typedef enum cf_chunked_error {
    CF_CHUNKED_OK = 0,
    CF_CHUNKED_BAD_SIGNATURE,      /* a chunk or trailer signature is wrong or missing [CF_EAUTH]
                                      → SignatureDoesNotMatch */
    CF_CHUNKED_MALFORMED,          /* framing: bad size, missing CRLF, bad extension, bytes after
                                      the end [CF_EINVAL] → InvalidRequest */
    CF_CHUNKED_LINE_TOO_LONG,      /* a header or trailer line over CF_CHUNKED_MAX_LINE [CF_ETOOBIG]
                                      → InvalidRequest */
    CF_CHUNKED_TRUNCATED,          /* the body ended before its last chunk and trailers [CF_EINVAL]
                                      → IncompleteBody */
    CF_CHUNKED_LENGTH_MISMATCH,    /* decoded bytes differ from x-amz-decoded-content-length; found
                                      as soon as a chunk would exceed it [CF_EINVAL] → IncompleteBody */
    CF_CHUNKED_TRAILER_MISSING,    /* the declared trailer was not sent [CF_EINVAL] → InvalidRequest */
    CF_CHUNKED_TRAILER_UNEXPECTED, /* a trailer other than the declared one, a second one, or one
                                      with no trailer declared [CF_EINVAL] → InvalidRequest */
    CF_CHUNKED_CONSUMER,           /* the data callback failed [its code] → the callback's detail,
                                      else the table's error for its code (s3/error.h) */
    CF_CHUNKED_NO_MEMORY,          /* a chunk's digest or signature could not be computed
                                      [CF_ENOMEM] → InternalError */
} cf_chunked_error;

/* Stable lowercase name ("bad_signature", …) for logs. */
const char *cf_chunked_error_name(cf_chunked_error e);

/* Receives decoded payload bytes (n > 0), borrowed for the call only. Returns 0, or a negative
 * CF_E code (and fills err) to stop decoding: the decoder then fails with CF_CHUNKED_CONSUMER. */
typedef int (*cf_chunked_data_fn)(void *ctx, const char *p, size_t n, cf_err *err);

typedef struct cf_chunked_config {
    cf_chunked_mode mode;
    /* Signed modes only (ignored otherwise). All strings are copied by cf_chunked_new. */
    unsigned char signing_key[32]; /* as from cf_sigv4_signing_key / cf_sigv4_verify */
    const char *amz_date;          /* the request's x-amz-date, "20130524T000000Z" */
    const char *scope;             /* "20130524/us-east-1/s3/aws4_request" */
    const char *seed_signature;    /* the Authorization header's Signature, 64 hex, verified */
    /* All modes. */
    uint64_t decoded_length; /* x-amz-decoded-content-length, or CF_CHUNKED_LENGTH_UNKNOWN */
    /* Trailer modes: the x-amz-trailer header (one name, e.g. "x-amz-checksum-crc32"); the
     * trailer must carry exactly that header. NULL: the trailer must be empty. Ignored in
     * CF_CHUNKED_SIGNED, where no trailer may follow. */
    const char *trailer_name;
    cf_chunked_data_fn on_data; /* required */
    void *ctx;
} cf_chunked_config;

typedef struct cf_chunked cf_chunked;

/* Checks and copies the configuration. Returns 0 and *out (caller frees with cf_chunked_free),
 * or CF_EINVAL (bad configuration: a signed mode without a 64-hex seed, a date or scope
 * missing, too long or holding a newline, an over-long or malformed trailer name) or
 * CF_ENOMEM. */
int cf_chunked_new(const cf_chunked_config *cfg, cf_chunked **out, cf_err *err);

/* Decodes the next n bytes of the encoded body. Returns 0, or a negative CF_E code once the
 * body is known to be bad (see cf_chunked_error); a failure is final: later calls return the
 * same code and message without looking at their input. */
int cf_chunked_feed(cf_chunked *d, const void *p, size_t n, cf_err *err);

/* The body has ended. Returns 0 when it was complete and valid: every signature checked, the
 * decoded length equal to the declared one, the trailer as declared. Otherwise the earlier
 * failure, or CF_CHUNKED_TRUNCATED. */
int cf_chunked_finish(cf_chunked *d, cf_err *err);

/* The failure kind so far (CF_CHUNKED_OK while none). */
cf_chunked_error cf_chunked_failure(const cf_chunked *d);
/* Decoded payload bytes delivered so far. */
uint64_t cf_chunked_decoded(const cf_chunked *d);
/* After a successful cf_chunked_finish: the declared trailer's value, whitespace-trimmed (e.g.
 * the base64 of a CRC32), NUL-terminated, owned by d and valid until cf_chunked_free; NULL
 * before then, and when no trailer was declared. */
const char *cf_chunked_trailer_value(const cf_chunked *d);

void cf_chunked_free(cf_chunked *d);

#endif
