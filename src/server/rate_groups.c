/*
 * rate_groups.c - the table of rate groups and the paced bodies of their responses.
 *
 * One cf_http_bucket per group: all responses of all keys of the group draw from it, whichever
 * event thread sends them. Fairness between connections comes from the size of a grant: a
 * paced body asks for at most PIECE bytes at a time, so when the budget is short every
 * connection waits its turn for a piece of the same size, and N downloads get about 1/N each.
 *
 * Groups are only ever added (a rate changes in place), so a group's address stays valid for
 * the server's life: a response holds it without a reference count. The table's lock guards
 * its array; the counters are atomics read by /metrics without it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rate.h"
#include "server/rate_groups.h"

#define SETTING_PREFIX "rategroup/"
/* Bytes a response may send per grant: 64 KiB, as the HTTP layer's buffers, so that a grant
 * costs one suspend at most and connections interleave every piece. */
#define PIECE ((size_t)64 << 10)
/* What the bucket may hold after an idle spell: 20 ms of the rate, so that accuracy over a
 * second is within 2 %, and at least two pieces so a grant of PIECE is always possible. */
#define BURST_SECONDS 0.02
#define BURST_MIN ((uint64_t)2 * PIECE)

struct cf_rate_group {
    char name[CF_STORE_RATE_GROUP_MAX + 1];
    cf_http_bucket *bucket;
    cf_http_meter meter;
    _Atomic uint64_t rate;
    _Atomic uint64_t bytes;
    _Atomic int64_t active;
};

struct cf_rate_groups {
    pthread_mutex_t mu;
    cf_rate_group **groups; /* sorted by name */
    size_t n, cap;
};

static uint64_t burst_of(uint64_t rate)
{
    uint64_t b = (uint64_t)((double)rate * BURST_SECONDS);
    return b > BURST_MIN ? b : BURST_MIN;
}

/* The index of name in t, or where it would go (*found 0). Under t->mu. */
static size_t find(const cf_rate_groups *t, const char *name, int *found)
{
    size_t lo = 0, hi = t->n;
    *found = 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(t->groups[mid]->name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Adds group name at rate, or changes its rate. Under t->mu. */
static int upsert(cf_rate_groups *t, const char *name, uint64_t rate)
{
    int found;
    size_t at = find(t, name, &found);
    if (found) {
        cf_rate_group *g = t->groups[at];
        cf_http_bucket_set_rate(g->bucket, rate, burst_of(rate));
        atomic_store(&g->rate, rate);
        return 0;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        cf_rate_group **p = realloc(t->groups, cap * sizeof *p);
        if (!p)
            return CF_ENOMEM;
        t->groups = p;
        t->cap = cap;
    }
    cf_rate_group *g = calloc(1, sizeof *g);
    if (!g)
        return CF_ENOMEM;
    int rc = cf_http_bucket_new(rate, burst_of(rate), &g->bucket);
    if (rc) {
        free(g);
        return rc;
    }
    snprintf(g->name, sizeof g->name, "%s", name);
    g->meter = cf_http_bucket_meter(g->bucket);
    atomic_init(&g->rate, rate);
    memmove(t->groups + at + 1, t->groups + at, (t->n - at) * sizeof *t->groups);
    t->groups[at] = g;
    t->n++;
    return 0;
}

/* A stored rate: decimal bytes/s within the limits of core/rate.h. */
static int stored_rate(const void *value, size_t len, uint64_t *rate)
{
    char text[24];
    if (len == 0 || len >= sizeof text)
        return CF_ECORRUPT;
    memcpy(text, value, len);
    text[len] = '\0';
    if (strspn(text, "0123456789") != len)
        return CF_ECORRUPT;
    unsigned long long v = strtoull(text, NULL, 10);
    if (v < CF_RATE_MIN || v > CF_RATE_MAX)
        return CF_ECORRUPT;
    *rate = v;
    return 0;
}

typedef struct load_ctx {
    cf_rate_groups *t;
    const char *bad; /* the first setting that could not be read */
    char bad_name[64];
} load_ctx;

static int load_one(void *ctx, const char *name, const void *value, size_t len)
{
    load_ctx *l = ctx;
    const char *group = name + strlen(SETTING_PREFIX);
    uint64_t rate;
    if (!*group || !cf_store_rate_group_name_valid(group) || stored_rate(value, len, &rate) != 0) {
        snprintf(l->bad_name, sizeof l->bad_name, "%s", name);
        l->bad = l->bad_name;
        return 1;
    }
    return upsert(l->t, group, rate);
}

int cf_rate_groups_new(cf_store *store, cf_rate_groups **out, cf_err *err)
{
    cf_rate_groups *t = calloc(1, sizeof *t);
    if (!t)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    pthread_mutex_init(&t->mu, NULL);
    load_ctx l = {t, NULL, ""};
    int rc = cf_store_meta_list(store, SETTING_PREFIX, load_one, &l, err);
    if (!rc && l.bad)
        rc = cf_err_set(err, CF_ECORRUPT, "the setting '%s' is not a rate group's rate", l.bad);
    if (rc) {
        cf_rate_groups_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void cf_rate_groups_free(cf_rate_groups *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        cf_http_bucket_free(t->groups[i]->bucket);
        free(t->groups[i]);
    }
    free(t->groups);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static cf_rate_group *lookup(cf_rate_groups *t, const char *name)
{
    pthread_mutex_lock(&t->mu);
    int found;
    size_t at = find(t, name, &found);
    cf_rate_group *g = found ? t->groups[at] : NULL;
    pthread_mutex_unlock(&t->mu);
    return g;
}

uint64_t cf_rate_groups_rate(cf_rate_groups *t, const char *name)
{
    cf_rate_group *g = lookup(t, name);
    return g ? atomic_load(&g->rate) : 0;
}

int cf_rate_groups_set(cf_rate_groups *t, cf_store *store, const char *name, uint64_t rate, cf_err *err)
{
    if (!*name || !cf_store_rate_group_name_valid(name))
        return cf_err_set(err, CF_EINVAL, "rate group '%.40s': a name is 1 to 32 of a-z, 0-9 and '-'", name);
    if (rate < CF_RATE_MIN || rate > CF_RATE_MAX)
        return cf_err_set(err, CF_EINVAL, "rate group '%s': the rate must be between 1KB/s and 1000GB/s",
                          name);
    char setting[64], value[24];
    snprintf(setting, sizeof setting, SETTING_PREFIX "%s", name);
    int len = snprintf(value, sizeof value, "%llu", (unsigned long long)rate);
    /* Under the table's lock, so that two changes reach the store and the bucket in one order. */
    pthread_mutex_lock(&t->mu);
    int rc = cf_store_meta_put(store, setting, value, (size_t)len, err);
    if (!rc && (rc = upsert(t, name, rate)) != 0)
        cf_err_set(err, rc, "rate group '%s': %s", name, cf_strerror(rc));
    pthread_mutex_unlock(&t->mu);
    return rc;
}

void cf_rate_groups_each(cf_rate_groups *t, void (*visit)(void *ctx, const char *name, uint64_t rate),
                         void *ctx)
{
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n; i++)
        visit(ctx, t->groups[i]->name, atomic_load(&t->groups[i]->rate));
    pthread_mutex_unlock(&t->mu);
}

int cf_rate_groups_render_metrics(cf_rate_groups *t, cf_buf *b)
{
    static const struct {
        const char *name, *type, *help;
    } families[] = {
        {"coffer_rate_group_bytes_total", "counter", "Response body bytes sent under the keys of the group."},
        {"coffer_rate_group_rate_bytes", "gauge", "The group's shared budget in bytes per second."},
        {"coffer_rate_group_active_responses", "gauge", "Responses of the group being sent now."},
    };
    pthread_mutex_lock(&t->mu);
    for (size_t f = 0; f < 3; f++) {
        cf_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help, families[f].name,
                      families[f].type);
        for (size_t i = 0; i < t->n; i++) {
            cf_rate_group *g = t->groups[i];
            long long v = f == 0   ? (long long)atomic_load(&g->bytes)
                          : f == 1 ? (long long)atomic_load(&g->rate)
                                   : (long long)atomic_load(&g->active);
            cf_buf_printf(b, "%s{group=\"%s\"} %lld\n", families[f].name, g->name, v);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return cf_buf_error(b);
}

/* ---- paced bodies ---- */

/* The group of r's key, or NULL: root, anonymous requests and keys without a group. */
static cf_rate_group *group_of(cf_request *r)
{
    if (r->principal != CF_PRINCIPAL_KEY || !r->grant.rate_group[0])
        return NULL;
    return lookup(r->srv->rate_groups, r->grant.rate_group);
}

typedef enum source_kind { FROM_MEMORY, FROM_FD, FROM_READER } source_kind;

typedef struct group_body {
    cf_rate_group *group;
    source_kind kind;
    char *data; /* FROM_MEMORY: owned, len bytes */
    uint64_t len;
    int fd; /* FROM_FD: owned */
    uint64_t offset;
    cf_http_reader read; /* FROM_READER */
    void *cls;
    void (*free_cls)(void *cls);
} group_body;

static long read_group_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    group_body *b = cls;
    long n;
    switch (b->kind) {
    case FROM_MEMORY:
        n = pos < b->len ? (long)(b->len - pos < max ? b->len - pos : max) : 0;
        memcpy(buf, b->data + pos, (size_t)n);
        break;
    case FROM_FD:
        do
            n = (long)pread(b->fd, buf, max, (off_t)(b->offset + pos));
        while (n < 0 && errno == EINTR);
        if (n < 0)
            n = CF_HTTP_READER_ERROR;
        break;
    default: n = b->read(b->cls, pos, buf, max); break;
    }
    if (n > 0)
        atomic_fetch_add(&b->group->bytes, (uint64_t)n);
    return n;
}

static void free_group_body(void *cls)
{
    group_body *b = cls;
    atomic_fetch_sub(&b->group->active, 1);
    if (b->kind == FROM_MEMORY)
        free(b->data);
    else if (b->kind == FROM_FD)
        close(b->fd);
    else if (b->free_cls)
        b->free_cls(b->cls);
    free(b);
}

/* Takes b (and what it owns) in every case. */
static cf_http_response *paced(cf_request *r, group_body *b, uint64_t len)
{
    atomic_fetch_add(&b->group->active, 1);
    return cf_http_body_paced(r->http, len, PIECE, read_group_body, b, free_group_body, &b->group->meter);
}

cf_http_response *cf_rate_body_buffer(cf_request *r, void *data, size_t len, int copy)
{
    cf_rate_group *g = group_of(r);
    if (!g || !len)
        return cf_http_body_buffer(data, len, copy);
    group_body *b = calloc(1, sizeof *b);
    char *owned = copy ? malloc(len) : data;
    if (!b || !owned) {
        free(b);
        free(copy ? owned : data);
        return NULL;
    }
    if (copy)
        memcpy(owned, data, len);
    *b = (group_body){.group = g, .kind = FROM_MEMORY, .data = owned, .len = len, .fd = -1};
    return paced(r, b, len);
}

cf_http_response *cf_rate_body_fd(cf_request *r, int fd, uint64_t offset, uint64_t len)
{
    cf_rate_group *g = group_of(r);
    if (!g)
        return cf_http_body_fd(fd, offset, len);
    group_body *b = calloc(1, sizeof *b);
    if (!b) {
        close(fd);
        return NULL;
    }
    *b = (group_body){.group = g, .kind = FROM_FD, .fd = fd, .offset = offset};
    return paced(r, b, len);
}

cf_http_response *cf_rate_body_reader(cf_request *r, uint64_t len, size_t block, cf_http_reader read,
                                      void *cls, void (*free_cls)(void *cls))
{
    cf_rate_group *g = group_of(r);
    if (!g)
        return cf_http_body_reader(len, block, read, cls, free_cls);
    group_body *b = calloc(1, sizeof *b);
    if (!b) {
        if (free_cls)
            free_cls(cls);
        return NULL;
    }
    *b = (group_body){
        .group = g, .kind = FROM_READER, .fd = -1, .read = read, .cls = cls, .free_cls = free_cls};
    return paced(r, b, len);
}
