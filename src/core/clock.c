#include "core/clock.h"

#include <errno.h>
#include <string.h>
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

int cf_random_token(char *out, size_t n, const char *alphabet)
{
    size_t alen = strlen(alphabet);
    if (alen == 0 || alen > 256)
        return CF_EINVAL;
    size_t limit = 256 - 256 % alen; /* bytes at or above this would favour the first letters */
    size_t i = 0;
    while (i < n) {
        unsigned char r[64];
        if (cf_random_bytes(r, sizeof r) != 0)
            return CF_EIO;
        for (size_t j = 0; j < sizeof r && i < n; j++)
            if (r[j] < limit)
                out[i++] = alphabet[r[j] % alen];
    }
    out[n] = '\0';
    return 0;
}
