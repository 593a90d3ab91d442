/*
 * codec.h - one chunk in, one independent compressed frame out (zstd frame, lz4 frame, gzip
 * member, or the bytes unchanged).
 *
 * Every frame stands alone, so chunks compress and decompress in parallel, and frames written
 * one after another form a file that `zstd -d`, `lz4 -d` and `gzip -d` read as a whole. Both
 * functions are pure (no shared state) and safe to call from any number of threads at once.
 */
#ifndef CF_ARCHIVE_CODEC_H
#define CF_ARCHIVE_CODEC_H

#include <stddef.h>

#include "core/err.h"

typedef enum cf_codec { CF_CODEC_NONE, CF_CODEC_ZSTD, CF_CODEC_LZ4, CF_CODEC_GZIP } cf_codec;

/* "none", "zstd", "lz4", "gzip": the manifest's archive.compression. */
const char *cf_codec_name(cf_codec c);
/* Inverse of cf_codec_name; CF_EINVAL (no message) for anything else. */
int cf_codec_from_name(const char *name, cf_codec *out);
/* ".tar", ".tar.zst", ".tar.lz4", ".tar.gz". */
const char *cf_codec_suffix(cf_codec c);
/* The level used when the caller asks for 0: zstd 3, lz4 0 (fast), gzip 6, none 0. */
int cf_codec_default_level(cf_codec c);
/* Checks a level for the codec (zstd 1..22 or negative fast levels down to -7, lz4 0..12,
 * gzip 1..9, none 0). 0 always means the default. */
int cf_codec_check_level(cf_codec c, int level, cf_err *err);

/* Largest frame cf_codec_compress can produce from n raw bytes. */
size_t cf_codec_bound(cf_codec c, size_t n);

/* Compresses raw[0..n) into one frame in out (cap bytes, at least cf_codec_bound) and sets
 * *out_len. level 0 means the default. */
int cf_codec_compress(cf_codec c, int level, const void *raw, size_t n, void *out, size_t cap,
                      size_t *out_len, cf_err *err);

/* Decompresses exactly one frame that fills in[0..n) into out, which must come to exactly
 * raw_size bytes: a frame that is short, long, followed by trailing bytes or malformed is
 * CF_ECORRUPT. */
int cf_codec_decompress(cf_codec c, const void *in, size_t n, void *out, size_t raw_size, cf_err *err);

#endif
