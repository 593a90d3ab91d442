/* fuzz_form.c - a browser form upload's body is untrusted: parse anything, cut anywhere. The
 * events must be the same however the body is cut, and a part's data never holds the delimiter. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "s3/form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BOUNDARY "xYz"

static int on_part(void *ctx, const char *name, const char *filename, const char *type)
{
    cf_buf *out = ctx;
    if (!name[0])
        abort();
    cf_buf_printf(out, "<%s|%s|%s>", name, filename ? filename : "", type ? type : "");
    return 0;
}

static int on_data(void *ctx, const char *data, size_t n)
{
    cf_buf *out = ctx;
    cf_buf_append(out, data, n);
    return 0;
}

static int on_end(void *ctx)
{
    return cf_buf_puts(ctx, "$") ? 0 : 0;
}

static const cf_form_events events = {on_part, on_data, on_end};

static int run(const uint8_t *data, size_t size, size_t piece, cf_buf *out)
{
    cf_buf_init(out, (size_t)4 << 20);
    cf_form *f = cf_form_new(BOUNDARY, &events, out);
    if (!f)
        abort();
    cf_err err;
    int rc = 0;
    for (size_t off = 0; off < size && !rc; off += piece)
        rc = cf_form_feed(f, (const char *)data + off, size - off < piece ? size - off : piece, &err);
    if (!rc)
        rc = cf_form_finish(f, &err);
    cf_form_free(f);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_buf whole, cut;
    int a = run(data, size, size ? size : 1, &whole);
    int b = run(data, size, 1 + (size % 7), &cut);
    if (a != b || whole.len != cut.len || (whole.len && memcmp(whole.data, cut.data, whole.len) != 0))
        abort();
    if (whole.len && memmem(whole.data, whole.len, "\r\n--" BOUNDARY, 4 + strlen(BOUNDARY)))
        abort();
    cf_buf_cleanup(&whole);
    cf_buf_cleanup(&cut);
    return 0;
}
