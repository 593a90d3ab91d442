/*
 * coffer.h - libcoffer, the snapshot engine of coffer as a C library.
 *
 * A repository (a directory, or s3://BUCKET/PREFIX on any S3 server) holds snapshots grouped in
 * namespaces (a chain id, a tenant, "topic/partition" flattened to one segment). A snapshot is
 * a directory tree or a byte stream, chunked, compressed, checksummed and uploaded; it exists
 * once its manifest is written, so a create that fails or is aborted leaves no listed snapshot.
 *
 * Conventions, for every function below:
 *   - Status: a function returns COFFER_OK (0) or a negative coffer_status. When the caller
 *     passes a non-NULL coffer_error, it receives the same status and a message for people
 *     naming what failed (never a secret). The error is an out-parameter rather than a
 *     per-handle "last error" so that one handle can be used from several threads at once.
 *   - Ownership: "borrowed" arguments are read during the call only, unless stated; what a
 *     function allocates for the caller is freed with the function named beside it.
 *   - Threads: a coffer_repo may be used by several threads at once (each call takes what it
 *     needs from the handle's own pools); a coffer_writer belongs to one thread at a time.
 *     Callbacks run on the thread that made the call unless stated.
 *   - No process-wide state: two handles never share a logger, a connection or a setting.
 *   - Options structs begin with struct_size: set it to sizeof the struct your program was
 *     compiled with, so that later versions can add fields at the end without breaking programs
 *     built against this one (a longer struct than the library knows is accepted when its extra
 *     fields are 0, COFFER_ENOTSUP otherwise; struct_size 0 is COFFER_EINVAL). A NULL options
 *     pointer means every default. coffer_result, coffer_bootstrap_result and
 *     coffer_snapshotter_stats, which the library fills, begin with struct_size too (set by the
 *     caller; see coffer_result).
 *
 * Nothing here includes coffer's internal headers: this file is the whole public interface.
 */
#ifndef COFFER_COFFER_H
#define COFFER_COFFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COFFER_VERSION_MAJOR 0
#define COFFER_VERSION_MINOR 1
#define COFFER_VERSION_PATCH 0
#define COFFER_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define COFFER_API __attribute__((visibility("default")))
#else
#define COFFER_API
#endif

/* The library's version at run time ("0.1.0"), which may differ from COFFER_VERSION_STRING when
 * the program was built against another release. Static string; thread-safe. */
COFFER_API const char *coffer_version(void);

/* ---- errors ---- */

typedef enum coffer_status {
    COFFER_OK = 0,
    COFFER_EINVAL = -1,       /* invalid argument */
    COFFER_ENOMEM = -2,       /* out of memory */
    COFFER_EIO = -3,          /* input/output error (disk, network, a server's refusal) */
    COFFER_ENOTFOUND = -4,    /* no such snapshot, namespace or object */
    COFFER_EEXISTS = -5,      /* already exists */
    COFFER_ENOTEMPTY = -6,    /* a restore destination is not empty */
    COFFER_ECORRUPT = -7,     /* stored data is corrupt */
    COFFER_ENOSPACE = -8,     /* no space left */
    COFFER_ETOOBIG = -9,      /* too large */
    COFFER_EAUTH = -10,       /* authentication failed (bad access key or signature) */
    COFFER_EDENIED = -11,     /* access denied */
    COFFER_ERANGE = -12,      /* range not satisfiable */
    COFFER_EDIGEST = -13,     /* checksum mismatch: the snapshot is damaged */
    COFFER_EPRECOND = -14,    /* precondition failed */
    COFFER_ENOTSUP = -15,     /* not supported */
    COFFER_EAGAIN = -16,      /* temporarily unavailable, try again */
    COFFER_EUNREADABLE = -17, /* a source file cannot be read */
    COFFER_EINTERNAL = -18,   /* a bug in libcoffer */
    COFFER_EABORTED = -19,    /* the application aborted the operation (coffer_writer_abort) */
    COFFER_ECALLBACK = -20    /* an application callback failed without saying how */
} coffer_status;

/* Static English text for a status ("invalid argument"); never NULL, also for unknown values.
 * Thread-safe. */
COFFER_API const char *coffer_strerror(int status);

/* What a failed call tells beyond its status. The caller allocates it; unlike the options
 * structs it has no struct_size: its layout is fixed for soname 0 (libcoffer.so.0), and a
 * field added to it would come with a new soname. */
typedef struct coffer_error {
    coffer_status status;
    char message[512]; /* NUL-terminated; "" when status is COFFER_OK */
    /* The S3 server's answer behind the failure, when one was involved: its HTTP status (404,
     * 403, …; 0 when the failure came from no S3 answer: a directory, the network, a damaged
     * archive, a bad argument) and the S3 error code its body named ("NoSuchBucket",
     * "AccessDenied", "InvalidAccessKeyId", …; a HEAD's answer has no body: "NotFound" and
     * "Forbidden" stand for 404 and 403; "" when none). They tell failures of one status apart:
     * COFFER_ENOTFOUND for a missing bucket ("NoSuchBucket") from a missing snapshot, and
     * COFFER_EAUTH for credentials the server refused (401/403) from a wrong encryption key. */
    int http_status;
    char s3_code[64];
} coffer_error;

/* ---- logging ---- */

typedef enum coffer_log_level {
    COFFER_LOG_DEBUG,
    COFFER_LOG_INFO,
    COFFER_LOG_WARN,
    COFFER_LOG_ERROR
} coffer_log_level;

/* Receives one log line (logfmt, newline included; line is borrowed for the call) of a handle.
 * Called from any thread that uses the handle, so it must be safe to call concurrently. Lines
 * never hold secrets. Without a log function the library writes nothing anywhere. */
typedef void (*coffer_log_fn)(void *ctx, coffer_log_level level, const char *line, size_t len);

/* ---- repositories ---- */

typedef struct coffer_repo coffer_repo;

/* The largest coffer_repo_options.max_attempts, and stall_timeout_ms or retry_budget_ms (a day). */
#define COFFER_MAX_ATTEMPTS_MAX 100
#define COFFER_NET_TIMEOUT_MAX_MS 86400000ull

typedef struct coffer_repo_options {
    size_t struct_size; /* sizeof(coffer_repo_options) */
    /* s3:// repositories. Every value is explicit: the environment (AWS_*, COFFER_*, ~/.aws) is
     * read only when use_environment is set, and then only for the values left NULL here, by the
     * rule of the coffer command line (docs/SNAPSHOTS.md). */
    const char *endpoint;                /* "http(s)://host[:port]"; NULL: AWS S3 in region */
    const char *region;                  /* NULL: us-east-1 */
    const char *access_key, *secret_key; /* copied; the library wipes its copies on close */
    const char *session_token;           /* NULL when none */
    int virtual_host;    /* 1: bucket.host/key; 0: host/bucket/key, except for AWS's own endpoints
                          * (*.amazonaws.com, or endpoint NULL), which take bucket.host/key */
    int use_environment; /* 1: fill what is NULL above from the environment */
    coffer_log_fn log;   /* NULL: silent */
    void *log_ctx;
    coffer_log_level log_level; /* lines below it are not formatted; default COFFER_LOG_DEBUG (0) */
    /* Added after 0.1.0's first cut (a program built before sets a struct_size without them).
     * How an s3:// repository rides out a bad network (docs/SNAPSHOTS.md, "Network faults"). */
    uint64_t retry_budget_ms;  /* while none of its requests succeeds, the repository retries for
                                * at most this long, then fails naming the last answer; 0: 2 min */
    uint64_t stall_timeout_ms; /* a transfer moving no byte this long is cut and retried; 0: 30 s */
    unsigned max_attempts;     /* tries per request (1: no retry), at most 100; 0: 5 */
} coffer_repo_options;

/* Opens url: "s3://BUCKET[/PREFIX]" or a directory path (created when absent; "file://PATH" too).
 * Nothing is sent to an S3 server until the first operation. *out is closed with
 * coffer_repo_close. options may be NULL (a directory, silent). Thread-safe. */
COFFER_API int coffer_repo_open(const char *url, const coffer_repo_options *options, coffer_repo **out,
                                coffer_error *err);
/* Frees repo (NULL: no-op). No other call may be running on it, and every writer of it must have
 * been committed or aborted. */
COFFER_API void coffer_repo_close(coffer_repo *repo);

/* The repository as messages name it ("s3://BUCKET/PREFIX" or the directory's path); lives as
 * long as repo. Thread-safe. */
COFFER_API const char *coffer_repo_name(const coffer_repo *repo);

/* ---- snapshots ---- */

/* An id: "20261122T153000Z-7f3a" (its creation second in UTC, 4 random hex digits). */
#define COFFER_ID_SIZE 32
/* An encryption master key's size in bytes. */
#define COFFER_KEY_SIZE 32

typedef enum coffer_compression {
    COFFER_COMPRESSION_ZSTD = 0, /* the default */
    COFFER_COMPRESSION_LZ4,
    COFFER_COMPRESSION_GZIP,
    COFFER_COMPRESSION_NONE
} coffer_compression;

typedef struct coffer_label {
    const char *key, *value;
} coffer_label;

/* Told the raw bytes moved so far and the total expected (0 when unknown), often: keep it cheap.
 * Runs on the thread doing the work (for a writer, the writer's engine thread). */
typedef void (*coffer_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* Told a file a directory snapshot left out because it cannot be read (path as under the
 * directory, why: the system's reason), as it happens; both strings borrowed for the call. */
typedef void (*coffer_skipped_fn)(void *ctx, const char *path, const char *why);

typedef struct coffer_create_options {
    size_t struct_size; /* sizeof(coffer_create_options) */
    coffer_compression compression;
    int level;                  /* 0: the codec's default */
    size_t chunk_size;          /* 0: 2 MiB */
    unsigned threads;           /* compression workers; 0: one per core within the memory budget */
    uint64_t expected_size;     /* a stream's expected size, 0 if unknown: plans an S3 upload's parts */
    const coffer_label *labels; /* stored in the manifest; borrowed for the call (for a writer:
                                 * until coffer_writer_begin returns, it copies them) */
    size_t nlabels;
    const char *const *exclude; /* directories: glob patterns left out, as `coffer snapshot
                                 * create --exclude` */
    size_t nexclude;
    int one_file_system;  /* directories: do not cross mount points */
    int allow_unreadable; /* directories: leave unreadable files out (listed in the manifest) */
    /* Encryption (AES-256-GCM, a key of its own per snapshot): a 32-byte master key, or a
     * passphrase of at least 8 bytes (scrypt, a salt per snapshot); not both; neither: not
     * encrypted. Read during the call (a writer copies them, and wipes its copies when freed). */
    const unsigned char *key; /* COFFER_KEY_SIZE bytes */
    const char *passphrase;
    size_t passphrase_len;
    coffer_progress_fn progress; /* may be NULL; total: a directory's measured size, a stream's
                                  * expected_size */
    void *progress_ctx;
    /* Added after 0.1.0's first cut (a program built before sets a struct_size without them). */
    coffer_skipped_fn skipped; /* coffer_create_dir with allow_unreadable: told each file left out;
                                * may be NULL */
    void *skipped_ctx;
    /* Added for interrupted runs (docs/SNAPSHOTS.md, "Interrupted runs"). resume = 1: a
     * coffer_create_dir, or a coffer_create_file of a regular file, into S3 that stops before it
     * is stored (killed, network gone) keeps its upload and a small state object in the
     * repository, and the same create run again continues it, sending only the parts the store
     * does not hold; a source changed in between starts a new snapshot. A stream create (fd,
     * command, a FIFO) cannot be replayed: the next run says so. Writers (coffer_writer_begin)
     * ignore it. */
    int resume;
    coffer_skipped_fn notice; /* may be NULL: told what resume decided (resuming, or why not),
                               * as one sentence in path (why is NULL) */
    void *notice_ctx;
} coffer_create_options;

/* What a create or a restore did; every function taking one accepts NULL. The caller sets
 * struct_size to sizeof(coffer_result) as its program knows it; the library writes only the
 * fields that fit in struct_size (a program built against a later, longer coffer_result gets
 * the fields this library knows, the rest left as they were) and never struct_size itself. A
 * struct_size below sizeof(size_t) (0: not set) is COFFER_EINVAL before any work is done (a
 * writer's commit then aborts the writer: nothing is stored). Filled on success only. */
typedef struct coffer_result {
    size_t struct_size;      /* sizeof(coffer_result), set by the caller */
    char id[COFFER_ID_SIZE]; /* the snapshot made, or restored */
    uint64_t raw_size;       /* bytes of the stream or of the directory's tar, uncompressed */
    uint64_t stored_size;    /* bytes of the archive in the repository */
    uint64_t files;          /* directory snapshots: entries (files, directories, links) */
    uint64_t skipped;        /* create with allow_unreadable: files left out */
} coffer_result;

/* Snapshot of the directory at path into namespace ns. Thread-safe. */
COFFER_API int coffer_create_dir(coffer_repo *repo, const char *ns, const char *path,
                                 const coffer_create_options *options, coffer_result *result,
                                 coffer_error *err);
/* Snapshot of the file at path (a symlink followed) as a stream snapshot of its bytes: what
 * coffer_restore_fd gives back. A regular file's size plans the upload (no expected_size), and
 * with resume an interrupted create of it continues like a directory's; it fails, storing
 * nothing, when the file changes while it is read. A FIFO is read until its writers close it, a
 * stream that cannot be replayed, as with coffer_create_fd. Anything else (a directory, a
 * socket, a device) is COFFER_EINVAL. Thread-safe. */
COFFER_API int coffer_create_file(coffer_repo *repo, const char *ns, const char *path,
                                  const coffer_create_options *options, coffer_result *result,
                                  coffer_error *err);
/* Snapshot of the bytes read from fd until end of file (a stream snapshot). fd stays the
 * caller's: it is read, never closed. Thread-safe. */
COFFER_API int coffer_create_fd(coffer_repo *repo, const char *ns, int fd,
                                const coffer_create_options *options, coffer_result *result,
                                coffer_error *err);

/* Snapshot of what the shell command (run by /bin/sh -c, the caller's environment) writes to
 * its standard output; fails, storing nothing, when the command exits other than 0. The command
 * is recorded in the manifest (never put a secret in it). Thread-safe. */
COFFER_API int coffer_create_command(coffer_repo *repo, const char *ns, const char *command,
                                     const coffer_create_options *options, coffer_result *result,
                                     coffer_error *err);

/* A stream snapshot the application writes into. Until commit nothing is listed; abort (or a
 * failed write) leaves no snapshot. The engine runs on a thread of the writer's own, which reads
 * what coffer_writer_write hands it through a pipe, so write blocks while the engine is behind
 * (bounded memory). A writer belongs to one thread at a time. */
typedef struct coffer_writer coffer_writer;

COFFER_API int coffer_writer_begin(coffer_repo *repo, const char *ns, const coffer_create_options *options,
                                   coffer_writer **out, coffer_error *err);
/* Appends n bytes (borrowed). After a failure every later write fails the same way; the writer
 * must still be committed (which returns the failure) or aborted. */
COFFER_API int coffer_writer_write(coffer_writer *w, const void *p, size_t n, coffer_error *err);
/* Ends the stream, waits until the snapshot and its manifest are stored, fills result (may be
 * NULL) and frees w, whatever the outcome (a result whose struct_size is not set aborts the
 * writer: COFFER_EINVAL, nothing stored). */
COFFER_API int coffer_writer_commit(coffer_writer *w, coffer_result *result, coffer_error *err);
/* Discards the stream: no snapshot is listed afterwards (the partial upload is aborted). Waits
 * for the engine's thread and frees w; NULL is a no-op. */
COFFER_API void coffer_writer_abort(coffer_writer *w);

/* One snapshot of a listing. Strings point into the listing and live until coffer_list_free.
 * The library allocates these in arrays, so a caller's code indexes them with its own
 * sizeof(coffer_snapshot_info): unlike the structs with a struct_size, the layout is fixed for
 * soname 0 (libcoffer.so.0). A field added to it would come with a new soname (or a new listing
 * call), never in place. */
typedef struct coffer_snapshot_info {
    char id[COFFER_ID_SIZE];
    int64_t created;    /* seconds since the epoch, UTC */
    int32_t created_ns; /* nanoseconds past created */
    int is_stream;      /* 1: a byte stream; 0: a directory tree */
    uint64_t raw_size, stored_size, files;
    const char *compression; /* "zstd", "lz4", "gzip", "none" */
    int encrypted;
    const coffer_label *labels;
    size_t nlabels;
} coffer_snapshot_info;

/* The snapshots of ns, oldest first (newest last), into a new array *out of *count entries (an
 * empty namespace: *out NULL, *count 0). Free with coffer_list_free. Thread-safe. */
COFFER_API int coffer_list(coffer_repo *repo, const char *ns, coffer_snapshot_info **out, size_t *count,
                           coffer_error *err);
COFFER_API void coffer_list_free(coffer_snapshot_info *list, size_t count);

/* The manifest of ns@id (id NULL: the newest) as stored, a NUL-terminated JSON document into
 * *json (its length into *len, may be NULL). Free with coffer_free. Thread-safe. */
COFFER_API int coffer_show(coffer_repo *repo, const char *ns, const char *id, char **json, size_t *len,
                           coffer_error *err);
/* The id of ns's newest snapshot into id (COFFER_ID_SIZE bytes): the one a NULL id names in
 * show, restore and verify, so that a caller can say which one it acted on. COFFER_ENOTFOUND when
 * ns has none. Thread-safe. */
COFFER_API int coffer_latest(coffer_repo *repo, const char *ns, char id[COFFER_ID_SIZE], coffer_error *err);

/* Frees what the library allocated for the caller with no free function of its own. */
COFFER_API void coffer_free(void *p);

typedef struct coffer_restore_options {
    size_t struct_size; /* sizeof(coffer_restore_options) */
    int force;          /* coffer_restore_dir: replace a non-empty destination directory */
    /* What opens an encrypted snapshot, as in coffer_create_options; a missing or wrong one is
     * COFFER_EAUTH. */
    const unsigned char *key;
    const char *passphrase;
    size_t passphrase_len;
    coffer_progress_fn progress; /* restores only (not verify); total: the snapshot's raw size */
    void *progress_ctx;
    /* Added for interrupted runs (docs/SNAPSHOTS.md, "Interrupted runs"). resume = 1: a
     * coffer_restore_dir that stops (killed, network gone) keeps what it extracted and checked
     * in its staging directory beside dest, with a state file, and the same restore run again
     * continues from its last checkpoint (every 32 MiB); dest is still published only whole. */
    int resume;
    coffer_skipped_fn notice; /* may be NULL: told what resume decided, as for create */
    void *notice_ctx;
} coffer_restore_options;

/* Restores ns@id (id NULL: the newest) into the directory dest, which must not exist or be empty
 * (unless force). The tree is extracted beside dest and renamed into place only when every
 * chunk's CRC32C and the archive's SHA-256 are right: a damaged snapshot leaves dest as it was.
 * Thread-safe. */
COFFER_API int coffer_restore_dir(coffer_repo *repo, const char *ns, const char *id, const char *dest,
                                  const coffer_restore_options *options, coffer_result *result,
                                  coffer_error *err);

/* Receives the restored stream in order; returns COFFER_OK, or a negative status that stops the
 * restore and is returned by it. p is borrowed for the call. */
typedef int (*coffer_write_fn)(void *ctx, const void *p, size_t n);

/* Restores ns@id's raw stream (a stream snapshot's bytes; a directory snapshot's pax tar) to fd
 * (written, never closed) or to fn. Chunks are checked before their bytes are handed over; the
 * archive's SHA-256 can only be checked at the end, so a result other than COFFER_OK means the
 * bytes already delivered must be discarded. Thread-safe. */
COFFER_API int coffer_restore_fd(coffer_repo *repo, const char *ns, const char *id, int fd,
                                 const coffer_restore_options *options, coffer_result *result,
                                 coffer_error *err);
COFFER_API int coffer_restore_cb(coffer_repo *repo, const char *ns, const char *id, coffer_write_fn fn,
                                 void *ctx, const coffer_restore_options *options, coffer_result *result,
                                 coffer_error *err);

/* Restores ns@id's raw stream into the standard input of the shell command (run by /bin/sh -c);
 * fails when the command exits other than 0 or stops reading early. Thread-safe; a command that
 * exits early raises SIGPIPE unless the application ignores it (libcoffer changes no signal
 * disposition: that is process-wide). */
COFFER_API int coffer_restore_command(coffer_repo *repo, const char *ns, const char *id, const char *command,
                                      const coffer_restore_options *options, coffer_result *result,
                                      coffer_error *err);

/* Downloads ns@id (id NULL: the newest) and checks it whole (CRC32C of each chunk, decryption
 * with options' key or passphrase, decompression, the archive's SHA-256) without writing it
 * anywhere; options' force is ignored: COFFER_OK, or
 * COFFER_EDIGEST / COFFER_ECORRUPT / COFFER_ENOTFOUND saying what is wrong. Thread-safe. */
COFFER_API int coffer_verify(coffer_repo *repo, const char *ns, const char *id,
                             const coffer_restore_options *options, coffer_error *err);

/* Removes ns@id (id is required: NULL is COFFER_EINVAL, never "the newest"): its manifest first
 * (from then on it is not listed), then its archive.
 * Thread-safe. */
COFFER_API int coffer_remove(coffer_repo *repo, const char *ns, const char *id, coffer_error *err);

/* Told each snapshot's fate before anything is removed: kept (reasons: "last, daily") or removed
 * (reasons NULL). Strings are borrowed for the call. */
typedef void (*coffer_prune_fn)(void *ctx, const char *id, const char *reasons);

/* Which snapshots a prune keeps: a snapshot is kept when any rule keeps it; a policy without
 * any rule is refused (COFFER_EINVAL) rather than removing everything. Periods are UTC. */
typedef struct coffer_retention {
    size_t struct_size;                                                  /* sizeof(coffer_retention) */
    int keep_last;                                                       /* the N newest */
    int keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly; /* newest of N periods */
    int64_t keep_within_s; /* every snapshot made within this many seconds of the newest */
    int64_t grace_s;       /* archives left by interrupted creates are removed once older than
                            * this; 0: one day */
    int dry_run;           /* decide and report, remove nothing */
    coffer_prune_fn fn;    /* may be NULL; told "" as reasons for each archive without a manifest
                            * that is removed */
    void *ctx;
    /* Added after 0.1.0's first cut (a program built before sets a struct_size without them:
     * 0 and NULL). */
    int grace_as_given; /* 1: grace_s is taken as given, 0 meaning every leftover at once */
    size_t *swept;      /* may be NULL: set to the interrupted uploads (S3 multipart) removed */
} coffer_retention;

/* Applies policy to ns; archives without a manifest (left by interrupted creates) older than
 * grace_s are removed too. *removed (may be NULL) counts the snapshots removed (with dry_run: that
 * would be). COFFER_ENOTSUP when the S3 endpoint cannot list interrupted uploads: the snapshots
 * were pruned all the same, only that sweep was not done. Thread-safe. */
COFFER_API int coffer_prune(coffer_repo *repo, const char *ns, const coffer_retention *policy,
                            size_t *removed, coffer_error *err);

/* ---- the snapshotter: snapshots of a replicated log's state machine ---- */

/* A snapshotter watches one partition of a replicated log (a Raft group's state machine) on a
 * thread of its own: when log_size_threshold entries have been applied since its last snapshot,
 * or time_threshold has passed with something new applied, it asks the application for its
 * state at a consistent point, stores it as a stream snapshot, and only once the snapshot and
 * its manifest are durable tells the application to truncate its log; then it keeps the newest
 * retention_count snapshots. A failed snapshot truncates nothing and is retried with backoff.
 *
 * Layout: snapshots of partition P of topic T go to {prefix}/{T}/{P}/{id}: open the repository
 * at "s3://BUCKET/{prefix}/{T}" (or a directory {prefix}/{T}) and the snapshotter uses the
 * partition's decimal number as the namespace. Each manifest carries the labels "index",
 * "term" (the last entry the state includes), "node_id", "topic" and "partition".
 *
 * The entries are counted from the index of the partition's newest snapshot in the repository
 * (read when the snapshotter starts), so a restarted node does not snapshot at once.
 *
 * Two snapshotters (two partitions, two topics) in one process share nothing but what the
 * application gives both: a repository (it is thread-safe), and a coffer_snapshot_limit that
 * bounds how many of them snapshot at the same time. */
typedef struct coffer_snapshotter coffer_snapshotter;

/* How many snapshotters of a node may snapshot at the same time (the plan's
 * max_concurrent_snapshots, across all of a node's partitions): each snapshotter given the limit
 * (coffer_snapshotter_options.limit) takes one of its slots before it asks for its state, and
 * gives it back once the snapshot is stored, truncated and pruned (or failed). Waiters get the
 * slots in the order they asked. Without a limit, a snapshotter waits for nobody: each takes one
 * snapshot at a time, so N partitions snapshot at most N at once. A limit is shared by the
 * snapshotters of one node, not by the process: two limits never interfere. */
typedef struct coffer_snapshot_limit coffer_snapshot_limit;

/* The most snapshots a limit lets run at once. */
#define COFFER_SNAPSHOT_LIMIT_MAX 1024

/* Makes a limit of max slots (0: 2, the plan's default; at most COFFER_SNAPSHOT_LIMIT_MAX). With
 * use_environment 1, COFFER_SNAPSHOT_MAX_CONCURRENT, when set, overrides max (a value that is not
 * a number from 1 to COFFER_SNAPSHOT_LIMIT_MAX is COFFER_EINVAL, naming the variable); with 0 the
 * environment is not read. *out is freed with coffer_snapshot_limit_free. Thread-safe. */
COFFER_API int coffer_snapshot_limit_new(unsigned max, int use_environment, coffer_snapshot_limit **out,
                                         coffer_error *err);
/* Frees limit (NULL: no-op). Free it after the snapshotters that use it; freed while some still
 * do, it lives on until the last of them is freed. */
COFFER_API void coffer_snapshot_limit_free(coffer_snapshot_limit *limit);

/* Writes the application's state at one consistent point through write(write_ctx, p, n) (which
 * returns COFFER_OK or a negative status the callback should return), and sets *index and *term
 * to the last log entry that state includes. Returns COFFER_OK or a negative status (a
 * non-negative failure counts as COFFER_ECALLBACK). Runs on the snapshotter's thread, while the
 * application goes on applying entries on its own: the state written must be that of *index
 * exactly (take a lock, a copy-on-write view, or a fork). Once the snapshotter is stopped with
 * cancel, write returns COFFER_EABORTED: return it. */
typedef int (*coffer_state_fn)(void *ctx, coffer_write_fn write, void *write_ctx, uint64_t *index,
                               uint64_t *term);
/* Called once the snapshot holding every entry up to and including index is durable (its
 * manifest stored): the application may discard those entries from its log (Raft's
 * compaction). Runs on the snapshotter's thread. A failure is logged and counted, and the
 * snapshot stays (the next one truncates further). */
typedef int (*coffer_truncate_fn)(void *ctx, uint64_t index);

typedef struct coffer_snapshotter_options {
    size_t struct_size; /* sizeof(coffer_snapshotter_options) */
    /* The plan's configuration; 0 means the default given. With use_environment, each is read
     * from the environment variable named beside it when that is set (a value that does not
     * parse makes coffer_snapshotter_new fail with COFFER_EINVAL). */
    uint64_t log_size_threshold;       /* 10,000 entries; COFFER_SNAPSHOT_LOG_THRESHOLD */
    uint64_t time_threshold_ms;        /* 1 h; COFFER_SNAPSHOT_TIME_THRESHOLD_SECS (seconds) */
    uint64_t check_interval_ms;        /* 5 min; COFFER_SNAPSHOT_CHECK_INTERVAL_SECS (seconds) */
    unsigned max_concurrent_snapshots; /* deprecated: read as upload_threads when that is 0. The
                                        * plan's max_concurrent_snapshots is a node's limit
                                        * across its partitions: coffer_snapshot_limit */
    int compression;                   /* 0: gzip; else COFFER_COMPRESSION_x + 1 (so that 0 stays the plan's
                                        * default); COFFER_SNAPSHOT_COMPRESSION = gzip|zstd|lz4|none */
    int retention_count;               /* 3; COFFER_SNAPSHOT_RETENTION_COUNT; -1: keep every snapshot */
    uint64_t retry_initial_ms;         /* first wait after a failure, 1 s; doubled up to retry_max_ms */
    uint64_t retry_max_ms;             /* 5 min */
    int use_environment;               /* 1: the COFFER_SNAPSHOT_* variables override the values above */
    const char *topic;               /* a label of the manifests (the repository's last segment); NULL: "" */
    uint32_t partition;              /* the namespace */
    const char *node_id;             /* a label of the manifests; NULL: "" */
    const char *tmp_dir;             /* where a state is staged before upload; NULL: $TMPDIR or /tmp */
    coffer_state_fn write_state;     /* required */
    coffer_truncate_fn truncate_log; /* may be NULL: nothing to truncate */
    void *ctx;                       /* given to both callbacks */
    /* Added after 0.1.0's first cut (a program built before sets a struct_size without them). */
    coffer_snapshot_limit *limit; /* borrowed, shared with the node's other snapshotters: this one
                                   * waits for a slot before each snapshot; NULL: waits for none */
    unsigned upload_threads;      /* compression workers of an upload; 0: max_concurrent_snapshots
                                   * when set, else 2 */
} coffer_snapshotter_options;

/* Starts a snapshotter for options->partition on repo (borrowed: it must outlive the
 * snapshotter). The state is staged in an unlinked file of tmp_dir, so that its index and term,
 * known only once it is written, go into the manifest. *out is stopped and freed with
 * coffer_snapshotter_free. Thread-safe. */
COFFER_API int coffer_snapshotter_new(coffer_repo *repo, const coffer_snapshotter_options *options,
                                      coffer_snapshotter **out, coffer_error *err);
/* The application applied every entry up to index (call it after each apply or batch; cheap: an
 * atomic store, and a wake-up when the threshold is crossed). Thread-safe. */
COFFER_API void coffer_snapshotter_applied(coffer_snapshotter *s, uint64_t index);
/* Asks for a snapshot now, whatever the thresholds (not before a failure's backoff ends).
 * Thread-safe. */
COFFER_API void coffer_snapshotter_trigger(coffer_snapshotter *s);

typedef struct coffer_snapshotter_stats {
    size_t struct_size;             /* sizeof(coffer_snapshotter_stats), set by the caller */
    uint64_t taken;                 /* snapshots stored */
    uint64_t failed;                /* attempts that failed (state, upload, or truncation) */
    uint64_t last_index, last_term; /* of the newest snapshot stored (0: none yet) */
    uint64_t last_duration_ms;      /* of the newest snapshot stored, state written to pruned */
    uint64_t applied;               /* as last reported */
    uint64_t truncated_through;     /* the last index given to truncate_log that succeeded */
    int in_flight;                  /* 1 while a snapshot is being taken */
    char last_id[COFFER_ID_SIZE];   /* of the newest snapshot stored */
    coffer_error last_error;        /* of the last failure; status COFFER_OK when none yet */
    /* Added after 0.1.0's first cut (a shorter struct_size does not receive them). */
    int waiting_for_slot;  /* 1 while a snapshot is due but the limit's slots are all taken */
    uint64_t slot_wait_ms; /* time spent waiting for the limit's slots, all snapshots together */
} coffer_snapshotter_stats;

/* Copies the counters into *out. As for coffer_result: the caller sets struct_size, the library
 * writes only the fields that fit (never struct_size itself); below sizeof(size_t) is
 * COFFER_EINVAL. Thread-safe. */
COFFER_API int coffer_snapshotter_stats_get(coffer_snapshotter *s, coffer_snapshotter_stats *out,
                                            coffer_error *err);
/* Stops the thread and returns once it has ended. cancel 0: a snapshot in flight is finished
 * (stored, log truncated, pruned) first; cancel 1: it is aborted, and no snapshot of it is
 * listed (its log is not truncated). A snapshot still waiting for a slot of its limit is not in
 * flight: it is dropped at once, nothing stored. Idempotent, also from several threads at once
 * (each returns once the thread has ended); the counters stay readable.
 * From one of s's own callbacks (write_state, truncate_log, or the repository's log function on
 * s's thread) it cannot wait for the thread it runs on: it tells the thread to stop and returns
 * at once; the snapshot in flight is then finished (cancel 0) or, with cancel 1, write returns
 * COFFER_EABORTED from then on and nothing is stored; the thread ends once the callback returns.
 * s must still be freed, from another thread. */
COFFER_API void coffer_snapshotter_stop(coffer_snapshotter *s, int cancel);
/* Stops (cancel 0) and frees s; NULL is a no-op. Not from one of s's own callbacks: there it
 * only stops (as above), logs an error and frees nothing. */
COFFER_API void coffer_snapshotter_free(coffer_snapshotter *s);

/* ---- bootstrap: a new node from the newest good snapshot ---- */

typedef struct coffer_bootstrap_options {
    size_t struct_size; /* sizeof(coffer_bootstrap_options) */
    /* The destination, one of: a directory (dest_dir non-NULL: the stream lands in dest_dir/state,
     * written beside and renamed in place once it verified), a callback (write non-NULL), an fd
     * (use_fd 1: written from its current offset, never closed). fd and callback are given only a
     * snapshot that verified first (it is downloaded twice), so they never see a damaged one. */
    const char *dest_dir;
    coffer_write_fn write;
    void *write_ctx;
    int use_fd, fd;
    const char *topic;                     /* when set, snapshots whose "topic" label differs are skipped */
    const coffer_restore_options *restore; /* keys of encrypted snapshots; may be NULL */
} coffer_bootstrap_options;

/* What a bootstrap did. As for coffer_result: the caller sets struct_size to
 * sizeof(coffer_bootstrap_result) as its program knows it, and the library writes only the
 * fields that fit (never struct_size itself); below sizeof(size_t) (0: not set) is COFFER_EINVAL
 * before any work. Written once the arguments are accepted, whatever the outcome: after a
 * failure id is "", index and term 0, and fell_back / skipped count the damaged snapshots. */
typedef struct coffer_bootstrap_result {
    size_t struct_size;      /* sizeof(coffer_bootstrap_result), set by the caller */
    char id[COFFER_ID_SIZE]; /* the snapshot restored */
    uint64_t index, term;    /* replay the log after index */
    int fell_back;           /* 1: a newer snapshot was damaged and skipped (logged as a warning) */
    unsigned skipped;        /* how many newer ones were skipped */
} coffer_bootstrap_result;

/* Restores partition's newest snapshot that verifies into the destination and fills *result;
 * falls back to older ones when newer are damaged (COFFER_EDIGEST / COFFER_ECORRUPT), saying
 * so in the repository's log and result->fell_back. COFFER_ENOTFOUND when the partition has no
 * snapshot (a new cluster: start from an empty state), or the status of the last damaged one
 * when none verifies. No fallback once bytes were delivered: should a snapshot that verified
 * turn out damaged while a callback or fd is handed it (changed since, or bits flipped on the
 * way), bootstrap stops with that error, its message saying how many bytes were delivered (discard
 * them), rather than follow them with an older snapshot. A directory destination is never
 * partly written: its state is renamed into place only once whole. Thread-safe. */
COFFER_API int coffer_bootstrap(coffer_repo *repo, uint32_t partition,
                                const coffer_bootstrap_options *options, coffer_bootstrap_result *result,
                                coffer_error *err);

#ifdef __cplusplus
}
#endif

#endif
