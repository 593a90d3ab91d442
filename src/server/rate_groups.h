/*
 * rate_groups.h - rate groups: every response body served under the keys of a group shares the
 * group's one budget (a cf_http_bucket), fairly between connections (rate_groups.c).
 *
 * The rates are store settings ("rategroup/<name>", decimal bytes/s), read at start and changed
 * through the admin API, which updates the running buckets. Responses to root, anonymous
 * requests and keys without a group are never paced and pay one branch for it.
 */
#ifndef CF_SERVER_RATE_GROUPS_H
#define CF_SERVER_RATE_GROUPS_H

#include "server/request.h"

typedef struct cf_rate_groups cf_rate_groups;
typedef struct cf_rate_group cf_rate_group;

/* Builds the table from the store's settings. */
int cf_rate_groups_new(cf_store *store, cf_rate_groups **out, cf_err *err);
/* After the HTTP layer stopped: no response may still use a bucket. NULL is a no-op. */
void cf_rate_groups_free(cf_rate_groups *t);
/* The rate of group name (bytes/s), or 0 when the group has none. */
uint64_t cf_rate_groups_rate(cf_rate_groups *t, const char *name);
/* Stores the rate of group name and applies it to the responses running and to come: last set
 * wins. CF_EINVAL for a bad name or rate (message names it). */
int cf_rate_groups_set(cf_rate_groups *t, cf_store *store, const char *name, uint64_t rate, cf_err *err);
/* Calls visit for each group with a rate, in name order (for the admin API). */
void cf_rate_groups_each(cf_rate_groups *t, void (*visit)(void *ctx, const char *name, uint64_t rate),
                         void *ctx);
/* coffer_rate_group_{bytes_total,rate_bytes,active_responses}{group="..."}. */
int cf_rate_groups_render_metrics(cf_rate_groups *t, cf_buf *b);

/* Response bodies for r: paced by its key's group when it has one, else the plain bodies of
 * http.h (cf_http_body_buffer, _fd, _reader) with the same arguments. */
cf_http_response *cf_rate_body_buffer(cf_request *r, void *data, size_t len, int copy);
cf_http_response *cf_rate_body_fd(cf_request *r, int fd, uint64_t offset, uint64_t len);
cf_http_response *cf_rate_body_reader(cf_request *r, uint64_t len, size_t block, cf_http_reader read,
                                      void *cls, void (*free_cls)(void *cls));

#endif
