/*
 * buf.h - growable byte buffer with a hard maximum.
 *
 * Every buffer states at creation how large it may grow (docs/ARCHITECTURE.md, "Style"); an
 * append past the maximum fails with CF_ETOOBIG and leaves the buffer as it was. data is always
 * NUL-terminated (one byte beyond len), so text built here can be used as a C string.
 */
#ifndef CF_CORE_BUF_H
#define CF_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct cf_buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* largest len allowed */
} cf_buf;

void cf_buf_init(cf_buf *b, size_t max);
void cf_buf_cleanup(cf_buf *b); /* frees data; the buffer may be reused after init */
void cf_buf_reset(cf_buf *b);   /* len = 0, keeps the allocation */
int cf_buf_reserve(cf_buf *b, size_t extra);
int cf_buf_append(cf_buf *b, const void *p, size_t n);
int cf_buf_puts(cf_buf *b, const char *s);
int cf_buf_putc(cf_buf *b, char c);
int cf_buf_printf(cf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cf_buf_vprintf(cf_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hands the bytes to the caller (caller frees) and leaves b empty. */
char *cf_buf_steal(cf_buf *b, size_t *len);

#endif
