/*
 * grow.h - room for one more element at the end of a growable array.
 *
 * The arrays that listings and parsers fill one element at a time (pointer, count, capacity)
 * all grow the same way: double, from a first capacity suited to what they hold. Written once
 * here so the overflow check and the "unchanged on failure" rule are too.
 */
#ifndef CF_CORE_GROW_H
#define CF_CORE_GROW_H

#include <stddef.h>

/* Returns v when n < *cap; else v reallocated to twice *cap elements of elem_size bytes (first
 * when *cap is 0) and *cap updated. NULL when memory (or size_t) runs out: v is then still
 * valid and *cap unchanged, so the caller returns CF_ENOMEM and frees what it had as usual.
 * Usage: T *p = cf_grow(a->v, &a->cap, a->n, sizeof *p, 16); if (!p) return CF_ENOMEM;
 *        a->v = p; then a->v[a->n] is writable. */
void *cf_grow(void *v, size_t *cap, size_t n, size_t elem_size, size_t first);

#endif
