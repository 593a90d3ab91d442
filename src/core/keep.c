#include "core/keep.h"

#include <stdio.h>
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

int cf_keep_has_rule(const cf_retention *p)
{
    return p->last > 0 || p->hourly > 0 || p->daily > 0 || p->weekly > 0 || p->monthly > 0 || p->yearly > 0 ||
           p->within_s > 0;
}

void cf_keep_select(const cf_retention *policy, const int64_t *times, size_t n, unsigned *kept_by)
{
    for (size_t i = 0; i < n; i++)
        kept_by[i] = 0;
    for (size_t i = 0; i < n && (int64_t)i < policy->last; i++)
        kept_by[i] |= CF_KEEP_LAST;
    if (policy->within_s > 0)
        for (size_t i = 0; i < n; i++)
            if (times[0] - times[i] <= policy->within_s)
                kept_by[i] |= CF_KEEP_WITHIN;
    const int counts[] = {policy->hourly, policy->daily, policy->weekly, policy->monthly, policy->yearly};
    for (int p = HOUR; p <= YEAR; p++) {
        int left = counts[p];
        int64_t prev = 0;
        int have_prev = 0;
        for (size_t i = 0; i < n && left > 0; i++) {
            int64_t b = bucket_of(times[i], (period)p);
            if (have_prev && b == prev)
                continue; /* an older item of a period already represented */
            kept_by[i] |= CF_KEEP_HOURLY << p;
            prev = b;
            have_prev = 1;
            left--;
        }
    }
}

void cf_keep_reasons(unsigned kept_by, char *out, size_t cap)
{
    static const char *const names[] = {"last", "within", "hourly", "daily", "weekly", "monthly", "yearly"};
    size_t used = 0;
    if (cap)
        out[0] = '\0';
    for (unsigned r = 0; r < sizeof names / sizeof *names; r++) {
        if (!(kept_by & (1u << r)) || used >= cap)
            continue;
        int w = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", names[r]);
        used += w > 0 ? (size_t)w : 0;
    }
}
