/*
 * fuzz_dated_name.c - coffer mirror --dated takes tonight's name from --as-of and recognises its
 * copies among whatever names a directory holds; a name taken for a date becomes a path and
 * decides what the retention removes. Whatever parses must be a real calendar date: midnight UTC
 * of a day from 1970 on, which formats back to exactly the input (so "../x", "2026-02-30" or
 * "2026-1-1" can never pass), and cf_dated_name must agree with cf_dated_parse.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fuzz_check.h"
#include "mirror/dated.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64)
        return 0;
    char text[65];
    memcpy(text, data, size);
    text[size] = '\0';
    int64_t day;
    int parsed = cf_dated_parse(text, &day) == 0;
    char name[CF_DATED_NAME_LEN];
    cf_dated_opts d = {.as_of = text};
    check(parsed == (cf_dated_name(&d, 0, name, NULL) == 0));
    if (!parsed)
        return 0;
    check(day >= 0 && day % 86400 == 0);
    time_t t = (time_t)day;
    struct tm tm;
    check(gmtime_r(&t, &tm) != NULL);
    char back[32];
    check(strftime(back, sizeof back, "%Y-%m-%d", &tm) == 10);
    check(strcmp(back, text) == 0);
    check(strcmp(name, text) == 0);
    return 0;
}
