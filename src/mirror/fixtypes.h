/*
 * fixtypes.h - coffer mirror --fix-content-types: objects stored with a generic or wrong content
 * type get the one their bytes and name call for (ctype.h), in place.
 *
 * Each object is looked at with one ranged GET of its first CF_CTYPE_HEAD bytes, whose headers
 * tell its type and metadata (cf_repo_get_info: no HEAD besides); one that cf_ctype_needs_fix is
 * copied onto itself by the server (cf_repo_copy with the new type), its user metadata and
 * standard headers (Cache-Control, Content-Disposition, Content-Encoding, Content-Language,
 * Expires) sent again as they were: the bytes never pass through us and stay as they are, and so
 * does the ETag of an object uploaded in one part (a multipart object's ETag becomes its MD5, as
 * any S3 copy makes it). An object whose bytes are encoded (Content-Encoding other than identity)
 * is judged by its name alone: gzip bytes say nothing of what they hold.
 */
#ifndef CF_MIRROR_FIXTYPES_H
#define CF_MIRROR_FIXTYPES_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/log.h"
#include "mirror/mirror.h"
#include "storage/repo.h"

/* The types of one object whose type was (or, in a dry run, would be) changed. */
typedef struct cf_fix_change {
    char *stored;   /* the type it had ("" when none) */
    char *detected; /* the type it has now */
} cf_fix_change;

typedef struct cf_fix_summary {
    uint64_t checked;       /* objects looked at (excluded ones are not) */
    uint64_t fixed;         /* objects whose type changed (dry run: would change) */
    char **keys;            /* those objects' keys, relative to the repository, in key order */
    cf_fix_change *changes; /* changes[i] is what changed of keys[i] */
    size_t nkeys;
    cf_mirror_failure *failures; /* objects that could not be looked at or fixed, key order */
    size_t nfailures;
    double seconds;
} cf_fix_summary;

/*
 * Fixes the content types of every object of bucket (a repository: a prefix of a bucket, or a
 * directory) but those whose key matches an exclude pattern (cf_plan_excluded, as the mirror
 * applies them), on jobs threads (0: 8; at most 256). With dry_run nothing is written and the
 * summary lists what would change. An object removed while the run goes is left out; one that
 * cannot be read or copied is a failure in the summary and the others go on. Returns 0 when the
 * run went through (even with failures), an error when it could not (the listing failed, out of
 * memory); out is always filled and freed with cf_fix_summary_free.
 */
int cf_mirror_fix_content_types(cf_repo *bucket, const char *const *exclude, size_t nexclude, int jobs,
                                int dry_run, const cf_logger *log, cf_fix_summary *out, cf_err *err);
void cf_fix_summary_free(cf_fix_summary *s);

#endif
