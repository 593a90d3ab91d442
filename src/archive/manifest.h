/*
 * manifest.h - the snapshot manifest (<prefix>/<ns>/<ID>.json): what a snapshot is, where its
 * archive is, how to check and decode it. docs/FORMAT.md specifies every field.
 *
 * Parsing is strict: an unknown format version, a missing field, a field of the wrong type or a
 * value out of range is CF_ECORRUPT with a message naming the field ("chunks[3].crc32c"), because
 * a manifest we half understand could restore the wrong bytes. Unknown extra fields are ignored
 * so that a later minor addition does not lock out older readers.
 *
 * Ownership: every pointer in cf_manifest is owned by it and freed by cf_manifest_cleanup; a
 * cf_manifest to be written may instead point at caller memory, as long as the caller neither
 * parses into it nor cleans it up.
 */
#ifndef CF_ARCHIVE_MANIFEST_H
#define CF_ARCHIVE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "archive/chunk.h"
#include "archive/codec.h"
#include "archive/seal.h"
#include "core/clock.h"
#include "core/err.h"

#define CF_MANIFEST_FORMAT 1
#define CF_SNAPSHOT_ID_LEN 21 /* "20261122T153000Z-7f3a" */

typedef enum cf_source_kind { CF_SOURCE_DIR, CF_SOURCE_STREAM } cf_source_kind;

typedef struct cf_label {
    char *key, *value;
} cf_label;

typedef struct cf_manifest_skipped {
    char *path, *error; /* relative to the source; strerror() text */
} cf_manifest_skipped;

typedef struct cf_manifest_encryption {
    /* alg "aes-256-gcm-stream", kdf "hkdf-sha256": the only ones, so not fields here. */
    unsigned char salt[CF_ARCHIVE_SALT_LEN]; /* HKDF salt of this snapshot */
    char key_id[CF_ARCHIVE_KEY_ID_LEN + 1];  /* the master key's id */
    int passphrase;                          /* 1: master key from scrypt(passphrase) */
    cf_scrypt_params scrypt;                 /* when passphrase */
} cf_manifest_encryption;

typedef struct cf_manifest {
    int format; /* CF_MANIFEST_FORMAT */
    char id[CF_SNAPSHOT_ID_LEN + 1];
    char *ns;           /* namespace */
    time_t created;     /* UTC; the second the id names */
    int32_t created_ns; /* 0 to 999,999,999 past created; 0 in manifests written before it */
    struct {
        cf_source_kind kind;
        char *host;
        char *path;     /* kind dir */
        char *command;  /* kind stream; may be NULL (stdin) */
        char **exclude; /* kind dir: the --exclude patterns */
        size_t nexclude;
        int one_file_system;          /* kind dir */
        cf_manifest_skipped *skipped; /* kind dir: left out, unreadable (--allow-unreadable) */
        size_t nskipped;
    } source;
    cf_label *labels;
    size_t nlabels;
    struct {
        char *key; /* object key of the archive, relative to the repository */
        cf_codec compression;
        int level;
        uint64_t size, raw_size, files;
        unsigned char sha256[32];
    } archive;
    cf_archive_chunk *chunks;
    size_t nchunks;
    cf_manifest_encryption *encryption; /* NULL when not encrypted */
    char *tool;                         /* "coffer 0.1.0" */
} cf_manifest;

/* Snapshot id for time t (UTC) plus 4 hex digits drawn through clock (NULL: the system's
 * randomness), into out (CF_SNAPSHOT_ID_LEN + 1). */
int cf_snapshot_id_new(const cf_clock *clock, time_t t, char out[CF_SNAPSHOT_ID_LEN + 1], cf_err *err);
/* 1 when s has the shape of a snapshot id. */
int cf_snapshot_id_valid(const char *s);

/* Serialises m as pretty JSON (keys in a fixed order) into *out, NUL-terminated; caller frees
 * *out. */
int cf_manifest_write(const cf_manifest *m, char **out, size_t *len, cf_err *err);
/* Parses JSON text into *m (zeroed first); on failure *m holds nothing to free. */
int cf_manifest_parse(const char *json, size_t len, cf_manifest *m, cf_err *err);
/* Frees what cf_manifest_parse allocated; m is zeroed. */
void cf_manifest_cleanup(cf_manifest *m);

#endif
