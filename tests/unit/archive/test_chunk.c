/*
 * test_chunk.c - the chunked archive stream: round trips over every codec with and without
 * encryption and with and without worker threads, the standard tools reading our concatenated
 * frames, and each kind of damage being detected and named (flipped byte, wrong key,
 * truncation, reordering, splicing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "archive/chunk.h"
#include "archive/codec.h"
#include "archive/seal.h"
#include "core/buf.h"
#include "core/err.h"
#include "crypto/checksum.h"
#include "crypto/hash.h"

#define CHUNK ((size_t)64 << 10)

static const cf_codec codecs[] = {CF_CODEC_NONE, CF_CODEC_ZSTD, CF_CODEC_LZ4, CF_CODEC_GZIP};

static unsigned char *random_data(size_t n, uint64_t seed)
{
    unsigned char *p = malloc(n ? n : 1);
    assert_non_null(p);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
    return p;
}

/* Text-like bytes: words from a small vocabulary, so every codec finds something to do. */
static unsigned char *compressible_data(size_t n, uint64_t seed)
{
    static const char *const words[] = {"block ", "height ", "chain ",  "snapshot ",
                                        "raft\n", "tenant ", "0x7f3a ", "{\"k\": 1} "};
    unsigned char *p = malloc(n ? n : 1);
    assert_non_null(p);
    uint64_t x = seed + 7;
    size_t i = 0;
    while (i < n) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        const char *w = words[(x >> 33) % 8];
        for (size_t j = 0; w[j] && i < n; j++)
            p[i++] = (unsigned char)w[j];
    }
    return p;
}

static int buf_sink(void *ctx, const void *p, size_t n, cf_err *err)
{
    int rc = cf_buf_append(ctx, p, n);
    return rc ? cf_err_set(err, rc, "test sink full") : 0;
}

static int buf_fetch(void *ctx, uint64_t offset, uint64_t size, void *out, cf_err *err)
{
    cf_buf *b = ctx;
    if (offset + size > b->len)
        return cf_err_set(err, CF_ERANGE, "fetch [%llu, +%llu) past the end (%zu)",
                          (unsigned long long)offset, (unsigned long long)size, b->len);
    memcpy(out, b->data + offset, size);
    return 0;
}

/* An archive in memory, with the table copied out of the writer. */
typedef struct stored {
    cf_buf bytes;
    cf_archive_chunk *chunks;
    size_t nchunks;
    uint64_t raw_size;
    unsigned char sha256[CF_SHA256_LEN];
} stored;

static void write_archive(const cf_archive_writer_opts *o, const unsigned char *raw, size_t n, size_t piece,
                          stored *s)
{
    cf_err err;
    cf_archive_writer *w = NULL;
    cf_buf_init(&s->bytes, 64u << 20);
    assert_int_equal(cf_archive_writer_new(o, buf_sink, &s->bytes, &w, &err), 0);
    /* Feed in uneven pieces so chunk boundaries fall inside writes. */
    for (size_t off = 0; off < n;) {
        size_t take = n - off < piece ? n - off : piece;
        assert_int_equal(cf_archive_writer_write(w, raw + off, take, &err), 0);
        off += take;
    }
    cf_archive_result res;
    int rc = cf_archive_writer_finish(w, &res, &err);
    if (rc)
        fail_msg("finish: %s", err.msg);
    s->nchunks = res.nchunks;
    s->chunks = malloc(res.nchunks * sizeof *s->chunks);
    assert_non_null(s->chunks);
    memcpy(s->chunks, res.chunks, res.nchunks * sizeof *s->chunks);
    s->raw_size = res.raw_size;
    memcpy(s->sha256, res.sha256, sizeof s->sha256);
    assert_int_equal(res.size, s->bytes.len);
    cf_archive_writer_free(w);
}

static void stored_cleanup(stored *s)
{
    cf_buf_cleanup(&s->bytes);
    free(s->chunks);
}

static int read_archive(const cf_archive_read_opts *o, stored *s, cf_buf *out, cf_err *err)
{
    cf_buf_init(out, 64u << 20);
    return cf_archive_read(o, s->chunks, s->nchunks, buf_fetch, &s->bytes, buf_sink, out, err);
}

/* An object delivered front to back in pieces, as cf_repo_stream does; len may differ from the
 * table's total to play a truncated or extended object, fail_at injects a transport error. */
typedef struct mem_stream {
    const unsigned char *data;
    size_t len, piece;
    size_t fail_at;   /* SIZE_MAX: never */
    size_t delivered; /* written by the producer thread, read after the reader is freed */
    int refused;      /* the sink returned an error */
} mem_stream;

static mem_stream mem_stream_of(const stored *s, size_t piece)
{
    return (mem_stream){(const unsigned char *)s->bytes.data, s->bytes.len, piece, SIZE_MAX, 0, 0};
}

static int mem_stream_fn(void *ctx, cf_archive_sink_fn sink, void *sink_ctx, cf_err *err)
{
    mem_stream *m = ctx;
    for (size_t off = 0; off < m->len;) {
        size_t take = m->len - off < m->piece ? m->len - off : m->piece;
        if (off < m->fail_at && off + take > m->fail_at)
            take = m->fail_at - off;
        if (off == m->fail_at)
            return cf_err_set(err, CF_EIO, "test stream: connection reset at byte %zu", off);
        if (sink(sink_ctx, m->data + off, take, err) != 0) {
            m->refused = 1;
            return err->code;
        }
        off += take;
        m->delivered = off;
    }
    return 0;
}

static int read_archive_stream(const cf_archive_read_opts *o, stored *s, unsigned threads, size_t piece,
                               cf_buf *out, cf_err *err)
{
    cf_buf_init(out, 64u << 20);
    mem_stream m = mem_stream_of(s, piece);
    return cf_archive_read_stream(o, s->chunks, s->nchunks, threads, mem_stream_fn, &m, buf_sink, out, err);
}

static void test_key(cf_archive_key *k, unsigned char seed)
{
    unsigned char raw[32], salt[32];
    memset(raw, seed, sizeof raw);
    memset(salt, 0x5a, sizeof salt);
    cf_master_key m;
    assert_int_equal(cf_master_key_from_bytes(raw, sizeof raw, &m, NULL), 0);
    assert_int_equal(cf_archive_key_derive(&m, salt, k, NULL), 0);
    cf_master_key_cleanup(&m);
}

static void round_trip(cf_codec codec, const cf_archive_key *key, unsigned threads, const unsigned char *raw,
                       size_t n)
{
    cf_archive_writer_opts o = {
        .params = {.codec = codec, .key = key}, .chunk_size = CHUNK, .threads = threads};
    stored s;
    write_archive(&o, raw, n, 10007, &s);

    size_t want_chunks = n ? (n + CHUNK - 1) / CHUNK : 1;
    assert_int_equal(s.nchunks, want_chunks);
    assert_int_equal(s.raw_size, n);
    uint64_t off = 0;
    for (size_t i = 0; i < s.nchunks; i++) {
        assert_int_equal(s.chunks[i].offset, off);
        assert_int_equal(s.chunks[i].raw_size, i + 1 < s.nchunks ? CHUNK : n - i * CHUNK);
        off += s.chunks[i].size;
    }
    unsigned char d[CF_SHA256_LEN];
    cf_sha256(s.bytes.data ? s.bytes.data : "", s.bytes.len, d);
    assert_memory_equal(d, s.sha256, sizeof d);

    cf_archive_read_opts ro = {.params = o.params,
                               .key_id = key ? key->key_id : NULL,
                               .sha256 = s.sha256,
                               .size = s.bytes.len,
                               .raw_size = n};
    cf_buf out;
    cf_err err;
    int rc = read_archive(&ro, &s, &out, &err);
    if (rc)
        fail_msg("%s/%s/%u threads/%zu bytes: %s", cf_codec_name(codec), key ? "sealed" : "plain", threads, n,
                 err.msg);
    assert_int_equal(out.len, n);
    if (n)
        assert_memory_equal(out.data, raw, n);
    cf_buf_cleanup(&out);
    rc = read_archive_stream(&ro, &s, threads, 10007, &out, &err);
    if (rc)
        fail_msg("parallel %s/%s/%u threads/%zu bytes: %s", cf_codec_name(codec), key ? "sealed" : "plain",
                 threads, n, err.msg);
    assert_int_equal(out.len, n);
    if (n)
        assert_memory_equal(out.data, raw, n);
    cf_buf_cleanup(&out);
    stored_cleanup(&s);
}

static void test_round_trip_every_codec_size_and_key(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, CHUNK * 7 / 2};
    cf_archive_key key;
    test_key(&key, 1);
    for (int kind = 0; kind < 2; kind++) {
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            size_t n = sizes[si];
            unsigned char *raw = kind ? compressible_data(n, si) : random_data(n, si);
            for (size_t c = 0; c < 4; c++) {
                for (int enc = 0; enc < 2; enc++) {
                    round_trip(codecs[c], enc ? &key : NULL, 0, raw, n);
                    round_trip(codecs[c], enc ? &key : NULL, 3, raw, n);
                }
            }
            free(raw);
        }
    }
    cf_archive_key_cleanup(&key);
}

static void test_compressible_data_shrinks(void **state)
{
    (void)state;
    size_t n = CHUNK * 3;
    unsigned char *raw = compressible_data(n, 1);
    for (size_t c = 1; c < 4; c++) {
        cf_archive_writer_opts o = {.params = {.codec = codecs[c]}, .chunk_size = CHUNK};
        stored s;
        write_archive(&o, raw, n, n, &s);
        assert_true(s.bytes.len < n / 2);
        stored_cleanup(&s);
    }
    free(raw);
}

static void test_default_options_use_zstd_and_8_mib_chunks(void **state)
{
    (void)state;
    size_t n = CF_ARCHIVE_DEFAULT_CHUNK + 5;
    unsigned char *raw = compressible_data(n, 3);
    stored s;
    write_archive(NULL, raw, n, 1u << 20, &s);
    assert_int_equal(s.nchunks, 2);
    assert_int_equal(s.chunks[0].raw_size, CF_ARCHIVE_DEFAULT_CHUNK);
    assert_int_equal(s.chunks[1].raw_size, 5);
    /* zstd's frame magic, little-endian 0xFD2FB528. */
    assert_memory_equal(s.bytes.data, "\x28\xb5\x2f\xfd", 4);
    stored_cleanup(&s);
    free(raw);
}

/* ---- the standard tools read our concatenated frames ---- */

static void tool_decodes(cf_codec codec, const char *cmd)
{
    size_t n = CHUNK * 7 / 2;
    unsigned char *raw = compressible_data(n, 11);
    cf_archive_writer_opts o = {.params = {.codec = codec}, .chunk_size = CHUNK, .threads = 2};
    stored s;
    write_archive(&o, raw, n, 4096, &s);
    assert_int_equal(s.nchunks, 4);

    char in[] = "/tmp/cf_archive_tool_XXXXXX";
    int fd = mkstemp(in);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, s.bytes.data, s.bytes.len), (ssize_t)s.bytes.len);
    close(fd);
    char line[256];
    snprintf(line, sizeof line, "%s < %s", cmd, in);
    FILE *p = popen(line, "r");
    assert_non_null(p);
    unsigned char *got = malloc(n + 1);
    assert_non_null(got);
    size_t len = fread(got, 1, n + 1, p);
    int status = pclose(p);
    unlink(in);
    if (status != 0 || len != n || memcmp(got, raw, n) != 0)
        fail_msg("`%s` gave %zu bytes (want %zu), status %d", cmd, len, n, status);
    free(got);
    free(raw);
    stored_cleanup(&s);
}

static void test_zstd_tool_decodes_concatenated_chunks(void **state)
{
    (void)state;
    tool_decodes(CF_CODEC_ZSTD, "zstd -q -d -c");
}

static void test_lz4_tool_decodes_concatenated_chunks(void **state)
{
    (void)state;
    tool_decodes(CF_CODEC_LZ4, "lz4 -q -d -c");
}

static void test_gzip_tool_decodes_concatenated_chunks(void **state)
{
    (void)state;
    tool_decodes(CF_CODEC_GZIP, "gzip -q -d -c");
}

static void test_none_is_the_raw_stream(void **state)
{
    (void)state;
    tool_decodes(CF_CODEC_NONE, "cat");
}

/* ---- damage ---- */

/* A 3.5-chunk archive to damage. */
static void damage_fixture(cf_codec codec, const cf_archive_key *key, stored *s, unsigned char **raw)
{
    size_t n = CHUNK * 7 / 2;
    *raw = random_data(n, 99);
    cf_archive_writer_opts o = {.params = {.codec = codec, .key = key}, .chunk_size = CHUNK};
    write_archive(&o, *raw, n, n, s);
    assert_int_equal(s->nchunks, 4);
}

static void expect_read_error(const cf_archive_read_opts *o, stored *s, int code, const char *needle)
{
    cf_buf out;
    cf_err err;
    cf_err_clear(&err);
    int rc = read_archive(o, s, &out, &err);
    cf_buf_cleanup(&out);
    if (rc != code || !strstr(err.msg, needle))
        fail_msg("want %s containing \"%s\", got %s: \"%s\"", cf_strerror(code), needle, cf_strerror(rc),
                 err.msg);
    /* The parallel reader reports the same first error, whatever its threads. */
    const unsigned threads[] = {0, 1, 3};
    for (size_t t = 0; t < 3; t++) {
        cf_err_clear(&err);
        rc = read_archive_stream(o, s, threads[t], 4099, &out, &err);
        cf_buf_cleanup(&out);
        if (rc != code || !strstr(err.msg, needle))
            fail_msg("parallel, %u threads: want %s containing \"%s\", got %s: \"%s\"", threads[t],
                     cf_strerror(code), needle, cf_strerror(rc), err.msg);
    }
}

static void test_flipped_byte_names_the_chunk(void **state)
{
    (void)state;
    cf_archive_key key;
    test_key(&key, 2);
    for (size_t c = 0; c < 4; c++) {
        for (int enc = 0; enc < 2; enc++) {
            stored s;
            unsigned char *raw;
            damage_fixture(codecs[c], enc ? &key : NULL, &s, &raw);
            s.bytes.data[s.chunks[2].offset + s.chunks[2].size / 2] ^= 0x10;
            char needle[64];
            snprintf(needle, sizeof needle, "chunk 2 at offset %llu: crc32c",
                     (unsigned long long)s.chunks[2].offset);
            cf_archive_read_opts o = {.params = {.codec = codecs[c], .key = enc ? &key : NULL}};
            expect_read_error(&o, &s, CF_EDIGEST, needle);
            stored_cleanup(&s);
            free(raw);
        }
    }
    cf_archive_key_cleanup(&key);
}

static void test_flipped_byte_with_forged_crc_fails_authentication(void **state)
{
    (void)state;
    cf_archive_key key;
    test_key(&key, 2);
    stored s;
    unsigned char *raw;
    damage_fixture(CF_CODEC_ZSTD, &key, &s, &raw);
    cf_archive_chunk *c = &s.chunks[1];
    s.bytes.data[c->offset + 3] ^= 1;
    c->crc32c = cf_crc32c(0, s.bytes.data + c->offset, c->size);
    cf_archive_read_opts o = {.params = {.codec = CF_CODEC_ZSTD, .key = &key}};
    expect_read_error(&o, &s, CF_EAUTH, "chunk 1 at offset");
    stored_cleanup(&s);
    free(raw);
    cf_archive_key_cleanup(&key);
}

static void test_wrong_key_is_named(void **state)
{
    (void)state;
    cf_archive_key key, other;
    test_key(&key, 3);
    test_key(&other, 4);
    stored s;
    unsigned char *raw;
    damage_fixture(CF_CODEC_LZ4, &key, &s, &raw);
    cf_archive_read_opts o = {.params = {.codec = CF_CODEC_LZ4, .key = &other}, .key_id = key.key_id};
    expect_read_error(&o, &s, CF_EAUTH, "wrong key");
    /* Without the manifest's key id, decryption itself reports it. */
    o.key_id = NULL;
    expect_read_error(&o, &s, CF_EAUTH, "chunk 0 at offset 0 fails authentication: wrong key");
    stored_cleanup(&s);
    free(raw);
    cf_archive_key_cleanup(&key);
    cf_archive_key_cleanup(&other);
}

static void test_truncated_archive_is_named(void **state)
{
    (void)state;
    cf_archive_key key;
    test_key(&key, 5);
    stored s;
    unsigned char *raw;
    damage_fixture(CF_CODEC_GZIP, &key, &s, &raw);
    s.nchunks--;
    cf_archive_read_opts o = {.params = {.codec = CF_CODEC_GZIP, .key = &key}};
    expect_read_error(&o, &s, CF_ECORRUPT, "archive truncated: chunk 2");
    /* Unencrypted, only the manifest's totals can tell, and do. */
    stored plain;
    unsigned char *raw2;
    damage_fixture(CF_CODEC_GZIP, NULL, &plain, &raw2);
    uint64_t size = plain.bytes.len;
    plain.nchunks--;
    cf_archive_read_opts po = {.params = {.codec = CF_CODEC_GZIP}, .size = size};
    expect_read_error(&po, &plain, CF_ECORRUPT, "chunk table covers");
    stored_cleanup(&plain);
    free(raw2);
    stored_cleanup(&s);
    free(raw);
    cf_archive_key_cleanup(&key);
}

static void test_extended_archive_is_named(void **state)
{
    (void)state;
    cf_archive_key key;
    test_key(&key, 5);
    stored s;
    unsigned char *raw;
    damage_fixture(CF_CODEC_NONE, &key, &s, &raw);
    /* Append a copy of the last chunk: the old last chunk is now in the middle. */
    cf_archive_chunk last = s.chunks[3];
    s.chunks = realloc(s.chunks, 5 * sizeof *s.chunks);
    assert_non_null(s.chunks);
    /* Copied first: appending from the buffer itself would read freed memory on growth. */
    unsigned char *copy = malloc(last.size);
    assert_non_null(copy);
    memcpy(copy, s.bytes.data + last.offset, last.size);
    assert_int_equal(cf_buf_append(&s.bytes, copy, last.size), 0);
    free(copy);
    s.chunks[4] = last;
    s.chunks[4].offset = last.offset + last.size;
    s.nchunks = 5;
    cf_archive_read_opts o = {.params = {.codec = CF_CODEC_NONE, .key = &key}};
    expect_read_error(&o, &s, CF_ECORRUPT, "chunk 3 at offset");
    expect_read_error(&o, &s, CF_ECORRUPT, "was written as the last chunk");
    stored_cleanup(&s);
    free(raw);
    cf_archive_key_cleanup(&key);
}

static void test_reordered_chunks_are_named(void **state)
{
    (void)state;
    cf_archive_key key;
    test_key(&key, 6);
    stored s;
    unsigned char *raw;
    damage_fixture(CF_CODEC_ZSTD, &key, &s, &raw);
    /* Swap chunks 0 and 1 in the object and the table alike, as an attacker would. */
    cf_archive_chunk c0 = s.chunks[0], c1 = s.chunks[1];
    unsigned char *tmp = malloc(c0.size + c1.size);
    assert_non_null(tmp);
    memcpy(tmp, s.bytes.data + c1.offset, c1.size);
    memcpy(tmp + c1.size, s.bytes.data, c0.size);
    memcpy(s.bytes.data, tmp, c0.size + c1.size);
    free(tmp);
    s.chunks[0] = c1;
    s.chunks[0].offset = 0;
    s.chunks[1] = c0;
    s.chunks[1].offset = c1.size;
    cf_archive_read_opts o = {.params = {.codec = CF_CODEC_ZSTD, .key = &key}};
    expect_read_error(&o, &s, CF_ECORRUPT,
                      "chunk 0 at offset 0 holds chunk 1 of the archive: "
                      "chunks reordered");
    stored_cleanup(&s);
    free(raw);
    cf_archive_key_cleanup(&key);
}

static void test_chunk_spliced_from_another_snapshot_fails(void **state)
{
    (void)state;
    unsigned char mraw[32], salt_a[32], salt_b[32];
    memset(mraw, 7, sizeof mraw);
    memset(salt_a, 1, sizeof salt_a);
    memset(salt_b, 2, sizeof salt_b);
    cf_master_key m;
    cf_archive_key ka, kb;
    assert_int_equal(cf_master_key_from_bytes(mraw, sizeof mraw, &m, NULL), 0);
    assert_int_equal(cf_archive_key_derive(&m, salt_a, &ka, NULL), 0);
    assert_int_equal(cf_archive_key_derive(&m, salt_b, &kb, NULL), 0);
    assert_string_equal(ka.key_id, kb.key_id);
    assert_memory_not_equal(ka.key, kb.key, sizeof ka.key);
    stored a, b;
    unsigned char *ra, *rb;
    damage_fixture(CF_CODEC_NONE, &ka, &a, &ra);
    damage_fixture(CF_CODEC_NONE, &kb, &b, &rb);
    /* Same plaintext, same sizes: chunk 1 of b dropped into a, table updated to match. */
    memcpy(a.bytes.data + a.chunks[1].offset, b.bytes.data + b.chunks[1].offset, b.chunks[1].size);
    a.chunks[1].crc32c = b.chunks[1].crc32c;
    cf_archive_read_opts o = {.params = {.codec = CF_CODEC_NONE, .key = &ka}, .key_id = ka.key_id};
    expect_read_error(&o, &a, CF_EAUTH, "chunk 1 at offset");
    stored_cleanup(&a);
    stored_cleanup(&b);
    free(ra);
    free(rb);
    cf_master_key_cleanup(&m);
    cf_archive_key_cleanup(&ka);
    cf_archive_key_cleanup(&kb);
}

static void test_bad_tables_are_rejected(void **state)
{
    (void)state;
    stored s;
    unsigned char *raw;
    damage_fixture(CF_CODEC_ZSTD, NULL, &s, &raw);
    cf_archive_read_opts o = {.params = {.codec = CF_CODEC_ZSTD}};
    s.chunks[2].offset++;
    expect_read_error(&o, &s, CF_ECORRUPT, "chunk 2 starts at offset");
    s.chunks[2].offset--;
    uint64_t saved = s.chunks[1].raw_size;
    s.chunks[1].raw_size = (uint64_t)1 << 40;
    expect_read_error(&o, &s, CF_ECORRUPT, "impossible");
    s.chunks[1].raw_size = saved;
    unsigned char bad[CF_SHA256_LEN] = {0};
    o.sha256 = bad;
    expect_read_error(&o, &s, CF_EDIGEST, "archive sha256");
    size_t n = s.nchunks;
    s.nchunks = 0;
    o.sha256 = NULL;
    expect_read_error(&o, &s, CF_ECORRUPT, "empty");
    s.nchunks = n;
    stored_cleanup(&s);
    free(raw);
}

static void test_frame_with_trailing_or_short_data_is_corrupt(void **state)
{
    (void)state;
    unsigned char raw[1000], out[1000], frame[4096];
    memset(raw, 'a', sizeof raw);
    for (size_t c = 1; c < 4; c++) {
        size_t len;
        cf_err err;
        assert_int_equal(
            cf_codec_compress(codecs[c], 0, raw, sizeof raw, frame, sizeof frame - 8, &len, &err), 0);
        assert_int_equal(cf_codec_decompress(codecs[c], frame, len, out, sizeof raw, &err), 0);
        assert_memory_equal(out, raw, sizeof raw);
        frame[len] = 0;
        assert_int_equal(cf_codec_decompress(codecs[c], frame, len + 1, out, sizeof raw, &err), CF_ECORRUPT);
        assert_int_equal(cf_codec_decompress(codecs[c], frame, len - 1, out, sizeof raw, &err), CF_ECORRUPT);
        assert_int_equal(cf_codec_decompress(codecs[c], frame, len, out, sizeof raw - 1, &err), CF_ECORRUPT);
    }
}

static void test_codec_names_and_levels(void **state)
{
    (void)state;
    cf_codec c;
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(cf_codec_from_name(cf_codec_name(codecs[i]), &c), 0);
        assert_int_equal(c, codecs[i]);
    }
    assert_int_equal(cf_codec_from_name("bzip2", &c), CF_EINVAL);
    assert_string_equal(cf_codec_suffix(CF_CODEC_LZ4), ".tar.lz4");
    cf_err err;
    assert_int_equal(cf_codec_check_level(CF_CODEC_GZIP, 10, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "\"gzip\""));
    assert_int_equal(cf_codec_check_level(CF_CODEC_ZSTD, 19, &err), 0);
    cf_archive_writer *w;
    cf_archive_writer_opts o = {.params = {.codec = CF_CODEC_LZ4, .level = 13}};
    assert_int_equal(cf_archive_writer_new(&o, buf_sink, NULL, &w, &err), CF_EINVAL);
    assert_null(w);
}

static int failing_sink(void *ctx, const void *p, size_t n, cf_err *err)
{
    int *calls = ctx;
    return ++*calls == 2 ? cf_err_set(err, CF_EIO, "disk full at chunk 1") : 0;
}

static void test_sink_error_stops_the_writer(void **state)
{
    (void)state;
    for (unsigned threads = 0; threads < 3; threads += 2) {
        int calls = 0;
        cf_err err;
        cf_archive_writer *w;
        cf_archive_writer_opts o = {
            .params = {.codec = CF_CODEC_LZ4}, .chunk_size = 1024, .threads = threads};
        assert_int_equal(cf_archive_writer_new(&o, failing_sink, &calls, &w, &err), 0);
        unsigned char *raw = random_data(64 * 1024, 5);
        int rc = cf_archive_writer_write(w, raw, 64 * 1024, &err);
        if (rc == 0)
            rc = cf_archive_writer_finish(w, &(cf_archive_result){0}, &err);
        assert_int_equal(rc, CF_EIO);
        assert_string_equal(err.msg, "disk full at chunk 1");
        assert_int_equal(cf_archive_writer_write(w, raw, 1, &err), CF_EINVAL);
        cf_archive_writer_free(w);
        assert_int_equal(calls, 2); /* nothing reached the sink after its failure */
        free(raw);
    }
}

/* ---- the parallel reader ---- */

/* Pulls to the end or the first error, checking each chunk against raw; counts what came. */
static int pull_all(cf_archive_reader *r, const unsigned char *raw, size_t *chunks, size_t *bytes,
                    cf_err *err)
{
    *chunks = *bytes = 0;
    for (;;) {
        const void *p;
        size_t n;
        int rc = cf_archive_reader_next(r, &p, &n, err);
        if (rc || n == 0)
            return rc;
        assert_memory_equal(p, raw + *bytes, n);
        ++*chunks;
        *bytes += n;
    }
}

static void test_parallel_reader_round_trip_chunk_and_thread_counts(void **state)
{
    (void)state;
    const size_t nchunks[] = {1, 2, 5, 17};
    const unsigned threads[] = {0, 1, 2, 3, 8};
    const size_t pieces[] = {7, 65536, 1u << 20};
    cf_archive_key key;
    test_key(&key, 8);
    for (size_t ci = 0; ci < 4; ci++) {
        size_t n = nchunks[ci] * CHUNK - (ci % 2 ? 0 : 1000);
        unsigned char *raw = compressible_data(n, ci);
        for (int enc = 0; enc < 2; enc++) {
            cf_archive_writer_opts wo = {.params = {.codec = CF_CODEC_ZSTD, .key = enc ? &key : NULL},
                                         .chunk_size = CHUNK,
                                         .threads = 2};
            stored s;
            write_archive(&wo, raw, n, n, &s);
            assert_int_equal(s.nchunks, nchunks[ci]);
            cf_archive_read_opts ro = {.params = wo.params,
                                       .key_id = enc ? key.key_id : NULL,
                                       .sha256 = s.sha256,
                                       .size = s.bytes.len,
                                       .raw_size = n};
            for (size_t ti = 0; ti < 5; ti++) {
                for (size_t pi = 0; pi < 3; pi++) {
                    if (pieces[pi] == 7 && nchunks[ci] > 5)
                        continue; /* byte-sized pieces over many chunks add time, not cover */
                    mem_stream m = mem_stream_of(&s, pieces[pi]);
                    cf_archive_reader *r;
                    cf_err err;
                    assert_int_equal(cf_archive_reader_new_stream(&ro, s.chunks, s.nchunks, threads[ti],
                                                                  mem_stream_fn, &m, &r, &err),
                                     0);
                    size_t got_chunks, got_bytes;
                    int rc = pull_all(r, raw, &got_chunks, &got_bytes, &err);
                    if (rc)
                        fail_msg("%zu chunks, %u threads, pieces of %zu: %s", nchunks[ci], threads[ti],
                                 pieces[pi], err.msg);
                    assert_int_equal(got_chunks, nchunks[ci]);
                    assert_int_equal(got_bytes, n);
                    /* The end stays the end. */
                    const void *p;
                    size_t len;
                    assert_int_equal(cf_archive_reader_next(r, &p, &len, &err), 0);
                    assert_int_equal(len, 0);
                    cf_archive_reader_free(r);
                    assert_int_equal(m.delivered, s.bytes.len);
                    assert_false(m.refused);
                }
            }
            stored_cleanup(&s);
        }
        free(raw);
    }
    cf_archive_key_cleanup(&key);
}

static void test_parallel_reader_empty_archive(void **state)
{
    (void)state;
    for (size_t c = 0; c < 4; c++) {
        cf_archive_writer_opts wo = {.params = {.codec = codecs[c]}, .chunk_size = CHUNK};
        stored s;
        write_archive(&wo, (const unsigned char *)"", 0, 1, &s);
        assert_int_equal(s.nchunks, 1);
        cf_archive_read_opts ro = {.params = wo.params, .sha256 = s.sha256, .size = s.bytes.len};
        cf_buf out;
        cf_err err;
        for (unsigned t = 0; t < 3; t++) {
            int rc = read_archive_stream(&ro, &s, t, 100, &out, &err);
            if (rc)
                fail_msg("%s, %u threads: %s", cf_codec_name(codecs[c]), t, err.msg);
            assert_int_equal(out.len, 0);
            cf_buf_cleanup(&out);
        }
        stored_cleanup(&s);
    }
}

/* Runs the parallel reader over m, expecting `before` whole chunks, then code with needle. */
static void expect_pull_error(const cf_archive_read_opts *o, const stored *s, mem_stream *m, unsigned threads,
                              const unsigned char *raw, size_t before, int code, const char *needle)
{
    cf_archive_reader *r;
    cf_err err;
    cf_err_clear(&err);
    assert_int_equal(
        cf_archive_reader_new_stream(o, s->chunks, s->nchunks, threads, mem_stream_fn, m, &r, &err), 0);
    size_t chunks, bytes;
    int rc = pull_all(r, raw, &chunks, &bytes, &err);
    if (rc != code || !strstr(err.msg, needle) || chunks != before)
        fail_msg("%u threads: want %zu chunks then %s containing \"%s\", got %zu then %s: \"%s\"", threads,
                 before, cf_strerror(code), needle, chunks, cf_strerror(rc), err.msg);
    /* A failed reader stays failed. */
    const void *p;
    size_t n;
    assert_int_equal(cf_archive_reader_next(r, &p, &n, &err), CF_EINVAL);
    cf_archive_reader_free(r);
}

static void test_parallel_reader_flipped_byte_names_the_chunk_after_the_ones_before(void **state)
{
    (void)state;
    cf_archive_key key;
    test_key(&key, 9);
    for (int enc = 0; enc < 2; enc++) {
        for (size_t k = 0; k < 4; k++) {
            stored s;
            unsigned char *raw;
            damage_fixture(CF_CODEC_ZSTD, enc ? &key : NULL, &s, &raw);
            s.bytes.data[s.chunks[k].offset + s.chunks[k].size / 3] ^= 0x04;
            char needle[64];
            snprintf(needle, sizeof needle, "chunk %zu at offset %llu: crc32c", k,
                     (unsigned long long)s.chunks[k].offset);
            cf_archive_read_opts o = {.params = {.codec = CF_CODEC_ZSTD, .key = enc ? &key : NULL},
                                      .sha256 = s.sha256};
            for (unsigned t = 0; t < 4; t++) {
                mem_stream m = mem_stream_of(&s, 5000);
                expect_pull_error(&o, &s, &m, t, raw, k, CF_EDIGEST, needle);
            }
            stored_cleanup(&s);
            free(raw);
        }
    }
    cf_archive_key_cleanup(&key);
}

static void test_parallel_reader_short_object_is_corrupt_at_its_chunk(void **state)
{
    (void)state;
    stored s;
    unsigned char *raw;
    damage_fixture(CF_CODEC_LZ4, NULL, &s, &raw);
    cf_archive_read_opts o = {.params = {.codec = CF_CODEC_LZ4}, .sha256 = s.sha256, .size = s.bytes.len};
    for (unsigned t = 0; t < 3; t++) {
        /* Ends inside chunk 2, then exactly where chunk 3 starts, then with nothing at all. */
        mem_stream m = mem_stream_of(&s, 3000);
        m.len = s.chunks[2].offset + 10;
        expect_pull_error(&o, &s, &m, t, raw, 2, CF_ECORRUPT, "archive truncated: it ends at byte");
        expect_pull_error(&o, &s, &m, t, raw, 2, CF_ECORRUPT, "inside chunk 2 at offset");
        m.len = s.chunks[3].offset;
        expect_pull_error(&o, &s, &m, t, raw, 3, CF_ECORRUPT, "inside chunk 3 at offset");
        m.len = 0;
        expect_pull_error(&o, &s, &m, t, raw, 0, CF_ECORRUPT, "ends at byte 0, inside chunk 0");
    }
    stored_cleanup(&s);
    free(raw);
}

static void test_parallel_reader_long_object_is_corrupt_after_the_last_chunk(void **state)
{
    (void)state;
    stored s;
    unsigned char *raw;
    damage_fixture(CF_CODEC_GZIP, NULL, &s, &raw);
    size_t len = s.bytes.len;
    assert_int_equal(cf_buf_append(&s.bytes, "trailing", 8), 0);
    cf_archive_read_opts o = {.params = {.codec = CF_CODEC_GZIP}, .sha256 = s.sha256, .size = len};
    for (unsigned t = 0; t < 3; t++) {
        mem_stream m = mem_stream_of(&s, 7777);
        expect_pull_error(&o, &s, &m, t, raw, 4, CF_ECORRUPT,
                          "archive is longer than its chunk table: bytes follow the last chunk (3");
    }
    stored_cleanup(&s);
    free(raw);
}

static void test_parallel_reader_checks_sha256_before_the_end(void **state)
{
    (void)state;
    stored s;
    unsigned char *raw;
    damage_fixture(CF_CODEC_ZSTD, NULL, &s, &raw);
    unsigned char bad[CF_SHA256_LEN];
    memcpy(bad, s.sha256, sizeof bad);
    bad[31] ^= 1;
    cf_archive_read_opts o = {.params = {.codec = CF_CODEC_ZSTD}, .sha256 = bad};
    for (unsigned t = 0; t < 3; t++) {
        mem_stream m = mem_stream_of(&s, 1u << 20);
        expect_pull_error(&o, &s, &m, t, raw, 4, CF_EDIGEST, "does not match the manifest's");
    }
    stored_cleanup(&s);
    free(raw);
}

static void test_parallel_reader_stream_error_comes_at_its_chunk(void **state)
{
    (void)state;
    stored s;
    unsigned char *raw;
    damage_fixture(CF_CODEC_NONE, NULL, &s, &raw);
    cf_archive_read_opts o = {.params = {.codec = CF_CODEC_NONE}};
    for (unsigned t = 0; t < 3; t++) {
        mem_stream m = mem_stream_of(&s, 4096);
        m.fail_at = (size_t)s.chunks[1].offset + 100;
        expect_pull_error(&o, &s, &m, t, raw, 1, CF_EIO, "connection reset at byte");
    }
    stored_cleanup(&s);
    free(raw);
}

static void test_parallel_reader_wrong_key(void **state)
{
    (void)state;
    cf_archive_key key, other;
    test_key(&key, 10);
    test_key(&other, 11);
    stored s;
    unsigned char *raw;
    damage_fixture(CF_CODEC_ZSTD, &key, &s, &raw);
    cf_archive_read_opts o = {.params = {.codec = CF_CODEC_ZSTD, .key = &other}, .key_id = key.key_id};
    mem_stream m = mem_stream_of(&s, 4096);
    cf_archive_reader *r = (cf_archive_reader *)&m; /* must be reset to NULL */
    cf_err err;
    assert_int_equal(cf_archive_reader_new_stream(&o, s.chunks, s.nchunks, 2, mem_stream_fn, &m, &r, &err),
                     CF_EAUTH);
    assert_null(r);
    assert_non_null(strstr(err.msg, "wrong key"));
    o.key_id = NULL;
    for (unsigned t = 0; t < 3; t++)
        expect_pull_error(&o, &s, &m, t, raw, 0, CF_EAUTH,
                          "chunk 0 at offset 0 fails authentication: wrong key");
    stored_cleanup(&s);
    free(raw);
    cf_archive_key_cleanup(&key);
    cf_archive_key_cleanup(&other);
}

static void test_parallel_reader_freed_early_stops_the_stream(void **state)
{
    (void)state;
    size_t n = CHUNK * 40;
    unsigned char *raw = random_data(n, 12);
    cf_archive_writer_opts wo = {.params = {.codec = CF_CODEC_LZ4}, .chunk_size = CHUNK, .threads = 2};
    stored s;
    write_archive(&wo, raw, n, n, &s);
    cf_archive_read_opts o = {.params = wo.params, .sha256 = s.sha256};
    for (unsigned t = 0; t < 4; t++) {
        for (int pulls = 0; pulls < 3; pulls++) {
            mem_stream m = mem_stream_of(&s, 10000);
            cf_archive_reader *r;
            cf_err err;
            assert_int_equal(
                cf_archive_reader_new_stream(&o, s.chunks, s.nchunks, t, mem_stream_fn, &m, &r, &err), 0);
            for (int i = 0; i < pulls; i++) {
                const void *p;
                size_t len;
                assert_int_equal(cf_archive_reader_next(r, &p, &len, &err), 0);
                assert_int_equal(len, CHUNK);
                assert_memory_equal(p, raw + (size_t)i * CHUNK, CHUNK);
            }
            /* As a consumer whose disk filled up would: the producer must see it and end. */
            cf_archive_reader_free(r);
            /* Freed at once, the producer may stop before it starts the stream at all. */
            assert_true(m.refused || (pulls == 0 && m.delivered == 0));
            /* Bounded memory: the stream got no further than the slots ahead of the consumer. */
            assert_true(m.delivered <= s.chunks[pulls + 2 * t + 2].offset + 10000);
        }
    }
    /* The push-style reader stops the same way when its sink fails. */
    int calls = 0;
    mem_stream m = mem_stream_of(&s, 10000);
    cf_err err;
    assert_int_equal(
        cf_archive_read_stream(&o, s.chunks, s.nchunks, 2, mem_stream_fn, &m, failing_sink, &calls, &err),
        CF_EIO);
    assert_string_equal(err.msg, "disk full at chunk 1");
    assert_true(m.refused);
    stored_cleanup(&s);
    free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_codec_size_and_key),
        cmocka_unit_test(test_compressible_data_shrinks),
        cmocka_unit_test(test_default_options_use_zstd_and_8_mib_chunks),
        cmocka_unit_test(test_zstd_tool_decodes_concatenated_chunks),
        cmocka_unit_test(test_lz4_tool_decodes_concatenated_chunks),
        cmocka_unit_test(test_gzip_tool_decodes_concatenated_chunks),
        cmocka_unit_test(test_none_is_the_raw_stream),
        cmocka_unit_test(test_flipped_byte_names_the_chunk),
        cmocka_unit_test(test_flipped_byte_with_forged_crc_fails_authentication),
        cmocka_unit_test(test_wrong_key_is_named),
        cmocka_unit_test(test_truncated_archive_is_named),
        cmocka_unit_test(test_extended_archive_is_named),
        cmocka_unit_test(test_reordered_chunks_are_named),
        cmocka_unit_test(test_chunk_spliced_from_another_snapshot_fails),
        cmocka_unit_test(test_bad_tables_are_rejected),
        cmocka_unit_test(test_frame_with_trailing_or_short_data_is_corrupt),
        cmocka_unit_test(test_codec_names_and_levels),
        cmocka_unit_test(test_sink_error_stops_the_writer),
        cmocka_unit_test(test_parallel_reader_round_trip_chunk_and_thread_counts),
        cmocka_unit_test(test_parallel_reader_empty_archive),
        cmocka_unit_test(test_parallel_reader_flipped_byte_names_the_chunk_after_the_ones_before),
        cmocka_unit_test(test_parallel_reader_short_object_is_corrupt_at_its_chunk),
        cmocka_unit_test(test_parallel_reader_long_object_is_corrupt_after_the_last_chunk),
        cmocka_unit_test(test_parallel_reader_checks_sha256_before_the_end),
        cmocka_unit_test(test_parallel_reader_stream_error_comes_at_its_chunk),
        cmocka_unit_test(test_parallel_reader_wrong_key),
        cmocka_unit_test(test_parallel_reader_freed_early_stops_the_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
