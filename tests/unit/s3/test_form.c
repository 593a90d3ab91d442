/* test_form.c - the streaming multipart/form-data parser: the same events however the body is cut,
 * delimiters split across pieces, and malformed bodies refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "s3/form.h"

typedef struct trace {
    cf_buf out;
    int stop_at_part; /* 1-based; 0 never */
    int parts;
} trace;

static int on_part(void *ctx, const char *name, const char *filename, const char *type)
{
    trace *t = ctx;
    cf_buf_printf(&t->out, "[%s|%s|%s]", name, filename ? filename : "-", type ? type : "-");
    return ++t->parts == t->stop_at_part ? CF_EDENIED : 0;
}

static int on_data(void *ctx, const char *data, size_t n)
{
    trace *t = ctx;
    cf_buf_append(&t->out, data, n);
    return 0;
}

static int on_end(void *ctx)
{
    trace *t = ctx;
    cf_buf_puts(&t->out, "$");
    return 0;
}

static const cf_form_events events = {on_part, on_data, on_end};

static const char body[] = "preamble to ignore\r\n"
                           "--AaB03x\r\n"
                           "Content-Disposition: form-data; name=\"key\"\r\n"
                           "\r\n"
                           "user/${filename}\r\n"
                           "--AaB03x  \r\n" /* transport padding */
                           "content-disposition: form-data; name=\"x-amz-meta-q\"\r\n"
                           "\r\n"
                           "a\r\n--AaB03 is not the boundary\r\n"
                           "--AaB03x\r\n"
                           "Content-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".png\"\r\n"
                           "Content-Type: image/png\r\n"
                           "\r\n"
                           "\r\n\r\n--\r\n-\x00binary\r\n"
                           "--AaB03x--\r\n"
                           "epilogue to ignore";

static const char expected[] = "[key|-|-]user/${filename}$"
                               "[x-amz-meta-q|-|-]a\r\n--AaB03 is not the boundary$"
                               "[file|a \"b\".png|image/png]\r\n\r\n--\r\n-\x00binary$";

static int run(const char *data, size_t n, size_t piece, trace *t, cf_err *err)
{
    cf_buf_init(&t->out, 8 << 20);
    cf_form *f = cf_form_new("AaB03x", &events, t);
    assert_non_null(f);
    int rc = 0;
    for (size_t off = 0; off < n && !rc; off += piece)
        rc = cf_form_feed(f, data + off, n - off < piece ? n - off : piece, err);
    if (!rc)
        rc = cf_form_finish(f, err);
    cf_form_free(f);
    return rc;
}

static void test_same_events_for_every_piece_size(void **state)
{
    (void)state;
    size_t n = sizeof body - 1;
    for (size_t piece = 1; piece <= n; piece++) {
        trace t = {0};
        cf_err err;
        assert_int_equal(run(body, n, piece, &t, &err), 0);
        assert_int_equal(t.out.len, sizeof expected - 1);
        if (memcmp(t.out.data, expected, sizeof expected - 1) != 0)
            fail_msg("piece %zu: %s", piece, t.out.data);
        cf_buf_cleanup(&t.out);
    }
}

static void test_large_file_streams_through_a_small_window(void **state)
{
    (void)state;
    size_t size = 5u << 20;
    cf_buf b;
    cf_buf_init(&b, size + 4096);
    cf_buf_puts(&b, "--AaB03x\r\nContent-Disposition: form-data; name=\"file\"; filename=x\r\n\r\n");
    for (size_t i = 0; i < size; i++)
        cf_buf_putc(&b, (char)("\r\n-A"[i % 4]));
    cf_buf_puts(&b, "\r\n--AaB03x--");
    trace t = {0};
    cf_err err;
    assert_int_equal(run(b.data, b.len, 100000, &t, &err), 0);
    assert_int_equal(t.out.len, strlen("[file|x|-]") + size + 1);
    cf_buf_cleanup(&t.out);
    cf_buf_cleanup(&b);
}

static void test_malformed_bodies(void **state)
{
    (void)state;
    const char *cases[] = {
        "--AaB03x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv", /* never closed */
        "--AaB03x\r\n\r\nv\r\n--AaB03x--",                                 /* no headers */
        "--AaB03x\r\nContent-Type: text/plain\r\n\r\nv\r\n--AaB03x--",     /* no disposition */
        "--AaB03x\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n--AaB03x--",
        "--AaB03x\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nv\r\n--AaB03x--",
        "--AaB03x\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--AaB03x--",
        "--AaB03xjunk\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--AaB03x--",
        "--AaB03x\r\nContent-Disposition: form-data; name=a\r\nContent-Disposition: form-data; "
        "name=b\r\n\r\nv\r\n--AaB03x--",
        "no delimiter at all",
        "",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        trace t = {0};
        cf_err err = {0};
        int rc = run(cases[i], strlen(cases[i]), 7, &t, &err);
        if (rc != CF_EINVAL)
            fail_msg("case %zu accepted (rc %d): %s", i, rc, t.out.data ? t.out.data : "");
        cf_buf_cleanup(&t.out);
    }
}

static void test_headers_are_bounded(void **state)
{
    (void)state;
    cf_buf b;
    cf_buf_init(&b, 1 << 20);
    cf_buf_puts(&b, "--AaB03x\r\nContent-Disposition: form-data; name=a\r\nX-Pad: ");
    for (int i = 0; i < CF_FORM_MAX_HEADERS; i++)
        cf_buf_putc(&b, 'p');
    cf_buf_puts(&b, "\r\n\r\nv\r\n--AaB03x--");
    trace t = {0};
    cf_err err;
    assert_int_equal(run(b.data, b.len, 4096, &t, &err), CF_EINVAL);
    assert_non_null(strstr(err.msg, "8 KiB"));
    cf_buf_cleanup(&t.out);
    cf_buf_cleanup(&b);
}

static void test_a_consumer_stops_the_parser(void **state)
{
    (void)state;
    trace t = {.stop_at_part = 2};
    cf_err err;
    assert_int_equal(run(body, sizeof body - 1, 5, &t, &err), CF_EDENIED);
    assert_null(strstr(t.out.data, "[file"));
    cf_buf_cleanup(&t.out);
}

static void test_boundary_from_content_type(void **state)
{
    (void)state;
    char b[CF_FORM_MAX_BOUNDARY + 1];
    assert_int_equal(cf_form_boundary("multipart/form-data; boundary=----WebKitFormBoundaryX1", b), 0);
    assert_string_equal(b, "----WebKitFormBoundaryX1");
    assert_int_equal(cf_form_boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"", b), 0);
    assert_string_equal(b, "a b");
    assert_int_equal(cf_form_boundary("multipart/form-data", b), CF_EINVAL);
    assert_int_equal(cf_form_boundary("multipart/form-data; boundary=", b), CF_EINVAL);
    assert_int_equal(cf_form_boundary("multipart/mixed; boundary=x", b), CF_EINVAL);
    assert_int_equal(cf_form_boundary("application/x-www-form-urlencoded", b), CF_EINVAL);
    assert_int_equal(cf_form_boundary(NULL, b), CF_EINVAL);
    char longer[128];
    snprintf(longer, sizeof longer, "multipart/form-data; boundary=%071d", 0);
    assert_int_equal(cf_form_boundary(longer, b), CF_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_events_for_every_piece_size),
        cmocka_unit_test(test_large_file_streams_through_a_small_window),
        cmocka_unit_test(test_malformed_bodies),
        cmocka_unit_test(test_headers_are_bounded),
        cmocka_unit_test(test_a_consumer_stops_the_parser),
        cmocka_unit_test(test_boundary_from_content_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
