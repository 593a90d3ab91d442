/* duration.h - human durations on the command line: "90s", "15m", "1h", "7d", "3600". */
#ifndef CF_CORE_DURATION_H
#define CF_CORE_DURATION_H

#include <stdint.h>

/* Parses a positive number with an optional unit s, m, h or d (bare numbers are seconds) into
 * *seconds. CF_EINVAL for anything else, zero, or more than 100 years. */
int cf_duration_parse(const char *text, int64_t *seconds);

#endif
