#include "core/clock.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/random.h>

#include "core/err.h"

static _Atomic time_t clock_override;

time_t cf_clock_now(void)
{
    time_t t = atomic_load(&clock_override);
    return t ? t : time(NULL);
}

int64_t cf_clock_now_ns(void)
{
    time_t t = atomic_load(&clock_override);
    if (t)
        return (int64_t)t * 1000000000;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double cf_clock_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cf_clock_set_override(time_t t)
{
    atomic_store(&clock_override, t);
}

int cf_random_bytes(void *p, size_t n)
{
    unsigned char *out = p;
    while (n > 0) {
        ssize_t r = getrandom(out, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return CF_EIO;
        }
        out += r;
        n -= (size_t)r;
    }
    return 0;
}
