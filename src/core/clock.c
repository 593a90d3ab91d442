#include "core/clock.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "core/err.h"

static int64_t system_now_ns(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int system_random_bytes(void *ctx, void *p, size_t n)
{
    (void)ctx;
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

const cf_clock cf_clock_system = {system_now_ns, system_random_bytes, NULL};

int64_t cf_clock_time_ns(const cf_clock *c)
{
    if (!c)
        c = &cf_clock_system;
    return c->now_ns(c->ctx);
}

time_t cf_clock_time(const cf_clock *c)
{
    int64_t ns = cf_clock_time_ns(c);
    /* Floor, so that a time just before the epoch is not rounded up into it. */
    return (time_t)(ns >= 0 ? ns / 1000000000 : -((-ns + 999999999) / 1000000000));
}

int cf_clock_random(const cf_clock *c, void *p, size_t n)
{
    if (!c)
        c = &cf_clock_system;
    return c->random_bytes(c->ctx, p, n);
}

int cf_clock_token(const cf_clock *c, char *out, size_t n, const char *alphabet)
{
    size_t alen = strlen(alphabet);
    if (alen == 0 || alen > 256)
        return CF_EINVAL;
    size_t limit = 256 - 256 % alen; /* bytes at or above this would favour the first letters */
    size_t i = 0;
    while (i < n) {
        unsigned char r[64];
        if (cf_clock_random(c, r, sizeof r) != 0)
            return CF_EIO;
        for (size_t j = 0; j < sizeof r && i < n; j++)
            if (r[j] < limit)
                out[i++] = alphabet[r[j] % alen];
    }
    out[n] = '\0';
    return 0;
}

static int64_t fixed_now_ns(void *ctx)
{
    return ((cf_fixed_clock *)ctx)->now_ns;
}

/* splitmix64: every seed gives a full-period, well-mixed stream. */
static int fixed_random_bytes(void *ctx, void *p, size_t n)
{
    cf_fixed_clock *f = ctx;
    unsigned char *out = p;
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (f->state += 0x9e3779b97f4a7c15u);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        out[i] = (unsigned char)(z ^ (z >> 31));
    }
    return 0;
}

void cf_fixed_clock_init(cf_fixed_clock *f, int64_t now_ns, uint64_t seed)
{
    f->clock = (cf_clock){fixed_now_ns, fixed_random_bytes, f};
    f->now_ns = now_ns;
    f->state = seed;
}

time_t cf_clock_now(void)
{
    return cf_clock_time(NULL);
}

int64_t cf_clock_now_ns(void)
{
    return cf_clock_time_ns(NULL);
}

int cf_random_bytes(void *p, size_t n)
{
    return cf_clock_random(NULL, p, n);
}

int cf_random_token(char *out, size_t n, const char *alphabet)
{
    return cf_clock_token(NULL, out, n, alphabet);
}

double cf_clock_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
