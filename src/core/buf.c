#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

void cf_buf_init(cf_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->error = 0;
}

void cf_buf_cleanup(cf_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->error = 0;
}

void cf_buf_reset(cf_buf *b)
{
    b->len = 0;
    b->error = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int failed(cf_buf *b, int code)
{
    if (!b->error)
        b->error = code;
    return code;
}

int cf_buf_error(const cf_buf *b)
{
    return b->error;
}

int cf_buf_reserve(cf_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return failed(b, CF_ETOOBIG);
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->data, cap);
    if (!p)
        return failed(b, CF_ENOMEM);
    b->data = p;
    b->cap = cap;
    return 0;
}

int cf_buf_append(cf_buf *b, const void *p, size_t n)
{
    int rc = cf_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cf_buf_puts(cf_buf *b, const char *s)
{
    return cf_buf_append(b, s, strlen(s));
}

int cf_buf_putc(cf_buf *b, char c)
{
    return cf_buf_append(b, &c, 1);
}

int cf_buf_vprintf(cf_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return failed(b, CF_EINVAL);
    int rc = cf_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int cf_buf_printf(cf_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cf_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *cf_buf_steal(cf_buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    b->error = 0;
    return p;
}
