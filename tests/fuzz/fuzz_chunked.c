/*
 * fuzz_chunked.c - an aws-chunked body is untrusted from its first byte, and the decoder sits
 * between the network and the store.
 *
 * Input byte 0 picks the mode (bits 0-1, modulo 3), raw or built (bit 2), whether
 * x-amz-decoded-content-length is declared (bit 3) and whether a trailer is declared (bit 4).
 *  - Raw: bytes 1-2 are the declared length (little-endian), the rest is the encoded body.
 *  - Built: byte 1 is the chunk size, byte 2 a mutation (none, flip, truncate, delete, insert,
 *    change a trailer's case), bytes 3-4 its position, byte 5 its value, the rest the payload;
 *    the body is encoded here as an SDK would (signatures with a fixed key, a CRC32 trailer)
 *    and then mutated.
 * Each body is decoded twice, whole and in pieces whose sizes come from the input.
 *
 * Postconditions, not only "no crash": both decodings agree (result, failure kind, bytes
 * delivered, bytes themselves); a success delivered exactly the declared length, and never
 * more than declared reached the consumer; an unmutated built body decodes to its payload and
 * trailer; a strict prefix of a built body fails as truncated; and in the signed modes no
 * success ever delivers bytes or a trailer other than what was signed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "core/buf.h"
#include "core/err.h"
#include "crypto/checksum.h"
#include "crypto/hash.h"
#include "crypto/sigv4.h"
#include "s3/chunked.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define AMZ_DATE "20130524T000000Z"
#define SCOPE "20130524/us-east-1/s3/aws4_request"
#define SEED "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define TRAILER "x-amz-checksum-crc32"
#define MAX_PAYLOAD 8192
#define MAX_OUT 70000

static unsigned char key[32];

typedef struct sink {
    unsigned char out[MAX_OUT];
    size_t len;
    uint64_t limit; /* the declared length, or UINT64_MAX */
} sink;

static int sink_data(void *ctx, const char *p, size_t n, cf_err *err)
{
    sink *s = ctx;
    check(n > 0);
    check(s->len + n <= s->limit); /* never past the declared length */
    check(s->len + n <= MAX_OUT);  /* nor past what the input could encode */
    memcpy(s->out + s->len, p, n);
    s->len += n;
    return 0;
}

typedef struct outcome {
    int rc;
    cf_chunked_error kind;
    uint64_t decoded;
    char trailer[CF_CHUNKED_MAX_LINE];
    int has_trailer;
} outcome;

/* steps == NULL: whole; otherwise piece sizes 1..64 cycling over steps[0..nsteps). */
static void run(const cf_chunked_config *tmpl, const unsigned char *body, size_t len, const uint8_t *steps,
                size_t nsteps, sink *s, outcome *o)
{
    cf_chunked_config c = *tmpl;
    c.ctx = s;
    s->len = 0;
    s->limit = tmpl->decoded_length;
    memset(o, 0, sizeof *o);
    cf_chunked *d = NULL;
    cf_err err;
    check(cf_chunked_new(&c, &d, &err) == 0);
    size_t off = 0, k = 0;
    while (off < len && !o->rc) {
        size_t n = steps && nsteps ? (size_t)(steps[k++ % nsteps] & 63) + 1 : len - off;
        if (n > len - off)
            n = len - off;
        o->rc = cf_chunked_feed(d, body + off, n, &err);
        off += n;
    }
    if (!o->rc)
        o->rc = cf_chunked_finish(d, &err);
    o->kind = cf_chunked_failure(d);
    o->decoded = cf_chunked_decoded(d);
    check(o->decoded == s->len);
    check((o->rc == 0) == (o->kind == CF_CHUNKED_OK));
    check(o->rc == 0 || err.code == o->rc);
    const char *t = cf_chunked_trailer_value(d);
    check(!t || o->rc == 0);
    if (t) {
        o->has_trailer = 1;
        snprintf(o->trailer, sizeof o->trailer, "%s", t);
    }
    /* A failure is final. */
    if (o->rc)
        check(cf_chunked_feed(d, "0\r\n\r\n", 5, NULL) == o->rc && cf_chunked_finish(d, NULL) == o->rc);
    cf_chunked_free(d);
    if (o->rc == 0 && tmpl->decoded_length != CF_CHUNKED_LENGTH_UNKNOWN)
        check(o->decoded == tmpl->decoded_length);
}

/* ---- an SDK-like encoder ---- */

static void next_signature(char prev[65], const char *algorithm, const char *last_line)
{
    char sts[512];
    snprintf(sts, sizeof sts, "%s\n%s\n%s\n%s\n%s", algorithm, AMZ_DATE, SCOPE, prev, last_line);
    cf_sigv4_sign(key, sts, strlen(sts), prev);
}

/* Returns the offset of the trailer line in b, or SIZE_MAX. */
static size_t encode(cf_buf *b, cf_chunked_mode mode, const unsigned char *p, size_t n, size_t chunk,
                     const char *trailer_line)
{
    size_t at = SIZE_MAX;
    char prev[65] = SEED, hex[65], line[200];
    unsigned char dg[32];
    int is_signed = mode != CF_CHUNKED_UNSIGNED_TRAILER;
    for (size_t off = 0;; off += chunk) {
        size_t len = off >= n ? 0 : n - off < chunk ? n - off : chunk;
        if (is_signed) {
            cf_sha256(p + off, len, dg);
            cf_hex_encode(dg, 32, hex);
            snprintf(line, sizeof line, "%s\n%s", EMPTY_SHA256, hex);
            next_signature(prev, "AWS4-HMAC-SHA256-PAYLOAD", line);
            cf_buf_printf(b, "%zx;chunk-signature=%s\r\n", len, prev);
        } else {
            cf_buf_printf(b, "%zx\r\n", len);
        }
        if (!len)
            break;
        cf_buf_append(b, p + off, len);
        cf_buf_puts(b, "\r\n");
    }
    if (mode != CF_CHUNKED_SIGNED && trailer_line) {
        at = b->len;
        cf_buf_printf(b, "%s\r\n", trailer_line);
    }
    if (mode == CF_CHUNKED_SIGNED_TRAILER) {
        char canon[200];
        snprintf(canon, sizeof canon, "%s%s", trailer_line ? trailer_line : "", trailer_line ? "\n" : "");
        cf_sha256(canon, strlen(canon), dg);
        cf_hex_encode(dg, 32, hex);
        next_signature(prev, "AWS4-HMAC-SHA256-TRAILER", hex);
        cf_buf_printf(b, "x-amz-trailer-signature:%s\r\n", prev);
    }
    cf_buf_puts(b, "\r\n");
    return at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static sink s1, s2;
    if (!ready) {
        cf_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3", key);
        ready = 1;
    }
    if (size < 6 || size > 16384)
        return 0;
    uint8_t flags = data[0];
    cf_chunked_mode mode = (cf_chunked_mode)((flags & 3) % 3);
    int built = flags & 4, known = flags & 8, want_trailer = (flags & 16) && mode != CF_CHUNKED_SIGNED;

    cf_chunked_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.mode = mode;
    memcpy(cfg.signing_key, key, 32);
    cfg.amz_date = AMZ_DATE;
    cfg.scope = SCOPE;
    cfg.seed_signature = SEED;
    cfg.trailer_name = want_trailer ? TRAILER : NULL;
    cfg.on_data = sink_data;

    cf_buf body;
    cf_buf_init(&body, 1 << 20);
    const unsigned char *payload = NULL;
    size_t plen = 0;
    char trailer_value[CF_CHECKSUM_B64_MAX] = "";
    int mutated = 0, truncated = 0;
    if (!built) {
        cfg.decoded_length = known ? (uint64_t)(data[1] | data[2] << 8) : CF_CHUNKED_LENGTH_UNKNOWN;
        cf_buf_append(&body, data + 3, size - 3);
    } else {
        size_t chunk = (size_t)data[1] + 1;
        payload = data + 6;
        plen = size - 6 > MAX_PAYLOAD ? MAX_PAYLOAD : size - 6;
        cfg.decoded_length = known ? plen : CF_CHUNKED_LENGTH_UNKNOWN;
        char line[100];
        unsigned char crc[4];
        cf_checksum_compute(CF_CK_CRC32, payload, plen, crc);
        cf_base64_encode(crc, 4, trailer_value);
        snprintf(line, sizeof line, "%s:%s", TRAILER, trailer_value);
        size_t trailer_at = encode(&body, mode, payload, plen, chunk, want_trailer ? line : NULL);
        check(body.len > 0);
        size_t pos = (size_t)(data[3] | data[4] << 8) % body.len;
        switch (data[2] % 6) {
        case 1:
            body.data[pos] ^= (char)(data[5] ? data[5] : 1);
            mutated = 1;
            break;
        case 2:
            body.len = pos; /* a strict prefix */
            mutated = truncated = 1;
            break;
        case 3:
            memmove(body.data + pos, body.data + pos + 1, body.len - pos - 1);
            body.len--;
            mutated = 1;
            break;
        case 4:
            cf_buf_putc(&body, 0);
            memmove(body.data + pos + 1, body.data + pos, body.len - pos - 1);
            body.data[pos] = (char)data[5];
            mutated = 1;
            break;
        case 5: { /* the trailer name's case: harmless by design */
            char *c = trailer_at != SIZE_MAX ? body.data + trailer_at + data[5] % (sizeof TRAILER - 1) : NULL;
            if (c && *c >= 'a' && *c <= 'z')
                *c ^= 0x20;
            break;
        }
        default: break;
        }
    }

    outcome whole, pieces;
    run(&cfg, (const unsigned char *)body.data, body.len, NULL, 0, &s1, &whole);
    run(&cfg, (const unsigned char *)body.data, body.len, data + 1, size - 1, &s2, &pieces);

    /* The same verdict whatever the piece boundaries. */
    check(whole.rc == pieces.rc && whole.kind == pieces.kind && whole.decoded == pieces.decoded);
    check(memcmp(s1.out, s2.out, s1.len) == 0);
    check(whole.has_trailer == pieces.has_trailer && strcmp(whole.trailer, pieces.trailer) == 0);

    if (built) {
        if (!mutated) {
            check(whole.rc == 0);
            check(s1.len == plen && memcmp(s1.out, payload, plen) == 0);
            check(whole.has_trailer == want_trailer);
            check(!want_trailer || strcmp(whole.trailer, trailer_value) == 0);
        }
        if (truncated)
            check(whole.kind == CF_CHUNKED_TRUNCATED);
        if (whole.rc == 0 && mode != CF_CHUNKED_UNSIGNED_TRAILER) {
            /* Signed: whatever was changed, what got through is what was signed. */
            check(s1.len == plen && memcmp(s1.out, payload, plen) == 0);
            check(whole.has_trailer == want_trailer);
            check(!want_trailer || strcmp(whole.trailer, trailer_value) == 0);
        }
    } else if (whole.rc == 0 && mode != CF_CHUNKED_UNSIGNED_TRAILER) {
        /* A raw body with valid signatures (the corpus has some): decodable only from SEED. */
        check(whole.decoded <= MAX_OUT);
    }
    cf_buf_cleanup(&body);
    return 0;
}
