/*
 * etag.h - S3's ETags of bytes, and whether a stored ETag is the ETag of the bytes read.
 *
 * S3 (and every server that follows it: coffer, MinIO, s3rver) makes the ETag of an object
 * written by one PUT the MD5 of its bytes, in hex; of an object written by a multipart upload of
 * N parts, hex(md5(md5(part 1) || … || md5(part N))) followed by "-N". The part size is not
 * stored: it is the uploading client's choice. A matcher therefore tries, in one read of the
 * bytes, every part size the usual clients pick that gives N parts for the object's size
 * (etag.c lists them), each in its own MD5 state; states whose parts end at the same 64-byte
 * blocks are hashed side by side (crypto/md5.h's lanes), so two or three candidates cost little
 * more CPU than one.
 *
 * An ETag is evidence, not proof: an object encrypted with SSE-KMS or SSE-C on AWS has an ETag
 * that is not an MD5, and a multipart ETag made with an unusual part size matches none of the
 * candidates (CF_ETAG_UNKNOWN, never a mismatch). A plain MD5 ETag that differs from the MD5 of
 * the bytes is a mismatch.
 *
 * Threads: a calculator or matcher belongs to one thread at a time.
 */
#ifndef CF_MIRROR_ETAG_H
#define CF_MIRROR_ETAG_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* An unquoted ETag and its NUL: 32 hex digits, '-', up to 5 digits of part count. */
#define CF_ETAG_MAX 40
/* S3's limit on the parts of one upload; a larger count is not an S3 ETag. */
#define CF_ETAG_PARTS_MAX 10000
/* Part sizes one calculator (and so one matcher) computes at once: two passes of CF_MD5_LANES
 * lanes at most, so that an ETag's evidence costs at most about four MD5s of the bytes. */
#define CF_ETAG_SIZES_MAX 8
/* cf_etag_calc_new's part size for one PUT: the MD5 of the whole, without "-N". */
#define CF_ETAG_SINGLE 0
/* A multipart upload of one part, whatever its size ("…-1"). */
#define CF_ETAG_WHOLE UINT64_MAX

/* S3's ETag of bytes uploaded in parts of part_size: MD5 hex for one part, md5(md5s)-N else. */
typedef struct cf_etag_calc cf_etag_calc;

/* A calculator of the ETags the same bytes get with each of n part sizes (1 <= n <=
 * CF_ETAG_SIZES_MAX): CF_ETAG_SINGLE for one PUT, else the multipart ETag of parts of that many
 * bytes, the last one shorter, "…-1" when the bytes fit in one part (as a multipart upload of a
 * small object gets). CF_EINVAL for a bad n, CF_ENOMEM. Free with cf_etag_calc_free. */
int cf_etag_calc_new(const uint64_t *part_sizes, size_t n, cf_etag_calc **out, cf_err *err);
void cf_etag_calc_update(cf_etag_calc *c, const void *p, size_t n);
/* Ends the bytes: cf_etag_calc_etag is valid from then on, cf_etag_calc_update no more. */
void cf_etag_calc_final(cf_etag_calc *c);
/* The unquoted ETag for part size i (cf_etag_calc_new's order); valid until cf_etag_calc_free. */
const char *cf_etag_calc_etag(const cf_etag_calc *c, size_t i);
/* NULL is a no-op. */
void cf_etag_calc_free(cf_etag_calc *c);

/* The ETag of n bytes at p uploaded in parts of part_size (or CF_ETAG_SINGLE), unquoted, in
 * out. 0 or CF_ENOMEM. */
int cf_etag_of(const void *p, size_t n, uint64_t part_size, char out[CF_ETAG_MAX], cf_err *err);

/* Reads an ETag as listings and HEAD give it (quoted or not): its 16 bytes of MD5 and its part
 * count (0 for a single PUT's). CF_EINVAL when it is no S3 MD5 ETag (a directory's, an
 * encrypted object's opaque one, a count of 0 or above CF_ETAG_PARTS_MAX). */
int cf_etag_parse(const char *etag, unsigned char md5[16], unsigned *nparts);

/* The part sizes tried for an object of size bytes whose ETag has nparts parts (0: a single
 * PUT, the one candidate CF_ETAG_SINGLE; 1: CF_ETAG_WHOLE), most likely first: awscli/boto3's
 * 8 MiB doubled until it fits, 5 MiB (rclone, SDKs), 15 MiB (s3cmd), 16 MiB (mc, coffer), 64 MiB,
 * coffer's own rules for large objects (uploads and server-side copies), rclone's and MinIO's for
 * large files, for 10,000 parts the SDKs' even split of the size, then multiples of 1 MiB giving
 * nparts parts, smallest first. Only sizes that give exactly nparts parts; at most
 * CF_ETAG_SIZES_MAX. Returns how many it wrote (0: no part size can give nparts parts of size
 * bytes). */
size_t cf_etag_part_sizes(uint64_t size, unsigned nparts, uint64_t out[CF_ETAG_SIZES_MAX]);

typedef enum cf_etag_verdict {
    CF_ETAG_UNKNOWN = -1, /* no MD5 ETag, or a multipart one no candidate part size gives */
    CF_ETAG_MISMATCH = 0, /* an MD5 ETag the bytes do not give (with any part size, for -N) */
    CF_ETAG_MATCH = 1
} cf_etag_verdict;

/* Whether a stored ETag matches the bytes, inferring part sizes from N and the size
 * (multiples of 1 MiB, and the part sizes coffer, awscli, rclone, mc use). */
typedef struct cf_etag_match cf_etag_match;

/* A matcher of etag (as listed) against the bytes of an object of size bytes. CF_EINVAL when
 * etag is no S3 MD5 ETag (cf_etag_parse), CF_ENOMEM. Free with cf_etag_match_free. */
int cf_etag_match_new(const char *etag, uint64_t size, cf_etag_match **out, cf_err *err);
void cf_etag_match_update(cf_etag_match *m, const void *p, size_t n);
/* The verdict once every byte was given; *part_size (may be NULL) gets the matching part size
 * (CF_ETAG_SINGLE for a single PUT's), 0 otherwise. Bytes read that differ in number from the
 * size given at creation never match. Call once. */
cf_etag_verdict cf_etag_match_final(cf_etag_match *m, uint64_t *part_size);
/* After final: whether the bytes gave the ETag with part_size (1), did not (0), or part_size
 * was not among those tried (-1). With the part size that matched another copy of the same
 * object, a 0 is certain: the bytes changed, not the uploader's choice. */
int cf_etag_match_tried(const cf_etag_match *m, uint64_t part_size);
/* NULL is a no-op. */
void cf_etag_match_free(cf_etag_match *m);

#endif
