/*
 * log.h - one structured line per event, in logfmt (key=value, values quoted when they hold
 * spaces or quotes), so that both people and log shippers read it.
 *
 * A cf_logger belongs to whoever runs the work (the server, a client, a library handle): there
 * is no process-wide log. Its sink receives each finished line; the default sink writes it to
 * stderr, an embedding application passes its own. A NULL logger discards everything, so a
 * library used without one stays silent.
 *
 * Callers must never pass a secret: there is no redaction here, by design, so that the rule
 * stays at the call sites where a reviewer can see it.
 */
#ifndef CF_CORE_LOG_H
#define CF_CORE_LOG_H

#include <stddef.h>

typedef enum cf_log_level { CF_LOG_DEBUG, CF_LOG_INFO, CF_LOG_WARN, CF_LOG_ERROR } cf_log_level;

/* Receives one whole line, newline included; called from any thread that logs, so it must be
 * safe to call from several threads at once. */
typedef void (*cf_log_sink_fn)(void *ctx, cf_log_level level, const char *line, size_t len);

typedef struct cf_logger {
    cf_log_level min; /* lines below this level are not formatted at all */
    cf_log_sink_fn sink;
    void *sink_ctx;
} cf_logger;

/* A logger writing lines of level min and above to stderr. */
cf_logger cf_logger_stderr(cf_log_level min);
/* "debug", "info", "warn", "error" → level; -1 when name is none of them. */
int cf_log_level_parse(const char *name);

/* msg is free text; the varargs are NULL-terminated key, value string pairs. lg may be NULL. */
void cf_log(const cf_logger *lg, cf_log_level level, const char *msg, ...) __attribute__((sentinel));

#endif
