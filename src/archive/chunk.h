/*
 * chunk.h - the chunked archive stream: raw bytes in, stored chunks and a chunk table out, and
 * back.
 *
 * The raw stream (a tar stream) is cut into chunks of a fixed raw size; chunk i becomes one
 * independent compressed frame, then, when a key is given, is sealed (seal.h). The stored object
 * is the stored chunks back to back. The chunk table records, per chunk, where it sits in the
 * stored object, its stored and raw sizes and the CRC32C of its stored bytes, so damage is
 * located to a chunk before anything is decompressed. A stream always has at least one chunk:
 * an empty stream is one chunk of raw size 0, so an encrypted empty archive still carries a
 * last-chunk flag and cannot be confused with a truncated one.
 *
 * Memory: a writer with threads = 0 holds one raw chunk and one stored chunk (about
 * 2 x chunk_size). With threads = N it holds 2N + 1 slots of one raw and one stored chunk each:
 * about (2N + 1) x 2 x chunk_size, whatever the input size. The serial reader holds one stored
 * and one raw chunk. The parallel reader (cf_archive_reader_new_stream) with N decode threads
 * holds min(2N + 2, chunks) slots of one stored and one raw chunk each, sized by the table's
 * largest: about (2N + 2) x 2 x chunk_size (2 x chunk_size for the stream's own buffers aside).
 */
#ifndef CF_ARCHIVE_CHUNK_H
#define CF_ARCHIVE_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "archive/codec.h"
#include "archive/seal.h"
#include "core/err.h"
#include "crypto/hash.h"

/* 2 MiB, zstd's window at level 3: a chunk of 8 MiB, first chosen (docs/ARCHITECTURE.md), stores 0.12 %
 * fewer bytes of the benchmark corpus but costs 10-15 % more CPU to compress (probably as the chunk
 * no longer fits a core's 2 MiB cache) and four times the memory per worker (docs/BENCHMARKS.md). */
#define CF_ARCHIVE_DEFAULT_CHUNK ((size_t)2 << 20)
/* Largest raw chunk accepted from a chunk table, so a hostile manifest cannot make a reader
 * allocate without bound. */
#define CF_ARCHIVE_MAX_CHUNK ((size_t)256 << 20)

typedef struct cf_archive_chunk {
    uint64_t offset;   /* in the stored object */
    uint64_t size;     /* stored bytes (compressed, + tag when sealed) */
    uint64_t raw_size; /* bytes of the raw stream it holds */
    uint32_t crc32c;   /* of the stored bytes */
} cf_archive_chunk;

/* How chunks are encoded; shared by writer and reader. */
typedef struct cf_archive_params {
    cf_codec codec;
    int level;                 /* 0: the codec's default */
    const cf_archive_key *key; /* NULL: not encrypted; borrowed, must outlive its users */
} cf_archive_params;

/* Largest stored chunk for raw_n raw bytes. */
size_t cf_archive_chunk_bound(const cf_archive_params *p, size_t raw_n);

/* Encodes chunk `index` (last = 1 for the final chunk) from raw[0..n) into out (cap at least
 * cf_archive_chunk_bound): compress, then seal. Sets *out_len and *crc32c (of the stored bytes).
 * Pure and thread-safe: the unit of work for parallel compression. */
int cf_archive_chunk_encode(const cf_archive_params *p, uint64_t index, int last, const void *raw, size_t n,
                            unsigned char *out, size_t cap, size_t *out_len, uint32_t *crc32c, cf_err *err);

/* Reverses cf_archive_chunk_encode for chunk `index` of a table of nchunks described by c, whose
 * stored bytes are stored[0..c->size): checks the CRC32C, opens, decompresses into raw
 * (c->raw_size bytes). Errors name the
 * chunk index and offset: CF_EDIGEST (CRC mismatch), CF_ECORRUPT (truncated archive, chunk out
 * of order or spliced, malformed frame), CF_EAUTH (wrong key, when only decryption tells).
 * Pure and thread-safe. */
int cf_archive_chunk_decode(const cf_archive_params *p, uint64_t index, uint64_t nchunks,
                            const cf_archive_chunk *c, const unsigned char *stored, unsigned char *raw,
                            cf_err *err);

/* Receives stored bytes in order. Returns 0 or a CF_E code (with err filled) to stop. */
typedef int (*cf_archive_sink_fn)(void *ctx, const void *p, size_t n, cf_err *err);

typedef struct cf_archive_writer_opts {
    cf_archive_params params;
    size_t chunk_size; /* raw bytes per chunk; 0: CF_ARCHIVE_DEFAULT_CHUNK */
    unsigned threads;  /* compression workers; 0: compress on the caller's thread */
} cf_archive_writer_opts;

typedef struct cf_archive_result {
    const cf_archive_chunk *chunks; /* borrowed until cf_archive_writer_free */
    size_t nchunks;
    uint64_t size;                       /* stored bytes */
    uint64_t raw_size;                   /* raw bytes */
    unsigned char sha256[CF_SHA256_LEN]; /* of the stored object */
} cf_archive_result;

typedef struct cf_archive_writer cf_archive_writer;

/* opts NULL means zstd at its default level, unencrypted, 2 MiB chunks, no threads. The sink
 * is called in stored order, never twice at once: from the thread that calls write/finish when
 * threads = 0, otherwise from a thread of the writer's own, which cf_archive_writer_free stops
 * (so free the writer before what the sink writes to). Caller frees *out. */
int cf_archive_writer_new(const cf_archive_writer_opts *opts, cf_archive_sink_fn sink, void *sink_ctx,
                          cf_archive_writer **out, cf_err *err);
/* Feeds raw bytes. After an error the writer only accepts cf_archive_writer_free. */
int cf_archive_writer_write(cf_archive_writer *w, const void *p, size_t n, cf_err *err);
/* Flushes the last chunk and fills *res (valid until cf_archive_writer_free). */
int cf_archive_writer_finish(cf_archive_writer *w, cf_archive_result *res, cf_err *err);
void cf_archive_writer_free(cf_archive_writer *w);

/* Fetches stored bytes [offset, offset + size) into out. */
typedef int (*cf_archive_fetch_fn)(void *ctx, uint64_t offset, uint64_t size, void *out, cf_err *err);

typedef struct cf_archive_read_opts {
    cf_archive_params params;
    const char *key_id;          /* the manifest's key id; checked against params.key when set */
    const unsigned char *sha256; /* expected SHA-256 of the stored object, or NULL */
    uint64_t size, raw_size;     /* expected totals when nonzero */
} cf_archive_read_opts;

/* Pull-style reader, for consumers that ask for bytes (libarchive's extraction). The table
 * (validated here: contiguous from offset 0, raw sizes bounded, at least one chunk) and opts
 * are borrowed until cf_archive_reader_free. Caller frees *out. */
typedef struct cf_archive_reader cf_archive_reader;
int cf_archive_reader_new(const cf_archive_read_opts *o, const cf_archive_chunk *chunks, size_t nchunks,
                          cf_archive_fetch_fn fetch, void *fetch_ctx, cf_archive_reader **out, cf_err *err);
/* The next chunk's raw bytes: *p is borrowed until the next call. *n = 0 means the end, after
 * the whole-object SHA-256 has been checked. Chunks of raw size 0 are skipped. */
int cf_archive_reader_next(cf_archive_reader *r, const void **p, size_t *n, cf_err *err);
/* Before the first reader_next of a serial reader: starts at chunk (its raw bytes come first),
 * as a restore continued from a checkpoint does. The chunks read are checked as always (CRC32C,
 * seal, decompression), but with chunks skipped the whole object's SHA-256 cannot be, and is
 * not. */
int cf_archive_reader_skip_to(cf_archive_reader *r, size_t chunk, cf_err *err);
void cf_archive_reader_free(cf_archive_reader *r);

/* Delivers the whole stored object, from its first byte to its last, to sink (in pieces of any
 * size), returning the sink's error when it stops. cf_repo_stream has this shape. */
typedef int (*cf_archive_stream_fn)(void *ctx, cf_archive_sink_fn sink, void *sink_ctx, cf_err *err);

/* The parallel reader: the same pull API (reader_next, reader_free) over a stream of the whole
 * object instead of one fetch per chunk. A producer thread runs stream, hashes the stored bytes
 * in stream order and cuts them into chunks by the table; `threads` workers (at most 256) check,
 * open and decompress them; reader_next returns them strictly in chunk order. threads = 0
 * decodes on the caller's thread, still with the stream running ahead on its own.
 *
 * Errors are the serial reader's, and the first in chunk order wins: a chunk's damage names its
 * index and offset (CF_EDIGEST, CF_ECORRUPT, CF_EAUTH, as cf_archive_chunk_decode); an object
 * that ends inside chunk i is reported at chunk i, one with bytes past the table's end after the
 * last chunk (both CF_ECORRUPT); a stream error at the chunk it interrupted; the SHA-256
 * mismatch before the end (*n = 0) is returned.
 *
 * stream runs on the producer thread, so stream_ctx must be usable from it while the reader
 * lives; o, chunks and stream_ctx are borrowed until cf_archive_reader_free. Freeing the reader
 * before the end stops everything promptly: the sink then returns an error, so stream must
 * return when its sink fails. Caller frees *out. */
int cf_archive_reader_new_stream(const cf_archive_read_opts *o, const cf_archive_chunk *chunks,
                                 size_t nchunks, unsigned threads, cf_archive_stream_fn stream,
                                 void *stream_ctx, cf_archive_reader **out, cf_err *err);

/* Push-style: reads every chunk in order (as the reader above) and hands raw bytes to sink. */
int cf_archive_read(const cf_archive_read_opts *o, const cf_archive_chunk *chunks, size_t nchunks,
                    cf_archive_fetch_fn fetch, void *fetch_ctx, cf_archive_sink_fn sink, void *sink_ctx,
                    cf_err *err);
/* The same over the parallel reader: sink runs on the caller's thread, in chunk order. */
int cf_archive_read_stream(const cf_archive_read_opts *o, const cf_archive_chunk *chunks, size_t nchunks,
                           unsigned threads, cf_archive_stream_fn stream, void *stream_ctx,
                           cf_archive_sink_fn sink, void *sink_ctx, cf_err *err);

#endif
