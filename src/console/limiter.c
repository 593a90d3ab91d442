/*
 * limiter.c - failed-login windows in a hash table whose entries also form a list ordered by
 * when their window opened: the head is what to evict when the table is full, and what has
 * expired first.
 */
#include "console/limiter.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"

/* Keys are "ip:ADDR" or "user:NAME"; a longer one is cut here, which can only merge one
 * caller's own keys. */
#define KEY_MAX 160

typedef struct entry {
    struct entry *next_in_bucket;
    struct entry *older, *newer; /* by window start */
    double start;
    unsigned failures;
    char key[];
} entry;

struct cf_limiter {
    pthread_mutex_t mu;
    unsigned max_failures;
    double window_s;
    size_t max_entries, size;
    entry **buckets;
    size_t nbuckets; /* a power of two */
    uint64_t seed;   /* random, so that chosen keys cannot all land in one bucket */
    entry *oldest, *newest;
};

int cf_limiter_new(unsigned max_failures, double window_s, size_t max_entries, cf_limiter **out, cf_err *err)
{
    *out = NULL;
    if (max_failures < 1 || !(window_s > 0) || max_entries < 1)
        return cf_err_set(err, CF_EINVAL,
                          "login limiter: failures (%u), window (%g s) and entries (%zu) must be "
                          "positive",
                          max_failures, window_s, max_entries);
    cf_limiter *l = calloc(1, sizeof *l);
    if (!l)
        return cf_err_set(err, CF_ENOMEM, "out of memory creating the login limiter");
    l->max_failures = max_failures;
    l->window_s = window_s;
    l->max_entries = max_entries;
    l->nbuckets = 16;
    while (l->nbuckets < max_entries && l->nbuckets < ((size_t)1 << 20))
        l->nbuckets <<= 1;
    l->buckets = calloc(l->nbuckets, sizeof *l->buckets);
    if (!l->buckets || cf_random_bytes(&l->seed, sizeof l->seed) != 0) {
        free(l->buckets);
        free(l);
        return cf_err_set(err, CF_ENOMEM, "cannot create the login limiter (memory or randomness)");
    }
    pthread_mutex_init(&l->mu, NULL);
    *out = l;
    return 0;
}

void cf_limiter_free(cf_limiter *l)
{
    if (!l)
        return;
    for (entry *e = l->oldest, *next; e; e = next) {
        next = e->newer;
        free(e);
    }
    free(l->buckets);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static size_t key_len(const char *key)
{
    return strnlen(key, KEY_MAX);
}

static size_t bucket_of(const cf_limiter *l, const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ l->seed; /* FNV-1a, seeded */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 29;
    return (size_t)h & (l->nbuckets - 1);
}

static entry **slot_of(cf_limiter *l, const char *key, size_t len)
{
    entry **pp = &l->buckets[bucket_of(l, key, len)];
    while (*pp && !(strlen((*pp)->key) == len && memcmp((*pp)->key, key, len) == 0))
        pp = &(*pp)->next_in_bucket;
    return pp;
}

static void unlink_order(cf_limiter *l, entry *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        l->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        l->newest = e->older;
    e->older = e->newer = NULL;
}

static void append_order(cf_limiter *l, entry *e)
{
    e->older = l->newest;
    e->newer = NULL;
    if (l->newest)
        l->newest->newer = e;
    else
        l->oldest = e;
    l->newest = e;
}

/* Removes the entry *pp points at (pp from slot_of). */
static void drop(cf_limiter *l, entry **pp)
{
    entry *e = *pp;
    *pp = e->next_in_bucket;
    unlink_order(l, e);
    free(e);
    l->size--;
}

int cf_limiter_allow(cf_limiter *l, const char *key, double now, double *retry_after_s)
{
    size_t len = key_len(key);
    int allowed = 1;
    pthread_mutex_lock(&l->mu);
    entry **pp = slot_of(l, key, len);
    if (*pp) {
        double ends = (*pp)->start + l->window_s;
        if (now >= ends) {
            drop(l, pp);
        } else if ((*pp)->failures >= l->max_failures) {
            allowed = 0;
            if (retry_after_s)
                *retry_after_s = ends - now;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return allowed;
}

void cf_limiter_fail(cf_limiter *l, const char *key, double now)
{
    size_t len = key_len(key);
    pthread_mutex_lock(&l->mu);
    entry **pp = slot_of(l, key, len);
    entry *e = *pp;
    if (e && now >= e->start + l->window_s) {
        /* A new window: it opens now, so the entry moves to the young end of the order. */
        e->start = now;
        e->failures = 0;
        unlink_order(l, e);
        append_order(l, e);
    }
    if (!e) {
        if (l->size >= l->max_entries) {
            entry *victim = l->oldest;
            drop(l, slot_of(l, victim->key, strlen(victim->key)));
            pp = slot_of(l, key, len); /* the victim may have been in front of this slot */
        }
        e = malloc(sizeof *e + len + 1);
        if (!e) {
            /* Cannot count it: the key goes uncounted this once rather than the server failing. */
            pthread_mutex_unlock(&l->mu);
            return;
        }
        memcpy(e->key, key, len);
        e->key[len] = '\0';
        e->start = now;
        e->failures = 0;
        e->next_in_bucket = NULL;
        *pp = e;
        append_order(l, e);
        l->size++;
    }
    if (e->failures < UINT32_MAX)
        e->failures++;
    pthread_mutex_unlock(&l->mu);
}

void cf_limiter_succeed(cf_limiter *l, const char *key)
{
    size_t len = key_len(key);
    pthread_mutex_lock(&l->mu);
    entry **pp = slot_of(l, key, len);
    if (*pp)
        drop(l, pp);
    pthread_mutex_unlock(&l->mu);
}

size_t cf_limiter_size(cf_limiter *l)
{
    pthread_mutex_lock(&l->mu);
    size_t n = l->size;
    pthread_mutex_unlock(&l->mu);
    return n;
}
