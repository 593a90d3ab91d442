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
/* n characters drawn uniformly from alphabet (at most 256 characters long) into out[n + 1]:
 * credentials. Rejection sampling, so no character is likelier than another. */
int cf_random_token(char *out, size_t n, const char *alphabet);
#define CF_ACCESS_KEY_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#define CF_SECRET_KEY_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

#endif
