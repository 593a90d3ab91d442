/*
 * clock.h - wall clock and randomness behind one seam, so that tests can fix both
 * (SigV4 vectors need a fixed "now"; crash tests need reproducible ids).
 *
 * A cf_clock is owned by whoever needs the seam (the server, an S3 client) and passed to it in
 * its options; the owner reads "now" and draws ids and credentials through it. NULL, wherever a
 * clock is taken, means cf_clock_system. Code that has no such owner, or whose tests need no
 * fixed values, calls the cf_clock_now / cf_random_bytes family, which read the system directly.
 * Durations always come from cf_clock_mono: a fixed wall clock must not stop a timeout.
 */
#ifndef CF_CORE_CLOCK_H
#define CF_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct cf_clock {
    int64_t (*now_ns)(void *ctx);                      /* nanoseconds since the epoch */
    int (*random_bytes)(void *ctx, void *p, size_t n); /* 0 or CF_EIO */
    void *ctx;
} cf_clock;

/* The real clock and getrandom(2). */
extern const cf_clock cf_clock_system;

/* Seconds and nanoseconds since the epoch, through c (NULL: the system's). */
time_t cf_clock_time(const cf_clock *c);
int64_t cf_clock_time_ns(const cf_clock *c);
/* n random bytes through c (NULL: the system's); 0 or CF_EIO. */
int cf_clock_random(const cf_clock *c, void *p, size_t n);
/* n characters drawn uniformly from alphabet (at most 256 characters long) into out[n + 1],
 * through c: credentials. Rejection sampling, so no character is likelier than another. 0,
 * CF_EINVAL (bad alphabet) or CF_EIO. */
int cf_clock_token(const cf_clock *c, char *out, size_t n, const char *alphabet);
#define CF_ACCESS_KEY_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#define CF_SECRET_KEY_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/*
 * A clock for tests: time stands at now_ns until the test moves it (set now_ns), and the
 * random bytes are a fixed function of seed and how many were drawn before (not secret: never
 * outside tests). Owned by the test; one thread at a time.
 */
typedef struct cf_fixed_clock {
    cf_clock clock; /* pass &f.clock */
    int64_t now_ns;
    uint64_t state;
} cf_fixed_clock;
void cf_fixed_clock_init(cf_fixed_clock *f, int64_t now_ns, uint64_t seed);

/* The system's clock and randomness, for code without an owner's cf_clock. */
time_t cf_clock_now(void);
int64_t cf_clock_now_ns(void);
int cf_random_bytes(void *p, size_t n);
int cf_random_token(char *out, size_t n, const char *alphabet);

/* Seconds from a monotonic clock, for durations. */
double cf_clock_mono(void);

#endif
