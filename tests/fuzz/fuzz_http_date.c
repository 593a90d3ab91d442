/*
 * fuzz_http_date.c - If-Modified-Since, If-Unmodified-Since and the copy-source conditions carry
 * client-chosen dates. Whatever parses must be a real instant that formats back (RFC 1123) to a
 * string parsing to the same instant; nothing may crash or read past the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char text[257];
    memcpy(text, data, size);
    text[size] = '\0';
    time_t t;
    if (cf_s3_parse_http_date(text, &t) != 0)
        return 0;
    if (t < 0)
        abort(); /* years before 1970 are refused */
    char back[30];
    cf_s3_http_date(t, back);
    time_t again;
    if (cf_s3_parse_http_date(back, &again) != 0 || again != t)
        abort();
    return 0;
}
