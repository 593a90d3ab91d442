/* plan.c - the listings' merge and the rules of plan.h. */
#include "mirror/plan.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/grow.h"

int cf_plan_list_add(cf_plan_list *l, const cf_repo_entry *e)
{
    cf_plan_entry *v = cf_grow(l->v, &l->cap, l->n, sizeof *v, 1024);
    if (!v)
        return CF_ENOMEM;
    l->v = v;
    cf_plan_entry *d = &l->v[l->n];
    d->key = strdup(e->key);
    d->etag = strdup(e->etag ? e->etag : "");
    if (!d->key || !d->etag) {
        free(d->key);
        free(d->etag);
        return CF_ENOMEM;
    }
    d->size = e->size;
    d->mtime = e->mtime;
    d->special = e->is_special;
    l->n++;
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const cf_plan_entry *)a)->key, ((const cf_plan_entry *)b)->key);
}

void cf_plan_list_sort(cf_plan_list *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, cmp_entry);
}

void cf_plan_list_free(cf_plan_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].key);
        free(l->v[i].etag);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* The ETag without its quotes: servers differ in sending them in listings. */
static void etag_bare(const char *etag, const char **p, size_t *n)
{
    size_t len = strlen(etag);
    if (len >= 2 && etag[0] == '"' && etag[len - 1] == '"') {
        etag++;
        len -= 2;
    }
    *p = etag;
    *n = len;
}

int cf_plan_etag_is_multipart(const char *etag)
{
    const char *p;
    size_t n;
    etag_bare(etag, &p, &n);
    const char *dash = memchr(p, '-', n);
    if (!dash || dash == p || dash == p + n - 1)
        return 0;
    for (const char *q = dash + 1; q < p + n; q++)
        if (*q < '0' || *q > '9')
            return 0;
    return 1;
}

static int etag_equal(const char *a, const char *b)
{
    const char *pa, *pb;
    size_t na, nb;
    etag_bare(a, &pa, &na);
    etag_bare(b, &pb, &nb);
    return na && na == nb && !strncasecmp(pa, pb, na);
}

int cf_plan_same(cf_side_kind sk, cf_side_kind dk, const cf_plan_entry *s, const cf_plan_entry *d)
{
    if (s->size != d->size || s->special || d->special)
        return 0;
    if (sk == CF_SIDE_DIR && dk == CF_SIDE_S3)
        return d->mtime >= s->mtime; /* uploaded after the file last changed */
    if (dk == CF_SIDE_DIR)
        return d->mtime == s->mtime; /* the mirror set it so when it wrote the file */
    if (etag_equal(s->etag, d->etag))
        return 1;
    /* Different ETags of two MD5s mean different bytes; a multipart ETag (or none) depends on
     * the part sizes of the upload, so only the time can tell. */
    int comparable =
        *s->etag && *d->etag && !cf_plan_etag_is_multipart(s->etag) && !cf_plan_etag_is_multipart(d->etag);
    return !comparable && d->mtime >= s->mtime;
}

int cf_plan_excluded(const char *key, const char *const *patterns, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *p = patterns[i];
        size_t len = strlen(p);
        if (len && p[len - 1] == '/') {
            /* A subtree: the pattern, as a glob, matches a leading run of whole directories. */
            char *dir = strdup(key);
            if (!dir)
                return 1; /* out of memory: leave the key alone rather than touch it */
            int hit = 0;
            for (char *slash = dir; !hit && (slash = strchr(slash, '/')); slash++) {
                char keep = slash[1];
                slash[1] = '\0';
                hit = fnmatch(p, dir, 0) == 0;
                slash[1] = keep;
            }
            free(dir);
            if (hit)
                return 1;
        } else if (fnmatch(p, key, 0) == 0) {
            return 1;
        }
    }
    return 0;
}

/* 1 when s is well-formed UTF-8 (S3 keys are UTF-8). */
static int utf8_ok(const unsigned char *s)
{
    while (*s) {
        int extra = *s < 0x80             ? 0
                    : (*s & 0xe0) == 0xc0 ? 1
                    : (*s & 0xf0) == 0xe0 ? 2
                    : (*s & 0xf8) == 0xf0 ? 3
                                          : -1;
        if (extra < 0 || (extra == 1 && *s < 0xc2))
            return 0;
        unsigned cp = extra ? *s & (0x3f >> extra) : *s;
        s++;
        for (int i = 0; i < extra; i++, s++) {
            if ((*s & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (*s & 0x3f);
        }
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
    }
    return 1;
}

const char *cf_plan_key_refused(const char *key, cf_side_kind dk)
{
    if (!*key)
        return "an empty key";
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return "the key holds a control character";
    if (dk == CF_SIDE_S3) {
        if (strlen(key) > 1024)
            return "the key is longer than S3's 1024 bytes";
        if (!utf8_ok((const unsigned char *)key))
            return "the key is not UTF-8, as S3 keys must be";
        return NULL;
    }
    /* A directory: every segment must name a file or directory below DST, never leave it. */
    if (key[0] == '/')
        return "an absolute path would leave the destination directory";
    for (const char *seg = key; seg;) {
        const char *slash = strchr(seg, '/');
        size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
        if (n == 0)
            return "an empty path segment ('//' or a trailing '/')";
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return "a '.' or '..' segment would leave the destination directory";
        if (n > 255)
            return "a path segment is longer than 255 bytes";
        char name[256];
        memcpy(name, seg, n);
        name[n] = '\0';
        if (cf_repo_dir_temporary(name))
            return "a name ending in '.tmp-' and 16 hex digits is a file being written";
        seg = slash ? slash + 1 : NULL;
    }
    return NULL;
}

/* 1 when some key of l (sorted) starts with key + "/": in a directory, key names a directory. */
static int is_parent_of_another(const cf_plan_list *l, const char *key)
{
    size_t kl = strlen(key), lo = 0, hi = l->n;
    /* The first key >= key + "/". */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *m = l->v[mid].key;
        int c = strncmp(m, key, kl);
        if (c == 0)
            c = (unsigned char)m[kl] - (unsigned char)'/';
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < l->n && !strncmp(l->v[lo].key, key, kl) && l->v[lo].key[kl] == '/'; lo++)
        if (l->v[lo].key[kl + 1] || l->v[lo].size)
            return 1; /* an object below key/ (the folder marker "key/" itself makes no file) */
    return 0;
}

/* What to do with the source's entry s (d: the destination's at the same key, or NULL). */
static cf_plan_item plan_source(const cf_plan_list *src, cf_side_kind sk, cf_side_kind dk,
                                const cf_plan_entry *s, const cf_plan_entry *d)
{
    cf_plan_item it = {CF_PLAN_COPY, s, d, NULL};
    size_t kl = strlen(s->key);
    if (s->special) {
        it.action = CF_PLAN_LEAVE;
        it.why = "a symbolic link or special file, not followed";
    } else if (dk == CF_SIDE_DIR && kl && s->key[kl - 1] == '/' && s->size == 0) {
        it.action = CF_PLAN_LEAVE; /* S3's "folder" object: a directory is implied by its keys */
        it.why = "a folder marker; directories are made as their files need them";
    } else if ((it.why = cf_plan_key_refused(s->key, dk))) {
        it.action = CF_PLAN_REFUSE;
    } else if (dk == CF_SIDE_DIR && is_parent_of_another(src, s->key)) {
        it.action = CF_PLAN_REFUSE;
        it.why = "the key is also a directory of other keys ('KEY/...'), and a directory cannot hold a file "
                 "and a directory of one name";
    } else if (d && cf_plan_same(sk, dk, s, d)) {
        it.action = CF_PLAN_SKIP;
    }
    return it;
}

int cf_plan_build(const cf_plan_list *src, cf_side_kind sk, const cf_plan_list *dst, cf_side_kind dk,
                  const char *const *exclude, size_t nexclude, int delete_extra, cf_plan *out, cf_err *err)
{
    memset(out, 0, sizeof *out);
    /* Each step takes at least one listed entry and plans at most one item. */
    size_t most = src->n + dst->n;
    cf_plan_item *v = most ? malloc(most * sizeof *v) : NULL;
    if (most && !v)
        return cf_err_set(err, CF_ENOMEM, "planning the mirror: out of memory");
    size_t n = 0, i = 0, j = 0;
    while (i < src->n || j < dst->n) {
        int c = i == src->n ? 1 : j == dst->n ? -1 : strcmp(src->v[i].key, dst->v[j].key);
        const cf_plan_entry *s = c <= 0 ? &src->v[i] : NULL, *d = c >= 0 ? &dst->v[j] : NULL;
        if (s)
            i++;
        if (d)
            j++;
        if (cf_plan_excluded(s ? s->key : d->key, exclude, nexclude))
            continue;
        if (s)
            v[n++] = plan_source(src, sk, dk, s, d);
        else if (delete_extra)
            v[n++] = (cf_plan_item){CF_PLAN_DELETE, NULL, d, NULL};
    }
    out->v = v;
    out->n = n;
    return 0;
}

void cf_plan_free(cf_plan *p)
{
    free(p->v);
    memset(p, 0, sizeof *p);
}
