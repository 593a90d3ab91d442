/*
 * render.c - SNAP and chain summaries written straight into a buffer, and kept per view.
 *
 * Why not jansson here: building and dumping a jansson object of 15 keys per snapshot cost a
 * 50-snapshot answer ~500 µs of CPU (half of it in jansson, most of the rest in malloc and free),
 * which 16 connections on two cores queue behind (docs/BENCHMARKS.md, "Issue 12: console
 * catalogue"). Copying fragments rendered once costs a few microseconds.
 *
 * The fragments of a view live in one array indexed by the snapshot's position in the view
 * (chain_base[chain] + index), each an atomic pointer set once with a compare-and-swap: no lock
 * on the read path, and a view nobody asks about costs only that array.
 */
#include "console/render.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A response may hold up to 1,000 snapshots whose labels came from manifests of up to 64 MiB. */
#define RENDER_BUF_MAX ((size_t)1 << 31)
#define AGE_KEY ",\"age_seconds\":"

/* One snapshot's JSON without its age: text[0, split) ends with "age_seconds":, text[split, len)
 * is the rest. A chain head is {"name":…,"latest": with split == len. */
typedef struct fragment {
    size_t split, len;
    char text[];
} fragment;

struct cf_rendered {
    atomic_size_t refs;
    cf_render *owner;
    const cf_cat_view *view; /* a reference of the catalogue's, released with this */
    size_t *chain_base;      /* index of each chain's first snapshot in snaps */
    _Atomic(fragment *) *snaps;
    _Atomic(fragment *) *heads; /* per chain */
};

struct cf_render {
    cf_catalogue *cat;
    char **repo_urls;
    size_t nrepos;
    pthread_mutex_t mu; /* current: held to compare and swap it, never while rendering */
    cf_rendered *current;
};

/* ---- JSON text ---- */

static const char hex_digits[] = "0123456789ABCDEF";

static void put_u_escape(cf_buf *b, unsigned cp)
{
    char e[6] = {'\\',
                 'u',
                 hex_digits[(cp >> 12) & 15],
                 hex_digits[(cp >> 8) & 15],
                 hex_digits[(cp >> 4) & 15],
                 hex_digits[cp & 15]};
    cf_buf_append(b, e, sizeof e);
}

/* The length of the valid UTF-8 sequence at p and its code point, by jansson's rules (no
 * overlong forms, no surrogates, nothing above U+10FFFF); 0 when p does not start one. */
static size_t utf8_sequence(const unsigned char *p, unsigned *cp)
{
    size_t n;
    unsigned v;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        n = 2, v = p[0] & 0x1Fu;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        n = 3, v = p[0] & 0x0Fu;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        n = 4, v = p[0] & 0x07u;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        v = (v << 6) | (p[i] & 0x3Fu);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned cp;
    size_t n;
    while (*p)
        if (*p < 0x80)
            p++;
        else if ((n = utf8_sequence(p, &cp)) != 0)
            p += n;
        else
            return 0;
    return 1;
}

int cf_render_json_string(cf_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : ""), *run = p;
    cf_buf_putc(b, '"');
    while (*p) {
        unsigned char c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            p++;
            continue;
        }
        cf_buf_append(b, run, (size_t)(p - run));
        const char *short_form = c == '"'    ? "\\\""
                                 : c == '\\' ? "\\\\"
                                 : c == '\b' ? "\\b"
                                 : c == '\f' ? "\\f"
                                 : c == '\n' ? "\\n"
                                 : c == '\r' ? "\\r"
                                 : c == '\t' ? "\\t"
                                             : NULL;
        unsigned cp;
        size_t n;
        if (short_form) {
            cf_buf_append(b, short_form, 2);
            p++;
        } else if (c < 0x80) {
            put_u_escape(b, c);
            p++;
        } else if ((n = utf8_sequence(p, &cp)) == 0) {
            put_u_escape(b, 0xFFFD);
            p++;
        } else {
            if (cp < 0x10000) {
                put_u_escape(b, cp);
            } else {
                cp -= 0x10000;
                put_u_escape(b, 0xD800 | (cp >> 10));
                put_u_escape(b, 0xDC00 | (cp & 0x3FF));
            }
            p += n;
        }
        run = p;
    }
    cf_buf_append(b, run, (size_t)(p - run));
    return cf_buf_putc(b, '"');
}

static void put_int(cf_buf *b, long long v)
{
    char digits[24], *end = digits + sizeof digits, *p = end;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    cf_buf_append(b, p, (size_t)(end - p));
}

/* The SNAP fields before age_seconds: {"chain":…,"id":…,"created":…,"created_ns":N */
static void snapshot_head(cf_buf *b, const cf_cat_snapshot *s)
{
    char created[32];
    time_t t = (time_t)s->created;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm))
        strcpy(created, "1970-01-01T00:00:00Z");
    cf_buf_puts(b, "{\"chain\":");
    cf_render_json_string(b, s->chain);
    cf_buf_puts(b, ",\"id\":");
    cf_render_json_string(b, s->id);
    cf_buf_puts(b, ",\"created\":\"");
    cf_buf_puts(b, created);
    cf_buf_puts(b, "\",\"created_ns\":");
    put_int(b, s->created_ns);
}

/* The SNAP fields after age_seconds, in the order cf_console_snapshot_json packs them. The
 * catalogue's labels come from a JSON object (cf_manifest), so their keys are unique; a label
 * jansson would not take (NULL, or not UTF-8) is left out as json_object_set_new leaves it out,
 * which also keeps two keys that differ only in bad bytes from both becoming "\uFFFD…". */
static void snapshot_tail(cf_buf *b, const cf_cat_snapshot *s)
{
    cf_buf_puts(b, ",\"height\":");
    if (s->height)
        cf_render_json_string(b, s->height);
    else
        cf_buf_puts(b, "null");
    cf_buf_puts(b, ",\"labels\":{");
    int first = 1;
    for (size_t i = 0; i < s->nlabels; i++) {
        if (!s->labels[i].key || !s->labels[i].value || !utf8_valid(s->labels[i].key) ||
            !utf8_valid(s->labels[i].value))
            continue;
        if (!first)
            cf_buf_putc(b, ',');
        first = 0;
        cf_render_json_string(b, s->labels[i].key);
        cf_buf_putc(b, ':');
        cf_render_json_string(b, s->labels[i].value);
    }
    /* jansson's json_int_t is long long: sizes above 2^63 print as it prints them. */
    cf_buf_puts(b, "},\"size\":");
    put_int(b, (long long)s->size);
    cf_buf_puts(b, ",\"raw_size\":");
    put_int(b, (long long)s->raw_size);
    cf_buf_puts(b, ",\"files\":");
    put_int(b, (long long)s->files);
    cf_buf_puts(b, ",\"compression\":");
    cf_render_json_string(b, s->compression);
    cf_buf_puts(b, ",\"level\":");
    put_int(b, s->level);
    cf_buf_puts(b, s->encrypted ? ",\"encrypted\":true" : ",\"encrypted\":false");
    cf_buf_puts(b, ",\"sha256\":");
    cf_render_json_string(b, s->sha256);
    cf_buf_puts(b, ",\"archive_key\":");
    cf_render_json_string(b, s->archive_key);
    cf_buf_putc(b, '}');
}

static void put_age(cf_buf *b, int64_t now, int64_t created)
{
    int64_t age = now - created;
    put_int(b, age > 0 ? (long long)age : 0);
}

int cf_render_snapshot_uncached(cf_buf *b, const cf_cat_snapshot *s, int64_t now)
{
    snapshot_head(b, s);
    cf_buf_puts(b, AGE_KEY);
    put_age(b, now, s->created);
    snapshot_tail(b, s);
    return cf_buf_error(b);
}

/* ---- fragments ---- */

static fragment *fragment_of(cf_buf *b, size_t split)
{
    fragment *f = NULL;
    if (!cf_buf_error(b) && (f = malloc(sizeof *f + b->len))) {
        f->split = split;
        f->len = b->len;
        memcpy(f->text, b->data, b->len);
    }
    cf_buf_cleanup(b);
    return f;
}

/* Sets *slot to f unless another thread was first: the fragment to use (f or the other). */
static fragment *install(_Atomic(fragment *) *slot, fragment *f)
{
    fragment *expected = NULL;
    if (!f || atomic_compare_exchange_strong_explicit(slot, &expected, f, memory_order_acq_rel,
                                                      memory_order_acquire))
        return f;
    free(f);
    return expected;
}

static const fragment *snapshot_fragment(cf_rendered *rv, size_t k, const cf_cat_snapshot *s)
{
    fragment *f = atomic_load_explicit(&rv->snaps[k], memory_order_acquire);
    if (f)
        return f;
    cf_buf b;
    cf_buf_init(&b, RENDER_BUF_MAX);
    cf_buf_reserve(&b, 512);
    snapshot_head(&b, s);
    cf_buf_puts(&b, AGE_KEY);
    size_t split = b.len;
    snapshot_tail(&b, s);
    return install(&rv->snaps[k], fragment_of(&b, split));
}

static void put_fragment_aged(cf_buf *b, const fragment *f, int64_t now, int64_t created)
{
    cf_buf_append(b, f->text, f->split);
    put_age(b, now, created);
    cf_buf_append(b, f->text + f->split, f->len - f->split);
}

static size_t chain_index(const cf_rendered *rv, const cf_cat_chain *ch)
{
    return (size_t)(ch - rv->view->chains);
}

int cf_render_snapshot(cf_rendered *rv, cf_buf *b, const cf_cat_chain *ch, size_t i, int64_t now)
{
    const cf_cat_snapshot *s = &ch->snaps[i];
    const fragment *f = snapshot_fragment(rv, rv->chain_base[chain_index(rv, ch)] + i, s);
    if (!f) /* out of memory for the fragment: the answer can still be made */
        return cf_render_snapshot_uncached(b, s, now);
    put_fragment_aged(b, f, now, s->created);
    return cf_buf_error(b);
}

static const fragment *chain_head(cf_rendered *rv, const cf_cat_chain *ch)
{
    size_t at = chain_index(rv, ch);
    fragment *f = atomic_load_explicit(&rv->heads[at], memory_order_acquire);
    if (f)
        return f;
    const cf_render *r = rv->owner;
    cf_buf b;
    cf_buf_init(&b, RENDER_BUF_MAX);
    cf_buf_puts(&b, "{\"name\":");
    cf_render_json_string(&b, ch->name);
    cf_buf_puts(&b, ",\"repository\":");
    cf_render_json_string(&b, ch->repo_index < r->nrepos ? r->repo_urls[ch->repo_index] : "");
    cf_buf_puts(&b, ",\"snapshots\":");
    put_int(&b, (long long)ch->nsnaps);
    cf_buf_puts(&b, ",\"latest\":");
    return install(&rv->heads[at], fragment_of(&b, b.len));
}

int cf_render_chain(cf_rendered *rv, cf_buf *b, const cf_cat_chain *ch, int64_t now)
{
    const fragment *head = chain_head(rv, ch);
    if (!head)
        return cf_buf_error(b) ? cf_buf_error(b) : CF_ENOMEM;
    cf_buf_append(b, head->text, head->len);
    if (ch->nsnaps)
        cf_render_snapshot(rv, b, ch, 0, now);
    else
        cf_buf_puts(b, "null");
    cf_buf_putc(b, '}');
    return cf_buf_error(b);
}

/* ---- views ---- */

static void rendered_free(cf_rendered *rv)
{
    size_t nsnaps = rv->chain_base[rv->view->nchains];
    for (size_t i = 0; i < nsnaps; i++)
        free(atomic_load_explicit(&rv->snaps[i], memory_order_relaxed));
    for (size_t i = 0; i < rv->view->nchains; i++)
        free(atomic_load_explicit(&rv->heads[i], memory_order_relaxed));
    cf_catalogue_release(rv->owner->cat, rv->view);
    free(rv->chain_base);
    free(rv->snaps);
    free(rv->heads);
    free(rv);
}

void cf_render_release(cf_rendered *rv)
{
    if (rv && atomic_fetch_sub_explicit(&rv->refs, 1, memory_order_acq_rel) == 1)
        rendered_free(rv);
}

/* Empty slots for view v (whose reference it takes); NULL when out of memory. */
static cf_rendered *rendered_new(cf_render *r, const cf_cat_view *v)
{
    cf_rendered *rv = calloc(1, sizeof *rv);
    if (!rv)
        return NULL;
    rv->owner = r;
    rv->view = v;
    atomic_init(&rv->refs, 1);
    rv->chain_base = malloc((v->nchains + 1) * sizeof *rv->chain_base);
    if (rv->chain_base) {
        size_t total = 0;
        for (size_t i = 0; i < v->nchains; i++) {
            rv->chain_base[i] = total;
            total += v->chains[i].nsnaps;
        }
        rv->chain_base[v->nchains] = total;
        /* calloc: a null pointer is all zero bits on every platform this builds on. */
        rv->snaps = calloc(total ? total : 1, sizeof *rv->snaps);
        rv->heads = calloc(v->nchains ? v->nchains : 1, sizeof *rv->heads);
    }
    if (!rv->chain_base || !rv->snaps || !rv->heads) {
        free(rv->chain_base);
        free(rv->snaps);
        free(rv->heads);
        free(rv);
        return NULL;
    }
    return rv;
}

cf_rendered *cf_render_acquire(cf_render *r)
{
    cf_rendered *rv, *old = NULL;
    pthread_mutex_lock(&r->mu);
    /* Acquired under mu, so the views this sees only move forward: two threads never swap an
     * older view back in. */
    const cf_cat_view *v = cf_catalogue_acquire(r->cat);
    if (r->current && r->current->view == v) {
        rv = r->current;
        atomic_fetch_add_explicit(&rv->refs, 1, memory_order_relaxed);
        pthread_mutex_unlock(&r->mu);
        cf_catalogue_release(r->cat, v);
        return rv;
    }
    rv = rendered_new(r, v);
    if (rv) {
        old = r->current;
        r->current = rv;
        atomic_fetch_add_explicit(&rv->refs, 1, memory_order_relaxed); /* the caller's */
    }
    pthread_mutex_unlock(&r->mu);
    if (!rv)
        cf_catalogue_release(r->cat, v);
    cf_render_release(old);
    return rv;
}

const cf_cat_view *cf_rendered_view(const cf_rendered *rv)
{
    return rv->view;
}

int cf_render_new(cf_catalogue *cat, const char *const *repo_urls, size_t nrepos, cf_render **out,
                  cf_err *err)
{
    *out = NULL;
    cf_render *r = calloc(1, sizeof *r);
    if (!r || (nrepos && !(r->repo_urls = calloc(nrepos, sizeof *r->repo_urls)))) {
        free(r);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    r->cat = cat;
    r->nrepos = nrepos;
    pthread_mutex_init(&r->mu, NULL);
    for (size_t i = 0; i < nrepos; i++)
        if (!(r->repo_urls[i] = strdup(repo_urls[i] ? repo_urls[i] : ""))) {
            cf_render_free(r);
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        }
    *out = r;
    return 0;
}

void cf_render_free(cf_render *r)
{
    if (!r)
        return;
    cf_render_release(r->current);
    for (size_t i = 0; i < r->nrepos; i++)
        free(r->repo_urls[i]);
    free(r->repo_urls);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
