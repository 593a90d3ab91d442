/*
 * resume.h - what an interrupted create leaves so that running it again continues its upload
 * (docs/SNAPSHOTS.md, "Interrupted runs").
 *
 * A create that may be resumed keeps a small object, NS/.resume/NAME.json, where NAME is a digest
 * of what makes two runs "the same command": the host, the namespace, the source (a directory's
 * real path, or the stream's command or "-"), the codec, level and chunk size, the encryption's
 * kind and key id, the exclude patterns, one_file_system and allow_unreadable, the labels. It
 * holds the snapshot id and creation time the run drew, the upload id and part size, the
 * encryption's salts (never a key: the manifest records the same salts), the source's
 * fingerprint (a directory's from archive/tar.h, a file's from cf_resume_file_fingerprint) and
 * each part's size and CRC32C as sent. It is written when the
 * upload begins and after every part, and removed once the manifest is written. A stream's run
 * (also a FIFO's: its real path is the source) names its state NAME-RANDOM.json: runs of one stream command
 * may overlap, and a stream is never resumed, so the next run only tells what earlier ones left (prune
 * removes it).
 *
 * The archive is a function of the source and these options (compression is per chunk, the
 * chunk's nonce its index, tar headers carry no access time, gzip no time), so a run over the
 * same unchanged source reproduces it byte for byte, and the store's parts can be checked against
 * it and kept.
 */
#ifndef CF_SNAPSHOT_RESUME_H
#define CF_SNAPSHOT_RESUME_H

#include <stdint.h>
#include <sys/stat.h>

#include "archive/manifest.h"
#include "archive/tar.h"
#include "crypto/hash.h"
#include "storage/repo.h"

#define CF_RESUME_FORMAT 1

typedef struct cf_resume_state {
    char key[512]; /* NS/.resume/NAME.json */
    char id[CF_SNAPSHOT_ID_LEN + 1];
    int64_t created_ns; /* the run's creation time, nanoseconds since the epoch */
    int stream;         /* a stream source: never resumed, only cleaned up */
    unsigned char fingerprint[CF_SHA256_LEN];
    int encrypted;
    cf_manifest_encryption enc;
    char upload_id[CF_REPO_UPLOAD_ID_MAX];
    size_t part_size;
    uint64_t *sizes; /* of parts 1..nparts as sent */
    uint32_t *crcs;
    size_t nparts, cap;
} cf_resume_state;

/* The state's key for a create of ns from these options (see above); source is the directory's
 * or file's real path, the command, or "-". */
void cf_resume_key(const char *ns, const char *host, const char *source, int stream, cf_codec codec,
                   int level, size_t chunk_size, const char *key_mode, const char *const *exclude,
                   size_t nexclude, int one_file_system, int allow_unreadable, const cf_label *labels,
                   size_t nlabels, char key[512]);

/* What says whether a regular file changed since another run read it: a write moves its mtime
 * or ctime (to the nanosecond) or its size, a replaced file its device or inode. Nothing else
 * of st counts (a chmod moves the ctime anyway). */
void cf_resume_file_fingerprint(const struct stat *st, unsigned char sha256[CF_SHA256_LEN]);

/* Reads the state at st->key into st (its key kept). CF_ENOTFOUND: none; CF_ECORRUPT: one this
 * version cannot use (treated as none by the caller, which says so). */
int cf_resume_load(cf_repo *repo, cf_resume_state *st, cf_err *err);
/* cf_resume_load's parsing of len bytes (from the repository: anyone who may write there may
 * have written them), into st (its key kept). CF_ECORRUPT, or CF_ENOMEM. */
int cf_resume_parse(const char *text, size_t len, cf_resume_state *st, cf_err *err);
/* Writes st (whole, replacing the previous one). */
int cf_resume_save(cf_repo *repo, const cf_resume_state *st, cf_err *err);
/* Records part number's size and CRC32C (numbers come in order from 1). */
int cf_resume_note_part(cf_resume_state *st, unsigned number, uint64_t size, uint32_t crc32c);
/* A small object written whole (a state, a manifest): visible complete or not at all. */
int cf_snapshot_put_small(cf_repo *repo, const char *key, const void *p, size_t n, cf_err *err);
/* Forgets the parts and frees them; the key stays. */
void cf_resume_reset(cf_resume_state *st);

/*
 * A restore into a directory that may be resumed extracts into DEST.coffer-restore-TAG (TAG from
 * the snapshot's id and archive digest) and keeps, beside it, TAG's state file ".state": the
 * snapshot id and archive SHA-256, the tar offset of the first entry not known to be on disk
 * (every 32 MiB the staging directory is synced, then this is written), the entries before it,
 * and the directories among them with their modes and times (extraction sets these last, so a
 * resumed run sets them for the directories the interrupted one made).
 */
typedef struct cf_restore_state {
    char id[CF_SNAPSHOT_ID_LEN + 1];
    unsigned char sha256[CF_SHA256_LEN];
    uint64_t offset, done;
    cf_tar_entry_info *dirs; /* rel owned */
    size_t ndirs, cap;
} cf_restore_state;

int cf_restore_state_load(const char *path, cf_restore_state *st, cf_err *err);
int cf_restore_state_save(const char *path, const cf_restore_state *st, cf_err *err);
int cf_restore_state_add_dir(cf_restore_state *st, const cf_tar_entry_info *e);
void cf_restore_state_free(cf_restore_state *st);

#endif
