/*
 * limiter.h - failed-login counts per key ("ip:ADDR", "user:NAME"), in fixed windows.
 *
 * A key's window opens at its first failure; after max_failures failures within window_s the
 * key is refused until the window closes. A success forgets the key. Memory is bounded by
 * max_entries: when full, the entry whose window opened longest ago is evicted first (it is the
 * nearest to expiring anyway). An attacker who can fill the table with fresh keys can so evict a
 * victim's count; the per-address limit bounds how fast one client can do that.
 *
 * Every function is thread-safe (one mutex; each call is a hash lookup).
 */
#ifndef CF_CONSOLE_LIMITER_H
#define CF_CONSOLE_LIMITER_H

#include <stddef.h>

#include "core/err.h"

typedef struct cf_limiter cf_limiter;
/* max_failures >= 1, window_s > 0, max_entries >= 1, else CF_EINVAL. *out: cf_limiter_free. */
int cf_limiter_new(unsigned max_failures, double window_s, size_t max_entries, cf_limiter **out, cf_err *err);
void cf_limiter_free(cf_limiter *l);
/* 1 when key may try now; else 0 and *retry_after_s set (> 0; retry_after_s may be NULL). */
int cf_limiter_allow(cf_limiter *l, const char *key, double now, double *retry_after_s);
void cf_limiter_fail(cf_limiter *l, const char *key, double now);
void cf_limiter_succeed(cf_limiter *l, const char *key);
/* Entries held now (for tests and metrics). */
size_t cf_limiter_size(cf_limiter *l);

#endif
