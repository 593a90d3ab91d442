/*
 * metrics.c - Prometheus text exposition at GET /metrics.
 *
 * Counters are plain atomics indexed by operation and status, updated once per request when it
 * completes; a scrape reads them without locking (a scrape racing a request may see its count
 * but not yet its bytes, which Prometheus tolerates). Stored objects and bytes per bucket come
 * from the store's own per-bucket counters, so a scrape costs one index walk over buckets, not
 * objects.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "server/request.h"
#include "server/metrics.h"

static const int tracked_status[] = {200, 204, 206, 304, 400, 403, 404, 405,
                                     409, 411, 412, 416, 431, 500, 501, 503};
#define NSTATUS (sizeof tracked_status / sizeof *tracked_status + 1) /* + "other" */
static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                        0.5,   1,      2.5,   5,    10,    30,   60};
#define NBOUNDS (sizeof latency_bounds / sizeof *latency_bounds)

struct cf_metrics {
    _Atomic uint64_t requests[CF_S3_OP_COUNT_][NSTATUS];
    _Atomic uint64_t bytes_in[CF_S3_OP_COUNT_];
    _Atomic uint64_t bytes_out[CF_S3_OP_COUNT_];
    _Atomic uint64_t latency[CF_S3_OP_COUNT_][NBOUNDS + 1]; /* per bucket, not cumulative */
    _Atomic uint64_t latency_sum_us[CF_S3_OP_COUNT_];
    _Atomic int64_t in_flight;
    _Atomic uint64_t object_read_errors;
};

cf_metrics *cf_metrics_new(void)
{
    return calloc(1, sizeof(cf_metrics));
}

void cf_metrics_free(cf_metrics *m)
{
    free(m);
}

void cf_metrics_begin(cf_metrics *m)
{
    atomic_fetch_add(&m->in_flight, 1);
}

static size_t status_index(int status)
{
    for (size_t i = 0; i < NSTATUS - 1; i++)
        if (tracked_status[i] == status)
            return i;
    return NSTATUS - 1;
}

void cf_metrics_end(cf_metrics *m, cf_s3_op op, int status, uint64_t in, uint64_t out, double seconds)
{
    if ((unsigned)op >= CF_S3_OP_COUNT_)
        op = CF_S3_OP_UNKNOWN;
    atomic_fetch_sub(&m->in_flight, 1);
    atomic_fetch_add(&m->requests[op][status_index(status)], 1);
    atomic_fetch_add(&m->bytes_in[op], in);
    atomic_fetch_add(&m->bytes_out[op], out);
    size_t b = 0;
    while (b < NBOUNDS && seconds > latency_bounds[b])
        b++;
    atomic_fetch_add(&m->latency[op][b], 1);
    atomic_fetch_add(&m->latency_sum_us[op], (uint64_t)(seconds * 1e6));
}

void cf_metrics_object_read_error(cf_metrics *m)
{
    atomic_fetch_add(&m->object_read_errors, 1);
}

static void label_escape(cf_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            cf_buf_putc(b, '\\');
        if (*s == '\n') {
            cf_buf_puts(b, "\\n");
            continue;
        }
        cf_buf_putc(b, *s);
    }
}

int cf_metrics_render(cf_metrics *m, cf_store *store, const cf_logger *log, cf_buf *b)
{
    cf_buf_puts(b, "# HELP coffer_s3_requests_total S3 requests by operation and HTTP status.\n"
                   "# TYPE coffer_s3_requests_total counter\n");
    for (int op = 0; op < CF_S3_OP_COUNT_; op++)
        for (size_t s = 0; s < NSTATUS; s++) {
            uint64_t v = atomic_load(&m->requests[op][s]);
            if (!v)
                continue;
            char status[8];
            if (s < NSTATUS - 1)
                snprintf(status, sizeof status, "%d", tracked_status[s]);
            else
                snprintf(status, sizeof status, "other");
            cf_buf_printf(b, "coffer_s3_requests_total{op=\"%s\",status=\"%s\"} %llu\n",
                          cf_s3_op_name((cf_s3_op)op), status, (unsigned long long)v);
        }
    cf_buf_puts(b, "# HELP coffer_s3_received_bytes_total Request body bytes by operation.\n"
                   "# TYPE coffer_s3_received_bytes_total counter\n");
    for (int op = 0; op < CF_S3_OP_COUNT_; op++)
        if (atomic_load(&m->bytes_in[op]))
            cf_buf_printf(b, "coffer_s3_received_bytes_total{op=\"%s\"} %llu\n", cf_s3_op_name((cf_s3_op)op),
                          (unsigned long long)atomic_load(&m->bytes_in[op]));
    cf_buf_puts(b, "# HELP coffer_s3_sent_bytes_total Response body bytes by operation.\n"
                   "# TYPE coffer_s3_sent_bytes_total counter\n");
    for (int op = 0; op < CF_S3_OP_COUNT_; op++)
        if (atomic_load(&m->bytes_out[op]))
            cf_buf_printf(b, "coffer_s3_sent_bytes_total{op=\"%s\"} %llu\n", cf_s3_op_name((cf_s3_op)op),
                          (unsigned long long)atomic_load(&m->bytes_out[op]));
    cf_buf_puts(b, "# HELP coffer_s3_request_duration_seconds Time from the request line to the last byte.\n"
                   "# TYPE coffer_s3_request_duration_seconds histogram\n");
    for (int op = 0; op < CF_S3_OP_COUNT_; op++) {
        uint64_t counts[NBOUNDS + 1], total = 0;
        for (size_t i = 0; i <= NBOUNDS; i++)
            total += counts[i] = atomic_load(&m->latency[op][i]);
        if (!total)
            continue;
        const char *name = cf_s3_op_name((cf_s3_op)op);
        uint64_t cum = 0;
        for (size_t i = 0; i < NBOUNDS; i++) {
            cum += counts[i];
            cf_buf_printf(b, "coffer_s3_request_duration_seconds_bucket{op=\"%s\",le=\"%g\"} %llu\n", name,
                          latency_bounds[i], (unsigned long long)cum);
        }
        cf_buf_printf(b, "coffer_s3_request_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} %llu\n", name,
                      (unsigned long long)total);
        cf_buf_printf(b, "coffer_s3_request_duration_seconds_sum{op=\"%s\"} %.6f\n", name,
                      (double)atomic_load(&m->latency_sum_us[op]) / 1e6);
        cf_buf_printf(b, "coffer_s3_request_duration_seconds_count{op=\"%s\"} %llu\n", name,
                      (unsigned long long)total);
    }
    cf_buf_printf(b,
                  "# HELP coffer_s3_requests_in_flight Requests being served now.\n"
                  "# TYPE coffer_s3_requests_in_flight gauge\n"
                  "coffer_s3_requests_in_flight %lld\n",
                  /* the scrape itself is one of them */
                  (long long)atomic_load(&m->in_flight));

    cf_buf_printf(b,
                  "# HELP coffer_object_read_errors_total Objects whose stored data could not be read as "
                  "their record says (a data file short or missing): answered 500, or the connection cut.\n"
                  "# TYPE coffer_object_read_errors_total counter\n"
                  "coffer_object_read_errors_total %llu\n",
                  (unsigned long long)atomic_load(&m->object_read_errors));

    uint64_t alone, side_by_side;
    cf_store_md5_stats(store, &alone, &side_by_side);
    cf_buf_printf(b,
                  "# HELP coffer_md5_bytes_total Body bytes hashed for ETags, alone or side by side with "
                  "other bodies received at the same time (less CPU per byte).\n"
                  "# TYPE coffer_md5_bytes_total counter\n"
                  "coffer_md5_bytes_total{hashed=\"alone\"} %llu\n"
                  "coffer_md5_bytes_total{hashed=\"side_by_side\"} %llu\n",
                  (unsigned long long)alone, (unsigned long long)side_by_side);

    cf_store_bucket *list = NULL;
    size_t n = 0;
    cf_err err;
    if (cf_store_bucket_list(store, &list, &n, &err) != 0) {
        cf_log(log, CF_LOG_ERROR, "metrics: cannot list buckets", "error", err.msg, NULL);
        return CF_EIO;
    }
    cf_buf_puts(b, "# HELP coffer_bucket_objects Objects stored per bucket.\n"
                   "# TYPE coffer_bucket_objects gauge\n");
    for (size_t i = 0; i < n; i++) {
        cf_buf_puts(b, "coffer_bucket_objects{bucket=\"");
        label_escape(b, list[i].name);
        cf_buf_printf(b, "\"} %llu\n", (unsigned long long)list[i].objects);
    }
    cf_buf_puts(b, "# HELP coffer_bucket_bytes Bytes stored per bucket (object sizes).\n"
                   "# TYPE coffer_bucket_bytes gauge\n");
    for (size_t i = 0; i < n; i++) {
        cf_buf_puts(b, "coffer_bucket_bytes{bucket=\"");
        label_escape(b, list[i].name);
        cf_buf_printf(b, "\"} %llu\n", (unsigned long long)list[i].bytes);
    }
    free(list);
    return 0;
}
