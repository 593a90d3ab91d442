/*
 * fuzz_rate.c - a rate group's rate arrives in the admin API's JSON and on command lines.
 *
 * Postconditions: an accepted rate lies within CF_RATE_MIN..CF_RATE_MAX; a refusal leaves the
 * output untouched and says what it refused; and an accepted rate written back by
 * cf_rate_format parses to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "core/rate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char *text = malloc(size + 1);
    check(text);
    memcpy(text, data, size);
    text[size] = '\0';
    uint64_t v = 0x5a5a5a5a5a5a5a5aULL;
    cf_err err;
    int rc = cf_rate_parse(text, &v, &err);
    check(rc == 0 || rc == CF_EINVAL);
    if (rc) {
        check(v == 0x5a5a5a5a5a5a5a5aULL && strstr(err.msg, "rate '"));
    } else {
        check(v >= CF_RATE_MIN && v <= CF_RATE_MAX);
        char back[CF_RATE_TEXT_MAX];
        cf_rate_format(v, back);
        uint64_t again = 0;
        check(cf_rate_parse(back, &again, &err) == 0 && again == v);
    }
    free(text);
    return 0;
}
