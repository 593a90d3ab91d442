#include "store/record.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"

static int put_u8(cf_buf *b, uint8_t v)
{
    return cf_buf_append(b, &v, 1);
}
static int put_u16(cf_buf *b, uint16_t v)
{
    return cf_buf_append(b, &v, 2);
}
static int put_u32(cf_buf *b, uint32_t v)
{
    return cf_buf_append(b, &v, 4);
}
static int put_u64(cf_buf *b, uint64_t v)
{
    return cf_buf_append(b, &v, 8);
}

int cf_record_encode(const cf_object_info *info, cf_buf *out)
{
    size_t etaglen = strlen(info->etag);
    /* Records of data files stay version 1, which older servers read. */
    int with_data = info->nsegs == 0 && info->size > 0;
    if (with_data && (!info->data || info->size > UINT32_MAX))
        return CF_EINVAL;
    int rc = put_u8(out, with_data ? CF_RECORD_VERSION_INLINE : CF_RECORD_VERSION);
    if (!rc)
        rc = put_u64(out, info->size);
    if (!rc)
        rc = put_u64(out, (uint64_t)info->mtime_ns);
    if (!rc)
        rc = put_u8(out, (uint8_t)etaglen);
    if (!rc)
        rc = cf_buf_append(out, info->etag, etaglen);
    if (!rc && info->nheaders > UINT16_MAX)
        rc = CF_ETOOBIG;
    if (!rc)
        rc = put_u16(out, (uint16_t)info->nheaders);
    for (size_t i = 0; !rc && i < info->nheaders; i++) {
        size_t nl = strlen(info->headers[i].name), vl = strlen(info->headers[i].value);
        if (nl > UINT16_MAX || vl > UINT16_MAX)
            return CF_ETOOBIG;
        rc = put_u16(out, (uint16_t)nl);
        if (!rc)
            rc = cf_buf_append(out, info->headers[i].name, nl);
        if (!rc)
            rc = put_u16(out, (uint16_t)vl);
        if (!rc)
            rc = cf_buf_append(out, info->headers[i].value, vl);
    }
    if (!rc)
        rc = put_u32(out, (uint32_t)info->nsegs);
    for (size_t i = 0; !rc && i < info->nsegs; i++) {
        rc = cf_buf_append(out, info->segs[i].id, CF_STORE_ID_LEN);
        if (!rc)
            rc = put_u64(out, info->segs[i].len);
    }
    if (!rc && with_data)
        rc = cf_buf_append(out, info->data, (size_t)info->size);
    return rc;
}

typedef struct reader {
    const unsigned char *p;
    size_t left;
} reader;

static int take(reader *r, void *out, size_t n)
{
    if (r->left < n)
        return CF_ECORRUPT;
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    return 0;
}

static int take_str(reader *r, size_t n, char **out)
{
    if (r->left < n)
        return CF_ECORRUPT;
    char *s = malloc(n + 1);
    if (!s)
        return CF_ENOMEM;
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    r->left -= n;
    *out = s;
    return 0;
}

static int decode(const void *p, size_t n, cf_object_info *info, int with_data)
{
    reader r = {p, n};
    uint8_t version = 0, etaglen = 0;
    uint16_t nheaders = 0;
    uint32_t nsegs = 0;
    uint64_t mtime = 0;
    memset(info, 0, sizeof *info);
    int rc = take(&r, &version, 1);
    if (!rc && version != CF_RECORD_VERSION && version != CF_RECORD_VERSION_INLINE)
        rc = CF_ECORRUPT;
    if (!rc)
        rc = take(&r, &info->size, 8);
    if (!rc)
        rc = take(&r, &mtime, 8);
    if (!rc)
        rc = take(&r, &etaglen, 1);
    if (!rc && etaglen >= sizeof info->etag)
        rc = CF_ECORRUPT;
    if (!rc)
        rc = take(&r, info->etag, etaglen);
    if (!rc)
        rc = take(&r, &nheaders, 2);
    info->mtime_ns = (int64_t)mtime;
    if (!rc && nheaders) {
        info->headers = calloc(nheaders, sizeof *info->headers);
        if (!info->headers)
            rc = CF_ENOMEM;
    }
    for (uint16_t i = 0; !rc && i < nheaders; i++) {
        uint16_t len;
        rc = take(&r, &len, 2);
        if (!rc)
            rc = take_str(&r, len, &info->headers[i].name);
        if (!rc)
            info->nheaders = i + 1u;
        if (!rc)
            rc = take(&r, &len, 2);
        if (!rc)
            rc = take_str(&r, len, &info->headers[i].value);
    }
    if (!rc)
        rc = take(&r, &nsegs, 4);
    if (!rc && nsegs > r.left / (CF_STORE_ID_LEN + 8))
        rc = CF_ECORRUPT;
    if (!rc && nsegs) {
        info->segs = calloc(nsegs, sizeof *info->segs);
        if (!info->segs)
            rc = CF_ENOMEM;
    }
    for (uint32_t i = 0; !rc && i < nsegs; i++) {
        rc = take(&r, info->segs[i].id, CF_STORE_ID_LEN);
        if (!rc)
            rc = take(&r, &info->segs[i].len, 8);
    }
    if (!rc)
        info->nsegs = nsegs;
    /* A version-1 record of a non-empty object names its data: without a segment it is damaged
     * (re-encoding it would claim an inline body it does not have). */
    if (!rc && version == CF_RECORD_VERSION && !nsegs && info->size)
        rc = CF_ECORRUPT;
    if (!rc && version == CF_RECORD_VERSION_INLINE) {
        /* The rest of the record is the body, nothing else. */
        if (nsegs || info->size == 0 || r.left != info->size)
            rc = CF_ECORRUPT;
        else if (with_data && !(info->data = malloc((size_t)info->size)))
            rc = CF_ENOMEM;
        else if (with_data)
            rc = take(&r, info->data, (size_t)info->size);
    }
    if (rc) /* a header whose value was not read has a NULL value: cleanup frees it as it is */
        cf_object_info_cleanup(info);
    return rc;
}

int cf_record_decode(const void *p, size_t n, cf_object_info *info)
{
    return decode(p, n, info, 1);
}

int cf_record_decode_meta(const void *p, size_t n, cf_object_info *info)
{
    return decode(p, n, info, 0);
}

void cf_object_info_cleanup(cf_object_info *info)
{
    for (size_t i = 0; i < info->nheaders; i++) {
        free(info->headers[i].name);
        free(info->headers[i].value);
    }
    free(info->headers);
    free(info->segs);
    free(info->data);
    info->headers = NULL;
    info->segs = NULL;
    info->data = NULL;
    info->nheaders = info->nsegs = 0;
}

const char *cf_object_info_header(const cf_object_info *info, const char *name)
{
    for (size_t i = 0; i < info->nheaders; i++)
        if (strcmp(info->headers[i].name, name) == 0)
            return info->headers[i].value;
    return NULL;
}

int cf_object_info_copy(cf_object_info *dst, const cf_object_info *src)
{
    cf_buf b;
    cf_buf_init(&b, SIZE_MAX / 2);
    int rc = cf_record_encode(src, &b);
    if (!rc)
        rc = cf_record_decode(b.data, b.len, dst);
    cf_buf_cleanup(&b);
    return rc;
}

long cf_group_parse(const void *p, size_t n, cf_group_entry *entries, size_t max)
{
    reader r = {p, n};
    uint8_t magic;
    uint32_t count;
    if (take(&r, &magic, 1) || magic != CF_GROUP_MAGIC || take(&r, &count, 4) || count > max)
        return CF_ECORRUPT;
    for (uint32_t i = 0; i < count; i++) {
        uint16_t kl;
        uint32_t rl;
        if (take(&r, &kl, 2) || r.left < kl)
            return CF_ECORRUPT;
        entries[i].key = (const char *)r.p;
        entries[i].keylen = kl;
        r.p += kl;
        r.left -= kl;
        if (take(&r, &rl, 4) || r.left < rl)
            return CF_ECORRUPT;
        entries[i].rec = r.p;
        entries[i].reclen = rl;
        r.p += rl;
        r.left -= rl;
    }
    return (long)count;
}

int cf_group_encode(const cf_group_entry *entries, size_t count, cf_buf *out)
{
    int rc = put_u8(out, CF_GROUP_MAGIC);
    if (!rc)
        rc = put_u32(out, (uint32_t)count);
    for (size_t i = 0; !rc && i < count; i++) {
        rc = put_u16(out, (uint16_t)entries[i].keylen);
        if (!rc)
            rc = cf_buf_append(out, entries[i].key, entries[i].keylen);
        if (!rc)
            rc = put_u32(out, (uint32_t)entries[i].reclen);
        if (!rc)
            rc = cf_buf_append(out, entries[i].rec, entries[i].reclen);
    }
    return rc;
}
