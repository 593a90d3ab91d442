/* kv_snap.h - the node's snapshots through libcoffer (<coffer/coffer.h> only): a snapshotter fed
 * by the node's applied index, whose callbacks write the node's state and truncate its log, and
 * the bootstrap of a new node from the newest good snapshot. */
#ifndef KV_SNAP_H
#define KV_SNAP_H

#include "kv_store.h"

typedef struct {
    const char *repo;    /* a directory or s3://BUCKET/PREFIX: snapshots go to REPO/TOPIC/PARTITION */
    const char *topic;   /* default "kv" */
    uint32_t partition;  /* default 0 */
    const char *node_id; /* default "" */
    int use_environment; /* COFFER_SNAPSHOT_* (and, for s3://, the AWS_* credentials) */
} kv_snap_config;

typedef struct kv_snap kv_snap;

/* Starts snapshotting store (borrowed until kv_snap_stop). 0, or -1 with a sentence in why. */
int kv_snap_start(kv_store *store, const kv_snap_config *cfg, kv_snap **out, char *why, size_t why_len);
/* Tells the snapshotter the node's applied index. */
void kv_snap_applied(kv_snap *snap);
/* serve's commands: snapshot-now (a snapshot now, waits for it), snapshot-wait N (until N are
 * stored, 30 s at most), snapshot-stats. 1 when argv[0] is none of them (not handled), else 0 or
 * -1 (failed, said on stderr). */
int kv_snap_command(kv_snap *snap, int argc, char **argv);
/* Finishes a snapshot in flight, stops and frees. */
void kv_snap_stop(kv_snap *snap);

/* Makes dir a new node from the partition's newest snapshot that verifies; prints index, term and
 * whether a damaged newer one was skipped. 0, or -1 (said on stderr). */
int kv_snap_bootstrap(const kv_snap_config *cfg, const char *dir, kv_sync_policy sync, kv_store **out);

#endif
