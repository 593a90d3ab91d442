/*
 * keep.h - the rules of a retention policy over dated items, with restic's meaning of each:
 *   last N      the N most recent items
 *   hourly N    for the last N hours that have items, the most recent of each hour
 *   daily, weekly (ISO 8601 weeks), monthly, yearly N: the same per day, week, month, year
 *   within D    every item dated within D of the newest one (not of now: a set that stopped
 *               growing is not emptied by the passing of time)
 * An item is kept when any rule keeps it. Calendar periods are taken in UTC, so that the answer
 * does not depend on the machine that applies it. Snapshot prune (snapshot/retention.h) and
 * dated mirrors (mirror/dated.h) both decide with these rules, so that --keep-daily 7 means the
 * same to both commands.
 */
#ifndef CF_CORE_KEEP_H
#define CF_CORE_KEEP_H

#include <stddef.h>
#include <stdint.h>

typedef struct cf_retention {
    int last, hourly, daily, weekly, monthly, yearly;
    int64_t within_s;
} cf_retention;

/* The rules that keep an item, as bits of cf_keep_select's answer. */
enum {
    CF_KEEP_LAST = 1 << 0,
    CF_KEEP_WITHIN = 1 << 1,
    CF_KEEP_HOURLY = 1 << 2,
    CF_KEEP_DAILY = 1 << 3,
    CF_KEEP_WEEKLY = 1 << 4,
    CF_KEEP_MONTHLY = 1 << 5,
    CF_KEEP_YEARLY = 1 << 6,
};

/* Whether the policy has any rule (a policy without one keeps nothing). */
int cf_keep_has_rule(const cf_retention *policy);
/* times[0..n): seconds since the epoch, newest first; the caller's order decides between equal
 * times. kept_by[i] gets the CF_KEEP_* rules that keep item i, 0 when none does. */
void cf_keep_select(const cf_retention *policy, const int64_t *times, size_t n, unsigned *kept_by);
/* The rules of kept_by in words, "last, daily", into out (truncated to cap). */
void cf_keep_reasons(unsigned kept_by, char *out, size_t cap);

#endif
