/*
 * clock.h - wall clock and randomness behind one seam, so that tests can fix both
 * (SigV4 vectors need a fixed "now"; crash tests need reproducible ids).
 */
#ifndef CF_CORE_CLOCK_H
#define CF_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Seconds since the epoch. Uses the override when one is set. */
time_t cf_clock_now(void);
/* Nanoseconds since the epoch (for mtimes). */
int64_t cf_clock_now_ns(void);
/* Seconds from a monotonic clock, for durations. */
double cf_clock_mono(void);
/* Tests only: make cf_clock_now() return t; 0 restores the real clock. */
void cf_clock_set_override(time_t t);

/* Fills p with n cryptographically random bytes; returns 0 or CF_EIO. */
int cf_random_bytes(void *p, size_t n);

#endif
