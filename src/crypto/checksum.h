/*
 * checksum.h - S3's additional checksums (x-amz-checksum-*): CRC32, CRC32C, CRC64NVME, SHA-1
 * and SHA-256, computed incrementally, plus the two multipart forms.
 *
 * Byte order: a checksum's raw value is what S3 base64-encodes into the header, so CRCs come
 * out big-endian (CRC32 0xCBF43926 is the bytes cb f4 39 26, "y/Q5Jg=="); SHA digests are their
 * usual bytes.
 *
 * Speed: CRC32C uses the SSE4.2 crc32 instruction when the CPU has it (checked once at run
 * time), three streams interleaved so its latency is hidden; otherwise, and for CRC32 and
 * CRC64NVME, slice-by-8 tables. SHA goes through OpenSSL (crypto/hash.h). The tables are built
 * once, on first use, and are safe to share between threads; a cf_checksum handle is not.
 *
 * Multipart uploads have two kinds of object checksum:
 *  - composite (any algorithm): the checksum of the concatenated raw part checksums, written
 *    "<base64>-<number of parts>" (cf_checksum_composite);
 *  - full object (CRCs only): the CRC of the whole object, which the CRC combine functions
 *    compute from the parts' CRCs and lengths without reading the data again.
 */
#ifndef CF_CRYPTO_CHECKSUM_H
#define CF_CRYPTO_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef enum cf_checksum_alg {
    CF_CK_CRC32,     /* CRC-32/ISO-HDLC, as zlib: reflected 0xEDB88320, init and xorout ~0 */
    CF_CK_CRC32C,    /* CRC-32/ISCSI (Castagnoli): reflected 0x82F63B78, init and xorout ~0 */
    CF_CK_CRC64NVME, /* CRC-64/NVME: reflected 0x9A6C9329AC4BC9B5, init and xorout ~0 */
    CF_CK_SHA1,
    CF_CK_SHA256,
} cf_checksum_alg;

#define CF_CK_COUNT 5
#define CF_CHECKSUM_MAX_LEN 32 /* raw bytes of the longest checksum (SHA-256) */
#define CF_CHECKSUM_B64_MAX 45 /* its base64 (44 characters) and a NUL */
/* "<base64>-<parts>" with up to 10 digits of parts, and a NUL. */
#define CF_CHECKSUM_COMPOSITE_MAX (CF_CHECKSUM_B64_MAX + 11)

/* Accepts the algorithm names of x-amz-checksum-algorithm and x-amz-sdk-checksum-algorithm
 * ("CRC32", "CRC64NVME", "SHA256"), the header suffixes ("crc32c"), and the full header names
 * ("x-amz-checksum-sha1"), all case-insensitively. CF_EINVAL for anything else (CF_EINVAL with
 * no message: callers name the header the value came from). */
int cf_checksum_alg_from_name(const char *name, cf_checksum_alg *out);
/* "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256": the x-amz-checksum-algorithm spelling. */
const char *cf_checksum_name(cf_checksum_alg alg);
/* "x-amz-checksum-crc32" … "x-amz-checksum-sha256", lowercase. */
const char *cf_checksum_header(cf_checksum_alg alg);
/* Raw length: 4, 4, 8, 20 or 32. */
size_t cf_checksum_len(cf_checksum_alg alg);
/* 1 for the CRCs, which can be combined (full-object multipart checksums), 0 for SHA. */
int cf_checksum_is_crc(cf_checksum_alg alg);

/* Incremental checksum. cf_checksum_new returns NULL when out of memory (or alg is out of
 * range); caller frees with cf_checksum_free (NULL is fine). */
typedef struct cf_checksum cf_checksum;
cf_checksum *cf_checksum_new(cf_checksum_alg alg);
cf_checksum_alg cf_checksum_get_alg(const cf_checksum *ck);
void cf_checksum_update(cf_checksum *ck, const void *p, size_t n);
/* Writes the raw checksum (cf_checksum_len bytes, at most CF_CHECKSUM_MAX_LEN) to out and its
 * length to *len (len may be NULL); ck is then reset, ready for new data. 0, or CF_ENOMEM when a
 * SHA could not be computed (out then matches nothing). */
int cf_checksum_final(cf_checksum *ck, unsigned char *out, size_t *len);
/* Like cf_checksum_final, base64-encoded into out (NUL-terminated); returns the length, or
 * CF_ENOMEM. */
long cf_checksum_final_base64(cf_checksum *ck, char out[CF_CHECKSUM_B64_MAX]);
void cf_checksum_reset(cf_checksum *ck);
void cf_checksum_free(cf_checksum *ck);

/* One shot: raw checksum of n bytes into out (cf_checksum_len(alg) bytes). Returns 0, or
 * CF_ENOMEM (SHA only). */
int cf_checksum_compute(cf_checksum_alg alg, const void *p, size_t n, unsigned char *out);

/* Decodes a header or trailer value: strict base64 that must decode to exactly
 * cf_checksum_len(alg) bytes. Returns 0 or CF_EINVAL (message names the header). */
int cf_checksum_decode(cf_checksum_alg alg, const char *b64, size_t len,
                       unsigned char out[CF_CHECKSUM_MAX_LEN], cf_err *err);

/* Raw CRCs, zlib-style: crc is the value so far (0 to start), the pre- and post-inversion are
 * done inside, so cf_crc32(cf_crc32(0, a, n), b, m) == cf_crc32(0, ab, n + m). */
uint32_t cf_crc32(uint32_t crc, const void *p, size_t n);
uint32_t cf_crc32c(uint32_t crc, const void *p, size_t n);
uint64_t cf_crc64nvme(uint64_t crc, const void *p, size_t n);

/* Test and benchmark seams: CRC32C from the tables whatever the CPU, and 1 when cf_crc32c uses
 * the SSE4.2 instruction instead. */
uint32_t cf_crc32c_portable(uint32_t crc, const void *p, size_t n);
int cf_crc32c_accelerated(void);

/* The CRC of A followed by B from crc_a = CRC(A), crc_b = CRC(B) and len_b = |B|, in
 * O(log len_b). */
uint32_t cf_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);
uint32_t cf_crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);
uint64_t cf_crc64nvme_combine(uint64_t crc_a, uint64_t crc_b, uint64_t len_b);

/* The same on raw (big-endian) checksum bytes, for a full-object multipart checksum built part
 * by part: acc holds the checksum of the parts so far (start with the first part's, or with the
 * checksum of no data, which is all zeros for every CRC here), part that of the next part of
 * part_len bytes; acc is updated in place. CF_EINVAL for SHA algorithms. */
int cf_checksum_combine(cf_checksum_alg alg, unsigned char *acc, const unsigned char *part,
                        uint64_t part_len);

/* Composite ("checksum of checksums") multipart checksum: alg over the nparts raw part
 * checksums concatenated in part order (raw_parts holds nparts * cf_checksum_len(alg) bytes),
 * formatted "<base64>-<nparts>" into out. Returns the length written, or a negative CF_E code
 * (CF_EINVAL when nparts is 0 or above UINT32_MAX, CF_ENOMEM). */
int cf_checksum_composite(cf_checksum_alg alg, const unsigned char *raw_parts, size_t nparts,
                          char out[CF_CHECKSUM_COMPOSITE_MAX], cf_err *err);
/* The same when the caller streamed the raw part checksums into ck itself (one
 * cf_checksum_update per part); ck is reset afterwards. */
int cf_checksum_final_composite(cf_checksum *ck, size_t nparts, char out[CF_CHECKSUM_COMPOSITE_MAX],
                                cf_err *err);

#endif
