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

#include "server/framing.h"

typedef struct field {
    const char *name, *value;
} field;

typedef struct framing_case {
    const char *what;
    int http10;
    field fields[4];
    cf_s3_error want;
} framing_case;

#define HOST                                                                                                 \
    {                                                                                                        \
        "Host", "127.0.0.1:9000"                                                                             \
    }

/* clang-format off */
static const framing_case cases[] = {
    {"one Content-Length", 0, {HOST, {"Content-Length", "9"}}, CF_S3_OK},
    {"chunked alone", 0, {HOST, {"Transfer-Encoding", "chunked"}}, CF_S3_OK},
    {"chunked in capitals", 0, {HOST, {"transfer-encoding", "CHUNKED"}}, CF_S3_OK},
    {"no body", 0, {HOST, {"x-amz-meta-a", "tab\there"}}, CF_S3_OK},
    {"HTTP/1.0 without Host", 1, {{"Content-Length", "0"}}, CF_S3_OK},
    {"two Content-Length", 0, {HOST, {"Content-Length", "3"}, {"content-length", "5"}}, CF_S3_InvalidRequest},
    {"two equal Content-Length", 0, {HOST, {"Content-Length", "3"}, {"Content-Length", "3"}}, CF_S3_InvalidRequest},
    {"Content-Length and chunked", 0, {HOST, {"Content-Length", "3"}, {"Transfer-Encoding", "chunked"}},
     CF_S3_InvalidRequest},
    {"two Transfer-Encoding", 0, {HOST, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}},
     CF_S3_InvalidRequest},
    {"chunked in HTTP/1.0", 1, {{"Transfer-Encoding", "chunked"}}, CF_S3_InvalidRequest},
    {"chunked not last", 0, {HOST, {"Transfer-Encoding", "chunked, gzip"}}, CF_S3_InvalidRequest},
    {"unknown coding alone", 0, {HOST, {"Transfer-Encoding", "gzip"}}, CF_S3_InvalidRequest},
    {"padded chunked", 0, {HOST, {"Transfer-Encoding", "chunked "}}, CF_S3_InvalidRequest},
    {"chunked lookalike", 0, {HOST, {"Transfer-Encoding", "xchunked"}}, CF_S3_InvalidRequest},
    {"gzip then chunked", 0, {HOST, {"Transfer-Encoding", "gzip, chunked"}}, CF_S3_NotImplemented},
    {"gzip then padded chunked", 0, {HOST, {"Transfer-Encoding", "gzip,\tchunked "}}, CF_S3_NotImplemented},
    {"space before colon", 0, {HOST, {"Content-Length ", "3"}}, CF_S3_InvalidRequest},
    {"empty name", 0, {HOST, {"", "3"}}, CF_S3_InvalidRequest},
    {"folded Content-Length", 0, {HOST, {"Content-Length5", "3"}}, CF_S3_InvalidRequest},
    {"folded Transfer-Encoding", 0, {HOST, {"Transfer-Encodingchunked", ""}}, CF_S3_InvalidRequest},
    {"bare CR in a value", 0, {HOST, {"X-Note", "a\rTransfer-Encoding: chunked"}}, CF_S3_InvalidRequest},
    {"DEL in a value", 0, {HOST, {"X-Note", "a\x7f"}}, CF_S3_InvalidRequest},
    {"two Host", 0, {HOST, {"host", "elsewhere"}}, CF_S3_InvalidRequest},
    {"HTTP/1.1 without Host", 0, {{"Content-Length", "0"}}, CF_S3_InvalidRequest},
};
/* clang-format on */

static cf_s3_error verdict(const framing_case *c, const char **header, char *msg, size_t msglen)
{
    cf_framing_scan s = {0};
    for (size_t i = 0; i < 4 && c->fields[i].name; i++)
        cf_framing_scan_field(&s, c->fields[i].name, strlen(c->fields[i].name), c->fields[i].value,
                              strlen(c->fields[i].value));
    return cf_framing_verdict(&s, c->http10, header, msg, msglen);
}

static void test_framing_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *header = "unset";
        char msg[256] = "";
        cf_s3_error e = verdict(&cases[i], &header, msg, sizeof msg);
        if (e != cases[i].want)
            fail_msg("%s: %d (%s), want %d", cases[i].what, e, msg, cases[i].want);
        if (e == CF_S3_NotImplemented)
            assert_string_equal(header, "Transfer-Encoding");
        else
            assert_null(header);
        if (e != CF_S3_OK)
            assert_true(msg[0] != '\0');
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
    char msg[256];
    assert_int_equal(cf_framing_verdict(&s, 0, &header, msg, sizeof msg), CF_S3_InvalidRequest);
    const char *q = strchr(msg, '\'');
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
