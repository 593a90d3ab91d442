/*
 * fuzz_mirror_etag.c - coffer mirror --verify reads ETags from the listings of any server, which
 * may send anything. Input: 8 bytes of an object size, an ETag up to the first newline, then the
 * object's bytes. An ETag that parses formats back to one that parses the same; every part size
 * proposed for a size and count gives exactly that count; a matcher that says "matches" with a
 * part size agrees with the ETag computed alone for that part size, and one fed other bytes than
 * the size it was given never matches.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_check.h"
#include "mirror/etag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8 || size > 4096)
        return 0;
    uint64_t object_size = 0;
    for (int i = 0; i < 8; i++)
        object_size = object_size << 8 | data[i];
    data += 8;
    size -= 8;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t elen = nl ? (size_t)(nl - data) : size;
    if (elen > 200)
        return 0;
    char etag[201];
    memcpy(etag, data, elen);
    etag[elen] = '\0';
    const uint8_t *body = nl ? nl + 1 : data + size;
    size_t blen = (size_t)(data + size - body);

    unsigned char md5[16], again[16];
    unsigned nparts, nagain;
    if (memchr(etag, '\0', elen) == NULL && cf_etag_parse(etag, md5, &nparts) == 0) {
        check(nparts <= CF_ETAG_PARTS_MAX);
        char back[CF_ETAG_MAX + 2];
        int n = snprintf(back, sizeof back, "\"");
        for (int i = 0; i < 16; i++)
            n += snprintf(back + n, sizeof back - (size_t)n, "%02x", md5[i]);
        if (nparts)
            n += snprintf(back + n, sizeof back - (size_t)n, "-%u", nparts);
        snprintf(back + n, sizeof back - (size_t)n, "\"");
        check(cf_etag_parse(back, again, &nagain) == 0 && nagain == nparts && !memcmp(again, md5, 16));

        uint64_t sizes[CF_ETAG_SIZES_MAX];
        size_t k = cf_etag_part_sizes(object_size, nparts, sizes);
        check(k <= CF_ETAG_SIZES_MAX);
        for (size_t i = 0; nparts > 1 && i < k; i++) {
            check(sizes[i] > 0 && sizes[i] < object_size);
            check(object_size / sizes[i] + (object_size % sizes[i] != 0) == nparts);
            for (size_t j = 0; j < i; j++)
                check(sizes[i] != sizes[j]);
        }

        /* The matcher on the body, against the size the body really has and a wrong one. */
        for (int wrong = 0; wrong < 2; wrong++) {
            cf_etag_match *m;
            if (cf_etag_match_new(etag, blen + (uint64_t)wrong, &m, NULL) != 0)
                abort(); /* it parsed above */
            cf_etag_match_update(m, body, blen);
            uint64_t part = 0;
            cf_etag_verdict v = cf_etag_match_final(m, &part);
            cf_etag_match_free(m);
            check(!(wrong && v == CF_ETAG_MATCH));
            if (v == CF_ETAG_MATCH) {
                char mine[CF_ETAG_MAX];
                check(cf_etag_of(body, blen, part, mine, NULL) == 0);
                check(strlen(back) == strlen(mine) + 2 && !strncmp(back + 1, mine, strlen(mine)));
            }
        }
    }

    /* Any bytes hash the same fed whole or in two pieces, for a part size taken from the input. */
    uint64_t part = object_size % 200;
    char whole[CF_ETAG_MAX], pieces[CF_ETAG_MAX];
    check(cf_etag_of(body, blen, part, whole, NULL) == 0);
    cf_etag_calc *c;
    check(cf_etag_calc_new(&part, 1, &c, NULL) == 0);
    cf_etag_calc_update(c, body, blen / 3);
    cf_etag_calc_update(c, body + blen / 3, blen - blen / 3);
    cf_etag_calc_final(c);
    snprintf(pieces, sizeof pieces, "%s", cf_etag_calc_etag(c, 0));
    cf_etag_calc_free(c);
    check(!strcmp(whole, pieces));
    return 0;
}
