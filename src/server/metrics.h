/* metrics.h - the counters updated as requests end, rendered for GET /metrics (metrics.c). */
#ifndef CF_SERVER_METRICS_H
#define CF_SERVER_METRICS_H

#include "server/request.h"

/* counters updated as requests end, rendered for GET /metrics. */
cf_metrics *cf_metrics_new(void);
void cf_metrics_free(cf_metrics *m);
void cf_metrics_begin(cf_metrics *m);
void cf_metrics_end(cf_metrics *m, cf_s3_op op, int status, uint64_t in, uint64_t out, double seconds);
/* An object whose stored data could not be read as its record says (a data file short or missing,
 * an I/O error): counted whether it was found before the answer (500) or while sending it. */
void cf_metrics_object_read_error(cf_metrics *m);
int cf_metrics_render(cf_metrics *m, cf_store *store, const cf_logger *log, cf_buf *b);

#endif
