/*
 * render.h - the catalogue's JSON as the API sends it (SNAP and a chain's summary, docs/console.md
 * "HTTP API"), rendered once per catalogue view instead of once per request.
 *
 * Views are immutable, so a snapshot's JSON only changes with time through age_seconds: each
 * snapshot is rendered once per view, at its first request, into a fragment split at the age, and
 * a response is the fragments copied into one buffer with the age written between the halves.
 * The bytes are those jansson's json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII) gives for
 * cf_console_snapshot_json (tests/unit/console/test_render.c holds them to it), so the API's JSON
 * does not depend on which of the two made it.
 *
 * A cf_render belongs to one console. cf_render_acquire gives the rendered state of the
 * catalogue's current view: it holds a reference to that view, so the view (and the pointers the
 * caller takes from it) stays valid until cf_render_release, and a new view is rendered afresh.
 * Threads: everything may be called from any thread; a fragment is rendered at most a few times
 * when several threads want it at once (one wins, the others' copies are freed).
 */
#ifndef CF_CONSOLE_RENDER_H
#define CF_CONSOLE_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "console/catalogue.h"
#include "core/buf.h"
#include "core/err.h"

typedef struct cf_render cf_render;
typedef struct cf_rendered cf_rendered;

/* repo_urls[i] names cf_cat_repo i in chain summaries (copied). No rendering yet. */
int cf_render_new(cf_catalogue *cat, const char *const *repo_urls, size_t nrepos, cf_render **out,
                  cf_err *err);
/* Every cf_rendered acquired must have been released. NULL is a no-op. */
void cf_render_free(cf_render *r);

/* The catalogue's current view with its rendered fragments; NULL when out of memory. */
cf_rendered *cf_render_acquire(cf_render *r);
void cf_render_release(cf_rendered *rv);
const cf_cat_view *cf_rendered_view(const cf_rendered *rv);

/* Appends SNAP of ch->snaps[i] (ch a chain of the view), aged at now (unix seconds). */
int cf_render_snapshot(cf_rendered *rv, cf_buf *b, const cf_cat_chain *ch, size_t i, int64_t now);
/* Appends {"name","repository","snapshots","latest"} of ch (a chain of the view). */
int cf_render_chain(cf_rendered *rv, cf_buf *b, const cf_cat_chain *ch, int64_t now);

/* Without a view, for tests and the fuzz target: a JSON string of s, escaped as jansson's
 * JSON_ENSURE_ASCII escapes it; a byte that is not part of valid UTF-8 becomes \uFFFD, so the
 * output is valid JSON whatever s holds. */
int cf_render_json_string(cf_buf *b, const char *s);
/* SNAP of s aged at now, rendered from scratch. */
int cf_render_snapshot_uncached(cf_buf *b, const cf_cat_snapshot *s, int64_t now);

#endif
