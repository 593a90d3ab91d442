/*
 * retention.h - which snapshots a prune keeps: the rules of core/keep.h (restic's meaning of
 * each, calendar periods in UTC where restic uses local time) over the snapshots' creation times.
 * "Most recent" follows cf_snapshot_key_cmp, the order every other command uses, so that two
 * snapshots of one second are told apart the same way here as by @latest.
 */
#ifndef CF_SNAPSHOT_RETENTION_H
#define CF_SNAPSHOT_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/keep.h" /* cf_retention, the policy */
#include "snapshot/order.h"

typedef struct cf_retention_item {
    cf_snapshot_key key; /* in: when the snapshot was made, and its id (snapshot/order.h) */
    int keep;            /* out */
    char reasons[96];    /* out: "last, daily" — the rules that keep it */
} cf_retention_item;

/* Decides every item (any order); CF_EINVAL when the policy keeps nothing at all (a prune with
 * no rule would delete every snapshot: refused, as restic does). */
int cf_retention_apply(const cf_retention *policy, cf_retention_item *items, size_t n, cf_err *err);

#endif
