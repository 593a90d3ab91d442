/*
 * plan.h - what a mirror run does, decided from the two listings alone: the "same" rules of
 * docs/MIRROR.md, the excludes, the keys a destination must refuse, and the merge of the two
 * sorted listings into one list of actions in key order. Pure functions: no I/O, unit-tested
 * (tests/unit/mirror/test_plan.c).
 */
#ifndef CF_MIRROR_PLAN_H
#define CF_MIRROR_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "storage/repo.h"

typedef enum cf_side_kind { CF_SIDE_DIR, CF_SIDE_S3 } cf_side_kind;

/* One listed object, its strings owned. */
typedef struct cf_plan_entry {
    char *key;
    uint64_t size;
    int64_t mtime;
    char *etag;  /* quoted as listed, "" when none */
    int special; /* a directory's symbolic link or other non-regular file */
} cf_plan_entry;

typedef struct cf_plan_list {
    cf_plan_entry *v;
    size_t n, cap;
} cf_plan_list;

/* Adds a copy of e; CF_ENOMEM. */
int cf_plan_list_add(cf_plan_list *l, const cf_repo_entry *e);
/* Sorts by key (bytes, as S3 orders them). */
void cf_plan_list_sort(cf_plan_list *l);
void cf_plan_list_free(cf_plan_list *l);

/* 1 when an ETag is a multipart upload's ("…-N"): not an MD5 of the bytes. */
int cf_plan_etag_is_multipart(const char *etag);
/* 1 when s (in a source of kind sk) and d (in a destination of kind dk) hold the same object. */
int cf_plan_same(cf_side_kind sk, cf_side_kind dk, const cf_plan_entry *s, const cf_plan_entry *d);
/* 1 when key matches one of the patterns: fnmatch(3) without FNM_PATHNAME on the whole relative
 * key; a pattern ending in '/' matches everything under that directory. */
int cf_plan_excluded(const char *key, const char *const *patterns, size_t n);
/* NULL when a destination of kind dk may take key, else why not (static text). */
const char *cf_plan_key_refused(const char *key, cf_side_kind dk);

typedef enum cf_plan_action {
    CF_PLAN_COPY,   /* in the source only, or different */
    CF_PLAN_SKIP,   /* the same on both sides */
    CF_PLAN_DELETE, /* in the destination only (planned only when deleting extras) */
    CF_PLAN_REFUSE, /* the source's key cannot go to the destination: a failed file */
    CF_PLAN_LEAVE,  /* a source entry not mirrored, not a failure (a symbolic link; a folder marker
                     * for a directory), said with a warning */
} cf_plan_action;

typedef struct cf_plan_item {
    cf_plan_action action;
    const cf_plan_entry *src; /* NULL for a delete */
    const cf_plan_entry *dst; /* NULL when the destination lacks the key */
    const char *why;          /* REFUSE, LEAVE: static text */
} cf_plan_item;

typedef struct cf_plan {
    cf_plan_item *v;
    size_t n;
} cf_plan;

/* Merges the sorted lists src and dst into out (key order; entries point into the lists, which
 * must outlive it). Excluded keys are left alone on both sides. CF_ENOMEM. */
int cf_plan_build(const cf_plan_list *src, cf_side_kind sk, const cf_plan_list *dst, cf_side_kind dk,
                  const char *const *exclude, size_t nexclude, int delete_extra, cf_plan *out, cf_err *err);
void cf_plan_free(cf_plan *p);

#endif
