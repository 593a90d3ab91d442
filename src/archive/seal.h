/*
 * seal.h - archive encryption: keys and the per-chunk AEAD (the STREAM construction).
 *
 * A master key (32 bytes, from a key file or a passphrase through scrypt) never encrypts data
 * itself. Each snapshot draws a random 32-byte salt and derives its own key with HKDF-SHA256, so
 * two snapshots never share a key and a chunk spliced in from another snapshot fails to open.
 * Chunk i is sealed with AES-256-GCM, nonce = i as a 96-bit big-endian integer, associated data =
 * one byte, 1 on the last chunk and 0 otherwise: a reordered chunk fails (wrong nonce) and so
 * does a stream cut after a non-last chunk (wrong flag). Stored chunk = ciphertext || 16-byte tag.
 * docs/FORMAT.md has the exact layout.
 *
 * The key id (16 hex digits, derived from the master key alone) is recorded in the manifest so
 * that a wrong key is reported as such, before any chunk is tried.
 *
 * Keys live in caller memory; call cf_archive_key_cleanup to wipe them. All functions here are
 * thread-safe; one cf_archive_key may be shared by many threads sealing different chunks.
 */
#ifndef CF_ARCHIVE_SEAL_H
#define CF_ARCHIVE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define CF_ARCHIVE_KEY_LEN 32
#define CF_ARCHIVE_SALT_LEN 32
#define CF_ARCHIVE_TAG_LEN 16
#define CF_ARCHIVE_NONCE_LEN 12
#define CF_ARCHIVE_KEY_ID_LEN 16 /* hex digits */

typedef struct cf_scrypt_params {
    uint64_t n; /* CPU/memory cost, a power of two; 0 means 2^15 */
    uint32_t r; /* block size; 0 means 8 */
    uint32_t p; /* parallelism; 0 means 1 */
    unsigned char salt[CF_ARCHIVE_SALT_LEN];
} cf_scrypt_params;

/* A master key: 32 bytes and its id. */
typedef struct cf_master_key {
    unsigned char key[CF_ARCHIVE_KEY_LEN];
    char key_id[CF_ARCHIVE_KEY_ID_LEN + 1];
} cf_master_key;

/* A per-snapshot key, ready to seal and open chunks. */
typedef struct cf_archive_key {
    unsigned char key[CF_ARCHIVE_KEY_LEN];
    char key_id[CF_ARCHIVE_KEY_ID_LEN + 1]; /* the master key's id */
} cf_archive_key;

/* Master key from 32 raw bytes. */
int cf_master_key_from_bytes(const void *p, size_t n, cf_master_key *out, cf_err *err);
/* Master key from a file holding exactly 32 bytes (raw), or 64 hex digits with an optional
 * trailing newline. */
int cf_master_key_from_file(const char *path, cf_master_key *out, cf_err *err);
/* Master key from a passphrase through scrypt. params->n/r/p of 0 are replaced by the defaults
 * in place, so the caller records what was used; params->salt is used as given (draw it with
 * cf_random_bytes for a new snapshot, read it from the manifest to restore). */
int cf_master_key_from_passphrase(const char *pass, size_t len, cf_scrypt_params *params, cf_master_key *out,
                                  cf_err *err);
void cf_master_key_cleanup(cf_master_key *k);

/* Derives the per-snapshot key: HKDF-SHA256(ikm = master, salt, info = "coffer archive v1"). */
int cf_archive_key_derive(const cf_master_key *master, const unsigned char salt[CF_ARCHIVE_SALT_LEN],
                          cf_archive_key *out, cf_err *err);
void cf_archive_key_cleanup(cf_archive_key *k);

/* Seals in place: buf holds n plaintext bytes and has room for n + CF_ARCHIVE_TAG_LEN; on
 * return it holds the ciphertext followed by the tag. */
int cf_archive_seal(const cf_archive_key *k, uint64_t index, int last, unsigned char *buf, size_t n,
                    cf_err *err);
/* Opens in[0..n) (ciphertext || tag) into out (n - CF_ARCHIVE_TAG_LEN bytes; may equal in).
 * CF_EAUTH when the tag does not verify for this index and flag; no message is set then, since
 * only the caller knows which of wrong key, reordering or truncation it means. */
int cf_archive_open(const cf_archive_key *k, uint64_t index, int last, const unsigned char *in, size_t n,
                    unsigned char *out, cf_err *err);

#endif
