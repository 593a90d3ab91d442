/*
 * log.h - one structured line per event on stderr, in logfmt (key=value, values quoted when
 * they hold spaces or quotes), so that both people and log shippers read it.
 *
 * Callers must never pass a secret: there is no redaction here, by design, so that the rule
 * stays at the call sites where a reviewer can see it.
 */
#ifndef CF_CORE_LOG_H
#define CF_CORE_LOG_H

typedef enum cf_log_level { CF_LOG_DEBUG, CF_LOG_INFO, CF_LOG_WARN, CF_LOG_ERROR } cf_log_level;

void cf_log_set_level(cf_log_level min);
/* msg is free text; the varargs are NULL-terminated key, value string pairs. */
void cf_log(cf_log_level level, const char *msg, ...) __attribute__((sentinel));

#endif
