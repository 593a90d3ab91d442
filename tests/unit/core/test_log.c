/*
 * test_log.c - the log (core/log.c): a replaced sink receives whole logfmt lines, one call per
 * line; levels below the logger's minimum are dropped; a NULL logger or sink is silent; and
 * whatever a value or key holds (spaces, quotes, '=', line breaks, control bytes, a value larger
 * than a line), it cannot start a new line or forge a field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/log.h"

enum { MAX_LINES = 8 };

typedef struct captured {
    int calls;
    cf_log_level level[MAX_LINES];
    char *line[MAX_LINES];
} captured;

static void capture(void *ctx, cf_log_level level, const char *line, size_t len)
{
    captured *c = ctx;
    if (c->calls < MAX_LINES) {
        c->level[c->calls] = level;
        c->line[c->calls] = strndup(line, len);
        assert_int_equal(strlen(c->line[c->calls]), len); /* no NUL inside */
    }
    c->calls++;
}

static void release(captured *c)
{
    for (int i = 0; i < c->calls && i < MAX_LINES; i++)
        free(c->line[i]);
    memset(c, 0, sizeof *c);
}

static cf_logger logger_to(captured *c, cf_log_level min)
{
    return (cf_logger){.min = min, .sink = capture, .sink_ctx = c};
}

/* Exactly one '\n', at the end. */
static void assert_one_line(const char *line)
{
    size_t n = strlen(line);
    assert_true(n > 0);
    assert_int_equal(line[n - 1], '\n');
    assert_null(memchr(line, '\n', n - 1));
    assert_null(memchr(line, '\r', n));
}

static void test_sink_receives_whole_lines(void **state)
{
    (void)state;
    captured c = {0};
    cf_logger lg = logger_to(&c, CF_LOG_DEBUG);
    cf_log(&lg, CF_LOG_INFO, "started", "port", "9000", "region", "us-east-1", NULL);
    cf_log(&lg, CF_LOG_ERROR, "failed", NULL);
    assert_int_equal(c.calls, 2);
    assert_one_line(c.line[0]);
    assert_one_line(c.line[1]);
    assert_int_equal(c.level[0], CF_LOG_INFO);
    assert_int_equal(c.level[1], CF_LOG_ERROR);
    assert_int_equal(strncmp(c.line[0], "time=", 5), 0);
    assert_non_null(strstr(c.line[0], " level=info msg=started port=9000 region=us-east-1\n"));
    assert_non_null(strstr(c.line[1], " level=error msg=failed\n"));
    release(&c);
}

static void test_levels_below_the_minimum_are_dropped(void **state)
{
    (void)state;
    captured c = {0};
    cf_logger lg = logger_to(&c, CF_LOG_WARN);
    cf_log(&lg, CF_LOG_DEBUG, "d", NULL);
    cf_log(&lg, CF_LOG_INFO, "i", NULL);
    cf_log(&lg, CF_LOG_WARN, "w", NULL);
    cf_log(&lg, CF_LOG_ERROR, "e", NULL);
    assert_int_equal(c.calls, 2);
    assert_non_null(strstr(c.line[0], " level=warn msg=w\n"));
    assert_non_null(strstr(c.line[1], " level=error msg=e\n"));
    release(&c);
    assert_int_equal(cf_log_level_parse("debug"), CF_LOG_DEBUG);
    assert_int_equal(cf_log_level_parse("error"), CF_LOG_ERROR);
    assert_int_equal(cf_log_level_parse("verbose"), -1);
    assert_int_equal(cf_log_level_parse("INFO"), -1);
}

static void test_null_logger_and_null_sink_are_silent(void **state)
{
    (void)state;
    cf_log(NULL, CF_LOG_ERROR, "nobody hears this", "k", "v", NULL);
    cf_logger no_sink = {.min = CF_LOG_DEBUG};
    cf_log(&no_sink, CF_LOG_ERROR, "nor this", NULL);
}

static void test_values_are_quoted_and_escaped(void **state)
{
    (void)state;
    captured c = {0};
    cf_logger lg = logger_to(&c, CF_LOG_DEBUG);
    cf_log(&lg, CF_LOG_INFO, "a message", "path", "/b/my key", "q", "say \"hi\"", "eq", "a=b", "bs", "c:\\d",
           "empty", "", "null", NULL, NULL);
    assert_int_equal(c.calls, 1);
    assert_one_line(c.line[0]);
    assert_non_null(strstr(c.line[0], " msg=\"a message\" path=\"/b/my key\" q=\"say \\\"hi\\\"\" eq=\"a=b\" "
                                      "bs=\"c:\\\\d\" empty=\"\" null=\"\"\n"));
    release(&c);
}

/* A value or key carrying "\n" (an object key, a header an attacker sent) must not start a line
 * that a log reader would take for the server's own. */
static void test_line_breaks_cannot_forge_lines(void **state)
{
    (void)state;
    captured c = {0};
    cf_logger lg = logger_to(&c, CF_LOG_DEBUG);
    const char *forged = "x\ntime=2026-01-01T00:00:00.000Z level=error msg=forged\r\n";
    cf_log(&lg, CF_LOG_INFO, forged, "key", forged, NULL);
    cf_log(&lg, CF_LOG_INFO, "k", "evil\nkey=1 level", "v", "v", "tab\there\x01", NULL);
    assert_int_equal(c.calls, 2);
    assert_one_line(c.line[0]);
    assert_one_line(c.line[1]);
    assert_non_null(strstr(c.line[0], "msg=\"x\\x0atime="));
    assert_non_null(strstr(c.line[0], "forged\\x0d\\x0a\""));
    /* The key's break, space and '=' cannot make fields of their own. */
    assert_non_null(strstr(c.line[1], " evil_key_1_level=v "));
    assert_non_null(strstr(c.line[1], "v=\"tab\\x09here\\x01\"\n"));
    release(&c);
}

/* A carriage return or a terminal escape alone (no space, no newline) would reach the terminal
 * or log viewer raw and could overwrite what it shows: every control byte forces quoting. */
static void test_control_bytes_alone_are_escaped(void **state)
{
    (void)state;
    captured c = {0};
    cf_logger lg = logger_to(&c, CF_LOG_DEBUG);
    cf_log(&lg, CF_LOG_INFO, "m", "cr", "ok\rforged", "esc", "\x1b[2Jclear", "del", "a\x7f", "plain", "abc",
           NULL);
    assert_int_equal(c.calls, 1);
    assert_null(strchr(c.line[0], '\r'));
    assert_null(strchr(c.line[0], '\x1b'));
    assert_null(strchr(c.line[0], '\x7f'));
    assert_non_null(
        strstr(c.line[0], " cr=\"ok\\x0dforged\" esc=\"\\x1b[2Jclear\" del=\"a\\x7f\" plain=abc\n"));
    release(&c);
}

/* A value longer than a line is cut, and the line still ends with its newline. */
static void test_a_huge_value_is_cut_but_ends_the_line(void **state)
{
    (void)state;
    enum { BIG = 20000 };
    char *big = malloc(BIG + 1);
    assert_non_null(big);
    memset(big, 'a', BIG);
    big[BIG] = '\0';
    captured c = {0};
    cf_logger lg = logger_to(&c, CF_LOG_DEBUG);
    cf_log(&lg, CF_LOG_WARN, "big", "v", big, NULL);
    cf_log(&lg, CF_LOG_WARN, "after", NULL);
    assert_int_equal(c.calls, 2);
    assert_one_line(c.line[0]);
    assert_true(strlen(c.line[0]) < BIG);
    assert_non_null(strstr(c.line[1], "msg=after\n"));
    release(&c);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sink_receives_whole_lines),
        cmocka_unit_test(test_levels_below_the_minimum_are_dropped),
        cmocka_unit_test(test_null_logger_and_null_sink_are_silent),
        cmocka_unit_test(test_values_are_quoted_and_escaped),
        cmocka_unit_test(test_control_bytes_alone_are_escaped),
        cmocka_unit_test(test_line_breaks_cannot_forge_lines),
        cmocka_unit_test(test_a_huge_value_is_cut_but_ends_the_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
