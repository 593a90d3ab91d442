/*
 * retention.h - which snapshots a prune keeps, with restic's meaning of each rule:
 *   last N      the N most recent snapshots
 *   hourly N    for the last N hours that have snapshots, the most recent of each hour
 *   daily, weekly (ISO 8601 weeks), monthly, yearly N: the same per day, week, month, year
 *   within D    every snapshot made within D of the newest one (not of now: a repository
 *               that stopped receiving snapshots is not emptied by the passing of time)
 * "Most recent" follows cf_snapshot_key_cmp, the order every other command uses, so that two
 * snapshots of one second are told apart the same way here as by @latest.
 * A snapshot is kept when any rule keeps it. Calendar periods are taken in UTC, so that the
 * answer does not depend on the machine that prunes (restic uses local time).
 */
#ifndef CF_SNAPSHOT_RETENTION_H
#define CF_SNAPSHOT_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "snapshot/order.h"

typedef struct cf_retention {
    int last, hourly, daily, weekly, monthly, yearly;
    int64_t within_s;
} cf_retention;

typedef struct cf_retention_item {
    cf_snapshot_key key; /* in: when the snapshot was made, and its id (snapshot/order.h) */
    int keep;            /* out */
    char reasons[96];    /* out: "last, daily" — the rules that keep it */
} cf_retention_item;

/* Decides every item (any order); CF_EINVAL when the policy keeps nothing at all (a prune with
 * no rule would delete every snapshot: refused, as restic does). */
int cf_retention_apply(const cf_retention *policy, cf_retention_item *items, size_t n, cf_err *err);

#endif
