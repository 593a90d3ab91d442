/* time.c - the date formats of HTTP and S3, without locale (no strftime %a/%b). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/err.h"
#include "s3/request.h"

static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void cf_s3_http_date(time_t t, char out[30])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void cf_s3_iso8601(int64_t ns, char out[25])
{
    time_t t = (time_t)(ns / 1000000000);
    int ms = (int)((ns % 1000000000) / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 25, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

int cf_s3_parse_iso8601(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec, &used) != 6 ||
        used != 19)
        return CF_EINVAL;
    const char *p = s + used;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if (strcmp(p, "Z") != 0 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return CF_EINVAL;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

static int month_of(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (strncasecmp(s, months[i], 3) == 0)
            return i;
    return -1;
}

int cf_s3_parse_http_date(const char *s, time_t *out)
{
    struct tm tm = {0};
    char wd[16], mon[4];
    int day, year, h, m, sec, n = 0;
    /* RFC 1123: Sun, 06 Nov 1994 08:49:37 GMT */
    if (sscanf(s, "%15[A-Za-z], %2d %3s %4d %2d:%2d:%2d GMT%n", wd, &day, mon, &year, &h, &m, &sec, &n) ==
            7 &&
        n && !s[n]) {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
    } else if (sscanf(s, "%15[A-Za-z], %2d-%3s-%4d %2d:%2d:%2d GMT%n", wd, &day, mon, &year, &h, &m, &sec,
                      &n) == 7 &&
               n && !s[n]) {
        year += year < 70 ? 2000 : year < 100 ? 1900 : 0;
        /* asctime: Sun Nov  6 08:49:37 1994 */
    } else if (sscanf(s, "%15s %3s %2d %2d:%2d:%2d %4d%n", wd, mon, &day, &h, &m, &sec, &year, &n) == 7 &&
               n && !s[n]) {
    } else {
        return CF_EINVAL;
    }
    /* %d takes signs; a date with one is not a date. */
    for (const char *c = s; *c; c++)
        if (*c == '-' && (c == s || c[-1] == ' ' || c[-1] == ':'))
            return CF_EINVAL;
    if (strchr(s, '+'))
        return CF_EINVAL;
    int mo = month_of(mon);
    if (mo < 0 || day < 1 || day > 31 || h > 23 || m > 59 || sec > 60 || year < 1970 || year > 9999)
        return CF_EINVAL;
    tm.tm_year = year - 1900;
    tm.tm_mon = mo;
    tm.tm_mday = day;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    struct tm back;
    /* 31 Feb normalises to 3 Mar: refuse dates that do not survive the round trip. */
    if (!gmtime_r(&t, &back) || back.tm_mday != day || back.tm_mon != mo)
        return CF_EINVAL;
    *out = t;
    return 0;
}
