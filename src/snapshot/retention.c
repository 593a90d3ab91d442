#include "snapshot/retention.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum period { HOUR, DAY, WEEK, MONTH, YEAR } period;

/* A number that is equal for two times exactly when they fall in the same period (UTC). */
static int64_t bucket_of(int64_t t, period p)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    switch (p) {
    case HOUR: return t / 3600;
    case DAY: return t / 86400;
    case WEEK: {
        /* ISO 8601: weeks start on Monday; the week belongs to the year of its Thursday. */
        int wday = (tm.tm_wday + 6) % 7; /* Monday = 0 */
        int64_t monday = t / 86400 - wday;
        return monday;
    }
    case MONTH: return (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
    case YEAR: return tm.tm_year + 1900;
    }
    return 0;
}

static void add_reason(cf_retention_item *it, const char *why)
{
    size_t n = strlen(it->reasons);
    snprintf(it->reasons + n, sizeof it->reasons - n, "%s%s", n ? ", " : "", why);
    it->keep = 1;
}

static int newest_first(const void *a, const void *b)
{
    const cf_retention_item *const *x = a, *const *y = b;
    return cf_snapshot_key_cmp(&(*y)->key, &(*x)->key);
}

int cf_retention_apply(const cf_retention *policy, cf_retention_item *items, size_t n, cf_err *err)
{
    if (policy->last <= 0 && policy->hourly <= 0 && policy->daily <= 0 && policy->weekly <= 0 &&
        policy->monthly <= 0 && policy->yearly <= 0 && policy->within_s <= 0)
        return cf_err_set(err, CF_EINVAL,
                          "no retention rule given: prune would remove every snapshot; "
                          "hint: --keep-last, --keep-within or --keep-daily and friends");
    cf_retention_item **order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        items[i].keep = 0;
        items[i].reasons[0] = '\0';
        order[i] = &items[i];
    }
    qsort(order, n, sizeof *order, newest_first);
    for (size_t i = 0; i < n && (int64_t)i < policy->last; i++)
        add_reason(order[i], "last");
    if (policy->within_s > 0 && n)
        for (size_t i = 0; i < n; i++)
            if (order[0]->key.created - order[i]->key.created <= policy->within_s)
                add_reason(order[i], "within");
    static const char *const names[] = {"hourly", "daily", "weekly", "monthly", "yearly"};
    const int counts[] = {policy->hourly, policy->daily, policy->weekly, policy->monthly, policy->yearly};
    for (int p = HOUR; p <= YEAR; p++) {
        int left = counts[p];
        int64_t prev = 0;
        int have_prev = 0;
        for (size_t i = 0; i < n && left > 0; i++) {
            int64_t b = bucket_of(order[i]->key.created, (period)p);
            if (have_prev && b == prev)
                continue; /* an older snapshot of a period already represented */
            add_reason(order[i], names[p]);
            prev = b;
            have_prev = 1;
            left--;
        }
    }
    free(order);
    return 0;
}
