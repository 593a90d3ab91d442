/*
 * fuzz_range.c - the Range header is untrusted and its numbers become file offsets.
 *
 * The input is a Range header value. It is parsed against a fixed set of object sizes and
 * against the sizes next to every number it contains (where off-by-one errors live), and each
 * answer is compared with a reference parser written from the grammar request.h states:
 *
 *   SP* "bytes=" SP* ( first "-" [last] | "-" suffix ) SP*      numbers: 1*DIGIT, fit in 64 bits
 *
 * Postconditions, beyond agreement with the reference: a satisfiable answer lies inside the
 * object; a failure leaves the outputs untouched; and the answer written back as
 * "bytes=start-end" parses to itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "core/err.h"
#include "s3/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define UNTOUCHED 0x5a5a5a5a5a5a5a5aULL

typedef struct number {
    int present, overflow;
    uint64_t v;
} number;

static const char *read_number(const char *p, number *n)
{
    n->present = n->overflow = 0;
    n->v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        n->present = 1;
        if (n->v > UINT64_MAX / 10 || n->v * 10 > UINT64_MAX - d)
            n->overflow = 1;
        else if (!n->overflow)
            n->v = n->v * 10 + d;
    }
    return p;
}

static int ref_parse(const char *h, uint64_t size, uint64_t *start, uint64_t *len)
{
    const char *p = h;
    while (*p == ' ')
        p++;
    if (strncmp(p, "bytes=", 6) != 0)
        return CF_EINVAL;
    p += 6;
    if (strchr(p, ','))
        return CF_EINVAL;
    while (*p == ' ')
        p++;
    number first, last;
    p = read_number(p, &first);
    if (*p != '-')
        return CF_EINVAL;
    p = read_number(p + 1, &last);
    while (*p == ' ')
        p++;
    if (*p || first.overflow || last.overflow || (!first.present && !last.present))
        return CF_EINVAL;
    if (!first.present) { /* suffix */
        if (last.v == 0 || size == 0)
            return CF_ERANGE;
        *len = last.v < size ? last.v : size;
        *start = size - *len;
        return 0;
    }
    if (last.present && last.v < first.v)
        return CF_EINVAL;
    if (first.v >= size)
        return CF_ERANGE;
    uint64_t end = last.present && last.v < size - 1 ? last.v : size - 1;
    *start = first.v;
    *len = end - first.v + 1;
    return 0;
}

static void check_one(const char *h, uint64_t size)
{
    uint64_t start = UNTOUCHED, len = UNTOUCHED, rstart = 0, rlen = 0;
    int rc = cf_s3_range_parse(h, size, &start, &len);
    int ref = ref_parse(h, size, &rstart, &rlen);
    check(rc == 0 || rc == CF_EINVAL || rc == CF_ERANGE);
    check(rc == ref);
    if (rc != 0) {
        check(start == UNTOUCHED && len == UNTOUCHED);
        return;
    }
    check(start == rstart && len == rlen);
    check(len >= 1 && start < size && len <= size - start);

    char again[64];
    uint64_t s2 = 0, l2 = 0;
    snprintf(again, sizeof again, "bytes=%llu-%llu", (unsigned long long)start,
             (unsigned long long)(start + len - 1));
    check(cf_s3_range_parse(again, size, &s2, &l2) == 0 && s2 == start && l2 == len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t sizes[] = {0, 1, 2, 3, 10, 1000, 1ULL << 32, UINT64_MAX - 1, UINT64_MAX};
    if (size > 4096)
        return 0;
    char *h = malloc(size + 1);
    check(h);
    memcpy(h, data, size);
    h[size] = '\0';

    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        check_one(h, sizes[i]);
    /* Sizes at each number the header names: first == size, last == size - 1, suffix == size. */
    int numbers = 0;
    for (const char *p = h; *p && numbers < 4;) {
        if (*p < '0' || *p > '9') {
            p++;
            continue;
        }
        number n;
        p = read_number(p, &n);
        uint64_t v = n.overflow ? UINT64_MAX : n.v;
        check_one(h, v);
        if (v > 0)
            check_one(h, v - 1);
        if (v < UINT64_MAX)
            check_one(h, v + 1);
        numbers++;
    }
    free(h);
    return 0;
}
