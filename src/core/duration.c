#include "core/duration.h"

#include <errno.h>
#include <stdlib.h>

#include "core/err.h"

#define MAX_SECONDS ((int64_t)100 * 365 * 86400)

int cf_duration_parse(const char *text, int64_t *seconds)
{
    if (!text || *text < '0' || *text > '9')
        return CF_EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || v <= 0)
        return CF_EINVAL;
    int64_t unit = 1;
    switch (*end) {
    case '\0':
    case 's': break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return CF_EINVAL;
    }
    if (*end && end[1])
        return CF_EINVAL;
    if (v > MAX_SECONDS / unit)
        return CF_EINVAL;
    *seconds = (int64_t)v * unit;
    return 0;
}
