/*
 * catalogue.h - the console's picture of the snapshot repositories: chains (each namespace
 * directly below a repository) and their snapshots, read from the manifests `coffer snapshot`
 * writes and kept in memory, so that no API request lists a bucket.
 *
 * A refresh lists every chain and reads only the manifests that are new or whose ETag changed
 * since the previous view; the rest is carried over, so a refresh of an unchanged repository of
 * 10,000 snapshots costs its listings. A manifest that does not parse is left out (one warning
 * per key and ETag); a repository that cannot be listed keeps the chains the previous view had
 * (stale beats empty) and counts a failed refresh.
 *
 * Views are immutable and reference-counted: a refresh builds a new one and swaps it in under a
 * mutex held only for the swap, so readers never wait on I/O and a refresh never waits on
 * readers. A view stays valid until its last cf_catalogue_release.
 *
 * Threads: acquire, release, the lookups and cf_catalogue_request_refresh may be called from any
 * thread; cf_catalogue_refresh may run beside the background thread (refreshes are serialised).
 */
#ifndef CF_CONSOLE_CATALOGUE_H
#define CF_CONSOLE_CATALOGUE_H

#include <stddef.h>
#include <stdint.h>

#include "archive/manifest.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "storage/repo.h"

typedef struct cf_catalogue cf_catalogue;
typedef struct cf_cat_repo {
    const char *url; /* "s3://bucket/prefix", for messages and the API */
    cf_repo *repo;
} cf_cat_repo;
typedef struct cf_catalogue_opts {
    const cf_cat_repo *repos; /* each namespace directly below a repo is a chain */
    size_t nrepos;
    double refresh_interval_s; /* background refresh; 0 = default 60 */
    const cf_logger *log;
    const cf_clock *clock;
} cf_catalogue_opts;

/* No I/O: the first view is empty and not ready. o->repos is copied; the cf_repo handles stay the
 * caller's and must outlive the catalogue. */
int cf_catalogue_new(const cf_catalogue_opts *o, cf_catalogue **out, cf_err *err);
/* Synchronous full refresh (first load, tests). A repository that cannot be listed fails the
 * refresh (its previous chains stay); manifests that do not parse do not. */
int cf_catalogue_refresh(cf_catalogue *c, cf_err *err);
/* Background thread: a refresh every interval, and soon after each request. */
int cf_catalogue_start(cf_catalogue *c, cf_err *err);
/* On demand: wakes the thread; requests made while a refresh runs make one more refresh. */
void cf_catalogue_request_refresh(cf_catalogue *c);
/* Stops the thread (without waiting for the interval) and frees c; NULL is a no-op. Every view
 * acquired must have been released. */
void cf_catalogue_free(cf_catalogue *c);

/* A consistent view, reference-counted: readers never block the refresh and vice versa. */
typedef struct cf_cat_snapshot {
    char id[CF_SNAPSHOT_ID_LEN + 1];
    char *chain;
    int64_t created; /* unix seconds */
    int32_t created_ns;
    uint64_t size, raw_size, files;
    char compression[16]; /* "zstd", "lz4", "none" (cf_codec name) */
    int level;
    int encrypted;
    char sha256[65];
    char *archive_key; /* relative to repo */
    char *manifest_key;
    cf_label *labels;
    size_t nlabels;
    char *height;      /* labels["height"] or NULL */
    size_t repo_index; /* which cf_cat_repo */
} cf_cat_snapshot;
typedef struct cf_cat_chain {
    char *name;
    size_t repo_index;
    cf_cat_snapshot *snaps; /* newest first */
    size_t nsnaps;
} cf_cat_chain;
/* The reference count lives in the catalogue's private wrapper around this struct. */
typedef struct cf_cat_view {
    cf_cat_chain *chains; /* sorted by name */
    size_t nchains;
    int64_t refreshed_at; /* unix seconds of the last successful refresh; 0 before */
    int ready;            /* first refresh done */
} cf_cat_view;

/* The current view, never NULL; release it when done. */
const cf_cat_view *cf_catalogue_acquire(cf_catalogue *c);
void cf_catalogue_release(cf_catalogue *c, const cf_cat_view *v);
/* NULL when absent; binary searches. */
const cf_cat_chain *cf_cat_find_chain(const cf_cat_view *v, const char *name);
const cf_cat_snapshot *cf_cat_find_snapshot(const cf_cat_chain *ch, const char *id);

/* Prometheus text: coffer_console_catalogue_refreshes_total{result="ok"|"error"},
 * _refresh_seconds (the last refresh's duration), _snapshots, _chains,
 * _last_refresh_timestamp_seconds. 0 or the buffer's error. */
int cf_catalogue_render_metrics(cf_catalogue *c, cf_buf *b);

#endif
