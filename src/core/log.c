#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static void write_stderr(void *ctx, cf_log_level level, const char *line, size_t len)
{
    /* One write per line keeps lines whole when threads log at once. */
    fwrite(line, 1, len, stderr);
}

cf_logger cf_logger_stderr(cf_log_level min)
{
    return (cf_logger){.min = min, .sink = write_stderr};
}

int cf_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

/* A value is written bare only when it can neither split the field (space, '=', quote) nor act
 * on the terminal or line that shows it: any control byte (CR, ESC, ...) or DEL forces quoting,
 * where it is written as \xNN. */
static int needs_quotes(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return 1;
    return 0;
}

static void put_value(cf_buf *b, const char *v)
{
    if (!v)
        v = "";
    if (*v && !needs_quotes(v)) {
        cf_buf_puts(b, v);
        return;
    }
    cf_buf_putc(b, '"');
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            cf_buf_putc(b, '\\');
            cf_buf_putc(b, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            cf_buf_printf(b, "\\x%02x", c);
        } else {
            cf_buf_putc(b, (char)c);
        }
    }
    cf_buf_putc(b, '"');
}

/* Keys come from our code, but a key is never quoted, so one holding a space, '=' or a line
 * break would forge fields or lines: anything but [A-Za-z0-9_.-] becomes '_'. */
static void put_key(cf_buf *b, const char *k)
{
    for (const char *p = k; *p; p++) {
        char c = *p;
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-';
        cf_buf_putc(b, plain ? c : '_');
    }
}

void cf_log(const cf_logger *lg, cf_log_level level, const char *msg, ...)
{
    if (!lg || !lg->sink || level < lg->min)
        return;
    char when[64];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    cf_buf b;
    cf_buf_init(&b, 8192);
    /* Plain appends, not printf: this runs once per request (the access log line). */
    cf_buf_puts(&b, "time=");
    cf_buf_puts(&b, when);
    cf_buf_puts(&b, " level=");
    cf_buf_puts(&b, level_names[level]);
    cf_buf_puts(&b, " msg=");
    put_value(&b, msg);
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        cf_buf_putc(&b, ' ');
        put_key(&b, k);
        cf_buf_putc(&b, '=');
        put_value(&b, v);
    }
    va_end(ap);
    /* A line cut at the buffer's maximum still ends with its newline, so the next one starts a
     * line of its own. */
    if (cf_buf_putc(&b, '\n') != 0 && b.len)
        b.data[b.len - 1] = '\n';
    if (b.data)
        lg->sink(lg->sink_ctx, level, b.data, b.len);
    cf_buf_cleanup(&b);
}
