/*
 * snapshot.h - the snapshot engine the CLI and libcoffer share: create, list, restore.
 *
 * create: source → (pax tar of a directory | the bytes of a file or a stream) → chunked,
 * compressed, optionally sealed archive streamed to the repository → manifest written last. A
 * snapshot exists iff its manifest does, so a failure at any point leaves no listed snapshot
 * (the archive's partial upload is aborted; an archive without manifest is garbage for prune).
 * restore: manifest → every chunk's CRC32C and the archive's SHA-256 checked → extracted into a
 * temporary sibling of the destination, renamed into place only when all is good.
 */
#ifndef CF_SNAPSHOT_SNAPSHOT_H
#define CF_SNAPSHOT_SNAPSHOT_H

#include <stdio.h>

#include "archive/chunk.h"
#include "archive/manifest.h"
#include "archive/seal.h"
#include "storage/repo.h"

/* What opens an encrypted snapshot: a 32-byte master key (key file), or a passphrase whose
 * scrypt parameters and salt each snapshot's manifest records. Both NULL: no encryption. */
typedef struct cf_snapshot_secret {
    const cf_master_key *key;
    const char *passphrase;
    size_t passphrase_len;
} cf_snapshot_secret;

typedef struct cf_snapshot_create_opts {
    const char *source;  /* a directory (file 0), a regular file or a FIFO (file 1), or "-" for
                          * stdin; a symlink is followed */
    int file;            /* source names a file: stored as a stream snapshot of its bytes. A
                          * regular file is read again by a resumed run (its fingerprint: device,
                          * inode, size, mtime, ctime), a FIFO is a stream like "-" */
    const char *command; /* instead of source: a shell command whose output is stored;
                          * when it fails, no snapshot is created */
    cf_codec codec;
    int level;
    size_t chunk_size;                /* 0: CF_ARCHIVE_DEFAULT_CHUNK, 2 MiB */
    unsigned threads;                 /* compression workers; 0: one per core */
    const cf_snapshot_secret *secret; /* NULL: not encrypted */
    uint64_t expected_size;           /* a stream's expected size, 0 if unknown: plans the upload's
                                       * parts (a directory is measured instead) */
    const cf_label *labels;
    size_t nlabels;
    /* Directory sources: see cf_tar_write_opts (archive/tar.h). What allow_unreadable leaves
     * out is listed in the manifest (source.skipped) and told to skipped. */
    const char *const *exclude;
    size_t nexclude;
    int one_file_system, allow_unreadable;
    void (*skipped)(void *ctx, const char *path, const char *why);
    /* Called often (the callee throttles) with the raw bytes read so far and the expected
     * total, 0 when unknown (a stream without expected_size); a directory is measured first. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *cb_ctx;
    const cf_clock *clock; /* the creation time and the id's random digits; NULL: the system's */
    /* A stream source ("-") other than standard input: bytes pulled from read until it reports
     * 0 bytes (the end); its error stops the create, which then leaves no snapshot. This is how
     * libcoffer feeds a file descriptor or bytes its application pushes. */
    int (*read)(void *ctx, void *buf, size_t cap, size_t *got, cf_err *err);
    void *read_ctx;
    /* Interrupted runs (snapshot/resume.h, docs/SNAPSHOTS.md): a directory's or regular file's
     * create that stops before its manifest keeps its S3 upload and a state object, and the same
     * create run again continues it; a stream's (a FIFO's too) only tells the next run. */
    int resume;
    /* Told (may be NULL; with cb_ctx) what a resumable create decided: resuming, or why not. */
    void (*notice)(void *ctx, const char *msg);
} cf_snapshot_create_opts;

/* What a create or restore moved, for --metrics-file and --json. */
typedef struct cf_snapshot_stats {
    uint64_t raw_bytes, stored_bytes, files, skipped;
    /* A resumed create: the parts (and their bytes) the store held and kept, and those sent. */
    int resumed;
    unsigned parts_kept, parts_sent;
    uint64_t bytes_kept;
} cf_snapshot_stats;

int cf_snapshot_create(cf_repo *repo, const char *ns, const cf_snapshot_create_opts *o,
                       char id_out[CF_SNAPSHOT_ID_LEN + 1], cf_snapshot_stats *stats, cf_err *err);

/* The id of the newest snapshot of ns in snapshot/order.h's order (CF_ENOTFOUND when there is
 * none): from the listing, reading manifests only when several share the newest second. */
int cf_snapshot_latest(cf_repo *repo, const char *ns, char id_out[CF_SNAPSHOT_ID_LEN + 1], cf_err *err);

/* The manifest at key (a repository-relative "ns/ID.json"), read whole (at most 64 MiB) and
 * parsed into *m (cf_manifest_cleanup frees it); errors name the key and the repository. */
int cf_snapshot_load_manifest(cf_repo *repo, const char *key, cf_manifest *m, cf_err *err);

/* Manifests of ns, oldest first in snapshot/order.h's order; files under ns that are not named
 * ID.json are no snapshot and are skipped. fn's manifest is borrowed. */
typedef int (*cf_snapshot_list_fn)(void *ctx, const cf_manifest *m);
int cf_snapshot_list(cf_repo *repo, const char *ns, cf_snapshot_list_fn fn, void *ctx, cf_err *err);

typedef struct cf_snapshot_restore_opts {
    const char *id;                   /* NULL: the latest */
    int force;                        /* replace a non-empty destination directory */
    const cf_snapshot_secret *secret; /* NULL: the snapshot must not be encrypted */
    /* As for create; total is the snapshot's raw size. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *cb_ctx;
    /* Into a directory: a restore that stops keeps its staging directory and a state file beside
     * it (snapshot/resume.h), and the same restore run again continues from its last checkpoint;
     * a restore of another snapshot into the same destination removes them and says so. */
    int resume;
    void (*notice)(void *ctx, const char *msg); /* may be NULL; with cb_ctx */
} cf_snapshot_restore_opts;

/* dest "-": the raw stream to out (stream snapshots, or the tar of a directory snapshot).
 * Otherwise dest must not exist or be an empty directory unless force. id_out (may be NULL)
 * receives the id restored, stats (may be NULL) what it held. */
int cf_snapshot_restore(cf_repo *repo, const char *ns, const char *dest, FILE *out,
                        const cf_snapshot_restore_opts *o, char id_out[CF_SNAPSHOT_ID_LEN + 1],
                        cf_snapshot_stats *stats, cf_err *err);
/* The raw stream of a snapshot into a shell command's standard input (restore --to-command);
 * fails when the command does. */
int cf_snapshot_restore_to_command(cf_repo *repo, const char *ns, const char *command,
                                   const cf_snapshot_restore_opts *o, char id_out[CF_SNAPSHOT_ID_LEN + 1],
                                   cf_snapshot_stats *stats, cf_err *err);

/* Downloads and checks a snapshot (every chunk's CRC32C, the archive's SHA-256, decryption and
 * decompression) without extracting it. */
int cf_snapshot_verify(cf_repo *repo, const char *ns, const char *id, const cf_snapshot_secret *secret,
                       cf_err *err);

/* The manifest document of ns@id (NULL: the latest) as stored; caller frees *json. */
int cf_snapshot_show(cf_repo *repo, const char *ns, const char *id, char **json, size_t *len, cf_err *err);

/* Removes a snapshot: the manifest first (from then on it does not exist), then its archive. */
int cf_snapshot_remove(cf_repo *repo, const char *ns, const char *id, cf_err *err);

/* Applies a retention policy to ns. fn is told each snapshot's fate (kept: reasons; removed:
 * NULL) before anything is removed; nothing is removed when dry_run. Archives without a
 * manifest older than grace_s are removed too (left by interrupted creates), and so are
 * temporary files and multipart uploads older than that (*swept counts them). */
#include "snapshot/retention.h"
typedef void (*cf_snapshot_prune_fn)(void *ctx, const char *id, const char *reasons);
int cf_snapshot_prune(cf_repo *repo, const char *ns, const cf_retention *policy, int64_t grace_s, int dry_run,
                      cf_snapshot_prune_fn fn, void *ctx, size_t *swept, cf_err *err);

#endif
