/*
 * order.h - the one order of the snapshots of a namespace, which @latest, ls, prune (retention)
 * and verify all follow: creation time to the nanosecond, then the snapshot id. Two snapshots
 * made within one second are ordered by the manifest's created_ns; two with the same instant
 * (a manifest that records whole seconds only counts as .000000000) by their ids, so that every
 * command names the same newest snapshot and a prune never removes the one @latest restores.
 */
#ifndef CF_SNAPSHOT_ORDER_H
#define CF_SNAPSHOT_ORDER_H

#include <stdint.h>

#include "archive/manifest.h" /* CF_SNAPSHOT_ID_LEN */

typedef struct cf_snapshot_key {
    int64_t created;    /* seconds since the epoch, UTC */
    int32_t created_ns; /* 0 to 999,999,999 past created */
    char id[CF_SNAPSHOT_ID_LEN + 1];
} cf_snapshot_key;

/* Negative when a is older than b, positive when newer, 0 only for the same id made at the same
 * instant. A total order: qsort with it gives the same sequence whatever the input order. */
int cf_snapshot_key_cmp(const cf_snapshot_key *a, const cf_snapshot_key *b);

#endif
