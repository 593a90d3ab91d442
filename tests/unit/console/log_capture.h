/* log_capture.h - a cf_logger sink that keeps the lines, so that tests can check what was
 * warned about and that no secret was written. */
#ifndef CF_TEST_LOG_CAPTURE_H
#define CF_TEST_LOG_CAPTURE_H

#include <string.h>

#include "core/log.h"

typedef struct captured {
    char lines[2048];
} captured;

static inline void capture(void *ctx, cf_log_level level, const char *line, size_t len)
{
    (void)level;
    captured *c = ctx;
    size_t have = strlen(c->lines), room = sizeof c->lines - have - 1;
    memcpy(c->lines + have, line, len < room ? len : room);
    c->lines[have + (len < room ? len : room)] = '\0';
}

#endif
