/*
 * test_framing.c - cf_framing_verdict against RFC 9112: each head as libmicrohttpd hands its
 * fields over (a folded line glued to the name, whitespace before a colon kept in the name), and
 * the answer the server must give: accept, 400 InvalidRequest, or 501 NotImplemented naming
 * Transfer-Encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/framing.h"

typedef struct field {
    const char *name, *value;
} field;

typedef struct framing_case {
    const char *what;
    int http10;
    field fields[4];
    int want; /* 0: accepted, else the HTTP status */
} framing_case;

#define HOST                                                                                                 \
    {                                                                                                        \
        "Host", "127.0.0.1:9000"                                                                             \
    }

/* clang-format off */
static const framing_case cases[] = {
    {"one Content-Length", 0, {HOST, {"Content-Length", "9"}}, 0},
    {"chunked alone", 0, {HOST, {"Transfer-Encoding", "chunked"}}, 0},
    {"chunked in capitals", 0, {HOST, {"transfer-encoding", "CHUNKED"}}, 0},
    {"no body", 0, {HOST, {"x-amz-meta-a", "tab\there"}}, 0},
    {"HTTP/1.0 without Host", 1, {{"Content-Length", "0"}}, 0},
    {"two Content-Length", 0, {HOST, {"Content-Length", "3"}, {"content-length", "5"}}, 400},
    {"two equal Content-Length", 0, {HOST, {"Content-Length", "3"}, {"Content-Length", "3"}}, 400},
    {"Content-Length and chunked", 0, {HOST, {"Content-Length", "3"}, {"Transfer-Encoding", "chunked"}},
     400},
    {"two Transfer-Encoding", 0, {HOST, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}},
     400},
    {"chunked in HTTP/1.0", 1, {{"Transfer-Encoding", "chunked"}}, 400},
    {"chunked not last", 0, {HOST, {"Transfer-Encoding", "chunked, gzip"}}, 400},
    {"unknown coding alone", 0, {HOST, {"Transfer-Encoding", "gzip"}}, 400},
    {"padded chunked", 0, {HOST, {"Transfer-Encoding", "chunked "}}, 400},
    {"chunked lookalike", 0, {HOST, {"Transfer-Encoding", "xchunked"}}, 400},
    {"gzip then chunked", 0, {HOST, {"Transfer-Encoding", "gzip, chunked"}}, 501},
    {"gzip then padded chunked", 0, {HOST, {"Transfer-Encoding", "gzip,\tchunked "}}, 501},
    {"space before colon", 0, {HOST, {"Content-Length ", "3"}}, 400},
    {"empty name", 0, {HOST, {"", "3"}}, 400},
    {"folded Content-Length", 0, {HOST, {"Content-Length5", "3"}}, 400},
    {"folded Transfer-Encoding", 0, {HOST, {"Transfer-Encodingchunked", ""}}, 400},
    {"bare CR in a value", 0, {HOST, {"X-Note", "a\rTransfer-Encoding: chunked"}}, 400},
    {"DEL in a value", 0, {HOST, {"X-Note", "a\x7f"}}, 400},
    {"two Host", 0, {HOST, {"host", "elsewhere"}}, 400},
    {"HTTP/1.1 without Host", 0, {{"Content-Length", "0"}}, 400},
};
/* clang-format on */

/* The HTTP status the verdict gives, its message in err. */
static int verdict(const framing_case *c, const char **header, cf_err *err)
{
    cf_framing_scan s = {0};
    for (size_t i = 0; i < 4 && c->fields[i].name; i++)
        cf_framing_scan_field(&s, c->fields[i].name, strlen(c->fields[i].name), c->fields[i].value,
                              strlen(c->fields[i].value));
    int rc = cf_framing_verdict(&s, c->http10, header, err);
    if (rc && rc != err->code)
        fail_msg("%s: returned %d, err says %d", c->what, rc, err->code);
    return cf_framing_status(rc);
}

static void test_framing_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *header = "unset";
        cf_err err = {0};
        int e = verdict(&cases[i], &header, &err);
        if (e != cases[i].want)
            fail_msg("%s: %d (%s), want %d", cases[i].what, e, err.msg, cases[i].want);
        if (e == 501)
            assert_string_equal(header, "Transfer-Encoding");
        else
            assert_null(header);
        if (e != 0)
            assert_true(err.msg[0] != '\0');
    }
}

/* A name is quoted in the message cut at 64 bytes, and read only within its length. */
static void test_message_quotes_a_bounded_name(void **state)
{
    (void)state;
    char name[200];
    memset(name, 'x', sizeof name);
    memcpy(name, "Content-Length", 14);
    cf_framing_scan s = {0};
    cf_framing_scan_field(&s, "Host", 4, "h", 1);
    cf_framing_scan_field(&s, name, sizeof name, "3", 1); /* not NUL-terminated */
    const char *header;
    cf_err err;
    assert_int_equal(cf_framing_verdict(&s, 0, &header, &err), CF_EINVAL);
    const char *q = strchr(err.msg, '\'');
    assert_non_null(q);
    assert_int_equal(strcspn(q + 1, "'"), 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing_cases),
        cmocka_unit_test(test_message_quotes_a_bounded_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
