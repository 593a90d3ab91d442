/*
 * chunk.c - one chunk, encoded (compress, then seal) and decoded (check, open, decompress): pure
 * functions that the writer (chunk_writer.c) and the readers (chunk_reader.c) run on their
 * threads.
 */
#include "archive/chunk.h"

#include <stdlib.h>

#include "crypto/checksum.h"

size_t cf_archive_chunk_bound(const cf_archive_params *p, size_t raw_n)
{
    return cf_codec_bound(p->codec, raw_n) + (p->key ? CF_ARCHIVE_TAG_LEN : 0);
}

int cf_archive_chunk_encode(const cf_archive_params *p, uint64_t index, int last, const void *raw, size_t n,
                            unsigned char *out, size_t cap, size_t *out_len, uint32_t *crc32c, cf_err *err)
{
    size_t tag = p->key ? CF_ARCHIVE_TAG_LEN : 0, len = 0;
    if (cap < tag)
        return cf_err_set(err, CF_EINVAL, "chunk %llu: output buffer too small", (unsigned long long)index);
    int rc = cf_codec_compress(p->codec, p->level, raw, n, out, cap - tag, &len, err);
    if (rc)
        return rc;
    if (p->key && (rc = cf_archive_seal(p->key, index, last, out, len, err)) != 0)
        return rc;
    *out_len = len + tag;
    *crc32c = cf_crc32c(0, out, *out_len);
    return 0;
}

/* The chunk failed to open at its own position; find out why, for a message that says it. */
static int explain_auth_failure(const cf_archive_params *p, uint64_t index, uint64_t nchunks,
                                const cf_archive_chunk *c, const unsigned char *stored, unsigned char *tmp,
                                cf_err *err)
{
    unsigned long long i = (unsigned long long)index, off = (unsigned long long)c->offset;
    int last = index + 1 == nchunks;
    if (cf_archive_open(p->key, index, !last, stored, c->size, tmp, NULL) == 0) {
        if (last)
            return cf_err_set(err, CF_ECORRUPT,
                              "archive truncated: chunk %llu at offset %llu is the last in the "
                              "table but was not written as the last chunk; chunks after it "
                              "are missing",
                              i, off);
        return cf_err_set(err, CF_ECORRUPT,
                          "chunk %llu at offset %llu was written as the last chunk, but the "
                          "table continues: chunks appended or spliced in",
                          i, off);
    }
    /* A small window is enough to name a swap; beyond it the message stays general. */
    uint64_t lo = index > 8 ? index - 8 : 0, hi = index + 8 < nchunks ? index + 8 : nchunks - 1;
    for (uint64_t j = lo; j <= hi; j++) {
        if (j == index)
            continue;
        for (int f = 0; f < 2; f++) {
            if (cf_archive_open(p->key, j, f, stored, c->size, tmp, NULL) == 0)
                return cf_err_set(err, CF_ECORRUPT,
                                  "chunk %llu at offset %llu holds chunk %llu of the archive: "
                                  "chunks reordered",
                                  i, off, (unsigned long long)j);
        }
    }
    return cf_err_set(err, CF_EAUTH,
                      "chunk %llu at offset %llu fails authentication: wrong key, or the chunk "
                      "comes from another archive",
                      i, off);
}

int cf_archive_chunk_decode(const cf_archive_params *p, uint64_t index, uint64_t nchunks,
                            const cf_archive_chunk *c, const unsigned char *stored, unsigned char *raw,
                            cf_err *err)
{
    unsigned long long i = (unsigned long long)index, off = (unsigned long long)c->offset;
    uint32_t crc = cf_crc32c(0, stored, c->size);
    if (crc != c->crc32c)
        return cf_err_set(err, CF_EDIGEST,
                          "chunk %llu at offset %llu: crc32c %08x does not match the chunk "
                          "table's %08x",
                          i, off, crc, c->crc32c);
    const unsigned char *frame = stored;
    size_t frame_n = c->size;
    unsigned char *tmp = NULL;
    int rc;
    if (p->key) {
        tmp = malloc(c->size ? c->size : 1);
        if (!tmp)
            return cf_err_set(err, CF_ENOMEM, "chunk %llu: out of memory", i);
        rc = cf_archive_open(p->key, index, index + 1 == nchunks, stored, c->size, tmp, err);
        if (rc == CF_EAUTH)
            rc = explain_auth_failure(p, index, nchunks, c, stored, tmp, err);
        if (rc)
            goto out;
        frame = tmp;
        frame_n = c->size - CF_ARCHIVE_TAG_LEN;
    }
    cf_err e;
    cf_err_clear(&e);
    rc = cf_codec_decompress(p->codec, frame, frame_n, raw, c->raw_size, &e);
    if (rc)
        cf_err_set(err, rc, "chunk %llu at offset %llu: %s", i, off, e.msg);
out:
    free(tmp);
    return rc;
}
