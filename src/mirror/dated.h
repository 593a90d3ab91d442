/*
 * dated.h - nightly dated copies (coffer mirror --dated): DIR/YYYY-MM-DD holds the whole source
 * tree as it was that night, and every file unchanged since the previous copy is a hard link to
 * that copy's file, so that N nights cost one copy plus what changed. A copy is published by a
 * rename only once complete; the retention (--keep-daily/weekly/monthly, core/keep.h, the
 * snapshot prune's rules) then removes older copies. docs/MIRROR.md, "Dated mirrors".
 *
 * DIR holds, besides the dated copies, the staging directory of a night (.YYYY-MM-DD.partial)
 * and the copy a republish set aside (.YYYY-MM-DD.old); a run holds a flock on DIR itself.
 * Nothing else in DIR is ever touched: only directories named exactly YYYY-MM-DD are copies.
 */
#ifndef CF_MIRROR_DATED_H
#define CF_MIRROR_DATED_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/log.h"
#include "mirror/mirror.h"

/* "YYYY-MM-DD" plus its NUL. */
#define CF_DATED_NAME_LEN 11

typedef struct cf_dated_opts {
    const char *as_of;                         /* "YYYY-MM-DD"; NULL: today (UTC) */
    int keep_daily, keep_weekly, keep_monthly; /* all 0: keep everything */
} cf_dated_opts;

/*
 * Mirrors src into DIR/AS_OF: stages in DIR/.AS_OF.partial (cf_mirror_run with link_dest = the
 * newest earlier dated copy), renames it to DIR/AS_OF when complete (an existing DIR/AS_OF is
 * replaced only then), fsyncs DIR, then applies the retention to the dated copies. A failure
 * leaves every earlier copy intact and the partial directory for the next run to reuse (the next
 * night's run adopts an earlier night's partial directory when it has none of its own).
 *
 * o's delete_extra must be 0 (a dated copy is always the whole source: what the staging directory
 * holds beyond it is removed regardless) and link_dest NULL (chosen here). With o->dry_run
 * nothing in DIR is written or removed: out is cf_mirror_run's dry run into the staging
 * directory as it is (a missing one lists empty), and *removed names what the retention would remove. A run
 * in which any file failed publishes nothing and is CF_EIO (out->failures names the files); *removed (the
 * names of the dated copies removed, to free with cf_dated_names_free) is filled even when the retention
 * failed halfway. out must be freed with cf_mirror_summary_free whatever the result.
 */
int cf_mirror_dated(const cf_mirror_side *src, const char *dir, const cf_mirror_opts *o,
                    const cf_dated_opts *d, cf_mirror_summary *out, char ***removed, size_t *nremoved,
                    cf_err *err);
void cf_dated_names_free(char **names, size_t n);

/* The steps of cf_mirror_dated, each usable (and tested) alone. */

/* Whether name is exactly a real calendar date "YYYY-MM-DD" from 1970-01-01 to 9999-12-31
 * ("2026-02-30", "2026-1-1", "../x" are not); *day gets its midnight UTC. 0 or CF_EINVAL. */
int cf_dated_parse(const char *name, int64_t *day);
/* The name of tonight's copy into out: d->as_of once checked (CF_EINVAL with a message saying
 * what is wrong), or the UTC date of now (seconds since the epoch). */
int cf_dated_name(const cf_dated_opts *d, int64_t now, char out[CF_DATED_NAME_LEN], cf_err *err);
/* The retention over the copies names[0..n) (valid dated names, distinct, any order): keep[i]
 * set for those d's rules keep; keep_name (tonight's copy, or NULL) is kept whatever the rules
 * say; with no rule every copy is kept. */
int cf_dated_retain(const cf_dated_opts *d, const char *keep_name, const char *const *names, size_t n,
                    int *keep, cf_err *err);
/* The dated copies in dir (directories named exactly YYYY-MM-DD, symbolic links excluded),
 * sorted oldest first. */
int cf_dated_list(const char *dir, char ***names, size_t *n, cf_err *err);
/* Publishes dir/.NAME.partial as dir/NAME (replacing a copy of that name: exchanged in one
 * rename where the filesystem can, else set aside as .NAME.old, the new one renamed in, the old
 * removed) and fsyncs dir. */
int cf_dated_publish(const char *dir, const char *name, const cf_logger *log, cf_err *err);
/* cf_dated_publish over an existing copy where the filesystem cannot exchange (NFS): the copy is
 * renamed to .NAME.old, the staging directory to NAME, dir fsynced, .NAME.old removed. A crash
 * between the two renames leaves no dir/NAME: cf_mirror_dated renames .NAME.old back first. */
int cf_dated_publish_in_steps(const char *dir, const char *name, const cf_logger *log, cf_err *err);
/* Removes the tree at dir/name without following any symbolic link in it (a link is removed,
 * never what it points to); a missing name is not an error. */
int cf_dated_remove_tree(const char *dir, const char *name, cf_err *err);

#endif
