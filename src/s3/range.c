/* range.c - the Range header (RFC 9110 byte ranges), as S3 applies it. */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "s3/request.h"

/* Digits only, no sign, no overflow; *p advanced past them. */
static int parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return CF_EINVAL;
    while (isdigit((unsigned char)*s)) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return CF_EINVAL;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

int cf_s3_range_parse(const char *header, uint64_t size, uint64_t *start, uint64_t *len)
{
    const char *p = header;
    while (*p == ' ')
        p++;
    if (strncmp(p, "bytes=", 6) != 0)
        return CF_EINVAL;
    p += 6;
    while (*p == ' ')
        p++;
    if (strchr(p, ','))
        return CF_EINVAL; /* S3 serves no multipart/byteranges: the header is ignored */
    uint64_t first, last;
    if (*p == '-') {
        p++;
        if (parse_u64(&p, &last) != 0)
            return CF_EINVAL;
        while (*p == ' ')
            p++;
        if (*p)
            return CF_EINVAL;
        if (last == 0 || size == 0)
            return CF_ERANGE;
        if (last > size)
            last = size;
        *start = size - last;
        *len = last;
        return 0;
    }
    if (parse_u64(&p, &first) != 0 || *p != '-')
        return CF_EINVAL;
    p++;
    int open_ended = !isdigit((unsigned char)*p);
    if (!open_ended && parse_u64(&p, &last) != 0)
        return CF_EINVAL;
    while (*p == ' ')
        p++;
    if (*p)
        return CF_EINVAL;
    if (!open_ended && last < first)
        return CF_EINVAL;
    if (first >= size)
        return CF_ERANGE;
    if (open_ended || last >= size)
        last = size - 1;
    *start = first;
    *len = last - first + 1;
    return 0;
}
