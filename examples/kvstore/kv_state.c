#include "kv_state.h"

#include "kv_crc.h"

#include <stdlib.h>
#include <string.h>

static const char STATE_MAGIC[8] = {'C', 'F', 'K', 'V', 'S', 'T', 'A', '1'};

/* Key and value in one allocation after the node, the key first. */
typedef struct node {
    struct node *next;
    uint64_t hash;
    uint32_t key_len, value_len;
    char data[];
} node;

struct kv_state {
    node **buckets;
    size_t bucket_count; /* a power of two */
    uint64_t count, applied_index, applied_term;
};

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len--)
        h = (h ^ *p++) * 0x100000001b3ull;
    return h;
}

#define FNV_OFFSET 0xcbf29ce484222325ull

kv_state *kv_state_new(void)
{
    kv_state *state = calloc(1, sizeof *state);
    if (!state)
        return NULL;
    state->bucket_count = 1024;
    state->buckets = calloc(state->bucket_count, sizeof *state->buckets);
    if (!state->buckets) {
        free(state);
        return NULL;
    }
    return state;
}

void kv_state_free(kv_state *state)
{
    if (!state)
        return;
    for (size_t i = 0; i < state->bucket_count; i++)
        for (node *n = state->buckets[i], *next; n; n = next) {
            next = n->next;
            free(n);
        }
    free(state->buckets);
    free(state);
}

static node **find_slot(const kv_state *state, const char *key, uint32_t key_len, uint64_t hash)
{
    node **slot = &state->buckets[hash & (state->bucket_count - 1)];
    for (; *slot; slot = &(*slot)->next)
        if ((*slot)->hash == hash && (*slot)->key_len == key_len && memcmp((*slot)->data, key, key_len) == 0)
            break;
    return slot;
}

static void grow(kv_state *state)
{
    size_t count = state->bucket_count * 2;
    node **buckets = calloc(count, sizeof *buckets);
    if (!buckets)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < state->bucket_count; i++)
        for (node *n = state->buckets[i], *next; n; n = next) {
            next = n->next;
            n->next = buckets[n->hash & (count - 1)];
            buckets[n->hash & (count - 1)] = n;
        }
    free(state->buckets);
    state->buckets = buckets;
    state->bucket_count = count;
}

static kv_err put(kv_state *state, const char *key, uint32_t key_len, const char *value, uint32_t value_len)
{
    uint64_t hash = fnv1a(FNV_OFFSET, key, key_len);
    node *fresh = malloc(sizeof *fresh + (size_t)key_len + value_len);
    if (!fresh)
        return KV_ENOMEM;
    fresh->hash = hash;
    fresh->key_len = key_len;
    fresh->value_len = value_len;
    memcpy(fresh->data, key, key_len);
    if (value_len)
        memcpy(fresh->data + key_len, value, value_len);
    node **slot = find_slot(state, key, key_len, hash);
    if (*slot) {
        fresh->next = (*slot)->next;
        free(*slot);
    } else {
        fresh->next = NULL;
        state->count++;
    }
    *slot = fresh;
    if (state->count > state->bucket_count)
        grow(state);
    return KV_OK;
}

static void del(kv_state *state, const char *key, uint32_t key_len)
{
    node **slot = find_slot(state, key, key_len, fnv1a(FNV_OFFSET, key, key_len));
    if (!*slot)
        return;
    node *gone = *slot;
    *slot = gone->next;
    free(gone);
    state->count--;
}

kv_err kv_state_apply(kv_state *state, const kv_entry *entry)
{
    if (entry->index != state->applied_index + 1)
        return KV_ERANGE;
    if (entry->key_len > KV_KEY_MAX || (entry->op == KV_OP_SET && entry->value_len > KV_VALUE_MAX))
        return KV_EINVAL;
    if (entry->op == KV_OP_SET) {
        kv_err err = put(state, entry->key, entry->key_len, entry->value, entry->value_len);
        if (err)
            return err;
    } else if (entry->op == KV_OP_DEL) {
        del(state, entry->key, entry->key_len);
    } else {
        return KV_EINVAL;
    }
    state->applied_index = entry->index;
    state->applied_term = entry->term;
    return KV_OK;
}

kv_err kv_state_get(const kv_state *state, const char *key, uint32_t key_len, const char **value,
                    uint32_t *value_len)
{
    node *n = *find_slot(state, key, key_len, fnv1a(FNV_OFFSET, key, key_len));
    if (!n)
        return KV_ENOENT;
    *value = n->data + n->key_len;
    *value_len = n->value_len;
    return KV_OK;
}

uint64_t kv_state_applied_index(const kv_state *state)
{
    return state->applied_index;
}

uint64_t kv_state_applied_term(const kv_state *state)
{
    return state->applied_term;
}

uint64_t kv_state_count(const kv_state *state)
{
    return state->count;
}

static int key_cmp(const char *a, uint32_t a_len, const char *b, uint32_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    if (c)
        return c;
    return a_len < b_len ? -1 : a_len > b_len;
}

static int node_cmp(const void *a, const void *b)
{
    const node *x = *(node *const *)a, *y = *(node *const *)b;
    return key_cmp(x->data, x->key_len, y->data, y->key_len);
}

kv_err kv_state_each_sorted(const kv_state *state, kv_pair_fn fn, void *ctx)
{
    node **sorted = malloc((state->count ? state->count : 1) * sizeof *sorted);
    if (!sorted)
        return KV_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < state->bucket_count; i++)
        for (node *n = state->buckets[i]; n; n = n->next)
            sorted[k++] = n;
    qsort(sorted, k, sizeof *sorted, node_cmp);
    kv_err err = KV_OK;
    for (size_t i = 0; i < k && !err; i++)
        err = fn(ctx, sorted[i]->data, sorted[i]->key_len, sorted[i]->data + sorted[i]->key_len,
                 sorted[i]->value_len);
    free(sorted);
    return err;
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static kv_err digest_pair(void *ctx, const char *key, uint32_t key_len, const char *value, uint32_t value_len)
{
    uint64_t *h = ctx;
    unsigned char lens[8];
    put_le(lens, key_len, 4);
    put_le(lens + 4, value_len, 4);
    *h = fnv1a(*h, lens, sizeof lens);
    *h = fnv1a(*h, key, key_len);
    *h = fnv1a(*h, value, value_len);
    return KV_OK;
}

kv_err kv_state_digest(const kv_state *state, uint64_t *digest)
{
    *digest = FNV_OFFSET;
    return kv_state_each_sorted(state, digest_pair, digest);
}

/* Buffers the sink's writes and keeps the running checksum. */
typedef struct {
    kv_write_fn sink;
    void *ctx;
    uint32_t crc;
    size_t used;
    unsigned char buf[64 * 1024];
} state_writer;

static kv_err writer_flush(state_writer *w)
{
    if (w->used && w->sink(w->ctx, w->buf, w->used) != 0)
        return KV_EIO;
    w->used = 0;
    return KV_OK;
}

static kv_err writer_put(state_writer *w, const void *data, size_t len)
{
    const char *p = data;
    w->crc = kv_crc32c(w->crc, data, len);
    while (len) {
        if (w->used == sizeof w->buf) {
            kv_err err = writer_flush(w);
            if (err)
                return err;
        }
        size_t n = sizeof w->buf - w->used < len ? sizeof w->buf - w->used : len;
        memcpy(w->buf + w->used, p, n);
        w->used += n;
        p += n;
        len -= n;
    }
    return KV_OK;
}

static kv_err write_pair(void *ctx, const char *key, uint32_t key_len, const char *value, uint32_t value_len)
{
    unsigned char lens[8];
    put_le(lens, key_len, 4);
    put_le(lens + 4, value_len, 4);
    kv_err err = writer_put(ctx, lens, sizeof lens);
    if (!err)
        err = writer_put(ctx, key, key_len);
    if (!err)
        err = writer_put(ctx, value, value_len);
    return err;
}

kv_err kv_state_write(const kv_state *state, kv_write_fn sink, void *ctx)
{
    state_writer *w = malloc(sizeof *w);
    if (!w)
        return KV_ENOMEM;
    w->sink = sink;
    w->ctx = ctx;
    w->crc = 0;
    w->used = 0;
    unsigned char header[32];
    memcpy(header, STATE_MAGIC, 8);
    put_le(header + 8, state->applied_index, 8);
    put_le(header + 16, state->applied_term, 8);
    put_le(header + 24, state->count, 8);
    kv_err err = writer_put(w, header, sizeof header);
    if (!err)
        err = kv_state_each_sorted(state, write_pair, w);
    if (!err) {
        unsigned char trailer[4];
        put_le(trailer, w->crc, 4);
        err = writer_put(w, trailer, sizeof trailer);
    }
    if (!err)
        err = writer_flush(w);
    free(w);
    return err;
}

typedef struct {
    kv_read_fn source;
    void *ctx;
    uint32_t crc;
} state_reader;

static kv_err read_exact(state_reader *r, void *buf, size_t len)
{
    char *p = buf;
    size_t want = len;
    while (want) {
        long n = r->source(r->ctx, p, want);
        if (n < 0)
            return KV_EIO;
        if (n == 0)
            return KV_ETRUNCATED;
        p += n;
        want -= (size_t)n;
    }
    r->crc = kv_crc32c(r->crc, buf, len);
    return KV_OK;
}

kv_err kv_state_read(kv_state **out, kv_read_fn source, void *ctx)
{
    state_reader r = {source, ctx, 0};
    kv_state *state = kv_state_new();
    char *pair = NULL, *prev = NULL;
    uint32_t prev_len = 0;
    if (!state)
        return KV_ENOMEM;
    unsigned char header[32];
    kv_err err = read_exact(&r, header, sizeof header);
    if (err)
        goto fail;
    if (memcmp(header, STATE_MAGIC, 8) != 0) {
        err = KV_ECORRUPT;
        goto fail;
    }
    uint64_t count = get_le(header + 24, 8);
    for (uint64_t i = 0; i < count; i++) {
        unsigned char lens[8];
        if ((err = read_exact(&r, lens, sizeof lens)))
            goto fail;
        uint32_t key_len = (uint32_t)get_le(lens, 4), value_len = (uint32_t)get_le(lens + 4, 4);
        if (key_len > KV_KEY_MAX || value_len > KV_VALUE_MAX) {
            err = KV_ECORRUPT;
            goto fail;
        }
        pair = malloc((size_t)key_len + value_len + 1);
        if (!pair) {
            err = KV_ENOMEM;
            goto fail;
        }
        if ((err = read_exact(&r, pair, (size_t)key_len + value_len)))
            goto fail;
        /* Sorted and unique, as kv_state_write leaves them: the digest depends on it. */
        if (prev && key_cmp(prev, prev_len, pair, key_len) >= 0) {
            err = KV_ECORRUPT;
            goto fail;
        }
        if ((err = put(state, pair, key_len, pair + key_len, value_len)))
            goto fail;
        free(prev);
        prev = pair;
        prev_len = key_len;
        pair = NULL;
    }
    uint32_t expected = r.crc;
    unsigned char trailer[4];
    if ((err = read_exact(&r, trailer, sizeof trailer)))
        goto fail;
    if (get_le(trailer, 4) != expected) {
        err = KV_ECORRUPT;
        goto fail;
    }
    state->applied_index = get_le(header + 8, 8);
    state->applied_term = get_le(header + 16, 8);
    free(prev);
    *out = state;
    return KV_OK;
fail:
    free(pair);
    free(prev);
    kv_state_free(state);
    return err;
}
