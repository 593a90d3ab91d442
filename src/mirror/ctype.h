/*
 * ctype.h - the content type of an object from its first bytes and its name.
 *
 * The bytes decide what they can prove: a known binary signature (PNG, JPEG, GIF, WebP, AVIF, PDF,
 * WOFF, WOFF2, WebAssembly) is recognised here, anything else binary by libmagic, so that a .jpg
 * holding a PNG is served as image/png. Text cannot prove what it is (CSS, JavaScript and JSON are
 * all plain text to the bytes), so for text the name decides through a table of extensions, and
 * libmagic's guess (HTML, SVG, XML, JSON, CSV) is used only for a name the table does not know.
 * Bytes nobody recognises take the extension's type, or application/octet-stream. The whole rule
 * and the table are in docs/MIRROR.md, "Content types".
 *
 * libmagic runs on the buffer only (magic_buffer: never a file, never past n bytes), with the
 * checks that decompress, fork, or parse ELF and OLE (CDF) containers turned off: they cost time
 * and parse untrusted structure for nothing a web server serves. A libmagic cookie must not be used
 * by two threads at once, hence one cf_ctype per thread.
 */
#ifndef CF_MIRROR_CTYPE_H
#define CF_MIRROR_CTYPE_H

#include <stddef.h>

#include "core/err.h"

/* How many bytes of an object cf_ctype_detect looks at: callers read this many (fewer for a shorter
 * object) and give them all. */
#define CF_CTYPE_HEAD 4096
/* Enough for every type cf_ctype_detect writes, parameter included. */
#define CF_CTYPE_MAX 128

typedef struct cf_ctype cf_ctype; /* a libmagic cookie + table; one per thread */

/* Loads libmagic's database (the libmagic-mgc package, or the file the MAGIC environment variable
 * names): CF_EIO when it cannot be read (an installation problem, not a missing object). *out is
 * the caller's to cf_ctype_close. */
int cf_ctype_open(cf_ctype **out, cf_err *err);
/* NULL is a no-op. */
void cf_ctype_close(cf_ctype *c);
/* The content type of an object named key whose first n bytes are head (n may be 0; head is not
 * read beyond n). Never fails: unknown → "application/octet-stream". out gets e.g. "image/png" or
 * "text/css; charset=utf-8" (charset only for text/… types whose bytes are valid UTF-8); cap of
 * CF_CTYPE_MAX always suffices, a smaller one truncates. */
void cf_ctype_detect(cf_ctype *c, const char *key, const void *head, size_t n, char *out, size_t cap);
/* Whether a stored type is generic or wrong enough to fix (1) or is to be left alone (0), given
 * the type cf_ctype_detect gave. Parameters (charset) and case are ignored, and aliases are one
 * type (application/javascript is text/javascript). A fix is due when the stored type is empty,
 * application/octet-stream or binary/octet-stream; when it is text/plain and something more
 * precise was detected (browsers refuse a stylesheet or a module script served as text/plain);
 * when its major part differs from the detected one; or when CSS or JavaScript was detected and
 * the stored type is another one (the two types browsers enforce). A detection of
 * application/octet-stream never asks for a fix: it knows nothing better. */
int cf_ctype_needs_fix(const char *stored, const char *detected);

#endif
