#include "core/rate.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *suffix;
    uint64_t bytes;
} units[] = {
    {"GiB/s", 1ULL << 30}, {"MiB/s", 1ULL << 20}, {"KiB/s", 1ULL << 10}, {"GB/s", 1000000000ULL},
    {"MB/s", 1000000ULL},  {"KB/s", 1000ULL},     {"B/s", 1ULL},
};
#define NUNITS (sizeof units / sizeof *units)
/* Digits beyond these cannot change a rate within the limits: the number is refused instead. */
#define MAX_INT_DIGITS 13
#define MAX_FRACTION_DIGITS 9

int cf_rate_parse(const char *text, uint64_t *bytes_per_s, cf_err *err)
{
    if (!text)
        text = "";
    const char *p = text;
    uint64_t whole = 0, frac = 0, frac_scale = 1;
    size_t nint = strspn(p, "0123456789");
    if (nint == 0)
        return cf_err_set(err, CF_EINVAL, "rate '%.40s': must begin with a number (e.g. 50MB/s)", text);
    if (nint > MAX_INT_DIGITS)
        return cf_err_set(err, CF_EINVAL, "rate '%.40s': more than the largest rate, 1000GB/s", text);
    for (size_t i = 0; i < nint; i++)
        whole = whole * 10 + (uint64_t)(p[i] - '0');
    p += nint;
    if (*p == '.') {
        size_t nfrac = strspn(p + 1, "0123456789");
        if (nfrac == 0 || nfrac > MAX_FRACTION_DIGITS)
            return cf_err_set(err, CF_EINVAL, "rate '%.40s': the fraction must have 1 to 9 digits", text);
        for (size_t i = 0; i < nfrac; i++) {
            frac = frac * 10 + (uint64_t)(p[1 + i] - '0');
            frac_scale *= 10;
        }
        p += 1 + nfrac;
    }
    size_t u = 0;
    while (u < NUNITS && strcmp(p, units[u].suffix) != 0)
        u++;
    if (u == NUNITS)
        return cf_err_set(err, CF_EINVAL, "rate '%.40s': the unit must be one of " CF_RATE_UNITS, text);
    /* whole < 10^13 and unit <= 2^30 could overflow 64 bits: compare before multiplying. */
    if (whole > CF_RATE_MAX / units[u].bytes)
        return cf_err_set(err, CF_EINVAL, "rate '%.40s': more than the largest rate, 1000GB/s", text);
    uint64_t v = whole * units[u].bytes + frac * units[u].bytes / frac_scale;
    if (v < CF_RATE_MIN || v > CF_RATE_MAX)
        return cf_err_set(err, CF_EINVAL, "rate '%.40s': must be between 1KB/s and 1000GB/s", text);
    *bytes_per_s = v;
    return 0;
}

void cf_rate_format(uint64_t bytes_per_s, char out[CF_RATE_TEXT_MAX])
{
    /* Decimal first: rates are usually set in decimal units, and 1000 B/s is "1KB/s". */
    static const size_t order[] = {3, 4, 5, 0, 1, 2, 6};
    for (size_t i = 0; i < NUNITS; i++) {
        size_t u = order[i];
        if (bytes_per_s && bytes_per_s % units[u].bytes == 0) {
            snprintf(out, CF_RATE_TEXT_MAX, "%llu%s", (unsigned long long)(bytes_per_s / units[u].bytes),
                     units[u].suffix);
            return;
        }
    }
    snprintf(out, CF_RATE_TEXT_MAX, "%lluB/s", (unsigned long long)bytes_per_s);
}
