/* rate.h - transfer rates as people write them: "50MB/s", "250MB/s", "1.5GiB/s", "800KB/s". */
#ifndef CF_CORE_RATE_H
#define CF_CORE_RATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Decimal units as network rates are quoted (50MB/s = 50,000,000 B/s), binary ones as well. */
#define CF_RATE_UNITS "B/s, KB/s, MB/s, GB/s, KiB/s, MiB/s or GiB/s"
#define CF_RATE_MIN 1000ULL          /* 1KB/s: below it a response waits minutes per piece */
#define CF_RATE_MAX 1000000000000ULL /* 1000GB/s */
#define CF_RATE_TEXT_MAX 32          /* what cf_rate_format writes, NUL included */

/* Parses NUMBER[.FRACTION]UNIT (no spaces; fractions of a byte are dropped) into bytes/s.
 * CF_EINVAL, with a message naming the text and what is wrong with it, for anything else or a
 * rate outside CF_RATE_MIN..CF_RATE_MAX. */
int cf_rate_parse(const char *text, uint64_t *bytes_per_s, cf_err *err);
/* The rate in the largest unit that states it exactly ("250MB/s", "4MiB/s", "1234B/s"). */
void cf_rate_format(uint64_t bytes_per_s, char out[CF_RATE_TEXT_MAX]);

#endif
