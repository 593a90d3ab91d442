/*
 * verify.h - coffer mirror --verify: proof that a destination holds what a source holds.
 *
 * Both sides are listed (cf_repo_list) and the excludes applied to each. A key of the source
 * absent from the destination is missing; a key only in the destination is extra (informative:
 * a mirror without --delete keeps such files). Every key on both sides is read whole from each
 * side (cf_repo_stream, `jobs` keys at a time) and the SHA-256 of the bytes compared: neither
 * side's claim is trusted (a listing's size, mtime or ETag), since a file changed behind the
 * mirror's back with the same size and mtime, or an object whose stored bytes rotted under the
 * server, still lists as before. Keys whose listed sizes differ are different without a read.
 *
 * An S3 side's ETag is evidence besides (mirror/etag.h): an object whose bytes do not give its
 * ETag is different even when the two sides' bytes agree ("ETag does not match bytes"), and when
 * the bytes differ, the side whose bytes contradict its own ETag is named as the one that
 * changed. Each side's bytes are read once; MD5 is computed only for an S3 side with an MD5
 * ETag. The cost is every byte read once per side: docs/MIRROR.md, "Verify".
 */
#ifndef CF_MIRROR_VERIFY_H
#define CF_MIRROR_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "core/log.h"
#include "mirror/mirror.h"

struct json_t;

/* Which side holds bytes other than the mirror meant, when the evidence tells. */
typedef enum cf_verify_side {
    CF_VERIFY_SIDE_UNKNOWN = 0,
    CF_VERIFY_SIDE_SOURCE,
    CF_VERIFY_SIDE_DESTINATION,
    CF_VERIFY_SIDE_BOTH
} cf_verify_side;

/* Lists hold the keys relative to each side, in key order (bytewise); all owned by the summary. */
typedef struct cf_verify_summary {
    uint64_t files_checked, bytes_checked; /* the source's files after excludes; bytes compared */
    char **missing;
    size_t nmissing; /* in SRC, absent from DST */
    char **different;
    size_t ndifferent; /* checksum differs */
    char **extra;
    size_t nextra; /* in DST only (informative) */
    /* Beyond the contract's fields: why[i] says what differs in different[i] (a sentence naming
     * the side when known) and side[i] which side it is. */
    char **why;
    cf_verify_side *side;
    uint64_t bytes_read; /* both sides together */
    /* Files whose bytes agree on both sides although a side's ETag is not what those bytes give:
     * not a finding (AWS's SSE-KMS and SSE-C ETags are not MD5s, so a migration to such a bucket
     * would otherwise fail every file), but each is logged as a warning and counted here. */
    uint64_t etag_unexplained;
    double seconds;
} cf_verify_summary;

/* Compares src and dst as above. jobs: keys read at once, 1..256 (0: 8). Returns 0 when the
 * comparison went through, whatever it found (out's lists); an error only when it could not
 * (a side could not be listed, out of memory, bad arguments). A key that cannot be read is
 * different, with the reason in why; one gone from the destination since the listing, missing.
 * out is always filled (zeroed on error) and freed with cf_verify_summary_free. log may be NULL. */
int cf_mirror_verify(const cf_mirror_side *src, const cf_mirror_side *dst, const char *const *exclude,
                     size_t nexclude, int jobs, const cf_logger *log, cf_verify_summary *out, cf_err *err);
void cf_verify_summary_free(cf_verify_summary *s);

/* Whether the mirror is proven: nothing missing, nothing different (extra files allowed). */
int cf_verify_summary_ok(const cf_verify_summary *s);
/* The summary's piece of the human summary line: "verified N: M missing, D different". */
void cf_verify_summary_line(const cf_verify_summary *s, char *out, size_t cap);
/* One line per finding to f, key order within each kind: "coffer mirror: KEY: missing from the
 * destination", "coffer mirror: KEY: WHY", "coffer mirror: KEY: only in the destination". Control
 * characters and backslashes of keys (and of WHY, which may quote one) are written as \xNN, so
 * that a key cannot forge a line or drive the terminal. */
void cf_verify_summary_report(const cf_verify_summary *s, FILE *f);
/* Sets obj's "verify" member: {"checked", "bytes", "missing": [...], "different": [...],
 * "extra": [...], "findings": [{"key", "why", "side"}]} (side: "source", "destination", "both"
 * or null). A key that is not UTF-8 is given with its other bytes as \xNN. 0 or CF_ENOMEM. */
int cf_verify_summary_json(const cf_verify_summary *s, struct json_t *obj);

#endif
