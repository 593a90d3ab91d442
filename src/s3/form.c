/*
 * form.c - multipart/form-data as a state machine over a small window.
 *
 * The stream is read as if it began with CRLF, so that the first delimiter has the same shape
 * ("\r\n--BOUNDARY") as every later one. While a part's data streams, all but the last
 * (delimiter length - 1) bytes can be passed on at once: a delimiter cannot begin earlier.
 */
#include "s3/form.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"

#define FEED_PIECE (64 << 10)

typedef enum form_state {
    S_PREAMBLE,   /* before the first delimiter: ignored */
    S_DELIM_TAIL, /* after a delimiter: "--" ends the form, else padding and CRLF */
    S_HEADERS,
    S_DATA,
    S_EPILOGUE, /* after the closing delimiter: ignored */
    S_FAILED,
} form_state;

struct cf_form {
    const cf_form_events *ev;
    void *ctx;
    char delim[CF_FORM_MAX_BOUNDARY + 5]; /* "\r\n--" boundary */
    size_t dlen;
    form_state state;
    cf_buf window;
};

int cf_form_boundary(const char *content_type, char out[CF_FORM_MAX_BOUNDARY + 1])
{
    static const char type[] = "multipart/form-data";
    if (!content_type || strncasecmp(content_type, type, sizeof type - 1) != 0)
        return CF_EINVAL;
    const char *p = content_type + sizeof type - 1;
    while (*p) {
        while (*p == ';' || *p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "boundary=", 9) == 0) {
            p += 9;
            size_t n;
            if (*p == '"') {
                const char *end = strchr(++p, '"');
                if (!end)
                    return CF_EINVAL;
                n = (size_t)(end - p);
            } else {
                n = strcspn(p, "; \t");
            }
            if (n == 0 || n > CF_FORM_MAX_BOUNDARY)
                return CF_EINVAL;
            for (size_t i = 0; i < n; i++)
                if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e)
                    return CF_EINVAL;
            memcpy(out, p, n);
            out[n] = '\0';
            return 0;
        }
        p += strcspn(p, ";");
    }
    return CF_EINVAL;
}

cf_form *cf_form_new(const char *boundary, const cf_form_events *ev, void *ctx)
{
    size_t bl = strlen(boundary);
    if (bl == 0 || bl > CF_FORM_MAX_BOUNDARY)
        return NULL;
    cf_form *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->ev = ev;
    f->ctx = ctx;
    memcpy(f->delim, "\r\n--", 4);
    memcpy(f->delim + 4, boundary, bl);
    f->dlen = 4 + bl;
    f->state = S_PREAMBLE;
    cf_buf_init(&f->window, FEED_PIECE + CF_FORM_MAX_HEADERS + sizeof f->delim);
    if (cf_buf_puts(&f->window, "\r\n") != 0) {
        free(f);
        return NULL;
    }
    return f;
}

void cf_form_free(cf_form *f)
{
    if (!f)
        return;
    cf_buf_cleanup(&f->window);
    free(f);
}

static int failed(cf_form *f, cf_err *err, const char *why)
{
    f->state = S_FAILED;
    return cf_err_set(err, CF_EINVAL, "malformed multipart/form-data: %s", why);
}

/* Value of parameter `param` in a Content-Disposition ("form-data; name=\"a\""), into out. 0 when
 * present, 1 when absent, -1 when malformed or too long. */
static int disposition_param(const char *h, size_t hl, const char *param, char *out, size_t outlen)
{
    size_t pl = strlen(param);
    const char *p = h, *end = h + hl;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi)
            return 1;
        p = semi + 1;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if ((size_t)(end - p) <= pl || strncasecmp(p, param, pl) != 0 || p[pl] != '=')
            continue;
        p += pl + 1;
        size_t n = 0;
        if (p < end && *p == '"') {
            for (p++; p < end && *p != '"'; p++) {
                if (*p == '\\' && p + 1 < end)
                    p++;
                if (n + 1 >= outlen)
                    return -1;
                out[n++] = *p;
            }
            if (p >= end)
                return -1;
        } else {
            for (; p < end && *p != ';' && *p != ' ' && *p != '\t'; p++) {
                if (n + 1 >= outlen)
                    return -1;
                out[n++] = *p;
            }
        }
        out[n] = '\0';
        return 0;
    }
    return 1;
}

static int header_is(const char *line, size_t len, const char *name, const char **value, size_t *vlen)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return 0;
    const char *v = line + nl + 1, *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *value = v;
    *vlen = (size_t)(e - v);
    return 1;
}

/* One part's header block (without the blank line ending it): starts the part. */
static int begin_part(cf_form *f, const char *h, size_t hl, cf_err *err)
{
    char name[CF_FORM_MAX_NAME], filename[CF_FORM_MAX_NAME], ctype[256];
    int have_disposition = 0, have_type = 0, have_file = 0;
    const char *p = h, *end = h + hl;
    while (p < end) {
        const char *eol = p;
        while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n'))
            eol++;
        if (eol + 1 >= end)
            eol = end;
        size_t len = (size_t)(eol - p);
        const char *v;
        size_t vl;
        if (memchr(p, '\0', len))
            return failed(f, err, "a NUL byte in a part's headers");
        if (header_is(p, len, "Content-Disposition", &v, &vl)) {
            if (have_disposition++)
                return failed(f, err, "two Content-Disposition headers in one part");
            if (vl < 9 || strncasecmp(v, "form-data", 9) != 0 || (vl > 9 && v[9] != ';' && v[9] != ' '))
                return failed(f, err, "a part is not form-data");
            if (disposition_param(v, vl, "name", name, sizeof name) != 0 || !name[0])
                return failed(f, err, "a part without a valid name");
            int frc = disposition_param(v, vl, "filename", filename, sizeof filename);
            if (frc < 0)
                return failed(f, err, "a malformed or too long filename");
            have_file = frc == 0;
        } else if (header_is(p, len, "Content-Type", &v, &vl)) {
            if (vl >= sizeof ctype || have_type++)
                return failed(f, err, "a part's Content-Type is too long or repeated");
            memcpy(ctype, v, vl);
            ctype[vl] = '\0';
        }
        p = eol + 2;
    }
    if (!have_disposition)
        return failed(f, err, "a part without Content-Disposition");
    f->state = S_DATA;
    int rc = f->ev->on_part(f->ctx, name, have_file ? filename : NULL, have_type ? ctype : NULL);
    if (rc) {
        f->state = S_FAILED;
        return cf_err_set(err, rc, "the form was refused");
    }
    return 0;
}

static int emit(cf_form *f, const char *data, size_t n, cf_err *err)
{
    if (f->state != S_DATA || n == 0)
        return 0;
    int rc = f->ev->on_data(f->ctx, data, n);
    if (rc) {
        f->state = S_FAILED;
        return cf_err_set(err, rc, "the form was refused");
    }
    return 0;
}

/* Runs the machine over the window; returns how many bytes it used. */
static size_t step(cf_form *f, int *rc, cf_err *err)
{
    const char *w = f->window.data;
    size_t n = f->window.len;
    switch (f->state) {
    case S_PREAMBLE:
    case S_DATA: {
        const char *hit = memmem(w, n, f->delim, f->dlen);
        if (!hit) {
            size_t keep = f->dlen - 1 < n ? f->dlen - 1 : n;
            *rc = emit(f, w, n - keep, err);
            return n - keep;
        }
        size_t at = (size_t)(hit - w);
        if ((*rc = emit(f, w, at, err)) != 0)
            return 0;
        if (f->state == S_DATA && (*rc = f->ev->on_part_end(f->ctx)) != 0) {
            f->state = S_FAILED;
            cf_err_set(err, *rc, "the form was refused");
            return 0;
        }
        f->state = S_DELIM_TAIL;
        return at + f->dlen;
    }
    case S_DELIM_TAIL: {
        size_t i = 0;
        if (n >= 2 && w[0] == '-' && w[1] == '-') {
            f->state = S_EPILOGUE;
            return n;
        }
        while (i < n && (w[i] == ' ' || w[i] == '\t'))
            i++;
        if (i > 64) {
            *rc = failed(f, err, "too much padding after a delimiter");
            return 0;
        }
        if (n - i < 2)
            return 0;
        if (w[i] != '\r' || w[i + 1] != '\n') {
            *rc = failed(f, err, "a delimiter not followed by CRLF");
            return 0;
        }
        f->state = S_HEADERS;
        return i + 2;
    }
    case S_HEADERS: {
        const char *end = n >= 2 && w[0] == '\r' && w[1] == '\n' ? w : memmem(w, n, "\r\n\r\n", 4);
        if (!end) {
            if (n > CF_FORM_MAX_HEADERS)
                *rc = failed(f, err, "a part's headers are over 8 KiB");
            return 0;
        }
        size_t hl = (size_t)(end - w);
        if (hl > CF_FORM_MAX_HEADERS) {
            *rc = failed(f, err, "a part's headers are over 8 KiB");
            return 0;
        }
        *rc = begin_part(f, w, hl, err);
        return hl + (hl ? 4 : 2);
    }
    case S_EPILOGUE: return n;
    case S_FAILED: break;
    }
    return 0;
}

int cf_form_feed(cf_form *f, const char *data, size_t n, cf_err *err)
{
    while (n) {
        if (f->state == S_FAILED)
            return cf_err_set(err, CF_EINVAL, "the form already failed");
        if (f->state == S_EPILOGUE)
            return 0;
        size_t piece = n < FEED_PIECE ? n : FEED_PIECE;
        if (cf_buf_append(&f->window, data, piece) != 0)
            return failed(f, err, "internal window overflow");
        data += piece;
        n -= piece;
        for (;;) {
            int rc = 0;
            size_t used = step(f, &rc, err);
            if (rc)
                return rc;
            if (used) {
                memmove(f->window.data, f->window.data + used, f->window.len - used);
                f->window.len -= used;
            }
            if (!used || !f->window.len)
                break;
        }
    }
    return f->state == S_FAILED ? CF_EINVAL : 0;
}

int cf_form_finish(cf_form *f, cf_err *err)
{
    if (f->state == S_EPILOGUE)
        return 0;
    if (f->state == S_FAILED)
        return cf_err_set(err, CF_EINVAL, "the form already failed");
    return cf_err_set(err, CF_EINVAL,
                      "malformed multipart/form-data: the body ended before the closing delimiter");
}
